/*
 * core/livecopy.c - see livecopy.h.
 */
#include "config.h"

#include "fullcopy.h"
#include "livecopy.h"
#include "log.h"
#include "plugerr.h"
#include "prepare.h"
#include "resync.h"
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How often a stream asks its source for tables that joined. */
#define LIVE_POLL_MS 5000
/* Held changes of a table being copied, at most, before the stream waits. */
#define LIVE_HOLD_MAX ((size_t) 256 * 1024 * 1024)

/* ---- one stream's copies ---------------------------------------------------
 */

struct livecopy {
	job *j;
	pipeline *p;
	const syncd_source_ops *ops;
	void *state;
	uint32_t stream;
	int64_t last_poll;
	/* STATE_DIR/resync when last read: its inode and time */
	ino_t seen_ino;
	struct timespec seen_mtim;
	live_lines others; /* requests another stream's, or refused */
	/* the copy under way */
	bool active;
	char *line;
	syncd_relation req;
	syncd_snapshot snap;
	pthread_t thread;
	atomic_bool finished;
	syncd_status result;
	bool waited; /* logged that the stream waits for it */
	/* the sink cannot copy (no copy operations): tables that join are
	 * only named (in others), never copied */
	bool name_only;
};

livecopy *
live_new(job *j, pipeline *p, uint32_t stream)
{
	const syncd_source_ops *ops = &j->source->plugin->ops.source;
	livecopy *lc;

	if (!SYNCD_HAS(ops, release_tables) || !ops->new_tables ||
	    !ops->snapshot_tables || !ops->release_tables || !ops->copy_open)
		return NULL;
	lc = xcalloc(1, sizeof *lc);
	lc->name_only = !fullcopy_sink_copies(j);
	lc->j = j;
	lc->p = p;
	lc->ops = ops;
	lc->state = j->source->state;
	lc->stream = stream;
	lc->last_poll = now_ms() - LIVE_POLL_MS; /* at once */
	lc->seen_mtim.tv_nsec = -1;
	return lc;
}

static void *
live_thread(void *arg)
{
	livecopy *lc = arg;

	thread_name("syncd-live%u", lc->stream);
	lc->result = fullcopy_run(lc->j, lc->p, lc->stream, &lc->snap, true);
	plugerr_clear();
	atomic_store(&lc->finished, true);
	return NULL;
}

static void
live_clear(livecopy *lc)
{
	free(lc->line);
	lc->line = NULL;
	free((char *) lc->req.database);
	free((char *) lc->req.schema);
	free((char *) lc->req.table);
	memset(&lc->req, 0, sizeof lc->req);
	lc->active = false;
	lc->waited = false;
}

/* Starts copying the table of request line; false when it is not this
 * stream's (or was refused: logged). */
