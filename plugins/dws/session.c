/*
 * session.c - one destination connection of the DWS sinks (a worker, a
 * copy session or the connection for checks): connecting with the job's
 * session settings (encoding, date and interval styles, time zone,
 * session_replication_role), running statements, classifying their errors
 * (data, transient, fatal, with the fix), and quoting names.
 */
#define _GNU_SOURCE /* asprintf */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dws.h"

/* ---- statements and their errors ---------------------------------------- */

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
		       "for target tables), or route the tables to schemas "
		       "that exist with [sink] target.schema (for instance "
		       "#{source_schema_name})";
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

bool
dws_bool_query(dws_worker *w, const char *what, const char *sql, int n,
               const char *const *params, bool *out)
{
	PGresult *r = NULL;
	if (dws_exec(w, what, sql, n, params, &r) != DWS_OK)
		return false;
	*out = PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) &&
	       PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return true;
}

syncd_status
dws_status(dws_rc rc)
{
	switch (rc) {
	case DWS_OK: return SYNCD_OK;
	case DWS_RETRY: return SYNCD_RETRY;
	default: return SYNCD_FATAL;
	}
}

/* ---- connections -------------------------------------------------------- */

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

syncd_status
dws_session_open(dws_state *s, int worker, dws_worker **wstate)
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
		dws_session_close(w);
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
	*wstate = w;
	return SYNCD_OK;
fail:
	dws_session_close(w);
	return dws_status(rc);
}

void
dws_session_close(dws_worker *w)
{
	if (!w)
		return;
	if (w->conn)
		PQfinish(w->conn);
	dws_arena_reset(&w->arena);
	dws_buf_free(&w->sql);
	dws_buf_free(&w->data);
	free(w->careful);
	free(w);
}

void
dws_session_announce(const dws_worker *w)
{
	const dws_state *s = w->s;

	if (w->id <= 0)
		SYNCD_LOG_INFO(s->host, "destination is %s (%s mode)",
		               w->dialect->name,
		               s->mode == DWS_MODE_COPY ? "copy" : "upsert");
}

/* ---- names -------------------------------------------------------------- */

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
