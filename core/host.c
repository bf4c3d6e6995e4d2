/*
 * core/host.c - the services the core hands to plugins (syncd/host.h):
 * logging with the instance prefix, errors, option values, metrics, the
 * pipeline entry points for sources, and the dirty-data path for sinks.
 */
#include "config.h"

#include "fullcopy.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void host_vlog(syncd_instance *inst, syncd_log_level level,
                      const char *fmt, va_list ap);

static void
host_log(syncd_instance *inst, syncd_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	host_vlog(inst, level, fmt, ap);
	va_end(ap);
}

static void
host_vlog(syncd_instance *inst, syncd_log_level level, const char *fmt,
          va_list ap)
{
	log_vmsg(inst ? inst->prefix : NULL, level, fmt, ap);
}

static bool
host_log_enabled(syncd_instance *inst, syncd_log_level level)
{
	return log_enabled(level);
}

/* The last error a plugin set, per thread: the thread that made a failing
 * call reads its reason right after, and workers of one sink instance
 * never see (or free) each other's messages. */
static __thread struct {
	const syncd_instance *inst;
	char *msg;
	char sqlstate[6];
} host_err;

/* Threads a plugin starts (a source's readers) never call
 * host_error_clear(): a thread-exit destructor frees their message. */
static pthread_key_t host_err_key;
static pthread_once_t host_err_once = PTHREAD_ONCE_INIT;

static void
host_err_exit(void *unused)
{
	(void) unused;
	free(host_err.msg);
	host_err.msg = NULL;
}

static void
host_err_init(void)
{
	pthread_key_create(&host_err_key, host_err_exit);
}

static void
host_set_error(syncd_instance *inst, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;

	pthread_once(&host_err_once, host_err_init);
	pthread_setspecific(host_err_key, &host_err);
	free(host_err.msg);
	va_start(ap, fmt);
	host_err.msg = xvasprintf(fmt, ap);
	va_end(ap);
	host_err.inst = inst;
	memset(host_err.sqlstate, 0, sizeof host_err.sqlstate);
	if (sqlstate)
		strncpy(host_err.sqlstate, sqlstate,
		        sizeof host_err.sqlstate - 1);
}

const char *
host_error(const syncd_instance *inst)
{
	return host_err.inst == inst && host_err.msg
	           ? host_err.msg
	           : "failed without giving a reason (a bug in the plugin)";
}

const char *
host_error_sqlstate(const syncd_instance *inst)
{
	return host_err.inst == inst && host_err.sqlstate[0] ? host_err.sqlstate
	                                                     : NULL;
}

void
host_error_clear(void)
{
	free(host_err.msg);
	memset(&host_err, 0, sizeof host_err);
}

/* A plugin asking for an option it did not declare is a bug in the plugin:
 * say so loudly instead of guessing. */
static const opt_value *
host_opt(syncd_instance *inst, const char *name, syncd_option_type type)
{
	const opt_value *v = optset_get(&inst->opts, name);

	if (!v) {
		log_error(
		    "%s internal error: the plugin asked for option \"%s\", "
		    "which it does not declare",
		    inst->prefix, name);
		abort();
	}
	/* any option may be read as its text */
	if (v->decl->type != type && type != SYNCD_OPT_STRING) {
		log_error(
		    "%s internal error: option \"%s\" is a %s, read as a %s",
		    inst->prefix, name, options_type_name(v->decl->type),
		    options_type_name(type));
		abort();
	}
	return v;
}

static const char *
host_opt_string(syncd_instance *inst, const char *name)
{
	return host_opt(inst, name, SYNCD_OPT_STRING)->text;
}

static int64_t
host_opt_int(syncd_instance *inst, const char *name)
{
	return host_opt(inst, name, SYNCD_OPT_INT)->num;
}

static bool
host_opt_bool(syncd_instance *inst, const char *name)
{
	return host_opt(inst, name, SYNCD_OPT_BOOL)->num != 0;
}

static int64_t
host_opt_duration_ms(syncd_instance *inst, const char *name)
{
	return host_opt(inst, name, SYNCD_OPT_DURATION)->num;
}

