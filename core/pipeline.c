/*
 * core/pipeline.c - see pipeline.h.
 *
 * Threads: sources call pipeline_emit(); the transform chain, the router
 * and the partitioner run there, under one lock, and hand copies of the
 * events to the workers' bounded queues (a full queue blocks the source:
 * backpressure, bounded memory). Each worker thread batches what it gets
 * and writes batches to its own sink worker.
 *
 * Ordering and progress:
 *  - a table (keyby table), or a key (keyby pk), always goes to the same
 *    worker, and each worker applies in queue order, so per-key order holds;
 *  - every COMMIT is broadcast to every worker as a marker; a worker's
 *    progress for a stream is the last marker it has seen, recorded in the
 *    checkpoint only after the batch holding everything before it is
 *    durable (written in the same destination transaction by the sink);
 *  - what may be confirmed is the minimum over workers (checkpoint.h);
 *  - events that must be ordered across workers (TRUNCATE with keyby pk,
 *    a truncate of tables on different workers, a primary-key change that
 *    moves a row between workers) are fenced: every worker flushes first,
 *    the event is applied alone, then the stream goes on.
 */
#include "config.h"

#include "pipeline.h"
#include "checkpoint.h"
#include "job.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- interned relations ----------------------------------------------- */

#define PIPE_REL_BUCKETS 1024

typedef struct pipe_rel {
	struct pipe_rel *next_all;    /* every version, freed at the end */
	struct pipe_rel *next_bucket; /* current versions by id */
	syncd_relation rel;
} pipe_rel;

/* ---- queue items ------------------------------------------------------ */

typedef enum item_kind {
	ITEM_EVENT,  /* a change or TRUNCATE */
	ITEM_COMMIT, /* commit marker, broadcast */
	ITEM_FENCE,  /* flush, write progress, acknowledge */
	ITEM_LEARN,  /* learn a stream's stored progress, acknowledge */
	ITEM_STOP    /* leave the worker loop */
} item_kind;

typedef struct item {
	struct item *next;
	item_kind kind;
	size_t bytes;   /* what it weighs in the queue */
	syncd_event ev; /* values and relation arrays follow the struct */
} item;

/* One producer (the source's thread), one consumer (a worker). The
 * consumer takes everything queued at once into its private list, and is
 * woken only when it waits without a timer, when enough has queued, when
 * the queue is full, or for a control item: handing items over one by one,
 * with a wake-up each, cost more than the rest of the pipeline. */
typedef struct queue {
	pthread_mutex_t lock;
	pthread_cond_t nonempty;
	pthread_cond_t nonfull;
	item *head, *tail;
	size_t count, bytes;
	int waiting; /* consumer: 0 busy, 1 timed wait, 2 untimed wait */
	item *taken; /* consumer's private list, taken from head..tail */
} queue;

#define QUEUE_WAKE_COUNT 64
#define QUEUE_WAKE_BYTES (256 * 1024)

