/*
 * tests/unit/test_log.c - the log's formats (text, JSON, the journal's
 * priorities), read back from a redirected stderr.
 */
#include "config.h"

#include "tests.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "display.h"
#include "log.h"
#include "util.h"

/* ---- stderr into a file --------------------------------------------------
 */

static char *cap_dir, *cap_path;
static int cap_saved = -1;

/* From here, stderr is a file of its own (each test runs in a fork). */
static void
cap_start(void)
{
	int fd;

	cap_dir = test_tmpdir();
	cap_path = xasprintf("%s/stderr", cap_dir);
	fd = open(cap_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	cap_saved = dup(STDERR_FILENO);
	ck_assert_int_ge(cap_saved, 0);
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	log_reopen();
}

/* stderr back; returns what was written to it (caller frees). */
static char *
cap_stop(void)
{
	strbuf sb = {0};
	char buf[4096];
	ssize_t n;
	int fd;

	dup2(cap_saved, STDERR_FILENO);
	close(cap_saved);
	cap_saved = -1;
	fd = open(cap_path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	while ((n = read(fd, buf, sizeof buf)) > 0)
		sb_append(&sb, buf, (size_t) n);
	close(fd);
	test_rmdir(cap_dir);
	free(cap_dir);
	free(cap_path);
	log_reopen();
	return sb_steal(&sb);
}

/* JOURNAL_STREAM naming stderr as it is now (or another inode). */
static void
journal_env(bool matching)
{
	struct stat st;
	char v[64];

	ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
	snprintf(v, sizeof v, "%llu:%llu", (unsigned long long) st.st_dev,
	         (unsigned long long) st.st_ino + (matching ? 0 : 1));
	setenv("JOURNAL_STREAM", v, 1);
	log_reopen();
}

/* Line i of text (0-based), without its newline; caller frees. */
static char *
nth_line(const char *text, int i)
{
	const char *p = text, *nl;

	while (i-- > 0) {
		p = strchr(p, '\n');
		if (!p)
			return NULL;
		p++;
	}
	if (!*p)
		return NULL;
	nl = strchr(p, '\n');
	return xstrndup(p, nl ? (size_t) (nl - p) : strlen(p));
}

static const char *
field(json_object *o, const char *name)
{
	json_object *v;

	if (!json_object_object_get_ex(o, name, &v))
		return NULL;
	return json_object_get_string(v);
}

/* ---- the log ---------------------------------------------------------------
 */

START_TEST(formats_parse)
{
	log_format f;

	ck_assert(log_parse_format("text", &f));
	ck_assert_int_eq(f, LOG_FORMAT_TEXT);
	ck_assert(log_parse_format("JSON", &f));
	ck_assert_int_eq(f, LOG_FORMAT_JSON);
	ck_assert(!log_parse_format("xml", &f));
	ck_assert(!log_parse_format("", &f));
}
END_TEST

START_TEST(text_lines)
{
	char *out, *l;

	unsetenv("JOURNAL_STREAM");
	cap_start();
	log_msg("[sink:dws_upsert]", SYNCD_LEVEL_WARNING, "slow: %d s", 3);
	log_info("plain");
	out = cap_stop();
	l = nth_line(out, 0);
	/* 2024-05-01T12:00:00.123Z warning [sink:dws_upsert] slow: 3 s */
	ck_assert_msg(l && strlen(l) > 25 && l[4] == '-' && l[10] == 'T' &&
	                  l[19] == '.' && l[23] == 'Z',
	              "%s", out);
	ck_assert_str_eq(l + 25, "warning [sink:dws_upsert] slow: 3 s");
	free(l);
	l = nth_line(out, 1);
	ck_assert_str_eq(l + 25, "info plain");
	free(l);
	ck_assert_ptr_null(nth_line(out, 2));
	free(out);
}
END_TEST

START_TEST(json_lines)
{
	json_object *o;
	char *out, *l;

	unsetenv("JOURNAL_STREAM");
	log_set_format(LOG_FORMAT_JSON);
	log_set_job("orders_sync");
	cap_start();
	log_msg("[sink:dws_upsert]", SYNCD_LEVEL_ERROR,
	        "copy of \"%s\" failed:\n\ttab\\ %s", "public.t", "é");
	log_warning("[source:pgoutput] lost the connection");
	log_info("no instance [here]");
	log_debug("not shown at info");
	log_info("bad byte: \xff!");
	out = cap_stop();

	l = nth_line(out, 0);
	o = json_tokener_parse(l);
	ck_assert_msg(o && json_object_is_type(o, json_type_object), "%s", l);
	ck_assert_str_eq(field(o, "level"), "error");
	ck_assert_str_eq(field(o, "job"), "orders_sync");
	ck_assert_str_eq(field(o, "instance"), "sink:dws_upsert");
	ck_assert_str_eq(field(o, "message"),
	                 "copy of \"public.t\" failed:\n\ttab\\ é");
	/* ISO 8601, UTC, milliseconds */
	ck_assert_int_eq(strlen(field(o, "time")), 24);
	ck_assert_int_eq(field(o, "time")[10], 'T');
	ck_assert_int_eq(field(o, "time")[23], 'Z');
	json_object_put(o);
	free(l);

	/* a core line that starts with an instance's prefix */
	l = nth_line(out, 1);
	o = json_tokener_parse(l);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(field(o, "level"), "warning");
	ck_assert_str_eq(field(o, "instance"), "source:pgoutput");
	ck_assert_str_eq(field(o, "message"), "lost the connection");
	json_object_put(o);
	free(l);

	l = nth_line(out, 2);
	o = json_tokener_parse(l);
	ck_assert_ptr_nonnull(o);
	ck_assert_ptr_null(field(o, "instance"));
	ck_assert_str_eq(field(o, "message"), "no instance [here]");
	json_object_put(o);
	free(l);

	/* a byte that is not UTF-8 becomes U+FFFD: the line stays JSON */
	l = nth_line(out, 3);
	ck_assert(utf8_valid(l, strlen(l)));
	o = json_tokener_parse(l);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(field(o, "message"), "bad byte: \xef\xbf\xbd!");
	json_object_put(o);
	free(l);
	ck_assert_ptr_null(nth_line(out, 4));
	free(out);
	/* JSON is for programs: no live area even on a terminal */
	ck_assert(!display_begin());
}
END_TEST

START_TEST(json_redacts)
{
	json_object *o;
	char *out, *l;

	unsetenv("JOURNAL_STREAM");
	log_set_format(LOG_FORMAT_JSON);
	log_add_secret("hunter2");
	cap_start();
	log_error("could not connect to \"host=db password='s3 cret' "
	          "user=u\": bad");
	log_error("postgresql://app:pw0rd@db:5432/shop refused; key hunter2");
	out = cap_stop();
	ck_assert_msg(!strstr(out, "s3 cret") && !strstr(out, "pw0rd") &&
	                  !strstr(out, "hunter2"),
	              "%s", out);
	l = nth_line(out, 0);
	o = json_tokener_parse(l);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(field(o, "message"),
	                 "could not connect to \"host=db password=******** "
	                 "user=u\": bad");
	json_object_put(o);
	free(l);
	l = nth_line(out, 1);
	o = json_tokener_parse(l);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(field(o, "message"),
	                 "postgresql://app:********@db:5432/shop refused; key "
	                 "********");
	json_object_put(o);
	free(l);
	free(out);
	log_clear_secrets();
}
END_TEST

START_TEST(journal_priorities)
{
	char *out, *l;

	log_set_level(SYNCD_LEVEL_DEBUG);
	cap_start();
	journal_env(true);
	log_error("e");
	log_warning("w");
	log_msg("[sink:x]", SYNCD_LEVEL_INFO, "first\nsecond\n");
	log_debug("d");
	out = cap_stop();
	/* each line of a message is an entry of its own: each has its
	 * priority; no timestamp (journald stamps entries) */
	ck_assert_str_eq(out, "<3>error e\n"
	                      "<4>warning w\n"
	                      "<6>info [sink:x] first\n"
	                      "<6>second\n"
	                      "<7>debug d\n");
	free(out);

	/* JSON into the journal: the priority, then the object */
	log_set_format(LOG_FORMAT_JSON);
	cap_start();
	journal_env(true);
	log_warning("w");
	out = cap_stop();
	ck_assert_msg(strncmp(out, "<4>{", 4) == 0, "%s", out);
	l = nth_line(out, 0);
	{
		json_object *o = json_tokener_parse(l + 3);
		ck_assert_ptr_nonnull(o);
		ck_assert_str_eq(field(o, "message"), "w");
		json_object_put(o);
	}
	free(l);
	free(out);
	unsetenv("JOURNAL_STREAM");
}
END_TEST

START_TEST(journal_elsewhere)
{
	char *out;

	/* JOURNAL_STREAM inherited, but stderr redirected since: another
	 * file, so no priorities */
	cap_start();
	journal_env(false);
	log_error("e");
	out = cap_stop();
	ck_assert_msg(out[0] != '<' && strstr(out, "Z error e\n"), "%s", out);
	free(out);

	cap_start();
	setenv("JOURNAL_STREAM", "garbage", 1);
	log_reopen();
	log_error("e");
	out = cap_stop();
	ck_assert_msg(out[0] != '<', "%s", out);
	free(out);
	unsetenv("JOURNAL_STREAM");
}
END_TEST

Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("formats");

	tcase_add_test(tc, formats_parse);
	tcase_add_test(tc, text_lines);
	tcase_add_test(tc, json_lines);
	tcase_add_test(tc, json_redacts);
	tcase_add_test(tc, journal_priorities);
	tcase_add_test(tc, journal_elsewhere);
	suite_add_tcase(s, tc);
	return s;
}
