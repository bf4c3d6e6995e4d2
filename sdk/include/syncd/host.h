/*
 * syncd/host.h - what the core offers a plugin.
 *
 * The core hands every plugin one syncd_host at create() time, with a
 * syncd_instance: the core's handle for this use of the plugin (its job-file
 * section, its option values, its log prefix such as "[sink:dws_upsert]").
 * Plugins link against nothing of the core; every service comes through
 * these function pointers (the Redis-module pattern), so a module built
 * against the installed SDK loads into any syncd of the same ABI major, and
 * tests may hand a plugin a host of their own.
 *
 * The table only grows at its end. `size` is sizeof(syncd_host) as the core
 * was compiled; a plugin built for a newer minor checks
 * `offsetof(syncd_host, field) < host->size` before using a newer field
 * (the loader refuses plugins newer than the core anyway).
 *
 * Thread safety: every function here may be called from any thread.
 * Strings returned by the opt_* functions belong to the core and stay valid
 * until the instance is destroyed.
 */
#ifndef SYNCD_HOST_H
#define SYNCD_HOST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <syncd/event.h>

struct syncd_copy_table; /* syncd/plugin.h */

#ifdef __cplusplus
extern "C" {
#endif

/* The results every operation returns. */
typedef enum syncd_status {
	SYNCD_OK = 0,     /* done */
	SYNCD_RETRY = 1,  /* transient (connection lost, server restarting):
	                     the core retries with backoff; plugins never retry
	                     on their own */
	SYNCD_REJECT = 2, /* the data was refused (dirty data) */
	SYNCD_FATAL = 3,  /* the job cannot go on (auto_retry may restart it) */
	SYNCD_INVALID = 4 /* the job cannot run as configured (a pre-check
	                     failed: a table without a key, a slot ahead of the
	                     destination...): restarting cannot help, so
	                     auto_retry never restarts it */
} syncd_status;

typedef enum syncd_log_level {
	SYNCD_LOG_ERROR = 0,
	SYNCD_LOG_WARNING = 1,
	SYNCD_LOG_INFO = 2,
	SYNCD_LOG_DEBUG = 3
} syncd_log_level;

/* The core's handle for one plugin instance. Opaque. */
typedef struct syncd_instance syncd_instance;

typedef struct syncd_host {
	uint32_t size; /* sizeof(syncd_host) in the core */
	uint16_t abi_major;
	uint16_t abi_minor;

	/* Logging. Lines get a timestamp, the level and the instance prefix;
	 * secrets (password= in conninfo and URIs, SECRET options) are masked.
	 * Write messages in lower case without a final period. */
	void (*log)(syncd_instance *inst, syncd_log_level level,
	            const char *fmt, ...) __attribute__((format(printf, 3, 4)));
	void (*vlog)(syncd_instance *inst, syncd_log_level level,
	             const char *fmt, va_list ap);
	bool (*log_enabled)(syncd_instance *inst, syncd_log_level level);

	/* Records why the plugin is about to return SYNCD_FATAL / SYNCD_RETRY /
	 * SYNCD_REJECT: the SQLSTATE if the server gave one (NULL otherwise),
	 * and a message naming the object and, where known, the fix. The core
	 * prints it (masked) and uses it for the exit message and dirty-data
	 * records. */
	void (*set_error)(syncd_instance *inst, const char *sqlstate,
	                  const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

	/* Option values, as validated by the core; a key absent from the file
	 * yields its default. Asking for a name the plugin did not declare, or
	 * with the wrong type, is a programming error and aborts. opt_string
	 * returns NULL for an unset option without default. The keys syncd
	 * itself reads in the plugin's section (for a sink: write_mode,
	 * target.*, batch.*, sink.keyby.*, ...) may be read too. */
	const char *(*opt_string)(syncd_instance *inst, const char *name);
	int64_t (*opt_int)(syncd_instance *inst, const char *name);
	bool (*opt_bool)(syncd_instance *inst, const char *name);
	int64_t (*opt_duration_ms)(syncd_instance *inst, const char *name);
	int64_t (*opt_size)(syncd_instance *inst, const char *name);
	/* LIST options: the number of items, and item i (borrowed). */
	size_t (*opt_list_len)(syncd_instance *inst, const char *name);
	const char *(*opt_list_item)(syncd_instance *inst, const char *name,
	                             size_t i);
	/* PREFIX options: the i-th key present in the file that starts with
	 * prefix (in file order), with its value; false past the last. */
	bool (*opt_prefixed)(syncd_instance *inst, const char *prefix, size_t i,
	                     const char **key, const char **value);

	/* Job-wide facts: the job's name, and any [job] key's value as text
	 * (e.g. "mode"), default applied. */
	const char *(*job_name)(syncd_instance *inst);
	const char *(*job_option)(syncd_instance *inst, const char *key);
	/* A directory private to this job (spill files, local state); created
	 * by the core before any plugin runs. */
	const char *(*state_dir)(syncd_instance *inst);
	/* True once the job is stopping (signal, or a failure elsewhere). */
	bool (*stopping)(syncd_instance *inst);

	/* Metrics: counters only grow; gauges are set. name is
	 * [a-z_][a-z0-9_]*; the core adds the instance as a label. */
	void (*metric_add)(syncd_instance *inst, const char *name,
	                   double delta);
	void (*metric_set)(syncd_instance *inst, const char *name,
	                   double value);

	/* Sources: hand one event to the pipeline. Blocks while the pipeline
	 * is full (backpressure). The event is borrowed: the core copies it.
	 * Returns SYNCD_OK, or SYNCD_FATAL once the job is stopping because of
	 * a failure (the source then returns from run()). */
	syncd_status (*emit)(syncd_instance *inst, const syncd_event *ev);
	/* Sources: for one stream, the highest commit LSN such that every
	 * change of every transaction of that stream up to it is durable at the
	 * destination. Only this may be confirmed to the source database. */
	syncd_lsn (*flushed_lsn)(syncd_instance *inst, uint32_t stream);
	/* Sources, at a clean stop or the end of a finite stream: flush every
	 * worker and wait until everything emitted so far is durable (then
	 * confirm flushed_lsn() of each stream). SYNCD_FATAL if a worker
	 * failed. */
	syncd_status (*drain)(syncd_instance *inst);

	/* Sinks: hand one row the destination refused for its data to the
	 * dirty-data path (log, archive, count). Returns SYNCD_OK when the job
	 * may go on without that row, SYNCD_FATAL when it must fail (dirty data
	 * disabled, threshold passed, archiver failed). ev is the change. */
	syncd_status (*reject)(syncd_instance *inst, int worker,
	                       const syncd_event *ev, const char *sqlstate,
	                       const char *message);

	/* Memory for plugins that want the core's allocator (counted in the
	 * job's memory metrics). Free with free_mem from the same host. */
	void *(*alloc)(syncd_instance *inst, size_t size);
	void (*free_mem)(syncd_instance *inst, void *ptr);

	/* Sources, before streaming: the progress the destination has stored
	 * for a stream (the smallest over workers); *known is false when the
	 * sink keeps none. A slot whose confirmed position is ahead of a known,
	 * non-zero progress means changes may be lost. SYNCD_FATAL if the sink
	 * could not say. */
	syncd_status (*stored_lsn)(syncd_instance *inst, uint32_t stream,
	                           syncd_lsn *lsn, bool *known);

	/* Sources with a full phase, in run(), before streaming stream
	 * `stream` (only when job_option("mode") is "full" or
	 * "full+incremental"): copies the tables of that stream from the
	 * snapshot named `snapshot`, which the source keeps valid until this
	 * returns. The core runs `concurrency` copy threads, each pairing a
	 * source reader (copy_open/copy_read) with a sink copy session, shows
	 * progress, and skips what the sink says an earlier run finished
	 * (unless `again`: the snapshot starts a new stream position, as a
	 * newly created slot does). tables and their relations are borrowed
	 * for the call. SYNCD_OK when every table is copied, or when the job
	 * is stopping (check stopping()); SYNCD_FATAL on failure (the core
	 * has failed the job with the reason). */
	syncd_status (*copy)(syncd_instance *inst, uint32_t stream,
	                     const char *snapshot, bool again,
	                     const struct syncd_copy_table *tables,
	                     size_t ntables);

	/* Transforms: where the core's router will send rel, the target
	 * schema and table as the sink will see them (malloc'd; free()
	 * them). A transform sees relations before they are routed. */
	void (*target_of)(syncd_instance *inst, const syncd_relation *rel,
	                  char **schema, char **table);

	/* Sources, in the database/table shard scenario: how many
	 * [logical_table.*] sections the job has (0: none; the source selects
	 * by its own options), and the name of the logical table that
	 * database's table belongs to, or NULL (borrowed). With table NULL:
	 * the first logical table whose source_db_filter matches database. */
	size_t (*logical_tables)(syncd_instance *inst);
	const char *(*logical_table)(syncd_instance *inst,
	                             const char *database, const char *table);
} syncd_host;

#ifdef __cplusplus
}
#endif
#endif
