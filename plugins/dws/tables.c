/*
 * tables.c - the target tables ahead of the stream: the pre-checks of
 * `syncd --check` (schemas, tables, rights, key, columns, foreign keys,
 * triggers), and automatic table creation (auto_create_table, `syncd
 * --create-tables`) from the source's description of a table. Schemas are
 * never created for target tables, and an existing table is never altered
 * or dropped.
 */
#define _GNU_SOURCE /* asprintf */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dws.h"

syncd_status
dws_admin_open(dws_state *s, dws_worker **out)
{
	dws_worker *w = NULL;
	syncd_status st;

	*out = NULL;
	/* a connection lost since (the destination restarted) is made
	 * again: an operation that answered SYNCD_RETRY comes back here */
	if (s->admin && PQstatus(s->admin->conn) != CONNECTION_OK) {
		dws_targets_free(s->admin);
		dws_session_close(s->admin);
		s->admin = NULL;
	}
	if (!s->admin) {
		st = dws_session_open(s, -1, &w);
		if (st != SYNCD_OK)
			return st;
		dws_session_announce(w);
		s->admin = w;
	}
	*out = s->admin;
	return SYNCD_OK;
}

dws_worker *
dws_admin(dws_state *s)
{
	dws_worker *w = NULL;

	dws_admin_open(s, &w);
	return w;
}

/* ---- creating a table ------------------------------------------------- */

static void
dws_comment(dws_worker *w, dws_buf *sql, const char *on, const char *text)
{
	char *lit = PQescapeLiteral(w->conn, text, strlen(text));
	if (lit)
		dws_buf_printf(sql, "; COMMENT ON %s IS %s", on, lit);
	PQfreemem(lit);
}

/* The primary key's columns, quoted, in the key's own order when the source
 * gives every key column its place (key_position), else in column order:
 * the order decides the key's index and, on DWS, the distribution. */
static void
dws_key_list(dws_worker *w, const syncd_relation *rel, dws_buf *keys)
{
	uint32_t nkeys = 0;
	bool ordered = true; /* positions 1..nkeys, each taken once */

	for (uint32_t i = 0; i < rel->ncolumns; i++)
		if (dws_column(rel, i)->flags & SYNCD_COL_KEY)
			nkeys++;
	for (uint32_t pos = 1; pos <= nkeys && ordered; pos++) {
		uint32_t hits = 0;
		for (uint32_t i = 0; i < rel->ncolumns; i++)
			if ((dws_column(rel, i)->flags & SYNCD_COL_KEY) &&
			    dws_column(rel, i)->key_position == pos)
				hits++;
		ordered = hits == 1;
	}
	for (uint32_t pos = 1; pos <= (ordered ? nkeys : 1); pos++)
		for (uint32_t i = 0; i < rel->ncolumns; i++) {
			const syncd_column *c = dws_column(rel, i);
			char *q;
			if (!(c->flags & SYNCD_COL_KEY) ||
			    (ordered && c->key_position != pos))
				continue;
			q = dws_quote(w, c->name);
			dws_buf_printf(keys, "%s%s", keys->len ? ", " : "", q);
			free(q);
		}
}

/* defer: the table is created for the full phase, which loads it faster
 * without its primary key and indexes; they are built after its copy (their
 * DDL waits in syncd_ddl, recorded in the same transaction). */
