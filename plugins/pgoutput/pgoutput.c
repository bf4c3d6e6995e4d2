/*
 * pgoutput - the PostgreSQL source: logical replication with the pgoutput
 * plugin, one replication connection and one slot per database.
 *
 * Per database (one ordered stream each), as the core calls the source
 * operations: open() connects (SQL and replication=database), checks the
 * server, selects the tables, checks or creates the publication and the
 * slot; snapshot() / release() hold the full phase's snapshot; start()
 * runs START_REPLICATION; read() reads, decodes and emits in the stream's
 * thread; close() ends it. Transactions the server streams while in
 * progress (protocol 2+) are buffered, spilled to the state directory past
 * spill.threshold, and emitted at their Stream Commit, or dropped at their
 * Stream Abort.
 *
 * Flow control: the flush position sent to the server is what the core
 * confirmed durable (confirm()), held back by slot.flush.delay.time. A
 * status thread answers on a timer even while emit() blocks because the
 * sink is slow, so the server never times us out; the reading thread
 * answers keepalives that ask for a reply at once.
 *
 * Files: pgoutput.c (options, create, destroy, check, streams, open, the
 * operations table), conn.c (connections, queries, server checks),
 * catalog.c (databases, tables, partitions, list_tables), publication.c,
 * slot.c, decode.c (messages to events), stream.c (start, read, confirm,
 * close), snapshot.c (the full phase), live.c (tables copied while
 * streaming); proto.c decodes the protocol,
 * txbuf.c buffers streamed transactions; pgo.h is what they share.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgo.h"

/* The option values (host->options). */
typedef struct pgo_opts {
	const char *conninfo;
	syncd_list databases;
	syncd_list tables;
	const char *publication;
	bool autocreate;
	const char *custom_slot;
	int64_t delay_ms;
	int64_t heartbeat_ms;
	int64_t status_ms;
	int64_t spill;
	int64_t chunk_size;
	const char *partitions;
} pgo_opts;

static const syncd_option pgo_options[] = {
    {.name = "conninfo",
     .type = SYNCD_OPT_STRING,
     .help = "libpq connection string or URI of the source; empty: libpq's "
             "defaults (PGHOST, PGUSER, ...); passwords belong in ~/.pgpass",
     SYNCD_OPT_FIELD(pgo_opts, conninfo)},
    {.name = "databases",
     .type = SYNCD_OPT_LIST,
     .help = "databases to read, one slot each; default: the conninfo's "
             "dbname",
     SYNCD_OPT_FIELD(pgo_opts, databases)},
    {.name = "tables",
     .type = SYNCD_OPT_LIST,
     .help = "schema.table globs (a pattern without a schema means public); "
             "default: every table with a primary key",
     SYNCD_OPT_FIELD(pgo_opts, tables)},
    {.name = "publication",
     .type = SYNCD_OPT_STRING,
     .default_value = "dbz_publication",
     .help = "the publication that publishes the tables",
     SYNCD_OPT_FIELD(pgo_opts, publication)},
    {.name = "publication.autocreate",
     .type = SYNCD_OPT_BOOL,
     .default_value = "true",
     .help = "create the publication, or add missing tables to it",
     SYNCD_OPT_FIELD(pgo_opts, autocreate)},
    {.name = "custom.slot.name",
     .type = SYNCD_OPT_STRING,
     .help = "use this existing, inactive pgoutput slot (one database only)",
     SYNCD_OPT_FIELD(pgo_opts, custom_slot)},
    {.name = "slot.flush.delay.time",
     .type = SYNCD_OPT_DURATION,
     .default_value = "6h",
     .help = "confirm to the slot only what is older than this: the WAL kept "
             "for replays from a past time",
     .min = 0,
     .max = 30LL * 86400000,
     SYNCD_OPT_FIELD(pgo_opts, delay_ms)},
    {.name = "heartbeat.interval",
     .type = SYNCD_OPT_DURATION,
     .default_value = "30s",
     .help = "emit a heartbeat in each database this often so an idle slot "
             "advances (PostgreSQL 14+); 0: never",
     .min = 0,
     .max = 86400000,
     SYNCD_OPT_FIELD(pgo_opts, heartbeat_ms)},
    {.name = "status.interval",
     .type = SYNCD_OPT_DURATION,
     .default_value = "10s",
     .help = "send the server a standby status update at least this "
             "often (a transaction written to the destination is "
             "confirmed within 0.2 s regardless)",
     .min = 100,
     .max = 3600000,
     SYNCD_OPT_FIELD(pgo_opts, status_ms)},
    {.name = "spill.threshold",
     .type = SYNCD_OPT_SIZE,
     .default_value = "64MB",
     .unit = "MB",
     .help = "memory for in-progress streamed transactions; beyond it they "
             "spill to the state directory",
     .min = 65536,
     .max = 1LL << 40,
     SYNCD_OPT_FIELD(pgo_opts, spill)},
    {.name = "copy.chunk.size",
     .type = SYNCD_OPT_SIZE,
     .default_value = "256MB",
     .unit = "MB",
     .help = "full phase: tables larger than this on disk are copied in "
             "chunks of about this size, in parallel (PostgreSQL 14+)",
     .min = 1048576,
     .max = 1LL << 50,
     SYNCD_OPT_FIELD(pgo_opts, chunk_size)},
    {.name = "partitions",
     .type = SYNCD_OPT_ENUM,
     .choices = "root|leaf",
     .help = "a partitioned table is synced as one table under its own "
             "name (root; PostgreSQL 13+, publish_via_partition_root), or "
             "each leaf partition as a table of its own (leaf); default: "
             "root on PostgreSQL 13+, leaf before",
     SYNCD_OPT_FIELD(pgo_opts, partitions)},
    {.name = NULL}};

