/*
 * core/fullcopy.c - the full phase: every selected table copied from one
 * snapshot, in parallel, straight from the source's COPY into the sink's.
 *
 * The source calls host->copy() from run() with the snapshot it holds (a
 * new slot's exported snapshot, or a fresh one) and the tables of one
 * stream. Here:
 *  1. one sink copy session asks, per table, how to take it (copy_table):
 *     skip what an earlier run finished, empty what an unfinished earlier
 *     copy of this job left, merge into a target that holds other rows;
 *  2. the chunks of the remaining tables are queued biggest first;
 *  3. `concurrency` threads each pair a source reader with a sink copy
 *     session and move chunks, one destination transaction per chunk (the
 *     chunk's completion is recorded in it), the data never parsed and
 *     never held beyond one piece;
 *  4. the calling thread shows progress (a live display on a terminal, a
 *     line every few seconds otherwise) and a summary per table.
 *
 * A lost destination connection is retried for that chunk with backoff
 * (the source reader keeps its snapshot: see the pgoutput reader); a data
 * error, a source failure or a stop ends the phase, and what was finished
 * stays recorded for the next start.
 */
#include "config.h"

#include "chain.h"
#include "copytext.h"
#include "display.h"
#include "fullcopy.h"
#include "resync.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "plugerr.h"
#include "router.h"
#include "util.h"

#include <syncd/copytext.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FC_LOG_EVERY_MS   5000
#define FC_DRAW_EVERY_MS  500
#define FC_LIVE_MAX_LINES 8

typedef struct fc_table {
	job *j;
	const syncd_copy_table *src; /* core-sized, snapshot_lsn set */
	syncd_relation *srel; /* as transforms see it: with target names */
	syncd_relation *rel;  /* as the sink sees it: after transforms,
	                         folded */
	syncd_copy_request req;
	char *name; /* schema.table, for people */
	syncd_copy_how how;
	bool *finished; /* per chunk: by an earlier, unfinished copy */
	char *earlier;  /* that copy's source_state, or NULL */
	atomic_uint_fast64_t rows, bytes;
	atomic_uint chunks_done, active;
	int64_t started_ms, finished_ms; /* under fc->lock */
} fc_table;

typedef struct fc_item {
	fc_table *t;
	uint32_t chunk;
	bool again; /* finished earlier: only its changed rows, unrecorded */
	int64_t est_bytes;
} fc_item;

typedef struct fullcopy {
	job *j;
	uint32_t stream;
	const char *snapshot;
	syncd_copy_table *copies; /* the snapshot's tables, core-sized */
	fc_table *tables;
	size_t ntables;
	fc_item *items;
	size_t nitems, next;
	pthread_mutex_t lock;
	atomic_int running;
	int64_t started_ms;
	/* with transforms: rows are parsed, run through them (one thread at
	 * a time) and written again */
	bool transform;
} fullcopy;

typedef struct fc_worker {
	fullcopy *fc;
	int id;
	pthread_t thread;
	void *reader, *cs;
	/* the chunk being moved */
	fc_table *t;
	uint64_t rows;
	syncd_status sink_status; /* why copy_data failed */
	/* with transforms: one row's values, its text, what goes out */
	syncd_value *vals;
	uint32_t nvals;
	strbuf text, out;
	uint64_t out_rows;
} fc_worker;

static const syncd_source_ops *
fc_src(fullcopy *fc)
{
	return &fc->j->source->plugin->ops.source;
}

static const syncd_sink_ops *
fc_sink(fullcopy *fc)
{
	return &fc->j->sink->plugin->ops.sink;
}

bool
fullcopy_sink_copies(const job *j)
{
	/* the loader made sure the six come together */
	return j->sink->plugin->ops.sink.copy_open != NULL;
}

/* ---- moving one chunk ---------------------------------------------------
 */

static size_t
fc_count_rows(const char *data, size_t len)
{
	size_t n = 0;
	const char *p = data, *end = data + len;

	while ((p = memchr(p, '\n', (size_t) (end - p))) != NULL) {
		n++;
		p++;
	}
	return n;
}

/* The end of the transform chain: a copied row as the transforms made it,
 * written for the sink in the shape the sink was told. */
static syncd_status
fc_encode(void *ctx, const syncd_event *ev)
{
	fc_worker *w = ctx;

	if ((ev->type != SYNCD_EV_INSERT && ev->type != SYNCD_EV_UPDATE) ||
	    !ev->rel || ev->rel->id != w->t->srel->id || !ev->new_values)
		return SYNCD_OK;
	if (ev->rel->ncolumns != w->t->rel->ncolumns) {
		job_fail(
		    w->fc->j,
		    "full copy of %s: a transform changed the table's shape "
		    "within the copy (%u columns, %u announced)",
		    w->t->name, ev->rel->ncolumns, w->t->rel->ncolumns);
		return SYNCD_FATAL;
	}
	copytext_write_row(&w->out, ev->new_values, ev->rel->ncolumns);
	w->out_rows++;
	return SYNCD_OK;
}

