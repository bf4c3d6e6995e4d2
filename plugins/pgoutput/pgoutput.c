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
 */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include <syncd/syncd.h>

#include "proto.h"
#include "txbuf.h"

#define PGO_HEARTBEAT_PREFIX "syncd_heartbeat"
#define PGO_MAX_DBS          64

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
     .help = "send the server a standby status update at least this often",
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

/* ---- types ------------------------------------------------------------ */

typedef struct pgo_col {
	char *name;
	uint32_t typid;
	char *type_name; /* format_type(atttypid, atttypmod) */
	char *base_type; /* enum: text; domain: its base type; else NULL */
	char *comment;
	bool key, notnull;
	uint32_t keypos; /* place in the primary key from 1; 0: not a key */
} pgo_col;

typedef struct pgo_table {
	uint32_t oid;
	char *schema, *name;
	char *qname; /* quote_ident(schema).quote_ident(name), for fixes */
	char replident;
	size_t ncols;
	pgo_col *cols;
	bool has_pk;
	bool partition;    /* relispartition */
	bool root;         /* a partitioned table synced as one (partitions =
	                      root): its leaf partitions are copied into it */
	uint32_t nparts;   /* root: its leaf partitions when selected */
	uint32_t root_oid; /* partition (leaf mode): its partitioned root */
	char **chunk_from; /* root, full phase: the leaf of each chunk */
	uint32_t nchunk_from;
	uint64_t trunc_lsn; /* root: the last TRUNCATE of it in the stream */
	uint64_t pend_since, pend_until; /* root: every leaf was truncated
	                                    between these positions */
	char *pend_names;
	bool owned; /* the role has its owner's rights */
	char *owner;
	char *pk; /* the primary key's columns when the job started: "a, b" */
	char **keys; /* the same, one name each, in key order */
	size_t nkeys;
} pgo_table;

/* The current shape of a relation, as the stream last described it. */
typedef struct pgo_rel {
	uint32_t relid;
	bool selected;
	syncd_relation rel;
	syncd_column *cols;
	syncd_value *oldv, *newv; /* scratch for one change */
} pgo_rel;

typedef struct pgo pgo;

typedef struct pgo_sample {
	uint64_t lsn;
	int64_t at_ms;
} pgo_sample;

typedef struct pgo_db {
	pgo *src;
	uint32_t index; /* the core's stream number: where it is in s->dbs */
	uint32_t
	    stream; /* the slot's number (the shard scenario), else index */
	char *dbname;
	char *host; /* as connected (the stream's server) */
	char *slot;
	char holder[96]; /* "replication slot NAME", for the core's messages */
	PGconn *sql, *repl;
	pthread_mutex_t lock; /* repl: the reader and the status thread */
	int version;          /* server_version_num */
	int proto;
	char *snapshot; /* exported by a slot created with its snapshot */
	pgo_table *tables;
	size_t ntables;
	bool named;    /* the tables syncd skips or refuses were logged */
	bool via_root; /* partitions = root on this server */
	struct pgo_leaf *leaves; /* the partitions of synced roots, as last
	                            seen while streaming */
	size_t nleaves;
	bool leaves_read;
	int64_t last_leaves_ms;
	uint64_t watch_lsn[2]; /* WAL positions of the last two reads */
	pgo_rel **rels;        /* open addressing by relid */
	size_t relcap, nrels;
	char **typnames; /* Type messages: "oid\tname" */
	size_t ntypnames;
	txbuf *tx;
	pgo_decoder dec, replay;
	/* transaction being received */
	bool in_txn;
	uint64_t txn_lsn;
	int64_t txn_time;
	uint32_t txn_xid;
	uint32_t stream_xid; /* top-level xid of the current stream block */
	bool spilling;       /* logged that spill files are in use */
	/* progress */
	uint64_t slot_confirmed; /* the slot's position when opened */
	uint64_t received;
	uint64_t sent_flush;
	uint64_t flushed; /* confirm(): durable up to this commit LSN */
	int64_t last_status_ms;
	int64_t last_heartbeat_ms;
	pgo_sample *samples; /* commits seen, one per second, for the delay */
	size_t nsamples, capsamples;
	/* while read() runs: where events go, and the first refusal */
	syncd_emit_fn emit;
	void *emit_ctx;
	syncd_status emit_st;
	/* the full phase's snapshot, held from snapshot() to release() */
	syncd_copy_table *ct;
	size_t nct;
	PGconn *tconn;        /* the temporary slot's connection */
	PGresult *tmp;        /* its CREATE_REPLICATION_SLOT result */
	PGresult *export_res; /* pg_export_snapshot() */
	bool snap_txn;        /* sql holds the snapshot's transaction */
	/* streaming: START_REPLICATION done, the status thread */
	bool streaming;
	pthread_t status_thread;
	bool status_started;
	atomic_bool done;
	char err[2048];
	char sqlstate[6];
} pgo_db;

struct pgo {
	const syncd_host *host;
	const char *conninfo, *publication, *custom_slot;
	bool autocreate;
	int64_t delay_ms, heartbeat_ms, status_ms, spill;
	size_t npatterns;
	const char *const *patterns;
	size_t ndbs;
	pgo_db *dbs;     /* in stream order; in the shard scenario the slots'
	                    numbers may skip */
	bool sharded;    /* [logical_table.*]: databases found on the server */
	bool discovered; /* ... and found */
	bool nothing;    /* ... and none matches (not worth retrying) */
	bool checking;   /* syncd --check: report, change nothing */
	bool copy;       /* mode full or full+incremental */
	bool stream;     /* mode incremental or full+incremental */
	int64_t chunk_size;
	const char *partitions; /* "root", "leaf", NULL: by server version */
};

/* A leaf partition of a synced partitioned table, while streaming. */
typedef struct pgo_leaf {
	uint32_t oid, root;
	char *name;     /* schema.name */
	char *filenode; /* its relfilenode when last seen */
	char *link;     /* xmin of its newest pg_inherits link, checked */
	bool seen;
} pgo_leaf;

static int64_t
pgo_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Microseconds since PostgreSQL's epoch, for status updates. */
static int64_t
pgo_now_pg(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000 -
	       PGO_EPOCH_OFFSET_US;
}

static bool pgo_fail(pgo_db *db, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records why this database failed; the operation that fails reports it
 * (pgo_report). */
static bool
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

static const char *
pgo_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return s && *s ? s : NULL;
}

/* ---- connections ------------------------------------------------------- */

