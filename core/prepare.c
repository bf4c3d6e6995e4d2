/*
 * core/prepare.c - see prepare.h.
 */
#include "config.h"

#include "chain.h"
#include "resync.h"
#include "log.h"
#include "plugerr.h"
#include "prepare.h"
#include "router.h"
#include "shardcols.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* The targets the selected tables are routed to, to refuse two tables
 * written into one (DESIGN §5 "Names"). */
typedef struct job_target_entry {
	char *schema, *table; /* as routed */
	char *source;         /* database.schema.table, or NULL */
	const logical_table *lt;
} job_target_entry;

typedef struct job_targets {
	job_target_entry *v;
	size_t n;
} job_targets;

static void
job_targets_free(job_targets *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].schema);
		free(t->v[i].table);
		free(t->v[i].source);
	}
	free(t->v);
	memset(t, 0, sizeof *t);
}

/* Why the source table src cannot go to the target schema.table (a name
 * PostgreSQL would cut, or a target another table already goes to), or
 * NULL; records it otherwise. The message names both names and the fix. */
static char *
job_target_problem(job *j, job_targets *t, const syncd_relation *src,
                   const char *schema, const char *table)
{
	const logical_table *lt =
	    j->nltables ? router_logical_table(j, src->database, src->table)
	                : NULL;
	char *label = xasprintf("%s.%s.%s", src->database ? src->database : "",
	                        src->schema, src->table);
	char *why = NULL;

	if (!*schema || !*table) {
		why = xasprintf(
		    "the target %s of source table %s is empty%s; set %s",
		    *schema ? "table" : "schema", label,
		    !*schema && !src->database
		        ? " (the source names no database for "
		          "#{source_db_name})"
		        : "",
		    *schema ? "target.table" : "target.schema");
		free(label);
		return why;
	}
	if (strlen(schema) > 63 || strlen(table) > 63) {
		const char *name = strlen(schema) > 63 ? schema : table;
		why = xasprintf(
		    "target name \"%s\" of source table %s is %zu bytes "
		    "long: PostgreSQL would cut it to 63, and tables whose "
		    "names differ after that would be merged into one; set "
		    "%s to a shorter pattern",
		    name, label, strlen(name),
		    name == schema ? "target.schema"
		    : lt           ? "the [logical_table.*] name"
		                   : "target.table");
		free(label);
		return why;
	}
	for (size_t i = 0; i < t->n; i++) {
		const job_target_entry *e = &t->v[i];
		if (strcmp(e->schema, schema) != 0 ||
		    strcmp(e->table, table) != 0 || (lt && e->lt == lt) ||
		    (e->source && strcmp(e->source, label) == 0))
			continue;
		why = xasprintf(
		    "source tables %s and %s would both be written into "
		    "target table %s.%s; route them apart (for example "
		    "target.schema = #{source_schema_name} or target.table "
		    "= #{source_schema_name}_#{source_table_name}), leave "
		    "one out of tables, or declare a [logical_table.NAME] "
		    "to merge them on purpose",
		    e->source, label, schema, table);
		free(label);
		return why;
	}
	t->v = xrealloc(t->v, (t->n + 1) * sizeof *t->v);
	t->v[t->n++] =
	    (job_target_entry){xstrdup(schema), xstrdup(table), label, lt};
	return NULL;
}

typedef struct job_preview_ctx {
	job *j;
	FILE *out;
	size_t n;
	strbuf *groups; /* per logical table: its source tables' lines */
	size_t *counts;
	job_targets targets;
} job_preview_ctx;

static syncd_status
job_preview_one(void *arg, const syncd_relation *in)
{
	syncd_relation *rel = router_copy(((job_preview_ctx *) arg)->j, in, 0);
	job_preview_ctx *c = arg;
	char *ts, *tt;
	strbuf keys = {0}, line = {0};
	const logical_table *lt =
	    c->j->nltables
	        ? router_logical_table(c->j, rel->database, rel->table)
	        : NULL;
	char *why;

	router_target(c->j, rel, &ts, &tt);
	/* the key in its own order (key_position), else column order */
	for (uint32_t pos = 1, n = 0; pos <= rel->ncolumns; pos++)
		for (uint32_t i = 0; i < rel->ncolumns; i++)
			if ((rel->columns[i].flags & SYNCD_COL_KEY) &&
			    rel->columns[i].key_position == pos)
				sb_printf(&keys, "%s%s", n++ ? ", " : "",
				          rel->columns[i].name);
	if (!keys.len)
		for (uint32_t i = 0; i < rel->ncolumns; i++)
			if (rel->columns[i].flags & SYNCD_COL_KEY)
				sb_printf(&keys, "%s%s", keys.len ? ", " : "",
				          rel->columns[i].name);
	why = job_target_problem(c->j, &c->targets, rel, ts, tt);
	sb_printf(&line, "%s%s.%s.%s -> %s.%s (%u columns, key: %s)%s%s\n",
	          lt ? "  " : "", rel->database ? rel->database : "",
	          rel->schema, rel->table, ts, tt, rel->ncolumns,
	          keys.len ? keys.data : "none", why ? "\n    refused: " : "",
	          why ? why : "");
	free(why);
	if (lt) {
		size_t g = (size_t) (lt - c->j->ltables);
		sb_puts(&c->groups[g], line.data);
		c->counts[g]++;
	} else
		fputs(line.data, c->out);
	sb_free(&line);
	sb_free(&keys);
	free(ts);
	free(tt);
	router_free(rel);
	c->n++;
	return SYNCD_OK;
}

