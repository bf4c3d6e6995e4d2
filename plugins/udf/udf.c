/*
 * udf - transform: additional fields, computed for every row by the
 * expressions of eval.h, on the target tables `tables` matches.
 *
 *   [transform.extra]
 *   plugin = udf
 *   tables = *                       ; globs on target tables
 *   field.etl_time = timestamp : now('UTC+08:00')
 *   field.origin = varchar(128) : concat(source.schema, '.', source.table)
 *   key = origin                     ; fields that join the primary key
 *
 * Each field becomes a column after the source's (in file order); automatic
 * table creation creates it with TYPE as written. Expressions are parsed
 * and checked at load; an error shows the expression with a caret. A row
 * whose expression fails (a date that does not parse) is dirty data.
 *
 * A field that reads a column whose value an UPDATE did not send (an
 * unchanged TOASTed value) is left as the destination has it. A DELETE
 * carries the key only: key fields are computed from it (so they may read
 * key columns only); the other fields do not matter to a DELETE. An
 * UPDATE_ALL (a TRUNCATE that logical_delete marks) leaves the fields of
 * every row as they are.
 */
#define _GNU_SOURCE /* asprintf */
#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <syncd/syncd.h>

#include "../common/relcopy.h"
#include "eval.h"

typedef struct udf_opts {
	syncd_list tables;
	syncd_pairs fields;
	syncd_list key;
} udf_opts;

static const syncd_option udf_options[] = {
    {.name = "tables",
     .type = SYNCD_OPT_LIST,
     .default_value = "*",
     .help = "target tables that get the fields: globs on schema.table, or "
             "on the table name alone",
     SYNCD_OPT_FIELD(udf_opts, tables)},
    {.name = "field.",
     .type = SYNCD_OPT_PREFIX,
     .help = "field.NAME = TYPE : EXPRESSION, one column added to every "
             "matching target table",
     SYNCD_OPT_FIELD(udf_opts, fields)},
    {.name = "key",
     .type = SYNCD_OPT_LIST,
     .default_value = "",
     .help = "fields that join the table's primary key (for sharding: keys "
             "of different shards then cannot collide)",
     SYNCD_OPT_FIELD(udf_opts, key)},
    {.name = NULL}};

typedef struct udf_field {
	char *name;
	char *type;
	char *text; /* the expression */
	udf_prog *prog;
	bool key;
	/* scratch: this row's results (new and old row) */
	char *buf[2];
	size_t cap[2];
} udf_field;

/* A table as this transform emits it; copy is NULL for a table `tables`
 * does not match (passed on as it is). */
typedef struct udf_rel {
	uint64_t id;
	relcopy *copy;
	char *vars[VAR_TARGET_TABLE + 1];
	struct udf_rel *next;
} udf_rel;

typedef struct udf {
	const syncd_host *host;
	udf_field *fields;
	size_t nfields;
	char **globs;
	size_t nglobs;
	udf_rel *rels;
	relcopy_scratch sc;
} udf;

/* ---- load ---------------------------------------------------------------- */

static bool
udf_type_ok(const char *t)
{
	if (!isalpha((unsigned char) *t))
		return false;
	for (; *t; t++)
		if (!isalnum((unsigned char) *t) && !strchr("_ (),[]", *t))
			return false;
	return true;
}

static char *
udf_trim(char *s)
{
	char *e;

	while (isspace((unsigned char) *s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char) e[-1]))
		*--e = '\0';
	return s;
}