static PGconn *
pgo_connect(pgo_db *db, bool replication)
{
	const char *keys[] = {"dbname", "dbname", "replication",
	                      "fallback_application_name", NULL};
	const char *vals[] = {db->src->conninfo ? db->src->conninfo : "",
	                      db->dbname, replication ? "database" : NULL,
	                      "syncd", NULL};
	PGconn *c;

	if (!replication) {
		keys[2] = "fallback_application_name";
		vals[2] = "syncd";
		keys[3] = NULL;
		vals[3] = NULL;
	}
	c = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(c) != CONNECTION_OK) {
		pgo_fail(db, "08001",
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

/* Runs a query with text parameters; NULL (and the failure recorded) on
 * error. */
static PGresult *
pgo_query(pgo_db *db, PGconn *c, const char *what, const char *sql, int nparams,
          const char *const *params)
{
	PGresult *res =
	    PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		pgo_fail(db, pgo_sqlstate(res),
		         "%s in database \"%s\" failed: %s", what, db->dbname,
		         PQerrorMessage(c));
		PQclear(res);
		return NULL;
	}
	return res;
}

static char *
pgo_ident(PGconn *c, const char *name)
{
	char *q = PQescapeIdentifier(c, name, strlen(name));
	char *s = q ? strdup(q) : NULL;
	PQfreemem(q);
	return s;
}

typedef struct pgo_sb {
	char *data;
	size_t len, cap;
} pgo_sb;

static void pgo_sb_printf(pgo_sb *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
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

/* ---- tables ------------------------------------------------------------ */

static void
pgo_free_cols(pgo_table *t)
{
	for (size_t k = 0; k < t->ncols; k++) {
		free(t->cols[k].name);
		free(t->cols[k].type_name);
		free(t->cols[k].base_type);
		free(t->cols[k].comment);
	}
	free(t->cols);
}

static void
pgo_free_tables(pgo_db *db)
{
	for (size_t i = 0; i < db->ntables; i++) {
		pgo_table *t = &db->tables[i];
		pgo_free_cols(t);
		free(t->schema);
		free(t->name);
		free(t->qname);
		free(t->owner);
		free(t->pk);
		for (size_t k = 0; k < t->nkeys; k++)
			free(t->keys[k]);
		free(t->keys);
		for (uint32_t k = 0; k < t->nchunk_from; k++)
			free(t->chunk_from[k]);
		free(t->chunk_from);
		free(t->pend_names);
	}
	free(db->tables);
	db->tables = NULL;
	db->ntables = 0;
}

static bool
pgo_matches(pgo *s, const char *database, const char *schema, const char *table)
{
	char full[1024];

	if (s->sharded)
		return s->host->source->select(s->host, database, schema,
		                               table) == SYNCD_SELECT_YES;
	if (s->npatterns == 0)
		return true;
	snprintf(full, sizeof full, "%s.%s", schema, table);
	for (size_t i = 0; i < s->npatterns; i++) {
		const char *p = s->patterns[i];
		if (strchr(p, '.') ? fnmatch(p, full, 0) == 0
		                   : strcmp(schema, "public") == 0 &&
		                         fnmatch(p, table, 0) == 0)
			return true;
	}
	return false;
}

static pgo_table *pgo_table_by_oid(pgo_db *db, uint32_t oid);

/* Whether a tables pattern names this table itself (no glob character),
 * rather than matching it among others. */
static bool
pgo_named(pgo *s, const char *schema, const char *table)
{
	char full[1024];

	if (s->sharded)
		return false;
	snprintf(full, sizeof full, "%s.%s", schema, table);
	for (size_t i = 0; i < s->npatterns; i++) {
		const char *p = s->patterns[i];
		if (strpbrk(p, "*?[") == NULL &&
		    (strchr(p, '.') ? strcmp(p, full) == 0
		                    : strcmp(schema, "public") == 0 &&
		                          strcmp(p, table) == 0))
			return true;
	}
	return false;
}

/* The characters the reference forbids in names (DESIGN §5 "Names"). */
static const char *
pgo_bad_name(const char *name, const char *forbidden)
{
	if (strlen(name) > 63)
		return "is longer than 63 bytes";
	if (strpbrk(name, forbidden))
		return "contains a character syncd cannot sync";
	return NULL;
}

/* Lists the selected tables with their columns and keys. Tables matched
 * but unusable (no primary key, a forbidden name) are failures naming
 * them; check_only reports every problem, else the first. */
/* Reads the columns of the tables whose OIDs are in oids ("{1,2}") and
 * appends them to those tables. */
static bool
pgo_load_columns(pgo_db *db, const char *oids, bool *problems)
{
	pgo *s = db->src;
	PGresult *cols;
	bool ok = true;

	{
		const char *params[] = {oids};
		char csql[2048];
		/* generated columns (12+) are not replicated */
		snprintf(csql, sizeof csql,
		         "SELECT a.attrelid, a.attname, a.atttypid, "
		         "       format_type(a.atttypid, a.atttypmod), "
		         "a.attnotnull, "
		         "       coalesce((SELECT k.pos FROM pg_index i, "
		         "         unnest(i.indkey::int2[]) WITH ORDINALITY "
		         "           AS k(attnum, pos) "
		         "         WHERE i.indrelid = a.attrelid AND "
		         "i.indisprimary "
		         "           AND k.attnum = a.attnum AND k.pos <= %s), "
		         "0), "
		         "       CASE ty.typtype WHEN 'e' THEN 'text' "
		         "         WHEN 'c' THEN 'text' "
		         "         WHEN 'd' THEN format_type(ty.typbasetype, "
		         "ty.typtypmod) "
		         "         ELSE (SELECT CASE el.typtype "
		         "           WHEN 'e' THEN 'text[]' WHEN 'c' THEN "
		         "'text[]' WHEN 'd' THEN format_type(el.typbasetype, "
		         "el.typtypmod) || '[]' END FROM pg_type el "
		         "           WHERE el.oid = ty.typelem AND "
		         "ty.typcategory = 'A') END, "
		         "       col_description(a.attrelid, a.attnum) "
		         "FROM pg_attribute a "
		         "  JOIN pg_type ty ON ty.oid = a.atttypid "
		         "WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 "
		         "  AND NOT a.attisdropped%s "
		         "ORDER BY a.attrelid, a.attnum",
		         /* INCLUDE columns (11+) follow the key columns */
		         db->version >= 110000 ? "i.indnkeyatts" : "i.indnatts",
		         db->version >= 120000 ? " AND a.attgenerated = ''"
		                               : "");
		cols =
		    pgo_query(db, db->sql, "listing columns", csql, 1, params);
	}
	if (!cols)
		return false;
	for (int i = 0; i < PQntuples(cols); i++) {
		uint32_t oid =
		    (uint32_t) strtoul(PQgetvalue(cols, i, 0), NULL, 10);
		const char *name = PQgetvalue(cols, i, 1);
		const char *why = pgo_bad_name(name, "\"'");
		for (size_t k = 0; k < db->ntables; k++) {
			pgo_table *t = &db->tables[k];
			pgo_col *c;
			if (t->oid != oid)
				continue;
			if (why) {
				SYNCD_LOG_ERROR(
				    s->host,
				    "column %s of %s.%s in database "
				    "\"%s\": the "
				    "name %s; rename it",
				    name, t->schema, t->name, db->dbname, why);
				*problems = true;
				ok = false;
			}
			t->cols =
			    realloc(t->cols, (t->ncols + 1) * sizeof *t->cols);
			c = &t->cols[t->ncols++];
			c->name = strdup(name);
			c->typid = (uint32_t) strtoul(PQgetvalue(cols, i, 2),
			                              NULL, 10);
			c->type_name = strdup(PQgetvalue(cols, i, 3));
			c->notnull = strcmp(PQgetvalue(cols, i, 4), "t") == 0;
			c->keypos = (uint32_t) strtoul(PQgetvalue(cols, i, 5),
			                               NULL, 10);
			c->key = c->keypos > 0;
			c->base_type = PQgetisnull(cols, i, 6)
			                   ? NULL
			                   : strdup(PQgetvalue(cols, i, 6));
			c->comment = PQgetisnull(cols, i, 7)
			                 ? NULL
			                 : strdup(PQgetvalue(cols, i, 7));
		}
	}
	PQclear(cols);
	/* stored generated columns (12+): pgoutput does not send them */
	if (ok && !db->named && db->version >= 120000) {
		const char *params[] = {oids};
		cols = pgo_query(
		    db, db->sql, "listing generated columns",
		    "SELECT a.attrelid, a.attname, pg_get_expr(d.adbin, "
		    "d.adrelid) FROM pg_attribute a JOIN pg_attrdef d ON "
		    "d.adrelid = a.attrelid AND d.adnum = a.attnum "
		    "WHERE a.attrelid = ANY ($1::oid[]) AND a.attgenerated = "
		    "'s' AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum",
		    1, params);
		if (!cols)
			return false;
		for (int i = 0; i < PQntuples(cols); i++) {
			pgo_table *t = pgo_table_by_oid(
			    db, (uint32_t) strtoul(PQgetvalue(cols, i, 0), NULL,
			                           10));
			if (t)
				SYNCD_LOG_WARNING(
				    s->host,
				    "column %s of %s.%s in database \"%s\" is "
				    "GENERATED ALWAYS AS (%s) STORED: it is "
				    "not "
				    "replicated; syncd leaves it out of the "
				    "target "
				    "(add it there as a generated column, or "
				    "compute it where it is read)",
				    PQgetvalue(cols, i, 1), t->schema, t->name,
				    db->dbname, PQgetvalue(cols, i, 2));
		}
		PQclear(cols);
	}
	if (!ok)
		return pgo_fail(db, NULL,
		                "some selected columns of database \"%s\" "
		                "cannot be synced (see above)",
		                db->dbname);
	return true;
}

/* The key columns of a table's index that satisfies COND ("indisprimary",
 * "indisreplident"), as "a, b" in key order, or NULL: a SQL fragment with
 * the server's key-column count (INCLUDE columns, 11+, are not the key). */
#define PGO_INDEX_KEY(cond, what, nkey)                                        \
	"(SELECT " what " FROM pg_index i CROSS JOIN LATERAL "                 \
	"unnest(i.indkey::int2[]) WITH "                                       \
	"ORDINALITY AS k(attnum, pos) JOIN pg_attribute a ON a.attrelid = "    \
	"i.indrelid AND a.attnum = k.attnum WHERE i.indrelid = c.oid AND "     \
	"i." cond " AND k.pos <= i." nkey ")"
#define PGO_KEY_NAMES "string_agg(a.attname, ', ' ORDER BY k.pos)"
#define PGO_KEY_SET   "array_agg(k.attnum ORDER BY k.attnum)"

/* A matched table syncd cannot sync. With tables at its default it is
 * skipped, named in a warning; a table the job names (tables, the filters
 * of [logical_table.*]) is refused. what: "has no primary key"; why: what
 * would go wrong; fix: the statement or step that makes it syncable. */
static void
pgo_unsyncable(pgo_db *db, const char *schema, const char *name,
               const char *what, const char *why, const char *fix, bool *ok,
               bool *problems)
{
	pgo *s = db->src;

	if (s->npatterns == 0 && !s->sharded) {
		if (!db->named)
			SYNCD_LOG_WARNING(
			    s->host,
			    "table %s.%s in database \"%s\" is not "
			    "synced: it %s (%s); %s to sync it",
			    schema, name, db->dbname, what, why, fix);
		return;
	}
	if (!db->named)
		SYNCD_LOG_ERROR(s->host,
		                "table %s.%s in database \"%s\" %s: %s; %s, or "
		                "leave it out of tables",
		                schema, name, db->dbname, what, why, fix);
	*problems = true;
	*ok = false;
}

/* A root's leaf partitions that make it unsyncable (partitions = root):
 * a replica identity other than its primary key's (NOTHING would make the
 * application's UPDATE and DELETE on it fail once the root is published;
 * another index would key its deletes by other columns), or a foreign
 * table (its rows are in no WAL). 1 and what/fix set, 0, -1: failed. */
static int
pgo_root_leaves(pgo_db *db, const char *oid, char *what, size_t nwhat,
                char *fix, size_t nfix)
{
	const char *params[] = {oid};
	char sql[2048];
	PGresult *res;
	int bad = 0;

#define PGO_LEAF_IDENT                                                         \
	PGO_INDEX_KEY("indisreplident", PGO_KEY_SET, "indnkeyatts")
#define PGO_LEAF_PK PGO_INDEX_KEY("indisprimary", PGO_KEY_SET, "indnkeyatts")
	snprintf(sql, sizeof sql, "%s",
	         "SELECT n.nspname || '.' || c.relname, quote_ident(n.nspname) "
	         "|| '.' || quote_ident(c.relname), c.relkind, c.relreplident "
	         "FROM pg_partition_tree($1::oid) x JOIN pg_class c ON c.oid = "
	         "x.relid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
	         "x.isleaf AND (c.relkind = 'f' OR (c.relkind = 'r' AND "
	         "(c.relreplident = 'n' OR (c.relreplident = 'i' AND "
	         "(" PGO_LEAF_IDENT " IS DISTINCT FROM " PGO_LEAF_PK "))))) "
	         "ORDER BY 1 LIMIT 1");
	res = pgo_query(db, db->sql, "reading the partitions of a table", sql,
	                1, params);
	if (!res)
		return -1;
	if (PQntuples(res) == 1) {
		char kind = PQgetvalue(res, 0, 2)[0],
		     ident = PQgetvalue(res, 0, 3)[0];
		bad = 1;
		snprintf(what, nwhat, "has a partition %s %s",
		         PQgetvalue(res, 0, 0),
		         kind == 'f'    ? "that is a foreign table"
		         : ident == 'n' ? "with REPLICA IDENTITY NOTHING"
		                        : "with REPLICA IDENTITY USING INDEX "
		                          "of another index than its primary "
		                          "key");
		if (kind == 'f')
			snprintf(fix, nfix,
			         "detach %s (logical replication does not "
			         "carry foreign tables), or set [source] "
			         "partitions = leaf",
			         PQgetvalue(res, 0, 1));
		else
			snprintf(fix, nfix,
			         "run ALTER TABLE %s REPLICA IDENTITY DEFAULT",
			         PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return bad;
}

static bool
pgo_select_tables(pgo_db *db, bool *problems)
{
	pgo *s = db->src;
	PGresult *res;
	char *oids;
	size_t len = 0, cap = 64;
	bool ok = true;
	char sql[4096];
	const char *nkey = db->version >= 110000 ? "indnkeyatts" : "indnatts";
	size_t parts_matched = 0;

	if (s->partitions && strcmp(s->partitions, "root") == 0 &&
	    db->version < 130000) {
		*problems = true;
		return pgo_fail(db, NULL,
		                "database \"%s\": partitions = root needs "
		                "PostgreSQL 13 or later (publish_via_partition_"
		                "root); the server runs PostgreSQL %d: set "
		                "[source] partitions = leaf (each partition is "
		                "synced as a table of its own)",
		                db->dbname, db->version / 10000);
	}
	db->via_root = db->version >= 130000 &&
	               (!s->partitions || strcmp(s->partitions, "root") == 0);
	/* unlogged and temporary tables are named: logical replication
	 * carries neither */
	snprintf(
	    sql, sizeof sql,
	    "SELECT c.oid, n.nspname, c.relname, c.relreplident, "
	    "       c.relpersistence, c.relispartition, "
	    "       quote_ident(n.nspname) || '.' || quote_ident(c.relname), "
	    "       pg_has_role(c.relowner, 'USAGE'), "
	    "       pg_get_userbyid(c.relowner), "
	    "       " PGO_INDEX_KEY(
	        "indisprimary", PGO_KEY_NAMES,
	        "%s") ", "
	              "       (SELECT ci.relname FROM pg_index i JOIN pg_class "
	              "ci ON "
	              "        ci.oid = i.indexrelid WHERE i.indrelid = c.oid "
	              "AND "
	              "        i.indisreplident), "
	              "       " PGO_INDEX_KEY(
	                  "indisreplident", PGO_KEY_NAMES,
	                  "%s") ", "
	                        "       " PGO_INDEX_KEY(
	                            "indisreplident", PGO_KEY_SET,
	                            "%s") " IS "
	                                  "NOT DISTINCT FROM "
	                                  "       " PGO_INDEX_KEY(
	                                      "indisprimary", PGO_KEY_SET,
	                                      "%s") ", c.relkind, %s, %s "
	                                            "FROM pg_class c JOIN "
	                                            "pg_namespace n ON n.oid = "
	                                            "c.relnamespace "
	                                            "WHERE c.relkind IN ('r', "
	                                            "'p') AND "
	                                            "c.relpersistence IN ('p', "
	                                            "'u', 't') "
	                                            "  AND n.nspname NOT IN "
	                                            "('pg_catalog', "
	                                            "'information_schema') "
	                                            "  AND n.nspname !~ "
	                                            "'^pg_toast' "
	                                            "ORDER BY n.nspname, "
	                                            "c.relname",
	    nkey, nkey, nkey, nkey,
	    /* a root's leaf partitions; a partition's root (12+) */
	    db->version >= 120000
	        ? "CASE WHEN c.relkind = 'p' THEN (SELECT count(*) FROM "
	          "pg_partition_tree(c.oid) x JOIN pg_class l ON l.oid = "
	          "x.relid WHERE x.isleaf AND l.relkind = 'r') END"
	        : "NULL",
	    db->version >= 120000
	        ? "CASE WHEN c.relispartition THEN "
	          "pg_partition_root(c.oid)::oid "
	          "END, CASE WHEN c.relispartition THEN (SELECT rn.nspname "
	          "|| '.' || rc.relname FROM pg_class rc JOIN pg_namespace "
	          "rn ON rn.oid = rc.relnamespace WHERE rc.oid = "
	          "pg_partition_root(c.oid)) END"
	        : "NULL, NULL");

	pgo_free_tables(db);
	res = pgo_query(db, db->sql, "listing tables", sql, 0, NULL);
	if (!res)
		return false;
	db->tables = calloc((size_t) PQntuples(res) + 1, sizeof(pgo_table));
	oids = malloc(cap);
	strcpy(oids, "{");
	len = 1;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *schema = PQgetvalue(res, i, 1);
		const char *name = PQgetvalue(res, i, 2);
		char replident = PQgetvalue(res, i, 3)[0];
		const char *qname = PQgetvalue(res, i, 6);
		bool has_pk = !PQgetisnull(res, i, 9);
		const char *pk = PQgetvalue(res, i, 9);
		const char *why;
		char what[1024], fix[1024];
		char relkind = PQgetvalue(res, i, 13)[0];
		bool ispart = strcmp(PQgetvalue(res, i, 5), "t") == 0;
		pgo_table *t;

		/* partitions = root: a root (not itself a partition) is one
		 * table, its partitions are not tables of their own; leaf: a
		 * root holds no rows, its leaves are the tables */
		if (relkind == 'p' && (!db->via_root || ispart))
			continue;
		if (relkind == 'r' && ispart && db->via_root) {
			if (pgo_named(s, schema, name)) {
				SYNCD_LOG_ERROR(
				    s->host,
				    "table %s.%s in database \"%s\" is a "
				    "partition of %s: with partitions = root "
				    "(the default on PostgreSQL 13+) it is "
				    "synced through its partitioned table; "
				    "name %s in tables instead, or set "
				    "[source] partitions = leaf to sync each "
				    "partition as a table of its own",
				    schema, name, db->dbname,
				    PQgetvalue(res, i, 16),
				    PQgetvalue(res, i, 16));
				*problems = true;
				ok = false;
			} else if (s->npatterns &&
			           pgo_matches(s, db->dbname, schema, name))
				parts_matched++;
			continue;
		}
		if (!pgo_matches(s, db->dbname, schema, name))
			continue;
		if (PQgetvalue(res, i, 4)[0] == 't') {
			/* named, never refused: another session's table,
			 * gone when that session ends */
			if (!db->named)
				SYNCD_LOG_WARNING(
				    s->host,
				    "table %s.%s in database \"%s\" is "
				    "not synced: it is TEMPORARY (it "
				    "belongs to the session that created "
				    "it, and logical replication does not "
				    "carry it)",
				    schema, name, db->dbname);
			continue;
		}
		if (PQgetvalue(res, i, 4)[0] == 'u') {
			snprintf(fix, sizeof fix,
			         "run ALTER TABLE %s SET LOGGED", qname);
			pgo_unsyncable(db, schema, name, "is UNLOGGED",
			               "logical replication does not carry the "
			               "changes of unlogged tables",
			               fix, &ok, problems);
			continue;
		}
		if (!has_pk) {
			pgo_unsyncable(db, schema, name, "has no primary key",
			               "syncd cannot apply its updates and "
			               "deletes",
			               "add a primary key", &ok, problems);
			continue;
		}
		if (relkind == 'p') {
			int bad =
			    pgo_root_leaves(db, PQgetvalue(res, i, 0), what,
			                    sizeof what, fix, sizeof fix);
			if (bad < 0) {
				PQclear(res);
				free(oids);
				return false;
			}
			if (bad) {
				pgo_unsyncable(
				    db, schema, name, what,
				    "publishing it publishes every partition",
				    fix, &ok, problems);
				continue;
			}
		}
		snprintf(fix, sizeof fix,
		         "run ALTER TABLE %s REPLICA IDENTITY DEFAULT", qname);
		if (replident == 'n' ||
		    (replident == 'i' && PQgetisnull(res, i, 10))) {
			/* an identity index that was dropped leaves the table
			 * without identity, as NOTHING */
			pgo_unsyncable(
			    db, schema, name,
			    replident == 'n'
			        ? "has REPLICA IDENTITY NOTHING"
			        : "has REPLICA IDENTITY USING INDEX "
			          "of an index that no longer "
			          "exists",
			    "publishing it would make the application's own "
			    "UPDATE and DELETE on it fail",
			    fix, &ok, problems);
			continue;
		}
		if (replident == 'i' &&
		    strcmp(PQgetvalue(res, i, 12), "t") != 0) {
			snprintf(what, sizeof what,
			         "has REPLICA IDENTITY USING INDEX %s on (%s), "
			         "not on its primary key (%s)",
			         PQgetvalue(res, i, 10), PQgetvalue(res, i, 11),
			         pk);
			snprintf(
			    fix, sizeof fix,
			    "run ALTER TABLE %s REPLICA IDENTITY DEFAULT (or "
			    "FULL)",
			    qname);
			pgo_unsyncable(
			    db, schema, name, what,
			    "its deletes and key changes carry the "
			    "index's columns, and syncd keys rows by "
			    "the primary key",
			    fix, &ok, problems);
			continue;
		}
		if ((why = pgo_bad_name(schema, "\".'<>")) ||
		    (why = pgo_bad_name(name, "\".'<>"))) {
			SYNCD_LOG_ERROR(
			    s->host,
			    "table %s.%s in database \"%s\": the name %s; "
			    "rename it, or leave it out of tables",
			    schema, name, db->dbname, why);
			*problems = true;
			ok = false;
			continue;
		}
		t = &db->tables[db->ntables++];
		t->oid = (uint32_t) strtoul(PQgetvalue(res, i, 0), NULL, 10);
		t->schema = strdup(schema);
		t->name = strdup(name);
		t->qname = strdup(qname);
		t->replident = replident;
		t->has_pk = true;
		t->partition = strcmp(PQgetvalue(res, i, 5), "t") == 0;
		t->owned = strcmp(PQgetvalue(res, i, 7), "t") == 0;
		t->owner = strdup(PQgetvalue(res, i, 8));
		t->pk = strdup(pk);
		t->root = relkind == 'p';
		t->nparts =
		    (uint32_t) strtoul(PQgetvalue(res, i, 14), NULL, 10);
		t->root_oid =
		    (uint32_t) strtoul(PQgetvalue(res, i, 15), NULL, 10);
		if (t->root && !db->named)
			SYNCD_LOG_INFO(
			    s->host,
			    "table %s.%s in database \"%s\" is "
			    "partitioned: synced as one table with its "
			    "%u partition%s (partitions = root)",
			    schema, name, db->dbname, t->nparts,
			    t->nparts == 1 ? "" : "s");
		while (len + 16 > cap)
			oids = realloc(oids, cap *= 2);
		len += (size_t) sprintf(oids + len, "%s%u", len > 1 ? "," : "",
		                        t->oid);
	}
	PQclear(res);
	strcpy(oids + len, "}");
	if (!ok) {
		free(oids);
		db->named = true;
		return pgo_fail(db, NULL,
		                "some selected tables of database \"%s\" "
		                "cannot be synced (see above)",
		                db->dbname);
	}
	if (db->ntables == 0) {
		free(oids);
		db->named = true;
		return pgo_fail(
		    db, NULL,
		    "no table of database \"%s\" is selected: tables = "
		    "%s matches no table syncd can sync%s%s",
		    db->dbname, s->npatterns ? "(as set)" : "(all)",
		    s->npatterns ? "" : " (see the warnings above)",
		    parts_matched
		        ? "; it matches partitions only, which partitions = "
		          "root syncs through their partitioned table: name "
		          "that table, or set [source] partitions = leaf"
		        : "");
	}
	ok = pgo_load_columns(db, oids, problems);
	db->named = true;
	free(oids);
	/* the key the job starts with: a Relation message must keep it */
	for (size_t i = 0; ok && i < db->ntables; i++) {
		pgo_table *t = &db->tables[i];
		t->keys = calloc(t->ncols + 1, sizeof *t->keys);
		for (uint32_t pos = 1; pos <= t->ncols; pos++)
			for (size_t c = 0; c < t->ncols; c++)
				if (t->cols[c].keypos == pos)
					t->keys[t->nkeys++] =
					    strdup(t->cols[c].name);
	}
	return ok;
}

static pgo_table *
pgo_table_by_oid(pgo_db *db, uint32_t oid)
{
	for (size_t i = 0; i < db->ntables; i++)
		if (db->tables[i].oid == oid)
			return &db->tables[i];
	return NULL;
}

/* ---- publication --------------------------------------------------------- */

/* The name to suggest for a publication of syncd's own. */
static void
pgo_own_publication(pgo *s, char *buf, size_t len)
{
	snprintf(buf, len, "syncd_%s", s->host->job->name);
}

/*
 * Checks that the publication publishes every operation and every selected
 * table; with apply and publication.autocreate, creates it or adds what is
 * missing, else fails with the statement that would fix it and who may run
 * it.
 *
 * A publication syncd creates carries the comment "created by syncd job
 * NAME"; one without it is another consumer's (Debezium's default name is
 * ours too) and is never changed: what it lacks is a failure naming the
 * statement its owner must run. Its owner opts in by setting the comment.
 * CREATE PUBLICATION ... FOR TABLE needs CREATE on the database and the
 * ownership of each table; ALTER PUBLICATION ... ADD TABLE the ownership
 * of the publication and of each table: both are checked first.
 */
static bool
pgo_publication(pgo_db *db, bool apply, bool *problems)
{
	pgo *s = db->src;
	const char *params[] = {s->publication};
	PGresult *res;
	bool exists, all_tables = false, ops_ok = true, ours = false;
	bool via_root = false, pub_owned = true, may_create, fix_root;
	char *pub = pgo_ident(db->sql, s->publication);
	char *owner = NULL, *role = NULL, *mark = NULL, own[128], sql[1024];
	pgo_sb missing = {0}, others = {0}, parts = {0}, stmt = {0}, need = {0};
	size_t nmissing = 0;
	bool ok = false;

	pgo_own_publication(s, own, sizeof own);
	snprintf(sql, sizeof sql, "created by syncd job %s",
	         s->host->job->name);
	{
		char *q = PQescapeLiteral(db->sql, sql, strlen(sql));
		mark = strdup(q ? q : "''");
		PQfreemem(q);
	}
	snprintf(
	    sql, sizeof sql,
	    "SELECT puballtables, pubinsert AND pubupdate AND pubdelete%s, "
	    "pg_get_userbyid(pubowner), pg_has_role(pubowner, 'USAGE'), "
	    "coalesce(obj_description(oid, 'pg_publication') LIKE "
	    "'created by syncd%%', false), %s FROM pg_publication WHERE "
	    "pubname = $1",
	    db->version >= 110000 ? " AND pubtruncate" : "",
	    db->version >= 130000 ? "pubviaroot" : "false");
	res = pgo_query(db, db->sql, "reading the publication", sql, 1, params);
	if (!res)
		goto done;
	exists = PQntuples(res) == 1;
	if (exists) {
		all_tables = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		ops_ok = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
		owner = strdup(PQgetvalue(res, 0, 2));
		pub_owned = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
		ours = strcmp(PQgetvalue(res, 0, 4), "t") == 0;
		via_root = strcmp(PQgetvalue(res, 0, 5), "t") == 0;
	}
	PQclear(res);
	res = pgo_query(db, db->sql, "reading the role's rights",
	                "SELECT current_user, has_database_privilege("
	                "current_database(), 'CREATE')",
	                0, NULL);
	if (!res)
		goto done;
	role = strdup(PQgetvalue(res, 0, 0));
	may_create = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	PQclear(res);

	/* publish_via_partition_root must match partitions: under true,
	 * pgoutput reports a partition's changes under its published root;
	 * under false, a root's partitions as tables of their own. It
	 * matters once a root (root mode) or a partition (leaf) is synced. */
	for (size_t i = 0; exists && i < db->ntables; i++)
		if (db->via_root ? db->tables[i].root : db->tables[i].partition)
			pgo_sb_printf(&parts, "%s%s.%s", parts.len ? ", " : "",
			              db->tables[i].schema, db->tables[i].name);
	fix_root = parts.len && via_root != db->via_root;
	if (!ops_ok) {
		*problems = true;
		if (ours)
			pgo_fail(
			    db, NULL,
			    "publication %s in database \"%s\" does not "
			    "publish every operation; run ALTER PUBLICATION "
			    "%s SET (publish = 'insert, update, delete, "
			    "truncate')",
			    s->publication, db->dbname, pub);
		else
			pgo_fail(
			    db, NULL,
			    "publication %s in database \"%s\" does not "
			    "publish every operation, and syncd did not "
			    "create it: another consumer may rely on it as "
			    "it is; set [source] publication = %s (a "
			    "publication of syncd's own)",
			    s->publication, db->dbname, own);
		goto done;
	}

	/* the selected tables the publication lacks */
	if (!all_tables) {
		PGresult *have = NULL;
		if (exists) {
			have = pgo_query(
			    db, db->sql, "reading the publication's tables",
			    "SELECT schemaname, tablename FROM "
			    "pg_publication_tables WHERE pubname = $1 UNION "
			    "SELECT n.nspname, c.relname FROM "
			    "pg_publication_rel pr JOIN pg_publication p ON "
			    "p.oid = pr.prpubid JOIN pg_class c ON c.oid = "
			    "pr.prrelid JOIN pg_namespace n ON n.oid = "
			    "c.relnamespace WHERE p.pubname = $1",
			    1, params);
			if (!have)
				goto done;
		}
		for (size_t i = 0; i < db->ntables; i++) {
			pgo_table *t = &db->tables[i];
			bool found = false;
			char *sn, *tn;
			for (int k = 0; have && k < PQntuples(have) && !found;
			     k++)
				found = strcmp(PQgetvalue(have, k, 0),
				               t->schema) == 0 &&
				        strcmp(PQgetvalue(have, k, 1),
				               t->name) == 0;
			if (found)
				continue;
			sn = pgo_ident(db->sql, t->schema);
			tn = pgo_ident(db->sql, t->name);
			pgo_sb_printf(&missing, "%s%s.%s", nmissing ? ", " : "",
			              sn, tn);
			nmissing++;
			if (!t->owned)
				pgo_sb_printf(&others, "%s%s.%s (owner %s)",
				              others.len ? ", " : "", t->schema,
				              t->name, t->owner);
			free(sn);
			free(tn);
		}
		PQclear(have);
	}
	if (nmissing == 0 && exists && !fix_root) {
		if (!ours && s->checking)
			SYNCD_LOG_INFO(
			    s->host,
			    "publication %s in database \"%s\" was not "
			    "created by syncd: syncd reads it and never "
			    "changes it",
			    s->publication, db->dbname);
		ok = true;
		goto done;
	}
	/* only tables syncd can sync are ever added (a primary key, an
	 * identity other than NOTHING), so the application's own UPDATE and
	 * DELETE keep working */
	if (fix_root) {
		pgo_sb_printf(&stmt,
		              "ALTER PUBLICATION %s SET "
		              "(publish_via_partition_root = %s)",
		              pub, db->via_root ? "true" : "false");
		pgo_sb_printf(&need,
		              "is created WITH (publish_via_partition_root = "
		              "%s), which reports %s %s %s (partitions = %s)",
		              via_root ? "true" : "false",
		              db->via_root ? "the partitions of"
		                           : "the changes of the partitions",
		              parts.data,
		              db->via_root ? "as tables of their own"
		                           : "under their partitioned table",
		              db->via_root ? "root" : "leaf");
	}
	if (nmissing) {
		pgo_sb_printf(&stmt, "%s%s PUBLICATION %s %s TABLE %s%s",
		              stmt.len ? "; " : "", exists ? "ALTER" : "CREATE",
		              pub, exists ? "ADD" : "FOR", missing.data,
		              !exists && db->via_root
		                  ? " WITH (publish_via_partition_root = true)"
		                  : "");
		pgo_sb_printf(&need, "%s%s %s", need.len ? " and " : "",
		              exists ? "lacks"
		                     : "does not exist and is needed for",
		              missing.data);
	}
	if (exists && !ours) {
		*problems = true;
		pgo_fail(
		    db, NULL,
		    "publication %s in database \"%s\" %s, and syncd "
		    "did not create it: syncd never changes a publication "
		    "another consumer (such as Debezium, whose default "
		    "name this is) may use; set [source] publication = %s "
		    "for a publication of syncd's own%s%s, or have its owner "
		    "%s run: %s",
		    s->publication, db->dbname, need.data, own,
		    fix_root ? ", or [source] partitions = " : "",
		    fix_root ? (db->via_root ? "leaf" : "root") : "", owner,
		    stmt.data);
		goto done;
	}
	if (!s->autocreate) {
		*problems = true;
		SYNCD_LOG_ERROR(
		    s->host, "publication %s in database \"%s\" %s; fix: %s",
		    s->publication, db->dbname, need.data, stmt.data);
		pgo_fail(db, NULL,
		         "publication %s in database \"%s\" is incomplete (see "
		         "above)",
		         s->publication, db->dbname);
		goto done;
	}
	if (!(exists ? pub_owned : may_create) || others.len) {
		pgo_sb why = {0};
		if (exists && !pub_owned)
			pgo_sb_printf(&why, "the publication is owned by %s",
			              owner);
		if (!exists && !may_create)
			pgo_sb_printf(&why,
			              "it lacks CREATE on database \"%s\"",
			              db->dbname);
		if (others.len)
			pgo_sb_printf(&why, "%sthe tables %s belong to others",
			              why.len ? "; " : "", others.data);
		*problems = true;
		pgo_fail(
		    db, NULL,
		    "publication %s in database \"%s\" %s, and role %s "
		    "may not %s it (%s): have a role that %s run: %s%s%s%s%s",
		    s->publication, db->dbname, need.data, role,
		    exists ? "alter" : "create", why.data,
		    !exists    ? "has CREATE on the database and owns the "
		                 "tables"
		    : nmissing ? "owns the publication and the tables"
		               : "owns the publication",
		    stmt.data, exists ? "" : "; COMMENT ON PUBLICATION ",
		    exists ? "" : pub, exists ? "" : " IS ",
		    exists ? "" : mark);
		free(why.data);
		goto done;
	}
	if (!exists)
		pgo_sb_printf(&stmt, "; COMMENT ON PUBLICATION %s IS %s", pub,
		              mark);
	if (!apply) {
		SYNCD_LOG_INFO(s->host,
		               "publication %s in database \"%s\" %s; syncd "
		               "will run: %s",
		               s->publication, db->dbname, need.data,
		               stmt.data);
		ok = true;
		goto done;
	}
	/* one transaction: a publication syncd creates is always marked */
	{
		PGresult *r = PQexec(db->sql, "BEGIN");
		bool began = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		if (began) {
			r = PQexec(db->sql, stmt.data);
			if (PQresultStatus(r) != PGRES_COMMAND_OK) {
				pgo_fail(db, pgo_sqlstate(r),
				         "%s in database \"%s\" failed: %s",
				         stmt.data, db->dbname,
				         PQerrorMessage(db->sql));
				PQclear(r);
				r = PQexec(db->sql, "ROLLBACK");
			} else {
				PQclear(r);
				r = PQexec(db->sql, "COMMIT");
				ok = PQresultStatus(r) == PGRES_COMMAND_OK;
				if (!ok)
					pgo_fail(
					    db, pgo_sqlstate(r),
					    "%s in database \"%s\" failed: %s",
					    stmt.data, db->dbname,
					    PQerrorMessage(db->sql));
			}
			PQclear(r);
		} else
			pgo_fail(db, NULL,
			         "could not begin a transaction in database "
			         "\"%s\": %s",
			         db->dbname, PQerrorMessage(db->sql));
	}
	if (ok)
		SYNCD_LOG_INFO(s->host, "database \"%s\": %s", db->dbname,
		               stmt.data);
done:
	free(pub);
	free(mark);
	free(owner);
	free(role);
	free(missing.data);
	free(others.data);
	free(parts.data);
	free(stmt.data);
	free(need.data);
	return ok;
}

/* ---- slot ------------------------------------------------------------------
 */

static char *
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

static uint64_t
pgo_parse_lsn(const char *s)
{
	unsigned hi = 0, lo = 0;
	if (!s || sscanf(s, "%X/%X", &hi, &lo) != 2)
		return 0;
	return ((uint64_t) hi << 32) | lo;
}

/* Checks the slot; creates it when missing and allowed. *confirmed is its
 * confirmed position (0 when just created). */
static bool
pgo_slot(pgo_db *db, bool apply, bool *problems, uint64_t *confirmed,
         bool *created)
{
	pgo *s = db->src;
	const char *params[] = {db->slot};
	PGresult *res;

	*confirmed = 0;
	*created = false;
	res = pgo_query(db, db->sql, "reading the replication slot",
	                db->version >= 130000
	                    ? "SELECT plugin, slot_type, database, active, "
	                      "active_pid, wal_status, confirmed_flush_lsn "
	                      "FROM pg_replication_slots WHERE slot_name = $1"
	                    : "SELECT plugin, slot_type, database, active, "
	                      "active_pid, 'reserved', confirmed_flush_lsn "
	                      "FROM pg_replication_slots WHERE slot_name = $1",
	                1, params);
	if (!res)
		return false;
	if (PQntuples(res) == 0) {
		PQclear(res);
		if (s->custom_slot) {
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
		if (atoi(PQgetvalue(res, 0, 0)) <= 0) {
			PQclear(res);
			*problems = true;
			return pgo_fail(
			    db, "53400",
			    "no free replication slot in the source (all "
			    "max_replication_slots are in use); drop an "
			    "unused slot or raise max_replication_slots");
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
			char *sql = malloc(n);
			PGresult *r;
			/* with a full phase, the slot's snapshot is the copy's:
			 * the stream starts exactly where the copy ends */
			snprintf(sql, n,
			         "CREATE_REPLICATION_SLOT %s LOGICAL pgoutput "
			         "%s",
			         slot,
			         s->copy ? "EXPORT_SNAPSHOT"
			                 : "NOEXPORT_SNAPSHOT");
			r = PQexec(db->repl, sql);
			free(sql);
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
	} else if (strcmp(PQgetvalue(res, 0, 3), "t") == 0) {
		pgo_fail(
		    db, "55006",
		    "replication slot %s is active for PID %s: "
		    "another syncd or a subscriber is using it; stop it first, "
		    "or give this job another name",
		    db->slot, PQgetvalue(res, 0, 4));
	} else if (strcmp(PQgetvalue(res, 0, 5), "lost") == 0) {
		pgo_fail(
		    db, NULL,
		    "replication slot %s has lost WAL it needs "
		    "(wal_status = lost): changes are missing; drop the slot "
		    "and re-sync with mode = full+incremental",
		    db->slot);
	}
	*confirmed = pgo_parse_lsn(PQgetvalue(res, 0, 6));
	PQclear(res);
	if (db->err[0]) {
		*problems = true;
		return false;
	}
	return true;
}

/* ---- relations -------------------------------------------------------------
 */

static pgo_rel *
pgo_rel_find(pgo_db *db, uint32_t relid)
{
	if (!db->relcap)
		return NULL;
	for (size_t i = relid & (db->relcap - 1);;
	     i = (i + 1) & (db->relcap - 1)) {
		if (!db->rels[i])
			return NULL;
		if (db->rels[i]->relid == relid)
			return db->rels[i];
	}
}

static void
pgo_rel_free(pgo_rel *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; i < r->rel.ncolumns; i++) {
		free((char *) r->cols[i].name);
		free((char *) r->cols[i].type_name);
	}
	free(r->cols);
	free((char *) r->rel.schema);
	free((char *) r->rel.table);
	free(r->oldv);
	free(r->newv);
	free(r);
}

static void
pgo_rel_put(pgo_db *db, pgo_rel *r)
{
	size_t i;
	if (db->nrels * 2 >= db->relcap) {
		size_t cap = db->relcap ? db->relcap * 2 : 64;
		pgo_rel **old = db->rels;
		size_t oldcap = db->relcap;
		db->rels = calloc(cap, sizeof *db->rels);
		db->relcap = cap;
		db->nrels = 0;
		for (size_t k = 0; k < oldcap; k++)
			if (old[k])
				pgo_rel_put(db, old[k]);
		free(old);
	}
	for (i = r->relid & (db->relcap - 1); db->rels[i];
	     i = (i + 1) & (db->relcap - 1)) {
		if (db->rels[i]->relid == r->relid) {
			pgo_rel_free(db->rels[i]);
			db->rels[i] = r;
			return;
		}
	}
	db->rels[i] = r;
	db->nrels++;
}

static const char *
pgo_type_name(pgo_db *db, uint32_t typid, const pgo_table *t, const char *col)
{
	static __thread char buf[64];
	for (size_t i = 0; t && i < t->ncols; i++)
		if (strcmp(t->cols[i].name, col) == 0 &&
		    t->cols[i].typid == typid)
			return t->cols[i].type_name;
	for (size_t i = 0; i < db->ntypnames; i++) {
		unsigned oid = (unsigned) strtoul(db->typnames[i], NULL, 10);
		if (oid == typid)
			return strchr(db->typnames[i], '\t') + 1;
	}
	snprintf(buf, sizeof buf, "oid %u", typid);
	return buf;
}

/* Hands an event to read()'s emit; the first refusal is kept for read()
 * to return. */
static syncd_status
pgo_emit(pgo_db *db, syncd_event *ev)
{
	syncd_status st;

	ev->size = sizeof *ev;
	ev->stream = db->index;
	if (!db->emit) {
		pgo_fail(db, NULL, "database \"%s\": an event outside read()",
		         db->dbname);
		return SYNCD_FATAL;
	}
	st = db->emit(db->emit_ctx, ev);
	if (st != SYNCD_OK && db->emit_st == SYNCD_OK)
		db->emit_st = st;
	return st;
}

/* A selected table whose columns changed (ALTER TABLE while streaming):
 * read them again, for their type names, keys and NOT NULL. */
static void
pgo_refresh_table(pgo_db *db, pgo_table *t, const pgo_msg *m)
{
	char oids[32];
	bool problems = false;

	for (uint16_t i = 0; i < m->natts; i++) {
		bool known = false;
		for (size_t k = 0; k < t->ncols && !known; k++)
			known = strcmp(t->cols[k].name, m->atts[i].name) == 0 &&
			        t->cols[k].typid == m->atts[i].typid;
		if (known)
			continue;
		pgo_free_cols(t);
		t->cols = NULL;
		t->ncols = 0;
		snprintf(oids, sizeof oids, "{%u}", t->oid);
		if (!pgo_load_columns(db, oids, &problems)) {
			SYNCD_LOG_WARNING(
			    db->src->host,
			    "database \"%s\": could not read the new "
			    "columns of %s.%s: %s",
			    db->dbname, t->schema, t->name, db->err);
			db->err[0] = '\0';
		}
		return;
	}
}

static const char *
pgo_identity_name(char replident)
{
	switch (replident) {
	case 'd': return "DEFAULT";
	case 'f': return "FULL";
	case 'i': return "USING INDEX";
	default: return "NOTHING";
	}
}

/* Whether a selected table's replica identity, as a Relation message
 * describes it, still gives the key the job started with (its primary key
 * then): DEFAULT and USING INDEX flag exactly those columns; FULL flags
 * every column, so the primary key is read from the catalog. Else the job
 * stops here, before any change that follows is applied. A change to
 * another exact identity (DEFAULT -> FULL) is logged. */
static bool
pgo_identity_kept(pgo_db *db, pgo_table *t, const pgo_msg *m)
{
	pgo *s = db->src;
	pgo_sb now = {0};
	bool same = true;
	size_t nflagged = 0;

	if (m->replident == 'f') {
		char oid[16], sql[1024];
		const char *params[] = {oid};
		PGresult *res;
		snprintf(oid, sizeof oid, "%u", t->oid);
		snprintf(
		    sql, sizeof sql,
		    "SELECT a.attname FROM pg_index i CROSS JOIN LATERAL "
		    "unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, "
		    "pos) JOIN pg_attribute a ON a.attrelid = i.indrelid "
		    "AND a.attnum = k.attnum WHERE i.indrelid = $1::oid "
		    "AND i.indisprimary AND k.pos <= i.%s ORDER BY k.pos",
		    db->version >= 110000 ? "indnkeyatts" : "indnatts");
		res = pgo_query(db, db->sql, "reading a primary key", sql, 1,
		                params);
		if (!res)
			return false;
		same = (size_t) PQntuples(res) == t->nkeys;
		if (PQntuples(res) == 0) {
			/* dropped since: its changes up to the drop keep the
			 * key they were made with */
			PQclear(res);
			res = pgo_query(db, db->sql, "reading a table",
			                "SELECT 1 FROM pg_class WHERE oid = "
			                "$1::oid",
			                1, params);
			if (!res)
				return false;
			same = PQntuples(res) == 0;
			PQclear(res);
			res = NULL;
		}
		for (int i = 0; res && i < PQntuples(res); i++) {
			pgo_sb_printf(&now, "%s%s", i ? ", " : "",
			              PQgetvalue(res, i, 0));
			if (same &&
			    strcmp(PQgetvalue(res, i, 0), t->keys[i]) != 0)
				same = false;
		}
		PQclear(res);
	} else {
		for (uint16_t i = 0; i < m->natts; i++) {
			bool key = false;
			if (!(m->atts[i].flags & 1))
				continue;
			pgo_sb_printf(&now, "%s%s", nflagged ? ", " : "",
			              m->atts[i].name);
			nflagged++;
			for (size_t k = 0; k < t->nkeys && !key; k++)
				key = strcmp(t->keys[k], m->atts[i].name) == 0;
			same &= key;
		}
		same &= nflagged == t->nkeys && m->replident != 'n';
	}
	if (same) {
		if (m->replident != t->replident)
			SYNCD_LOG_INFO(
			    s->host,
			    "table %s.%s in database \"%s\": replica "
			    "identity %s became %s; the key is still "
			    "(%s)",
			    t->schema, t->name, db->dbname,
			    pgo_identity_name(t->replident),
			    pgo_identity_name(m->replident), t->pk);
		t->replident = m->replident;
		free(now.data);
		return true;
	}
	pgo_fail(
	    db, NULL,
	    "table %s.%s in database \"%s\" changed while streaming: "
	    "replica identity %s with the primary key (%s) became %s%s%s%s; "
	    "syncd keys its rows by (%s) and stops before the change "
	    "that follows (not confirmed): run ALTER TABLE %s REPLICA "
	    "IDENTITY DEFAULT%s, then re-sync the table, whose changes "
	    "since cannot be applied exactly (a new job with mode = "
	    "full+incremental, or a new slot)",
	    t->schema, t->name, db->dbname, pgo_identity_name(t->replident),
	    t->pk, pgo_identity_name(m->replident),
	    m->replident == 'n'   ? ""
	    : m->replident == 'f' ? " with the primary key ("
	    : m->replident == 'i' ? " on ("
	                          : " with the key (",
	    m->replident == 'n' ? ""
	    : now.data          ? now.data
	                        : "none",
	    m->replident == 'n' ? "" : ")", t->pk, t->qname,
	    m->replident == 'n' || m->replident == 'i'
	        ? ""
	        : " and restore the primary key");
	free(now.data);
	return false;
}

/* ---- partitions while streaming ------------------------------------------
 */

static void
pgo_free_leaves(pgo_db *db)
{
	for (size_t i = 0; i < db->nleaves; i++) {
		free(db->leaves[i].name);
		free(db->leaves[i].filenode);
		free(db->leaves[i].link);
	}
	free(db->leaves);
	db->leaves = NULL;
	db->nleaves = 0;
	db->leaves_read = false;
}

/*
 * Re-reads the leaf partitions of the synced roots (partitions = root), or
 * of the roots of the synced partitions (leaf), at each status interval and
 * at each Relation message of a root.
 *
 * Root mode: a leaf whose newest pg_inherits link (the ATTACH, or the
 * CREATE ... PARTITION OF) may not have been streamed past yet (its xmin is
 * not older than the slot's catalog_xmin) and that holds rows older than
 * that link was attached with rows no change carries: the job stops. A
 * leaf gone from the tree was detached or dropped: its rows stay at the
 * destination (a warning). Some but not all leaves of a root with a new
 * file node: a TRUNCATE of those partitions, which pgoutput does not
 * replicate under publish_via_partition_root (or a VACUUM FULL, CLUSTER):
 * the job stops. Leaf mode: a new partition is named in a warning (a table
 * of its own, synced after a restart).
 */
static uint64_t pgo_received(pgo_db *db);

static bool
pgo_watch_partitions(pgo_db *db)
{
	pgo *s = db->src;
	pgo_sb roots = {0};
	PGresult *res;
	const char *params[2];
	bool ok = true;
	uint64_t wal = 0;

	db->last_leaves_ms = pgo_now_ms();
	for (size_t i = 0; db->version >= 120000 && i < db->ntables; i++) {
		uint32_t r = db->via_root
		                 ? (db->tables[i].root ? db->tables[i].oid : 0)
		                 : db->tables[i].root_oid;
		if (r)
			pgo_sb_printf(&roots, "%s%u", roots.len ? "," : "{", r);
	}
	if (!roots.len)
		return true;
	pgo_sb_printf(&roots, "}");
	params[0] = roots.data;
	params[1] = db->slot ? db->slot : "";
	res = pgo_query(
	    db, db->sql, "reading the partitions of the synced tables",
	    "SELECT r.oid, l.relid::oid, ln.nspname || '.' || lc.relname, "
	    "pg_catalog.pg_relation_filenode(l.relid), "
	    "(SELECT i.xmin FROM pg_catalog.pg_inherits i WHERE i.inhrelid "
	    "IN (SELECT pg_catalog.pg_partition_ancestors(l.relid)) ORDER BY "
	    "pg_catalog.age(i.xmin) LIMIT 1)::text, "
	    "coalesce((SELECT min(pg_catalog.age(i.xmin)) FROM "
	    "pg_catalog.pg_inherits i WHERE i.inhrelid IN (SELECT "
	    "pg_catalog.pg_partition_ancestors(l.relid))) <= (SELECT "
	    "pg_catalog.age(catalog_xmin) FROM pg_catalog.pg_replication_slots "
	    "WHERE slot_name = $2), false), "
	    "(SELECT rn.nspname || '.' || rc.relname FROM pg_catalog.pg_class "
	    "rc JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace "
	    "WHERE rc.oid = r.oid), quote_ident(ln.nspname) || '.' || "
	    "quote_ident(lc.relname), pg_catalog.pg_current_wal_lsn()::text "
	    "FROM unnest($1::oid[]) r(oid) CROSS JOIN LATERAL "
	    "pg_catalog.pg_partition_tree(r.oid) l JOIN pg_catalog.pg_class lc "
	    "ON lc.oid = l.relid JOIN pg_catalog.pg_namespace ln ON ln.oid = "
	    "lc.relnamespace WHERE l.isleaf AND lc.relkind = 'r' AND l.relid "
	    "<> r.oid ORDER BY 1, 3",
	    2, params);
	free(roots.data);
	if (!res)
		return false;
	for (size_t k = 0; k < db->nleaves; k++)
		db->leaves[k].seen = false;
	for (int i = 0; ok && i < PQntuples(res); i++) {
		uint32_t root = (uint32_t) strtoul(PQgetvalue(res, i, 0), NULL,
		                                   10),
		         oid = (uint32_t) strtoul(PQgetvalue(res, i, 1), NULL,
		                                  10);
		const char *name = PQgetvalue(res, i, 2),
		           *filenode = PQgetvalue(res, i, 3),
		           *link = PQgetvalue(res, i, 4),
		           *rootname = PQgetvalue(res, i, 6);
		bool recent = strcmp(PQgetvalue(res, i, 5), "t") == 0,
		     isnew = true;
		pgo_leaf *l = NULL;

		for (size_t k = 0; k < db->nleaves && !l; k++)
			if (db->leaves[k].oid == oid &&
			    db->leaves[k].root == root)
				l = &db->leaves[k];
		if (l)
			isnew = false;
		else {
			db->leaves = realloc(
			    db->leaves, (db->nleaves + 1) * sizeof *db->leaves);
			l = &db->leaves[db->nleaves++];
			*l = (pgo_leaf){.oid = oid,
			                .root = root,
			                .name = strdup(name),
			                .filenode = strdup(filenode)};
		}
		l->seen = true;
		if (!db->via_root) {
			if (isnew && db->leaves_read)
				SYNCD_LOG_WARNING(
				    s->host,
				    "database \"%s\": %s became a partition of "
				    "%s while streaming; with partitions = "
				    "leaf "
				    "it is a table of its own, selected at the "
				    "next start (its rows from before then "
				    "only with mode = full+incremental and a "
				    "new slot)",
				    db->dbname, name, rootname);
			continue;
		}
		if (recent && *link && (!l->link || strcmp(l->link, link))) {
			/* rows older than the link were there before it: an
			 * ATTACH, whose rows no change carries */
			char q[1024];
			const char *qp[] = {link};
			PGresult *old;
			snprintf(q, sizeof q,
			         "SELECT EXISTS (SELECT 1 FROM ONLY %s WHERE "
			         "pg_catalog.age(xmin) > "
			         "pg_catalog.age($1::text::xid))",
			         PQgetvalue(res, i, 7));
			old = pgo_query(db, db->sql,
			                "reading an attached partition", q, 1,
			                qp);
			if (!old) {
				ok = false;
				break;
			}
			if (strcmp(PQgetvalue(old, 0, 0), "t") == 0)
				ok = pgo_fail(
				    db, NULL,
				    "partition %s was attached to %s in "
				    "database \"%s\" with rows it held before: "
				    "an ATTACH writes no change for them, so "
				    "they are not in the stream; syncd stops: "
				    "re-sync %s (a new job with mode = "
				    "full+incremental, or drop slot %s and "
				    "the job's state and start again), or "
				    "detach %s",
				    name, rootname, db->dbname, rootname,
				    db->slot ? db->slot : "", name);
			else {
				free(l->link);
				l->link = strdup(link);
			}
			PQclear(old);
			if (!ok)
				break;
		}
		if (isnew && db->leaves_read)
			SYNCD_LOG_INFO(
			    s->host,
			    "database \"%s\": %s is a new partition of "
			    "%s; its changes are synced into %s",
			    db->dbname, name, rootname, rootname);
	}
	if (PQntuples(res) > 0)
		wal = pgo_parse_lsn(PQgetvalue(res, 0, 8));
	/* a TRUNCATE of some partitions of a root: not in the stream */
	for (int i = 0;
	     ok && db->via_root && db->leaves_read && i < PQntuples(res);) {
		uint32_t root =
		    (uint32_t) strtoul(PQgetvalue(res, i, 0), NULL, 10);
		int n = 0, changed = 0;
		pgo_sb names = {0};
		const char *rootname = PQgetvalue(res, i, 6);
		for (; i < PQntuples(res) &&
		       strtoul(PQgetvalue(res, i, 0), NULL, 10) == root;
		     i++) {
			uint32_t oid =
			    (uint32_t) strtoul(PQgetvalue(res, i, 1), NULL, 10);
			n++;
			for (size_t k = 0; k < db->nleaves; k++)
				if (db->leaves[k].oid == oid &&
				    db->leaves[k].root == root &&
				    strcmp(db->leaves[k].filenode,
				           PQgetvalue(res, i, 3)) != 0) {
					changed++;
					pgo_sb_printf(&names, "%s%s",
					              names.len ? ", " : "",
					              db->leaves[k].name);
				}
		}
		if (changed > 0 && changed == n) {
			/* every leaf: a TRUNCATE of the root, which is in the
			 * stream before the position read now, or of all its
			 * partitions one by one, which is not */
			pgo_table *t = pgo_table_by_oid(db, root);
			if (t && !t->pend_until) {
				t->pend_since = db->watch_lsn[0];
				t->pend_until = wal;
				free(t->pend_names);
				t->pend_names = strdup(names.data);
			}
		} else if (changed > 0)
			ok = pgo_fail(
			    db, NULL,
			    "partition%s %s of %s in database \"%s\" %s "
			    "truncated (or rewritten by VACUUM FULL or "
			    "CLUSTER) while streaming: PostgreSQL does not "
			    "replicate a TRUNCATE of a partition under "
			    "publish_via_partition_root, so its rows would "
			    "stay at the destination; syncd stops: re-sync %s "
			    "(a new job with mode = full+incremental, or drop "
			    "slot %s and the job's state), or, if it was only "
			    "rewritten, start the job again",
			    changed > 1 ? "s" : "", names.data, rootname,
			    db->dbname, changed > 1 ? "were" : "was", rootname,
			    db->slot ? db->slot : "");
		free(names.data);
	}
	for (int i = 0; ok && i < PQntuples(res); i++)
		for (size_t k = 0; k < db->nleaves; k++)
			if (db->leaves[k].oid ==
			        (uint32_t) strtoul(PQgetvalue(res, i, 1), NULL,
			                           10) &&
			    strcmp(db->leaves[k].filenode,
			           PQgetvalue(res, i, 3)) != 0) {
				free(db->leaves[k].filenode);
				db->leaves[k].filenode =
				    strdup(PQgetvalue(res, i, 3));
			}
	PQclear(res);
	/* detached (or dropped) while streaming */
	for (size_t k = 0; ok && k < db->nleaves;) {
		pgo_leaf *l = &db->leaves[k];
		if (l->seen) {
			k++;
			continue;
		}
		if (db->via_root) {
			const pgo_table *t = pgo_table_by_oid(db, l->root);
			SYNCD_LOG_WARNING(
			    s->host,
			    "database \"%s\": partition %s left %s.%s while "
			    "streaming (DETACH PARTITION or DROP TABLE): no "
			    "change is sent for its rows, which stay in the "
			    "destination's table; delete them there if they "
			    "must go",
			    db->dbname, l->name, t ? t->schema : "?",
			    t ? t->name : "?");
		}
		free(l->name);
		free(l->filenode);
		free(l->link);
		*l = db->leaves[--db->nleaves];
	}
	db->leaves_read = true;
	if (wal) {
		db->watch_lsn[0] = db->watch_lsn[1];
		db->watch_lsn[1] = wal;
	}
	/* every leaf of a root got a new file node: the stream, once past
	 * that point, must have carried a TRUNCATE of the root */
	for (size_t i = 0; ok && i < db->ntables; i++) {
		pgo_table *t = &db->tables[i];
		if (!t->pend_until || pgo_received(db) <= t->pend_until)
			continue;
		if (t->trunc_lsn <= t->pend_since)
			ok = pgo_fail(
			    db, NULL,
			    "every partition of %s.%s in database \"%s\" (%s) "
			    "was truncated (or rewritten by VACUUM FULL or "
			    "CLUSTER) while streaming, but not through %s.%s: "
			    "PostgreSQL does not replicate a TRUNCATE of a "
			    "partition under publish_via_partition_root, so "
			    "their rows would stay at the destination; syncd "
			    "stops: re-sync %s.%s (a new job with mode = "
			    "full+incremental, or drop slot %s and the job's "
			    "state), or, if they were only rewritten, start "
			    "the "
			    "job again",
			    t->schema, t->name, db->dbname, t->pend_names,
			    t->schema, t->name, t->schema, t->name,
			    db->slot ? db->slot : "");
		t->pend_until = 0;
	}
	return ok;
}

/* A Relation message: the relation's current shape. */
static bool
pgo_on_relation(pgo_db *db, const pgo_msg *m)
{
	pgo_rel *r;
	pgo_table *t = pgo_table_by_oid(db, m->relid);
	syncd_event ev = {.type = SYNCD_EV_RELATION};
	bool any_key = false;

	if (t && !pgo_identity_kept(db, t, m))
		return false;
	if (t && t->root && !pgo_watch_partitions(db))
		return false;
	r = calloc(1, sizeof *r);
	if (t)
		pgo_refresh_table(db, t, m);
	r->relid = m->relid;
	r->selected = t != NULL;
	r->rel.size = sizeof r->rel;
	r->rel.id = ((uint64_t) db->stream << 32) | m->relid;
	r->rel.database = db->dbname;
	r->rel.schema = strdup(m->nspname);
	r->rel.table = strdup(m->relname);
	r->rel.replica_identity = m->replident;
	r->rel.ncolumns = m->natts;
	r->cols = calloc((size_t) m->natts + 1, sizeof *r->cols);
	r->oldv = calloc((size_t) m->natts + 1, sizeof *r->oldv);
	r->newv = calloc((size_t) m->natts + 1, sizeof *r->newv);
	for (uint16_t i = 0; i < m->natts; i++) {
		syncd_column *c = &r->cols[i];
		c->size = sizeof *c;
		c->name = strdup(m->atts[i].name);
		c->type_oid = m->atts[i].typid;
		c->typmod = m->atts[i].typmod;
		c->type_name = strdup(
		    pgo_type_name(db, m->atts[i].typid, t, m->atts[i].name));
		/* the key is the primary key: under REPLICA IDENTITY FULL
		 * pgoutput flags every column */
		for (size_t k = 0; t && k < t->ncols; k++)
			if (strcmp(t->cols[k].name, c->name) == 0 &&
			    t->cols[k].notnull)
				c->flags |= SYNCD_COL_NOT_NULL;
		for (size_t k = 0; t && k < t->nkeys; k++)
			if (strcmp(t->keys[k], c->name) == 0) {
				c->flags |= SYNCD_COL_KEY;
				c->key_position = (uint32_t) k + 1;
			}
		any_key |= (c->flags & SYNCD_COL_KEY) != 0;
	}
	if (!any_key) /* not in the catalog we read: trust the stream */
		for (uint16_t i = 0; i < m->natts; i++)
			if (m->atts[i].flags & 1)
				r->cols[i].flags |= SYNCD_COL_KEY;
	r->rel.columns = r->cols;
	pgo_rel_put(db, r);
	if (!r->selected)
		return true;
	ev.rel = &r->rel;
	ev.lsn = db->txn_lsn;
	return pgo_emit(db, &ev) == SYNCD_OK;
}

static bool
pgo_values(pgo_db *db, const pgo_rel *r, const pgo_tuple *t, syncd_value *out)
{
	if (t->ncols != r->rel.ncolumns)
		return pgo_fail(
		    db, NULL,
		    "a change for %s.%s has %u columns but its relation "
		    "has %u; the stream is inconsistent",
		    r->rel.schema, r->rel.table, t->ncols, r->rel.ncolumns);
	for (uint16_t i = 0; i < t->ncols; i++) {
		const pgo_value *v = &t->cols[i];
		out[i].len = v->len;
		out[i].data = v->data;
		switch (v->kind) {
		case 'n': out[i].kind = SYNCD_VALUE_NULL; break;
		case 'u': out[i].kind = SYNCD_VALUE_UNCHANGED; break;
		default: out[i].kind = SYNCD_VALUE_TEXT; break;
		}
	}
	return true;
}

static bool
pgo_on_change(pgo_db *db, const pgo_msg *m)
{
	syncd_event ev = {.lsn = db->txn_lsn,
	                  .commit_time = db->txn_time,
	                  .xid = db->txn_xid};
	pgo_rel *r;

	if (m->type == 'T') {
		const syncd_relation *rels[1024];
		const syncd_relation **list =
		    m->nrels <= 1024 ? rels : malloc(m->nrels * sizeof *list);
		uint32_t n = 0;
		bool ok;
		for (uint32_t i = 0; i < m->nrels; i++) {
			r = pgo_rel_find(db, m->relids[i]);
			if (!r)
				return pgo_fail(
				    db, NULL,
				    "TRUNCATE of relation %u that the "
				    "stream never described",
				    m->relids[i]);
			if (r->selected)
				list[n++] = &r->rel;
			if (r->selected) {
				pgo_table *t = pgo_table_by_oid(db, r->relid);
				if (t && t->root)
					t->trunc_lsn = db->txn_lsn;
			}
		}
		ev.type = SYNCD_EV_TRUNCATE;
		ev.rels = list;
		ev.nrels = n;
		ev.rel = n ? list[0] : NULL;
		ev.truncate_flags =
		    ((m->flags & 1) ? SYNCD_TRUNCATE_CASCADE : 0) |
		    ((m->flags & 2) ? SYNCD_TRUNCATE_RESTART_IDENTITY : 0);
		ok = n == 0 || pgo_emit(db, &ev) == SYNCD_OK;
		if (list != rels)
			free(list);
		return ok;
	}
	r = pgo_rel_find(db, m->relid);
	if (!r)
		return pgo_fail(db, NULL,
		                "a change for relation %u that the stream "
		                "never described",
		                m->relid);
	if (!r->selected)
		return true;
	ev.rel = &r->rel;
	switch (m->type) {
	case 'I':
		ev.type = SYNCD_EV_INSERT;
		if (!pgo_values(db, r, &m->new_tuple, r->newv))
			return false;
		ev.new_values = r->newv;
		break;
	case 'U':
		ev.type = SYNCD_EV_UPDATE;
		if (!pgo_values(db, r, &m->new_tuple, r->newv))
			return false;
		ev.new_values = r->newv;
		if (m->old_kind) {
			if (!pgo_values(db, r, &m->old_tuple, r->oldv))
				return false;
			ev.old_values = r->oldv;
			ev.old_is_key = m->old_kind == 'K';
		}
		break;
	default:
		ev.type = SYNCD_EV_DELETE;
		if (!pgo_values(db, r, &m->old_tuple, r->oldv))
			return false;
		ev.old_values = r->oldv;
		ev.old_is_key = m->old_kind == 'K';
		break;
	}
	return pgo_emit(db, &ev) == SYNCD_OK;
}

/* ---- progress
 * ---------------------------------------------------------------- */

/* Remembers, about once a second, the last commit received, so that the
 * position confirmed can be held back by slot.flush.delay.time. */
static void
pgo_remember_commit(pgo_db *db, uint64_t lsn)
{
	int64_t now = pgo_now_ms();

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

/* What may be confirmed now: past the last transaction that is durable
 * and older than the delay. The server skips, at the next start, the
 * transactions whose commit record starts before the confirmed position,
 * so the position sent is that commit LSN + 1: confirming the commit LSN
 * itself would have the server send that transaction again. */
static uint64_t
pgo_confirmable(pgo_db *db)
{
	pgo *s = db->src;
	uint64_t flushed = __atomic_load_n(&db->flushed, __ATOMIC_ACQUIRE);
	int64_t cutoff = pgo_now_ms() - s->delay_ms;
	uint64_t done = 0;
	size_t drop = 0;

	if (s->delay_ms == 0)
		done = flushed;
	for (size_t i = 0;
	     s->delay_ms && i < db->nsamples && db->samples[i].at_ms <= cutoff;
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
	if (done && done + 1 > db->sent_flush)
		return done + 1;
	return db->sent_flush;
}

/* The last WAL position received (written by the reader, read by the
 * status thread). */
static uint64_t
pgo_received(pgo_db *db)
{
	return __atomic_load_n(&db->received, __ATOMIC_RELAXED);
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

/* Keeps the server answered while the reader is blocked in emit(). */
static void *
pgo_status_main(void *arg)
{
	pgo_db *db = arg;
	pgo *s = db->src;

	while (!atomic_load(&db->done)) {
		usleep(100 * 1000);
		pthread_mutex_lock(&db->lock);
		if (!atomic_load(&db->done) &&
		    pgo_now_ms() - db->last_status_ms >= s->status_ms)
			pgo_send_status(db, false);
		pthread_mutex_unlock(&db->lock);
	}
	return NULL;
}

/* ---- the stream
 * ------------------------------------------------------------------ */

static bool pgo_handle(pgo_db *db, const char *data, size_t len, bool replay);

static bool
pgo_replay_one(void *ctx, const char *msg, size_t len)
{
	return pgo_handle(ctx, msg, len, true);
}

static bool
pgo_commit(pgo_db *db, uint64_t lsn, int64_t time)
{
	syncd_event ev = {.type = SYNCD_EV_COMMIT,
	                  .lsn = lsn,
	                  .commit_time = time,
	                  .xid = db->txn_xid};
	db->in_txn = false;
	pgo_remember_commit(db, lsn);
	return pgo_emit(db, &ev) == SYNCD_OK;
}

static bool
pgo_begin(pgo_db *db, uint64_t lsn, int64_t pg_time, uint32_t xid)
{
	syncd_event ev = {.type = SYNCD_EV_BEGIN};
	db->in_txn = true;
	db->txn_lsn = lsn;
	db->txn_time = pg_time + PGO_EPOCH_OFFSET_US;
	db->txn_xid = xid;
	ev.lsn = lsn;
	ev.commit_time = db->txn_time;
	ev.xid = xid;
	return pgo_emit(db, &ev) == SYNCD_OK;
}

/* One pgoutput message. replay: a message of a streamed transaction,
 * buffered until its commit. */
static bool
pgo_handle(pgo_db *db, const char *data, size_t len, bool replay)
{
	pgo_decoder *d = replay ? &db->replay : &db->dec;
	char err[512];
	pgo_msg m;

	if (!pgo_decode(d, data, len, &m, err, sizeof err))
		return pgo_fail(db, NULL,
		                "malformed message from database \"%s\" "
		                "after " SYNCD_LSN_FMT
		                ": %s; nothing after it is "
		                "confirmed",
		                db->dbname, SYNCD_LSN_ARGS(db->received), err);
	/* inside a stream block, changes wait for their transaction's end */
	if (!replay && m.has_xid) {
		if (m.type == 'M' && !(m.flags & 1))
			return true; /* a non-transactional message: nothing to
			                keep */
		if (!txbuf_add(db->tx, db->stream_xid, m.xid, data, len, err,
		               sizeof err))
			return pgo_fail(db, NULL, "database \"%s\": %s",
			                db->dbname, err);
		if (!db->spilling && txbuf_spilled_bytes(db->tx) > 0) {
			db->spilling = true;
			SYNCD_LOG_INFO(
			    db->src->host,
			    "database \"%s\": in-progress transactions "
			    "passed spill.threshold; spilling them to %s",
			    db->dbname, db->src->host->job->state_dir);
		}
		return true;
	}
	switch (m.type) {
	case 'B':
		if (db->in_txn)
			return pgo_fail(db, NULL,
			                "database \"%s\": Begin inside a "
			                "transaction",
			                db->dbname);
		return pgo_begin(db, m.lsn, m.time, m.xid);
	case 'C':
		if (!db->in_txn)
			return pgo_fail(db, NULL,
			                "database \"%s\": Commit outside a "
			                "transaction",
			                db->dbname);
		if (m.lsn != db->txn_lsn)
			return pgo_fail(
			    db, NULL,
			    "database \"%s\": commit LSN " SYNCD_LSN_FMT
			    " differs from the Begin's " SYNCD_LSN_FMT,
			    db->dbname, SYNCD_LSN_ARGS(m.lsn),
			    SYNCD_LSN_ARGS(db->txn_lsn));
		return pgo_commit(db, m.lsn, db->txn_time);
	case 'O': return true;
	case 'R': return pgo_on_relation(db, &m);
	case 'Y': {
		char *entry =
		    malloc(strlen(m.nspname) + strlen(m.typname) + 16);
		sprintf(entry, "%u\t%s.%s", m.typid, m.nspname, m.typname);
		db->typnames = realloc(db->typnames, (db->ntypnames + 1) *
		                                         sizeof *db->typnames);
		db->typnames[db->ntypnames++] = entry;
		return true;
	}
	case 'I':
	case 'U':
	case 'D':
	case 'T':
		if (!db->in_txn)
			return pgo_fail(db, NULL,
			                "database \"%s\": a change outside a "
			                "transaction",
			                db->dbname);
		return pgo_on_change(db, &m);
	case 'M':
		/* our heartbeat, between transactions: a position the slot may
		 * advance to once it is recorded like a commit */
		if (!db->in_txn && !(m.flags & 1) &&
		    strcmp(m.prefix, PGO_HEARTBEAT_PREFIX) == 0) {
			db->txn_xid = 0;
			return pgo_begin(db, m.lsn, pgo_now_pg(), 0) &&
			       pgo_commit(db, m.lsn, db->txn_time);
		}
		return true;
	case 'S': db->stream_xid = m.xid; return true;
	case 'E': db->stream_xid = 0; return true;
	case 'c':
		if (db->in_txn)
			return pgo_fail(db, NULL,
			                "database \"%s\": Stream Commit inside "
			                "a transaction",
			                db->dbname);
		if (!pgo_begin(db, m.lsn, m.time, m.xid))
			return false;
		if (!txbuf_replay(db->tx, m.xid, pgo_replay_one, db, err,
		                  sizeof err))
			return db->err[0] || db->emit_st != SYNCD_OK
			           ? false
			           : pgo_fail(db, NULL, "database \"%s\": %s",
			                      db->dbname, err);
		return pgo_commit(db, m.lsn, db->txn_time);
	case 'A': txbuf_abort(db->tx, m.xid, m.subxid); return true;
	}
	return pgo_fail(db, NULL, "database \"%s\": unexpected message '%c'",
	                db->dbname, m.type);
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
	res = PQexec(
	    db->sql,
	    "SELECT pg_logical_emit_message(false, '" PGO_HEARTBEAT_PREFIX
	    "', '')");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		SYNCD_LOG_WARNING(s->host,
		                  "database \"%s\": heartbeat failed: %s",
		                  db->dbname, PQerrorMessage(db->sql));
	PQclear(res);
}

/* IDENTIFY_SYSTEM: the replication connection is to the right database
 * of the server the SQL connection reads (they could differ behind a
 * pooler or a load balancer). */
static bool
pgo_identify(pgo_db *db)
{
	pgo *s = db->src;
	PGresult *res = PQexec(db->repl, "IDENTIFY_SYSTEM");
	PGresult *sys;
	bool ok = true;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    PQnfields(res) < 4) {
		pgo_fail(db, pgo_sqlstate(res),
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
	else if (sys)
		SYNCD_LOG_DEBUG(
		    s->host,
		    "database \"%s\": system %s, timeline %s, WAL at %s",
		    db->dbname, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
		    PQgetvalue(res, 0, 2));
	else
		ok = false;
	PQclear(sys);
	PQclear(res);
	return ok;
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

/* Reads for about timeout_ms, or until a failure (false). */
static bool
pgo_stream(pgo_db *db, int timeout_ms)
{
	pgo *s = db->src;
	bool ok = true;
	int64_t deadline = pgo_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);

	for (bool first = true; ok; first = false) {
		char *buf = NULL;
		int r;
		pgo_copydata cd;
		char err[512];
		int64_t left = deadline - pgo_now_ms();

		if (!first && left <= 0)
			break;
		pgo_heartbeat(db);
		if (pgo_now_ms() - db->last_leaves_ms >= s->status_ms &&
		    !pgo_watch_partitions(db)) {
			ok = false;
			break;
		}
		pthread_mutex_lock(&db->lock);
		if (pgo_now_ms() - db->last_status_ms >= s->status_ms)
			ok = pgo_send_status(db, false);
		r = ok ? PQgetCopyData(db->repl, &buf, 1) : -2;
		pthread_mutex_unlock(&db->lock);
		if (!ok)
			break;
		if (r == 0) {
			fd_set fds;
			struct timeval tv = {0, 200 * 1000};
			int sock = PQsocket(db->repl);
			if (left <= 0)
				break;
			if (left < 200)
				tv.tv_usec = (suseconds_t) left * 1000;
			FD_ZERO(&fds);
			FD_SET(sock, &fds);
			if (select(sock + 1, &fds, NULL, NULL, &tv) < 0 &&
			    errno != EINTR)
				ok = pgo_fail(db, NULL, "select: %s",
				              strerror(errno));
			pthread_mutex_lock(&db->lock);
			if (ok && !PQconsumeInput(db->repl))
				ok = pgo_fail(db, "08006",
				              "lost the replication connection "
				              "to database \"%s\": %s",
				              db->dbname,
				              PQerrorMessage(db->repl));
			pthread_mutex_unlock(&db->lock);
			continue;
		}
		if (r == -1) {
			PGresult *res = PQgetResult(db->repl);
			ok = pgo_fail(db, pgo_sqlstate(res),
			              "the server ended "
			              "replication from database \"%s\": %s",
			              db->dbname, PQerrorMessage(db->repl));
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
			if (cd.wal_end > pgo_received(db) && !db->in_txn)
				__atomic_store_n(&db->received, cd.wal_end,
				                 __ATOMIC_RELAXED);
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
			if (cd.wal_start > pgo_received(db))
				__atomic_store_n(&db->received, cd.wal_start,
				                 __ATOMIC_RELAXED);
			ok = pgo_handle(db, cd.data, cd.len, false);
		}
		PQfreemem(buf);
	}
	return ok;
}

/* ---- per database
 * ------------------------------------------------------------------ */

static bool
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

/* A database name with a character the reference forbids (DESIGN §5
 * "Names") is refused before connecting. */
static bool
pgo_check_dbname(pgo_db *db, bool *problems)
{
	const char *why = pgo_bad_name(db->dbname, "+\"%'\\<>");

	if (!why)
		return true;
	*problems = true;
	return pgo_fail(db, NULL,
	                "database \"%s\": the name %s (+\"%%'\\<> are "
	                "refused); rename it (ALTER DATABASE ... RENAME TO "
	                "...), or leave it out of databases",
	                db->dbname, why);
}

/* Connects and checks everything; with apply, creates what is missing. */
static bool
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
	if (!pgo_slot(db, false, problems, slot_confirmed, slot_created) ||
	    !pgo_publication(db, apply, problems))
		return false;
	return !apply ||
	       pgo_slot(db, true, problems, slot_confirmed, slot_created);
}

static void
pgo_close(pgo_db *db)
{
	if (db->repl)
		PQfinish(db->repl);
	if (db->sql)
		PQfinish(db->sql);
	db->repl = db->sql = NULL;
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

static void pgo_release_snapshot(pgo_db *db);

/* Ends the stream: the last confirmed position is sent, the COPY ended,
 * the status thread joined, the connections closed. Safe at any point and
 * more than once. */
static void
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
	free(db->snapshot);
	db->snapshot = NULL;
}

/* ---- full phase ----------------------------------------------------------
 *
 * snapshot() describes the selected tables of one database with a
 * snapshot: the exported snapshot of a slot open() created just now (the
 * stream then starts exactly where the copy's data ends), or else, when
 * the job's slot is older (a copy resumed after a restart), the snapshot
 * of a temporary slot created for the copy (for mode = full, a snapshot
 * exported by a repeatable-read transaction), held until release().
 *
 * Why a fresh snapshot converges: the slot's position P is older than the
 * fresh snapshot S, so every table copied at S already holds the effect of
 * the changes the stream replays from P up to S's consistent point, which
 * the temporary slot gives exactly and every table carries as its
 * snapshot_lsn. Whole rows replay harmlessly per key and in source order:
 * an INSERT of a key that exists writes the row, a DELETE of a missing key
 * does nothing, and TRUNCATE empties the table (every row inserted after
 * it comes again in the suffix). What must not happen is taking a value
 * from the destination for a replayed change (a key move's unchanged
 * TOAST values from the row at the old key, which may be a newer row by
 * then): the sink, told snapshot_lsn, does not read the destination for
 * changes older than it, and skips a replayed partial row whose key is
 * gone. So after the suffix every key holds its newest version.
 *
 * Resuming inside a table: an earlier copy finished some chunks (block
 * ranges) from its snapshot S0; the rest is copied from S. A row version
 * can have moved between block ranges since S0 (an UPDATE writes the new
 * version where there is room), and a version that moved into a finished
 * chunk would otherwise come only through the stream, as an UPDATE that
 * may leave out its unchanged TOAST values. So finished chunks are read
 * again for the row versions written by transactions not older than S0's
 * xmin: every version that moved or changed since S0 has such an xmin,
 * and an older one is where S0 saw it (a rewrite - VACUUM FULL, CLUSTER,
 * TRUNCATE - changes the table's file node; then every row is read). They
 * and the unfinished chunks merge by key. Every key then holds its version
 * at S0 or at S, or a version S no longer has (deleted since S0: the
 * suffix from P deletes it), and the suffix converges as above.
 *
 * Readers (copy_open/copy_read/copy_close) run in the core's copy threads,
 * each with its own connection and repeatable-read transaction that has
 * imported the snapshot. Each chunk runs under a savepoint so that a chunk
 * abandoned half-way (the destination was lost) can be read again from
 * the same snapshot.
 */

typedef struct pgo_reader {
	pgo *s;
	pgo_db *db;
	PGconn *conn;
	char *buf;
	size_t len, cap;
} pgo_reader;

#define PGO_COPY_PIECE (256 * 1024)

static void
pgo_free_copy_tables(syncd_copy_table *ct, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ct[i].rel) {
			free((syncd_column *) ct[i].rel->columns);
			free((syncd_relation *) ct[i].rel);
		}
		for (uint32_t c = 0; c < ct[i].nchunks; c++)
			free((char *) ct[i].chunks[c]);
		free((char **) ct[i].chunks);
		free((char *) ct[i].source_state);
	}
	free(ct);
}

/* The relation of a selected table, as list_tables gives it (without the
 * extras only table creation wants). */
static syncd_relation *
pgo_table_relation(pgo_db *db, const pgo_table *t)
{
	syncd_relation *rel = calloc(1, sizeof *rel);
	syncd_column *cols = calloc(t->ncols + 1, sizeof *cols);

	for (size_t c = 0; c < t->ncols; c++) {
		cols[c].name = t->cols[c].name;
		cols[c].type_oid = t->cols[c].typid;
		cols[c].size = sizeof cols[c];
		cols[c].type_name = t->cols[c].type_name;
		cols[c].typmod = -1;
		cols[c].flags = (t->cols[c].key ? SYNCD_COL_KEY : 0) |
		                (t->cols[c].notnull ? SYNCD_COL_NOT_NULL : 0);
		cols[c].key_position = t->cols[c].keypos;
	}
	*rel = (syncd_relation){.size = sizeof *rel,
	                        .id = ((uint64_t) db->stream << 32) | t->oid,
	                        .database = db->dbname,
	                        .schema = t->schema,
	                        .table = t->name,
	                        .ncolumns = (uint32_t) t->ncols,
	                        .columns = cols,
	                        .replica_identity = t->replident};
	return rel;
}

/* One chunk list per table: a plain table's own blocks; a root's leaf
 * partitions, each one chunk or its block ranges. */
typedef struct pgo_part {
	const char *from;  /* quoted schema.name, NULL: the table itself */
	const char *label; /* schema.name of the leaf */
	int64_t rows, bytes, block;
	const char *filenode;
} pgo_part;

/* Appends the chunks of one relation: chunks of a fixed number of blocks,
 * so that a later run names the same chunks the same way (a resume
 * matches them by name); the last one takes what was added since. */
static void
pgo_part_chunks(pgo_db *db, const pgo_part *p, char ***chunks, uint32_t *n,
                char ***from)
{
	int64_t pages = p->bytes > 0 ? p->bytes / p->block : 0, per;
	uint32_t k = 1;

	per = db->src->chunk_size / (p->block > 0 ? p->block : 8192);
	if (per < 1)
		per = 1;
	if (pages / per > 4096)
		per = (pages + 4095) / 4096;
	if (db->version >= 140000 && pages > per)
		k = (uint32_t) ((pages + per - 1) / per);
	*chunks = realloc(*chunks, (*n + k) * sizeof **chunks);
	if (from)
		*from = realloc(*from, (*n + k) * sizeof **from);
	for (uint32_t c = 0; c < k; c++) {
		char name[256], range[64];
		if (k == 1)
			snprintf(range, sizeof range, "whole table");
		else if (c + 1 == k) /* rows added since: the last one */
			snprintf(range, sizeof range, "blocks %" PRId64 "-",
			         (int64_t) c * per);
		else
			snprintf(range, sizeof range,
			         "blocks %" PRId64 "-%" PRId64,
			         (int64_t) c * per, (int64_t) (c + 1) * per);
		if (p->from)
			snprintf(name, sizeof name, "partition %s %s", p->label,
			         k == 1 ? "(whole table)" : range);
		else
			snprintf(name, sizeof name, "%s", range);
		(*chunks)[*n + c] = strdup(name);
		if (from)
			(*from)[*n + c] = strdup(p->from);
	}
	*n += k;
}

/* Sizes from the catalog, and chunks of about copy.chunk.size as block
 * ranges (TID range scans exist from PostgreSQL 14; before, a table is
 * one chunk). A root's partitions are read in the copy's snapshot. */
static bool
pgo_copy_tables(pgo_db *db, const char *xmin, syncd_copy_table **out)
{
	syncd_copy_table *ct = calloc(db->ntables + 1, sizeof *ct);
	PGresult *res, *lres;
	char *oids = malloc(db->ntables * 12 + 3);
	const char *params[1];
	size_t len = 1;

	strcpy(oids, "{");
	for (size_t i = 0; i < db->ntables; i++)
		len += (size_t) sprintf(oids + len, "%s%u", i ? "," : "",
		                        db->tables[i].oid);
	strcpy(oids + len, "}");
	params[0] = oids;
	res = pgo_query(db, db->sql, "reading table sizes",
	                "SELECT c.oid, c.reltuples::bigint, "
	                "  pg_catalog.pg_relation_size(c.oid), "
	                "  current_setting('block_size')::bigint, "
	                "  pg_catalog.pg_relation_filenode(c.oid) "
	                "FROM pg_catalog.pg_class c "
	                "WHERE c.oid = ANY ($1::oid[])",
	                1, params);
	lres = res ? pgo_query(
	                 db, db->sql, "listing partitions",
	                 "WITH RECURSIVE tree(root, oid) AS (SELECT r, r FROM "
	                 "unnest($1::oid[]) r UNION ALL SELECT t.root, "
	                 "i.inhrelid FROM tree t JOIN pg_catalog.pg_inherits i "
	                 "ON i.inhparent = t.oid) "
	                 "SELECT t.root, quote_ident(n.nspname) || '.' || "
	                 "quote_ident(l.relname), n.nspname || '.' || "
	                 "l.relname, l.reltuples::bigint, "
	                 "pg_catalog.pg_relation_size(l.oid), "
	                 "current_setting('block_size')::bigint, "
	                 "pg_catalog.pg_relation_filenode(l.oid) "
	                 "FROM tree t JOIN pg_catalog.pg_class l ON l.oid = "
	                 "t.oid JOIN pg_catalog.pg_namespace n ON n.oid = "
	                 "l.relnamespace WHERE l.relkind = 'r' AND l.oid <> "
	                 "t.root ORDER BY 1, 3",
	                 1, params)
	           : NULL;
	free(oids);
	if (!res || !lres) {
		if (res)
			PQclear(res);
		free(ct);
		return false;
	}
	for (size_t i = 0; i < db->ntables; i++) {
		pgo_table *t = &db->tables[i];
		int64_t rows = 0, bytes = 0;
		uint32_t n = 0;
		char **chunks = NULL, state[128];
		uint64_t fnv = 14695981039346656037ULL;

		for (uint32_t k = 0; k < t->nchunk_from; k++)
			free(t->chunk_from[k]);
		free(t->chunk_from);
		t->chunk_from = NULL;
		t->nchunk_from = 0;
		if (t->root) {
			/* the file nodes of its leaves, as one: a rewrite of
			 * any leaf reads them all again at a resume */
			for (int r = 0; r < PQntuples(lres); r++) {
				pgo_part p;
				if (strtoul(PQgetvalue(lres, r, 0), NULL, 10) !=
				    t->oid)
					continue;
				p = (pgo_part){
				    .from = PQgetvalue(lres, r, 1),
				    .label = PQgetvalue(lres, r, 2),
				    .rows = strtoll(PQgetvalue(lres, r, 3),
				                    NULL, 10),
				    .bytes = strtoll(PQgetvalue(lres, r, 4),
				                     NULL, 10),
				    .block = strtoll(PQgetvalue(lres, r, 5),
				                     NULL, 10),
				    .filenode = PQgetvalue(lres, r, 6)};
				if (p.rows > 0)
					rows += p.rows;
				bytes += p.bytes;
				for (const char *c = p.filenode; *c; c++)
					fnv = (fnv ^ (unsigned char) *c) *
					      1099511628211ULL;
				fnv = (fnv ^ ',') * 1099511628211ULL;
				pgo_part_chunks(db, &p, &chunks, &n,
				                &t->chunk_from);
			}
			t->nchunk_from = n;
			if (n == 0) { /* no partition: nothing to read */
				pgo_part p = {.from = "",
				              .label = "(none)",
				              .block = 8192};
				pgo_part_chunks(db, &p, &chunks, &n,
				                &t->chunk_from);
				t->nchunk_from = n;
			}
			snprintf(state, sizeof state,
			         "filenode=%" PRIu64 " xmin=%s",
			         (uint64_t) (fnv % 1000000000000ULL), xmin);
		} else {
			pgo_part p = {.rows = -1,
			              .bytes = -1,
			              .block = 8192,
			              .filenode = ""};
			for (int r = 0; r < PQntuples(res); r++)
				if (strtoul(PQgetvalue(res, r, 0), NULL, 10) ==
				    t->oid) {
					p.rows = strtoll(PQgetvalue(res, r, 1),
					                 NULL, 10);
					p.bytes = strtoll(PQgetvalue(res, r, 2),
					                  NULL, 10);
					p.block = strtoll(PQgetvalue(res, r, 3),
					                  NULL, 10);
					p.filenode = PQgetvalue(res, r, 4);
				}
			pgo_part_chunks(db, &p, &chunks, &n, NULL);
			rows = p.rows;
			bytes = p.bytes;
			snprintf(state, sizeof state, "filenode=%s xmin=%s",
			         p.filenode, xmin);
		}
		ct[i] =
		    (syncd_copy_table){.size = sizeof ct[i],
		                       .rel = pgo_table_relation(db, t),
		                       .est_rows = rows,
		                       .est_bytes = bytes,
		                       .nchunks = n,
		                       .chunks = (const char *const *) chunks,
		                       .source_state = strdup(state)};
	}
	PQclear(res);
	PQclear(lres);
	*out = ct;
	return true;
}

/* Takes the snapshot of the full phase and describes it in snap; what it
 * holds stays in db until pgo_release_snapshot(). */
static bool
pgo_take_snapshot(pgo_db *db, syncd_snapshot *snap)
{
	pgo *s = db->src;
	PGresult *res = NULL, *xres = NULL;
	const char *snapshot = db->snapshot;
	char *sql = NULL;
	bool own = !snapshot, ok = false;
	syncd_lsn at = own ? 0 : db->slot_confirmed;

	/* Streaming follows a copy from a fresh snapshot: the snapshot of a
	 * temporary slot, whose consistent point tells exactly which
	 * transactions the copy holds (a replay of older ones must not read
	 * the destination's rows: syncd_copy_table.snapshot_lsn). The slot
	 * lives while tconn is open. */
	if (own && s->stream) {
		char name[64], q[160];
		snprintf(name, sizeof name, "syncd_tmp_%ld_%u", (long) getpid(),
		         db->stream);
		snprintf(
		    q, sizeof q,
		    "CREATE_REPLICATION_SLOT %s TEMPORARY LOGICAL pgoutput "
		    "EXPORT_SNAPSHOT",
		    name);
		db->tconn = pgo_connect(db, true);
		if (!db->tconn)
			goto out;
		db->tmp = PQexec(db->tconn, q);
		if (PQresultStatus(db->tmp) != PGRES_TUPLES_OK) {
			pgo_fail(
			    db, pgo_sqlstate(db->tmp),
			    "could not create a temporary replication slot "
			    "in database \"%s\" to resume the full copy "
			    "(one more free slot is needed while the copy "
			    "runs; raise max_replication_slots): %s",
			    db->dbname, PQerrorMessage(db->tconn));
			goto out;
		}
		at = pgo_parse_lsn(PQgetvalue(db->tmp, 0, 1));
		snapshot = PQgetvalue(db->tmp, 0, 2);
		own = false;
	}
	/* the sizes, file nodes and xmin are read in a transaction that
	 * holds the copy's snapshot: exported here, or the slot's imported */
	res = pgo_query(db, db->sql, "taking a snapshot for the copy",
	                "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0,
	                NULL);
	if (!res)
		goto out;
	PQclear(res);
	res = NULL;
	db->snap_txn = true;
	if (own) {
		db->export_res = pgo_query(
		    db, db->sql, "exporting the snapshot",
		    "SELECT pg_catalog.pg_export_snapshot()", 0, NULL);
		if (!db->export_res)
			goto out;
		snapshot = PQgetvalue(db->export_res, 0, 0);
	} else {
		char *lit =
		    PQescapeLiteral(db->sql, snapshot, strlen(snapshot));
		sql = malloc(strlen(lit) + 32);
		sprintf(sql, "SET TRANSACTION SNAPSHOT %s", lit);
		PQfreemem(lit);
		res = pgo_query(db, db->sql, "importing a slot's snapshot", sql,
		                0, NULL);
		if (!res)
			goto out;
		PQclear(res);
		res = NULL;
	}
	/* the oldest transaction the snapshot sees as running: a row
	 * version with an older xmin was already there, in the same place */
	xres = pgo_query(
	    db, db->sql, "reading the snapshot's xmin",
	    db->version >= 130000
	        ? "SELECT (pg_catalog.pg_snapshot_xmin("
	          "pg_catalog.pg_current_snapshot())::text::bigint % "
	          "4294967296)::text"
	        : "SELECT (pg_catalog.txid_snapshot_xmin("
	          "pg_catalog.txid_current_snapshot()) % 4294967296)::text",
	    0, NULL);
	if (!xres || !pgo_copy_tables(db, PQgetvalue(xres, 0, 0), &db->ct))
		goto out;
	db->nct = db->ntables;
	SYNCD_LOG_INFO(s->host, "database \"%s\": full copy from snapshot %s%s",
	               db->dbname, snapshot,
	               db->tconn ? " (a temporary slot's, newer than the slot)"
	               : own     ? ""
	                         : " (the new slot's starting point)");
	*snap = (syncd_snapshot){.size = sizeof *snap,
	                         .name = snapshot,
	                         .lsn = at,
	                         .ntables = db->nct,
	                         .tables = db->ct};
	ok = true;
out:
	if (res)
		PQclear(res);
	if (xres)
		PQclear(xres);
	free(sql);
	if (!ok)
		pgo_release_snapshot(db);
	return ok;
}

/* Ends what pgo_take_snapshot() holds: the tables, the snapshot's
 * transaction, the temporary slot (its connection). */
static void
pgo_release_snapshot(pgo_db *db)
{
	if (db->ct)
		pgo_free_copy_tables(db->ct, db->nct);
	db->ct = NULL;
	db->nct = 0;
	if (db->export_res)
		PQclear(db->export_res);
	db->export_res = NULL;
	if (db->snap_txn && db->sql)
		PQclear(PQexec(db->sql, "COMMIT"));
	db->snap_txn = false;
	if (db->tmp)
		PQclear(db->tmp);
	db->tmp = NULL;
	if (db->tconn)
		PQfinish(db->tconn); /* drops the temporary slot */
	db->tconn = NULL;
	free(db->snapshot);
	db->snapshot = NULL;
}

static syncd_status
pgo_reader_exec(pgo_reader *r, const char *what, const char *sql)
{
	PGresult *res = PQexec(r->conn, sql);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *state = pgo_sqlstate(res);
		r->s->host->set_error(r->s->host, state,
		                      "%s in database \"%s\": %s", what,
		                      r->db->dbname, PQerrorMessage(r->conn));
		PQclear(res);
		return state && strncmp(state, "08", 2) == 0 ? SYNCD_RETRY
		                                             : SYNCD_FATAL;
	}
	PQclear(res);
	return SYNCD_OK;
}

static void pgo_copy_close(void *reader);

static syncd_status
pgo_copy_open(void *state, uint32_t stream, const char *snapshot, void **reader)
{
	pgo *s = state;
	pgo_reader *r;
	const char *keys[] = {"dbname", "dbname", "fallback_application_name",
	                      NULL};
	const char *vals[4];
	char *lit, *sql;
	syncd_status st;

	*reader = NULL;
	r = calloc(1, sizeof *r);
	r->s = s;
	if (stream >= s->ndbs) {
		free(r);
		s->host->set_error(s->host, NULL, "no stream %u", stream);
		return SYNCD_FATAL;
	}
	r->db = &s->dbs[stream];
	vals[0] = s->conninfo ? s->conninfo : "";
	vals[1] = r->db->dbname;
	vals[2] = "syncd";
	vals[3] = NULL;
	r->conn = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(r->conn) != CONNECTION_OK) {
		s->host->set_error(s->host, "08001",
		                   "could not connect to source database "
		                   "\"%s\" for the copy: %s",
		                   r->db->dbname, PQerrorMessage(r->conn));
		pgo_copy_close(r);
		return SYNCD_FATAL;
	}
	/* values leave in the same exact forms as in the stream */
	st = pgo_reader_exec(
	    r, "setting up the copy session",
	    "SET DateStyle = ISO; SET IntervalStyle = postgres; "
	    "SET extra_float_digits = 3; SET TimeZone = 'UTC'; "
	    "SET bytea_output = hex; SET client_encoding = 'UTF8'; "
	    "SET statement_timeout = 0; SET lock_timeout = 0; "
	    "SET idle_in_transaction_session_timeout = 0; "
	    "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
	if (st == SYNCD_OK) {
		lit = PQescapeLiteral(r->conn, snapshot, strlen(snapshot));
		sql = malloc(strlen(lit) + 32);
		sprintf(sql, "SET TRANSACTION SNAPSHOT %s", lit);
		st = pgo_reader_exec(r, "importing the copy's snapshot", sql);
		free(sql);
		PQfreemem(lit);
	}
	if (st != SYNCD_OK) {
		pgo_copy_close(r);
		return SYNCD_FATAL;
	}
	r->cap = PGO_COPY_PIECE + 65536;
	r->buf = malloc(r->cap);
	*reader = r;
	return SYNCD_OK;
}

static void
pgo_copy_close(void *reader)
{
	pgo_reader *r = reader;

	if (!r)
		return;
	if (r->conn)
		PQfinish(r->conn);
	free(r->buf);
	free(r);
}

/* The xmin in a source_state ("filenode=N xmin=X") when its file node is
 * the table's now; NULL otherwise (the table was rewritten since: its rows
 * moved, so every row is wanted). */
static const char *
pgo_since_xmin(const syncd_copy_table *t, const char *since, char *xmin,
               size_t n)
{
	unsigned long long f1, f2, x;

	if (!since || !t->source_state ||
	    sscanf(since, "filenode=%llu xmin=%llu", &f1, &x) != 2 ||
	    sscanf(t->source_state, "filenode=%llu", &f2) != 1 || f1 != f2)
		return NULL;
	snprintf(xmin, n, "%llu", x);
	return xmin;
}

/* The COPY statement of one chunk; since: only row versions written by
 * transactions not older than the xmin of an earlier copy's snapshot (the
 * rows that may have changed or moved into the chunk since). */
static char *
pgo_copy_sql(pgo_reader *r, const syncd_copy_table *t, uint32_t chunk,
             const char *since)
{
	const syncd_relation *rel = t->rel;
	const char *name = t->chunks[chunk];
	char *schema = pgo_ident(r->conn, rel->schema);
	char *table = pgo_ident(r->conn, rel->table);
	pgo_sb sql = {0};
	long long from = 0, to = -1;
	bool blocks = strncmp(name, "blocks ", 7) == 0;
	const char *and = " WHERE";

	const char *leaf = NULL;

	/* a root's chunk reads one leaf partition, the root's columns by
	 * name (a leaf's own order may differ) */
	for (size_t i = 0; i < r->db->ntables; i++) {
		const pgo_table *pt = &r->db->tables[i];
		if (pt->root && pt->oid == (uint32_t) rel->id &&
		    chunk < pt->nchunk_from) {
			leaf = pt->chunk_from[chunk];
			if (strstr(name, " blocks "))
				name = strstr(name, " blocks ") + 1;
			blocks = strncmp(name, "blocks ", 7) == 0;
		}
	}
	if (blocks && sscanf(name + 7, "%lld-%lld", &from, &to) < 2)
		to = -1;
	pgo_sb_printf(&sql, "COPY (SELECT ");
	for (uint32_t c = 0; c < rel->ncolumns; c++) {
		char *q = pgo_ident(r->conn, rel->columns[c].name);
		pgo_sb_printf(&sql, "%s%s", c ? ", " : "", q);
		free(q);
	}
	if (leaf && !*leaf) /* a root without partitions */
		pgo_sb_printf(&sql, " FROM ONLY %s.%s WHERE false", schema,
		              table);
	else if (leaf)
		pgo_sb_printf(&sql, " FROM ONLY %s", leaf);
	else
		pgo_sb_printf(&sql, " FROM ONLY %s.%s", schema, table);
	if (leaf && !*leaf)
		and = " AND";
	if (blocks) {
		pgo_sb_printf(&sql, " WHERE ctid >= '(%lld,0)'::pg_catalog.tid",
		              from);
		if (to >= 0)
			pgo_sb_printf(
			    &sql, " AND ctid < '(%lld,0)'::pg_catalog.tid", to);
		and = " AND";
	}
	if (since)
		pgo_sb_printf(&sql,
		              "%s pg_catalog.age(xmin) <= "
		              "pg_catalog.age('%s'::pg_catalog.xid)",
		              and, since);
	pgo_sb_printf(&sql, ") TO STDOUT");
	free(schema);
	free(table);
	return sql.data;
}

static syncd_status
pgo_copy_read(void *reader, const syncd_copy_table *t, uint32_t chunk,
              const char *changed_since, syncd_copy_fn fn, void *ctx)
{
	pgo_reader *r = reader;
	pgo *s = r->s;
	char xmin[32];
	char *sql = pgo_copy_sql(
	         r, t, chunk,
	         pgo_since_xmin(t, changed_since, xmin, sizeof xmin)),
	     *row;
	syncd_status st = pgo_reader_exec(r, "starting a chunk",
	                                  "SAVEPOINT syncd_chunk"),
	             out = SYNCD_OK;
	PGresult *res;
	int n;

	if (st != SYNCD_OK) {
		free(sql);
		return st;
	}
	res = PQexec(r->conn, sql);
	free(sql);
	if (PQresultStatus(res) != PGRES_COPY_OUT) {
		const char *state = pgo_sqlstate(res);
		s->host->set_error(s->host, state,
		                   "COPY of %s.%s in database \"%s\": %s",
		                   t->rel->schema, t->rel->table, r->db->dbname,
		                   PQerrorMessage(r->conn));
		PQclear(res);
		return SYNCD_FATAL;
	}
	PQclear(res);
	r->len = 0;
	while ((n = PQgetCopyData(r->conn, &row, 0)) > 0) {
		if (out == SYNCD_OK) {
			if (r->len + (size_t) n > r->cap) { /* a huge row */
				r->cap = r->len + (size_t) n + 65536;
				r->buf = realloc(r->buf, r->cap);
			}
			memcpy(r->buf + r->len, row, (size_t) n);
			r->len += (size_t) n;
			if (r->len >= PGO_COPY_PIECE) {
				out = fn(ctx, r->buf, r->len);
				r->len = 0;
			}
			if (out != SYNCD_OK) {
				/* stop the server, then read what it sent */
				PGcancel *c = PQgetCancel(r->conn);
				char err[256];
				if (c) {
					PQcancel(c, err, sizeof err);
					PQfreeCancel(c);
				}
			}
		}
		PQfreemem(row);
	}
	if (out == SYNCD_OK && n == -1 && r->len > 0)
		out = fn(ctx, r->buf, r->len);
	r->len = 0;
	if (r->cap > 4 * PGO_COPY_PIECE) { /* after a huge row */
		r->cap = PGO_COPY_PIECE + 65536;
		r->buf = realloc(r->buf, r->cap);
	}
	res = PQgetResult(r->conn);
	if (out == SYNCD_OK &&
	    (n == -2 || PQresultStatus(res) != PGRES_COMMAND_OK)) {
		const char *state = pgo_sqlstate(res);
		s->host->set_error(s->host, state,
		                   "COPY of %s.%s in database \"%s\": %s",
		                   t->rel->schema, t->rel->table, r->db->dbname,
		                   PQerrorMessage(r->conn));
		out = state && strncmp(state, "08", 2) == 0 ? SYNCD_RETRY
		                                            : SYNCD_FATAL;
	}
	PQclear(res);
	while ((res = PQgetResult(r->conn)) != NULL)
		PQclear(res);
	if (PQstatus(r->conn) != CONNECTION_OK)
		return out == SYNCD_OK ? SYNCD_FATAL : out;
	/* the snapshot stays: the transaction goes on without this chunk */
	st = pgo_reader_exec(r, "ending a chunk",
	                     out == SYNCD_OK
	                         ? "RELEASE SAVEPOINT syncd_chunk"
	                         : "ROLLBACK TO SAVEPOINT syncd_chunk");
	return out != SYNCD_OK ? out : st;
}

/* The conninfo's dbname, else libpq's default (the user). */
static char *
pgo_default_dbname(const pgo *s)
{
	PQconninfoOption *o =
	    PQconninfoParse(s->conninfo ? s->conninfo : "", NULL);
	const char *dbn = NULL, *user = NULL;
	char *out;

	for (PQconninfoOption *p = o; p && p->keyword; p++) {
		if (strcmp(p->keyword, "dbname") == 0 && p->val && *p->val)
			dbn = p->val;
		if (strcmp(p->keyword, "user") == 0 && p->val && *p->val)
			user = p->val;
	}
	if (!dbn)
		dbn = getenv("PGDATABASE");
	if (!dbn)
		dbn = user ? user : getenv("PGUSER");
	if (!dbn)
		dbn = getenv("USER");
	out = strdup(dbn ? dbn : "postgres");
	PQconninfoFree(o);
	return out;
}

static void
pgo_db_init(pgo *s, pgo_db *db, uint32_t index, uint32_t stream, char *dbname)
{
	db->src = s;
	db->index = index;
	db->stream = stream;
	pthread_mutex_init(&db->lock, NULL);
	db->dbname = dbname;
	db->slot = pgo_slot_name(s, stream, dbname);
}

/* The part of this job's slot names before the stream number in the shard
 * scenario: "syncd_JOB_shard", as pgo_slot_name() spells it (at most 62
 * bytes with the number: never shortened). */
static char *
pgo_slot_prefix(pgo *s)
{
	char *p = pgo_slot_name(s, 0, "");

	p[strlen(p) - 1] = '\0';
	return p;
}

typedef struct pgo_found {
	char *dbname;
	long stream; /* -1: none yet */
} pgo_found;

static int
pgo_found_cmp(const void *a, const void *b)
{
	const pgo_found *x = a, *y = b;
	return (x->stream > y->stream) - (x->stream < y->stream);
}

/*
 * The shard scenario: the databases some source_db_filter matches, each
 * with its stream. A stream number must stay with its database across
 * restarts (the destination keeps progress per stream), and databases come
 * and go; so the number is part of the slot's name, read back from the
 * job's existing slots, and a new database takes the lowest free number.
 */
static bool
pgo_discover(pgo *s)
{
	const char *keys[] = {"dbname", "dbname", "fallback_application_name",
	                      NULL};
	const char *vals[] = {s->conninfo ? s->conninfo : "", NULL, "syncd",
	                      NULL};
	PQconninfoOption *o;
	PGconn *c;
	PGresult *res = NULL;
	pgo_found *found = NULL;
	size_t nfound = 0;
	char *prefix = NULL;
	bool used[PGO_MAX_DBS] = {false}, ok = false;
	pgo_sb all = {0};

	if (!s->sharded || s->discovered)
		return true;
	/* the conninfo's database, or postgres, to list the others */
	o = PQconninfoParse(vals[0], NULL);
	vals[1] = "postgres";
	for (PQconninfoOption *p = o; p && p->keyword; p++)
		if (strcmp(p->keyword, "dbname") == 0 && p->val && *p->val)
			vals[1] = NULL;
	if (!vals[1]) {
		keys[1] = "fallback_application_name";
		vals[1] = "syncd";
		keys[2] = NULL;
		vals[2] = NULL;
	}
	c = PQconnectdbParams(keys, vals, 1);
	PQconninfoFree(o);
	if (PQstatus(c) != CONNECTION_OK) {
		s->host->set_error(
		    s->host, "08001",
		    "could not connect to the source to list its "
		    "databases: %s",
		    PQerrorMessage(c));
		goto done;
	}
	res = PQexec(c, "SELECT datname FROM pg_database WHERE datallowconn "
	                "AND NOT datistemplate ORDER BY datname");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		s->host->set_error(s->host, pgo_sqlstate(res),
		                   "listing the source's databases: %s",
		                   PQerrorMessage(c));
		goto done;
	}
	found = calloc((size_t) PQntuples(res) + 1, sizeof *found);
	for (int i = 0; i < PQntuples(res); i++) {
		const char *name = PQgetvalue(res, i, 0);
		pgo_sb_printf(&all, "%s%s", all.len ? ", " : "", name);
		if (s->host->source->select(s->host, name, NULL, NULL) !=
		    SYNCD_SELECT_YES)
			continue;
		found[nfound].dbname = strdup(name);
		found[nfound++].stream = -1;
	}
	PQclear(res);
	if (nfound == 0) {
		s->host->set_error(s->host, NULL,
		                   "no database on the source matches the "
		                   "source_db_filter of any [logical_table.*] "
		                   "section (databases: %s)",
		                   all.len ? all.data : "none");
		s->nothing = true;
		res = NULL;
		goto done;
	}
	if (nfound > PGO_MAX_DBS) {
		s->host->set_error(s->host, NULL,
		                   "%zu databases match the source_db_filter "
		                   "of the [logical_table.*] sections; at most "
		                   "%d (one slot each)",
		                   nfound, PGO_MAX_DBS);
		s->nothing = true;
		res = NULL;
		goto done;
	}
	/* the streams of the job's existing slots */
	prefix = pgo_slot_prefix(s);
	{
		const char *p[1] = {prefix};
		res = PQexecParams(c,
		                   "SELECT slot_name, database FROM "
		                   "pg_replication_slots WHERE "
		                   "starts_with(slot_name::text, $1)",
		                   1, NULL, p, NULL, NULL, 0);
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		s->host->set_error(s->host, pgo_sqlstate(res),
		                   "listing replication slots: %s",
		                   PQerrorMessage(c));
		goto done;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *slot = PQgetvalue(res, i, 0) + strlen(prefix);
		const char *dbname = PQgetvalue(res, i, 1);
		char *end;
		long n = strtol(slot, &end, 10);
		bool matched = false;

		if (end == slot || *end || n < 0 || n >= PGO_MAX_DBS)
			continue;
		for (size_t k = 0; k < nfound; k++)
			if (strcmp(found[k].dbname, dbname) == 0 &&
			    found[k].stream < 0 && !used[n]) {
				found[k].stream = n;
				used[n] = matched = true;
			}
		if (!matched)
			SYNCD_LOG_WARNING(
			    s->host,
			    "replication slot %s of this job is in "
			    "database \"%s\", which no source_db_filter "
			    "matches now: it keeps WAL on the source; "
			    "drop it (SELECT pg_drop_replication_slot("
			    "'%s')) if the database is gone for good",
			    PQgetvalue(res, i, 0), dbname,
			    PQgetvalue(res, i, 0));
	}
	for (size_t k = 0; k < nfound; k++)
		if (found[k].stream < 0)
			for (long n = 0; n < PGO_MAX_DBS; n++)
				if (!used[n]) {
					found[k].stream = n;
					used[n] = true;
					break;
				}
	qsort(found, nfound, sizeof *found, pgo_found_cmp);
	s->dbs = calloc(nfound, sizeof *s->dbs);
	for (size_t k = 0; k < nfound; k++) {
		pgo_db_init(s, &s->dbs[k], (uint32_t) k,
		            (uint32_t) found[k].stream, found[k].dbname);
		found[k].dbname = NULL;
	}
	s->ndbs = nfound;
	s->discovered = ok = true;
done:
	PQclear(res);
	PQfinish(c);
	for (size_t k = 0; k < nfound; k++)
		free(found[k].dbname);
	free(found);
	free(prefix);
	free(all.data);
	return ok;
}

/* ---- plugin operations
 * ---------------------------------------------------------------- */

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
		pthread_mutex_destroy(&db->lock);
	}
	free(s->dbs);
	free(s);
}

/* Reports why db failed (set_error, in the calling thread) and forgets
 * it; returns st. */
static syncd_status
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

/* A failure of pgo_prepare(): a pre-check that failed cannot be helped by
 * restarting, an unreachable server may come back. */
static syncd_status
pgo_prepare_failed(pgo_db *db, bool problems)
{
	return problems && strncmp(db->sqlstate, "08", 2) != 0 ? SYNCD_INVALID
	                                                       : SYNCD_FATAL;
}

/* The databases, found on the server in the shard scenario. */
static syncd_status
pgo_find_dbs(pgo *s)
{
	if (pgo_discover(s))
		return SYNCD_OK;
	return s->nothing ? SYNCD_INVALID : SYNCD_FATAL;
}

/* The database of the core's stream number. */
static pgo_db *
pgo_db_of(pgo *s, uint32_t stream)
{
	if (stream < s->ndbs)
		return &s->dbs[stream];
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
		one = (syncd_stream){
		    .size = sizeof one, .name = db->dbname, .server = db->host};
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
	if (!pgo_prepare(db, true, &problems, &confirmed, &created)) {
		st = pgo_prepare_failed(db, problems);
		pgo_close(db);
		return pgo_report(db, st);
	}
	snprintf(prefix, sizeof prefix, "pgoutput-%u-", db->stream);
	db->tx = txbuf_new(s->host->job->state_dir, prefix, (size_t) s->spill,
	                   err, sizeof err);
	if (!db->tx) {
		pgo_fail(db, NULL, "%s", err);
		pgo_end_stream(db);
		return pgo_report(db, SYNCD_FATAL);
	}
	/* confirmed_flush is a commit LSN + 1 when syncd confirmed it (see
	 * pgo_confirmable), and a new slot's consistent point */
	db->slot_confirmed = confirmed;
	db->sent_flush = confirmed;
	db->received = confirmed;
	pos->confirmed = confirmed ? confirmed - 1 : 0;
	pos->created = created;
	if (SYNCD_HAS(pos, holder)) {
		snprintf(db->holder, sizeof db->holder, "replication slot %s",
		         db->slot);
		pos->holder = db->holder;
	}
	return SYNCD_OK;
}

static syncd_status
pgo_snapshot(void *state, uint32_t stream, syncd_snapshot *snap)
{
	pgo *s = state;
	pgo_db *db;
	syncd_status st;

	if ((st = pgo_find_dbs(s)) != SYNCD_OK)
		return st;
	if (!(db = pgo_db_of(s, stream)))
		return SYNCD_FATAL;
	if (db->ct) /* one not released: a slot's snapshot is used once */
		pgo_release_snapshot(db);
	db->err[0] = '\0';
	db->sqlstate[0] = '\0';
	if (!db->sql) {
		/* mode = full: open() was not called */
		bool problems = false, created;
		uint64_t confirmed;
		if (!pgo_prepare(db, false, &problems, &confirmed, &created)) {
			st = pgo_prepare_failed(db, problems);
			pgo_close(db);
			return pgo_report(db, st);
		}
	}
	if (!pgo_take_snapshot(db, snap))
		return pgo_report(db, SYNCD_FATAL);
	return SYNCD_OK;
}

static void
pgo_release(void *state, uint32_t stream)
{
	pgo *s = state;

	if (stream < s->ndbs)
		pgo_release_snapshot(&s->dbs[stream]);
}

static syncd_status
pgo_start(void *state, uint32_t stream, syncd_lsn after)
{
	pgo *s = state;
	pgo_db *db = pgo_db_of(s, stream);
	uint64_t start = 0;

	if (!db)
		return SYNCD_FATAL;
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
		return pgo_report(db, strncmp(db->sqlstate, "08", 2) == 0
		                          ? SYNCD_RETRY
		                          : SYNCD_FATAL);
	return SYNCD_OK;
}

static syncd_status
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
	/* a lost connection may come back */
	st = strncmp(db->sqlstate, "08", 2) == 0 ? SYNCD_RETRY : SYNCD_FATAL;
	return pgo_report(db, st);
}

