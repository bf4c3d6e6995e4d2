/*
 * syncd/plugin.h - the plugin descriptor and the operations of the four
 * plugin kinds: source, transform, sink, dirty-data archiver.
 *
 * A plugin is a loadable module that exports exactly one function,
 * syncd_plugin_entry(), returning a pointer to a static descriptor. Use
 * the SYNCD_PLUGIN() macro at the end of the plugin's source:
 *
 *     static const syncd_sink_ops my_ops = {
 *         .size = sizeof(syncd_sink_ops), .create = ..., ...
 *     };
 *     SYNCD_PLUGIN(.kind = SYNCD_KIND_SINK, .name = "my_sink",
 *                  .version = "1.0", .options = my_options,
 *                  .options_size = sizeof(my_opts), .ops.sink = &my_ops);
 *
 * The loader checks magic, ABI version and structure sizes before it calls
 * anything (see syncd/abi.h), then that every required operation is
 * present and that the option table fits the option structure.
 *
 * Life cycle and ownership, for every kind:
 *  - create(host, &state) allocates the plugin's state and checks what it
 *    can without I/O (host->options holds the option values). It does no
 *    I/O that can block for long: connections are made later. When it
 *    fails after setting *state, destroy(state) is still called.
 *  - The plugin's state is its own from create() to destroy(). Arguments
 *    are borrowed for the call. Nothing is freed across the module
 *    boundary; a pointer a plugin hands back (an out-parameter) stays
 *    valid until the plugin's next call on the same state.
 *  - Every operation returns a syncd_status; before returning anything
 *    but SYNCD_OK (or SYNCD_END) it calls host->set_error() with the
 *    SQLSTATE (if any) and a message naming the object and the fix.
 *  - A plugin does only what its own system requires: the core runs the
 *    job (pre-checks, the full phase, progress, retries, stopping).
 */
#ifndef SYNCD_PLUGIN_H
#define SYNCD_PLUGIN_H

#include <stdbool.h>
#include <stdint.h>

#include <syncd/abi.h>
#include <syncd/event.h>
#include <syncd/host.h>
#include <syncd/option.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum syncd_plugin_kind {
	SYNCD_KIND_SOURCE = 1,
	SYNCD_KIND_TRANSFORM = 2,
	SYNCD_KIND_SINK = 3,
	SYNCD_KIND_ARCHIVER = 4
} syncd_plugin_kind;

/* Receives events (a source's read(), a transform's apply()). The event is
 * borrowed; the receiver copies it. Blocks while the pipeline is full
 * (backpressure). Anything but SYNCD_OK: stop and return it. */
typedef syncd_status (*syncd_emit_fn)(void *emit_ctx, const syncd_event *ev);

/* Receives one relation (list_tables); borrowed for the call. */
typedef syncd_status (*syncd_relation_fn)(void *ctx, const syncd_relation *rel);

/* Receives one stream's description (streams); borrowed for the call. */
typedef syncd_status (*syncd_stream_fn)(void *ctx, const syncd_stream *s);

/* Receives full-phase data: PostgreSQL COPY text format (whole rows, each
 * ending in a newline; \N for NULL; backslash escapes), in pieces of any
 * size. See syncd/copytext.h to write it. */
typedef syncd_status (*syncd_copy_fn)(void *ctx, const char *data, size_t len);

/* 1.2: one line for a person (what retire() finds or does). */
typedef void (*syncd_say_fn)(void *ctx, const char *line);

/* 1.2: a commit time of a stream and the position before it, recorded so
 * that syncd --start-time can go back to a time. Every transaction of the
 * stream committed at or after `time` has a commit position above `lsn`.
 * Never changes (no size field). */
typedef struct syncd_time_mark {
	uint32_t stream;
	int64_t time; /* microseconds since the Unix epoch, UTC */
	syncd_lsn lsn;
} syncd_time_mark;

/* 1.2: receives one time mark (a sink's marks()); borrowed for the call. */
typedef syncd_status (*syncd_mark_fn)(void *ctx, const syncd_time_mark *m);

/* ---- 1.2: comparing a table's rows (syncd --verify) -----------------------
 *
 * The core compares a source table with its target by asking both sides
 * for digests of key ranges, computed where the rows are. The hash of a
 * row is over the requested columns, in the requested order: for each,
 * "N" when NULL, else "V", the byte length of its text in decimal, ":"
 * and the text, the value's text being PostgreSQL's output with DateStyle
 * ISO, IntervalStyle postgres, TimeZone UTC, extra_float_digits 1 and
 * bytea_output hex; the hash is the first 16 hex digits of the MD5 of
 * that string, read as a signed 64-bit integer.
 */
