/*
 * tests/unit/test_txbuf.c - the buffer of streamed transactions of the
 * pgoutput source (plugins/pgoutput/txbuf.h), without any server: messages
 * under the limit stay in memory, past it they spill to files in the given
 * directory; either way they replay byte-identical and in order, per
 * transaction, without the subtransactions aborted on the way; a failing
 * callback stops the replay; the spill files are removed with the buffer
 * (and leftovers of an earlier run when it is made); a directory where no
 * file can be made gives an error naming it.
 */
#include "config.h"

#include "tests.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "txbuf.h"

#define PREFIX "stream-1-"
#define RECORD 8 /* bytes of head per record: subxid u32, len u32 */

static char *dir;
static char err[512];

static void
setup(void)
{
	dir = test_tmpdir();
	err[0] = '\0';
}

static void
teardown(void)
{
	test_rmdir(dir);
	free(dir);
	dir = NULL;
}

/* Spill files (PREFIX*.spill) in dir. */
static int
count_spill_files(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (strncmp(de->d_name, PREFIX, strlen(PREFIX)) == 0 && l > 6 &&
		    strcmp(de->d_name + l - 6, ".spill") == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* Message i of a test: its length varies (0 included), its bytes include
 * NULs and every byte value, and depend on tag so that two transactions
 * differ. */
static size_t
msg_len(int i)
{
	return (size_t) ((i * 37) % 300);
}

static char *
msg_make(int tag, int i)
{
	size_t len = msg_len(i);
	char *m = malloc(len ? len : 1);

	for (size_t k = 0; k < len; k++)
		m[k] = (char) (unsigned char) ((tag * 131 + i * 7 + k) % 256);
	return m;
}

static void
add(txbuf *b, uint32_t xid, uint32_t subxid, int tag, int i)
{
	char *m = msg_make(tag, i);

	ck_assert_msg(txbuf_add(b, xid, subxid, m, msg_len(i), err, sizeof err),
	              "txbuf_add: %s", err);
	free(m);
}

/* What a replay saw. */
typedef struct seen {
	char **msg;
	size_t *len;
	int n;
	int fail_at; /* the callback returns false at this call (-1: never) */
} seen;

static bool
collect(void *ctx, const char *msg, size_t len)
{
	seen *s = ctx;

	s->msg = realloc(s->msg, (size_t) (s->n + 1) * sizeof *s->msg);
	s->len = realloc(s->len, (size_t) (s->n + 1) * sizeof *s->len);
	s->msg[s->n] = malloc(len ? len : 1);
	if (len)
		memcpy(s->msg[s->n], msg, len);
	s->len[s->n] = len;
	return s->n++ != s->fail_at;
}

static void
seen_free(seen *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->msg[i]);
	free(s->msg);
	free(s->len);
	memset(s, 0, sizeof *s);
	s->fail_at = -1;
}

/* The replay saw, at position pos, message i of tag. */
static void
seen_is(const seen *s, int pos, int tag, int i)
{
	char *m = msg_make(tag, i);

	ck_assert_int_lt(pos, s->n);
	ck_assert_msg(s->len[pos] == msg_len(i),
	              "replayed message %d: %zu bytes, want %zu", pos,
	              s->len[pos], msg_len(i));
	ck_assert_msg(memcmp(s->msg[pos], m, msg_len(i)) == 0,
	              "replayed message %d differs from message %d of tag %d",
	              pos, i, tag);
	free(m);
}

static bool
replay(txbuf *b, uint32_t xid, seen *s)
{
	return txbuf_replay(b, xid, collect, s, err, sizeof err);
}

/* Bytes n messages 0..n-1 take as records. */
static size_t
records(int from, int to)
{
	size_t n = 0;
	for (int i = from; i < to; i++)
		n += RECORD + msg_len(i);
	return n;
}

START_TEST(memory_under_limit)
{
	txbuf *b = txbuf_new(dir, PREFIX, 1 << 20, err, sizeof err);
	seen s = {.fail_at = -1};

	ck_assert_msg(b != NULL, "txbuf_new: %s", err);
	for (int i = 0; i < 50; i++)
		add(b, 700, 700, 1, i);
	ck_assert_uint_eq(txbuf_spilled_bytes(b), 0);
	ck_assert_int_eq(count_spill_files(), 0);
	ck_assert(replay(b, 700, &s));
	ck_assert_int_eq(s.n, 50);
	for (int i = 0; i < 50; i++)
		seen_is(&s, i, 1, i);
	seen_free(&s);

	/* replayed means forgotten */
	ck_assert(replay(b, 700, &s));
	ck_assert_int_eq(s.n, 0);
	txbuf_free(b);
}
END_TEST

START_TEST(spill_past_limit)
{
	/* a limit of 2000 bytes: the first messages stay in memory, then the
	 * transaction goes to its file with everything so far and appends
	 * there; every byte written is counted */
	txbuf *b = txbuf_new(dir, PREFIX, 2000, err, sizeof err);
	seen s = {.fail_at = -1};

	ck_assert_msg(b != NULL, "txbuf_new: %s", err);
	add(b, 700, 700, 1, 0);
	add(b, 700, 700, 1, 1);
	ck_assert_uint_eq(txbuf_spilled_bytes(b), 0);
	ck_assert_int_eq(count_spill_files(), 0);
	for (int i = 2; i < 200; i++)
		add(b, 700, 700, 1, i);
	ck_assert_uint_eq(txbuf_spilled_bytes(b), records(0, 200));
	ck_assert_int_eq(count_spill_files(), 1);

	ck_assert_msg(replay(b, 700, &s), "replay: %s", err);
	ck_assert_int_eq(s.n, 200);
	for (int i = 0; i < 200; i++)
		seen_is(&s, i, 1, i);
	seen_free(&s);
	/* a replayed transaction's file is gone; the count stays */
	ck_assert_int_eq(count_spill_files(), 0);
	ck_assert_uint_eq(txbuf_spilled_bytes(b), records(0, 200));
	txbuf_free(b);
}
END_TEST

START_TEST(spill_large_messages)
{
	/* messages larger than the limit, and larger than the memory block
	 * grows by */
	txbuf *b = txbuf_new(dir, PREFIX, 4096, err, sizeof err);
	seen s = {.fail_at = -1};
	size_t big = 3 * 1024 * 1024 + 5;
	char *m = malloc(big);

	ck_assert_msg(b != NULL, "txbuf_new: %s", err);
	for (int j = 0; j < 3; j++) {
		for (size_t k = 0; k < big; k++)
			m[k] = (char) (unsigned char) ((k * 13 + (size_t) j) %
			                               251);
		ck_assert_msg(
		    txbuf_add(b, 9, 9, m, big - (size_t) j, err, sizeof err),
		    "txbuf_add: %s", err);
	}
	ck_assert_uint_eq(txbuf_spilled_bytes(b),
	                  3 * (RECORD + big) - 0 - 1 - 2);
	ck_assert_msg(replay(b, 9, &s), "replay: %s", err);
	ck_assert_int_eq(s.n, 3);
	for (int j = 0; j < 3; j++) {
		ck_assert_uint_eq(s.len[j], big - (size_t) j);
		for (size_t k = 0; k < big - (size_t) j; k++)
			if (s.msg[j][k] !=
			    (char) (unsigned char) ((k * 13 + (size_t) j) %
			                            251))
				ck_abort_msg("message %d differs at byte %zu",
				             j, k);
	}
	seen_free(&s);
	free(m);
	txbuf_free(b);
}
END_TEST

static void
interleaved(size_t limit, bool spills)
{
	txbuf *b = txbuf_new(dir, PREFIX, limit, err, sizeof err);
	seen s = {.fail_at = -1};

	ck_assert_msg(b != NULL, "txbuf_new: %s", err);
	for (int i = 0; i < 60; i++) {
		add(b, 100, 100, 1, i);
		if (i % 2 == 0)
			add(b, 200, 200, 2, i);
	}
	if (spills) {
		ck_assert_uint_gt(txbuf_spilled_bytes(b), 0);
		ck_assert_int_ge(count_spill_files(), 1);
	} else {
		ck_assert_uint_eq(txbuf_spilled_bytes(b), 0);
	}

	/* the second one first: each replays only its own, in order */
	ck_assert_msg(replay(b, 200, &s), "replay: %s", err);
	ck_assert_int_eq(s.n, 30);
	for (int i = 0; i < 30; i++)
		seen_is(&s, i, 2, 2 * i);
	seen_free(&s);
	ck_assert_msg(replay(b, 100, &s), "replay: %s", err);
	ck_assert_int_eq(s.n, 60);
	for (int i = 0; i < 60; i++)
		seen_is(&s, i, 1, i);
	seen_free(&s);
	ck_assert_int_eq(count_spill_files(), 0);
	txbuf_free(b);
}

START_TEST(interleaved_in_memory)
{
	interleaved(1 << 20, false);
}
END_TEST

START_TEST(interleaved_spilled)
{
	interleaved(1500, true);
}
END_TEST

START_TEST(one_spilled_one_in_memory)
{
	/* past the limit the largest transaction goes to disk; the small one
	 * stays in memory; both replay */
	txbuf *b = txbuf_new(dir, PREFIX, 3000, err, sizeof err);
	seen s = {.fail_at = -1};

	ck_assert_msg(b != NULL, "txbuf_new: %s", err);
	add(b, 300, 300, 3, 1); /* 37 bytes */
	for (int i = 0; i < 40; i++)
		add(b, 100, 100, 1, i);
	ck_assert_uint_gt(txbuf_spilled_bytes(b), 0);
	ck_assert_int_eq(count_spill_files(), 1);
	{
		char path[4096];
		struct stat st;
		snprintf(path, sizeof path, "%s/%s300.spill", dir, PREFIX);
		ck_assert_msg(stat(path, &st) != 0,
		              "the small transaction was spilled");
	}
	ck_assert_msg(replay(b, 300, &s), "replay: %s", err);
	ck_assert_int_eq(s.n, 1);
	seen_is(&s, 0, 3, 1);
	seen_free(&s);
	ck_assert_msg(replay(b, 100, &s), "replay: %s", err);
	ck_assert_int_eq(s.n, 40);
	for (int i = 0; i < 40; i++)
		seen_is(&s, i, 1, i);
	seen_free(&s);
	txbuf_free(b);
}
END_TEST

static void
abort_subxact(size_t limit, bool spills)
{
	/* top-level 100 with subtransactions 101 and 102, interleaved;
	 * aborting 101 drops exactly its messages */
	txbuf *b = txbuf_new(dir, PREFIX, limit, err, sizeof err);
	seen s = {.fail_at = -1};

	ck_assert_msg(b != NULL, "txbuf_new: %s", err);
	for (int i = 0; i < 30; i++)
		add(b, 100, (uint32_t) (100 + i % 3), 1, i);
	ck_assert(spills == (txbuf_spilled_bytes(b) > 0));
	txbuf_abort(b, 100, 101);
	txbuf_abort(b, 100, 4242); /* a subxact with no messages */
	txbuf_abort(b, 555, 556);  /* a transaction never seen */
	ck_assert_msg(replay(b, 100, &s), "replay: %s", err);
	ck_assert_int_eq(s.n, 20);
	for (int i = 0, pos = 0; i < 30; i++)
		if (i % 3 != 1)
			seen_is(&s, pos++, 1, i);
	seen_free(&s);
	txbuf_free(b);
}

START_TEST(abort_subxact_in_memory)
{
	abort_subxact(1 << 20, false);
}
END_TEST

START_TEST(abort_subxact_spilled)
{
	abort_subxact(500, true);
}
END_TEST

START_TEST(abort_top_level)
{
	/* aborting the top-level transaction (subxid == xid, or 0) drops all
	 * its messages and its file, and only its own */
	txbuf *b = txbuf_new(dir, PREFIX, 1500, err, sizeof err);
	seen s = {.fail_at = -1};

	ck_assert_msg(b != NULL, "txbuf_new: %s", err);
	for (int i = 0; i < 40; i++) {
		add(b, 100, (uint32_t) (100 + i % 2), 1, i);
		add(b, 200, 200, 2, i);
	}
	add(b, 300, 300, 3, 5);
	ck_assert_int_eq(count_spill_files(), 2);
	txbuf_abort(b, 100, 100);
	ck_assert_int_eq(count_spill_files(), 1);
	txbuf_abort(b, 300, 0);
	ck_assert(replay(b, 100, &s));
	ck_assert_int_eq(s.n, 0);
	ck_assert(replay(b, 300, &s));
	ck_assert_int_eq(s.n, 0);
	ck_assert_msg(replay(b, 200, &s), "replay: %s", err);
	ck_assert_int_eq(s.n, 40);
	for (int i = 0; i < 40; i++)
		seen_is(&s, i, 2, i);
	seen_free(&s);
	ck_assert_int_eq(count_spill_files(), 0);
	txbuf_free(b);
}
END_TEST

START_TEST(replay_unknown_xid)
{
	/* a streamed transaction with nothing buffered: nothing to call, no
	 * error, and the others are left alone */
	txbuf *b = txbuf_new(dir, PREFIX, 1 << 20, err, sizeof err);
	seen s = {.fail_at = -1};

	ck_assert_msg(b != NULL, "txbuf_new: %s", err);
	add(b, 100, 100, 1, 3);
	ck_assert(replay(b, 999, &s));
	ck_assert_int_eq(s.n, 0);
	ck_assert_str_eq(err, "");
	ck_assert(replay(b, 100, &s));
	ck_assert_int_eq(s.n, 1);
	seen_is(&s, 0, 1, 3);
	seen_free(&s);
	txbuf_free(b);
}
END_TEST

static void
callback_fails(size_t limit, bool spills)
{
	/* the callback fails at the 5th message: the replay stops there and
	 * says so; the transaction is forgotten all the same */
	txbuf *b = txbuf_new(dir, PREFIX, limit, err, sizeof err);
	seen s = {.fail_at = 4};

	ck_assert_msg(b != NULL, "txbuf_new: %s", err);
	for (int i = 0; i < 30; i++)
		add(b, 100, 100, 1, i);
	ck_assert(spills == (txbuf_spilled_bytes(b) > 0));
	ck_assert(!replay(b, 100, &s));
	ck_assert_int_eq(s.n, 5);
	for (int i = 0; i < 5; i++)
		seen_is(&s, i, 1, i);
	seen_free(&s);
	ck_assert_int_eq(count_spill_files(), 0);
	ck_assert(replay(b, 100, &s));
	ck_assert_int_eq(s.n, 0);
	txbuf_free(b);
}

START_TEST(callback_fails_in_memory)
{
	callback_fails(1 << 20, false);
}
END_TEST

START_TEST(callback_fails_spilled)
{
	callback_fails(500, true);
}
END_TEST

START_TEST(free_removes_spill_files)
{
	txbuf *b = txbuf_new(dir, PREFIX, 500, err, sizeof err);

	ck_assert_msg(b != NULL, "txbuf_new: %s", err);
	for (int i = 0; i < 20; i++) {
		add(b, 100, 100, 1, i);
		add(b, 200, 200, 2, i);
		add(b, 300, 300, 3, i);
	}
	ck_assert_int_eq(count_spill_files(), 3);
	txbuf_free(b);
	ck_assert_int_eq(count_spill_files(), 0);
	txbuf_free(NULL);
}
END_TEST

START_TEST(new_removes_leftovers)
{
	/* spill files of an earlier run with this prefix go; other files
	 * stay */
	char *a = test_write_file(dir, PREFIX "77.spill", "old");
	char *other = test_write_file(dir, "stream-2-77.spill", "other");
	char *keep = test_write_file(dir, PREFIX "77.keep", "keep");
	txbuf *b = txbuf_new(dir, PREFIX, 500, err, sizeof err);
	struct stat st;

	ck_assert_msg(b != NULL, "txbuf_new: %s", err);
	ck_assert_int_ne(stat(a, &st), 0);
	ck_assert_int_eq(stat(other, &st), 0);
	ck_assert_int_eq(stat(keep, &st), 0);
	txbuf_free(b);
	free(a);
	free(other);
	free(keep);
}
END_TEST

static void
unwritable(const char *bad)
{
	/* no file can be made in bad: the add that spills fails with a
	 * message naming the directory and the fix; nothing is left behind */
	txbuf *b = txbuf_new(bad, PREFIX, 100, err, sizeof err);

	ck_assert_msg(b != NULL, "txbuf_new: %s", err);
	add(b, 100, 100, 1, 1); /* 37 bytes + head: under the limit */
	{
		char *m = msg_make(1, 2);
		ck_assert(
		    !txbuf_add(b, 100, 100, m, msg_len(2), err, sizeof err));
		free(m);
	}
	ck_assert_msg(strstr(err, bad) != NULL, "error does not name %s: %s",
	              bad, err);
	ck_assert_msg(strstr(err, "cannot create spill file") != NULL, "%s",
	              err);
	ck_assert_msg(strstr(err, "make [job] state_dir writable") != NULL,
	              "%s", err);
	txbuf_free(b);
}

START_TEST(unwritable_missing_dir)
{
	char bad[4096];

	snprintf(bad, sizeof bad, "%s/no-such-dir", dir);
	unwritable(bad);
	ck_assert_int_eq(count_spill_files(), 0);
}
END_TEST

START_TEST(unwritable_not_a_dir)
{
	/* a file where the directory should be (fails for root too) */
	char *file = test_write_file(dir, "not-a-dir", "x");

	unwritable(file);
	free(file);
}
END_TEST

Suite *
txbuf_suite(void)
{
	Suite *s = suite_create("txbuf");
	TCase *tc = tcase_create("buffer");
	TCase *ab = tcase_create("abort");
	TCase *files = tcase_create("files");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, memory_under_limit);
	tcase_add_test(tc, spill_past_limit);
	tcase_add_test(tc, spill_large_messages);
	tcase_add_test(tc, interleaved_in_memory);
	tcase_add_test(tc, interleaved_spilled);
	tcase_add_test(tc, one_spilled_one_in_memory);
	tcase_add_test(tc, replay_unknown_xid);
	tcase_add_test(tc, callback_fails_in_memory);
	tcase_add_test(tc, callback_fails_spilled);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(ab, setup, teardown);
	tcase_add_test(ab, abort_subxact_in_memory);
	tcase_add_test(ab, abort_subxact_spilled);
	tcase_add_test(ab, abort_top_level);
	suite_add_tcase(s, ab);

	tcase_add_checked_fixture(files, setup, teardown);
	tcase_add_test(files, free_removes_spill_files);
	tcase_add_test(files, new_removes_leftovers);
	tcase_add_test(files, unwritable_missing_dir);
	tcase_add_test(files, unwritable_not_a_dir);
	suite_add_tcase(s, files);
	return s;
}
