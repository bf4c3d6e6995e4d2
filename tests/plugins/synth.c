/*
 * synth - a synthetic source for the tests (built only for make check).
 *
 * Emits a deterministic stream of transactions over a few tables
 * "synth.tN" (columns id int4 key, val text, big text) with inserts,
 * updates (some leaving `big` as unchanged TOAST, some changing the key),
 * deletes, truncates and relation re-announcements, then ends (read()
 * returns SYNCD_END; transactions = 0: never). It has no full phase.
 *
 * With streams = N the transactions are dealt round-robin over N ordered
 * streams, each read in its own thread: stream s emits transaction n only
 * after every transaction before n was emitted, so the events reach the
 * core in the one order the final state below assumes.
 *
 * It behaves like a replication slot: what the core confirms is stored in
 * the state directory (synth.confirmed), open() reports it, and start()
 * skips what the core says is done (the transactions are generated all the
 * same, to advance the model).
 *
 * For the tests to check the result it can write:
 *  - expect: the final state the destination must reach, one
 *    "table<TAB>id<TAB>val<TAB>big" line per row, values %-encoded, when
 *    the last stream closes with everything it sent confirmed;
 *  - confirm_log: a "confirm STREAM LSN" line each time the core confirms
 *    more (append, one write each, so it can share the capture sink's file
 *    and the order of lines there is the order of events).
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

#define SYNTH_MAX_TABLES  26
#define SYNTH_MAX_STREAMS 8
#define SYNTH_NCOLS       3
#define SYNTH_BASE_LSN    0x1000000ULL
/* read() returns at the first transaction boundary after this many
 * events */
#define SYNTH_READ_EVENTS 512

typedef struct synth_opts {
	int64_t transactions, changes, tables, keys, seed, truncate_every,
	    relation_every, key_change_every, value_size, rate, streams;
	const char *expect, *confirm_log, *password;
} synth_opts;

static const syncd_option synth_options[] = {
    {.name = "transactions",
     .type = SYNCD_OPT_INT,
     .default_value = "1000",
     .help = "transactions to emit; 0: until stopped",
     .min = 0,
     .max = 100000000,
     SYNCD_OPT_FIELD(synth_opts, transactions)},
    {.name = "changes",
     .type = SYNCD_OPT_INT,
     .default_value = "5",
     .help = "changes per transaction",
     .min = 1,
     .max = 1000000,
     SYNCD_OPT_FIELD(synth_opts, changes)},
    {.name = "tables",
     .type = SYNCD_OPT_INT,
     .default_value = "3",
     .help = "number of tables",
     .min = 1,
     .max = SYNTH_MAX_TABLES,
     SYNCD_OPT_FIELD(synth_opts, tables)},
    {.name = "keys",
     .type = SYNCD_OPT_INT,
     .default_value = "100",
     .help = "key space per table",
     .min = 1,
     .max = 10000000,
     SYNCD_OPT_FIELD(synth_opts, keys)},
    {.name = "seed",
     .type = SYNCD_OPT_INT,
     .default_value = "1",
     .help = "random seed",
     .min = 0,
     .max = 1000000000,
     SYNCD_OPT_FIELD(synth_opts, seed)},
    {.name = "truncate_every",
     .type = SYNCD_OPT_INT,
     .default_value = "0",
     .help = "every Nth transaction truncates tables t0 and t1; 0: never",
     .min = 0,
     .max = 100000000,
     SYNCD_OPT_FIELD(synth_opts, truncate_every)},
    {.name = "relation_every",
     .type = SYNCD_OPT_INT,
     .default_value = "0",
     .help = "every Nth transaction re-announces its tables; 0: never",
     .min = 0,
     .max = 100000000,
     SYNCD_OPT_FIELD(synth_opts, relation_every)},
    {.name = "key_change_every",
     .type = SYNCD_OPT_INT,
     .default_value = "0",
     .help = "every Nth update changes the key; 0: never",
     .min = 0,
     .max = 100000000,
     SYNCD_OPT_FIELD(synth_opts, key_change_every)},
    {.name = "value_size",
     .type = SYNCD_OPT_INT,
     .default_value = "0",
     .help = "bytes of padding added to each big value",
     .min = 0,
     .max = 100000000,
     SYNCD_OPT_FIELD(synth_opts, value_size)},
    {.name = "rate",
     .type = SYNCD_OPT_INT,
     .default_value = "0",
     .help = "transactions per second; 0: as fast as possible",
     .min = 0,
     .max = 10000000,
     SYNCD_OPT_FIELD(synth_opts, rate)},
    {.name = "streams",
     .type = SYNCD_OPT_INT,
     .default_value = "1",
     .help = "ordered streams, transactions dealt round-robin",
     .min = 1,
     .max = SYNTH_MAX_STREAMS,
     SYNCD_OPT_FIELD(synth_opts, streams)},
    {.name = "expect",
     .type = SYNCD_OPT_STRING,
     .help = "write the expected final state to this file",
     SYNCD_OPT_FIELD(synth_opts, expect)},
    {.name = "confirm_log",
     .type = SYNCD_OPT_STRING,
     .help = "append a line for each confirmation to this file",
     SYNCD_OPT_FIELD(synth_opts, confirm_log)},
    {.name = "password",
     .type = SYNCD_OPT_STRING,
     .flags = SYNCD_OPT_SECRET,
     .help = "unused; logged at start to test that secrets are masked",
     SYNCD_OPT_FIELD(synth_opts, password)},
    {.name = NULL}};

