/*
 * tests/unit/test_transforms.c - the logical_delete and udf transforms
 * through their real entry functions and operations (the built modules,
 * opened from $PLUGIN_DIR), on a mock host (mock_host.h): what apply()
 * emits for each kind of event, the relations they make (sizes, strides,
 * details), and their refusals with the messages users see.
 */
#include "config.h"

#include "tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_host.h"


/* ---- what a transform emits --------------------------------------------- */

#define GOT_MAX  32
#define GOT_COLS 16

typedef struct got_event {
	uint32_t size;
	syncd_event_type type;
	syncd_lsn lsn;
	int64_t commit_time;
	uint32_t xid, stream;
	const syncd_event *same; /* the event itself, to see pass-through */
	const syncd_relation *rel;
	uint32_t nrels;
	bool has_new, has_old, old_is_key;
	/* values as text; ~N NULL, ~U unchanged */
	char *newv[GOT_COLS], *oldv[GOT_COLS];
} got_event;

typedef struct got {
	got_event ev[GOT_MAX];
	size_t n;
} got;

static char *
got_value(const syncd_value *v)
{
	switch (v->kind) {
	case SYNCD_VALUE_NULL: return strdup("~N");
	case SYNCD_VALUE_UNCHANGED: return strdup("~U");
	default: return strndup(v->data, v->len);
	}
}

static syncd_status
got_emit(void *ctx, const syncd_event *ev)
{
	got *g = ctx;
	got_event *e;
	uint32_t n = ev->rel ? ev->rel->ncolumns : 0;

	ck_assert_uint_lt(g->n, GOT_MAX);
	ck_assert_uint_le(n, GOT_COLS);
	e = &g->ev[g->n++];
	memset(e, 0, sizeof *e);
	e->size = ev->size;
	e->type = ev->type;
	e->lsn = ev->lsn;
	e->commit_time = ev->commit_time;
	e->xid = ev->xid;
	e->stream = ev->stream;
	e->same = ev;
	e->rel = ev->rel;
	e->nrels = ev->nrels;
	e->old_is_key = ev->old_is_key;
	e->has_new = ev->new_values != NULL;
	e->has_old = ev->old_values != NULL;
	for (uint32_t i = 0; i < n && ev->new_values; i++)
		e->newv[i] = got_value(&ev->new_values[i]);
	for (uint32_t i = 0; i < n && ev->old_values; i++)
		e->oldv[i] = got_value(&ev->old_values[i]);
	return SYNCD_OK;
}

static void
got_clear(got *g)
{
	for (size_t k = 0; k < g->n; k++)
		for (int i = 0; i < GOT_COLS; i++) {
			free(g->ev[k].newv[i]);
			free(g->ev[k].oldv[i]);
		}
	memset(g, 0, sizeof *g);
}

/* Values of e (which: 'n' new, 'o' old) joined with commas. */
static char *
got_row(const got_event *e, char which)
{
	static char buf[1024];
	char *const *v = which == 'n' ? e->newv : e->oldv;
	size_t len = 0;

	buf[0] = '\0';
	for (int i = 0; i < GOT_COLS && v[i]; i++)
		len += (size_t) snprintf(buf + len, sizeof buf - len, "%s%s",
		                         i ? "," : "", v[i]);
	return buf;
}

/* ---- the source's tables ------------------------------------------------ */

static const syncd_column t_cols[] = {
    {.size = sizeof(syncd_column),
     .name = "id",
     .type_oid = 23,
     .type_name = "integer",
     .typmod = -1,
     .flags = SYNCD_COL_KEY | SYNCD_COL_NOT_NULL,
     .key_position = 1},
    {.size = sizeof(syncd_column),
     .name = "v",
     .type_oid = 25,
     .type_name = "text",
     .typmod = -1},
    {.size = sizeof(syncd_column),
     .name = "n",
     .type_oid = 23,
     .type_name = "integer",
     .typmod = -1}};

static const syncd_relation t_rel = {.size = sizeof(syncd_relation),
                                     .id = 1001,
                                     .database = "shop",
                                     .schema = "public",
                                     .table = "t",
                                     .ncolumns = 3,
                                     .columns = t_cols,
                                     .replica_identity = 'd',
                                     .target_schema = "dst",
                                     .target_table = "t_all"};

