/*
 * plugins/pgoutput/conn.c - connections, queries and the server checks: the
 * time, the failure of a database, libpq connections and queries, a string
 * builder, the checks of the server and of the replication connection.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pgo.h"

int64_t
pgo_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Microseconds since PostgreSQL's epoch, for status updates. */
int64_t
pgo_now_pg(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000 -
	       PGO_EPOCH_OFFSET_US;
}

/* Records why this database failed; the operation that fails reports it
 * (pgo_report). */
bool
pgo_fail(pgo_db *db, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (db->err[0])
		return false; /* the first reason wins */
	va_start(ap, fmt);
	vsnprintf(db->err, sizeof db->err, fmt, ap);
	va_end(ap);
	n = strlen(db->err);
	while (n > 0 && (db->err[n - 1] == '\n' || db->err[n - 1] == ' '))
		db->err[--n] = '\0';
	snprintf(db->sqlstate, sizeof db->sqlstate, "%s",
	         sqlstate ? sqlstate : "");
	return false;
}

const char *
pgo_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return s && *s ? s : NULL;
}

/* The sessions' fallback_application_name, "syncd_JOB": it tells this
 * job's walsender apart from anyone else's (see pgo_slot); an
 * application_name in conninfo wins. */
const char *
pgo_app_name(pgo *s)
{
	if (!s->app_name[0])
		snprintf(s->app_name, sizeof s->app_name, "syncd_%s",
		         s->host->job->name);
	return s->app_name;
}

/* A failure the server or the network may take back: the connection was
 * lost or refused (08), the server ended the session at its shutdown or
 * an administrator's request (57P01), or is starting or stopping (57P02,
 * 57P03). */
bool
pgo_transient(const char *sqlstate)
{
	return sqlstate && (strncmp(sqlstate, "08", 2) == 0 ||
	                    strcmp(sqlstate, "57P01") == 0 ||
	                    strcmp(sqlstate, "57P02") == 0 ||
	                    strcmp(sqlstate, "57P03") == 0);
}

/*
 * Whether the stream (or START_REPLICATION) failed because the slot can no
 * longer stream: the WAL it needs was removed (58P01, "requested WAL
 * segment ... has already been removed") or it was invalidated (55000,
 * "can no longer get changes from replication slot", "cannot read from
 * logical replication slot"; in another language the server is asked).
 * Not a failure of the job: the stream is reopened, and open() reports
 * the slot lost (syncd_position.lost) for the core to decide.
 */
bool
pgo_slot_gone(pgo_db *db)
{
	if (strcmp(db->sqlstate, "58P01") == 0)
		return true;
	if (strcmp(db->sqlstate, "55000") != 0)
		return false;
	if (strstr(db->err, "can no longer get changes from replication") ||
	    strstr(db->err, "cannot read from logical replication slot") ||
	    strstr(db->err, "has been invalidated"))
		return true;
	return db->sql && PQstatus(db->sql) == CONNECTION_OK &&
	       pgo_slot_lost(db, db->sql);
}

/* The SQLSTATE of a failed command: the server's, else 08006 when the
 * connection is gone (closed without a result). */
const char *
pgo_failure_state(PGconn *c, const PGresult *res)
{
	const char *st = pgo_sqlstate(res);

	if (st)
		return st;
	return !c || PQstatus(c) != CONNECTION_OK ? "08006" : NULL;
}

PGconn *
pgo_connect(pgo_db *db, bool replication)
{
	return pgo_connect_within(db, replication, NULL);
}

/* pgo_connect with a default connect_timeout (seconds; NULL: libpq's);
 * one in conninfo wins (it comes later). */
PGconn *
pgo_connect_within(pgo_db *db, bool replication, const char *timeout)
{
	const char *keys[] = {
	    "connect_timeout",           "dbname", "dbname", "replication",
	    "fallback_application_name", NULL};
	const char *vals[] = {timeout,
	                      db->src->conninfo ? db->src->conninfo : "",
	                      db->dbname,
	                      replication ? "database" : NULL,
	                      pgo_app_name(db->src),
	                      NULL};
	PGconn *c;
	const char *msg;

	if (!replication) {
		keys[3] = "fallback_application_name";
		vals[3] = pgo_app_name(db->src);
		keys[4] = NULL;
		vals[4] = NULL;
	}
	c = PQconnectdbParams(keys, vals, 1);
	pgo_notices(db->src, c);
	if (PQstatus(c) != CONNECTION_OK) {
		/* libpq gives no SQLSTATE here: a server starting or stopping
		 * says so in its message, anything else counts as refused */
		msg = PQerrorMessage(c);
		pgo_fail(db,
		         strstr(msg, "is starting up") ||
		                 strstr(msg, "is shutting down") ||
		                 strstr(msg, "not yet accepting connections") ||
		                 strstr(msg, "in recovery mode")
		             ? "57P03"
		             : "08001",
		         "could not connect to source database \"%s\"%s: %s",
		         db->dbname, replication ? " for replication" : "",
		         PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	if (!db->host && PQhost(c))
		db->host = strdup(PQhost(c));
	return c;
}

/* The server's notices and warnings go through the host's log, like
 * every other line: libpq's default writes them to stderr, where they
 * would break a JSON log and the full phase's display. */
static void
pgo_notice(void *arg, const char *message)
{
	pgo *s = arg;
	int len = (int) strcspn(message, "\n");

	if (strncmp(message, "WARNING", 7) == 0)
		SYNCD_LOG_WARNING(s->host, "source %.*s", len, message);
	else
		SYNCD_LOG_DEBUG(s->host, "source %.*s", len, message);
}

void
pgo_notices(pgo *s, PGconn *c)
{
	if (c)
		PQsetNoticeProcessor(c, pgo_notice, s);
}

/* Runs a query with text parameters; NULL (and the failure recorded) on
 * error. */
PGresult *
pgo_query(pgo_db *db, PGconn *c, const char *what, const char *sql, int nparams,
          const char *const *params)
{
	PGresult *res =
	    PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		pgo_fail(db, pgo_failure_state(c, res),
		         "%s in database \"%s\" failed: %s", what, db->dbname,
		         PQerrorMessage(c));
		PQclear(res);
		return NULL;
	}
	return res;
}

char *
pgo_ident(PGconn *c, const char *name)
{
	char *q = PQescapeIdentifier(c, name, strlen(name));
	char *s = q ? strdup(q) : NULL;
	PQfreemem(q);
	return s;
}

void
pgo_sb_printf(pgo_sb *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (b->len + (size_t) n + 1 > b->cap) {
		b->cap = (b->len + (size_t) n + 1) * 2;
		b->data = realloc(b->data, b->cap);
	}
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t) n;
}

