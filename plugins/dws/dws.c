/*
 * dws.c - what dws_upsert and dws_copy share: their options, the sink's
 * state (create, destroy), its pre-check, and its workers (open, close).
 * The rest, bottom up: dialect.c (SQL), session.c (connections and
 * statements), progress.c (state.schema), deferred.c (keys built after a
 * copy), target.c (target tables as the destination sees them), fold.c
 * and apply.c (writing a batch), tables.c (checks and creation ahead of
 * the stream), full.c (the full phase).
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

#include "../common/pgdigest.h"
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
             "ones are only altered by schema.evolution",
     SYNCD_OPT_FIELD(dws_opts, auto_create_table)},
    {.name = "sink.verify.column-number",
     .type = SYNCD_OPT_BOOL,
     .default_value = "false",
     .help = "fail when a target table has a different number of columns "
             "than its source",
     SYNCD_OPT_FIELD(dws_opts, verify_column_number)},
    {.name = "schema.evolution",
     .type = SYNCD_OPT_ENUM,
     .default_value = "add",
     .choices = "add|none",
     .help = "add: target tables follow their source's columns while "
             "the job streams (columns added, types widened, dropped "
             "ones left to their default); none: a difference stops "
             "the job, naming the ALTER to run",
     SYNCD_OPT_FIELD(dws_opts, schema_evolution)},
    {.name = "sink.server.timezone",
     .type = SYNCD_OPT_STRING,
     .help = "time zone of the destination session: UTC+08:00 (eight hours "
             "east of UTC), +08:00, UTC, or an IANA name; default: this "
             "machine's local time zone",
     SYNCD_OPT_FIELD(dws_opts, server_timezone)},
    {.name = NULL}};

/* ---- the sink -------------------------------------------------------- */

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

	*state = NULL;
	if (!s)
		return SYNCD_FATAL;
	s->host = host;
	s->mode = mode;
	s->conninfo = o->conninfo;
	s->state_schema = o->state_schema;
	s->verify_columns = o->verify_column_number;
	s->evolve = !o->schema_evolution ||
	            strcmp(o->schema_evolution, "add") == 0;
	s->auto_create = o->auto_create_table;
	s->full = host->job->full;
	s->job = host->job->name;
	/* how keys are spread over workers: progress recorded under another
	 * layout is not per worker any more (see dws_applied_lsn) */
	s->layout = host->job->layout ? host->job->layout : "1/table";
	pthread_mutex_init(&s->lock, NULL);

	if (!s->state_schema || !*s->state_schema) {
		ERR(s, NULL, "state.schema may not be empty");
		goto fail;
	}
	tz = o->server_timezone;
	if (tz && *tz) {
		s->timezone_sql = dws_timezone_sql(tz, &err);
		if (!s->timezone_sql) {
			ERR(s, NULL, "%s", err ? err : "bad time zone");
			free(err);
			goto fail;
		}
	} else
		s->timezone_sql = dws_local_timezone();
	*state = s;
	return SYNCD_OK;
fail:
	/* the core destroys only what it created */
	dws_destroy(s);
	return SYNCD_FATAL;
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
	free(s->origin);
	free(s);
}

syncd_status
dws_check(void *state)
{
	dws_state *s = state;
	dws_worker *w = dws_admin(s);

	return w && dws_check_state(w) ? SYNCD_OK : SYNCD_FATAL;
}

/* ---- the source's origin, and a re-sync ---------------------------------
 *
 * Called from the main thread, with no worker writing the stream: on the
 * connection for checks, the state tables made first if missing (also
 * syncd_origin next to the tables of an earlier version).
 */

static syncd_status
dws_state_session(dws_state *s, uint32_t stream, dws_worker **w)
{
	syncd_status st;
	dws_rc rc;

	*w = NULL;
	if (stream >= SYNCD_MAX_STREAMS) {
		ERR(s, NULL, "stream %u is out of range (at most %u streams)",
		    stream, (unsigned) SYNCD_MAX_STREAMS);
		return SYNCD_FATAL;
	}
	st = dws_admin_open(s, w);
	if (st != SYNCD_OK)
		return st;
	rc = dws_state_ensure(*w);
	if (rc != DWS_OK)
		*w = NULL;
	return dws_status(rc);
}

syncd_status
dws_origin_get(void *state, uint32_t stream, const char **origin)
{
	dws_state *s = state;
	dws_worker *w;
	syncd_status st = dws_state_session(s, stream, &w);

	*origin = NULL;
	free(s->origin);
	s->origin = NULL;
	if (st != SYNCD_OK)
		return st;
	st = dws_status(dws_origin_read(w, stream, &s->origin));
	*origin = s->origin;
	return st;
}

syncd_status
dws_origin_set(void *state, uint32_t stream, const char *origin)
{
	dws_state *s = state;
	dws_worker *w;
	syncd_status st = dws_state_session(s, stream, &w);

	if (st != SYNCD_OK)
		return st;
	if (!origin || !*origin) {
		ERR(s, NULL,
		    "stream %u: an empty source origin cannot be "
		    "recorded",
		    stream);
		return SYNCD_FATAL;
	}
	return dws_status(dws_origin_write(w, stream, origin));
}