static const syncd_relation u_rel = {.size = sizeof(syncd_relation),
                                     .id = 1002,
                                     .database = "shop",
                                     .schema = "public",
                                     .table = "u",
                                     .ncolumns = 3,
                                     .columns = t_cols,
                                     .replica_identity = 'd',
                                     .target_schema = "dst",
                                     .target_table = "u"};

/* A column as a newer minor would build it (a field appended): the array's
 * stride is its first element's size. */
typedef struct wide_column {
	syncd_column c;
	uint64_t newer;
} wide_column;

static const wide_column w_cols[] = {
    {.c = {.size = sizeof(wide_column),
           .name = "id",
           .type_oid = 23,
           .type_name = "integer",
           .typmod = -1,
           .flags = SYNCD_COL_KEY | SYNCD_COL_NOT_NULL,
           .key_position = 1},
     .newer = 7},
    {.c = {.size = sizeof(wide_column),
           .name = "status",
           .type_oid = 90001,
           .type_name = "mood",
           .typmod = -1},
     .newer = 7}};

static const uint32_t w_index_cols[] = {1};
static const syncd_index w_indexes[] = {{.size = sizeof(syncd_index),
                                         .name = "w_status",
                                         .ncolumns = 1,
                                         .columns = w_index_cols}};
static const syncd_column_details w_col_details[] = {
    {.size = sizeof(syncd_column_details), .comment = "the key"},
    {.size = sizeof(syncd_column_details),
     .base_type_name = "text",
     .comment = "how it feels"}};
static const syncd_table_details w_details = {.size =
                                                  sizeof(syncd_table_details),
                                              .version = SYNCD_DETAILS_VERSION,
                                              .comment = "a table with details",
                                              .nindexes = 1,
                                              .indexes = w_indexes,
                                              .columns = w_col_details};

static const syncd_relation w_rel = {.size = sizeof(syncd_relation),
                                     .id = 1003,
                                     .database = "shop",
                                     .schema = "public",
                                     .table = "w",
                                     .ncolumns = 2,
                                     .columns = &w_cols[0].c,
                                     .replica_identity = 'd',
                                     .target_schema = "dst",
                                     .target_table = "w",
                                     .details = &w_details};

static syncd_value
txt(const char *s)
{
	return (syncd_value){SYNCD_VALUE_TEXT, (uint32_t) strlen(s), s};
}

static const syncd_value null_v = {SYNCD_VALUE_NULL, 0, NULL};
static const syncd_value unchanged_v = {SYNCD_VALUE_UNCHANGED, 0, NULL};

static syncd_event
change(syncd_event_type type, const syncd_relation *rel,
       const syncd_value *oldv, const syncd_value *newv)
{
	return (syncd_event){.size = sizeof(syncd_event),
	                     .type = type,
	                     .lsn = 0x16B3748,
	                     .commit_time = 1764000000000000LL,
	                     .xid = 735,
	                     .stream = 0,
	                     .rel = rel,
	                     .old_values = oldv,
	                     .new_values = newv,
	                     .old_is_key = oldv != NULL};
}

static const syncd_column *
col(const syncd_relation *rel, uint32_t i)
{
	return (
	    const syncd_column *) (const void *) ((const char *) rel->columns +
	                                          (size_t) i *
	                                              rel->columns[0].size);
}

/* ---- a transform on a mock host ----------------------------------------- */

typedef struct tf {
	void *handle;
	const syncd_plugin *d;
	mock_host *m;
	void *state;
	got g;
} tf;

/* Opens plugin `name`, fills its options from kv, creates an instance and
 * returns what create() said. */
static syncd_status
tf_open(tf *t, const char *name, const char *const *kv)
{
	const char *err = NULL;

	memset(t, 0, sizeof *t);
	t->d = mock_plugin_open(test_env("PLUGIN_DIR"), name, &t->handle, &err);
	ck_assert_msg(t->d != NULL, "plugin %s: %s", name, err);
	ck_assert_int_eq(t->d->kind, SYNCD_KIND_TRANSFORM);
	ck_assert_uint_ge(t->d->ops.transform->size,
	                  SYNCD_TRANSFORM_OPS_SIZE_1_0);
	t->m = mock_host_new(SYNCD_KIND_TRANSFORM, NULL);
	mock_host_stream(t->m, 0, "shop", "db1.example");
	mock_options(t->m, t->d, kv);
	return t->d->ops.transform->create(&t->m->host, &t->state);
}

