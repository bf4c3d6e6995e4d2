/*
 * core/dirty.c - see dirty.h.
 */
#include "config.h"

#include "dirty.h"
#include "log.h"
#include "metrics.h"
#include "plugerr.h"
#include "router.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

struct dirty {
	pthread_mutex_t lock;
	int n;
	long *count; /* per worker */
};

void
dirty_init(job *j)
{
	dirty *d = xcalloc(1, sizeof *d);
	pthread_mutex_init(&d->lock, NULL);
	d->n = j->nworkers;
	d->count = xcalloc((size_t) d->n, sizeof *d->count);
	j->dirty = d;
}

void
dirty_reset(job *j)
{
	dirty *d = j->dirty;
	pthread_mutex_lock(&d->lock);
	memset(d->count, 0, (size_t) d->n * sizeof *d->count);
	pthread_mutex_unlock(&d->lock);
}

void
dirty_free(job *j)
{
	dirty *d = j->dirty;
	if (!d)
		return;
	pthread_mutex_destroy(&d->lock);
	free(d->count);
	free(d);
	j->dirty = NULL;
}

long
dirty_count(job *j, int worker)
{
	dirty *d = j->dirty;
	long n;
	pthread_mutex_lock(&d->lock);
	n = worker >= 0 && worker < d->n ? d->count[worker] : 0;
	pthread_mutex_unlock(&d->lock);
	return n;
}

syncd_status
dirty_flush(job *j)
{
	instance *a = j->archiver;

	if (!a || !a->plugin->ops.archiver.flush)
		return SYNCD_OK;
	if (a->plugin->ops.archiver.flush(a->state) != SYNCD_OK) {
		job_fail(j, "%s: could not make dirty data durable: %s",
		         a->prefix, plugerr_msg(a));
		return SYNCD_FATAL;
	}
	return SYNCD_OK;
}

/* "(a, b)=(1, x)" for the key columns, or every column, of a change. */
static char *
dirty_values_text(const syncd_event *ev, bool keys_only)
{
	const syncd_relation *rel = ev->rel;
	const syncd_value *vals =
	    ev->type == SYNCD_EV_DELETE ? ev->old_values : ev->new_values;
	strbuf names = {0}, values = {0};
	bool any = false;

	if (!rel || !vals)
		return xstrdup("(no key)");
	for (uint32_t i = 0; i < rel->ncolumns; i++) {
		if (keys_only &&
		    !(router_column(rel, i)->flags & SYNCD_COL_KEY))
			continue;
		if (any) {
			sb_puts(&names, ", ");
			sb_puts(&values, ", ");
		}
		any = true;
		sb_puts(&names, router_column(rel, i)->name);
		if (vals[i].kind == SYNCD_VALUE_NULL)
			sb_puts(&values, "NULL");
		else if (vals[i].kind == SYNCD_VALUE_UNCHANGED)
			sb_puts(&values, "(unchanged)");
		else if (vals[i].len > 64) {
			sb_append(&values, vals[i].data, 64);
			sb_puts(&values, "...");
		} else
			sb_append(&values, vals[i].data, vals[i].len);
	}
	if (!any) {
		sb_free(&names);
		sb_free(&values);
		return xstrdup("(no key)");
	}
	{
		char *n = sb_steal(&names), *v = sb_steal(&values);
		char *s = xasprintf("(%s)=(%s)", n, v);
		free(n);
		free(v);
		return s;
	}
}

static char *
dirty_key_text(const syncd_event *ev)
{
	return dirty_values_text(ev, true);
}

static char *
dirty_row_text(const syncd_event *ev)
{
	/* a DELETE carries its key (or an old row of no further interest) */
	return dirty_values_text(ev, ev->type == SYNCD_EV_DELETE);
}

static const char *
dirty_op_name(syncd_event_type t)
{
	switch (t) {
	case SYNCD_EV_INSERT: return "insert";
	case SYNCD_EV_UPDATE: return "update";
	case SYNCD_EV_DELETE: return "delete";
	case SYNCD_EV_TRUNCATE: return "truncate";
	case SYNCD_EV_UPDATE_ALL: return "update of every row";
	default: return "event";
	}
}

