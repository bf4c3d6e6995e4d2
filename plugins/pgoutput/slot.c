/*
 * plugins/pgoutput/slot.c - the replication slot: its name, its checks, its
 * creation.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgo.h"

static bool pgo_slot_once(pgo_db *db, bool apply, bool *problems,
                          uint64_t *confirmed, bool *created, bool may_wait);

char *
pgo_slot_name(pgo *s, uint32_t stream, const char *dbname)
{
	const char *job = s->host->job->name;
	char buf[256];
	size_t n;

	if (s->custom_slot)
		return strdup(s->custom_slot);
	if (s->sharded) /* the stream is the name: see pgo_discover */
		snprintf(buf, sizeof buf, "syncd_%s_shard%u", job, stream);
	else if (s->ndbs == 1)
		snprintf(buf, sizeof buf, "syncd_%s", job);
	else
		snprintf(buf, sizeof buf, "syncd_%s_%s", job, dbname);
	/* slot names are [a-z0-9_], at most 63 */
	for (char *p = buf; *p; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char) (*p - 'A' + 'a');
		else if (!((*p >= 'a' && *p <= 'z') ||
		           (*p >= '0' && *p <= '9')))
			*p = '_';
	}
	n = strlen(buf);
	if (n > 63) {
		/* keep it unique: a hash of the whole name at the end */
		unsigned h = 5381;
		for (size_t i = 0; i < n; i++)
			h = h * 33 + (unsigned char) buf[i];
		snprintf(buf + 54, sizeof buf - 54, "_%08x", h);
	}
	return strdup(buf);
}

/* One query's first value as a number; -1 when it has none (no row or
 * NULL), -2 when it fails (logged). */
static long long
pgo_slot_num(pgo_db *db, const char *sql, int nparams,
             const char *const *params)
{
	PGresult *res =
	    PQexecParams(db->sql, sql, nparams, NULL, params, NULL, NULL, 0);
	long long v = -2;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		SYNCD_LOG_WARNING(db->src->host, "database \"%s\": %s",
		                  db->dbname, PQerrorMessage(db->sql));
	else if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0))
		v = -1;
	else
		v = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return v;
}

/*
 * The slot is active for PID pid. When that is a walsender of this job
 * (its application_name is this job's, see pgo_app_name) whose client has
 * not answered for longer than a status interval, its syncd is gone (a
 * kill -9, an OOM kill, a lost host): it is ended with pg_terminate_backend
 * when the role may, and otherwise waited for until the server's
 * wal_sender_timeout ends it (plus 10 s). A walsender whose client still
 * answers is another syncd of this job: waited for as long, then refused.
 * True when the slot is free; false leaves the pre-check failure.
 */
static bool
pgo_slot_wait(pgo_db *db, const char *pid)
{
	pgo *s = db->src;
	const char *app =
	    db->repl ? PQparameterStatus(db->repl, "application_name") : NULL;
	const char *params[] = {pid, db->slot};
	PGresult *res;
	long long wst, age;
	int64_t started, deadline;
	bool ours, tried = false, killed = false;

	if (!app || !*app)
		app = pgo_app_name(s);
	res = PQexecParams(db->sql,
	                   "SELECT application_name, backend_type FROM "
	                   "pg_stat_activity WHERE pid = $1::int",
	                   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		return false;
	}
	if (PQntuples(res) == 0) { /* gone already */
		PQclear(res);
		return true;
	}
	ours = strncmp(PQgetvalue(res, 0, 0), app, 63) == 0 &&
	       strcmp(PQgetvalue(res, 0, 1), "walsender") == 0;
	PQclear(res);
	if (!ours)
		return false;
	wst = pgo_slot_num(db,
	                   "SELECT (EXTRACT(epoch FROM current_setting("
	                   "'wal_sender_timeout')::interval) * 1000)::bigint",
	                   0, NULL);
	if (wst < 0)
		wst = 0;
	/* wal_sender_timeout = 0: the server never ends it; wait only to
	 * see whether its client answers */
	started = pgo_now_ms();
	deadline = started + (wst ? wst : s->status_ms) + 10000;
	SYNCD_LOG_WARNING(
	    s->host,
	    "database \"%s\": replication slot %s is still active for PID "
	    "%s, an earlier walsender of this job (application_name %s) "
	    "whose syncd connection is gone or going; ending it, or waiting "
	    "for it to end (at most %lld s: wal_sender_timeout + 10 s)",
	    db->dbname, db->slot, pid, app,
	    (long long) (deadline - pgo_now_ms()) / 1000);
	for (;;) {
		long long holder = pgo_slot_num(
		    db,
		    "SELECT active_pid FROM pg_replication_slots WHERE "
		    "slot_name = $2 AND $1::int IS NOT NULL",
		    2, params);
		if (holder == -2)
			return false;
		if (holder == -1 || holder != atoll(pid)) {
			SYNCD_LOG_INFO(s->host,
			               "database \"%s\": replication slot %s "
			               "is free",
			               db->dbname, db->slot);
			return true;
		}
		age = db->version >= 120000
		          ? pgo_slot_num(
		                db,
		                "SELECT (EXTRACT(epoch FROM now() - "
		                "reply_time) * 1000)::bigint FROM "
		                "pg_stat_replication WHERE pid = $1::int "
		                "AND $2::text IS NOT NULL",
		                2, params)
		          : -1;
		if (!tried && (age < 0 || age >= s->status_ms + 5000)) {
			/* its client has been silent for longer than it
			 * would be alive: no one reads this slot */
			tried = true;
			res = PQexecParams(
			    db->sql, "SELECT pg_terminate_backend($1::int)", 1,
			    NULL, params, NULL, NULL, 0);
			killed = PQresultStatus(res) == PGRES_TUPLES_OK;
			if (killed)
				SYNCD_LOG_INFO(s->host,
				               "database \"%s\": ended PID %s "
				               "(pg_terminate_backend)",
				               db->dbname, pid);
			else
				SYNCD_LOG_INFO(
				    s->host,
				    "database \"%s\": could not end PID %s "
				    "(%s); waiting for wal_sender_timeout",
				    db->dbname, pid,
				    pgo_sqlstate(res) ? pgo_sqlstate(res)
				                      : "?");
			PQclear(res);
			if (!killed && !wst)
				return false;
		}
		if (age >= 0 && age < s->status_ms + 5000 &&
		    pgo_now_ms() - started > s->status_ms + 6000) {
			/* it answered all along: another syncd of this job
			 * reads the slot, not a dead one's walsender */
			SYNCD_LOG_ERROR(s->host,
			                "database \"%s\": the client of PID %s "
			                "still answers: another syncd of job "
			                "\"%s\" is running",
			                db->dbname, pid, s->host->job->name);
			return false;
		}
		if (pgo_now_ms() >= deadline)
			return false;
		usleep(500 * 1000);
	}
}

