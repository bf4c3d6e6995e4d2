/*
 * core/chain.c - see chain.h.
 */
#include "config.h"

#include "chain.h"
#include "dirty.h"
#include "plugerr.h"

#include <string.h>

typedef struct chain_stage {
	job *j;
	size_t index;
	syncd_emit_fn final;
	void *ctx;
} chain_stage;

void
chain_init(job *j)
{
	pthread_mutex_init(&j->chain_lock, NULL);
}

void
chain_free(job *j)
{
	pthread_mutex_destroy(&j->chain_lock);
}

static syncd_status
chain_stage_emit(void *arg, const syncd_event *in)
{
	chain_stage *stage = arg;
	job *j = stage->j;
	instance *t;
	chain_stage next = *stage;
	syncd_event ev;
	syncd_status st;

	/* an event a transform built may be older than the core's */
	if (!in || in->size < SYNCD_EVENT_SIZE_1_0) {
		job_fail(j,
		         "%s emitted an event of %u bytes, smaller than "
		         "ABI 1.0's; rebuild the plugin",
		         stage->index ? j->transforms[stage->index - 1]->prefix
		                      : "the source",
		         in ? in->size : 0);
		return SYNCD_FATAL;
	}
	memset(&ev, 0, sizeof ev);
	memcpy(&ev, in, in->size < sizeof ev ? in->size : sizeof ev);
	ev.size = sizeof ev;
	if (stage->index >= j->ntransforms)
		return stage->final(stage->ctx, &ev);
	t = j->transforms[stage->index];
	next.index = stage->index + 1;
	st = t->plugin->ops.transform.apply(t->state, &ev, chain_stage_emit,
	                                    &next);
	if (st == SYNCD_REJECT) /* a row the transform could not handle */
		return dirty_reject(j, t->prefix, 0, &ev, plugerr_sqlstate(t),
		                    plugerr_msg(t));
	if (st != SYNCD_OK && !job_failed(j))
		job_fail(j, "%s: %s", t->prefix, plugerr_msg(t));
	return st;
}

syncd_status
chain_apply(job *j, const syncd_event *ev, syncd_emit_fn final, void *ctx)
{
	chain_stage first = {j, 0, final, ctx};
	syncd_status st;

	pthread_mutex_lock(&j->chain_lock);
	st = chain_stage_emit(&first, ev);
	pthread_mutex_unlock(&j->chain_lock);
	return st;
}
