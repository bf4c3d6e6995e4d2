/*
 * plugins/pgoutput/snapshot.c - the full phase: the snapshot, the tables and
 * their chunks, and the chunk readers.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgo.h"

/* ---- full phase ----------------------------------------------------------
 *
 * snapshot() describes the selected tables of one database with a
 * snapshot: the exported snapshot of a slot open() created just now (the
 * stream then starts exactly where the copy's data ends), or else, when
 * the job's slot is older (a copy resumed after a restart), the snapshot
 * of a temporary slot created for the copy (for mode = full, a snapshot
 * exported by a repeatable-read transaction), held until release().
 *
 * Why a fresh snapshot converges: the slot's position P is older than the
 * fresh snapshot S, so every table copied at S already holds the effect of
 * the changes the stream replays from P up to S's consistent point, which
 * the temporary slot gives exactly and every table carries as its
 * snapshot_lsn. Whole rows replay harmlessly per key and in source order:
 * an INSERT of a key that exists writes the row, a DELETE of a missing key
 * does nothing, and TRUNCATE empties the table (every row inserted after
 * it comes again in the suffix). What must not happen is taking a value
 * from the destination for a replayed change (a key move's unchanged
 * TOAST values from the row at the old key, which may be a newer row by
 * then): the sink, told snapshot_lsn, does not read the destination for
 * changes older than it, and skips a replayed partial row whose key is
 * gone. So after the suffix every key holds its newest version.
 *
 * Resuming inside a table: an earlier copy finished some chunks (block
 * ranges) from its snapshot S0; the rest is copied from S. A row version
 * can have moved between block ranges since S0 (an UPDATE writes the new
 * version where there is room), and a version that moved into a finished
 * chunk would otherwise come only through the stream, as an UPDATE that
 * may leave out its unchanged TOAST values. So finished chunks are read
 * again for the row versions written by transactions not older than S0's
 * xmin: every version that moved or changed since S0 has such an xmin,
 * and an older one is where S0 saw it (a rewrite - VACUUM FULL, CLUSTER,
 * TRUNCATE - changes the table's file node; then every row is read). They
 * and the unfinished chunks merge by key. Every key then holds its version
 * at S0 or at S, or a version S no longer has (deleted since S0: the
 * suffix from P deletes it), and the suffix converges as above.
 *
 * Readers (copy_open/copy_read/copy_close) run in the core's copy threads,
 * each with its own connection and repeatable-read transaction that has
 * imported the snapshot. Each chunk runs under a savepoint so that a chunk
 * abandoned half-way (the destination was lost) can be read again from
 * the same snapshot.
 */

typedef struct pgo_reader {
	pgo *s;
	pgo_db *db;
	PGconn *conn;
	char *buf;
	size_t len, cap;
} pgo_reader;

#define PGO_COPY_PIECE (256 * 1024)

void
pgo_free_copy_tables(syncd_copy_table *ct, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ct[i].rel) {
			free((syncd_column *) ct[i].rel->columns);
			free((syncd_relation *) ct[i].rel);
		}
		for (uint32_t c = 0; c < ct[i].nchunks; c++)
			free((char *) ct[i].chunks[c]);
		free((char **) ct[i].chunks);
		free((char *) ct[i].source_state);
	}
	free(ct);
}

/* The relation of a selected table, as list_tables gives it (without the
 * extras only table creation wants). */
syncd_relation *
pgo_table_relation(pgo_db *db, const pgo_table *t)
{
	syncd_relation *rel = calloc(1, sizeof *rel);
	syncd_column *cols = calloc(t->ncols + 1, sizeof *cols);

	for (size_t c = 0; c < t->ncols; c++) {
		cols[c].name = t->cols[c].name;
		cols[c].type_oid = t->cols[c].typid;
		cols[c].size = sizeof cols[c];
		cols[c].type_name = t->cols[c].type_name;
		cols[c].typmod = -1;
		cols[c].flags = (t->cols[c].key ? SYNCD_COL_KEY : 0) |
		                (t->cols[c].notnull ? SYNCD_COL_NOT_NULL : 0);
		cols[c].key_position = t->cols[c].keypos;
		cols[c].default_value = t->cols[c].def;
	}
	*rel = (syncd_relation){.size = sizeof *rel,
	                        .id = ((uint64_t) db->stream << 32) | t->oid,
	                        .database = db->dbname,
	                        .schema = t->schema,
	                        .table = t->name,
	                        .ncolumns = (uint32_t) t->ncols,
	                        .columns = cols,
	                        .replica_identity = t->replident};
	return rel;
}

