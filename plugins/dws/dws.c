/*
 * dws.c - what dws_upsert and dws_copy share: options, connections and
 * session settings, the dialect, the destination's view of each target
 * table, the job's progress in state.schema, and the write of a batch
 * (fold per key, apply per table, record progress, commit: one destination
 * transaction per batch).
 */
#define _GNU_SOURCE /* asprintf */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "dws.h"

const syncd_option dws_options[] = {
    {.name = "conninfo",
     .type = SYNCD_OPT_STRING,
     .flags = SYNCD_OPT_REQUIRED,
     .help = "libpq connection string of the destination (no password: use "
             "PGPASSFILE, ~/.pgpass or PGPASSWORD)",
     SYNCD_OPT_FIELD(dws_opts, conninfo)},
    {.name = "state.schema",
     .type = SYNCD_OPT_STRING,
     .default_value = "syncd_meta",
     .help = "destination schema of the job's progress table "
             "syncd_progress (created if absent)",
     SYNCD_OPT_FIELD(dws_opts, state_schema)},
    {.name = "auto_create_table",
     .type = SYNCD_OPT_BOOL,
     .default_value = "true",
     .help = "create missing target tables at start (from the source: "
             "types, NOT NULL, primary key, indexes, comments); existing "
             "ones are never altered",
     SYNCD_OPT_FIELD(dws_opts, auto_create_table)},
    {.name = "sink.verify.column-number",
     .type = SYNCD_OPT_BOOL,
     .default_value = "false",
     .help = "fail when a target table has a different number of columns "
             "than its source",
     SYNCD_OPT_FIELD(dws_opts, verify_column_number)},
    {.name = "sink.server.timezone",
     .type = SYNCD_OPT_STRING,
     .help = "time zone of the destination session: UTC+08:00 (eight hours "
             "east of UTC), +08:00, UTC, or an IANA name; default: this "
             "machine's local time zone",
     SYNCD_OPT_FIELD(dws_opts, server_timezone)},
    {.name = NULL}};

/* ---- options --------------------------------------------------------------
 */

/* The machine's zone, as the reference's default "local time zone". */
static char *
dws_local_timezone(void)
{
	const char *tz = getenv("TZ");
	char link[PATH_MAX], *err = NULL, *sql = NULL;
	ssize_t n;

	if (tz && *tz) {
		sql = dws_timezone_sql(tz[0] == ':' ? tz + 1 : tz, &err);
		free(err);
		if (sql)
			return sql;
	}
	n = readlink("/etc/localtime", link, sizeof link - 1);
	if (n > 0) {
		const char *z;
		link[n] = '\0';
		z = strstr(link, "zoneinfo/");
		if (z) {
			sql = dws_timezone_sql(z + 9, &err);
			free(err);
			if (sql)
				return sql;
		}
	}
	{
		time_t now = time(NULL);
		struct tm tm;
		char off[48];
		long s;
		localtime_r(&now, &tm);
		s = tm.tm_gmtoff;
		snprintf(off, sizeof off, "%c%02ld:%02ld", s < 0 ? '-' : '+',
		         labs(s) / 3600, labs(s) % 3600 / 60);
		sql = dws_timezone_sql(off, &err);
		free(err);
	}
	return sql;
}

syncd_status
dws_create(const syncd_host *host, void **state, dws_mode mode)
{
	const dws_opts *o = host->options;
	dws_state *s = calloc(1, sizeof *s);
	const char *tz;
	char *err = NULL;

	if (!s)
		return SYNCD_FATAL;
	s->host = host;
	s->mode = mode;
	s->conninfo = o->conninfo;
	s->state_schema = o->state_schema;
	s->verify_columns = o->verify_column_number;
	s->auto_create = o->auto_create_table;
	s->full = host->job->full;
	s->job = host->job->name;
	/* how keys are spread over workers: progress recorded under another
	 * layout is not per worker any more (see dws_applied_lsn) */
	s->layout = host->job->layout ? host->job->layout : "1/table";
	pthread_mutex_init(&s->lock, NULL);
	*state = s;

	if (!s->state_schema || !*s->state_schema) {
		ERR(s, NULL, "state.schema may not be empty");
		return SYNCD_FATAL;
	}
	tz = o->server_timezone;
	if (tz && *tz) {
		s->timezone_sql = dws_timezone_sql(tz, &err);
		if (!s->timezone_sql) {
			ERR(s, NULL, "%s", err ? err : "bad time zone");
			free(err);
			return SYNCD_FATAL;
		}
	} else
		s->timezone_sql = dws_local_timezone();
	return SYNCD_OK;
}

