/*
 * synth - a synthetic source for the tests (built only for make check).
 *
 * Emits a deterministic stream of transactions over a few tables
 * "synth.tN" (columns id int4 key, val text, big text) with inserts,
 * updates (some leaving `big` as unchanged TOAST, some changing the key),
 * deletes, truncates and relation re-announcements. It behaves like a
 * replication slot: the LSN it is told is durable (host->flushed_lsn) is
 * stored in the state directory, and a restart skips what was confirmed.
 *
 * For the tests to check the result it can write:
 *  - expect: the final state the destination must reach, one
 *    "table<TAB>id<TAB>val<TAB>big" line per row, values %-encoded;
 *  - confirm_log: a "confirm STREAM LSN" line each time it confirms more
 *    (append, one write each, so it can share the capture sink's file and
 *    the order of lines there is the order of events).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <syncd/syncd.h>

#define SYNTH_MAX_TABLES 26
#define SYNTH_NCOLS      3
#define SYNTH_BASE_LSN   0x1000000ULL

static const syncd_option synth_options[] = {
    {.name = "transactions",
     .type = SYNCD_OPT_INT,
     .default_value = "1000",
     .help = "transactions to emit; 0: until stopped",
     .min = 0,
     .max = 100000000},
    {.name = "changes",
     .type = SYNCD_OPT_INT,
     .default_value = "5",
     .help = "changes per transaction",
     .min = 1,
     .max = 1000000},
    {.name = "tables",
     .type = SYNCD_OPT_INT,
     .default_value = "3",
     .help = "number of tables",
     .min = 1,
     .max = SYNTH_MAX_TABLES},
    {.name = "keys",
     .type = SYNCD_OPT_INT,
     .default_value = "100",
     .help = "key space per table",
     .min = 1,
     .max = 10000000},
    {.name = "seed",
     .type = SYNCD_OPT_INT,
     .default_value = "1",
     .help = "random seed",
     .min = 0,
     .max = 1000000000},
    {.name = "truncate_every",
     .type = SYNCD_OPT_INT,
     .default_value = "0",
     .help = "every Nth transaction truncates tables t0 and t1; 0: never",
     .min = 0,
     .max = 100000000},
    {.name = "relation_every",
     .type = SYNCD_OPT_INT,
     .default_value = "0",
     .help = "every Nth transaction re-announces its tables; 0: never",
     .min = 0,
     .max = 100000000},
    {.name = "key_change_every",
     .type = SYNCD_OPT_INT,
     .default_value = "0",
     .help = "every Nth update changes the key; 0: never",
     .min = 0,
     .max = 100000000},
    {.name = "value_size",
     .type = SYNCD_OPT_INT,
     .default_value = "0",
     .help = "bytes of padding added to each big value",
     .min = 0,
     .max = 100000000},
    {.name = "rate",
     .type = SYNCD_OPT_INT,
     .default_value = "0",
     .help = "transactions per second; 0: as fast as possible",
     .min = 0,
     .max = 10000000},
    {.name = "streams",
     .type = SYNCD_OPT_INT,
     .default_value = "1",
     .help = "ordered streams, transactions dealt round-robin",
     .min = 1,
     .max = 8},
    {.name = "expect",
     .type = SYNCD_OPT_STRING,
     .help = "write the expected final state to this file"},
    {.name = "confirm_log",
     .type = SYNCD_OPT_STRING,
     .help = "append a line for each confirmation to this file"},
    {.name = "password",
     .type = SYNCD_OPT_STRING,
     .flags = SYNCD_OPT_SECRET,
     .help = "unused; logged at start to test that secrets are masked"},
    {.name = NULL}};

typedef struct synth_row {
	bool exists;
	unsigned long val;
	unsigned long big;
} synth_row;

typedef struct synth {
	syncd_instance *inst;
	const syncd_host *host;
	int64_t ntx, nchanges, ntables, nkeys, truncate_every, relation_every,
	    key_change_every, value_size, rate, nstreams;
	uint64_t rng;
	const char *expect, *confirm_log, *password;
	synth_row *rows; /* [table * nkeys + key] */
	syncd_relation rels[SYNTH_MAX_TABLES];
	char names[SYNTH_MAX_TABLES][8];
	syncd_column cols[SYNTH_NCOLS];
	syncd_lsn confirmed[8]; /* per stream, as stored */
	syncd_lsn last_sent[8];
	int64_t updates;
	char *pad;
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
synth_create(syncd_instance *inst, const syncd_host *host, void **state)
{
	synth *s = calloc(1, sizeof *s);

	s->inst = inst;
	s->host = host;
	s->ntx = host->opt_int(inst, "transactions");
	s->nchanges = host->opt_int(inst, "changes");
	s->ntables = host->opt_int(inst, "tables");
	s->nkeys = host->opt_int(inst, "keys");
	s->truncate_every = host->opt_int(inst, "truncate_every");
	s->relation_every = host->opt_int(inst, "relation_every");
	s->key_change_every = host->opt_int(inst, "key_change_every");
	s->value_size = host->opt_int(inst, "value_size");
	s->rate = host->opt_int(inst, "rate");
	s->nstreams = host->opt_int(inst, "streams");
	s->rng =
	    (uint64_t) host->opt_int(inst, "seed") * 0x9E3779B97F4A7C15ULL + 1;
	s->expect = host->opt_string(inst, "expect");
	s->confirm_log = host->opt_string(inst, "confirm_log");
	s->password = host->opt_string(inst, "password");
	s->rows = calloc((size_t) (s->ntables * s->nkeys), sizeof *s->rows);
	s->pad = malloc((size_t) s->value_size + 1);
	memset(s->pad, 'x', (size_t) s->value_size);
	s->pad[s->value_size] = '\0';

	s->cols[0] =
	    (syncd_column){.name = "id",
	                   .type_oid = 23,
	                   .type_name = "integer",
	                   .typmod = -1,
	                   .flags = SYNCD_COL_KEY | SYNCD_COL_NOT_NULL};
	s->cols[1] = (syncd_column){
	    .name = "val", .type_oid = 25, .type_name = "text", .typmod = -1};
	s->cols[2] = (syncd_column){
	    .name = "big", .type_oid = 25, .type_name = "text", .typmod = -1};
	for (int t = 0; t < s->ntables; t++) {
		snprintf(s->names[t], sizeof s->names[t], "t%d", t);
		s->rels[t] = (syncd_relation){.id = 16384 + (uint64_t) t,
		                              .database = "synthdb",
		                              .schema = "synth",
		                              .table = s->names[t],
		                              .ncolumns = SYNTH_NCOLS,
		                              .columns = s->cols,
		                              .replica_identity = 'd'};
	}
	*state = s;
	return SYNCD_OK;
}