typedef enum syncd_digest_kind {
	/* one answer: the rows of the range, count and the exact sum of
	 * their hashes (a decimal string) */
	SYNCD_DIGEST_SUM = 1,
	/* the key of every step-th row of the range in key order (the upper
	 * bounds of ranges of step rows), one answer each */
	SYNCD_DIGEST_SPLIT = 2,
	/* one answer per row of the range in key order: its key and its
	 * hash (a decimal string) */
	SYNCD_DIGEST_ROWS = 3,
	/* source only: the rows of the range, every column of rel, as COPY
	 * text through req->copy (syncd --verify --repair copies them
	 * again) */
	SYNCD_DIGEST_COPY = 4
} syncd_digest_kind;

typedef struct syncd_digest_request {
	uint32_t size; /* sizeof(syncd_digest_request) in the core */
	syncd_digest_kind kind;
	/* the table: a source's as list_tables() gave it, on stream; a
	 * sink's with target names (as prepare_table() had it) */
	const syncd_relation *rel;
	uint32_t stream;
	/* the columns hashed, as indexes into rel's columns */
	uint32_t ncols;
	const uint32_t *cols;
	/* the key the range and the order go by (indexes into rel's
	 * columns); the range is lo < key <= hi, compared as a row of the
	 * key's columns, text columns in the "C" collation; lo and hi hold
	 * nkeys values as text, or are NULL (no bound) */
	uint32_t nkeys;
	const uint32_t *keys;
	const char *const *lo;
	const char *const *hi;
	uint64_t step; /* SPLIT */
	/* sink only: a boolean column of rel (a logical delete flag) whose
	 * true rows count as absent, or UINT32_MAX */
	uint32_t absent_if;
	/* COPY */
	syncd_copy_fn copy;
	void *copy_ctx;
	/* lo and hi hold values of the first range_keys key columns only,
	 * and the range compares those (0: all nkeys); the rest of the key
	 * orders the rows and is answered with them */
	uint32_t range_keys;
} syncd_digest_request;

/* One answer; borrowed for the call. */
typedef struct syncd_digest_answer {
	uint32_t size;
	const char *const *key; /* SPLIT, ROWS: nkeys values as text */
	uint64_t count;         /* SUM */
	const char *hash;       /* SUM: the sum; ROWS: the row's hash */
} syncd_digest_answer;

typedef syncd_status (*syncd_digest_fn)(void *ctx,
                                        const syncd_digest_answer *a);

/* ---- the full phase ------------------------------------------------------
 *
 * A table of a snapshot, as the source describes it: its relation (columns
 * in the order of the COPY data), the catalog's estimates (for progress and
 * ordering; -1 when unknown), and its chunks. Each chunk is named by the
 * source in its own terms (pgoutput: "blocks 0-4095"); the name is shown in
 * progress lines and handed back to the source's copy_read(). A table that
 * is not split has one chunk.
 */
typedef struct syncd_copy_table {
	uint32_t size; /* sizeof(syncd_copy_table) */
	const syncd_relation *rel;
	int64_t est_rows;
	int64_t est_bytes;
	uint32_t nchunks; /* >= 1 */
	const char *const *chunks;
	/* The source's note about this table in this snapshot (pgoutput:
	 * the table's file node and the snapshot's xmin), or NULL. Recorded
	 * by a sink with copy operations when the table's copy starts afresh
	 * and handed back to copy_read() as changed_since when an unfinished
	 * copy is resumed from a newer snapshot. */
	const char *source_state;
	/* Set by the core for the sink: the position the snapshot is
	 * consistent with (every transaction of this stream that committed
	 * before it is in the rows, none after). A change of this table
	 * committed before it is a replay over a newer copy: the sink must
	 * not take values for it from the destination's rows (unchanged
	 * values carried over, a partial row), which may be newer. */
	syncd_lsn snapshot_lsn;
} syncd_copy_table;

#define SYNCD_COPY_TABLE_SIZE_1_0                                              \
	SYNCD_SIZE_THROUGH(syncd_copy_table, snapshot_lsn)