/* The columns that tell an invalidated slot, for pgo_lost_why: wal_status,
 * restart_lsn IS NULL, the reason (invalidation_reason on 17+, conflicting
 * on 16) and max_slot_wal_keep_size. */
static const char *
pgo_lost_cols(pgo_db *db)
{
	if (db->version >= 170000)
		return "wal_status, restart_lsn IS NULL, invalidation_reason, "
		       "current_setting('max_slot_wal_keep_size')";
	if (db->version >= 160000)
		return "wal_status, restart_lsn IS NULL, CASE WHEN conflicting "
		       "THEN 'conflict' END, "
		       "current_setting('max_slot_wal_keep_size')";
	if (db->version >= 130000)
		return "wal_status, restart_lsn IS NULL, NULL::text, "
		       "current_setting('max_slot_wal_keep_size')";
	return "'reserved'::text, false, NULL::text, NULL::text";
}

/*
 * Whether the slot `slot` whose pgo_lost_cols are the columns from `at` of
 * res's first row can no longer stream: invalidated (wal_status = lost, a
 * reason, or no restart position while nobody holds it; 'unreserved' can
 * still stream). Then why in out: "replication slot NAME was invalidated:
 * ...".
 */
static bool
pgo_lost_why(const char *slot, const PGresult *res, int at, bool active,
             char *out, size_t n)
{
	const char *status = PQgetvalue(res, 0, at);
	bool no_restart = strcmp(PQgetvalue(res, 0, at + 1), "t") == 0;
	const char *reason =
	    PQgetisnull(res, 0, at + 2) ? NULL : PQgetvalue(res, 0, at + 2);
	const char *keep =
	    PQgetisnull(res, 0, at + 3) ? NULL : PQgetvalue(res, 0, at + 3);
	char buf[160];
	const char *why = buf;

	if (!reason && strcmp(status, "lost") != 0 && !(no_restart && !active))
		return false;
	if (!reason || strcmp(reason, "wal_removed") == 0) {
		if (keep)
			snprintf(buf, sizeof buf,
			         "the WAL it needed was removed "
			         "(max_slot_wal_keep_size = %s)",
			         keep);
		else
			why = "the WAL it needed was removed";
	} else if (strcmp(reason, "rows_removed") == 0) {
		why = "catalog rows it needed were removed (a conflict with "
		      "recovery on a standby)";
	} else if (strcmp(reason, "wal_level_insufficient") == 0) {
		why = "wal_level on the primary is below logical";
	} else if (strcmp(reason, "idle_timeout") == 0) {
		why = "it was inactive for longer than "
		      "idle_replication_slot_timeout";
	} else if (strcmp(reason, "conflict") == 0) {
		why = "it conflicted with recovery on a standby (catalog rows "
		      "it needed were removed, or wal_level on the primary is "
		      "below logical)";
	} else {
		snprintf(buf, sizeof buf, "invalidation_reason = %s", reason);
	}
	snprintf(out, n, "replication slot %s was invalidated: %s", slot, why);
	return true;
}

