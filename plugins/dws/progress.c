/*
 * progress.c - the job's state in state.schema: its tables (syncd_progress,
 * the per-worker progress; syncd_origin, the source the progress came from;
 * syncd_ddl, the keys and indexes built after a copy; syncd_copy, the full
 * phase's state; syncd_marks, commit times and positions), each worker's applied progress and its layout (how keys
 * were spread over workers), the source's origin, forgetting a stream's
 * progress for a re-sync, the time marks of --start-time and setting the
 * progress back to one, and the --check of state.schema.
 */
#define _GNU_SOURCE /* asprintf */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dws.h"

/* ---- the state tables ---------------------------------------------------- */

static char *
dws_progress_table(dws_worker *w)
{
	return dws_qualified(w, w->s->state_schema, "syncd_progress");
}

static char *
dws_marks_table(dws_worker *w)
{
	return dws_qualified(w, w->s->state_schema, "syncd_marks");
}

dws_rc
dws_state_prepare(dws_worker *w)
{
	dws_state *s = w->s;
	const char *params[1] = {s->state_schema};
	PGresult *r = NULL;
	dws_buf sql = {0};
	char *table = dws_progress_table(w), *qs;
	dws_rc rc;

	if (!table)
		return DWS_FATAL;
	rc =
	    dws_exec(w, "looking up state.schema",
	             "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1",
	             1, params, &r);
	if (rc != DWS_OK)
		goto done;
	if (PQntuples(r) == 0) {
		qs = dws_quote(w, s->state_schema);
		dws_buf_printf(&sql, "CREATE SCHEMA %s", qs);
		free(qs);
		rc = dws_exec(w, "creating state.schema", sql.data, 0, NULL,
		              NULL);
		/* another job may have created it meanwhile */
		if (rc == DWS_FATAL && dws_last_sqlstate() &&
		    strcmp(dws_last_sqlstate(), "42P06") == 0)
			rc = DWS_OK;
		if (rc != DWS_OK)
			goto done;
		SYNCD_LOG_INFO(s->host,
		               "created schema %s for the job's progress",
		               s->state_schema);
	}
	dws_buf_reset(&sql);
	dws_buf_printf(
	    &sql,
	    "CREATE TABLE IF NOT EXISTS %s (job text NOT NULL, "
	    "stream integer NOT NULL, worker integer NOT NULL, "
	    "lsn bigint NOT NULL, lsn_text text NOT NULL, layout "
	    "text NOT NULL, updated_at timestamp with time zone NOT "
	    "NULL, PRIMARY KEY (job, stream, worker))%s",
	    table,
	    w->dialect->distribute_by_hash ? " DISTRIBUTE BY HASH (job)" : "");
	rc = dws_exec(w, "creating the progress table in state.schema",
	              sql.data, 0, NULL, NULL);
	if (rc != DWS_OK)
		goto done;
	free(table);
	table = dws_qualified(w, s->state_schema, "syncd_ddl");
	dws_buf_reset(&sql);
	dws_buf_printf(
	    &sql,
	    "CREATE TABLE IF NOT EXISTS %s (job text NOT NULL, "
	    "target_schema text NOT NULL, target_table text NOT "
	    "NULL, ddl text NOT NULL, PRIMARY KEY (job, "
	    "target_schema, target_table))%s",
	    table,
	    w->dialect->distribute_by_hash ? " DISTRIBUTE BY HASH (job)" : "");
	rc = dws_exec(w, "creating the table of deferred keys in state.schema",
	              sql.data, 0, NULL, NULL);
	if (rc != DWS_OK)
		goto done;
	/* added by ABI 1.1: made here too when the other tables exist from
	 * an earlier version */
	free(table);
	table = dws_qualified(w, s->state_schema, "syncd_origin");
	dws_buf_reset(&sql);
	dws_buf_printf(
	    &sql,
	    "CREATE TABLE IF NOT EXISTS %s (job text NOT NULL, "
	    "stream integer NOT NULL, origin text NOT NULL, recorded_at "
	    "timestamp with time zone NOT NULL, PRIMARY KEY (job, "
	    "stream))%s",
	    table,
	    w->dialect->distribute_by_hash ? " DISTRIBUTE BY HASH (job)" : "");
	rc = dws_exec(w, "creating the table of source origins in state.schema",
	              sql.data, 0, NULL, NULL);
	/* another job may have created it meanwhile */
	if (rc == DWS_FATAL && dws_last_sqlstate() &&
	    (strcmp(dws_last_sqlstate(), "42P07") == 0 ||
	     strcmp(dws_last_sqlstate(), "23505") == 0))
		rc = DWS_OK;
	if (rc != DWS_OK)
		goto done;
	/* added by ABI 1.2: the time marks of syncd --start-time */
	free(table);
	table = dws_marks_table(w);
	dws_buf_reset(&sql);
	dws_buf_printf(
	    &sql,
	    "CREATE TABLE IF NOT EXISTS %s (job text NOT NULL, "
	    "stream integer NOT NULL, at timestamp with time zone NOT NULL, "
	    "lsn bigint NOT NULL, PRIMARY KEY (job, stream, at))%s",
	    table,
	    w->dialect->distribute_by_hash ? " DISTRIBUTE BY HASH (job)" : "");
	rc = dws_exec(w, "creating the table of time marks in state.schema",
	              sql.data, 0, NULL, NULL);
	if (rc == DWS_FATAL && dws_last_sqlstate() &&
	    (strcmp(dws_last_sqlstate(), "42P07") == 0 ||
	     strcmp(dws_last_sqlstate(), "23505") == 0))
		rc = DWS_OK;
done:
	if (r)
		PQclear(r);
	dws_buf_free(&sql);
	free(table);
	return rc;
}