syncd_status
dws_forget(void *state, uint32_t stream)
{
	dws_state *s = state;
	dws_worker *w;
	syncd_status st = dws_state_session(s, stream, &w);

	if (st != SYNCD_OK)
		return st;
	return dws_status(dws_progress_forget(w, stream));
}

syncd_status
dws_marks(void *state, uint32_t stream, syncd_mark_fn fn, void *ctx)
{
	dws_state *s = state;
	dws_worker *w;
	syncd_status st = dws_state_session(s, stream, &w);

	if (st != SYNCD_OK)
		return st;
	return dws_status(dws_marks_list(w, stream, fn, ctx));
}

syncd_status
dws_rewind(void *state, uint32_t stream, syncd_lsn lsn, syncd_lsn *applied)
{
	dws_state *s = state;
	dws_worker *w;
	syncd_status st = dws_state_session(s, stream, &w);

	if (st != SYNCD_OK)
		return st;
	st = dws_status(dws_progress_rewind(w, stream, lsn, applied));
	pthread_mutex_lock(&s->lock);
	s->relayout_done[stream] = false;
	pthread_mutex_unlock(&s->lock);
	return st;
}

/* The sink operation digest() (syncd --verify): hashes of a target's key
 * ranges, on the session for checks (see plugins/common/pgdigest.h). */
syncd_status
dws_digest(void *state, const syncd_digest_request *req, syncd_digest_fn fn,
           void *ctx)
{
	dws_state *s = state;
	dws_worker *w;
	syncd_status st = dws_admin_open(s, &w);
	const syncd_relation *rel = req->rel;
	char err[1024];

	if (st != SYNCD_OK)
		return st;
	if (!rel->target_schema || !rel->target_table) {
		ERR(s, NULL, "table %s.%s has no target name", rel->schema,
		    rel->table);
		return SYNCD_FATAL;
	}
	err[0] = '\0';
	st = pgdigest_run(w->conn, rel->target_schema, rel->target_table, req,
	                  fn, ctx, err, sizeof err);
	if ((st == SYNCD_FATAL || st == SYNCD_RETRY) && err[0])
		ERR(s, NULL, "target table %s.%s: %s", rel->target_schema,
		    rel->target_table, err);
	return st;
}

/* The sink operation retire() (syncd --drop): the job's rows in the state
 * tables (progress, origins, finished chunks, deferred keys). The tables
 * themselves stay: other jobs may keep their state there too. */
syncd_status
dws_retire(void *state, bool apply, syncd_say_fn say, void *ctx)
{
	static const char *const tables[] = {"syncd_progress", "syncd_origin",
	                                     "syncd_copy", "syncd_ddl",
	                                     "syncd_marks"};
	dws_state *s = state;
	dws_worker *w;
	syncd_status st = dws_admin_open(s, &w);
	dws_rc rc;

	if (st != SYNCD_OK)
		return st;
	/* all or nothing */
	rc = dws_exec(w, "starting a transaction", "BEGIN", 0, NULL, NULL);
	if (rc != DWS_OK)
		return dws_status(rc);
	for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
		char *q = dws_qualified(w, s->state_schema, tables[i]);
		const char *params[2] = {q, s->job};
		dws_buf sql = {0};
		PGresult *r = NULL;
		bool exists = false;
		char line[512];

		if (!dws_bool_query(w, "looking up the job's state tables",
		                    "SELECT to_regclass($1) IS NOT NULL", 1,
		                    params, &exists)) {
			free(q);
			PQclear(PQexec(w->conn, "ROLLBACK"));
			return SYNCD_FATAL;
		}
		if (!exists) {
			free(q);
			continue;
		}
		dws_buf_printf(&sql, "%s %s WHERE job = $1",
		               apply ? "DELETE FROM" : "SELECT 1 FROM", q);
		rc = dws_exec(w, "reading the job's state", sql.data, 1,
		              params + 1, &r);
		dws_buf_free(&sql);
		if (rc != DWS_OK) {
			free(q);
			PQclear(PQexec(w->conn, "ROLLBACK"));
			return dws_status(rc);
		}
		if (apply)
			snprintf(line, sizeof line,
			         "destination: deleted %s row(s) of job %s from "
			         "%s",
			         PQcmdTuples(r), s->job, q);
		else
			snprintf(line, sizeof line,
			         "destination: %d row(s) of job %s in %s: "
			         "delete them",
			         PQntuples(r), s->job, q);
		PQclear(r);
		free(q);
		say(ctx, line);
	}
	rc = dws_exec(w, "committing", apply ? "COMMIT" : "ROLLBACK", 0, NULL,
	              NULL);
	return dws_status(rc);
}

/* ---- workers ----------------------------------------------------------- */

syncd_status
dws_open(void *state, int worker, void **wstate)
{
	dws_worker *w = NULL;
	syncd_status st = dws_session_open(state, worker, &w);
	dws_rc rc;

	*wstate = NULL;
	if (st != SYNCD_OK)
		return st;
	rc = dws_state_ensure(w);
	if (rc != DWS_OK) {
		dws_session_close(w);
		return dws_status(rc);
	}
	dws_session_announce(w);
	*wstate = w;
	return SYNCD_OK;
}

void
dws_close(void *wstate)
{
	dws_worker *w = wstate;

	if (!w)
		return;
	dws_targets_free(w);
	dws_session_close(w);
}
