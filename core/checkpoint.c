/*
 * core/checkpoint.c - see checkpoint.h.
 */
#include "config.h"

#include "checkpoint.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>

struct checkpoint {
	pthread_mutex_t lock;
	int nworkers;
	syncd_lsn *lsn; /* [worker * SYNCD_MAX_STREAMS + stream] */
};

checkpoint *
ckpt_new(int nworkers)
{
	checkpoint *c = xcalloc(1, sizeof *c);
	pthread_mutex_init(&c->lock, NULL);
	c->nworkers = nworkers;
	c->lsn =
	    xcalloc((size_t) nworkers * SYNCD_MAX_STREAMS, sizeof(syncd_lsn));
	return c;
}

void
ckpt_free(checkpoint *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c->lsn);
	free(c);
}

void
ckpt_record(checkpoint *c, int w, uint32_t s, syncd_lsn lsn)
{
	if (w < 0 || w >= c->nworkers || s >= SYNCD_MAX_STREAMS)
		return;
	pthread_mutex_lock(&c->lock);
	if (lsn > c->lsn[w * SYNCD_MAX_STREAMS + s])
		c->lsn[w * SYNCD_MAX_STREAMS + s] = lsn;
	pthread_mutex_unlock(&c->lock);
}

syncd_lsn
ckpt_worker(checkpoint *c, int w, uint32_t s)
{
	syncd_lsn v = 0;
	if (w < 0 || w >= c->nworkers || s >= SYNCD_MAX_STREAMS)
		return 0;
	pthread_mutex_lock(&c->lock);
	v = c->lsn[w * SYNCD_MAX_STREAMS + s];
	pthread_mutex_unlock(&c->lock);
	return v;
}

syncd_lsn
ckpt_flushed(checkpoint *c, uint32_t s)
{
	syncd_lsn min = 0;
	if (s >= SYNCD_MAX_STREAMS)
		return 0;
	pthread_mutex_lock(&c->lock);
	for (int w = 0; w < c->nworkers; w++) {
		syncd_lsn v = c->lsn[w * SYNCD_MAX_STREAMS + s];
		if (w == 0 || v < min)
			min = v;
	}
	pthread_mutex_unlock(&c->lock);
	return min;
}