typedef struct worker {
	pipeline *p;
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
	int64_t first_ms;      /* when the batch got its first change */
	int64_t recorded_ms;   /* when progress was last written */
	const pipe_rel **rels; /* relations announced in this batch */
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

struct pipeline {
	job *j;
	const syncd_host *host;
	syncd_instance *sink;
	int n;
	worker *w;
	checkpoint *ckpt;

	/* settings */
	int64_t max_rows, max_bytes, interval_ms;
	size_t queue_max_bytes, queue_max_count;
	bool keyby_pk, truncate_ignore, case_sensitive;

	/* dispatch state, under emit_lock */
	pthread_mutex_t emit_lock;
	pipe_rel *buckets[PIPE_REL_BUCKETS];
	pipe_rel *all;
	struct {
		syncd_lsn lsn;
		int64_t commit_time;
		uint32_t xid;
	} cur[SYNCD_MAX_STREAMS];

	/* fences */
	pthread_mutex_t fence_lock;
	pthread_cond_t fence_cond;
	int fence_pending;
};

/* ---- helpers ------------------------------------------------------------ */

static uint64_t
pipe_hash(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;
	if (!h)
		h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static bool
pipe_failed(pipeline *p)
{
	return atomic_load(&p->j->failed);
}

/* "(a, b)=(1, x)" for the key columns, or every column, of a change. */
static char *
pipe_values_text(const syncd_event *ev, bool keys_only)
{
	const syncd_relation *rel = ev->rel;
	const syncd_value *vals =
	    ev->type == SYNCD_EV_DELETE ? ev->old_values : ev->new_values;
	strbuf names = {0}, values = {0};
	bool any = false;

	if (!rel || !vals)
		return xstrdup("(no key)");
	for (uint32_t i = 0; i < rel->ncolumns; i++) {
		if (keys_only && !(rel->columns[i].flags & SYNCD_COL_KEY))
			continue;
		if (any) {
			sb_puts(&names, ", ");
			sb_puts(&values, ", ");
		}
		any = true;
		sb_puts(&names, rel->columns[i].name);
		if (vals[i].kind == SYNCD_VALUE_NULL)
			sb_puts(&values, "NULL");
		else if (vals[i].kind == SYNCD_VALUE_UNCHANGED)
			sb_puts(&values, "(unchanged)");
		else if (vals[i].len > 64) {
			sb_append(&values, vals[i].data, 64);
			sb_puts(&values, "...");
		} else
			sb_append(&values, vals[i].data, vals[i].len);
	}
	if (!any) {
		sb_free(&names);
		sb_free(&values);
		return xstrdup("(no key)");
	}
	{
		char *n = sb_steal(&names), *v = sb_steal(&values);
		char *s = xasprintf("(%s)=(%s)", n, v);
		free(n);
		free(v);
		return s;
	}
}

char *
pipeline_key_text(const syncd_event *ev)
{
	return pipe_values_text(ev, true);
}

char *
pipeline_row_text(const syncd_event *ev)
{
	/* a DELETE carries its key (or an old row of no further interest) */
	return pipe_values_text(ev, ev->type == SYNCD_EV_DELETE);
}

/* ---- router: relations and target names ------------------------------ */

static void
pipe_fold(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char) (*s - 'A' + 'a');
}

char *
pipeline_target_name(const char *pattern, const syncd_relation *rel, bool fold)
{
	static const struct {
		const char *var;
		size_t off;
	} vars[] = {
	    {"#{source_db_name}", offsetof(syncd_relation, database)},
	    {"#{source_schema_name}", offsetof(syncd_relation, schema)},
	    {"#{source_table_name}", offsetof(syncd_relation, table)},
	};
	strbuf sb = {0};
	char *s;

	for (const char *c = pattern; *c;) {
		bool done = false;
		for (size_t v = 0; v < 3 && !done; v++) {
			size_t n = strlen(vars[v].var);
			if (strncmp(c, vars[v].var, n) == 0) {
				const char *val =
				    *(const char *const *) ((const char *) rel +
				                            vars[v].off);
				sb_puts(&sb, val ? val : "");
				c += n;
				done = true;
			}
		}
		if (!done) {
			sb_append(&sb, c, 1);
			c++;
		}
	}
	s = sb_steal(&sb);
	if (fold)
		pipe_fold(s);
	return s;
}

static const pipe_rel *
pipe_rel_find(pipeline *p, uint64_t id)
{
	for (pipe_rel *r = p->buckets[id % PIPE_REL_BUCKETS]; r;
	     r = r->next_bucket)
		if (r->rel.id == id)
			return r;
	return NULL;
}

/* Deep copy of a relation, with target names, as the current version. */
static const pipe_rel *
pipe_rel_intern(pipeline *p, const syncd_relation *src)
{
	pipe_rel *r = xcalloc(1, sizeof *r);
	syncd_column *cols =
	    xcalloc(src->ncolumns ? src->ncolumns : 1, sizeof *cols);
	pipe_rel **b = &p->buckets[src->id % PIPE_REL_BUCKETS];
	bool fold = !p->case_sensitive;

	r->rel.id = src->id;
	r->rel.database = xstrdup(src->database ? src->database : "");
	r->rel.schema = xstrdup(src->schema ? src->schema : "");
	r->rel.table = xstrdup(src->table ? src->table : "");
	r->rel.replica_identity = src->replica_identity;
	r->rel.source_host =
	    src->source_host ? xstrdup(src->source_host) : NULL;
	r->rel.ncolumns = src->ncolumns;
	for (uint32_t i = 0; i < src->ncolumns; i++) {
		char *name =
		    xstrdup(src->columns[i].name ? src->columns[i].name : "");
		if (fold)
			pipe_fold(name);
		cols[i] = src->columns[i];
		cols[i].name = name;
		cols[i].type_name = src->columns[i].type_name
		                        ? xstrdup(src->columns[i].type_name)
		                        : NULL;
		/* only list_tables relations (and table creation) carry
		 * these */
		cols[i].base_type_name = NULL;
		cols[i].comment = NULL;
		cols[i].default_value = NULL;
	}
	r->rel.columns = cols;
	job_target(p->j, &r->rel, (char **) &r->rel.target_schema,
	           (char **) &r->rel.target_table);

	/* replace the current version of this id */
	for (pipe_rel **pp = b; *pp; pp = &(*pp)->next_bucket)
		if ((*pp)->rel.id == src->id) {
			*pp = (*pp)->next_bucket;
			break;
		}
	r->next_bucket = *b;
	*b = r;
	r->next_all = p->all;
	p->all = r;
	return r;
}

static void
pipe_rel_free_all(pipeline *p)
{
	pipe_rel *r = p->all, *next;
	for (; r; r = next) {
		next = r->next_all;
		for (uint32_t i = 0; i < r->rel.ncolumns; i++) {
			free((char *) r->rel.columns[i].name);
			free((char *) r->rel.columns[i].type_name);
		}
		free((syncd_column *) r->rel.columns);
		free((char *) r->rel.database);
		free((char *) r->rel.schema);
		free((char *) r->rel.table);
		free((char *) r->rel.source_host);
		free((char *) r->rel.target_schema);
		free((char *) r->rel.target_table);
		free(r);
	}
	p->all = NULL;
	memset(p->buckets, 0, sizeof p->buckets);
}

/* ---- items ------------------------------------------------------------- */

static size_t
pipe_values_size(const syncd_value *v, uint32_t n)
{
	size_t size = 0;
	if (!v)
		return 0;
	size = n * sizeof(syncd_value);
	for (uint32_t i = 0; i < n; i++)
		if (v[i].kind == SYNCD_VALUE_TEXT ||
		    v[i].kind == SYNCD_VALUE_BINARY)
			size += v[i].len + 1;
	return size;
}

static const syncd_value *
pipe_values_copy(char **cursor, const syncd_value *v, uint32_t n)
{
	syncd_value *out;
	char *data;

	if (!v)
		return NULL;
	out = (syncd_value *) *cursor;
	data = *cursor + n * sizeof(syncd_value);
	for (uint32_t i = 0; i < n; i++) {
		out[i].kind = v[i].kind;
		out[i].len = 0;
		out[i].data = NULL;
		if (v[i].kind == SYNCD_VALUE_TEXT ||
		    v[i].kind == SYNCD_VALUE_BINARY) {
			if (v[i].len)
				memcpy(data, v[i].data, v[i].len);
			data[v[i].len] = '\0';
			out[i].data = data;
			out[i].len = v[i].len;
			data += v[i].len + 1;
		}
	}
	*cursor = data;
	return out;
}

/* A copy of a change (or TRUNCATE) pointing to the interned relations. */
static item *
pipe_item_event(const syncd_event *ev, const pipe_rel *rel,
                const pipe_rel *const *rels)
{
	uint32_t n = rel ? rel->rel.ncolumns : 0;
	/* each value array is realigned to 16 bytes: room for that too */
	size_t vsize = pipe_values_size(ev->old_values, n) +
	               pipe_values_size(ev->new_values, n) + 32;
	size_t rsize = ev->type == SYNCD_EV_TRUNCATE
	                   ? ev->nrels * sizeof(syncd_relation *)
	                   : 0;
	/* keep the trailing storage aligned for the value arrays */
	size_t head = (sizeof(item) + 15) & ~(size_t) 15;
	item *it = xmalloc(head + rsize + vsize);
	char *cursor = (char *) it + head;

	memset(it, 0, sizeof *it);
	it->kind = ITEM_EVENT;
	it->ev = *ev;
	it->ev.rel = rel ? &rel->rel : NULL;
	it->bytes = head + rsize + vsize;
	if (ev->type == SYNCD_EV_TRUNCATE) {
		const syncd_relation **r = (const syncd_relation **) cursor;
		for (uint32_t i = 0; i < ev->nrels; i++)
			r[i] = &rels[i]->rel;
		it->ev.rels = r;
		cursor += rsize;
		it->ev.old_values = it->ev.new_values = NULL;
	} else {
		it->ev.rels = NULL;
		it->ev.nrels = 0;
		/* values are arrays of syncd_value followed by their bytes;
		 * align each array */
		it->ev.old_values =
		    pipe_values_copy(&cursor, ev->old_values, n);
		cursor = (char *) (((uintptr_t) cursor + 15) & ~(uintptr_t) 15);
		it->ev.new_values =
		    pipe_values_copy(&cursor, ev->new_values, n);
		cursor = (char *) (((uintptr_t) cursor + 15) & ~(uintptr_t) 15);
	}
	return it;
}

static item *
pipe_item_small(item_kind kind, const syncd_event *ev)
{
	item *it = xcalloc(1, sizeof *it);
	it->kind = kind;
	it->bytes = sizeof *it;
	if (ev)
		it->ev = *ev;
	return it;
}

/* ---- queues ------------------------------------------------------------ */

static void
queue_init(queue *q)
{
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->nonempty, NULL);
	pthread_cond_init(&q->nonfull, NULL);
}

