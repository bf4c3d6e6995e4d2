/*
 * plugins/pgoutput/decode.c - pgoutput messages to events: the relation cache,
 * the checks of a relation's replica identity, and the changes and transaction
 * boundaries handed to read()'s emit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgo.h"

pgo_rel *
pgo_rel_find(pgo_db *db, uint32_t relid)
{
	if (!db->relcap)
		return NULL;
	for (size_t i = relid & (db->relcap - 1);;
	     i = (i + 1) & (db->relcap - 1)) {
		if (!db->rels[i])
			return NULL;
		if (db->rels[i]->relid == relid)
			return db->rels[i];
	}
}

void
pgo_rel_free(pgo_rel *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; i < r->rel.ncolumns; i++) {
		free((char *) r->cols[i].name);
		free((char *) r->cols[i].type_name);
		free((char *) r->cols[i].default_value);
	}
	free(r->cols);
	free((char *) r->rel.schema);
	free((char *) r->rel.table);
	free(r->oldv);
	free(r->newv);
	free(r);
}

static void
pgo_rel_put(pgo_db *db, pgo_rel *r)
{
	size_t i;
	if (db->nrels * 2 >= db->relcap) {
		size_t cap = db->relcap ? db->relcap * 2 : 64;
		pgo_rel **old = db->rels;
		size_t oldcap = db->relcap;
		db->rels = calloc(cap, sizeof *db->rels);
		db->relcap = cap;
		db->nrels = 0;
		for (size_t k = 0; k < oldcap; k++)
			if (old[k])
				pgo_rel_put(db, old[k]);
		free(old);
	}
	for (i = r->relid & (db->relcap - 1); db->rels[i];
	     i = (i + 1) & (db->relcap - 1)) {
		if (db->rels[i]->relid == r->relid) {
			pgo_rel_free(db->rels[i]);
			db->rels[i] = r;
			return;
		}
	}
	db->rels[i] = r;
	db->nrels++;
}

static const char *
pgo_type_name(pgo_db *db, uint32_t typid, int32_t typmod, const pgo_table *t,
              const char *col)
{
	static __thread char buf[64];
	for (size_t i = 0; t && i < t->ncols; i++)
		if (strcmp(t->cols[i].name, col) == 0 &&
		    t->cols[i].typid == typid && t->cols[i].typmod == typmod)
			return t->cols[i].type_name;
	for (size_t i = 0; i < db->ntypnames; i++) {
		unsigned oid = (unsigned) strtoul(db->typnames[i], NULL, 10);
		if (oid == typid)
			return strchr(db->typnames[i], '\t') + 1;
	}
	/* a column the catalog no longer has (dropped since): its type
	 * as the server names it */
	if (db->sql && PQstatus(db->sql) == CONNECTION_OK) {
		char o[16], m[16];
		const char *params[] = {o, m};
		PGresult *res;
		snprintf(o, sizeof o, "%u", typid);
		snprintf(m, sizeof m, "%d", typmod);
		res = PQexecParams(db->sql,
		                   "SELECT format_type($1::oid, $2::int)", 2,
		                   NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK &&
		    PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
			snprintf(buf, sizeof buf, "%s", PQgetvalue(res, 0, 0));
			PQclear(res);
			return buf;
		}
		PQclear(res);
	}
	snprintf(buf, sizeof buf, "oid %u", typid);
	return buf;
}

/* Hands an event to read()'s emit; the first refusal is kept for read()
 * to return. */
static syncd_status
pgo_emit(pgo_db *db, syncd_event *ev)
{
	syncd_status st;

	ev->size = sizeof *ev;
	ev->stream = db->stream;
	if (!db->emit) {
		pgo_fail(db, NULL, "database \"%s\": an event outside read()",
		         db->dbname);
		return SYNCD_FATAL;
	}
	st = db->emit(db->emit_ctx, ev);
	if (st != SYNCD_OK && db->emit_st == SYNCD_OK)
		db->emit_st = st;
	return st;
}