static syncd_status
tf_apply(tf *t, const syncd_event *ev)
{
	return t->d->ops.transform->apply(t->state, ev, got_emit, &t->g);
}

static void
tf_close(tf *t)
{
	got_clear(&t->g);
	if (t->state)
		t->d->ops.transform->destroy(t->state);
	mock_host_free(t->m);
	mock_plugin_close(t->handle);
}

/* ---- logical_delete ------------------------------------------------------ */

static const char *const ld_defaults[] = {NULL};

START_TEST(ld_relation_gets_the_column)
{
	tf t;
	syncd_event rel_ev = change(SYNCD_EV_RELATION, &t_rel, NULL, NULL);
	const syncd_relation *r;
	const syncd_column *c;

	ck_assert_int_eq(tf_open(&t, "logical_delete", ld_defaults), SYNCD_OK);
	ck_assert_int_eq(tf_apply(&t, &rel_ev), SYNCD_OK);
	ck_assert_uint_eq(t.g.n, 1);
	ck_assert_int_eq(t.g.ev[0].type, SYNCD_EV_RELATION);
	ck_assert_uint_eq(t.g.ev[0].size, sizeof(syncd_event));
	r = t.g.ev[0].rel;
	ck_assert_ptr_ne(r, &t_rel);
	ck_assert_uint_eq(r->size, sizeof(syncd_relation));
	ck_assert_uint_eq(r->id, t_rel.id);
	ck_assert_str_eq(r->target_schema, "dst");
	ck_assert_str_eq(r->target_table, "t_all");
	ck_assert_uint_eq(r->ncolumns, 4);
	ck_assert_str_eq(col(r, 2)->name, "n");
	c = col(r, 3);
	ck_assert_uint_eq(c->size, sizeof(syncd_column));
	ck_assert_str_eq(c->name, "logical_is_deleted");
	ck_assert_str_eq(c->type_name, "boolean");
	ck_assert_uint_eq(c->type_oid, 16);
	ck_assert_str_eq(c->default_value, "false");
	ck_assert_uint_eq(c->flags, 0);
	ck_assert_ptr_null(r->details); /* the source's had none */
	tf_close(&t);
}
END_TEST

START_TEST(ld_changes)
{
	tf t;
	const char *const kv[] = {"column", "gone", NULL};
	syncd_value row[3] = {txt("1"), txt("a"), txt("2")};
	syncd_value key[3] = {txt("1"), null_v, null_v};
	syncd_event ins = change(SYNCD_EV_INSERT, &t_rel, NULL, row);
	syncd_event upd = change(SYNCD_EV_UPDATE, &t_rel, key, row);
	syncd_event del = change(SYNCD_EV_DELETE, &t_rel, key, NULL);
	syncd_event begin = {.size = sizeof(syncd_event),
	                     .type = SYNCD_EV_BEGIN,
	                     .lsn = 0x16B3748};

	ck_assert_int_eq(tf_open(&t, "logical_delete", kv), SYNCD_OK);
	ck_assert_int_eq(tf_apply(&t, &begin), SYNCD_OK);
	/* a change before its relation: the shape is announced first */
	ck_assert_int_eq(tf_apply(&t, &ins), SYNCD_OK);
	ck_assert_int_eq(tf_apply(&t, &upd), SYNCD_OK);
	ck_assert_int_eq(tf_apply(&t, &del), SYNCD_OK);
	ck_assert_uint_eq(t.g.n, 5);
	ck_assert_ptr_eq(t.g.ev[0].same, &begin); /* passed on as it is */
	ck_assert_int_eq(t.g.ev[1].type, SYNCD_EV_RELATION);
	ck_assert_uint_eq(t.g.ev[1].lsn, ins.lsn);
	ck_assert_str_eq(col(t.g.ev[1].rel, 3)->name, "gone");
	/* INSERT and UPDATE revive the row */
	ck_assert_int_eq(t.g.ev[2].type, SYNCD_EV_INSERT);
	ck_assert_ptr_eq(t.g.ev[2].rel, t.g.ev[1].rel);
	ck_assert_str_eq(got_row(&t.g.ev[2], 'n'), "1,a,2,false");
	ck_assert(!t.g.ev[2].has_old);
	ck_assert_int_eq(t.g.ev[3].type, SYNCD_EV_UPDATE);
	ck_assert_str_eq(got_row(&t.g.ev[3], 'n'), "1,a,2,false");
	ck_assert_str_eq(got_row(&t.g.ev[3], 'o'), "1,~N,~N,~N");
	ck_assert(t.g.ev[3].old_is_key);
	/* DELETE: an UPDATE of the key that marks the row and keeps the
	 * rest as the destination has it */
	ck_assert_int_eq(t.g.ev[4].type, SYNCD_EV_UPDATE);
	ck_assert_str_eq(got_row(&t.g.ev[4], 'n'), "1,~U,~U,true");
	ck_assert(!t.g.ev[4].has_old);
	ck_assert(!t.g.ev[4].old_is_key);
	ck_assert_uint_eq(t.g.ev[4].xid, 735);
	tf_close(&t);
}
END_TEST