/* Each row of a piece through the transforms; w->out gets what comes out. */
static syncd_status
fc_transform(fc_worker *w, const char *data, size_t len)
{
	fullcopy *fc = w->fc;
	const syncd_relation *rel = w->t->srel;
	syncd_status st = SYNCD_OK;
	size_t at = 0;

	if (w->nvals < rel->ncolumns) {
		w->vals = xrealloc(w->vals, rel->ncolumns * sizeof *w->vals);
		w->nvals = rel->ncolumns;
	}
	w->out.len = 0;
	w->out_rows = 0;
	while (at < len && st == SYNCD_OK) {
		const char *err = NULL;
		size_t used =
		    copytext_parse_row(data + at, len - at, rel->ncolumns,
		                       w->vals, &w->text, &err);
		syncd_event ev = {.size = sizeof ev,
		                  .type = SYNCD_EV_INSERT,
		                  .stream = fc->stream,
		                  .rel = rel,
		                  .new_values = w->vals};
		if (used == 0) {
			job_fail(
			    fc->j,
			    "full copy of %s: the source sent a row that is "
			    "not COPY text: %s",
			    w->t->name, err);
			return SYNCD_FATAL;
		}
		at += used;
		st = chain_apply(fc->j, &ev, fc_encode, w);
	}
	return st;
}

/* Source -> sink, one piece at a time. */
static syncd_status
fc_forward(void *ctx, const char *data, size_t len)
{
	fc_worker *w = ctx;
	fullcopy *fc = w->fc;
	syncd_status st;
	size_t rows;

	if (atomic_load(&fc->j->stopping) || atomic_load(&fc->j->failed)) {
		w->sink_status = SYNCD_OK;
		return SYNCD_FATAL;
	}
	if (fc->transform) {
		st = fc_transform(w, data, len);
		if (st != SYNCD_OK) {
			w->sink_status = SYNCD_OK; /* the job failed already */
			return SYNCD_FATAL;
		}
		st = fc_sink(fc)->copy_data(w->cs, w->out.data, w->out.len);
		if (st != SYNCD_OK) {
			w->sink_status = st;
			return st;
		}
		w->rows += w->out_rows;
		atomic_fetch_add(&w->t->rows, w->out_rows);
		atomic_fetch_add(&w->t->bytes, w->out.len);
		return SYNCD_OK;
	}
	st = fc_sink(fc)->copy_data(w->cs, data, len);
	if (st != SYNCD_OK) {
		w->sink_status = st;
		return st;
	}
	rows = fc_count_rows(data, len);
	w->rows += rows;
	atomic_fetch_add(&w->t->rows, rows);
	atomic_fetch_add(&w->t->bytes, len);
	return SYNCD_OK;
}

static void
fc_sleep_ms(job *j, int64_t ms)
{
	while (ms > 0 && !atomic_load(&j->stopping) &&
	       !atomic_load(&j->failed)) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
		ms -= 100;
	}
}

