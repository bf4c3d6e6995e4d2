/*
 * syncd/host.h - what the core offers a plugin.
 *
 * The core hands every plugin instance (one use of a plugin in a job) its
 * own syncd_host at create() time, and every service takes that host as
 * its first argument. Plugins link against nothing of the core; every
 * service comes through these function pointers (the Redis-module
 * pattern), so a module built against the installed SDK loads into any
 * syncd of the same ABI major, and tests may hand a plugin a host of their
 * own.
 *
 * The table is grouped: services for every kind first, then one table per
 * kind (host->source, host->sink), NULL for the other kinds. Tables only
 * grow at their end (see syncd/abi.h); use SYNCD_HAS() before a field
 * newer than the minor you need.
 *
 * Thread safety: every function may be called from any thread.
 * Ownership: every pointer the host returns or holds is owned by the core
 * and stays valid until the instance is destroyed, unless said otherwise;
 * memory from alloc() is the only thing a plugin frees through the host.
 */
#ifndef SYNCD_HOST_H
#define SYNCD_HOST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <syncd/abi.h>
#include <syncd/event.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The results every operation returns. */
typedef enum syncd_status {
	/* done */
	SYNCD_OK = 0,
	/* transient (connection lost, server restarting): the core retries
	 * with backoff; plugins never retry on their own */
	SYNCD_RETRY = 1,
	/* the data was refused (dirty data) */
	SYNCD_REJECT = 2,
	/* the job cannot go on (auto_retry may restart it) */
	SYNCD_FATAL = 3,
	/* the job cannot run as configured (a pre-check failed: a table
	 * without a key, a missing right...): restarting cannot help, so
	 * auto_retry never restarts it */
	SYNCD_INVALID = 4,
	/* a source's read(): the stream has no more events (a finite
	 * source); the core drains, confirms and stops the job cleanly */
	SYNCD_END = 5
} syncd_status;

typedef enum syncd_log_level {
	SYNCD_LEVEL_ERROR = 0,
	SYNCD_LEVEL_WARNING = 1,
	SYNCD_LEVEL_INFO = 2,
	SYNCD_LEVEL_DEBUG = 3
} syncd_log_level;

/* What every plugin may know about the job it runs in. */
typedef struct syncd_job {
	uint32_t size; /* sizeof(syncd_job) */
	const char *name;
	/* A directory private to this job (spill files, local state),
	 * created by the core before any plugin runs. */
	const char *state_dir;
	bool full;        /* the job has a full phase (mode full...) */
	bool incremental; /* the job streams changes (mode ...incremental) */
	/* The sink's workers, and how changes are spread over them as text
	 * (e.g. "4/table/2", "4/pk/2"; compare it whole, as an opaque
	 * string): a sink that records progress per worker compares it with
	 * the layout the progress was recorded under. */
	uint32_t workers;
	const char *layout;
} syncd_job;

#define SYNCD_JOB_SIZE_1_0 SYNCD_SIZE_THROUGH(syncd_job, layout)

/* One ordered stream of a source (see syncd_source_ops.streams). */
typedef struct syncd_stream {
	uint32_t size; /* sizeof(syncd_stream) */
	/* The stream's number, the `stream` of its events and of every
	 * operation on it: stable across runs (the destination keeps its
	 * progress under it), below SYNCD_MAX_STREAMS, unique; numbers may
	 * leave gaps (a database that went away). */
	uint32_t id;
	/* shown in logs and metrics, e.g. the database */
	const char *name;
	/* where it is read from (a host name, an address, a socket
	 * directory), or NULL */
	const char *server;
} syncd_stream;

#define SYNCD_STREAM_SIZE_1_0 SYNCD_SIZE_THROUGH(syncd_stream, server)

/* Whether the core selects a database or table (see
 * syncd_source_host.select). */
typedef enum syncd_selection {
	SYNCD_SELECT_OWN = 0, /* the core has no say: the source's options
	                         decide */
	SYNCD_SELECT_YES = 1,
	SYNCD_SELECT_NO = 2
} syncd_selection;

typedef struct syncd_host syncd_host;

/* Services for sources. */
typedef struct syncd_source_host {
	uint32_t size; /* sizeof(syncd_source_host) */
	/* Which databases and tables the job wants instead of what the
	 * source's own options select (the core routes shards into logical
	 * tables). With all three NULL: YES when the job selects at all
	 * (then the source finds the databases itself and asks for each),
	 * OWN when it does not. With schema and table NULL: the database.
	 * SYNCD_SELECT_OWN whenever the job does not say; then the source
	 * selects by its options. */
	syncd_selection (*select)(const syncd_host *h, const char *database,
	                          const char *schema, const char *table);
} syncd_source_host;

