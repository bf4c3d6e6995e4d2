/*
 * full.c - the full phase of both DWS sinks (copy_open .. copy_end): one
 * copy session per core copy thread, on its own connection.
 *
 * copy_table records in STATE.syncd_copy, per source table, how the job
 * copies it and in how many chunks (the table row, chunk -1), and empties a
 * target the job itself filled before. Each chunk then goes in one
 * destination transaction: COPY straight into the target (DIRECT), or into
 * a temporary staging table and from there into the target by key (MERGE:
 * the target held rows the job did not write, which are kept), together
 * with the chunk's row in syncd_copy, so that a restart knows exactly which
 * chunks are in. Rows are keyed by the source table, because several
 * source tables (the shards of a logical table) may go into one target,
 * which is then never emptied.
 *
 * A DIRECT chunk also goes through the staging table when a zone-aware
 * source value goes into a zone-less column: the staged value is converted
 * to the session's time zone on the way, as the incremental path does
 * (COPY into the target would drop the offset).
 *
 * Dirty data: a chunk whose rows the destination refuses (SQLSTATE class
 * 22 or 23, or 42804) is rolled back and copy_end asks the core for it
 * again (SYNCD_REJECT). That second time its rows are held in memory (one
 * chunk at most) and written range by range under savepoints: a range the
 * destination refuses is rolled back and its halves are tried, down to
 * single rows (COPY text has one row per line), which go to the dirty-data
 * path (host->sink->reject) as INSERTs at the position of the copy's snapshot
 * (0/0 when the source does not say); the rest commits with the chunk's
 * row in syncd_copy as usual. Without a refused row the fast path holds
 * nothing.
 */
#define _GNU_SOURCE /* asprintf */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dws.h"

/* The rows of one source table of the job in syncd_copy ($1..$4). */
#define FULL_KEY                                                               \
	"job = $1 AND stream = $2::integer AND source_schema = $3 AND "        \
	"source_table = $4"

typedef struct dws_full {
	dws_worker *w;
	char *table; /* "STATE"."syncd_copy" */
	/* the chunk in progress, from copy_begin to copy_end */
	bool in_tx;   /* its transaction is open */
	bool in_copy; /* COPY ... FROM STDIN runs */
	dws_target *t;
	char *src_schema, *src_table;
	char *src; /* schema.table, for messages */
	uint32_t stream, chunk;
	char *chunk_name;         /* the source's name of the chunk */
	char *t_schema, *t_table; /* the target's names */
	bool record;              /* its completion is recorded at commit */
	syncd_copy_how how;
	bool staged;               /* rows go through t->stage */
	const syncd_relation *rel; /* the core's, for the chunk */
	syncd_lsn snapshot_lsn;    /* its snapshot's position, or 0 */
	char *copy_sql;            /* COPY ... FROM STDIN of the chunk */
	bool holding;              /* its rows go to held, not to COPY */
	dws_buf held;
	/* the last row error of the chunk (dirty data) */
	char err_state[6];
	char *err_msg;
	/* the chunk whose next copy is held: its rows were refused */
	bool careful;
	uint64_t careful_rel;
	uint32_t careful_stream, careful_chunk;
	/* plan->earlier of the last copy_table, valid until the next call */
	char *earlier;
} dws_full;

static syncd_status
dws_full_status(dws_rc rc)
{
	switch (rc) {
	case DWS_OK: return SYNCD_OK;
	case DWS_RETRY: return SYNCD_RETRY;
	default: return SYNCD_FATAL;
	}
}

static void
dws_full_reset(dws_full *c)
{
	free(c->src_schema);
	free(c->src_table);
	free(c->src);
	free(c->chunk_name);
	free(c->t_schema);
	free(c->t_table);
	free(c->copy_sql);
	free(c->err_msg);
	dws_buf_free(&c->held);
	c->src_schema = c->src_table = c->src = c->chunk_name = NULL;
	c->t_schema = c->t_table = c->copy_sql = c->err_msg = NULL;
	c->err_state[0] = '\0';
	c->t = NULL;
	c->rel = NULL;
	c->in_tx = c->in_copy = c->staged = c->holding = false;
}

static bool
dws_full_data_error(const char *st)
{
	return st && (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0 ||
	              strcmp(st, "42804") == 0);
}

/* A failed step of the chunk in progress (r may be NULL, and is cleared):
 * a row the target refuses is named with the chunk and the server's
 * context (line and column of the COPY data), and kept for the dirty-data
 * path (DWS_DATA); the rest is classified as for any statement. */
