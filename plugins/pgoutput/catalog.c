/*
 * plugins/pgoutput/catalog.c - the catalog: databases and tables: which
 * databases (the shard scenario finds them on the server) and which tables are
 * synced, their columns and keys, the partitions of synced tables while
 * streaming, and list_tables().
 */
#include <fnmatch.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgo.h"

void
pgo_free_cols(pgo_table *t)
{
	for (size_t k = 0; k < t->ncols; k++) {
		free(t->cols[k].name);
		free(t->cols[k].type_name);
		free(t->cols[k].base_type);
		free(t->cols[k].comment);
		free(t->cols[k].def);
	}
	free(t->cols);
}

void
pgo_free_table(pgo_table *t)
{
	pgo_free_cols(t);
	free(t->schema);
	free(t->name);
	free(t->qname);
	free(t->owner);
	free(t->pk);
	for (size_t k = 0; k < t->nkeys; k++)
		free(t->keys[k]);
	free(t->keys);
	for (uint32_t k = 0; k < t->nchunk_from; k++)
		free(t->chunk_from[k]);
	free(t->chunk_from);
	for (size_t k = 0; k < t->npend; k++) {
		free(t->pend[k].snap.xip);
		free(t->pend[k].names);
	}
	free(t->pend);
	memset(t, 0, sizeof *t);
}

void
pgo_free_tables(pgo_db *db)
{
	for (size_t i = 0; i < db->ntables; i++)
		pgo_free_table(&db->tables[i]);
	free(db->tables);
	db->tables = NULL;
	db->ntables = 0;
}

/* Whether schema.name was not warned about yet (then it is now). */
bool
pgo_warn_once(pgo_db *db, const char *schema, const char *name)
{
	size_t len = strlen(schema) + strlen(name) + 2;
	char *key = malloc(len);

	if (!key)
		abort();
	snprintf(key, len, "%s.%s", schema, name);
	for (size_t i = 0; i < db->nwarned; i++)
		if (strcmp(db->warned[i], key) == 0) {
			free(key);
			return false;
		}
	db->warned = realloc(db->warned, (db->nwarned + 1) * sizeof *db->warned);
	if (!db->warned)
		abort();
	db->warned[db->nwarned++] = key;
	return true;
}

bool
pgo_matches(pgo *s, const char *database, const char *schema, const char *table)
{
	char full[1024];

	if (s->sharded)
		return s->host->source->select(s->host, database, schema,
		                               table) == SYNCD_SELECT_YES;
	if (s->npatterns == 0)
		return true;
	snprintf(full, sizeof full, "%s.%s", schema, table);
	for (size_t i = 0; i < s->npatterns; i++) {
		const char *p = s->patterns[i];
		if (strchr(p, '.') ? fnmatch(p, full, 0) == 0
		                   : strcmp(schema, "public") == 0 &&
		                         fnmatch(p, table, 0) == 0)
			return true;
	}
	return false;
}

/* Whether a tables pattern names this table itself (no glob character),
 * rather than matching it among others. */
static bool
pgo_named(pgo *s, const char *schema, const char *table)
{
	char full[1024];

	if (s->sharded)
		return false;
	snprintf(full, sizeof full, "%s.%s", schema, table);
	for (size_t i = 0; i < s->npatterns; i++) {
		const char *p = s->patterns[i];
		if (strpbrk(p, "*?[") == NULL &&
		    (strchr(p, '.') ? strcmp(p, full) == 0
		                    : strcmp(schema, "public") == 0 &&
		                          strcmp(p, table) == 0))
			return true;
	}
	return false;
}

/* The characters the reference forbids in names (DESIGN §5 "Names"). */
static const char *
pgo_bad_name(const char *name, const char *forbidden)
{
	if (strlen(name) > 63)
		return "is longer than 63 bytes";
	if (strpbrk(name, forbidden))
		return "contains a character syncd cannot sync";
	return NULL;
}

/* Lists the selected tables with their columns and keys. Tables matched
 * but unusable (no primary key, a forbidden name) are failures naming
 * them; check_only reports every problem, else the first. */
/* Whether a column default (pg_get_expr) is a plain constant a
 * destination can take as it is: a number, true or false, or a quoted
 * literal, with at most a cast to a built-in type ('x'::text, '-1'::integer,
 * 0, (-1.5)); not a function call (nextval, now()) nor a cast to a type of
 * the source (an enum). A column added with it while the job streams is
 * added with it at the destination, where the rows already there take
 * it, as they did at the source. */
static regex_t pgo_default_re;
static bool pgo_default_ok;
static pthread_once_t pgo_default_once = PTHREAD_ONCE_INIT;

static void
pgo_default_init(void)
{
	pgo_default_ok =
	    regcomp(&pgo_default_re,
	            "^(\\(-?[0-9]+(\\.[0-9]+)?\\)|-?[0-9]+(\\.[0-9]+)?|true|"
	            "false|'([^']|'')*')"
	            "(::(text|character varying|character|bpchar|integer|"
	            "bigint|smallint|numeric|real|double precision|boolean|"
	            "date|time without time zone|timestamp without time "
	            "zone|timestamp with time zone|interval|json|jsonb|uuid|"
	            "bytea)(\\([0-9, ]+\\))?)?$",
	            REG_EXTENDED | REG_NOSUB) == 0;
}

bool
pgo_plain_default(const char *e)
{
	pthread_once(&pgo_default_once, pgo_default_init);
	return pgo_default_ok && regexec(&pgo_default_re, e, 0, NULL, 0) == 0;
}

/* Reads the columns of the tables whose OIDs are in oids ("{1,2}") and
 * appends them to those tables. */
