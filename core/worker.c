/*
 * core/worker.c - see worker.h.
 */
#include "config.h"

#include "checkpoint.h"
#include "dirty.h"
#include "log.h"
#include "metrics.h"
#include "plugerr.h"
#include "util.h"
#include "worker.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct worker {
	workers *p;
	int id;
	pthread_t thread;
	bool started;
	queue q;
	void *wstate;
	bool open;

	/* the batch being built */
	item **items; /* owned items (events and synthesized ones) */
	size_t nitems, cap;
	const syncd_event **evs;
	size_t nchanges, bytes;
	int64_t first_ms;            /* when the batch got its first change */
	int64_t recorded_ms;         /* when progress was last written */
	const syncd_relation **rels; /* relations announced in this batch */
	size_t nrels, relcap;

	/* per stream */
	syncd_lsn pending[SYNCD_MAX_STREAMS];  /* last commit marker seen */
	syncd_lsn recorded[SYNCD_MAX_STREAMS]; /* written with a batch */
	syncd_lsn skip[SYNCD_MAX_STREAMS];     /* applied before a restart */
	bool known[SYNCD_MAX_STREAMS];         /* skip[] asked of the sink */
	/* the transaction of each stream this worker has changes of, until
	 * its commit marker; begun: its BEGIN is in the current batch (a
	 * flush in the middle of it starts the next batch with a new BEGIN) */
	syncd_lsn txn[SYNCD_MAX_STREAMS];
	bool begun[SYNCD_MAX_STREAMS];
	bool dirty_seen; /* rows rejected in this batch */
} worker;

struct workers {
	job *j;
	instance *sink;
	int n;
	worker *w;
	checkpoint *ckpt;
	int64_t max_rows, max_bytes, interval_ms, reconnect_ms;

	/* time marks waiting for the next batch of any worker */
	pthread_mutex_t marks_lock;
	syncd_time_mark *marks;
	size_t nmarks, capmarks;
	int64_t marks_before;

	/* fences */
	pthread_mutex_t fence_lock;
	pthread_cond_t fence_cond;
	int fence_pending;
};

static void
worker_add(worker *w, item *it)
{
	if (w->nitems == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 256;
		w->items = xrealloc(w->items, w->cap * sizeof *w->items);
		w->evs = xrealloc(w->evs, w->cap * sizeof *w->evs);
	}
	w->items[w->nitems] = it;
	w->evs[w->nitems] = &it->ev;
	w->nitems++;
}

static void
worker_reset(worker *w)
{
	for (size_t i = 0; i < w->nitems; i++)
		free(w->items[i]);
	w->nitems = 0;
	w->nchanges = 0;
	w->bytes = 0;
	w->first_ms = 0;
	w->nrels = 0;
	memset(w->begun, 0, sizeof w->begun);
	w->dirty_seen = false;
}

static syncd_status
worker_open(worker *w)
{
	workers *p = w->p;
	instance *sink = p->sink;
	syncd_status st;

	st = sink->plugin->ops.sink.open(sink->state, w->id, &w->wstate);
	if (st == SYNCD_OK)
		w->open = true;
	return st;
}

static void
worker_close(worker *w)
{
	workers *p = w->p;
	if (w->open)
		p->sink->plugin->ops.sink.close(w->wstate);
	w->open = false;
	w->wstate = NULL;
}

/* Asks the sink, once per stream, what it had applied before a restart. */
static syncd_status
worker_learn_stream(worker *w, uint32_t s)
{
	workers *p = w->p;
	syncd_lsn lsn = 0;

	if (w->known[s])
		return SYNCD_OK;
	w->known[s] = true;
	if (p->sink->plugin->ops.sink.applied_lsn) {
		syncd_status st =
		    p->sink->plugin->ops.sink.applied_lsn(w->wstate, s, &lsn);
		if (st != SYNCD_OK) {
			job_fail(
			    p->j,
			    "%s worker %d: could not read its progress: %s",
			    p->sink->prefix, w->id, plugerr_msg(p->sink));
			return SYNCD_FATAL;
		}
	}
	w->skip[s] = lsn;
	if (lsn > w->pending[s])
		w->pending[s] = lsn;
	if (lsn > w->recorded[s])
		w->recorded[s] = lsn;
	ckpt_record(p->ckpt, w->id, s, lsn);
	if (lsn)
		log_info("%s worker %d: stream %u already applied up "
		         "to " SYNCD_LSN_FMT ", skipping what precedes it",
		         p->sink->prefix, w->id, s, SYNCD_LSN_ARGS(lsn));
	return SYNCD_OK;
}

