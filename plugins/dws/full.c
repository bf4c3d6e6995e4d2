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
	bool staged; /* rows go through t->stage */
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
	c->src_schema = c->src_table = c->src = c->chunk_name = NULL;
	c->t_schema = c->t_table = NULL;
	c->t = NULL;
	c->in_tx = c->in_copy = c->staged = false;
}

static bool
dws_full_data_error(const char *st)
{
	return st && (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0 ||
	              strcmp(st, "42804") == 0);
}

/* A failed step of the chunk in progress (r may be NULL, and is cleared):
 * a row the target refuses is named with the chunk and the server's
 * context (line and column of the COPY data); the rest is classified as
 * for any statement. */
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
	return DWS_FATAL;
}

/* A statement of the chunk in progress. */
static dws_rc
dws_full_exec(dws_full *c, const char *what, const char *sql)
{
	dws_state *s = c->w->s;
	PGresult *r;

	if (s->host->log_enabled(s->inst, SYNCD_LOG_DEBUG))
		LOG(s, SYNCD_LOG_DEBUG, "worker %d: %.300s", c->w->id, sql);
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

static dws_rc
dws_full_state_prepare(dws_worker *w, const char *table)
{
	dws_buf sql = {0};
	dws_rc rc;

	dws_buf_printf(
	    &sql,
	    "CREATE TABLE IF NOT EXISTS %s (job text NOT NULL, stream "
	    "integer NOT NULL, source_schema text NOT NULL, source_table "
	    "text NOT NULL, chunk integer NOT NULL, nchunks integer NOT "
	    "NULL, how char(1) NOT NULL, target_schema text NOT NULL, "
	    "target_table text NOT NULL, rows bigint NOT NULL, updated_at "
	    "timestamp with time zone NOT NULL, chunk_name text, "
	    "source_state text, PRIMARY KEY (job, stream, "
	    "source_schema, source_table, chunk))%s",
	    table,
	    w->dialect->distribute_by_hash ? " DISTRIBUTE BY HASH (job)" : "");
	rc = dws_exec(w, "creating the copy state table in state.schema",
	              sql.data, 0, NULL, NULL);
	/* another job may have created it meanwhile */
	if (rc != DWS_OK && rc != DWS_RETRY && dws_last_sqlstate() &&
	    (strcmp(dws_last_sqlstate(), "42P07") == 0 ||
	     strcmp(dws_last_sqlstate(), "23505") == 0))
		rc = DWS_OK;
	dws_buf_free(&sql);
	return rc;
}

syncd_status
dws_full_open(void *state, void **cstate)
{
	dws_state *s = state;
	dws_full *c;
	void *w = NULL;
	syncd_status st;
	dws_rc rc = DWS_OK;
	int id;

	*cstate = NULL;
	pthread_mutex_lock(&s->lock);
	id = DWS_FULL_WORKER + s->copy_sessions++;
	pthread_mutex_unlock(&s->lock);
	st = dws_connect(s, id, true, &w);
	if (st != SYNCD_OK)
		return st;
	c = calloc(1, sizeof *c);
	if (!c) {
		dws_close(w);
		return SYNCD_FATAL;
	}
	c->w = w;
	c->table = dws_qualified(c->w, s->state_schema, "syncd_copy");
	pthread_mutex_lock(&s->lock);
	if (!s->copy_ready) {
		rc = dws_full_state_prepare(c->w, c->table);
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
	dws_close(c->w); /* an open transaction ends with the connection */
	free(c->table);
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
                const syncd_copy_table *t, bool *finished, char *earlier,
                size_t earlier_size)
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
			snprintf(earlier, earlier_size, "%s",
			         PQgetvalue(r, i, 2));
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
dws_full_table(void *cstate, const syncd_relation *rel, uint32_t stream,
               const syncd_copy_table *ct, bool again, syncd_copy_how *how,
               bool *finished, char *earlier, size_t earlier_size)
{
	uint32_t nchunks = ct->nchunks;
	dws_full *c = cstate;
	dws_worker *w = c->w;
	dws_state *s = w->s;
	char sstream[16], snchunks[16], h[2] = {0, 0};
	const char *params[9] = {
	    s->job,          sstream, rel->schema,        rel->table,
	    snchunks,        h,       rel->target_schema, rel->target_table,
	    ct->source_state};
	dws_buf sql = {0};
	PGresult *r = NULL;
	dws_target *t;
	char *what = NULL;
	char was = 0; /* how of the table row, 0 when there is none */
	long done = 0, had = 0;
	dws_rc rc;

	snprintf(sstream, sizeof sstream, "%u", stream);
	snprintf(snchunks, sizeof snchunks, "%u", nchunks);
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
			LOG(s, SYNCD_LOG_INFO,
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
			rc = dws_full_resume(c, what, params, ct, finished,
			                     earlier, earlier_size);
		if (rc == DWS_OK)
			rc = dws_exec(w, what, "COMMIT", 0, NULL, NULL);
		if (rc == DWS_OK)
			*how = SYNCD_COPY_MERGE;
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
				LOG(s, SYNCD_LOG_INFO,
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
		h[0] = 'd';
		dws_buf_reset(&sql);
		dws_buf_printf(&sql, "TRUNCATE %s", t->qtable);
		rc = dws_exec(w, "emptying a target table", sql.data, 0, NULL,
		              NULL);
		if (rc != DWS_OK)
			goto done;
		if (had > 0 && done == had)
			LOG(s, SYNCD_LOG_INFO,
			    "target table %s was filled by an earlier copy of "
			    "this job from an older snapshot: emptied it, the "
			    "copy starts again",
			    t->label);
		else
			LOG(s, SYNCD_LOG_INFO,
			    "target table %s holds part of an earlier, "
			    "unfinished copy of this job: emptied it, the copy "
			    "starts again",
			    t->label);
	} else
		h[0] = 'm';
	if (h[0] == 'm')
		LOG(s, SYNCD_LOG_INFO,
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
	               "target_table, rows, updated_at, source_state) VALUES "
	               "($1, $2::integer, $3, $4, -1, $5::integer, $6, $7, $8, "
	               "0, now(), $9)",
	               c->table);
	rc = dws_exec(w, what, sql.data, 9, params, NULL);
	if (rc == DWS_OK)
		rc = dws_exec(w, what, "COMMIT", 0, NULL, NULL);
	if (rc == DWS_OK)
		*how = h[0] == 'd' ? SYNCD_COPY_DIRECT : SYNCD_COPY_MERGE;
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
dws_full_begin(void *cstate, const syncd_relation *rel, uint32_t stream,
               const syncd_copy_table *ct, uint32_t chunk, syncd_copy_how how,
               bool record)
{
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
	if (w->s->host->log_enabled(w->s->inst, SYNCD_LOG_DEBUG))
		LOG(w->s, SYNCD_LOG_DEBUG, "worker %d: %.300s", w->id,
		    sql.data);
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

syncd_status
dws_full_end(void *cstate, bool commit, uint64_t rows)
{
	dws_full *c = cstate;
	dws_worker *w = c->w;
	dws_buf sql = {0};
	char *what = NULL;
	uint64_t copied = rows;
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
	if (c->in_copy)
		rc = dws_full_copy_end(c, what, NULL, &copied);
	if (rc == DWS_OK && copied != rows)
		LOG(w->s, SYNCD_LOG_WARNING,
		    "chunk %u of source table %s: the destination took %" PRIu64
		    " rows, the source sent %" PRIu64,
		    c->chunk, c->src, copied, rows);
	if (rc == DWS_OK && c->staged) {
		dws_sql_full_stage(&sql, w->dialect, c->t, c->t->stage,
		                   c->how == SYNCD_COPY_MERGE);
		rc = dws_full_exec(c, what, sql.data);
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
