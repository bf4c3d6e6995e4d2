/*
 * tests/unit/test_pipeline.c - the pipeline end to end, before any database
 * exists: the syncd executable runs jobs from the synthetic source into the
 * capturing sink, both loaded through the real loader. The capture is then
 * replayed into a model of the destination and compared with the state the
 * source says it produced, and its batches are checked for the flush
 * triggers, routing, and the rule that nothing is confirmed before every
 * worker has made it durable.
 */
#include "config.h"

#include "tests.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TABLES  26
#define MAX_KEYS    2000
#define MAX_STREAMS 8

typedef struct row {
	char *val, *big;
} row;

typedef struct capture {
	/* the model of the destination */
	row rows[MAX_TABLES][MAX_KEYS];
	/* batches */
	size_t nbatches, incomplete;
	size_t max_changes, min_changes_full, max_bytes;
	size_t changes; /* INSERT/UPDATE/DELETE/TRUNCATE events applied */
	int table_worker[MAX_TABLES]; /* -1 unknown, -2 several */
	bool workers_seen[64];
	/* progress per worker and stream, as of the last complete batch */
	unsigned long long progress[64][MAX_STREAMS];
	unsigned long long last_confirm[MAX_STREAMS];
	size_t confirms;
	bool early_confirm; /* a confirm ahead of some worker's progress */
	char early[256];
	int nworkers;
} capture;

static char *tmp;

static void
setup(void)
{
	tmp = test_tmpdir();
}

static void
teardown(void)
{
	test_rmdir(tmp);
	free(tmp);
}

static char *
path_in(const char *name)
{
	char *p = malloc(4096);
	snprintf(p, 4096, "%s/%s", tmp, name);
	return p;
}

/* A new destination and a new slot: forget what earlier runs did. */
static void
reset_state(void)
{
	char *state = path_in("state"), *cap = path_in("capture");
	test_rmdir(state);
	unlink(cap);
	free(state);
	free(cap);
}

/* A job file: synth -> capture, with extra lines for each section. */
static char *
write_job(const char *job_extra, const char *source_extra,
          const char *sink_extra)
{
	char text[8192];
	snprintf(text, sizeof text,
	         "[job]\nname = pipetest\nmode = incremental\nstate_dir = "
	         "%s/state\n%s"
	         "[source]\nplugin = synth\nexpect = %s/expect\nconfirm_log = "
	         "%s/capture\n%s"
	         "[sink]\nplugin = capture\npath = %s/capture\n%s",
	         tmp, job_extra, tmp, tmp, source_extra, tmp, sink_extra);
	return test_write_file(tmp, "job.ini", text);
}

static int
run_job(char **err, const char *job)
{
	const char *args[] = {"-c", job, "--plugin-dir",
	                      test_env("TEST_PLUGIN_DIR"), NULL};
	return test_run_syncd(err, args);
}

static pid_t
spawn_job(const char *job, const char *errfile)
{
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(errfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, 2);
		execl(test_env("SYNCD"), "syncd", "-c", job, "--plugin-dir",
		      test_env("TEST_PLUGIN_DIR"), (char *) NULL);
		_exit(127);
	}
	return pid;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int
table_index(const char *rel)
{
	const char *t = strstr(rel, ".t");
	return t ? atoi(t + 2) : -1;
}

/* Splits "a,b,c" in place. */
static int
split(char *s, char **out, int max)
{
	int n = 0;
	while (s && n < max) {
		out[n++] = s;
		s = strchr(s, ',');
		if (s)
			*s++ = '\0';
	}
	return n;
}

static void
set_row(row *r, const char *val, const char *big)
{
	char *v = strdup(val), *b = strdup(big);
	free(r->val);
	free(r->big);
	r->val = v;
	r->big = b;
}

static void
clear_row(row *r)
{
	free(r->val);
	free(r->big);
	r->val = r->big = NULL;
}