/* The first column of a Relation message that t's columns lack (by name,
 * type and typmod), or NULL. */
static const char *
pgo_unknown_column(const pgo_table *t, const pgo_msg *m)
{
	for (uint16_t i = 0; i < m->natts; i++) {
		bool known = false;
		for (size_t k = 0; k < t->ncols && !known; k++)
			known = strcmp(t->cols[k].name, m->atts[i].name) == 0 &&
			        t->cols[k].typid == m->atts[i].typid &&
			        t->cols[k].typmod == m->atts[i].typmod;
		if (!known)
			return m->atts[i].name;
	}
	return NULL;
}

/* How long a Relation message's columns are looked for in the catalog.
 * The walsender may send a transaction before its commit is visible to
 * other sessions (it waits for the commit's WAL flush, not for the end of
 * the transaction), so a read right away can miss an ALTER's column. */
#define PGO_REFRESH_MS 5000

/* A selected table whose columns changed (ALTER TABLE while streaming):
 * read them again, for their type names, keys and NOT NULL; again after a
 * moment while the catalog does not show the message's columns yet. */
static void
pgo_refresh_table(pgo_db *db, pgo_table *t, const pgo_msg *m)
{
	char oids[32];
	bool problems = false;
	int64_t start = pgo_now_ms();
	const char *missing;

	for (int delay = 5; (missing = pgo_unknown_column(t, m)) != NULL;
	     delay = delay < 200 ? delay * 2 : 200) {
		if (delay > 5 && pgo_now_ms() - start >= PGO_REFRESH_MS) {
			SYNCD_LOG_WARNING(
			    db->src->host,
			    "database \"%s\": column %s of %s.%s, as the "
			    "stream has it, is not in the catalog after %d s "
			    "(altered or dropped again since); its NOT NULL, "
			    "default and comment are not known",
			    db->dbname, missing, t->schema, t->name,
			    PGO_REFRESH_MS / 1000);
			return;
		}
		if (delay > 5)
			usleep((useconds_t) delay * 1000);
		pgo_free_cols(t);
		t->cols = NULL;
		t->ncols = 0;
		snprintf(oids, sizeof oids, "{%u}", t->oid);
		if (!pgo_load_columns(db, oids, &problems)) {
			SYNCD_LOG_WARNING(
			    db->src->host,
			    "database \"%s\": could not read the new "
			    "columns of %s.%s: %s",
			    db->dbname, t->schema, t->name, db->err);
			db->err[0] = '\0';
			return;
		}
	}
}

static const char *
pgo_identity_name(char replident)
{
	switch (replident) {
	case 'd': return "DEFAULT";
	case 'f': return "FULL";
	case 'i': return "USING INDEX";
	default: return "NOTHING";
	}
}

/* Waits (up to PGO_REFRESH_MS) until the transaction being received is
 * visible to the SQL session, so that the catalog read next shows what
 * its Relation message says: the walsender sends a transaction once its
 * commit is flushed, which may be a moment before other sessions see it.
 * Another transaction's ALTER is already visible (its lock kept the
 * change waiting until then); this is for an ALTER in the transaction
 * itself. PostgreSQL 13+ (pg_current_snapshot); the transaction's epoch
 * is the snapshot's. */
