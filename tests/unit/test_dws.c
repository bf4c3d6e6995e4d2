/*
 * test_dws.c - the DWS sinks' pure parts: the SQL each dialect generates
 * (GaussDB(DWS) SQL is checked as text: the tests' destination is
 * PostgreSQL), the types automatic table creation writes, the reading of
 * sink.server.timezone, and folding of a batch's changes per key.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dws.h"
#include "tests.h"

/* target t(id, k2, v, big): key (id, k2) */
static dws_target *
test_target(void)
{
	static dws_col cols[4] = {
	    {.qname = "\"id\"",
	     .name = "id",
	     .generic = "pg_catalog.int4",
	     .key = true},
	    {.qname = "\"K2\"",
	     .name = "K2",
	     .generic = "pg_catalog.text",
	     .key = true},
	    {.qname = "\"v\"",
	     .name = "v",
	     .generic = "pg_catalog.text",
	     .param = "timestamp with time zone"},
	    {.qname = "\"big\"", .name = "big", .generic = "pg_catalog.text"},
	};
	static int keys[2] = {0, 1};
	static dws_target t = {.qtable = "\"s\".\"t\"",
	                       .label = "s.t",
	                       .ncols = 4,
	                       .cols = cols,
	                       .nkeys = 2,
	                       .keys = keys,
	                       .stage = "syncd_stage_1"};
	return &t;
}

START_TEST(upsert_sql)
{
	dws_buf b = {0};
	int all[] = {0, 1, 2, 3}, keys_only[] = {0, 1};

	dws_sql_upsert(&b, &dws_dialect_dws, test_target(), all, 4, 2);
	ck_assert_str_eq(
	    b.data,
	    "INSERT INTO \"s\".\"t\" (\"id\", \"K2\", \"v\", \"big\") VALUES "
	    "($1, $2, $3::timestamp with time zone, $4), ($5, $6, "
	    "$7::timestamp "
	    "with time zone, $8) ON CONFLICT (\"id\", \"K2\") DO UPDATE SET "
	    "\"v\" = EXCLUDED.\"v\", \"big\" = EXCLUDED.\"big\"");
	dws_buf_reset(&b);
	dws_sql_upsert(&b, &dws_dialect_pg, test_target(), keys_only, 2, 1);
	ck_assert_str_eq(b.data, "INSERT INTO \"s\".\"t\" (\"id\", \"K2\") "
	                         "VALUES ($1, $2) ON CONFLICT (\"id\", \"K2\") "
	                         "DO NOTHING");
	/* never a WITH clause, never a key (distribution column) SET */
	ck_assert_ptr_null(strstr(b.data, "WITH"));
	dws_buf_free(&b);
}
END_TEST

START_TEST(array_sql)
{
	dws_buf b = {0};
	int cols[] = {0, 1, 2};

	dws_sql_upsert_arrays(&b, test_target(), cols, 3);
	ck_assert_str_eq(
	    b.data,
	    "INSERT INTO \"s\".\"t\" (\"id\", \"K2\", \"v\") SELECT "
	    "u.c1::pg_catalog.int4, u.c2::pg_catalog.text, u.c3::timestamp "
	    "with "
	    "time zone FROM unnest($1::text[], $2::text[], $3::text[]) AS u "
	    "(c1, "
	    "c2, c3) ON CONFLICT (\"id\", \"K2\") DO UPDATE SET \"v\" = "
	    "EXCLUDED.\"v\"");
	dws_buf_reset(&b);
	dws_sql_delete_arrays(&b, test_target());
	ck_assert_str_eq(b.data,
	                 "DELETE FROM \"s\".\"t\" AS t USING "
	                 "unnest($1::text[], $2::text[]) AS v (c1, c2) WHERE "
	                 "t.\"id\" = v.c1::pg_catalog.int4 AND t.\"K2\" = "
	                 "v.c2::pg_catalog.text");
	ck_assert(dws_dialect_pg.arrays);
	ck_assert(!dws_dialect_dws.arrays);
	dws_buf_free(&b);
}
END_TEST