static dws_rc
dws_full_error(dws_full *c, const char *what, PGresult *r)
{
	dws_worker *w = c->w;
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg, *detail, *context;
	dws_buf text = {0};

	if (PQstatus(w->conn) != CONNECTION_OK || !dws_full_data_error(st))
		return dws_result_error(w, what, r);
	msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
	context = PQresultErrorField(r, PG_DIAG_CONTEXT);
	dws_buf_printf(&text, "%s", msg ? msg : "(no message)");
	if (detail)
		dws_buf_printf(&text, " (%s)", detail);
	snprintf(c->err_state, sizeof c->err_state, "%s", st);
	free(c->err_msg);
	c->err_msg = strndup(text.data, text.len);
	if (context)
		dws_buf_printf(&text, "; %s", context);
	for (size_t i = 0; i < text.len; i++)
		if (text.data[i] == '\n')
			text.data[i] = ' ';
	ERR(w->s, st,
	    "target table %s refused a row of chunk %u of source table %s "
	    "with SQLSTATE %s: %s; %s, then restart: the copy resumes",
	    c->t->label, c->chunk, c->src, st, text.data,
	    strncmp(st, "23", 2) == 0
	        ? "make the target table accept the row (e.g. drop the "
	          "constraint it breaks)"
	        : "make the target column accept the value, e.g. widen it");
	dws_buf_free(&text);
	PQclear(r);
	return DWS_DATA;
}

/* A statement of the chunk in progress. */
static dws_rc
dws_full_exec(dws_full *c, const char *what, const char *sql)
{
	dws_state *s = c->w->s;
	PGresult *r;

	SYNCD_LOG_DEBUG(s->host, "worker %d: %.300s", c->w->id, sql);
	r = PQexec(c->w->conn, sql);
	if (PQresultStatus(r) == PGRES_COMMAND_OK) {
		PQclear(r);
		return DWS_OK;
	}
	return dws_full_error(c, what, r);
}

/* Ends COPY ... FROM STDIN (errmsg: abandon it) and reads its results;
 * *copied: the rows the server took, or NULL. */
static dws_rc
dws_full_copy_end(dws_full *c, const char *what, const char *errmsg,
                  uint64_t *copied)
{
	PGconn *conn = c->w->conn;
	PGresult *r;
	dws_rc rc = DWS_OK;

	c->in_copy = false;
	if (PQputCopyEnd(conn, errmsg) != 1 && !errmsg)
		rc = dws_full_error(c, what, NULL);
	while ((r = PQgetResult(conn)) != NULL) {
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT ||
		    st == PGRES_COPY_BOTH) {
			/* still copying: the connection is not usable */
			PQclear(r);
			if (rc == DWS_OK && !errmsg)
				rc = dws_full_error(c, what, NULL);
			break;
		}
		if (st == PGRES_COMMAND_OK && copied)
			*copied = strtoull(PQcmdTuples(r), NULL, 10);
		if (st != PGRES_COMMAND_OK && rc == DWS_OK && !errmsg) {
			rc = dws_full_error(c, what, r);
			continue;
		}
		PQclear(r);
	}
	if (rc == DWS_OK && !errmsg && PQstatus(conn) != CONNECTION_OK)
		rc = dws_full_error(c, what, NULL);
	return rc;
}

/* Abandons the chunk in progress: its rows and its completion. */
static void
dws_full_abandon(dws_full *c)
{
	if (PQstatus(c->w->conn) == CONNECTION_OK) {
		if (c->in_copy)
			dws_full_copy_end(c, NULL, "the chunk is abandoned",
			                  NULL);
		if (c->in_tx)
			PQclear(PQexec(c->w->conn, "ROLLBACK"));
	}
	dws_full_reset(c);
}

/* ---- the session --------------------------------------------------------- */

syncd_status
dws_full_open(void *state, void **cstate)
{
	dws_state *s = state;
	dws_full *c;
	dws_worker *w = NULL;
	syncd_status st;
	dws_rc rc = DWS_OK;
	int id;

	*cstate = NULL;
	pthread_mutex_lock(&s->lock);
	id = DWS_FULL_WORKER + s->copy_sessions++;
	pthread_mutex_unlock(&s->lock);
	st = dws_session_open(s, id, &w);
	if (st != SYNCD_OK)
		return st;
	rc = dws_state_ensure(w);
	if (rc != DWS_OK) {
		dws_session_close(w);
		return dws_full_status(rc);
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		dws_session_close(w);
		return SYNCD_FATAL;
	}
	c->w = w;
	c->table = dws_qualified(c->w, s->state_schema, "syncd_copy");
	pthread_mutex_lock(&s->lock);
	if (!s->copy_ready) {
		rc = dws_copy_state_prepare(c->w, c->table);
		s->copy_ready = rc == DWS_OK;
	}
	pthread_mutex_unlock(&s->lock);
	if (rc != DWS_OK) {
		dws_full_close(c);
		return dws_full_status(rc);
	}
	*cstate = c;
	return SYNCD_OK;
}

void
dws_full_close(void *cstate)
{
	dws_full *c = cstate;

	if (!c)
		return;
	dws_full_reset(c);
	/* an open transaction ends with the connection */
	dws_targets_free(c->w);
	dws_session_close(c->w);
	free(c->table);
	free(c->earlier);
	free(c);
}

/* ---- one table ------------------------------------------------------------
 */

