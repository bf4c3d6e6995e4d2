/*
 * core/dirty.h - the dirty-data path (DESIGN §5 "Dirty data"): a row a
 * sink or a transform refused is logged, archived and counted per worker,
 * or fails the job, as [dirty] says.
 */
#ifndef SYNCD_DIRTY_H
#define SYNCD_DIRTY_H

#include <syncd/plugin.h>

#include "job.h"

void dirty_init(job *j);
void dirty_reset(job *j); /* a new run: counts start again */
void dirty_free(job *j);

/* One refused row; who: the refusing instance's prefix. SYNCD_OK when the
 * job may go on without it, SYNCD_FATAL (the job failed) when not. */
syncd_status dirty_reject(job *j, const char *who, int worker,
                          const syncd_event *ev, const char *sqlstate,
                          const char *message);
/* Rows refused so far by worker. */
long dirty_count(job *j, int worker);
/* Makes archived rows durable (before their position is confirmed);
 * SYNCD_FATAL (the job failed) when the archiver could not. */
syncd_status dirty_flush(job *j);

#endif
