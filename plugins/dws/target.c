/*
 * target.c - the destination's view of a target table, per worker: its
 * columns matched by name with the source's, the casts their values need,
 * its key, and the checks that it can take the source's rows (columns,
 * NOT NULL without default, reserved names, a unique index on the key).
 * Rebuilt when the source table changes shape.
 */
#define _GNU_SOURCE /* asprintf */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dws.h"

static void
dws_free_target(dws_target *t)
{
	for (int i = 0; i < t->ncols; i++) {
		free(t->cols[i].qname);
		free(t->cols[i].name);
		free(t->cols[i].generic);
		free(t->cols[i].stage);
		free(t->cols[i].param);
	}
	if (t->shape) {
		for (uint32_t i = 0; i < t->shape->ncolumns; i++)
			free((char *) t->shape->columns[i].name);
		free((syncd_column *) t->shape->columns);
		free((char *) t->shape->target_schema);
		free((char *) t->shape->target_table);
		free(t->shape);
	}
	free(t->cols);
	free(t->keys);
	free(t->qtable);
	free(t->label);
	free(t->stage);
	free(t);
}

void
dws_targets_free(dws_worker *w)
{
	while (w->targets) {
		dws_target *n = w->targets->next;
		dws_free_target(w->targets);
		w->targets = n;
	}
}

static bool
dws_same_shape(const dws_target *t, const syncd_relation *rel)
{
	const syncd_relation *a = t->shape;
	if (a->ncolumns != rel->ncolumns ||
	    strcmp(a->target_schema, rel->target_schema) != 0 ||
	    strcmp(a->target_table, rel->target_table) != 0)
		return false;
	for (uint32_t i = 0; i < a->ncolumns; i++) {
		const syncd_column *c = dws_column(rel, i);
		if (strcmp(a->columns[i].name, c->name) != 0 ||
		    a->columns[i].type_oid != c->type_oid ||
		    a->columns[i].flags != c->flags)
			return false;
	}
	return true;
}

static syncd_relation *
dws_copy_shape(const syncd_relation *rel)
{
	syncd_relation *c = calloc(1, sizeof *c);
	syncd_column *cols = calloc(rel->ncolumns + 1, sizeof *cols);
	c->size = sizeof *c;
	c->id = rel->id;
	c->ncolumns = rel->ncolumns;
	for (uint32_t i = 0; i < rel->ncolumns; i++) {
		const syncd_column *sc = dws_column(rel, i);
		cols[i] = (syncd_column){.size = sizeof(syncd_column),
		                         .name = strdup(sc->name),
		                         .type_oid = sc->type_oid,
		                         .typmod = sc->typmod,
		                         .flags = sc->flags,
		                         .key_position = sc->key_position};
	}
	c->columns = cols;
	c->target_schema = strdup(rel->target_schema);
	c->target_table = strdup(rel->target_table);
	return c;
}

#define DWS_OID_TIMESTAMPTZ 1184
#define DWS_OID_TIMETZ      1266

#define TERR(w, st, ...)                                                       \
	do {                                                                   \
		ERR((w)->s, st, __VA_ARGS__);                                  \
		if ((w)->checking)                                             \
			SYNCD_LOG_ERROR((w)->s->host, __VA_ARGS__);            \
	} while (0)

/* Whether the target has a unique index on exactly t's key columns. */
static dws_rc
dws_key_index(dws_worker *w, dws_target *t, bool *found)
{
	const char *params[1] = {t->qtable};
	PGresult *r = NULL;
	dws_rc rc;

	*found = false;
	rc = dws_exec(w, "reading the target table's unique indexes",
	             "SELECT i.indexrelid, a.attname FROM pg_catalog.pg_index "
	             "i JOIN pg_catalog.pg_attribute a ON a.attrelid = "
	             "i.indrelid AND a.attnum = ANY (i.indkey) WHERE "
	             "i.indrelid = $1::regclass AND i.indisunique AND "
	             "i.indexprs IS NULL AND i.indpred IS NULL ORDER BY 1",
	             1, params, &r);
	if (rc != DWS_OK)
		return rc;
	for (int k = 0; k < PQntuples(r) && !*found;) {
		const char *idx = PQgetvalue(r, k, 0);
		int n = 0, hits = 0;
		for (;
		     k < PQntuples(r) && strcmp(PQgetvalue(r, k, 0), idx) == 0;
		     k++) {
			n++;
			for (int c = 0; c < t->nkeys; c++)
				if (strcmp(PQgetvalue(r, k, 1),
				           t->cols[t->keys[c]].name) == 0)
					hits++;
		}
		*found = n == t->nkeys && hits == t->nkeys;
	}
	PQclear(r);
	return DWS_OK;
}