/* An unfinished copy with finished chunks is resumed: the chunks of the
 * current plan that an earlier run finished (matched by name) are marked,
 * rows of chunks the plan no longer has are dropped, and the state the
 * source noted when that copy started is handed back. */
static dws_rc
dws_full_resume(dws_full *c, const char *what, const char *const *params,
                const syncd_copy_table *t, bool *finished)
{
	dws_worker *w = c->w;
	dws_buf sql = {0};
	PGresult *r = NULL;
	dws_rc rc;
	char snchunks[16];
	const char *p5[5] = {params[0], params[1], params[2], params[3],
	                     snchunks};

	dws_buf_printf(
	    &sql,
	    "SELECT chunk, chunk_name, source_state FROM %s WHERE " FULL_KEY
	    " ORDER BY chunk",
	    c->table);
	rc = dws_exec(w, what, sql.data, 4, params, &r);
	for (int i = 0; rc == DWS_OK && i < PQntuples(r); i++) {
		const char *name = PQgetvalue(r, i, 1);
		bool found = false;
		if (atoi(PQgetvalue(r, i, 0)) < 0) { /* the table row */
			free(c->earlier);
			c->earlier = strdup(PQgetvalue(r, i, 2));
			continue;
		}
		for (uint32_t k = 0; k < t->nchunks && !found; k++)
			if (!PQgetisnull(r, i, 1) &&
			    strcmp(t->chunks[k], name) == 0)
				finished[k] = found = true;
		if (found)
			continue;
		snprintf(snchunks, sizeof snchunks, "%s", PQgetvalue(r, i, 0));
		dws_buf_reset(&sql);
		dws_buf_printf(&sql,
		               "DELETE FROM %s WHERE " FULL_KEY
		               " AND chunk = $5::integer",
		               c->table);
		rc = dws_exec(w, what, sql.data, 5, p5, NULL);
	}
	if (r)
		PQclear(r);
	if (rc == DWS_OK) {
		snprintf(snchunks, sizeof snchunks, "%u", t->nchunks);
		dws_buf_reset(&sql);
		dws_buf_printf(&sql,
		               "UPDATE %s SET nchunks = $5::integer, "
		               "updated_at = now() WHERE " FULL_KEY,
		               c->table);
		rc = dws_exec(w, what, sql.data, 5, p5, NULL);
	}
	dws_buf_free(&sql);
	return rc;
}

