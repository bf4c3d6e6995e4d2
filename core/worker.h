/*
 * core/worker.h - the sink's workers: one thread, one bounded queue and one
 * sink connection each. A worker batches what it is given (whole
 * transactions of the keys routed to it), writes batches with the sink
 * (retrying a lost connection with backoff within reconnect.max_wait), and
 * records in the checkpoint, per stream, the commit position up to which
 * it has made everything durable.
 *
 * Every COMMIT is broadcast to every worker as a marker; a worker's
 * progress for a stream is the last marker it has seen, recorded only
 * after the batch holding everything before it is durable (written in the
 * same destination transaction by the sink). What may be confirmed is the
 * minimum over workers (checkpoint.h).
 */
#ifndef SYNCD_WORKER_H
#define SYNCD_WORKER_H

#include <syncd/plugin.h>

#include "job.h"
#include "queue.h"

typedef struct workers workers;

workers *workers_new(job *j);
void workers_free(workers *ws);
/* Starts the threads (each opens its sink worker). */
syncd_status workers_start(workers *ws);
/* Stops and joins the threads. */
void workers_stop(workers *ws);
int workers_count(const workers *ws);
/* Hands worker i an item (blocks while its queue is full). */
syncd_status workers_push(workers *ws, int i, item *it);
/* Every worker (only >= 0: that one) flushes what it holds and records its
 * progress; returns once all have. */
syncd_status workers_fence(workers *ws, int only);
/* Every worker asks the sink what it had applied of stream before a
 * restart; *lsn: the smallest. */
syncd_status workers_learn(workers *ws, uint32_t stream, syncd_lsn *lsn);
/* A time mark for the next batch any worker writes, and the time before
 * which recorded marks may go (syncd_batch.marks). */
void workers_mark(workers *ws, const syncd_time_mark *m, int64_t before);
/* What may be confirmed of stream: durable at every worker. */
syncd_lsn workers_flushed(workers *ws, uint32_t stream);
/* Wakes every waiting thread (after a failure). */
void workers_wake(workers *ws);

#endif
