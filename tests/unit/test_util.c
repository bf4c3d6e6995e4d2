/*
 * tests/unit/test_util.c - value parsers and the masking of secrets.
 */
#include "config.h"

#include "copytext.h"
#include "tests.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "resync.h"
#include "rewind.h"
#include "util.h"

START_TEST(durations)
{
	static const struct {
		const char *text, *unit;
		int64_t ms;
	} ok[] = {
	    {"500ms", "s", 500},        {"30s", "s", 30000},
	    {"5m", "s", 300000},        {"6h", "s", 21600000},
	    {"1d", "s", 86400000},      {"1day", "s", 86400000},
	    {"2hours", "s", 7200000},   {"1minute", "s", 60000},
	    {"3", "s", 3000},           {"3", "ms", 3},
	    {"1.5s", "s", 1500},        {"120S", "s", 120000},
	    {"2 days", "s", 172800000},
	};
	static const char *bad[] = {"",    "s",         "5x",    "-1s",
	                            "abc", "5 parsecs", "1e999s"};
	const char *err;
	int64_t v;

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		ck_assert_msg(
		    parse_duration_ms(ok[i].text, ok[i].unit, &v, &err),
		    "%s refused", ok[i].text);
		ck_assert_int_eq(v, ok[i].ms);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(!parse_duration_ms(bad[i], "s", &v, &err),
		              "%s accepted", bad[i]);
}
END_TEST

START_TEST(sizes)
{
	const char *err;
	int64_t v;

	ck_assert(parse_size("512MB", "B", &v, &err));
	ck_assert_int_eq(v, 512LL * 1024 * 1024);
	ck_assert(parse_size("64KB", "B", &v, &err));
	ck_assert_int_eq(v, 65536);
	ck_assert(parse_size("1GB", "B", &v, &err));
	ck_assert_int_eq(v, 1073741824LL);
	ck_assert(
	    parse_size("512", "MB", &v, &err)); /* the reference's bare MB */
	ck_assert_int_eq(v, 512LL * 1024 * 1024);
	ck_assert(parse_size("100b", "MB", &v, &err));
	ck_assert_int_eq(v, 100);
	ck_assert(!parse_size("12 apples", "B", &v, &err));
	ck_assert(!parse_size("MB", "B", &v, &err));
}
END_TEST

START_TEST(bools_and_ints)
{
	const char *err;
	bool b;
	int64_t v;

	ck_assert(parse_bool("true", &b, &err) && b);
	ck_assert(parse_bool("Yes", &b, &err) && b);
	ck_assert(parse_bool("off", &b, &err) && !b);
	ck_assert(parse_bool("0", &b, &err) && !b);
	ck_assert(!parse_bool("maybe", &b, &err));
	ck_assert(parse_int64("-1", &v, &err) && v == -1);
	ck_assert(!parse_int64("12x", &v, &err));
	ck_assert(!parse_int64("99999999999999999999", &v, &err));
	ck_assert(!parse_int64("", &v, &err));
}
END_TEST

START_TEST(utf8)
{
	ck_assert(utf8_valid("plain", 5));
	ck_assert(utf8_valid("\xc3\xa9t\xc3\xa9", 6));
	ck_assert(utf8_valid("\xf0\x9f\x98\x80", 4)); /* emoji */
	ck_assert(!utf8_valid("\xff", 1));
	ck_assert(!utf8_valid("\xc3", 1));         /* cut */
	ck_assert(!utf8_valid("\xc0\xaf", 2));     /* overlong */
	ck_assert(!utf8_valid("\xed\xa0\x80", 3)); /* surrogate */
}
END_TEST

static void
assert_redacted(const char *in, const char *expect)
{
	char *out = log_redact(in);
	ck_assert_msg(strcmp(out, expect) == 0, "redact(%s) = %s, expected %s",
	              in, out, expect);
	free(out);
}

START_TEST(redaction)
{
	assert_redacted("host=db password=s3cret user=x",
	                "host=db password=******** user=x");
	/* a quoted value is masked whole, quotes included */
	assert_redacted("host=db password = 's3 cr\\'et' user=x",
	                "host=db password = ******** user=x");
	assert_redacted("PASSWORD=abc", "PASSWORD=********");
	assert_redacted("sslpassword=abc dbname=x",
	                "sslpassword=******** dbname=x");
	assert_redacted("postgresql://app:hunter2@db:5432/shop",
	                "postgresql://app:********@db:5432/shop");
	assert_redacted("postgres://db/shop?password=xyz&sslmode=require",
	                "postgres://db/shop?password=********");
	assert_redacted("no secret here: a=b", "no secret here: a=b");
	assert_redacted("http://host:8080/path", "http://host:8080/path");
	log_add_secret("AKIDEXAMPLE");
	assert_redacted("key AKIDEXAMPLE rejected", "key ******** rejected");
	log_clear_secrets();
	assert_redacted("key AKIDEXAMPLE rejected", "key AKIDEXAMPLE rejected");
}
END_TEST

