/*
 * logical_delete - transform: rows deleted at the source stay at the
 * destination, marked deleted.
 *
 * Every table gets one more column, `column` (default logical_is_deleted,
 * boolean, default false):
 *  - INSERT and UPDATE set it to false, so a key inserted again after a
 *    delete is alive again;
 *  - DELETE becomes an UPDATE of the key that sets it to true and leaves
 *    every other column as unchanged, so the sink keeps the destination's
 *    values (a DELETE under the default replica identity carries only the
 *    key);
 *  - TRUNCATE becomes, per truncated table, one SYNCD_EV_UPDATE_ALL event
 *    that sets it to true and leaves every other column unchanged: the
 *    sink marks every row deleted instead of removing them.
 * Automatic table creation adds the column through the relation this
 * transform emits; a destination table without it fails the sink's checks
 * (syncd --check), naming the column.
 */
#include <stdlib.h>
#include <string.h>

#include <syncd/syncd.h>

#include "../common/relcopy.h"

typedef struct ld_opts {
	const char *column;
} ld_opts;

static const syncd_option ld_options[] = {
    {.name = "column",
     .type = SYNCD_OPT_STRING,
     .default_value = "logical_is_deleted",
     .help = "the boolean column that says a row was deleted at the source",
     SYNCD_OPT_FIELD(ld_opts, column)},
    {.name = NULL}};

/* The relation as this transform emits it: the source's columns and the
 * flag column last. */
typedef struct ld_rel {
	uint64_t id;
	relcopy *copy;
	struct ld_rel *next;
} ld_rel;

typedef struct ld {
	const syncd_host *host;
	const char *column;
	ld_rel *rels;
	relcopy_scratch sc;
} ld;

static const syncd_value ld_false = {SYNCD_VALUE_TEXT, 5, "false"};
static const syncd_value ld_true = {SYNCD_VALUE_TEXT, 4, "true"};
static const syncd_value ld_unchanged = {SYNCD_VALUE_UNCHANGED, 0, NULL};

/* The emitted shape of src (made, or made again when src changed). */
static const syncd_relation *
ld_relation(ld *s, const syncd_relation *src, bool *made)
{
	ld_rel *r;
	relcopy *c;
	uint32_t n = src->ncolumns;

	*made = false;
	for (r = s->rels; r; r = r->next)
		if (r->id == src->id)
			break;
	if (r && relcopy_same(r->copy, src))
		return &r->copy->rel;
	for (uint32_t i = 0; i < n; i++)
		if (strcmp(relcopy_col(src, i)->name, s->column) == 0) {
			s->host->set_error(
			    s->host, NULL,
			    "source table %s.%s already has a column %s; "
			    "set [transform] column (or [sink] "
			    "logical.delete.column) to another name",
			    src->schema, src->table, s->column);
			return NULL;
		}
	c = relcopy_new(src, 1);
	c->cols[n] = (syncd_column){.size = sizeof(syncd_column),
	                            .name = s->column,
	                            .type_oid = 16, /* boolean */
	                            .type_name = "boolean",
	                            .typmod = -1,
	                            .default_value = "false"};
	if (c->dcols)
		c->dcols[n].comment = "deleted at the source (logical_delete)";
	if (!r) {
		r = calloc(1, sizeof *r);
		if (!r)
			abort();
		r->id = src->id;
		r->next = s->rels;
		s->rels = r;
	}
	relcopy_free(r->copy);
	r->copy = c;
	*made = true;
	return &c->rel;
}

/* The RELATION event of a shape made for a change that came before its
 * own RELATION event. */
static syncd_status
ld_announce(const syncd_event *ev, const syncd_relation *r, syncd_emit_fn emit,
            void *emit_ctx)
{
	syncd_event rel_ev = {.size = sizeof rel_ev,
	                      .type = SYNCD_EV_RELATION,
	                      .lsn = ev->lsn,
	                      .commit_time = ev->commit_time,
	                      .xid = ev->xid,
	                      .stream = ev->stream,
	                      .rel = r};

	return emit(emit_ctx, &rel_ev);
}

/* A TRUNCATE marks every row of each table deleted: one UPDATE_ALL per
 * table, setting the column to true and leaving the others as they are. */