static int64_t
host_opt_size(syncd_instance *inst, const char *name)
{
	return host_opt(inst, name, SYNCD_OPT_SIZE)->num;
}

static size_t
host_opt_list_len(syncd_instance *inst, const char *name)
{
	return host_opt(inst, name, SYNCD_OPT_LIST)->nitems;
}

static const char *
host_opt_list_item(syncd_instance *inst, const char *name, size_t i)
{
	const opt_value *v = host_opt(inst, name, SYNCD_OPT_LIST);
	return i < v->nitems ? v->items[i] : NULL;
}

static bool
host_opt_prefixed(syncd_instance *inst, const char *prefix, size_t i,
                  const char **key, const char **value)
{
	size_t n = strlen(prefix), seen = 0;

	for (size_t k = 0; k < inst->opts.n; k++) {
		const opt_value *v = &inst->opts.v[k];
		if (!(v->decl->flags & SYNCD_OPT_PREFIX) ||
		    strncmp(v->key, prefix, n) != 0)
			continue;
		if (seen++ == i) {
			*key = v->key;
			*value = v->text;
			return true;
		}
	}
	return false;
}

static const char *
host_job_name(syncd_instance *inst)
{
	return optset_str(&inst->job->job_opts, "name");
}

static const char *
host_job_option(syncd_instance *inst, const char *key)
{
	const opt_value *v = optset_get(&inst->job->job_opts, key);
	return v ? v->text : NULL;
}

static const char *
host_state_dir(syncd_instance *inst)
{
	return inst->job->state_dir;
}

static bool
host_stopping(syncd_instance *inst)
{
	return atomic_load(&inst->job->stopping);
}

static void
host_metric_add(syncd_instance *inst, const char *name, double delta)
{
	metrics_add(inst->prefix, name, delta);
}

static void
host_metric_set(syncd_instance *inst, const char *name, double value)
{
	metrics_set(inst->prefix, name, value);
}

static syncd_status
host_emit(syncd_instance *inst, const syncd_event *ev)
{
	if (!inst->job->pipe)
		return SYNCD_FATAL;
	return pipeline_emit(inst->job->pipe, ev);
}

static syncd_lsn
host_flushed_lsn(syncd_instance *inst, uint32_t stream)
{
	if (!inst->job->pipe)
		return 0;
	return pipeline_flushed(inst->job->pipe, stream);
}

static syncd_status
host_drain(syncd_instance *inst)
{
	if (!inst->job->pipe)
		return SYNCD_FATAL;
	return pipeline_drain(inst->job->pipe);
}

static const char *
host_op_name(syncd_event_type t)
{
	switch (t) {
	case SYNCD_EV_INSERT: return "insert";
	case SYNCD_EV_UPDATE: return "update";
	case SYNCD_EV_DELETE: return "delete";
	case SYNCD_EV_TRUNCATE: return "truncate";
	default: return "event";
	}
}