/* Moves one chunk; a lost destination connection is retried. */
static bool
fc_move(fc_worker *w, fc_item *it)
{
	fullcopy *fc = w->fc;
	job *j = fc->j;
	fc_table *t = it->t;
	const char *chunk = t->src->chunks[it->chunk];
	int64_t budget = optset_num(&j->job_opts, "reconnect.max_wait");
	uint32_t n = it->chunk;
	int64_t waited = 0;
	bool again_rows = false; /* the sink asked for the chunk again */

	for (int attempt = 0;; attempt++) {
		int64_t wait;
		syncd_status st, rst;

		if (!w->cs) {
			st = fc_sink(fc)->copy_open(j->sink->state, &w->cs);
			if (st != SYNCD_OK)
				goto sink_failed;
		}
		st = fc_sink(fc)->copy_begin(w->cs, &t->req, n, t->how,
		                             !it->again);
		if (st != SYNCD_OK)
			goto sink_failed;
		w->t = t;
		w->rows = 0;
		w->sink_status = SYNCD_OK;
		/* shown as being copied until the destination has it all:
		 * with triggers or big indexes, copy_end is the long part */
		atomic_fetch_add(&t->active, 1);
		rst = fc_src(fc)->copy_read(w->reader, t->src, it->chunk,
		                            it->again ? t->earlier : NULL,
		                            fc_forward, w);
		if (rst == SYNCD_OK) {
			st = fc_sink(fc)->copy_end(w->cs, true, w->rows);
			atomic_fetch_sub(&t->active, 1);
		} else {
			atomic_fetch_sub(&t->active, 1);
			/* undo this attempt's count; the chunk comes again */
			atomic_fetch_sub(&t->rows, w->rows);
			fc_sink(fc)->copy_end(w->cs, false, 0);
			if (w->sink_status == SYNCD_OK) {
				if (atomic_load(&j->stopping) ||
				    atomic_load(&j->failed))
					return false;
				job_fail(j, "%s reading %s (%s): %s",
				         j->source->prefix, t->name, chunk,
				         plugerr_msg(j->source));
				return false;
			}
			st = w->sink_status;
		}
		if (st == SYNCD_OK) {
			atomic_fetch_add(&t->chunks_done, 1);
			return true;
		}
		if (st == SYNCD_REJECT && !again_rows) {
			/* the destination refused rows: the sink isolates
			 * them when the chunk comes once more */
			atomic_fetch_sub(&t->rows, w->rows);
			again_rows = true;
			attempt--;
			continue;
		}
	sink_failed:
		if (st != SYNCD_RETRY || waited >= budget) {
			job_fail(j, "%s copying %s (%s) into %s.%s: %s",
			         j->sink->prefix, t->name, chunk,
			         t->rel->target_schema, t->rel->target_table,
			         plugerr_msg(j->sink));
			return false;
		}
		/* exponential backoff within reconnect.max_wait */
		wait = backoff_ms(attempt);
		metrics_add("reconnects_total", "side=\"sink\"", 1);
		if (wait > budget - waited)
			wait = budget - waited;
		log_warning("%s copying %s (%s): %s; reconnecting in %.1f s "
		            "(attempt %d)",
		            j->sink->prefix, t->name, chunk,
		            plugerr_msg(j->sink), (double) wait / 1000.0,
		            attempt + 1);
		if (w->cs) {
			fc_sink(fc)->copy_close(w->cs);
			w->cs = NULL;
			again_rows = false; /* a new session knows nothing */
		}
		fc_sleep_ms(j, wait);
		waited += wait;
		if (atomic_load(&j->stopping) || atomic_load(&j->failed))
			return false;
	}
}

static void *
fc_worker_main(void *arg)
{
	fc_worker *w = arg;
	fullcopy *fc = w->fc;
	job *j = fc->j;
	syncd_status st;

	thread_name("syncd-copy%d", w->id);
	st = fc_src(fc)->copy_open(j->source->state, fc->stream, fc->snapshot,
	                           &w->reader);
	if (st != SYNCD_OK) {
		job_fail(j, "%s full copy: %s", j->source->prefix,
		         plugerr_msg(j->source));
		w->reader = NULL;
		goto out;
	}
	for (;;) {
		fc_item *it = NULL;

		if (atomic_load(&j->stopping) || atomic_load(&j->failed))
			break;
		pthread_mutex_lock(&fc->lock);
		if (fc->next < fc->nitems) {
			it = &fc->items[fc->next++];
			if (!it->t->started_ms)
				it->t->started_ms = now_ms();
		}
		pthread_mutex_unlock(&fc->lock);
		if (!it)
			break;
		if (!fc_move(w, it))
			break; /* failed (the job is) or stopping */
		if (atomic_load(&it->t->chunks_done) == it->t->src->nchunks) {
			pthread_mutex_lock(&fc->lock);
			it->t->finished_ms = now_ms();
			pthread_mutex_unlock(&fc->lock);
		}
	}
out:
	if (w->cs)
		fc_sink(fc)->copy_close(w->cs);
	if (w->reader)
		fc_src(fc)->copy_close(w->reader);
	w->cs = w->reader = NULL;
	free(w->vals);
	sb_free(&w->text);
	sb_free(&w->out);
	plugerr_clear();
	atomic_fetch_sub(&fc->running, 1);
	return NULL;
}

/* ---- progress -----------------------------------------------------------
 */

static void
fc_human_bytes(char *out, size_t n, double b)
{
	if (b >= 1e9)
		snprintf(out, n, "%.2f GB", b / 1e9);
	else
		snprintf(out, n, "%.1f MB", b / 1e6);
}

static void
fc_duration(char *out, size_t n, double s)
{
	long v = (long) (s + 0.5);

	if (v >= 3600)
		snprintf(out, n, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60,
		         v % 60);
	else
		snprintf(out, n, "%ld:%02ld", v / 60, v % 60);
}

/* A count for a narrow line: 950, 12.3k, 4.5M, 1.23G. */
static void
fc_human_count(char *out, size_t n, double v)
{
	if (v >= 1e9)
		snprintf(out, n, "%.2fG", v / 1e9);
	else if (v >= 1e6)
		snprintf(out, n, "%.1fM", v / 1e6);
	else if (v >= 1e4)
		snprintf(out, n, "%.1fk", v / 1e3);
	else
		snprintf(out, n, "%.0f", v);
}

/* One line for the whole phase: tables, rows of the estimate, volume,
 * rate, ETA. Compact (for a narrow terminal): what matters most first, in
 * about 75 columns (a cut takes the volume first). */