/* Checks the slot; creates it when missing and allowed. *confirmed is its
 * confirmed position (0 when just created). */
bool
pgo_slot(pgo_db *db, bool apply, bool *problems, uint64_t *confirmed,
         bool *created)
{
	return pgo_slot_once(db, apply, problems, confirmed, created, true);
}

static bool
pgo_slot_once(pgo_db *db, bool apply, bool *problems, uint64_t *confirmed,
              bool *created, bool may_wait)
{
	pgo *s = db->src;
	const char *params[] = {db->slot};
	PGresult *res;
	char sql[512];

	*confirmed = 0;
	*created = false;
	db->lost[0] = '\0';
	snprintf(sql, sizeof sql,
	         "SELECT plugin, slot_type, database, active, active_pid, "
	         "confirmed_flush_lsn, %s FROM pg_replication_slots WHERE "
	         "slot_name = $1",
	         pgo_lost_cols(db));
	res = pgo_query(db, db->sql, "reading the replication slot", sql, 1,
	                params);
	if (!res)
		return false;
	if (PQntuples(res) == 0) {
		PQclear(res);
		/* a custom slot that drop() removed for a re-sync is created
		 * again under its name */
		if (s->custom_slot && !db->dropped) {
			*problems = true;
			return pgo_fail(
			    db, NULL,
			    "custom.slot.name = %s: no such replication slot "
			    "in the source; create it with SELECT "
			    "pg_create_logical_replication_slot('%s', "
			    "'pgoutput') or remove the key",
			    db->slot, db->slot);
		}
		res = pgo_query(
		    db, db->sql, "counting replication slots",
		    "SELECT current_setting('max_replication_slots')::int "
		    "- (SELECT count(*) FROM pg_replication_slots)",
		    0, NULL);
		if (!res)
			return false;
		/* with slot.flush.delay.time, the hold slot too */
		if (atoi(PQgetvalue(res, 0, 0)) < (s->delay_ms ? 2 : 1)) {
			PQclear(res);
			*problems = true;
			return pgo_fail(
			    db, "53400",
			    "not enough free replication slots in the source "
			    "(%s needed: the slot%s); drop an unused slot or "
			    "raise max_replication_slots",
			    s->delay_ms ? "2" : "1",
			    s->delay_ms ? " and its hold slot for "
			                  "slot.flush.delay.time"
			                : "");
		}
		PQclear(res);
		/* creating a slot waits for every running transaction: a
		 * pre-check failure, a warning when it is about to happen */
		if (!s->checking && !apply)
			return true;
		res = pgo_query(
		    db, db->sql, "looking for long transactions",
		    "SELECT pid, now() - xact_start FROM pg_stat_activity "
		    "WHERE backend_xid IS NOT NULL "
		    "  AND xact_start < now() - interval '1 minute' "
		    "  AND pid <> pg_backend_pid() ORDER BY xact_start "
		    "LIMIT 1",
		    0, NULL);
		if (!res)
			return false;
		if (PQntuples(res) > 0) {
			s->host->log(
			    s->host,
			    s->checking ? SYNCD_LEVEL_ERROR
			                : SYNCD_LEVEL_WARNING,
			    "database \"%s\": transaction of PID %s has been "
			    "running for %s; creating the replication slot "
			    "waits until it ends (end it, or wait)",
			    db->dbname, PQgetvalue(res, 0, 0),
			    PQgetvalue(res, 0, 1));
			if (s->checking)
				*problems = true;
		}
		PQclear(res);
		if (!apply)
			return true;
		{
			char *slot = pgo_ident(db->repl, db->slot);
			size_t n = strlen(slot) + 80;
			char *cmd = malloc(n);
			PGresult *r;
			/* with a full phase, the slot's snapshot is the copy's:
			 * the stream starts exactly where the copy ends */
			snprintf(cmd, n,
			         "CREATE_REPLICATION_SLOT %s LOGICAL pgoutput "
			         "%s",
			         slot,
			         s->copy ? "EXPORT_SNAPSHOT"
			                 : "NOEXPORT_SNAPSHOT");
			r = PQexec(db->repl, cmd);
			free(cmd);
			free(slot);
			if (PQresultStatus(r) != PGRES_TUPLES_OK) {
				pgo_fail(db, pgo_sqlstate(r),
				         "could not create replication slot %s "
				         "in database "
				         "\"%s\": %s",
				         db->slot, db->dbname,
				         PQerrorMessage(db->repl));
				PQclear(r);
				return false;
			}
			*confirmed = pgo_parse_lsn(PQgetvalue(r, 0, 1));
			free(db->snapshot);
			db->snapshot = s->copy && !PQgetisnull(r, 0, 2)
			                   ? strdup(PQgetvalue(r, 0, 2))
			                   : NULL;
			PQclear(r);
		}
		*created = true;
		SYNCD_LOG_INFO(s->host,
		               "created replication slot %s in database \"%s\" "
		               "at " SYNCD_LSN_FMT,
		               db->slot, db->dbname,
		               SYNCD_LSN_ARGS(*confirmed));
		return true;
	}
	/* an existing slot must be ours to use */
	if (strcmp(PQgetvalue(res, 0, 1), "logical") != 0 ||
	    strcmp(PQgetvalue(res, 0, 0), "pgoutput") != 0) {
		pgo_fail(db, NULL,
		         "replication slot %s is a %s slot with plugin %s; "
		         "syncd needs a logical slot with pgoutput",
		         db->slot, PQgetvalue(res, 0, 1),
		         PQgetvalue(res, 0, 0));
	} else if (strcmp(PQgetvalue(res, 0, 2), db->dbname) != 0) {
		pgo_fail(db, NULL,
		         "replication slot %s belongs to database \"%s\", "
		         "not \"%s\"",
		         db->slot, PQgetvalue(res, 0, 2), db->dbname);
	} else if (pgo_lost_why(db->slot, res, 6,
	                        strcmp(PQgetvalue(res, 0, 3), "t") == 0,
	                        db->lost, sizeof db->lost)) {
		/* the caller reports it (syncd_position.lost): the core
		 * fails the job or re-syncs; its position is still read */
	} else if (strcmp(PQgetvalue(res, 0, 3), "t") == 0 && may_wait &&
	           !s->checking && pgo_slot_wait(db, PQgetvalue(res, 0, 4))) {
		/* read it again: its last confirmed position */
		PQclear(res);
		return pgo_slot_once(db, apply, problems, confirmed, created,
		                     false);
	} else if (strcmp(PQgetvalue(res, 0, 3), "t") == 0) {
		pgo_fail(
		    db, "55006",
		    "replication slot %s is active for PID %s: "
		    "another syncd or a subscriber is using it; stop it first, "
		    "or give this job another name",
		    db->slot, PQgetvalue(res, 0, 4));
	}
	*confirmed = pgo_parse_lsn(PQgetvalue(res, 0, 5));
	PQclear(res);
	if (db->err[0]) {
		*problems = true;
		return false;
	}
	return true;
}