/* A snapshot the full phase reads, as snapshot() describes it. */
typedef struct syncd_snapshot {
	uint32_t size; /* sizeof(syncd_snapshot) */
	/* handed to copy_open() */
	const char *name;
	/* the position the snapshot is consistent with (see
	 * syncd_copy_table.snapshot_lsn); 0 when unknown */
	syncd_lsn lsn;
	/* the stream's selected tables (stride tables[0].size) */
	size_t ntables;
	const syncd_copy_table *tables;
} syncd_snapshot;

#define SYNCD_SNAPSHOT_SIZE_1_0 SYNCD_SIZE_THROUGH(syncd_snapshot, tables)

/* Where a stream stands when open() returns. */
typedef struct syncd_position {
	uint32_t size; /* set by the core */
	/* Every transaction with a commit position at or below it was
	 * confirmed earlier and will not come again (0: none). */
	syncd_lsn confirmed;
	/* The position was created now (a new slot): nothing older comes,
	 * and an earlier full phase counts for nothing. A snapshot taken
	 * before start() is consistent with it. */
	bool created;
	/* What holds the position, for messages (e.g. "replication slot
	 * syncd_shop"), or NULL; the source's, valid until close(). */
	const char *holder;
	/* 1.1. Where the stream's positions come from, as a string the core
	 * compares with the one recorded with the destination's progress
	 * (pgoutput: "system 7312..., timeline 1"): positions of different
	 * origins are not comparable, so the core refuses to go on and says
	 * how to re-sync. NULL: unknown (never compared). The source's,
	 * valid until close(). */
	const char *origin;
	/* 1.1. Set when the position exists but can no longer stream (a slot
	 * invalidated: WAL it needed was removed): why, for messages (the
	 * source's, valid until close()); NULL otherwise. The core then
	 * fails the job, or with [source] slot.lost = resync drops the
	 * position (drop()) and copies the stream's tables again. */
	const char *lost;
	/* 1.2. How long, in milliseconds, the source keeps what was
	 * confirmed so that rewind() can go back to it (pgoutput:
	 * slot.flush.delay.time); 0 when it keeps nothing. The core records
	 * time marks (syncd_batch.marks) for that long. */
	int64_t retention_ms;
} syncd_position;

#define SYNCD_POSITION_SIZE_1_0 SYNCD_SIZE_THROUGH(syncd_position, holder)

/* ---- source --------------------------------------------------------------
 *
 * How the core runs a source (every step in the core's threads):
 *   check()                         `syncd --check` only
 *   list_tables()                   --preview, table creation, pre-checks
 *   streams()                       how many ordered streams, their names
 *   per stream, when the job streams:
 *     open(stream, &pos)            connect; find or create the position
 *     (the core compares pos.confirmed with the destination's progress)
 *   per stream, when the job has a full phase and the copy is not done:
 *     snapshot(stream, &snap)       a snapshot consistent with the
 *                                   position (created now), or a new one
 *     copy_open/copy_read/copy_close  in the core's copy threads
 *     release(stream)
 *   per stream, when the job streams, in a thread of its own:
 *     start(stream, after)
 *     read(stream, ...) until the job stops (at a transaction boundary)
 *     confirm(stream, lsn)          from any thread, whenever the
 *                                   destination has made more durable
 *     close(stream)                 after the last confirm
 */
