/*
 * syncd/plugin.h - the plugin descriptor and the operations of the four
 * plugin kinds: source, transform, sink, dirty-data archiver.
 *
 * A plugin is a loadable module that exports exactly one function,
 * syncd_plugin_entry(), returning a pointer to a static descriptor. Use the
 * SYNCD_PLUGIN() macro at the end of the plugin's one source file:
 *
 *     static const syncd_sink_ops my_ops = {
 *         .size = sizeof(syncd_sink_ops), .create = ..., ...
 *     };
 *     SYNCD_PLUGIN(.kind = SYNCD_KIND_SINK, .name = "my_sink",
 *                  .version = "1.0", .options = my_options,
 *                  .ops.sink = &my_ops);
 *
 * The loader checks magic, ABI version and structure sizes before it calls
 * anything (see syncd/abi.h), then that every required operation is present.
 *
 * Life cycle and ownership, for every kind:
 *  - create(inst, host, &state) validates the instance's options (read them
 *    through host) and allocates the plugin's state. It does no I/O that can
 *    block for long: connections are made in check(), run() or open().
 *  - The plugin's state is its own from create() to destroy(). Arguments are
 *    borrowed for the call. Nothing is freed across the module boundary.
 *  - Every operation returns a syncd_status; before returning anything but
 *    SYNCD_OK it calls host->set_error() with the SQLSTATE (if any) and a
 *    message naming the object and the fix.
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

/* ---- full phase (snapshot copy) ---------------------------------------- */

/*
 * One table of the full phase, as the source describes it to host->copy():
 * its relation (columns in the order of the COPY data), the catalog's
 * estimates (for progress and ordering; -1 when unknown), and its chunks.
 * Each chunk is named by the source in its own terms (pgoutput: "blocks
 * 0-4095"); the name is shown in progress lines and handed back to the
 * source's copy_read(). A table that is not split has one chunk.
 */
typedef struct syncd_copy_table {
	const syncd_relation *rel;
	int64_t est_rows;
	int64_t est_bytes;
	uint32_t nchunks; /* >= 1 */
	const char *const *chunks;
	/* The source's note about this table in this snapshot (pgoutput:
	 * the table's file node and the snapshot's xmin), at most
	 * SYNCD_COPY_STATE_MAX - 1 bytes. The sink records it when the
	 * table's copy starts afresh and hands it back when an unfinished
	 * copy is resumed; copy_read() then gets it as changed_since. */
	const char *source_state;
	/* The position the copy's snapshot is consistent with: every
	 * transaction of this stream that committed before it is in the
	 * rows copied, none after. A change of this table committed before
	 * it is a replay over a newer copy (a copy resumed from a fresh
	 * snapshot while the slot is older): the sink must not take values
	 * for it from the destination's rows (unchanged TOAST carried over,
	 * a partial row), which may be newer. 0 when unknown. */
	syncd_lsn snapshot_lsn;
} syncd_copy_table;

#define SYNCD_COPY_STATE_MAX 256

/* Receives COPY data (PostgreSQL COPY text format: whole rows, each ending
 * in a newline) in pieces of any size. */
typedef syncd_status (*syncd_copy_fn)(void *ctx, const char *data,
                                      size_t len);

/* How the sink takes a table in the full phase (see copy_table). */
typedef enum syncd_copy_how {
	SYNCD_COPY_SKIP = 0,   /* finished by an earlier run: not copied */
	SYNCD_COPY_DIRECT = 1, /* COPY straight into the (empty) target */
	SYNCD_COPY_MERGE = 2   /* the target held rows the job did not write:
	                          stage, then merge by key */
} syncd_copy_how;

/* ---- source ------------------------------------------------------------ */