static bool
live_start(livecopy *lc, const char *line)
{
	job *j = lc->j;
	const syncd_relation *reqs[1] = {&lc->req};
	char *label = live_label(line);
	char *f1 = xstrdup(line), *f2 = strchr(f1, '\t'), *f3;
	syncd_status st;

	*f2++ = '\0';
	f3 = strchr(f2, '\t');
	*f3++ = '\0';
	lc->line = xstrdup(line);
	lc->req = (syncd_relation){.size = sizeof lc->req,
	                           .database = *f1 ? xstrdup(f1) : NULL,
	                           .schema = xstrdup(f2),
	                           .table = xstrdup(f3)};
	free(f1);
	/* from here on its changes wait; what went before is applied
	 * first, under the copy */
	pipeline_hold(lc->p, lc->stream, reqs, 1);
	if (pipeline_drain(lc->p) != SYNCD_OK)
		goto drop;
	memset(&lc->snap, 0, sizeof lc->snap);
	lc->snap.size = sizeof lc->snap;
	st = lc->ops->snapshot_tables(lc->state, lc->stream, reqs, 1,
	                              &lc->snap);
	if (st == SYNCD_INVALID) {
		log_error("%s cannot copy %s again: %s; the request is "
		          "dropped",
		          j->source->prefix, label, plugerr_msg(j->source));
		live_update_one(j, line, true);
		goto drop;
	}
	if (st != SYNCD_OK) {
		job_fail(j, "%s could not take a snapshot to copy %s: %s",
		         j->source->prefix, label, plugerr_msg(j->source));
		goto drop;
	}
	if (lc->snap.ntables == 0) {
		lc->ops->release_tables(lc->state, lc->stream);
		live_lines_add(&lc->others, line);
		goto drop;
	}
	for (size_t i = 0; i < lc->snap.ntables; i++)
		if (!prepare_one(j, lc->snap.tables[i].rel)) {
			job_fail(j,
			         "%s: the target of %s cannot take its rows "
			         "(see above); fix it, and the next start "
			         "copies it",
			         j->sink->prefix, label);
			lc->ops->release_tables(lc->state, lc->stream);
			goto drop;
		}
	log_info("stream \"%s\": copying %s while streaming, from the "
	         "snapshot at " SYNCD_LSN_FMT "; its changes wait until the "
	         "copy is done",
	         j->streams[lc->stream].desc.name, label,
	         SYNCD_LSN_ARGS(lc->snap.lsn));
	atomic_store(&lc->finished, false);
	lc->active = true;
	if (pthread_create(&lc->thread, NULL, live_thread, lc) != 0) {
		lc->active = false;
		job_fail(j, "could not start a copy thread");
		lc->ops->release_tables(lc->state, lc->stream);
		goto drop;
	}
	free(label);
	return true;
drop:
	pipeline_release(lc->p, lc->stream, true, 0, 0, false);
	live_clear(lc);
	free(label);
	return false;
}

/* Ends the copy: joins it, and applies the held changes (unless drop or it
 * failed or was cut short). */
static void
live_finish(livecopy *lc, bool drop, bool in_txn, syncd_lsn txn,
            syncd_lsn last_commit)
{
	job *j = lc->j;
	char *label = live_label(lc->line);
	size_t nheld = 0;
	size_t held = pipeline_held_bytes(lc->p, lc->stream, &nheld);
	bool ok;

	pthread_join(lc->thread, NULL);
	lc->ops->release_tables(lc->state, lc->stream);
	ok = !drop && lc->result == SYNCD_OK && !job_failed(j) &&
	     !job_stopping(j);
	if (!ok) {
		pipeline_release(lc->p, lc->stream, true, 0, 0, false);
		if (!job_failed(j))
			log_info("the copy of %s while streaming was not "
			         "finished; it starts again %s",
			         label,
			         job_stopping(j) ? "at the next start"
			                         : "in a moment");
		live_clear(lc);
		free(label);
		return;
	}
	if (pipeline_release(lc->p, lc->stream, false, lc->snap.lsn,
	                     in_txn ? txn : last_commit, !in_txn) != SYNCD_OK ||
	    pipeline_drain(lc->p) != SYNCD_OK) {
		if (!job_failed(j))
			job_fail(j, "the changes of %s held during its copy "
			            "could not be applied",
			            label);
		live_clear(lc);
		free(label);
		return;
	}
	live_update_one(j, lc->line, true);
	log_info("%s copied while streaming; its %zu change(s) during the "
	         "copy (%.1f MiB, held) are applied, and it streams again",
	         label, nheld, (double) held / (1024.0 * 1024.0));
	live_clear(lc);
	free(label);
}

typedef struct live_found {
	livecopy *lc;
	live_lines lines;
} live_found;

static syncd_status
live_new_table(void *ctx, const syncd_relation *rel)
{
	live_found *f = ctx;
	char *line = live_line(rel);

	live_lines_add(&f->lines, line);
	free(line);
	return SYNCD_OK;
}

