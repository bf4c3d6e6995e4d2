/*
 * capture - a sink for the tests (built only for make check): appends every
 * batch it is given to a file, in one write, so that a test can check what
 * reached the "destination", in which order, in which batches, on which
 * worker, with which progress. Like a real sink it stores its progress with
 * the batch (the batch line) and reads it back after a restart.
 *
 *   batch W NCHANGES BYTES PROGRESS        PROGRESS: s:lsn,... or -
 *   ev W TYPE STREAM LSN XID REL TARGET OLD NEW
 *   end W
 *
 * TYPE is INSERT, UPDATE, DELETE, TRUNCATE, UPDATE_ALL, RELATION, BEGIN or
 * COMMIT. REL and TARGET are schema.table (TRUNCATE: comma-separated list);
 * OLD and NEW are comma-separated column values or - (RELATION: the column
 * names in OLD's place). Values are %-encoded; ~N is NULL, ~U unchanged
 * TOAST, ~E the empty string. LSNs are hex.
 *
 * Knobs for failure tests: delay_ms (slow writes), fail_after (the Nth
 * write fails), retry_first (the first write asks for a reconnect),
 * reject_key (rows with that id are refused as dirty data).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <syncd/syncd.h>

typedef struct capture_opts {
	const char *path;
	int64_t delay_ms, delay_worker, fail_after;
	bool fail_once, retry_first;
	const char *reject_key;
} capture_opts;

static const syncd_option capture_options[] = {
    {.name = "path",
     .type = SYNCD_OPT_STRING,
     .flags = SYNCD_OPT_REQUIRED,
     .help = "file the batches are appended to",
     SYNCD_OPT_FIELD(capture_opts, path)},
    {.name = "delay_ms",
     .type = SYNCD_OPT_INT,
     .default_value = "0",
     .help = "sleep this long in each write",
     .min = 0,
     .max = 600000,
     SYNCD_OPT_FIELD(capture_opts, delay_ms)},
    {.name = "delay_worker",
     .type = SYNCD_OPT_INT,
     .default_value = "-1",
     .help = "only this worker sleeps; -1: all",
     .min = -1,
     .max = 1000,
     SYNCD_OPT_FIELD(capture_opts, delay_worker)},
    {.name = "fail_after",
     .type = SYNCD_OPT_INT,
     .default_value = "0",
     .help = "the Nth write fails; 0: never",
     .min = 0,
     .max = 1000000000,
     SYNCD_OPT_FIELD(capture_opts, fail_after)},
    {.name = "fail_once",
     .type = SYNCD_OPT_BOOL,
     .default_value = "false",
     .help = "fail_after fails the first run only (a marker file beside "
             "path remembers it)",
     SYNCD_OPT_FIELD(capture_opts, fail_once)},
    {.name = "retry_first",
     .type = SYNCD_OPT_BOOL,
     .default_value = "false",
     .help = "the first write reports a lost connection",
     SYNCD_OPT_FIELD(capture_opts, retry_first)},
    {.name = "reject_key",
     .type = SYNCD_OPT_STRING,
     .help = "rows with this id are refused (SQLSTATE 23514)",
     SYNCD_OPT_FIELD(capture_opts, reject_key)},
    {.name = NULL}};

typedef struct capture {
	const syncd_host *host;
	const char *path;
	int64_t delay_ms, delay_worker, fail_after;
	bool retry_first, fail_once;
	const char *reject_key;
	pthread_mutex_t lock;
	int64_t writes;
	int fd;
} capture;

typedef struct capture_worker {
	capture *c;
	int id;
} capture_worker;

static syncd_status
capture_create(const syncd_host *host, void **state)
{
	const capture_opts *o = host->options;
	capture *c = calloc(1, sizeof *c);

	if (!c) {
		host->set_error(host, NULL, "out of memory");
		return SYNCD_FATAL;
	}
	c->host = host;
	c->path = o->path;
	c->delay_ms = o->delay_ms;
	c->delay_worker = o->delay_worker;
	c->fail_after = o->fail_after;
	c->retry_first = o->retry_first;
	c->fail_once = o->fail_once;
	c->reject_key = o->reject_key;
	c->fd = -1;
	pthread_mutex_init(&c->lock, NULL);
	*state = c;
	return SYNCD_OK;
}

static void
capture_destroy(void *state)
{
	capture *c = state;
	if (c->fd >= 0)
		close(c->fd);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static syncd_status
capture_open(void *state, int worker, void **wstate)
{
	capture *c = state;
	capture_worker *w = calloc(1, sizeof *w);
	syncd_status st = SYNCD_OK;

	pthread_mutex_lock(&c->lock);
	if (c->fd < 0) {
		c->fd = open(c->path, O_WRONLY | O_APPEND | O_CREAT, 0644);
		if (c->fd < 0) {
			c->host->set_error(c->host, NULL, "cannot open %s: %s",
			                   c->path, strerror(errno));
			st = SYNCD_FATAL;
		}
	}
	pthread_mutex_unlock(&c->lock);
	w->c = c;
	w->id = worker;
	*wstate = w;
	return st;
}

static void
capture_close(void *wstate)
{
	free(wstate);
}

/* The last complete batch of this worker carrying progress for stream. */
static syncd_status
capture_applied(void *wstate, uint32_t stream, syncd_lsn *lsn)
{
	capture_worker *w = wstate;
	FILE *f = fopen(w->c->path, "r");
	char *line = NULL;
	size_t cap = 0;
	syncd_lsn pending = 0, found = 0;
	bool in_batch = false;

	*lsn = 0;
	if (!f)
		return SYNCD_OK;
	while (getline(&line, &cap, f) > 0) {
		int wid;
		if (sscanf(line, "batch %d", &wid) == 1 && wid == w->id) {
			char *prog = line;
			for (int i = 0; i < 4 && prog; i++) {
				prog = strchr(prog, ' ');
				if (prog)
					prog++;
			}
			pending = 0;
			in_batch = true;
			for (char *p = prog; p && *p && *p != '-';) {
				unsigned s;
				unsigned long long l;
				if (sscanf(p, "%u:%llx", &s, &l) == 2 &&
				    s == stream)
					pending = l;
				p = strchr(p, ',');
				if (p)
					p++;
			}
		} else if (sscanf(line, "end %d", &wid) == 1 && wid == w->id &&
		           in_batch) {
			if (pending)
				found = pending;
			in_batch = false;
		}
	}
	free(line);
	fclose(f);
	*lsn = found;
	return SYNCD_OK;
}

