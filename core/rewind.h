/*
 * core/rewind.h - syncd --start-time: a job streamed before goes back to a
 * past commit time and applies again what committed since.
 *
 * While a job streams, the runner records time marks (a commit time and
 * the position before it, syncd_time_mark) with the destination's
 * progress, every REWIND_MARK_US of commit time, for as long as the source
 * keeps confirmed WAL (syncd_position.retention_ms). At a start with
 * --start-time, before the streams are opened, each stream's latest mark
 * at or before TIME is found, the source sets its position back to it
 * (rewind) and the sink its progress; then the job streams as always.
 * Changes of transactions committed before TIME between the mark and TIME
 * are passed over (rewind_skip), so that the replay starts at the first
 * transaction committed at or after TIME.
 */
#ifndef SYNCD_REWIND_H
#define SYNCD_REWIND_H

#include "job.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Commit time between two marks of a stream. */
#define REWIND_MARK_US (5 * 1000000LL)

/* Parses TIME: ISO 8601 with an offset ("2026-12-02T10:00:00+08:00",
 * "2026-12-02 02:00:00.5Z"), or how long ago ("2hours", "30s", "1day
 * ago"), now_us being now. False with the reason in err. */
bool rewind_parse_time(const char *text, int64_t now_us, int64_t *at_us,
                       char *err, size_t n);

/* Formats t (us since the epoch) as "2026-12-02 10:00:00.000000+00" into
 * buf. */
const char *rewind_format(int64_t t, char *buf, size_t n);

/* Sets every stream of the job back to j->start_time (nothing changed
 * unless every stream can go back). False with the job failed (and
 * marked invalid when TIME cannot be reached). */
bool rewind_streams(job *j);

/* Whether a change of stream (commit time, commit position) is passed
 * over: committed before the start time, and before the first
 * transaction of the stream committed at or after it. */
bool rewind_skip(job *j, uint32_t stream, syncd_lsn lsn, int64_t commit_time);

#endif