typedef struct syncd_source_ops {
	uint32_t size; /* sizeof(syncd_source_ops) as the plugin was built */

	/* Required. Validate options, allocate state. No long blocking I/O. */
	syncd_status (*create)(syncd_instance *inst, const syncd_host *host,
	                       void **state);
	/* Required. Release everything create() and run() acquired. */
	void (*destroy)(void *state);
	/* Optional, and if absent the source has no pre-checks. Runs the
	 * pre-checks of `syncd --check`: logs one error line per failure
	 * (object and fix) and returns SYNCD_FATAL if any failed. */
	syncd_status (*check)(void *state);
	/* Required. Connect and stream events through host->emit() until
	 * host->stopping() is true, the stream ends (a finite source), or a
	 * failure. Periodically confirm host->flushed_lsn() to the source
	 * database, never more. At a clean end or stop, call host->drain() and
	 * confirm what it returns before returning SYNCD_OK. */
	syncd_status (*run)(void *state);
	/* Optional, and if absent the source cannot say which tables it
	 * reads (no --preview, automatic table creation or full copy).
	 * Connects as needed, changes nothing, streams nothing, and calls fn
	 * once per selected table, in a stable order, with its relation:
	 * every column with its type name, key (primary key) and NOT NULL
	 * flags; target names NULL. The relation is borrowed for the call.
	 * Stops early and returns what fn returned if that is not SYNCD_OK. */
	syncd_status (*list_tables)(
	    void *state,
	    syncd_status (*fn)(void *ctx, const syncd_relation *rel),
	    void *ctx);
	/* Optional, all three or none; if absent the source has no full
	 * phase (the job must run with mode = incremental). The full phase's
	 * readers, one per copy thread of the core: copy_open() connects to
	 * stream `stream` and takes the snapshot named `snapshot` (as the
	 * source handed it to host->copy()); copy_read() streams chunk
	 * `chunk` of table t (as handed to host->copy()) from that snapshot
	 * as COPY text data through fn, stopping with what fn returned if
	 * that is not SYNCD_OK; copy_close() ends the reader. Called from
	 * the core's copy threads, while run() waits inside host->copy().
	 * changed_since is NULL, or, for a chunk an earlier copy of the table
	 * finished, the source_state recorded when that copy started: then
	 * only the rows of the chunk that may differ from what that copy
	 * wrote are wanted (rows written or moved into the chunk since), and
	 * every row when the source cannot tell. */
	syncd_status (*copy_open)(void *state, uint32_t stream,
	                          const char *snapshot, void **reader);
	syncd_status (*copy_read)(void *reader, const syncd_copy_table *t,
	                          uint32_t chunk, const char *changed_since,
	                          syncd_copy_fn fn, void *ctx);
	void (*copy_close)(void *reader);
} syncd_source_ops;

/* ---- transform --------------------------------------------------------- */

/* Where a transform sends what it produces. Borrowed event, copied by the
 * receiver. */
typedef syncd_status (*syncd_emit_fn)(void *emit_ctx, const syncd_event *ev);

typedef struct syncd_transform_ops {
	uint32_t size;

	/* Required. */
	syncd_status (*create)(syncd_instance *inst, const syncd_host *host,
	                       void **state);
	/* Required. */
	void (*destroy)(void *state);
	/* Optional, and if absent the transform has no pre-checks. */
	syncd_status (*check)(void *state);
	/* Required. Receive one event (transforms run in job-file order, in the
	 * source's thread) and emit zero or more events through emit(). A
	 * transform that changes the shape of a table (adds columns) emits its
	 * own RELATION event with the same id, and changes that point to it.
	 * Events it does not care about are passed on unchanged. A row that
	 * cannot be transformed (bad data) is returned as SYNCD_REJECT after
	 * set_error(); the core treats it as dirty data. */
	syncd_status (*apply)(void *state, const syncd_event *ev,
	                      syncd_emit_fn emit, void *emit_ctx);
} syncd_transform_ops;

/* ---- sink -------------------------------------------------------------- */

/*
 * What a sink worker is asked to apply: a slice of whole transactions, in
 * source commit order, for the keys routed to this worker. events holds, in
 * order, BEGIN, RELATION (before the first change of a table in the batch,
 * and again when the table changed), INSERT / UPDATE / DELETE / TRUNCATE and
 * COMMIT events. A batch may hold no events at all and only advance lsn
 * (the source moved on without changes for this worker).
 *
 * When write() returns SYNCD_OK, every change of the batch and the batch's
 * progress must be durable at the destination, written in the same
 * destination transaction, so that a restart can skip what is applied
 * (applied_lsn).
 *
 * A large transaction may be split across batches: a batch then ends
 * without that transaction's COMMIT, and the next one starts with a new
 * BEGIN for it.
 *
 * Apply must be idempotent, because after a crash the changes since the
 * last recorded progress come again: an INSERT of an existing key writes
 * the row, a DELETE of a missing key does nothing, and a primary-key
 * change whose old row is already gone (moved by the first run) takes its
 * unchanged-TOAST values from the row already at the new key.
 */
