/*
 * core/instance.h - the life of a job's plugin instances: create (in file
 * order: source, transforms, sink, archiver), the pre-checks, destroy (in
 * reverse).
 */
#ifndef SYNCD_INSTANCE_H
#define SYNCD_INSTANCE_H

#include "job.h"

/* Calls create() of every instance; false (errors logged) on failure. */
bool instance_create_all(job *j);
/* Pre-checks of every instance: true when all passed. */
bool instance_check_all(job *j);
void instance_destroy_all(job *j);
/* Destroys and creates every instance again (auto_retry). */
bool instance_restart(job *j);

#endif
