/*
 * plugins/pgoutput/stream.c - the stream: START_REPLICATION, the read loop, the
 * standby status updates and their thread, heartbeats; the source operations
 * start, read, confirm and close.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pgo.h"

/* Remembers the last commit emitted and, about once a second when
 * slot.flush.delay.time is set, the last commit received: the hold slot
 * (see pgo_hold_open) lags behind them by the delay. */
void
pgo_remember_commit(pgo_db *db, uint64_t lsn)
{
	int64_t now = pgo_now_ms();

	__atomic_store_n(&db->emitted, lsn, __ATOMIC_SEQ_CST);
	if (!db->src->delay_ms)
		return;
	/* the status thread reads the samples */
	pthread_mutex_lock(&db->lock);
	if (db->nsamples && now - db->samples[db->nsamples - 1].at_ms < 1000) {
		db->samples[db->nsamples - 1].lsn = lsn;
	} else {
		if (db->nsamples == db->capsamples) {
			db->capsamples =
			    db->capsamples ? db->capsamples * 2 : 256;
			db->samples = realloc(
			    db->samples, db->capsamples * sizeof *db->samples);
		}
		db->samples[db->nsamples++] = (pgo_sample){lsn, now};
	}
	pthread_mutex_unlock(&db->lock);
}

/* Where the hold slot may go now: past the last transaction that is
 * durable and older than the delay (0: nowhere yet). Caller holds
 * db->lock. */
static uint64_t
pgo_hold_target(pgo_db *db)
{
	pgo *s = db->src;
	uint64_t flushed = __atomic_load_n(&db->flushed, __ATOMIC_ACQUIRE);
	int64_t cutoff = pgo_now_ms() - s->delay_ms;
	uint64_t done = 0;
	size_t drop = 0;

	for (size_t i = 0; i < db->nsamples && db->samples[i].at_ms <= cutoff;
	     i++) {
		if (db->samples[i].lsn <= flushed) {
			done = db->samples[i].lsn;
			drop = i; /* keep the last one passed as the floor */
		}
	}
	if (drop) {
		memmove(db->samples, db->samples + drop,
		        (db->nsamples - drop) * sizeof *db->samples);
		db->nsamples -= drop;
	}
	return done ? done + 1 : 0;
}

/* The file that keeps, across restarts of syncd, the received position
 * last confirmed and the last commit confirmed then. */
static void
pgo_recv_path(pgo_db *db, char *path, size_t n)
{
	snprintf(path, n, "%s/pgoutput-%s.received",
	         db->src->host->job->state_dir, db->slot);
}

/* Records, before it is sent, that the slot is confirmed up to received
 * while the destination has applied up to commit only (nothing in
 * between was for it). False (logged) when it cannot be recorded: the
 * received position is not confirmed then. */
static bool
pgo_recv_note(pgo_db *db, uint64_t received, uint64_t commit)
{
	char path[1024], line[64];

	if (received == db->recv_sent && commit == db->recv_commit)
		return true;
	pgo_recv_path(db, path, sizeof path);
	snprintf(line, sizeof line, "%llu %llu\n",
	         (unsigned long long) received, (unsigned long long) commit);
	if (!pgo_write_file(path, line)) {
		SYNCD_LOG_WARNING(db->src->host,
		                  "database \"%s\": could not write %s: %s; "
		                  "the slot is confirmed up to the last commit "
		                  "only (check the state directory)",
		                  db->dbname, path, strerror(errno));
		return false;
	}
	db->recv_sent = received;
	db->recv_commit = commit;
	return true;
}

/* pos.confirmed for a slot confirmed up to confirmed: the commit before
 * it, or, when syncd confirmed a received position past the last commit
 * (pgo_confirmable), that commit: the slot is ahead of the destination's
 * progress only by WAL that had nothing for it. */
uint64_t
pgo_reported(pgo_db *db, uint64_t confirmed)
{
	if (!db->recv_loaded) {
		char path[1024];
		unsigned long long r, c;
		FILE *f;

		pgo_recv_path(db, path, sizeof path);
		f = fopen(path, "r");
		if (f && fscanf(f, "%llu %llu", &r, &c) == 2) {
			db->recv_sent = r;
			db->recv_commit = c;
		}
		if (f)
			fclose(f);
		db->recv_loaded = true;
	}
	if (!confirmed)
		return 0;
	if (db->recv_sent && confirmed <= db->recv_sent &&
	    confirmed > db->recv_commit + 1)
		return db->recv_commit;
	return confirmed - 1;
}