static void
fc_overall(fullcopy *fc, char *out, size_t n, bool compact)
{
	uint64_t rows = 0, bytes = 0;
	int64_t est = 0;
	size_t done = 0, total = 0;
	double secs = (double) (now_ms() - fc->started_ms) / 1000.0;
	char vol[32], eta[48] = "", d[24] = "", nrows[16], nest[16], nrate[16];
	double rate, pct;

	for (size_t i = 0; i < fc->ntables; i++) {
		fc_table *t = &fc->tables[i];
		uint64_t r = atomic_load(&t->rows);
		if (t->how == SYNCD_COPY_SKIP)
			continue;
		total++;
		if (atomic_load(&t->chunks_done) == t->src->nchunks)
			done++;
		rows += r;
		bytes += atomic_load(&t->bytes);
		/* the catalog's estimate, never below what is copied */
		if (t->src->est_rows >= 0)
			est += (int64_t) r > t->src->est_rows
			           ? (int64_t) r
			           : t->src->est_rows;
		else
			est += (int64_t) r;
	}
	rate = secs > 0 ? (double) rows / secs : 0;
	pct = est > 0 ? 100.0 * (double) rows / (double) est : 100.0;
	fc_human_bytes(vol, sizeof vol, (double) bytes);
	if (rate > 0 && est > (int64_t) rows) {
		fc_duration(d, sizeof d,
		            (double) (est - (int64_t) rows) / rate);
		snprintf(eta, sizeof eta, ", ETA %s", d);
	}
	if (compact) {
		fc_human_count(nrows, sizeof nrows, (double) rows);
		fc_human_count(nest, sizeof nest, (double) est);
		fc_human_count(nrate, sizeof nrate, rate);
		snprintf(out, n,
		         "full copy: %.0f%%%s, %zu/%zu tables, %s/~%s rows, "
		         "%s rows/s, %s",
		         pct, eta, done, total, nrows, nest, nrate, vol);
		return;
	}
	snprintf(out, n,
	         "full copy: %zu of %zu tables, %" PRIu64 " of ~%" PRId64
	         " rows (%.0f%%), %s, %.0f rows/s%s",
	         done, total, rows, est, pct, vol, rate, eta);
}

/* A table's line without its name: share of the estimate, rows, volume,
 * chunks. */
static char *
fc_table_numbers(fc_table *t)
{
	uint64_t r = atomic_load(&t->rows);
	char vol[32], pct[16] = "    ";

	fc_human_bytes(vol, sizeof vol, (double) atomic_load(&t->bytes));
	if (t->src->est_rows > 0)
		snprintf(pct, sizeof pct, "%3.0f%%",
		         r >= (uint64_t) t->src->est_rows
		             ? 99.0
		             : 100.0 * (double) r / (double) t->src->est_rows);
	return xasprintf(" %s %10" PRIu64 " rows  %8s  chunks %u/%u", pct, r,
	                 vol, atomic_load(&t->chunks_done), t->src->nchunks);
}

/* The live display on a terminal: the overall line and one line per table
 * being copied, each fitting the terminal's width (display.c cuts what
 * would not). The name column is as wide as the widest name shown, or as
 * what is left beside the numbers, names cut in the middle. */
static void
fc_draw(fullcopy *fc)
{
	int cols = display_columns(), namew = 0, numw = 0;
	char *lines[FC_LIVE_MAX_LINES], *nums[FC_LIVE_MAX_LINES];
	fc_table *shown[FC_LIVE_MAX_LINES];
	char overall[256];
	size_t n = 0, more = 0;

	fc_overall(fc, overall, sizeof overall, false);
	if (display_text_width(overall) > cols)
		fc_overall(fc, overall, sizeof overall, true);
	for (size_t i = 0; i < fc->ntables; i++) {
		fc_table *t = &fc->tables[i];
		int w;
		if (t->how == SYNCD_COPY_SKIP || !atomic_load(&t->active))
			continue;
		if (n == FC_LIVE_MAX_LINES - 1) {
			more++;
			continue;
		}
		shown[n] = t;
		nums[n] = fc_table_numbers(t);
		if ((w = display_text_width(t->name)) > namew)
			namew = w;
		if ((w = display_text_width(nums[n])) > numw)
			numw = w;
		n++;
	}
	if (more > 0) {
		/* the last line says how many are not shown instead */
		n--;
		more++;
		free(nums[n]);
	}
	if (namew > cols - 2 - numw)
		namew = cols - 2 - numw;
	if (namew < 8)
		namew = 8;
	lines[0] = overall;
	for (size_t i = 0; i < n; i++) {
		strbuf sb = {0};
		sb_puts(&sb, "  ");
		display_put(&sb, shown[i]->name, namew, true);
		sb_puts(&sb, nums[i]);
		free(nums[i]);
		lines[i + 1] = sb_steal(&sb);
	}
	if (more > 0)
		lines[++n] = xasprintf("  and %zu more tables", more);
	display_update((const char *const *) lines, n + 1);
	for (size_t i = 1; i <= n; i++)
		free(lines[i]);
}

