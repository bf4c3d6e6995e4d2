/*
 * logical_delete - transform: rows deleted at the source stay at the
 * destination, marked deleted.
 *
 * Every table gets one more column, `column` (default logical_is_deleted,
 * boolean, default false, flagged SYNCD_COL_DELETED):
 *  - INSERT and UPDATE set it to false, so a key inserted again after a
 *    delete is alive again;
 *  - DELETE becomes an UPDATE of the key that sets it to true and leaves
 *    every other column as unchanged, so the sink keeps the destination's
 *    values (a DELETE under the default replica identity carries only the
 *    key);
 *  - TRUNCATE is passed on with SYNCD_TRUNCATE_MARK: the sink marks every
 *    row deleted instead of removing them.
 * Automatic table creation adds the column through the relation this
 * transform emits; a destination table without it fails the sink's checks
 * (syncd --check), naming the column.
 */
#include <stdlib.h>
#include <string.h>

#include <syncd/syncd.h>

#include "../common/relcopy.h"

static const syncd_option ld_options[] = {
    {.name = "column",
     .type = SYNCD_OPT_STRING,
     .default_value = "logical_is_deleted",
     .help = "the boolean column that says a row was deleted at the source"},
    {.name = NULL}};

/* The relation as this transform emits it: the source's columns and the
 * flag column last. */
typedef struct ld_rel {
	uint64_t id;
	relcopy *copy;
	struct ld_rel *next;
} ld_rel;

typedef struct ld {
	syncd_instance *inst;
	const syncd_host *host;
	const char *column;
	ld_rel *rels;
	relcopy_scratch sc;
} ld;

static const syncd_value ld_false = {SYNCD_VALUE_TEXT, 5, "false"};
static const syncd_value ld_true = {SYNCD_VALUE_TEXT, 4, "true"};

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
		if (strcmp(src->columns[i].name, s->column) == 0) {
			s->host->set_error(
			    s->inst, NULL,
			    "source table %s.%s already has a column %s; "
			    "set [transform] column (or [sink] "
			    "logical.delete.column) to another name",
			    src->schema, src->table, s->column);
			return NULL;
		}
	c = relcopy_new(src, 1);
	c->cols[n] =
	    (syncd_column){.name = s->column,
	                   .type_oid = 16, /* boolean */
	                   .type_name = "boolean",
	                   .typmod = -1,
	                   .flags = SYNCD_COL_DELETED,
	                   .comment = "deleted at the source (logical_delete)",
	                   .default_value = "false"};
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

static syncd_status
ld_apply(void *state, const syncd_event *ev, syncd_emit_fn emit, void *emit_ctx)
{
	ld *s = state;
	syncd_event out = *ev;
	const syncd_relation *r;
	bool made;
	uint32_t n;

	switch (ev->type) {
	case SYNCD_EV_BEGIN:
	case SYNCD_EV_COMMIT: return emit(emit_ctx, ev);
	case SYNCD_EV_TRUNCATE:
		relcopy_scratch_rels(&s->sc, ev->nrels);
		for (uint32_t i = 0; i < ev->nrels; i++) {
			r = ld_relation(s, ev->rels[i], &made);
			if (!r)
				return SYNCD_FATAL;
			s->sc.rels[i] = r;
		}
		out.rels = s->sc.rels;
		out.rel = ev->nrels ? s->sc.rels[0] : NULL;
		out.truncate_flags |= SYNCD_TRUNCATE_MARK;
		return emit(emit_ctx, &out);
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
		syncd_event rel_ev = {.type = SYNCD_EV_RELATION,
		                      .lsn = ev->lsn,
		                      .stream = ev->stream,
		                      .rel = r};
		syncd_status st = emit(emit_ctx, &rel_ev);
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
			    (ev->rel->columns[i].flags & SYNCD_COL_KEY)
			        ? ev->old_values[i]
			        : (syncd_value){SYNCD_VALUE_UNCHANGED, 0, NULL};
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
ld_create(syncd_instance *inst, const syncd_host *host, void **state)
{
	ld *s = calloc(1, sizeof *s);

	if (!s)
		return SYNCD_FATAL;
	s->inst = inst;
	s->host = host;
	s->column = host->opt_string(inst, "column");
	*state = s;
	if (!s->column || !*s->column || strlen(s->column) > 63 ||
	    strpbrk(s->column, "\"'")) {
		host->set_error(inst, NULL,
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
             .options = ld_options, .ops.transform = &ld_ops);