static void
queue_destroy(queue *q)
{
	item *it = q->head, *next;
	for (; it; it = next) {
		next = it->next;
		free(it);
	}
	for (it = q->taken; it; it = next) {
		next = it->next;
		free(it);
	}
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->nonempty);
	pthread_cond_destroy(&q->nonfull);
}

/* Blocks while the queue is full; control items always get in. */
static syncd_status
queue_push(pipeline *p, queue *q, item *it)
{
	bool control = it->kind == ITEM_FENCE || it->kind == ITEM_LEARN ||
	               it->kind == ITEM_STOP;

	pthread_mutex_lock(&q->lock);
	while (!control && q->count > 0 &&
	       (q->count >= p->queue_max_count ||
	        q->bytes + it->bytes > p->queue_max_bytes) &&
	       !pipe_failed(p)) {
		/* full: the consumer must take what is there */
		pthread_cond_signal(&q->nonempty);
		pthread_cond_wait(&q->nonfull, &q->lock);
	}
	if (!control && pipe_failed(p)) {
		pthread_mutex_unlock(&q->lock);
		free(it);
		return SYNCD_FATAL;
	}
	it->next = NULL;
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->count++;
	q->bytes += it->bytes;
	if (q->waiting &&
	    (control || q->waiting == 2 || q->count >= QUEUE_WAKE_COUNT ||
	     q->bytes >= QUEUE_WAKE_BYTES || q->count >= p->queue_max_count))
		pthread_cond_signal(&q->nonempty);
	pthread_mutex_unlock(&q->lock);
	return SYNCD_OK;
}