static dws_rc
dws_create_table(dws_worker *w, const syncd_relation *rel, const char *qtable,
                 bool defer)
{
	const dws_dialect *d = w->dialect;
	const syncd_table_details *det = dws_details(rel);
	dws_buf sql = {0}, keys = {0}, later = {0};
	dws_buf *ix_sql;
	char *what = NULL;
	dws_rc rc;

	dws_buf_printf(&sql, "BEGIN; CREATE TABLE %s (", qtable);
	for (uint32_t i = 0; i < rel->ncolumns; i++) {
		const syncd_column *c = dws_column(rel, i);
		const syncd_column_details *cd = dws_column_details(rel, i);
		char *q = dws_quote(w, c->name),
		     *type =
		         dws_create_type(d, c, cd ? cd->base_type_name : NULL);
		if (!type) {
			ERR(w->s, NULL,
			    "column %s of source table %s.%s has no type name; "
			    "create target table %s by hand",
			    c->name, rel->schema, rel->table, qtable);
			free(q);
			dws_buf_free(&sql);
			return DWS_FATAL;
		}
		dws_buf_printf(&sql, "%s%s %s", i ? ", " : "", q, type);
		if (c->default_value)
			dws_buf_printf(&sql, " DEFAULT %s", c->default_value);
		if (c->flags & SYNCD_COL_NOT_NULL)
			dws_buf_puts(&sql, " NOT NULL");
		free(q);
		free(type);
	}
	dws_key_list(w, rel, &keys);
	defer = defer && keys.len > 0;
	if (keys.len && !defer)
		dws_buf_printf(&sql, ", PRIMARY KEY (%s)", keys.data);
	dws_buf_puts(&sql, ")");
	if (d->distribute_by_hash && keys.len)
		dws_buf_printf(&sql, " DISTRIBUTE BY HASH (%s)", keys.data);
	if (defer)
		dws_buf_printf(&later, "ALTER TABLE %s ADD PRIMARY KEY (%s)",
		               qtable, keys.data);
	ix_sql = defer ? &later : &sql;
	for (uint32_t i = 0; det && det->indexes && i < det->nindexes; i++) {
		const syncd_index *ix = dws_index(det, i);
		bool valid = ix->ncolumns > 0 && ix->columns;
		for (uint32_t k = 0; valid && k < ix->ncolumns; k++)
			valid = ix->columns[k] < rel->ncolumns;
		if (!valid)
			continue;
		dws_buf_puts(ix_sql, "; CREATE INDEX");
		if (d->index_needs_name) {
			char *q = dws_quote(w, ix->name);
			dws_buf_printf(ix_sql, " %s", q);
			free(q);
		}
		dws_buf_printf(ix_sql, " ON %s (", qtable);
		for (uint32_t k = 0; k < ix->ncolumns; k++) {
			char *q =
			    dws_quote(w, dws_column(rel, ix->columns[k])->name);
			dws_buf_printf(ix_sql, "%s%s", k ? ", " : "", q);
			free(q);
		}
		dws_buf_puts(ix_sql, ")");
	}
	if (defer) {
		char *q = dws_qualified(w, w->s->state_schema, "syncd_ddl");
		char *job =
		    PQescapeLiteral(w->conn, w->s->job, strlen(w->s->job));
		char *sch = PQescapeLiteral(w->conn, rel->target_schema,
		                            strlen(rel->target_schema));
		char *tab = PQescapeLiteral(w->conn, rel->target_table,
		                            strlen(rel->target_table));
		char *ddl = PQescapeLiteral(w->conn, later.data, later.len);
		dws_buf_printf(
		    &sql,
		    "; DELETE FROM %s WHERE job = %s AND "
		    "target_schema = %s AND target_table = %s; INSERT "
		    "INTO %s VALUES (%s, %s, %s, %s)",
		    q, job, sch, tab, q, job, sch, tab, ddl);
		free(q);
		PQfreemem(job);
		PQfreemem(sch);
		PQfreemem(tab);
		PQfreemem(ddl);
	}
	if (det && det->comment) {
		char *on = NULL;
		if (asprintf(&on, "TABLE %s", qtable) >= 0)
			dws_comment(w, &sql, on, det->comment);
		free(on);
	}
	for (uint32_t i = 0; i < rel->ncolumns; i++) {
		const syncd_column_details *cd = dws_column_details(rel, i);
		if (cd && cd->comment) {
			char *q = dws_quote(w, dws_column(rel, i)->name),
			     *on = NULL;
			if (asprintf(&on, "COLUMN %s.%s", qtable, q) >= 0)
				dws_comment(w, &sql, on, cd->comment);
			free(on);
			free(q);
		}
	}
	dws_buf_puts(&sql, "; COMMIT");
	if (asprintf(&what, "creating target table %s.%s", rel->target_schema,
	             rel->target_table) < 0)
		abort();
	rc = defer ? dws_state_prepare(w) : DWS_OK;
	if (rc == DWS_OK)
		rc = dws_exec(w, what, sql.data, 0, NULL, NULL);
	if (rc != DWS_OK)
		PQclear(PQexec(w->conn, "ROLLBACK"));
	else
		SYNCD_LOG_INFO(
		    w->s->host,
		    "created target table %s.%s for source table %s.%s.%s%s",
		    rel->target_schema, rel->target_table,
		    rel->database ? rel->database : "", rel->schema, rel->table,
		    defer ? " (its primary key and indexes come after the "
		            "full copy)"
		          : "");
	free(what);
	dws_buf_free(&sql);
	dws_buf_free(&keys);
	dws_buf_free(&later);
	return rc;
}