static void
apply(capture *c, char *type, const char *rel, char *old, char *new)
{
	char *o[3], *n[3];
	int t = table_index(rel);

	if (strcmp(type, "TRUNCATE") == 0) {
		char *rels[MAX_TABLES];
		int nr = split((char *) rel, rels, MAX_TABLES);
		for (int i = 0; i < nr; i++) {
			int ti = table_index(rels[i]);
			for (int k = 0; k < MAX_KEYS && ti >= 0; k++)
				clear_row(&c->rows[ti][k]);
		}
		return;
	}
	ck_assert_msg(t >= 0 && t < MAX_TABLES, "bad relation %s", rel);
	if (strcmp(type, "INSERT") == 0) {
		ck_assert_int_eq(split(new, n, 3), 3);
		set_row(&c->rows[t][atoi(n[0])], n[1], n[2]);
	} else if (strcmp(type, "UPDATE") == 0) {
		row *prev;
		char *big;
		row *cur;
		ck_assert_int_eq(split(new, n, 3), 3);
		cur = prev = &c->rows[t][atoi(n[0])];
		if (strcmp(old, "-") != 0) {
			split(old, o, 3);
			prev = &c->rows[t][atoi(o[0])];
		}
		/* unchanged TOAST: from the old row; when a replay after a
		 * restart finds the old row already moved, from the row at the
		 * new key; when neither is there, a later replayed change
		 * settles it (the final comparison would show it if not) */
		if (strcmp(n[2], "~U") != 0)
			big = strdup(n[2]);
		else if (prev->big)
			big = strdup(prev->big);
		else if (cur->big)
			big = strdup(cur->big);
		else
			big = strdup("~unknown");
		if (prev != cur)
			clear_row(prev);
		set_row(cur, n[1], big);
		free(big);
	} else if (strcmp(type, "DELETE") == 0) {
		split(old, o, 3);
		clear_row(&c->rows[t][atoi(o[0])]);
	}
}

/* Reads the capture file: complete batches are applied to the model;
 * confirm lines are checked against the workers' progress so far. */
static void
read_capture(capture *c, int nworkers, int nstreams)
{
	char *path = path_in("capture"), *line = NULL;
	FILE *f = fopen(path, "r");
	size_t cap = 0;
	char **pending = NULL;
	size_t npending = 0;
	int cur = -1;
	unsigned long long prog[MAX_STREAMS];
	size_t nchanges = 0, bytes = 0;

	memset(c, 0, sizeof *c);
	c->nworkers = nworkers;
	for (int t = 0; t < MAX_TABLES; t++)
		c->table_worker[t] = -1;
	c->min_changes_full = (size_t) -1;
	ck_assert_msg(f != NULL, "no capture file");
	while (getline(&line, &cap, f) > 0) {
		int w;
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "batch ", 6) == 0) {
			char progtext[512] = "";
			if (cur >= 0)
				c->incomplete++; /* a batch cut short (kill -9)
				                  */
			for (size_t i = 0; i < npending; i++)
				free(pending[i]);
			npending = 0;
			ck_assert_int_eq(sscanf(line, "batch %d %zu %zu %511s",
			                        &cur, &nchanges, &bytes,
			                        progtext),
			                 4);
			memset(prog, 0, sizeof prog);
			if (strcmp(progtext, "-") != 0) {
				char *items[MAX_STREAMS];
				int n = split(progtext, items, MAX_STREAMS);
				for (int i = 0; i < n; i++) {
					unsigned s;
					unsigned long long l;
					ck_assert_int_eq(
					    sscanf(items[i], "%u:%llx", &s, &l),
					    2);
					prog[s] = l;
				}
			}
		} else if (strncmp(line, "end ", 4) == 0) {
			ck_assert_int_eq(sscanf(line, "end %d", &w), 1);
			ck_assert_int_eq(w, cur);
			for (size_t i = 0; i < npending; i++) {
				char type[16], rel[256], target[256], old[4096],
				    new[65536];
				int ew;
				unsigned s, xid;
				unsigned long long lsn;
				if (sscanf(pending[i],
				           "ev %d %15s %u %llx %u %255s %255s "
				           "%4095s %65535s",
				           &ew, type, &s, &lsn, &xid, rel,
				           target, old, new) < 6)
					ck_abort_msg("bad event line: %.2000s",
					             pending[i]);
				if (strcmp(type, "INSERT") == 0 ||
				    strcmp(type, "UPDATE") == 0 ||
				    strcmp(type, "DELETE") == 0 ||
				    strcmp(type, "TRUNCATE") == 0) {
					int t = table_index(rel);
					c->changes++;
					if (strcmp(type, "TRUNCATE") != 0 &&
					    t >= 0) {
						if (c->table_worker[t] == -1)
							c->table_worker[t] = w;
						else if (c->table_worker[t] !=
						         w)
							c->table_worker[t] = -2;
					}
					apply(c, type, rel, old, new);
				}
				free(pending[i]);
			}
			npending = 0;
			c->nbatches++;
			c->workers_seen[w] = true;
			if (nchanges > c->max_changes)
				c->max_changes = nchanges;
			if (bytes > c->max_bytes)
				c->max_bytes = bytes;
			for (int s = 0; s < MAX_STREAMS; s++)
				if (prog[s] > c->progress[w][s])
					c->progress[w][s] = prog[s];
			cur = -1;
		} else if (strncmp(line, "ev ", 3) == 0) {
			pending =
			    realloc(pending, (npending + 1) * sizeof *pending);
			pending[npending++] = strdup(line);
		} else if (strncmp(line, "confirm ", 8) == 0) {
			unsigned s;
			unsigned long long l;
			ck_assert_int_eq(
			    sscanf(line, "confirm %u %llx", &s, &l), 2);
			ck_assert_uint_lt(s, (unsigned) nstreams);
			for (int wk = 0; wk < nworkers; wk++)
				if (c->progress[wk][s] < l &&
				    !c->early_confirm) {
					c->early_confirm = true;
					snprintf(c->early, sizeof c->early,
					         "stream %u confirmed %llx "
					         "while worker %d had "
					         "made durable only %llx",
					         s, l, wk, c->progress[wk][s]);
				}
			if (l > c->last_confirm[s])
				c->last_confirm[s] = l;
			c->confirms++;
		}
	}
	if (cur >= 0)
		c->incomplete++;
	for (size_t i = 0; i < npending; i++)
		free(pending[i]);
	free(pending);
	free(line);
	fclose(f);
	free(path);
}

