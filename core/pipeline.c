/*
 * core/pipeline.c - see pipeline.h.
 */
#include "config.h"

#include "chain.h"
#include "log.h"
#include "pipeline.h"
#include "queue.h"
#include "router.h"
#include "util.h"
#include "worker.h"

#include <stdlib.h>
#include <string.h>

/* Relations by id: the current version of each, every version kept until
 * the end (items in flight point to them). */
#define PIPE_REL_BUCKETS 1024

typedef struct pipe_rel {
	struct pipe_rel *next_all;
	struct pipe_rel *next_bucket;
	syncd_relation *rel;
} pipe_rel;

typedef struct pipe_rels {
	pipe_rel *buckets[PIPE_REL_BUCKETS];
	pipe_rel *all;
} pipe_rels;

/* The changes held back while their tables are copied again, per stream
 * (see pipeline_hold). */
typedef struct pipe_held {
	item *it;
	int target;
	bool fenced;
} pipe_held;

typedef struct pipe_hold {
	char **names; /* "database\tschema\ttable" */
	size_t nnames;
	pipe_held *v;
	size_t n, cap, bytes;
	/* after a release: changes below `from` are in the copy */
	syncd_lsn from;
	char **filtered;
	size_t nfiltered;
} pipe_hold;

struct pipeline {
	job *j;
	workers *ws;
	int n;
	bool keyby_pk, truncate_ignore;

	/* dispatch state, under emit_lock */
	pthread_mutex_t emit_lock;
	pipe_rels sink_rels;   /* as the sink sees them (after transforms) */
	pipe_rels source_rels; /* as transforms see them (with transforms) */
	pipe_hold holds[SYNCD_MAX_STREAMS];
};

/* ---- tables held back ---------------------------------------------------- */

static char *
pipe_hold_name(const syncd_relation *r)
{
	return xasprintf("%s\t%s\t%s", r->database ? r->database : "",
	                 r->schema ? r->schema : "", r->table ? r->table : "");
}

static bool
pipe_in(char **names, size_t n, const syncd_relation *r)
{
	char *name;
	bool found = false;

	if (n == 0 || !r)
		return false;
	name = pipe_hold_name(r);
	for (size_t i = 0; i < n && !found; i++)
		found = strcmp(names[i], name) == 0;
	free(name);
	return found;
}

static void
pipe_names_free(char ***names, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free((*names)[i]);
	free(*names);
	*names = NULL;
	*n = 0;
}

/* Whether a change of rel at lsn is held (then it is kept) or dropped as
 * one the copy holds. */
static bool
pipe_held_rel(pipeline *p, uint32_t stream, const syncd_relation *rel,
              syncd_lsn lsn, bool *drop)
{
	pipe_hold *h = &p->holds[stream];

	*drop = lsn < h->from && pipe_in(h->filtered, h->nfiltered, rel);
	return !*drop && pipe_in(h->names, h->nnames, rel);
}

static void
pipe_hold_item(pipeline *p, uint32_t stream, item *it, int target,
               bool fenced)
{
	pipe_hold *h = &p->holds[stream];

	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 256;
		h->v = xrealloc(h->v, h->cap * sizeof *h->v);
	}
	h->v[h->n++] = (pipe_held){it, target, fenced};
	h->bytes += it->bytes;
}

/* ---- relations ----------------------------------------------------------- */

static const syncd_relation *
pipe_rel_find(pipe_rels *rs, uint64_t id)
{
	for (pipe_rel *r = rs->buckets[id % PIPE_REL_BUCKETS]; r;
	     r = r->next_bucket)
		if (r->rel->id == id)
			return r->rel;
	return NULL;
}

/* A routed copy of src, as the current version of its id. */
static const syncd_relation *
pipe_rel_intern(pipeline *p, pipe_rels *rs, const syncd_relation *src,
                unsigned flags)
{
	pipe_rel *r = xcalloc(1, sizeof *r);
	pipe_rel **b = &rs->buckets[src->id % PIPE_REL_BUCKETS];

	r->rel = router_copy(p->j, src, flags);
	for (pipe_rel **pp = b; *pp; pp = &(*pp)->next_bucket)
		if ((*pp)->rel->id == src->id) {
			*pp = (*pp)->next_bucket;
			break;
		}
	r->next_bucket = *b;
	*b = r;
	r->next_all = rs->all;
	rs->all = r;
	return r->rel;
}

static void
pipe_rels_free(pipe_rels *rs)
{
	pipe_rel *r = rs->all, *next;
	for (; r; r = next) {
		next = r->next_all;
		router_free(r->rel);
		free(r);
	}
	memset(rs, 0, sizeof *rs);
}