dws_rc
dws_state_ensure(dws_worker *w)
{
	dws_state *s = w->s;
	dws_rc rc = DWS_OK;

	pthread_mutex_lock(&s->lock);
	if (!s->state_ready) {
		rc = dws_state_prepare(w);
		s->state_ready = rc == DWS_OK;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

dws_rc
dws_copy_has_snapshots(dws_worker *w, bool *has)
{
	const char *params[1] = {w->s->state_schema};
	PGresult *r = NULL;
	dws_rc rc = dws_exec(w, "reading the copy state table's columns",
	                     "SELECT 1 FROM information_schema.columns WHERE "
	                     "table_schema = $1 AND table_name = 'syncd_copy' "
	                     "AND column_name = 'snapshot_lsn'",
	                     1, params, &r);

	*has = rc == DWS_OK && PQntuples(r) == 1;
	if (r)
		PQclear(r);
	return rc;
}

dws_rc
dws_copy_state_prepare(dws_worker *w, const char *table)
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
	    "source_state text, snapshot_lsn bigint, PRIMARY KEY (job, "
	    "stream, source_schema, source_table, chunk))%s",
	    table,
	    w->dialect->distribute_by_hash ? " DISTRIBUTE BY HASH (job)" : "");
	rc = dws_exec(w, "creating the copy state table in state.schema",
	              sql.data, 0, NULL, NULL);
	/* another job may have created it meanwhile */
	if (rc != DWS_OK && rc != DWS_RETRY && dws_last_sqlstate() &&
	    (strcmp(dws_last_sqlstate(), "42P07") == 0 ||
	     strcmp(dws_last_sqlstate(), "23505") == 0))
		rc = DWS_OK;
	/* one made by an earlier version lacks the copy's snapshot
	 * position (a table row's snapshot_lsn: see apply.c) */
	if (rc == DWS_OK) {
		bool has = false;
		rc = dws_copy_has_snapshots(w, &has);
		if (rc == DWS_OK && !has) {
			dws_buf_reset(&sql);
			dws_buf_printf(&sql,
			               "ALTER TABLE %s ADD COLUMN snapshot_lsn "
			               "bigint",
			               table);
			rc = dws_exec(w,
			              "adding a column to the copy state table",
			              sql.data, 0, NULL, NULL);
		}
	}
	dws_buf_free(&sql);
	return rc;
}

