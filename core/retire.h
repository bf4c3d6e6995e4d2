/*
 * core/retire.h - syncd --drop: retires a job. What the job left behind
 * (its replication slots, a publication it created, its progress and state
 * at the destination, its local state directory) is listed, and with
 * --yes removed; never while the job runs.
 */
#ifndef SYNCD_RETIRE_H
#define SYNCD_RETIRE_H

#include <stdbool.h>
#include <stdio.h>

#include "job.h"

/* Returns the exit code: 0 listed (or removed with apply), 1 refused or
 * failed. The instances are created. */
int retire_job(job *j, bool apply, FILE *out);

#endif