static void
free_capture(capture *c)
{
	for (int t = 0; t < MAX_TABLES; t++)
		for (int k = 0; k < MAX_KEYS; k++)
			clear_row(&c->rows[t][k]);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The model equals the source's final state, row for row. */
static void
assert_matches_expect(capture *c)
{
	char *path = path_in("expect"), *line = NULL;
	FILE *f = fopen(path, "r");
	size_t cap = 0, ne = 0, nm = 0;
	char **expect = NULL, **model = NULL;

	ck_assert_msg(f != NULL, "the source wrote no expected state");
	while (getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = '\0';
		expect = realloc(expect, (ne + 1) * sizeof *expect);
		expect[ne++] = strdup(line);
	}
	fclose(f);
	for (int t = 0; t < MAX_TABLES; t++)
		for (int k = 0; k < MAX_KEYS; k++) {
			char buf[70000];
			if (!c->rows[t][k].val)
				continue;
			snprintf(buf, sizeof buf, "synth.t%d\t%d\t%s\t%s", t, k,
			         c->rows[t][k].val, c->rows[t][k].big);
			model = realloc(model, (nm + 1) * sizeof *model);
			model[nm++] = strdup(buf);
		}
	if (ne)
		qsort(expect, ne, sizeof *expect, cmp_str);
	if (nm)
		qsort(model, nm, sizeof *model, cmp_str);
	ck_assert_msg(ne > 0,
	              "the expected state is empty: the test proves nothing");
	for (size_t i = 0; i < ne && i < nm; i++)
		ck_assert_msg(
		    strcmp(expect[i], model[i]) == 0,
		    "row %zu differs:\n expected %.200s\n got      %.200s", i,
		    expect[i], model[i]);
	ck_assert_uint_eq(nm, ne);
	for (size_t i = 0; i < ne; i++)
		free(expect[i]);
	for (size_t i = 0; i < nm; i++)
		free(model[i]);
	free(expect);
	free(model);
	free(line);
	free(path);
}

/* Runs a job that must succeed, replays its capture and compares it with
 * the source's final state. The caller frees with drop_capture(). */
static capture *
run_ok(const char *job, int nworkers, int nstreams, char **errp)
{
	char *err = NULL;
	capture *c = calloc(1, sizeof(capture));
	int rc = run_job(&err, job);

	ck_assert_msg(rc == 0, "exit %d: %.3000s", rc, err);
	read_capture(c, nworkers, nstreams);
	assert_matches_expect(c);
	if (errp)
		*errp = err;
	else
		free(err);
	return c;
}

static void
drop_capture(capture *c)
{
	free_capture(c);
	free(c);
}

static capture *
new_capture(void)
{
	return calloc(1, sizeof(capture));
}

START_TEST(ordered_by_key_across_workers)
{
	/* keyby pk over 3 workers, one of them slow; key changes, truncates
	 * and relation re-announcements force fences and flushes */
	char *job = write_job(
	    "concurrency = 3\n",
	    "transactions = 1500\nchanges = 4\nkeys = 200\n"
	    "key_change_every = 7\ntruncate_every = 400\n"
	    "relation_every = 300\n",
	    "sink.keyby.mode = pk\nbatch.max_rows = 50\n"
	    "batch.interval = 50ms\ndelay_ms = 2\ndelay_worker = 1\n");
	capture *c = run_ok(job, 3, 1, NULL);
	ck_assert_msg(!c->early_confirm, "%s", c->early);
	ck_assert_uint_eq(c->incomplete, 0);
	ck_assert_uint_le(c->max_changes, 50);
	ck_assert(c->workers_seen[0] && c->workers_seen[1] &&
	          c->workers_seen[2]);
	/* at the end everything is confirmed: the last transaction's LSN */
	ck_assert_uint_eq(c->last_confirm[0], 0x1000000ULL + 1500 * 0x100);
	drop_capture(c);
	free(job);
}
END_TEST

START_TEST(table_routing)
{
	char *job =
	    write_job("concurrency = 3\n", "transactions = 600\ntables = 6\n",
	              "sink.keyby.mode = table\n");
	capture *c = run_ok(job, 3, 1, NULL);
	for (int t = 0; t < 6; t++)
		ck_assert_msg(c->table_worker[t] >= 0,
		              "table t%d went to several workers", t);
	ck_assert_msg(!c->early_confirm, "%s", c->early);
	drop_capture(c);
	free(job);
}
END_TEST

START_TEST(keyby_disabled_is_one_worker)
{
	char *job = write_job("concurrency = 4\n", "transactions = 200\n",
	                      "sink.keyby.enable = false\n");
	capture *c = run_ok(job, 1, 1, NULL);
	ck_assert(c->workers_seen[0]);
	for (int w = 1; w < 4; w++)
		ck_assert(!c->workers_seen[w]);
	drop_capture(c);
	free(job);
}
END_TEST

START_TEST(flush_on_rows_and_size)
{
	char *job;
	capture *c;

	job = write_job("concurrency = 1\n", "transactions = 300\n",
	                "batch.max_rows = 7\nbatch.interval = 1h\n");
	c = run_ok(job, 1, 1, NULL);
	ck_assert_uint_eq(c->max_changes, 7); /* full batches, never more */
	ck_assert_uint_ge(c->nbatches, 1500 / 7);
	drop_capture(c);
	free(job);
	reset_state();

	/* 64 KB batches of ~20 KB values: flushed by size */
	job = write_job("concurrency = 1\n",
	                "transactions = 200\nvalue_size = 20000\n",
	                "batch.max_rows = 100000\nbatch.interval = 1h\n"
	                "sink.buffer-flush.max-size = 64KB\n");
	c = run_ok(job, 1, 1, NULL);
	ck_assert_uint_ge(c->nbatches, 200 * 5 * 20000 / 65536 / 2);
	ck_assert_uint_lt(c->max_bytes, 65536 + 2 * 21000);
	drop_capture(c);
	free(job);
}
END_TEST

START_TEST(flush_on_interval)
{
	/* 40 transactions/s for 1.5 s, 100 ms interval, no other trigger: the
	 * batches can only come from the timer */
	char *job =
	    write_job("concurrency = 1\n", "transactions = 60\nrate = 40\n",
	              "batch.max_rows = 100000\nbatch.interval = 100ms\n");
	capture *c = run_ok(job, 1, 1, NULL);
	ck_assert_uint_ge(c->nbatches, 8);
	/* confirmed as it went, not only at the end */
	ck_assert_uint_ge(c->confirms, 5);
	drop_capture(c);
	free(job);
}
END_TEST

START_TEST(several_streams)
{
	char *job =
	    write_job("concurrency = 2\n", "transactions = 900\nstreams = 3\n",
	              "sink.keyby.mode = pk\n");
	capture *c = run_ok(job, 2, 3, NULL);
	ck_assert_msg(!c->early_confirm, "%s", c->early);
	ck_assert_uint_eq(c->last_confirm[0], 0x1000000ULL + 898 * 0x100);
	ck_assert_uint_eq(c->last_confirm[1], 0x1000000ULL + 899 * 0x100);
	ck_assert_uint_eq(c->last_confirm[2], 0x1000000ULL + 900 * 0x100);
	drop_capture(c);
	free(job);
}
END_TEST

START_TEST(kill_9_and_restart)
{
	char *job = write_job(
	    "concurrency = 2\n",
	    "transactions = 4000\nrate = 2500\nkey_change_every = 5\n",
	    "sink.keyby.mode = pk\nbatch.interval = 100ms\n");
	char *errfile = path_in("stderr"), *err = NULL;
	capture *c = new_capture();
	size_t before;
	pid_t pid;
	int status, rc;

	pid = spawn_job(job, errfile);
	sleep_ms(800);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	ck_assert(WIFSIGNALED(status));
	read_capture(c, 2, 1);
	ck_assert_msg(c->confirms > 0, "nothing was confirmed before the kill");
	ck_assert_msg(!c->early_confirm, "%s", c->early);
	before = c->changes;
	ck_assert_uint_lt(c->last_confirm[0], 0x1000000ULL + 4000 * 0x100);
	free_capture(c);

	/* the restart (no pacing) finishes the stream */
	free(job);
	job = write_job("concurrency = 2\n",
	                "transactions = 4000\nkey_change_every = 5\n",
	                "sink.keyby.mode = pk\nbatch.interval = 100ms\n");
	rc = run_job(&err, job);
	ck_assert_msg(rc == 0, "restart: exit %d: %.3000s", rc, err);
	read_capture(c, 2, 1);
	assert_matches_expect(c);
	ck_assert_msg(!c->early_confirm, "%s", c->early);
	/* what was applied before the kill was not all applied again */
	ck_assert_uint_lt(c->changes, 4000 * 5 + before / 2);
	ck_assert_msg(strstr(err, "already applied up to"), "%.3000s", err);
	free_capture(c);
	free(c);
	free(err);
	free(errfile);
	free(job);
}
END_TEST

START_TEST(sigterm_stops_cleanly)
{
	char *job =
	    write_job("concurrency = 2\n", "transactions = 0\nrate = 300\n",
	              "batch.interval = 1h\n");
	char *errfile = path_in("stderr");
	capture *c = new_capture();
	pid_t pid;
	int status;
	FILE *f;
	char log[8192] = "";

	pid = spawn_job(job, errfile);
	sleep_ms(900);
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	f = fopen(errfile, "r");
	if (f) {
		size_t n = fread(log, 1, sizeof log - 1, f);
		log[n] = '\0';
		fclose(f);
	}
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	              "status %d: %s", status, log);
	ck_assert_msg(strstr(log, "stopped cleanly"), "%s", log);
	read_capture(c, 2, 1);
	/* flushed at the stop although the interval is an hour, and all of it
	 * confirmed */
	assert_matches_expect(c);
	ck_assert_uint_gt(c->last_confirm[0], 0x1000000ULL + 100 * 0x100);
	for (int w = 0; w < 2; w++)
		ck_assert_uint_eq(c->progress[w][0], c->last_confirm[0]);
	free_capture(c);
	free(c);
	free(errfile);
	free(job);
}
END_TEST

