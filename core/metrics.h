/*
 * core/metrics.h - the job's counters, gauges and histograms, in the
 * shape Prometheus scrapes: a family (syncd_changes_applied_total) has one
 * sample per set of labels (database="shop",table="public.orders",
 * op="insert"). The monitor serves them at /metrics and reads them back
 * for /status, the status line and the alarm rules.
 *
 * Names are given without the "syncd_" prefix ("lag_seconds"); a few
 * standard families keep their own ("process_cpu_seconds_total"). Label
 * sets are strings already escaped, made with metrics_labels(); NULL or ""
 * is the sample without labels. Updates take one lock: callers update per
 * batch or per second, never per row.
 */
#ifndef SYNCD_METRICS_H
#define SYNCD_METRICS_H

#include <stdbool.h>

#include "util.h"

/* `k1="v1",k2="v2"` from key, value pairs ending with NULL; values are
 * escaped (\\, \", \n). Caller frees. */
char *metrics_labels(const char *key, ...) __attribute__((sentinel));

/* Counters and gauges. A name ending in _total is a counter. */
void metrics_add(const char *name, const char *labels, double delta);
void metrics_set(const char *name, const char *labels, double value);
/* Histograms (flush durations, in seconds). */
void metrics_observe(const char *name, const char *labels, double value);
/* What a plugin reports through its host: name is NAME or NAME{labels}
 * in the exposition syntax; the label plugin="sink:dws_upsert" is added.
 * Returns false (and changes nothing) when name is malformed. */
bool metrics_plugin(const char *plugin, const char *name, double value,
                    bool add);

/* Reading back. */
bool metrics_get(const char *name, const char *labels, double *value);
double metrics_sum(const char *name);
double metrics_max(const char *name);
/* Calls fn for every sample of a family: its labels and value. */
void metrics_each(const char *name,
                  void (*fn)(void *ctx, const char *labels, double value),
                  void *ctx);
/* The value of label key in a label set (unescaped); caller frees. NULL
 * when absent. */
char *metrics_label_value(const char *labels, const char *key);

/* Functions run before every scrape to set gauges read from elsewhere
 * (queue depths, process RSS). Unregistering waits for a running scrape. */
typedef void (*metrics_collector)(void *ctx);
void metrics_collector_add(metrics_collector fn, void *ctx);
void metrics_collector_remove(metrics_collector fn, void *ctx);
void metrics_collect(void);

/* The Prometheus text exposition format (version 0.0.4), every sample
 * labelled job="JOB" first. Runs the collectors. */
void metrics_format(strbuf *out, const char *job);

/* Forgets everything (tests). */
void metrics_reset(void);

#endif