syncd_status
dws_full_table(void *cstate, const syncd_copy_request *req,
               syncd_copy_plan *plan)
{
	const syncd_relation *rel = req->rel;
	const syncd_copy_table *ct = req->table;
	uint32_t stream = req->stream, nchunks = ct->nchunks;
	bool again = req->again;
	syncd_copy_how *how = &plan->how;
	dws_full *c = cstate;
	dws_worker *w = c->w;
	dws_state *s = w->s;
	char sstream[16], snchunks[16], h[2] = {0, 0}, snap[24];
	const char *params[10] = {
	    s->job,           sstream, rel->schema,        rel->table,
	    snchunks,         h,       rel->target_schema, rel->target_table,
	    ct->source_state, snap};
	dws_buf sql = {0};
	PGresult *r = NULL;
	dws_target *t;
	char *what = NULL;
	char was = 0; /* how of the table row, 0 when there is none */
	long done = 0, had = 0;
	dws_rc rc;

	free(c->earlier);
	c->earlier = NULL;
	plan->earlier = NULL;
	snprintf(sstream, sizeof sstream, "%u", stream);
	snprintf(snchunks, sizeof snchunks, "%u", nchunks);
	snprintf(snap, sizeof snap, "%" PRIu64, (uint64_t) ct->snapshot_lsn);
	t = dws_target_get(w, rel, &rc);
	if (!t)
		return dws_full_status(rc);
	if (asprintf(&what, "recording the copy of source table %s.%s",
	             rel->schema, rel->table) < 0)
		abort();
	rc = dws_exec(w, what, "BEGIN", 0, NULL, NULL);
	if (rc != DWS_OK)
		goto done;

	/* what an earlier run did */
	dws_buf_printf(&sql,
	               "SELECT how, nchunks, target_schema, target_table FROM "
	               "%s WHERE " FULL_KEY " AND chunk = -1",
	               c->table);
	rc = dws_exec(w, what, sql.data, 4, params, &r);
	if (rc != DWS_OK)
		goto done;
	if (PQntuples(r) == 1) {
		was = PQgetvalue(r, 0, 0)[0];
		had = atol(PQgetvalue(r, 0, 1));
		if (strcmp(PQgetvalue(r, 0, 2), rel->target_schema) != 0 ||
		    strcmp(PQgetvalue(r, 0, 3), rel->target_table) != 0) {
			SYNCD_LOG_INFO(
			    s->host,
			    "source table %s.%s was copied into %s.%s before, "
			    "now into %s: the earlier copy does not count",
			    rel->schema, rel->table, PQgetvalue(r, 0, 2),
			    PQgetvalue(r, 0, 3), t->label);
			was = 0;
		}
	}
	PQclear(r);
	r = NULL;
	if (was) {
		dws_buf_reset(&sql);
		dws_buf_printf(&sql,
		               "SELECT count(*) FROM %s WHERE " FULL_KEY
		               " AND chunk >= 0",
		               c->table);
		rc = dws_exec(w, what, sql.data, 4, params, &r);
		if (rc != DWS_OK)
			goto done;
		done = atol(PQgetvalue(r, 0, 0));
		PQclear(r);
		r = NULL;
	}
	if (was && !again && had > 0 && done == had) {
		*how = SYNCD_COPY_SKIP;
		rc = dws_ddl_apply(w, rel->target_schema, rel->target_table);
		if (rc == DWS_OK)
			rc = dws_exec(w, what, "COMMIT", 0, NULL, NULL);
		goto done;
	}
	if (was && !again && done > 0) {
		/* merging needs the key: a deferred one is built first */
		rc = dws_ddl_apply(w, rel->target_schema, rel->target_table);
		if (rc == DWS_OK)
			rc = dws_full_resume(c, what, params, ct,
			                     plan->finished);
		/* what is copied now comes from this snapshot: older
		 * changes of the table are replays over it */
		if (rc == DWS_OK) {
			const char *p5[5] = {params[0], params[1], params[2],
			                     params[3], snap};
			dws_buf_reset(&sql);
			dws_buf_printf(
			    &sql,
			    "UPDATE %s SET snapshot_lsn = $5::bigint "
			    "WHERE " FULL_KEY " AND chunk = -1",
			    c->table);
			rc = dws_exec(w, what, sql.data, 5, p5, NULL);
		}
		if (rc == DWS_OK)
			rc = dws_exec(w, what, "COMMIT", 0, NULL, NULL);
		if (rc == DWS_OK) {
			*how = SYNCD_COPY_MERGE;
			plan->earlier = c->earlier;
		}
		goto done;
	}

	if (was == 'd') {
		const char *shared[6] = {s->job,
		                         sstream,
		                         rel->schema,
		                         rel->table,
		                         rel->target_schema,
		                         rel->target_table};
		/* A target shared with other source tables of the job
		 * (shards of a logical table) is never emptied: their rows
		 * are there too. A chunk's rows commit with its row in
		 * syncd_copy, so with no chunk done there is nothing of this
		 * table's in it; otherwise its rows are merged by key. */
		dws_buf_reset(&sql);
		dws_buf_printf(
		    &sql,
		    "SELECT count(*) FROM %s WHERE job = $1 AND "
		    "chunk = -1 AND target_schema = $5 AND "
		    "target_table = $6 AND NOT (stream = $2::integer "
		    "AND source_schema = $3 AND source_table = $4)",
		    c->table);
		rc = dws_exec(w, what, sql.data, 6, shared, &r);
		if (rc != DWS_OK)
			goto done;
		if (atol(PQgetvalue(r, 0, 0)) > 0) {
			was = done > 0 ? 'm' : 0;
			if (was)
				SYNCD_LOG_INFO(
				    s->host,
				    "target table %s holds rows of other "
				    "source tables of this job besides %s.%s: "
				    "not emptied, the copy merges by key",
				    t->label, rel->schema, rel->table);
		}
		PQclear(r);
		r = NULL;
	}
	if (!was) {
		/* never truncate a table the job did not fill */
		dws_buf_reset(&sql);
		dws_buf_printf(&sql, "SELECT 1 FROM %s LIMIT 1", t->qtable);
		rc = dws_exec(w, "looking for rows in a target table", sql.data,
		              0, NULL, &r);
		if (rc != DWS_OK)
			goto done;
		h[0] = PQntuples(r) == 0 ? 'd' : 'm';
		PQclear(r);
		r = NULL;
	} else if (was == 'd') {
		/* a table another one's foreign key references cannot be
		 * truncated: its rows are deleted (the key's triggers do not
		 * fire under session_replication_role = replica) */
		const char *q[1] = {t->qtable};
		h[0] = 'd';
		rc = dws_exec(w, "looking for foreign keys to a target table",
		              "SELECT EXISTS (SELECT 1 FROM "
		              "pg_catalog.pg_constraint WHERE confrelid = "
		              "$1::regclass AND contype = 'f')",
		              1, q, &r);
		if (rc != DWS_OK)
			goto done;
		dws_buf_reset(&sql);
		dws_buf_printf(&sql, "%s %s",
		               PQgetvalue(r, 0, 0)[0] == 't' ? "DELETE FROM"
		                                             : "TRUNCATE",
		               t->qtable);
		PQclear(r);
		r = NULL;
		rc = dws_exec(w, "emptying a target table", sql.data, 0, NULL,
		              NULL);
		if (rc != DWS_OK)
			goto done;
		if (had == 0) /* forgotten (see dws_progress_forget) */
			SYNCD_LOG_INFO(
			    s->host,
			    "target table %s was filled by this job before a "
			    "re-sync: emptied it, the copy starts again",
			    t->label);
		else if (had > 0 && done == had)
			SYNCD_LOG_INFO(
			    s->host,
			    "target table %s was filled by an earlier copy of "
			    "this job from an older snapshot: emptied it, the "
			    "copy starts again",
			    t->label);
		else
			SYNCD_LOG_INFO(
			    s->host,
			    "target table %s holds part of an earlier, "
			    "unfinished copy of this job: emptied it, the copy "
			    "starts again",
			    t->label);
	} else
		h[0] = 'm';
	if (h[0] == 'm')
		SYNCD_LOG_INFO(
		    s->host,
		    "target table %s already holds rows: the copy merges by "
		    "key, rows the source does not have are kept",
		    t->label);

	if (h[0] == 'm')
		rc = dws_ddl_apply(w, rel->target_schema, rel->target_table);
	if (rc != DWS_OK)
		goto done;
	dws_buf_reset(&sql);
	dws_buf_printf(&sql, "DELETE FROM %s WHERE " FULL_KEY, c->table);
	rc = dws_exec(w, what, sql.data, 4, params, NULL);
	if (rc != DWS_OK)
		goto done;
	dws_buf_reset(&sql);
	dws_buf_printf(&sql,
	               "INSERT INTO %s (job, stream, source_schema, "
	               "source_table, chunk, nchunks, how, target_schema, "
	               "target_table, rows, updated_at, source_state, "
	               "snapshot_lsn) VALUES ($1, $2::integer, $3, $4, -1, "
	               "$5::integer, $6, $7, $8, 0, now(), $9, $10::bigint)",
	               c->table);
	rc = dws_exec(w, what, sql.data, 10, params, NULL);
	if (rc == DWS_OK)
		rc = dws_exec(w, what, "COMMIT", 0, NULL, NULL);
	if (rc == DWS_OK) {
		*how = h[0] == 'd' ? SYNCD_COPY_DIRECT : SYNCD_COPY_MERGE;
		/* workers read the table's new snapshot position */
		__atomic_add_fetch(&s->snap_epoch, 1, __ATOMIC_SEQ_CST);
	}
done:
	if (r)
		PQclear(r);
	if (rc != DWS_OK && PQstatus(w->conn) == CONNECTION_OK)
		PQclear(PQexec(w->conn, "ROLLBACK"));
	dws_buf_free(&sql);
	free(what);
	return dws_full_status(rc);
}