/* The part of this job's slot names before the stream number in the shard
 * scenario: "syncd_JOB_shard", as pgo_slot_name() spells it (at most 62
 * bytes with the number: never shortened). */
char *
pgo_slot_prefix(pgo *s)
{
	char *p = pgo_slot_name(s, 0, "");

	p[strlen(p) - 1] = '\0';
	return p;
}

/* The hold slot's name: the slot's with "_hold", the slot's shortened
 * (with a hash of it) when that would pass 63 bytes. */
char *
pgo_hold_name(const char *slot)
{
	char buf[64];
	size_t n = strlen(slot);

	if (n + 5 <= 63) {
		snprintf(buf, sizeof buf, "%s_hold", slot);
	} else {
		unsigned h = 5381;
		for (size_t i = 0; i < n; i++)
			h = h * 33 + (unsigned char) slot[i];
		snprintf(buf, sizeof buf, "%.49s_%08x_hold", slot, h);
	}
	return strdup(buf);
}

/*
 * The hold slot, at open. The slot itself is confirmed as soon as the
 * destination made a transaction durable (and to the received position
 * when nothing is pending), so that the server never waits for syncd at
 * its shutdown; slot.flush.delay.time keeps WAL with a second slot of the
 * job, NAME_hold, advanced with pg_replication_slot_advance to what was
 * durable that long ago (see pgo_hold_advance). It is created when missing
 * (as a copy of the slot, from its position, on PostgreSQL 12 and later),
 * and dropped when the delay is 0. False (the failure recorded) when it
 * cannot be created.
 */
