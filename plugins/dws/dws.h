/*
 * dws.h - the one internal header of the two DWS sinks (dws_upsert,
 * dws_copy): the plugin state, the per-worker connection, the destination's
 * view of a target table, the folded changes of one batch, the dialect
 * table that holds every piece of SQL that differs between GaussDB(DWS)
 * and PostgreSQL, and what each file offers the ones above it. Files call
 * one way, bottom up: dialect.c, session.c, progress.c, deferred.c,
 * target.c, fold.c, apply.c, tables.c, dws.c, full.c, and the two
 * registration files dws_upsert.c and dws_copy.c.
 */
#ifndef SYNCD_DWS_H
#define SYNCD_DWS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include <syncd/syncd.h>

/* Errors through the host, for a dws_state (logging: SYNCD_LOG_*(s->host,
 * ...)). */
#define ERR(s, state, ...) (s)->host->set_error((s)->host, (state), __VA_ARGS__)

/* Column i of a relation someone else built: the array has the stride of
 * its first element's size. */
static inline const syncd_column *
dws_column(const syncd_relation *rel, uint32_t i)
{
	size_t stride =
	    rel->columns[0].size ? rel->columns[0].size : sizeof(syncd_column);
	return (const syncd_column *) ((const char *) rel->columns +
	                               (size_t) i * stride);
}

/* The relation's table details (syncd/details.h), or NULL when the source
 * gave none it can read. */
static inline const syncd_table_details *
dws_details(const syncd_relation *rel)
{
	const syncd_table_details *d = rel->details;
	if (!d || d->version < 1 || d->size < SYNCD_TABLE_DETAILS_SIZE_1_0)
		return NULL;
	return d;
}

/* Column i's details, or NULL. */
static inline const syncd_column_details *
dws_column_details(const syncd_relation *rel, uint32_t i)
{
	const syncd_table_details *d = dws_details(rel);
	if (!d || !d->columns || i >= rel->ncolumns)
		return NULL;
	return (const syncd_column_details *) ((const char *) d->columns +
	                                       (size_t) i * d->columns[0].size);
}

/* Index i of the details d (i < d->nindexes). */
static inline const syncd_index *
dws_index(const syncd_table_details *d, uint32_t i)
{
	return (const syncd_index *) ((const char *) d->indexes +
	                              (size_t) i * d->indexes[0].size);
}

/* ---- small helpers ---------------------------------------------------- */

typedef struct dws_buf {
	char *data;
	size_t len, cap;
} dws_buf;