START_TEST(ld_truncate_marks_every_row)
{
	tf t;
	const syncd_relation *rels[] = {&t_rel, &u_rel};
	syncd_event rel_ev = change(SYNCD_EV_RELATION, &t_rel, NULL, NULL);
	syncd_event trunc = {.size = sizeof(syncd_event),
	                     .type = SYNCD_EV_TRUNCATE,
	                     .lsn = 0x2000100,
	                     .commit_time = 1764000000123456LL,
	                     .xid = 900,
	                     .stream = 3,
	                     .rel = rels[0],
	                     .nrels = 2,
	                     .rels = rels,
	                     .truncate_flags = SYNCD_TRUNCATE_CASCADE};

	ck_assert_int_eq(tf_open(&t, "logical_delete", ld_defaults), SYNCD_OK);
	ck_assert_int_eq(tf_apply(&t, &rel_ev), SYNCD_OK);
	got_clear(&t.g);
	ck_assert_int_eq(tf_apply(&t, &trunc), SYNCD_OK);
	/* t (known): its UPDATE_ALL; u (new): its relation, its UPDATE_ALL;
	 * no TRUNCATE passed on */
	ck_assert_uint_eq(t.g.n, 3);
	ck_assert_int_eq(t.g.ev[0].type, SYNCD_EV_UPDATE_ALL);
	ck_assert_int_eq(t.g.ev[1].type, SYNCD_EV_RELATION);
	ck_assert_int_eq(t.g.ev[2].type, SYNCD_EV_UPDATE_ALL);
	ck_assert_ptr_eq(t.g.ev[2].rel, t.g.ev[1].rel);
	ck_assert_str_eq(t.g.ev[0].rel->table, "t");
	ck_assert_str_eq(t.g.ev[2].rel->table, "u");
	for (size_t i = 0; i < 3; i += 2) {
		const got_event *e = &t.g.ev[i];
		ck_assert_uint_eq(e->size, sizeof(syncd_event));
		ck_assert_uint_eq(e->rel->ncolumns, 4);
		ck_assert_str_eq(got_row(e, 'n'), "~U,~U,~U,true");
		ck_assert(!e->has_old);
		ck_assert_uint_eq(e->nrels, 0);
		ck_assert_uint_eq(e->lsn, trunc.lsn);
		ck_assert(e->commit_time == trunc.commit_time);
		ck_assert_uint_eq(e->xid, trunc.xid);
		ck_assert_uint_eq(e->stream, trunc.stream);
	}
	tf_close(&t);
}
END_TEST

