/*
 * tests/unit/mock_host.h - a syncd_host of the tests' own, so that a
 * plugin's logic can be unit-tested through its real entry function and
 * operations without the core or any server (the Redis-module pattern the
 * ABI is built for, see syncd/host.h).
 *
 * It offers every ABI 1.0 host function and records what the plugin does
 * with them: log lines ("LEVEL message"), the last error and its SQLSTATE,
 * metrics (counters add up, gauges are set), rejected rows, memory taken
 * and given back. The test fills the option structure the plugin reads as
 * host->options (mock_options() fills one from the plugin's own option
 * table), the job, the streams, stopping, and what reject() answers.
 *
 * Not thread-safe beyond what the tests need: every recording function
 * takes the mock's lock.
 */
#ifndef SYNCD_TESTS_MOCK_HOST_H
#define SYNCD_TESTS_MOCK_HOST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <syncd/syncd.h>

typedef struct mock_metric {
	char *name;
	double value;
} mock_metric;

/* A row handed to host->sink->reject(): its change's type and table, and
 * why it was refused. */
typedef struct mock_reject {
	int worker;
	syncd_event_type type;
	char *table; /* schema.table */
	char *sqlstate;
	char *message;
} mock_reject;

typedef struct mock_host {
	syncd_host host; /* what the plugin gets: &m->host */
	syncd_job job;   /* host.job: "mock", a temporary state_dir, full and
	                    incremental, 1 worker, layout "1/pk" */
	syncd_source_host source;
	syncd_sink_host sink;

	/* what the test sets */
	syncd_log_level level; /* lines above it are not enabled (DEBUG) */
	bool stopping;
	syncd_status reject_status; /* what reject() answers (SYNCD_OK) */
	syncd_selection selection;  /* what select() answers (OWN) */
	uint32_t nstreams;
	syncd_stream streams[SYNCD_MAX_STREAMS];

	/* what the plugin did */
	char **lines;
	size_t nlines;
	char *error; /* the last set_error() message, or NULL */
	char *sqlstate;
	size_t nerrors;
	mock_metric *metrics;
	size_t nmetrics;
	mock_reject *rejects;
	size_t nrejects;
	size_t allocs, frees;
	long long alloc_bytes; /* taken and not given back */

	pthread_mutex_t lock;
	void **owned; /* freed with the mock */
	size_t nowned;
} mock_host;

/* A host with options as the plugin's option structure (or NULL), the
 * kind's table (sink or source, else neither), logging at INFO. */
mock_host *mock_host_new(syncd_plugin_kind kind, const void *options);
void mock_host_free(mock_host *m);
/* The mock behind a host it made. */
mock_host *mock_host_of(const syncd_host *h);

/* Describes stream number i (name and server, server may be NULL);
 * streams below it are described too, as "streamN". host->stream(h, i)
 * returns it. */
void mock_host_stream(mock_host *m, uint32_t i, const char *name,
                      const char *server);

/* Whether a recorded log line contains needle. */
bool mock_logged(const mock_host *m, const char *needle);
/* The value of a metric, 0 if the plugin never touched it. */
double mock_metric_value(const mock_host *m, const char *name);
/* Forgets the error, log lines and rejects recorded so far. */
void mock_host_clear(mock_host *m);

/* The plugin NAME's descriptor through its real entry function, from
 * dir/.libs/NAME.so or dir/NAME.so (dlopen, as the loader does). NULL
 * with *err (static text or dlerror()) on failure; *handle for
 * mock_plugin_close(). */
const syncd_plugin *mock_plugin_open(const char *dir, const char *name,
                                     void **handle, const char **err);
void mock_plugin_close(void *handle);

/* The option structure of d (d->options_size bytes, freed with m) filled
 * as the core would, and made m's host.options: the table's defaults, then
 * kv, a NULL-terminated list of key, value, key, value... in job-file
 * syntax. Supports STRING, ENUM, INT, BOOL, LIST and PREFIX (every key
 * that starts with its name), DURATION in ms and SIZE in bytes as bare
 * numbers; no checks (the core's job). */
void *mock_options(mock_host *m, const syncd_plugin *d, const char *const *kv);

#endif