/* One chunk list per table: a plain table's own blocks; a root's leaf
 * partitions, each one chunk or its block ranges. */
typedef struct pgo_part {
	const char *from;  /* quoted schema.name, NULL: the table itself */
	const char *label; /* schema.name of the leaf */
	int64_t rows, bytes, block;
	const char *filenode;
} pgo_part;

/* Appends the chunks of one relation: chunks of a fixed number of blocks,
 * so that a later run names the same chunks the same way (a resume
 * matches them by name); the last one takes what was added since. */
static void
pgo_part_chunks(pgo_db *db, const pgo_part *p, char ***chunks, uint32_t *n,
                char ***from)
{
	int64_t pages = p->bytes > 0 ? p->bytes / p->block : 0, per;
	uint32_t k = 1;

	per = db->src->chunk_size / (p->block > 0 ? p->block : 8192);
	if (per < 1)
		per = 1;
	if (pages / per > 4096)
		per = (pages + 4095) / 4096;
	if (db->version >= 140000 && pages > per)
		k = (uint32_t) ((pages + per - 1) / per);
	*chunks = realloc(*chunks, (*n + k) * sizeof **chunks);
	if (from)
		*from = realloc(*from, (*n + k) * sizeof **from);
	for (uint32_t c = 0; c < k; c++) {
		char name[256], range[64];
		if (k == 1)
			snprintf(range, sizeof range, "whole table");
		else if (c + 1 == k) /* rows added since: the last one */
			snprintf(range, sizeof range, "blocks %" PRId64 "-",
			         (int64_t) c * per);
		else
			snprintf(range, sizeof range,
			         "blocks %" PRId64 "-%" PRId64,
			         (int64_t) c * per, (int64_t) (c + 1) * per);
		if (p->from)
			snprintf(name, sizeof name, "partition %s %s", p->label,
			         k == 1 ? "(whole table)" : range);
		else
			snprintf(name, sizeof name, "%s", range);
		(*chunks)[*n + c] = strdup(name);
		if (from)
			(*from)[*n + c] = strdup(p->from);
	}
	*n += k;
}

/* Sizes from the catalog, and chunks of about copy.chunk.size as block
 * ranges (TID range scans exist from PostgreSQL 14; before, a table is
 * one chunk). A root's partitions are read in the copy's snapshot. */