static void
pgo_wait_visible(pgo_db *db)
{
	char xid[16];
	const char *params[] = {xid};
	int64_t start = pgo_now_ms();

	if (db->version < 130000 || !db->txn_xid || !db->sql)
		return;
	snprintf(xid, sizeof xid, "%u", db->txn_xid);
	for (int delay = 5;; delay = delay < 200 ? delay * 2 : 200) {
		PGresult *res = PQexecParams(
		    db->sql,
		    "SELECT c < m AND pg_visible_in_snapshot(c::text::xid8, s) "
		    "FROM (SELECT s, m, (m & ~4294967295) | $1::bigint AS c "
		    "FROM (SELECT s, pg_snapshot_xmax(s)::text::bigint AS m "
		    "FROM pg_current_snapshot() s) a) b",
		    1, NULL, params, NULL, NULL, 0);
		bool seen = PQresultStatus(res) != PGRES_TUPLES_OK ||
		            PQntuples(res) != 1 ||
		            strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (seen || pgo_now_ms() - start >= PGO_REFRESH_MS)
			return;
		usleep((useconds_t) delay * 1000);
	}
}

/* Whether a selected table's replica identity, as a Relation message
 * describes it, still gives the key the job started with (its primary key
 * then): DEFAULT and USING INDEX flag exactly those columns; FULL flags
 * every column, so the primary key is read from the catalog. Else the job
 * stops here, before any change that follows is applied. A change to
 * another exact identity (DEFAULT -> FULL) is logged. */
static bool
pgo_identity_kept(pgo_db *db, pgo_table *t, const pgo_msg *m)
{
	pgo *s = db->src;
	pgo_sb now = {0};
	bool same = true;
	size_t nflagged = 0;

	if (m->replident == 'f') {
		char oid[16], sql[1024];
		const char *params[] = {oid};
		PGresult *res;
		pgo_wait_visible(db);
		snprintf(oid, sizeof oid, "%u", t->oid);
		snprintf(
		    sql, sizeof sql,
		    "SELECT a.attname FROM pg_index i CROSS JOIN LATERAL "
		    "unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, "
		    "pos) JOIN pg_attribute a ON a.attrelid = i.indrelid "
		    "AND a.attnum = k.attnum WHERE i.indrelid = $1::oid "
		    "AND i.indisprimary AND k.pos <= i.%s ORDER BY k.pos",
		    db->version >= 110000 ? "indnkeyatts" : "indnatts");
		res = pgo_query(db, db->sql, "reading a primary key", sql, 1,
		                params);
		if (!res)
			return false;
		same = (size_t) PQntuples(res) == t->nkeys;
		if (PQntuples(res) == 0) {
			/* dropped since: its changes up to the drop keep the
			 * key they were made with */
			PQclear(res);
			res = pgo_query(db, db->sql, "reading a table",
			                "SELECT 1 FROM pg_class WHERE oid = "
			                "$1::oid",
			                1, params);
			if (!res)
				return false;
			same = PQntuples(res) == 0;
			PQclear(res);
			res = NULL;
		}
		for (int i = 0; res && i < PQntuples(res); i++) {
			pgo_sb_printf(&now, "%s%s", i ? ", " : "",
			              PQgetvalue(res, i, 0));
			if (same &&
			    strcmp(PQgetvalue(res, i, 0), t->keys[i]) != 0)
				same = false;
		}
		PQclear(res);
	} else {
		for (uint16_t i = 0; i < m->natts; i++) {
			bool key = false;
			if (!(m->atts[i].flags & 1))
				continue;
			pgo_sb_printf(&now, "%s%s", nflagged ? ", " : "",
			              m->atts[i].name);
			nflagged++;
			for (size_t k = 0; k < t->nkeys && !key; k++)
				key = strcmp(t->keys[k], m->atts[i].name) == 0;
			same &= key;
		}
		same &= nflagged == t->nkeys && m->replident != 'n';
	}
	if (same) {
		if (m->replident != t->replident)
			SYNCD_LOG_INFO(
			    s->host,
			    "table %s.%s in database \"%s\": replica "
			    "identity %s became %s; the key is still "
			    "(%s)",
			    t->schema, t->name, db->dbname,
			    pgo_identity_name(t->replident),
			    pgo_identity_name(m->replident), t->pk);
		t->replident = m->replident;
		free(now.data);
		return true;
	}
	pgo_fail(
	    db, NULL,
	    "table %s.%s in database \"%s\" changed while streaming: "
	    "replica identity %s with the primary key (%s) became %s%s%s%s; "
	    "syncd keys its rows by (%s) and stops before the change "
	    "that follows (not confirmed): run ALTER TABLE %s REPLICA "
	    "IDENTITY DEFAULT%s, then re-sync the table, whose changes "
	    "since cannot be applied exactly (a new job with mode = "
	    "full+incremental, or a new slot)",
	    t->schema, t->name, db->dbname, pgo_identity_name(t->replident),
	    t->pk, pgo_identity_name(m->replident),
	    m->replident == 'n'   ? ""
	    : m->replident == 'f' ? " with the primary key ("
	    : m->replident == 'i' ? " on ("
	                          : " with the key (",
	    m->replident == 'n' ? ""
	    : now.data          ? now.data
	                        : "none",
	    m->replident == 'n' ? "" : ")", t->pk, t->qname,
	    m->replident == 'n' || m->replident == 'i'
	        ? ""
	        : " and restore the primary key");
	free(now.data);
	return false;
}