/* One table and operation of a batch, for the changes applied: counted
 * in a small open-addressing table, since a batch of 50,000 changes
 * usually touches a few tables. */
typedef struct worker_count {
	const syncd_relation *rel; /* NULL: empty slot */
	uint32_t stream;
	int op;
	size_t n;
} worker_count;

typedef struct worker_counts {
	worker_count *slot;
	size_t cap, used; /* cap a power of two */
} worker_counts;

static worker_count *
worker_count_slot(worker_counts *c, const syncd_relation *rel,
                  uint32_t stream, int op)
{
	uint64_t h = ((uint64_t) (uintptr_t) rel >> 4) * 0x9E3779B97F4A7C15ULL ^
	             ((uint64_t) stream << 8 | (uint64_t) op);
	size_t i = (size_t) (h >> 32) & (c->cap - 1);

	for (;; i = (i + 1) & (c->cap - 1)) {
		worker_count *e = &c->slot[i];
		if (!e->rel) {
			*e = (worker_count){rel, stream, op, 0};
			c->used++;
			return e;
		}
		if (e->rel == rel && e->stream == stream && e->op == op)
			return e;
	}
}

static void
worker_count_add(worker_counts *c, const syncd_relation *rel,
                 uint32_t stream, int op)
{
	if (!rel)
		return;
	if ((c->used + 1) * 2 > c->cap) {
		worker_counts bigger = {0};
		bigger.cap = c->cap ? c->cap * 2 : 16;
		bigger.slot = xcalloc(bigger.cap, sizeof *bigger.slot);
		for (size_t k = 0; k < c->cap; k++) {
			const worker_count *o = &c->slot[k];
			if (o->rel)
				worker_count_slot(&bigger, o->rel, o->stream,
				                  o->op)
				    ->n = o->n;
		}
		free(c->slot);
		*c = bigger;
	}
	worker_count_slot(c, rel, stream, op)->n++;
}

/* The batch is durable: counts its changes per table and operation. */
static void
worker_count_batch(worker *w, double seconds)
{
	job *j = w->p->j;
	worker_counts c = {0};
	char id[16], *labels;

	for (size_t i = 0; i < w->nitems; i++) {
		const syncd_event *ev = w->evs[i];
		switch (ev->type) {
		case SYNCD_EV_INSERT:
		case SYNCD_EV_UPDATE:
		case SYNCD_EV_DELETE:
			worker_count_add(&c, ev->rel, ev->stream, ev->type);
			break;
		case SYNCD_EV_TRUNCATE:
		case SYNCD_EV_UPDATE_ALL:
			for (uint32_t r = 0; r < ev->nrels; r++)
				worker_count_add(&c, ev->rels[r], ev->stream,
				                 SYNCD_EV_TRUNCATE);
			if (ev->nrels == 0)
				worker_count_add(&c, ev->rel, ev->stream,
				                 SYNCD_EV_TRUNCATE);
			break;
		default: break;
		}
	}
	for (size_t i = 0; i < c.cap; i++) {
		const worker_count *e = &c.slot[i];
		const syncd_relation *r = e->rel;
		char *table;
		const char *op = e->op == SYNCD_EV_INSERT   ? "insert"
		                 : e->op == SYNCD_EV_UPDATE ? "update"
		                 : e->op == SYNCD_EV_DELETE ? "delete"
		                                            : "truncate";
		if (!r)
			continue;
		table = xasprintf("%s.%s", r->schema ? r->schema : "",
		                  r->table ? r->table : "");
		labels = metrics_labels(
		    "database",
		    r->database ? r->database : job_stream_name(j, e->stream),
		    "table", table, "op", op, NULL);
		metrics_add("changes_applied_total", labels, (double) e->n);
		free(labels);
		free(table);
	}
	free(c.slot);
	snprintf(id, sizeof id, "%d", w->id);
	labels = metrics_labels("worker", id, NULL);
	metrics_add("batches_total", labels, 1);
	metrics_observe("batch_flush_duration_seconds", labels, seconds);
	free(labels);
}

