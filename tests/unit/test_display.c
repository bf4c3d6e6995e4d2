/*
 * tests/unit/test_display.c - the live display: columns of UTF-8 text,
 * names cut to fit, and the area drawn on a pseudo-terminal, with log
 * lines from many threads written through it.
 */
#include "config.h"

#include "tests.h"

#include <fcntl.h>
#include <pthread.h>
#include <pty.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "display.h"
#include "log.h"
#include "util.h"

static char *
put(const char *s, int cols, bool middle)
{
	strbuf sb = {0};

	display_put(&sb, s, cols, middle);
	return sb_steal(&sb);
}

START_TEST(display_cutting)
{
	/* "données" is 7 columns, 8 bytes; 表 is two columns */
	static const struct {
		const char *in;
		int cols;
		bool middle;
		const char *out;
	} cases[] = {
	    {"abc", 5, false, "abc  "},
	    {"abcdef", 4, false, "abcd"},
	    {"données", 7, false, "données"},
	    {"données", 3, false, "don"},
	    {"données", 4, false, "donn"},
	    {"nées", 2, false, "n\xc3\xa9"},
	    {"表表表", 5, false, "表表 "},
	    {"表表表", 6, false, "表表表"},
	    {"e\xcc\x81t\xc3\xa9", 2, false, "e\xcc\x81t"},
	    {"a\033[2Jb\n", 6, false, "a?[2Jb"},
	    {"a\xff\xfe", 3, false, "a??"},
	    {"public.orders_2024_01", 14, true, "public..024_01"},
	    {"public.orders_2024_01", 21, true, "public.orders_2024_01"},
	    {"schéma.données_été", 10, true, "sché.._été"},
	    {"schéma.données_été", 5, true, "schém"},
	    {"abcdef", 0, false, ""},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *got = put(cases[i].in, cases[i].cols, cases[i].middle);
		ck_assert_msg(strcmp(got, cases[i].out) == 0,
		              "%zu: \"%s\" in %d: \"%s\"", i, cases[i].in,
		              cases[i].cols, got);
		free(got);
	}
	ck_assert_int_eq(display_text_width("données"), 7);
	ck_assert_int_eq(display_text_width("表a"), 3);
	ck_assert_int_eq(display_text_width("e\xcc\x81"), 1);
}
END_TEST

START_TEST(display_not_a_terminal)
{
	int fds[2], saved;
	char buf[64];
	ssize_t n;

	ck_assert_int_eq(pipe(fds), 0);
	saved = dup(STDERR_FILENO);
	dup2(fds[1], STDERR_FILENO);
	setenv("TERM", "xterm", 1);
	ck_assert(!display_begin());
	ck_assert_int_eq(display_columns(), 0);
	display_write("as is\n", 6);
	display_end();
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fds[1]);
	n = read(fds[0], buf, sizeof buf - 1);
	close(fds[0]);
	ck_assert_int_eq(n, 6);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "as is\n");
}
END_TEST

/* What the terminal was sent so far. */
static char *
pty_read(int master)
{
	strbuf sb = {0};
	char buf[4096];
	ssize_t n;

	while ((n = read(master, buf, sizeof buf)) > 0)
		sb_append(&sb, buf, (size_t) n);
	return sb_steal(&sb);
}

START_TEST(display_on_a_terminal)
{
	struct winsize ws = {.ws_row = 10, .ws_col = 20};
	struct termios tio;
	const char *frame[] = {"full copy: 1 of 2 tables, much more text",
	                       "  t1 données", "  t2"};
	int master, slave, saved;
	char *out;

	ck_assert_int_eq(openpty(&master, &slave, NULL, NULL, &ws), 0);
	/* what is written is what is read: no \n -> \r\n */
	tcgetattr(slave, &tio);
	cfmakeraw(&tio);
	tcsetattr(slave, TCSANOW, &tio);
	fcntl(master, F_SETFL, O_NONBLOCK);
	saved = dup(STDERR_FILENO);
	dup2(slave, STDERR_FILENO);
	setenv("TERM", "xterm", 1);

	ck_assert(display_begin());
	ck_assert(!display_begin()); /* one area at a time */
	ck_assert_int_eq(display_columns(), 19);
	/* nothing drawn yet: a line goes out as it is */
	display_write("log 1\n", 6);
	display_update(frame, 3);
	/* the lines cut to 19 columns, each row's rest cleared */
	out = pty_read(master);
	ck_assert_str_eq(out, "log 1\n"
	                      "\r"
	                      "full copy: 1 of 2 t\033[K\n"
	                      "  t1 données\033[K\n"
	                      "  t2\033[K\n"
	                      "\033[J");
	free(out);

	/* a log line: the area up and away, the line, the area again */
	display_write("log 2\n", 6);
	out = pty_read(master);
	ck_assert_str_eq(out, "\r\033[3A\033[J"
	                      "log 2\n"
	                      "full copy: 1 of 2 t\033[K\n"
	                      "  t1 données\033[K\n"
	                      "  t2\033[K\n"
	                      "\033[J");
	free(out);

	/* narrower: the old lines took two rows each where longer than 10
	 * (the terminal reflowed them); the new ones are cut to 9 */
	ws.ws_col = 10;
	ioctl(master, TIOCSWINSZ, &ws);
	display_update(frame, 2);
	out = pty_read(master);
	ck_assert_str_eq(out, "\r\033[5A"
	                      "full copy\033[K\n"
	                      "  t1 donn\033[K\n"
	                      "\033[J");
	free(out);

	/* a short terminal: at most its height less one line */
	ws.ws_row = 2;
	ioctl(master, TIOCSWINSZ, &ws);
	display_update(frame, 3);
	out = pty_read(master);
	ck_assert_str_eq(out, "\r\033[2A"
	                      "full copy\033[K\n"
	                      "\033[J");
	free(out);

	/* the end: the area erased, the cursor where it began */
	display_end();
	out = pty_read(master);
	ck_assert_str_eq(out, "\r\033[1A\033[J");
	free(out);
	display_write("log 3\n", 6);
	out = pty_read(master);
	ck_assert_str_eq(out, "log 3\n");
	free(out);

	dup2(saved, STDERR_FILENO);
	close(saved);
	close(slave);
	close(master);
}
END_TEST

