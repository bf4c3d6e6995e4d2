/*
 * mask - a syncd transform that hides the values of chosen columns: each
 * value of a masked column becomes `with` ("***"), or SQL NULL with null =
 * true. The example of a complete third-party transform: it includes only
 * <syncd/syncd.h> and builds out of tree with `pkg-config syncd-sdk` (see
 * the Makefile beside it).
 *
 * columns names a column of every table (email), or of one table
 * (public.users.email: the source's schema and table). Relations and
 * events without values pass on unchanged. In an INSERT, UPDATE, DELETE or
 * UPDATE_ALL, the text values of the masked columns are replaced, in new
 * and old values alike; a NULL stays NULL and an unchanged value stays
 * unchanged. Rows of the full phase are INSERTs: they are masked too.
 *
 * A key column cannot be masked: every row would get the same key and the
 * destination would merge them. The job fails at the table's RELATION.
 */
#include <stdlib.h>
#include <string.h>

#include <syncd/syncd.h>

/* The option values, filled by the core (host->options). */
typedef struct mask_opts {
	syncd_list columns;
	const char *with;
	bool null;
} mask_opts;

static const syncd_option mask_options[] = {
    {.name = "columns",
     .type = SYNCD_OPT_LIST,
     .flags = SYNCD_OPT_REQUIRED,
     .help = "the columns to mask: column (every table) or "
             "schema.table.column",
     SYNCD_OPT_FIELD(mask_opts, columns)},
    {.name = "with",
     .type = SYNCD_OPT_STRING,
     .default_value = "***",
     .help = "the value written instead",
     SYNCD_OPT_FIELD(mask_opts, with)},
    {.name = "null",
     .type = SYNCD_OPT_BOOL,
     .default_value = "false",
     .help = "write NULL instead of `with`",
     SYNCD_OPT_FIELD(mask_opts, null)},
    {.name = NULL}};

typedef struct mask {
	const syncd_host *host;
	const mask_opts *o;
	syncd_value with;
	/* scratch copies of an event's values: the core calls apply() for
	 * one event at a time */
	syncd_value *nv, *ov;
	uint32_t cap;
} mask;

static syncd_status
mask_create(const syncd_host *host, void **state)
{
	const mask_opts *o = host->options;
	mask *m = calloc(1, sizeof *m);

	if (!m) {
		host->set_error(host, NULL, "out of memory");
		return SYNCD_FATAL;
	}
	*state = m;
	m->host = host;
	m->o = o;
	m->with = o->null ? (syncd_value){SYNCD_VALUE_NULL, 0, NULL}
	                  : (syncd_value){SYNCD_VALUE_TEXT,
	                                  (uint32_t) strlen(o->with), o->with};
	for (size_t i = 0; i < o->columns.n; i++) {
		const char *dot = strchr(o->columns.items[i], '.');
		if (dot && (!strchr(dot + 1, '.') ||
		            strchr(strchr(dot + 1, '.') + 1, '.'))) {
			host->set_error(
			    host, NULL,
			    "columns: \"%s\" is neither a column nor "
			    "schema.table.column; fix columns",
			    o->columns.items[i]);
			return SYNCD_INVALID;
		}
	}
	return SYNCD_OK;
}

static void
mask_destroy(void *state)
{
	mask *m = state;

	free(m->nv);
	free(m->ov);
	free(m);
}

/* Column i of rel: the array's stride is its first element's size. */
static const syncd_column *
mask_column(const syncd_relation *rel, uint32_t i)
{
	const char *first = (const char *) rel->columns;
	size_t stride = rel->columns[0].size;

	return (const syncd_column *) (const void *) (first + i * stride);
}

/* Whether an item of `columns` names column col of rel. */
static bool
mask_names(const char *item, const syncd_relation *rel, const char *col)
{
	size_t ns = strlen(rel->schema), nt = strlen(rel->table);

	if (!strchr(item, '.'))
		return strcmp(item, col) == 0;
	return strncmp(item, rel->schema, ns) == 0 && item[ns] == '.' &&
	       strncmp(item + ns + 1, rel->table, nt) == 0 &&
	       item[ns + 1 + nt] == '.' && strcmp(item + ns + nt + 2, col) == 0;
}

static bool
mask_masked(const mask *m, const syncd_relation *rel, uint32_t i)
{
	for (size_t k = 0; k < m->o->columns.n; k++)
		if (mask_names(m->o->columns.items[k], rel,
		               mask_column(rel, i)->name))
			return true;
	return false;
}

/* A copy of vals (or NULL) with the masked columns' text replaced. */
static const syncd_value *
mask_values(const mask *m, const syncd_relation *rel, const syncd_value *vals,
            syncd_value *out)
{
	if (!vals)
		return NULL;
	for (uint32_t i = 0; i < rel->ncolumns; i++)
		out[i] =
		    vals[i].kind == SYNCD_VALUE_TEXT && mask_masked(m, rel, i)
		        ? m->with
		        : vals[i];
	return out;
}

static syncd_status
mask_apply(void *state, const syncd_event *ev, syncd_emit_fn emit,
           void *emit_ctx)
{
	mask *m = state;
	const syncd_relation *rel = ev->rel;
	syncd_event out;

	if (ev->type == SYNCD_EV_RELATION) {
		for (uint32_t i = 0; i < rel->ncolumns; i++)
			if ((mask_column(rel, i)->flags & SYNCD_COL_KEY) &&
			    mask_masked(m, rel, i)) {
				m->host->set_error(
				    m->host, NULL,
				    "cannot mask column \"%s\" of %s.%s: it is "
				    "part of the key, and masking a key column "
				    "would merge rows; remove it from columns",
				    mask_column(rel, i)->name, rel->schema,
				    rel->table);
				return SYNCD_FATAL;
			}
		return emit(emit_ctx, ev);
	}
	if (ev->type != SYNCD_EV_INSERT && ev->type != SYNCD_EV_UPDATE &&
	    ev->type != SYNCD_EV_DELETE && ev->type != SYNCD_EV_UPDATE_ALL)
		return emit(emit_ctx, ev); /* BEGIN, COMMIT, TRUNCATE */
	if (rel->ncolumns > m->cap) {
		free(m->nv);
		free(m->ov);
		m->cap = rel->ncolumns;
		m->nv = calloc(m->cap, sizeof *m->nv);
		m->ov = calloc(m->cap, sizeof *m->ov);
		if (!m->nv || !m->ov) {
			m->cap = 0;
			m->host->set_error(m->host, NULL, "out of memory");
			return SYNCD_FATAL;
		}
	}
	out = *ev;
	out.size = sizeof out;
	out.new_values = mask_values(m, rel, ev->new_values, m->nv);
	out.old_values = mask_values(m, rel, ev->old_values, m->ov);
	return emit(emit_ctx, &out);
}

static const syncd_transform_ops mask_ops = {
    .size = sizeof(syncd_transform_ops),
    .create = mask_create,
    .destroy = mask_destroy,
    .apply = mask_apply,
};

SYNCD_PLUGIN(.kind = SYNCD_KIND_TRANSFORM, .name = "mask", .version = "1.0",
             .description = "replaces the values of chosen columns",
             .options = mask_options, .options_size = sizeof(mask_opts),
             .ops.transform = &mask_ops)