/* Writes the batch (and the progress that moved) with the sink; retries a
 * lost connection with backoff. force: write progress even if it did not
 * move (a fence or drain). */
static syncd_status
worker_flush(worker *w, bool force)
{
	workers *p = w->p;
	syncd_progress prog[SYNCD_MAX_STREAMS];
	syncd_batch b;
	size_t np = 0;
	syncd_status st;
	int attempt = 0;
	int64_t budget = p->reconnect_ms;
	int64_t waited = 0;
	long dirty_before;
	int64_t started;
	syncd_time_mark *marks;

	for (uint32_t s = 0; s < SYNCD_MAX_STREAMS; s++)
		if (w->pending[s] > w->recorded[s] ||
		    (force && w->known[s] && w->pending[s]))
			prog[np++] = (syncd_progress){s, w->pending[s]};
	if (w->nchanges == 0 && np == 0) {
		worker_reset(w);
		return SYNCD_OK;
	}

	memset(&b, 0, sizeof b);
	b.size = sizeof b;
	b.worker = w->id;
	b.nprogress = np;
	b.progress = prog;
	b.nevents = w->nitems;
	b.events = (const syncd_event *const *) w->evs;
	b.nchanges = w->nchanges;
	b.bytes = w->bytes;
	pthread_mutex_lock(&p->marks_lock);
	b.marks = marks = p->marks;
	b.nmarks = p->nmarks;
	b.marks_before = p->marks_before;
	p->marks = NULL;
	p->nmarks = p->capmarks = 0;
	pthread_mutex_unlock(&p->marks_lock);

	dirty_before = dirty_count(p->j, w->id);
	started = now_ms();
	for (;;) {
		/* a reopen that failed with RETRY left no worker to write
		 * with: that counts as one more failed attempt */
		st = w->open ? p->sink->plugin->ops.sink.write(w->wstate, &b)
		             : SYNCD_RETRY;
		if (st != SYNCD_RETRY || job_failed(p->j))
			break;
		/* exponential backoff within reconnect.max_wait */
		{
			int64_t wait = backoff_ms(attempt);
			if (waited >= budget) {
				job_fail(
				    p->j,
				    "%s worker %d: gave up after %d "
				    "attempts in %lld s (reconnect.max_wait): "
				    "%s",
				    p->sink->prefix, w->id, attempt,
				    (long long) (waited / 1000),
				    plugerr_msg(p->sink));
				if (attempt > 0)
					atomic_fetch_sub(&p->j->reconnecting,
					                 1);
				free(marks);
				return SYNCD_FATAL;
			}
			if (attempt++ == 0)
				atomic_fetch_add(&p->j->reconnecting, 1);
			metrics_add("reconnects_total", "side=\"sink\"", 1);
			if (wait > budget - waited)
				wait = budget - waited;
			log_warning("%s worker %d: %s; reconnecting in %.1f s "
			            "(attempt %d)",
			            p->sink->prefix, w->id,
			            plugerr_msg(p->sink),
			            (double) wait / 1000.0, attempt);
			worker_close(w);
			for (int64_t t = 0; t < wait && !job_failed(p->j);
			     t += 100)
				usleep(100000);
			waited += wait;
		}
		st = worker_open(w);
		if (st == SYNCD_FATAL)
			break;
	}
	free(marks); /* a failed batch's are not recorded: marks are hints */
	if (attempt > 0)
		atomic_fetch_sub(&p->j->reconnecting, 1);
	if (st == SYNCD_OK && attempt > 0)
		log_info("%s worker %d: reconnected after %d attempt(s) in "
		         "%lld s; the batch is written",
		         p->sink->prefix, w->id, attempt,
		         (long long) (waited / 1000));
	if (st == SYNCD_REJECT) {
		job_fail(p->j,
		         "%s worker %d: the sink refused a whole batch; a sink "
		         "reports refused rows one by one through the host's "
		         "reject()",
		         p->sink->prefix, w->id);
		return SYNCD_FATAL;
	}
	if (st != SYNCD_OK) {
		if (!job_failed(p->j))
			job_fail(p->j, "%s worker %d: %s", p->sink->prefix,
			         w->id, plugerr_msg(p->sink));
		return SYNCD_FATAL;
	}
	/* dirty rows archived with this batch are durable before the batch's
	 * progress is confirmed */
	if (dirty_count(p->j, w->id) != dirty_before)
		w->dirty_seen = true;
	if (w->dirty_seen && dirty_flush(p->j) != SYNCD_OK)
		return SYNCD_FATAL;
	for (size_t i = 0; i < np; i++) {
		w->recorded[prog[i].stream] = prog[i].lsn;
		ckpt_record(p->ckpt, w->id, prog[i].stream, prog[i].lsn);
	}
	if (log_enabled(SYNCD_LEVEL_DEBUG))
		log_debug(
		    "%s worker %d: wrote %zu changes in %zu events, progress "
		    "of %zu stream(s) up to " SYNCD_LSN_FMT,
		    p->sink->prefix, w->id, w->nchanges, w->nitems, np,
		    SYNCD_LSN_ARGS(np ? prog[np - 1].lsn : 0));
	w->recorded_ms = now_ms();
	worker_count_batch(w, (double) (w->recorded_ms - started) / 1000.0);
	worker_reset(w);
	return SYNCD_OK;
}