void
dws_destroy(void *state)
{
	dws_state *s = state;
	if (!s)
		return;
	dws_close(s->admin);
	pthread_mutex_destroy(&s->lock);
	free(s->timezone_sql);
	free(s);
}

/* ---- statements and their errors ------------------------------------------
 */

static __thread char dws_err_sqlstate[6];
static __thread char dws_err_message[1024];

const char *
dws_last_sqlstate(void)
{
	return dws_err_sqlstate[0] ? dws_err_sqlstate : NULL;
}

const char *
dws_last_message(void)
{
	return dws_err_message;
}

static bool
dws_transient(const char *st)
{
	static const char *const codes[] = {"57P01", "57P02", "57P03", "40001",
	                                    "40P01", "53300", "55P03", NULL};
	if (!st)
		return false;
	if (strncmp(st, "08", 2) == 0)
		return true;
	for (size_t i = 0; codes[i]; i++)
		if (strcmp(st, codes[i]) == 0)
			return true;
	return false;
}

/* The fix for a failure with SQLSTATE st while doing `what`. */
static const char *
dws_hint(const char *st, const char *what)
{
	if (!st)
		return "";
	if (strcmp(st, "42501") == 0 && strstr(what, "creating target table"))
		return "; grant the destination user CREATE on the target "
		       "schema (automatic table creation), or create the "
		       "table yourself and set auto_create_table = false";
	if (strcmp(st, "42501") == 0 && strstr(what, "staging table"))
		return "; grant the destination user TEMPORARY on the "
		       "destination database (staging tables are temporary)";
	if (strcmp(st, "42501") == 0 && strstr(what, "state.schema"))
		return "; grant the destination user CREATE on the "
		       "destination database (for state.schema) or on "
		       "state.schema itself";
	if (strcmp(st, "42P01") == 0)
		return "; create the target table (its schema, columns and "
		       "primary key as at the source)";
	if (strcmp(st, "42P10") == 0)
		return "; give the target table the source's primary key";
	if (strcmp(st, "42501") == 0)
		return "; grant the destination user INSERT, SELECT, UPDATE "
		       "and "
		       "DELETE on the target tables and CREATE on state.schema";
	if (strcmp(st, "3F000") == 0)
		return "; create the schema first (schemas are never created "
		       "for target tables)";
	return "";
}

dws_rc
dws_result_error(dws_worker *w, const char *what, PGresult *r)
{
	dws_state *s = w->s;
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg =
	    r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail =
	    r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
	char conn_msg[512];
	dws_rc rc;

	snprintf(dws_err_sqlstate, sizeof dws_err_sqlstate, "%s", st ? st : "");
	if (!msg) {
		snprintf(conn_msg, sizeof conn_msg, "%s",
		         PQerrorMessage(w->conn));
		conn_msg[strcspn(conn_msg, "\n")] = '\0';
		msg = conn_msg[0] ? conn_msg : "(no message)";
	}
	if (PQstatus(w->conn) == CONNECTION_BAD || dws_transient(st)) {
		ERR(s, st, "worker %d lost the destination while %s: %s", w->id,
		    what, msg);
		rc = DWS_RETRY;
	} else if (st &&
	           (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0 ||
	            strcmp(st, "42804") == 0)) {
		snprintf(dws_err_message, sizeof dws_err_message, "%s%s%s", msg,
		         detail ? " " : "", detail ? detail : "");
		ERR(s, st, "%s: %s", what, dws_err_message);
		rc = DWS_DATA;
	} else {
		ERR(s, st, "%s failed%s%s: %s%s%s%s%s", what,
		    st ? " with SQLSTATE " : "", st ? st : "", msg,
		    detail ? " (" : "", detail ? detail : "", detail ? ")" : "",
		    dws_hint(st, what));
		rc = DWS_FATAL;
	}
	if (r)
		PQclear(r);
	return rc;
}

dws_rc
dws_exec(dws_worker *w, const char *what, const char *sql, int nparams,
         const char *const *params, PGresult **keep)
{
	PGresult *r;
	ExecStatusType st;

	SYNCD_LOG_DEBUG(w->s->host, "worker %d: %.300s", w->id, sql);
	if (nparams || keep)
		r = PQexecParams(w->conn, sql, nparams, NULL, params, NULL,
		                 NULL, 0);
	else
		r = PQexec(w->conn, sql);
	st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		if (keep)
			*keep = r;
		else
			PQclear(r);
		return DWS_OK;
	}
	return dws_result_error(w, what, r);
}