/* What is confirmed to the slot: past the last transaction the core
 * confirmed. The server skips, at the next start, the transactions whose
 * commit record starts before the confirmed position, so the position sent
 * is that commit LSN + 1: confirming the commit LSN itself would have the
 * server send that transaction again. When nothing is pending (every
 * transaction emitted is confirmed, none is being received), the position
 * received is confirmed, as PostgreSQL's apply worker does: a server
 * shutting down waits for it. slot.flush.delay.time holds back the hold
 * slot only, never this. Caller holds db->lock. */
static uint64_t
pgo_confirmable(pgo_db *db)
{
	/* received first: the reader marks itself busy before it moves it */
	uint64_t received = pgo_received(db);
	bool busy = atomic_load(&db->busy);
	uint64_t emitted = __atomic_load_n(&db->emitted, __ATOMIC_SEQ_CST);
	uint64_t flushed = __atomic_load_n(&db->flushed, __ATOMIC_SEQ_CST);
	uint64_t to = db->sent_flush;

	if (flushed && flushed + 1 > to)
		to = flushed + 1;
	if (!busy && flushed >= emitted && received > to) {
		uint64_t floor = pgo_reported(db, db->slot_confirmed);
		if (pgo_recv_note(db, received,
		                  flushed > floor ? flushed : floor))
			to = received;
	}
	return to;
}

/* The last WAL position received (written by the reader, read by the
 * status thread). */
uint64_t
pgo_received(pgo_db *db)
{
	return __atomic_load_n(&db->received, __ATOMIC_SEQ_CST);
}

/* Sends a standby status update; caller holds db->lock. */
static bool
pgo_send_status(pgo_db *db, bool reply)
{
	char msg[34];
	uint64_t flush = pgo_confirmable(db);

	uint64_t received = pgo_received(db);

	pgo_standby_status(msg, received > flush ? received : flush, flush,
	                   flush, pgo_now_pg(), reply);
	if (PQputCopyData(db->repl, msg, sizeof msg) <= 0 ||
	    PQflush(db->repl) < 0)
		return pgo_fail(db, "08006",
		                "could not send a status update to "
		                "database \"%s\": %s",
		                db->dbname, PQerrorMessage(db->repl));
	if (flush > db->sent_flush)
		SYNCD_LOG_DEBUG(db->src->host,
		                "database \"%s\": confirmed " SYNCD_LSN_FMT,
		                db->dbname, SYNCD_LSN_ARGS(flush));
	db->sent_flush = flush;
	db->last_status_ms = pgo_now_ms();
	return true;
}

/* Has the core confirmed a transaction the server was not told of? */
static bool
pgo_flush_moved(pgo_db *db)
{
	uint64_t flushed = __atomic_load_n(&db->flushed, __ATOMIC_SEQ_CST);
	return flushed && flushed + 1 > db->sent_flush;
}

/* Keeps the server answered while the reader is blocked in emit(), and
 * tells it within 100 ms of each transaction the core confirms (a flush
 * of the destination), so that the slot, its WAL and a server waiting on
 * it at a shutdown are never held up until status.interval. */
static void *
pgo_status_main(void *arg)
{
	pgo_db *db = arg;
	pgo *s = db->src;

	while (!atomic_load(&db->done)) {
		usleep(100 * 1000);
		pthread_mutex_lock(&db->lock);
		if (!atomic_load(&db->done) &&
		    (pgo_flush_moved(db) ||
		     pgo_now_ms() - db->last_status_ms >= s->status_ms))
			pgo_send_status(db, false);
		pthread_mutex_unlock(&db->lock);
	}
	return NULL;
}

/* How long the SQL session (heartbeats, partition watching) may stay lost
 * while streaming before the job fails. */
#define PGO_SQL_BUDGET_MS (5 * 60 * 1000)