/* field.NAME = TYPE : EXPRESSION */
static bool
udf_field_load(udf *s, udf_field *f, const char *key, const char *value)
{
	const char *name = key + strlen("field.");
	char *copy = strdup(value), *colon = strchr(copy, ':'), *type, *text;
	size_t err_pos = 0;
	const char *perr = NULL;
	char *cerr = NULL, *shown;
	expr *e;

	if (!copy)
		abort();
	f->name = strdup(name);
	if (!*name || strlen(name) > 63 || strpbrk(name, "\"'")) {
		s->host->set_error(s->host, NULL,
		                   "%s: give a field name of at most 63 bytes, "
		                   "without quotes",
		                   key);
		free(copy);
		return false;
	}
	if (!colon) {
		s->host->set_error(s->host, NULL,
		                   "%s = %s: write TYPE : EXPRESSION, e.g. "
		                   "varchar(64) : concat(source.schema, '.', "
		                   "source.table)",
		                   key, value);
		free(copy);
		return false;
	}
	*colon = '\0';
	type = udf_trim(copy);
	text = udf_trim(colon + 1);
	if (!udf_type_ok(type)) {
		s->host->set_error(
		    s->host, NULL,
		    "%s: '%s' is not a column type: write a type "
		    "such as varchar(64), timestamp or bigint "
		    "before the ':'",
		    key, type);
		free(copy);
		return false;
	}
	f->type = strdup(type);
	f->text = strdup(text);
	free(copy);
	e = expr_parse(f->text, &err_pos, &perr);
	if (e)
		f->prog = udf_compile(e, &err_pos, &cerr);
	if (!f->prog) {
		shown = expr_error_text(f->text, err_pos, perr ? perr : cerr);
		s->host->set_error(s->host, NULL, "%s: %s", key, shown);
		free(shown);
		free(cerr);
		return false;
	}
	return true;
}

static void udf_destroy(void *state);

static syncd_status
udf_create(const syncd_host *host, void **state)
{
	const udf_opts *o = host->options;
	udf *s = calloc(1, sizeof *s);
	size_t n = o->fields.n;

	if (!s)
		return SYNCD_FATAL;
	*state = s;
	s->host = host;
	if (n == 0)
		SYNCD_LOG_WARNING(host,
		                  "no field.NAME = TYPE : EXPRESSION key: this "
		                  "transform adds nothing");
	s->fields = calloc(n + 1, sizeof *s->fields);
	if (!s->fields)
		abort();
	for (size_t i = 0; i < n; i++) {
		const char *key = o->fields.keys[i];
		s->nfields = i + 1;
		if (!udf_field_load(s, &s->fields[i], key, o->fields.values[i]))
			return SYNCD_FATAL;
		for (size_t k = 0; k < i; k++)
			if (strcmp(s->fields[k].name, s->fields[i].name) == 0) {
				host->set_error(host, NULL, "%s is given twice",
				                key);
				return SYNCD_FATAL;
			}
	}
	for (size_t i = 0; i < o->key.n; i++) {
		const char *k = o->key.items[i];
		bool found = false;
		for (size_t f = 0; f < s->nfields; f++)
			if (strcmp(s->fields[f].name, k) == 0)
				found = s->fields[f].key = true;
		if (!found) {
			host->set_error(host, NULL,
			                "key = %s: there is no field.%s", k, k);
			return SYNCD_FATAL;
		}
	}
	s->nglobs = o->tables.n;
	s->globs = calloc(s->nglobs + 1, sizeof *s->globs);
	if (!s->globs)
		abort();
	for (size_t i = 0; i < s->nglobs; i++)
		s->globs[i] = strdup(o->tables.items[i]);
	return SYNCD_OK;
}

/* ---- relations ------------------------------------------------------------
 */

static bool
udf_matches(const udf *s, const char *schema, const char *table)
{
	char *full;
	bool hit = false;

	if (asprintf(&full, "%s.%s", schema, table) < 0)
		abort();
	for (size_t i = 0; i < s->nglobs && !hit; i++)
		hit = fnmatch(s->globs[i],
		              strchr(s->globs[i], '.') ? full : table, 0) == 0;
	free(full);
	return hit;
}

static void
udf_rel_clear(udf_rel *r)
{
	relcopy_free(r->copy);
	r->copy = NULL;
	for (size_t v = 0; v <= VAR_TARGET_TABLE; v++) {
		free(r->vars[v]);
		r->vars[v] = NULL;
	}
}