/* ---- what an existing target table would do to the rows ----------------- */

/* A problem of an existing target: the job's error, and a line of --check. */
#define DWS_TABLE_ERR(w, checking, ...)                                        \
	do {                                                                   \
		ERR((w)->s, NULL, __VA_ARGS__);                                \
		if (checking)                                                  \
			SYNCD_LOG_ERROR((w)->s->host, __VA_ARGS__);            \
	} while (0)

/* A default expression (pg_get_expr) that gives every row the same value
 * within a transaction: no function call (a cast's type modifier is not
 * one), e.g. 0, 'x'::text, CURRENT_TIMESTAMP; not nextval(...), random(). */
static bool
dws_fixed_default(const char *e)
{
	for (size_t i = 0; e[i]; i++) {
		size_t k;
		if (e[i] == '\'') { /* a literal, '' inside */
			for (i++; e[i] && !(e[i] == '\'' && e[i + 1] != '\'');
			     i += e[i] == '\'' ? 2 : 1)
				;
			if (!e[i])
				break;
			continue;
		}
		if (e[i] != '(' || i == 0)
			continue;
		k = i;
		while (k > 0 && e[k - 1] == ' ')
			k--;
		if (k == 0 || !(isalnum((unsigned char) e[k - 1]) ||
		                e[k - 1] == '_' || e[k - 1] == '"'))
			continue; /* a parenthesis, not a call */
		/* a type name after :: (possibly of several words)? */
		while (k > 0 &&
		       (isalnum((unsigned char) e[k - 1]) || e[k - 1] == '_' ||
		        e[k - 1] == ' ' || e[k - 1] == '"' || e[k - 1] == '.'))
			k--;
		if (k >= 2 && e[k - 1] == ':' && e[k - 2] == ':')
			continue;
		return false;
	}
	return true;
}

/* Foreign keys and triggers of a target, which session_replication_role =
 * replica silences when the destination role may set it; an extra column
 * with a fixed default under a unique index (the second row would break
 * it); a source column that is generated at the destination. */