/* ---- one chunk ------------------------------------------------------------
 */

/* The session's staging table for t: the target's columns (zone-aware
 * where the source is), emptied at every commit. Created outside the
 * chunk's transaction, so that a rollback keeps it. */
static dws_rc
dws_full_stage(dws_full *c, dws_target *t)
{
	dws_worker *w = c->w;
	dws_buf sql = {0};
	char *what = NULL;
	dws_rc rc;

	if (t->stage_ready)
		return DWS_OK;
	free(t->stage);
	if (asprintf(&t->stage, "syncd_full_%d", ++w->stage_seq) < 0 ||
	    asprintf(&what, "creating a staging table for target table %s",
	             t->label) < 0)
		abort();
	dws_buf_printf(&sql, "CREATE TEMPORARY TABLE %s (", t->stage);
	for (int i = 0; i < t->ncols; i++)
		dws_buf_printf(&sql, "%s%s %s", i ? ", " : "", t->cols[i].qname,
		               t->cols[i].stage);
	dws_buf_puts(&sql, ") ON COMMIT DELETE ROWS");
	rc = dws_exec(w, what, sql.data, 0, NULL, NULL);
	t->stage_ready = rc == DWS_OK;
	dws_buf_free(&sql);
	free(what);
	return rc;
}

syncd_status
dws_full_begin(void *cstate, const syncd_copy_request *req, uint32_t chunk,
               syncd_copy_how how, bool record)
{
	const syncd_relation *rel = req->rel;
	const syncd_copy_table *ct = req->table;
	uint32_t stream = req->stream;
	dws_full *c = cstate;
	dws_worker *w = c->w;
	dws_buf sql = {0};
	PGresult *r;
	dws_target *t;
	char *what = NULL;
	dws_rc rc;

	if (c->in_tx)
		dws_full_abandon(c);
	if (how != SYNCD_COPY_DIRECT && how != SYNCD_COPY_MERGE) {
		ERR(w->s, NULL,
		    "copy_begin for source table %s.%s: no way to copy it "
		    "(how = %d)",
		    rel->schema, rel->table, (int) how);
		return SYNCD_FATAL;
	}
	t = dws_target_get(w, rel, &rc);
	if (!t)
		return dws_full_status(rc);
	c->t = t;
	c->stream = stream;
	c->chunk = chunk;
	c->chunk_name = strdup(chunk < ct->nchunks ? ct->chunks[chunk] : "");
	c->t_schema = strdup(rel->target_schema);
	c->t_table = strdup(rel->target_table);
	c->record = record;
	c->how = how;
	c->src_schema = strdup(rel->schema);
	c->src_table = strdup(rel->table);
	c->rel = rel;
	c->snapshot_lsn = ct->snapshot_lsn;
	c->holding = c->careful && c->careful_rel == rel->id &&
	             c->careful_stream == stream && c->careful_chunk == chunk;
	c->careful = false;
	if (asprintf(&c->src, "%s.%s", rel->schema, rel->table) < 0 ||
	    asprintf(&what,
	             "copying chunk %u of source table %s into target "
	             "table %s",
	             chunk, c->src, t->label) < 0 ||
	    !c->src_schema || !c->src_table)
		abort();
	c->staged = how == SYNCD_COPY_MERGE;
	for (int i = 0; i < t->ncols; i++)
		if (t->cols[i].param)
			c->staged = true;
	rc = c->staged ? dws_full_stage(c, t) : DWS_OK;
	if (rc == DWS_OK)
		rc = dws_exec(w, what, "BEGIN", 0, NULL, NULL);
	if (rc != DWS_OK)
		goto done;
	c->in_tx = true;
	dws_buf_printf(&sql, "COPY %s (", c->staged ? t->stage : t->qtable);
	for (int i = 0; i < t->ncols; i++)
		dws_buf_printf(&sql, "%s%s", i ? ", " : "", t->cols[i].qname);
	dws_buf_puts(&sql, ") FROM STDIN");
	c->copy_sql = strdup(sql.data);
	if (!c->copy_sql)
		abort();
	if (c->holding) /* the rows wait for copy_end */
		goto done;
	SYNCD_LOG_DEBUG(w->s->host, "worker %d: %.300s", w->id, sql.data);
	r = PQexec(w->conn, sql.data);
	if (PQresultStatus(r) == PGRES_COPY_IN) {
		PQclear(r);
		c->in_copy = true;
	} else {
		rc = dws_full_error(c, what, r);
		if (rc == DWS_OK)
			rc = DWS_FATAL;
	}
done:
	if (rc != DWS_OK)
		dws_full_abandon(c);
	dws_buf_free(&sql);
	free(what);
	return dws_full_status(rc);
}