/* ---- dispatch ------------------------------------------------------------ */

static syncd_status
pipe_unknown_rel(pipeline *p, const char *what, const syncd_relation *rel)
{
	job_fail(p->j,
	         "%s: %s a relation that was never described (id %llu); "
	         "the plugin must emit a RELATION event first",
	         p->j->source->prefix, what,
	         rel ? (unsigned long long) rel->id : 0ULL);
	return SYNCD_FATAL;
}

static syncd_status
pipe_dispatch_change(pipeline *p, const syncd_event *ev)
{
	const syncd_relation *rel = NULL;
	const syncd_relation **rels = NULL;
	item *it;
	int target;
	bool fenced = false;
	syncd_status st;
	syncd_event truncate_part;
	bool hold = false, drop;

	if (ev->type == SYNCD_EV_TRUNCATE) {
		uint32_t n = 0, nheld = 0;
		if (ev->nrels == 0 || !ev->rels)
			return SYNCD_OK;
		rels = xcalloc(ev->nrels, sizeof *rels);
		for (uint32_t i = 0; i < ev->nrels; i++) {
			const syncd_relation *r =
			    ev->rels[i]
			        ? pipe_rel_find(&p->sink_rels, ev->rels[i]->id)
			        : NULL;
			if (!r) {
				free(rels);
				return pipe_unknown_rel(p, "TRUNCATE of",
				                        ev->rels[i]);
			}
			if (pipe_held_rel(p, ev->stream, r, ev->lsn, &drop))
				nheld++;
			else if (!drop)
				rels[n++] = r;
		}
		if (nheld > 0) {
			/* the held tables' part waits with their changes */
			syncd_event part = *ev;
			const syncd_relation **hr =
			    xcalloc(nheld, sizeof *hr);
			uint32_t k = 0;
			for (uint32_t i = 0; i < ev->nrels; i++) {
				const syncd_relation *r = pipe_rel_find(
				    &p->sink_rels, ev->rels[i]->id);
				if (pipe_held_rel(p, ev->stream, r, ev->lsn,
				                  &drop))
					hr[k++] = r;
			}
			part.nrels = nheld;
			part.rels = hr;
			part.rel = hr[0];
			pipe_hold_item(p, ev->stream,
			               item_event(&part, hr[0], hr),
			               router_worker(p->n, false, hr[0], NULL),
			               true);
			free(hr);
		}
		if (n == 0) {
			free(rels);
			return SYNCD_OK;
		}
		rel = rels[0];
		target = router_worker(p->n, false, rel, NULL);
		for (uint32_t i = 1; i < n; i++)
			if (router_worker(p->n, false, rels[i], NULL) != target)
				fenced = true;
		if (n < ev->nrels) {
			truncate_part = *ev;
			truncate_part.nrels = n;
			truncate_part.rels = rels;
			truncate_part.rel = rel;
			ev = &truncate_part;
		}
		if (p->keyby_pk && p->n > 1) {
			fenced = true;
			target = 0;
		}
	} else {
		const syncd_value *key;
		rel =
		    ev->rel ? pipe_rel_find(&p->sink_rels, ev->rel->id) : NULL;
		if (!rel)
			return pipe_unknown_rel(p, "a change for", ev->rel);
		hold = pipe_held_rel(p, ev->stream, rel, ev->lsn, &drop);
		if (drop)
			return SYNCD_OK; /* in the copy of its table */
		if (ev->rel->ncolumns != rel->ncolumns) {
			job_fail(p->j,
			         "%s: a change for %s.%s has %u columns, its "
			         "relation %u",
			         p->j->source->prefix, rel->schema, rel->table,
			         ev->rel->ncolumns, rel->ncolumns);
			return SYNCD_FATAL;
		}
		key = ev->type == SYNCD_EV_DELETE ? ev->old_values
		                                  : ev->new_values;
		if (!key || (ev->type == SYNCD_EV_UPDATE && !ev->new_values)) {
			job_fail(p->j, "%s: a %s on %s.%s without %s values",
			         p->j->source->prefix,
			         ev->type == SYNCD_EV_DELETE ? "DELETE"
			                                     : "change",
			         rel->schema, rel->table,
			         ev->type == SYNCD_EV_DELETE ? "old" : "new");
			return SYNCD_FATAL;
		}
		if (ev->type == SYNCD_EV_UPDATE_ALL) {
			/* every row: on the table's worker, or on one while
			 * every other waits when rows are spread by key */
			target = router_worker(p->n, false, rel, NULL);
			if (p->keyby_pk && p->n > 1) {
				fenced = true;
				target = 0;
			}
		} else {
			target = router_worker(p->n, p->keyby_pk, rel, key);
			if (ev->type == SYNCD_EV_UPDATE && ev->old_values &&
			    p->keyby_pk &&
			    router_worker(p->n, true, rel, ev->old_values) !=
			        target)
				fenced = true; /* the row moves */
		}
	}

	if (log_enabled(SYNCD_LEVEL_DEBUG))
		log_debug("dispatching event %d of %s.%s at " SYNCD_LSN_FMT
		          " to worker %d%s",
		          (int) ev->type, rel->schema, rel->table,
		          SYNCD_LSN_ARGS(ev->lsn), target,
		          fenced ? " (fenced)" : "");
	it = item_event(ev, rel, rels);
	free(rels);
	if (hold) {
		pipe_hold_item(p, ev->stream, it, target, fenced);
		return SYNCD_OK;
	}
	if (fenced) {
		if (workers_fence(p->ws, -1) != SYNCD_OK) {
			free(it);
			return SYNCD_FATAL;
		}
		/* the commit marker of this transaction reaches the worker
		 * after this fence; the fence below only makes the event
		 * durable */
		st = workers_push(p->ws, target, it);
		if (st == SYNCD_OK)
			st = workers_fence(p->ws, target);
		return st;
	}
	return workers_push(p->ws, target, it);
}