typedef struct syncd_source_ops {
	uint32_t size; /* sizeof(syncd_source_ops) as the plugin was built */

	/* Required. Allocate state; check options. No long blocking I/O. */
	syncd_status (*create)(const syncd_host *host, void **state);
	/* Required. Release everything; called once every stream is closed
	 * and every reader is closed. */
	void (*destroy)(void *state);
	/* Optional, and if absent the source has no pre-checks. The
	 * pre-checks of `syncd --check`: logs one error line per failure
	 * (object and fix) and returns SYNCD_INVALID if any failed. */
	syncd_status (*check)(void *state);
	/* Optional, and if absent the source cannot say which tables it
	 * reads (no --preview, no table creation, no full phase). Connects
	 * as needed, changes nothing, and calls fn once per selected table,
	 * in a stable order: every column with its type name, key and NOT
	 * NULL flags, and details when the source knows them; target names
	 * NULL. Stops early and returns what fn returned if that is not
	 * SYNCD_OK. */
	syncd_status (*list_tables)(void *state, syncd_relation_fn fn,
	                            void *ctx);
	/* Optional, and if absent the source has one stream, number 0,
	 * named after the plugin. Calls fn once per stream (each with its
	 * own id); at most SYNCD_MAX_STREAMS. May connect to discover them;
	 * the answer must not change for the life of the instance. */
	syncd_status (*streams)(void *state, syncd_stream_fn fn, void *ctx);

	/* The stream: open, start, read, confirm and close are all present
	 * or all absent; if absent the source cannot stream (mode = full
	 * only). */
	/* Connect stream `stream` and find (or create) its position; fill
	 * pos (zeroed by the core). SYNCD_INVALID when the stream cannot run
	 * as set up (a wrong server setting, a missing right). */
	syncd_status (*open)(void *state, uint32_t stream, syncd_position *pos);
	/* Start streaming the transactions that commit after `after` (the
	 * core passes the larger of pos.confirmed and what the destination
	 * has applied). */
	syncd_status (*start)(void *state, uint32_t stream, syncd_lsn after);
	/* Hand what arrives within about timeout_ms to emit, as events of
	 * this stream; return SYNCD_OK (having emitted any number of
	 * events, none included), SYNCD_END when a finite stream is over,
	 * SYNCD_RETRY when the connection was lost, or SYNCD_FATAL. Also
	 * keeps the server answered (keepalives) while idle. */
	syncd_status (*read)(void *state, uint32_t stream, int timeout_ms,
	                     syncd_emit_fn emit, void *emit_ctx);
	/* Every transaction of the stream with a commit position at or
	 * below lsn is durable at the destination: the source may release
	 * it (a slot's confirmed position). Never more than this. Called
	 * from any thread, also while read() runs; the source passes it on
	 * at its own pace, and at close(). */
	void (*confirm)(void *state, uint32_t stream, syncd_lsn lsn);
	/* End the stream (the last confirm is passed on first). Also after
	 * a failure, and after open() without start(). */
	void (*close)(void *state, uint32_t stream);

	/* The full phase: snapshot, release, copy_open, copy_read and
	 * copy_close are all present or all absent; if absent the source has
	 * no full phase (mode = incremental only). */
	/* Describe a snapshot of the stream's selected tables and keep it
	 * valid until release(): after open() created the position, one
	 * consistent with it; otherwise a new one. snap (zeroed by the core)
	 * and what it points to stay valid until release(). */
	syncd_status (*snapshot)(void *state, uint32_t stream,
	                         syncd_snapshot *snap);
	void (*release)(void *state, uint32_t stream);
	/* The readers, one per copy thread of the core: copy_open()
	 * connects and takes the snapshot named `snapshot`; copy_read()
	 * streams chunk `chunk` of table t from it as COPY text through fn,
	 * stopping with what fn returned if that is not SYNCD_OK;
	 * copy_close() ends the reader. changed_since is NULL, or, for a
	 * chunk an earlier copy of the table finished, the source_state that
	 * copy recorded: then only the rows of the chunk that may differ
	 * from what that copy wrote are wanted, and every row when the
	 * source cannot tell. */
	syncd_status (*copy_open)(void *state, uint32_t stream,
	                          const char *snapshot, void **reader);
	syncd_status (*copy_read)(void *reader, const syncd_copy_table *t,
	                          uint32_t chunk, const char *changed_since,
	                          syncd_copy_fn fn, void *ctx);
	void (*copy_close)(void *reader);

	/* 1.1, optional. Remove the stream's position (a replication slot)
	 * for good, so that the next open() creates it anew. Called after
	 * close(), for a re-sync (syncd --resync, [source] slot.lost =
	 * resync). SYNCD_OK also when there was nothing to remove. */
	syncd_status (*drop)(void *state, uint32_t stream);

	/* 1.2, optional. syncd --drop retires the job: what it left at the
	 * source for the stream (its position and whatever keeps WAL for
	 * it; a publication it created, unless something else may still
	 * read it), one line each through say(). With apply, it is also
	 * removed, and each line says what was done. Called with the stream
	 * closed (never opened). SYNCD_RETRY, with an error naming it, when
	 * something is in use (the job runs): nothing is removed then. */
	syncd_status (*retire)(void *state, uint32_t stream, bool apply,
	                       syncd_say_fn say, void *ctx);

	/* 1.2, optional, and if absent the stream cannot go back in time
	 * (syncd --start-time is refused). Called with the stream closed,
	 * before open(): set the stream's position back so that open()
	 * returns a confirmed position at or below lsn and start(lsn)
	 * streams every transaction committed after lsn. Without apply,
	 * only say whether it can. SYNCD_INVALID when the source no longer
	 * keeps lsn: *oldest (zeroed by the core) is then the smallest
	 * position it could go back to, 0 when none, and the error says
	 * what keeps it (a setting to raise); SYNCD_RETRY when the
	 * position is in use (the job runs). */
	syncd_status (*rewind)(void *state, uint32_t stream, syncd_lsn lsn,
	                       bool apply, syncd_lsn *oldest);

	/* 1.2, optional, and if absent syncd --verify cannot compare the
	 * source's tables. Answers req (see syncd_digest_request) through
	 * fn, in key order, from the source's current committed state, on
	 * a connection of its own; any thread, the stream need not be
	 * open. */
	syncd_status (*digest)(void *state, const syncd_digest_request *req,
	                       syncd_digest_fn fn, void *ctx);

	/* 1.3, optional, all three or none; they need the full phase's
	 * copy_open/copy_read/copy_close. With them, the core copies tables
	 * while the stream goes on: tables that join the selection, and
	 * those named to syncd --resync TABLE. Without them, neither (a new
	 * table waits for a job's re-sync). All three are called in the
	 * stream's own thread, between two read()s, and never while an
	 * earlier snapshot_tables() is not released. */
	/* Calls fn once per table the stream should carry and does not:
	 * one that joined the selection since open() (created, renamed into
	 * it, a partition attached under partitions = leaf), or one whose
	 * rows the stream cannot carry and must be copied again (a partition
	 * attached with rows it held before under a synced root), described
	 * as list_tables() would. A table that left the selection (dropped,
	 * renamed out of it) is logged by the source and no longer carried;
	 * its target is the user's. Changes nothing else; SYNCD_OK with no
	 * call when nothing changed. */
	syncd_status (*new_tables)(void *state, uint32_t stream,
	                           syncd_relation_fn fn, void *ctx);
	/* Makes the stream carry those of tables[0..n) (database, schema
	 * and table as list_tables() names them) that are its own from now
	 * on, adding them to what the source publishes, and describes like
	 * snapshot() a snapshot of them taken now: snap->lsn is the position
	 * it is consistent with (it holds every transaction whose commit
	 * position is below, none at or above). snap->ntables may be 0 (none
	 * of them is the stream's). SYNCD_INVALID when one of its database
	 * is not a table it can sync (the error says why). snap and what it
	 * points to stay valid until release_tables(). */
	syncd_status (*snapshot_tables)(void *state, uint32_t stream,
	                                const syncd_relation *const *tables,
	                                size_t n, syncd_snapshot *snap);
	void (*release_tables)(void *state, uint32_t stream);
} syncd_source_ops;

