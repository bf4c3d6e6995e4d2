/*
 * core/retire.c - see retire.h.
 *
 * Everything is looked at first (nothing in use, everything reachable);
 * only then, with apply, removed: the source's traces first (they hold WAL
 * on a production server), then the destination's state, then the local
 * directory. A failure half-way leaves what remains for another --drop,
 * which finds only that.
 */
#define _GNU_SOURCE /* nftw */
#include "config.h"

#include "log.h"
#include "monitor.h"
#include "plugerr.h"
#include "retire.h"
#include "util.h"

#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct retire_ctx {
	FILE *out; /* NULL: a silent look first */
} retire_ctx;

static void
retire_say(void *ctx, const char *line)
{
	retire_ctx *r = ctx;
	if (r->out)
		fprintf(r->out, "  %s\n", line);
}

static int
retire_rm(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void) st;
	(void) flag;
	(void) f;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* One pass over everything; false when something is in use or failed. */
static bool
retire_pass(job *j, bool apply, retire_ctx *rc)
{
	const syncd_source_ops *src = &j->source->plugin->ops.source;
	const syncd_sink_ops *sink = &j->sink->plugin->ops.sink;
	struct stat st;

	for (uint32_t i = 0; i < j->nstreams; i++) {
		syncd_status s;
		if (!src->retire) {
			retire_say(rc, "source: the plugin cannot list what a "
			               "job leaves (no retire operation); look "
			               "at the source by hand");
			if (apply && src->drop &&
			    src->drop(j->source->state, i) != SYNCD_OK) {
				log_error("%s stream \"%s\": %s",
				          j->source->prefix,
				          job_stream_name(j, i),
				          plugerr_msg(j->source));
				return false;
			}
			continue;
		}
		s = src->retire(j->source->state, i, apply, retire_say, rc);
		if (s != SYNCD_OK) {
			log_error("%s stream \"%s\": %s%s", j->source->prefix,
			          job_stream_name(j, i), plugerr_msg(j->source),
			          s == SYNCD_RETRY && !apply
			              ? "; nothing was changed"
			              : "");
			return false;
		}
	}
	if (!sink->retire)
		retire_say(rc, "destination: the sink keeps no state syncd "
		               "knows how to remove (no retire operation)");
	else if (sink->retire(j->sink->state, apply, retire_say, rc) !=
	         SYNCD_OK) {
		log_error("%s %s", j->sink->prefix, plugerr_msg(j->sink));
		return false;
	}
	if (stat(j->state_dir, &st) != 0)
		retire_say(rc, "local: no state directory");
	else if (!apply) {
		char line[4200];
		snprintf(line, sizeof line,
		         "local: state directory %s: remove it", j->state_dir);
		retire_say(rc, line);
	} else {
		char line[4200];
		if (nftw(j->state_dir, retire_rm, 16, FTW_DEPTH | FTW_PHYS) !=
		    0) {
			log_error("could not remove %s: %s", j->state_dir,
			          strerror(errno));
			return false;
		}
		snprintf(line, sizeof line, "local: removed %s",
		         j->state_dir);
		retire_say(rc, line);
	}
	return true;
}

int
retire_job(job *j, bool apply, FILE *out)
{
	retire_ctx quiet = {NULL}, loud = {out};
	char *url = NULL;

	if (monitor_running(j, &url)) {
		log_error("job %s is running (its endpoint %s answers): stop "
		          "it before syncd --drop",
		          job_name(j), url);
		free(url);
		return 1;
	}
	free(url);
	if (!job_list_streams(j))
		return 1;
	if (!apply) {
		fprintf(out, "job %s leaves behind:\n", job_name(j));
		if (!retire_pass(j, false, &loud))
			return 1;
		fprintf(out, "nothing was changed; run again with --yes to "
		             "remove it\n");
		return 0;
	}
	/* nothing in use, everything reachable: then remove */
	if (!retire_pass(j, false, &quiet))
		return 1;
	fprintf(out, "retiring job %s:\n", job_name(j));
	if (!retire_pass(j, true, &loud))
		return 1;
	fprintf(out, "job %s is retired\n", job_name(j));
	return 0;
}
