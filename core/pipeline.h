/*
 * core/pipeline.h - from a source's events to the sink's workers: TRUNCATE
 * policy -> routing for the transforms -> transform chain (file order) ->
 * interning with target names -> partitioner (sink.keyby) -> workers.
 *
 * Ordering: a table (keyby table), or a key (keyby pk), always goes to the
 * same worker, and each worker applies in queue order, so per-key order
 * holds. Events that must be ordered across workers (TRUNCATE or
 * UPDATE_ALL with keyby pk, a truncate of tables on different workers, a
 * key change that moves a row between workers) are fenced: every worker
 * flushes first, the event is applied alone, then the stream goes on.
 */
#ifndef SYNCD_PIPELINE_H
#define SYNCD_PIPELINE_H

#include <syncd/plugin.h>

#include "job.h"

typedef struct pipeline pipeline;

pipeline *pipeline_new(job *j);
/* Starts the workers (each opens its sink worker). */
syncd_status pipeline_start(pipeline *p);
/* One event of a source (any thread; serialised inside). The event may
 * come from a plugin built for an older minor (its size). */
syncd_status pipeline_emit(pipeline *p, const syncd_event *ev);
/* syncd_emit_fn shape of pipeline_emit (ctx: the pipeline). */
syncd_status pipeline_emit_fn(void *ctx, const syncd_event *ev);
/* Flushes every worker and waits until all emitted so far is durable. */
syncd_status pipeline_drain(pipeline *p);
/* A time mark to record with the next batch (see workers_mark). */
void pipeline_mark(pipeline *p, const syncd_time_mark *m, int64_t before);
/* What may be confirmed of a stream. */
syncd_lsn pipeline_flushed(pipeline *p, uint32_t stream);
/* What the sink has stored for a stream, the minimum over workers;
 * *known is false when the sink keeps no progress. */
syncd_status pipeline_stored(pipeline *p, uint32_t stream, syncd_lsn *lsn,
                             bool *known);
/* Holds back, from now on, the changes of the tables rels[0..n) of stream
 * (matched by database, schema and table: the source's names) while they
 * are copied again: they wait in memory instead of going to a worker. */
void pipeline_hold(pipeline *p, uint32_t stream,
                   const syncd_relation *const *rels, size_t n);
/* What the held changes of stream weigh, in bytes; *count: how many. */
size_t pipeline_held_bytes(pipeline *p, uint32_t stream, size_t *count);
/* Ends the hold of stream. With drop, the held changes are thrown away.
 * Otherwise those of transactions committed below `from` are too (the
 * copy holds them), and the others go to the workers in their order as
 * changes of transaction `as`, which is at or above each of them: the
 * stream's open transaction (its commit follows), or, with commit, the
 * last one it emitted (its commit is sent again). Until the stream emits a
 * commit at or above `from`, the tables' changes below it are dropped. */
syncd_status pipeline_release(pipeline *p, uint32_t stream, bool drop,
                              syncd_lsn from, syncd_lsn as, bool commit);
/* Wakes every thread waiting inside the pipeline (after a failure). */
void pipeline_wake(pipeline *p);
/* Stops and joins the workers. */
void pipeline_stop(pipeline *p);
void pipeline_free(pipeline *p);

#endif