typedef struct synth_row {
	bool exists;
	unsigned long val;
	unsigned long big;
} synth_row;

typedef struct synth {
	const syncd_host *host;
	int64_t ntx, nchanges, ntables, nkeys, truncate_every, relation_every,
	    key_change_every, value_size, rate, nstreams, seed;
	uint64_t rng;
	const char *expect, *confirm_log, *password;
	synth_row *rows; /* [table * nkeys + key] */
	syncd_relation rels[SYNTH_MAX_TABLES];
	char names[SYNTH_MAX_TABLES][8];
	syncd_column cols[SYNTH_NCOLS];
	char *pad;
	char *bigbuf;
	int64_t updates;

	/* The generator: transaction next_tx is the next to generate, by
	 * the stream it belongs to; the model (rows, rng, updates) is
	 * touched only by that stream's read(), between taking its turn and
	 * passing it on. */
	pthread_mutex_t lock;
	pthread_cond_t turn;
	int64_t next_tx;
	bool paced; /* t0 is set */
	struct timespec t0;

	/* per stream */
	syncd_lsn after[SYNTH_MAX_STREAMS];     /* from start() */
	syncd_lsn last_sent[SYNTH_MAX_STREAMS]; /* emitted, whole */
	bool announced[SYNTH_MAX_STREAMS];
	bool open[SYNTH_MAX_STREAMS];
	int nopen;

	/* what the core confirmed, as stored (confirm() may run in any
	 * thread, also while a read() blocks in emit: its own lock) */
	pthread_mutex_t confirm_lock;
	bool loaded;
	bool found; /* the state file existed */
	syncd_lsn confirmed[SYNTH_MAX_STREAMS];
} synth;

static uint64_t
synth_rand(synth *s)
{
	/* xorshift64* */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 2685821657736338717ULL;
}