/* The per-table figures of the monitor (syncd_full_*). */
static void
fc_publish(fullcopy *fc)
{
	for (size_t i = 0; i < fc->ntables; i++) {
		fc_table *t = &fc->tables[i];
		const syncd_relation *r = t->src->rel;
		uint64_t rows = atomic_load(&t->rows);
		char *l;
		if (t->how == SYNCD_COPY_SKIP)
			continue;
		l = metrics_labels("database",
		                   r && r->database
		                       ? r->database
		                       : job_stream_name(fc->j, fc->stream),
		                   "table", t->name, NULL);
		metrics_set("full_rows_copied", l, (double) rows);
		metrics_set("full_rows_estimated", l,
		            t->src->est_rows > (int64_t) rows
		                ? (double) t->src->est_rows
		                : (double) rows);
		metrics_set("full_table_done", l,
		            atomic_load(&t->chunks_done) == t->src->nchunks);
		free(l);
	}
}

static void
fc_summary(fullcopy *fc)
{
	uint64_t rows = 0, bytes = 0;
	double secs = (double) (now_ms() - fc->started_ms) / 1000.0;
	char vol[32];

	for (size_t i = 0; i < fc->ntables; i++) {
		fc_table *t = &fc->tables[i];
		uint64_t r = atomic_load(&t->rows);
		double ts;
		if (t->how == SYNCD_COPY_SKIP ||
		    atomic_load(&t->chunks_done) != t->src->nchunks)
			continue;
		ts = (double) (t->finished_ms - t->started_ms) / 1000.0;
		fc_human_bytes(vol, sizeof vol,
		               (double) atomic_load(&t->bytes));
		log_info("copied %s -> %s.%s: %" PRIu64
		         " rows, %s in %.1f s (%.0f rows/s)%s",
		         t->name, t->rel->target_schema, t->rel->target_table,
		         r, vol, ts, ts > 0 ? (double) r / ts : (double) r,
		         t->how == SYNCD_COPY_MERGE ? ", merged by key" : "");
		rows += r;
		bytes += atomic_load(&t->bytes);
	}
	fc_human_bytes(vol, sizeof vol, (double) bytes);
	log_info("full copy finished: %" PRIu64
	         " rows, %s in %.1f s (%.0f rows/s)",
	         rows, vol, secs, secs > 0 ? (double) rows / secs : 0.0);
}

/* ---- the shape transforms give a table ----------------------------------
 */

static syncd_status
fc_capture(void *ctx, const syncd_event *ev)
{
	fc_table *t = ctx;

	if (ev->type != SYNCD_EV_RELATION || !ev->rel || t->rel)
		return SYNCD_OK;
	t->rel = router_copy(t->j, ev->rel, ROUTER_SINK);
	return SYNCD_OK;
}

