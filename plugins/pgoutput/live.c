/*
 * plugins/pgoutput/live.c - tables copied while the stream goes on (ABI
 * 1.3): new_tables() finds the tables that joined the selection since the
 * stream opened, snapshot_tables() makes the stream carry them (the
 * publication, the relation cache) and takes a snapshot of them.
 *
 * The snapshot is a temporary slot's, created now on a connection of its
 * own (which keeps it, and the slot, until release_tables()): its
 * consistent point is exactly where the copy's data ends, so the core
 * applies the table's changes from there on. The tables are described in
 * a third connection that imports the snapshot; the stream's own SQL
 * session (sql) is never inside it, since the stream thread goes on
 * reading the catalog with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgo.h"

/* The selection as the catalog has it now, into db->fresh; db->tables is
 * kept as it is. */
static bool
pgo_rescan(pgo_db *db)
{
	pgo_table *old = db->tables;
	size_t nold = db->ntables;
	bool problems = false, ok, named = db->named;

	for (size_t i = 0; i < db->nfresh; i++)
		pgo_free_table(&db->fresh[i]);
	free(db->fresh);
	db->fresh = NULL;
	db->nfresh = 0;
	db->tables = NULL;
	db->ntables = 0;
	db->carried = old;
	db->ncarried = nold;
	db->nkept = 0;
	db->rescanning = true;
	db->named = true;
	ok = pgo_select_tables(db, &problems);
	db->rescanning = false;
	db->carried = NULL;
	db->ncarried = 0;
	db->named = named;
	db->fresh = db->tables;
	db->nfresh = db->ntables;
	db->tables = old;
	db->ntables = nold;
	return ok;
}

static pgo_table *
pgo_fresh_by_oid(pgo_db *db, uint32_t oid)
{
	for (size_t i = 0; i < db->nfresh; i++)
		if (db->fresh[i].oid == oid)
			return &db->fresh[i];
	return NULL;
}

/* A carried table that left the selection: logged, no longer carried. */
void
pgo_table_left(pgo_db *db, size_t at)
{
	pgo *s = db->src;
	pgo_table *t = &db->tables[at];
	char oid[16];
	const char *params[1] = {oid};
	PGresult *res;
	pgo_rel *r;

	snprintf(oid, sizeof oid, "%u", t->oid);
	res = pgo_query(db, db->sql, "reading a table that left the selection",
	                "SELECT n.nspname, c.relname FROM "
	                "pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
	                "ON n.oid = c.relnamespace WHERE c.oid = $1::oid",
	                1, params);
	db->err[0] = '\0';
	if (res && PQntuples(res) == 1) {
		const char *schema = PQgetvalue(res, 0, 0);
		const char *name = PQgetvalue(res, 0, 1);
		bool same = strcmp(schema, t->schema) == 0 &&
		            strcmp(name, t->name) == 0;
		if (!same && pgo_matches(s, db->dbname, schema, name))
			SYNCD_LOG_WARNING(
			    s->host,
			    "table %s.%s in database \"%s\" was renamed to "
			    "%s.%s while streaming, which tables selects too: "
			    "it joins under its new name (a target of its own, "
			    "copied), and the target of the old name is left as "
			    "it is",
			    t->schema, t->name, db->dbname, schema, name);
		else
			SYNCD_LOG_WARNING(
			    s->host,
			    "table %s.%s in database \"%s\" left the selection "
			    "while streaming (it is now %s.%s, which tables "
			    "does not select, or which syncd cannot sync: see "
			    "above): its changes are no longer synced, and its "
			    "target is left as it is",
			    t->schema, t->name, db->dbname, schema, name);
	} else
		SYNCD_LOG_WARNING(
		    s->host,
		    "table %s.%s in database \"%s\" left the selection while "
		    "streaming (dropped): its changes are no longer synced, and "
		    "its target is left as it is",
		    t->schema, t->name, db->dbname);
	if (res)
		PQclear(res);
	if ((r = pgo_rel_find(db, t->oid)))
		pgo_rel_adopt(db, r, NULL);
	/* the next watch reads the selection again: under a new name that
	 * tables selects, the table joins */
	free(db->catalog_fp);
	db->catalog_fp = NULL;
	pgo_free_table(t);
	memmove(t, t + 1, (db->ntables - at - 1) * sizeof *t);
	db->ntables--;
}