START_TEST(sink_failure_fails_the_job)
{
	char *job = write_job("concurrency = 2\n", "transactions = 2000\n",
	                      "batch.max_rows = 20\nfail_after = 5\n");
	char *err = NULL;
	capture *c = new_capture();
	int rc = run_job(&err, job);

	ck_assert_msg(rc == 1, "exit %d: %.3000s", rc, err);
	ck_assert_msg(strstr(err, "failed (test)"), "%.3000s", err);
	ck_assert_msg(strstr(err, "job pipetest failed"), "%.3000s", err);
	read_capture(c, 2, 1);
	ck_assert_msg(!c->early_confirm, "%s", c->early);
	ck_assert_uint_lt(c->last_confirm[0], 0x1000000ULL + 2000 * 0x100);
	free_capture(c);
	free(c);
	free(err);
	free(job);
}
END_TEST

START_TEST(auto_retry_restarts_the_job)
{
	char *job, *err = NULL;
	capture *c;
	int rc;

	/* without auto_retry a failure ends the job */
	job = write_job(
	    "", "transactions = 300\n",
	    "batch.max_rows = 20\nfail_after = 4\nfail_once = true\n");
	rc = run_job(&err, job);
	ck_assert_msg(rc == 1, "exit %d: %.3000s", rc, err);
	free(err);
	free(job);
	reset_state();
	{
		char *marker = path_in("capture.failed");
		unlink(marker);
		free(marker);
	}

	/* with it, the job restarts from its checkpoint and completes */
	job = write_job(
	    "auto_retry = true\nmax_retries = 2\nretry_interval = 200ms\n",
	    "transactions = 300\n",
	    "batch.max_rows = 20\nfail_after = 4\nfail_once = true\n");
	c = run_ok(job, 2, 1, &err);
	ck_assert_msg(strstr(err,
	                     "auto_retry: restarting the job from its last "
	                     "checkpoint in 200 ms (retry 1 of 2)"),
	              "%.3000s", err);
	ck_assert_msg(!strstr(err, "retry 2 of 2"), "%.3000s", err);
	ck_assert_msg(!c->early_confirm, "%s", c->early);
	drop_capture(c);
	free(err);
	free(job);
}
END_TEST