static syncd_status
synth_create(const syncd_host *host, void **state)
{
	const synth_opts *o = host->options;
	synth *s = calloc(1, sizeof *s);

	if (!s) {
		host->set_error(host, NULL, "out of memory");
		return SYNCD_FATAL;
	}
	s->host = host;
	s->ntx = o->transactions;
	s->nchanges = o->changes;
	s->ntables = o->tables;
	s->nkeys = o->keys;
	s->truncate_every = o->truncate_every;
	s->relation_every = o->relation_every;
	s->key_change_every = o->key_change_every;
	s->value_size = o->value_size;
	s->rate = o->rate;
	s->nstreams = o->streams;
	s->seed = o->seed;
	s->rng = (uint64_t) o->seed * 0x9E3779B97F4A7C15ULL + 1;
	s->expect = o->expect;
	s->confirm_log = o->confirm_log;
	s->password = o->password;
	s->next_tx = 1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->turn, NULL);
	pthread_mutex_init(&s->confirm_lock, NULL);
	*state = s;
	s->rows = calloc((size_t) (s->ntables * s->nkeys), sizeof *s->rows);
	s->pad = malloc((size_t) s->value_size + 1);
	s->bigbuf = malloc((size_t) s->value_size + 64);
	if (!s->rows || !s->pad || !s->bigbuf) {
		host->set_error(host, NULL, "out of memory");
		return SYNCD_FATAL;
	}
	memset(s->pad, 'x', (size_t) s->value_size);
	s->pad[s->value_size] = '\0';

	s->cols[0] = (syncd_column){.size = sizeof(syncd_column),
	                            .name = "id",
	                            .type_oid = 23,
	                            .type_name = "integer",
	                            .typmod = -1,
	                            .flags = SYNCD_COL_KEY | SYNCD_COL_NOT_NULL,
	                            .key_position = 1};
	s->cols[1] = (syncd_column){.size = sizeof(syncd_column),
	                            .name = "val",
	                            .type_oid = 25,
	                            .type_name = "text",
	                            .typmod = -1};
	s->cols[2] = (syncd_column){.size = sizeof(syncd_column),
	                            .name = "big",
	                            .type_oid = 25,
	                            .type_name = "text",
	                            .typmod = -1};
	for (int t = 0; t < s->ntables; t++) {
		snprintf(s->names[t], sizeof s->names[t], "t%d", t);
		s->rels[t] = (syncd_relation){.size = sizeof(syncd_relation),
		                              .id = 16384 + (uint64_t) t,
		                              .database = "synthdb",
		                              .schema = "synth",
		                              .table = s->names[t],
		                              .ncolumns = SYNTH_NCOLS,
		                              .columns = s->cols,
		                              .replica_identity = 'd'};
	}
	return SYNCD_OK;
}

static void
synth_destroy(void *state)
{
	synth *s = state;

	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->turn);
	pthread_mutex_destroy(&s->confirm_lock);
	free(s->rows);
	free(s->pad);
	free(s->bigbuf);
	free(s);
}

/* One stream per database in a real source; here, one per share of the
 * transactions. */
static syncd_status
synth_streams(void *state, syncd_stream_fn fn, void *ctx)
{
	synth *s = state;

	for (int64_t i = 0; i < s->nstreams; i++) {
		char name[16];
		syncd_stream st = {
		    .size = sizeof st, .id = (uint32_t) i, .name = name};
		syncd_status rc;

		if (s->nstreams == 1)
			snprintf(name, sizeof name, "synth");
		else
			snprintf(name, sizeof name, "synth%d", (int) i);
		rc = fn(ctx, &st);
		if (rc != SYNCD_OK)
			return rc;
	}
	return SYNCD_OK;
}

static char *
synth_state_path(synth *s)
{
	const char *dir = s->host->job->state_dir;
	size_t n = strlen(dir) + 32;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/synth.confirmed", dir);
	return p;
}

/* Under confirm_lock. */
static void
synth_load_confirmed(synth *s)
{
	char *path;
	FILE *f;
	unsigned st;
	unsigned long long lsn;

	if (s->loaded)
		return;
	s->loaded = true;
	path = synth_state_path(s);
	f = path ? fopen(path, "r") : NULL;
	if (f) {
		s->found = true;
		while (fscanf(f, "%u %llx", &st, &lsn) == 2)
			if (st < SYNTH_MAX_STREAMS)
				s->confirmed[st] = lsn;
		fclose(f);
	}
	free(path);
}

/* Under confirm_lock: stores what is durable, like a slot's
 * confirmed_flush_lsn. */
