/*
 * null - a sink for tests and benchmarks (built only for make check): it
 * applies nothing, counts what it is given, and logs the totals when it is
 * destroyed ("null sink: N changes in M transactions").
 */
#include <stdatomic.h>
#include <stdlib.h>

#include <syncd/syncd.h>

typedef struct nul {
	const syncd_host *host;
	atomic_llong changes, commits;
} nul;

static syncd_status
null_create(const syncd_host *host, void **state)
{
	nul *n = calloc(1, sizeof *n);
	if (!n) {
		host->set_error(host, NULL, "out of memory");
		return SYNCD_FATAL;
	}
	n->host = host;
	*state = n;
	return SYNCD_OK;
}

static void
null_destroy(void *state)
{
	nul *n = state;
	SYNCD_LOG_INFO(n->host, "null sink: %lld changes in %lld transactions",
	               (long long) atomic_load(&n->changes),
	               (long long) atomic_load(&n->commits));
	free(n);
}

static syncd_status
null_open(void *state, int worker, void **wstate)
{
	(void) worker;
	*wstate = state;
	return SYNCD_OK;
}

static void
null_close(void *wstate)
{
	(void) wstate;
}

static syncd_status
null_write(void *wstate, const syncd_batch *b)
{
	nul *n = wstate;
	long long commits = 0;
	for (size_t i = 0; i < b->nevents; i++)
		commits += b->events[i]->type == SYNCD_EV_COMMIT;
	atomic_fetch_add(&n->changes, (long long) b->nchanges);
	atomic_fetch_add(&n->commits, commits);
	return SYNCD_OK;
}

static const syncd_sink_ops null_ops = {
    .size = sizeof(syncd_sink_ops),
    .create = null_create,
    .destroy = null_destroy,
    .open = null_open,
    .close = null_close,
    .write = null_write,
};

SYNCD_PLUGIN(.kind = SYNCD_KIND_SINK, .name = "null", .version = "1.0",
             .description = "counts changes and applies nothing (tests only)",
             .ops.sink = &null_ops)
