/*
 * core/livecopy.h - tables copied while the job streams: tables that join
 * the selection, and those named to syncd --resync TABLE.
 *
 * The requests wait in STATE_DIR/resync (see resync.h). A stream copies
 * one table at a time:
 *  1. its changes are held back in the pipeline (pipeline_hold), and what
 *     the workers had is made durable;
 *  2. the source takes a snapshot of it (snapshot_tables: a temporary
 *     slot's, at position C) and carries it from then on; the target is
 *     checked or created;
 *  3. a thread copies it from the snapshot with the full phase's machinery
 *     (the target emptied first when the job filled it), while the stream
 *     goes on for the other tables;
 *  4. once it is done, the held changes committed at or above C go to the
 *     workers, as changes of the stream's current transaction (the changes
 *     below C are in the copy; pipeline_release).
 * Held changes past LIVE_HOLD_MAX make the stream wait for the copy.
 */
#ifndef SYNCD_LIVECOPY_H
#define SYNCD_LIVECOPY_H

#include <stdio.h>

#include <syncd/plugin.h>

#include "job.h"
#include "pipeline.h"

typedef struct livecopy livecopy;

/* The copying of stream `stream`'s tables, or NULL when the source or the
 * sink cannot copy a table while streaming. */
livecopy *live_new(job *j, pipeline *p, uint32_t stream);
/* After each read(): starts or ends a copy. in_txn: the stream is inside
 * transaction txn (its commit position); last_commit: the last commit it
 * emitted. */
void live_step(livecopy *lc, bool in_txn, syncd_lsn txn,
               syncd_lsn last_commit);
/* Ends a copy under way without applying it (a reconnect, the end): its
 * request stays for the next time. */
void live_abort(livecopy *lc);
void live_free(livecopy *lc);

/* syncd --resync TABLE...: records the requests; with the job running,
 * waits until it has copied them. Returns the exit status. */
int live_resync_command(job *j, char *const *names, size_t n, FILE *out);

#endif