static int
fc_item_cmp(const void *a, const void *b)
{
	const fc_item *x = a, *y = b;

	if (x->est_bytes != y->est_bytes)
		return x->est_bytes > y->est_bytes ? -1 : 1;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

/* ---- the phase, with the sink's copy operations --------------------------
 */

/* Asks the sink how to take every table; false on failure (job failed). */
static bool
fc_plan(fullcopy *fc, bool again, size_t *ncopy)
{
	job *j = fc->j;
	void *cs = NULL;
	syncd_status st = fc_sink(fc)->copy_open(j->sink->state, &cs);

	*ncopy = 0;
	if (st != SYNCD_OK) {
		job_fail(j, "%s full copy: %s", j->sink->prefix,
		         plugerr_msg(j->sink));
		return false;
	}
	for (size_t i = 0; i < fc->ntables; i++) {
		fc_table *t = &fc->tables[i];
		syncd_copy_plan plan = {.size = sizeof plan,
		                        .finished = t->finished};
		uint32_t nfinished = 0;

		memset(t->finished, 0, t->src->nchunks * sizeof *t->finished);
		t->req.again = again;
		st = fc_sink(fc)->copy_table(cs, &t->req, &plan);
		if (st != SYNCD_OK) {
			job_fail(j, "%s full copy of %s into %s.%s: %s",
			         j->sink->prefix, t->name,
			         t->rel->target_schema, t->rel->target_table,
			         plugerr_msg(j->sink));
			fc_sink(fc)->copy_close(cs);
			return false;
		}
		t->how = plan.how;
		free(t->earlier);
		t->earlier = plan.earlier ? xstrdup(plan.earlier) : NULL;
		if (t->how != SYNCD_COPY_SKIP)
			(*ncopy)++;
		for (uint32_t c = 0; c < t->src->nchunks; c++)
			nfinished += t->finished[c];
		if (t->how == SYNCD_COPY_MERGE && nfinished > 0)
			log_info("resuming the copy of %s: %u of %u chunk(s) "
			         "were finished earlier; of those, only rows "
			         "changed since are copied again",
			         t->name, nfinished, t->src->nchunks);
		else if (nfinished > 0) /* only a resume may say so */
			memset(t->finished, 0,
			       t->src->nchunks * sizeof *t->finished);
	}
	fc_sink(fc)->copy_close(cs);
	return true;
}

/* The parallel copy: chunks biggest first, `concurrency` threads, progress
 * shown from this thread. */
static syncd_status
fc_copy(fullcopy *fc, bool again)
{
	job *j = fc->j;
	fc_worker *workers = NULL;
	size_t ncopy = 0, nthreads;
	syncd_status rc = SYNCD_FATAL;
	bool live;

	if (!fc_plan(fc, again, &ncopy))
		return SYNCD_FATAL;
	/* mode = full: a run after a finished one copies everything again */
	if (ncopy == 0 && !again && fc->ntables > 0 && !j->info.incremental) {
		log_info("every table was copied by an earlier run; mode = "
		         "full copies them again from a new snapshot");
		if (!fc_plan(fc, true, &ncopy))
			return SYNCD_FATAL;
	}
	if (ncopy < fc->ntables)
		log_info("full copy: %zu of %zu table(s) were finished by an "
		         "earlier run and are not copied again",
		         fc->ntables - ncopy, fc->ntables);
	for (size_t i = 0; i < fc->ntables; i++) {
		fc_table *t = &fc->tables[i];
		if (t->how == SYNCD_COPY_SKIP)
			continue;
		fc->items = xrealloc(fc->items, (fc->nitems + t->src->nchunks) *
		                                    sizeof *fc->items);
		for (uint32_t c = 0; c < t->src->nchunks; c++) {
			int64_t est = t->src->est_bytes > 0
			                  ? t->src->est_bytes / t->src->nchunks
			                  : 0;
			/* a finished chunk is read again, for few rows */
			fc->items[fc->nitems++] = (fc_item){
			    .t = t,
			    .chunk = c,
			    .again = t->finished[c],
			    .est_bytes = t->finished[c] ? est / 8 : est};
		}
	}
	if (fc->nitems == 0)
		return SYNCD_OK;
	qsort(fc->items, fc->nitems, sizeof *fc->items, fc_item_cmp);
	nthreads = (size_t) optset_num(&j->job_opts, "concurrency");
	if (nthreads > fc->nitems)
		nthreads = fc->nitems;
	log_info("full copy of stream %u: %zu table(s) in %zu chunk(s), %zu "
	         "thread(s)",
	         fc->stream, ncopy, fc->nitems, nthreads);
	fc->started_ms = now_ms();
	workers = xcalloc(nthreads, sizeof *workers);
	for (size_t i = 0; i < nthreads; i++) {
		workers[i].fc = fc;
		workers[i].id = (int) i;
		atomic_fetch_add(&fc->running, 1);
		if (pthread_create(&workers[i].thread, NULL, fc_worker_main,
		                   &workers[i]) != 0) {
			atomic_fetch_sub(&fc->running, 1);
			job_fail(j, "could not start a copy thread");
			nthreads = i;
			break;
		}
	}
	/* a terminal gets the live area (log lines go in above it), anything
	 * else a line every few seconds */
	live = display_begin();
	fc_publish(fc);
	for (int64_t last = now_ms(), shown = last;
	     atomic_load(&fc->running) > 0;) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		int64_t now;
		nanosleep(&ts, NULL);
		now = now_ms();
		if (now - shown >= 1000) {
			fc_publish(fc);
			shown = now;
		}
		if (live && now - last >= FC_DRAW_EVERY_MS) {
			fc_draw(fc);
			last = now;
		} else if (!live && now - last >= FC_LOG_EVERY_MS) {
			char line[256];
			fc_overall(fc, line, sizeof line, false);
			log_info("%s", line);
			last = now;
		}
	}
	for (size_t i = 0; i < nthreads; i++)
		pthread_join(workers[i].thread, NULL);
	free(workers);
	fc_publish(fc);
	/* the summary below says how it ended */
	if (live)
		display_end();
	if (job_failed(j))
		return SYNCD_FATAL;
	if (job_stopping(j)) {
		log_info("full copy stopped; finished tables are recorded, "
		         "and the next start copies the others again");
		return SYNCD_OK;
	}
	fc_summary(fc);
	rc = SYNCD_OK;
	return rc;
}

/* ---- the phase, through write() ------------------------------------------
 *
 * A sink without copy operations gets the snapshot as one transaction of
 * the stream, committed just below the snapshot's position: per table a
 * TRUNCATE (a copy done again after a failure must not keep rows deleted
 * since) and its rows as INSERTs, through the transforms and the workers
 * like any change. Read by one reader, in this thread: the pipeline takes
 * one stream's events in order.
 */