bool
dws_check_state(dws_worker *w)
{
	dws_state *s = w->s;
	const char *params[1] = {s->state_schema};
	bool exists = false, ok = false;

	if (!dws_bool_query(w, "looking up state.schema",
	                    "SELECT EXISTS (SELECT 1 FROM "
	                    "pg_catalog.pg_namespace WHERE nspname = $1)",
	                    1, params, &exists))
		return false;
	if (exists) {
		if (!dws_bool_query(
		        w, "checking rights on state.schema",
		        "SELECT pg_catalog.has_schema_privilege($1, "
		        "'CREATE, USAGE')",
		        1, params, &ok))
			return false;
	} else if (!dws_bool_query(w, "checking the right to create schemas",
	                           "SELECT pg_catalog.has_database_privilege("
	                           "pg_catalog.current_database(), 'CREATE')",
	                           0, NULL, &ok))
		return false;
	if (!ok) {
		SYNCD_LOG_ERROR(
		    s->host,
		    "state.schema %s: the destination user may not %s; grant "
		    "it "
		    "%s, or set state.schema to a schema it may create tables "
		    "in",
		    s->state_schema,
		    exists ? "create tables in it" : "create it",
		    exists ? "CREATE and USAGE on the schema"
		           : "CREATE on the database");
		ERR(s, NULL, "state.schema %s cannot be used", s->state_schema);
	}
	return ok;
}

/* ---- applied progress ---------------------------------------------------- */

static void
dws_lsn_text(char *out, size_t n, syncd_lsn lsn)
{
	snprintf(out, n, SYNCD_LSN_FMT, SYNCD_LSN_ARGS(lsn));
}

dws_rc
dws_progress_write(dws_worker *w, uint32_t stream, int worker, syncd_lsn lsn,
                   const char *layout)
{
	char *table = dws_progress_table(w);
	char sstream[16], sworker[16], slsn[32], text[32];
	const char *params[6] = {w->s->job, sstream, sworker,
	                         slsn,      text,    layout};
	dws_buf sql = {0};
	dws_rc rc;

	if (!table)
		return DWS_FATAL;
	snprintf(sstream, sizeof sstream, "%u", stream);
	snprintf(sworker, sizeof sworker, "%d", worker);
	snprintf(slsn, sizeof slsn, "%lld", (long long) lsn);
	dws_lsn_text(text, sizeof text, lsn);
	dws_buf_printf(&sql,
	               "INSERT INTO %s (job, stream, worker, lsn, lsn_text, "
	               "layout, updated_at) VALUES ($1, $2, $3, $4, $5, $6, "
	               "now()) ON CONFLICT (job, stream, worker) DO UPDATE SET "
	               "lsn = EXCLUDED.lsn, lsn_text = EXCLUDED.lsn_text, "
	               "layout = EXCLUDED.layout, updated_at = "
	               "EXCLUDED.updated_at",
	               table);
	rc = dws_exec(w, "recording the job's progress", sql.data, 6, params,
	              NULL);
	dws_buf_free(&sql);
	free(table);
	return rc;
}

/*
 * The progress a worker recorded is only its own when keys went to workers
 * the same way then as now: after a change of concurrency or keyby mode, a
 * key may now belong to a worker that was ahead of the one that had it.
 * The first worker to ask then rewrites the stream's rows: every worker
 * resumes from the smallest recorded position (a replay of a suffix is
 * harmless: apply is idempotent).
 */
static dws_rc
dws_relayout(dws_worker *w, uint32_t stream)
{
	dws_state *s = w->s;
	char *table = dws_progress_table(w);
	char sstream[16];
	const char *params[2] = {s->job, sstream};
	dws_buf sql = {0};
	PGresult *r = NULL;
	dws_rc rc;
	bool differ = false;
	syncd_lsn min = 0;
	int nworkers = atoi(s->layout);

	if (!table)
		return DWS_FATAL;
	snprintf(sstream, sizeof sstream, "%u", stream);
	dws_buf_printf(&sql,
	               "SELECT worker, lsn, layout FROM %s WHERE job = $1 AND "
	               "stream = $2",
	               table);
	rc = dws_exec(w, "reading the job's progress", sql.data, 2, params, &r);
	if (rc != DWS_OK)
		goto done;
	for (int i = 0; i < PQntuples(r); i++) {
		syncd_lsn l =
		    (syncd_lsn) strtoll(PQgetvalue(r, i, 1), NULL, 10);
		if (atoi(PQgetvalue(r, i, 0)) >= nworkers ||
		    strcmp(PQgetvalue(r, i, 2), s->layout) != 0)
			differ = true;
		if (i == 0 || l < min)
			min = l;
	}
	if (!differ)
		goto done;
	SYNCD_LOG_INFO(
	    s->host,
	    "stream %u: the progress was recorded with another concurrency, "
	    "keyby mode or spreading of keys over workers (an older syncd); "
	    "every worker resumes from the smallest "
	    "position, " SYNCD_LSN_FMT,
	    stream, SYNCD_LSN_ARGS(min));
	rc =
	    dws_exec(w, "rewriting the job's progress", "BEGIN", 0, NULL, NULL);
	if (rc != DWS_OK)
		goto done;
	dws_buf_reset(&sql);
	dws_buf_printf(&sql, "DELETE FROM %s WHERE job = $1 AND stream = $2",
	               table);
	rc = dws_exec(w, "rewriting the job's progress", sql.data, 2, params,
	              NULL);
	for (int i = 0; i < nworkers && rc == DWS_OK; i++)
		rc = dws_progress_write(w, stream, i, min, s->layout);
	if (rc == DWS_OK)
		rc = dws_exec(w, "rewriting the job's progress", "COMMIT", 0,
		              NULL, NULL);
	else
		PQclear(PQexec(w->conn, "ROLLBACK"));
done:
	if (r)
		PQclear(r);
	dws_buf_free(&sql);
	free(table);
	return rc;
}