static bool
dws_check_target_more(dws_worker *w, const syncd_relation *rel,
                      const char *qtable, bool checking)
{
	dws_state *s = w->s;
	const char *params[1] = {qtable};
	char label[512];
	PGresult *r = NULL;
	bool ok = true;

	snprintf(label, sizeof label, "%s.%s", rel->target_schema,
	         rel->target_table);
	/* one round trip (a job may have thousands of tables), a row per
	 * finding: f (a foreign key: name, definition), t (a trigger: name,
	 * how it is enabled), u (a column of a unique index: index, column,
	 * default), g (a generated column: name) */
	{
		dws_buf sql = {0};
		dws_buf_puts(
		    &sql,
		    "SELECT 't', 0, tgname::text, tgenabled::text, NULL FROM "
		    "pg_catalog.pg_trigger WHERE tgrelid = $1::regclass AND "
		    "NOT tgisinternal AND tgenabled <> 'D' "
		    "UNION ALL SELECT 'u', a.attnum, ic.relname::text, "
		    "a.attname::text, pg_catalog.pg_get_expr(d.adbin, "
		    "d.adrelid) FROM pg_catalog.pg_index i JOIN "
		    "pg_catalog.pg_class ic ON ic.oid = i.indexrelid JOIN "
		    "pg_catalog.pg_attribute a ON a.attrelid = i.indrelid "
		    "AND a.attnum = ANY (i.indkey) LEFT JOIN "
		    "pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND "
		    "d.adnum = a.attnum WHERE i.indrelid = $1::regclass AND "
		    "i.indisunique AND i.indpred IS NULL AND i.indexprs IS "
		    "NULL");
		if (!s->replica)
			dws_buf_puts(&sql,
			             " UNION ALL SELECT 'f', 0, conname::text, "
			             "pg_catalog.pg_get_constraintdef(oid), NULL "
			             "FROM pg_catalog.pg_constraint WHERE conrelid "
			             "= $1::regclass AND contype = 'f'");
		if (PQserverVersion(w->conn) >= 120000)
			dws_buf_puts(&sql,
			             " UNION ALL SELECT 'g', attnum, "
			             "attname::text, NULL, NULL FROM "
			             "pg_catalog.pg_attribute WHERE attrelid = "
			             "$1::regclass AND attnum > 0 AND NOT "
			             "attisdropped AND attgenerated <> ''");
		dws_buf_puts(&sql, " ORDER BY 1, 3, 2");
		if (dws_exec(w, "reading the target table's keys, triggers "
		                "and generated columns",
		             sql.data, 1, params, &r) != DWS_OK) {
			dws_buf_free(&sql);
			return false;
		}
		dws_buf_free(&sql);
	}
	for (int i = 0; i < PQntuples(r); i++) {
		const char *name = PQgetvalue(r, i, 2);
		if (PQgetvalue(r, i, 0)[0] == 'f') {
			DWS_TABLE_ERR(
			    w, checking,
			    "target table %s has foreign key %s: %s; drop it "
			    "(the reference does not sync foreign keys: the "
			    "full copy and the workers write tables in "
			    "parallel), or let syncd run as a role that may "
			    "set session_replication_role (a superuser, or on "
			    "PostgreSQL 15: GRANT SET ON PARAMETER "
			    "session_replication_role TO the role)",
			    label, name, PQgetvalue(r, i, 3));
			ok = false;
		} else if (PQgetvalue(r, i, 0)[0] == 't') {
			/* Under replica only triggers enabled ALWAYS or
			 * REPLICA fire: someone asked for that, so they are
			 * named (a warning), not refused. Without it,
			 * ordinary (ORIGIN) triggers fire too and are
			 * refused. */
			char *q = dws_quote(w, name);
			char how = PQgetvalue(r, i, 3)[0];
			if (how == 'A' || (how == 'R' && s->replica))
				SYNCD_LOG_WARNING(
				    s->host,
				    "target table %s has trigger %s enabled "
				    "%s: it fires on replicated rows and may "
				    "rewrite their values (ALTER TABLE %s "
				    "ENABLE TRIGGER %s makes it an ordinary "
				    "one%s)",
				    label, name,
				    how == 'A' ? "ALWAYS" : "REPLICA", qtable,
				    q,
				    s->replica ? ", which syncd's sessions do "
				                 "not fire"
				               : "");
			else if (how == 'O' && !s->replica) {
				DWS_TABLE_ERR(
				    w, checking,
				    "target table %s has trigger %s, which "
				    "would fire on replicated rows and may "
				    "rewrite their values; drop or disable it "
				    "(ALTER TABLE %s DISABLE TRIGGER %s), or "
				    "let syncd run as a role that may set "
				    "session_replication_role (a superuser, or "
				    "on PostgreSQL 15: GRANT SET ON PARAMETER "
				    "session_replication_role TO the role)",
				    label, name, qtable, q);
				ok = false;
			}
			free(q);
		} else if (PQgetvalue(r, i, 0)[0] == 'g') {
			/* computed by the destination, never written */
			for (uint32_t c = 0; c < rel->ncolumns; c++)
				if (strcmp(dws_column(rel, c)->name, name) == 0) {
					DWS_TABLE_ERR(
					    w, checking,
					    "column \"%s\" of target table %s "
					    "is generated, but source table "
					    "%s.%s sends its values; make it "
					    "an ordinary column at the "
					    "destination",
					    name, label, rel->schema,
					    rel->table);
					ok = false;
				}
		} else {
			/* a unique index whose columns are all extra ones
			 * with a fixed default: its rows (i .. k) */
			bool fixed = true;
			int first = i, k = i;
			for (; k < PQntuples(r) &&
			       PQgetvalue(r, k, 0)[0] == 'u' &&
			       strcmp(PQgetvalue(r, k, 2), name) == 0;
			     k++) {
				const char *col = PQgetvalue(r, k, 3);
				for (uint32_t c = 0; c < rel->ncolumns; c++)
					if (strcmp(dws_column(rel, c)->name,
					           col) == 0)
						fixed = false; /* the source
						                  sets it */
				if (PQgetisnull(r, k, 4) ||
				    !dws_fixed_default(PQgetvalue(r, k, 4)))
					fixed = false;
			}
			i = k - 1;
			if (fixed) {
				DWS_TABLE_ERR(
				    w, checking,
				    "target table %s has column \"%s\" that "
				    "source table %s.%s does not have, with the "
				    "fixed default %s under unique index %s: "
				    "every row gets the same value, so the "
				    "second row would break it; drop the unique "
				    "index, or give the column no default or a "
				    "unique one (a sequence)",
				    label, PQgetvalue(r, first, 3), rel->schema,
				    rel->table, PQgetvalue(r, first, 4), name);
				ok = false;
			}
		}
	}
	PQclear(r);
	return ok;
}