static void
synth_destroy(void *state)
{
	synth *s = state;
	free(s->rows);
	free(s->pad);
	free(s);
}

static char *
synth_state_path(synth *s)
{
	const char *dir = s->host->state_dir(s->inst);
	size_t n = strlen(dir) + 32;
	char *p = malloc(n);
	snprintf(p, n, "%s/synth.confirmed", dir);
	return p;
}

static void
synth_load_confirmed(synth *s)
{
	char *path = synth_state_path(s);
	FILE *f = fopen(path, "r");
	unsigned st;
	unsigned long long lsn;

	if (f) {
		while (fscanf(f, "%u %llx", &st, &lsn) == 2)
			if (st < 8)
				s->confirmed[st] = lsn;
		fclose(f);
	}
	free(path);
}

/* Stores what is durable, like a slot's confirmed_flush_lsn. */
static void
synth_confirm(synth *s)
{
	bool moved = false;

	for (int st = 0; st < s->nstreams; st++) {
		syncd_lsn l = s->host->flushed_lsn(s->inst, (uint32_t) st);
		if (l > s->confirmed[st]) {
			if (s->confirm_log) {
				char line[64];
				int fd =
				    open(s->confirm_log,
				         O_WRONLY | O_APPEND | O_CREAT, 0644);
				int n = snprintf(line, sizeof line,
				                 "confirm %d %llx\n", st,
				                 (unsigned long long) l);
				if (fd >= 0) {
					if (write(fd, line, (size_t) n) != n)
						s->host->log(
						    s->inst, SYNCD_LOG_WARNING,
						    "short write to %s",
						    s->confirm_log);
					close(fd);
				}
			}
			s->confirmed[st] = l;
			moved = true;
		}
	}
	if (moved) {
		char *path = synth_state_path(s),
		     *tmp = malloc(strlen(path) + 5);
		FILE *f;
		sprintf(tmp, "%s.tmp", path);
		f = fopen(tmp, "w");
		if (f) {
			for (int st = 0; st < s->nstreams; st++)
				fprintf(f, "%d %llx\n", st,
				        (unsigned long long) s->confirmed[st]);
			fclose(f);
			rename(tmp, path);
		}
		free(tmp);
		free(path);
	}
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
		s->host->log(s->inst, SYNCD_LOG_ERROR, "cannot write %s",
		             s->expect);
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
	bool emit; /* false: only advance the model (already confirmed) */
	syncd_event base;
	char key[2][16], val[64], big[64];
	char *bigbuf;
} synth_tx;

