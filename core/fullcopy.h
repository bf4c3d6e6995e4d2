/*
 * core/fullcopy.h - the full phase: the tables of a snapshot copied into
 * the sink, with progress. With the sink's copy operations: in parallel,
 * straight from the source's COPY into the sink's, each chunk's completion
 * recorded by the sink so that a restart resumes. Without: through the
 * pipeline and the sink's write(), as one transaction of the stream.
 */
#ifndef SYNCD_FULLCOPY_H
#define SYNCD_FULLCOPY_H

#include <syncd/plugin.h>

#include "job.h"
#include "pipeline.h"

/* The sink has the copy operations (the fast path). */
bool fullcopy_sink_copies(const job *j);

/* Copies the tables of snap (stream `stream`); again: the snapshot starts
 * a new stream position, so earlier copies count for nothing. SYNCD_OK when
 * done or stopping; SYNCD_FATAL when the job failed. */
syncd_status fullcopy_run(job *j, pipeline *p, uint32_t stream,
                          const syncd_snapshot *snap, bool again);

#endif
