/*
 * tests/unit/test_jobfile.c - the job file reader and the validation of
 * keys against option tables: every bad input gets file:line.
 */
#include "config.h"

#include "tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "jobload.h"
#include "router.h"
#include "loader.h"
#include "log.h"

static char *tmp;

static void
setup(void)
{
	tmp = test_tmpdir();
	loader_init(test_env("TEST_PLUGIN_DIR"));
	log_set_level(SYNCD_LEVEL_ERROR);
}

static void
teardown(void)
{
	loader_shutdown();
	test_rmdir(tmp);
	free(tmp);
}

#define GOOD_HEAD                                                              \
	"[job]\nname = t1\nmode = incremental\n[source]\nplugin = synth\n"     \
	"[sink]\nplugin = "                                                    \
	"capture\npath = /dev/null\n"

/* Loads text as a job file; returns the errors (NULL if it loaded) and the
 * job in *out if wanted. */
static char *
load(const char *text, job **out)
{
	char *path = test_write_file(tmp, "job.ini", text);
	strbuf errors = {0};
	job *j = job_load(path, &errors);

	free(path);
	if (out)
		*out = j;
	else
		job_free(j);
	if (j) {
		sb_free(&errors);
		return NULL;
	}
	return sb_steal(&errors);
}

#define assert_error(text, needle)                                             \
	do {                                                                   \
		char *e_ = load(text, NULL);                                   \
		ck_assert_msg(e_ != NULL,                                      \
		              "loaded, expected an error with: %s", needle);   \
		ck_assert_msg(strstr(e_, needle) != NULL,                      \
		              "error \"%s\" lacks \"%s\"", e_, needle);        \
		free(e_);                                                      \
	} while (0)

START_TEST(good_file_and_values)
{
	job *j = NULL;
	char *e =
	    load("; a comment\n# another\n" GOOD_HEAD
	         "batch.interval = 250ms\nsink.buffer-flush.max-size = 64\n"
	         "sink.keyby.mode = pk\n[job]\nconcurrency = 4\nretry_interval "
	         "= 1day\n",
	         &j);
	ck_assert_msg(e == NULL, "%s", e);
	ck_assert_str_eq(optset_str(&j->job_opts, "name"), "t1");
	ck_assert_int_eq(optset_num(&j->job_opts, "concurrency"), 4);
	ck_assert_int_eq(optset_num(&j->job_opts, "retry_interval"), 86400000);
	ck_assert_int_eq(optset_num(&j->sink->opts, "batch.interval"), 250);
	ck_assert_int_eq(
	    optset_num(&j->sink->opts, "sink.buffer-flush.max-size"),
	    64LL * 1024 * 1024);
	ck_assert_int_eq(optset_num(&j->sink->opts, "batch.max_rows"), 50000);
	ck_assert_str_eq(optset_str(&j->sink->opts, "target.schema"),
	                 "#{source_db_name}");
	ck_assert_str_eq(optset_str(&j->job_opts, "mode"), "incremental");
	ck_assert_int_eq(j->nworkers, 4);
	job_free(j);
}
END_TEST

START_TEST(misspelled_key)
{
	assert_error(GOOD_HEAD "batch.max_row = 10\n",
	             "job.ini:9: [sink] unknown key \"batch.max_row\"; did you "
	             "mean \"batch.max_rows\"?");
	assert_error(GOOD_HEAD "[job]\nfoo_bar_baz_qux = 1\n",
	             "job.ini:10: [job] unknown key");
}
END_TEST

START_TEST(unknown_section)
{
	assert_error(GOOD_HEAD "[sinks]\nx = 1\n",
	             "job.ini:9: unknown section [sinks]");
	assert_error(GOOD_HEAD "[empty]\n",
	             "job.ini:9: unknown section [empty]");
	assert_error(GOOD_HEAD "[monitors]\nalarm.lag = 5m\n",
	             "job.ini:9: unknown section [monitors]");
}
END_TEST