/* ---- one table ---------------------------------------------------------- */

syncd_status
dws_prepare_table(void *state, const syncd_relation *rel, syncd_prepare what)
{
	dws_state *s = state;
	dws_worker *w = dws_admin(s);
	const char *params[2] = {rel->target_schema, rel->target_table};
	static const char *const privs[] = {"INSERT", "SELECT", "UPDATE",
	                                    "DELETE", NULL};
	char *qtable;
	PGresult *r = NULL;
	bool schema, table, ok = true, has[4];
	dws_rc rc;

	if (!w)
		return SYNCD_FATAL;
	/* in one round trip (a job may have thousands of tables): the
	 * schema, the table, and the rights to write it */
	if (dws_exec(w, "looking up a target table",
	             "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace "
	             "WHERE nspname = $1), t.oid IS NOT NULL, "
	             "pg_catalog.has_table_privilege(t.oid, 'INSERT'), "
	             "pg_catalog.has_table_privilege(t.oid, 'SELECT'), "
	             "pg_catalog.has_table_privilege(t.oid, 'UPDATE'), "
	             "pg_catalog.has_table_privilege(t.oid, 'DELETE') "
	             "FROM (SELECT 1) x LEFT JOIN (SELECT c.oid FROM "
	             "pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON "
	             "n.oid = c.relnamespace WHERE n.nspname = $1 AND "
	             "c.relname = $2 AND c.relkind IN ('r', 'p')) t ON true",
	             2, params, &r) != DWS_OK)
		return SYNCD_FATAL;
	schema = PQgetvalue(r, 0, 0)[0] == 't';
	table = PQgetvalue(r, 0, 1)[0] == 't';
	for (int i = 0; i < 4; i++)
		has[i] = PQgetvalue(r, 0, 2 + i)[0] == 't';
	PQclear(r);
	qtable = dws_qualified(w, rel->target_schema, rel->target_table);

	if (!schema) {
		/* the first real job's most common mistake: the default
		 * target.schema names the schema after the source database */
		static const char fmt[] =
		    "schema %s of target table %s.%s does not exist (schemas "
		    "are never created for target tables): create it, or "
		    "route the tables to schemas that exist with [sink] "
		    "target.schema: its default #{source_db_name} names the "
		    "schema after the source database, #{source_schema_name} "
		    "keeps the source's schema";
		ERR(s, "3F000", fmt, rel->target_schema, rel->target_schema,
		    rel->target_table);
		if (what == SYNCD_PREPARE_CHECK)
			SYNCD_LOG_ERROR(s->host, fmt, rel->target_schema,
			                rel->target_schema, rel->target_table);
		ok = false;
	} else if (!table) {
		bool create = what == SYNCD_PREPARE_CREATE ||
		              (what == SYNCD_PREPARE_START && s->auto_create);
		if (create)
			ok = dws_create_table(w, rel, qtable,
			                      what == SYNCD_PREPARE_START &&
			                          s->full) == DWS_OK;
		else if (what == SYNCD_PREPARE_CHECK && s->auto_create) {
			bool may = false;
			ok = dws_bool_query(
			    w, "checking the right to create tables",
			    "SELECT pg_catalog.has_schema_privilege("
			    "$1, 'CREATE')",
			    1, params, &may);
			if (ok && !may) {
				SYNCD_LOG_ERROR(
				    s->host,
				    "target table %s.%s does not exist and the "
				    "destination user may not create it; grant "
				    "it CREATE on schema %s",
				    rel->target_schema, rel->target_table,
				    rel->target_schema);
				ok = false;
			} else if (ok)
				SYNCD_LOG_INFO(
				    s->host,
				    "target table %s.%s does not exist; it "
				    "will "
				    "be created at start (auto_create_table)",
				    rel->target_schema, rel->target_table);
		} else {
			ERR(s, "42P01",
			    "target table %s.%s does not exist; create it, run "
			    "syncd --create-tables, or set auto_create_table = "
			    "true",
			    rel->target_schema, rel->target_table);
			if (what == SYNCD_PREPARE_CHECK)
				SYNCD_LOG_ERROR(
				    s->host,
				    "target table %s.%s does not exist; create "
				    "it, run syncd --create-tables, or set "
				    "auto_create_table = true",
				    rel->target_schema, rel->target_table);
			ok = false;
		}
	} else if (what != SYNCD_PREPARE_CREATE) {
		/* an existing table: can it take the rows? */
		for (size_t i = 0; privs[i]; i++) {
			if (!has[i]) {
				ERR(s, "42501",
				    "the destination user lacks %s on target "
				    "table %s.%s; grant it",
				    privs[i], rel->target_schema,
				    rel->target_table);
				if (what == SYNCD_PREPARE_CHECK)
					SYNCD_LOG_ERROR(
					    s->host,
					    "the destination user lacks %s on "
					    "target table %s.%s; grant it",
					    privs[i], rel->target_schema,
					    rel->target_table);
				ok = false;
			}
		}
		/* without a full phase to finish them, deferred keys are
		 * built now */
		bool pending = false;
		if (ok && what == SYNCD_PREPARE_START && !s->full)
			ok = dws_ddl_pending(w, rel->target_schema,
			                     rel->target_table,
			                     &pending) == DWS_OK;
		if (ok && pending) {
			ok = dws_exec(w, "starting a transaction", "BEGIN", 0,
			              NULL, NULL) == DWS_OK &&
			     dws_ddl_apply(w, rel->target_schema,
			                   rel->target_table) == DWS_OK &&
			     dws_exec(w, "committing", "COMMIT", 0, NULL,
			              NULL) == DWS_OK;
			if (!ok)
				PQclear(PQexec(w->conn, "ROLLBACK"));
		}
		w->checking = what == SYNCD_PREPARE_CHECK;
		w->starting = what == SYNCD_PREPARE_START;
		if (ok && !dws_target_get(w, rel, &rc))
			ok = false;
		w->checking = w->starting = false;
		if (ok && !dws_check_target_more(w, rel, qtable,
		                                 what == SYNCD_PREPARE_CHECK))
			ok = false;
	}
	free(qtable);
	return ok ? SYNCD_OK : SYNCD_FATAL;
}