static void
synth_store_confirmed(synth *s)
{
	char *path = synth_state_path(s), *tmp;
	FILE *f;

	if (!path)
		return;
	tmp = malloc(strlen(path) + 5);
	if (tmp) {
		sprintf(tmp, "%s.tmp", path);
		f = fopen(tmp, "w");
		if (f) {
			for (int st = 0; st < s->nstreams; st++)
				fprintf(f, "%d %llx\n", st,
				        (unsigned long long) s->confirmed[st]);
			if (fclose(f) == 0)
				rename(tmp, path);
		}
		free(tmp);
	}
	free(path);
}

static void
synth_confirm(void *state, uint32_t stream, syncd_lsn lsn)
{
	synth *s = state;

	if (stream >= (uint32_t) s->nstreams)
		return;
	pthread_mutex_lock(&s->confirm_lock);
	synth_load_confirmed(s);
	if (lsn > s->confirmed[stream]) {
		if (s->confirm_log) {
			char line[64];
			int fd = open(s->confirm_log,
			              O_WRONLY | O_APPEND | O_CREAT, 0644);
			int n = snprintf(line, sizeof line, "confirm %u %llx\n",
			                 stream, (unsigned long long) lsn);
			if (fd >= 0) {
				if (write(fd, line, (size_t) n) != n)
					SYNCD_LOG_WARNING(s->host,
					                  "short write to %s",
					                  s->confirm_log);
				close(fd);
			}
		}
		s->confirmed[stream] = lsn;
		synth_store_confirmed(s);
	}
	pthread_mutex_unlock(&s->confirm_lock);
}

static syncd_status
synth_open(void *state, uint32_t stream, syncd_position *pos)
{
	synth *s = state;

	if (stream >= (uint32_t) s->nstreams) {
		s->host->set_error(s->host, NULL,
		                   "there is no stream %u: streams = %d",
		                   stream, (int) s->nstreams);
		return SYNCD_FATAL;
	}
	if (stream == 0 && s->password)
		SYNCD_LOG_INFO(s->host,
		               "connecting with password=%s to nowhere",
		               s->password);
	pthread_mutex_lock(&s->confirm_lock);
	synth_load_confirmed(s);
	pos->confirmed = s->confirmed[stream];
	pos->created = !s->found; /* a new "slot" */
	if (!s->found) {
		/* kept from now on, as a slot is once created */
		synth_store_confirmed(s);
		s->found = true;
	}
	if (SYNCD_HAS(pos, holder))
		pos->holder = "synth.confirmed";
	pthread_mutex_unlock(&s->confirm_lock);
	pthread_mutex_lock(&s->lock);
	if (s->nopen == 0 && s->next_tx > 1) {
		/* opened again after every stream closed (a restart of the
		 * job in this instance): the stream starts over, as a slot's
		 * does from its confirmed position */
		memset(s->rows, 0,
		       (size_t) (s->ntables * s->nkeys) * sizeof *s->rows);
		s->rng = (uint64_t) s->seed * 0x9E3779B97F4A7C15ULL + 1;
		s->updates = 0;
		s->next_tx = 1;
		s->paced = false;
		memset(s->after, 0, sizeof s->after);
		memset(s->last_sent, 0, sizeof s->last_sent);
		memset(s->announced, 0, sizeof s->announced);
	}
	if (!s->open[stream]) {
		s->open[stream] = true;
		s->nopen++;
	}
	pthread_mutex_unlock(&s->lock);
	return SYNCD_OK;
}

static syncd_status
synth_start(void *state, uint32_t stream, syncd_lsn after)
{
	synth *s = state;

	pthread_mutex_lock(&s->lock);
	s->after[stream] = after;
	if (!s->paced) {
		clock_gettime(CLOCK_MONOTONIC, &s->t0);
		s->paced = true;
	}
	pthread_mutex_unlock(&s->lock);
	return SYNCD_OK;
}

static void
synth_text(char *buf, size_t n, const char *what, unsigned long v,
           const char *pad)
{
	/* values with characters that need escaping in every format */
	snprintf(buf, n, "%s%lu\t\"q\"\\n\n\xc3\xa9%s", what, v, pad);
}

static void
synth_encode(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char) *s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-')
			fputc(c, f);
		else
			fprintf(f, "%%%02X", c);
	}
}