START_TEST(delete_sql)
{
	dws_buf b = {0};
	dws_sql_delete(&b, &dws_dialect_dws, test_target(), 2);
	ck_assert_str_eq(
	    b.data,
	    "DELETE FROM \"s\".\"t\" AS t USING (VALUES "
	    "($1::pg_catalog.int4, $2::pg_catalog.text), "
	    "($3::pg_catalog.int4, $4::pg_catalog.text)) AS v (\"id\", "
	    "\"K2\") WHERE t.\"id\" = v.\"id\" AND t.\"K2\" = v.\"K2\"");
	dws_buf_reset(&b);
	dws_sql_delete_stage(&b, &dws_dialect_dws, test_target());
	ck_assert_str_eq(
	    b.data, "DELETE FROM \"s\".\"t\" AS t USING syncd_stage_1 AS s "
	            "WHERE s.syncd_op <> 'w' AND t.\"id\" = s.\"id\" AND "
	            "t.\"K2\" = s.\"K2\"");
	dws_buf_free(&b);
}
END_TEST

START_TEST(merge_sql)
{
	dws_buf b = {0};
	int cols[] = {0, 1, 2};

	/* DWS: MERGE with one MATCHED and one NOT MATCHED branch, no DELETE,
	 * keys never SET */
	dws_sql_merge_stage(&b, &dws_dialect_dws, test_target(), cols, 3, 1);
	ck_assert_str_eq(
	    b.data,
	    "MERGE INTO \"s\".\"t\" AS t USING (SELECT \"id\", \"K2\", \"v\" "
	    "FROM syncd_stage_1 WHERE syncd_op <> 'd' AND syncd_set = 1) AS s "
	    "ON (t.\"id\" = s.\"id\" AND t.\"K2\" = s.\"K2\") WHEN MATCHED "
	    "THEN "
	    "UPDATE SET \"v\" = s.\"v\" WHEN NOT MATCHED THEN INSERT (\"id\", "
	    "\"K2\", \"v\") VALUES (s.\"id\", s.\"K2\", s.\"v\")");
	ck_assert_ptr_null(strstr(b.data, "DELETE"));
	dws_buf_reset(&b);
	dws_sql_merge_stage(&b, &dws_dialect_pg, test_target(), cols, 3, 0);
	ck_assert_str_eq(
	    b.data,
	    "INSERT INTO \"s\".\"t\" (\"id\", \"K2\", \"v\") SELECT "
	    "\"id\", \"K2\", \"v\" FROM syncd_stage_1 WHERE syncd_op <> "
	    "'d' AND syncd_set = 0 ON CONFLICT (\"id\", \"K2\") DO "
	    "UPDATE SET \"v\" = EXCLUDED.\"v\"");
	dws_buf_free(&b);
}
END_TEST

/* partial rows: an UPDATE of the existing rows, keys never SET, never an
 * insert (both dialects) */