/* Connects and checks everything; with apply, creates what is missing. */
bool
pgo_prepare(pgo_db *db, bool apply, bool *problems, uint64_t *slot_confirmed,
            bool *slot_created)
{
	if (!pgo_check_dbname(db, problems))
		return false;
	db->sql = pgo_connect(db, false);
	if (!db->sql) {
		*problems = true;
		return false;
	}
	if (!pgo_server_checks(db, problems) ||
	    !pgo_select_tables(db, problems))
		return false;
	/* mode = full reads a snapshot: no slot, no publication */
	if (!db->src->stream)
		return true;
	db->repl = pgo_connect(db, true);
	if (!db->repl || !pgo_identify(db)) {
		*problems = true;
		return false;
	}
	/* everything that can refuse the job is checked before the
	 * publication and the slot are created */
	if (!pgo_slot(db, false, problems, slot_confirmed, slot_created))
		return false;
	if (db->lost[0]) /* the caller reports it; nothing more is done */
		return true;
	if (!pgo_publication(db, apply, problems))
		return false;
	return !apply ||
	       pgo_slot(db, true, problems, slot_confirmed, slot_created);
}

static syncd_status
pgo_create(const syncd_host *host, void **state)
{
	const pgo_opts *o = host->options;
	pgo *s = calloc(1, sizeof *s);
	size_t ndb;

	s->host = host;
	s->conninfo = o->conninfo;
	s->publication = o->publication;
	s->autocreate = o->autocreate;
	s->custom_slot = o->custom_slot;
	s->delay_ms = o->delay_ms;
	s->heartbeat_ms = o->heartbeat_ms;
	s->status_ms = o->status_ms;
	s->spill = o->spill;
	s->chunk_size = o->chunk_size;
	s->partitions = o->partitions;
	s->copy = host->job->full;
	s->stream = host->job->incremental;
	s->npatterns = o->tables.n;
	s->patterns = o->tables.items;
	*state = s;

	if (s->conninfo) {
		char *err = NULL;
		PQconninfoOption *co = PQconninfoParse(s->conninfo, &err);
		if (!co) {
			host->set_error(host, NULL,
			                "conninfo is not a valid libpq "
			                "connection string: %s",
			                err ? err : "");
			PQfreemem(err);
			return SYNCD_FATAL;
		}
		PQconninfoFree(co);
	}
	ndb = o->databases.n;
	if (ndb > PGO_MAX_DBS) {
		host->set_error(host, NULL,
		                "databases lists %zu databases; at most "
		                "%d",
		                ndb, PGO_MAX_DBS);
		return SYNCD_FATAL;
	}
	if (ndb > 1 && s->custom_slot) {
		host->set_error(
		    host, NULL,
		    "custom.slot.name names one slot but "
		    "databases lists %zu databases (one slot each); use "
		    "one database or remove custom.slot.name",
		    ndb);
		return SYNCD_FATAL;
	}
	if (host->source &&
	    host->source->select(host, NULL, NULL, NULL) == SYNCD_SELECT_YES) {
		/* the databases are found on the server (pgo_discover) */
		s->sharded = true;
		if (ndb || s->npatterns || s->custom_slot) {
			host->set_error(
			    host, NULL,
			    "with [logical_table.*] sections the databases and "
			    "tables come from their source_db_filter and "
			    "source_table_filter: remove %s from [source]",
			    ndb            ? "databases"
			    : s->npatterns ? "tables"
			                   : "custom.slot.name");
			return SYNCD_FATAL;
		}
		return SYNCD_OK;
	}
	s->ndbs = ndb ? ndb : 1;
	s->dbs = calloc(s->ndbs, sizeof *s->dbs);
	for (size_t i = 0; i < s->ndbs; i++) {
		char *dbname =
		    ndb ? strdup(o->databases.items[i]) : pgo_default_dbname(s);
		pgo_db_init(s, &s->dbs[i], (uint32_t) i, (uint32_t) i, dbname);
	}
	return SYNCD_OK;
}

