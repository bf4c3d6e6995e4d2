/*
 * core/runner.h - running a job: the core, not the source, decides the
 * order (streams, positions, the full phase, streaming, stopping) and
 * what may be confirmed.
 */
#ifndef SYNCD_RUNNER_H
#define SYNCD_RUNNER_H

#include "job.h"

/* Runs the job until the source ends, a stop is requested (SIGINT,
 * SIGTERM: returns 0) or something fails (returns 1; j->invalid when
 * restarting cannot help). SIGINT and SIGTERM must be blocked. */
int runner_run(job *j);

#endif
