/*
 * core/job.c - see job.h.
 */
#include "config.h"

#include "job.h"
#include "log.h"
#include "plugerr.h"
#include "util.h"

#include <stdlib.h>
#include <time.h>

void
job_fail(job *j, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);

	pthread_mutex_lock(&j->fail_lock);
	if (!j->failure) {
		j->failure = msg;
		free(j->last_error);
		j->last_error = log_redact(msg);
		j->last_error_ms = wall_ms();
		log_error("%s", msg);
	} else
		free(msg);
	atomic_store(&j->failed, true);
	atomic_store(&j->stopping, true);
	pthread_mutex_unlock(&j->fail_lock);
	if (j->wake)
		j->wake(j->wake_ctx);
}

void
job_request_stop(job *j)
{
	atomic_store(&j->stopping, true);
}

/* Waits ms, or less when the job stops. */
void
job_sleep(job *j, int64_t ms)
{
	while (ms > 0 && !job_stopping(j)) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
		ms -= 100;
	}
}

bool
job_stopping(const job *j)
{
	return atomic_load(&j->stopping);
}

bool
job_failed(const job *j)
{
	return atomic_load(&j->failed);
}

void
job_reset(job *j)
{
	atomic_store(&j->stopping, false);
	atomic_store(&j->failed, false);
	atomic_store(&j->invalid, false);
	pthread_mutex_lock(&j->fail_lock);
	free(j->failure);
	j->failure = NULL;
	pthread_mutex_unlock(&j->fail_lock);
}

job_state
job_current_state(job *j)
{
	job_state phase = (job_state) atomic_load(&j->phase);

	if (phase == JOB_RETRYING)
		return phase;
	if (job_failed(j))
		return JOB_FAILED;
	if (job_stopping(j))
		return JOB_STOPPING;
	if (atomic_load(&j->reconnecting) > 0)
		return JOB_RETRYING;
	return phase;
}

const char *
job_state_name(job_state s)
{
	static const char *const names[JOB_NSTATES] = {
	    "starting", "copying", "streaming", "retrying", "stopping",
	    "failed"};
	return s < JOB_NSTATES ? names[s] : "unknown";
}

char *
job_last_error(job *j, int64_t *when_ms)
{
	char *e;

	pthread_mutex_lock(&j->fail_lock);
	e = j->last_error ? xstrdup(j->last_error) : NULL;
	*when_ms = j->last_error_ms;
	pthread_mutex_unlock(&j->fail_lock);
	return e;
}

syncd_status
job_stream_named(void *ctx, const syncd_stream *d)
{
	job *j = ctx;
	job_stream *js;

	if (!d || d->id >= SYNCD_MAX_STREAMS)
		return SYNCD_OK;
	js = &j->streams[d->id];
	free(js->name);
	js->name = xstrdup(d->name ? d->name : "?");
	js->desc = (syncd_stream){sizeof js->desc, d->id, js->name, NULL};
	if (d->id + 1 > j->nstreams)
		j->nstreams = d->id + 1;
	return SYNCD_OK;
}

bool
job_list_streams(job *j)
{
	const syncd_source_ops *src = &j->source->plugin->ops.source;

	j->nstreams = 0;
	if (!src->streams) {
		syncd_stream one = {sizeof one, 0, j->source->plugin->name,
		                    NULL};
		return job_stream_named(j, &one) == SYNCD_OK;
	}
	if (src->streams(j->source->state, job_stream_named, j) != SYNCD_OK) {
		log_error("%s could not list its streams: %s", j->source->prefix,
		          plugerr_msg(j->source));
		return false;
	}
	return true;
}

const char *
job_stream_name(const job *j, uint32_t id)
{
	return id < SYNCD_MAX_STREAMS && j->streams[id].name
	           ? j->streams[id].name
	           : "";
}

const char *
job_name(const job *j)
{
	return j->info.name;
}
