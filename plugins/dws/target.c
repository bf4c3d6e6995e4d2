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
dws_free_shape(syncd_relation *shape)
{
	if (!shape)
		return;
	for (uint32_t i = 0; i < shape->ncolumns; i++) {
		free((char *) shape->columns[i].name);
		free((char *) shape->columns[i].type_name);
	}
	free((syncd_column *) shape->columns);
	free((char *) shape->target_schema);
	free((char *) shape->target_table);
	free(shape);
}

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
	dws_free_shape(t->shape);
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
		    a->columns[i].typmod != c->typmod ||
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
		                         .type_name = sc->type_name
		                                          ? strdup(sc->type_name)
		                                          : NULL,
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

/* ---- schema.evolution = add --------------------------------------------- */

enum { DWS_FAM_NONE, DWS_FAM_INT, DWS_FAM_FLOAT, DWS_FAM_VARCHAR,
       DWS_FAM_CHAR, DWS_FAM_NUMERIC };

#define DWS_UNBOUNDED 2147483647L

/* A type's family and sizes, from its format_type spelling: integers and
 * floats by bytes, character types by length, numeric by precision and
 * scale (unbounded: DWS_UNBOUNDED). */
static int
dws_type_class(const char *t, long *a, long *b)
{
	static const struct {
		const char *name;
		int fam;
		long size;
	} fixed[] = {{"smallint", DWS_FAM_INT, 2},
	             {"integer", DWS_FAM_INT, 4},
	             {"bigint", DWS_FAM_INT, 8},
	             {"real", DWS_FAM_FLOAT, 4},
	             {"double precision", DWS_FAM_FLOAT, 8},
	             {"text", DWS_FAM_VARCHAR, DWS_UNBOUNDED},
	             {"character varying", DWS_FAM_VARCHAR, DWS_UNBOUNDED},
	             {"numeric", DWS_FAM_NUMERIC, DWS_UNBOUNDED}};

	*a = *b = 0;
	if (!t)
		return DWS_FAM_NONE;
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		if (strcmp(t, fixed[i].name) == 0) {
			*a = fixed[i].size;
			return fixed[i].fam;
		}
	if (sscanf(t, "character varying(%ld)", a) == 1)
		return DWS_FAM_VARCHAR;
	if (sscanf(t, "character(%ld)", a) == 1)
		return DWS_FAM_CHAR;
	if (sscanf(t, "numeric(%ld,%ld)", a, b) == 2)
		return DWS_FAM_NUMERIC;
	if (sscanf(t, "numeric(%ld)", a) == 1)
		return DWS_FAM_NUMERIC;
	return DWS_FAM_NONE;
}

/* Whether type `to` holds every value of type `from` (the same family,
 * no smaller). */
static bool
dws_type_holds(const char *to, const char *from)
{
	long ta, tb, fa, fb;
	int ft = dws_type_class(to, &ta, &tb), ff = dws_type_class(from, &fa, &fb);

	if (ft == DWS_FAM_NONE || ft != ff)
		return false;
	if (ft != DWS_FAM_NUMERIC)
		return ta >= fa;
	if (ta == DWS_UNBOUNDED)
		return true;
	return fa != DWS_UNBOUNDED && tb >= fb && ta - tb >= fa - fb;
}

static bool
dws_shape_has(const syncd_relation *rel, const char *name)
{
	for (uint32_t i = 0; rel && i < rel->ncolumns; i++)
		if (strcmp(dws_column(rel, i)->name, name) == 0)
			return true;
	return false;
}

static const syncd_column *
dws_shape_col(const syncd_relation *rel, const char *name)
{
	for (uint32_t i = 0; rel && i < rel->ncolumns; i++)
		if (strcmp(rel->columns[i].name, name) == 0)
			return &rel->columns[i];
	return NULL;
}

/* Runs one ALTER of target t in the worker's transaction (or, on the
 * session for checks, logs what it would do). */