/* COPY text rows: escapes, NULL, empty strings, errors, round trips */
static void
assert_row(const char *text, uint32_t n, const char *const *want)
{
	syncd_value v[8], w[8];
	strbuf buf = {0}, buf2 = {0}, out = {0};
	const char *err = NULL;
	size_t used = copytext_parse_row(text, strlen(text), n, v, &buf, &err);

	ck_assert_msg(used == strlen(text), "%s: %s", text, err ? err : "");
	for (uint32_t i = 0; i < n; i++) {
		if (!want[i])
			ck_assert_int_eq(v[i].kind, SYNCD_VALUE_NULL);
		else {
			ck_assert_int_eq(v[i].kind, SYNCD_VALUE_TEXT);
			ck_assert_uint_eq(v[i].len, strlen(want[i]));
			ck_assert(memcmp(v[i].data, want[i], v[i].len) == 0);
		}
	}
	/* written back, it reads the same */
	copytext_write_row(&out, v, n);
	ck_assert_uint_eq(
	    copytext_parse_row(out.data, out.len, n, w, &buf2, &err), out.len);
	for (uint32_t i = 0; i < n; i++) {
		ck_assert_int_eq(w[i].kind, v[i].kind);
		ck_assert_uint_eq(w[i].len, v[i].len);
		ck_assert(w[i].len == 0 ||
		          memcmp(w[i].data, v[i].data, w[i].len) == 0);
	}
	sb_free(&buf);
	sb_free(&buf2);
	sb_free(&out);
}

START_TEST(copy_text)
{
	syncd_value v[4];
	strbuf buf = {0};
	const char *err = NULL;

	assert_row("1\ta\\tb\\\\c\\nd\n", 2,
	           (const char *[]){"1", "a\tb\\c\nd"});
	assert_row("\\N\t\t\\\\N\n", 3, (const char *[]){NULL, "", "\\N"});
	assert_row("\\101\\x41\\q\\r\n", 1, (const char *[]){"AAq\r"});
	assert_row("last\twithout newline", 2,
	           (const char *[]){"last", "without newline"});
	assert_row("\n", 1, (const char *[]){""});
	/* errors: field counts, a dangling backslash */
	ck_assert_uint_eq(copytext_parse_row("1\t2\n", 4, 3, v, &buf, &err), 0);
	ck_assert_str_eq(err, "fewer fields than the table has columns");
	ck_assert_uint_eq(copytext_parse_row("1\t2\t3\n", 6, 2, v, &buf, &err),
	                  0);
	ck_assert_str_eq(err, "more fields than the table has columns");
	ck_assert_uint_eq(copytext_parse_row("a\\", 2, 1, v, &buf, &err), 0);
	assert_row("\\Nx\n", 1, (const char *[]){"Nx"}); /* not alone: N */
	/* two rows: the first one's length */
	ck_assert_uint_eq(copytext_parse_row("1\n2\n", 4, 1, v, &buf, &err), 2);
	sb_free(&buf);
}
END_TEST

START_TEST(backoff)
{
	/* 1, 2, 4, 8, 16 s, then 30 s each, never more */
	const int64_t want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
	for (int n = 0; n < 7; n++)
		ck_assert_int_eq(backoff_ms(n), want[n]);
	ck_assert_int_eq(backoff_ms(1000), 30000);
	ck_assert_int_eq(backoff_ms(-1), 1000);
}
END_TEST

