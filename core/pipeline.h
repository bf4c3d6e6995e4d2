/*
 * core/pipeline.h - from the source's emit() to the sink's write():
 * transform chain (file order) -> router (target names) -> partitioner
 * (sink.keyby) -> one bounded queue and thread per worker -> batches ->
 * sink, and the checkpoint accounting that says what may be confirmed.
 */
#ifndef SYNCD_PIPELINE_H
#define SYNCD_PIPELINE_H

#include <syncd/plugin.h>

#include "job.h"

pipeline *pipeline_new(job *j);
/* Starts the worker threads (each opens its sink worker). */
syncd_status pipeline_start(pipeline *p);
/* From source threads (serialised inside). */
syncd_status pipeline_emit(pipeline *p, const syncd_event *ev);
/* Flushes every worker and waits until all emitted so far is durable. */
syncd_status pipeline_drain(pipeline *p);
syncd_lsn pipeline_flushed(pipeline *p, uint32_t stream);
/* What the sink has stored for a stream, the minimum over workers. */
syncd_status pipeline_stored(pipeline *p, uint32_t stream, syncd_lsn *lsn,
                             bool *known);
/* Wakes every thread waiting inside the pipeline (after a failure). */
void pipeline_wake(pipeline *p);
/* Stops and joins the workers (after the source has returned). */
void pipeline_stop(pipeline *p);
void pipeline_free(pipeline *p);

/* A target.schema / target.table pattern applied to a relation; fold:
 * lower case (sink.field.name.case-sensitive = false). Caller frees. */
char *pipeline_target_name(const char *pattern, const syncd_relation *rel,
                           bool fold);

/* "(id)=(42)" for the key columns of a change, values cut at 64 bytes. */
char *pipeline_key_text(const syncd_event *ev);
/* The same for every column (the key only for a DELETE). */
char *pipeline_row_text(const syncd_event *ev);

#endif