bool
pgo_hold_open(pgo_db *db)
{
	pgo *s = db->src;
	const char *params[3];
	PGresult *res;
	bool exists;
	char why[512];

	free(db->hold);
	db->hold = NULL;
	db->hold_lsn = 0;
	db->last_hold_ms = 0;
	if (!db->sql)
		return true;
	{
		char *name = pgo_hold_name(db->slot);
		char sql[512];
		snprintf(sql, sizeof sql,
		         "SELECT slot_type, plugin, database, "
		         "confirmed_flush_lsn, %s FROM pg_replication_slots "
		         "WHERE slot_name = $1",
		         pgo_lost_cols(db));
		params[0] = name;
		res = pgo_query(db, db->sql, "reading the hold slot", sql, 1,
		                params);
		if (!res) {
			free(name);
			return false;
		}
		db->hold = name;
	}
	params[0] = db->hold;
	exists = PQntuples(res) == 1;
	if (!s->delay_ms) {
		PQclear(res);
		if (exists) {
			res = pgo_query(db, db->sql, "dropping the hold slot",
			                "SELECT pg_drop_replication_slot($1)",
			                1, params);
			if (!res)
				return false;
			PQclear(res);
			SYNCD_LOG_INFO(
			    s->host,
			    "database \"%s\": dropped replication "
			    "slot %s: slot.flush.delay.time = 0 keeps "
			    "no WAL for a delay",
			    db->dbname, db->hold);
		}
		free(db->hold);
		db->hold = NULL;
		return true;
	}
	if (db->version < 110000) {
		PQclear(res);
		SYNCD_LOG_WARNING(s->host,
		                  "database \"%s\": slot.flush.delay.time "
		                  "needs PostgreSQL 11 or later "
		                  "(pg_replication_slot_advance): no WAL is "
		                  "kept for the delay",
		                  db->dbname);
		free(db->hold);
		db->hold = NULL;
		return true;
	}
	if (exists && (strcmp(PQgetvalue(res, 0, 0), "logical") != 0 ||
	               strcmp(PQgetvalue(res, 0, 1), "pgoutput") != 0 ||
	               strcmp(PQgetvalue(res, 0, 2), db->dbname) != 0)) {
		pgo_fail(db, NULL,
		         "replication slot %s is not this job's hold slot (a "
		         "logical pgoutput slot of database \"%s\"); drop it "
		         "(SELECT pg_drop_replication_slot('%s')) or set "
		         "slot.flush.delay.time = 0",
		         db->hold, db->dbname, db->hold);
		PQclear(res);
		return false;
	}
	if (exists && pgo_lost_why(db->hold, res, 4, true, why, sizeof why)) {
		/* it keeps nothing any more: made again from the slot */
		PQclear(res);
		res =
		    pgo_query(db, db->sql, "dropping the hold slot",
		              "SELECT pg_drop_replication_slot($1)", 1, params);
		if (!res)
			return false;
		SYNCD_LOG_WARNING(
		    s->host,
		    "database \"%s\": %s; dropped, and created "
		    "again from slot %s: replays from a past time "
		    "start from now on",
		    db->dbname, why, db->slot);
		exists = false;
	} else if (exists) {
		db->hold_lsn = pgo_parse_lsn(PQgetvalue(res, 0, 3));
		PQclear(res);
		return true;
	}
	PQclear(res);
	params[1] = db->slot;
	res = db->version >= 120000
	          ? PQexecParams(db->sql,
	                         "SELECT lsn FROM "
	                         "pg_copy_logical_replication_slot($2, $1)",
	                         2, NULL, params, NULL, NULL, 0)
	          : NULL;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		res = pgo_query(db, db->sql, "creating the hold slot",
		                "SELECT lsn FROM "
		                "pg_create_logical_replication_slot($1, "
		                "'pgoutput')",
		                1, params);
		if (!res) {
			snprintf(
			    db->err + strlen(db->err),
			    sizeof db->err - strlen(db->err),
			    " (replication slot %s keeps the WAL of "
			    "slot.flush.delay.time: raise "
			    "max_replication_slots, or set the delay to 0)",
			    db->hold);
			return false;
		}
	}
	PQclear(res);
	res = pgo_query(db, db->sql, "reading the hold slot",
	                "SELECT confirmed_flush_lsn FROM pg_replication_slots "
	                "WHERE slot_name = $1",
	                1, params);
	if (!res)
		return false;
	db->hold_lsn =
	    PQntuples(res) == 1 ? pgo_parse_lsn(PQgetvalue(res, 0, 0)) : 0;
	PQclear(res);
	SYNCD_LOG_INFO(
	    s->host,
	    "database \"%s\": created replication slot %s at " SYNCD_LSN_FMT
	    ": it keeps the WAL of "
	    "slot.flush.delay.time = %llds",
	    db->dbname, db->hold, SYNCD_LSN_ARGS(db->hold_lsn),
	    (long long) (s->delay_ms / 1000));
	return true;
}

/* Whether the slot can no longer stream, asked on c (why in db->lost). */
bool
pgo_slot_lost(pgo_db *db, PGconn *c)
{
	const char *params[] = {db->slot};
	char sql[512];
	PGresult *res;
	bool lost;

	snprintf(sql, sizeof sql,
	         "SELECT active, %s FROM pg_replication_slots WHERE slot_name "
	         "= $1",
	         pgo_lost_cols(db));
	res = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
	lost = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	       pgo_lost_why(db->slot, res, 1,
	                    strcmp(PQgetvalue(res, 0, 0), "t") == 0, db->lost,
	                    sizeof db->lost);
	PQclear(res);
	return lost;
}

/* How long drop() waits for a slot that is still active: the walsender of
 * the connection close() ended may not have exited yet. */
#define PGO_DROP_WAIT_MS 10000

/* Drops slot `name` on c when it exists, waiting until deadline while it
 * is active. False (the failure recorded) when it could not. */