/* The SQL session was lost (why): pgo_sql_back reopens it. */
static void
pgo_sql_lost(pgo_db *db, const char *why)
{
	size_t n;

	snprintf(db->sql_err, sizeof db->sql_err, "%s", why);
	n = strlen(db->sql_err);
	while (n > 0 &&
	       (db->sql_err[n - 1] == '\n' || db->sql_err[n - 1] == ' '))
		db->sql_err[--n] = '\0';
	db->sql_lost_ms = pgo_now_ms();
	db->sql_next_ms = db->sql_lost_ms;
	db->sql_attempts = 0;
	SYNCD_LOG_WARNING(db->src->host,
	                  "database \"%s\": the SQL session to the source is "
	                  "lost (%s); reopening it",
	                  db->dbname, db->sql_err);
}

/* The SQL session, reopened when lost: at most one attempt per call, with
 * 1, 2, 4 ... 30 s between attempts, so the stream is never held up for
 * long. *usable: the session can be used now. False (the failure
 * recorded) when it stayed lost for PGO_SQL_BUDGET_MS. */
static bool
pgo_sql_back(pgo_db *db, bool *usable)
{
	pgo *s = db->src;
	int64_t now = pgo_now_ms(), wait;
	PGconn *c;

	*usable = false;
	if (!db->sql_lost_ms) {
		if (db->sql && PQstatus(db->sql) == CONNECTION_OK) {
			*usable = true;
			return true;
		}
		pgo_sql_lost(db, db->sql ? PQerrorMessage(db->sql)
		                         : "not connected");
	}
	if (now < db->sql_next_ms)
		return true;
	if (now - db->sql_lost_ms >= PGO_SQL_BUDGET_MS)
		return pgo_fail(
		    db, NULL,
		    "the SQL session to source database \"%s\" was lost and "
		    "could not be reopened in %d s (%d attempts): %s; without "
		    "it heartbeats cannot advance the slot: check that the "
		    "server accepts this role's connections (max_connections, "
		    "pg_hba.conf, a pooler in between) and start the job again",
		    db->dbname, PGO_SQL_BUDGET_MS / 1000, db->sql_attempts,
		    db->sql_err);
	db->sql_attempts++;
	/* a server that does not answer holds the stream up 5 s at most */
	c = pgo_connect_within(db, false, "5");
	if (!c) {
		snprintf(db->sql_err, sizeof db->sql_err, "%.*s",
		         (int) sizeof db->sql_err - 1, db->err);
		db->err[0] = '\0';
		db->sqlstate[0] = '\0';
		wait = db->sql_attempts >= 6 ? 30000
		                             : 1000LL << (db->sql_attempts - 1);
		db->sql_next_ms = now + wait;
		SYNCD_LOG_WARNING(s->host,
		                  "database \"%s\": could not reopen the SQL "
		                  "session (attempt %d): %s; next attempt in "
		                  "%lld s",
		                  db->dbname, db->sql_attempts, db->sql_err,
		                  (long long) wait / 1000);
		return true;
	}
	if (db->sql)
		PQfinish(db->sql);
	db->sql = c;
	SYNCD_LOG_INFO(s->host,
	               "database \"%s\": the SQL session to the source is "
	               "back after %d attempt(s)",
	               db->dbname, db->sql_attempts);
	db->sql_lost_ms = 0;
	db->sql_attempts = 0;
	db->last_heartbeat_ms = 0; /* one now */
	*usable = true;
	return true;
}

static void
pgo_heartbeat(pgo_db *db)
{
	pgo *s = db->src;
	PGresult *res;

	if (!s->heartbeat_ms || db->version < 140000 ||
	    pgo_now_ms() - db->last_heartbeat_ms < s->heartbeat_ms)
		return;
	db->last_heartbeat_ms = pgo_now_ms();
	/* A non-transactional message is written to WAL but not flushed,
	 * and nothing else flushes it once the walwriter has exited at a
	 * shutdown: the walsender then waits for it forever, and so does
	 * the shutdown checkpoint (the server never stops). txid_current()
	 * makes the statement commit a transaction id: the commit flushes
	 * the message (or marks it for the walsender's own flush when
	 * synchronous_commit is off). The empty transaction is not sent. */
	res =
	    PQexec(db->sql, "SELECT pg_logical_emit_message(false, "
	                    "'" PGO_HEARTBEAT_PREFIX "', ''), txid_current()");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		if (pgo_transient(pgo_failure_state(db->sql, res)))
			pgo_sql_lost(db, PQerrorMessage(db->sql));
		else
			SYNCD_LOG_WARNING(
			    s->host, "database \"%s\": heartbeat failed: %s",
			    db->dbname, PQerrorMessage(db->sql));
	}
	PQclear(res);
}