#define SYNCD_SOURCE_HOST_SIZE_1_0 SYNCD_SIZE_THROUGH(syncd_source_host, select)

/* Services for sinks. */
typedef struct syncd_sink_host {
	uint32_t size; /* sizeof(syncd_sink_host) */
	/* Hand one row the destination refused for its data to the
	 * dirty-data path (log, archive, count). ev is the change (an INSERT
	 * for a row of the full phase). SYNCD_OK when the job may go on
	 * without that row, SYNCD_FATAL when it must fail (dirty data
	 * disabled, threshold passed, archiver failed). */
	syncd_status (*reject)(const syncd_host *h, int worker,
	                       const syncd_event *ev, const char *sqlstate,
	                       const char *message);
} syncd_sink_host;

#define SYNCD_SINK_HOST_SIZE_1_0 SYNCD_SIZE_THROUGH(syncd_sink_host, reject)

struct syncd_host {
	uint32_t size; /* sizeof(syncd_host) in the core */
	uint16_t abi_major;
	uint16_t abi_minor;

	/* The job, and this instance's option values: the plugin's option
	 * structure (see syncd/option.h), filled, defaults applied; NULL
	 * when the plugin declares none. */
	const syncd_job *job;
	const void *options;

	/* Logging. Lines get a timestamp, the level and the instance prefix
	 * (such as "[sink:dws_upsert]"); secrets (password= in conninfo and
	 * URIs, SECRET options) are masked. Messages in lower case without a
	 * final period. See the SYNCD_LOG_* macros below. */
	void (*log)(const syncd_host *h, syncd_log_level level, const char *fmt,
	            ...) __attribute__((format(printf, 3, 4)));
	void (*vlog)(const syncd_host *h, syncd_log_level level,
	             const char *fmt, va_list ap);
	bool (*log_enabled)(const syncd_host *h, syncd_log_level level);

	/* Records why the plugin is about to return something other than
	 * SYNCD_OK: the SQLSTATE if the server gave one (NULL otherwise), and
	 * a message naming the object and, where known, the fix. The core
	 * prints it (masked) and uses it for the exit message and dirty-data
	 * records. Per thread. */
	void (*set_error)(const syncd_host *h, const char *sqlstate,
	                  const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

	/* True once the job is stopping (a signal, or a failure elsewhere). */
	bool (*stopping)(const syncd_host *h);

	/* Metrics, served as syncd_NAME at [monitor]'s /metrics: counters
	 * (a name ending in _total) only grow; gauges are set. name is
	 * [a-zA-Z_:][a-zA-Z0-9_:]*, optionally followed by labels in the
	 * Prometheus exposition syntax, values escaped:
	 * "lag_bytes{database=\"shop\"}". The core adds job and
	 * plugin="section:name"; "job" and "__" labels are the core's. A
	 * malformed name is logged once and ignored. */
	void (*metric_add)(const syncd_host *h, const char *name, double delta);
	void (*metric_set)(const syncd_host *h, const char *name, double value);

	/* Memory counted in the job's memory metric
	 * (syncd_memory_bytes{plugin=...}). Free with free_mem of the same host;
	 * free_mem(NULL) does nothing. */
	void *(*alloc)(const syncd_host *h, size_t size);
	void (*free_mem)(const syncd_host *h, void *ptr);

	/* The description of stream `stream` of the job's source (its name
	 * and server), or NULL before the source described it. */
	const syncd_stream *(*stream)(const syncd_host *h, uint32_t stream);

	/* Per kind; NULL for the other kinds. */
	const syncd_source_host *source;
	const syncd_sink_host *sink;
};

#define SYNCD_HOST_SIZE_1_0 SYNCD_SIZE_THROUGH(syncd_host, sink)

/* Logging shorthands: SYNCD_LOG_INFO(host, "copied %zu rows", n). */
#define SYNCD_LOG_ERROR(h, ...) (h)->log((h), SYNCD_LEVEL_ERROR, __VA_ARGS__)
#define SYNCD_LOG_WARNING(h, ...)                                              \
	(h)->log((h), SYNCD_LEVEL_WARNING, __VA_ARGS__)
#define SYNCD_LOG_INFO(h, ...) (h)->log((h), SYNCD_LEVEL_INFO, __VA_ARGS__)
#define SYNCD_LOG_DEBUG(h, ...)                                                \
	do {                                                                   \
		if ((h)->log_enabled((h), SYNCD_LEVEL_DEBUG))                  \
			(h)->log((h), SYNCD_LEVEL_DEBUG, __VA_ARGS__);         \
	} while (0)

#ifdef __cplusplus
}
#endif
#endif