/* The flag pgoutput set on a column of the replica identity, kept while
 * the relation is built (not a flag of the ABI's). */
#define SYNCD_COL_REPLICA_KEY_ 0x80000000u

/* The key, NOT NULL and default of r's columns, from the selected table t
 * (NULL: not selected; the key is then the stream's replica identity):
 * at its Relation message, or when it is selected later (new_tables). */
void
pgo_rel_adopt(pgo_db *db, pgo_rel *r, const pgo_table *t)
{
	bool any_key = false;

	(void) db;
	r->selected = t != NULL;
	for (uint32_t i = 0; i < r->rel.ncolumns; i++) {
		syncd_column *c = &r->cols[i];
		c->flags &= SYNCD_COL_REPLICA_KEY_;
		c->key_position = 0;
		free((char *) c->default_value);
		c->default_value = NULL;
		/* the key is the primary key: under REPLICA IDENTITY FULL
		 * pgoutput flags every column */
		for (size_t k = 0; t && k < t->ncols; k++)
			if (strcmp(t->cols[k].name, c->name) == 0) {
				if (t->cols[k].notnull)
					c->flags |= SYNCD_COL_NOT_NULL;
				if (t->cols[k].def)
					c->default_value = strdup(t->cols[k].def);
			}
		for (size_t k = 0; t && k < t->nkeys; k++)
			if (strcmp(t->keys[k], c->name) == 0) {
				c->flags |= SYNCD_COL_KEY;
				c->key_position = (uint32_t) k + 1;
			}
		any_key |= (c->flags & SYNCD_COL_KEY) != 0;
	}
	for (uint32_t i = 0; i < r->rel.ncolumns; i++) {
		syncd_column *c = &r->cols[i];
		/* not in the catalog we read: trust the stream */
		if (!any_key && (c->flags & SYNCD_COL_REPLICA_KEY_))
			c->flags |= SYNCD_COL_KEY;
		c->flags &= ~SYNCD_COL_REPLICA_KEY_;
	}
}