#define SYNCD_SOURCE_OPS_SIZE_1_0                                              \
	SYNCD_SIZE_THROUGH(syncd_source_ops, copy_close)

/* ---- transform ---------------------------------------------------------- */

typedef struct syncd_transform_ops {
	uint32_t size;

	/* Required. */
	syncd_status (*create)(const syncd_host *host, void **state);
	/* Required. */
	void (*destroy)(void *state);
	/* Optional, and if absent the transform has no pre-checks. */
	syncd_status (*check)(void *state);
	/* Required. Receive one event (transforms run in job-file order, one
	 * event at a time, on the stream and in the full phase alike; the
	 * relations carry their target names) and emit zero or more events
	 * through emit(). A transform that changes the shape of a table
	 * (adds columns) emits its own RELATION event with the same id, and
	 * changes that point to it. Events it does not care about are
	 * passed on unchanged. A row that cannot be transformed (bad data) is
	 * returned as SYNCD_REJECT after set_error(); the core treats it as
	 * dirty data. */
	syncd_status (*apply)(void *state, const syncd_event *ev,
	                      syncd_emit_fn emit, void *emit_ctx);
} syncd_transform_ops;

#define SYNCD_TRANSFORM_OPS_SIZE_1_0                                           \
	SYNCD_SIZE_THROUGH(syncd_transform_ops, apply)

/* ---- sink ----------------------------------------------------------------
 *
 * What a sink worker is asked to apply: a slice of whole transactions, in
 * source commit order, for the keys routed to this worker. events holds,
 * in order, BEGIN, RELATION (before the first change of a table in the
 * batch, and again when the table changed), changes and COMMIT events. A
 * batch may hold no events at all and only advance progress.
 *
 * When write() returns SYNCD_OK, every change of the batch and the batch's
 * progress must be durable at the destination, written together, so that
 * a restart can skip what is applied (applied_lsn).
 *
 * A large transaction may be split across batches: a batch then ends
 * without that transaction's COMMIT, and the next one starts with a new
 * BEGIN for it.
 *
 * Apply must be idempotent, because after a crash the changes since the
 * last recorded progress come again: an INSERT of an existing key writes
 * the row, a DELETE of a missing key does nothing, and a key change whose
 * old row is already gone takes its unchanged values from the row already
 * at the new key.
 *
 * The full phase reaches a sink without copy operations through write()
 * too: per table, a TRUNCATE, then its rows as INSERTs, in one transaction
 * per stream whose commit position is just below the snapshot's.
 */