int
prepare_preview(job *j, FILE *out)
{
	job_preview_ctx c = {.j = j, .out = out};
	instance *src = j->source;
	int rc = 0;

	if (!src->plugin->ops.source.list_tables) {
		log_error("%s cannot list its tables (its plugin has no "
		          "list_tables operation)",
		          src->prefix);
		return 1;
	}
	c.groups = xcalloc(j->nltables + 1, sizeof *c.groups);
	c.counts = xcalloc(j->nltables + 1, sizeof *c.counts);
	if (src->plugin->ops.source.list_tables(src->state, job_preview_one,
	                                        &c) != SYNCD_OK) {
		log_error("%s could not list its tables: %s", src->prefix,
		          plugerr_msg(src));
		rc = 1;
	}
	for (size_t i = 0; rc == 0 && i < j->nltables; i++) {
		const logical_table *lt = &j->ltables[i];
		fprintf(out,
		        "logical table %s (source_db_filter %s, "
		        "source_table_filter %s): %zu source table(s)\n%s",
		        lt->name, lt->db_filter, lt->table_filter, c.counts[i],
		        c.groups[i].len ? c.groups[i].data
		                        : "  no source table matches\n");
	}
	if (rc == 0)
		fprintf(out, "%zu table(s)\n", c.n);
	if (rc == 0 && j->sink->plugin->ops.sink.prepare_table) {
		bool supported;
		/* what the next start changes at the destination: the sink's
		 * pre-checks log each target to create, each column to add
		 * (schema.evolution), and what it refuses */
		fprintf(out, "targets: see the log lines for what the next "
		             "start creates, adds or refuses\n");
		fflush(out);
		if (prepare_tables(j, SYNCD_PREPARE_CHECK, &supported) ==
		    JOB_PREPARED)
			log_info("%s every target can take its rows",
			         j->sink->prefix);
	}
	if (rc == 0)
		live_preview(j, out);
	for (size_t i = 0; i < j->nltables; i++)
		sb_free(&c.groups[i]);
	free(c.groups);
	free(c.counts);
	job_targets_free(&c.targets);
	return rc;
}

/* ---- target tables ahead of the stream -------------------------------- */

/* The first source table of a logical table, which the others must match. */
typedef struct job_shard {
	char *label; /* database.schema.table */
	uint32_t ncolumns;
	char **names, **types;
	uint32_t *flags;
	size_t count;      /* source tables seen */
	bool distinct_key; /* a transform added a key column */
} job_shard;

typedef struct job_prepare_ctx {
	job *j;
	syncd_prepare what;
	size_t n, failed;
	job_shard *shards;  /* per logical table */
	job_shard *current; /* the shard group of the table in the chain */
	const syncd_relation *src; /* ... and its source relation */
} job_prepare_ctx;

static char *
job_shard_label(const syncd_relation *rel)
{
	return xasprintf("%s.%s.%s", rel->database ? rel->database : "",
	                 rel->schema, rel->table);
}

static const char *
job_type(const syncd_column *c)
{
	return c->type_name ? c->type_name : "?";
}

static uint32_t
job_find_column(const syncd_relation *rel, const char *name)
{
	for (uint32_t i = 0; i < rel->ncolumns; i++)
		if (strcmp(rel->columns[i].name, name) == 0)
			return i;
	return UINT32_MAX;
}

