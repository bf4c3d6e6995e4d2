/*
 * tests/unit/test_metrics.c - the metrics registry and its exposition:
 * label escaping, names plugins report, histograms, the text format.
 */
#include "config.h"

#include "tests.h"

#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "util.h"

START_TEST(labels_are_escaped)
{
	char *l = metrics_labels("table", "we\"ird\\na\nme", "op", "insert",
	                         NULL);
	char *v;

	ck_assert_str_eq(l, "table=\"we\\\"ird\\\\na\\nme\",op=\"insert\"");
	v = metrics_label_value(l, "table");
	ck_assert_str_eq(v, "we\"ird\\na\nme");
	free(v);
	v = metrics_label_value(l, "op");
	ck_assert_str_eq(v, "insert");
	free(v);
	ck_assert_ptr_null(metrics_label_value(l, "nope"));
	free(l);
}
END_TEST

START_TEST(exposition_groups_families)
{
	strbuf sb = {0};
	char *a = metrics_labels("database", "d", "table", "public.b", "op",
	                         "insert", NULL);
	char *b = metrics_labels("database", "d", "table", "public.a", "op",
	                         "insert", NULL);
	const char *p, *q;
	double v;

	metrics_reset();
	metrics_add("changes_applied_total", a, 2);
	metrics_set("lag_seconds", "database=\"d\"", 1.5);
	metrics_add("changes_applied_total", b, 3);
	metrics_add("changes_applied_total", a, 1);
	ck_assert(metrics_get("changes_applied_total", a, &v));
	ck_assert(v == 3);
	ck_assert(metrics_sum("changes_applied_total") == 6);
	metrics_format(&sb, "j1");
	/* one HELP and TYPE per family, its samples together and sorted */
	p = strstr(sb.data, "# TYPE syncd_changes_applied_total counter\n");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_null(strstr(p + 1, "# TYPE syncd_changes_applied_total"));
	q = strstr(p, "syncd_changes_applied_total{job=\"j1\",database=\"d\","
	              "table=\"public.a\",op=\"insert\"} 3\n");
	ck_assert_ptr_nonnull(q);
	ck_assert_ptr_nonnull(
	    strstr(q, "table=\"public.b\",op=\"insert\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(sb.data, "# TYPE syncd_lag_seconds gauge\n"
	                                      "syncd_lag_seconds{job=\"j1\","
	                                      "database=\"d\"} 1.5\n"));
	sb_free(&sb);
	free(a);
	free(b);
	metrics_reset();
}
END_TEST

START_TEST(histograms_are_cumulative)
{
	strbuf sb = {0};

	metrics_reset();
	metrics_observe("batch_flush_duration_seconds", "worker=\"0\"", 0.003);
	metrics_observe("batch_flush_duration_seconds", "worker=\"0\"", 0.2);
	metrics_observe("batch_flush_duration_seconds", "worker=\"0\"", 99);
	metrics_format(&sb, "j");
	ck_assert_ptr_nonnull(strstr(
	    sb.data, "# TYPE syncd_batch_flush_duration_seconds histogram\n"));
	ck_assert_ptr_nonnull(
	    strstr(sb.data, "_bucket{job=\"j\",worker=\"0\",le=\"0.005\"} 1\n"));
	ck_assert_ptr_nonnull(
	    strstr(sb.data, "_bucket{job=\"j\",worker=\"0\",le=\"0.25\"} 2\n"));
	ck_assert_ptr_nonnull(
	    strstr(sb.data, "_bucket{job=\"j\",worker=\"0\",le=\"60\"} 2\n"));
	ck_assert_ptr_nonnull(
	    strstr(sb.data, "_bucket{job=\"j\",worker=\"0\",le=\"+Inf\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(
	    sb.data, "syncd_batch_flush_duration_seconds_count{job=\"j\","
	             "worker=\"0\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(
	    sb.data,
	    "syncd_batch_flush_duration_seconds_sum{job=\"j\",worker=\"0\"} "
	    "99.203"));
	sb_free(&sb);
	metrics_reset();
}
END_TEST

START_TEST(plugin_names_are_checked)
{
	static const char *bad[] = {
	    "",
	    "9lives",
	    "has space",
	    "x{",
	    "x{a=\"b\"",
	    "x{a=b}",
	    "x{a=\"b\"}trailing",
	    "x{job=\"mine\"}",
	    "x{__name__=\"y\"}",
	    "x{a=\"bad\\escape\"}",
	    "x{a=\"new\nline\"}",
	    "process_cpu_seconds_total",
	};
	strbuf sb = {0};
	double v;

	metrics_reset();
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(!metrics_plugin("sink:x", bad[i], 1, true),
		              "accepted \"%s\"", bad[i]);
	ck_assert(metrics_plugin("sink:x", "objects_total", 2, true));
	ck_assert(metrics_plugin("sink:x", "objects_total", 3, true));
	ck_assert(metrics_plugin("source:pg",
	                         "slot_retained_wal_bytes{database=\"a\\\"b\","
	                         "slot=\"s\"}",
	                         4096, false));
	ck_assert(metrics_plugin("sink:x", "empty{}", 1, false));
	ck_assert(metrics_get("objects_total", "plugin=\"sink:x\"", &v));
	ck_assert(v == 5);
	ck_assert(metrics_max("slot_retained_wal_bytes") == 4096);
	metrics_format(&sb, "j");
	ck_assert_ptr_nonnull(strstr(
	    sb.data, "# TYPE syncd_objects_total counter\n"
	             "syncd_objects_total{job=\"j\",plugin=\"sink:x\"} 5\n"));
	ck_assert_ptr_nonnull(strstr(
	    sb.data, "syncd_slot_retained_wal_bytes{job=\"j\",database=\"a\\\"b\","
	             "slot=\"s\",plugin=\"source:pg\"} 4096\n"));
	ck_assert_ptr_nonnull(
	    strstr(sb.data, "syncd_empty{job=\"j\",plugin=\"sink:x\"} 1\n"));
	sb_free(&sb);
	metrics_reset();
}
END_TEST

static int collected;

static void
collect(void *ctx)
{
	(void) ctx;
	metrics_set("queue_items", "worker=\"0\"", ++collected);
}

START_TEST(collectors_run_at_each_scrape)
{
	strbuf sb = {0};

	metrics_reset();
	metrics_collector_add(collect, NULL);
	metrics_format(&sb, "j");
	sb_free(&sb);
	metrics_format(&sb, "j");
	ck_assert_ptr_nonnull(
	    strstr(sb.data, "syncd_queue_items{job=\"j\",worker=\"0\"} 2\n"));
	metrics_collector_remove(collect, NULL);
	sb_free(&sb);
	metrics_format(&sb, "j");
	ck_assert_int_eq(collected, 2);
	sb_free(&sb);
	metrics_reset();
}
END_TEST

Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("registry");

	tcase_add_test(tc, labels_are_escaped);
	tcase_add_test(tc, exposition_groups_families);
	tcase_add_test(tc, histograms_are_cumulative);
	tcase_add_test(tc, plugin_names_are_checked);
	tcase_add_test(tc, collectors_run_at_each_scrape);
	suite_add_tcase(s, tc);
	return s;
}
