/*
 * core/job.c - see job.h.
 */
#include "config.h"

#include "job.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>

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

const char *
job_name(const job *j)
{
	return j->info.name;
}