typedef struct capture_buf {
	char *data;
	size_t len, cap;
} capture_buf;

static void
cb_put(capture_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->data = realloc(b->data, b->cap);
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void
cb_str(capture_buf *b, const char *s)
{
	cb_put(b, s, strlen(s));
}

static void
cb_value(capture_buf *b, const syncd_value *v)
{
	char hex[4];

	if (v->kind == SYNCD_VALUE_NULL) {
		cb_str(b, "~N");
		return;
	}
	if (v->kind == SYNCD_VALUE_UNCHANGED) {
		cb_str(b, "~U");
		return;
	}
	if (v->len == 0) {
		cb_str(b, "~E");
		return;
	}
	for (uint32_t i = 0; i < v->len; i++) {
		unsigned char c = (unsigned char) v->data[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-')
			cb_put(b, (const char *) &c, 1);
		else {
			snprintf(hex, sizeof hex, "%%%02X", c);
			cb_put(b, hex, 3);
		}
	}
}

static void
cb_values(capture_buf *b, const syncd_relation *rel, const syncd_value *v)
{
	if (!v) {
		cb_str(b, "-");
		return;
	}
	for (uint32_t i = 0; i < rel->ncolumns; i++) {
		if (i)
			cb_str(b, ",");
		cb_value(b, &v[i]);
	}
}

static const char *
capture_type(syncd_event_type t)
{
	switch (t) {
	case SYNCD_EV_BEGIN: return "BEGIN";
	case SYNCD_EV_COMMIT: return "COMMIT";
	case SYNCD_EV_RELATION: return "RELATION";
	case SYNCD_EV_INSERT: return "INSERT";
	case SYNCD_EV_UPDATE: return "UPDATE";
	case SYNCD_EV_DELETE: return "DELETE";
	case SYNCD_EV_TRUNCATE: return "TRUNCATE";
	case SYNCD_EV_UPDATE_ALL: return "UPDATE_ALL";
	}
	return "?";
}

static bool
capture_is_rejected(capture *c, const syncd_event *ev)
{
	const syncd_value *v;
	if (!c->reject_key || !ev->rel)
		return false;
	if (ev->type != SYNCD_EV_INSERT && ev->type != SYNCD_EV_UPDATE &&
	    ev->type != SYNCD_EV_DELETE)
		return false;
	v = ev->type == SYNCD_EV_DELETE ? ev->old_values : ev->new_values;
	return v && v[0].kind == SYNCD_VALUE_TEXT &&
	       v[0].len == strlen(c->reject_key) &&
	       memcmp(v[0].data, c->reject_key, v[0].len) == 0;
}

static syncd_status
capture_write(void *wstate, const syncd_batch *batch)
{
	capture_worker *w = wstate;
	capture *c = w->c;
	capture_buf b = {0};
	char head[128];
	int64_t n;
	bool fail;
	syncd_status st = SYNCD_OK;

	/* decided under the lock: workers write concurrently */
	pthread_mutex_lock(&c->lock);
	n = ++c->writes;
	fail = c->fail_after && n >= c->fail_after;
	if (fail && c->fail_once) {
		char marker[4096];
		int fd;
		snprintf(marker, sizeof marker, "%s.failed", c->path);
		fd = open(marker, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0 && n == c->fail_after) {
			c->fail_after =
			    0; /* this run comes after the failed one */
			fail = false;
		} else if (fd >= 0)
			close(fd);
	}
	pthread_mutex_unlock(&c->lock);
	if (c->retry_first && n == 1) {
		c->host->set_error(c->host, "08006", "connection lost (test)");
		return SYNCD_RETRY;
	}
	if (fail) {
		c->host->set_error(c->host, "XX000", "write %lld failed (test)",
		                   (long long) n);
		return SYNCD_FATAL;
	}
	if (c->delay_ms && (c->delay_worker < 0 || c->delay_worker == w->id)) {
		struct timespec ts = {c->delay_ms / 1000,
		                      (c->delay_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}

	snprintf(head, sizeof head, "batch %d %zu %zu ", batch->worker,
	         batch->nchanges, batch->bytes);
	cb_str(&b, head);
	if (batch->nprogress == 0)
		cb_str(&b, "-");
	for (size_t i = 0; i < batch->nprogress; i++) {
		snprintf(head, sizeof head, "%s%u:%llx", i ? "," : "",
		         batch->progress[i].stream,
		         (unsigned long long) batch->progress[i].lsn);
		cb_str(&b, head);
	}
	cb_str(&b, "\n");
	for (size_t i = 0; i < batch->nevents; i++) {
		const syncd_event *ev = batch->events[i];
		const syncd_relation *rel = ev->rel;

		if (capture_is_rejected(c, ev)) {
			if (c->host->sink->reject(
			        c->host, batch->worker, ev, "23514",
			        "new row violates check constraint (test)") !=
			    SYNCD_OK) {
				c->host->set_error(c->host, "23514",
				                   "dirty row refused");
				free(b.data);
				return SYNCD_FATAL;
			}
			continue;
		}
		snprintf(head, sizeof head, "ev %d %s %u %llx %u ",
		         batch->worker, capture_type(ev->type), ev->stream,
		         (unsigned long long) ev->lsn, ev->xid);
		cb_str(&b, head);
		if (ev->type == SYNCD_EV_TRUNCATE) {
			for (uint32_t r = 0; r < ev->nrels; r++) {
				cb_str(&b, r ? "," : "");
				cb_str(&b, ev->rels[r]->schema);
				cb_str(&b, ".");
				cb_str(&b, ev->rels[r]->table);
			}
			cb_str(&b, " - - -\n");
			continue;
		}
		if (!rel) {
			cb_str(&b, "- - - -\n");
			continue;
		}
		cb_str(&b, rel->schema);
		cb_str(&b, ".");
		cb_str(&b, rel->table);
		cb_str(&b, " ");
		cb_str(&b, rel->target_schema ? rel->target_schema : "?");
		cb_str(&b, ".");
		cb_str(&b, rel->target_table ? rel->target_table : "?");
		cb_str(&b, " ");
		if (ev->type == SYNCD_EV_RELATION) {
			for (uint32_t k = 0; k < rel->ncolumns; k++) {
				/* the stride is the first column's size */
				const syncd_column *col =
				    (const void *) ((const char *)
				                        rel->columns +
				                    k * rel->columns[0].size);
				syncd_value v = {SYNCD_VALUE_TEXT,
				                 (uint32_t) strlen(col->name),
				                 col->name};
				cb_str(&b, k ? "," : "");
				cb_value(&b, &v);
			}
			cb_str(&b, " -\n");
			continue;
		}
		cb_values(&b, rel, ev->old_values);
		cb_str(&b, " ");
		cb_values(&b, rel, ev->new_values);
		cb_str(&b, "\n");
	}
	snprintf(head, sizeof head, "end %d\n", batch->worker);
	cb_str(&b, head);

	pthread_mutex_lock(&c->lock);
	if (write(c->fd, b.data, b.len) != (ssize_t) b.len) {
		c->host->set_error(c->host, NULL, "cannot write %s: %s",
		                   c->path, strerror(errno));
		st = SYNCD_FATAL;
	}
	pthread_mutex_unlock(&c->lock);
	free(b.data);
	return st;
}

static const syncd_sink_ops capture_ops = {
    .size = sizeof(syncd_sink_ops),
    .create = capture_create,
    .destroy = capture_destroy,
    .open = capture_open,
    .close = capture_close,
    .applied_lsn = capture_applied,
    .write = capture_write,
};

SYNCD_PLUGIN(.kind = SYNCD_KIND_SINK, .name = "capture", .version = "1.0",
             .description = "records every batch to a file (tests only)",
             .options = capture_options, .options_size = sizeof(capture_opts),
             .ops.sink = &capture_ops)
