/*
 * core/metrics.h - the job's counters and gauges, labelled by instance.
 * Exposed by the monitor (Prometheus text) once it exists; summarised in
 * the log at the end of a run.
 */
#ifndef SYNCD_METRICS_H
#define SYNCD_METRICS_H

#include "util.h"

void metrics_add(const char *instance, const char *name, double delta);
void metrics_set(const char *instance, const char *name, double value);
/* "name{instance="[sink:jsonl]"} value" lines, sorted as added. */
void metrics_format(strbuf *out);

#endif