static bool
pgo_drop_slot(pgo_db *db, PGconn *c, const char *name, int64_t deadline)
{
	const char *params[] = {name};

	for (;;) {
		PGresult *res = PQexecParams(
		    c,
		    "SELECT pg_drop_replication_slot(slot_name) FROM "
		    "pg_replication_slots WHERE slot_name = $1",
		    1, NULL, params, NULL, NULL, 0);
		const char *st = pgo_failure_state(c, res);
		bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;

		if (ok && PQntuples(res) == 1)
			SYNCD_LOG_INFO(
			    db->src->host,
			    "dropped replication slot %s in database "
			    "\"%s\"",
			    name, db->dbname);
		if (ok || (st && strcmp(st, "42704") == 0)) {
			/* dropped, or gone already */
			PQclear(res);
			return true;
		}
		if (!st || strcmp(st, "55006") != 0 ||
		    pgo_now_ms() >= deadline) {
			pgo_fail(
			    db, st,
			    "could not drop replication slot %s in database "
			    "\"%s\"%s: %s",
			    name, db->dbname,
			    st && strcmp(st, "55006") == 0
			        ? " (still in use after 10 s: stop what "
			          "reads it, a subscriber or another syncd "
			          "of this job, and start the job again)"
			        : "",
			    PQerrorMessage(c));
			PQclear(res);
			return false;
		}
		PQclear(res);
		usleep(200 * 1000);
	}
}

/* A short SQL connection to the database of stream, for drop() and
 * retire(), with the stream ended if it was open. */
static syncd_status
pgo_short_conn(pgo *s, uint32_t stream, pgo_db **dbp, PGconn **c)
{
	syncd_status st;
	pgo_db *db;

	if ((st = pgo_find_dbs(s)) != SYNCD_OK)
		return st;
	if (!(db = pgo_db_of(s, stream)))
		return SYNCD_FATAL;
	pgo_end_stream(db); /* closed already, or open() without close() */
	db->err[0] = '\0';
	db->sqlstate[0] = '\0';
	*dbp = db;
	*c = pgo_connect_within(db, false, "10");
	if (!*c)
		return pgo_report(db, pgo_transient(db->sqlstate)
		                          ? SYNCD_RETRY
		                          : SYNCD_FATAL);
	return SYNCD_OK;
}

/*
 * The source operation drop(): the stream's slot, its hold slot and what
 * the state directory notes of it (pgoutput-SLOT.received, .links) are
 * removed, so that the next open() creates the slot anew. Called after
 * close(), on a short connection of its own; a slot still active while the
 * walsender of the closed connection exits is waited for
 * (PGO_DROP_WAIT_MS).
 */
syncd_status
pgo_drop(void *state, uint32_t stream)
{
	pgo *s = state;
	pgo_db *db;
	PGconn *c;
	char *hold;
	int64_t deadline;
	bool ok;
	syncd_status st;

	if ((st = pgo_short_conn(s, stream, &db, &c)) != SYNCD_OK)
		return st;
	hold = pgo_hold_name(db->slot);
	deadline = pgo_now_ms() + PGO_DROP_WAIT_MS;
	ok = pgo_drop_slot(db, c, db->slot, deadline) &&
	     pgo_drop_slot(db, c, hold, deadline);
	free(hold);
	PQfinish(c);
	if (!ok)
		return pgo_report(db, pgo_transient(db->sqlstate)
		                          ? SYNCD_RETRY
		                          : SYNCD_FATAL);
	pgo_forget_slot_notes(db);
	db->lost[0] = '\0';
	db->dropped = true;
	return SYNCD_OK;
}

/*
 * The source operation rewind() (syncd --start-time). The slot is
 * confirmed as soon as the destination has a transaction; the hold slot
 * (slot.flush.delay.time) keeps WAL from what was durable that long ago.
 * Going back to lsn: the slot is dropped and made again as a copy of the
 * hold slot (PostgreSQL 12 and later), whose confirmed position is at or
 * before lsn + 1; START_REPLICATION at lsn then skips what committed
 * before it. Called with the stream closed, on a short connection.
 */
