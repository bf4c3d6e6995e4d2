/*
 * core/job.h - one job: its settings, its plugin instances, and its state
 * while it runs (stopping, failed and why). Every other part of the core
 * works on a job; this file only knows the job itself.
 *
 * Who does what: jobload.c reads the job file into a job; instance.c
 * creates, checks and destroys the plugin instances; prepare.c looks at
 * the tables the source selects (--preview, --check, table creation);
 * runner.c runs the job (streams, full phase, pipeline); host.c adapts
 * all of it to the plugins' host table.
 */
#ifndef SYNCD_JOB_H
#define SYNCD_JOB_H

#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <syncd/plugin.h>

#include "loader.h"
#include "options.h"

typedef struct job job;

/* What the job is doing, for the monitor (syncd_job_state, /healthz). */
typedef enum job_state {
	JOB_STARTING,
	JOB_COPYING,
	JOB_STREAMING,
	JOB_RETRYING,
	JOB_STOPPING,
	JOB_FAILED,
	JOB_NSTATES
} job_state;
typedef struct dirty dirty; /* dirty.h */

/* One use of a plugin in a job (a job-file section). The plugin sees only
 * its host, the first member, which leads back here. */
typedef struct instance {
	syncd_host host;
	syncd_source_host source_host;
	syncd_sink_host sink_host;
	job *job;
	char *section; /* "sink", "transform.extra", ... */
	char *prefix;  /* "[sink:jsonl]" */
	char *label;   /* "sink:jsonl", in metrics */
	const loaded_plugin *plugin;
	optset opts;   /* the core's keys of the section + the plugin's */
	void *options; /* the plugin's option structure, filled */
	void *state;   /* the plugin's, between create and destroy */
	bool created;
} instance;

/* The instance a host belongs to. */
static inline instance *
instance_of(const syncd_host *h)
{
	return (instance *) h;
}

/* [logical_table.NAME]: the tables of the source databases
 * source_db_filter matches, whose names source_table_filter matches, go
 * into one target table NAME (the database/table shard scenario). */
typedef struct logical_table {
	char *name;
	const char *db_filter, *table_filter; /* as written */
	regex_t db_re, table_re;
} logical_table;

/* A stream as the source described it. */
typedef struct job_stream {
	syncd_stream desc;
	char *name, *server;
} job_stream;

struct job {
	jobfile *file;
	logical_table *ltables; /* in file order: the first match wins */
	size_t nltables;
	optset job_opts;   /* [job] */
	optset dirty_opts; /* [dirty] */
	optset monitor_opts; /* [monitor] */
	instance *source;
	instance *sink;
	instance *archiver; /* NULL unless dirty rows are archived */
	instance **transforms;
	size_t ntransforms;
	syncd_job info; /* what plugins see of the job */
	char *state_dir;
	char *layout;
	int nworkers;
	dirty *dirty;
	pthread_mutex_t chain_lock; /* chain.h */

	/* the source's streams, once described */
	job_stream streams[SYNCD_MAX_STREAMS];
	uint32_t nstreams;

	/* running */
	atomic_bool stopping;
	atomic_bool failed;
	atomic_bool invalid; /* failed as configured: never auto-retried */
	bool resync;         /* syncd --resync, until the streams are open */
	/* syncd --start-time (rewind.h): the time (us since the epoch, 0:
	 * none) as given and parsed; whether the streams were set back
	 * (once per process); per stream, the smallest progress recorded
	 * before, and the first transaction at or after the time */
	int64_t start_time;
	const char *start_time_text;
	bool rewound;
	syncd_lsn rewind_applied[SYNCD_MAX_STREAMS];
	syncd_lsn rewind_first[SYNCD_MAX_STREAMS];
	pthread_mutex_t fail_lock;
	char *failure; /* first failure, for the exit message */
	/* for the monitor: the phase set by the runner (starting, copying,
	 * streaming; retrying while auto_retry waits), connections being
	 * opened again, and the last failure of any run, redacted, with its
	 * time (under fail_lock) */
	atomic_int phase;
	atomic_int reconnecting;
	char *last_error;
	int64_t last_error_ms;
	/* the columns every shard of a logical table has (shardcols.h) */
	struct shardcols *shardcols;
	/* called by job_fail to wake whatever waits (the pipeline) */
	void (*wake)(void *ctx);
	void *wake_ctx;
};

/* Marks the job failed (first message wins), stopping, and wakes every
 * waiter. */
void job_fail(job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Asks the job to stop cleanly. */
void job_request_stop(job *j);
bool job_stopping(const job *j);
/* Waits ms, or less when the job stops (checked every 0.1 s). */
void job_sleep(job *j, int64_t ms);
bool job_failed(const job *j);
/* Clears the running state for a new run. */
void job_reset(job *j);
/* The state the monitor shows: failed, stopping and reconnecting win
 * over the phase. */
job_state job_current_state(job *j);
const char *job_state_name(job_state s);
/* The last failure and its time (ms since the epoch); caller frees. NULL
 * when the job never failed. */
char *job_last_error(job *j, int64_t *when_ms);
/* A syncd_stream_fn for commands that only need the streams' names
 * (--status, --drop): records d in j->streams (ctx is the job). */
syncd_status job_stream_named(void *ctx, const syncd_stream *d);
/* Asks the source for its streams' names (one, named after the plugin,
 * when it has no streams operation); false (logged) when it cannot. */
bool job_list_streams(job *j);
/* The name of stream id ("" before the source described it). */
const char *job_stream_name(const job *j, uint32_t id);
/* [job] name */
const char *job_name(const job *j);

#endif