typedef struct fc_writer {
	fullcopy *fc;
	pipeline *p;
	fc_table *t;
	syncd_lsn lsn;
	int64_t time;
	syncd_value *vals;
	char *text;
	size_t textcap;
	strbuf rest; /* a row cut between two pieces */
	uint64_t rows;
} fc_writer;

static syncd_status
fc_write_rows(fc_writer *w, const char *data, size_t len)
{
	fc_table *t = w->t;
	size_t at = 0;

	if (job_stopping(w->fc->j))
		return SYNCD_FATAL;
	while (at < len) {
		const char *nl = memchr(data + at, '\n', len - at);
		const char *row = data + at, *err = NULL;
		size_t rowlen;
		syncd_event ev = {.size = sizeof ev,
		                  .type = SYNCD_EV_INSERT,
		                  .lsn = w->lsn,
		                  .commit_time = w->time,
		                  .stream = w->fc->stream,
		                  .rel = t->src->rel,
		                  .new_values = w->vals};
		syncd_status st;

		if (!nl) { /* the row goes on in the next piece */
			sb_append(&w->rest, row, len - at);
			return SYNCD_OK;
		}
		rowlen = (size_t) (nl - row) + 1;
		if (w->rest.len) {
			sb_append(&w->rest, row, rowlen);
			row = w->rest.data;
			rowlen = w->rest.len;
		}
		if (rowlen > w->textcap) {
			w->textcap = rowlen * 2;
			w->text = xrealloc(w->text, w->textcap);
		}
		if (syncd_copytext_parse_row(row, rowlen, t->src->rel->ncolumns,
		                             w->vals, w->text, &err) == 0) {
			job_fail(
			    w->fc->j,
			    "full copy of %s: the source sent a row that is "
			    "not COPY text: %s",
			    t->name, err);
			return SYNCD_FATAL;
		}
		at += (size_t) (nl - (data + at)) + 1;
		w->rest.len = 0;
		st = pipeline_emit(w->p, &ev);
		if (st != SYNCD_OK)
			return st;
		w->rows++;
		atomic_fetch_add(&t->rows, 1);
		atomic_fetch_add(&t->bytes, rowlen);
	}
	return SYNCD_OK;
}

static syncd_status
fc_write_fn(void *ctx, const char *data, size_t len)
{
	return fc_write_rows(ctx, data, len);
}

static syncd_status
fc_write(fullcopy *fc, pipeline *p, syncd_lsn snapshot_lsn)
{
	job *j = fc->j;
	fc_writer w = {.fc = fc, .p = p};
	void *reader = NULL;
	syncd_status st;
	syncd_event ev = {.size = sizeof ev, .stream = fc->stream};

	/* just below the snapshot: a restart after it skips the copy */
	w.lsn = snapshot_lsn > 1 ? snapshot_lsn - 1 : 1;
	w.time = (int64_t) time(NULL) * 1000000;
	ev.lsn = w.lsn;
	ev.commit_time = w.time;
	st = fc_src(fc)->copy_open(j->source->state, fc->stream, fc->snapshot,
	                           &reader);
	if (st != SYNCD_OK) {
		job_fail(j, "%s full copy: %s", j->source->prefix,
		         plugerr_msg(j->source));
		return SYNCD_FATAL;
	}
	log_info("full copy of stream %u: %zu table(s) through the sink's "
	         "write(), one transaction at " SYNCD_LSN_FMT,
	         fc->stream, fc->ntables, SYNCD_LSN_ARGS(w.lsn));
	fc->started_ms = now_ms();
	ev.type = SYNCD_EV_BEGIN;
	st = pipeline_emit(p, &ev);
	for (size_t i = 0; i < fc->ntables && st == SYNCD_OK; i++) {
		fc_table *t = &fc->tables[i];
		const syncd_relation *rels[1] = {t->src->rel};
		syncd_event rel = ev, trunc = ev;

		w.t = t;
		t->started_ms = now_ms();
		w.vals = xrealloc(w.vals,
		                  (t->src->rel->ncolumns + 1) * sizeof *w.vals);
		rel.type = SYNCD_EV_RELATION;
		rel.rel = t->src->rel;
		trunc.type = SYNCD_EV_TRUNCATE;
		trunc.rel = t->src->rel;
		trunc.nrels = 1;
		trunc.rels = rels;
		st = pipeline_emit(p, &rel);
		if (st == SYNCD_OK)
			st = pipeline_emit(p, &trunc);
		for (uint32_t c = 0; c < t->src->nchunks && st == SYNCD_OK;
		     c++) {
			w.rest.len = 0;
			st = fc_src(fc)->copy_read(reader, t->src, c, NULL,
			                           fc_write_fn, &w);
			if (st != SYNCD_OK && !job_failed(j) &&
			    !job_stopping(j))
				job_fail(j, "%s reading %s (%s): %s",
				         j->source->prefix, t->name,
				         t->src->chunks[c],
				         plugerr_msg(j->source));
			else if (st == SYNCD_OK && w.rest.len)
				st = fc_write_rows(&w, "\n", 1);
			atomic_fetch_add(&t->chunks_done, 1);
		}
		t->finished_ms = now_ms();
		fc_publish(fc);
	}
	fc_src(fc)->copy_close(reader);
	free(w.vals);
	free(w.text);
	sb_free(&w.rest);
	if (st == SYNCD_OK) {
		ev.type = SYNCD_EV_COMMIT;
		st = pipeline_emit(p, &ev);
	}
	if (st == SYNCD_OK)
		st = pipeline_drain(p);
	if (job_failed(j))
		return SYNCD_FATAL;
	if (job_stopping(j)) {
		log_info("full copy stopped; the next start copies the tables "
		         "again");
		return SYNCD_OK;
	}
	if (st != SYNCD_OK) {
		job_fail(j, "full copy of stream %u failed", fc->stream);
		return SYNCD_FATAL;
	}
	fc_summary(fc);
	return SYNCD_OK;
}