syncd_status
dws_applied_lsn(void *wstate, uint32_t stream, syncd_lsn *lsn)
{
	dws_worker *w = wstate;
	dws_state *s = w->s;
	char *table;
	char sstream[16], sworker[16];
	const char *params[3] = {s->job, sstream, sworker};
	dws_buf sql = {0};
	PGresult *r = NULL;
	dws_rc rc = DWS_OK;

	*lsn = 0;
	if (stream >= SYNCD_MAX_STREAMS)
		return SYNCD_FATAL;
	pthread_mutex_lock(&s->lock);
	if (!s->relayout_done[stream]) {
		rc = dws_relayout(w, stream);
		s->relayout_done[stream] = rc == DWS_OK;
	}
	pthread_mutex_unlock(&s->lock);
	if (rc != DWS_OK)
		return dws_status(rc);

	table = dws_progress_table(w);
	if (!table)
		return SYNCD_FATAL;
	snprintf(sstream, sizeof sstream, "%u", stream);
	snprintf(sworker, sizeof sworker, "%d", w->id);
	dws_buf_printf(&sql,
	               "SELECT lsn FROM %s WHERE job = $1 AND stream = $2 AND "
	               "worker = $3",
	               table);
	rc = dws_exec(w, "reading the job's progress", sql.data, 3, params, &r);
	if (rc == DWS_OK && PQntuples(r) == 1)
		*lsn = (syncd_lsn) strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	if (r)
		PQclear(r);
	r = NULL;
	free(table);
	/* A full copy holds every transaction before its snapshot: when
	 * every table of the stream was copied from a snapshot past the
	 * progress (a new slot's, nothing streamed since), the destination
	 * has applied up to there */
	if (rc == DWS_OK && s->full) {
		bool has = false;
		rc = dws_copy_has_snapshots(w, &has);
		if (rc == DWS_OK && has) {
			table = dws_qualified(w, s->state_schema, "syncd_copy");
			dws_buf_reset(&sql);
			dws_buf_printf(
			    &sql,
			    "SELECT min(snapshot_lsn), count(*) - "
			    "count(snapshot_lsn) FROM %s WHERE job = "
			    "$1 AND stream = $2::integer AND chunk = -1",
			    table);
			free(table);
			rc = dws_exec(w, "reading the copy state", sql.data, 2,
			              params, &r);
			if (rc == DWS_OK && !PQgetisnull(r, 0, 0) &&
			    atol(PQgetvalue(r, 0, 1)) == 0) {
				syncd_lsn at = (syncd_lsn) strtoull(
				    PQgetvalue(r, 0, 0), NULL, 10);
				if (at > 0 && at - 1 > *lsn)
					*lsn = at - 1;
			}
		}
		if (r)
			PQclear(r);
	}
	dws_buf_free(&sql);
	return dws_status(rc);
}

/* ---- the source's origin, and a re-sync --------------------------------- */