syncd_status
dirty_reject(job *j, const char *who, int worker, const syncd_event *ev,
             const char *sqlstate, const char *message)
{
	dirty *d = j->dirty;
	const syncd_relation *rel = ev ? ev->rel : NULL;
	char *key = ev ? dirty_key_text(ev) : xstrdup("(no row)");
	char *where = rel ? xasprintf("%s.%s", rel->schema, rel->table)
	                  : xstrdup("(unknown table)");
	bool enabled = optset_num(&j->dirty_opts, "enabled") != 0;
	int64_t threshold = optset_num(&j->dirty_opts, "threshold");
	bool archive =
	    strcmp(optset_str(&j->dirty_opts, "policy"), "archive") == 0;
	syncd_status st = SYNCD_OK;
	char *row;
	long count;

	if (!message)
		message = "(no message)";
	if (!enabled) {
		job_fail(j,
		         "%s %s of %s key %s at " SYNCD_LSN_FMT
		         " was refused%s%s: "
		         "%s; fix the data or the destination table, or set "
		         "[dirty] enabled = true to set such rows aside",
		         who, dirty_op_name(ev ? ev->type : 0), where, key,
		         SYNCD_LSN_ARGS(ev ? ev->lsn : 0),
		         sqlstate ? " with SQLSTATE " : "",
		         sqlstate ? sqlstate : "", message);
		st = SYNCD_FATAL;
		goto done;
	}
	if (worker < 0 || worker >= j->nworkers)
		worker = 0;
	pthread_mutex_lock(&d->lock);
	count = ++d->count[worker];
	if (archive && j->archiver) {
		syncd_dirty_record rec = {
		    .size = sizeof rec,
		    .job = job_name(j),
		    .worker = worker,
		    .ev = ev,
		    .sqlstate = sqlstate,
		    .message = message,
		};
		if (j->archiver->plugin->ops.archiver.write(j->archiver->state,
		                                            &rec) != SYNCD_OK) {
			pthread_mutex_unlock(&d->lock);
			job_fail(j,
			         "%s: could not archive a dirty row of %s: %s",
			         j->archiver->prefix, where,
			         plugerr_msg(j->archiver));
			st = SYNCD_FATAL;
			goto done;
		}
	}
	pthread_mutex_unlock(&d->lock);
	{
		const char *db = rel && rel->database ? rel->database
		                 : ev ? job_stream_name(j, ev->stream)
		                      : "";
		char *labels =
		    metrics_labels("database", db, "table", where, NULL);
		metrics_add("dirty_rows_total", labels, 1);
		free(labels);
	}
	/* policy = none: the log is the only record, so the row is in it
	 * (each value cut at 64 bytes) */
	row = archive ? xstrdup("") : NULL;
	if (!row) {
		char *text = ev ? dirty_row_text(ev) : xstrdup("(no row)");
		row = xasprintf("; row %.2000s", text);
		free(text);
	}
	log_warning(
	    "%s dirty row %ld of worker %d: %s of %s key %s at " SYNCD_LSN_FMT
	    "%s%s: %.200s%s",
	    who, count, worker, dirty_op_name(ev ? ev->type : 0), where, key,
	    SYNCD_LSN_ARGS(ev ? ev->lsn : 0), sqlstate ? " SQLSTATE " : "",
	    sqlstate ? sqlstate : "", message, row);
	free(row);
	if (threshold >= 0 && count > threshold) {
		job_fail(
		    j,
		    "worker %d passed the dirty-data threshold (%lld rows); "
		    "last: %s of %s key %s: %s; fix the data, or raise [dirty] "
		    "threshold",
		    worker, (long long) threshold,
		    dirty_op_name(ev ? ev->type : 0), where, key, message);
		st = SYNCD_FATAL;
	}
done:
	free(key);
	free(where);
	return st;
}