static const syncd_column *
udf_column(const syncd_relation *rel, const char *name)
{
	for (uint32_t i = 0; i < rel->ncolumns; i++)
		if (strcmp(relcopy_col(rel, i)->name, name) == 0)
			return relcopy_col(rel, i);
	return NULL;
}

/* Checks that src (of stream `stream`) can take the fields, and makes its
 * emitted shape. */
static bool
udf_shape(udf *s, udf_rel *r, const syncd_relation *src, uint32_t stream)
{
	/* the core's router named the target before any transform */
	const char *ts = src->target_schema ? src->target_schema : src->schema;
	const char *tt = src->target_table ? src->target_table : src->table;
	const syncd_stream *from = s->host->stream(s->host, stream);
	uint32_t n = src->ncolumns;
	relcopy *c;

	if (!udf_matches(s, ts, tt))
		return true;
	r->vars[VAR_SOURCE_HOST] =
	    from && from->server ? strdup(from->server) : NULL;
	r->vars[VAR_SOURCE_DATABASE] =
	    src->database ? strdup(src->database) : NULL;
	r->vars[VAR_SOURCE_SCHEMA] = strdup(src->schema);
	r->vars[VAR_SOURCE_TABLE] = strdup(src->table);
	r->vars[VAR_TARGET_SCHEMA] = strdup(ts);
	r->vars[VAR_TARGET_TABLE] = strdup(tt);
	for (size_t i = 0; i < s->nfields; i++) {
		const udf_field *f = &s->fields[i];
		const char *const *names;
		size_t nnames = udf_prog_columns(f->prog, &names);

		if (udf_column(src, f->name)) {
			s->host->set_error(
			    s->host, NULL,
			    "field.%s: source table %s.%s already has a column "
			    "%s; give the field another name",
			    f->name, src->schema, src->table, f->name);
			return false;
		}
		for (size_t k = 0; k < nnames; k++) {
			const syncd_column *col = udf_column(src, names[k]);
			if (!col) {
				s->host->set_error(
				    s->host, NULL,
				    "field.%s = %s : %s: source table %s.%s "
				    "has no column %s (names are "
				    "case-sensitive; set [transform] tables "
				    "to leave this table out)",
				    f->name, f->type, f->text, src->schema,
				    src->table, names[k]);
				return false;
			}
			if (f->key && !(col->flags & SYNCD_COL_KEY)) {
				s->host->set_error(
				    s->host, NULL,
				    "field.%s is in the key but reads column "
				    "%s, which is not in the key of %s.%s: a "
				    "DELETE carries only the key; compute "
				    "key fields from key columns and "
				    "variables",
				    f->name, names[k], src->schema, src->table);
				return false;
			}
		}
	}
	c = relcopy_new(src, (uint32_t) s->nfields);
	for (size_t i = 0; i < s->nfields; i++) {
		c->cols[n + i] = (syncd_column){
		    .size = sizeof(syncd_column),
		    .name = s->fields[i].name,
		    .type_name = s->fields[i].type,
		    .typmod = -1,
		    .flags = s->fields[i].key
		                 ? SYNCD_COL_KEY | SYNCD_COL_NOT_NULL
		                 : 0};
		if (c->dcols)
			c->dcols[n + i].comment = s->fields[i].text;
	}
	r->copy = c;
	return true;
}

/* The emitted shape of src, made again at each RELATION event (a rename
 * changes the target) and when src changed. NULL on error; r->copy is NULL
 * when the table does not get the fields. */
static udf_rel *
udf_relation(udf *s, const syncd_relation *src, uint32_t stream, bool fresh,
             bool *made)
{
	udf_rel *r;

	*made = false;
	for (r = s->rels; r; r = r->next)
		if (r->id == src->id)
			break;
	if (r && !fresh && (!r->copy || relcopy_same(r->copy, src)))
		return r;
	if (!r) {
		r = calloc(1, sizeof *r);
		if (!r)
			abort();
		r->id = src->id;
		r->next = s->rels;
		s->rels = r;
	}
	udf_rel_clear(r);
	if (!udf_shape(s, r, src, stream)) {
		/* forgotten: the next change checks it again */
		udf_rel **pp = &s->rels;
		while (*pp != r)
			pp = &(*pp)->next;
		*pp = r->next;
		udf_rel_clear(r);
		free(r);
		return NULL;
	}
	*made = r->copy != NULL;
	return r;
}