START_TEST(update_sql)
{
	dws_buf b = {0};
	int cols[] = {0, 1, 2}, stage_cols[] = {0, 1, 3};

	dws_sql_update(&b, &dws_dialect_dws, test_target(), cols, 3, 2);
	ck_assert_str_eq(
	    b.data,
	    "UPDATE \"s\".\"t\" AS t SET \"v\" = v.c3 FROM (VALUES "
	    "($1::pg_catalog.int4, $2::pg_catalog.text, $3::timestamp with "
	    "time zone), ($4::pg_catalog.int4, $5::pg_catalog.text, "
	    "$6::timestamp with time zone)) AS v (c1, c2, c3) WHERE t.\"id\" "
	    "= v.c1 AND t.\"K2\" = v.c2");
	dws_buf_reset(&b);
	dws_sql_update(&b, &dws_dialect_pg, test_target(), cols, 3, 1);
	ck_assert_str_eq(
	    b.data,
	    "UPDATE \"s\".\"t\" AS t SET \"v\" = v.c3 FROM (VALUES "
	    "($1::pg_catalog.int4, $2::pg_catalog.text, $3::timestamp with "
	    "time zone)) AS v (c1, c2, c3) WHERE t.\"id\" = v.c1 AND "
	    "t.\"K2\" = v.c2");
	dws_buf_reset(&b);
	dws_sql_update_arrays(&b, test_target(), cols, 3);
	ck_assert_str_eq(
	    b.data,
	    "UPDATE \"s\".\"t\" AS t SET \"v\" = v.c3::timestamp with time "
	    "zone FROM unnest($1::text[], $2::text[], $3::text[]) AS v (c1, "
	    "c2, c3) WHERE t.\"id\" = v.c1::pg_catalog.int4 AND t.\"K2\" = "
	    "v.c2::pg_catalog.text");
	dws_buf_reset(&b);
	/* copy mode: from the staged rows of one column set */
	dws_sql_update_stage(&b, &dws_dialect_dws, test_target(), stage_cols, 3,
	                     2);
	ck_assert_str_eq(
	    b.data,
	    "UPDATE \"s\".\"t\" AS t SET \"big\" = s.\"big\" FROM "
	    "syncd_stage_1 AS s WHERE s.syncd_op <> 'd' AND s.syncd_set = 2 "
	    "AND t.\"id\" = s.\"id\" AND t.\"K2\" = s.\"K2\"");
	dws_buf_reset(&b);
	dws_sql_update_stage(&b, &dws_dialect_pg, test_target(), cols, 3, 0);
	ck_assert_str_eq(
	    b.data,
	    "UPDATE \"s\".\"t\" AS t SET \"v\" = s.\"v\" FROM "
	    "syncd_stage_1 AS s WHERE s.syncd_op <> 'd' AND s.syncd_set = 0 "
	    "AND t.\"id\" = s.\"id\" AND t.\"K2\" = s.\"K2\"");
	ck_assert_ptr_null(strstr(b.data, "INSERT"));
	dws_buf_free(&b);
}
END_TEST

/* the keys of partial rows that have no row at the destination */
START_TEST(missing_sql)
{
	dws_buf b = {0};

	dws_sql_missing(&b, &dws_dialect_dws, test_target(), 2);
	ck_assert_str_eq(
	    b.data,
	    "SELECT v.syncd_n FROM (VALUES (1, $1::pg_catalog.int4, "
	    "$2::pg_catalog.text), (2, $3::pg_catalog.int4, "
	    "$4::pg_catalog.text)) AS v (syncd_n, c1, c2) WHERE NOT EXISTS "
	    "(SELECT 1 FROM \"s\".\"t\" AS t WHERE t.\"id\" = v.c1 AND "
	    "t.\"K2\" = v.c2)");
	dws_buf_reset(&b);
	dws_sql_missing_arrays(&b, test_target());
	ck_assert_str_eq(
	    b.data,
	    "SELECT v.syncd_n FROM unnest($1::text[], $2::text[]) WITH "
	    "ORDINALITY AS v (c1, c2, syncd_n) WHERE NOT EXISTS (SELECT 1 "
	    "FROM \"s\".\"t\" AS t WHERE t.\"id\" = v.c1::pg_catalog.int4 "
	    "AND t.\"K2\" = v.c2::pg_catalog.text)");
	dws_buf_free(&b);
}
END_TEST

/* the full phase: every column of a staging table, by key or not */
START_TEST(full_stage_sql)
{
	dws_buf b = {0};

	dws_sql_full_stage(&b, &dws_dialect_pg, test_target(), "syncd_full_1",
	                   true);
	ck_assert_str_eq(
	    b.data,
	    "INSERT INTO \"s\".\"t\" (\"id\", \"K2\", \"v\", \"big\") "
	    "SELECT \"id\", \"K2\", \"v\", \"big\" FROM syncd_full_1 ON "
	    "CONFLICT (\"id\", \"K2\") DO UPDATE SET \"v\" = "
	    "EXCLUDED.\"v\", \"big\" = EXCLUDED.\"big\"");
	dws_buf_reset(&b);
	dws_sql_full_stage(&b, &dws_dialect_dws, test_target(), "syncd_full_1",
	                   true);
	ck_assert_str_eq(
	    b.data,
	    "MERGE INTO \"s\".\"t\" AS t USING (SELECT \"id\", \"K2\", "
	    "\"v\", \"big\" FROM syncd_full_1) AS s ON (t.\"id\" = "
	    "s.\"id\" AND t.\"K2\" = s.\"K2\") WHEN MATCHED THEN UPDATE SET "
	    "\"v\" = s.\"v\", \"big\" = s.\"big\" WHEN NOT MATCHED THEN "
	    "INSERT (\"id\", \"K2\", \"v\", \"big\") VALUES (s.\"id\", "
	    "s.\"K2\", s.\"v\", s.\"big\")");
	dws_buf_reset(&b);
	/* a direct copy through the stage (time zone conversion): plain */
	dws_sql_full_stage(&b, &dws_dialect_dws, test_target(), "syncd_full_1",
	                   false);
	ck_assert_str_eq(
	    b.data, "INSERT INTO \"s\".\"t\" (\"id\", \"K2\", \"v\", \"big\") "
	            "SELECT \"id\", \"K2\", \"v\", \"big\" FROM syncd_full_1");
	dws_buf_free(&b);
}
END_TEST

