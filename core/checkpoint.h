/*
 * core/checkpoint.h - which commit LSN may be confirmed to the source.
 *
 * Every worker sees every commit of every stream, in order (the pipeline
 * broadcasts commit markers), and records here, after the sink has made a
 * batch durable, the last commit LSN of each stream it has applied up to.
 * The LSN that may be confirmed for a stream is the smallest of the
 * workers' recorded LSNs: every change of every transaction up to it is
 * durable, whichever worker it went to. A worker that runs ahead never
 * makes the confirmation run ahead of a slower one.
 */
#ifndef SYNCD_CHECKPOINT_H
#define SYNCD_CHECKPOINT_H

#include <stdint.h>

#include <syncd/event.h>

typedef struct checkpoint checkpoint;

checkpoint *ckpt_new(int nworkers);
void ckpt_free(checkpoint *c);
/* Worker w has made durable everything of stream s up to lsn. Never moves
 * backwards: a lower lsn is ignored. */
void ckpt_record(checkpoint *c, int w, uint32_t s, syncd_lsn lsn);
/* What worker w has recorded for stream s. */
syncd_lsn ckpt_worker(checkpoint *c, int w, uint32_t s);
/* The LSN of stream s that may be confirmed: the minimum over workers. */
syncd_lsn ckpt_flushed(checkpoint *c, uint32_t s);

#endif
