/*
 * core/job.h - one job: its file, its plugin instances, and running it.
 *
 * job_load() reads and validates the job file against the core's tables and
 * the tables of the plugins it names (exit code 2 territory);
 * job_create() creates the plugin instances; job_check() runs pre-checks
 * (exit 3); job_run() runs the pipeline until the source ends, a stop is
 * requested (exit 0) or something fails (exit 1).
 */
#ifndef SYNCD_JOB_H
#define SYNCD_JOB_H

#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include <syncd/plugin.h>

#include "jobfile.h"
#include "loader.h"
#include "options.h"

typedef struct job job;
typedef struct pipeline pipeline;

struct syncd_instance {
	job *job;
	char *section; /* "sink", "transform.extra", ... */
	char *prefix;  /* "[sink:jsonl]" */
	const loaded_plugin *plugin;
	optset opts; /* the core's keys of the section + the plugin's */
	void *state; /* the plugin's, between create and destroy */
	bool created;
	pthread_mutex_t lock;
	char *error; /* last set_error() message */
	char sqlstate[6];
};

/* [logical_table.NAME]: the tables of the source databases
 * source_db_filter matches, whose names source_table_filter matches, go
 * into one target table NAME (the database/table shard scenario). */
typedef struct logical_table {
	char *name;
	const char *db_filter, *table_filter; /* as written */
	regex_t db_re, table_re;
} logical_table;

struct job {
	jobfile *file;
	logical_table *ltables; /* in file order: the first match wins */
	size_t nltables;
	optset job_opts;   /* [job] */
	optset dirty_opts; /* [dirty] */
	syncd_instance *source;
	syncd_instance *sink;
	syncd_instance *archiver; /* NULL unless dirty rows are archived */
	syncd_instance **transforms;
	size_t ntransforms;
	char *state_dir;

	int nworkers;
	pipeline *pipe;
	atomic_bool stopping;
	atomic_bool failed;
	atomic_bool invalid; /* failed as configured: never auto-retried */
	pthread_mutex_t fail_lock;
	char *failure;     /* first failure, for the exit message */
	long *dirty_count; /* per worker */
	pthread_mutex_t dirty_lock;
};

/* The host services handed to every plugin. */
extern const syncd_host job_host;

/* Why the last call into inst's plugin, made by this thread, failed (what
 * it passed to set_error), and its SQLSTATE (NULL if none). */
const char *host_error(const syncd_instance *inst);
const char *host_error_sqlstate(const syncd_instance *inst);
/* Frees this thread's error; every thread calls it before it ends. */
void host_error_clear(void);

job *job_load(const char *path, strbuf *errors);
/* Calls create() of every instance; false (errors logged) on failure. */
bool job_create(job *j);
/* Pre-checks: true when all passed. */
bool job_check(job *j);
/* syncd --preview: the tables the source selects and where they go.
 * Returns the exit code (0, or 1 if the source could not list them). */
int job_preview(job *j, FILE *out);
/* What job_prepare_tables found. */
typedef enum job_prepared {
	JOB_PREPARED = 0,   /* every table can be synced */
	JOB_PREPARE_SOURCE, /* the source could not list its tables */
	JOB_PREPARE_TABLES  /* a table or its target cannot be synced */
} job_prepared;

/* Hands every table the source selects to the sink's prepare_table (with
 * target names); *supported is false when the source cannot list tables or
 * the sink has no prepare_table (nothing is done then). Logs what fails
 * (a check logs every table). */
job_prepared job_prepare_tables(job *j, syncd_prepare what, bool *supported);
/* Runs ev through the transforms in file order; what comes out of the last
 * goes to final(ctx, ...). A row a transform refuses is dirty data. Callers
 * serialise calls (transforms are not reentrant). */
syncd_status job_transform(job *j, const syncd_event *ev, syncd_emit_fn final,
                           void *ctx);
/* The logical table database.table belongs to (NULL: none); with table
 * NULL, the first whose source_db_filter matches database. */
const logical_table *job_logical_table(const job *j, const char *database,
                                       const char *table);
/* Where the router sends rel: its target schema and table (malloc'd), from
 * the [sink] target.* patterns, folded to lower case unless
 * sink.field.name.case-sensitive. */
void job_target(job *j, const syncd_relation *rel, char **schema, char **table);
/* A source relation as the sink sees it: target names from target.schema /
 * target.table, column names folded when case-insensitive. Free with
 * job_route_free. */
void job_route(job *j, const syncd_relation *rel, syncd_relation *out);
void job_route_free(syncd_relation *r);
/* Runs the job; returns the exit code (0 clean, 1 failed). */
int job_run(job *j);
void job_request_stop(job *j);
/* Destroys and re-creates the plugin instances (auto_retry). */
bool job_restart(job *j);
void job_free(job *j);

/* Marks the job failed (first message wins) and wakes every waiter. */
void job_fail(job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The core's own option tables, for the README / --help-job and tests. */
extern const syncd_option job_core_options[];
extern const syncd_option job_sink_core_options[];
extern const syncd_option job_dirty_options[];

#endif