typedef struct syncd_progress {
	uint32_t stream;
	syncd_lsn lsn;
} syncd_progress;

typedef struct syncd_batch {
	int worker; /* 0 .. concurrency-1 */
	/* progress to record with the batch: per stream, the commit LSN up to
	 * which this worker has now applied everything */
	size_t nprogress;
	const syncd_progress *progress;
	size_t nevents;
	const syncd_event *const *events;
	size_t nchanges; /* INSERT/UPDATE/DELETE/TRUNCATE count */
	size_t bytes;    /* approximate size of the values */
} syncd_batch;

typedef enum syncd_prepare {
	SYNCD_PREPARE_CHECK = 1,
	SYNCD_PREPARE_CREATE = 2,
	SYNCD_PREPARE_START = 3
} syncd_prepare;

typedef struct syncd_sink_ops {
	uint32_t size;

	/* Required. One instance per job, shared by every worker. */
	syncd_status (*create)(syncd_instance *inst, const syncd_host *host,
	                       void **state);
	/* Required. Called after every worker is closed. */
	void (*destroy)(void *state);
	/* Optional, and if absent the sink has no pre-checks. */
	syncd_status (*check)(void *state);
	/* Required. Open worker `worker` (its own connection); called in the
	 * worker's thread. */
	syncd_status (*open)(void *state, int worker, void **wstate);
	/* Required. Close a worker opened by open(), in the worker's thread. */
	void (*close)(void *wstate);
	/* Optional, and if absent the core assumes nothing is applied (0).
	 * The progress this worker recorded at the destination for a stream:
	 * after a restart the core skips that stream's transactions with a
	 * commit LSN at or below it. */
	syncd_status (*applied_lsn)(void *wstate, uint32_t stream,
	                            syncd_lsn *lsn);
	/* Required. Apply a batch durably (see syncd_batch). A row the
	 * destination refuses for its data goes to host->reject(); the rest of
	 * the batch is still applied. SYNCD_RETRY after a lost connection: the
	 * core reopens the worker and writes the same batch again. */
	syncd_status (*write)(void *wstate, const syncd_batch *batch);
	/* Optional, and if absent the sink neither checks nor creates target
	 * tables ahead of the stream. Called from the main thread before any
	 * worker is opened, once per table the source selects (its
	 * list_tables relation, with target names and name folding applied
	 * by the core), with:
	 *  SYNCD_PREPARE_CHECK   `syncd --check`: change nothing; log one
	 *                        error line per problem (missing schema or
	 *                        table, rights, key, columns) and return
	 *                        SYNCD_FATAL if there was any;
	 *  SYNCD_PREPARE_CREATE  `syncd --create-tables`: create the target
	 *                        table if it is missing; never alter or drop
	 *                        an existing one;
	 *  SYNCD_PREPARE_START   the job starts: create a missing table if
	 *                        the sink is configured to, and fail early
	 *                        (SYNCD_FATAL) on a target that cannot take
	 *                        the rows. */
	syncd_status (*prepare_table)(void *state, const syncd_relation *rel,
	                              syncd_prepare what);
	/* Optional, all six or none; if absent the sink cannot take the full
	 * phase (the job must run with mode = incremental). One copy session
	 * per core copy thread, its own connection, opened and closed in that
	 * thread:
	 *  copy_open / copy_close   the session;
	 *  copy_table  once per table (rel with target names, as for
	 *              prepare_table; stream as in events; t as the source
	 *              described it) before any of its chunks: records,
	 *              durably, that the job copies it now in t->nchunks
	 *              chunks, and says how (*how):
	 *              SKIP when an earlier run finished it and `again` is
	 *              false;
	 *              MERGE with finished[] when an earlier, unfinished copy
	 *              finished some chunks and `again` is false: finished[i]
	 *              is true for each chunk of t whose name an earlier copy
	 *              finished, and earlier receives the source_state
	 *              recorded when that copy started (NUL-terminated, at
	 *              most earlier_size bytes); the finished chunks stay
	 *              recorded;
	 *              else DIRECT when the target is empty or was filled by
	 *              this job's earlier copy (which it empties first, in the
	 *              same transaction), or MERGE (the target holds rows the
	 *              job did not write: they are kept, rows of the same key
	 *              are replaced). `again`: the snapshot starts a new
	 *              stream position, so earlier copies count for nothing.
	 *              finished[] (t->nchunks entries) and earlier are the
	 *              core's, set to false and "" before the call;
	 *  copy_begin / copy_data / copy_end  one chunk (t->chunks[chunk]) in
	 *              one destination transaction: with record, copy_end
	 *              (commit = true) makes the rows and the chunk's
	 *              completion durable together, so that a restart knows
	 *              exactly which chunks are in; without, only the rows
	 *              (a finished chunk's changed rows, read again).
	 *              copy_end(false) abandons it. A table is finished when
	 *              all its chunks are.
	 * A data error (a row the destination refuses): copy_end returns
	 * SYNCD_REJECT (the chunk rolled back), and the core sends the same
	 * chunk once more (copy_begin .. copy_end), during which the sink
	 * isolates the refused rows, hands each to host->reject as an INSERT
	 * and commits the rest; a sink that cannot do so fails the chunk
	 * with the server's message (table, line, column). */
	syncd_status (*copy_open)(void *state, void **cstate);
	void (*copy_close)(void *cstate);
	syncd_status (*copy_table)(void *cstate, const syncd_relation *rel,
	                           uint32_t stream, const syncd_copy_table *t,
	                           bool again, syncd_copy_how *how,
	                           bool *finished, char *earlier,
	                           size_t earlier_size);
	syncd_status (*copy_begin)(void *cstate, const syncd_relation *rel,
	                           uint32_t stream, const syncd_copy_table *t,
	                           uint32_t chunk, syncd_copy_how how,
	                           bool record);
	syncd_status (*copy_data)(void *cstate, const char *data, size_t len);
	syncd_status (*copy_end)(void *cstate, bool commit, uint64_t rows);
} syncd_sink_ops;