dws_rc
dws_origin_read(dws_worker *w, uint32_t stream, char **origin)
{
	char *table = dws_qualified(w, w->s->state_schema, "syncd_origin");
	char sstream[16];
	const char *params[2] = {w->s->job, sstream};
	dws_buf sql = {0};
	PGresult *r = NULL;
	dws_rc rc;

	*origin = NULL;
	snprintf(sstream, sizeof sstream, "%u", stream);
	dws_buf_printf(&sql,
	               "SELECT origin FROM %s WHERE job = $1 AND stream = "
	               "$2::integer",
	               table);
	rc = dws_exec(w, "reading the source's origin recorded in state.schema",
	              sql.data, 2, params, &r);
	if (rc == DWS_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
		*origin = strdup(PQgetvalue(r, 0, 0));
		if (!*origin)
			abort();
	}
	if (r)
		PQclear(r);
	dws_buf_free(&sql);
	free(table);
	return rc;
}

dws_rc
dws_origin_write(dws_worker *w, uint32_t stream, const char *origin)
{
	char *table = dws_qualified(w, w->s->state_schema, "syncd_origin");
	char sstream[16];
	const char *params[3] = {w->s->job, sstream, origin};
	dws_buf sql = {0};
	dws_rc rc;

	snprintf(sstream, sizeof sstream, "%u", stream);
	dws_buf_printf(&sql,
	               "INSERT INTO %s (job, stream, origin, recorded_at) "
	               "VALUES ($1, $2::integer, $3, now()) ON CONFLICT (job, "
	               "stream) DO UPDATE SET origin = EXCLUDED.origin, "
	               "recorded_at = EXCLUDED.recorded_at",
	               table);
	rc = dws_exec(w, "recording the source's origin in state.schema",
	              sql.data, 3, params, NULL);
	dws_buf_free(&sql);
	free(table);
	return rc;
}

/* Whether STATE.syncd_copy exists, and with the snapshot_lsn column. */
static dws_rc
dws_copy_state_exists(dws_worker *w, bool *exists, bool *snapshots)
{
	const char *params[1] = {w->s->state_schema};
	PGresult *r = NULL;
	dws_rc rc = dws_exec(w, "reading the copy state table's columns",
	                     "SELECT column_name FROM "
	                     "information_schema.columns WHERE table_schema = "
	                     "$1 AND table_name = 'syncd_copy' AND column_name "
	                     "IN ('job', 'snapshot_lsn')",
	                     1, params, &r);

	*exists = *snapshots = false;
	for (int i = 0; rc == DWS_OK && i < PQntuples(r); i++) {
		*exists = true;
		if (strcmp(PQgetvalue(r, i, 0), "snapshot_lsn") == 0)
			*snapshots = true;
	}
	if (r)
		PQclear(r);
	return rc;
}

/*
 * The stream starts over from a new source position. Its progress rows
 * and its origin go. Its copies must not count as progress any more
 * (dws_applied_lsn takes a full copy's snapshot position as applied) nor
 * as finished (dws_full_table would skip or merge them): the chunks'
 * rows go, and the table rows stay, as the record of which targets the
 * job filled (how = 'd': the next copy empties them instead of merging
 * into them), with nchunks = 0 (forgotten), rows = 0 and no snapshot
 * position. All in one transaction: a failure changes nothing.
 */