bool
pgo_copy_tables(pgo_db *db, PGconn *conn, pgo_table *const *tables,
                size_t ntables, const char *xmin, syncd_copy_table **out)
{
	syncd_copy_table *ct = calloc(ntables + 1, sizeof *ct);
	PGresult *res, *lres;
	char *oids = malloc(ntables * 12 + 3);
	const char *params[1];
	size_t len = 1;

	strcpy(oids, "{");
	for (size_t i = 0; i < ntables; i++)
		len += (size_t) sprintf(oids + len, "%s%u", i ? "," : "",
		                        tables[i]->oid);
	strcpy(oids + len, "}");
	params[0] = oids;
	res = pgo_query(db, conn, "reading table sizes",
	                "SELECT c.oid, c.reltuples::bigint, "
	                "  pg_catalog.pg_relation_size(c.oid), "
	                "  current_setting('block_size')::bigint, "
	                "  pg_catalog.pg_relation_filenode(c.oid) "
	                "FROM pg_catalog.pg_class c "
	                "WHERE c.oid = ANY ($1::oid[])",
	                1, params);
	lres = res ? pgo_query(
	                 db, conn, "listing partitions",
	                 "WITH RECURSIVE tree(root, oid) AS (SELECT r, r FROM "
	                 "unnest($1::oid[]) r UNION ALL SELECT t.root, "
	                 "i.inhrelid FROM tree t JOIN pg_catalog.pg_inherits i "
	                 "ON i.inhparent = t.oid) "
	                 "SELECT t.root, quote_ident(n.nspname) || '.' || "
	                 "quote_ident(l.relname), n.nspname || '.' || "
	                 "l.relname, l.reltuples::bigint, "
	                 "pg_catalog.pg_relation_size(l.oid), "
	                 "current_setting('block_size')::bigint, "
	                 "pg_catalog.pg_relation_filenode(l.oid) "
	                 "FROM tree t JOIN pg_catalog.pg_class l ON l.oid = "
	                 "t.oid JOIN pg_catalog.pg_namespace n ON n.oid = "
	                 "l.relnamespace WHERE l.relkind = 'r' AND l.oid <> "
	                 "t.root ORDER BY 1, 3",
	                 1, params)
	           : NULL;
	free(oids);
	if (!res || !lres) {
		if (res)
			PQclear(res);
		free(ct);
		return false;
	}
	for (size_t i = 0; i < ntables; i++) {
		pgo_table *t = tables[i];
		int64_t rows = 0, bytes = 0;
		uint32_t n = 0;
		char **chunks = NULL, state[128];
		uint64_t fnv = 14695981039346656037ULL;

		for (uint32_t k = 0; k < t->nchunk_from; k++)
			free(t->chunk_from[k]);
		free(t->chunk_from);
		t->chunk_from = NULL;
		t->nchunk_from = 0;
		if (t->root) {
			/* the file nodes of its leaves, as one: a rewrite of
			 * any leaf reads them all again at a resume */
			for (int r = 0; r < PQntuples(lres); r++) {
				pgo_part p;
				if (strtoul(PQgetvalue(lres, r, 0), NULL, 10) !=
				    t->oid)
					continue;
				p = (pgo_part){
				    .from = PQgetvalue(lres, r, 1),
				    .label = PQgetvalue(lres, r, 2),
				    .rows = strtoll(PQgetvalue(lres, r, 3),
				                    NULL, 10),
				    .bytes = strtoll(PQgetvalue(lres, r, 4),
				                     NULL, 10),
				    .block = strtoll(PQgetvalue(lres, r, 5),
				                     NULL, 10),
				    .filenode = PQgetvalue(lres, r, 6)};
				if (p.rows > 0)
					rows += p.rows;
				bytes += p.bytes;
				for (const char *c = p.filenode; *c; c++)
					fnv = (fnv ^ (unsigned char) *c) *
					      1099511628211ULL;
				fnv = (fnv ^ ',') * 1099511628211ULL;
				pgo_part_chunks(db, &p, &chunks, &n,
				                &t->chunk_from);
			}
			t->nchunk_from = n;
			if (n == 0) { /* no partition: nothing to read */
				pgo_part p = {.from = "",
				              .label = "(none)",
				              .block = 8192};
				pgo_part_chunks(db, &p, &chunks, &n,
				                &t->chunk_from);
				t->nchunk_from = n;
			}
			snprintf(state, sizeof state,
			         "filenode=%" PRIu64 " xmin=%s",
			         (uint64_t) (fnv % 1000000000000ULL), xmin);
		} else {
			pgo_part p = {.rows = -1,
			              .bytes = -1,
			              .block = 8192,
			              .filenode = ""};
			for (int r = 0; r < PQntuples(res); r++)
				if (strtoul(PQgetvalue(res, r, 0), NULL, 10) ==
				    t->oid) {
					p.rows = strtoll(PQgetvalue(res, r, 1),
					                 NULL, 10);
					p.bytes = strtoll(PQgetvalue(res, r, 2),
					                  NULL, 10);
					p.block = strtoll(PQgetvalue(res, r, 3),
					                  NULL, 10);
					p.filenode = PQgetvalue(res, r, 4);
				}
			pgo_part_chunks(db, &p, &chunks, &n, NULL);
			rows = p.rows;
			bytes = p.bytes;
			snprintf(state, sizeof state, "filenode=%s xmin=%s",
			         p.filenode, xmin);
		}
		ct[i] =
		    (syncd_copy_table){.size = sizeof ct[i],
		                       .rel = pgo_table_relation(db, t),
		                       .est_rows = rows,
		                       .est_bytes = bytes,
		                       .nchunks = n,
		                       .chunks = (const char *const *) chunks,
		                       .source_state = strdup(state)};
	}
	PQclear(res);
	PQclear(lres);
	*out = ct;
	return true;
}