/* Puts the BEGIN of ev's transaction into the batch. */
static void
worker_begin(worker *w, const syncd_event *ev)
{
	syncd_event begin = {.size = sizeof begin,
	                     .type = SYNCD_EV_BEGIN,
	                     .lsn = ev->lsn,
	                     .commit_time = ev->commit_time,
	                     .xid = ev->xid,
	                     .stream = ev->stream};
	worker_add(w, item_small(ITEM_EVENT, &begin));
	w->begun[ev->stream] = true;
}

static bool
worker_has_rel(worker *w, const syncd_relation *r, bool *other_version)
{
	*other_version = false;
	for (size_t i = 0; i < w->nrels; i++) {
		if (w->rels[i] == r)
			return true;
		if (w->rels[i]->id == r->id)
			*other_version = true;
	}
	return false;
}

/* Adds one change (or TRUNCATE) to the batch, with the BEGIN and RELATION
 * events it needs. */
static syncd_status
worker_take_event(worker *w, item *it)
{
	workers *p = w->p;
	uint32_t s = it->ev.stream;
	const syncd_relation *const *rels =
	    it->ev.type == SYNCD_EV_TRUNCATE ? it->ev.rels : &it->ev.rel;
	uint32_t nrels = it->ev.type == SYNCD_EV_TRUNCATE ? it->ev.nrels : 1;

	if (worker_learn_stream(w, s) != SYNCD_OK) {
		free(it);
		return SYNCD_FATAL;
	}
	if (it->ev.lsn <= w->skip[s]) {
		if (log_enabled(SYNCD_LEVEL_DEBUG))
			log_debug(
			    "%s worker %d: skipping a change at " SYNCD_LSN_FMT
			    ", applied before",
			    p->sink->prefix, w->id, SYNCD_LSN_ARGS(it->ev.lsn));
		free(it);
		return SYNCD_OK;
	}
	/* a table changed shape: what was batched for the old shape goes first
	 */
	for (uint32_t i = 0; i < nrels; i++) {
		const syncd_relation *r = rels[i];
		bool other;
		if (!worker_has_rel(w, r, &other) && other &&
		    worker_flush(w, false) != SYNCD_OK) {
			free(it);
			return SYNCD_FATAL;
		}
	}
	if (w->txn[s] != it->ev.lsn) {
		w->txn[s] = it->ev.lsn;
		w->begun[s] = false;
	}
	if (!w->begun[s])
		worker_begin(w, &it->ev);
	for (uint32_t i = 0; i < nrels; i++) {
		const syncd_relation *r = rels[i];
		bool other;
		if (!worker_has_rel(w, r, &other)) {
			syncd_event rev = {.size = sizeof rev,
			                   .type = SYNCD_EV_RELATION,
			                   .lsn = it->ev.lsn,
			                   .commit_time = it->ev.commit_time,
			                   .xid = it->ev.xid,
			                   .stream = s,
			                   .rel = r};
			worker_add(w, item_small(ITEM_EVENT, &rev));
			if (w->nrels == w->relcap) {
				w->relcap = w->relcap ? w->relcap * 2 : 16;
				w->rels = xrealloc(w->rels,
				                   w->relcap * sizeof *w->rels);
			}
			w->rels[w->nrels++] = r;
		}
	}
	if (w->nchanges == 0)
		w->first_ms = now_ms();
	worker_add(w, it);
	w->nchanges++;
	w->bytes += it->bytes;
	if ((int64_t) w->nchanges >= p->max_rows ||
	    (int64_t) w->bytes >= p->max_bytes)
		return worker_flush(w, false);
	return SYNCD_OK;
}