syncd_status
pgo_rewind(void *state, uint32_t stream, syncd_lsn lsn, bool apply,
           syncd_lsn *oldest)
{
	pgo *s = state;
	pgo_db *db;
	PGconn *c;
	PGresult *res;
	char *hold, sql[512], why[512];
	const char *sp[2];
	uint64_t held = 0, confirmed = 0;
	bool have_slot;
	syncd_status st;

	*oldest = 0;
	if ((st = pgo_short_conn(s, stream, &db, &c)) != SYNCD_OK)
		return st;
	hold = pgo_hold_name(db->slot);
	sp[0] = hold;
	sp[1] = db->slot;
	if (!s->delay_ms) {
		pgo_fail(db, NULL,
		         "slot.flush.delay.time = 0 keeps no WAL to go back to; "
		         "set it (6h by default) for the future");
		st = SYNCD_INVALID;
		goto out;
	}
	if (PQserverVersion(c) < 120000) {
		pgo_fail(db, NULL,
		         "going back in time needs PostgreSQL 12 or later "
		         "(pg_copy_logical_replication_slot); database \"%s\" "
		         "runs %d",
		         db->dbname, PQserverVersion(c));
		st = SYNCD_INVALID;
		goto out;
	}
	/* the hold slot: what it keeps */
	if (!db->version)
		db->version = PQserverVersion(c);
	snprintf(sql, sizeof sql,
	         "SELECT slot_name, confirmed_flush_lsn, %s FROM "
	         "pg_replication_slots WHERE slot_name = $1",
	         pgo_lost_cols(db));
	res = pgo_query(db, c, "reading the hold slot", sql, 1, sp);
	if (!res) {
		st = SYNCD_FATAL;
		goto out;
	}
	if (PQntuples(res) == 0 || PQgetisnull(res, 0, 1)) {
		PQclear(res);
		pgo_fail(db, NULL,
		         "replication slot %s, which keeps WAL for "
		         "slot.flush.delay.time, does not exist in database "
		         "\"%s\": nothing before now can be streamed again",
		         hold, db->dbname);
		st = SYNCD_INVALID;
		goto out;
	}
	if (pgo_lost_why(hold, res, 2, false, why, sizeof why)) {
		PQclear(res);
		pgo_fail(db, NULL, "%s: nothing before now can be streamed again",
		         why);
		st = SYNCD_INVALID;
		goto out;
	}
	held = pgo_parse_lsn(PQgetvalue(res, 0, 1));
	PQclear(res);
	*oldest = held ? held - 1 : 0;
	if (lsn + 1 < held) {
		pgo_fail(db, NULL,
		         "replication slot %s keeps WAL from " SYNCD_LSN_FMT
		         " on (slot.flush.delay.time = %llds; raise it to go "
		         "further back in the future)",
		         hold, SYNCD_LSN_ARGS(held),
		         (long long) (s->delay_ms / 1000));
		st = SYNCD_INVALID;
		goto out;
	}
	/* the slot: not in use, and where it is */
	res = pgo_query(db, c, "reading the replication slot",
	                "SELECT active, coalesce(active_pid, 0), "
	                "confirmed_flush_lsn FROM pg_replication_slots WHERE "
	                "slot_name = $1",
	                1, sp + 1);
	if (!res) {
		st = SYNCD_FATAL;
		goto out;
	}
	have_slot = PQntuples(res) == 1;
	if (have_slot && strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		pgo_fail(db, "55006",
		         "replication slot %s in database \"%s\" is in use by "
		         "process %s: stop the job first",
		         db->slot, db->dbname, PQgetvalue(res, 0, 1));
		PQclear(res);
		st = SYNCD_RETRY;
		goto out;
	}
	if (have_slot && !PQgetisnull(res, 0, 2))
		confirmed = pgo_parse_lsn(PQgetvalue(res, 0, 2));
	PQclear(res);
	if (!apply || (have_slot && confirmed && confirmed <= lsn + 1)) {
		st = SYNCD_OK; /* nothing to do: it is there already */
		goto out;
	}
	if (have_slot &&
	    !pgo_drop_slot(db, c, db->slot, pgo_now_ms() + PGO_DROP_WAIT_MS)) {
		st = SYNCD_FATAL;
		goto out;
	}
	res = pgo_query(db, c, "copying the hold slot",
	                "SELECT lsn FROM pg_copy_logical_replication_slot($1, "
	                "$2)",
	                2, sp);
	if (!res) {
		snprintf(db->err + strlen(db->err),
		         sizeof db->err - strlen(db->err),
		         " (replication slot %s is gone: make it again with "
		         "SELECT pg_copy_logical_replication_slot('%s', '%s') "
		         "before the job starts)",
		         db->slot, hold, db->slot);
		st = SYNCD_FATAL;
		goto out;
	}
	PQclear(res);
	/* what was noted of the slot's received position is void */
	pgo_forget_slot_notes(db);
	SYNCD_LOG_INFO(s->host,
	               "database \"%s\": replication slot %s made again from "
	               "%s: it streams from " SYNCD_LSN_FMT,
	               db->dbname, db->slot, hold, SYNCD_LSN_ARGS(held));
	st = SYNCD_OK;
out:
	free(hold);
	PQfinish(c);
	if (st != SYNCD_OK)
		return pgo_report(db, st);
	return SYNCD_OK;
}

/*
 * The source operation retire() (syncd --drop): the stream's slot and hold
 * slot, and the publication if a syncd job created it (its comment says
 * so) and no other syncd job's slot remains in the database: syncd's jobs
 * share the default publication name, so the last one to go drops it. A
 * publication created by someone else is kept: which of its tables this
 * job added is not recorded, and its other consumers may need them.
 */