bool
pgo_load_columns(pgo_db *db, const char *oids, bool *problems)
{
	pgo *s = db->src;
	PGresult *cols;
	bool ok = true;

	{
		const char *params[] = {oids};
		char csql[2048];
		/* generated columns (12+) are not replicated */
		snprintf(csql, sizeof csql,
		         "SELECT a.attrelid, a.attname, a.atttypid, "
		         "       format_type(a.atttypid, a.atttypmod), "
		         "a.attnotnull, "
		         "       coalesce((SELECT k.pos FROM pg_index i, "
		         "         unnest(i.indkey::int2[]) WITH ORDINALITY "
		         "           AS k(attnum, pos) "
		         "         WHERE i.indrelid = a.attrelid AND "
		         "i.indisprimary "
		         "           AND k.attnum = a.attnum AND k.pos <= %s), "
		         "0), "
		         "       CASE ty.typtype WHEN 'e' THEN 'text' "
		         "         WHEN 'c' THEN 'text' "
		         "         WHEN 'd' THEN format_type(ty.typbasetype, "
		         "ty.typtypmod) "
		         "         ELSE (SELECT CASE el.typtype "
		         "           WHEN 'e' THEN 'text[]' WHEN 'c' THEN "
		         "'text[]' WHEN 'd' THEN format_type(el.typbasetype, "
		         "el.typtypmod) || '[]' END FROM pg_type el "
		         "           WHERE el.oid = ty.typelem AND "
		         "ty.typcategory = 'A') END, "
		         "       col_description(a.attrelid, a.attnum), "
		         "       (SELECT pg_get_expr(d.adbin, d.adrelid) FROM "
		         "pg_attrdef d WHERE d.adrelid = a.attrelid AND "
		         "d.adnum = a.attnum), a.atttypmod "
		         "FROM pg_attribute a "
		         "  JOIN pg_type ty ON ty.oid = a.atttypid "
		         "WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 "
		         "  AND NOT a.attisdropped%s "
		         "ORDER BY a.attrelid, a.attnum",
		         /* INCLUDE columns (11+) follow the key columns */
		         db->version >= 110000 ? "i.indnkeyatts" : "i.indnatts",
		         db->version >= 120000 ? " AND a.attgenerated = ''"
		                               : "");
		cols =
		    pgo_query(db, db->sql, "listing columns", csql, 1, params);
	}
	if (!cols)
		return false;
	for (int i = 0; i < PQntuples(cols); i++) {
		uint32_t oid =
		    (uint32_t) strtoul(PQgetvalue(cols, i, 0), NULL, 10);
		const char *name = PQgetvalue(cols, i, 1);
		const char *why = pgo_bad_name(name, "\"'");
		for (size_t k = 0; k < db->ntables; k++) {
			pgo_table *t = &db->tables[k];
			pgo_col *c;
			if (t->oid != oid)
				continue;
			if (why) {
				SYNCD_LOG_ERROR(
				    s->host,
				    "column %s of %s.%s in database "
				    "\"%s\": the "
				    "name %s; rename it",
				    name, t->schema, t->name, db->dbname, why);
				*problems = true;
				ok = false;
			}
			t->cols =
			    realloc(t->cols, (t->ncols + 1) * sizeof *t->cols);
			c = &t->cols[t->ncols++];
			c->name = strdup(name);
			c->typid = (uint32_t) strtoul(PQgetvalue(cols, i, 2),
			                              NULL, 10);
			c->type_name = strdup(PQgetvalue(cols, i, 3));
			c->typmod = (int32_t) strtol(PQgetvalue(cols, i, 9),
			                             NULL, 10);
			c->notnull = strcmp(PQgetvalue(cols, i, 4), "t") == 0;
			c->keypos = (uint32_t) strtoul(PQgetvalue(cols, i, 5),
			                               NULL, 10);
			c->key = c->keypos > 0;
			c->base_type = PQgetisnull(cols, i, 6)
			                   ? NULL
			                   : strdup(PQgetvalue(cols, i, 6));
			c->comment = PQgetisnull(cols, i, 7)
			                 ? NULL
			                 : strdup(PQgetvalue(cols, i, 7));
			c->def = !PQgetisnull(cols, i, 8) &&
			                 pgo_plain_default(PQgetvalue(cols, i, 8))
			             ? strdup(PQgetvalue(cols, i, 8))
			             : NULL;
		}
	}
	PQclear(cols);
	/* stored generated columns (12+): pgoutput does not send them */
	if (ok && !db->named && db->version >= 120000) {
		const char *params[] = {oids};
		cols = pgo_query(
		    db, db->sql, "listing generated columns",
		    "SELECT a.attrelid, a.attname, pg_get_expr(d.adbin, "
		    "d.adrelid) FROM pg_attribute a JOIN pg_attrdef d ON "
		    "d.adrelid = a.attrelid AND d.adnum = a.attnum "
		    "WHERE a.attrelid = ANY ($1::oid[]) AND a.attgenerated = "
		    "'s' AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum",
		    1, params);
		if (!cols)
			return false;
		for (int i = 0; i < PQntuples(cols); i++) {
			pgo_table *t = pgo_table_by_oid(
			    db, (uint32_t) strtoul(PQgetvalue(cols, i, 0), NULL,
			                           10));
			if (t)
				SYNCD_LOG_WARNING(
				    s->host,
				    "column %s of %s.%s in database \"%s\" is "
				    "GENERATED ALWAYS AS (%s) STORED: it is "
				    "not "
				    "replicated; syncd leaves it out of the "
				    "target "
				    "(add it there as a generated column, or "
				    "compute it where it is read)",
				    PQgetvalue(cols, i, 1), t->schema, t->name,
				    db->dbname, PQgetvalue(cols, i, 2));
		}
		PQclear(cols);
	}
	if (!ok)
		return pgo_fail(db, NULL,
		                "some selected columns of database \"%s\" "
		                "cannot be synced (see above)",
		                db->dbname);
	return true;
}

/* The key columns of a table's index that satisfies COND ("indisprimary",
 * "indisreplident"), as "a, b" in key order, or NULL: a SQL fragment with
 * the server's key-column count (INCLUDE columns, 11+, are not the key). */
#define PGO_INDEX_KEY(cond, what, nkey)                                        \
	"(SELECT " what " FROM pg_index i CROSS JOIN LATERAL "                 \
	"unnest(i.indkey::int2[]) WITH "                                       \
	"ORDINALITY AS k(attnum, pos) JOIN pg_attribute a ON a.attrelid = "    \
	"i.indrelid AND a.attnum = k.attnum WHERE i.indrelid = c.oid AND "     \
	"i." cond " AND k.pos <= i." nkey ")"
#define PGO_KEY_NAMES "string_agg(a.attname, ', ' ORDER BY k.pos)"
#define PGO_KEY_SET   "array_agg(k.attnum ORDER BY k.attnum)"

/* While rescanning, a carried table that lost its primary key or its
 * replica identity stays carried: the catalog may be ahead of the stream,
 * whose changes up to the ALTER are still to be applied, and the next
 * Relation message of the table stops the job before the first change
 * after it (pgo_identity_kept), whenever the watch runs. */
static bool
pgo_carried_stays(pgo_db *db, const char *oidtext)
{
	uint32_t oid = (uint32_t) strtoul(oidtext, NULL, 10);

	if (!db->rescanning)
		return false;
	for (size_t i = 0; i < db->ncarried; i++)
		if (db->carried[i].oid == oid) {
			db->kept = realloc(db->kept,
			                   (db->nkept + 1) * sizeof *db->kept);
			if (!db->kept)
				abort();
			db->kept[db->nkept++] = oid;
			return true;
		}
	return false;
}

/* A matched table syncd cannot sync. With tables at its default it is
 * skipped, named in a warning; a table the job names (tables, the filters
 * of [logical_table.*]) is refused. what: "has no primary key"; why: what
 * would go wrong; fix: the statement or step that makes it syncable. */
static void
pgo_unsyncable(pgo_db *db, const char *schema, const char *name,
               const char *what, const char *why, const char *fix, bool *ok,
               bool *problems)
{
	pgo *s = db->src;

	if (db->rescanning) {
		/* a table that joins while streaming: named once, and taken
		 * once it is fixed */
		if (pgo_warn_once(db, schema, name))
			SYNCD_LOG_WARNING(
			    s->host,
			    "table %s.%s in database \"%s\" matches tables but "
			    "is not synced: it %s (%s); %s, and syncd takes it "
			    "while streaming",
			    schema, name, db->dbname, what, why, fix);
		return;
	}
	if (s->npatterns == 0 && !s->sharded) {
		if (!db->named)
			SYNCD_LOG_WARNING(
			    s->host,
			    "table %s.%s in database \"%s\" is not "
			    "synced: it %s (%s); %s to sync it",
			    schema, name, db->dbname, what, why, fix);
		return;
	}
	if (!db->named)
		SYNCD_LOG_ERROR(s->host,
		                "table %s.%s in database \"%s\" %s: %s; %s, or "
		                "leave it out of tables",
		                schema, name, db->dbname, what, why, fix);
	*problems = true;
	*ok = false;
}

/* A root's leaf partitions that make it unsyncable (partitions = root):
 * a replica identity other than its primary key's (NOTHING would make the
 * application's UPDATE and DELETE on it fail once the root is published;
 * another index would key its deletes by other columns), or a foreign
 * table (its rows are in no WAL). 1 and what/fix set, 0, -1: failed. */