/* A carried table the catalog no longer selects (dropped, renamed,
 * made unsyncable) leaves once the stream has passed the change: the
 * changes the stream has still to bring from before it are applied. The
 * position is the end of WAL now, past the change this rescan saw; on
 * PostgreSQL 14+ a heartbeat message written at it brings the stream
 * there at once (pgo_leave_passed, at the message), else the next
 * keepalive or change past it does. False: no position (the table leaves
 * now). */
static bool
pgo_leave_mark(pgo_db *db, pgo_table *t)
{
	PGresult *res = NULL;

	if (db->version >= 140000)
		res = PQexec(db->sql,
		             "SELECT pg_current_wal_insert_lsn(), "
		             "pg_logical_emit_message(false, "
		             "'" PGO_HEARTBEAT_PREFIX "', ''), txid_current()");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		res = PQexec(db->sql, "SELECT pg_current_wal_insert_lsn()");
	}
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		t->leave_lsn = pgo_parse_lsn(PQgetvalue(res, 0, 0));
	PQclear(res);
	return t->leave_lsn != 0;
}

/* The carried tables marked to leave whose mark the stream has reached
 * (at): they leave now. */
void
pgo_leave_passed(pgo_db *db, uint64_t at)
{
	for (size_t i = 0; i < db->ntables; i++)
		if (db->tables[i].leave_lsn && at >= db->tables[i].leave_lsn)
			pgo_table_left(db, i--);
}

/* Whether the catalogs the selection is read from may have changed since
 * the last rescan: a fingerprint of their rows (how many, and the sum of
 * their xmin: a row inserted, updated or deleted changes one or the
 * other), a few milliseconds where a rescan of thousands of tables costs
 * most of a second of the server's CPU. At least every PGO_RESCAN_MS the
 * selection is read whatever the fingerprint (what it does not cover: a
 * role's rights). A failed query rescans. */
#define PGO_RESCAN_MS (5 * 60 * 1000)

static bool
pgo_catalog_moved(pgo_db *db)
{
	static const char *const catalogs[] = {
	    "pg_class", "pg_namespace", "pg_index", "pg_inherits",
	    "pg_attribute", "pg_publication", "pg_publication_rel",
	    "pg_auth_members", "pg_publication_namespace"};
	size_t n = db->version >= 150000 ? 9 : 8;
	pgo_sb sql = {0};
	PGresult *res;
	bool moved = true;
	int64_t now = pgo_now_ms();

	pgo_sb_printf(&sql, "SELECT ");
	for (size_t i = 0; i < n; i++)
		pgo_sb_printf(&sql,
		              "%s(SELECT count(*) || ':' || "
		              "coalesce(sum(xmin::text::bigint), 0) FROM "
		              "pg_catalog.%s)",
		              i ? " || '/' || " : "", catalogs[i]);
	res = PQexec(db->sql, sql.data);
	free(sql.data);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		const char *fp = PQgetvalue(res, 0, 0);
		moved = !db->catalog_fp || strcmp(db->catalog_fp, fp) != 0 ||
		        now - db->last_rescan_ms >= PGO_RESCAN_MS;
		free(db->catalog_fp);
		db->catalog_fp = strdup(fp);
	}
	PQclear(res);
	if (moved)
		db->last_rescan_ms = now;
	return moved;
}