/* ON CONFLICT (key) needs a unique index on exactly the source's key (or,
 * for a table created for the full phase, its primary key waiting in
 * syncd_ddl until its copy is done). */
static bool
dws_key_matches(dws_worker *w, dws_target *t, const syncd_relation *rel,
                const char *src, dws_rc *rc)
{
	bool pending = false, found = false;
	dws_buf keys = {0};

	*rc = dws_key_index(w, t, &found);
	if (*rc != DWS_OK || found)
		return *rc == DWS_OK;
	*rc =
	    dws_ddl_pending(w, rel->target_schema, rel->target_table, &pending);
	if (*rc != DWS_OK || pending)
		return *rc == DWS_OK;
	/* the copy of another source table of this target (a logical table)
	 * may have created the key and deleted its pending DDL, in one
	 * transaction, between the two reads above: read the indexes again,
	 * after the DDL was seen gone */
	*rc = dws_key_index(w, t, &found);
	if (*rc != DWS_OK || found)
		return *rc == DWS_OK;
	for (int c = 0; c < t->nkeys; c++)
		dws_buf_printf(&keys, "%s%s", c ? ", " : "",
		               t->cols[t->keys[c]].name);
	TERR(w, "42P10",
	     "target table %s has no primary key or unique index on (%s), the "
	     "key of source table %s; add one: syncd writes by key",
	     t->label, keys.data, src);
	dws_buf_free(&keys);
	*rc = DWS_FATAL;
	return false;
}

