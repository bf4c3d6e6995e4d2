/*
 * core/host.c - see host.h.
 */
#include "config.h"

#include "dirty.h"
#include "host.h"
#include "log.h"
#include "metrics.h"
#include "plugerr.h"
#include "router.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void
host_vlog(const syncd_host *h, syncd_log_level level, const char *fmt,
          va_list ap)
{
	log_vmsg(instance_of(h)->prefix, level, fmt, ap);
}

static void
host_log(const syncd_host *h, syncd_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	host_vlog(h, level, fmt, ap);
	va_end(ap);
}

static bool
host_log_enabled(const syncd_host *h, syncd_log_level level)
{
	(void) h;
	return log_enabled(level);
}

static void
host_set_error(const syncd_host *h, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	plugerr_set(instance_of(h), sqlstate, fmt, ap);
	va_end(ap);
}

static bool
host_stopping(const syncd_host *h)
{
	return job_stopping(instance_of(h)->job);
}

/* A malformed name is the plugin's bug: said once, then ignored. */
static void
host_metric(instance *inst, const char *name, double v, bool add)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static bool warned;

	if (metrics_plugin(inst->label, name, v, add))
		return;
	pthread_mutex_lock(&lock);
	if (!warned)
		log_warning("%s reports a metric named \"%.200s\": a metric "
		            "name is [a-zA-Z_:][a-zA-Z0-9_:]*, optionally "
		            "followed by {label=\"value\",...}; it is ignored "
		            "(a bug in the plugin)",
		            inst->prefix, name ? name : "(null)");
	warned = true;
	pthread_mutex_unlock(&lock);
}

static void
host_metric_add(const syncd_host *h, const char *name, double delta)
{
	host_metric(instance_of(h), name, delta, true);
}

static void
host_metric_set(const syncd_host *h, const char *name, double value)
{
	host_metric(instance_of(h), name, value, false);
}

/* Memory a plugin takes from the host: a header keeps its size, so the
 * instance's gauge can follow it. */
typedef union host_block {
	size_t size;
	max_align_t align;
} host_block;

static void *
host_alloc(const syncd_host *h, size_t size)
{
	host_block *b = xmalloc(sizeof *b + size);

	b->size = size;
	host_metric(instance_of(h), "memory_bytes", (double) size, true);
	return b + 1;
}

static void
host_free_mem(const syncd_host *h, void *ptr)
{
	host_block *b;

	if (!ptr)
		return;
	b = (host_block *) ptr - 1;
	host_metric(instance_of(h), "memory_bytes", -(double) b->size, true);
	free(b);
}

static const syncd_stream *
host_stream(const syncd_host *h, uint32_t stream)
{
	job *j = instance_of(h)->job;
	return stream < SYNCD_MAX_STREAMS && j->streams[stream].name
	           ? &j->streams[stream].desc
	           : NULL;
}

static syncd_selection
host_select(const syncd_host *h, const char *database, const char *schema,
            const char *table)
{
	return router_select(instance_of(h)->job, database, schema, table);
}

static syncd_status
host_reject(const syncd_host *h, int worker, const syncd_event *ev,
            const char *sqlstate, const char *message)
{
	instance *inst = instance_of(h);
	return dirty_reject(inst->job, inst->prefix, worker, ev, sqlstate,
	                    message);
}

void
host_init(instance *inst)
{
	syncd_host *h = &inst->host;

	memset(h, 0, sizeof *h);
	h->size = sizeof *h;
	h->abi_major = SYNCD_ABI_MAJOR;
	h->abi_minor = SYNCD_ABI_MINOR;
	h->job = &inst->job->info;
	h->options = inst->options;
	h->log = host_log;
	h->vlog = host_vlog;
	h->log_enabled = host_log_enabled;
	h->set_error = host_set_error;
	h->stopping = host_stopping;
	h->metric_add = host_metric_add;
	h->metric_set = host_metric_set;
	h->alloc = host_alloc;
	h->free_mem = host_free_mem;
	h->stream = host_stream;
	inst->source_host = (syncd_source_host){
	    .size = sizeof inst->source_host, .select = host_select};
	inst->sink_host = (syncd_sink_host){.size = sizeof inst->sink_host,
	                                    .reject = host_reject};
	if (inst->plugin->d.kind == SYNCD_KIND_SOURCE)
		h->source = &inst->source_host;
	if (inst->plugin->d.kind == SYNCD_KIND_SINK)
		h->sink = &inst->sink_host;
}