syncd_status
pgo_new_tables(void *state, uint32_t stream, syncd_relation_fn fn, void *ctx)
{
	pgo *s = state;
	pgo_db *db = pgo_db_find(s, stream);
	syncd_status st = SYNCD_OK;

	if (!db || !db->sql)
		return SYNCD_OK; /* not open: nothing is carried yet */
	db->err[0] = '\0';
	db->sqlstate[0] = '\0';
	/* roots to copy again: known from the partition watch */
	for (size_t i = 0; i < db->ntables && st == SYNCD_OK; i++)
		if (db->tables[i].recopy) {
			syncd_relation *rel =
			    pgo_table_relation(db, &db->tables[i]);
			st = fn(ctx, rel);
			free((syncd_column *) rel->columns);
			free(rel);
		}
	pgo_leave_passed(db, pgo_received(db));
	if (st != SYNCD_OK || !pgo_catalog_moved(db))
		return st;
	if (!pgo_rescan(db))
		return pgo_report(db, SYNCD_RETRY);
	for (size_t i = 0; i < db->ntables; i++) {
		pgo_table *t = &db->tables[i];
		pgo_table *f = pgo_fresh_by_oid(db, t->oid);
		bool stays = f && strcmp(f->schema, t->schema) == 0 &&
		             strcmp(f->name, t->name) == 0;
		for (size_t k = 0; k < db->nkept && !stays; k++)
			stays = db->kept[k] == t->oid;
		if (stays)
			t->leave_lsn = 0;
		else if (!t->leave_lsn && !pgo_leave_mark(db, t))
			pgo_table_left(db, i--);
	}
	for (size_t i = 0; i < db->nfresh && st == SYNCD_OK; i++) {
		pgo_table *f = &db->fresh[i];
		syncd_relation *rel;

		if (pgo_table_by_oid(db, f->oid))
			continue; /* carried (a recopy is reported above) */
		rel = pgo_table_relation(db, f);
		st = fn(ctx, rel);
		free((syncd_column *) rel->columns);
		free(rel);
	}
	return st;
}

void
pgo_release_live(pgo_db *db)
{
	if (db->lct)
		pgo_free_copy_tables(db->lct, db->nlct);
	db->lct = NULL;
	db->nlct = 0;
	if (db->ltmp)
		PQclear(db->ltmp);
	db->ltmp = NULL;
	if (db->ltconn)
		PQfinish(db->ltconn); /* drops the temporary slot */
	db->ltconn = NULL;
}

void
pgo_free_live(pgo_db *db)
{
	pgo_release_live(db);
	for (size_t i = 0; i < db->nfresh; i++)
		pgo_free_table(&db->fresh[i]);
	free(db->fresh);
	db->fresh = NULL;
	db->nfresh = 0;
	for (size_t i = 0; i < db->nwarned; i++)
		free(db->warned[i]);
	free(db->warned);
	db->warned = NULL;
	db->nwarned = 0;
	free(db->catalog_fp);
	db->catalog_fp = NULL;
	free(db->kept);
	db->kept = NULL;
	db->nkept = 0;
}

/* The selected table schema.name, taken from the last rescan into the
 * carried tables when it joined since; NULL when it is not selected. */
static pgo_table *
pgo_take_table(pgo_db *db, const char *schema, const char *name,
               bool *joined)
{
	pgo_table *f = NULL;

	*joined = false;
	for (size_t i = 0; i < db->ntables; i++)
		if (strcmp(db->tables[i].schema, schema) == 0 &&
		    strcmp(db->tables[i].name, name) == 0)
			return &db->tables[i];
	for (int pass = 0; pass < 2 && !f; pass++) {
		if (pass == 1 && !pgo_rescan(db))
			return NULL;
		for (size_t i = 0; i < db->nfresh && !f; i++)
			if (strcmp(db->fresh[i].schema, schema) == 0 &&
			    strcmp(db->fresh[i].name, name) == 0)
				f = &db->fresh[i];
	}
	if (!f)
		return NULL;
	db->tables =
	    realloc(db->tables, (db->ntables + 2) * sizeof *db->tables);
	if (!db->tables)
		abort();
	db->tables[db->ntables] = *f;
	memset(&db->tables[db->ntables + 1], 0, sizeof *db->tables);
	/* the rescan's copy is the table's now */
	memmove(f, f + 1,
	        (size_t) (db->fresh + db->nfresh - f - 1) * sizeof *f);
	db->nfresh--;
	*joined = true;
	return &db->tables[db->ntables++];
}