bool
pgo_temp_slot(pgo_db *db, const char *kind, const char *why, PGconn **conn,
              PGresult **res)
{
	char name[64], q[160];

	snprintf(name, sizeof name, "syncd_%s_%ld_%u", kind, (long) getpid(),
	         db->stream);
	snprintf(q, sizeof q,
	         "CREATE_REPLICATION_SLOT %s TEMPORARY LOGICAL pgoutput "
	         "EXPORT_SNAPSHOT",
	         name);
	*conn = pgo_connect(db, true);
	if (!*conn)
		return false;
	*res = PQexec(*conn, q);
	if (PQresultStatus(*res) == PGRES_TUPLES_OK)
		return true;
	return pgo_fail(db, pgo_sqlstate(*res),
	                "could not create a temporary replication slot in "
	                "database \"%s\" %s (one more free slot is needed "
	                "while the copy runs; raise max_replication_slots): %s",
	                db->dbname, why, PQerrorMessage(*conn));
}

PGresult *
pgo_snapshot_xmin(pgo_db *db, PGconn *c)
{
	/* the oldest transaction the snapshot sees as running: a row
	 * version with an older xmin was already there, in the same place */
	return pgo_query(
	    db, c, "reading the snapshot's xmin",
	    db->version >= 130000
	        ? "SELECT (pg_catalog.pg_snapshot_xmin("
	          "pg_catalog.pg_current_snapshot())::text::bigint % "
	          "4294967296)::text"
	        : "SELECT (pg_catalog.txid_snapshot_xmin("
	          "pg_catalog.txid_current_snapshot()) % 4294967296)::text",
	    0, NULL);
}

/* Takes the snapshot of the full phase and describes it in snap; what it
 * holds stays in db until pgo_release_snapshot(). */
static bool
pgo_take_snapshot(pgo_db *db, syncd_snapshot *snap)
{
	pgo *s = db->src;
	PGresult *res = NULL, *xres = NULL;
	const char *snapshot = db->snapshot;
	char *sql = NULL;
	pgo_table **list = NULL;
	bool own = !snapshot, ok = false;
	syncd_lsn at = own ? 0 : db->slot_confirmed;

	/* Streaming follows a copy from a fresh snapshot: the snapshot of a
	 * temporary slot, whose consistent point tells exactly which
	 * transactions the copy holds (a replay of older ones must not read
	 * the destination's rows: syncd_copy_table.snapshot_lsn). The slot
	 * lives while tconn is open. */
	if (own && s->stream) {
		if (!pgo_temp_slot(db, "tmp", "to resume the full copy",
		                   &db->tconn, &db->tmp))
			goto out;
		at = pgo_parse_lsn(PQgetvalue(db->tmp, 0, 1));
		snapshot = PQgetvalue(db->tmp, 0, 2);
		own = false;
	}
	/* the sizes, file nodes and xmin are read in a transaction that
	 * holds the copy's snapshot: exported here, or the slot's imported */
	res = pgo_query(db, db->sql, "taking a snapshot for the copy",
	                "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0,
	                NULL);
	if (!res)
		goto out;
	PQclear(res);
	res = NULL;
	db->snap_txn = true;
	if (own) {
		db->export_res = pgo_query(
		    db, db->sql, "exporting the snapshot",
		    "SELECT pg_catalog.pg_export_snapshot()", 0, NULL);
		if (!db->export_res)
			goto out;
		snapshot = PQgetvalue(db->export_res, 0, 0);
	} else {
		char *lit =
		    PQescapeLiteral(db->sql, snapshot, strlen(snapshot));
		sql = malloc(strlen(lit) + 32);
		sprintf(sql, "SET TRANSACTION SNAPSHOT %s", lit);
		PQfreemem(lit);
		res = pgo_query(db, db->sql, "importing a slot's snapshot", sql,
		                0, NULL);
		if (!res)
			goto out;
		PQclear(res);
		res = NULL;
	}
	xres = pgo_snapshot_xmin(db, db->sql);
	if (!xres)
		goto out;
	list = calloc(db->ntables + 1, sizeof *list);
	for (size_t i = 0; i < db->ntables; i++)
		list[i] = &db->tables[i];
	if (!pgo_copy_tables(db, db->sql, list, db->ntables,
	                     PQgetvalue(xres, 0, 0), &db->ct))
		goto out;
	db->nct = db->ntables;
	SYNCD_LOG_INFO(s->host, "database \"%s\": full copy from snapshot %s%s",
	               db->dbname, snapshot,
	               db->tconn ? " (a temporary slot's, newer than the slot)"
	               : own     ? ""
	                         : " (the new slot's starting point)");
	*snap = (syncd_snapshot){.size = sizeof *snap,
	                         .name = snapshot,
	                         .lsn = at,
	                         .ntables = db->nct,
	                         .tables = db->ct};
	ok = true;
out:
	if (res)
		PQclear(res);
	if (xres)
		PQclear(xres);
	free(sql);
	free(list);
	if (!ok)
		pgo_release_snapshot(db);
	return ok;
}

