/*
 * core/jobload.h - reading a job file into a job: the core's sections and
 * keys, the plugins they name (loaded and checked), every value validated
 * against its declaration (exit code 2 territory).
 */
#ifndef SYNCD_JOBLOAD_H
#define SYNCD_JOBLOAD_H

#include "job.h"
#include "util.h"

/* NULL with the reasons ("path:LINE: ..." lines) in errors. */
job *job_load(const char *path, strbuf *errors);
/* Destroys the instances and frees everything. */
void job_free(job *j);

#endif