void
live_step(livecopy *lc, bool in_txn, syncd_lsn txn, syncd_lsn last_commit)
{
	job *j;
	live_lines reqs;
	live_found found = {0};
	struct stat st;
	bool changed;
	syncd_status rc;

	if (!lc)
		return;
	j = lc->j;
	if (lc->active) {
		if (!atomic_load(&lc->finished)) {
			if (pipeline_held_bytes(lc->p, lc->stream, NULL) <
			    LIVE_HOLD_MAX)
				return;
			if (!lc->waited) {
				char *label = live_label(lc->line);
				log_warning(
				    "the changes of %s held during its copy "
				    "passed %zu MiB: the stream waits for the "
				    "copy to end",
				    label, LIVE_HOLD_MAX / (1024 * 1024));
				free(label);
				lc->waited = true;
			}
			while (!atomic_load(&lc->finished) &&
			       !job_stopping(j) && !job_failed(j)) {
				struct timespec ts = {0, 50 * 1000 * 1000};
				nanosleep(&ts, NULL);
			}
			if (!atomic_load(&lc->finished))
				return;
		}
		live_finish(lc, false, in_txn, txn, last_commit);
		return;
	}
	if (job_stopping(j) || job_failed(j))
		return;
	/* requests: new ones at once, tables that joined now and then */
	{
		char *path = live_path(j, "resync");
		if (stat(path, &st) != 0)
			memset(&st, 0, sizeof st);
		changed = st.st_ino != lc->seen_ino ||
		          st.st_mtim.tv_sec != lc->seen_mtim.tv_sec ||
		          st.st_mtim.tv_nsec != lc->seen_mtim.tv_nsec;
		lc->seen_ino = st.st_ino;
		lc->seen_mtim = st.st_mtim;
		free(path);
	}
	if (!changed && now_ms() - lc->last_poll < LIVE_POLL_MS)
		return;
	if (now_ms() - lc->last_poll >= LIVE_POLL_MS) {
		lc->last_poll = now_ms();
		found.lc = lc;
		rc = lc->ops->new_tables(lc->state, lc->stream, live_new_table,
		                         &found);
		if (rc != SYNCD_OK) {
			log_warning("%s could not look for new tables: %s",
			            j->source->prefix, plugerr_msg(j->source));
			plugerr_clear();
		}
		for (size_t i = 0; lc->name_only && i < found.lines.n; i++) {
			char *label = live_label(found.lines.v[i]);
			if (!live_lines_has(&lc->others, found.lines.v[i])) {
				log_warning(
				    "%s: table %s joined the selection (or must "
				    "be copied again: a partition attached with "
				    "rows), but %s cannot copy a table while the "
				    "job streams (it has no copy operations): it "
				    "is NOT synced; copy every table again with "
				    "syncd --resync -c FILE",
				    j->source->prefix, label, j->sink->prefix);
				live_lines_add(&lc->others, found.lines.v[i]);
			}
			free(label);
		}
		if (lc->name_only) {
			live_lines_free(&found.lines);
			return;
		}
		for (size_t i = 0; i < found.lines.n; i++) {
			char *label = live_label(found.lines.v[i]);
			log_info("%s: table %s joined the selection (or must "
			         "be copied again): it is copied while the job "
			         "streams",
			         j->source->prefix, label);
			free(label);
		}
		if (found.lines.n && !live_update(j, &found.lines, false)) {
			job_fail(j, "could not record the tables to copy in "
			            "%s/resync",
			         j->state_dir);
			live_lines_free(&found.lines);
			return;
		}
		live_lines_free(&found.lines);
	}
	if (lc->name_only)
		return;
	live_read(j, &reqs);
	for (size_t i = 0; i < reqs.n && !lc->active && !job_failed(j); i++)
		if (!live_lines_has(&lc->others, reqs.v[i]))
			live_start(lc, reqs.v[i]);
	live_lines_free(&reqs);
}

void
live_abort(livecopy *lc)
{
	if (lc && lc->active)
		live_finish(lc, true, false, 0, 0);
}

void
live_free(livecopy *lc)
{
	if (!lc)
		return;
	live_abort(lc);
	live_lines_free(&lc->others);
	free(lc);
}


/* ---- syncd --resync TABLE ------------------------------------------------ */

typedef struct live_match {
	const char *name; /* as given */
	live_lines lines;
} live_match;

/* name: table (in public), schema.table or database.schema.table */
static bool
live_name_matches(const char *name, const syncd_relation *r)
{
	char *full = xasprintf("%s.%s.%s", r->database ? r->database : "",
	                       r->schema, r->table);
	char *st = xasprintf("%s.%s", r->schema, r->table);
	bool m = strcmp(name, full) == 0 || strcmp(name, st) == 0 ||
	         (strcmp(r->schema, "public") == 0 &&
	          strcmp(name, r->table) == 0);
	free(full);
	free(st);
	return m;
}