START_TEST(ld_details_and_strides)
{
	tf t;
	syncd_event rel_ev = change(SYNCD_EV_RELATION, &w_rel, NULL, NULL);
	syncd_value row[2] = {txt("7"), txt("happy")};
	syncd_value key[2] = {txt("7"), null_v};
	syncd_event del = change(SYNCD_EV_DELETE, &w_rel, key, NULL);
	syncd_event ins = change(SYNCD_EV_INSERT, &w_rel, NULL, row);
	const syncd_relation *r;
	const syncd_table_details *d;

	ck_assert_int_eq(tf_open(&t, "logical_delete", ld_defaults), SYNCD_OK);
	ck_assert_int_eq(tf_apply(&t, &rel_ev), SYNCD_OK);
	ck_assert_int_eq(tf_apply(&t, &ins), SYNCD_OK);
	ck_assert_int_eq(tf_apply(&t, &del), SYNCD_OK);
	ck_assert_uint_eq(t.g.n, 3);
	r = t.g.ev[0].rel;
	/* the copy has the plugin's stride, read from the wide source */
	ck_assert_uint_eq(r->columns[0].size, sizeof(syncd_column));
	ck_assert_str_eq(r->columns[1].name, "status");
	ck_assert_str_eq(r->columns[1].type_name, "mood");
	ck_assert_str_eq(r->columns[2].name, "logical_is_deleted");
	ck_assert_str_eq(got_row(&t.g.ev[1], 'n'), "7,happy,false");
	/* the key is found with the source's stride */
	ck_assert_str_eq(got_row(&t.g.ev[2], 'n'), "7,~U,true");
	d = r->details;
	ck_assert_ptr_nonnull(d);
	ck_assert_ptr_ne(d, &w_details);
	ck_assert_uint_eq(d->size, sizeof(syncd_table_details));
	ck_assert_uint_eq(d->version, SYNCD_DETAILS_VERSION);
	ck_assert_str_eq(d->comment, "a table with details");
	ck_assert_uint_eq(d->nindexes, 1);
	ck_assert_str_eq(d->indexes[0].name, "w_status");
	ck_assert_uint_eq(d->indexes[0].ncolumns, 1);
	ck_assert_uint_eq(d->indexes[0].columns[0], 1);
	/* one column detail per column, the added one's comment its own */
	ck_assert_ptr_nonnull(d->columns);
	ck_assert_str_eq(d->columns[0].comment, "the key");
	ck_assert_str_eq(d->columns[1].base_type_name, "text");
	ck_assert_str_eq(d->columns[1].comment, "how it feels");
	ck_assert_uint_eq(d->columns[2].size, sizeof(syncd_column_details));
	ck_assert_ptr_null(d->columns[2].base_type_name);
	ck_assert_str_eq(d->columns[2].comment,
	                 "deleted at the source (logical_delete)");
	tf_close(&t);
}
END_TEST

START_TEST(ld_shape_change)
{
	tf t;
	syncd_column cols4[4];
	syncd_relation wider = t_rel;
	syncd_event e1 = change(SYNCD_EV_RELATION, &t_rel, NULL, NULL);
	syncd_event e2 = change(SYNCD_EV_RELATION, &wider, NULL, NULL);

	memcpy(cols4, t_cols, sizeof t_cols);
	cols4[3] = t_cols[1];
	cols4[3].name = "added";
	wider.columns = cols4;
	wider.ncolumns = 4;
	ck_assert_int_eq(tf_open(&t, "logical_delete", ld_defaults), SYNCD_OK);
	ck_assert_int_eq(tf_apply(&t, &e1), SYNCD_OK);
	ck_assert_int_eq(tf_apply(&t, &e2), SYNCD_OK);
	ck_assert_uint_eq(t.g.n, 2);
	ck_assert_uint_eq(t.g.ev[1].rel->ncolumns, 5);
	ck_assert_str_eq(col(t.g.ev[1].rel, 3)->name, "added");
	ck_assert_str_eq(col(t.g.ev[1].rel, 4)->name, "logical_is_deleted");
	tf_close(&t);
}
END_TEST

START_TEST(ld_refusals)
{
	tf t;
	const char *const bad[] = {"column", "a\"b", NULL};
	const char *const clash[] = {"column", "n", NULL};
	syncd_event rel_ev = change(SYNCD_EV_RELATION, &t_rel, NULL, NULL);

	ck_assert_int_eq(tf_open(&t, "logical_delete", bad), SYNCD_FATAL);
	ck_assert_str_eq(t.m->error, "column = a\"b: give a column name of at "
	                             "most 63 bytes, without quotes");
	tf_close(&t);

	ck_assert_int_eq(tf_open(&t, "logical_delete", clash), SYNCD_OK);
	ck_assert_int_eq(tf_apply(&t, &rel_ev), SYNCD_FATAL);
	ck_assert_uint_eq(t.g.n, 0);
	ck_assert_str_eq(t.m->error,
	                 "source table public.t already has a column n; set "
	                 "[transform] column (or [sink] "
	                 "logical.delete.column) to another name");
	tf_close(&t);
}
END_TEST

/* ---- udf ----------------------------------------------------------------- */

#ifdef SYNCD_TEST_UDF

static const char *const udf_kv[] = {
    "field.origin",
    "varchar(200) : concat(source.host, '|', source.database, '|', "
    "source.schema, '.', source.table, '|', target.schema, '.', "
    "target.table)",
    "field.head",
    "text : substring(#v, 0, 2)",
    "key",
    "origin",
    NULL};