static void
synth_write_expect(synth *s)
{
	FILE *f;
	char *vbuf, *bbuf;
	size_t n = (size_t) s->value_size + 64;

	if (!s->expect)
		return;
	f = fopen(s->expect, "w");
	if (!f) {
		SYNCD_LOG_ERROR(s->host, "cannot write %s", s->expect);
		return;
	}
	vbuf = malloc(n);
	bbuf = malloc(n);
	for (int t = 0; t < s->ntables; t++)
		for (int k = 0; k < s->nkeys; k++) {
			synth_row *r = &s->rows[t * s->nkeys + k];
			if (!r->exists)
				continue;
			synth_text(vbuf, n, "v", r->val, "");
			synth_text(bbuf, n, "b", r->big, s->pad);
			fprintf(f, "synth.t%d\t%d\t", t, k);
			synth_encode(f, vbuf);
			fputc('\t', f);
			synth_encode(f, bbuf);
			fputc('\n', f);
		}
	free(vbuf);
	free(bbuf);
	fclose(f);
}

typedef struct synth_tx {
	synth *s;
	bool emit; /* false: only advance the model (already applied) */
	syncd_emit_fn fn;
	void *ctx;
	size_t events; /* emitted in this read() */
	syncd_event base;
	char key[2][16], val[64];
	char *bigbuf;
} synth_tx;

static syncd_status
synth_send(synth_tx *x, syncd_event *ev)
{
	if (!x->emit)
		return SYNCD_OK;
	ev->size = sizeof *ev;
	ev->lsn = x->base.lsn;
	ev->commit_time = x->base.commit_time;
	ev->xid = x->base.xid;
	ev->stream = x->base.stream;
	x->events++;
	return x->fn(x->ctx, ev);
}

/* One change on table t, advancing the model. */
static syncd_status
synth_change(synth_tx *x, int t)
{
	synth *s = x->s;
	int k = (int) (synth_rand(s) % (uint64_t) s->nkeys);
	synth_row *r = &s->rows[t * s->nkeys + k];
	syncd_value nv[SYNTH_NCOLS], ov[SYNTH_NCOLS];
	syncd_event ev = {.rel = &s->rels[t]};
	size_t bn = (size_t) s->value_size + 64;
	unsigned long stamp = (unsigned long) (synth_rand(s) % 1000000);
	uint64_t dice = synth_rand(s) % 4;

	memset(nv, 0, sizeof nv);
	memset(ov, 0, sizeof ov);
	snprintf(x->key[0], sizeof x->key[0], "%d", k);
	if (!r->exists) {
		r->exists = true;
		r->val = stamp;
		r->big = stamp;
		synth_text(x->val, sizeof x->val, "v", r->val, "");
		synth_text(x->bigbuf, bn, "b", r->big, s->pad);
		nv[0] = (syncd_value){SYNCD_VALUE_TEXT,
		                      (uint32_t) strlen(x->key[0]), x->key[0]};
		nv[1] = (syncd_value){SYNCD_VALUE_TEXT,
		                      (uint32_t) strlen(x->val), x->val};
		nv[2] = (syncd_value){SYNCD_VALUE_TEXT,
		                      (uint32_t) strlen(x->bigbuf), x->bigbuf};
		ev.type = SYNCD_EV_INSERT;
		ev.new_values = nv;
		return synth_send(x, &ev);
	}
	if (dice == 0) {
		r->exists = false;
		ov[0] = (syncd_value){SYNCD_VALUE_TEXT,
		                      (uint32_t) strlen(x->key[0]), x->key[0]};
		ev.type = SYNCD_EV_DELETE;
		ev.old_values = ov;
		ev.old_is_key = true;
		return synth_send(x, &ev);
	}
	/* update */
	s->updates++;
	ev.type = SYNCD_EV_UPDATE;
	r->val = stamp;
	synth_text(x->val, sizeof x->val, "v", r->val, "");
	nv[1] =
	    (syncd_value){SYNCD_VALUE_TEXT, (uint32_t) strlen(x->val), x->val};
	if (dice == 1) {
		nv[2] = (syncd_value){SYNCD_VALUE_UNCHANGED, 0, NULL};
	} else {
		r->big = stamp;
		synth_text(x->bigbuf, bn, "b", r->big, s->pad);
		nv[2] = (syncd_value){SYNCD_VALUE_TEXT,
		                      (uint32_t) strlen(x->bigbuf), x->bigbuf};
	}
	if (s->key_change_every && s->updates % s->key_change_every == 0) {
		int k2 = (int) (synth_rand(s) % (uint64_t) s->nkeys);
		synth_row *r2 = &s->rows[t * s->nkeys + k2];
		if (!r2->exists) {
			*r2 = *r;
			r->exists = false;
			snprintf(x->key[1], sizeof x->key[1], "%d", k2);
			ov[0] = (syncd_value){SYNCD_VALUE_TEXT,
			                      (uint32_t) strlen(x->key[0]),
			                      x->key[0]};
			ev.old_values = ov;
			ev.old_is_key = true;
			nv[0] = (syncd_value){SYNCD_VALUE_TEXT,
			                      (uint32_t) strlen(x->key[1]),
			                      x->key[1]};
			ev.new_values = nv;
			return synth_send(x, &ev);
		}
	}
	nv[0] = (syncd_value){SYNCD_VALUE_TEXT, (uint32_t) strlen(x->key[0]),
	                      x->key[0]};
	ev.new_values = nv;
	return synth_send(x, &ev);
}