START_TEST(monitor_section)
{
	assert_error(GOOD_HEAD "[monitor]\nmetrics.listen = localhost\n",
	             "job.ini:10: [monitor] metrics.listen = localhost: write "
	             "it as HOST:PORT");
	assert_error(GOOD_HEAD "[monitor]\nmetrics.listen = 127.0.0.1:99999\n",
	             "job.ini:10: [monitor] metrics.listen = 127.0.0.1:99999: "
	             "the port is a number from 0 to 65535");
	assert_error(GOOD_HEAD "[monitor]\nmetrics.listen = [::1:80\n",
	             "[ADDRESS]:PORT");
	assert_error(GOOD_HEAD "[monitor]\nalarm.command = /nonexistent/page "
	                       "--now\n",
	             "job.ini:10: [monitor] alarm.command: \"/nonexistent/page\" "
	             "is not an executable file; give its path");
	assert_error(GOOD_HEAD "[monitor]\nalarm.command = no-such-pager\n",
	             "is not an executable file in PATH");
	assert_error(GOOD_HEAD "[monitor]\nalarm.lag = soon\n",
	             "job.ini:10: [monitor] alarm.lag");
	assert_error(GOOD_HEAD "[monitor]\nalarm.retained_wal = 1kB\n",
	             "job.ini:10: [monitor] alarm.retained_wal");
	assert_error(GOOD_HEAD "[monitor]\nlog.intervals = 5s\n",
	             "did you mean \"log.interval\"?");
}
END_TEST

START_TEST(monitor_keys_load)
{
	job *j = NULL;
	char *e = load(GOOD_HEAD "[monitor]\nmetrics.listen = :9187\n"
	                         "alarm.lag = 90\nalarm.retained_wal = 2GB\n"
	                         "alarm.dirty_rows = 5\n"
	                         "alarm.command = sh -c true\n",
	               &j);
	ck_assert_msg(e == NULL, "%s", e ? e : "");
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(optset_num(&j->monitor_opts, "alarm.lag"), 90000);
	ck_assert_int_eq(optset_num(&j->monitor_opts, "alarm.retained_wal"),
	                 2147483648LL);
	ck_assert_int_eq(optset_num(&j->monitor_opts, "alarm.interval"),
	                 300000);
	ck_assert_int_eq(optset_num(&j->monitor_opts, "log.interval"), 60000);
	job_free(j);
}
END_TEST

START_TEST(repeated_key)
{
	assert_error(GOOD_HEAD "path = /tmp/x\n",
	             "job.ini:9: [sink] path is set twice (first at line 8)");
	/* the same section twice merges, but a key may still be set once */
	assert_error(GOOD_HEAD "[job]\nname = t2\n",
	             "job.ini:10: [job] name is set twice");
}
END_TEST

START_TEST(bad_types_units_ranges)
{
	assert_error(GOOD_HEAD "[job]\nconcurrency = many\n",
	             "job.ini:10: [job] concurrency = many: not an integer");
	assert_error(GOOD_HEAD "[job]\nconcurrency = 0\n",
	             "job.ini:10: [job] concurrency = 0: out of range: must be "
	             "between 1 and 64");
	assert_error(
	    GOOD_HEAD "batch.interval = 3 parsecs\n",
	    "job.ini:9: [sink] batch.interval = 3 parsecs: not a duration");
	assert_error(
	    GOOD_HEAD "sink.buffer-flush.max-size = lots\n",
	    "job.ini:9: [sink] sink.buffer-flush.max-size = lots: not a size");
	assert_error(
	    GOOD_HEAD "sink.keyby.enable = maybe\n",
	    "job.ini:9: [sink] sink.keyby.enable = maybe: not a boolean");
	assert_error(GOOD_HEAD "sink.keyby.mode = row\n",
	             "job.ini:9: [sink] sink.keyby.mode = row: must be one of: "
	             "table,pk");
	assert_error("[job]\nname = t\nmode = sometimes\n[source]\nplugin = "
	             "synth\n[sink]\nplugin = capture\npath = x\n",
	             "job.ini:3: [job] mode = sometimes");
	assert_error(GOOD_HEAD "[job]\nname = bad-name\n",
	             "[job] name is set twice");
	assert_error(
	    "[job]\nname = bad-name\n[source]\nplugin = synth\n[sink]\n"
	    "plugin = capture\npath = x\n",
	    "job.ini:2: [job] name = bad-name");
}
END_TEST