/* How rel differs from the first shard g, or NULL when it does not. */
static char *
job_shard_diff(const job_shard *g, const syncd_relation *rel)
{
	char *label = job_shard_label(rel), *out = NULL;

	for (uint32_t i = 0; i < g->ncolumns && !out; i++) {
		uint32_t k = job_find_column(rel, g->names[i]);
		if (k == UINT32_MAX)
			out = xasprintf("column %s (%s) of %s is missing in %s",
			                g->names[i], g->types[i], g->label,
			                label);
		else if (strcmp(job_type(&rel->columns[k]), g->types[i]) != 0)
			out = xasprintf("column %s is %s in %s but %s in %s",
			                g->names[i], g->types[i], g->label,
			                job_type(&rel->columns[k]), label);
		else if ((rel->columns[k].flags & SYNCD_COL_KEY) !=
		         (g->flags[i] & SYNCD_COL_KEY))
			out = xasprintf(
			    "column %s is %sin the primary key of %s "
			    "but %sin that of %s",
			    g->names[i],
			    g->flags[i] & SYNCD_COL_KEY ? "" : "not ", g->label,
			    rel->columns[k].flags & SYNCD_COL_KEY ? "" : "not ",
			    label);
	}
	for (uint32_t k = 0; k < rel->ncolumns && !out; k++) {
		bool known = false;
		for (uint32_t i = 0; i < g->ncolumns && !known; i++)
			known = strcmp(g->names[i], rel->columns[k].name) == 0;
		if (!known)
			out = xasprintf("column %s (%s) of %s is missing in %s",
			                rel->columns[k].name,
			                job_type(&rel->columns[k]), label,
			                g->label);
	}
	free(label);
	return out;
}

/* Records rel as a shard of its logical table; false (logged) when its
 * columns differ from the first shard's. */
static bool
job_shard_add(job_prepare_ctx *c, const syncd_relation *rel)
{
	const logical_table *lt =
	    router_logical_table(c->j, rel->database, rel->table);
	job_shard *g;
	char *diff;

	c->current = NULL;
	if (!lt)
		return true;
	g = &c->shards[lt - c->j->ltables];
	c->current = g;
	g->count++;
	if (!g->label) {
		g->label = job_shard_label(rel);
		g->ncolumns = rel->ncolumns;
		g->names = xcalloc(rel->ncolumns + 1, sizeof *g->names);
		g->types = xcalloc(rel->ncolumns + 1, sizeof *g->types);
		g->flags = xcalloc(rel->ncolumns + 1, sizeof *g->flags);
		for (uint32_t i = 0; i < rel->ncolumns; i++) {
			g->names[i] = xstrdup(rel->columns[i].name);
			g->types[i] = xstrdup(job_type(&rel->columns[i]));
			g->flags[i] = rel->columns[i].flags;
		}
		return true;
	}
	diff = job_shard_diff(g, rel);
	if (!diff)
		return true;
	log_error("[logical_table.%s]: the shards' columns differ: %s; make "
	          "them the same (ALTER TABLE), or narrow source_db_filter / "
	          "source_table_filter",
	          lt->name, diff);
	free(diff);
	return false;
}

static void
job_shards_free(job *j, job_shard *shards)
{
	for (size_t i = 0; shards && i < j->nltables; i++) {
		job_shard *g = &shards[i];
		for (uint32_t k = 0; k < g->ncolumns; k++) {
			free(g->names[k]);
			free(g->types[k]);
		}
		free(g->names);
		free(g->types);
		free(g->flags);
		free(g->label);
	}
	free(shards);
}

/* Hands one table, as the transforms make it, to the sink with its target
 * names, as the router will name it (and with column names folded the
 * same way). */
static syncd_status
job_prepare_routed(void *arg, const syncd_event *ev)
{
	job_prepare_ctx *c = arg;
	const syncd_relation *rel = ev->rel;
	instance *sink = c->j->sink;
	syncd_relation *r;
	syncd_status st;

	if (ev->type != SYNCD_EV_RELATION || !rel)
		return SYNCD_OK;
	/* a key column a transform added tells the shards' rows apart */
	for (uint32_t i = 0; c->current && i < rel->ncolumns; i++)
		if ((router_column(rel, i)->flags & SYNCD_COL_KEY) &&
		    job_find_column(c->src, router_column(rel, i)->name) ==
		        UINT32_MAX)
			c->current->distinct_key = true;
	r = router_copy(c->j, rel, ROUTER_SINK | ROUTER_DETAILS);
	st = sink->plugin->ops.sink.prepare_table(sink->state, r, c->what);
	c->n++;
	if (st != SYNCD_OK) {
		c->failed++;
		if (c->what != SYNCD_PREPARE_CHECK)
			log_error("%s target of %s.%s: %s", sink->prefix,
			          rel->schema, rel->table, plugerr_msg(sink));
	}
	router_free(r);
	/* a check reports every table; creating and starting stop at the
	 * first failure */
	return c->what == SYNCD_PREPARE_CHECK ? SYNCD_OK : st;
}

/* One selected table: through the transforms (which may add columns),
 * then to the sink. */