static syncd_status
dws_status(dws_rc rc)
{
	switch (rc) {
	case DWS_OK: return SYNCD_OK;
	case DWS_RETRY: return SYNCD_RETRY;
	default: return SYNCD_FATAL;
	}
}

/* ---- the progress table ----------------------------------------------------
 */

static char *
dws_progress_table(dws_worker *w)
{
	return dws_qualified(w, w->s->state_schema, "syncd_progress");
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
done:
	if (r)
		PQclear(r);
	dws_buf_free(&sql);
	free(table);
	return rc;
}

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
	    "stream %u: the progress was recorded with another concurrency or "
	    "keyby mode; every worker resumes from the smallest "
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

/* ---- connections ------------------------------------------------------------
 */

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
dws_close(void *wstate)
{
	dws_worker *w = wstate;
	if (!w)
		return;
	while (w->targets) {
		dws_target *n = w->targets->next;
		dws_free_target(w->targets);
		w->targets = n;
	}
	if (w->conn)
		PQfinish(w->conn);
	dws_arena_reset(&w->arena);
	dws_buf_free(&w->sql);
	dws_buf_free(&w->data);
	free(w->careful);
	free(w);
}

syncd_status
dws_open(void *state, int worker, void **wstate)
{
	return dws_connect(state, worker, true, wstate);
}

/* Server notices ("relation ... already exists, skipping") are for
 * debugging, not for the job's log. */
static void
dws_notice(void *arg, const char *message)
{
	dws_state *s = arg;
	SYNCD_LOG_DEBUG(s->host, "destination notice: %.*s",
	                (int) strcspn(message, "\n"), message);
}

/* session_replication_role = replica, as PostgreSQL's apply worker runs:
 * foreign keys (a parallel copy and parallel workers write children before
 * parents) and ordinary triggers (which would rewrite replicated values)
 * of the target tables do not fire. Only a superuser, or on PostgreSQL 15
 * a role granted SET on the parameter, may set it: the attempt says. */
static dws_rc
dws_replica_role(dws_worker *w)
{
	dws_state *s = w->s;
	PGresult *r = PQexec(w->conn, "SET session_replication_role = replica");
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	bool first;

	PQclear(r);
	if (PQstatus(w->conn) != CONNECTION_OK)
		return dws_result_error(w, "setting up the destination session",
		                        NULL);
	pthread_mutex_lock(&s->lock);
	first = !s->replica_known;
	s->replica_known = true;
	s->replica = ok;
	pthread_mutex_unlock(&s->lock);
	if (first && ok)
		SYNCD_LOG_INFO(
		    s->host,
		    "destination sessions run with session_replication_role = "
		    "replica, as PostgreSQL's own apply worker does: foreign "
		    "keys and ordinary triggers of the target tables do not "
		    "fire (rows come in parallel, and replicated values are "
		    "kept as the source wrote them)");
	return DWS_OK;
}

/* A connection with the job's session settings; with_state: the progress
 * table is created if missing (never for --check). */