/* A Relation message: the relation's current shape. */
static bool
pgo_on_relation(pgo_db *db, const pgo_msg *m)
{
	pgo_rel *r;
	pgo_table *t = pgo_table_by_oid(db, m->relid);
	syncd_event ev = {.type = SYNCD_EV_RELATION};

	/* renamed (or moved to another schema): the table leaves here, in
	 * the stream's order; under its new name it joins as a table of its
	 * own when tables selects it */
	if (t && (strcmp(t->schema, m->nspname) != 0 ||
	          strcmp(t->name, m->relname) != 0)) {
		pgo_table_left(db, (size_t) (t - db->tables));
		t = NULL;
	}
	if (t && !pgo_identity_kept(db, t, m))
		return false;
	if (t && t->root && !pgo_watch_partitions(db))
		return false;
	r = calloc(1, sizeof *r);
	if (t)
		pgo_refresh_table(db, t, m);
	r->relid = m->relid;
	r->rel.size = sizeof r->rel;
	r->rel.id = ((uint64_t) db->stream << 32) | m->relid;
	r->rel.database = db->dbname;
	r->rel.schema = strdup(m->nspname);
	r->rel.table = strdup(m->relname);
	r->rel.replica_identity = m->replident;
	r->rel.ncolumns = m->natts;
	r->cols = calloc((size_t) m->natts + 1, sizeof *r->cols);
	r->oldv = calloc((size_t) m->natts + 1, sizeof *r->oldv);
	r->newv = calloc((size_t) m->natts + 1, sizeof *r->newv);
	for (uint16_t i = 0; i < m->natts; i++) {
		syncd_column *c = &r->cols[i];
		c->size = sizeof *c;
		c->name = strdup(m->atts[i].name);
		c->type_oid = m->atts[i].typid;
		c->typmod = m->atts[i].typmod;
		c->type_name = strdup(
		    pgo_type_name(db, m->atts[i].typid, m->atts[i].typmod, t,
		                  m->atts[i].name));
		if (m->atts[i].flags & 1)
			c->flags |= SYNCD_COL_REPLICA_KEY_;
	}
	r->rel.columns = r->cols;
	pgo_rel_adopt(db, r, t);
	pgo_rel_put(db, r);
	if (!r->selected)
		return true;
	ev.rel = &r->rel;
	ev.lsn = db->txn_lsn;
	return pgo_emit(db, &ev) == SYNCD_OK;
}

static bool
pgo_values(pgo_db *db, const pgo_rel *r, const pgo_tuple *t, syncd_value *out)
{
	if (t->ncols != r->rel.ncolumns)
		return pgo_fail(
		    db, NULL,
		    "a change for %s.%s has %u columns but its relation "
		    "has %u; the stream is inconsistent",
		    r->rel.schema, r->rel.table, t->ncols, r->rel.ncolumns);
	for (uint16_t i = 0; i < t->ncols; i++) {
		const pgo_value *v = &t->cols[i];
		out[i].len = v->len;
		out[i].data = v->data;
		switch (v->kind) {
		case 'n': out[i].kind = SYNCD_VALUE_NULL; break;
		case 'u': out[i].kind = SYNCD_VALUE_UNCHANGED; break;
		default: out[i].kind = SYNCD_VALUE_TEXT; break;
		}
	}
	return true;
}