static syncd_status
worker_take_commit(worker *w, item *it)
{
	uint32_t s = it->ev.stream;
	syncd_lsn lsn = it->ev.lsn;

	if (worker_learn_stream(w, s) != SYNCD_OK) {
		free(it);
		return SYNCD_FATAL;
	}
	if (lsn <= w->skip[s]) {
		free(it);
		return SYNCD_OK;
	}
	if (w->txn[s] == lsn) {
		if (!w->begun[s])
			worker_begin(w, &it->ev);
		it->ev.type = SYNCD_EV_COMMIT;
		worker_add(w, it);
		w->txn[s] = 0;
		w->begun[s] = false;
	} else
		free(it);
	if (lsn > w->pending[s])
		w->pending[s] = lsn;
	return SYNCD_OK;
}

static void
worker_fence_ack(workers *p)
{
	pthread_mutex_lock(&p->fence_lock);
	p->fence_pending--;
	pthread_cond_broadcast(&p->fence_cond);
	pthread_mutex_unlock(&p->fence_lock);
}

static void *
worker_main(void *arg)
{
	worker *w = arg;
	workers *p = w->p;
	bool running = true, took = false;

	thread_name("syncd-worker%d", w->id);
	if (worker_open(w) != SYNCD_OK) {
		job_fail(p->j, "%s worker %d: could not open: %s",
		         p->sink->prefix, w->id, plugerr_msg(p->sink));
		running = false;
	}
	w->recorded_ms = now_ms();
	while (running && !job_failed(p->j)) {
		int64_t deadline = 0, now = now_ms(); /* 0: no timer */
		bool progress_moved = false;
		item *it;

		for (uint32_t s = 0; s < SYNCD_MAX_STREAMS && !progress_moved;
		     s++)
			progress_moved = w->pending[s] > w->recorded[s];
		if (w->nchanges > 0)
			deadline = w->first_ms + p->interval_ms;
		else if (progress_moved)
			deadline = w->recorded_ms + p->interval_ms;
		if (deadline && deadline <= now) {
			/* what queued while the worker slept belongs to this
			 * batch: take it first (once), then flush */
			if (!took && !w->q.taken) {
				queue_take_now(&w->q);
				took = true;
			}
			if (!w->q.taken) {
				took = false;
				if (worker_flush(w, false) != SYNCD_OK)
					break;
				continue;
			}
		} else
			took = false;
		/* the wait is at least 1 ms: -1 would mean forever */
		it = queue_pop(&w->q, !deadline        ? -1
		                      : deadline > now ? deadline - now
		                                       : 0);
		if (!it)
			continue; /* timeout or failure: the loop decides */
		switch (it->kind) {
		case ITEM_EVENT:
			if (worker_take_event(w, it) != SYNCD_OK)
				running = false;
			break;
		case ITEM_COMMIT:
			if (worker_take_commit(w, it) != SYNCD_OK)
				running = false;
			break;
		case ITEM_FENCE:
			free(it);
			if (worker_flush(w, true) != SYNCD_OK)
				running = false;
			worker_fence_ack(p);
			break;
		case ITEM_LEARN:
			if (worker_learn_stream(w, it->ev.stream) != SYNCD_OK)
				running = false;
			free(it);
			worker_fence_ack(p);
			break;
		case ITEM_STOP:
			free(it);
			running = false;
			break;
		}
	}
	worker_reset(w);
	worker_close(w);
	plugerr_clear();
	return NULL;
}