syncd_status
dws_full_data(void *cstate, const char *data, size_t len)
{
	dws_full *c = cstate;
	char *what = NULL;
	dws_rc rc = DWS_OK;

	if (c->holding && c->in_tx) {
		dws_buf_add(&c->held, data, len);
		return SYNCD_OK;
	}
	if (!c->in_copy) {
		ERR(c->w->s, NULL, "copy_data without a chunk being copied");
		return SYNCD_FATAL;
	}
	while (len > 0) {
		int n = len > (1 << 30) ? 1 << 30 : (int) len;
		if (PQputCopyData(c->w->conn, data, n) != 1) {
			if (asprintf(&what,
			             "copying chunk %u of source table %s into "
			             "target table %s",
			             c->chunk, c->src, c->t->label) < 0)
				abort();
			rc = dws_full_error(c, what, NULL);
			break;
		}
		data += n;
		len -= (size_t) n;
	}
	free(what);
	return dws_full_status(rc);
}

/* The chunk's row in syncd_copy, and its rows added to the table row's. */
static dws_rc
dws_full_record(dws_full *c, uint64_t rows)
{
	dws_worker *w = c->w;
	char sstream[16], schunk[16], srows[24];
	const char *params[7] = {w->s->job,    sstream, c->src_schema,
	                         c->src_table, schunk,  srows,
	                         c->chunk_name};
	dws_buf sql = {0};
	PGresult *r = NULL;
	char *what = NULL;
	dws_rc rc;

	snprintf(sstream, sizeof sstream, "%u", c->stream);
	snprintf(schunk, sizeof schunk, "%u", c->chunk);
	snprintf(srows, sizeof srows, "%" PRIu64, rows);
	if (asprintf(&what, "recording chunk %u of source table %s as copied",
	             c->chunk, c->src) < 0)
		abort();
	dws_buf_printf(
	    &sql, "DELETE FROM %s WHERE " FULL_KEY " AND chunk = $5::integer",
	    c->table);
	rc = dws_exec(w, what, sql.data, 5, params, NULL);
	if (rc != DWS_OK)
		goto done;
	dws_buf_reset(&sql);
	dws_buf_printf(
	    &sql,
	    "INSERT INTO %s (job, stream, source_schema, source_table, chunk, "
	    "nchunks, how, target_schema, target_table, rows, updated_at, "
	    "chunk_name) SELECT job, stream, source_schema, source_table, "
	    "$5::integer, nchunks, how, target_schema, target_table, "
	    "$6::bigint, now(), $7 FROM %s WHERE " FULL_KEY " AND chunk = -1",
	    c->table, c->table);
	rc = dws_exec(w, what, sql.data, 7, params, &r);
	if (rc != DWS_OK)
		goto done;
	if (strcmp(PQcmdTuples(r), "1") != 0) {
		ERR(w->s, NULL,
		    "the copy of source table %s has no row in %s.syncd_copy "
		    "any more: another run of job %s may be copying it; run "
		    "the job once",
		    c->src, w->s->state_schema, w->s->job);
		rc = DWS_FATAL;
		goto done;
	}
	/* last: the table row is shared by the table's chunks */
	dws_buf_reset(&sql);
	dws_buf_printf(&sql,
	               "UPDATE %s SET rows = rows + $5::bigint, updated_at = "
	               "now() WHERE " FULL_KEY " AND chunk = -1",
	               c->table);
	params[4] = srows;
	rc = dws_exec(w, what, sql.data, 5, params, NULL);
	if (rc != DWS_OK)
		goto done;
	/* the UPDATE waited for the table's other chunks that commit now:
	 * the last one builds the keys and indexes a new table waits for */
	dws_buf_reset(&sql);
	dws_buf_printf(&sql,
	               "SELECT sum(CASE WHEN chunk >= 0 THEN 1 ELSE 0 END) = "
	               "max(nchunks) FROM %s WHERE " FULL_KEY,
	               c->table);
	if (r)
		PQclear(r);
	r = NULL;
	rc = dws_exec(w, what, sql.data, 4, params, &r);
	if (rc == DWS_OK && PQgetvalue(r, 0, 0)[0] == 't')
		rc = dws_ddl_apply(w, c->t_schema, c->t_table);
done:
	if (r)
		PQclear(r);
	dws_buf_free(&sql);
	free(what);
	return rc;
}