static int
pgo_root_leaves(pgo_db *db, const char *oid, char *what, size_t nwhat,
                char *fix, size_t nfix)
{
	const char *params[] = {oid};
	char sql[2048];
	PGresult *res;
	int bad = 0;

#define PGO_LEAF_IDENT                                                         \
	PGO_INDEX_KEY("indisreplident", PGO_KEY_SET, "indnkeyatts")
#define PGO_LEAF_PK PGO_INDEX_KEY("indisprimary", PGO_KEY_SET, "indnkeyatts")
	snprintf(sql, sizeof sql, "%s",
	         "SELECT n.nspname || '.' || c.relname, quote_ident(n.nspname) "
	         "|| '.' || quote_ident(c.relname), c.relkind, c.relreplident "
	         "FROM pg_partition_tree($1::oid) x JOIN pg_class c ON c.oid = "
	         "x.relid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
	         "x.isleaf AND (c.relkind = 'f' OR (c.relkind = 'r' AND "
	         "(c.relreplident = 'n' OR (c.relreplident = 'i' AND "
	         "(" PGO_LEAF_IDENT " IS DISTINCT FROM " PGO_LEAF_PK "))))) "
	         "ORDER BY 1 LIMIT 1");
	res = pgo_query(db, db->sql, "reading the partitions of a table", sql,
	                1, params);
	if (!res)
		return -1;
	if (PQntuples(res) == 1) {
		char kind = PQgetvalue(res, 0, 2)[0],
		     ident = PQgetvalue(res, 0, 3)[0];
		bad = 1;
		snprintf(what, nwhat, "has a partition %s %s",
		         PQgetvalue(res, 0, 0),
		         kind == 'f'    ? "that is a foreign table"
		         : ident == 'n' ? "with REPLICA IDENTITY NOTHING"
		                        : "with REPLICA IDENTITY USING INDEX "
		                          "of another index than its primary "
		                          "key");
		if (kind == 'f')
			snprintf(fix, nfix,
			         "detach %s (logical replication does not "
			         "carry foreign tables), or set [source] "
			         "partitions = leaf",
			         PQgetvalue(res, 0, 1));
		else
			snprintf(fix, nfix,
			         "run ALTER TABLE %s REPLICA IDENTITY DEFAULT",
			         PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return bad;
}

bool
pgo_select_tables(pgo_db *db, bool *problems)
{
	pgo *s = db->src;
	PGresult *res;
	char *oids;
	size_t len = 0, cap = 64;
	bool ok = true;
	char sql[4096];
	const char *nkey = db->version >= 110000 ? "indnkeyatts" : "indnatts";
	size_t parts_matched = 0;

	if (s->partitions && strcmp(s->partitions, "root") == 0 &&
	    db->version < 130000) {
		*problems = true;
		return pgo_fail(db, NULL,
		                "database \"%s\": partitions = root needs "
		                "PostgreSQL 13 or later (publish_via_partition_"
		                "root); the server runs PostgreSQL %d: set "
		                "[source] partitions = leaf (each partition is "
		                "synced as a table of its own)",
		                db->dbname, db->version / 10000);
	}
	db->via_root = db->version >= 130000 &&
	               (!s->partitions || strcmp(s->partitions, "root") == 0);
	/* unlogged and temporary tables are named: logical replication
	 * carries neither */
	snprintf(
	    sql, sizeof sql,
	    "SELECT c.oid, n.nspname, c.relname, c.relreplident, "
	    "       c.relpersistence, c.relispartition, "
	    "       quote_ident(n.nspname) || '.' || quote_ident(c.relname), "
	    "       pg_has_role(c.relowner, 'USAGE'), "
	    "       pg_get_userbyid(c.relowner), "
	    "       " PGO_INDEX_KEY(
	        "indisprimary", PGO_KEY_NAMES,
	        "%s") ", "
	              "       (SELECT ci.relname FROM pg_index i JOIN pg_class "
	              "ci ON "
	              "        ci.oid = i.indexrelid WHERE i.indrelid = c.oid "
	              "AND "
	              "        i.indisreplident), "
	              "       " PGO_INDEX_KEY(
	                  "indisreplident", PGO_KEY_NAMES,
	                  "%s") ", "
	                        "       " PGO_INDEX_KEY(
	                            "indisreplident", PGO_KEY_SET,
	                            "%s") " IS "
	                                  "NOT DISTINCT FROM "
	                                  "       " PGO_INDEX_KEY(
	                                      "indisprimary", PGO_KEY_SET,
	                                      "%s") ", c.relkind, %s, %s "
	                                            "FROM pg_class c JOIN "
	                                            "pg_namespace n ON n.oid = "
	                                            "c.relnamespace "
	                                            "WHERE c.relkind IN ('r', "
	                                            "'p') AND "
	                                            "c.relpersistence IN ('p', "
	                                            "'u', 't') "
	                                            "  AND n.nspname NOT IN "
	                                            "('pg_catalog', "
	                                            "'information_schema') "
	                                            "  AND n.nspname !~ "
	                                            "'^pg_toast' "
	                                            "ORDER BY n.nspname, "
	                                            "c.relname",
	    nkey, nkey, nkey, nkey,
	    /* a root's leaf partitions; a partition's root (12+) */
	    db->version >= 120000
	        ? "CASE WHEN c.relkind = 'p' THEN (SELECT count(*) FROM "
	          "pg_partition_tree(c.oid) x JOIN pg_class l ON l.oid = "
	          "x.relid WHERE x.isleaf AND l.relkind = 'r') END"
	        : "NULL",
	    db->version >= 120000
	        ? "CASE WHEN c.relispartition THEN "
	          "pg_partition_root(c.oid)::oid "
	          "END, CASE WHEN c.relispartition THEN (SELECT rn.nspname "
	          "|| '.' || rc.relname FROM pg_class rc JOIN pg_namespace "
	          "rn ON rn.oid = rc.relnamespace WHERE rc.oid = "
	          "pg_partition_root(c.oid)) END"
	        : "NULL, NULL");

	pgo_free_tables(db);
	res = pgo_query(db, db->sql, "listing tables", sql, 0, NULL);
	if (!res)
		return false;
	db->tables = calloc((size_t) PQntuples(res) + 1, sizeof(pgo_table));
	oids = malloc(cap);
	strcpy(oids, "{");
	len = 1;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *schema = PQgetvalue(res, i, 1);
		const char *name = PQgetvalue(res, i, 2);
		char replident = PQgetvalue(res, i, 3)[0];
		const char *qname = PQgetvalue(res, i, 6);
		bool has_pk = !PQgetisnull(res, i, 9);
		const char *pk = PQgetvalue(res, i, 9);
		const char *why;
		char what[1024], fix[1024];
		char relkind = PQgetvalue(res, i, 13)[0];
		bool ispart = strcmp(PQgetvalue(res, i, 5), "t") == 0;
		pgo_table *t;

		/* partitions = root: a root (not itself a partition) is one
		 * table, its partitions are not tables of their own; leaf: a
		 * root holds no rows, its leaves are the tables */
		if (relkind == 'p' && (!db->via_root || ispart))
			continue;
		if (relkind == 'r' && ispart && db->via_root) {
			if (pgo_named(s, schema, name) && !db->rescanning) {
				SYNCD_LOG_ERROR(
				    s->host,
				    "table %s.%s in database \"%s\" is a "
				    "partition of %s: with partitions = root "
				    "(the default on PostgreSQL 13+) it is "
				    "synced through its partitioned table; "
				    "name %s in tables instead, or set "
				    "[source] partitions = leaf to sync each "
				    "partition as a table of its own",
				    schema, name, db->dbname,
				    PQgetvalue(res, i, 16),
				    PQgetvalue(res, i, 16));
				*problems = true;
				ok = false;
			} else if (s->npatterns &&
			           pgo_matches(s, db->dbname, schema, name))
				parts_matched++;
			continue;
		}
		if (!pgo_matches(s, db->dbname, schema, name))
			continue;
		if (PQgetvalue(res, i, 4)[0] == 't') {
			/* named, never refused: another session's table,
			 * gone when that session ends */
			if (!db->named)
				SYNCD_LOG_WARNING(
				    s->host,
				    "table %s.%s in database \"%s\" is "
				    "not synced: it is TEMPORARY (it "
				    "belongs to the session that created "
				    "it, and logical replication does not "
				    "carry it)",
				    schema, name, db->dbname);
			continue;
		}
		if (PQgetvalue(res, i, 4)[0] == 'u') {
			snprintf(fix, sizeof fix,
			         "run ALTER TABLE %s SET LOGGED", qname);
			pgo_unsyncable(db, schema, name, "is UNLOGGED",
			               "logical replication does not carry the "
			               "changes of unlogged tables",
			               fix, &ok, problems);
			continue;
		}
		if (!has_pk && pgo_carried_stays(db, PQgetvalue(res, i, 0)))
			continue;
		if (!has_pk) {
			pgo_unsyncable(db, schema, name, "has no primary key",
			               "syncd cannot apply its updates and "
			               "deletes",
			               "add a primary key", &ok, problems);
			continue;
		}
		if (relkind == 'p') {
			int bad =
			    pgo_root_leaves(db, PQgetvalue(res, i, 0), what,
			                    sizeof what, fix, sizeof fix);
			if (bad < 0) {
				PQclear(res);
				free(oids);
				return false;
			}
			if (bad) {
				pgo_unsyncable(
				    db, schema, name, what,
				    "publishing it publishes every partition",
				    fix, &ok, problems);
				continue;
			}
		}
		if ((replident == 'n' ||
		     (replident == 'i' &&
		      (PQgetisnull(res, i, 10) ||
		       strcmp(PQgetvalue(res, i, 12), "t") != 0))) &&
		    pgo_carried_stays(db, PQgetvalue(res, i, 0)))
			continue;
		snprintf(fix, sizeof fix,
		         "run ALTER TABLE %s REPLICA IDENTITY DEFAULT", qname);
		if (replident == 'n' ||
		    (replident == 'i' && PQgetisnull(res, i, 10))) {
			/* an identity index that was dropped leaves the table
			 * without identity, as NOTHING */
			pgo_unsyncable(
			    db, schema, name,
			    replident == 'n'
			        ? "has REPLICA IDENTITY NOTHING"
			        : "has REPLICA IDENTITY USING INDEX "
			          "of an index that no longer "
			          "exists",
			    "publishing it would make the application's own "
			    "UPDATE and DELETE on it fail",
			    fix, &ok, problems);
			continue;
		}
		if (replident == 'i' &&
		    strcmp(PQgetvalue(res, i, 12), "t") != 0) {
			snprintf(what, sizeof what,
			         "has REPLICA IDENTITY USING INDEX %s on (%s), "
			         "not on its primary key (%s)",
			         PQgetvalue(res, i, 10), PQgetvalue(res, i, 11),
			         pk);
			snprintf(
			    fix, sizeof fix,
			    "run ALTER TABLE %s REPLICA IDENTITY DEFAULT (or "
			    "FULL)",
			    qname);
			pgo_unsyncable(
			    db, schema, name, what,
			    "its deletes and key changes carry the "
			    "index's columns, and syncd keys rows by "
			    "the primary key",
			    fix, &ok, problems);
			continue;
		}
		if ((why = pgo_bad_name(schema, "\".'<>")) ||
		    (why = pgo_bad_name(name, "\".'<>"))) {
			if (db->rescanning) {
				if (pgo_warn_once(db, schema, name))
					SYNCD_LOG_WARNING(
					    s->host,
					    "table %s.%s in database \"%s\" "
					    "is not synced: the name %s",
					    schema, name, db->dbname, why);
				continue;
			}
			SYNCD_LOG_ERROR(
			    s->host,
			    "table %s.%s in database \"%s\": the name %s; "
			    "rename it, or leave it out of tables",
			    schema, name, db->dbname, why);
			*problems = true;
			ok = false;
			continue;
		}
		t = &db->tables[db->ntables++];
		t->oid = (uint32_t) strtoul(PQgetvalue(res, i, 0), NULL, 10);
		t->schema = strdup(schema);
		t->name = strdup(name);
		t->qname = strdup(qname);
		t->replident = replident;
		t->has_pk = true;
		t->partition = strcmp(PQgetvalue(res, i, 5), "t") == 0;
		t->owned = strcmp(PQgetvalue(res, i, 7), "t") == 0;
		t->owner = strdup(PQgetvalue(res, i, 8));
		t->pk = strdup(pk);
		t->root = relkind == 'p';
		t->nparts =
		    (uint32_t) strtoul(PQgetvalue(res, i, 14), NULL, 10);
		t->root_oid =
		    (uint32_t) strtoul(PQgetvalue(res, i, 15), NULL, 10);
		if (t->root && !db->named)
			SYNCD_LOG_INFO(
			    s->host,
			    "table %s.%s in database \"%s\" is "
			    "partitioned: synced as one table with its "
			    "%u partition%s (partitions = root)",
			    schema, name, db->dbname, t->nparts,
			    t->nparts == 1 ? "" : "s");
		while (len + 16 > cap)
			oids = realloc(oids, cap *= 2);
		len += (size_t) sprintf(oids + len, "%s%u", len > 1 ? "," : "",
		                        t->oid);
	}
	PQclear(res);
	strcpy(oids + len, "}");
	if (!ok) {
		free(oids);
		db->named = true;
		return pgo_fail(db, NULL,
		                "some selected tables of database \"%s\" "
		                "cannot be synced (see above)",
		                db->dbname);
	}
	if (db->ntables == 0 && db->rescanning) {
		free(oids);
		return true;
	}
	if (db->ntables == 0) {
		free(oids);
		db->named = true;
		return pgo_fail(
		    db, NULL,
		    "no table of database \"%s\" is selected: tables = "
		    "%s matches no table syncd can sync%s%s",
		    db->dbname, s->npatterns ? "(as set)" : "(all)",
		    s->npatterns ? "" : " (see the warnings above)",
		    parts_matched
		        ? "; it matches partitions only, which partitions = "
		          "root syncs through their partitioned table: name "
		          "that table, or set [source] partitions = leaf"
		        : "");
	}
	ok = pgo_load_columns(db, oids, problems);
	db->named = true;
	free(oids);
	/* the key the job starts with: a Relation message must keep it */
	for (size_t i = 0; ok && i < db->ntables; i++) {
		pgo_table *t = &db->tables[i];
		t->keys = calloc(t->ncols + 1, sizeof *t->keys);
		for (uint32_t pos = 1; pos <= t->ncols; pos++)
			for (size_t c = 0; c < t->ncols; c++)
				if (t->cols[c].keypos == pos)
					t->keys[t->nkeys++] =
					    strdup(t->cols[c].name);
	}
	return ok;
}

pgo_table *
pgo_table_by_oid(pgo_db *db, uint32_t oid)
{
	for (size_t i = 0; i < db->ntables; i++)
		if (db->tables[i].oid == oid)
			return &db->tables[i];
	return NULL;
}

void
pgo_free_leaves(pgo_db *db)
{
	for (size_t i = 0; i < db->nleaves; i++) {
		free(db->leaves[i].name);
		free(db->leaves[i].filenode);
		free(db->leaves[i].link);
	}
	free(db->leaves);
	db->leaves = NULL;
	db->nleaves = 0;
	db->leaves_read = false;
	free(db->known);
	db->known = NULL;
	db->nknown = 0;
	db->known_state = 0;
	free(db->links_saved);
	db->links_saved = NULL;
	free(db->watch_snap.xip);
	memset(&db->watch_snap, 0, sizeof db->watch_snap);
}

/*
 * Re-reads the leaf partitions of the synced roots (partitions = root), or
 * of the roots of the synced partitions (leaf), at each status interval and
 * at each Relation message of a root.
 *
 * Root mode: a leaf whose newest pg_inherits link (the ATTACH, or the
 * CREATE ... PARTITION OF) may not have been streamed past yet (its xmin is
 * not older than the slot's catalog_xmin) and that holds rows older than
 * that link was attached with rows no change carries: the job stops. A
 * leaf gone from the tree was detached or dropped: its rows stay at the
 * destination (a warning). Some but not all leaves of a root with a new
 * file node: a TRUNCATE of those partitions, which pgoutput does not
 * replicate under publish_via_partition_root (or a VACUUM FULL, CLUSTER):
 * the job stops. Leaf mode: a new partition is named in a warning (a table
 * of its own, synced after a restart).
 */
bool
pgo_watch_partitions(pgo_db *db)
{
	pgo *s = db->src;
	pgo_sb roots = {0};
	PGresult *res;
	const char *params[2];
	bool ok = true;
	uint64_t wal = 0;
	pgo_snap snap = {0};

	db->last_leaves_ms = pgo_now_ms();
	for (size_t i = 0; db->version >= 120000 && i < db->ntables; i++) {
		uint32_t r = db->via_root
		                 ? (db->tables[i].root ? db->tables[i].oid : 0)
		                 : db->tables[i].root_oid;
		if (r)
			pgo_sb_printf(&roots, "%s%u", roots.len ? "," : "{", r);
	}
	if (!roots.len)
		return true;
	pgo_sb_printf(&roots, "}");
	params[0] = roots.data;
	params[1] = db->slot ? db->slot : "";
	res = pgo_query(
	    db, db->sql, "reading the partitions of the synced tables",
	    "SELECT r.oid, l.relid::oid, ln.nspname || '.' || lc.relname, "
	    "lc.relfilenode::text, "
	    "(SELECT i.xmin FROM pg_catalog.pg_inherits i WHERE i.inhrelid "
	    "IN (SELECT pg_catalog.pg_partition_ancestors(l.relid)) ORDER BY "
	    "pg_catalog.age(i.xmin) LIMIT 1)::text, "
	    "coalesce((SELECT min(pg_catalog.age(i.xmin)) FROM "
	    "pg_catalog.pg_inherits i WHERE i.inhrelid IN (SELECT "
	    "pg_catalog.pg_partition_ancestors(l.relid))) <= (SELECT "
	    "pg_catalog.age(catalog_xmin) FROM pg_catalog.pg_replication_slots "
	    "WHERE slot_name = $2), false), "
	    "(SELECT rn.nspname || '.' || rc.relname FROM pg_catalog.pg_class "
	    "rc JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace "
	    "WHERE rc.oid = r.oid), quote_ident(ln.nspname) || '.' || "
	    "quote_ident(lc.relname), pg_catalog.pg_current_wal_lsn()::text, "
	    "pg_catalog.txid_current_snapshot()::text FROM unnest($1::oid[]) "
	    "r(oid) CROSS JOIN LATERAL "
	    "pg_catalog.pg_partition_tree(r.oid) l JOIN pg_catalog.pg_class lc "
	    "ON lc.oid = l.relid JOIN pg_catalog.pg_namespace ln ON ln.oid = "
	    "lc.relnamespace WHERE l.isleaf AND lc.relkind = 'r' AND l.relid "
	    "<> r.oid ORDER BY 1, 3",
	    2, params);
	free(roots.data);
	if (!res)
		return false;
	for (size_t k = 0; k < db->nleaves; k++)
		db->leaves[k].seen = false;
	for (int i = 0; ok && i < PQntuples(res); i++) {
		uint32_t root = (uint32_t) strtoul(PQgetvalue(res, i, 0), NULL,
		                                   10),
		         oid = (uint32_t) strtoul(PQgetvalue(res, i, 1), NULL,
		                                  10);
		const char *name = PQgetvalue(res, i, 2),
		           *filenode = PQgetvalue(res, i, 3),
		           *link = PQgetvalue(res, i, 4),
		           *rootname = PQgetvalue(res, i, 6);
		bool recent = strcmp(PQgetvalue(res, i, 5), "t") == 0,
		     isnew = true, fresh;
		int known;
		pgo_leaf *l = NULL;

		for (size_t k = 0; k < db->nleaves && !l; k++)
			if (db->leaves[k].oid == oid &&
			    db->leaves[k].root == root)
				l = &db->leaves[k];
		if (l)
			isnew = false;
		else {
			db->leaves = realloc(
			    db->leaves, (db->nleaves + 1) * sizeof *db->leaves);
			l = &db->leaves[db->nleaves++];
			*l = (pgo_leaf){.oid = oid,
			                .root = root,
			                .name = strdup(name),
			                .filenode = strdup(filenode)};
		}
		l->seen = true;
		if (!db->via_root) {
			/* a 1.3 core takes it as a new table (new_tables) */
			if (isnew && db->leaves_read && s->host->abi_minor < 3)
				SYNCD_LOG_WARNING(
				    s->host,
				    "database \"%s\": %s became a partition of "
				    "%s while streaming; with partitions = "
				    "leaf "
				    "it is a table of its own, selected at the "
				    "next start (its rows from before then "
				    "only with mode = full+incremental and a "
				    "new slot)",
				    db->dbname, name, rootname);
			continue;
		}
		/* a link that is new since the last watch was made while
		 * streaming, however far the slot has gone since (it confirms
		 * within a second; the watch runs every status.interval); at
		 * the first watch, one an earlier run did not check (see
		 * links.c), or, without its notes, one the slot has not
		 * passed (made while the job was stopped) */
		if (db->leaves_read)
			fresh = !l->link || strcmp(l->link, link) != 0;
		else if ((known = pgo_link_known(db, root, oid, link)) >= 0)
			fresh = known == 0;
		else
			fresh = recent;
		if (fresh && *link) {
			/* rows older than the link were there before it: an
			 * ATTACH, whose rows no change carries */
			char q[1024];
			const char *qp[] = {link};
			PGresult *old;
			snprintf(q, sizeof q,
			         "SELECT EXISTS (SELECT 1 FROM ONLY %s WHERE "
			         "pg_catalog.age(xmin) > "
			         "pg_catalog.age($1::text::xid))",
			         PQgetvalue(res, i, 7));
			old = pgo_query(db, db->sql,
			                "reading an attached partition", q, 1,
			                qp);
			if (!old) {
				ok = false;
				break;
			}
			if (strcmp(PQgetvalue(old, 0, 0), "t") == 0 &&
			    s->host->abi_minor >= 3) {
				/* the core copies the root again while the
				 * stream goes on (new_tables) */
				pgo_table *rt = pgo_table_by_oid(db, root);
				SYNCD_LOG_WARNING(
				    s->host,
				    "partition %s was attached to %s in "
				    "database \"%s\" with rows it held before: "
				    "an ATTACH writes no change for them, so %s "
				    "is copied again while the stream goes on",
				    name, rootname, db->dbname, rootname);
				if (rt)
					rt->recopy = true;
				free(l->link);
				l->link = strdup(link);
			} else if (strcmp(PQgetvalue(old, 0, 0), "t") == 0)
				ok = pgo_fail(
				    db, NULL,
				    "partition %s was attached to %s in "
				    "database \"%s\" with rows it held before: "
				    "an ATTACH writes no change for them, so "
				    "they are not in the stream; syncd stops: "
				    "re-sync %s (a new job with mode = "
				    "full+incremental, or drop slot %s and "
				    "the job's state and start again), or "
				    "detach %s",
				    name, rootname, db->dbname, rootname,
				    db->slot ? db->slot : "", name);
			else {
				free(l->link);
				l->link = strdup(link);
			}
			PQclear(old);
			if (!ok)
				break;
		} else if (*link && !l->link)
			l->link = strdup(link); /* as the first watch found it */
		if (isnew && db->leaves_read)
			SYNCD_LOG_INFO(
			    s->host,
			    "database \"%s\": %s is a new partition of "
			    "%s; its changes are synced into %s",
			    db->dbname, name, rootname, rootname);
	}
	if (PQntuples(res) > 0) {
		wal = pgo_parse_lsn(PQgetvalue(res, 0, 8));
		if (!pgo_snap_parse(PQgetvalue(res, 0, 9), &snap))
			ok = pgo_fail(db, NULL,
			              "database \"%s\": unexpected snapshot "
			              "\"%s\" from txid_current_snapshot()",
			              db->dbname, PQgetvalue(res, 0, 9));
	}
	/* a TRUNCATE of some partitions of a root: not in the stream */
	for (int i = 0;
	     ok && db->via_root && db->leaves_read && i < PQntuples(res);) {
		uint32_t root =
		    (uint32_t) strtoul(PQgetvalue(res, i, 0), NULL, 10);
		int n = 0, changed = 0;
		pgo_sb names = {0};
		const char *rootname = PQgetvalue(res, i, 6);
		for (; i < PQntuples(res) &&
		       strtoul(PQgetvalue(res, i, 0), NULL, 10) == root;
		     i++) {
			uint32_t oid =
			    (uint32_t) strtoul(PQgetvalue(res, i, 1), NULL, 10);
			n++;
			for (size_t k = 0; k < db->nleaves; k++)
				if (db->leaves[k].oid == oid &&
				    db->leaves[k].root == root &&
				    strcmp(db->leaves[k].filenode,
				           PQgetvalue(res, i, 3)) != 0) {
					changed++;
					pgo_sb_printf(&names, "%s%s",
					              names.len ? ", " : "",
					              db->leaves[k].name);
				}
		}
		if (changed > 0 && changed == n) {
			/* every leaf: a TRUNCATE of the root, which is in the
			 * stream before the position read now, or of all its
			 * partitions one by one, which is not */
			pgo_table *t = pgo_table_by_oid(db, root);
			if (t) {
				pgo_pend *pd;
				t->pend = realloc(t->pend, (t->npend + 1) *
				                               sizeof *t->pend);
				if (!t->pend)
					abort();
				pd = &t->pend[t->npend++];
				memset(pd, 0, sizeof *pd);
				pgo_snap_copy(&pd->snap, &db->watch_snap);
				pd->until = wal;
				pd->names = strdup(names.data);
			}
		} else if (changed > 0)
			ok = pgo_fail(
			    db, NULL,
			    "partition%s %s of %s in database \"%s\" %s "
			    "truncated (or rewritten by VACUUM FULL or "
			    "CLUSTER) while streaming: PostgreSQL does not "
			    "replicate a TRUNCATE of a partition under "
			    "publish_via_partition_root, so its rows would "
			    "stay at the destination; syncd stops: re-sync %s "
			    "(a new job with mode = full+incremental, or drop "
			    "slot %s and the job's state), or, if it was only "
			    "rewritten, start the job again",
			    changed > 1 ? "s" : "", names.data, rootname,
			    db->dbname, changed > 1 ? "were" : "was", rootname,
			    db->slot ? db->slot : "");
		free(names.data);
	}
	for (int i = 0; ok && i < PQntuples(res); i++)
		for (size_t k = 0; k < db->nleaves; k++)
			if (db->leaves[k].oid ==
			        (uint32_t) strtoul(PQgetvalue(res, i, 1), NULL,
			                           10) &&
			    strcmp(db->leaves[k].filenode,
			           PQgetvalue(res, i, 3)) != 0) {
				free(db->leaves[k].filenode);
				db->leaves[k].filenode =
				    strdup(PQgetvalue(res, i, 3));
			}
	PQclear(res);
	/* detached (or dropped) while streaming */
	for (size_t k = 0; ok && k < db->nleaves;) {
		pgo_leaf *l = &db->leaves[k];
		if (l->seen) {
			k++;
			continue;
		}
		if (db->via_root) {
			const pgo_table *t = pgo_table_by_oid(db, l->root);
			SYNCD_LOG_WARNING(
			    s->host,
			    "database \"%s\": partition %s left %s.%s while "
			    "streaming (DETACH PARTITION or DROP TABLE): no "
			    "change is sent for its rows, which stay in the "
			    "destination's table; delete them there if they "
			    "must go",
			    db->dbname, l->name, t ? t->schema : "?",
			    t ? t->name : "?");
		}
		free(l->name);
		free(l->filenode);
		free(l->link);
		*l = db->leaves[--db->nleaves];
	}
	db->leaves_read = true;
	if (ok)
		pgo_links_save(db);
	if (wal) {
		free(db->watch_snap.xip);
		db->watch_snap = snap;
		snap.xip = NULL;
	}
	free(snap.xip);
	/* every leaf of a root got a new file node: the stream, once past
	 * that point, must have carried a TRUNCATE of the root that the
	 * watch before did not see. The last one is enough: one after that
	 * point empties the table at the destination as at the source. */
	for (size_t i = 0; ok && i < db->ntables; i++) {
		pgo_table *t = &db->tables[i];
		while (ok && t->npend && pgo_received(db) > t->pend[0].until) {
			pgo_pend *pd = &t->pend[0];
			if (!t->trunc_xid ||
			    pgo_snap_sees(&pd->snap, t->trunc_xid))
				ok = pgo_fail(
				    db, NULL,
				    "every partition of %s.%s in database "
				    "\"%s\" (%s) was truncated (or rewritten "
				    "by VACUUM FULL or CLUSTER) while "
				    "streaming, but not through %s.%s: "
				    "PostgreSQL does not replicate a TRUNCATE "
				    "of a partition under "
				    "publish_via_partition_root, so their rows "
				    "would stay at the destination; syncd "
				    "stops: re-sync %s.%s (a new job with mode "
				    "= "
				    "full+incremental, or drop slot %s and the "
				    "job's state), or, if they were only "
				    "rewritten, start the job again",
				    t->schema, t->name, db->dbname, pd->names,
				    t->schema, t->name, t->schema, t->name,
				    db->slot ? db->slot : "");
			free(pd->snap.xip);
			free(pd->names);
			memmove(pd, pd + 1, --t->npend * sizeof *pd);
		}
	}
	return ok;
}

/* A database name with a character the reference forbids (DESIGN §5
 * "Names") is refused before connecting. */
bool
pgo_check_dbname(pgo_db *db, bool *problems)
{
	const char *why = pgo_bad_name(db->dbname, "+\"%'\\<>");

	if (!why)
		return true;
	*problems = true;
	return pgo_fail(db, NULL,
	                "database \"%s\": the name %s (+\"%%'\\<> are "
	                "refused); rename it (ALTER DATABASE ... RENAME TO "
	                "...), or leave it out of databases",
	                db->dbname, why);
}

/* The conninfo's dbname, else libpq's default (the user). */
char *
pgo_default_dbname(const pgo *s)
{
	PQconninfoOption *o =
	    PQconninfoParse(s->conninfo ? s->conninfo : "", NULL);
	const char *dbn = NULL, *user = NULL;
	char *out;

	for (PQconninfoOption *p = o; p && p->keyword; p++) {
		if (strcmp(p->keyword, "dbname") == 0 && p->val && *p->val)
			dbn = p->val;
		if (strcmp(p->keyword, "user") == 0 && p->val && *p->val)
			user = p->val;
	}
	if (!dbn)
		dbn = getenv("PGDATABASE");
	if (!dbn)
		dbn = user ? user : getenv("PGUSER");
	if (!dbn)
		dbn = getenv("USER");
	out = strdup(dbn ? dbn : "postgres");
	PQconninfoFree(o);
	return out;
}

void
pgo_db_init(pgo *s, pgo_db *db, uint32_t index, uint32_t stream, char *dbname)
{
	db->src = s;
	db->index = index;
	db->stream = stream;
	pthread_mutex_init(&db->lock, NULL);
	db->dbname = dbname;
	db->slot = pgo_slot_name(s, stream, dbname);
}

typedef struct pgo_found {
	char *dbname;
	long stream; /* -1: none yet */
} pgo_found;

static int
pgo_found_cmp(const void *a, const void *b)
{
	const pgo_found *x = a, *y = b;
	return (x->stream > y->stream) - (x->stream < y->stream);
}

/*
 * The shard scenario: the databases some source_db_filter matches, each
 * with its stream. A stream number must stay with its database across
 * restarts (the destination keeps progress per stream), and databases come
 * and go; so the number is part of the slot's name, read back from the
 * job's existing slots, and a new database takes the lowest free number.
 */
bool
pgo_discover(pgo *s)
{
	const char *keys[] = {"dbname", "dbname", "fallback_application_name",
	                      NULL};
	const char *vals[] = {s->conninfo ? s->conninfo : "", NULL, "syncd",
	                      NULL};
	PQconninfoOption *o;
	PGconn *c;
	PGresult *res = NULL;
	pgo_found *found = NULL;
	size_t nfound = 0;
	char *prefix = NULL;
	bool used[PGO_MAX_DBS] = {false}, ok = false;
	pgo_sb all = {0};

	if (!s->sharded || s->discovered)
		return true;
	/* the conninfo's database, or postgres, to list the others */
	o = PQconninfoParse(vals[0], NULL);
	vals[1] = "postgres";
	for (PQconninfoOption *p = o; p && p->keyword; p++)
		if (strcmp(p->keyword, "dbname") == 0 && p->val && *p->val)
			vals[1] = NULL;
	if (!vals[1]) {
		keys[1] = "fallback_application_name";
		vals[1] = "syncd";
		keys[2] = NULL;
		vals[2] = NULL;
	}
	c = PQconnectdbParams(keys, vals, 1);
	pgo_notices(s, c);
	PQconninfoFree(o);
	if (PQstatus(c) != CONNECTION_OK) {
		s->host->set_error(
		    s->host, "08001",
		    "could not connect to the source to list its "
		    "databases: %s",
		    PQerrorMessage(c));
		goto done;
	}
	res = PQexec(c, "SELECT datname FROM pg_database WHERE datallowconn "
	                "AND NOT datistemplate ORDER BY datname");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		s->host->set_error(s->host, pgo_sqlstate(res),
		                   "listing the source's databases: %s",
		                   PQerrorMessage(c));
		goto done;
	}
	found = calloc((size_t) PQntuples(res) + 1, sizeof *found);
	for (int i = 0; i < PQntuples(res); i++) {
		const char *name = PQgetvalue(res, i, 0);
		pgo_sb_printf(&all, "%s%s", all.len ? ", " : "", name);
		if (s->host->source->select(s->host, name, NULL, NULL) !=
		    SYNCD_SELECT_YES)
			continue;
		found[nfound].dbname = strdup(name);
		found[nfound++].stream = -1;
	}
	PQclear(res);
	if (nfound == 0) {
		s->host->set_error(s->host, NULL,
		                   "no database on the source matches the "
		                   "source_db_filter of any [logical_table.*] "
		                   "section (databases: %s)",
		                   all.len ? all.data : "none");
		s->nothing = true;
		res = NULL;
		goto done;
	}
	if (nfound > PGO_MAX_DBS) {
		s->host->set_error(s->host, NULL,
		                   "%zu databases match the source_db_filter "
		                   "of the [logical_table.*] sections; at most "
		                   "%d (one slot each)",
		                   nfound, PGO_MAX_DBS);
		s->nothing = true;
		res = NULL;
		goto done;
	}
	/* the streams of the job's existing slots */
	prefix = pgo_slot_prefix(s);
	{
		const char *p[1] = {prefix};
		res = PQexecParams(c,
		                   "SELECT slot_name, database FROM "
		                   "pg_replication_slots WHERE "
		                   "starts_with(slot_name::text, $1)",
		                   1, NULL, p, NULL, NULL, 0);
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		s->host->set_error(s->host, pgo_sqlstate(res),
		                   "listing replication slots: %s",
		                   PQerrorMessage(c));
		goto done;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *slot = PQgetvalue(res, i, 0) + strlen(prefix);
		const char *dbname = PQgetvalue(res, i, 1);
		char *end;
		long n = strtol(slot, &end, 10);
		bool matched = false;

		if (end == slot || *end || n < 0 || n >= PGO_MAX_DBS)
			continue;
		for (size_t k = 0; k < nfound; k++)
			if (strcmp(found[k].dbname, dbname) == 0 &&
			    found[k].stream < 0 && !used[n]) {
				found[k].stream = n;
				used[n] = matched = true;
			}
		if (!matched)
			SYNCD_LOG_WARNING(
			    s->host,
			    "replication slot %s of this job is in "
			    "database \"%s\", which no source_db_filter "
			    "matches now: it keeps WAL on the source; "
			    "drop it (SELECT pg_drop_replication_slot("
			    "'%s')) if the database is gone for good",
			    PQgetvalue(res, i, 0), dbname,
			    PQgetvalue(res, i, 0));
	}
	for (size_t k = 0; k < nfound; k++)
		if (found[k].stream < 0)
			for (long n = 0; n < PGO_MAX_DBS; n++)
				if (!used[n]) {
					found[k].stream = n;
					used[n] = true;
					break;
				}
	qsort(found, nfound, sizeof *found, pgo_found_cmp);
	s->dbs = calloc(nfound, sizeof *s->dbs);
	for (size_t k = 0; k < nfound; k++) {
		pgo_db_init(s, &s->dbs[k], (uint32_t) k,
		            (uint32_t) found[k].stream, found[k].dbname);
		found[k].dbname = NULL;
	}
	s->ndbs = nfound;
	s->discovered = ok = true;
done:
	PQclear(res);
	PQfinish(c);
	for (size_t k = 0; k < nfound; k++)
		free(found[k].dbname);
	free(found);
	free(prefix);
	free(all.data);
	return ok;
}