START_TEST(lost_connection_is_retried)
{
	char *job =
	    write_job("", "transactions = 100\n", "retry_first = true\n");
	char *err = NULL;
	capture *c = run_ok(job, 2, 1, &err);

	ck_assert_msg(strstr(err, "connection lost (test); reconnecting"),
	              "%.3000s", err);
	drop_capture(c);
	free(err);
	free(job);
}
END_TEST

START_TEST(dirty_rows)
{
	char *job, *err = NULL;
	int rc;

	/* dirty data off (the default): the first refused row fails the job,
	 * naming table, key, SQLSTATE and message */
	job = write_job("", "transactions = 300\nkeys = 20\n",
	                "reject_key = 5\n");
	rc = run_job(&err, job);
	ck_assert_msg(rc == 1, "exit %d: %.3000s", rc, err);
	ck_assert_msg(strstr(err, "of synth.t") &&
	                  strstr(err, "key (id)=(5)") &&
	                  strstr(err, "SQLSTATE 23514") &&
	                  strstr(err, "check constraint"),
	              "%.3000s", err);
	ck_assert_msg(strstr(err, "[dirty] enabled = true"), "%.3000s", err);
	free(err);
	free(job);
	reset_state();

	/* on, unlimited: logged and skipped */
	job = write_job(
	    "", "transactions = 300\nkeys = 20\n",
	    "reject_key = 5\n[dirty]\nenabled = true\nthreshold = -1\n");
	rc = run_job(&err, job);
	ck_assert_msg(rc == 0, "exit %d: %.3000s", rc, err);
	ck_assert_msg(strstr(err, "dirty row 1 of worker"), "%.3000s", err);
	free(err);
	free(job);
	reset_state();

	/* on, threshold 2 per worker: the third fails the job */
	job = write_job(
	    "concurrency = 1\n", "transactions = 300\nkeys = 20\n",
	    "reject_key = 5\n[dirty]\nenabled = true\nthreshold = 2\n");
	rc = run_job(&err, job);
	ck_assert_msg(rc == 1, "exit %d: %.3000s", rc, err);
	ck_assert_msg(strstr(err, "passed the dirty-data threshold (2 rows)"),
	              "%.3000s", err);
	free(err);
	free(job);
}
END_TEST