/* Never changes (no size field). */
typedef struct syncd_progress {
	uint32_t stream;
	syncd_lsn lsn;
} syncd_progress;

typedef struct syncd_batch {
	uint32_t size; /* sizeof(syncd_batch) in the core */
	int worker;    /* 0 .. job->workers - 1 */
	/* progress to record with the batch: per stream, the commit
	 * position up to which this worker has now applied everything */
	size_t nprogress;
	const syncd_progress *progress;
	size_t nevents;
	const syncd_event *const *events;
	size_t nchanges; /* changes among the events */
	size_t bytes;    /* approximate size of the values */
	/* 1.2. Time marks to record with the progress (any worker's batch
	 * may carry them; a sink without marks() ignores them), and the
	 * time (us since the epoch) before which recorded marks may be
	 * deleted (0: none). */
	size_t nmarks;
	const syncd_time_mark *marks;
	int64_t marks_before;
} syncd_batch;

typedef enum syncd_prepare {
	SYNCD_PREPARE_CHECK = 1,
	SYNCD_PREPARE_CREATE = 2,
	SYNCD_PREPARE_START = 3
} syncd_prepare;

/* How a sink with copy operations takes a table (see copy_table). */
typedef enum syncd_copy_how {
	/* finished by an earlier run: not copied */
	SYNCD_COPY_SKIP = 0,
	/* COPY straight into the (empty) target */
	SYNCD_COPY_DIRECT = 1,
	/* the target held rows the job did not write: stage, then merge
	 * by key */
	SYNCD_COPY_MERGE = 2
} syncd_copy_how;

/* One table of the full phase, as the core hands it to a sink. */
typedef struct syncd_copy_request {
	uint32_t size;             /* sizeof(syncd_copy_request) in the core */
	const syncd_relation *rel; /* with target names */
	uint32_t stream;
	const syncd_copy_table *table;
	/* the snapshot starts a new stream position: earlier copies count
	 * for nothing */
	bool again;
} syncd_copy_request;

/* The sink's answer to copy_table. */
typedef struct syncd_copy_plan {
	uint32_t size; /* set by the core */
	syncd_copy_how how;
	/* The core's, table->nchunks entries, all false: set finished[i]
	 * for each chunk an earlier, unfinished copy finished. */
	bool *finished;
	/* With finished chunks: the source_state that earlier copy recorded
	 * (the sink's, valid until its next call on this session), or
	 * NULL. */
	const char *earlier;
} syncd_copy_plan;