/* ---- refused rows ---------------------------------------------------------
 */

/* The held row at [a, b) goes to the dirty-data path as an INSERT. */
static dws_rc
dws_full_reject(dws_full *c, size_t a, size_t b)
{
	dws_state *s = c->w->s;
	uint32_t n = c->rel->ncolumns;
	syncd_value *vals = calloc(n + 1, sizeof *vals);
	char *text = malloc(b - a + 1);
	const char *bad = NULL;
	syncd_event ev = {.size = sizeof(syncd_event),
	                  .type = SYNCD_EV_INSERT,
	                  .lsn = c->snapshot_lsn,
	                  .stream = c->stream,
	                  .rel = c->rel,
	                  .new_values = vals};
	dws_rc rc = DWS_OK;

	if (!vals || !text)
		abort();
	if (syncd_copytext_parse_row(c->held.data + a, b - a, n, vals, text,
	                             &bad) == 0) {
		ERR(s, c->err_state,
		    "target table %s refused a row of chunk %u of source table "
		    "%s with SQLSTATE %s: %s; the row is not COPY text of %u "
		    "columns, so it cannot be set aside: fix the target table",
		    c->t->label, c->chunk, c->src, c->err_state,
		    c->err_msg ? c->err_msg : "(no message)", n);
		rc = DWS_FATAL;
	} else if (s->host->sink->reject(
	               s->host, c->w->id, &ev, c->err_state,
	               c->err_msg ? c->err_msg : "(no message)") != SYNCD_OK)
		rc = DWS_REJECTED;
	free(text);
	free(vals);
	return rc;
}

/* The held rows [a, b) (whole lines) under a savepoint: *copied grows by
 * the rows the destination took; DWS_DATA when it refused one (rolled
 * back). */
static dws_rc
dws_full_try(dws_full *c, size_t a, size_t b, uint64_t *copied)
{
	dws_worker *w = c->w;
	dws_buf sql = {0};
	char *what = NULL;
	uint64_t n = 0;
	PGresult *r;
	dws_rc rc;

	if (asprintf(&what,
	             "copying chunk %u of source table %s into target table "
	             "%s row by row",
	             c->chunk, c->src, c->t->label) < 0)
		abort();
	rc = dws_full_exec(c, what, "SAVEPOINT syncd_rows");
	if (rc != DWS_OK)
		goto done;
	r = PQexec(w->conn, c->copy_sql);
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		rc = dws_full_error(c, what, r);
		if (rc == DWS_OK)
			rc = DWS_FATAL;
		goto undo;
	}
	PQclear(r);
	c->in_copy = true;
	for (size_t at = a; at < b;) {
		int len = b - at > (1 << 30) ? 1 << 30 : (int) (b - at);
		if (PQputCopyData(w->conn, c->held.data + at, len) != 1)
			break; /* copy_end says why */
		at += (size_t) len;
	}
	rc = dws_full_copy_end(c, what, NULL, &n);
	if (rc == DWS_OK && c->staged) {
		dws_sql_full_stage(&sql, w->dialect, c->t, c->t->stage,
		                   c->how == SYNCD_COPY_MERGE);
		rc = dws_full_exec(c, what, sql.data);
		if (rc == DWS_OK) {
			dws_buf_reset(&sql);
			dws_buf_printf(&sql, "TRUNCATE %s", c->t->stage);
			rc = dws_full_exec(c, what, sql.data);
		}
	}