/* ---- the pool ------------------------------------------------------------ */

workers *
workers_new(job *j)
{
	workers *p = xcalloc(1, sizeof *p);
	const optset *so = &j->sink->opts;
	size_t queue_bytes, queue_count;

	p->j = j;
	p->sink = j->sink;
	p->n = j->nworkers;
	p->max_rows = optset_num(so, "batch.max_rows");
	p->max_bytes = optset_num(so, "sink.buffer-flush.max-size");
	p->interval_ms = optset_num(so, "batch.interval");
	p->reconnect_ms = optset_num(&j->job_opts, "reconnect.max_wait");
	/* Queues hold at most a quarter of the batch budget in all, so that
	 * batches plus queues stay within about 2 x sink.buffer-flush.max-size
	 * (DESIGN §6). */
	queue_bytes = (size_t) (p->max_bytes / 4 / p->n);
	if (queue_bytes < 1024 * 1024)
		queue_bytes = 1024 * 1024;
	/* While a worker writes a batch, the source reads on into its
	 * queue: room for a whole next batch (commit markers included: one
	 * per transaction, so twice the changes of one-row transactions), or
	 * the source stalls, and then the walsender, until the write is
	 * over. */
	queue_count = (size_t) p->max_rows * 3;
	if (queue_count < 65536)
		queue_count = 65536;
	p->ckpt = ckpt_new(p->n);
	pthread_mutex_init(&p->fence_lock, NULL);
	pthread_mutex_init(&p->marks_lock, NULL);
	pthread_cond_init(&p->fence_cond, NULL);
	p->w = xcalloc((size_t) p->n, sizeof *p->w);
	for (int i = 0; i < p->n; i++) {
		p->w[i].p = p;
		p->w[i].id = i;
		queue_init(&p->w[i].q, queue_count, queue_bytes, &j->failed);
	}
	return p;
}

/* Queue depths for the monitor, read at each scrape. */
static void
workers_collect(void *ctx)
{
	workers *p = ctx;

	for (int i = 0; i < p->n; i++) {
		queue *q = &p->w[i].q;
		char id[16], *labels;
		size_t count, bytes;
		pthread_mutex_lock(&q->lock);
		count = q->count;
		bytes = q->bytes;
		pthread_mutex_unlock(&q->lock);
		snprintf(id, sizeof id, "%d", i);
		labels = metrics_labels("worker", id, NULL);
		metrics_set("queue_items", labels, (double) count);
		metrics_set("queue_bytes", labels, (double) bytes);
		free(labels);
	}
}

syncd_status
workers_start(workers *p)
{
	metrics_collector_add(workers_collect, p);
	for (int i = 0; i < p->n; i++) {
		if (pthread_create(&p->w[i].thread, NULL, worker_main,
		                   &p->w[i]) != 0) {
			job_fail(p->j, "could not start worker thread %d", i);
			return SYNCD_FATAL;
		}
		p->w[i].started = true;
	}
	return SYNCD_OK;
}