/* Moves the hold slot to what was durable slot.flush.delay.time ago
 * (pgo_hold_target), at most once a second, on the SQL session. */
static void
pgo_hold_advance(pgo_db *db)
{
	pgo *s = db->src;
	uint64_t to;
	char lsn[32];
	const char *params[2];
	PGresult *res;

	if (!db->hold || pgo_now_ms() - db->last_hold_ms < 1000)
		return;
	db->last_hold_ms = pgo_now_ms();
	pthread_mutex_lock(&db->lock);
	to = pgo_hold_target(db);
	pthread_mutex_unlock(&db->lock);
	if (to <= db->hold_lsn)
		return;
	snprintf(lsn, sizeof lsn, "%X/%X", (unsigned) (to >> 32),
	         (unsigned) to);
	params[0] = db->hold;
	params[1] = lsn;
	res = PQexecParams(db->sql,
	                   "SELECT end_lsn FROM pg_replication_slot_advance("
	                   "$1, $2::pg_lsn)",
	                   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		db->hold_lsn = pgo_parse_lsn(PQgetvalue(res, 0, 0));
		if (db->hold_lsn < to)
			db->hold_lsn = to;
		SYNCD_LOG_DEBUG(s->host,
		                "database \"%s\": hold slot %s advanced to %s",
		                db->dbname, db->hold, lsn);
	} else if (pgo_transient(pgo_failure_state(db->sql, res))) {
		pgo_sql_lost(db, PQerrorMessage(db->sql));
	} else if (pgo_sqlstate(res) &&
	           strcmp(pgo_sqlstate(res), "55000") == 0) {
		/* invalidated (max_slot_wal_keep_size): it keeps nothing;
		 * the next open() makes it again (pgo_hold_open) */
		SYNCD_LOG_WARNING(
		    s->host,
		    "database \"%s\": the hold slot %s can no "
		    "longer be advanced (%s); it keeps no WAL for "
		    "slot.flush.delay.time until the stream is "
		    "opened again, which makes it anew",
		    db->dbname, db->hold,
		    PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
		free(db->hold);
		db->hold = NULL;
	} else {
		SYNCD_LOG_WARNING(s->host,
		                  "database \"%s\": could not advance the hold "
		                  "slot %s to %s: %s",
		                  db->dbname, db->hold, lsn,
		                  PQerrorMessage(db->sql));
	}
	PQclear(res);
}

/* A metric name with the database (and slot) as labels, escaped. */
static char *
pgo_metric(const char *name, const char *db, const char *slot)
{
	const char *vals[2] = {db, slot};
	size_t n = strlen(name) + 64 + 2 * strlen(db) +
	           (slot ? 2 * strlen(slot) : 0);
	char *out = malloc(n), *p = out;

	if (!out)
		return NULL;
	p += sprintf(p, "%s{", name);
	for (int i = 0; i < 2 && vals[i]; i++) {
		p += sprintf(p, "%s%s=\"", i ? "," : "", i ? "slot" : "database");
		for (const char *c = vals[i]; *c; c++) {
			if (*c == '\\' || *c == '"')
				*p++ = '\\';
			if (*c == '\n') {
				*p++ = '\\';
				*p++ = 'n';
			} else
				*p++ = *c;
		}
		*p++ = '"';
	}
	*p++ = '}';
	*p = '\0';
	return out;
}

/* The figures an operator watches, every PGO_STATS_MS on the SQL
 * session: the server's WAL position and what each slot of the job keeps
 * of it (the hold slot keeps slot.flush.delay.time on purpose). A failure
 * here is not the stream's: the next chore tries again. */
#define PGO_STATS_MS 5000

static void
pgo_stats(pgo_db *db, int64_t now)
{
	pgo *s = db->src;
	const syncd_host *h = s->host;
	const char *params[2] = {db->slot, db->hold ? db->hold : db->slot};
	PGresult *res;
	uint64_t wal = 0;
	char *name;

	if (now - db->last_stats_ms < PGO_STATS_MS)
		return;
	db->last_stats_ms = now;
	res = PQexecParams(
	    db->sql,
	    "SELECT CASE WHEN pg_is_in_recovery() THEN "
	    "pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END, "
	    "s.slot_name, s.restart_lsn FROM (SELECT 1) one LEFT JOIN "
	    "pg_replication_slots s ON s.slot_name IN ($1, $2) AND "
	    "s.restart_lsn IS NOT NULL",
	    2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1) {
		SYNCD_LOG_DEBUG(h, "database \"%s\": could not read the WAL "
		                   "position: %s",
		                db->dbname, PQerrorMessage(db->sql));
		PQclear(res);
		return;
	}
	if (!PQgetisnull(res, 0, 0))
		wal = pgo_parse_lsn(PQgetvalue(res, 0, 0));
	for (int i = 0; i < PQntuples(res); i++) {
		uint64_t restart;
		if (PQgetisnull(res, i, 1) || PQgetisnull(res, i, 2))
			continue;
		restart = pgo_parse_lsn(PQgetvalue(res, i, 2));
		name = pgo_metric("slot_retained_wal_bytes", db->dbname,
		                  PQgetvalue(res, i, 1));
		if (name)
			h->metric_set(h, name,
			              wal > restart ? (double) (wal - restart)
			                            : 0);
		free(name);
	}
	PQclear(res);
	if (db->server_wal > wal)
		wal = db->server_wal;
	name = pgo_metric("source_wal_position_bytes", db->dbname, NULL);
	if (name && wal)
		h->metric_set(h, name, (double) wal);
	free(name);
	name = pgo_metric("spill_bytes_total", db->dbname, NULL);
	if (name && db->tx)
		h->metric_set(h, name, (double) txbuf_spilled_bytes(db->tx));
	free(name);
}

/* START_REPLICATION from start, or from the slot's position (0). */
static bool
pgo_start_replication(pgo_db *db, uint64_t start)
{
	pgo *s = db->src;
	char *slot = pgo_ident(db->repl, db->slot);
	char *pub = pgo_ident(db->repl, s->publication);
	char *pubq = PQescapeLiteral(db->repl, pub, strlen(pub));
	size_t n = strlen(slot) + strlen(pubq) + 256;
	char *sql = malloc(n);
	PGresult *res;

	/* values leave the server through its output functions in this
	 * session: make them unambiguous and exact whatever the server's
	 * defaults (timestamptz carries its offset; floats round-trip) */
	res = PQexec(db->repl,
	             "SET DateStyle = ISO; SET IntervalStyle = postgres; "
	             "SET extra_float_digits = 3; SET TimeZone = 'UTC'; "
	             "SET bytea_output = hex");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgo_fail(db, pgo_sqlstate(res),
		         "could not set up the replication "
		         "session of database \"%s\": %s",
		         db->dbname, PQerrorMessage(db->repl));
		PQclear(res);
		free(sql);
		free(slot);
		free(pub);
		PQfreemem(pubq);
		return false;
	}
	PQclear(res);
	snprintf(sql, n,
	         "START_REPLICATION SLOT %s LOGICAL %X/%X (proto_version '%d', "
	         "publication_names %s%s%s)",
	         slot, (unsigned) (start >> 32), (unsigned) start, db->proto,
	         pubq, db->proto >= 2 ? ", streaming 'on'" : "",
	         db->version >= 140000 ? ", messages 'true'" : "");
	res = PQexec(db->repl, sql);
	free(sql);
	free(slot);
	free(pub);
	PQfreemem(pubq);
	if (PQresultStatus(res) != PGRES_COPY_BOTH) {
		pgo_fail(db, pgo_sqlstate(res),
		         "could not start replication from slot %s in database "
		         "\"%s\": %s",
		         db->slot, db->dbname, PQerrorMessage(db->repl));
		PQclear(res);
		return false;
	}
	PQclear(res);
	SYNCD_LOG_INFO(
	    s->host,
	    "database \"%s\": streaming from slot %s (pgoutput protocol "
	    "%d%s)",
	    db->dbname, db->slot, db->proto,
	    db->proto >= 2 ? ", streaming of large transactions" : "");
	return true;
}