/* What automatic table creation wants beyond the columns: the table's
 * comment and its ordinary indexes (non-unique btree indexes on plain
 * columns, without predicate). */
typedef struct pgo_extras {
	char *comment;
	size_t nindexes;
	syncd_index *indexes; /* names: owned by pgo_all_extras */
} pgo_extras;

static void
pgo_extras_free(pgo_extras *x)
{
	for (size_t i = 0; i < x->nindexes; i++)
		free((uint32_t *) x->indexes[i].columns);
	free(x->indexes);
	free(x->comment);
	memset(x, 0, sizeof *x);
}

/* The comments and ordinary indexes of every table of db, in one query
 * each (ordered by table oid), for pgo_table_extras: one round trip per
 * table cost seconds at the start of a job with thousands of tables. */
typedef struct pgo_all_extras {
	PGresult *comments, *indexes;
} pgo_all_extras;

static bool
pgo_read_extras(pgo_db *db, pgo_all_extras *a)
{
	pgo_sb oids = {0};
	const char *params[1];

	pgo_sb_printf(&oids, "{");
	for (size_t i = 0; i < db->ntables; i++)
		pgo_sb_printf(&oids, "%s%u", i ? "," : "", db->tables[i].oid);
	pgo_sb_printf(&oids, "}");
	params[0] = oids.data;
	a->comments = pgo_query(
	    db, db->sql, "reading table comments",
	    "SELECT o.oid, obj_description(o.oid, 'pg_class') FROM "
	    "unnest($1::oid[]) o(oid) ORDER BY 1",
	    1, params);
	if (a->comments)
		a->indexes = pgo_query(
		    db, db->sql, "listing indexes",
		    "SELECT i.indrelid, c.relname, a.attname FROM pg_index i "
		    "JOIN pg_class c ON c.oid = i.indexrelid "
		    "JOIN pg_am am ON am.oid = c.relam AND am.amname = "
		    "'btree' "
		    "CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH "
		    "ORDINALITY AS k(attnum, pos) "
		    "JOIN pg_attribute a ON a.attrelid = i.indrelid AND "
		    "a.attnum = k.attnum "
		    "WHERE i.indrelid = ANY ($1::oid[]) AND NOT i.indisunique "
		    "AND i.indexprs IS NULL AND i.indpred IS NULL "
		    "ORDER BY i.indrelid, c.relname, k.pos",
		    1, params);
	free(oids.data);
	return a->comments && a->indexes;
}