START_TEST(udf_fields)
{
	tf t;
	syncd_value row[3] = {txt("1"), txt("abc"), txt("2")};
	syncd_value toast[3] = {txt("1"), unchanged_v, txt("3")};
	syncd_value key[3] = {txt("1"), null_v, null_v};
	syncd_event rel_ev = change(SYNCD_EV_RELATION, &t_rel, NULL, NULL);
	syncd_event ins = change(SYNCD_EV_INSERT, &t_rel, NULL, row);
	syncd_event upd = change(SYNCD_EV_UPDATE, &t_rel, NULL, toast);
	syncd_event del = change(SYNCD_EV_DELETE, &t_rel, key, NULL);
	const syncd_relation *r;

	ck_assert_int_eq(tf_open(&t, "udf", udf_kv), SYNCD_OK);
	ck_assert_int_eq(tf_apply(&t, &rel_ev), SYNCD_OK);
	ck_assert_int_eq(tf_apply(&t, &ins), SYNCD_OK);
	ck_assert_int_eq(tf_apply(&t, &upd), SYNCD_OK);
	ck_assert_int_eq(tf_apply(&t, &del), SYNCD_OK);
	ck_assert_uint_eq(t.g.n, 4);
	r = t.g.ev[0].rel;
	ck_assert_uint_eq(r->size, sizeof(syncd_relation));
	ck_assert_uint_eq(r->ncolumns, 5);
	ck_assert_str_eq(col(r, 3)->name, "origin");
	ck_assert_str_eq(col(r, 3)->type_name, "varchar(200)");
	ck_assert_uint_eq(col(r, 3)->flags, SYNCD_COL_KEY | SYNCD_COL_NOT_NULL);
	ck_assert_uint_eq(col(r, 3)->size, sizeof(syncd_column));
	ck_assert_str_eq(col(r, 4)->name, "head");
	ck_assert_uint_eq(col(r, 4)->flags, 0);
	/* source.host from the stream's server; targets from the relation */
	ck_assert_str_eq(got_row(&t.g.ev[1], 'n'),
	                 "1,abc,2,db1.example|shop|public.t|dst.t_all,ab");
	/* a field that reads an unchanged value is left unchanged */
	ck_assert_str_eq(got_row(&t.g.ev[2], 'n'),
	                 "1,~U,3,db1.example|shop|public.t|dst.t_all,~U");
	/* a DELETE: key fields from the key, the others NULL */
	ck_assert_int_eq(t.g.ev[3].type, SYNCD_EV_DELETE);
	ck_assert_str_eq(got_row(&t.g.ev[3], 'o'),
	                 "1,~N,~N,db1.example|shop|public.t|dst.t_all,~N");
	tf_close(&t);
}
END_TEST

START_TEST(udf_stream_without_server)
{
	tf t;
	syncd_value row[3] = {txt("1"), txt("abc"), txt("2")};
	syncd_event ins = change(SYNCD_EV_INSERT, &u_rel, NULL, row);
	syncd_value marks[4] = {unchanged_v, unchanged_v, unchanged_v,
	                        txt("true")};
	syncd_event all = change(SYNCD_EV_UPDATE_ALL, &u_rel, NULL, marks);

	ck_assert_int_eq(tf_open(&t, "udf", udf_kv), SYNCD_OK);
	/* stream 2 was never described: source.host is NULL (concat skips
	 * it) */
	ins.stream = 2;
	ck_assert_int_eq(tf_apply(&t, &ins), SYNCD_OK);
	ck_assert_uint_eq(t.g.n, 2);
	ck_assert_int_eq(t.g.ev[0].type, SYNCD_EV_RELATION);
	ck_assert_str_eq(got_row(&t.g.ev[1], 'n'),
	                 "1,abc,2,|shop|public.u|dst.u,ab");
	/* UPDATE_ALL (what logical_delete makes of a TRUNCATE): every row's
	 * fields stay as they are */
	got_clear(&t.g);
	ck_assert_int_eq(tf_apply(&t, &all), SYNCD_OK);
	ck_assert_uint_eq(t.g.n, 1);
	ck_assert_int_eq(t.g.ev[0].type, SYNCD_EV_UPDATE_ALL);
	ck_assert_str_eq(got_row(&t.g.ev[0], 'n'), "~U,~U,~U,~U,~U");
	tf_close(&t);
}
END_TEST