syncd_status
fullcopy_run(job *j, pipeline *p, uint32_t stream, const syncd_snapshot *snap,
             bool again)
{
	fullcopy fc = {.j = j, .stream = stream, .snapshot = snap->name};
	const char *first = (const char *) snap->tables;
	size_t stride = snap->ntables && snap->tables[0].size
	                    ? snap->tables[0].size
	                    : sizeof(syncd_copy_table);
	syncd_status rc = SYNCD_FATAL;

	pthread_mutex_init(&fc.lock, NULL);
	fc.transform = j->ntransforms > 0;
	fc.copies = xcalloc(snap->ntables + 1, sizeof *fc.copies);
	fc.tables = xcalloc(snap->ntables + 1, sizeof *fc.tables);
	for (size_t k = 0; k < snap->ntables; k++) {
		const syncd_copy_table *in =
		    (const syncd_copy_table *) (first + k * stride);
		size_t i = fc.ntables;
		fc_table *t = &fc.tables[i];

		/* a table waiting to be copied while streaming is, from a
		 * snapshot of its own (see livecopy.c) */
		if (!again && j->info.incremental && live_requested(j, in->rel)) {
			log_info("full copy: %s.%s is copied while streaming "
			         "(syncd --resync TABLE, or a table that "
			         "joined)",
			         in->rel->schema, in->rel->table);
			continue;
		}
		fc.ntables++;
		memcpy(&fc.copies[i], in,
		       stride < sizeof *fc.copies ? stride : sizeof *fc.copies);
		fc.copies[i].size = sizeof *fc.copies;
		fc.copies[i].snapshot_lsn = snap->lsn;
		t->j = j;
		t->src = &fc.copies[i];
		t->name = xasprintf("%s.%s", in->rel->schema, in->rel->table);
		t->finished =
		    xcalloc(in->nchunks ? in->nchunks : 1, sizeof *t->finished);
		if (!fullcopy_sink_copies(j)) {
			/* the pipeline routes and transforms; this copy only
			 * names the target in progress lines */
			t->rel = router_copy(j, in->rel, ROUTER_SINK);
			t->how = SYNCD_COPY_DIRECT;
			continue;
		}
		t->srel = router_copy(j, in->rel, 0);
		if (fc.transform) {
			/* the sink sees the table as the transforms make it */
			syncd_event ev = {.size = sizeof ev,
			                  .type = SYNCD_EV_RELATION,
			                  .stream = stream,
			                  .rel = t->srel};
			if (chain_apply(j, &ev, fc_capture, t) != SYNCD_OK ||
			    !t->rel) {
				if (!job_failed(j))
					job_fail(j,
					         "full copy: the transforms "
					         "dropped table %s",
					         t->name);
				goto done;
			}
		} else
			t->rel = router_copy(j, in->rel, ROUTER_SINK);
		t->req = (syncd_copy_request){.size = sizeof t->req,
		                              .rel = t->rel,
		                              .stream = stream,
		                              .table = t->src};
	}
	rc = fullcopy_sink_copies(j) ? fc_copy(&fc, again)
	                             : fc_write(&fc, p, snap->lsn);
done:
	for (size_t i = 0; i < fc.ntables; i++) {
		router_free(fc.tables[i].srel);
		router_free(fc.tables[i].rel);
		free(fc.tables[i].name);
		free(fc.tables[i].finished);
		free(fc.tables[i].earlier);
	}
	free(fc.tables);
	free(fc.copies);
	free(fc.items);
	pthread_mutex_destroy(&fc.lock);
	return rc;
}