static syncd_status
ld_truncate(ld *s, const syncd_event *ev, syncd_emit_fn emit, void *emit_ctx)
{
	for (uint32_t i = 0; i < ev->nrels; i++) {
		const syncd_relation *r;
		syncd_event out;
		syncd_status st;
		bool made;
		uint32_t n = ev->rels[i]->ncolumns;

		r = ld_relation(s, ev->rels[i], &made);
		if (!r)
			return SYNCD_FATAL;
		if (made) {
			st = ld_announce(ev, r, emit, emit_ctx);
			if (st != SYNCD_OK)
				return st;
		}
		relcopy_scratch_values(&s->sc, n + 1);
		for (uint32_t k = 0; k < n; k++)
			s->sc.newv[k] = ld_unchanged;
		s->sc.newv[n] = ld_true;
		out = (syncd_event){.size = sizeof out,
		                    .type = SYNCD_EV_UPDATE_ALL,
		                    .lsn = ev->lsn,
		                    .commit_time = ev->commit_time,
		                    .xid = ev->xid,
		                    .stream = ev->stream,
		                    .rel = r,
		                    .new_values = s->sc.newv};
		st = emit(emit_ctx, &out);
		if (st != SYNCD_OK)
			return st;
	}
	return SYNCD_OK;
}

static syncd_status
ld_apply(void *state, const syncd_event *ev, syncd_emit_fn emit, void *emit_ctx)
{
	ld *s = state;
	syncd_event out = *ev;
	const syncd_relation *r;
	bool made;
	uint32_t n;

	out.size = sizeof out;
	switch (ev->type) {
	case SYNCD_EV_BEGIN:
	case SYNCD_EV_COMMIT: return emit(emit_ctx, ev);
	case SYNCD_EV_TRUNCATE: return ld_truncate(s, ev, emit, emit_ctx);
	default: break;
	}
	if (!ev->rel)
		return emit(emit_ctx, ev);
	r = ld_relation(s, ev->rel, &made);
	if (!r)
		return SYNCD_FATAL;
	out.rel = r;
	if (ev->type == SYNCD_EV_RELATION)
		return emit(emit_ctx, &out);
	if (made) { /* a change before its relation: announce the shape */
		syncd_status st = ld_announce(ev, r, emit, emit_ctx);
		if (st != SYNCD_OK)
			return st;
	}
	n = ev->rel->ncolumns;
	relcopy_scratch_values(&s->sc, n + 1);
	switch (ev->type) {
	case SYNCD_EV_INSERT:
	case SYNCD_EV_UPDATE:
		memcpy(s->sc.newv, ev->new_values, n * sizeof *s->sc.newv);
		s->sc.newv[n] = ld_false;
		out.new_values = s->sc.newv;
		if (ev->old_values) {
			memcpy(s->sc.oldv, ev->old_values,
			       n * sizeof *s->sc.oldv);
			s->sc.oldv[n] =
			    (syncd_value){SYNCD_VALUE_NULL, 0, NULL};
			out.old_values = s->sc.oldv;
		}
		break;
	case SYNCD_EV_DELETE:
		/* the key, every other column as the destination has it, and
		 * the mark */
		for (uint32_t i = 0; i < n; i++)
			s->sc.newv[i] =
			    (relcopy_col(ev->rel, i)->flags & SYNCD_COL_KEY)
			        ? ev->old_values[i]
			        : ld_unchanged;
		s->sc.newv[n] = ld_true;
		out.type = SYNCD_EV_UPDATE;
		out.new_values = s->sc.newv;
		out.old_values = NULL;
		out.old_is_key = false;
		break;
	default: return emit(emit_ctx, ev);
	}
	return emit(emit_ctx, &out);
}

static void ld_destroy(void *state);

static syncd_status
ld_create(const syncd_host *host, void **state)
{
	const ld_opts *o = host->options;
	ld *s = calloc(1, sizeof *s);

	if (!s)
		return SYNCD_FATAL;
	s->host = host;
	s->column = o->column;
	*state = s;
	if (!s->column || !*s->column || strlen(s->column) > 63 ||
	    strpbrk(s->column, "\"'")) {
		host->set_error(host, NULL,
		                "column = %s: give a column name of at most 63 "
		                "bytes, without quotes",
		                s->column ? s->column : "");
		return SYNCD_FATAL;
	}
	return SYNCD_OK;
}

static void
ld_destroy(void *state)
{
	ld *s = state;

	if (!s)
		return;
	while (s->rels) {
		ld_rel *next = s->rels->next;
		relcopy_free(s->rels->copy);
		free(s->rels);
		s->rels = next;
	}
	relcopy_scratch_free(&s->sc);
	free(s);
}

static const syncd_transform_ops ld_ops = {
    .size = sizeof(syncd_transform_ops),
    .create = ld_create,
    .destroy = ld_destroy,
    .apply = ld_apply,
};

SYNCD_PLUGIN(.kind = SYNCD_KIND_TRANSFORM, .name = "logical_delete",
             .version = "1.0",
             .description = "rows deleted at the source stay at the "
                            "destination, marked deleted",
             .options = ld_options, .options_size = sizeof(ld_opts),
             .ops.transform = &ld_ops);