static void
pgo_say(syncd_say_fn say, void *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
pgo_say(syncd_say_fn say, void *ctx, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	say(ctx, line);
}

syncd_status
pgo_retire(void *state, uint32_t stream, bool apply, syncd_say_fn say,
           void *ctx)
{
	pgo *s = state;
	pgo_db *db;
	PGconn *c;
	PGresult *res;
	char *hold;
	const char *sp[3];
	bool in_use = false, drop_pub = false, ok = true;
	syncd_status st;
	char mark[256];

	if ((st = pgo_short_conn(s, stream, &db, &c)) != SYNCD_OK)
		return st;
	hold = pgo_hold_name(db->slot);
	sp[0] = db->slot;
	sp[1] = hold;
	sp[2] = s->publication;

	/* the slots: what they keep, and whether something reads them */
	res = pgo_query(db, c, "reading the job's replication slots",
	                "SELECT slot_name, active, coalesce(active_pid, 0), "
	                "coalesce(pg_size_pretty(pg_wal_lsn_diff("
	                "pg_current_wal_lsn(), restart_lsn)), '?') FROM "
	                "pg_replication_slots WHERE slot_name IN ($1, $2) "
	                "ORDER BY slot_name",
	                2, sp);
	if (!res) {
		ok = false;
		goto done;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		bool active = strcmp(PQgetvalue(res, i, 1), "t") == 0;
		pgo_say(say, ctx,
		        "source: replication slot %s in database \"%s\" (it "
		        "keeps %s of WAL)%s",
		        PQgetvalue(res, i, 0), db->dbname,
		        PQgetvalue(res, i, 3),
		        active ? ", IN USE by a running job" : ": drop it");
		if (active) {
			in_use = true;
			pgo_fail(db, "55006",
			         "replication slot %s in database \"%s\" is in "
			         "use by process %s: stop the job (or whatever "
			         "reads the slot) first",
			         PQgetvalue(res, i, 0), db->dbname,
			         PQgetvalue(res, i, 2));
		}
	}
	if (PQntuples(res) == 0)
		pgo_say(say, ctx,
		        "source: no replication slot of the job in database "
		        "\"%s\"",
		        db->dbname);
	PQclear(res);

	/* the publication */
	snprintf(mark, sizeof mark, "created by syncd job %s",
	         s->host->job->name);
	res = pgo_query(
	    db, c, "reading the publication",
	    "SELECT coalesce(obj_description(p.oid, 'pg_publication'), ''), "
	    "(SELECT string_agg(slot_name, ', ' ORDER BY slot_name) FROM "
	    "pg_replication_slots WHERE database = current_database() AND "
	    "slot_name LIKE 'syncd\\_%' AND slot_name NOT IN ($1, $2)) FROM "
	    "pg_publication p WHERE p.pubname = $3",
	    3, sp);
	if (!res) {
		ok = false;
		goto done;
	}
	if (PQntuples(res) == 0)
		pgo_say(say, ctx,
		        "source: publication %s does not exist in database "
		        "\"%s\"",
		        s->publication, db->dbname);
	else if (strncmp(PQgetvalue(res, 0, 0), "created by syncd job ",
	                 21) != 0)
		pgo_say(say, ctx,
		        "source: publication %s in database \"%s\" is kept: "
		        "syncd did not create it; remove this job's tables "
		        "from it by hand if no one else reads them",
		        s->publication, db->dbname);
	else if (!PQgetisnull(res, 0, 1))
		pgo_say(say, ctx,
		        "source: publication %s in database \"%s\" is kept: "
		        "the slots of other syncd jobs (%s) remain in the "
		        "database and may read it; the last of them to be "
		        "retired drops it",
		        s->publication, db->dbname, PQgetvalue(res, 0, 1));
	else {
		drop_pub = true;
		pgo_say(say, ctx,
		        "source: publication %s in database \"%s\" (%s%s): "
		        "drop it",
		        s->publication, db->dbname, PQgetvalue(res, 0, 0),
		        strcmp(PQgetvalue(res, 0, 0), mark) == 0
		            ? ""
		            : "; no other syncd job is left here");
	}
	PQclear(res);
	if (in_use) {
		ok = false;
		goto done;
	}
	if (!apply)
		goto done;

	{
		int64_t deadline = pgo_now_ms() + PGO_DROP_WAIT_MS;
		ok = pgo_drop_slot(db, c, db->slot, deadline) &&
		     pgo_drop_slot(db, c, hold, deadline);
	}
	if (ok && drop_pub) {
		char *pub = pgo_ident(c, s->publication);
		pgo_sb sql = {0};
		pgo_sb_printf(&sql, "DROP PUBLICATION IF EXISTS %s", pub);
		res = pgo_query(db, c, "dropping the publication", sql.data, 0,
		                NULL);
		ok = res != NULL;
		if (res) {
			PQclear(res);
			pgo_say(say, ctx,
			        "source: dropped publication %s in database "
			        "\"%s\"",
			        s->publication, db->dbname);
		}
		free(pub);
		free(sql.data);
	}
	if (ok)
		pgo_say(say, ctx,
		        "source: dropped the job's replication slots in "
		        "database \"%s\"",
		        db->dbname);
done:
	free(hold);
	PQfinish(c);
	if (ok)
		return SYNCD_OK;
	return pgo_report(db, in_use || pgo_transient(db->sqlstate)
	                          ? SYNCD_RETRY
	                          : SYNCD_FATAL);
}