syncd_status
dws_connect(dws_state *s, int worker, bool with_state, void **wstate)
{
	dws_worker *w = calloc(1, sizeof *w);
	const char *keys[] = {"dbname", "fallback_application_name", NULL};
	const char *vals[] = {s->conninfo, "syncd", NULL};
	PGresult *r = NULL;
	dws_rc rc;

	*wstate = NULL;
	if (!w)
		return SYNCD_FATAL;
	w->s = s;
	w->id = worker;
	w->conn = PQconnectdbParams(keys, vals, 1);
	if (!w->conn || PQstatus(w->conn) != CONNECTION_OK) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s",
		         w->conn ? PQerrorMessage(w->conn) : "out of memory");
		msg[strcspn(msg, "\n")] = '\0';
		if (strstr(msg, "SASL") || strstr(msg, "authentication method"))
			ERR(s, "08001",
			    "could not connect to the destination: %s; if the "
			    "destination is GaussDB(DWS), set "
			    "password_encryption_type = 1 there (MD5 and "
			    "SHA-256) and set the user's password again, so "
			    "that libpq can authenticate",
			    msg);
		else
			ERR(s, "08001",
			    "could not connect to the destination: %s; check "
			    "[sink] conninfo",
			    msg);
		dws_close(w);
		return SYNCD_RETRY;
	}
	PQsetNoticeProcessor(w->conn, dws_notice, s);
	rc = dws_exec(w, "reading the destination's version",
	              "SELECT pg_catalog.version()", 0, NULL, &r);
	if (rc != DWS_OK)
		goto fail;
	w->dialect = dws_dialect_for(PQgetvalue(r, 0, 0));
	PQclear(r);
	/* durable before confirmed, whatever the server's default; values
	 * read back (unchanged TOAST of moved rows) in the forms the source
	 * sends */
	rc = dws_exec(w, "setting up the destination session",
	              "SET synchronous_commit = on; SET client_encoding = "
	              "'UTF8'; SET DateStyle = 'ISO'; SET IntervalStyle = "
	              "'postgres'; SET extra_float_digits = 3; SET "
	              "bytea_output = 'hex'",
	              0, NULL, NULL);
	if (rc == DWS_OK && w->dialect->session_sql)
		rc = dws_exec(w, "setting up the destination session",
		              w->dialect->session_sql, 0, NULL, NULL);
	if (rc == DWS_OK && s->timezone_sql) {
		rc = dws_exec(w, "setting sink.server.timezone",
		              s->timezone_sql, 0, NULL, NULL);
		if (rc == DWS_FATAL)
			ERR(s, NULL,
			    "the destination refused sink.server.timezone "
			    "(%s); "
			    "use UTC+08:00, -05:30, UTC or an IANA name it "
			    "knows",
			    s->timezone_sql);
	}
	if (rc != DWS_OK)
		goto fail;
	rc = dws_replica_role(w);
	if (rc != DWS_OK)
		goto fail;
	pthread_mutex_lock(&s->lock);
	if (with_state && !s->state_ready) {
		rc = dws_state_prepare(w);
		s->state_ready = rc == DWS_OK;
	}
	pthread_mutex_unlock(&s->lock);
	if (rc != DWS_OK)
		goto fail;
	if (worker <= 0)
		SYNCD_LOG_INFO(s->host, "destination is %s (%s mode)",
		               w->dialect->name,
		               s->mode == DWS_MODE_COPY ? "copy" : "upsert");
	*wstate = w;
	return SYNCD_OK;
fail:
	dws_close(w);
	return dws_status(rc);
}

syncd_status
dws_check(void *state)
{
	dws_state *s = state;
	dws_worker *w = dws_admin(s);

	return w && dws_check_state(w) ? SYNCD_OK : SYNCD_FATAL;
}

/* ---- target tables --------------------------------------------------------
 */

char *
dws_quote(dws_worker *w, const char *name)
{
	char *q = PQescapeIdentifier(w->conn, name, strlen(name));
	char *c = q ? strdup(q) : NULL;
	PQfreemem(q);
	if (!c)
		abort();
	return c;
}

char *
dws_qualified(dws_worker *w, const char *schema, const char *table)
{
	char *qs = dws_quote(w, schema), *qt = dws_quote(w, table), *q;
	if (asprintf(&q, "%s.%s", qs, qt) < 0)
		abort();
	free(qs);
	free(qt);
	return q;
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

/* ON CONFLICT (key) needs a unique index on exactly the source's key (or,
 * for a table created for the full phase, its primary key waiting in
 * syncd_ddl until its copy is done). */
static bool
dws_key_matches(dws_worker *w, dws_target *t, const syncd_relation *rel,
                const char *src, dws_rc *rc)
{
	bool pending = false;
	const char *params[1] = {t->qtable};
	PGresult *r = NULL;
	bool found = false;
	dws_buf keys = {0};

	*rc =
	    dws_exec(w, "reading the target table's unique indexes",
	             "SELECT i.indexrelid, a.attname FROM pg_catalog.pg_index "
	             "i JOIN pg_catalog.pg_attribute a ON a.attrelid = "
	             "i.indrelid AND a.attnum = ANY (i.indkey) WHERE "
	             "i.indrelid = $1::regclass AND i.indisunique AND "
	             "i.indexprs IS NULL AND i.indpred IS NULL ORDER BY 1",
	             1, params, &r);
	if (*rc != DWS_OK)
		return false;
	for (int k = 0; k < PQntuples(r) && !found;) {
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
		found = n == t->nkeys && hits == t->nkeys;
	}
	PQclear(r);
	if (found)
		return true;
	*rc =
	    dws_ddl_pending(w, rel->target_schema, rel->target_table, &pending);
	if (*rc != DWS_OK || pending)
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