typedef struct syncd_sink_ops {
	uint32_t size;

	/* Required. One instance per job, shared by every worker. */
	syncd_status (*create)(const syncd_host *host, void **state);
	/* Required. Called after every worker and session is closed. */
	void (*destroy)(void *state);
	/* Optional, and if absent the sink has no pre-checks. */
	syncd_status (*check)(void *state);
	/* Required. Open worker `worker` (its own connection); called in
	 * the worker's thread. */
	syncd_status (*open)(void *state, int worker, void **wstate);
	/* Required. Close a worker opened by open(), in its thread. */
	void (*close)(void *wstate);
	/* Optional, and if absent the core assumes nothing is applied (0),
	 * and the full phase is done again at every start. The progress
	 * this worker recorded at the destination for a stream: after a
	 * restart the core skips that stream's transactions with a commit
	 * position at or below it. */
	syncd_status (*applied_lsn)(void *wstate, uint32_t stream,
	                            syncd_lsn *lsn);
	/* Required. Apply a batch durably (see above). A row the
	 * destination refuses for its data goes to host->sink->reject(); the
	 * rest of the batch is still applied. SYNCD_RETRY after a lost
	 * connection: the core reopens the worker and writes the same batch
	 * again. */
	syncd_status (*write)(void *wstate, const syncd_batch *batch);
	/* Optional, and if absent the sink neither checks nor creates
	 * target tables ahead of the stream. Called from the main thread
	 * before any worker is opened, once per table the source selects
	 * (its list_tables relation, routed by the core), with:
	 *  SYNCD_PREPARE_CHECK   `syncd --check`: change nothing; log one
	 *                        error line per problem (missing schema or
	 *                        table, rights, key, columns) and return
	 *                        SYNCD_INVALID if there was any;
	 *  SYNCD_PREPARE_CREATE  `syncd --create-tables`: create the target
	 *                        table if it is missing; never alter or drop
	 *                        an existing one;
	 *  SYNCD_PREPARE_START   the job starts: create a missing table if
	 *                        the sink is configured to, and fail early on
	 *                        a target that cannot take the rows. */
	syncd_status (*prepare_table)(void *state, const syncd_relation *rel,
	                              syncd_prepare what);

	/* The copy fast path: all six present or all absent; if absent the
	 * full phase comes through write(). One session per core copy
	 * thread, its own connection, opened and closed in that thread:
	 *  copy_open / copy_close  the session;
	 *  copy_table  once per table before any of its chunks: records,
	 *      durably, that the job copies it now in table->nchunks chunks,
	 *      and says how (plan->how):
	 *      SKIP when an earlier run finished it and req->again is false;
	 *      MERGE with plan->finished when an earlier, unfinished copy
	 *      finished some chunks and req->again is false (and
	 *      plan->earlier, the source_state that copy recorded); the
	 *      finished chunks stay recorded;
	 *      else DIRECT when the target is empty or was filled by this
	 *      job's earlier copy (which it empties first, in the same
	 *      transaction), or MERGE (the target holds rows the job did not
	 *      write: they are kept, rows of the same key are replaced);
	 *  copy_begin / copy_data / copy_end  one chunk in one destination
	 *      transaction: with record, copy_end(commit = true) makes the
	 *      rows and the chunk's completion durable together; without,
	 *      only the rows (a finished chunk's changed rows, read again).
	 *      copy_end(false) abandons it. A table is finished when all its
	 *      chunks are.
	 * A data error (a row the destination refuses): copy_end returns
	 * SYNCD_REJECT (the chunk rolled back), and the core sends the same
	 * chunk once more, during which the sink isolates the refused rows,
	 * hands each to host->sink->reject as an INSERT and commits the rest;
	 * a sink that cannot fails the chunk with the server's message. */
	syncd_status (*copy_open)(void *state, void **cstate);
	void (*copy_close)(void *cstate);
	syncd_status (*copy_table)(void *cstate, const syncd_copy_request *req,
	                           syncd_copy_plan *plan);
	syncd_status (*copy_begin)(void *cstate, const syncd_copy_request *req,
	                           uint32_t chunk, syncd_copy_how how,
	                           bool record);
	syncd_status (*copy_data)(void *cstate, const char *data, size_t len);
	syncd_status (*copy_end)(void *cstate, bool commit, uint64_t rows);

	/* 1.1, optional, all three or none (without them the core cannot
	 * tell a changed source, and a re-sync keeps the progress rows: the
	 * sink must then forget them itself). Called from the main thread,
	 * with no worker writing the stream.
	 * origin_get: the origin (syncd_position.origin) recorded for the
	 * stream, or NULL when none is (the sink's, valid until its next
	 * call). origin_set: record it, durably. forget: the stream starts
	 * over (a re-sync from a new position): forget its progress and its
	 * origin; what earlier copies filled is emptied by the next full
	 * phase (syncd_copy_request.again). */
	syncd_status (*origin_get)(void *state, uint32_t stream,
	                           const char **origin);
	syncd_status (*origin_set)(void *state, uint32_t stream,
	                           const char *origin);
	syncd_status (*forget)(void *state, uint32_t stream);

	/* 1.2, optional. syncd --drop: what the job keeps at the
	 * destination besides the data (its progress and state), one line
	 * each through say(); with apply, also removed. The target tables
	 * and their rows are never touched. */
	syncd_status (*retire)(void *state, bool apply, syncd_say_fn say,
	                       void *ctx);

	/* 1.2, optional, both or none (without them syncd --start-time is
	 * refused). Called from the main thread before any worker is
	 * opened. marks: call fn for every time mark recorded for the
	 * stream (syncd_batch.marks), oldest first. rewind: set every
	 * worker's recorded progress of the stream that is above lsn back
	 * to lsn, durably (never forward), and forget the stream's marks
	 * above it: the stream is applied again from there; *applied
	 * (zeroed by the core) gets the smallest progress a worker had
	 * recorded before, 0 when none. */
	syncd_status (*marks)(void *state, uint32_t stream, syncd_mark_fn fn,
	                      void *ctx);
	syncd_status (*rewind)(void *state, uint32_t stream, syncd_lsn lsn,
	                       syncd_lsn *applied);

	/* 1.2, optional, and if absent syncd --verify cannot compare the
	 * targets. As the source's digest(), for a target table (kinds SUM
	 * and ROWS), from the main thread on a connection of its own; also
	 * while the job's workers write. */
	syncd_status (*digest)(void *state, const syncd_digest_request *req,
	                       syncd_digest_fn fn, void *ctx);
} syncd_sink_ops;