START_TEST(required_keys)
{
	assert_error("[job]\nname = t\n[source]\nplugin = "
	             "synth\n[sink]\nplugin = capture\n",
	             "job.ini:5: [sink] path is required");
	assert_error("[job]\nname = t\n[source]\nplugin = "
	             "synth\n[sink]\nplugin = capture\npath =\n",
	             "job.ini:7: [sink] path is required and may not be empty");
	assert_error("[job]\nmode = full\n[source]\nplugin = "
	             "synth\n[sink]\nplugin = capture\npath = x\n",
	             "job.ini:1: [job] name is required");
	assert_error("[job]\nname = t\nmode = full\n[source]\nplugin = "
	             "synth\n[sink]\nplugin = capture\npath = x\n",
	             "job.ini:3: [job] mode = full: [source:synth] cannot copy "
	             "tables");
	/* the default mode copies first: plugins without a full phase are
	 * refused, naming the default */
	assert_error("[job]\nname = t\n[source]\nplugin = "
	             "synth\n[sink]\nplugin = capture\npath = x\n",
	             "job.ini (the default): [job] mode = full+incremental: "
	             "[source:synth] cannot copy tables");
	assert_error(
	    "[source]\nplugin = synth\n[sink]\nplugin = capture\npath = x\n",
	    "section [job] is missing");
	assert_error("[job]\nname = t\n[sink]\nplugin = capture\npath = x\n",
	             "section [source] is missing");
}
END_TEST

START_TEST(environment)
{
	job *j = NULL;
	char *e;

	setenv("SYNCD_TEST_CAPTURE", "/tmp/from-env", 1);
	e = load("[job]\nname = t\nmode = incremental\n[source]\nplugin = "
	         "synth\n[sink]\nplugin = capture\n"
	         "path = ${SYNCD_TEST_CAPTURE}\ntarget.schema = "
	         "cost$$x_#{source_db_name}\n",
	         &j);
	ck_assert_msg(e == NULL, "%s", e);
	ck_assert_str_eq(optset_str(&j->sink->opts, "path"), "/tmp/from-env");
	ck_assert_str_eq(optset_str(&j->sink->opts, "target.schema"),
	                 "cost$x_#{source_db_name}");
	job_free(j);
	unsetenv("SYNCD_TEST_NOT_SET");
	assert_error(
	    GOOD_HEAD "reject_key = ${SYNCD_TEST_NOT_SET}\n",
	    "job.ini:9: environment variable SYNCD_TEST_NOT_SET is not set");
	assert_error(GOOD_HEAD "reject_key = ${OOPS\n",
	             "job.ini:9: unterminated ${");
}
END_TEST

START_TEST(crlf_bom_empty)
{
	job *j = NULL;
	char *e = load(
	    "\xEF\xBB\xBF[job]\r\nname = crlf\r\nmode = incremental\r\n"
	    "[source]\r\nplugin = synth\r\n"
	    "[sink]\r\nplugin = capture\r\npath = /dev/null\r\nreject_key =\r\n"
	    "batch.max_rows =   \r\n",
	    &j);
	ck_assert_msg(e == NULL, "%s", e);
	ck_assert_str_eq(optset_str(&j->job_opts, "name"), "crlf");
	ck_assert_str_eq(optset_str(&j->sink->opts, "path"), "/dev/null");
	ck_assert_ptr_null(optset_get(&j->sink->opts, "reject_key")->text);
	ck_assert_int_eq(optset_num(&j->sink->opts, "batch.max_rows"), 50000);
	job_free(j);
}
END_TEST

START_TEST(long_lines_and_continuations)
{
	char line[512], text[1024];
	job *j = NULL;
	char *e;

	/* 199 characters: accepted */
	memset(line, 0, sizeof line);
	strcpy(line, "reject_key = ");
	memset(line + strlen(line), 'k', 199 - strlen(line));
	snprintf(text, sizeof text, GOOD_HEAD "%s\n", line);
	e = load(text, &j);
	ck_assert_msg(e == NULL, "%s", e);
	ck_assert_int_eq(strlen(optset_str(&j->sink->opts, "reject_key")),
	                 199 - 13);
	job_free(j);

	/* 200 characters: refused, never cut */
	strcat(line, "k");
	snprintf(text, sizeof text, GOOD_HEAD "%s\n", line);
	assert_error(
	    text, "job.ini:9: line is 200 characters long, the limit is 199");

	/* a long value continued on indented lines */
	e = load(GOOD_HEAD "reject_key = host=a\n    port=5432\n\tdbname=b\n",
	         &j);
	ck_assert_msg(e == NULL, "%s", e);
	ck_assert_str_eq(optset_str(&j->sink->opts, "reject_key"),
	                 "host=a port=5432 dbname=b");
	job_free(j);
}
END_TEST