dws_target *
dws_target_get(dws_worker *w, const syncd_relation *rel, dws_rc *rc)
{
	dws_state *s = w->s;
	dws_target *t, **pp;
	const char *params[2] = {rel->target_schema, rel->target_table};
	PGresult *r = NULL;
	char *src = NULL;

	*rc = DWS_OK;
	for (pp = &w->targets; *pp; pp = &(*pp)->next)
		if ((*pp)->rel_id == rel->id) {
			if (dws_same_shape(*pp, rel))
				return *pp;
			t = *pp;
			*pp = t->next;
			dws_free_target(t);
			break;
		}

	t = calloc(1, sizeof *t);
	t->rel_id = rel->id;
	t->shape = dws_copy_shape(rel);
	t->ncols = (int) rel->ncolumns;
	t->cols = calloc((size_t) t->ncols + 1, sizeof *t->cols);
	t->keys = calloc((size_t) t->ncols + 1, sizeof *t->keys);
	t->qtable = dws_qualified(w, rel->target_schema, rel->target_table);
	{
		if (asprintf(&t->label, "%s.%s", rel->target_schema,
		             rel->target_table) < 0)
			abort();
		if (asprintf(&src, "%s.%s.%s",
		             rel->database ? rel->database : "", rel->schema,
		             rel->table) < 0)
			abort();
	}

	*rc = dws_exec(
	    w, "reading the target table's columns",
	    "SELECT a.attname, pg_catalog.format_type(a.atttypid, "
	    "a.atttypmod), "
	    "pg_catalog.quote_ident(tn.nspname) || '.' || "
	    "pg_catalog.quote_ident(ty.typname), a.attnotnull, a.atthasdef, "
	    "a.atttypid "
	    "FROM pg_catalog.pg_class c "
	    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
	    "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid "
	    "JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid "
	    "JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace "
	    "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', "
	    "'p') AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
	    2, params, &r);
	if (*rc != DWS_OK)
		goto fail;
	if (PQntuples(r) == 0) {
		TERR(
		    w, "42P01",
		    "target table %s of source table %s does not exist; create "
		    "it in the destination (schema %s must exist)",
		    t->label, src, rel->target_schema);
		*rc = DWS_FATAL;
		goto fail;
	}
	for (int i = 0; i < t->ncols; i++) {
		const syncd_column *sc = dws_column(rel, (uint32_t) i);
		dws_col *c = &t->cols[i];
		int row = -1;
		for (int k = 0; k < PQntuples(r); k++)
			if (strcmp(PQgetvalue(r, k, 0), sc->name) == 0)
				row = k;
		if (row < 0) {
			TERR(w, "42703",
			     "target table %s has no column \"%s\" for source "
			     "table %s; add the column to the target table%s",
			     t->label, sc->name, src,
			     "" /* names are matched exactly */);
			*rc = DWS_FATAL;
			goto fail;
		}
		if (s->mode == DWS_MODE_COPY &&
		    (strcmp(sc->name, "syncd_op") == 0 ||
		     strcmp(sc->name, "syncd_set") == 0)) {
			TERR(
			    w, NULL,
			    "source table %s has a column named %s, which copy "
			    "mode uses in its staging table; use write_mode = "
			    "upsert for this table's job",
			    src, sc->name);
			*rc = DWS_FATAL;
			goto fail;
		}
		c->name = strdup(sc->name);
		c->qname = dws_quote(w, sc->name);
		c->generic = strdup(PQgetvalue(r, row, 2));
		c->key = (sc->flags & SYNCD_COL_KEY) != 0;
		if (c->key)
			t->keys[t->nkeys++] = i;
		/* a zone-aware source value written into a zone-less column is
		 * converted to the session's zone (sink.server.timezone) */
		{
			unsigned dst = (unsigned) atol(PQgetvalue(r, row, 5));
			const char *cast = NULL;
			if (sc->type_oid == DWS_OID_TIMESTAMPTZ &&
			    dst != DWS_OID_TIMESTAMPTZ)
				cast = "timestamp with time zone";
			else if (sc->type_oid == DWS_OID_TIMETZ &&
			         dst != DWS_OID_TIMETZ)
				cast = "time with time zone";
			c->param = cast ? strdup(cast) : NULL;
			c->stage = strdup(cast ? cast : PQgetvalue(r, row, 1));
		}
	}
	if (t->nkeys == 0) {
		TERR(w, NULL,
		     "source table %s has no primary key; give it one (syncd "
		     "writes by key)",
		     src);
		*rc = DWS_FATAL;
		goto fail;
	}
	for (int k = 0; k < PQntuples(r); k++) {
		const char *name = PQgetvalue(r, k, 0);
		bool mapped = false;
		for (int i = 0; i < t->ncols && !mapped; i++)
			mapped = strcmp(t->cols[i].name, name) == 0;
		if (!mapped && PQgetvalue(r, k, 3)[0] == 't' &&
		    PQgetvalue(r, k, 4)[0] == 'f') {
			TERR(w, NULL,
			     "target table %s has a NOT NULL column \"%s\" "
			     "without default that source table %s does not "
			     "have; give it a default or drop NOT NULL",
			     t->label, name, src);
			*rc = DWS_FATAL;
			goto fail;
		}
	}
	if (s->verify_columns && PQntuples(r) != t->ncols) {
		TERR(w, NULL,
		     "sink.verify.column-number: target table %s has %d "
		     "columns, source table %s has %d; make them equal or set "
		     "sink.verify.column-number = false",
		     t->label, PQntuples(r), src, t->ncols);
		*rc = DWS_FATAL;
		goto fail;
	}
	for (int i = 0; i < t->ncols; i++)
		for (const char *const *n = w->dialect->reserved_columns; *n;
		     n++)
			if (strcasecmp(t->cols[i].name, *n) == 0) {
				TERR(w, NULL,
				     "column \"%s\" of source table %s has the "
				     "name "
				     "of a %s system column; rename it at the "
				     "source",
				     t->cols[i].name, src, w->dialect->name);
				*rc = DWS_FATAL;
				goto fail;
			}
	if (!dws_key_matches(w, t, rel, src, rc))
		goto fail;
	PQclear(r);
	free(src);
	t->next = w->targets;
	w->targets = t;
	return t;
fail:
	if (r)
		PQclear(r);
	free(src);
	dws_free_target(t);
	return NULL;
}