static bool
pgo_on_change(pgo_db *db, const pgo_msg *m)
{
	syncd_event ev = {.lsn = db->txn_lsn,
	                  .commit_time = db->txn_time,
	                  .xid = db->txn_xid};
	pgo_rel *r;

	if (m->type == 'T') {
		const syncd_relation *rels[1024];
		const syncd_relation **list =
		    m->nrels <= 1024 ? rels : malloc(m->nrels * sizeof *list);
		uint32_t n = 0;
		bool ok;
		for (uint32_t i = 0; i < m->nrels; i++) {
			r = pgo_rel_find(db, m->relids[i]);
			if (!r)
				return pgo_fail(
				    db, NULL,
				    "TRUNCATE of relation %u that the "
				    "stream never described",
				    m->relids[i]);
			if (r->selected && r->announce) {
				syncd_event rev = {.type = SYNCD_EV_RELATION,
				                   .rel = &r->rel,
				                   .lsn = db->txn_lsn};
				r->announce = false;
				if (pgo_emit(db, &rev) != SYNCD_OK) {
					if (list != rels)
						free(list);
					return false;
				}
			}
			if (r->selected)
				list[n++] = &r->rel;
			if (r->selected) {
				pgo_table *t = pgo_table_by_oid(db, r->relid);
				if (t && t->root)
					t->trunc_xid = db->txn_xid;
			}
		}
		ev.type = SYNCD_EV_TRUNCATE;
		ev.rels = list;
		ev.nrels = n;
		ev.rel = n ? list[0] : NULL;
		ev.truncate_flags =
		    ((m->flags & 1) ? SYNCD_TRUNCATE_CASCADE : 0) |
		    ((m->flags & 2) ? SYNCD_TRUNCATE_RESTART_IDENTITY : 0);
		ok = n == 0 || pgo_emit(db, &ev) == SYNCD_OK;
		if (list != rels)
			free(list);
		return ok;
	}
	r = pgo_rel_find(db, m->relid);
	if (!r)
		return pgo_fail(db, NULL,
		                "a change for relation %u that the stream "
		                "never described",
		                m->relid);
	if (!r->selected)
		return true;
	if (r->announce) {
		/* selected while streaming, after its Relation message */
		syncd_event rev = {.type = SYNCD_EV_RELATION,
		                   .rel = &r->rel,
		                   .lsn = db->txn_lsn};
		r->announce = false;
		if (pgo_emit(db, &rev) != SYNCD_OK)
			return false;
	}
	ev.rel = &r->rel;
	switch (m->type) {
	case 'I':
		ev.type = SYNCD_EV_INSERT;
		if (!pgo_values(db, r, &m->new_tuple, r->newv))
			return false;
		ev.new_values = r->newv;
		break;
	case 'U':
		ev.type = SYNCD_EV_UPDATE;
		if (!pgo_values(db, r, &m->new_tuple, r->newv))
			return false;
		ev.new_values = r->newv;
		if (m->old_kind) {
			if (!pgo_values(db, r, &m->old_tuple, r->oldv))
				return false;
			ev.old_values = r->oldv;
			ev.old_is_key = m->old_kind == 'K';
		}
		break;
	default:
		ev.type = SYNCD_EV_DELETE;
		if (!pgo_values(db, r, &m->old_tuple, r->oldv))
			return false;
		ev.old_values = r->oldv;
		ev.old_is_key = m->old_kind == 'K';
		break;
	}
	return pgo_emit(db, &ev) == SYNCD_OK;
}

static bool
pgo_replay_one(void *ctx, const char *msg, size_t len)
{
	return pgo_handle(ctx, msg, len, true);
}

static bool
pgo_commit(pgo_db *db, uint64_t lsn, int64_t time)
{
	syncd_event ev = {.type = SYNCD_EV_COMMIT,
	                  .lsn = lsn,
	                  .commit_time = time,
	                  .xid = db->txn_xid};
	db->in_txn = false;
	pgo_remember_commit(db, lsn);
	return pgo_emit(db, &ev) == SYNCD_OK;
}

static bool
pgo_begin(pgo_db *db, uint64_t lsn, int64_t pg_time, uint32_t xid)
{
	syncd_event ev = {.type = SYNCD_EV_BEGIN};
	db->in_txn = true;
	db->txn_lsn = lsn;
	db->txn_time = pg_time + PGO_EPOCH_OFFSET_US;
	db->txn_xid = xid;
	ev.lsn = lsn;
	ev.commit_time = db->txn_time;
	ev.xid = xid;
	return pgo_emit(db, &ev) == SYNCD_OK;
}

/* One pgoutput message. replay: a message of a streamed transaction,
 * buffered until its commit. */