START_TEST(bad_bytes_and_syntax)
{
	assert_error(GOOD_HEAD "reject_key = caf\xe9\n",
	             "job.ini:9: line is not valid UTF-8");
	assert_error(GOOD_HEAD "this line has no equals sign\n",
	             "job.ini:9: syntax error");
	assert_error("orphan = 1\n" GOOD_HEAD,
	             "job.ini:1: key \"orphan\" is outside any section");
	ck_assert(load(GOOD_HEAD "reject_key = caf\xc3\xa9\n", NULL) == NULL);
	/* found by the fuzzer: two BOMs made the reader and inih disagree */
	assert_error("\xEF\xBB\xBF\xEF\xBB\xBF[job]\nname = x\n",
	             "job.ini:1: syntax error");
}
END_TEST

START_TEST(plugins_in_sections)
{
	assert_error("[job]\nname = t\n[source]\nplugin = "
	             "synth\n[sink]\nplugin = synth\n",
	             "job.ini:6: [sink] plugin synth");
	assert_error("[job]\nname = t\n[source]\nplugin = "
	             "synth\n[sink]\nplugin = synth\n",
	             "is a source plugin; [sink] needs a sink plugin");
	assert_error("[job]\nname = t\n[source]\nplugin = "
	             "nosuch\n[sink]\nplugin = capture\npath = x\n",
	             "job.ini:4: [source] plugin nosuch not found");
	assert_error(GOOD_HEAD "[transform.x]\ncolumn = y\n",
	             "job.ini:9: [transform.x] plugin is required");
	assert_error(GOOD_HEAD "[transform.bad-name]\nplugin = synth\n",
	             "job.ini:9: [transform.bad-name]: a transform's name");
	/* [sink] without plugin: write_mode picks dws_upsert, absent here */
	assert_error("[job]\nname = t\n[source]\nplugin = "
	             "synth\n[sink]\nwrite_mode = copy\n",
	             "plugin dws_copy not found");
}
END_TEST

START_TEST(target_patterns)
{
	assert_error(GOOD_HEAD "target.table = all_rows\n",
	             "job.ini:9: [sink] target.table = all_rows must contain "
	             "#{source_table_name}");
	assert_error(GOOD_HEAD "target.schema = #{source_database}\n",
	             "job.ini:9: [sink] target.schema: unknown variable");
}
END_TEST

