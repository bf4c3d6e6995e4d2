/*
 * core/chain.h - the transforms, in job-file order, one event at a time
 * for the whole job: the stream and the full phase share one lock.
 */
#ifndef SYNCD_CHAIN_H
#define SYNCD_CHAIN_H

#include <syncd/plugin.h>

#include "job.h"

void chain_init(job *j);
void chain_free(job *j);

/* Runs ev (its relations routed: they carry target names) through the
 * transforms; what comes out of the last goes to final(ctx, ...), still
 * under the chain's lock. A row a transform refuses is dirty data; any
 * other failure fails the job. */
syncd_status chain_apply(job *j, const syncd_event *ev, syncd_emit_fn final,
                         void *ctx);

#endif