static void
pgo_confirm(void *state, uint32_t stream, syncd_lsn lsn)
{
	pgo *s = state;
	uint64_t cur;

	if (stream >= s->ndbs)
		return;
	cur = __atomic_load_n(&s->dbs[stream].flushed, __ATOMIC_RELAXED);
	while (lsn > cur && !__atomic_compare_exchange_n(
	                        &s->dbs[stream].flushed, &cur, lsn, true,
	                        __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}

static void
pgo_close_stream(void *state, uint32_t stream)
{
	pgo *s = state;

	if (stream < s->ndbs)
		pgo_end_stream(&s->dbs[stream]);
}

/* What automatic table creation wants beyond the columns: the table's
 * comment and its ordinary indexes (non-unique btree indexes on plain
 * columns, without predicate). */
typedef struct pgo_extras {
	char *comment;
	size_t nindexes;
	syncd_index *indexes;
	PGresult *res; /* owns the names */
} pgo_extras;

static void
pgo_extras_free(pgo_extras *x)
{
	for (size_t i = 0; i < x->nindexes; i++)
		free((uint32_t *) x->indexes[i].columns);
	free(x->indexes);
	free(x->comment);
	if (x->res)
		PQclear(x->res);
	memset(x, 0, sizeof *x);
}

static bool
pgo_table_extras(pgo_db *db, const pgo_table *t, pgo_extras *x)
{
	char oid[16];
	const char *params[] = {oid};
	PGresult *res;

	snprintf(oid, sizeof oid, "%u", t->oid);
	res =
	    pgo_query(db, db->sql, "reading a table comment",
	              "SELECT obj_description($1::oid, 'pg_class')", 1, params);
	if (!res)
		return false;
	if (!PQgetisnull(res, 0, 0))
		x->comment = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	res = pgo_query(
	    db, db->sql, "listing indexes",
	    "SELECT c.relname, a.attname FROM pg_index i "
	    "JOIN pg_class c ON c.oid = i.indexrelid "
	    "JOIN pg_am am ON am.oid = c.relam AND am.amname = 'btree' "
	    "CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS "
	    "k(attnum, pos) "
	    "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = "
	    "k.attnum "
	    "WHERE i.indrelid = $1::oid AND NOT i.indisunique AND i.indexprs "
	    "IS NULL AND i.indpred IS NULL ORDER BY c.relname, k.pos",
	    1, params);
	if (!res)
		return false;
	x->res = res;
	for (int r = 0; r < PQntuples(res); r++) {
		const char *name = PQgetvalue(res, r, 0);
		syncd_index *ix;
		uint32_t col = UINT32_MAX;
		if (x->nindexes == 0 ||
		    strcmp(x->indexes[x->nindexes - 1].name, name) != 0) {
			x->indexes = realloc(
			    x->indexes, (x->nindexes + 1) * sizeof *x->indexes);
			x->indexes[x->nindexes++] = (syncd_index){
			    .size = sizeof(syncd_index), .name = name};
		}
		ix = &x->indexes[x->nindexes - 1];
		for (size_t c = 0; c < t->ncols; c++)
			if (strcmp(t->cols[c].name, PQgetvalue(res, r, 1)) == 0)
				col = (uint32_t) c;
		if (col == UINT32_MAX)
			continue; /* a column syncd does not sync */
		ix->columns = realloc((uint32_t *) ix->columns,
		                      (ix->ncolumns + 1) * sizeof(uint32_t));
		((uint32_t *) ix->columns)[ix->ncolumns++] = col;
	}
	return true;
}

static syncd_status
pgo_list_tables(void *state, syncd_relation_fn fn, void *ctx)
{
	pgo *s = state;
	syncd_status st;

	if ((st = pgo_find_dbs(s)) != SYNCD_OK)
		return st == SYNCD_INVALID ? SYNCD_FATAL : st;
	for (size_t i = 0; i < s->ndbs && st == SYNCD_OK; i++) {
		pgo_db *db = &s->dbs[i];
		/* its own connection and tables: a stream may be open */
		pgo_db one = {.src = s,
		              .index = db->index,
		              .stream = db->stream,
		              .dbname = db->dbname,
		              .named = db->named};
		bool problems = false;

		if (!pgo_check_dbname(&one, &problems))
			return pgo_report(&one, SYNCD_FATAL);
		one.sql = pgo_connect(&one, false);
		if (one.sql && pgo_server_checks(&one, &problems) &&
		    pgo_select_tables(&one, &problems))
			for (size_t k = 0; k < one.ntables && st == SYNCD_OK;
			     k++) {
				const pgo_table *t = &one.tables[k];
				syncd_column *cols =
				    calloc(t->ncols + 1, sizeof *cols);
				syncd_column_details *cd =
				    calloc(t->ncols + 1, sizeof *cd);
				syncd_table_details details = {
				    .size = sizeof details,
				    .version = SYNCD_DETAILS_VERSION,
				    .columns = cd};
				syncd_relation rel = {
				    .size = sizeof rel,
				    .id =
				        ((uint64_t) one.stream << 32) | t->oid,
				    .database = one.dbname,
				    .schema = t->schema,
				    .table = t->name,
				    .ncolumns = (uint32_t) t->ncols,
				    .columns = cols,
				    .replica_identity = t->replident,
				    .details = &details};
				pgo_extras x = {0};
				for (size_t c = 0; c < t->ncols; c++) {
					const pgo_col *pc = &t->cols[c];
					cols[c].size = sizeof cols[c];
					cols[c].name = pc->name;
					cols[c].type_oid = pc->typid;
					cols[c].type_name = pc->type_name;
					cols[c].typmod = -1;
					cols[c].flags =
					    (pc->key ? SYNCD_COL_KEY : 0) |
					    (pc->notnull ? SYNCD_COL_NOT_NULL
					                 : 0);
					cols[c].key_position = pc->keypos;
					cd[c].size = sizeof cd[c];
					cd[c].base_type_name = pc->base_type;
					cd[c].comment = pc->comment;
				}
				if (pgo_table_extras(&one, t, &x)) {
					details.comment = x.comment;
					details.nindexes =
					    (uint32_t) x.nindexes;
					details.indexes = x.indexes;
					st = fn(ctx, &rel);
				} else
					st = pgo_report(&one, SYNCD_FATAL);
				pgo_extras_free(&x);
				free(cd);
				free(cols);
			}
		else
			st = pgo_report(&one, SYNCD_FATAL);
		db->named = one.named;
		if (!db->host)
			db->host = one.host;
		else
			free(one.host);
		pgo_close(&one);
		pgo_free_tables(&one);
		pgo_decoder_free(&one.dec);
		pgo_decoder_free(&one.replay);
	}
	return st;
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
};

SYNCD_PLUGIN(.kind = SYNCD_KIND_SOURCE, .name = "pgoutput", .version = "1.0",
             .description = "PostgreSQL logical replication (pgoutput)",
             .options = pgo_options, .options_size = sizeof(pgo_opts),
             .ops.source = &pgo_ops)
