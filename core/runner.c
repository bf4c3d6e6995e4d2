/*
 * core/runner.c - see runner.h.
 *
 * The order of a run, for every source:
 *  1. the workers start (each opens its sink connection);
 *  2. the source describes its streams;
 *  3. streaming jobs: each stream is opened (its position found or
 *     created), and its position is compared with what the destination
 *     has applied: a source that has confirmed more than the destination
 *     has would lose the changes in between, so the job is refused;
 *  4. jobs with a full phase: each stream's snapshot is copied (the sink
 *     says what an earlier run finished), then released;
 *  5. streaming jobs: each stream starts after what the source confirmed
 *     and the destination applied, and is read in a thread of its own;
 *     this thread confirms to the source, as the workers make more
 *     durable, every stream's durable position, never more;
 *  6. at a stop (between two transactions of each stream) or the end of a
 *     finite source: every worker flushes, the durable positions are
 *     confirmed, then the streams are closed.
 */
#include "config.h"

#include "dirty.h"
#include "fullcopy.h"
#include "livecopy.h"
#include "resync.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "plugerr.h"
#include "rewind.h"
#include "shardcols.h"
#include "runner.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RUNNER_READ_MS    200
#define RUNNER_CONFIRM_MS 100

/* Lag: commits read and not yet applied, in buckets of 100 ms of commit
 * time; a bucket is passed once its last commit is applied. The oldest
 * bucket not passed dates the oldest commit not applied, at most 100 ms
 * before it. A full ring extends its last bucket, which only overstates the
 * lag. */
#define LAG_BUCKETS   1024
#define LAG_BUCKET_US 100000

typedef struct lag_ring {
	pthread_mutex_t lock;
	struct lag_bucket {
		int64_t time;  /* its first commit's time, us since the epoch */
		syncd_lsn last; /* its last commit */
	} *b;          /* LAG_BUCKETS, allocated at the first commit */
	size_t head, n;
} lag_ring;

typedef struct run_stream {
	struct run *r;
	uint32_t id;
	syncd_position pos;
	bool opened, released;
	atomic_bool started; /* read by the confirming thread */
	syncd_lsn stored;    /* what the destination has applied */
	bool known;          /* ... and whether the sink keeps that */
	syncd_lsn confirmed;
	pthread_t thread;
	bool thread_started;
	bool in_txn;
	atomic_bool done;
	syncd_status status;
	lag_ring lag;
	atomic_uint_least64_t applied;      /* confirmed, for the monitor */
	atomic_uint_least64_t transactions; /* read from the source */
	char *origin;  /* the source's origin, once checked */
	bool record;   /* ... to be recorded at the destination */
	bool resynced; /* re-synced in this run */
	int64_t last_mark; /* commit time of the last time mark */
	bool skipping;     /* the open transaction is passed over */
	syncd_lsn txn;         /* the open transaction's commit position */
	syncd_lsn last_commit; /* the last commit emitted */
	livecopy *live;        /* tables copied while streaming */
} run_stream;

typedef struct run {
	job *j;
	pipeline *p;
	const syncd_source_ops *ops;
	void *state;
	run_stream s[SYNCD_MAX_STREAMS];
	uint32_t n;
	atomic_bool done;
} run;

/* The name of stream id. */
static const char *
run_name(run *r, uint32_t id)
{
	return r->j->streams[id].desc.name;
}