/* The end of the transform chain. */
static syncd_status
pipe_dispatch(void *ctx, const syncd_event *ev)
{
	pipeline *p = ctx;

	switch (ev->type) {
	case SYNCD_EV_BEGIN: return SYNCD_OK;
	case SYNCD_EV_RELATION:
		if (!ev->rel) {
			job_fail(p->j, "%s: RELATION event without a relation",
			         p->j->source->prefix);
			return SYNCD_FATAL;
		}
		pipe_rel_intern(p, &p->sink_rels, ev->rel, ROUTER_SINK);
		return SYNCD_OK;
	case SYNCD_EV_INSERT:
	case SYNCD_EV_UPDATE:
	case SYNCD_EV_DELETE:
	case SYNCD_EV_TRUNCATE:
	case SYNCD_EV_UPDATE_ALL: return pipe_dispatch_change(p, ev);
	case SYNCD_EV_COMMIT:
		if (ev->stream < SYNCD_MAX_STREAMS &&
		    p->holds[ev->stream].nfiltered &&
		    ev->lsn >= p->holds[ev->stream].from)
			pipe_names_free(&p->holds[ev->stream].filtered,
			                &p->holds[ev->stream].nfiltered);
		for (int i = 0; i < p->n; i++) {
			syncd_status st =
			    workers_push(p->ws, i, item_small(ITEM_COMMIT, ev));
			if (st != SYNCD_OK)
				return st;
		}
		return SYNCD_OK;
	}
	job_fail(p->j, "%s: unknown event type %d", p->j->source->prefix,
	         (int) ev->type);
	return SYNCD_FATAL;
}

/* What the job does with a source's TRUNCATE: nothing with
 * sink.truncate.mode = ignore; a shard's is kept out (its target holds
 * every shard's rows). *keep gets the relations still truncated. */
static uint32_t
pipe_truncate_policy(pipeline *p, const syncd_event *ev,
                     const syncd_relation **keep)
{
	uint32_t n = 0;

	if (p->truncate_ignore) {
		log_info("ignoring TRUNCATE of %u table(s) at " SYNCD_LSN_FMT
		         " (sink.truncate.mode = ignore)",
		         ev->nrels, SYNCD_LSN_ARGS(ev->lsn));
		return 0;
	}
	for (uint32_t i = 0; i < ev->nrels; i++) {
		const syncd_relation *r = ev->rels[i];
		const logical_table *lt =
		    r && p->j->nltables
		        ? router_logical_table(p->j, r->database, r->table)
		        : NULL;
		if (!lt)
			keep[n++] = r;
		else
			log_warning("TRUNCATE of %s.%s.%s at " SYNCD_LSN_FMT
			            " is not applied: its target holds the "
			            "rows of every shard of logical table %s; "
			            "delete this shard's rows there if they "
			            "must go",
			            r->database, r->schema, r->table,
			            SYNCD_LSN_ARGS(ev->lsn), lt->name);
	}
	return n;
}

/* Transforms see relations with their target names: the source's
 * relations are routed (not folded) before the chain. */