static syncd_status
synth_send(synth_tx *x, syncd_event *ev)
{
	if (!x->emit)
		return SYNCD_OK;
	ev->lsn = x->base.lsn;
	ev->commit_time = x->base.commit_time;
	ev->xid = x->base.xid;
	ev->stream = x->base.stream;
	return x->s->host->emit(x->s->inst, ev);
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

static void
synth_sleep_ms(int64_t ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static syncd_status
synth_run(void *state)
{
	synth *s = state;
	synth_tx x = {.s = s};
	syncd_status st = SYNCD_OK;
	struct timespec t0;
	int64_t last_confirm = 0;
	bool announced = false;

	if (s->password)
		s->host->log(s->inst, SYNCD_LOG_INFO,
		             "connecting with password=%s to nowhere",
		             s->password);
	synth_load_confirmed(s);
	x.bigbuf = malloc((size_t) s->value_size + 64);
	clock_gettime(CLOCK_MONOTONIC, &t0);

	for (int64_t n = 1; (s->ntx == 0 || n <= s->ntx) && st == SYNCD_OK;
	     n++) {
		uint32_t stream = (uint32_t) ((n - 1) % s->nstreams);
		syncd_lsn lsn = SYNTH_BASE_LSN + (syncd_lsn) n * 0x100;
		syncd_event ev;
		struct timespec now;
		int64_t elapsed;

		if (s->host->stopping(s->inst))
			break;
		x.emit = lsn > s->confirmed[stream];
		x.base =
		    (syncd_event){.lsn = lsn,
		                  .commit_time = 1764000000000000LL + n * 1000,
		                  .xid = (uint32_t) (1000 + n),
		                  .stream = stream};
		if (x.emit && s->rate) {
			/* pace: transaction n is due at n / rate seconds */
			clock_gettime(CLOCK_MONOTONIC, &now);
			elapsed = (now.tv_sec - t0.tv_sec) * 1000 +
			          (now.tv_nsec - t0.tv_nsec) / 1000000;
			if (n * 1000 / s->rate > elapsed)
				synth_sleep_ms(n * 1000 / s->rate - elapsed);
		}
		ev = (syncd_event){.type = SYNCD_EV_BEGIN};
		st = synth_send(&x, &ev);
		if (st == SYNCD_OK && x.emit &&
		    (!announced ||
		     (s->relation_every && n % s->relation_every == 0))) {
			announced = true;
			for (int t = 0; t < s->ntables && st == SYNCD_OK; t++) {
				ev = (syncd_event){.type = SYNCD_EV_RELATION,
				                   .rel = &s->rels[t]};
				st = synth_send(&x, &ev);
			}
		}
		if (s->truncate_every && n % s->truncate_every == 0) {
			const syncd_relation *rels[2] = {
			    &s->rels[0], &s->rels[s->ntables > 1]};
			uint32_t nr = s->ntables > 1 ? 2 : 1;
			for (uint32_t i = 0; i < nr; i++)
				for (int k = 0; k < s->nkeys; k++)
					s->rows[(rels[i] - s->rels) * s->nkeys +
					        k]
					    .exists = false;
			ev = (syncd_event){.type = SYNCD_EV_TRUNCATE,
			                   .rel = rels[0],
			                   .rels = rels,
			                   .nrels = nr};
			if (st == SYNCD_OK)
				st = synth_send(&x, &ev);
		} else {
			for (int64_t c = 0; c < s->nchanges && st == SYNCD_OK;
			     c++)
				st = synth_change(
				    &x, (int) (synth_rand(s) %
				               (uint64_t) s->ntables));
		}
		ev = (syncd_event){.type = SYNCD_EV_COMMIT};
		if (st == SYNCD_OK)
			st = synth_send(&x, &ev);
		if (x.emit)
			s->last_sent[stream] = lsn;
		{
			struct timespec c;
			clock_gettime(CLOCK_MONOTONIC, &c);
			int64_t ms = c.tv_sec * 1000 + c.tv_nsec / 1000000;
			if (ms - last_confirm >= 50) {
				synth_confirm(s);
				last_confirm = ms;
			}
		}
	}
	free(x.bigbuf);
	if (st != SYNCD_OK) {
		s->host->set_error(s->inst, NULL,
		                   "the pipeline refused an event");
		return SYNCD_FATAL;
	}
	/* the end of the stream, or a stop: everything sent must be durable
	 * before it is confirmed */
	if (s->host->drain(s->inst) != SYNCD_OK) {
		s->host->set_error(s->inst, NULL, "drain failed");
		return SYNCD_FATAL;
	}
	synth_confirm(s);
	for (int stn = 0; stn < s->nstreams; stn++)
		if (s->confirmed[stn] < s->last_sent[stn]) {
			s->host->set_error(
			    s->inst, NULL,
			    "stream %d: drained, yet only " SYNCD_LSN_FMT
			    " of " SYNCD_LSN_FMT " is durable",
			    stn, SYNCD_LSN_ARGS(s->confirmed[stn]),
			    SYNCD_LSN_ARGS(s->last_sent[stn]));
			return SYNCD_FATAL;
		}
	synth_write_expect(s);
	return SYNCD_OK;
}

static const syncd_source_ops synth_ops = {
    .size = sizeof(syncd_source_ops),
    .create = synth_create,
    .destroy = synth_destroy,
    .run = synth_run,
};

SYNCD_PLUGIN(.kind = SYNCD_KIND_SOURCE, .name = "synth", .version = "1.0",
             .description = "synthetic change stream (tests only)",
             .options = synth_options, .ops.source = &synth_ops)