uint64_t
pgo_parse_lsn(const char *s)
{
	unsigned hi = 0, lo = 0;
	if (!s || sscanf(s, "%X/%X", &hi, &lo) != 2)
		return 0;
	return ((uint64_t) hi << 32) | lo;
}

/* IDENTIFY_SYSTEM: the replication connection is to the right database
 * of the server the SQL connection reads (they could differ behind a
 * pooler or a load balancer). */
bool
pgo_identify(pgo_db *db)
{
	pgo *s = db->src;
	PGresult *res = PQexec(db->repl, "IDENTIFY_SYSTEM");
	PGresult *sys;
	bool ok = true;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    PQnfields(res) < 4) {
		pgo_fail(db, pgo_failure_state(db->repl, res),
		         "IDENTIFY_SYSTEM failed on database "
		         "\"%s\": %s",
		         db->dbname, PQerrorMessage(db->repl));
		PQclear(res);
		return false;
	}
	if (strcmp(PQgetvalue(res, 0, 3), db->dbname) != 0)
		ok = pgo_fail(db, NULL,
		              "the replication connection for database "
		              "\"%s\" reached database \"%s\"; check conninfo",
		              db->dbname, PQgetvalue(res, 0, 3));
	sys = ok ? pgo_query(db, db->sql, "reading the system identifier",
	                     "SELECT system_identifier::text FROM "
	                     "pg_control_system()",
	                     0, NULL)
	         : NULL;
	if (sys && strcmp(PQgetvalue(sys, 0, 0), PQgetvalue(res, 0, 0)) != 0)
		ok = pgo_fail(db, NULL,
		              "the SQL and the replication connections "
		              "of database \"%s\" reached different servers "
		              "(system %s and %s); connect both to the primary",
		              db->dbname, PQgetvalue(sys, 0, 0),
		              PQgetvalue(res, 0, 0));
	else if (sys) {
		/* syncd_position.origin: the same for every connection to
		 * this server until a promotion starts a new timeline */
		snprintf(db->origin, sizeof db->origin,
		         "system %s, timeline %s", PQgetvalue(res, 0, 0),
		         PQgetvalue(res, 0, 1));
		SYNCD_LOG_DEBUG(
		    s->host,
		    "database \"%s\": system %s, timeline %s, WAL at %s",
		    db->dbname, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
		    PQgetvalue(res, 0, 2));
	} else
		ok = false;
	PQclear(sys);
	PQclear(res);
	return ok;
}

bool
pgo_server_checks(pgo_db *db, bool *problems)
{
	pgo *s = db->src;
	PGresult *res =
	    pgo_query(db, db->sql, "checking the server",
	              "SELECT current_setting('server_version_num')::int,"
	              " current_setting('wal_level'), "
	              " (SELECT rolreplication OR rolsuper FROM pg_roles "
	              "  WHERE rolname = current_user)",
	              0, NULL);
	bool ok = true;

	if (!res)
		return false;
	db->version = atoi(PQgetvalue(res, 0, 0));
	if (db->version < 100000) {
		SYNCD_LOG_ERROR(
		    s->host,
		    "database \"%s\": PostgreSQL %d is too old; syncd needs "
		    "10 or later (pgoutput)",
		    db->dbname, db->version / 10000);
		ok = false;
	}
	if (s->stream && strcmp(PQgetvalue(res, 0, 1), "logical") != 0) {
		SYNCD_LOG_ERROR(
		    s->host,
		    "database \"%s\": wal_level is %s; set wal_level = "
		    "logical in postgresql.conf and restart the server",
		    db->dbname, PQgetvalue(res, 0, 1));
		ok = false;
	}
	if (s->stream && strcmp(PQgetvalue(res, 0, 2), "t") != 0) {
		SYNCD_LOG_ERROR(
		    s->host,
		    "database \"%s\": the user has neither REPLICATION nor "
		    "superuser; run ALTER ROLE ... REPLICATION",
		    db->dbname);
		ok = false;
	}
	PQclear(res);
	/* pgoutput: 1 on 10-13, 2 (streaming of large transactions) on 14+ */
	db->proto = db->version >= 140000 ? 2 : 1;
	/* again at each open(): what an earlier connection left goes */
	pgo_decoder_free(&db->dec);
	pgo_decoder_free(&db->replay);
	pgo_decoder_init(&db->dec, db->proto);
	pgo_decoder_init(&db->replay, db->proto);
	db->replay.in_stream = true;
	if (!ok) {
		*problems = true;
		return pgo_fail(db, NULL,
		                "the source server is not ready (see above)");
	}
	return true;
}

void
pgo_close(pgo_db *db)
{
	if (db->repl)
		PQfinish(db->repl);
	if (db->sql)
		PQfinish(db->sql);
	db->repl = db->sql = NULL;
}