/* Ends what pgo_take_snapshot() holds: the tables, the snapshot's
 * transaction, the temporary slot (its connection). */
void
pgo_release_snapshot(pgo_db *db)
{
	if (db->ct)
		pgo_free_copy_tables(db->ct, db->nct);
	db->ct = NULL;
	db->nct = 0;
	if (db->export_res)
		PQclear(db->export_res);
	db->export_res = NULL;
	if (db->snap_txn && db->sql)
		PQclear(PQexec(db->sql, "COMMIT"));
	db->snap_txn = false;
	if (db->tmp)
		PQclear(db->tmp);
	db->tmp = NULL;
	if (db->tconn)
		PQfinish(db->tconn); /* drops the temporary slot */
	db->tconn = NULL;
	free(db->snapshot);
	db->snapshot = NULL;
}

static syncd_status
pgo_reader_exec(pgo_reader *r, const char *what, const char *sql)
{
	PGresult *res = PQexec(r->conn, sql);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *state = pgo_sqlstate(res);
		r->s->host->set_error(r->s->host, state,
		                      "%s in database \"%s\": %s", what,
		                      r->db->dbname, PQerrorMessage(r->conn));
		PQclear(res);
		return state && strncmp(state, "08", 2) == 0 ? SYNCD_RETRY
		                                             : SYNCD_FATAL;
	}
	PQclear(res);
	return SYNCD_OK;
}