static syncd_status
pipe_emit_locked(pipeline *p, syncd_event *ev)
{
	const syncd_relation **rels = NULL;
	syncd_status st;

	if (ev->type == SYNCD_EV_TRUNCATE && ev->nrels && ev->rels) {
		rels = xcalloc(ev->nrels, sizeof *rels);
		ev->nrels = pipe_truncate_policy(p, ev, rels);
		if (ev->nrels == 0) {
			free(rels);
			return SYNCD_OK;
		}
		ev->rels = rels;
		ev->rel = rels[0];
	}
	if (p->j->ntransforms > 0) {
		if (ev->type == SYNCD_EV_RELATION && ev->rel)
			ev->rel =
			    pipe_rel_intern(p, &p->source_rels, ev->rel, 0);
		else if (ev->type == SYNCD_EV_TRUNCATE && rels) {
			for (uint32_t i = 0; i < ev->nrels; i++) {
				rels[i] =
				    pipe_rel_find(&p->source_rels, rels[i]->id);
				if (!rels[i]) {
					free(rels);
					return pipe_unknown_rel(
					    p, "TRUNCATE of", ev->rels[i]);
				}
			}
			ev->rel = rels[0];
		} else if (ev->rel) {
			const syncd_relation *r =
			    pipe_rel_find(&p->source_rels, ev->rel->id);
			if (!r)
				return pipe_unknown_rel(p, "a change for",
				                        ev->rel);
			if (r->ncolumns != ev->rel->ncolumns) {
				job_fail(p->j,
				         "%s: a change for %s.%s has %u "
				         "columns, its relation %u",
				         p->j->source->prefix, r->schema,
				         r->table, ev->rel->ncolumns,
				         r->ncolumns);
				return SYNCD_FATAL;
			}
			ev->rel = r;
		}
	}
	st = chain_apply(p->j, ev, pipe_dispatch, p);
	free(rels);
	return st;
}

/* ---- public -------------------------------------------------------------- */

static void
pipe_wake(void *ctx)
{
	pipeline_wake(ctx);
}

pipeline *
pipeline_new(job *j)
{
	pipeline *p = xcalloc(1, sizeof *p);
	const optset *so = &j->sink->opts;

	p->j = j;
	p->n = j->nworkers;
	p->ws = workers_new(j);
	p->keyby_pk = strcmp(optset_str(so, "sink.keyby.mode"), "pk") == 0;
	p->truncate_ignore =
	    strcmp(optset_str(so, "sink.truncate.mode"), "ignore") == 0;
	pthread_mutex_init(&p->emit_lock, NULL);
	j->wake = pipe_wake;
	j->wake_ctx = p;
	return p;
}

syncd_status
pipeline_start(pipeline *p)
{
	return workers_start(p->ws);
}

syncd_status
pipeline_emit(pipeline *p, const syncd_event *in)
{
	syncd_event ev;
	syncd_status st;

	if (!in || job_failed(p->j))
		return SYNCD_FATAL;
	if (in->size < SYNCD_EVENT_SIZE_1_0) {
		job_fail(p->j,
		         "%s emitted an event of %u bytes, smaller than ABI "
		         "1.0's; rebuild the plugin",
		         p->j->source->prefix, in->size);
		return SYNCD_FATAL;
	}
	if (in->stream >= SYNCD_MAX_STREAMS) {
		job_fail(p->j,
		         "%s: stream %u is out of range (at most %d streams)",
		         p->j->source->prefix, in->stream, SYNCD_MAX_STREAMS);
		return SYNCD_FATAL;
	}
	memset(&ev, 0, sizeof ev);
	memcpy(&ev, in, in->size < sizeof ev ? in->size : sizeof ev);
	ev.size = sizeof ev;
	pthread_mutex_lock(&p->emit_lock);
	st = pipe_emit_locked(p, &ev);
	pthread_mutex_unlock(&p->emit_lock);
	if (job_failed(p->j))
		return SYNCD_FATAL;
	return st == SYNCD_OK ? SYNCD_OK : SYNCD_FATAL;
}

syncd_status
pipeline_emit_fn(void *ctx, const syncd_event *ev)
{
	return pipeline_emit(ctx, ev);
}

void
pipeline_hold(pipeline *p, uint32_t stream, const syncd_relation *const *rels,
              size_t n)
{
	pipe_hold *h = &p->holds[stream];

	pthread_mutex_lock(&p->emit_lock);
	for (size_t i = 0; i < n; i++) {
		h->names = xrealloc(h->names, (h->nnames + 1) * sizeof *h->names);
		h->names[h->nnames++] = pipe_hold_name(rels[i]);
	}
	pthread_mutex_unlock(&p->emit_lock);
}