dws_rc
dws_progress_forget(dws_worker *w, uint32_t stream)
{
	dws_state *s = w->s;
	const char *what = "forgetting a stream's progress in state.schema";
	char *progress = dws_progress_table(w);
	char *origin = dws_qualified(w, s->state_schema, "syncd_origin");
	char *copy = dws_qualified(w, s->state_schema, "syncd_copy");
	char *marks = dws_marks_table(w);
	char sstream[16];
	const char *params[2] = {s->job, sstream};
	dws_buf sql = {0};
	PGresult *r = NULL;
	bool exists = false, snapshots = false;
	long nprogress = 0, ntables = 0;
	dws_rc rc;

	snprintf(sstream, sizeof sstream, "%u", stream);
	rc = dws_copy_state_exists(w, &exists, &snapshots);
	if (rc == DWS_OK)
		rc = dws_exec(w, what, "BEGIN", 0, NULL, NULL);
	if (rc != DWS_OK)
		goto done;
	dws_buf_printf(&sql,
	               "DELETE FROM %s WHERE job = $1 AND stream = $2::integer",
	               progress);
	rc = dws_exec(w, what, sql.data, 2, params, &r);
	if (rc != DWS_OK)
		goto done;
	nprogress = atol(PQcmdTuples(r));
	PQclear(r);
	r = NULL;
	dws_buf_reset(&sql);
	dws_buf_printf(&sql,
	               "DELETE FROM %s WHERE job = $1 AND stream = $2::integer",
	               origin);
	rc = dws_exec(w, what, sql.data, 2, params, NULL);
	if (rc == DWS_OK) {
		/* marks of the old position mean nothing for the new one */
		dws_buf_reset(&sql);
		dws_buf_printf(
		    &sql, "DELETE FROM %s WHERE job = $1 AND stream = $2::integer",
		    marks);
		rc = dws_exec(w, what, sql.data, 2, params, NULL);
	}
	if (rc == DWS_OK && exists) {
		dws_buf_reset(&sql);
		dws_buf_printf(&sql,
		               "DELETE FROM %s WHERE job = $1 AND stream = "
		               "$2::integer AND chunk >= 0",
		               copy);
		rc = dws_exec(w, what, sql.data, 2, params, NULL);
	}
	if (rc == DWS_OK && exists) {
		dws_buf_reset(&sql);
		dws_buf_printf(
		    &sql,
		    "UPDATE %s SET nchunks = 0, rows = 0, %supdated_at "
		    "= now() WHERE job = $1 AND stream = $2::integer "
		    "AND chunk = -1",
		    copy, snapshots ? "snapshot_lsn = NULL, " : "");
		rc = dws_exec(w, what, sql.data, 2, params, &r);
		if (rc == DWS_OK)
			ntables = atol(PQcmdTuples(r));
	}
	if (rc == DWS_OK)
		rc = dws_exec(w, what, "COMMIT", 0, NULL, NULL);
	if (rc != DWS_OK)
		goto done;
	pthread_mutex_lock(&s->lock);
	s->relayout_done[stream] = false;
	pthread_mutex_unlock(&s->lock);
	__atomic_add_fetch(&s->snap_epoch, 1, __ATOMIC_SEQ_CST);
	SYNCD_LOG_INFO(s->host,
	               "stream %u: forgot the destination's progress (%ld "
	               "worker rows in %s.syncd_progress) and the source's "
	               "origin; the earlier copies of its %ld tables no "
	               "longer count: the next full phase copies them again",
	               stream, nprogress, s->state_schema, ntables);
done:
	if (r)
		PQclear(r);
	if (rc != DWS_OK && PQstatus(w->conn) == CONNECTION_OK)
		PQclear(PQexec(w->conn, "ROLLBACK"));
	dws_buf_free(&sql);
	free(progress);
	free(origin);
	free(copy);
	free(marks);
	return rc;
}

/* ---- time marks (syncd --start-time) ------------------------------------ */

/* The batch's time marks, in its transaction, and the deletion of those
 * older than the source keeps. */
dws_rc
dws_marks_write(dws_worker *w, const syncd_batch *b)
{
	char *table;
	dws_buf sql = {0};
	dws_rc rc = DWS_OK;

	if (!SYNCD_HAS(b, marks_before) || b->nmarks == 0)
		return DWS_OK;
	table = dws_marks_table(w);
	if (!table)
		return DWS_FATAL;
	dws_buf_printf(&sql,
	               "INSERT INTO %s (job, stream, at, lsn) VALUES ($1, "
	               "$2::integer, timestamptz 'epoch' + $3::bigint * "
	               "interval '1 microsecond', $4::bigint) ON CONFLICT "
	               "(job, stream, at) "
	               "DO UPDATE SET lsn = EXCLUDED.lsn",
	               table);
	for (size_t i = 0; i < b->nmarks && rc == DWS_OK; i++) {
		char sstream[16], stime[32], slsn[32];
		const char *params[4] = {w->s->job, sstream, stime, slsn};
		snprintf(sstream, sizeof sstream, "%u", b->marks[i].stream);
		snprintf(stime, sizeof stime, "%lld",
		         (long long) b->marks[i].time);
		snprintf(slsn, sizeof slsn, "%lld",
		         (long long) b->marks[i].lsn);
		rc = dws_exec(w, "recording a time mark", sql.data, 4, params,
		              NULL);
	}
	if (rc == DWS_OK && b->marks_before > 0) {
		char stime[32];
		const char *params[2] = {w->s->job, stime};
		snprintf(stime, sizeof stime, "%lld",
		         (long long) b->marks_before);
		dws_buf_reset(&sql);
		dws_buf_printf(&sql,
		               "DELETE FROM %s WHERE job = $1 AND at < "
		               "timestamptz 'epoch' + $2::bigint * interval "
		               "'1 microsecond'",
		               table);
		rc = dws_exec(w, "deleting old time marks", sql.data, 2, params,
		              NULL);
	}
	dws_buf_free(&sql);
	free(table);
	return rc;
}