/* Log lines from many threads while the area is redrawn: every line whole
 * and at a row's start, each frame complete. A terminal reads all the
 * time: so does a thread here (a writer waiting for room in the pty holds
 * the display's lock). */
static atomic_int loggers_done;

static void *
logger(void *arg)
{
	for (int i = 0; i < 200; i++)
		log_info("thread %d line %d", *(int *) arg, i);
	atomic_fetch_add(&loggers_done, 1);
	return NULL;
}

typedef struct terminal {
	int master;
	atomic_bool stop;
	strbuf got;
} terminal;

static void *
terminal_main(void *arg)
{
	terminal *t = arg;
	char buf[4096];

	for (;;) {
		ssize_t n = read(t->master, buf, sizeof buf);
		if (n > 0)
			sb_append(&t->got, buf, (size_t) n);
		else if (atomic_load(&t->stop))
			break;
		else
			usleep(1000);
	}
	return NULL;
}

START_TEST(display_threads)
{
	struct winsize ws = {.ws_row = 30, .ws_col = 60};
	struct termios tio;
	const char *frame[] = {"full copy: frame", "  table"};
	pthread_t th[4], reader;
	terminal term = {0};
	int ids[4], slave, saved, lines = 0;
	strbuf all;
	char *p;

	ck_assert_int_eq(openpty(&term.master, &slave, NULL, NULL, &ws), 0);
	tcgetattr(slave, &tio);
	cfmakeraw(&tio);
	tcsetattr(slave, TCSANOW, &tio);
	fcntl(term.master, F_SETFL, O_NONBLOCK);
	saved = dup(STDERR_FILENO);
	dup2(slave, STDERR_FILENO);
	setenv("TERM", "xterm", 1);
	unsetenv("JOURNAL_STREAM");
	pthread_create(&reader, NULL, terminal_main, &term);

	ck_assert(display_begin());
	display_update(frame, 2);
	for (int i = 0; i < 4; i++) {
		ids[i] = i;
		pthread_create(&th[i], NULL, logger, &ids[i]);
	}
	while (atomic_load(&loggers_done) < 4) {
		display_update(frame, 2);
		usleep(100);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	display_end();
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(slave);
	atomic_store(&term.stop, true);
	pthread_join(reader, NULL);
	close(term.master);
	all = term.got;

	/* every log line follows a newline or the erasing of the area, and
	 * every frame is whole */
	for (p = all.data; (p = strstr(p, " info thread ")) != NULL; p++) {
		const char *start = p - 24;
		ck_assert(start >= all.data);
		ck_assert_msg(start == all.data || start[-1] == '\n' ||
		                  (start >= all.data + 3 &&
		                   strncmp(start - 3, "\033[J", 3) == 0),
		              "a log line inside something else");
		lines++;
	}
	ck_assert_int_eq(lines, 800);
	for (p = all.data; (p = strstr(p, "full copy: frame")) != NULL; p++)
		ck_assert_msg(strncmp(p,
		                      "full copy: frame\033[K\n  table\033[K\n"
		                      "\033[J",
		                      strlen("full copy: frame\033[K\n  table"
		                             "\033[K\n\033[J")) == 0,
		              "a frame cut");
	sb_free(&all);
}
END_TEST
Suite *
display_suite(void)
{
	Suite *s = suite_create("display");
	TCase *tc = tcase_create("display");

	tcase_add_test(tc, display_cutting);
	tcase_add_test(tc, display_not_a_terminal);
	tcase_add_test(tc, display_on_a_terminal);
	tcase_add_test(tc, display_threads);
	suite_add_tcase(s, tc);
	return s;
}
