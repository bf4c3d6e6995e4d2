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

#include "copytext.h"
#include "fullcopy.h"
#include "log.h"
#include "util.h"

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
	const syncd_copy_table *src;
	syncd_relation rel;    /* routed: target names, folded columns */
	syncd_relation shaped; /* with transforms: as they make it */
	bool has_shaped;
	char *name; /* schema.table, for people */
	syncd_copy_how how;
	bool *finished; /* per chunk: by an earlier, unfinished copy */
	char earlier[SYNCD_COPY_STATE_MAX]; /* that copy's source_state */
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
	pthread_mutex_t chain_lock;
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
fullcopy_supported(const job *j, const char **who)
{
	const syncd_source_ops *so = &j->source->plugin->ops.source;
	const syncd_sink_ops *si = &j->sink->plugin->ops.sink;

	if (!so->copy_open || !so->copy_read || !so->copy_close) {
		*who = j->source->prefix;
		return false;
	}
	if (!si->copy_open || !si->copy_close || !si->copy_table ||
	    !si->copy_begin || !si->copy_data || !si->copy_end) {
		*who = j->sink->prefix;
		return false;
	}
	return true;
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
	    !ev->rel || ev->rel->id != w->t->src->rel->id || !ev->new_values)
		return SYNCD_OK;
	if (ev->rel->ncolumns != w->t->rel.ncolumns) {
		job_fail(
		    w->fc->j,
		    "full copy of %s: a transform changed the table's shape "
		    "within the copy (%u columns, %u announced)",
		    w->t->name, ev->rel->ncolumns, w->t->rel.ncolumns);
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
	const syncd_relation *rel = w->t->src->rel;
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
		syncd_event ev = {.type = SYNCD_EV_INSERT,
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
		pthread_mutex_lock(&fc->chain_lock);
		st = job_transform(fc->j, &ev, fc_encode, w);
		pthread_mutex_unlock(&fc->chain_lock);
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
		st = fc_sink(fc)->copy_begin(w->cs, &t->rel, fc->stream, t->src,
		                             it->chunk, t->how, !it->again);
		if (st != SYNCD_OK)
			goto sink_failed;
		w->t = t;
		w->rows = 0;
		w->sink_status = SYNCD_OK;
		atomic_fetch_add(&t->active, 1);
		rst = fc_src(fc)->copy_read(w->reader, t->src, it->chunk,
		                            it->again ? t->earlier : NULL,
		                            fc_forward, w);
		atomic_fetch_sub(&t->active, 1);
		if (rst == SYNCD_OK)
			st = fc_sink(fc)->copy_end(w->cs, true, w->rows);
		else {
			/* undo this attempt's count; the chunk comes again */
			atomic_fetch_sub(&t->rows, w->rows);
			fc_sink(fc)->copy_end(w->cs, false, 0);
			if (w->sink_status == SYNCD_OK) {
				if (atomic_load(&j->stopping) ||
				    atomic_load(&j->failed))
					return false;
				job_fail(j, "%s reading %s (%s): %s",
				         j->source->prefix, t->name, chunk,
				         host_error(j->source));
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
			         t->rel.target_schema, t->rel.target_table,
			         host_error(j->sink));
			return false;
		}
		/* exponential backoff within reconnect.max_wait */
		wait = 1000LL << (attempt < 16 ? attempt : 16);
		if (wait > budget - waited)
			wait = budget - waited;
		log_warning("%s copying %s (%s): %s; reconnecting in %.1f s "
		            "(attempt %d)",
		            j->sink->prefix, t->name, chunk,
		            host_error(j->sink), (double) wait / 1000.0,
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

	st = fc_src(fc)->copy_open(j->source->state, fc->stream, fc->snapshot,
	                           &w->reader);
	if (st != SYNCD_OK) {
		job_fail(j, "%s full copy: %s", j->source->prefix,
		         host_error(j->source));
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
	host_error_clear();
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

/* One line for the whole phase: tables, rows of the estimate, volume,
 * rate, ETA. */
static void
fc_overall(fullcopy *fc, char *out, size_t n)
{
	uint64_t rows = 0, bytes = 0;
	int64_t est = 0;
	size_t done = 0, total = 0;
	double secs = (double) (now_ms() - fc->started_ms) / 1000.0;
	char vol[32], eta[48] = "";
	double rate;

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
	fc_human_bytes(vol, sizeof vol, (double) bytes);
	if (rate > 0 && est > (int64_t) rows) {
		char d[24];
		fc_duration(d, sizeof d,
		            (double) (est - (int64_t) rows) / rate);
		snprintf(eta, sizeof eta, ", ETA %s", d);
	}
	snprintf(out, n,
	         "full copy: %zu of %zu tables, %" PRIu64 " of ~%" PRId64
	         " rows (%.0f%%), %s, %.0f rows/s%s",
	         done, total, rows, est,
	         est > 0 ? 100.0 * (double) rows / (double) est : 100.0, vol,
	         rate, eta);
}

static void
fc_table_line(fc_table *t, char *out, size_t n)
{
	uint64_t r = atomic_load(&t->rows);
	char vol[32];

	fc_human_bytes(vol, sizeof vol, (double) atomic_load(&t->bytes));
	if (t->src->est_rows > 0)
		snprintf(out, n,
		         "  %-40.40s %3.0f%%  %12" PRIu64 " rows  %s  "
		         "chunks %u/%u",
		         t->name,
		         r >= (uint64_t) t->src->est_rows
		             ? 99.0
		             : 100.0 * (double) r / (double) t->src->est_rows,
		         r, vol, atomic_load(&t->chunks_done), t->src->nchunks);
	else
		snprintf(out, n,
		         "  %-40.40s       %12" PRIu64 " rows  %s  chunks "
		         "%u/%u",
		         t->name, r, vol, atomic_load(&t->chunks_done),
		         t->src->nchunks);
}

/* The live display on a terminal: the overall line and one line per table
 * being copied, redrawn in place. Returns the lines drawn. */
static int
fc_draw(fullcopy *fc, int previous)
{
	char line[256];
	strbuf sb = {0};
	int lines = 0;

	if (previous > 0)
		sb_printf(&sb, "\033[%dA", previous);
	fc_overall(fc, line, sizeof line);
	sb_printf(&sb, "\r\033[2K%s\n", line);
	lines++;
	for (size_t i = 0; i < fc->ntables && lines < FC_LIVE_MAX_LINES; i++) {
		fc_table *t = &fc->tables[i];
		if (t->how == SYNCD_COPY_SKIP || !atomic_load(&t->active))
			continue;
		fc_table_line(t, line, sizeof line);
		sb_printf(&sb, "\r\033[2K%s\n", line);
		lines++;
	}
	for (int k = lines; k < previous; k++)
		sb_puts(&sb, "\r\033[2K\n");
	if (previous > lines)
		sb_printf(&sb, "\033[%dA", previous - lines);
	fputs(sb.data, stderr);
	fflush(stderr);
	sb_free(&sb);
	return lines;
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
		         t->name, t->rel.target_schema, t->rel.target_table, r,
		         vol, ts, ts > 0 ? (double) r / ts : (double) r,
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

static char *
fc_dup(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static syncd_status
fc_capture(void *ctx, const syncd_event *ev)
{
	fc_table *t = ctx;
	const syncd_relation *src = ev->rel;
	syncd_column *cols;

	if (ev->type != SYNCD_EV_RELATION || !src || t->has_shaped)
		return SYNCD_OK;
	cols = xcalloc(src->ncolumns + 1, sizeof *cols);
	for (uint32_t i = 0; i < src->ncolumns; i++) {
		cols[i] = src->columns[i];
		cols[i].name = fc_dup(src->columns[i].name);
		cols[i].type_name = fc_dup(src->columns[i].type_name);
		cols[i].base_type_name = NULL;
		cols[i].comment = NULL;
		cols[i].default_value = NULL;
	}
	t->shaped = *src;
	t->shaped.database = fc_dup(src->database);
	t->shaped.schema = fc_dup(src->schema);
	t->shaped.table = fc_dup(src->table);
	t->shaped.source_host = fc_dup(src->source_host);
	t->shaped.target_schema = t->shaped.target_table = NULL;
	t->shaped.comment = NULL;
	t->shaped.nindexes = 0;
	t->shaped.indexes = NULL;
	t->shaped.columns = cols;
	t->has_shaped = true;
	return SYNCD_OK;
}

static void
fc_shaped_free(fc_table *t)
{
	if (!t->has_shaped)
		return;
	for (uint32_t i = 0; i < t->shaped.ncolumns; i++) {
		free((char *) t->shaped.columns[i].name);
		free((char *) t->shaped.columns[i].type_name);
	}
	free((syncd_column *) t->shaped.columns);
	free((char *) t->shaped.database);
	free((char *) t->shaped.schema);
	free((char *) t->shaped.table);
	free((char *) t->shaped.source_host);
	t->has_shaped = false;
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

/* ---- the phase ----------------------------------------------------------
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
		         host_error(j->sink));
		return false;
	}
	for (size_t i = 0; i < fc->ntables; i++) {
		fc_table *t = &fc->tables[i];
		uint32_t nfinished = 0;
		memset(t->finished, 0, t->src->nchunks * sizeof *t->finished);
		t->earlier[0] = '\0';
		st = fc_sink(fc)->copy_table(cs, &t->rel, fc->stream, t->src,
		                             again, &t->how, t->finished,
		                             t->earlier, sizeof t->earlier);
		if (st != SYNCD_OK) {
			job_fail(j, "%s full copy of %s into %s.%s: %s",
			         j->sink->prefix, t->name, t->rel.target_schema,
			         t->rel.target_table, host_error(j->sink));
			fc_sink(fc)->copy_close(cs);
			return false;
		}
		if (t->how != SYNCD_COPY_SKIP)
			(*ncopy)++;
		t->earlier[sizeof t->earlier - 1] = '\0';
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

syncd_status
fullcopy_run(job *j, uint32_t stream, const char *snapshot, bool again,
             const syncd_copy_table *tables, size_t ntables)
{
	fullcopy fc = {.j = j, .stream = stream, .snapshot = snapshot};
	const char *who, *mode = optset_str(&j->job_opts, "mode");
	fc_worker *workers = NULL;
	size_t ncopy = 0, nthreads;
	bool live = isatty(STDERR_FILENO) && getenv("TERM") &&
	            strcmp(getenv("TERM"), "dumb") != 0;
	syncd_status rc = SYNCD_FATAL;
	int drawn = 0;

	if (!fullcopy_supported(j, &who)) {
		job_fail(j, "%s has no full copy; set [job] mode = incremental",
		         who);
		return SYNCD_FATAL;
	}
	pthread_mutex_init(&fc.lock, NULL);
	pthread_mutex_init(&fc.chain_lock, NULL);
	fc.transform = j->ntransforms > 0;
	fc.ntables = ntables;
	fc.tables = xcalloc(ntables ? ntables : 1, sizeof *fc.tables);
	for (size_t i = 0; i < ntables; i++) {
		fc_table *t = &fc.tables[i];
		t->src = &tables[i];
		if (fc.transform) {
			/* the sink sees the table as the transforms make it */
			syncd_event ev = {.type = SYNCD_EV_RELATION,
			                  .stream = stream,
			                  .rel = tables[i].rel};
			if (job_transform(j, &ev, fc_capture, t) != SYNCD_OK ||
			    !t->has_shaped) {
				if (!atomic_load(&j->failed))
					job_fail(j,
					         "full copy: the transforms "
					         "dropped table %s.%s",
					         tables[i].rel->schema,
					         tables[i].rel->table);
				goto done; /* frees what is set so far */
			}
		}
		job_route(j, t->has_shaped ? &t->shaped : tables[i].rel,
		          &t->rel);
		t->name = xasprintf("%s.%s", tables[i].rel->schema,
		                    tables[i].rel->table);
		t->finished = xcalloc(tables[i].nchunks ? tables[i].nchunks : 1,
		                      sizeof *t->finished);
	}
	if (!fc_plan(&fc, again, &ncopy))
		goto done;
	/* mode = full: a run after a finished one copies everything again */
	if (ncopy == 0 && !again && ntables > 0 && strcmp(mode, "full") == 0) {
		log_info("every table was copied by an earlier run; mode = "
		         "full copies them again from a new snapshot");
		if (!fc_plan(&fc, true, &ncopy))
			goto done;
	}
	if (ncopy < ntables)
		log_info("full copy: %zu of %zu table(s) were finished by an "
		         "earlier run and are not copied again",
		         ntables - ncopy, ntables);
	for (size_t i = 0; i < ntables; i++) {
		fc_table *t = &fc.tables[i];
		if (t->how == SYNCD_COPY_SKIP)
			continue;
		fc.items = xrealloc(fc.items, (fc.nitems + t->src->nchunks) *
		                                  sizeof *fc.items);
		for (uint32_t c = 0; c < t->src->nchunks; c++) {
			int64_t est = t->src->est_bytes > 0
			                  ? t->src->est_bytes / t->src->nchunks
			                  : 0;
			/* a finished chunk is read again, for few rows */
			fc.items[fc.nitems++] = (fc_item){
			    .t = t,
			    .chunk = c,
			    .again = t->finished[c],
			    .est_bytes = t->finished[c] ? est / 8 : est};
		}
	}
	if (fc.nitems == 0) {
		rc = SYNCD_OK;
		goto done;
	}
	qsort(fc.items, fc.nitems, sizeof *fc.items, fc_item_cmp);
	nthreads = (size_t) optset_num(&j->job_opts, "concurrency");
	if (nthreads > fc.nitems)
		nthreads = fc.nitems;
	log_info("full copy of stream %u: %zu table(s) in %zu chunk(s), %zu "
	         "thread(s)",
	         stream, ncopy, fc.nitems, nthreads);
	fc.started_ms = now_ms();
	workers = xcalloc(nthreads, sizeof *workers);
	for (size_t i = 0; i < nthreads; i++) {
		workers[i].fc = &fc;
		workers[i].id = (int) i;
		atomic_fetch_add(&fc.running, 1);
		if (pthread_create(&workers[i].thread, NULL, fc_worker_main,
		                   &workers[i]) != 0) {
			atomic_fetch_sub(&fc.running, 1);
			job_fail(j, "could not start a copy thread");
			nthreads = i;
			break;
		}
	}
	for (int64_t last = now_ms(); atomic_load(&fc.running) > 0;) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		int64_t now;
		nanosleep(&ts, NULL);
		now = now_ms();
		if (live && now - last >= FC_DRAW_EVERY_MS) {
			drawn = fc_draw(&fc, drawn);
			last = now;
		} else if (!live && now - last >= FC_LOG_EVERY_MS) {
			char line[256];
			fc_overall(&fc, line, sizeof line);
			log_info("%s", line);
			last = now;
		}
	}
	for (size_t i = 0; i < nthreads; i++)
		pthread_join(workers[i].thread, NULL);
	if (live)
		fc_draw(&fc, drawn);
	if (atomic_load(&j->failed))
		goto done;
	if (atomic_load(&j->stopping)) {
		log_info("full copy stopped; finished tables are recorded, "
		         "and the next start copies the others again");
		rc = SYNCD_OK;
		goto done;
	}
	fc_summary(&fc);
	rc = SYNCD_OK;
done:
	for (size_t i = 0; i < ntables; i++) {
		job_route_free(&fc.tables[i].rel);
		fc_shaped_free(&fc.tables[i]);
		free(fc.tables[i].name);
		free(fc.tables[i].finished);
	}
	free(fc.tables);
	free(fc.items);
	free(workers);
	pthread_mutex_destroy(&fc.lock);
	pthread_mutex_destroy(&fc.chain_lock);
	return rc;
}