/* How the reader waits for the server: a walsender sends each change as
 * soon as it is decoded, and waking for each one cost syncd's reader more
 * than decoding it. The kernel wakes the reader once PGO_RCVLOWAT bytes
 * are in (SO_RCVLOWAT), or after PGO_WAIT_MS when fewer came: a quiet
 * stream is read at most that much later. */
#define PGO_RCVLOWAT (64 * 1024)
#define PGO_WAIT_MS  10
/* Heartbeats, the hold slot, the partition watch and the SQL session are
 * looked after at most this often (not for each message). */
#define PGO_CHORES_MS 20

/* Sets the replication socket's SO_RCVLOWAT: PGO_RCVLOWAT (on) or 1.
 * Outside pgo_stream it is always 1: libpq's own blocking reads (the end
 * of the COPY, an error's result) wait for a few bytes, never 64 KiB. */
static void
pgo_lowat(int sock, bool *batched, bool on)
{
	int lowat = on ? PGO_RCVLOWAT : 1;

	if (*batched == on || sock < 0)
		return;
	if (setsockopt(sock, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat) ==
	        0 ||
	    !on)
		*batched = on;
}

/* A Unix socket is readable as soon as one byte is in, whatever
 * SO_RCVLOWAT says: the reader then waits 0.5 ms itself unless
 * PGO_RCVLOWAT bytes are in already. No longer: the sender's buffer holds
 * only a few hundred small messages (each costs it about a kilobyte), and
 * a full one stops the walsender. */