/* The dirty-data path: DESIGN §5 "Dirty data". */
static syncd_status
host_reject(syncd_instance *inst, int worker, const syncd_event *ev,
            const char *sqlstate, const char *message)
{
	job *j = inst->job;
	const syncd_relation *rel = ev ? ev->rel : NULL;
	char *key = ev ? pipeline_key_text(ev) : xstrdup("(no row)");
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
		         inst->prefix, host_op_name(ev ? ev->type : 0), where,
		         key, SYNCD_LSN_ARGS(ev ? ev->lsn : 0),
		         sqlstate ? " with SQLSTATE " : "",
		         sqlstate ? sqlstate : "", message);
		st = SYNCD_FATAL;
		goto done;
	}
	if (worker < 0 || worker >= j->nworkers)
		worker = 0;
	pthread_mutex_lock(&j->dirty_lock);
	count = ++j->dirty_count[worker];
	if (archive && j->archiver) {
		syncd_dirty_record rec = {
		    .job = optset_str(&j->job_opts, "name"),
		    .worker = worker,
		    .ev = ev,
		    .sqlstate = sqlstate,
		    .message = message,
		};
		if (j->archiver->plugin->ops.archiver.write(j->archiver->state,
		                                            &rec) != SYNCD_OK) {
			pthread_mutex_unlock(&j->dirty_lock);
			job_fail(j,
			         "%s: could not archive a dirty row of %s: %s",
			         j->archiver->prefix, where,
			         host_error(j->archiver));
			st = SYNCD_FATAL;
			goto done;
		}
	}
	pthread_mutex_unlock(&j->dirty_lock);
	metrics_add(inst->prefix, "dirty_rows_total", 1);
	/* policy = none: the log is the only record, so the row is in it
	 * (each value cut at 64 bytes) */
	row = archive ? xstrdup("") : NULL;
	if (!row) {
		char *text = ev ? pipeline_row_text(ev) : xstrdup("(no row)");
		row = xasprintf("; row %.2000s", text);
		free(text);
	}
	log_warning(
	    "%s dirty row %ld of worker %d: %s of %s key %s at " SYNCD_LSN_FMT
	    "%s%s: %.200s%s",
	    inst->prefix, count, worker, host_op_name(ev ? ev->type : 0), where,
	    key, SYNCD_LSN_ARGS(ev ? ev->lsn : 0), sqlstate ? " SQLSTATE " : "",
	    sqlstate ? sqlstate : "", message, row);
	free(row);
	if (threshold >= 0 && count > threshold) {
		job_fail(
		    j,
		    "worker %d passed the dirty-data threshold (%lld rows); "
		    "last: %s of %s key %s: %s; fix the data, or raise [dirty] "
		    "threshold",
		    worker, (long long) threshold,
		    host_op_name(ev ? ev->type : 0), where, key, message);
		st = SYNCD_FATAL;
	}
done:
	free(key);
	free(where);
	return st;
}

static syncd_status
host_stored_lsn(syncd_instance *inst, uint32_t stream, syncd_lsn *lsn,
                bool *known)
{
	if (!inst->job->pipe)
		return SYNCD_FATAL;
	return pipeline_stored(inst->job->pipe, stream, lsn, known);
}

static syncd_status
host_copy(syncd_instance *inst, uint32_t stream, const char *snapshot,
          bool again, const struct syncd_copy_table *tables, size_t ntables)
{
	return fullcopy_run(inst->job, stream, snapshot, again, tables,
	                    ntables);
}

static void
host_target_of(syncd_instance *inst, const syncd_relation *rel, char **schema,
               char **table)
{
	job_target(inst->job, rel, schema, table);
}

static size_t
host_logical_tables(syncd_instance *inst)
{
	return inst->job->nltables;
}

static const char *
host_logical_table(syncd_instance *inst, const char *database,
                   const char *table)
{
	const logical_table *lt = job_logical_table(inst->job, database, table);
	return lt ? lt->name : NULL;
}

static void *
host_alloc(syncd_instance *inst, size_t size)
{
	return xmalloc(size);
}

static void
host_free_mem(syncd_instance *inst, void *ptr)
{
	free(ptr);
}

const syncd_host job_host = {
    .size = sizeof(syncd_host),
    .abi_major = SYNCD_ABI_MAJOR,
    .abi_minor = SYNCD_ABI_MINOR,
    .log = host_log,
    .vlog = host_vlog,
    .log_enabled = host_log_enabled,
    .set_error = host_set_error,
    .opt_string = host_opt_string,
    .opt_int = host_opt_int,
    .opt_bool = host_opt_bool,
    .opt_duration_ms = host_opt_duration_ms,
    .opt_size = host_opt_size,
    .opt_list_len = host_opt_list_len,
    .opt_list_item = host_opt_list_item,
    .opt_prefixed = host_opt_prefixed,
    .job_name = host_job_name,
    .job_option = host_job_option,
    .state_dir = host_state_dir,
    .stopping = host_stopping,
    .metric_add = host_metric_add,
    .metric_set = host_metric_set,
    .emit = host_emit,
    .flushed_lsn = host_flushed_lsn,
    .drain = host_drain,
    .reject = host_reject,
    .alloc = host_alloc,
    .free_mem = host_free_mem,
    .stored_lsn = host_stored_lsn,
    .copy = host_copy,
    .target_of = host_target_of,
    .logical_tables = host_logical_tables,
    .logical_table = host_logical_table,
};
