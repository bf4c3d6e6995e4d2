/*
 * tests/integration/origin_state.c - drives one operation of a DWS sink
 * (dws_upsert or dws_copy) against a real destination, through the
 * plugin's entry function and the tests' mock host (tests/unit/
 * mock_host.c), for origin_state.sh. It prints the operation's answer on
 * stdout, the sink's log lines and error on stderr, and exits 0 when the
 * operation returned SYNCD_OK, 1 otherwise.
 *
 *   origin_state PLUGIN_DIR PLUGIN JOB CONNINFO SCHEMA OP [ARGS]
 *     check                  the sink's check (syncd --check)
 *     get STREAM             origin_get: the origin, or "(none)"
 *     set STREAM ORIGIN      origin_set
 *     forget STREAM          forget
 *     applied STREAM WORKER  open worker WORKER, its applied_lsn (decimal)
 *     copy STREAM TABLE AGAIN  copy_table of source table public.TABLE
 *                            (id integer key, v text) into public.TABLE,
 *                            in NCHUNKS 1, again = AGAIN (0 or 1): the
 *                            plan, skip, direct or merge
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_host.h"

static int
usage(void)
{
	fprintf(stderr, "usage: origin_state PLUGIN_DIR PLUGIN JOB CONNINFO "
	                "SCHEMA check|get|set|forget|applied|copy [ARGS]\n");
	return 2;
}

static int
op_copy(const syncd_sink_ops *k, void *state, uint32_t stream,
        const char *table, bool again)
{
	static const syncd_column cols[2] = {
	    {.size = sizeof(syncd_column),
	     .name = "id",
	     .type_oid = 23,
	     .type_name = "integer",
	     .typmod = -1,
	     .flags = SYNCD_COL_KEY | SYNCD_COL_NOT_NULL,
	     .key_position = 1},
	    {.size = sizeof(syncd_column),
	     .name = "v",
	     .type_oid = 25,
	     .type_name = "text",
	     .typmod = -1}};
	static const char *const chunks[1] = {"all"};
	syncd_relation rel = {.size = sizeof rel,
	                      .id = 1,
	                      .schema = "public",
	                      .table = table,
	                      .ncolumns = 2,
	                      .columns = cols,
	                      .replica_identity = 'd',
	                      .target_schema = "public",
	                      .target_table = table};
	syncd_copy_table ct = {.size = sizeof ct,
	                       .rel = &rel,
	                       .est_rows = -1,
	                       .est_bytes = -1,
	                       .nchunks = 1,
	                       .chunks = chunks,
	                       .source_state = "test",
	                       .snapshot_lsn = 0x5000000};
	syncd_copy_request req = {.size = sizeof req,
	                          .rel = &rel,
	                          .stream = stream,
	                          .table = &ct,
	                          .again = again};
	bool finished[1] = {false};
	syncd_copy_plan plan = {.size = sizeof plan, .finished = finished};
	void *c = NULL;
	syncd_status st = k->copy_open(state, &c);

	if (st == SYNCD_OK)
		st = k->copy_table(c, &req, &plan);
	if (st == SYNCD_OK)
		printf("%s\n", plan.how == SYNCD_COPY_SKIP     ? "skip"
		               : plan.how == SYNCD_COPY_DIRECT ? "direct"
		                                               : "merge");
	if (c)
		k->copy_close(c);
	return st;
}

int
main(int argc, char **argv)
{
	const syncd_plugin *d;
	const syncd_sink_ops *k;
	const char *err = NULL, *op;
	void *handle = NULL, *state = NULL;
	mock_host *m;
	syncd_status st = SYNCD_FATAL;
	uint32_t stream;

	if (argc < 7)
		return usage();
	op = argv[6];
	stream = argc > 7 ? (uint32_t) strtoul(argv[7], NULL, 10) : 0;
	d = mock_plugin_open(argv[1], argv[2], &handle, &err);
	if (!d || d->kind != SYNCD_KIND_SINK) {
		fprintf(stderr, "plugin %s: %s\n", argv[2],
		        d ? "no sink" : err);
		return 2;
	}
	k = d->ops.sink;
	if (k->size < SYNCD_SIZE_THROUGH(syncd_sink_ops, forget) ||
	    !k->origin_get || !k->origin_set || !k->forget) {
		fprintf(stderr,
		        "plugin %s lacks origin_get/origin_set/forget\n",
		        argv[2]);
		return 1;
	}
	m = mock_host_new(SYNCD_KIND_SINK, NULL);
	m->job.name = argv[3];
	m->job.workers = 2;
	m->job.layout = "2/pk";
	{
		const char *kv[] = {"conninfo", argv[4], "state.schema",
		                    argv[5], NULL};
		mock_options(m, d, kv);
	}
	if (k->create(&m->host, &state) != SYNCD_OK)
		goto done;
	if (strcmp(op, "check") == 0)
		st = k->check(state);
	else if (strcmp(op, "get") == 0 && argc == 8) {
		const char *origin = NULL;
		st = k->origin_get(state, stream, &origin);
		if (st == SYNCD_OK)
			printf("%s\n", origin ? origin : "(none)");
	} else if (strcmp(op, "set") == 0 && argc == 9)
		st = k->origin_set(state, stream, argv[8]);
	else if (strcmp(op, "forget") == 0 && argc == 8)
		st = k->forget(state, stream);
	else if (strcmp(op, "applied") == 0 && argc == 9) {
		void *w = NULL;
		syncd_lsn lsn = 0;
		st = k->open(state, atoi(argv[8]), &w);
		if (st == SYNCD_OK)
			st = k->applied_lsn(w, stream, &lsn);
		if (st == SYNCD_OK)
			printf("%llu\n", (unsigned long long) lsn);
		if (w)
			k->close(w);
	} else if (strcmp(op, "copy") == 0 && argc == 10)
		st = op_copy(k, state, stream, argv[8], atoi(argv[9]) != 0);
	else {
		fprintf(stderr, "unknown operation or arguments: %s\n", op);
		st = SYNCD_INVALID;
	}
done:
	for (size_t i = 0; i < m->nlines; i++)
		fprintf(stderr, "%s\n", m->lines[i]);
	if (st != SYNCD_OK)
		fprintf(stderr, "status %d: %s%s%s\n", (int) st,
		        m->sqlstate ? m->sqlstate : "", m->sqlstate ? ": " : "",
		        m->error ? m->error : "(no error set)");
	if (state)
		k->destroy(state);
	mock_host_free(m);
	mock_plugin_close(handle);
	return st == SYNCD_OK ? 0 : 1;
}