/* Transaction n of stream `stream`, emitted or (already applied) only
 * generated. */
static syncd_status
synth_transaction(synth_tx *x, int64_t n, uint32_t stream)
{
	synth *s = x->s;
	syncd_lsn lsn = SYNTH_BASE_LSN + (syncd_lsn) n * 0x100;
	syncd_event ev;
	syncd_status st;

	x->emit = lsn > s->after[stream];
	x->base = (syncd_event){.lsn = lsn,
	                        .commit_time = 1764000000000000LL + n * 1000,
	                        .xid = (uint32_t) (1000 + n),
	                        .stream = stream};
	ev = (syncd_event){.type = SYNCD_EV_BEGIN};
	st = synth_send(x, &ev);
	if (st == SYNCD_OK && x->emit &&
	    (!s->announced[stream] ||
	     (s->relation_every && n % s->relation_every == 0))) {
		s->announced[stream] = true;
		for (int t = 0; t < s->ntables && st == SYNCD_OK; t++) {
			ev = (syncd_event){.type = SYNCD_EV_RELATION,
			                   .rel = &s->rels[t]};
			st = synth_send(x, &ev);
		}
	}
	if (s->truncate_every && n % s->truncate_every == 0) {
		const syncd_relation *rels[2] = {&s->rels[0],
		                                 &s->rels[s->ntables > 1]};
		uint32_t nr = s->ntables > 1 ? 2 : 1;
		for (uint32_t i = 0; i < nr; i++)
			for (int k = 0; k < s->nkeys; k++)
				s->rows[(rels[i] - s->rels) * s->nkeys + k]
				    .exists = false;
		ev = (syncd_event){.type = SYNCD_EV_TRUNCATE,
		                   .rel = rels[0],
		                   .rels = rels,
		                   .nrels = nr};
		if (st == SYNCD_OK)
			st = synth_send(x, &ev);
	} else {
		for (int64_t c = 0; c < s->nchanges && st == SYNCD_OK; c++)
			st = synth_change(
			    x, (int) (synth_rand(s) % (uint64_t) s->ntables));
	}
	ev = (syncd_event){.type = SYNCD_EV_COMMIT};
	if (st == SYNCD_OK)
		st = synth_send(x, &ev);
	if (st == SYNCD_OK && x->emit)
		s->last_sent[stream] = lsn;
	return st;
}