bool
pgo_handle(pgo_db *db, const char *data, size_t len, bool replay)
{
	pgo_decoder *d = replay ? &db->replay : &db->dec;
	char err[512];
	pgo_msg m;

	if (!pgo_decode(d, data, len, &m, err, sizeof err))
		return pgo_fail(db, NULL,
		                "malformed message from database \"%s\" "
		                "after " SYNCD_LSN_FMT
		                ": %s; nothing after it is "
		                "confirmed",
		                db->dbname, SYNCD_LSN_ARGS(db->received), err);
	/* inside a stream block, changes wait for their transaction's end */
	if (!replay && m.has_xid) {
		if (m.type == 'M' && !(m.flags & 1))
			return true; /* a non-transactional message: nothing to
			                keep */
		if (!txbuf_add(db->tx, db->stream_xid, m.xid, data, len, err,
		               sizeof err))
			return pgo_fail(db, NULL, "database \"%s\": %s",
			                db->dbname, err);
		if (!db->spilling && txbuf_spilled_bytes(db->tx) > 0) {
			db->spilling = true;
			SYNCD_LOG_INFO(
			    db->src->host,
			    "database \"%s\": in-progress transactions "
			    "passed spill.threshold; spilling them to %s",
			    db->dbname, db->src->host->job->state_dir);
		}
		return true;
	}
	switch (m.type) {
	case 'B':
		if (db->in_txn)
			return pgo_fail(db, NULL,
			                "database \"%s\": Begin inside a "
			                "transaction",
			                db->dbname);
		return pgo_begin(db, m.lsn, m.time, m.xid);
	case 'C':
		if (!db->in_txn)
			return pgo_fail(db, NULL,
			                "database \"%s\": Commit outside a "
			                "transaction",
			                db->dbname);
		if (m.lsn != db->txn_lsn)
			return pgo_fail(
			    db, NULL,
			    "database \"%s\": commit LSN " SYNCD_LSN_FMT
			    " differs from the Begin's " SYNCD_LSN_FMT,
			    db->dbname, SYNCD_LSN_ARGS(m.lsn),
			    SYNCD_LSN_ARGS(db->txn_lsn));
		return pgo_commit(db, m.lsn, db->txn_time);
	case 'O': return true;
	case 'R': return pgo_on_relation(db, &m);
	case 'Y': {
		char *entry =
		    malloc(strlen(m.nspname) + strlen(m.typname) + 16);
		sprintf(entry, "%u\t%s.%s", m.typid, m.nspname, m.typname);
		db->typnames = realloc(db->typnames, (db->ntypnames + 1) *
		                                         sizeof *db->typnames);
		db->typnames[db->ntypnames++] = entry;
		return true;
	}
	case 'I':
	case 'U':
	case 'D':
	case 'T':
		if (!db->in_txn)
			return pgo_fail(db, NULL,
			                "database \"%s\": a change outside a "
			                "transaction",
			                db->dbname);
		return pgo_on_change(db, &m);
	case 'M':
		/* our heartbeat, between transactions: a position the slot may
		 * advance to once it is recorded like a commit */
		if (!db->in_txn && !(m.flags & 1) &&
		    strcmp(m.prefix, PGO_HEARTBEAT_PREFIX) == 0) {
			pgo_leave_passed(db, m.lsn);
			db->txn_xid = 0;
			return pgo_begin(db, m.lsn, pgo_now_pg(), 0) &&
			       pgo_commit(db, m.lsn, db->txn_time);
		}
		return true;
	case 'S': db->stream_xid = m.xid; return true;
	case 'E': db->stream_xid = 0; return true;
	case 'c':
		if (db->in_txn)
			return pgo_fail(db, NULL,
			                "database \"%s\": Stream Commit inside "
			                "a transaction",
			                db->dbname);
		if (!pgo_begin(db, m.lsn, m.time, m.xid))
			return false;
		if (!txbuf_replay(db->tx, m.xid, pgo_replay_one, db, err,
		                  sizeof err))
			return db->err[0] || db->emit_st != SYNCD_OK
			           ? false
			           : pgo_fail(db, NULL, "database \"%s\": %s",
			                      db->dbname, err);
		return pgo_commit(db, m.lsn, db->txn_time);
	case 'A': txbuf_abort(db->tx, m.xid, m.subxid); return true;
	}
	return pgo_fail(db, NULL, "database \"%s\": unexpected message '%c'",
	                db->dbname, m.type);
}
