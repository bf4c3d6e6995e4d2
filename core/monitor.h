/*
 * core/monitor.h - [monitor]: what an operator sees of a running job.
 *
 *  - an HTTP endpoint (metrics.listen, libmicrohttpd): /metrics in the
 *    Prometheus text format, /status as JSON, /healthz for a watchdog;
 *  - alarm rules (lag, dirty rows, retained WAL) that run a command when
 *    they fire and when they clear;
 *  - a status line in the log every log.interval while the job streams;
 *  - syncd --status, which reads /status of the running job (or, with no
 *    endpoint, the progress the destination keeps) and prints it.
 *
 * One thread ticks every second: it refreshes the gauges read from
 * elsewhere (the collectors of metrics.h), evaluates the rules, writes
 * the status line and tells systemd the job's state (sdnotify.h). The endpoint runs in libmicrohttpd's own thread.
 */
#ifndef SYNCD_MONITOR_H
#define SYNCD_MONITOR_H

#include <stdio.h>

#include "job.h"

extern const syncd_option monitor_options[];

/* Checks [monitor] beyond the types of its keys (the listen address, the
 * alarm command); adds "FILE:LINE: ..." lines to errors. */
void monitor_check(job *j, const char *path, strbuf *errors);

/* --check: the endpoint's address can be bound now. */
bool monitor_precheck(job *j);

typedef struct monitor monitor;

/* Starts the endpoint (if metrics.listen is set) and the monitor thread.
 * NULL, with a message logged, when the address cannot be bound. */
monitor *monitor_start(job *j);
void monitor_stop(monitor *m);

/* Whether the job's endpoint (its monitor.url, or metrics.listen)
 * answers; *url is the address asked (or NULL), caller frees. */
bool monitor_running(job *j, char **url);

/* syncd --status: prints the running job's state for a person. Returns
 * the exit code (0 when the job answered or progress was found). */
int monitor_status_command(job *j, FILE *out);

#endif