/* The next item: from the consumer's private list, else everything queued
 * is taken at once, waiting up to timeout_ms (-1: forever) for something;
 * NULL on timeout. A timed wait may return what queued meanwhile. */
static item *
queue_pop(pipeline *p, queue *q, int64_t timeout_ms)
{
	item *it;
	struct timespec until;

	if (!q->taken) {
		pthread_mutex_lock(&q->lock);
		if (timeout_ms >= 0) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += timeout_ms / 1000;
			until.tv_nsec += (timeout_ms % 1000) * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
		}
		while (!q->head && !pipe_failed(p)) {
			q->waiting = timeout_ms < 0 ? 2 : 1;
			if (timeout_ms < 0)
				pthread_cond_wait(&q->nonempty, &q->lock);
			else if (pthread_cond_timedwait(&q->nonempty, &q->lock,
			                                &until) == ETIMEDOUT)
				break;
		}
		q->waiting = 0;
		if (q->head) {
			q->taken = q->head;
			q->head = q->tail = NULL;
			q->count = 0;
			q->bytes = 0;
			pthread_cond_signal(&q->nonfull);
		}
		pthread_mutex_unlock(&q->lock);
	}
	it = q->taken;
	if (it)
		q->taken = it->next;
	return it;
}

/* Takes what is queued now into the consumer's private list, without
 * waiting. */
static void
queue_take_now(queue *q)
{
	item **end = &q->taken;

	while (*end)
		end = &(*end)->next;
	pthread_mutex_lock(&q->lock);
	if (q->head) {
		*end = q->head;
		q->head = q->tail = NULL;
		q->count = 0;
		q->bytes = 0;
		pthread_cond_signal(&q->nonfull);
	}
	pthread_mutex_unlock(&q->lock);
}

/* ---- workers ------------------------------------------------------------ */

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
	pipeline *p = w->p;
	syncd_instance *sink = p->sink;
	syncd_status st;

	st = sink->plugin->ops.sink.open(sink->state, w->id, &w->wstate);
	if (st == SYNCD_OK)
		w->open = true;
	return st;
}

static void
worker_close(worker *w)
{
	pipeline *p = w->p;
	if (w->open)
		p->sink->plugin->ops.sink.close(w->wstate);
	w->open = false;
	w->wstate = NULL;
}

/* Asks the sink, once per stream, what it had applied before a restart. */
static syncd_status
worker_learn_stream(worker *w, uint32_t s)
{
	pipeline *p = w->p;
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
			    p->sink->prefix, w->id, host_error(p->sink));
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

/* Writes the batch (and the progress that moved) with the sink; retries a
 * lost connection with backoff. force: write progress even if it did not
 * move (a fence or drain). */
static syncd_status
worker_flush(worker *w, bool force)
{
	pipeline *p = w->p;
	syncd_progress prog[SYNCD_MAX_STREAMS];
	syncd_batch b;
	size_t np = 0;
	syncd_status st;
	int attempt = 0;
	int64_t budget = optset_num(&p->j->job_opts, "reconnect.max_wait");
	int64_t waited = 0;
	long dirty_before;

	for (uint32_t s = 0; s < SYNCD_MAX_STREAMS; s++)
		if (w->pending[s] > w->recorded[s] ||
		    (force && w->known[s] && w->pending[s]))
			prog[np++] = (syncd_progress){s, w->pending[s]};
	if (w->nchanges == 0 && np == 0) {
		worker_reset(w);
		return SYNCD_OK;
	}

	memset(&b, 0, sizeof b);
	b.worker = w->id;
	b.nprogress = np;
	b.progress = prog;
	b.nevents = w->nitems;
	b.events = (const syncd_event *const *) w->evs;
	b.nchanges = w->nchanges;
	b.bytes = w->bytes;

	pthread_mutex_lock(&p->j->dirty_lock);
	dirty_before = p->j->dirty_count[w->id];
	pthread_mutex_unlock(&p->j->dirty_lock);
	for (;;) {
		/* a reopen that failed with RETRY left no worker to write
		 * with: that counts as one more failed attempt */
		st = w->open ? p->sink->plugin->ops.sink.write(w->wstate, &b)
		             : SYNCD_RETRY;
		if (st != SYNCD_RETRY || pipe_failed(p))
			break;
		/* exponential backoff within reconnect.max_wait */
		{
			int64_t wait = 1000LL << (attempt < 16 ? attempt : 16);
			attempt++;
			if (waited >= budget) {
				job_fail(
				    p->j,
				    "%s worker %d: gave up after %d "
				    "attempts in %lld s (reconnect.max_wait): "
				    "%s",
				    p->sink->prefix, w->id, attempt,
				    (long long) (waited / 1000),
				    host_error(p->sink));
				return SYNCD_FATAL;
			}
			if (wait > budget - waited)
				wait = budget - waited;
			log_warning("%s worker %d: %s; reconnecting in %.1f s "
			            "(attempt %d)",
			            p->sink->prefix, w->id, host_error(p->sink),
			            (double) wait / 1000.0, attempt);
			worker_close(w);
			for (int64_t t = 0; t < wait && !pipe_failed(p);
			     t += 100)
				usleep(100000);
			waited += wait;
		}
		st = worker_open(w);
		if (st == SYNCD_FATAL)
			break;
	}
	if (st == SYNCD_REJECT) {
		job_fail(p->j,
		         "%s worker %d: the sink refused a whole batch; a sink "
		         "reports refused rows one by one through the host's "
		         "reject()",
		         p->sink->prefix, w->id);
		return SYNCD_FATAL;
	}
	if (st != SYNCD_OK) {
		if (!pipe_failed(p))
			job_fail(p->j, "%s worker %d: %s", p->sink->prefix,
			         w->id, host_error(p->sink));
		return SYNCD_FATAL;
	}
	/* dirty rows archived with this batch are durable before the batch's
	 * progress is confirmed */
	pthread_mutex_lock(&p->j->dirty_lock);
	if (p->j->dirty_count[w->id] != dirty_before)
		w->dirty_seen = true;
	pthread_mutex_unlock(&p->j->dirty_lock);
	if (w->dirty_seen && p->j->archiver &&
	    p->j->archiver->plugin->ops.archiver.flush) {
		syncd_instance *a = p->j->archiver;
		if (a->plugin->ops.archiver.flush(a->state) != SYNCD_OK) {
			job_fail(p->j,
			         "%s: could not make dirty data durable: %s",
			         a->prefix, host_error(a));
			return SYNCD_FATAL;
		}
	}
	for (size_t i = 0; i < np; i++) {
		w->recorded[prog[i].stream] = prog[i].lsn;
		ckpt_record(p->ckpt, w->id, prog[i].stream, prog[i].lsn);
	}
	if (log_enabled(SYNCD_LOG_DEBUG))
		log_debug(
		    "%s worker %d: wrote %zu changes in %zu events, progress "
		    "of %zu stream(s) up to " SYNCD_LSN_FMT,
		    p->sink->prefix, w->id, w->nchanges, w->nitems, np,
		    SYNCD_LSN_ARGS(np ? prog[np - 1].lsn : 0));
	w->recorded_ms = now_ms();
	worker_reset(w);
	return SYNCD_OK;
}