/* ---- rows ------------------------------------------------------------------
 */

typedef struct udf_rowctx {
	const syncd_relation *rel;
	const syncd_value *values;
} udf_rowctx;

static udf_col_status
udf_lookup(void *arg, const char *name, const char **val, size_t *len)
{
	udf_rowctx *c = arg;

	for (uint32_t i = 0; i < c->rel->ncolumns; i++) {
		const syncd_value *v;
		if (strcmp(relcopy_col(c->rel, i)->name, name) != 0)
			continue;
		v = &c->values[i];
		switch (v->kind) {
		case SYNCD_VALUE_UNCHANGED: return UDF_COL_UNCHANGED;
		case SYNCD_VALUE_TEXT:
			*val = v->data;
			*len = v->len;
			return UDF_COL_VALUE;
		default: /* NULL */
			*val = NULL;
			*len = 0;
			return UDF_COL_VALUE;
		}
	}
	return UDF_COL_MISSING;
}

/* Computes the fields of one row (which = 0: new, 1: old) into out[]. Key
 * fields only when keys_only. SYNCD_REJECT (error set) on a failure. */
static syncd_status
udf_row_fields(udf *s, const udf_rel *r, const syncd_event *ev,
               const syncd_value *values, int which, bool keys_only,
               syncd_value *out)
{
	udf_rowctx ctx = {ev->rel, values};
	udf_row row = {.column = udf_lookup, .ctx = &ctx};
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	row.now_ms = (double) now.tv_sec * 1000.0 + now.tv_nsec / 1e6;
	for (size_t v = 0; v <= VAR_TARGET_TABLE; v++)
		row.vars[v] = r->vars[v];
	for (size_t i = 0; i < s->nfields; i++) {
		udf_field *f = &s->fields[i];
		const char *res;
		size_t len;

		out[i] = (syncd_value){SYNCD_VALUE_NULL, 0, NULL};
		if (keys_only && !f->key)
			continue;
		switch (udf_eval(f->prog, &row, &res, &len)) {
		case UDF_VALUE:
			if (len + 1 > f->cap[which]) {
				f->cap[which] = len + 64;
				f->buf[which] =
				    realloc(f->buf[which], f->cap[which]);
				if (!f->buf[which])
					abort();
			}
			memcpy(f->buf[which], res, len);
			f->buf[which][len] = '\0';
			out[i] = (syncd_value){SYNCD_VALUE_TEXT, (uint32_t) len,
			                       f->buf[which]};
			break;
		case UDF_NULL: break;
		case UDF_UNCHANGED:
			out[i] = (syncd_value){SYNCD_VALUE_UNCHANGED, 0, NULL};
			break;
		case UDF_ERROR:
			s->host->set_error(s->host, "22000",
			                   "field.%s = %s: %s", f->name,
			                   f->text, res);
			return SYNCD_REJECT;
		}
		if (f->key && out[i].kind != SYNCD_VALUE_TEXT) {
			s->host->set_error(
			    s->host, "23502",
			    "field.%s = %s: is NULL, and it is in "
			    "the key",
			    f->name, f->text);
			return SYNCD_REJECT;
		}
	}
	return SYNCD_OK;
}