static void
pgo_destroy(void *state)
{
	pgo *s = state;

	for (size_t i = 0; i < s->ndbs; i++) {
		pgo_db *db = &s->dbs[i];
		pgo_end_stream(db);
		if (db->dconn)
			PQfinish(db->dconn);
		pgo_free_live(db);
		pgo_free_tables(db);
		pgo_free_leaves(db);
		for (size_t k = 0; k < db->relcap; k++)
			pgo_rel_free(db->rels[k]);
		free(db->rels);
		for (size_t k = 0; k < db->ntypnames; k++)
			free(db->typnames[k]);
		free(db->typnames);
		pgo_decoder_free(&db->dec);
		pgo_decoder_free(&db->replay);
		free(db->samples);
		free(db->dbname);
		free(db->host);
		free(db->slot);
		free(db->hold);
		pthread_mutex_destroy(&db->lock);
	}
	free(s->dbs);
	free(s);
}

/* Reports why db failed (set_error, in the calling thread) and forgets
 * it; returns st. */
syncd_status
pgo_report(pgo_db *db, syncd_status st)
{
	const syncd_host *host = db->src->host;

	if (db->err[0])
		host->set_error(host, db->sqlstate[0] ? db->sqlstate : NULL,
		                "%s", db->err);
	else
		host->set_error(host, NULL, "failed (see above)");
	db->err[0] = '\0';
	db->sqlstate[0] = '\0';
	return st;
}

/* A failure of pgo_prepare(): an unreachable server, or one starting or
 * stopping, may come back (the core retries it when it reopens a stream,
 * and fails the job at the first open); a pre-check that failed cannot be
 * helped by restarting. */
syncd_status
pgo_prepare_failed(pgo_db *db, bool problems)
{
	if (pgo_transient(db->sqlstate))
		return SYNCD_RETRY;
	return problems ? SYNCD_INVALID : SYNCD_FATAL;
}

/* The databases, found on the server in the shard scenario. */
syncd_status
pgo_find_dbs(pgo *s)
{
	if (pgo_discover(s))
		return SYNCD_OK;
	return s->nothing ? SYNCD_INVALID : SYNCD_FATAL;
}

/* The database of a stream number (streams() gave each database's). */
pgo_db *
pgo_db_find(pgo *s, uint32_t stream)
{
	for (size_t i = 0; i < s->ndbs; i++)
		if (s->dbs[i].stream == stream)
			return &s->dbs[i];
	return NULL;
}

pgo_db *
pgo_db_of(pgo *s, uint32_t stream)
{
	pgo_db *db = pgo_db_find(s, stream);

	if (db)
		return db;
	s->host->set_error(s->host, NULL, "no stream %u", stream);
	return NULL;
}

static syncd_status
pgo_check(void *state)
{
	pgo *s = state;
	bool problems = false;
	syncd_status st;

	s->checking = true;
	if ((st = pgo_find_dbs(s)) != SYNCD_OK)
		return st;
	for (size_t i = 0; i < s->ndbs; i++) {
		pgo_db *db = &s->dbs[i];
		uint64_t confirmed;
		bool created;
		if (!pgo_prepare(db, false, &problems, &confirmed, &created) &&
		    db->err[0])
			SYNCD_LOG_ERROR(s->host, "%s", db->err);
		else if (db->lost[0])
			SYNCD_LOG_WARNING(
			    s->host,
			    "database \"%s\": %s; the job fails at start, or "
			    "with [source] slot.lost = resync drops the slot "
			    "and copies the tables again",
			    db->dbname, db->lost);
		db->err[0] = '\0';
		db->sqlstate[0] = '\0';
		pgo_close(db);
	}
	if (problems) {
		s->host->set_error(s->host, NULL, "the source is not ready");
		return SYNCD_INVALID;
	}
	return SYNCD_OK;
}

static syncd_status
pgo_streams(void *state, syncd_stream_fn fn, void *ctx)
{
	pgo *s = state;
	syncd_status st;

	if ((st = pgo_find_dbs(s)) != SYNCD_OK)
		return st;
	for (size_t i = 0; i < s->ndbs && st == SYNCD_OK; i++) {
		pgo_db *db = &s->dbs[i];
		syncd_stream one;
		if (!db->host) {
			/* the server as connected: a connection that fails
			 * here fails again, with its reason, in open() */
			PGconn *c = pgo_connect(db, false);
			if (c)
				PQfinish(c);
			db->err[0] = '\0';
			db->sqlstate[0] = '\0';
		}
		one = (syncd_stream){.size = sizeof one,
		                     .id = db->stream,
		                     .name = db->dbname,
		                     .server = db->host};
		st = fn(ctx, &one);
	}
	return st;
}