static int64_t
synth_ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 +
	       (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static void
synth_sleep_ms(int64_t ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Emits the stream's transactions as their turns come, up to about
 * SYNTH_READ_EVENTS events or timeout_ms; SYNCD_END once every
 * transaction was generated. */
static syncd_status
synth_read(void *state, uint32_t stream, int timeout_ms, syncd_emit_fn emit,
           void *emit_ctx)
{
	synth *s = state;
	synth_tx x = {.s = s, .fn = emit, .ctx = emit_ctx, .bigbuf = s->bigbuf};
	struct timespec begun, deadline;
	syncd_status st;

	clock_gettime(CLOCK_MONOTONIC, &begun);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	for (;;) {
		int64_t n;

		if (s->host->stopping(s->host))
			return SYNCD_OK;
		pthread_mutex_lock(&s->lock);
		while ((s->ntx == 0 || s->next_tx <= s->ntx) &&
		       (s->next_tx - 1) % s->nstreams != (int64_t) stream) {
			/* another stream's turn */
			if (x.events > 0 ||
			    pthread_cond_timedwait(&s->turn, &s->lock,
			                           &deadline) == ETIMEDOUT) {
				pthread_mutex_unlock(&s->lock);
				return SYNCD_OK;
			}
		}
		n = s->next_tx;
		pthread_mutex_unlock(&s->lock);
		if (s->ntx && n > s->ntx)
			return SYNCD_END;
		if (s->rate &&
		    SYNTH_BASE_LSN + (syncd_lsn) n * 0x100 > s->after[stream]) {
			/* pace: transaction n is due at n / rate seconds */
			int64_t due =
			    n * 1000 / s->rate - synth_ms_since(&s->t0);
			int64_t left = timeout_ms - synth_ms_since(&begun);
			if (due > 0) {
				if (x.events > 0)
					return SYNCD_OK;
				synth_sleep_ms(due < left ? due : left);
				if (due >= left)
					return SYNCD_OK;
			}
		}
		/* the model is ours until the turn is passed on */
		st = synth_transaction(&x, n, stream);
		pthread_mutex_lock(&s->lock);
		s->next_tx++;
		pthread_cond_broadcast(&s->turn);
		pthread_mutex_unlock(&s->lock);
		if (st != SYNCD_OK) {
			s->host->set_error(s->host, NULL,
			                   "the pipeline refused an event");
			return st;
		}
		if (x.events >= SYNTH_READ_EVENTS ||
		    synth_ms_since(&begun) >= timeout_ms)
			return SYNCD_OK;
	}
}

/* The last stream to close writes the expected state, if everything sent
 * was confirmed (the core passes the last confirm on before close). */
static void
synth_close(void *state, uint32_t stream)
{
	synth *s = state;
	bool last;

	pthread_mutex_lock(&s->lock);
	if (stream < (uint32_t) s->nstreams && s->open[stream]) {
		s->open[stream] = false;
		s->nopen--;
	}
	last = s->nopen == 0;
	pthread_mutex_unlock(&s->lock);
	if (!last)
		return;
	pthread_mutex_lock(&s->confirm_lock);
	for (int st = 0; st < s->nstreams; st++)
		if (s->confirmed[st] < s->last_sent[st]) {
			SYNCD_LOG_WARNING(
			    s->host,
			    "stream %d: closed, yet only " SYNCD_LSN_FMT
			    " of " SYNCD_LSN_FMT
			    " is confirmed; no expected state written",
			    st, SYNCD_LSN_ARGS(s->confirmed[st]),
			    SYNCD_LSN_ARGS(s->last_sent[st]));
			pthread_mutex_unlock(&s->confirm_lock);
			return;
		}
	pthread_mutex_unlock(&s->confirm_lock);
	synth_write_expect(s);
}

static const syncd_source_ops synth_ops = {
    .size = sizeof(syncd_source_ops),
    .create = synth_create,
    .destroy = synth_destroy,
    .streams = synth_streams,
    .open = synth_open,
    .start = synth_start,
    .read = synth_read,
    .confirm = synth_confirm,
    .close = synth_close,
};

SYNCD_PLUGIN(.kind = SYNCD_KIND_SOURCE, .name = "synth", .version = "1.0",
             .description = "synthetic change stream (tests only)",
             .options = synth_options, .options_size = sizeof(synth_opts),
             .ops.source = &synth_ops)