static syncd_status
live_match_one(void *ctx, const syncd_relation *rel)
{
	live_match *m = ctx;

	if (live_name_matches(m->name, rel)) {
		char *line = live_line(rel);
		live_lines_add(&m->lines, line);
		free(line);
	}
	return SYNCD_OK;
}

int
live_resync_command(job *j, char *const *names, size_t n, FILE *out)
{
	const syncd_source_ops *ops = &j->source->plugin->ops.source;
	live_lines all = {0};
	int lock, rc = 0;
	bool running;

	if (!j->info.incremental) {
		log_error("syncd --resync TABLE copies tables while the job "
		          "streams; mode = full does not stream: run the job "
		          "again to copy every table");
		return 2;
	}
	if (!SYNCD_HAS(ops, release_tables) || !ops->snapshot_tables ||
	    !ops->copy_open || !fullcopy_sink_copies(j) || !ops->list_tables) {
		log_error("%s or %s cannot copy a table while the job streams "
		          "(ABI 1.3 snapshot_tables and the sink's copy "
		          "operations); re-sync the whole job with syncd "
		          "--resync -c FILE",
		          j->source->prefix, j->sink->prefix);
		return 2;
	}
	for (size_t i = 0; i < n; i++) {
		char *copy = xstrdup(names[i]), *save = NULL;
		for (char *name = strtok_r(copy, ",", &save); name;
		     name = strtok_r(NULL, ",", &save)) {
			live_match m = {.name = name};
			syncd_status st;
			while (*m.name == ' ')
				m.name++;
			if (!*m.name)
				continue;
			st = ops->list_tables(j->source->state, live_match_one,
			                      &m);
			if (st != SYNCD_OK) {
				log_error("%s could not list its tables: %s",
				          j->source->prefix,
				          plugerr_msg(j->source));
				rc = 1;
			} else if (m.lines.n == 0) {
				log_error("--resync %s: no table the job syncs "
				          "has this name (schema.table, or "
				          "database.schema.table; syncd "
				          "--preview lists them)",
				          m.name);
				rc = 2;
			}
			for (size_t k = 0; k < m.lines.n; k++)
				if (!live_lines_has(&all, m.lines.v[k]))
					live_lines_add(&all, m.lines.v[k]);
			live_lines_free(&m.lines);
		}
		free(copy);
	}
	if (rc != 0 || all.n == 0) {
		live_lines_free(&all);
		return rc ? rc : 2;
	}
	if (!live_update(j, &all, false)) {
		live_lines_free(&all);
		return 1;
	}
	lock = live_lock(j);
	running = lock < 0;
	if (lock >= 0)
		close(lock);
	for (size_t i = 0; i < all.n; i++) {
		char *label = live_label(all.v[i]);
		fprintf(out, "%s: %s\n", label,
		        running ? "handed to the running job, which copies it "
		                  "again while it streams"
		                : "copied again at the job's next start, "
		                  "while it streams");
		free(label);
	}
	fflush(out);
	/* the running job takes them; wait until each is done */
	while (running && rc == 0) {
		live_lines now;
		size_t left = 0;
		struct timespec ts = {0, 200 * 1000 * 1000};

		nanosleep(&ts, NULL);
		live_read(j, &now);
		for (size_t i = 0; i < all.n; i++) {
			if (!all.v[i][0])
				continue;
			if (live_lines_has(&now, all.v[i])) {
				left++;
				continue;
			}
			char *label = live_label(all.v[i]);
			fprintf(out, "%s: copied again\n", label);
			fflush(out);
			free(label);
			all.v[i][0] = '\0';
		}
		live_lines_free(&now);
		if (left == 0)
			break;
		lock = live_lock(j);
		if (lock >= 0) {
			close(lock);
			fprintf(out, "the job stopped before it was done; the "
			             "tables left are copied at its next "
			             "start\n");
			rc = 3;
		}
	}
	live_lines_free(&all);
	return rc;
}