START_TEST(dialect_detection)
{
	ck_assert_ptr_eq(dws_dialect_for("PostgreSQL 9.2.4 (GaussDB 8.1.3 "
	                                 "build 1f1b2c3d) compiled at ..."),
	                 &dws_dialect_dws);
	ck_assert_ptr_eq(
	    dws_dialect_for("PostgreSQL 15.8 (Debian 15.8-0+deb12u1)"),
	    &dws_dialect_pg);
}
END_TEST

START_TEST(create_types)
{
	syncd_column c = {.size = sizeof(syncd_column),
	                  .name = "c",
	                  .type_name = "character varying(10)"};
	char *t;

	t = dws_create_type(&dws_dialect_dws, &c, NULL);
	ck_assert_str_eq(t, "character varying(40)");
	free(t);
	t = dws_create_type(&dws_dialect_pg, &c, NULL);
	ck_assert_str_eq(t, "character varying(10)");
	free(t);
	c.type_name = "character(3)";
	t = dws_create_type(&dws_dialect_dws, &c, NULL);
	ck_assert_str_eq(t, "character(12)");
	free(t);
	/* an enum or a domain: its base type, from the table's details */
	c.type_name = "public.mood";
	t = dws_create_type(&dws_dialect_dws, &c, "text");
	ck_assert_str_eq(t, "text");
	free(t);
	c.type_name = NULL;
	ck_assert_ptr_null(dws_create_type(&dws_dialect_pg, &c, NULL));
}
END_TEST

START_TEST(update_all)
{
	dws_buf b = {0};
	int cols[] = {2};
	int two[] = {2, 3};

	dws_sql_update_all(&b, test_target(), cols, 1);
	ck_assert_str_eq(b.data, "UPDATE \"s\".\"t\" SET \"v\" = "
	                         "$1::timestamp with time zone");
	dws_buf_reset(&b);
	/* no WHERE: every row */
	dws_sql_update_all(&b, test_target(), two, 2);
	ck_assert_str_eq(b.data,
	                 "UPDATE \"s\".\"t\" SET \"v\" = $1::timestamp with "
	                 "time zone, \"big\" = $2::pg_catalog.text");
	dws_buf_free(&b);
}
END_TEST

START_TEST(details_accessors)
{
	/* arrays with the stride of their first element's size: a newer
	 * minor's larger structures */
	struct big_col {
		syncd_column c;
		char newer[24];
	} cols[2] = {{.c = {.size = sizeof(struct big_col), .name = "a"}},
	             {.c = {.size = sizeof(struct big_col), .name = "b"}}};
	struct big_cd {
		syncd_column_details d;
		char newer[8];
	} cds[2] = {{.d = {.size = sizeof(struct big_cd)}},
	            {.d = {.size = sizeof(struct big_cd),
	                   .base_type_name = "text",
	                   .comment = "the b"}}};
	syncd_table_details det = {.size = sizeof det,
	                           .version = SYNCD_DETAILS_VERSION,
	                           .comment = "t",
	                           .columns = &cds[0].d};
	syncd_relation rel = {.size = sizeof rel,
	                      .ncolumns = 2,
	                      .columns = &cols[0].c,
	                      .details = &det};

	ck_assert_str_eq(dws_column(&rel, 1)->name, "b");
	ck_assert_ptr_eq(dws_details(&rel), &det);
	ck_assert_str_eq(dws_column_details(&rel, 1)->comment, "the b");
	ck_assert_ptr_null(dws_column_details(&rel, 0)->comment);
	ck_assert_ptr_null(dws_column_details(&rel, 2));
	det.version = 0; /* not a version this sink reads */
	ck_assert_ptr_null(dws_details(&rel));
	ck_assert_ptr_null(dws_column_details(&rel, 1));
}
END_TEST