void
workers_stop(workers *p)
{
	for (int i = 0; i < p->n; i++)
		if (p->w[i].started)
			queue_push(&p->w[i].q, item_small(ITEM_STOP, NULL));
	for (int i = 0; i < p->n; i++)
		if (p->w[i].started) {
			pthread_join(p->w[i].thread, NULL);
			p->w[i].started = false;
		}
}

void
workers_free(workers *p)
{
	if (!p)
		return;
	metrics_collector_remove(workers_collect, p);
	for (int i = 0; i < p->n; i++) {
		worker_reset(&p->w[i]);
		free(p->w[i].items);
		free(p->w[i].evs);
		free(p->w[i].rels);
		queue_destroy(&p->w[i].q);
	}
	free(p->w);
	ckpt_free(p->ckpt);
	pthread_mutex_destroy(&p->fence_lock);
	pthread_mutex_destroy(&p->marks_lock);
	free(p->marks);
	pthread_cond_destroy(&p->fence_cond);
	free(p);
}

int
workers_count(const workers *p)
{
	return p->n;
}

syncd_status
workers_push(workers *p, int i, item *it)
{
	return queue_push(&p->w[i].q, it);
}

/* Sends kind to the workers from..to and waits for their answers. */
static syncd_status
workers_ask(workers *p, int from, int to, item_kind kind, uint32_t stream)
{
	syncd_event ev = {.size = sizeof ev, .stream = stream};

	pthread_mutex_lock(&p->fence_lock);
	p->fence_pending += to - from;
	pthread_mutex_unlock(&p->fence_lock);
	for (int i = from; i < to; i++)
		queue_push(&p->w[i].q, item_small(kind, &ev));
	pthread_mutex_lock(&p->fence_lock);
	while (p->fence_pending > 0 && !job_failed(p->j))
		pthread_cond_wait(&p->fence_cond, &p->fence_lock);
	pthread_mutex_unlock(&p->fence_lock);
	return job_failed(p->j) ? SYNCD_FATAL : SYNCD_OK;
}

syncd_status
workers_fence(workers *p, int only)
{
	return workers_ask(p, only >= 0 ? only : 0, only >= 0 ? only + 1 : p->n,
	                   ITEM_FENCE, 0);
}

syncd_status
workers_learn(workers *p, uint32_t stream, syncd_lsn *lsn)
{
	*lsn = 0;
	if (stream >= SYNCD_MAX_STREAMS ||
	    workers_ask(p, 0, p->n, ITEM_LEARN, stream) != SYNCD_OK)
		return SYNCD_FATAL;
	/* the workers have answered: their skip thresholds are set */
	for (int i = 0; i < p->n; i++)
		if (i == 0 || p->w[i].skip[stream] < *lsn)
			*lsn = p->w[i].skip[stream];
	return SYNCD_OK;
}

/* At most this many marks wait (a sink that writes nothing for long):
 * later ones are left out, marks being hints of where to go back to. */
#define WORKERS_MAX_MARKS 4096

void
workers_mark(workers *p, const syncd_time_mark *m, int64_t before)
{
	pthread_mutex_lock(&p->marks_lock);
	if (p->nmarks < WORKERS_MAX_MARKS) {
		if (p->nmarks == p->capmarks) {
			p->capmarks = p->capmarks ? p->capmarks * 2 : 16;
			p->marks = xrealloc(p->marks,
			                    p->capmarks * sizeof *p->marks);
		}
		p->marks[p->nmarks++] = *m;
	}
	if (before > p->marks_before)
		p->marks_before = before;
	pthread_mutex_unlock(&p->marks_lock);
}

syncd_lsn
workers_flushed(workers *p, uint32_t stream)
{
	return ckpt_flushed(p->ckpt, stream);
}

void
workers_wake(workers *p)
{
	for (int i = 0; i < p->n; i++)
		queue_wake(&p->w[i].q);
	pthread_mutex_lock(&p->fence_lock);
	pthread_cond_broadcast(&p->fence_cond);
	pthread_mutex_unlock(&p->fence_lock);
}