undo:
	if (rc == DWS_OK)
		rc = dws_full_exec(c, what, "RELEASE SAVEPOINT syncd_rows");
	else if (rc == DWS_DATA &&
	         dws_full_exec(c, what, "ROLLBACK TO SAVEPOINT syncd_rows") !=
	             DWS_OK)
		rc = DWS_FATAL;
	if (rc == DWS_OK)
		*copied += n;
done:
	dws_buf_free(&sql);
	free(what);
	return rc;
}

/* Where [a, b) splits into two non-empty runs of rows: b when it holds
 * one row. */
static size_t
dws_full_split(const dws_full *c, size_t a, size_t b)
{
	const char *d = c->held.data;
	size_t mid = a + (b - a) / 2;
	const char *nl = memchr(d + mid, '\n', b - mid);

	if (nl && (size_t) (nl - d) + 1 < b)
		return (size_t) (nl - d) + 1;
	nl = memrchr(d + a, '\n', mid - a);
	if (nl && (size_t) (nl - d) + 1 < b)
		return (size_t) (nl - d) + 1;
	return b;
}

/* Bisection of the held rows [a, b): a range the destination refuses is
 * split, a single refused row is set aside (bad: [a, b) is known to be
 * refused, with c->err_*). */
static dws_rc
dws_full_bisect(dws_full *c, size_t a, size_t b, bool bad, uint64_t *copied,
                uint64_t *refused)
{
	size_t split;
	dws_rc rc;

	if (a >= b)
		return DWS_OK;
	split = dws_full_split(c, a, b);
	if (!bad || split == b) {
		rc = dws_full_try(c, a, b, copied);
		if (rc != DWS_DATA)
			return rc;
	}
	if (split == b) {
		(*refused)++;
		return dws_full_reject(c, a, b);
	}
	rc = dws_full_bisect(c, a, split, false, copied, refused);
	if (rc == DWS_OK)
		rc = dws_full_bisect(c, split, b, false, copied, refused);
	return rc;
}

syncd_status
dws_full_end(void *cstate, bool commit, uint64_t rows)
{
	dws_full *c = cstate;
	dws_worker *w = c->w;
	dws_buf sql = {0};
	char *what = NULL;
	uint64_t copied = rows, refused = 0;
	dws_rc rc = DWS_OK;

	if (!commit || !c->in_tx) {
		dws_full_abandon(c);
		if (commit) {
			ERR(w->s, NULL,
			    "copy_end without a chunk being copied");
			return SYNCD_FATAL;
		}
		return SYNCD_OK;
	}
	if (asprintf(&what,
	             "copying chunk %u of source table %s into target table %s",
	             c->chunk, c->src, c->t->label) < 0)
		abort();
	if (c->holding) {
		copied = 0;
		rc =
		    dws_full_bisect(c, 0, c->held.len, true, &copied, &refused);
		if (rc == DWS_OK)
			SYNCD_LOG_INFO(w->s->host,
			               "chunk %u of source table %s: %" PRIu64
			               " rows set aside as dirty data, %" PRIu64
			               " copied into target table %s",
			               c->chunk, c->src, refused, copied,
			               c->t->label);
		dws_buf_free(&c->held);
		rows -= refused <= rows ? refused : rows;
	} else if (c->in_copy)
		rc = dws_full_copy_end(c, what, NULL, &copied);
	if (rc == DWS_OK && copied != rows)
		SYNCD_LOG_WARNING(
		    w->s->host,
		    "chunk %u of source table %s: the destination took %" PRIu64
		    " rows, the source sent %" PRIu64,
		    c->chunk, c->src, copied, rows);
	if (rc == DWS_OK && c->staged && !c->holding) {
		dws_sql_full_stage(&sql, w->dialect, c->t, c->t->stage,
		                   c->how == SYNCD_COPY_MERGE);
		rc = dws_full_exec(c, what, sql.data);
	}
	if (rc == DWS_DATA && !c->holding) {
		/* rows refused: the chunk comes again, to isolate them */
		SYNCD_LOG_INFO(
		    w->s->host,
		    "target table %s refused a row of chunk %u of source "
		    "table %s (SQLSTATE %s): the chunk is read again to set "
		    "the refused rows aside",
		    c->t->label, c->chunk, c->src, c->err_state);
		c->careful = true;
		c->careful_rel = c->rel->id;
		c->careful_stream = c->stream;
		c->careful_chunk = c->chunk;
		dws_full_abandon(c);
		dws_buf_free(&sql);
		free(what);
		return SYNCD_REJECT;
	}
	if (rc == DWS_OK && c->record)
		rc = dws_full_record(c, rows);
	if (rc == DWS_OK) /* deferred constraints are checked here */
		rc = dws_full_exec(c, what, "COMMIT");
	if (rc == DWS_OK)
		c->in_tx = false;
	dws_full_abandon(c); /* after a failure: roll back */
	dws_buf_free(&sql);
	free(what);
	return dws_full_status(rc);
}