void dws_buf_add(dws_buf *b, const char *s, size_t n);
void dws_buf_puts(dws_buf *b, const char *s);
void dws_buf_printf(dws_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void dws_buf_reset(dws_buf *b);
void dws_buf_free(dws_buf *b);

/* A bump allocator for one batch: everything is freed at once. */
typedef struct dws_arena_block dws_arena_block;
typedef struct dws_arena {
	dws_arena_block *head;
} dws_arena;

void *dws_arena_alloc(dws_arena *a, size_t n);
char *dws_arena_strndup(dws_arena *a, const char *s, size_t n);
void dws_arena_reset(dws_arena *a);

/* ---- dialects --------------------------------------------------------- */

typedef struct dws_target dws_target;

typedef struct dws_dialect {
	const char *name; /* "PostgreSQL", "GaussDB(DWS)" */
	/* copy mode writes staged rows with MERGE (one MATCHED and one NOT
	 * MATCHED branch, no DELETE) instead of INSERT ... SELECT ... ON
	 * CONFLICT */
	bool merge_from_stage;
	/* CREATE TABLE ... DISTRIBUTE BY HASH(primary key) */
	bool distribute_by_hash;
	/* character lengths become byte lengths in created tables */
	bool char_length_in_bytes;
	/* upsert mode passes each column as one text[] parameter and
	 * unnests it (PostgreSQL 9.4+), instead of a parameter per value in
	 * a multi-row VALUES list */
	bool arrays;
	/* run once per session after the common settings, or NULL */
	const char *session_sql;
	/* CREATE INDEX must name the index (else the server names it) */
	bool index_needs_name;
	/* names the server keeps for its own system columns */
	const char *const *reserved_columns;
} dws_dialect;

extern const dws_dialect dws_dialect_pg;
extern const dws_dialect dws_dialect_dws;

/* Which dialect a version() string belongs to. */
const dws_dialect *dws_dialect_for(const char *version);

/* The SQL builders. cols: indexes into t->cols of the columns written (all
 * key columns included); n: their count. */
/* INSERT INTO t (cols) VALUES ($1, ..), (..) ON CONFLICT (key) DO UPDATE
 * SET non-key = EXCLUDED.non-key (DO NOTHING when only keys are written).
 * Parameters are numbered from 1, row by row. */
void dws_sql_upsert(dws_buf *sql, const dws_dialect *d, const dws_target *t,
                    const int *cols, int n, int nrows);
/* DELETE FROM t USING (VALUES ($1::type, ..), ..) AS v (key) WHERE t.key =
 * v.key: nrows keys. */
void dws_sql_delete(dws_buf *sql, const dws_dialect *d, const dws_target *t,
                    int nrows);
/* The same with one text[] parameter per column ($1 .. $n), unnested:
 * INSERT INTO t (cols) SELECT u.c1::type, .. FROM unnest($1::text[], ..)
 * AS u (c1, ..) ON CONFLICT ... */
void dws_sql_upsert_arrays(dws_buf *sql, const dws_target *t, const int *cols,
                           int n);
/* DELETE FROM t USING unnest($1::text[], ..) AS v (c1, ..) WHERE t.key =
 * v.c1::type ...: one text[] parameter per key column. */
void dws_sql_delete_arrays(dws_buf *sql, const dws_target *t);
/* From the staging table: the rows whose op is not 'd' and whose column
 * set is `set`, written into the target (upsert or MERGE). */
void dws_sql_merge_stage(dws_buf *sql, const dws_dialect *d,
                         const dws_target *t, const int *cols, int n, int set);
/* DELETE FROM t USING stage ... for the staged rows whose op is 'd' or
 * 'r' (delete, then write). */
void dws_sql_delete_stage(dws_buf *sql, const dws_dialect *d,
                          const dws_target *t);
/* Partial rows (some values unchanged TOAST, or a soft delete): an UPDATE
 * of the existing rows, never an insert, SETting the non-key columns of
 * cols (at least one; keys, and so DWS's distribution columns, never).
 * Both dialects:
 *   UPDATE t AS t SET c = v.c3, .. FROM (VALUES ($1::type, ..), ..) AS v
 *   (c1, ..) WHERE t.key = v.c1 ..   (nrows rows, parameters row by row) */
void dws_sql_update(dws_buf *sql, const dws_dialect *d, const dws_target *t,
                    const int *cols, int n, int nrows);
/* The same from one text[] parameter per column ($1 .. $n):
 *   UPDATE t AS t SET c = v.c3::type, .. FROM unnest($1::text[], ..) AS v
 *   (c1, ..) WHERE t.key = v.c1::type .. */
void dws_sql_update_arrays(dws_buf *sql, const dws_target *t, const int *cols,
                           int n);
/* Every row of t (UPDATE_ALL), the same statement in both dialects:
 *   UPDATE t SET c = $1::type, .. (no WHERE) */
void dws_sql_update_all(dws_buf *sql, const dws_target *t, const int *cols,
                        int n);
/* The same from the staging table's rows of column set `set`. */
void dws_sql_update_stage(dws_buf *sql, const dws_dialect *d,
                          const dws_target *t, const int *cols, int n, int set);
/* Which of nrows keys (parameters row by row, key columns only) have no
 * row in t: SELECT the 1-based position of each. */
void dws_sql_missing(dws_buf *sql, const dws_dialect *d, const dws_target *t,
                     int nrows);
/* The same with one text[] parameter per key column. */
void dws_sql_missing_arrays(dws_buf *sql, const dws_target *t);
/* The full phase: every row of the staging table `stage` (the target's
 * columns, in its order) written into the target: by key (upsert, or
 * MERGE) when by_key, else a plain INSERT ... SELECT. */
void dws_sql_full_stage(dws_buf *sql, const dws_dialect *d, const dws_target *t,
                        const char *stage, bool by_key);

/* The type automatic table creation gives a column (see dialect.c): its
 * base type (base_type_name, from the table's details: an enum's or a
 * domain's, or NULL) or else its own; malloc'd, NULL when the source sent
 * no type name. */
char *dws_create_type(const dws_dialect *d, const syncd_column *c,
                      const char *base_type_name);

/* Parses sink.server.timezone into the SET statement that gives the
 * session that zone ("UTC+08:00" is eight hours east of UTC). NULL and
 * *err set when the value is not a time zone. */
char *dws_timezone_sql(const char *spec, char **err);

/* ---- the plugin ------------------------------------------------------- */

typedef enum dws_mode { DWS_MODE_UPSERT = 0, DWS_MODE_COPY = 1 } dws_mode;

/* The options of both sinks (host->options). */
typedef struct dws_opts {
	const char *conninfo;
	const char *state_schema;
	bool auto_create_table;
	bool verify_column_number;
	const char *server_timezone;
	const char *schema_evolution;
} dws_opts;

typedef struct dws_state {
	const syncd_host *host;
	dws_mode mode;
	const char *conninfo;
	const char *state_schema;
	const char *job;
	const char *layout; /* "2/table": how keys are spread over workers */
	bool verify_columns;
	bool evolve;              /* schema.evolution = add */
	bool auto_create;         /* auto_create_table */
	bool full;                /* [job] mode has a full phase */
	struct dws_worker *admin; /* checks and table creation */
	char *timezone_sql;       /* SET TIME ZONE ... */
	pthread_mutex_t lock;
	bool state_ready;                      /* progress table exists */
	bool relayout_done[SYNCD_MAX_STREAMS]; /* see dws_applied_lsn */
	char *origin; /* origin_get's answer, until the next call */
	/* counts rewrites of syncd_copy's table rows (a copy_table, a
	 * forget): a worker's cached snapshot position is read again */
	unsigned snap_epoch;
	int copy_sessions; /* full phase: opened so far */
	bool copy_ready;   /* syncd_copy table exists */
	/* sessions run with session_replication_role = replica (foreign keys
	 * and ordinary triggers of the targets do not fire), as PostgreSQL's
	 * apply worker does: the destination role may set it */
	bool replica;
	bool replica_known; /* the first session found out */
} dws_state;

/* A source column as the destination sees it. */
typedef struct dws_col {
	char *qname;   /* quoted target column name */
	char *name;    /* target column name (for messages) */
	char *generic; /* the destination type without modifier, quoted, for
	                  casts that must not truncate */
	char *stage;   /* staging column type (destination type, or
	                  timestamptz for a time zone aware source value) */
	char *param;   /* a cast for parameters, or NULL */
	bool key;
} dws_col;

struct dws_target {
	uint64_t rel_id;
	syncd_relation *shape; /* a copy of the relation it was built for */
	char *qtable;          /* "schema"."table" */
	char *label;           /* schema.table, for messages */
	int ncols;             /* = shape->ncolumns */
	dws_col *cols;
	int nkeys;
	int *keys;   /* indexes into cols */
	char *stage; /* copy mode: the session's staging table */
	bool stage_ready;
	int stage_created_tx, stage_used_tx;
	/* the position the full copy of its source table was consistent
	 * with (STATE.syncd_copy), 0 when none: older changes are replays
	 * over a newer copy (see dws_snapshot_lsn) */
	bool snap_known;
	unsigned snap_epoch; /* dws_state.snap_epoch when it was read */
	syncd_lsn snap_lsn;
	bool snap_logged;
	dws_target *next;
};

typedef struct dws_worker dws_worker;
struct dws_worker {
	dws_state *s;
	int id;
	PGconn *conn;
	const dws_dialect *dialect;
	dws_target *targets;
	int stage_seq;
	int tx; /* counts the worker's batch transactions */
	int altered_tx; /* the last one that altered a target table */
	/* where a target may follow its source (schema.evolution = add):
	 * a batch being written, or the job's start (checking: --check,
	 * which only says what the start would do) */
	bool evolving, starting;
	dws_arena arena;
	dws_buf sql, data;
	/* tables (by relation id) whose rows go one by one after a data error,
	 * to find the row the destination refuses */
	uint64_t *careful;
	size_t ncareful;
	/* rows handed to the dirty-data path in the current write() (each
	 * once, however often the batch is written again); owned by
	 * dws_write */
	struct dws_rejected *rejected;
	size_t nrejected, caprejected;
	bool checking; /* --check: target problems are logged as errors */
};

/* ---- folding ---------------------------------------------------------- */

typedef enum dws_op { DWS_OP_DELETE = 'd', DWS_OP_WRITE = 'w' } dws_op;

/* The net effect of a batch's changes on one key. */
typedef struct dws_row {
	const syncd_value *vals;   /* ncols; DELETE: key columns only */
	const syncd_value *origin; /* WRITE after a key change with unchanged
	                              TOAST values left: the old key, whose
	                              destination row holds them; else NULL */
	const syncd_event *ev;     /* the last change (messages, dirty data) */
	uint32_t hash;
	char op;             /* dws_op */
	bool delete_first;   /* WRITE of a key deleted in this batch */
	bool partial;        /* some values are unchanged TOAST */
	int set;             /* copy mode: index of its column set */
	syncd_lsn first_lsn; /* the oldest change folded into it */
} dws_row;

typedef struct dws_pending {
	dws_target *t;
	const syncd_relation *rel;
	dws_row *rows;
	size_t nrows, cap;
	uint32_t *slots; /* open addressing: row index + 1, 0 empty */
	size_t nslots;
	struct dws_pending *next;
} dws_pending;

/* Folds one change into p (allocations from a). */
void dws_fold(dws_pending *p, dws_arena *a, const syncd_event *ev);
void dws_pending_free(dws_pending *p);
/* True when the key columns of a and b are equal. */
bool dws_key_equal(const dws_target *t, const syncd_value *a,
                   const syncd_value *b);

/* Internal result of a statement: a data error means "find the row". */
typedef enum dws_rc {
	DWS_OK = 0,
	DWS_DATA = 1,  /* SQLSTATE class 22 or 23, or 42804 */
	DWS_RETRY = 2, /* connection lost or transient */
	DWS_FATAL = 3,
	DWS_AGAIN = 4,   /* write the batch again (a table is bisected) */
	DWS_REJECTED = 5 /* the dirty-data path refused to go on */
} dws_rc;

/* ---- session.c: connections and statements ----------------------------- */

/* A connection (worker number `worker`: -1 for checks, DWS_FULL_WORKER
 * and up for copy sessions) with the job's session settings; the
 * caller's until dws_session_close(), which frees the worker (its targets
 * first freed with dws_targets_free()). */
syncd_status dws_session_open(dws_state *s, int worker, dws_worker **w);
void dws_session_close(dws_worker *w);
/* Logs which destination (dialect) and mode the job writes to, for the
 * first worker and the connection for checks. */
void dws_session_announce(const dws_worker *w);
/* Runs a statement (params may be NULL); classifies a failure and records
 * it with set_error, naming `what`. */
dws_rc dws_exec(dws_worker *w, const char *what, const char *sql, int nparams,
                const char *const *params, PGresult **keep);
/* A query of one boolean; false (and set_error) when it failed. */
bool dws_bool_query(dws_worker *w, const char *what, const char *sql, int n,
                    const char *const *params, bool *out);
/* Classifies a failed result (and clears it). */
dws_rc dws_result_error(dws_worker *w, const char *what, PGresult *r);
/* The last error's SQLSTATE and message (for dirty data). */
const char *dws_last_sqlstate(void);
const char *dws_last_message(void);
/* The operation's status for an internal result. */
syncd_status dws_status(dws_rc rc);
/* An identifier quoted with libpq, and "schema"."table" (malloc'd). */
char *dws_quote(dws_worker *w, const char *name);
char *dws_qualified(dws_worker *w, const char *schema, const char *table);

/* ---- progress.c: the job's state in state.schema ------------------------ */

/* The job's state tables in state.schema, created if missing: always, or
 * once per sink (ensure). */
dws_rc dws_state_prepare(dws_worker *w);
dws_rc dws_state_ensure(dws_worker *w);
/* The full phase's state table `table` (STATE.syncd_copy), created if
 * missing, or given the snapshot_lsn column an earlier version lacked. */
dws_rc dws_copy_state_prepare(dws_worker *w, const char *table);
/* Whether STATE.syncd_copy exists with the snapshot_lsn column of its
 * table rows (a copy state made by an earlier version lacks it until the
 * full phase adds it). */
dws_rc dws_copy_has_snapshots(dws_worker *w, bool *has);
/* --check of state.schema; logs each problem. */
bool dws_check_state(dws_worker *w);
/* The source's origin recorded for a stream (STATE.syncd_origin): *origin
 * malloc'd, NULL when none is. */
dws_rc dws_origin_read(dws_worker *w, uint32_t stream, char **origin);
/* Records it (an upsert, committed). */
dws_rc dws_origin_write(dws_worker *w, uint32_t stream, const char *origin);
/* A re-sync: in one transaction, the stream's progress and origin are
 * deleted, and its copies in syncd_copy stop counting as progress (their
 * chunks deleted, the table rows kept, with nchunks 0 and no snapshot
 * position: the next full phase empties what the job filled). */
dws_rc dws_progress_forget(dws_worker *w, uint32_t stream);
dws_rc dws_marks_write(dws_worker *w, const syncd_batch *b);
dws_rc dws_marks_list(dws_worker *w, uint32_t stream, syncd_mark_fn fn,
                      void *ctx);
dws_rc dws_progress_rewind(dws_worker *w, uint32_t stream, syncd_lsn lsn,
                           syncd_lsn *applied);
/* Records a worker's progress for a stream (inside the caller's
 * transaction). */
dws_rc dws_progress_write(dws_worker *w, uint32_t stream, int worker,
                          syncd_lsn lsn, const char *layout);
/* The sink's applied_lsn operation. */
syncd_status dws_applied_lsn(void *wstate, uint32_t stream, syncd_lsn *lsn);

/* ---- deferred.c: keys and indexes built after a copy -------------------- */

/* A table created for the full phase gets its primary key and indexes
 * after its copy (as pg_restore does): their DDL waits in
 * STATE.syncd_ddl. pending: is there some for the target; apply: run it
 * (in the caller's transaction) and forget it. */
dws_rc dws_ddl_pending(dws_worker *w, const char *schema, const char *table,
                       bool *pending);
dws_rc dws_ddl_apply(dws_worker *w, const char *schema, const char *table);

/* ---- target.c: target tables as the destination sees them --------------- */

/* The destination's view of rel's target table (cached per worker); NULL
 * and set_error when it cannot take the source's rows. */
dws_target *dws_target_get(dws_worker *w, const syncd_relation *rel,
                           dws_rc *rc);
/* Forgets every target of the worker. */
void dws_targets_free(dws_worker *w);

/* ---- apply.c: writing a batch ------------------------------------------- */

/* Applies one target's folded rows set by set (the mode's fast path). */
dws_rc dws_upsert_apply(dws_worker *w, dws_pending *p);
dws_rc dws_copy_apply(dws_worker *w, dws_pending *p, int tx);
/* Applies the rows by bisection under savepoints; each refused row goes
 * to the dirty-data path, the others are applied. */
dws_rc dws_apply_rows(dws_worker *w, dws_pending *p);
/* The sink's write operation. */
syncd_status dws_write(void *wstate, const syncd_batch *batch);

/* ---- tables.c: target tables ahead of the stream ------------------------ */

/* The connection for checks, table creation and the main thread's state
 * operations (origin_get, origin_set, forget): opened once, made again
 * when it was lost, closed by dws_destroy. dws_admin: NULL (and
 * set_error) when it cannot be opened. */
syncd_status dws_admin_open(dws_state *s, dws_worker **w);
dws_worker *dws_admin(dws_state *s);
/* The sink's prepare_table operation. */
syncd_status dws_prepare_table(void *state, const syncd_relation *rel,
                               syncd_prepare what);

/* ---- dws.c: the sink and its workers ------------------------------------ */

extern const syncd_option dws_options[];
syncd_status dws_create(const syncd_host *host, void **state, dws_mode mode);
void dws_destroy(void *state);
syncd_status dws_check(void *state);
/* The sink's origin_get, origin_set and forget (ABI 1.1). */
syncd_status dws_origin_get(void *state, uint32_t stream, const char **origin);
syncd_status dws_origin_set(void *state, uint32_t stream, const char *origin);
syncd_status dws_forget(void *state, uint32_t stream);
syncd_status dws_marks(void *state, uint32_t stream, syncd_mark_fn fn,
                       void *ctx);
syncd_status dws_rewind(void *state, uint32_t stream, syncd_lsn lsn,
                        syncd_lsn *applied);
syncd_status dws_digest(void *state, const syncd_digest_request *req,
                        syncd_digest_fn fn, void *ctx);
syncd_status dws_retire(void *state, bool apply, syncd_say_fn say,
                        void *ctx);
syncd_status dws_open(void *state, int worker, void **wstate);
void dws_close(void *wstate);

/* ---- full.c: the full phase --------------------------------------------- */

/* The sink's copy_open .. copy_end. Copy sessions are workers numbered
 * from DWS_FULL_WORKER (in messages). */
#define DWS_FULL_WORKER 1000
syncd_status dws_full_open(void *state, void **cstate);
void dws_full_close(void *cstate);
syncd_status dws_full_table(void *cstate, const syncd_copy_request *req,
                            syncd_copy_plan *plan);
syncd_status dws_full_begin(void *cstate, const syncd_copy_request *req,
                            uint32_t chunk, syncd_copy_how how, bool record);
syncd_status dws_full_data(void *cstate, const char *data, size_t len);
syncd_status dws_full_end(void *cstate, bool commit, uint64_t rows);

#endif