static void
pgo_unix_gather(int sock)
{
	int avail = 0;

	if (ioctl(sock, FIONREAD, &avail) == 0 && avail < PGO_RCVLOWAT) {
		struct timespec ts = {0, 500 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* The periodic work of the reader besides reading; false on a failure
 * that ends the stream. */
static bool
pgo_chores(pgo_db *db, int64_t now)
{
	pgo *s = db->src;
	bool sql_ok;

	if (!pgo_sql_back(db, &sql_ok))
		return false;
	if (sql_ok)
		pgo_heartbeat(db);
	if (sql_ok && db->sql_lost_ms == 0)
		pgo_hold_advance(db);
	if (sql_ok && db->sql_lost_ms == 0)
		pgo_stats(db, now);
	if (sql_ok && db->sql_lost_ms == 0 &&
	    now - db->last_leaves_ms >= s->status_ms &&
	    !pgo_watch_partitions(db)) {
		if (!pgo_transient(db->sqlstate) ||
		    PQstatus(db->sql) == CONNECTION_OK)
			return false;
		/* the SQL session is gone, not the stream */
		pgo_sql_lost(db, db->err);
		db->err[0] = '\0';
		db->sqlstate[0] = '\0';
	}
	return true;
}

/* Reads for about timeout_ms, or until a failure (false). */
static bool
pgo_stream(pgo_db *db, int timeout_ms)
{
	pgo *s = db->src;
	bool ok = true;
	int64_t now = pgo_now_ms(), chores = 0;
	int64_t deadline = now + (timeout_ms > 0 ? timeout_ms : 0);
	int sock = PQsocket(db->repl);
	bool batched = false; /* SO_RCVLOWAT is PGO_RCVLOWAT, not 1 */
	struct sockaddr_storage addr;
	socklen_t addrlen = sizeof addr;
	bool unix_sock = getsockname(sock, (struct sockaddr *) &addr,
	                             &addrlen) == 0 &&
	                 addr.ss_family == AF_UNIX;

	for (bool first = true; ok; first = false) {
		char *buf = NULL;
		int r;
		pgo_copydata cd;
		char err[512];
		int64_t left = deadline - now;

		if (!first && left <= 0)
			break;
		if (now - chores >= PGO_CHORES_MS) {
			chores = now;
			if (!pgo_chores(db, now)) {
				ok = false;
				break;
			}
		}
		pthread_mutex_lock(&db->lock);
		if (now - db->last_status_ms >= s->status_ms)
			ok = pgo_send_status(db, false);
		r = ok ? PQgetCopyData(db->repl, &buf, 1) : -2;
		pthread_mutex_unlock(&db->lock);
		if (!ok)
			break;
		if (r == 0) {
			fd_set fds;
			int wait = batched ? PGO_WAIT_MS : 200, n;
			struct timeval tv;
			if (left <= 0)
				break;
			if (left < wait)
				wait = (int) left;
			tv.tv_sec = 0;
			tv.tv_usec = (suseconds_t) wait * 1000;
			FD_ZERO(&fds);
			FD_SET(sock, &fds);
			n = select(sock + 1, &fds, NULL, NULL, &tv);
			if (n < 0 && errno != EINTR)
				ok = pgo_fail(db, NULL, "select: %s",
				              strerror(errno));
			/* changes flowing: wake for many at once; a quiet
			 * stream: wake for each (no 10 ms polling when idle) */
			if (n >= 0)
				pgo_lowat(sock, &batched, n > 0);
			if (n > 0 && batched && unix_sock)
				pgo_unix_gather(sock);
			pthread_mutex_lock(&db->lock);
			if (ok && !PQconsumeInput(db->repl))
				ok = pgo_fail(db, "08006",
				              "lost the replication connection "
				              "to database \"%s\": %s",
				              db->dbname,
				              PQerrorMessage(db->repl));
			pthread_mutex_unlock(&db->lock);
			now = pgo_now_ms();
			continue;
		}
		if (r == -1) {
			/* an error says why; none: the server closed the
			 * connection, or ended the COPY at its shutdown */
			PGresult *res;
			pgo_lowat(sock, &batched, false);
			res = PQgetResult(db->repl);
			const char *st = pgo_sqlstate(res);
			const char *msg = PQerrorMessage(db->repl);
			ok =
			    pgo_fail(db, st ? st : "08006",
			             "the server ended "
			             "replication from database \"%s\": %s",
			             db->dbname,
			             *msg ? msg
			                  : "the connection was closed (is the "
			                    "server shutting down?)");
			PQclear(res);
			break;
		}
		if (r < 0) {
			ok = pgo_fail(db, "08006",
			              "lost the replication connection to "
			              "database \"%s\": %s",
			              db->dbname, PQerrorMessage(db->repl));
			break;
		}
		if (!pgo_decode_copydata(buf, (size_t) r, &cd, err,
		                         sizeof err)) {
			ok = pgo_fail(db, NULL,
			              "malformed replication message from "
			              "database \"%s\": %s",
			              db->dbname, err);
		} else if (cd.type == 'k') {
			if (cd.wal_end > db->server_wal)
				db->server_wal = cd.wal_end;
			if (cd.wal_end > pgo_received(db) && !db->in_txn)
				__atomic_store_n(&db->received, cd.wal_end,
				                 __ATOMIC_SEQ_CST);
			if (cd.reply_requested) {
				pthread_mutex_lock(&db->lock);
				ok = pgo_send_status(db, false);
				pthread_mutex_unlock(&db->lock);
			}
		} else {
			SYNCD_LOG_DEBUG(s->host,
			                "database \"%s\": message '%c' "
			                "at " SYNCD_LSN_FMT " (%zu bytes)",
			                db->dbname, cd.data[0],
			                SYNCD_LSN_ARGS(cd.wal_start), cd.len);
			atomic_store(&db->busy, true);
			if (cd.wal_end > db->server_wal)
				db->server_wal = cd.wal_end;
			if (cd.wal_start > pgo_received(db))
				__atomic_store_n(&db->received, cd.wal_start,
				                 __ATOMIC_SEQ_CST);
			ok = pgo_handle(db, cd.data, cd.len, false);
			atomic_store(&db->busy, db->in_txn || db->stream_xid ||
			                            txbuf_open(db->tx) > 0);
		}
		PQfreemem(buf);
		now = pgo_now_ms();
	}
	pgo_lowat(sock, &batched, false);
	return ok;
}

/* Starts the stream: START_REPLICATION and the status thread. */
static bool
pgo_begin_stream(pgo_db *db, uint64_t start)
{
	if (!pgo_start_replication(db, start))
		return false;
	/* START_REPLICATION ended a new slot's exported snapshot */
	free(db->snapshot);
	db->snapshot = NULL;
	db->streaming = true;
	db->last_status_ms = pgo_now_ms();
	atomic_store(&db->done, false);
	if (pthread_create(&db->status_thread, NULL, pgo_status_main, db) == 0)
		db->status_started = true;
	return true;
}

/* Ends the stream: the last confirmed position is sent, the COPY ended,
 * the status thread joined, the connections closed. Safe at any point and
 * more than once. */
void
pgo_end_stream(pgo_db *db)
{
	bool ok =
	    db->streaming && db->repl && PQstatus(db->repl) == CONNECTION_OK;

	if (ok) {
		pthread_mutex_lock(&db->lock);
		ok = pgo_send_status(db, false);
		pthread_mutex_unlock(&db->lock);
	}
	atomic_store(&db->done, true);
	if (db->status_started) {
		pthread_join(db->status_thread, NULL);
		db->status_started = false;
	}
	if (ok) {
		/* end the COPY: what the server still sends is dropped (it is
		 * past what was confirmed and comes again next time), then its
		 * CopyDone and the command's end */
		PGresult *res;
		char *buf;
		int r;
		PQputCopyEnd(db->repl, NULL);
		PQflush(db->repl);
		while ((r = PQgetCopyData(db->repl, &buf, 0)) > 0)
			PQfreemem(buf);
		while ((res = PQgetResult(db->repl)) != NULL) {
			ExecStatusType st = PQresultStatus(res);
			PQclear(res);
			if (st == PGRES_COPY_BOTH || st == PGRES_COPY_OUT)
				break;
		}
	}
	db->streaming = false;
	pgo_release_snapshot(db);
	pgo_close(db);
	txbuf_free(db->tx);
	db->tx = NULL;
	db->in_txn = false;
	db->stream_xid = 0;
	atomic_store(&db->busy, false);
	free(db->snapshot);
	db->snapshot = NULL;
	/* a new connection starts the timers and the SQL session afresh;
	 * the relation cache is kept: the new walsender sends every
	 * relation again before its first change */
	db->last_heartbeat_ms = 0;
	db->last_leaves_ms = 0;
	db->sql_lost_ms = 0;
	db->sql_attempts = 0;
}

syncd_status
pgo_start(void *state, uint32_t stream, syncd_lsn after)
{
	pgo *s = state;
	pgo_db *db = pgo_db_of(s, stream);
	uint64_t start = 0;

	if (!db)
		return SYNCD_FATAL;
	if (db->lost[0]) {
		s->host->set_error(s->host, NULL, "%s", db->lost);
		return SYNCD_FATAL;
	}
	if (!db->repl || !db->tx) {
		s->host->set_error(s->host, NULL,
		                   "database \"%s\": start before open",
		                   db->dbname);
		return SYNCD_FATAL;
	}
	if (db->streaming)
		return SYNCD_OK;
	db->err[0] = '\0';
	db->sqlstate[0] = '\0';
	/* the server starts at the slot's position or later: a later one
	 * skips the transactions that commit before it */
	if (after && after + 1 > db->slot_confirmed)
		start = after + 1;
	if (start > db->received)
		db->received = start;
	if (!pgo_begin_stream(db, start))
		return pgo_report(db, pgo_transient(db->sqlstate) ||
		                              pgo_slot_gone(db)
		                          ? SYNCD_RETRY
		                          : SYNCD_FATAL);
	return SYNCD_OK;
}

syncd_status
pgo_read(void *state, uint32_t stream, int timeout_ms, syncd_emit_fn emit,
         void *emit_ctx)
{
	pgo *s = state;
	pgo_db *db = pgo_db_of(s, stream);
	syncd_status st;

	if (!db)
		return SYNCD_FATAL;
	if (!db->streaming) {
		s->host->set_error(s->host, NULL,
		                   "database \"%s\": read before start",
		                   db->dbname);
		return SYNCD_FATAL;
	}
	db->emit = emit;
	db->emit_ctx = emit_ctx;
	db->emit_st = SYNCD_OK;
	if (pgo_stream(db, timeout_ms)) {
		db->emit = NULL;
		return SYNCD_OK;
	}
	db->emit = NULL;
	if (db->emit_st != SYNCD_OK) {
		/* the core refused the event and said why */
		db->err[0] = '\0';
		db->sqlstate[0] = '\0';
		return db->emit_st;
	}
	/* a lost connection, a server restarting: may come back; a slot
	 * invalidated or whose WAL was removed: open() says so */
	st = pgo_transient(db->sqlstate) || pgo_slot_gone(db) ? SYNCD_RETRY
	                                                      : SYNCD_FATAL;
	return pgo_report(db, st);
}

void
pgo_confirm(void *state, uint32_t stream, syncd_lsn lsn)
{
	pgo_db *db = pgo_db_find(state, stream);
	uint64_t cur;

	if (!db)
		return;
	cur = __atomic_load_n(&db->flushed, __ATOMIC_RELAXED);
	while (lsn > cur &&
	       !__atomic_compare_exchange_n(&db->flushed, &cur, lsn, true,
	                                    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}

void
pgo_close_stream(void *state, uint32_t stream)
{
	pgo_db *db = pgo_db_find(state, stream);

	if (db)
		pgo_end_stream(db);
}