START_TEST(secrets_are_masked)
{
	char *job =
	    write_job("", "transactions = 10\npassword = hunter2\n", "");
	char *err = NULL;
	int rc = run_job(&err, job);

	ck_assert_msg(rc == 0, "exit %d: %.3000s", rc, err);
	ck_assert_msg(strstr(err, "password=********"), "%.3000s", err);
	ck_assert_msg(!strstr(err, "hunter2"), "secret leaked: %s", err);
	ck_assert_msg(strstr(err, "[source:synth]"), "no instance prefix: %s",
	              err);
	free(err);
	free(job);
}
END_TEST

Suite *
pipeline_suite(void)
{
	Suite *s = suite_create("pipeline");
	TCase *tc = tcase_create("end to end");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, ordered_by_key_across_workers);
	tcase_add_test(tc, table_routing);
	tcase_add_test(tc, keyby_disabled_is_one_worker);
	tcase_add_test(tc, flush_on_rows_and_size);
	tcase_add_test(tc, flush_on_interval);
	tcase_add_test(tc, several_streams);
	tcase_add_test(tc, kill_9_and_restart);
	tcase_add_test(tc, sigterm_stops_cleanly);
	tcase_add_test(tc, sink_failure_fails_the_job);
	tcase_add_test(tc, auto_retry_restarts_the_job);
	tcase_add_test(tc, lost_connection_is_retried);
	tcase_add_test(tc, dirty_rows);
	tcase_add_test(tc, secrets_are_masked);
	suite_add_tcase(s, tc);
	return s;
}