START_TEST(timezones)
{
	static const struct {
		const char *in, *out;
	} ok[] = {
	    {"UTC+08:00", "SET TIME ZONE INTERVAL '+08:00' HOUR TO MINUTE"},
	    {"GMT-5", "SET TIME ZONE INTERVAL '-05:00' HOUR TO MINUTE"},
	    {"+0530", "SET TIME ZONE INTERVAL '+05:30' HOUR TO MINUTE"},
	    {"UTC", "SET TIME ZONE 'UTC'"},
	    {"Asia/Shanghai", "SET TIME ZONE 'Asia/Shanghai'"},
	    {"America/Argentina/Buenos_Aires",
	     "SET TIME ZONE 'America/Argentina/Buenos_Aires'"},
	};
	static const char *const bad[] = {
	    "UTC+",           "UTC+25:00",       "+08:61",
	    "Asia/Shang'hai", "x; drop table t", "UTC+08:00x"};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		char *err = NULL, *sql = dws_timezone_sql(ok[i].in, &err);
		ck_assert_msg(sql, "%s: %s", ok[i].in, err ? err : "");
		ck_assert_str_eq(sql, ok[i].out);
		free(sql);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *err = NULL, *sql = dws_timezone_sql(bad[i], &err);
		ck_assert_msg(!sql, "%s was accepted as %s", bad[i], sql);
		ck_assert_ptr_nonnull(strstr(err, "sink.server.timezone"));
		free(err);
	}
}
END_TEST

/* ---- folding ---------------------------------------------------------- */

#define TV(s)                                                                  \
	(syncd_value)                                                          \
	{                                                                      \
		SYNCD_VALUE_TEXT, (uint32_t) strlen(s), s                      \
	}
#define TU                                                                     \
	(syncd_value)                                                          \
	{                                                                      \
		SYNCD_VALUE_UNCHANGED, 0, NULL                                 \
	}

static dws_row *
test_find(dws_pending *p, const char *id)
{
	for (size_t i = 0; i < p->nrows; i++)
		if (p->rows[i].vals[0].len == strlen(id) &&
		    memcmp(p->rows[i].vals[0].data, id, strlen(id)) == 0)
			return &p->rows[i];
	return NULL;
}

START_TEST(fold_per_key)
{
	dws_target *t = test_target();
	dws_pending p = {.t = t};
	dws_arena a = {0};
	syncd_value i1[] = {TV("1"), TV("a"), TV("x"), TV("big1")};
	syncd_value u1[] = {TV("1"), TV("a"), TV("y"), TU};
	syncd_value u2[] = {TV("1"), TV("a"), TV("z"), TU};
	syncd_value k1[] = {TV("1"), TV("a"), {0}, {0}};
	syncd_value i1b[] = {TV("1"), TV("a"), TV("again"), TV("big2")};
	syncd_value u3old[] = {TV("3"), TV("c"), {0}, {0}};
	syncd_value u3[] = {TV("4"), TV("c"), TV("moved"), TU};
	syncd_value u5[] = {TV("5"), TV("e"), TV("only"), TU};
	syncd_event evs[] = {
	    {.type = SYNCD_EV_INSERT, .new_values = i1},
	    {.type = SYNCD_EV_UPDATE, .new_values = u1},
	    {.type = SYNCD_EV_UPDATE, .new_values = u2},
	    {.type = SYNCD_EV_DELETE, .old_values = k1, .old_is_key = true},
	    {.type = SYNCD_EV_INSERT, .new_values = i1b},
	    {.type = SYNCD_EV_UPDATE,
	     .old_values = u3old,
	     .old_is_key = true,
	     .new_values = u3},
	    {.type = SYNCD_EV_UPDATE, .new_values = u5},
	};
	dws_row *r;

	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		dws_fold(&p, &a, &evs[i]);
	/* keys 1, 3 (deleted by the move), 4, 5 */
	ck_assert_uint_eq(p.nrows, 4);
	r = test_find(&p, "1");
	ck_assert_int_eq(r->op, DWS_OP_WRITE);
	ck_assert(r->delete_first);
	ck_assert(!r->partial);
	ck_assert_uint_eq(r->vals[2].len, 5); /* "again" */
	r = test_find(&p, "3");
	ck_assert_int_eq(r->op, DWS_OP_DELETE);
	r = test_find(&p, "4");
	ck_assert_int_eq(r->op, DWS_OP_WRITE);
	ck_assert(r->partial);
	/* its big value is at the old key, at the destination */
	ck_assert_ptr_eq(r->origin, u3old);
	r = test_find(&p, "5");
	ck_assert(r->partial);
	ck_assert_ptr_null(r->origin);
	dws_pending_free(&p);
	dws_arena_reset(&a);
}
END_TEST