static syncd_status
udf_apply(void *state, const syncd_event *ev, syncd_emit_fn emit,
          void *emit_ctx)
{
	udf *s = state;
	syncd_event out = *ev;
	udf_rel *r;
	bool made;
	uint32_t n;
	syncd_status st;

	out.size = sizeof out;
	switch (ev->type) {
	case SYNCD_EV_BEGIN:
	case SYNCD_EV_COMMIT: return emit(emit_ctx, ev);
	case SYNCD_EV_TRUNCATE:
		relcopy_scratch_rels(&s->sc, ev->nrels);
		for (uint32_t i = 0; i < ev->nrels; i++) {
			r = udf_relation(s, ev->rels[i], ev->stream, false,
			                 &made);
			if (!r)
				return SYNCD_FATAL;
			s->sc.rels[i] = r->copy ? &r->copy->rel : ev->rels[i];
		}
		out.rels = s->sc.rels;
		out.rel = ev->nrels ? s->sc.rels[0] : NULL;
		return emit(emit_ctx, &out);
	default: break;
	}
	if (!ev->rel)
		return emit(emit_ctx, ev);
	r = udf_relation(s, ev->rel, ev->stream, ev->type == SYNCD_EV_RELATION,
	                 &made);
	if (!r)
		return SYNCD_FATAL;
	if (!r->copy)
		return emit(emit_ctx, ev);
	out.rel = &r->copy->rel;
	if (ev->type == SYNCD_EV_RELATION)
		return emit(emit_ctx, &out);
	if (made) { /* a change before its relation: announce the shape */
		syncd_event rel_ev = {.size = sizeof rel_ev,
		                      .type = SYNCD_EV_RELATION,
		                      .lsn = ev->lsn,
		                      .commit_time = ev->commit_time,
		                      .xid = ev->xid,
		                      .stream = ev->stream,
		                      .rel = out.rel};
		st = emit(emit_ctx, &rel_ev);
		if (st != SYNCD_OK)
			return st;
	}
	n = ev->rel->ncolumns;
	relcopy_scratch_values(&s->sc, n + (uint32_t) s->nfields);
	if (ev->type == SYNCD_EV_UPDATE_ALL && ev->new_values) {
		/* every row of the table: the fields are left as they are */
		memcpy(s->sc.newv, ev->new_values, n * sizeof *s->sc.newv);
		for (size_t i = 0; i < s->nfields; i++)
			s->sc.newv[n + i] =
			    (syncd_value){SYNCD_VALUE_UNCHANGED, 0, NULL};
		out.new_values = s->sc.newv;
	} else if (ev->new_values) {
		memcpy(s->sc.newv, ev->new_values, n * sizeof *s->sc.newv);
		st = udf_row_fields(s, r, ev, ev->new_values, 0, false,
		                    s->sc.newv + n);
		if (st != SYNCD_OK)
			return st;
		out.new_values = s->sc.newv;
	}
	if (ev->old_values) {
		memcpy(s->sc.oldv, ev->old_values, n * sizeof *s->sc.oldv);
		st = udf_row_fields(s, r, ev, ev->old_values, 1, true,
		                    s->sc.oldv + n);
		if (st != SYNCD_OK)
			return st;
		out.old_values = s->sc.oldv;
	}
	return emit(emit_ctx, &out);
}

static void
udf_destroy(void *state)
{
	udf *s = state;

	if (!s)
		return;
	while (s->rels) {
		udf_rel *next = s->rels->next;
		udf_rel_clear(s->rels);
		free(s->rels);
		s->rels = next;
	}
	for (size_t i = 0; i < s->nfields; i++) {
		udf_field *f = &s->fields[i];
		free(f->name);
		free(f->type);
		free(f->text);
		udf_prog_free(f->prog);
		free(f->buf[0]);
		free(f->buf[1]);
	}
	free(s->fields);
	for (size_t i = 0; i < s->nglobs; i++)
		free(s->globs[i]);
	free(s->globs);
	relcopy_scratch_free(&s->sc);
	free(s);
}

static const syncd_transform_ops udf_ops = {
    .size = sizeof(syncd_transform_ops),
    .create = udf_create,
    .destroy = udf_destroy,
    .apply = udf_apply,
};

SYNCD_PLUGIN(.kind = SYNCD_KIND_TRANSFORM, .name = "udf", .version = "1.0",
             .description = "additional fields computed by expressions "
                            "(the reference's UDF values)",
             .options = udf_options, .options_size = sizeof(udf_opts),
             .ops.transform = &udf_ops);