syncd_status
pgo_copy_open(void *state, uint32_t stream, const char *snapshot, void **reader)
{
	pgo *s = state;
	pgo_reader *r;
	const char *keys[] = {"dbname", "dbname", "fallback_application_name",
	                      NULL};
	const char *vals[4];
	char *lit, *sql;
	syncd_status st;

	*reader = NULL;
	r = calloc(1, sizeof *r);
	r->s = s;
	r->db = pgo_db_of(s, stream);
	if (!r->db) {
		free(r);
		return SYNCD_FATAL;
	}
	vals[0] = s->conninfo ? s->conninfo : "";
	vals[1] = r->db->dbname;
	vals[2] = "syncd";
	vals[3] = NULL;
	r->conn = PQconnectdbParams(keys, vals, 1);
	pgo_notices(s, r->conn);
	if (PQstatus(r->conn) != CONNECTION_OK) {
		s->host->set_error(s->host, "08001",
		                   "could not connect to source database "
		                   "\"%s\" for the copy: %s",
		                   r->db->dbname, PQerrorMessage(r->conn));
		pgo_copy_close(r);
		return SYNCD_FATAL;
	}
	/* values leave in the same exact forms as in the stream */
	st = pgo_reader_exec(
	    r, "setting up the copy session",
	    "SET DateStyle = ISO; SET IntervalStyle = postgres; "
	    "SET extra_float_digits = 3; SET TimeZone = 'UTC'; "
	    "SET bytea_output = hex; SET client_encoding = 'UTF8'; "
	    "SET statement_timeout = 0; SET lock_timeout = 0; "
	    "SET idle_in_transaction_session_timeout = 0; "
	    "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
	if (st == SYNCD_OK) {
		lit = PQescapeLiteral(r->conn, snapshot, strlen(snapshot));
		sql = malloc(strlen(lit) + 32);
		sprintf(sql, "SET TRANSACTION SNAPSHOT %s", lit);
		st = pgo_reader_exec(r, "importing the copy's snapshot", sql);
		free(sql);
		PQfreemem(lit);
	}
	if (st != SYNCD_OK) {
		pgo_copy_close(r);
		return SYNCD_FATAL;
	}
	r->cap = PGO_COPY_PIECE + 65536;
	r->buf = malloc(r->cap);
	*reader = r;
	return SYNCD_OK;
}

void
pgo_copy_close(void *reader)
{
	pgo_reader *r = reader;

	if (!r)
		return;
	if (r->conn)
		PQfinish(r->conn);
	free(r->buf);
	free(r);
}

/* The xmin in a source_state ("filenode=N xmin=X") when its file node is
 * the table's now; NULL otherwise (the table was rewritten since: its rows
 * moved, so every row is wanted). */
static const char *
pgo_since_xmin(const syncd_copy_table *t, const char *since, char *xmin,
               size_t n)
{
	unsigned long long f1, f2, x;

	if (!since || !t->source_state ||
	    sscanf(since, "filenode=%llu xmin=%llu", &f1, &x) != 2 ||
	    sscanf(t->source_state, "filenode=%llu", &f2) != 1 || f1 != f2)
		return NULL;
	snprintf(xmin, n, "%llu", x);
	return xmin;
}

/* The COPY statement of one chunk; since: only row versions written by
 * transactions not older than the xmin of an earlier copy's snapshot (the
 * rows that may have changed or moved into the chunk since). */
static char *
pgo_copy_sql(pgo_reader *r, const syncd_copy_table *t, uint32_t chunk,
             const char *since)
{
	const syncd_relation *rel = t->rel;
	const char *name = t->chunks[chunk];
	char *schema = pgo_ident(r->conn, rel->schema);
	char *table = pgo_ident(r->conn, rel->table);
	pgo_sb sql = {0};
	long long from = 0, to = -1;
	bool blocks = strncmp(name, "blocks ", 7) == 0;
	const char *and = " WHERE";

	const char *leaf = NULL;

	/* a root's chunk reads one leaf partition, the root's columns by
	 * name (a leaf's own order may differ) */
	for (size_t i = 0; i < r->db->ntables; i++) {
		const pgo_table *pt = &r->db->tables[i];
		if (pt->root && pt->oid == (uint32_t) rel->id &&
		    chunk < pt->nchunk_from) {
			leaf = pt->chunk_from[chunk];
			if (strstr(name, " blocks "))
				name = strstr(name, " blocks ") + 1;
			blocks = strncmp(name, "blocks ", 7) == 0;
		}
	}
	if (blocks && sscanf(name + 7, "%lld-%lld", &from, &to) < 2)
		to = -1;
	pgo_sb_printf(&sql, "COPY (SELECT ");
	for (uint32_t c = 0; c < rel->ncolumns; c++) {
		char *q = pgo_ident(r->conn, rel->columns[c].name);
		pgo_sb_printf(&sql, "%s%s", c ? ", " : "", q);
		free(q);
	}
	if (leaf && !*leaf) /* a root without partitions */
		pgo_sb_printf(&sql, " FROM ONLY %s.%s WHERE false", schema,
		              table);
	else if (leaf)
		pgo_sb_printf(&sql, " FROM ONLY %s", leaf);
	else
		pgo_sb_printf(&sql, " FROM ONLY %s.%s", schema, table);
	if (leaf && !*leaf)
		and = " AND";
	if (blocks) {
		pgo_sb_printf(&sql, " WHERE ctid >= '(%lld,0)'::pg_catalog.tid",
		              from);
		if (to >= 0)
			pgo_sb_printf(
			    &sql, " AND ctid < '(%lld,0)'::pg_catalog.tid", to);
		and = " AND";
	}
	if (since)
		pgo_sb_printf(&sql,
		              "%s pg_catalog.age(xmin) <= "
		              "pg_catalog.age('%s'::pg_catalog.xid)",
		              and, since);
	pgo_sb_printf(&sql, ") TO STDOUT");
	free(schema);
	free(table);
	return sql.data;
}

syncd_status
pgo_copy_read(void *reader, const syncd_copy_table *t, uint32_t chunk,
              const char *changed_since, syncd_copy_fn fn, void *ctx)
{
	pgo_reader *r = reader;
	pgo *s = r->s;
	char xmin[32];
	char *sql = pgo_copy_sql(
	         r, t, chunk,
	         pgo_since_xmin(t, changed_since, xmin, sizeof xmin)),
	     *row;
	syncd_status st = pgo_reader_exec(r, "starting a chunk",
	                                  "SAVEPOINT syncd_chunk"),
	             out = SYNCD_OK;
	PGresult *res;
	int n;

	if (st != SYNCD_OK) {
		free(sql);
		return st;
	}
	res = PQexec(r->conn, sql);
	free(sql);
	if (PQresultStatus(res) != PGRES_COPY_OUT) {
		const char *state = pgo_sqlstate(res);
		s->host->set_error(s->host, state,
		                   "COPY of %s.%s in database \"%s\": %s",
		                   t->rel->schema, t->rel->table, r->db->dbname,
		                   PQerrorMessage(r->conn));
		PQclear(res);
		return SYNCD_FATAL;
	}
	PQclear(res);
	r->len = 0;
	while ((n = PQgetCopyData(r->conn, &row, 0)) > 0) {
		if (out == SYNCD_OK) {
			if (r->len + (size_t) n > r->cap) { /* a huge row */
				r->cap = r->len + (size_t) n + 65536;
				r->buf = realloc(r->buf, r->cap);
			}
			memcpy(r->buf + r->len, row, (size_t) n);
			r->len += (size_t) n;
			if (r->len >= PGO_COPY_PIECE) {
				out = fn(ctx, r->buf, r->len);
				r->len = 0;
			}
			if (out != SYNCD_OK) {
				/* stop the server, then read what it sent */
				PGcancel *c = PQgetCancel(r->conn);
				char err[256];
				if (c) {
					PQcancel(c, err, sizeof err);
					PQfreeCancel(c);
				}
			}
		}
		PQfreemem(row);
	}
	if (out == SYNCD_OK && n == -1 && r->len > 0)
		out = fn(ctx, r->buf, r->len);
	r->len = 0;
	if (r->cap > 4 * PGO_COPY_PIECE) { /* after a huge row */
		r->cap = PGO_COPY_PIECE + 65536;
		r->buf = realloc(r->buf, r->cap);
	}
	res = PQgetResult(r->conn);
	if (out == SYNCD_OK &&
	    (n == -2 || PQresultStatus(res) != PGRES_COMMAND_OK)) {
		const char *state = pgo_sqlstate(res);
		s->host->set_error(s->host, state,
		                   "COPY of %s.%s in database \"%s\": %s",
		                   t->rel->schema, t->rel->table, r->db->dbname,
		                   PQerrorMessage(r->conn));
		out = state && strncmp(state, "08", 2) == 0 ? SYNCD_RETRY
		                                            : SYNCD_FATAL;
	}
	PQclear(res);
	while ((res = PQgetResult(r->conn)) != NULL)
		PQclear(res);
	if (PQstatus(r->conn) != CONNECTION_OK)
		return out == SYNCD_OK ? SYNCD_FATAL : out;
	/* the snapshot stays: the transaction goes on without this chunk */
	st = pgo_reader_exec(r, "ending a chunk",
	                     out == SYNCD_OK
	                         ? "RELEASE SAVEPOINT syncd_chunk"
	                         : "ROLLBACK TO SAVEPOINT syncd_chunk");
	return out != SYNCD_OK ? out : st;
}

syncd_status
pgo_snapshot(void *state, uint32_t stream, syncd_snapshot *snap)
{
	pgo *s = state;
	pgo_db *db;
	syncd_status st;

	if ((st = pgo_find_dbs(s)) != SYNCD_OK)
		return st;
	if (!(db = pgo_db_of(s, stream)))
		return SYNCD_FATAL;
	if (db->ct) /* one not released: a slot's snapshot is used once */
		pgo_release_snapshot(db);
	db->err[0] = '\0';
	db->sqlstate[0] = '\0';
	if (!db->sql) {
		/* mode = full: open() was not called */
		bool problems = false, created;
		uint64_t confirmed;
		if (!pgo_prepare(db, false, &problems, &confirmed, &created)) {
			st = pgo_prepare_failed(db, problems);
			pgo_close(db);
			return pgo_report(db, st);
		}
	}
	if (!pgo_take_snapshot(db, snap))
		return pgo_report(db, SYNCD_FATAL);
	return SYNCD_OK;
}

void
pgo_release(void *state, uint32_t stream)
{
	pgo *s = state;

	pgo_db *db = pgo_db_find(s, stream);

	if (db)
		pgo_release_snapshot(db);
}