START_TEST(fold_merges_toast)
{
	dws_target *t = test_target();
	dws_pending p = {.t = t};
	dws_arena a = {0};
	syncd_value i1[] = {TV("1"), TV("a"), TV("x"), TV("big")};
	syncd_value u1[] = {TV("1"), TV("a"), TV("y"), TU};
	syncd_value old[] = {TV("1"), TV("a"), {0}, {0}};
	syncd_value moved[] = {TV("2"), TV("a"), TV("z"), TU};
	syncd_event evs[] = {
	    {.type = SYNCD_EV_INSERT, .new_values = i1},
	    {.type = SYNCD_EV_UPDATE, .new_values = u1},
	    {.type = SYNCD_EV_UPDATE,
	     .old_values = old,
	     .old_is_key = true,
	     .new_values = moved},
	};
	dws_row *r;

	for (size_t i = 0; i < 3; i++)
		dws_fold(&p, &a, &evs[i]);
	r = test_find(&p, "2");
	ck_assert(!r->partial);
	ck_assert_ptr_null(r->origin);
	ck_assert_uint_eq(r->vals[3].len, 3); /* "big" from the insert */
	ck_assert_int_eq(test_find(&p, "1")->op, DWS_OP_DELETE);
	dws_pending_free(&p);
	dws_arena_reset(&a);
}
END_TEST

START_TEST(fold_many_keys)
{
	dws_target *t = test_target();
	dws_pending p = {.t = t};
	dws_arena a = {0};
	enum { N = 5000 };
	static char ids[N][8];
	static syncd_value vals[N][4];
	static syncd_event evs[N];

	for (int i = 0; i < N; i++) {
		snprintf(ids[i], sizeof ids[i], "%d", i % 1000);
		vals[i][0] = TV(ids[i]);
		vals[i][1] = TV("k");
		vals[i][2] = TV("v");
		vals[i][3] = TV("b");
		evs[i] = (syncd_event){.type = SYNCD_EV_INSERT,
		                       .new_values = vals[i]};
		dws_fold(&p, &a, &evs[i]);
	}
	ck_assert_uint_eq(p.nrows, 1000);
	for (int i = N - 1000; i < N; i++)
		ck_assert_ptr_eq(test_find(&p, ids[i])->vals, vals[i]);
	dws_pending_free(&p);
	dws_arena_reset(&a);
}
END_TEST

Suite *
dws_suite(void)
{
	Suite *s = suite_create("dws");
	TCase *tc = tcase_create("dws");
	tcase_add_test(tc, upsert_sql);
	tcase_add_test(tc, delete_sql);
	tcase_add_test(tc, array_sql);
	tcase_add_test(tc, merge_sql);
	tcase_add_test(tc, update_sql);
	tcase_add_test(tc, missing_sql);
	tcase_add_test(tc, full_stage_sql);
	tcase_add_test(tc, dialect_detection);
	tcase_add_test(tc, create_types);
	tcase_add_test(tc, update_all);
	tcase_add_test(tc, details_accessors);
	tcase_add_test(tc, timezones);
	tcase_add_test(tc, fold_per_key);
	tcase_add_test(tc, fold_merges_toast);
	tcase_add_test(tc, fold_many_keys);
	suite_add_tcase(s, tc);
	return s;
}