START_TEST(udf_tables_not_matched)
{
	tf t;
	const char *const kv[] = {"tables", "other.*, x_*", "field.f",
	                          "text : 'x'", NULL};
	syncd_value row[3] = {txt("1"), txt("abc"), txt("2")};
	syncd_event ins = change(SYNCD_EV_INSERT, &t_rel, NULL, row);

	ck_assert_int_eq(tf_open(&t, "udf", kv), SYNCD_OK);
	ck_assert_int_eq(tf_apply(&t, &ins), SYNCD_OK);
	ck_assert_uint_eq(t.g.n, 1);
	ck_assert_ptr_eq(t.g.ev[0].same, &ins); /* passed on as it is */
	ck_assert_ptr_eq(t.g.ev[0].rel, &t_rel);
	tf_close(&t);
}
END_TEST

START_TEST(udf_bad_row_is_rejected)
{
	tf t;
	const char *const kv[] = {"field.d", "text : date_format(#v, 'yyyy')",
	                          NULL};
	syncd_value row[3] = {txt("1"), txt("abc"), txt("2")};
	syncd_event ins = change(SYNCD_EV_INSERT, &t_rel, NULL, row);

	ck_assert_int_eq(tf_open(&t, "udf", kv), SYNCD_OK);
	ck_assert_int_eq(tf_apply(&t, &ins), SYNCD_REJECT);
	ck_assert_str_eq(t.m->sqlstate, "22000");
	ck_assert_str_eq(t.m->error,
	                 "field.d = date_format(#v, 'yyyy'): date_format: "
	                 "'abc' is not a date or timestamp");
	tf_close(&t);
}
END_TEST

START_TEST(udf_refusals)
{
	tf t;
	const char *const key_reads_value[] = {"field.k", "text : #v", "key",
	                                       "k", NULL};
	const char *const missing[] = {"field.z", "text : #zz", NULL};
	const char *const no_field[] = {"field.a", "text : 'a'", "key",
	                                "nosuch", NULL};
	const char *const none[] = {NULL};
	syncd_event rel_ev = change(SYNCD_EV_RELATION, &t_rel, NULL, NULL);

	ck_assert_int_eq(tf_open(&t, "udf", key_reads_value), SYNCD_OK);
	ck_assert_int_eq(tf_apply(&t, &rel_ev), SYNCD_FATAL);
	ck_assert_msg(strstr(t.m->error,
	                     "field.k is in the key but reads column v, "
	                     "which is not in the key of public.t"),
	              "%s", t.m->error);
	tf_close(&t);

	ck_assert_int_eq(tf_open(&t, "udf", missing), SYNCD_OK);
	ck_assert_int_eq(tf_apply(&t, &rel_ev), SYNCD_FATAL);
	ck_assert_msg(strstr(t.m->error, "source table public.t has no "
	                                 "column zz"),
	              "%s", t.m->error);
	tf_close(&t);

	ck_assert_int_eq(tf_open(&t, "udf", no_field), SYNCD_FATAL);
	ck_assert_str_eq(t.m->error, "key = nosuch: there is no field.nosuch");
	tf_close(&t);

	ck_assert_int_eq(tf_open(&t, "udf", none), SYNCD_OK);
	ck_assert(mock_logged(t.m, "WARNING no field.NAME = TYPE : "
	                           "EXPRESSION key: this transform adds "
	                           "nothing"));
	tf_close(&t);
}
END_TEST

#endif

Suite *
transforms_suite(void)
{
	Suite *s = suite_create("transforms");
	TCase *ld = tcase_create("logical_delete");

	tcase_add_test(ld, ld_relation_gets_the_column);
	tcase_add_test(ld, ld_changes);
	tcase_add_test(ld, ld_truncate_marks_every_row);
	tcase_add_test(ld, ld_details_and_strides);
	tcase_add_test(ld, ld_shape_change);
	tcase_add_test(ld, ld_refusals);
	suite_add_tcase(s, ld);
#ifdef SYNCD_TEST_UDF
	{
		TCase *udf = tcase_create("udf apply");
		tcase_add_test(udf, udf_fields);
		tcase_add_test(udf, udf_stream_without_server);
		tcase_add_test(udf, udf_tables_not_matched);
		tcase_add_test(udf, udf_bad_row_is_rejected);
		tcase_add_test(udf, udf_refusals);
		suite_add_tcase(s, udf);
	}
#endif
	return s;
}