static syncd_status
job_prepare_one(void *arg, const syncd_relation *in)
{
	job_prepare_ctx *c = arg;
	/* transforms see it with its target names */
	syncd_relation *rel = router_copy(c->j, in, ROUTER_DETAILS);
	syncd_event ev = {
	    .size = sizeof ev, .type = SYNCD_EV_RELATION, .rel = rel};
	syncd_status st;

	if (c->j->nltables && !job_shard_add(c, rel)) {
		c->failed++;
		router_free(rel);
		return c->what == SYNCD_PREPARE_CHECK ? SYNCD_OK : SYNCD_FATAL;
	}
	c->src = rel;
	st = chain_apply(c->j, &ev, job_prepare_routed, c);
	c->src = NULL;
	router_free(rel);
	return st;
}

typedef struct job_names_ctx {
	job *j;
	job_targets targets;
	size_t failed;
} job_names_ctx;

/* One selected table's target names: refused (logged) when PostgreSQL
 * would cut them or another table goes there too. */
static syncd_status
job_names_one(void *arg, const syncd_relation *in)
{
	job_names_ctx *c = arg;
	syncd_relation *rel = router_copy(c->j, in, 0);
	char *schema, *table, *why;

	router_target(c->j, rel, &schema, &table);
	why = job_target_problem(c->j, &c->targets, rel, schema, table);
	if (why) {
		log_error("%s", why);
		c->failed++;
	}
	free(why);
	free(schema);
	free(table);
	router_free(rel);
	return SYNCD_OK;
}

job_prepared
prepare_tables(job *j, syncd_prepare what, bool *supported)
{
	job_prepare_ctx c = {.j = j, .what = what};
	job_names_ctx names = {.j = j};
	instance *src = j->source, *sink = j->sink;
	syncd_status st;

	*supported = src->plugin->ops.source.list_tables &&
	             sink->plugin->ops.sink.prepare_table;
	if (!*supported)
		return JOB_PREPARED;
	/* names first: nothing is created for a job that cannot run */
	st = src->plugin->ops.source.list_tables(src->state, job_names_one,
	                                         &names);
	job_targets_free(&names.targets);
	if (st != SYNCD_OK && names.failed == 0) {
		log_error("%s could not list its tables: %s", src->prefix,
		          plugerr_msg(src));
		return JOB_PREPARE_SOURCE;
	}
	if (names.failed && what != SYNCD_PREPARE_CHECK)
		return JOB_PREPARE_TABLES;
	c.failed = names.failed;
	c.shards = xcalloc(j->nltables + 1, sizeof *c.shards);
	st = src->plugin->ops.source.list_tables(src->state, job_prepare_one,
	                                         &c);
	for (size_t i = 0; i < j->nltables; i++) {
		const job_shard *g = &c.shards[i];
		/* the shards agree: what they have now is known to all */
		if (what == SYNCD_PREPARE_START && c.failed == 0 && g->count)
			shardcols_seed(j, i, g->names, g->ncolumns);
		if (g->count == 0 && st == SYNCD_OK)
			log_warning("[logical_table.%s]: no source table "
			            "matches (syncd --preview lists what the "
			            "filters select)",
			            j->ltables[i].name);
		else if (what == SYNCD_PREPARE_CHECK && g->count > 1 &&
		         !g->distinct_key)
			log_warning(
			    "[logical_table.%s]: %zu source tables go into "
			    "one target with the key of %s: rows of different "
			    "shards with the same key overwrite each other. "
			    "Unless keys are unique across shards, add a "
			    "[transform.NAME] with plugin = udf, field.origin "
			    "= varchar(200) : concat(source.database, '.', "
			    "source.table) and key = origin",
			    j->ltables[i].name, g->count, g->label);
	}
	job_shards_free(j, c.shards);
	if (st != SYNCD_OK && c.failed == 0) {
		log_error("%s could not list its tables: %s", src->prefix,
		          plugerr_msg(src));
		return JOB_PREPARE_SOURCE;
	}
	if (what == SYNCD_PREPARE_CREATE && c.failed == 0)
		log_info("%s %zu target table(s) checked; missing ones created",
		         sink->prefix, c.n);
	return c.failed == 0 ? JOB_PREPARED : JOB_PREPARE_TABLES;
}

bool
prepare_one(job *j, const syncd_relation *rel)
{
	job_prepare_ctx c = {.j = j, .what = SYNCD_PREPARE_START};
	syncd_status st;

	if (!j->sink->plugin->ops.sink.prepare_table)
		return true;
	c.shards = xcalloc(j->nltables + 1, sizeof *c.shards);
	st = job_prepare_one(&c, rel);
	job_shards_free(j, c.shards);
	return st == SYNCD_OK && c.failed == 0;
}