START_TEST(logical_tables)
{
	job *j = NULL;
	const logical_table *lt;
	syncd_relation rel = {
	    .database = "shop_1", .schema = "public", .table = "Orders_2"};
	char *ts, *tt, *e;

	assert_error(GOOD_HEAD "[logical_table.o]\nsource_db_filter = ^s\n",
	             "job.ini:9: [logical_table.o] source_table_filter is "
	             "required");
	assert_error(GOOD_HEAD "[logical_table.o]\nsource_db_filter = "
	                       "a\nsource_table_filter = b\nsourse = c\n",
	             "job.ini:12: [logical_table.o] unknown key sourse");
	assert_error(GOOD_HEAD "[logical_table.o-1]\nsource_db_filter = "
	                       "a\nsource_table_filter = b\n",
	             "job.ini:9: [logical_table.o-1]: a logical table's name");
	assert_error(GOOD_HEAD "[logical_table.o]\nsource_db_filter = "
	                       "(a\nsource_table_filter = b\n",
	             "job.ini:10: [logical_table.o] source_db_filter = (a is "
	             "not a POSIX extended regular expression");
	assert_error(GOOD_HEAD "target.table = x_#{source_table_name}\n"
	                       "[logical_table.o]\nsource_db_filter = "
	                       "a\nsource_table_filter = b\n",
	             "job.ini:9: [sink] target.table does not apply");

	e = load(GOOD_HEAD "[logical_table.Orders_All]\nsource_db_filter = "
	                   "^shop_[0-9]+$\nsource_table_filter = "
	                   "^orders_[0-9]+$\n[logical_table.rest]\n"
	                   "source_db_filter = .\nsource_table_filter = .\n",
	         &j);
	ck_assert_msg(e == NULL, "%s", e);
	lt = router_logical_table(j, "shop_1", "orders_2");
	ck_assert_str_eq(lt->name, "Orders_All");
	ck_assert_ptr_eq(router_logical_table(j, "shop_1", NULL), lt);
	/* the first section that matches wins; filters are anchored as
	 * written */
	ck_assert_str_eq(router_logical_table(j, "shop_x", "orders_1")->name,
	                 "rest");
	ck_assert_str_eq(router_logical_table(j, "shop_1", "Orders_2")->name,
	                 "rest");
	ck_assert_ptr_null(router_logical_table(j, "", ""));
	/* routed to the logical table; target.schema as usual */
	rel.table = "orders_2";
	router_target(j, &rel, &ts, &tt);
	ck_assert_str_eq(ts, "shop_1");
	ck_assert_str_eq(tt, "Orders_All");
	free(ts);
	free(tt);
	job_free(j);
}
END_TEST

/* Tables go to workers by a hash of their names: the 256 names of four
 * letters from b, d, f, h (all even bytes) fell on one worker of two
 * before the hash was mixed; keys of one table likewise. */
START_TEST(tables_and_keys_spread_over_workers)
{
	const char letters[] = "bdfh";
	syncd_relation rel = {.size = sizeof rel};
	syncd_column col = {
	    .size = sizeof col, .name = "id", .flags = SYNCD_COL_KEY};
	char name[5] = {0}, key[8];
	syncd_value v = {.kind = SYNCD_VALUE_TEXT, .data = key};

	rel.target_schema = "public";
	for (int n = 2; n <= 4; n++) {
		int count[4] = {0}, keys[4] = {0};
		for (int i = 0; i < 256; i++) {
			for (int k = 0; k < 4; k++)
				name[k] = letters[(i >> (2 * k)) & 3];
			rel.target_table = name;
			count[router_worker(n, false, &rel, NULL)]++;
		}
		rel.target_table = "pgbench_accounts";
		rel.ncolumns = 1;
		rel.columns = &col;
		for (int i = 0; i < 1000; i++) {
			v.len =
			    (uint32_t) snprintf(key, sizeof key, "%d", 2 * i);
			keys[router_worker(n, true, &rel, &v)]++;
		}
		rel.ncolumns = 0;
		rel.columns = NULL;
		for (int w = 0; w < n; w++) {
			ck_assert_msg(count[w] > 256 / n / 2,
			              "%d workers: worker %d has %d of 256 "
			              "tables",
			              n, w, count[w]);
			ck_assert_msg(keys[w] > 1000 / n / 2,
			              "%d workers: worker %d has %d of 1000 "
			              "keys",
			              n, w, keys[w]);
		}
	}
}
END_TEST

Suite *
jobfile_suite(void)
{
	Suite *s = suite_create("jobfile");
	TCase *tc = tcase_create("read and validate");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, good_file_and_values);
	tcase_add_test(tc, misspelled_key);
	tcase_add_test(tc, unknown_section);
	tcase_add_test(tc, monitor_section);
	tcase_add_test(tc, monitor_keys_load);
	tcase_add_test(tc, repeated_key);
	tcase_add_test(tc, bad_types_units_ranges);
	tcase_add_test(tc, required_keys);
	tcase_add_test(tc, environment);
	tcase_add_test(tc, crlf_bom_empty);
	tcase_add_test(tc, long_lines_and_continuations);
	tcase_add_test(tc, bad_bytes_and_syntax);
	tcase_add_test(tc, plugins_in_sections);
	tcase_add_test(tc, target_patterns);
	tcase_add_test(tc, logical_tables);
	tcase_add_test(tc, tables_and_keys_spread_over_workers);
	suite_add_tcase(s, tc);
	return s;
}