#define SYNCD_SINK_OPS_SIZE_1_0 SYNCD_SIZE_THROUGH(syncd_sink_ops, copy_end)

/* ---- dirty-data archiver ------------------------------------------------ */

/* One row the destination refused. Borrowed. */
typedef struct syncd_dirty_record {
	uint32_t size; /* sizeof(syncd_dirty_record) in the core */
	const char *job;
	int worker;
	/* the change, with ev->rel naming source and target tables */
	const syncd_event *ev;
	const char *sqlstate; /* may be NULL */
	const char *message;
} syncd_dirty_record;

typedef struct syncd_archiver_ops {
	uint32_t size;

	/* Required. */
	syncd_status (*create)(const syncd_host *host, void **state);
	/* Required. Flushes what is pending first. */
	void (*destroy)(void *state);
	/* Optional, and if absent the archiver has no pre-checks. */
	syncd_status (*check)(void *state);
	/* Required. Store one record; may buffer. Called from worker
	 * threads, one call at a time (the core serialises calls). */
	syncd_status (*write)(void *state, const syncd_dirty_record *rec);
	/* Optional, and if absent write() is durable on return. Make every
	 * record written so far durable; the core calls it before it
	 * confirms the position of those rows. */
	syncd_status (*flush)(void *state);
} syncd_archiver_ops;

#define SYNCD_ARCHIVER_OPS_SIZE_1_0                                            \
	SYNCD_SIZE_THROUGH(syncd_archiver_ops, flush)

/* ---- descriptor --------------------------------------------------------- */

typedef struct syncd_plugin {
	uint32_t magic;       /* SYNCD_ABI_MAGIC */
	uint16_t abi_major;   /* SYNCD_ABI_MAJOR the plugin was built with */
	uint16_t abi_minor;   /* SYNCD_ABI_MINOR the plugin was built with */
	uint32_t size;        /* sizeof(syncd_plugin) */
	uint32_t option_size; /* sizeof(syncd_option) */
	syncd_plugin_kind kind;
	const char *name;        /* [a-z0-9_]+, the module's file name */
	const char *version;     /* the plugin's own version */
	const char *description; /* one line */
	/* NULL-name terminated; NULL when the plugin has no options */
	const syncd_option *options;
	/* sizeof the structure the options are stored in (host->options) */
	size_t options_size;
	union {
		const syncd_source_ops *source;
		const syncd_transform_ops *transform;
		const syncd_sink_ops *sink;
		const syncd_archiver_ops *archiver;
	} ops;
} syncd_plugin;

#define SYNCD_PLUGIN_SIZE_1_0 SYNCD_SIZE_THROUGH(syncd_plugin, ops)
#define SYNCD_OPTION_SIZE_1_0 SYNCD_SIZE_THROUGH(syncd_option, field_size)

#define SYNCD_EXPORT __attribute__((visibility("default")))

/* Defines the module's entry function. Pass designated initializers for
 * the fields after option_size. */
#define SYNCD_PLUGIN(...)                                                      \
	SYNCD_EXPORT const syncd_plugin *syncd_plugin_entry(void);             \
	SYNCD_EXPORT const syncd_plugin *syncd_plugin_entry(void)              \
	{                                                                      \
		static const syncd_plugin syncd_plugin_descriptor_ = {         \
		    .magic = SYNCD_ABI_MAGIC,                                  \
		    .abi_major = SYNCD_ABI_MAJOR,                              \
		    .abi_minor = SYNCD_ABI_MINOR,                              \
		    .size = sizeof(syncd_plugin),                              \
		    .option_size = sizeof(syncd_option),                       \
		    __VA_ARGS__};                                              \
		return &syncd_plugin_descriptor_;                              \
	}

#ifdef __cplusplus
}
#endif
#endif