START_TEST(start_times)
{
	/* --start-time: ISO 8601 with its offset, or how long ago */
	const int64_t now = 1764669600LL * 1000000; /* 2025-12-02 10:00:00Z */
	int64_t t = 0;
	char err[256];

	ck_assert(rewind_parse_time("2025-12-02T10:00:00Z", now, &t, err,
	                            sizeof err));
	ck_assert_int_eq(t, now);
	ck_assert(rewind_parse_time("2025-12-02 18:00:00+08:00", now, &t, err,
	                            sizeof err));
	ck_assert_int_eq(t, now);
	ck_assert(rewind_parse_time("2025-12-02T05:30:00.25-0430", now, &t,
	                            err, sizeof err));
	ck_assert_int_eq(t, now + 250000);
	ck_assert(rewind_parse_time("2025-12-02T10:00+00", now, &t, err,
	                            sizeof err));
	ck_assert_int_eq(t, now);
	ck_assert(rewind_parse_time("2025-12-02T10:00:00.1234567Z", now, &t,
	                            err, sizeof err));
	ck_assert_int_eq(t, now + 123456);
	ck_assert(rewind_parse_time("2hours", now, &t, err, sizeof err));
	ck_assert_int_eq(t, now - 7200LL * 1000000);
	ck_assert(rewind_parse_time("30s", now, &t, err, sizeof err));
	ck_assert_int_eq(t, now - 30LL * 1000000);
	ck_assert(rewind_parse_time("1 day ago", now, &t, err, sizeof err));
	ck_assert_int_eq(t, now - 86400LL * 1000000);
	ck_assert(rewind_parse_time("90", now, &t, err, sizeof err));
	ck_assert_int_eq(t, now - 90LL * 1000000);

	ck_assert(!rewind_parse_time("2025-12-02T10:00:00", now, &t, err,
	                             sizeof err));
	ck_assert_ptr_nonnull(strstr(err, "has no UTC offset"));
	ck_assert(!rewind_parse_time("2025-13-02T10:00:00Z", now, &t, err,
	                             sizeof err));
	ck_assert_ptr_nonnull(strstr(err, "is not a time"));
	ck_assert(!rewind_parse_time("2025-12-02T10:00:00Zx", now, &t, err,
	                             sizeof err));
	ck_assert(!rewind_parse_time("yesterday", now, &t, err, sizeof err));
	ck_assert(!rewind_parse_time("-2h", now, &t, err, sizeof err));
	ck_assert(!rewind_parse_time("", now, &t, err, sizeof err));
	ck_assert(!rewind_parse_time("2 fortnights", now, &t, err,
	                             sizeof err));
	ck_assert_str_eq(rewind_format(now + 5, err, sizeof err),
	                 "2025-12-02 10:00:00.000005Z");
}
END_TEST

/* STATE_DIR/resync: requests added, read back once each, removed, and a
 * file with stray lines read without them. */
START_TEST(resync_requests)
{
	char dir[] = "/tmp/syncd-resync-XXXXXX";
	job j;
	syncd_relation a = {.size = sizeof a,
	                    .database = "shop",
	                    .schema = "public",
	                    .table = "orders"};
	syncd_relation b = {.size = sizeof b, .schema = "s", .table = "t"};
	const syncd_relation *both[] = {&a, &b};
	char *la = live_line(&a), *lb = live_line(&b), *path, *label;
	live_lines add = {0}, now;
	FILE *f;
	int lock, again;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	memset(&j, 0, sizeof j);
	j.state_dir = dir;
	ck_assert(!live_requested(&j, &a)); /* no file */
	live_lines_add(&add, la);
	live_lines_add(&add, lb);
	live_lines_add(&add, la);
	ck_assert(live_update(&j, &add, false));
	live_read(&j, &now);
	ck_assert_uint_eq(now.n, 2);
	live_lines_free(&now);
	ck_assert(live_requested(&j, &a) && live_requested(&j, &b));
	label = live_label(lb);
	ck_assert_str_eq(label, "s.t");
	free(label);
	label = live_label(la);
	ck_assert_str_eq(label, "shop.public.orders");
	free(label);
	ck_assert(live_update_one(&j, la, true));
	ck_assert(!live_requested(&j, &a) && live_requested(&j, &b));
	/* lines without a tab are not requests */
	path = live_path(&j, "resync");
	f = fopen(path, "a");
	ck_assert_ptr_nonnull(f);
	fputs("garbage\n\n", f);
	fclose(f);
	live_read(&j, &now);
	ck_assert_uint_eq(now.n, 1);
	ck_assert_str_eq(now.v[0], lb);
	live_lines_free(&now);
	live_requests_done(&j, both, 2);
	live_read(&j, &now);
	ck_assert_uint_eq(now.n, 0);
	ck_assert_int_ne(access(path, F_OK), 0); /* no request: no file */
	/* the job's lock: a second holder is refused */
	lock = live_lock(&j);
	ck_assert_int_ge(lock, 0);
	again = live_lock(&j);
	ck_assert_int_lt(again, 0);
	close(lock);
	again = live_lock(&j);
	ck_assert_int_ge(again, 0);
	close(again);
	live_lines_free(&add);
	free(la);
	free(lb);
	free(path);
	path = xasprintf("rm -rf %s", dir);
	ck_assert_int_eq(system(path), 0);
	free(path);
}
END_TEST

Suite *
util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("parsers");

	tcase_add_test(tc, durations);
	tcase_add_test(tc, sizes);
	tcase_add_test(tc, bools_and_ints);
	tcase_add_test(tc, utf8);
	tcase_add_test(tc, redaction);
	tcase_add_test(tc, copy_text);
	tcase_add_test(tc, backoff);
	tcase_add_test(tc, start_times);
	tcase_add_test(tc, resync_requests);
	suite_add_tcase(s, tc);
	return s;
}