static syncd_status
pgo_open(void *state, uint32_t stream, syncd_position *pos)
{
	pgo *s = state;
	pgo_db *db;
	bool problems = false, created = false;
	uint64_t confirmed = 0;
	char prefix[64], err[512];
	syncd_status st;

	if ((st = pgo_find_dbs(s)) != SYNCD_OK)
		return st;
	if (!(db = pgo_db_of(s, stream)))
		return SYNCD_FATAL;
	pgo_end_stream(db); /* opened before and never closed */
	db->err[0] = '\0';
	db->sqlstate[0] = '\0';
	db->lost[0] = '\0';
	if (!pgo_prepare(db, true, &problems, &confirmed, &created)) {
		st = pgo_prepare_failed(db, problems);
		pgo_close(db);
		return pgo_report(db, st);
	}
	if (SYNCD_HAS(pos, holder)) {
		snprintf(db->holder, sizeof db->holder, "replication slot %s",
		         db->slot);
		pos->holder = db->holder;
	}
	if (SYNCD_HAS(pos, origin) && db->origin[0])
		pos->origin = db->origin;
	if (db->lost[0]) {
		/* nothing can stream from it: the core fails the job, or
		 * drops the slot (drop()) and opens the stream again */
		pgo_close(db);
		if (!SYNCD_HAS(pos, lost)) {
			pgo_fail(db, NULL,
			         "%s: changes are missing; drop it (SELECT "
			         "pg_drop_replication_slot('%s')) and re-sync "
			         "with mode = full+incremental",
			         db->lost, db->slot);
			return pgo_report(db, SYNCD_INVALID);
		}
		SYNCD_LOG_DEBUG(s->host, "database \"%s\": %s", db->dbname,
		                db->lost);
		pos->confirmed = pgo_reported(db, confirmed);
		pos->lost = db->lost;
		return SYNCD_OK;
	}
	snprintf(prefix, sizeof prefix, "pgoutput-%u-", db->stream);
	db->tx = txbuf_new(s->host->job->state_dir, prefix, (size_t) s->spill,
	                   err, sizeof err);
	if (!db->tx) {
		pgo_fail(db, NULL, "%s", err);
		pgo_end_stream(db);
		return pgo_report(db, SYNCD_FATAL);
	}
	if (!pgo_hold_open(db)) {
		st = pgo_transient(db->sqlstate) ? SYNCD_RETRY : SYNCD_FATAL;
		pgo_end_stream(db);
		return pgo_report(db, st);
	}
	if (created) /* what was noted of an earlier slot is void */
		pgo_forget_slot_notes(db);
	/* confirmed_flush is a commit LSN + 1 when syncd confirmed it, a
	 * received position past the last commit when nothing was pending
	 * (see pgo_confirmable), and a new slot's consistent point */
	db->slot_confirmed = confirmed;
	db->sent_flush = confirmed;
	db->received = confirmed;
	pos->confirmed = pgo_reported(db, confirmed);
	pos->created = created;
	if (SYNCD_HAS(pos, retention_ms) && db->hold)
		pos->retention_ms = s->delay_ms;
	db->dropped = false;
	return SYNCD_OK;
}

static const syncd_source_ops pgo_ops = {
    .size = sizeof(syncd_source_ops),
    .create = pgo_create,
    .destroy = pgo_destroy,
    .check = pgo_check,
    .list_tables = pgo_list_tables,
    .streams = pgo_streams,
    .open = pgo_open,
    .start = pgo_start,
    .read = pgo_read,
    .confirm = pgo_confirm,
    .close = pgo_close_stream,
    .snapshot = pgo_snapshot,
    .release = pgo_release,
    .copy_open = pgo_copy_open,
    .copy_read = pgo_copy_read,
    .copy_close = pgo_copy_close,
    .drop = pgo_drop,
    .retire = pgo_retire,
    .rewind = pgo_rewind,
    .digest = pgo_digest,
    .new_tables = pgo_new_tables,
    .snapshot_tables = pgo_snapshot_tables,
    .release_tables = pgo_release_tables,
};

SYNCD_PLUGIN(.kind = SYNCD_KIND_SOURCE, .name = "pgoutput", .version = "1.0",
             .description = "PostgreSQL logical replication (pgoutput)",
             .options = pgo_options, .options_size = sizeof(pgo_opts),
             .ops.source = &pgo_ops)