size_t
pipeline_held_bytes(pipeline *p, uint32_t stream, size_t *count)
{
	size_t b;

	pthread_mutex_lock(&p->emit_lock);
	b = p->holds[stream].bytes;
	if (count)
		*count = p->holds[stream].n;
	pthread_mutex_unlock(&p->emit_lock);
	return b;
}

syncd_status
pipeline_release(pipeline *p, uint32_t stream, bool drop, syncd_lsn from,
                 syncd_lsn as, bool commit)
{
	pipe_hold *h = &p->holds[stream];
	syncd_status st = SYNCD_OK;
	size_t kept = 0;

	pthread_mutex_lock(&p->emit_lock);
	for (size_t i = 0; i < h->n; i++) {
		pipe_held *x = &h->v[i];
		if (drop || st != SYNCD_OK || x->it->ev.lsn < from ||
		    job_failed(p->j)) {
			free(x->it);
			continue;
		}
		x->it->ev.lsn = as;
		kept++;
		if (x->fenced) {
			st = workers_fence(p->ws, -1);
			if (st == SYNCD_OK)
				st = workers_push(p->ws, x->target, x->it);
			else
				free(x->it);
			if (st == SYNCD_OK)
				st = workers_fence(p->ws, x->target);
		} else
			st = workers_push(p->ws, x->target, x->it);
	}
	if (kept && commit && st == SYNCD_OK) {
		syncd_event c = {.size = sizeof c,
		                 .type = SYNCD_EV_COMMIT,
		                 .lsn = as,
		                 .stream = stream};
		for (int i = 0; i < p->n && st == SYNCD_OK; i++)
			st = workers_push(p->ws, i, item_small(ITEM_COMMIT, &c));
	}
	free(h->v);
	h->v = NULL;
	h->n = h->cap = h->bytes = 0;
	if (!drop) {
		/* until the stream reaches `from`: in the copy */
		pipe_names_free(&h->filtered, &h->nfiltered);
		h->filtered = h->names;
		h->nfiltered = h->nnames;
		h->from = from;
	} else
		pipe_names_free(&h->names, &h->nnames);
	h->names = NULL;
	h->nnames = 0;
	pthread_mutex_unlock(&p->emit_lock);
	return st;
}

syncd_status
pipeline_drain(pipeline *p)
{
	syncd_status st;
	if (job_failed(p->j))
		return SYNCD_FATAL;
	pthread_mutex_lock(&p->emit_lock);
	st = workers_fence(p->ws, -1);
	pthread_mutex_unlock(&p->emit_lock);
	return st;
}

void
pipeline_mark(pipeline *p, const syncd_time_mark *m, int64_t before)
{
	workers_mark(p->ws, m, before);
}

syncd_lsn
pipeline_flushed(pipeline *p, uint32_t stream)
{
	return workers_flushed(p->ws, stream);
}

syncd_status
pipeline_stored(pipeline *p, uint32_t stream, syncd_lsn *lsn, bool *known)
{
	syncd_status st;

	*lsn = 0;
	*known = p->j->sink->plugin->ops.sink.applied_lsn != NULL;
	if (job_failed(p->j))
		return SYNCD_FATAL;
	pthread_mutex_lock(&p->emit_lock);
	st = workers_learn(p->ws, stream, lsn);
	pthread_mutex_unlock(&p->emit_lock);
	return st;
}

void
pipeline_wake(pipeline *p)
{
	workers_wake(p->ws);
}

void
pipeline_stop(pipeline *p)
{
	workers_stop(p->ws);
}

void
pipeline_free(pipeline *p)
{
	for (uint32_t i = 0; p && i < SYNCD_MAX_STREAMS; i++) {
		pipe_hold *h = &p->holds[i];
		for (size_t k = 0; k < h->n; k++)
			free(h->v[k].it);
		free(h->v);
		pipe_names_free(&h->names, &h->nnames);
		pipe_names_free(&h->filtered, &h->nfiltered);
	}
	if (!p)
		return;
	if (p->j->wake_ctx == p) {
		p->j->wake = NULL;
		p->j->wake_ctx = NULL;
	}
	workers_free(p->ws);
	pipe_rels_free(&p->sink_rels);
	pipe_rels_free(&p->source_rels);
	pthread_mutex_destroy(&p->emit_lock);
	free(p);
}