/* ---- dirty-data archiver ----------------------------------------------- */

/* One row the destination refused. Borrowed. */
typedef struct syncd_dirty_record {
	const char *job;
	int worker;
	const syncd_event *ev; /* the change, with ev->rel naming source and
	                          target tables */
	const char *sqlstate;  /* may be NULL */
	const char *message;
} syncd_dirty_record;

typedef struct syncd_archiver_ops {
	uint32_t size;

	/* Required. */
	syncd_status (*create)(syncd_instance *inst, const syncd_host *host,
	                       void **state);
	/* Required. Flushes what is pending first. */
	void (*destroy)(void *state);
	/* Optional, and if absent the archiver has no pre-checks. */
	syncd_status (*check)(void *state);
	/* Required. Store one record; may buffer. Called from worker threads,
	 * one call at a time (the core serialises calls). */
	syncd_status (*write)(void *state, const syncd_dirty_record *rec);
	/* Optional, and if absent write() is durable on return. Make every
	 * record written so far durable; the core calls it before it confirms
	 * the LSN of those rows. */
	syncd_status (*flush)(void *state);
} syncd_archiver_ops;

/* ---- descriptor -------------------------------------------------------- */

typedef struct syncd_plugin {
	uint32_t magic;       /* SYNCD_ABI_MAGIC */
	uint16_t abi_major;   /* SYNCD_ABI_MAJOR the plugin was built with */
	uint16_t abi_minor;   /* SYNCD_ABI_MINOR the plugin was built with */
	uint32_t size;        /* sizeof(syncd_plugin) */
	uint32_t option_size; /* sizeof(syncd_option) */
	syncd_plugin_kind kind;
	const char *name;    /* [a-z0-9_]+, equal to the module's file name */
	const char *version; /* the plugin's own version */
	const char *description;     /* one line */
	const syncd_option *options; /* NULL-name terminated; may be NULL */
	union {
		const syncd_source_ops *source;
		const syncd_transform_ops *transform;
		const syncd_sink_ops *sink;
		const syncd_archiver_ops *archiver;
	} ops;
} syncd_plugin;

#define SYNCD_EXPORT __attribute__((visibility("default")))

/* Defines the module's entry function. Pass designated initializers for the
 * fields after option_size. */
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