/* Every mark of the stream, oldest first. */
dws_rc
dws_marks_list(dws_worker *w, uint32_t stream, syncd_mark_fn fn, void *ctx)
{
	char *table = dws_marks_table(w);
	char sstream[16];
	const char *params[2] = {w->s->job, sstream};
	dws_buf sql = {0};
	PGresult *r = NULL;
	dws_rc rc;

	if (!table)
		return DWS_FATAL;
	snprintf(sstream, sizeof sstream, "%u", stream);
	dws_buf_printf(&sql,
	               "SELECT (extract(epoch FROM at) * 1000000)::bigint, lsn "
	               "FROM %s WHERE job = $1 AND stream = $2::integer "
	               "ORDER BY at",
	               table);
	rc = dws_exec(w, "reading the time marks", sql.data, 2, params, &r);
	for (int i = 0; rc == DWS_OK && i < PQntuples(r); i++) {
		syncd_time_mark m = {
		    .stream = stream,
		    .time = strtoll(PQgetvalue(r, i, 0), NULL, 10),
		    .lsn = (syncd_lsn) strtoll(PQgetvalue(r, i, 1), NULL, 10)};
		if (fn(ctx, &m) != SYNCD_OK)
			break;
	}
	if (r)
		PQclear(r);
	dws_buf_free(&sql);
	free(table);
	return rc;
}

/* Sets the stream's progress back to lsn where it is above, and forgets
 * the marks above it, in one transaction. */
dws_rc
dws_progress_rewind(dws_worker *w, uint32_t stream, syncd_lsn lsn,
                    syncd_lsn *applied)
{
	const char *what = "setting the job's progress back";
	char *progress = dws_progress_table(w);
	char *marks = dws_marks_table(w);
	char sstream[16], slsn[32], text[32];
	const char *params[4] = {w->s->job, sstream, slsn, text};
	dws_buf sql = {0};
	PGresult *r = NULL;
	long n = 0;
	dws_rc rc;

	snprintf(sstream, sizeof sstream, "%u", stream);
	snprintf(slsn, sizeof slsn, "%lld", (long long) lsn);
	dws_lsn_text(text, sizeof text, lsn);
	*applied = 0;
	rc = dws_exec(w, what, "BEGIN", 0, NULL, NULL);
	if (rc != DWS_OK)
		goto done;
	dws_buf_printf(&sql,
	               "SELECT min(lsn) FROM %s WHERE job = $1 AND stream = "
	               "$2::integer",
	               progress);
	rc = dws_exec(w, what, sql.data, 2, params, &r);
	if (rc != DWS_OK)
		goto done;
	if (!PQgetisnull(r, 0, 0))
		*applied = (syncd_lsn) strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	r = NULL;
	dws_buf_reset(&sql);
	dws_buf_printf(&sql,
	               "UPDATE %s SET lsn = $3::bigint, lsn_text = $4, "
	               "updated_at = now() WHERE job = $1 AND stream = "
	               "$2::integer AND lsn > $3::bigint",
	               progress);
	rc = dws_exec(w, what, sql.data, 4, params, &r);
	if (rc != DWS_OK)
		goto done;
	n = atol(PQcmdTuples(r));
	dws_buf_reset(&sql);
	dws_buf_printf(&sql,
	               "DELETE FROM %s WHERE job = $1 AND stream = "
	               "$2::integer AND lsn > $3::bigint",
	               marks);
	rc = dws_exec(w, what, sql.data, 3, params, NULL);
	if (rc == DWS_OK)
		rc = dws_exec(w, what, "COMMIT", 0, NULL, NULL);
	if (rc == DWS_OK)
		SYNCD_LOG_INFO(w->s->host,
		               "stream %u: set the progress of %ld worker(s) "
		               "back to %s in %s.syncd_progress",
		               stream, n, text, w->s->state_schema);
done:
	if (r)
		PQclear(r);
	if (rc != DWS_OK && PQstatus(w->conn) == CONNECTION_OK)
		PQclear(PQexec(w->conn, "ROLLBACK"));
	dws_buf_free(&sql);
	free(progress);
	free(marks);
	return rc;
}
