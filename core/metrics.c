/*
 * core/metrics.c - see metrics.h. A small table under one lock: metrics
 * are updated per batch, not per row.
 */
#include "config.h"

#include "metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct metric {
	char *instance;
	char *name;
	double value;
} metric;

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static metric *metrics;
static size_t nmetrics;

static metric *
metrics_find(const char *instance, const char *name)
{
	for (size_t i = 0; i < nmetrics; i++)
		if (strcmp(metrics[i].name, name) == 0 &&
		    strcmp(metrics[i].instance, instance) == 0)
			return &metrics[i];
	metrics = xrealloc(metrics, (nmetrics + 1) * sizeof *metrics);
	metrics[nmetrics].instance = xstrdup(instance);
	metrics[nmetrics].name = xstrdup(name);
	metrics[nmetrics].value = 0;
	return &metrics[nmetrics++];
}

void
metrics_add(const char *instance, const char *name, double delta)
{
	pthread_mutex_lock(&metrics_lock);
	metrics_find(instance ? instance : "", name)->value += delta;
	pthread_mutex_unlock(&metrics_lock);
}

void
metrics_set(const char *instance, const char *name, double value)
{
	pthread_mutex_lock(&metrics_lock);
	metrics_find(instance ? instance : "", name)->value = value;
	pthread_mutex_unlock(&metrics_lock);
}

void
metrics_format(strbuf *out)
{
	pthread_mutex_lock(&metrics_lock);
	for (size_t i = 0; i < nmetrics; i++)
		sb_printf(out, "syncd_%s{instance=\"%s\"} %.17g\n",
		          metrics[i].name, metrics[i].instance,
		          metrics[i].value);
	pthread_mutex_unlock(&metrics_lock);
}