syncd_status
pgo_snapshot_tables(void *state, uint32_t stream,
                    const syncd_relation *const *tables, size_t n,
                    syncd_snapshot *snap)
{
	pgo *s = state;
	pgo_db *db = pgo_db_find(s, stream);
	uint32_t *oids = calloc(n + 1, sizeof *oids);
	pgo_table **list = NULL;
	size_t k = 0;
	bool joined_any = false, problems = false;
	PGconn *c = NULL;
	PGresult *res = NULL;
	const char *snapshot;
	syncd_lsn at;
	syncd_status st = SYNCD_FATAL;

	*snap = (syncd_snapshot){.size = sizeof *snap};
	if (!db || !db->sql) {
		free(oids);
		return SYNCD_OK;
	}
	pgo_release_live(db);
	db->err[0] = '\0';
	db->sqlstate[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const syncd_relation *r = tables[i];
		pgo_table *t;
		bool joined;

		if (r->database && strcmp(r->database, db->dbname) != 0)
			continue;
		t = pgo_take_table(db, r->schema, r->table, &joined);
		if (!t) {
			if (!db->err[0])
				pgo_fail(db, NULL,
				         "table %s.%s in database \"%s\" is not a "
				         "table this job syncs (tables does not "
				         "select it, or it cannot be synced: see "
				         "above)",
				         r->schema, r->table, db->dbname);
			st = SYNCD_INVALID;
			goto out;
		}
		t->recopy = false;
		joined_any |= joined;
		oids[k++] = t->oid;
	}
	if (k == 0) {
		st = SYNCD_OK;
		goto out;
	}
	/* what the stream must carry from now on: the publication first
	 * (its changes stream from its commit on), then the cache of a
	 * relation the stream described before it was selected */
	if (joined_any && !pgo_publication(db, true, &problems)) {
		st = problems ? SYNCD_INVALID : SYNCD_RETRY;
		goto out;
	}
	list = calloc(k + 1, sizeof *list);
	for (size_t i = 0; i < k; i++) {
		pgo_rel *r = pgo_rel_find(db, oids[i]);
		list[i] = pgo_table_by_oid(db, oids[i]);
		if (r && !r->selected) {
			pgo_rel_adopt(db, r, list[i]);
			r->announce = true;
		}
	}

	if (!pgo_temp_slot(db, "live", "to copy a table while streaming",
	                   &db->ltconn, &db->ltmp)) {
		st = SYNCD_RETRY;
		goto out;
	}
	at = pgo_parse_lsn(PQgetvalue(db->ltmp, 0, 1));
	snapshot = PQgetvalue(db->ltmp, 0, 2);

	/* the tables, described in the snapshot */
	c = pgo_connect(db, false);
	if (!c) {
		st = SYNCD_RETRY;
		goto out;
	}
	{
		char *lit = PQescapeLiteral(c, snapshot, strlen(snapshot));
		size_t len = strlen(lit) + 96;
		char *sql = malloc(len);
		if (!sql)
			abort();
		snprintf(sql, len,
		         "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; "
		         "SET TRANSACTION SNAPSHOT %s",
		         lit);
		PQfreemem(lit);
		res = PQexec(c, sql);
		free(sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			pgo_fail(db, pgo_sqlstate(res),
			         "database \"%s\": could not import the snapshot "
			         "of a table copy: %s",
			         db->dbname, PQerrorMessage(c));
			st = SYNCD_RETRY;
			goto out;
		}
		PQclear(res);
	}
	res = pgo_snapshot_xmin(db, c);
	if (!res || !pgo_copy_tables(db, c, list, k, PQgetvalue(res, 0, 0),
	                             &db->lct)) {
		st = SYNCD_RETRY;
		goto out;
	}
	db->nlct = k;
	for (size_t i = 0; i < k; i++)
		db->lct[i].snapshot_lsn = at;
	SYNCD_LOG_INFO(s->host,
	               "database \"%s\": %zu table(s) copied while streaming, "
	               "from snapshot %s (a temporary slot's, at %X/%X)",
	               db->dbname, k, snapshot, (unsigned) (at >> 32),
	               (unsigned) at);
	*snap = (syncd_snapshot){.size = sizeof *snap,
	                         .name = snapshot,
	                         .lsn = at,
	                         .ntables = db->nlct,
	                         .tables = db->lct};
	st = SYNCD_OK;
out:
	if (res)
		PQclear(res);
	if (c)
		PQfinish(c);
	free(list);
	free(oids);
	if (st != SYNCD_OK) {
		pgo_release_live(db);
		return pgo_report(db, st);
	}
	return SYNCD_OK;
}

void
pgo_release_tables(void *state, uint32_t stream)
{
	pgo_db *db = pgo_db_find(state, stream);

	if (db)
		pgo_release_live(db);
}