static dws_rc
dws_alter(dws_worker *w, dws_target *t, const char *sql, const char *what,
          const char *src)
{
	dws_rc rc;

	if (w->checking) {
		SYNCD_LOG_INFO(w->s->host,
		               "target table %s: %s for source table %s at "
		               "start (schema.evolution = add): %s",
		               t->label, what, src, sql);
		return DWS_OK;
	}
	rc = dws_exec(w, "changing a target table", sql, 0, NULL, NULL);
	if ((rc == DWS_FATAL || rc == DWS_DATA) && dws_last_sqlstate() &&
	    strcmp(dws_last_sqlstate(), "42701") == 0) {
		/* another worker (another shard's, another key's) added it
		 * first: the batch is written again and finds it there */
		SYNCD_LOG_INFO(w->s->host,
		               "target table %s: %s for source table %s by "
		               "another session meanwhile; writing the batch "
		               "again",
		               t->label, what, src);
		return DWS_RETRY;
	}
	if (rc == DWS_FATAL || rc == DWS_DATA) {
		TERR(w, dws_last_sqlstate(),
		     "target table %s: could not apply \"%s\" (%s; "
		     "schema.evolution = add): %s; do it by hand, or set "
		     "schema.evolution = none",
		     t->label, sql, what, PQerrorMessage(w->conn));
		return DWS_FATAL;
	}
	if (rc != DWS_OK)
		return rc; /* a lost connection, a deadlock: tried again */
	w->altered_tx = w->tx;
	SYNCD_LOG_INFO(w->s->host,
	               "target table %s: %s for source table %s "
	               "(schema.evolution = add): %s",
	               t->label, what, src, sql);
	return DWS_OK;
}

/*
 * The target follows its source table's columns (schema.evolution = add),
 * in the transaction of the batch whose changes use them: a column added
 * at the source is added with its mapped type (and its constant default,
 * NOT NULL only with one), a type the source widened is widened, a column
 * the source dropped is kept and left to its default (NOT NULL dropped).
 * A rename (a column of the previous shape replaced in place by one of
 * another name and the same type) and any other change of type stop the
 * job: applying them would lose values. old: the previous shape of the
 * relation in this session, or NULL. *changed: the target was altered.
 */
static dws_rc
dws_evolve(dws_worker *w, dws_target *t, const syncd_relation *rel,
           const syncd_relation *old, PGresult *r, const char *src,
           bool *changed)
{
	dws_buf sql = {0};
	dws_rc rc = DWS_OK;

	*changed = false;
	for (uint32_t i = 0; i < rel->ncolumns && rc == DWS_OK; i++) {
		const syncd_column *sc = dws_column(rel, i);
		const syncd_column *oc = dws_shape_col(old, sc->name);
		char *want = dws_create_type(w->dialect, sc, NULL);
		char *q = dws_quote(w, sc->name);
		int row = -1;

		for (int k = 0; k < PQntuples(r); k++)
			if (strcmp(PQgetvalue(r, k, 0), sc->name) == 0)
				row = k;
		dws_buf_reset(&sql);
		if (row < 0 && old && i < old->ncolumns && !oc &&
		    !dws_shape_has(rel, old->columns[i].name) &&
		    old->columns[i].type_oid == sc->type_oid) {
			char *from = dws_quote(w, old->columns[i].name);
			TERR(w, NULL,
			     "column %s of source table %s was renamed to %s "
			     "while the job streamed: as a new column its "
			     "values would be lost at the destination; rename "
			     "it there too (ALTER TABLE %s RENAME COLUMN %s TO "
			     "%s) and start the job again",
			     old->columns[i].name, src, sc->name, t->qtable,
			     from, q);
			free(from);
			rc = DWS_FATAL;
		} else if (row < 0 && want) {
			dws_buf_printf(&sql, "ALTER TABLE %s ADD COLUMN %s %s",
			               t->qtable, q, want);
			if (sc->default_value) {
				dws_buf_printf(&sql, " DEFAULT %s",
				               sc->default_value);
				if (sc->flags & SYNCD_COL_NOT_NULL)
					dws_buf_puts(&sql, " NOT NULL");
			}
			rc = dws_alter(w, t, sql.data, "a column added", src);
			*changed = true;
		} else if (row >= 0 && want &&
		           strcmp(PQgetvalue(r, row, 1), want) != 0) {
			const char *dest = PQgetvalue(r, row, 1);
			bool retyped = oc && (oc->type_oid != sc->type_oid ||
			                      oc->typmod != sc->typmod);
			if (retyped &&
			    !dws_type_holds(sc->type_name, oc->type_name)) {
				TERR(w, NULL,
				     "column %s of source table %s changed type "
				     "from %s to %s while the job streamed, which "
				     "is not a widening: the target's column (%s "
				     "in %s) is left as it is and the job stops "
				     "before the changes that follow; change the "
				     "target column by hand (ALTER TABLE %s ALTER "
				     "COLUMN %s TYPE %s USING ...) and start the "
				     "job again, or re-sync the table",
				     sc->name, src,
				     oc->type_name ? oc->type_name : "?",
				     sc->type_name ? sc->type_name : "?", dest,
				     t->label, t->qtable, q, want);
				rc = DWS_FATAL;
			} else if (retyped && dws_type_holds(want, dest) &&
			           !dws_type_holds(dest, want)) {
				dws_buf_printf(&sql,
				               "ALTER TABLE %s ALTER COLUMN %s "
				               "TYPE %s",
				               t->qtable, q, want);
				rc = dws_alter(w, t, sql.data,
				               "a column's type widened", src);
				*changed = true;
			}
		}
		free(want);
		free(q);
	}
	/* target columns the source does not have (any more) */
	for (int k = 0; k < PQntuples(r) && rc == DWS_OK; k++) {
		const char *name = PQgetvalue(r, k, 0);
		char *q;
		if (dws_shape_has(rel, name) || !dws_shape_has(old, name))
			continue; /* the target's own columns are its own */
		SYNCD_LOG_INFO(w->s->host,
		               "column %s of source table %s was dropped: "
		               "target table %s keeps it, and leaves it to its "
		               "default from now on",
		               name, src, t->label);
		if (PQgetvalue(r, k, 3)[0] != 't' ||
		    PQgetvalue(r, k, 4)[0] != 'f')
			continue;
		q = dws_quote(w, name);
		dws_buf_reset(&sql);
		dws_buf_printf(&sql, "ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL",
		               t->qtable, q);
		rc = dws_alter(w, t, sql.data,
		               "a NOT NULL column without default the source "
		               "does not have made nullable",
		               src);
		*changed = true;
		free(q);
	}
	dws_buf_free(&sql);
	return rc;
}