static void
pgo_all_extras_free(pgo_all_extras *a)
{
	if (a->comments)
		PQclear(a->comments);
	if (a->indexes)
		PQclear(a->indexes);
	memset(a, 0, sizeof *a);
}

/* The first row of res (ordered by its first column, an oid) for oid, or
 * PQntuples(res). */
static int
pgo_rows_of(const PGresult *res, uint32_t oid)
{
	int lo = 0, hi = PQntuples(res);

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if ((uint32_t) strtoul(PQgetvalue(res, mid, 0), NULL, 10) < oid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* t's comment and indexes, from a (which owns the names). */
static void
pgo_table_extras(const pgo_all_extras *a, const pgo_table *t, pgo_extras *x)
{
	int r = pgo_rows_of(a->comments, t->oid);

	if (r < PQntuples(a->comments) &&
	    (uint32_t) strtoul(PQgetvalue(a->comments, r, 0), NULL, 10) ==
	        t->oid &&
	    !PQgetisnull(a->comments, r, 1))
		x->comment = strdup(PQgetvalue(a->comments, r, 1));
	for (r = pgo_rows_of(a->indexes, t->oid);
	     r < PQntuples(a->indexes) &&
	     (uint32_t) strtoul(PQgetvalue(a->indexes, r, 0), NULL, 10) ==
	         t->oid;
	     r++) {
		const char *name = PQgetvalue(a->indexes, r, 1);
		syncd_index *ix;
		uint32_t col = UINT32_MAX;
		if (x->nindexes == 0 ||
		    strcmp(x->indexes[x->nindexes - 1].name, name) != 0) {
			x->indexes = realloc(
			    x->indexes, (x->nindexes + 1) * sizeof *x->indexes);
			x->indexes[x->nindexes++] = (syncd_index){
			    .size = sizeof(syncd_index), .name = name};
		}
		ix = &x->indexes[x->nindexes - 1];
		for (size_t c = 0; c < t->ncols; c++)
			if (strcmp(t->cols[c].name,
			           PQgetvalue(a->indexes, r, 2)) == 0)
				col = (uint32_t) c;
		if (col == UINT32_MAX)
			continue; /* a column syncd does not sync */
		ix->columns = realloc((uint32_t *) ix->columns,
		                      (ix->ncolumns + 1) * sizeof(uint32_t));
		((uint32_t *) ix->columns)[ix->ncolumns++] = col;
	}
}

syncd_status
pgo_list_tables(void *state, syncd_relation_fn fn, void *ctx)
{
	pgo *s = state;
	syncd_status st;

	if ((st = pgo_find_dbs(s)) != SYNCD_OK)
		return st == SYNCD_INVALID ? SYNCD_FATAL : st;
	for (size_t i = 0; i < s->ndbs && st == SYNCD_OK; i++) {
		pgo_db *db = &s->dbs[i];
		/* its own connection and tables: a stream may be open */
		pgo_db one = {.src = s,
		              .index = db->index,
		              .stream = db->stream,
		              .dbname = db->dbname,
		              .named = db->named};
		bool problems = false;

		if (!pgo_check_dbname(&one, &problems))
			return pgo_report(&one, SYNCD_FATAL);
		pgo_all_extras all = {0};

		one.sql = pgo_connect(&one, false);
		if (one.sql && pgo_server_checks(&one, &problems) &&
		    pgo_select_tables(&one, &problems) &&
		    pgo_read_extras(&one, &all))
			for (size_t k = 0; k < one.ntables && st == SYNCD_OK;
			     k++) {
				const pgo_table *t = &one.tables[k];
				syncd_column *cols =
				    calloc(t->ncols + 1, sizeof *cols);
				syncd_column_details *cd =
				    calloc(t->ncols + 1, sizeof *cd);
				syncd_table_details details = {
				    .size = sizeof details,
				    .version = SYNCD_DETAILS_VERSION,
				    .columns = cd};
				syncd_relation rel = {
				    .size = sizeof rel,
				    .id =
				        ((uint64_t) one.stream << 32) | t->oid,
				    .database = one.dbname,
				    .schema = t->schema,
				    .table = t->name,
				    .ncolumns = (uint32_t) t->ncols,
				    .columns = cols,
				    .replica_identity = t->replident,
				    .details = &details};
				pgo_extras x = {0};
				for (size_t c = 0; c < t->ncols; c++) {
					const pgo_col *pc = &t->cols[c];
					cols[c].size = sizeof cols[c];
					cols[c].name = pc->name;
					cols[c].type_oid = pc->typid;
					cols[c].type_name = pc->type_name;
					cols[c].typmod = -1;
					cols[c].flags =
					    (pc->key ? SYNCD_COL_KEY : 0) |
					    (pc->notnull ? SYNCD_COL_NOT_NULL
					                 : 0);
					cols[c].key_position = pc->keypos;
					cols[c].default_value = pc->def;
					cd[c].size = sizeof cd[c];
					cd[c].base_type_name = pc->base_type;
					cd[c].comment = pc->comment;
				}
				pgo_table_extras(&all, t, &x);
				details.comment = x.comment;
				details.nindexes = (uint32_t) x.nindexes;
				details.indexes = x.indexes;
				st = fn(ctx, &rel);
				pgo_extras_free(&x);
				free(cd);
				free(cols);
			}
		else
			st = pgo_report(&one, SYNCD_FATAL);
		pgo_all_extras_free(&all);
		db->named = one.named;
		if (!db->host)
			db->host = one.host;
		else
			free(one.host);
		pgo_close(&one);
		pgo_free_tables(&one);
		pgo_decoder_free(&one.dec);
		pgo_decoder_free(&one.replay);
	}
	return st;
}