/* Puts the BEGIN of ev's transaction into the batch. */
static void
worker_begin(worker *w, const syncd_event *ev)
{
	syncd_event begin = {.type = SYNCD_EV_BEGIN,
	                     .lsn = ev->lsn,
	                     .commit_time = ev->commit_time,
	                     .xid = ev->xid,
	                     .stream = ev->stream};
	worker_add(w, pipe_item_small(ITEM_EVENT, &begin));
	w->begun[ev->stream] = true;
}

static bool
worker_has_rel(worker *w, const pipe_rel *r, bool *other_version)
{
	*other_version = false;
	for (size_t i = 0; i < w->nrels; i++) {
		if (w->rels[i] == r)
			return true;
		if (w->rels[i]->rel.id == r->rel.id)
			*other_version = true;
	}
	return false;
}

/* Adds one change (or TRUNCATE) to the batch, with the BEGIN and RELATION
 * events it needs. */
static syncd_status
worker_take_event(worker *w, item *it)
{
	pipeline *p = w->p;
	uint32_t s = it->ev.stream;
	const syncd_relation *const *rels =
	    it->ev.type == SYNCD_EV_TRUNCATE ? it->ev.rels : &it->ev.rel;
	uint32_t nrels = it->ev.type == SYNCD_EV_TRUNCATE ? it->ev.nrels : 1;

	if (worker_learn_stream(w, s) != SYNCD_OK) {
		free(it);
		return SYNCD_FATAL;
	}
	if (it->ev.lsn <= w->skip[s]) {
		if (log_enabled(SYNCD_LOG_DEBUG))
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
		const pipe_rel *r =
		    (const pipe_rel *) ((const char *) rels[i] -
		                        offsetof(pipe_rel, rel));
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
		const pipe_rel *r =
		    (const pipe_rel *) ((const char *) rels[i] -
		                        offsetof(pipe_rel, rel));
		bool other;
		if (!worker_has_rel(w, r, &other)) {
			syncd_event rev = {.type = SYNCD_EV_RELATION,
			                   .lsn = it->ev.lsn,
			                   .commit_time = it->ev.commit_time,
			                   .xid = it->ev.xid,
			                   .stream = s,
			                   .rel = &r->rel};
			worker_add(w, pipe_item_small(ITEM_EVENT, &rev));
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
pipe_fence_ack(pipeline *p)
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
	pipeline *p = w->p;
	bool running = true, took = false;

	if (worker_open(w) != SYNCD_OK) {
		job_fail(p->j, "%s worker %d: could not open: %s",
		         p->sink->prefix, w->id, host_error(p->sink));
		running = false;
	}
	w->recorded_ms = now_ms();
	while (running && !pipe_failed(p)) {
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
		it = queue_pop(p, &w->q,
		               !deadline        ? -1
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
			pipe_fence_ack(p);
			break;
		case ITEM_LEARN:
			if (worker_learn_stream(w, it->ev.stream) != SYNCD_OK)
				running = false;
			free(it);
			pipe_fence_ack(p);
			break;
		case ITEM_STOP:
			free(it);
			running = false;
			break;
		}
	}
	worker_reset(w);
	worker_close(w);
	host_error_clear();
	return NULL;
}

/* ---- dispatch ------------------------------------------------------------ */

static int
pipe_route_table(pipeline *p, const syncd_relation *rel)
{
	uint64_t h = 0;
	if (p->n == 1)
		return 0;
	h = pipe_hash(h, rel->target_schema, strlen(rel->target_schema) + 1);
	h = pipe_hash(h, rel->target_table, strlen(rel->target_table));
	return (int) (h % (uint64_t) p->n);
}

static int
pipe_route_key(pipeline *p, const syncd_relation *rel, const syncd_value *v)
{
	uint64_t h = 0;
	bool any = false;

	if (p->n == 1)
		return 0;
	if (!p->keyby_pk || !v)
		return pipe_route_table(p, rel);
	h = pipe_hash(h, rel->target_schema, strlen(rel->target_schema) + 1);
	h = pipe_hash(h, rel->target_table, strlen(rel->target_table) + 1);
	for (uint32_t i = 0; i < rel->ncolumns; i++) {
		if (!(rel->columns[i].flags & SYNCD_COL_KEY))
			continue;
		any = true;
		h = pipe_hash(h, &v[i].kind, sizeof v[i].kind);
		if (v[i].kind == SYNCD_VALUE_TEXT ||
		    v[i].kind == SYNCD_VALUE_BINARY)
			h = pipe_hash(h, v[i].data, v[i].len);
	}
	if (!any)
		return pipe_route_table(p, rel);
	return (int) (h % (uint64_t) p->n);
}

/* Every worker flushes what it holds (force: and records its progress). */
static syncd_status
pipe_fence(pipeline *p, int only)
{
	int from = only >= 0 ? only : 0, to = only >= 0 ? only + 1 : p->n;

	pthread_mutex_lock(&p->fence_lock);
	p->fence_pending += to - from;
	pthread_mutex_unlock(&p->fence_lock);
	for (int i = from; i < to; i++)
		queue_push(p, &p->w[i].q, pipe_item_small(ITEM_FENCE, NULL));
	pthread_mutex_lock(&p->fence_lock);
	while (p->fence_pending > 0 && !pipe_failed(p))
		pthread_cond_wait(&p->fence_cond, &p->fence_lock);
	pthread_mutex_unlock(&p->fence_lock);
	return pipe_failed(p) ? SYNCD_FATAL : SYNCD_OK;
}

static syncd_status
pipe_dispatch_change(pipeline *p, const syncd_event *ev)
{
	const pipe_rel *rel = NULL;
	const pipe_rel **rels = NULL;
	item *it;
	int target;
	bool fenced = false;
	syncd_status st;

	if (ev->type == SYNCD_EV_TRUNCATE) {
		if (p->truncate_ignore) {
			log_info(
			    "ignoring TRUNCATE of %u table(s) at " SYNCD_LSN_FMT
			    " (sink.truncate.mode = ignore)",
			    ev->nrels, SYNCD_LSN_ARGS(ev->lsn));
			return SYNCD_OK;
		}
		if (ev->nrels == 0 || !ev->rels)
			return SYNCD_OK;
		if (p->j->nltables) {
			/* a shard's TRUNCATE would empty every shard's rows */
			const syncd_relation **keep =
			    xcalloc(ev->nrels, sizeof *keep);
			uint32_t n = 0;
			for (uint32_t i = 0; i < ev->nrels; i++) {
				const syncd_relation *r = ev->rels[i];
				const logical_table *lt =
				    r ? job_logical_table(p->j, r->database,
				                          r->table)
				      : NULL;
				if (!lt)
					keep[n++] = r;
				else
					log_warning(
					    "TRUNCATE of %s.%s.%s "
					    "at " SYNCD_LSN_FMT
					    " is not applied: its target holds "
					    "the rows of every shard of "
					    "logical "
					    "table %s; delete this shard's "
					    "rows "
					    "there if they must go",
					    r->database, r->schema, r->table,
					    SYNCD_LSN_ARGS(ev->lsn), lt->name);
			}
			if (n < ev->nrels) {
				syncd_event rest = *ev;
				rest.rels = keep;
				rest.nrels = n;
				rest.rel = n ? keep[0] : NULL;
				st = n ? pipe_dispatch_change(p, &rest)
				       : SYNCD_OK;
				free(keep);
				return st;
			}
			free(keep);
		}
		rels = xcalloc(ev->nrels, sizeof *rels);
		for (uint32_t i = 0; i < ev->nrels; i++) {
			rels[i] = ev->rels[i]
			              ? pipe_rel_find(p, ev->rels[i]->id)
			              : NULL;
			if (!rels[i]) {
				free(rels);
				job_fail(
				    p->j,
				    "%s: TRUNCATE of a relation that was never "
				    "described (id %llu); the source plugin "
				    "must emit a "
				    "RELATION event first",
				    p->j->source->prefix,
				    ev->rels[i]
				        ? (unsigned long long) ev->rels[i]->id
				        : 0ULL);
				return SYNCD_FATAL;
			}
		}
		rel = rels[0];
		target = pipe_route_table(p, &rel->rel);
		for (uint32_t i = 1; i < ev->nrels; i++)
			if (pipe_route_table(p, &rels[i]->rel) != target)
				fenced = true;
		if (p->keyby_pk && p->n > 1) {
			fenced = true;
			target = 0;
		}
	} else {
		const syncd_value *key;
		rel = ev->rel ? pipe_rel_find(p, ev->rel->id) : NULL;
		if (!rel) {
			job_fail(p->j,
			         "%s: a change for a relation that was never "
			         "described (id %llu); the source plugin must "
			         "emit a "
			         "RELATION event first",
			         p->j->source->prefix,
			         ev->rel ? (unsigned long long) ev->rel->id
			                 : 0ULL);
			return SYNCD_FATAL;
		}
		if (ev->rel->ncolumns != rel->rel.ncolumns) {
			job_fail(p->j,
			         "%s: a change for %s.%s has %u columns, its "
			         "relation %u",
			         p->j->source->prefix, rel->rel.schema,
			         rel->rel.table, ev->rel->ncolumns,
			         rel->rel.ncolumns);
			return SYNCD_FATAL;
		}
		key = ev->type == SYNCD_EV_DELETE ? ev->old_values
		                                  : ev->new_values;
		if (!key || (ev->type == SYNCD_EV_UPDATE && !ev->new_values)) {
			job_fail(p->j, "%s: a %s on %s.%s without %s values",
			         p->j->source->prefix,
			         ev->type == SYNCD_EV_DELETE ? "DELETE"
			                                     : "change",
			         rel->rel.schema, rel->rel.table,
			         ev->type == SYNCD_EV_DELETE ? "old" : "new");
			return SYNCD_FATAL;
		}
		target = pipe_route_key(p, &rel->rel, key);
		if (ev->type == SYNCD_EV_UPDATE && ev->old_values &&
		    p->keyby_pk &&
		    pipe_route_key(p, &rel->rel, ev->old_values) != target)
			fenced = true; /* the row moves to another worker */
	}

	if (log_enabled(SYNCD_LOG_DEBUG))
		log_debug("dispatching event %d of %s.%s at " SYNCD_LSN_FMT
		          " to worker %d%s",
		          (int) ev->type, rel->rel.schema, rel->rel.table,
		          SYNCD_LSN_ARGS(ev->lsn), target,
		          fenced ? " (fenced)" : "");
	it = pipe_item_event(ev, rel, rels);
	free(rels);
	if (fenced) {
		if (pipe_fence(p, -1) != SYNCD_OK) {
			free(it);
			return SYNCD_FATAL;
		}
		/* the commit marker of this transaction reaches the worker
		 * after this fence; the fence below only makes the event
		 * durable */
		st = queue_push(p, &p->w[target].q, it);
		if (st == SYNCD_OK)
			st = pipe_fence(p, target);
		return st;
	}
	return queue_push(p, &p->w[target].q, it);
}

static syncd_status
pipe_dispatch(pipeline *p, const syncd_event *ev)
{
	if (ev->stream >= SYNCD_MAX_STREAMS) {
		job_fail(p->j,
		         "%s: stream %u is out of range (at most %d streams)",
		         p->j->source->prefix, ev->stream, SYNCD_MAX_STREAMS);
		return SYNCD_FATAL;
	}
	switch (ev->type) {
	case SYNCD_EV_BEGIN:
		p->cur[ev->stream].lsn = ev->lsn;
		p->cur[ev->stream].commit_time = ev->commit_time;
		p->cur[ev->stream].xid = ev->xid;
		return SYNCD_OK;
	case SYNCD_EV_RELATION:
		if (!ev->rel) {
			job_fail(p->j, "%s: RELATION event without a relation",
			         p->j->source->prefix);
			return SYNCD_FATAL;
		}
		pipe_rel_intern(p, ev->rel);
		return SYNCD_OK;
	case SYNCD_EV_INSERT:
	case SYNCD_EV_UPDATE:
	case SYNCD_EV_DELETE:
	case SYNCD_EV_TRUNCATE: return pipe_dispatch_change(p, ev);
	case SYNCD_EV_COMMIT:
		for (int i = 0; i < p->n; i++) {
			syncd_status st = queue_push(
			    p, &p->w[i].q, pipe_item_small(ITEM_COMMIT, ev));
			if (st != SYNCD_OK)
				return st;
		}
		return SYNCD_OK;
	}
	job_fail(p->j, "%s: unknown event type %d", p->j->source->prefix,
	         (int) ev->type);
	return SYNCD_FATAL;
}

/* The end of the transform chain: the dispatcher. */
static syncd_status
pipe_dispatch_fn(void *ctx, const syncd_event *ev)
{
	return pipe_dispatch(ctx, ev);
}

/* ---- public -------------------------------------------------------------- */

pipeline *
pipeline_new(job *j)
{
	pipeline *p = xcalloc(1, sizeof *p);
	const optset *so = &j->sink->opts;

	p->j = j;
	p->host = &job_host;
	p->sink = j->sink;
	p->n = j->nworkers;
	p->max_rows = optset_num(so, "batch.max_rows");
	p->max_bytes = optset_num(so, "sink.buffer-flush.max-size");
	p->interval_ms = optset_num(so, "batch.interval");
	p->keyby_pk = strcmp(optset_str(so, "sink.keyby.mode"), "pk") == 0;
	p->truncate_ignore =
	    strcmp(optset_str(so, "sink.truncate.mode"), "ignore") == 0;
	p->case_sensitive =
	    optset_num(so, "sink.field.name.case-sensitive") != 0;
	/* Queues hold at most a quarter of the batch budget in all, so that
	 * batches plus queues stay within about 2 x sink.buffer-flush.max-size
	 * (DESIGN §6). */
	p->queue_max_bytes = (size_t) (p->max_bytes / 4 / p->n);
	if (p->queue_max_bytes < 1024 * 1024)
		p->queue_max_bytes = 1024 * 1024;
	p->queue_max_count = 65536;
	p->ckpt = ckpt_new(p->n);
	pthread_mutex_init(&p->emit_lock, NULL);
	pthread_mutex_init(&p->fence_lock, NULL);
	pthread_cond_init(&p->fence_cond, NULL);
	p->w = xcalloc((size_t) p->n, sizeof *p->w);
	for (int i = 0; i < p->n; i++) {
		p->w[i].p = p;
		p->w[i].id = i;
		queue_init(&p->w[i].q);
	}
	return p;
}

syncd_status
pipeline_start(pipeline *p)
{
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

syncd_status
pipeline_emit(pipeline *p, const syncd_event *ev)
{
	syncd_status st;

	if (!ev)
		return SYNCD_FATAL;
	if (pipe_failed(p))
		return SYNCD_FATAL;
	pthread_mutex_lock(&p->emit_lock);
	st = job_transform(p->j, ev, pipe_dispatch_fn, p);
	pthread_mutex_unlock(&p->emit_lock);
	if (pipe_failed(p))
		return SYNCD_FATAL;
	return st == SYNCD_OK ? SYNCD_OK : SYNCD_FATAL;
}

syncd_status
pipeline_drain(pipeline *p)
{
	syncd_status st;
	if (pipe_failed(p))
		return SYNCD_FATAL;
	pthread_mutex_lock(&p->emit_lock);
	st = pipe_fence(p, -1);
	pthread_mutex_unlock(&p->emit_lock);
	return st;
}

syncd_lsn
pipeline_flushed(pipeline *p, uint32_t stream)
{
	return ckpt_flushed(p->ckpt, stream);
}

syncd_status
pipeline_stored(pipeline *p, uint32_t stream, syncd_lsn *lsn, bool *known)
{
	syncd_event ev = {.stream = stream};

	*lsn = 0;
	*known = p->sink->plugin->ops.sink.applied_lsn != NULL;
	if (stream >= SYNCD_MAX_STREAMS || pipe_failed(p))
		return SYNCD_FATAL;
	pthread_mutex_lock(&p->emit_lock);
	pthread_mutex_lock(&p->fence_lock);
	p->fence_pending += p->n;
	pthread_mutex_unlock(&p->fence_lock);
	for (int i = 0; i < p->n; i++)
		queue_push(p, &p->w[i].q, pipe_item_small(ITEM_LEARN, &ev));
	pthread_mutex_lock(&p->fence_lock);
	while (p->fence_pending > 0 && !pipe_failed(p))
		pthread_cond_wait(&p->fence_cond, &p->fence_lock);
	pthread_mutex_unlock(&p->fence_lock);
	pthread_mutex_unlock(&p->emit_lock);
	if (pipe_failed(p))
		return SYNCD_FATAL;
	/* the workers have answered: their skip thresholds are set */
	for (int i = 0; i < p->n; i++)
		if (i == 0 || p->w[i].skip[stream] < *lsn)
			*lsn = p->w[i].skip[stream];
	return SYNCD_OK;
}

void
pipeline_wake(pipeline *p)
{
	for (int i = 0; i < p->n; i++) {
		pthread_mutex_lock(&p->w[i].q.lock);
		pthread_cond_broadcast(&p->w[i].q.nonempty);
		pthread_cond_broadcast(&p->w[i].q.nonfull);
		pthread_mutex_unlock(&p->w[i].q.lock);
	}
	pthread_mutex_lock(&p->fence_lock);
	pthread_cond_broadcast(&p->fence_cond);
	pthread_mutex_unlock(&p->fence_lock);
}

void
pipeline_stop(pipeline *p)
{
	for (int i = 0; i < p->n; i++)
		if (p->w[i].started)
			queue_push(p, &p->w[i].q,
			           pipe_item_small(ITEM_STOP, NULL));
	for (int i = 0; i < p->n; i++)
		if (p->w[i].started) {
			pthread_join(p->w[i].thread, NULL);
			p->w[i].started = false;
		}
}

void
pipeline_free(pipeline *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n; i++) {
		worker_reset(&p->w[i]);
		free(p->w[i].items);
		free(p->w[i].evs);
		free(p->w[i].rels);
		queue_destroy(&p->w[i].q);
	}
	free(p->w);
	pipe_rel_free_all(p);
	ckpt_free(p->ckpt);
	pthread_mutex_destroy(&p->emit_lock);
	pthread_mutex_destroy(&p->fence_lock);
	pthread_cond_destroy(&p->fence_cond);
	free(p);
}