static dws_rc
dws_read_columns(dws_worker *w, const syncd_relation *rel, PGresult **r)
{
	const char *params[2] = {rel->target_schema, rel->target_table};

	return dws_exec(
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
	    2, params, r);
}

dws_target *
dws_target_get(dws_worker *w, const syncd_relation *rel, dws_rc *rc)
{
	dws_state *s = w->s;
	dws_target *t, **pp;
	syncd_relation *old = NULL; /* the shape before, in this session */
	PGresult *r = NULL;
	char *src = NULL;

	*rc = DWS_OK;
	for (pp = &w->targets; *pp; pp = &(*pp)->next)
		if ((*pp)->rel_id == rel->id) {
			if (dws_same_shape(*pp, rel))
				return *pp;
			t = *pp;
			*pp = t->next;
			old = t->shape;
			t->shape = NULL;
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

	*rc = dws_read_columns(w, rel, &r);
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
	if (s->evolve && (w->evolving || w->checking || w->starting)) {
		bool changed = false;
		*rc = dws_evolve(w, t, rel, old, r, src, &changed);
		if (*rc != DWS_OK)
			goto fail;
		if (changed && !w->checking) {
			PQclear(r);
			r = NULL;
			*rc = dws_read_columns(w, rel, &r);
			if (*rc != DWS_OK)
				goto fail;
		}
	}
	for (int i = 0; i < t->ncols; i++) {
		const syncd_column *sc = dws_column(rel, (uint32_t) i);
		dws_col *c = &t->cols[i];
		int row = -1;
		for (int k = 0; k < PQntuples(r); k++)
			if (strcmp(PQgetvalue(r, k, 0), sc->name) == 0)
				row = k;
		if (row < 0 && s->evolve && w->checking) {
			/* added at start (logged above) */
			c->name = strdup(sc->name);
			c->qname = dws_quote(w, sc->name);
			c->generic = dws_create_type(w->dialect, sc, NULL);
			c->stage = dws_create_type(w->dialect, sc, NULL);
			c->key = (sc->flags & SYNCD_COL_KEY) != 0;
			if (c->key)
				t->keys[t->nkeys++] = i;
			continue;
		}
		if (row < 0) {
			char *q = dws_quote(w, sc->name);
			char *type = dws_create_type(w->dialect, sc, NULL);
			TERR(w, "42703",
			     "target table %s has no column \"%s\" for source "
			     "table %s; add it (ALTER TABLE %s ADD COLUMN %s "
			     "%s)%s",
			     t->label, sc->name, src, t->qtable, q,
			     type ? type : "TYPE",
			     s->evolve ? "" : ", or set schema.evolution = add");
			free(q);
			free(type);
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
	dws_free_shape(old);
	t->next = w->targets;
	w->targets = t;
	return t;
fail:
	if (r)
		PQclear(r);
	free(src);
	dws_free_shape(old);
	dws_free_target(t);
	return NULL;
}