/* Fails the job with the source's reason, taken in this thread. */
static void run_source_failed(run *r, syncd_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
run_source_failed(run *r, syncd_status st, const char *fmt, ...)
{
	va_list ap;
	char *what;

	if (st == SYNCD_INVALID)
		atomic_store(&r->j->invalid, true);
	if (job_failed(r->j))
		return;
	va_start(ap, fmt);
	what = xvasprintf(fmt, ap);
	va_end(ap);
	job_fail(r->j, "%s %s%s", r->j->source->prefix, what,
	         plugerr_msg(r->j->source));
	free(what);
}

/* ---- streams ------------------------------------------------------------- */

static syncd_status
run_stream_described(void *ctx, const syncd_stream *d)
{
	run *r = ctx;
	job_stream *js;
	uint32_t id = d ? d->id : 0;

	if (id >= SYNCD_MAX_STREAMS || r->n >= SYNCD_MAX_STREAMS) {
		job_fail(r->j,
		         "%s describes stream %u: stream numbers are below %d",
		         r->j->source->prefix, id, SYNCD_MAX_STREAMS);
		return SYNCD_FATAL;
	}
	for (uint32_t i = 0; i < r->n; i++)
		if (r->s[i].id == id) {
			job_fail(r->j,
			         "%s describes stream %u twice (a bug in the "
			         "plugin: every stream has its own id)",
			         r->j->source->prefix, id);
			return SYNCD_FATAL;
		}
	js = &r->j->streams[id];
	free(js->name);
	free(js->server);
	js->name = xstrdup(d && d->name ? d->name : "?");
	js->server = d && d->server ? xstrdup(d->server) : NULL;
	js->desc = (syncd_stream){sizeof js->desc, id, js->name, js->server};
	r->s[r->n].r = r;
	r->s[r->n].id = id;
	r->n++;
	return SYNCD_OK;
}

static bool
run_describe(run *r)
{
	job *j = r->j;
	syncd_status st;

	r->n = 0;
	j->nstreams = 0;
	if (!r->ops->streams) {
		syncd_stream one = {sizeof one, 0, j->source->plugin->name,
		                    NULL};
		run_stream_described(r, &one);
	} else {
		st = r->ops->streams(r->state, run_stream_described, r);
		if (st != SYNCD_OK) {
			run_source_failed(r, st,
			                  "could not find its streams: ");
			return false;
		}
		if (r->n == 0) {
			job_fail(j, "%s has no stream to read",
			         j->source->prefix);
			atomic_store(&j->invalid, true);
			return false;
		}
	}
	j->nstreams = r->n;
	return true;
}

/* The sink's operations. */
static const syncd_sink_ops *
run_sink(run *r)
{
	return &r->j->sink->plugin->ops.sink;
}

/* Fails the job as configured (never retried) after a refusal of stream
 * s's position; a position opened just now is dropped again, so that a
 * refused job leaves no slot behind to hold the source's WAL. */
static bool
run_refuse(run *r, run_stream *s)
{
	atomic_store(&r->j->invalid, true);
	if (s->pos.created && r->ops->drop) {
		r->ops->close(r->state, s->id);
		s->opened = false;
		if (r->ops->drop(r->state, s->id) != SYNCD_OK)
			log_warning("%s stream \"%s\": could not drop the "
			            "position created now: %s",
			            r->j->source->prefix, run_name(r, s->id),
			            plugerr_msg(r->j->source));
		plugerr_clear();
	}
	return false;
}

static bool run_open(run *r, run_stream *s, bool reopen, syncd_status *st);

/* A re-sync of stream s (why: for the log): its position dropped and
 * created anew, the destination's progress for it forgotten; the full
 * phase then copies its tables again, emptying what the job filled. */
static bool
run_resync(run *r, run_stream *s, bool reopen, const char *why)
{
	job *j = r->j;
	const char *src = j->source->prefix;
	syncd_status st;

	if (s->resynced) {
		job_fail(j,
		         "%s stream \"%s\": %s right after a re-sync (a bug "
		         "in the source plugin)",
		         src, run_name(r, s->id), why);
		return false;
	}
	s->resynced = true;
	if (!j->info.full) {
		job_fail(
		    j,
		    "%s stream \"%s\": %s; a re-sync copies the tables "
		    "again, which mode = incremental does not do: set [job] "
		    "mode = full+incremental",
		    src, run_name(r, s->id), why);
		return run_refuse(r, s);
	}
	if (!r->ops->drop) {
		job_fail(
		    j,
		    "%s stream \"%s\": %s; this source cannot drop its "
		    "position for a re-sync (no drop operation): remove it "
		    "by hand and start the job again",
		    src, run_name(r, s->id), why);
		return run_refuse(r, s);
	}
	log_warning("%s stream \"%s\": %s: re-syncing: %s is dropped and "
	            "created anew, and the tables are copied again",
	            src, run_name(r, s->id), why,
	            s->pos.holder ? s->pos.holder : "its position");
	r->ops->close(r->state, s->id);
	s->opened = false;
	st = r->ops->drop(r->state, s->id);
	if (st != SYNCD_OK) {
		run_source_failed(
		    r, st, "stream \"%s\": re-sync: ", run_name(r, s->id));
		return false;
	}
	if (run_sink(r)->forget) {
		st = run_sink(r)->forget(j->sink->state, s->id);
		if (st != SYNCD_OK) {
			if (!job_failed(j))
				job_fail(
				    j,
				    "%s stream \"%s\": re-sync: could not "
				    "forget the destination's progress: %s",
				    j->sink->prefix, run_name(r, s->id),
				    plugerr_msg(j->sink));
			return false;
		}
	}
	s->stored = 0;
	free(s->origin);
	s->origin = NULL;
	if (!run_open(r, s, reopen, &st))
		return false;
	if (!s->pos.created) {
		job_fail(j,
		         "%s stream \"%s\": re-sync: %s is still there after "
		         "it was dropped (a bug in the source plugin)",
		         src, run_name(r, s->id),
		         s->pos.holder ? s->pos.holder : "the position");
		return false;
	}
	return true;
}

/* Whether stream s's position may be used: not lost (or re-synced, as
 * [source] slot.lost or --resync say), and from the source the
 * destination's progress came from. Records the origin when the
 * destination has none. */
static bool
run_check_position(run *r, run_stream *s, bool reopen)
{
	job *j = r->j;
	const syncd_sink_ops *k = run_sink(r);
	const char *src = j->source->prefix, *name = run_name(r, s->id);
	const char *holder =
	    s->pos.holder ? s->pos.holder : "its source position";
	bool resync_lost =
	    strcmp(optset_str(&j->source->opts, "slot.lost"), "resync") == 0;
	const char *before = NULL;
	syncd_status st;

	if (s->pos.lost) {
		char *why;
		if (resync_lost || (j->resync && !reopen)) {
			bool ok;
			why = xasprintf("%s (%s)", s->pos.lost,
			                resync_lost ? "slot.lost = resync"
			                            : "--resync");
			ok = run_resync(r, s, reopen, why);
			free(why);
			return ok;
		}
		job_fail(j,
		         "%s stream \"%s\": %s; the changes it held for the "
		         "destination are gone, so the tables must be copied "
		         "again: set [source] slot.lost = resync (the default "
		         "slot.lost = fail stops here), or run syncd --resync "
		         "-c FILE once",
		         src, name, s->pos.lost);
		return run_refuse(r, s);
	}
	if (j->resync && !reopen && !s->resynced)
		return run_resync(r, s, false, "--resync");
	if (!s->pos.origin)
		return true;
	if (s->origin) {
		/* opened again while the job runs */
		if (strcmp(s->origin, s->pos.origin) == 0)
			return true;
		job_fail(
		    j,
		    "%s stream \"%s\": the source is no longer the one "
		    "this job streamed from: it was %s, it is now %s (a "
		    "failover or switchover, a restored backup, or another "
		    "server behind the same address); its positions are "
		    "not comparable, so the job stops: re-sync with syncd "
		    "--resync -c FILE (the tables are copied again)",
		    src, name, s->origin, s->pos.origin);
		return run_refuse(r, s);
	}
	if (k->origin_get) {
		st = k->origin_get(j->sink->state, s->id, &before);
		if (st != SYNCD_OK) {
			job_fail(
			    j,
			    "%s could not read the source's origin recorded "
			    "with the progress: %s",
			    j->sink->prefix, plugerr_msg(j->sink));
			return false;
		}
	}
	if (before && strcmp(before, s->pos.origin) != 0) {
		job_fail(j,
		         "%s stream \"%s\": the source is not the one the "
		         "destination's progress came from: that was %s, the "
		         "source is now %s (a failover or switchover, a "
		         "restored backup, or another server behind the same "
		         "address); positions of one are meaningless to the "
		         "other, so the job does not start: re-sync with syncd "
		         "--resync -c FILE (%s is created anew and the tables "
		         "are copied again)",
		         src, name, before, s->pos.origin, holder);
		return run_refuse(r, s);
	}
	s->record = !before && k->origin_set;
	s->origin = xstrdup(s->pos.origin);
	return true;
}

/* Records the origin of a position found good, when the destination had
 * none. */
static bool
run_record_origin(run *r, run_stream *s)
{
	job *j = r->j;
	syncd_status st;

	if (!s->record)
		return true;
	s->record = false;
	st = run_sink(r)->origin_set(j->sink->state, s->id, s->origin);
	if (st != SYNCD_OK) {
		job_fail(j,
		         "%s could not record the source's origin with the "
		         "progress: %s",
		         j->sink->prefix, plugerr_msg(j->sink));
		return false;
	}
	return true;
}

/* Opens stream s and checks its position against the destination's: what
 * it had applied at the start, or, when the stream is opened again while
 * the job runs, what it has made durable since. *st: the source's answer
 * (a reconnect tries again after SYNCD_RETRY). */
static bool
run_open(run *r, run_stream *s, bool reopen, syncd_status *st)
{
	job *j = r->j;
	const char *holder;

	memset(&s->pos, 0, sizeof s->pos);
	s->pos.size = sizeof s->pos;
	*st = r->ops->open(r->state, s->id, &s->pos);
	s->opened = true;
	if (*st != SYNCD_OK) {
		if (!reopen || *st != SYNCD_RETRY)
			run_source_failed(r, *st, "%s", "");
		return false;
	}
	if (!run_check_position(r, s, reopen))
		return false;
	holder = s->pos.holder ? s->pos.holder : "its source position";
	if (reopen) {
		syncd_lsn durable = pipeline_flushed(r->p, s->id);
		if (durable > s->stored)
			s->stored = durable;
		if (s->pos.created && !j->info.full) {
			job_fail(
			    j,
			    "%s stream \"%s\": %s was created anew while "
			    "the job ran: changes after " SYNCD_LSN_FMT
			    " may be missing; re-sync the tables with mode "
			    "= full+incremental",
			    j->source->prefix, run_name(r, s->id), holder,
			    SYNCD_LSN_ARGS(s->stored));
			atomic_store(&j->invalid, true);
			return false;
		}
	} else if (pipeline_stored(r->p, s->id, &s->stored, &s->known) !=
	           SYNCD_OK) {
		if (!job_failed(j))
			job_fail(j,
			         "could not read the destination's progress");
		return false;
	}
	if (s->known && s->stored && s->pos.created &&
	    s->pos.confirmed < s->stored) {
		job_fail(
		    j,
		    "%s stream \"%s\": %s was created anew at " SYNCD_LSN_FMT
		    ", before what the destination has applied (" SYNCD_LSN_FMT
		    "): the source's history is not the one "
		    "the destination's progress came from (a re-initialized "
		    "or restored server, or another one behind the same "
		    "address), so the job does not start: re-sync with "
		    "syncd --resync -c FILE (the tables are copied again)",
		    j->source->prefix, run_name(r, s->id), holder,
		    SYNCD_LSN_ARGS(s->pos.confirmed + 1),
		    SYNCD_LSN_ARGS(s->stored));
		return run_refuse(r, s);
	}
	if (!reopen && s->known && s->stored && s->pos.created) {
		/* the slot the progress came from is gone (dropped) */
		if (!j->info.full) {
			job_fail(
			    j,
			    "%s stream \"%s\": %s was created anew, but the "
			    "destination's progress (up to " SYNCD_LSN_FMT
			    ") came from one that no longer exists: the "
			    "changes in between are missing and mode = "
			    "incremental does not copy them; re-sync with "
			    "mode = full+incremental and syncd --resync -c "
			    "FILE",
			    j->source->prefix, run_name(r, s->id), holder,
			    SYNCD_LSN_ARGS(s->stored));
			return run_refuse(r, s);
		}
		log_warning("%s stream \"%s\": %s was created anew: the "
		            "destination's progress (up to " SYNCD_LSN_FMT
		            ") came from one that no longer exists and does "
		            "not count; the tables are copied again",
		            j->source->prefix, run_name(r, s->id), holder,
		            SYNCD_LSN_ARGS(s->stored));
	}
	if (s->known && s->stored && !s->pos.created &&
	    s->pos.confirmed > s->stored) {
		job_fail(j,
		         "%s stream \"%s\": %s has confirmed " SYNCD_LSN_FMT
		         " but the destination has applied it only up "
		         "to " SYNCD_LSN_FMT ": the changes in between may be "
		         "missing (%s was advanced or recreated outside "
		         "syncd); re-sync the tables with mode = "
		         "full+incremental",
		         j->source->prefix, run_name(r, s->id), holder,
		         SYNCD_LSN_ARGS(s->pos.confirmed + 1),
		         SYNCD_LSN_ARGS(s->stored), holder);
		atomic_store(&j->invalid, true);
		return false;
	}
	if (!reopen && (!s->known || !s->stored))
		log_info("stream \"%s\": the destination has no progress for "
		         "this job; streaming from %s at " SYNCD_LSN_FMT,
		         run_name(r, s->id), holder,
		         SYNCD_LSN_ARGS(s->pos.confirmed + 1));
	return run_record_origin(r, s);
}

/* The full phase of stream s. */
static bool
run_full(run *r, run_stream *s)
{
	job *j = r->j;
	syncd_snapshot snap;
	syncd_status st;
	bool ok;

	/* without copy operations, the sink's progress says whether an
	 * earlier run finished the copy */
	if (!fullcopy_sink_copies(j) && j->info.incremental &&
	    !s->pos.created && s->known && s->stored) {
		log_info("stream \"%s\": the full phase was finished by an "
		         "earlier run (the destination has applied up "
		         "to " SYNCD_LSN_FMT ")",
		         run_name(r, s->id), SYNCD_LSN_ARGS(s->stored));
		return true;
	}
	memset(&snap, 0, sizeof snap);
	snap.size = sizeof snap;
	st = r->ops->snapshot(r->state, s->id, &snap);
	if (st != SYNCD_OK) {
		run_source_failed(r, st, "could not take a snapshot: ");
		r->ops->release(r->state, s->id);
		return false;
	}
	atomic_store(&j->phase, JOB_COPYING);
	ok = fullcopy_run(j, r->p, s->id, &snap, s->pos.created) == SYNCD_OK;
	if (ok && s->pos.created && !job_stopping(j)) {
		/* every table came from the new position's snapshot */
		const syncd_relation **rels =
		    xcalloc(snap.ntables + 1, sizeof *rels);
		size_t stride = snap.ntables && snap.tables[0].size
		                    ? snap.tables[0].size
		                    : sizeof(syncd_copy_table);
		for (size_t i = 0; i < snap.ntables; i++)
			rels[i] = ((const syncd_copy_table *) ((const char *)
			                                           snap.tables +
			                                       i * stride))
			              ->rel;
		live_requests_done(j, rels, snap.ntables);
		free(rels);
	}
	r->ops->release(r->state, s->id);
	plugerr_clear();
	return ok;
}

/* ---- streaming ----------------------------------------------------------- */

/* ---- lag ----------------------------------------------------------------- */

static void
run_lag_commit(lag_ring *l, syncd_lsn lsn, int64_t commit_time)
{
	struct lag_bucket *tail;

	if (!commit_time)
		commit_time = wall_ms() * 1000;
	pthread_mutex_lock(&l->lock);
	if (!l->b)
		l->b = xcalloc(LAG_BUCKETS, sizeof *l->b);
	tail = l->n ? &l->b[(l->head + l->n - 1) % LAG_BUCKETS] : NULL;
	if (tail && (commit_time - tail->time < LAG_BUCKET_US ||
	             l->n == LAG_BUCKETS))
		tail->last = lsn;
	else {
		tail = &l->b[(l->head + l->n) % LAG_BUCKETS];
		tail->time = commit_time;
		tail->last = lsn;
		l->n++;
	}
	pthread_mutex_unlock(&l->lock);
}

/* Seconds since the oldest commit read and not applied (0: none). */
static double
run_lag_seconds(lag_ring *l, syncd_lsn applied, int64_t now_us)
{
	int64_t oldest = 0;

	pthread_mutex_lock(&l->lock);
	while (l->n > 0 && l->b[l->head].last <= applied) {
		l->head = (l->head + 1) % LAG_BUCKETS;
		l->n--;
	}
	if (l->n > 0)
		oldest = l->b[l->head].time;
	pthread_mutex_unlock(&l->lock);
	if (!oldest || oldest > now_us)
		return 0;
	return (double) (now_us - oldest) / 1e6;
}

/* Per stream, at each scrape: lag, positions, transactions. */
static void
run_collect(void *ctx)
{
	run *r = ctx;
	int64_t now_us = wall_ms() * 1000;

	for (uint32_t i = 0; i < r->n; i++) {
		run_stream *s = &r->s[i];
		const char *db = run_name(r, s->id);
		char *labels = metrics_labels("database", db, NULL);
		char *src = metrics_labels("database", db, "plugin",
		                           r->j->source->label, NULL);
		syncd_lsn applied = atomic_load(&s->applied);
		double wal;

		metrics_set("transactions_total", labels,
		            (double) atomic_load(&s->transactions));
		if (atomic_load(&s->started)) {
			metrics_set("lag_seconds", labels,
			            run_lag_seconds(&s->lag, applied, now_us));
			metrics_set("confirmed_position_bytes", labels,
			            (double) applied);
			if (metrics_get("source_wal_position_bytes", src,
			                &wal))
				metrics_set("lag_bytes", labels,
				            wal > (double) applied
				                ? wal - (double) applied
				                : 0);
		}
		free(src);
		free(labels);
	}
}

/* A time mark every REWIND_MARK_US of commit time, recorded with the
 * progress while the source keeps confirmed WAL to go back to. */
static void
run_mark(run_stream *s, const syncd_event *ev)
{
	int64_t keep_ms = SYNCD_HAS(&s->pos, retention_ms)
	                      ? s->pos.retention_ms
	                      : 0;
	syncd_time_mark m;

	if (keep_ms <= 0 || !ev->commit_time || !ev->lsn ||
	    !s->r->j->sink->plugin->ops.sink.marks ||
	    ev->commit_time - s->last_mark < REWIND_MARK_US)
		return;
	s->last_mark = ev->commit_time;
	m = (syncd_time_mark){
	    .stream = s->id, .time = ev->commit_time, .lsn = ev->lsn - 1};
	pipeline_mark(s->r->p, &m, ev->commit_time - keep_ms * 1000);
}

/* Between read() and the pipeline: the stream's transaction boundaries. */
static syncd_status
run_emit(void *ctx, const syncd_event *ev)
{
	run_stream *s = ctx;

	if (!ev)
		return SYNCD_FATAL;
	if (ev->stream != s->id) {
		job_fail(s->r->j,
		         "%s emitted an event of stream %u while reading "
		         "stream %u",
		         s->r->j->source->prefix, ev->stream, s->id);
		return SYNCD_FATAL;
	}
	switch (ev->type) {
	case SYNCD_EV_BEGIN:
		s->in_txn = true;
		s->txn = ev->lsn;
		s->skipping = rewind_skip(s->r->j, s->id, ev->lsn,
		                          ev->commit_time);
		break;
	case SYNCD_EV_COMMIT:
		s->in_txn = false;
		s->skipping = false;
		s->last_commit = ev->lsn;
		atomic_fetch_add(&s->transactions, 1);
		run_lag_commit(&s->lag, ev->lsn, ev->commit_time);
		run_mark(s, ev);
		break;
	case SYNCD_EV_RELATION:
		/* a column one shard of a logical table gains */
		if (!shardcols_relation(s->r->j, ev->rel))
			return SYNCD_FATAL;
		break;
	default:
		/* --start-time: committed before the time, applied before */
		if (s->skipping)
			return SYNCD_OK;
	}
	return pipeline_emit(s->r->p, ev);
}

/* The stream's connection was lost: open it again and go on from what the
 * destination has made durable, with the destination's backoff (1, 2, 4 ...
 * s, at most 30 s apart) within reconnect.max_wait. A position created
 * anew on the way (the source lost it) is copied again first. */
static bool
run_reconnect(run *r, run_stream *s)
{
	job *j = r->j;
	int64_t budget = optset_num(&j->job_opts, "reconnect.max_wait");
	int64_t waited = 0;
	char *why = xstrdup(plugerr_msg(j->source));
	bool ok = false;

	atomic_fetch_add(&j->reconnecting, 1);
	for (int attempt = 1; !job_stopping(j); attempt++) {
		int64_t wait = backoff_ms(attempt - 1);
		syncd_status st;
		syncd_lsn after;

		if (waited >= budget) {
			job_fail(j,
			         "%s stream \"%s\": gave up after %d attempts "
			         "in %lld s (reconnect.max_wait): %s",
			         j->source->prefix, run_name(r, s->id),
			         attempt - 1, (long long) (waited / 1000), why);
			break;
		}
		if (wait > budget - waited)
			wait = budget - waited;
		log_warning("%s stream \"%s\": %s; reconnecting in %.1f s "
		            "(attempt %d)",
		            j->source->prefix, run_name(r, s->id), why,
		            (double) wait / 1000.0, attempt);
		metrics_add("reconnects_total", "side=\"source\"", 1);
		job_sleep(j, wait);
		waited += wait;
		if (job_stopping(j))
			break;
		r->ops->close(r->state, s->id);
		s->started = false;
		if (!run_open(r, s, true, &st)) {
			if (st != SYNCD_RETRY || job_failed(j))
				break;
			free(why);
			why = xstrdup(plugerr_msg(j->source));
			continue;
		}
		if (s->pos.created && !run_full(r, s))
			break;
		after =
		    s->pos.confirmed > s->stored ? s->pos.confirmed : s->stored;
		st = r->ops->start(r->state, s->id, after);
		if (st == SYNCD_OK) {
			s->started = true;
			s->resynced = false; /* another loss may come */
			s->in_txn = false;   /* the source sends it again */
			log_info("%s stream \"%s\": reconnected after %d "
			         "attempt(s); streaming after " SYNCD_LSN_FMT,
			         j->source->prefix, run_name(r, s->id), attempt,
			         SYNCD_LSN_ARGS(after));
			ok = true;
			break;
		}
		if (st != SYNCD_RETRY) {
			run_source_failed(
			    r, st, "stream \"%s\": ", run_name(r, s->id));
			break;
		}
		free(why);
		why = xstrdup(plugerr_msg(j->source));
	}
	free(why);
	atomic_fetch_sub(&j->reconnecting, 1);
	return ok;
}

static void *
run_stream_main(void *arg)
{
	run_stream *s = arg;
	run *r = s->r;
	job *j = r->j;

	thread_name("syncd-stream%u", s->id);
	s->status = SYNCD_OK;
	s->live = live_new(j, r->p, s->id);
	for (;;) {
		syncd_status st;

		/* a stop waits for the end of the open transaction */
		if (job_failed(j) || (job_stopping(j) && !s->in_txn))
			break;
		st = r->ops->read(r->state, s->id, RUNNER_READ_MS, run_emit, s);
		if (st == SYNCD_END) {
			log_info("stream \"%s\" ended", run_name(r, s->id));
			s->status = SYNCD_END;
			break;
		}
		if (st == SYNCD_OK) {
			live_step(s->live, s->in_txn, s->txn, s->last_commit);
			continue;
		}
		/* a copy under way starts again after a reconnect */
		live_abort(s->live);
		if (st == SYNCD_RETRY && !job_failed(j) && run_reconnect(r, s))
			continue;
		if (st != SYNCD_OK) {
			if (!job_failed(j) && !job_stopping(j))
				run_source_failed(r, st, "stream \"%s\": ",
				                  run_name(r, s->id));
			s->status = SYNCD_FATAL;
			break;
		}
	}
	live_free(s->live);
	s->live = NULL;
	plugerr_clear();
	atomic_store(&s->done, true);
	return NULL;
}

/* Confirms what every worker has made durable (never more). */
static void
run_confirm(run *r)
{
	for (uint32_t i = 0; i < r->n; i++) {
		run_stream *s = &r->s[i];
		syncd_lsn f;
		if (!s->started)
			continue;
		f = pipeline_flushed(r->p, s->id);
		if (f > s->confirmed) {
			r->ops->confirm(r->state, s->id, f);
			s->confirmed = f;
			atomic_store(&s->applied, f);
		}
	}
}

static bool
run_stream_all(run *r)
{
	job *j = r->j;
	bool all_ended = true;

	for (uint32_t i = 0; i < r->n; i++) {
		run_stream *s = &r->s[i];
		syncd_lsn after =
		    s->pos.confirmed > s->stored ? s->pos.confirmed : s->stored;
		syncd_status st = r->ops->start(r->state, s->id, after);
		if (st != SYNCD_OK) {
			run_source_failed(
			    r, st, "stream \"%s\": ", run_name(r, s->id));
			return false;
		}
		s->started = true;
		s->resynced = false;
		s->confirmed = after;
		atomic_store(&s->applied, after);
	}
	atomic_store(&j->phase, JOB_STREAMING);
	for (uint32_t i = 0; i < r->n; i++) {
		if (pthread_create(&r->s[i].thread, NULL, run_stream_main,
		                   &r->s[i]) != 0) {
			job_fail(j, "could not start a stream thread");
			break;
		}
		r->s[i].thread_started = true;
	}
	for (;;) {
		bool running = false;
		struct timespec ts = {0, RUNNER_CONFIRM_MS * 1000 * 1000};
		for (uint32_t i = 0; i < r->n; i++)
			if (r->s[i].thread_started &&
			    !atomic_load(&r->s[i].done))
				running = true;
		if (!running)
			break;
		nanosleep(&ts, NULL);
		if (!job_failed(j))
			run_confirm(r);
	}
	for (uint32_t i = 0; i < r->n; i++) {
		if (r->s[i].thread_started)
			pthread_join(r->s[i].thread, NULL);
		if (r->s[i].status != SYNCD_END)
			all_ended = false;
	}
	if (job_failed(j))
		return false;
	/* a clean stop, or the end of every stream: everything emitted
	 * becomes durable, then it is confirmed */
	if (pipeline_drain(r->p) != SYNCD_OK) {
		if (!job_failed(j))
			job_fail(j, "the destination did not make the last "
			            "changes durable");
		return false;
	}
	run_confirm(r);
	if (all_ended)
		job_request_stop(j);
	return true;
}

static void *
run_main(void *arg)
{
	run *r = arg;
	job *j = r->j;

	thread_name("syncd-source");
	if (!run_describe(r))
		goto out;
	if (j->info.incremental && !rewind_streams(j))
		goto out;
	if (j->info.incremental)
		for (uint32_t i = 0; i < r->n; i++) {
			syncd_status st;
			if (!run_open(r, &r->s[i], false, &st))
				goto out;
		}
	/* --resync is done once: a restart (auto_retry) resumes its copy */
	j->resync = false;
	if (j->info.full)
		for (uint32_t i = 0; i < r->n && !job_stopping(j); i++)
			if (!run_full(r, &r->s[i]))
				goto out;
	if (j->info.incremental && !job_stopping(j))
		run_stream_all(r);
out:
	for (uint32_t i = 0; i < r->n; i++) {
		if (r->s[i].opened)
			r->ops->close(r->state, r->s[i].id);
		free(r->s[i].origin);
		r->s[i].origin = NULL;
	}
	plugerr_clear();
	atomic_store(&r->done, true);
	return NULL;
}

/* ---- the job ------------------------------------------------------------- */


static const char *
sig_name(int sig)
{
	return sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "SIGTERM";
}

int
runner_run(job *j)
{
	run r = {.j = j};
	pthread_t thread;
	sigset_t sigs;
	int signals = 0, lock = -1;
	int64_t started = now_ms();

	job_reset(j);
	atomic_store(&j->phase, JOB_STARTING);
	dirty_reset(j);
	if (mkdir_p(j->state_dir) != 0) {
		log_error(
		    "could not create the state directory %s: %s; set [job] "
		    "state_dir to a writable directory",
		    j->state_dir, strerror(errno));
		return 1;
	}
	/* syncd --resync TABLE tells a running job by it */
	lock = live_lock(j);
	r.ops = &j->source->plugin->ops.source;
	r.state = j->source->state;
	for (uint32_t i = 0; i < SYNCD_MAX_STREAMS; i++)
		pthread_mutex_init(&r.s[i].lag.lock, NULL);

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);

	r.p = pipeline_new(j);
	metrics_collector_add(run_collect, &r);
	if (pipeline_start(r.p) != SYNCD_OK)
		goto stop;
	log_info("job %s started: %s -> %d worker(s) -> %s", job_name(j),
	         j->source->prefix, j->nworkers, j->sink->prefix);
	if (pthread_create(&thread, NULL, run_main, &r) != 0) {
		job_fail(j, "could not start the source thread");
		goto stop;
	}
	while (!atomic_load(&r.done)) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		int sig = sigtimedwait(&sigs, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
			if (++signals == 1) {
				log_info("received %s: stopping; flushing and "
				         "confirming what "
				         "is applied (send it again to stop at "
				         "once)",
				         sig_name(sig));
				job_request_stop(j);
			} else {
				log_error("received %s again: stopping at "
				          "once; changes not "
				          "yet confirmed will be replayed at "
				          "the next start",
				          sig_name(sig));
				_exit(1);
			}
		}
	}
	pthread_join(thread, NULL);
stop:
	pipeline_stop(r.p);
	metrics_collector_remove(run_collect, &r);
	if (log_enabled(SYNCD_LEVEL_DEBUG)) {
		strbuf m = {0};
		metrics_format(&m, job_name(j));
		if (m.len)
			log_debug("metrics at the end of the run:\n%s", m.data);
		sb_free(&m);
	}
	pipeline_free(r.p);
	if (lock >= 0)
		close(lock);
	for (uint32_t i = 0; i < SYNCD_MAX_STREAMS; i++) {
		free(r.s[i].lag.b);
		pthread_mutex_destroy(&r.s[i].lag.lock);
	}
	if (job_failed(j)) {
		log_error("job %s failed after %.1f s: %s", job_name(j),
		          (double) (now_ms() - started) / 1000.0,
		          j->failure ? j->failure : "unknown reason");
		return 1;
	}
	log_info("job %s stopped cleanly after %.1f s", job_name(j),
	         (double) (now_ms() - started) / 1000.0);
	return 0;
}
