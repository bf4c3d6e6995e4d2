/*
 * file - dirty-data archiver: every row the destination refused, as one
 * JSON line in a file of a local directory. Files are named
 * JOB-YYYYMMDDTHHMMSSZ-SEQ.jsonl and rotated by size and age; flush()
 * fsyncs the file (and the directory after a new file), and the core calls
 * it before it confirms the LSN of the rows written, so a confirmed change
 * whose row was refused is always on disk.
 *
 * A record: {"job", "worker", "database", "schema", "table",
 * "target_schema", "target_table", "op", "lsn", "commit_time", "sqlstate",
 * "message", "key": {column: value}, "row": {column: value}} where values
 * are the text the source sent, null for NULL; a value the source did not
 * send (unchanged TOAST) is left out of "row".
 */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <syncd/syncd.h>

static const syncd_option file_options[] = {
    {.name = "directory",
     .type = SYNCD_OPT_STRING,
     .help = "where the files go (created if absent); default: the job's "
             "state directory's dirty/"},
    {.name = "rotate.size",
     .type = SYNCD_OPT_SIZE,
     .default_value = "64MB",
     .help = "start a new file past this size",
     .min = 1024,
     .max = 1LL << 40,
     .unit = "MB"},
    {.name = "rotate.interval",
     .type = SYNCD_OPT_DURATION,
     .default_value = "1h",
     .help = "start a new file when the current one is this old",
     .min = 1000,
     .max = 31LL * 86400000,
     .unit = "s"},
    {.name = NULL}};

typedef struct file_arch {
	syncd_instance *inst;
	const syncd_host *host;
	char *dir;
	int64_t max_size, max_age_ms;
	int fd;
	char *path;
	int64_t size, opened_ms;
	unsigned seq;
	bool dirty, new_file;
} file_arch;

static int64_t
file_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static syncd_status
file_create(syncd_instance *inst, const syncd_host *host, void **state)
{
	file_arch *a = calloc(1, sizeof *a);
	const char *dir;

	if (!a)
		return SYNCD_FATAL;
	*state = a;
	a->inst = inst;
	a->host = host;
	a->fd = -1;
	a->max_size = host->opt_size(inst, "rotate.size");
	a->max_age_ms = host->opt_duration_ms(inst, "rotate.interval");
	dir = host->opt_string(inst, "directory");
	if (dir && *dir)
		a->dir = strdup(dir);
	else if (asprintf(&a->dir, "%s/dirty", host->state_dir(inst)) < 0)
		a->dir = NULL;
	return a->dir ? SYNCD_OK : SYNCD_FATAL;
}

static syncd_status
file_flush(void *state)
{
	file_arch *a = state;

	if (a->fd < 0 || !a->dirty)
		return SYNCD_OK;
	if (fsync(a->fd) != 0) {
		a->host->set_error(a->inst, NULL,
		                   "could not fsync dirty-data file %s: %s",
		                   a->path, strerror(errno));
		return SYNCD_FATAL;
	}
	if (a->new_file) {
		int d = open(a->dir, O_RDONLY | O_DIRECTORY);
		if (d >= 0) {
			fsync(d);
			close(d);
		}
		a->new_file = false;
	}
	a->dirty = false;
	return SYNCD_OK;
}

static void
file_close(file_arch *a)
{
	if (a->fd >= 0) {
		file_flush(a);
		close(a->fd);
	}
	a->fd = -1;
	free(a->path);
	a->path = NULL;
}

static void
file_destroy(void *state)
{
	file_arch *a = state;
	if (!a)
		return;
	file_close(a);
	free(a->dir);
	free(a);
}

static syncd_status
file_mkdir(file_arch *a)
{
	if (mkdir(a->dir, 0750) != 0 && errno != EEXIST) {
		a->host->set_error(a->inst, NULL,
		                   "could not create dirty-data directory %s: %s; "
		                   "create it or set [archiver] directory",
		                   a->dir, strerror(errno));
		return SYNCD_FATAL;
	}
	return SYNCD_OK;
}

static syncd_status
file_check(void *state)
{
	file_arch *a = state;
	if (file_mkdir(a) != SYNCD_OK || access(a->dir, W_OK) != 0) {
		a->host->log(a->inst, SYNCD_LOG_ERROR,
		             "dirty-data directory %s is not writable; fix its "
		             "rights or set [archiver] directory",
		             a->dir);
		return SYNCD_FATAL;
	}
	return SYNCD_OK;
}

/* The file to write to: a new one at the first record, past rotate.size
 * or rotate.interval. */
static syncd_status
file_current(file_arch *a)
{
	char stamp[32];
	time_t now;
	struct tm tm;

	if (a->fd >= 0 && a->size < a->max_size &&
	    file_now_ms() - a->opened_ms < a->max_age_ms)
		return SYNCD_OK;
	if (a->fd >= 0) {
		if (file_flush(a) != SYNCD_OK)
			return SYNCD_FATAL;
		file_close(a);
	}
	if (file_mkdir(a) != SYNCD_OK)
		return SYNCD_FATAL;
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
	if (asprintf(&a->path, "%s/%s-%s-%u.jsonl", a->dir,
	             a->host->job_name(a->inst), stamp, ++a->seq) < 0)
		return SYNCD_FATAL;
	a->fd = open(a->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (a->fd < 0) {
		a->host->set_error(a->inst, NULL,
		                   "could not open dirty-data file %s: %s",
		                   a->path, strerror(errno));
		free(a->path);
		a->path = NULL;
		return SYNCD_FATAL;
	}
	a->size = 0;
	a->opened_ms = file_now_ms();
	a->new_file = true;
	return SYNCD_OK;
}

static const char *
file_op(syncd_event_type t)
{
	switch (t) {
	case SYNCD_EV_INSERT: return "insert";
	case SYNCD_EV_UPDATE: return "update";
	case SYNCD_EV_DELETE: return "delete";
	case SYNCD_EV_TRUNCATE: return "truncate";
	default: return "other";
	}
}

static json_object *
file_str(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static syncd_status
file_write(void *state, const syncd_dirty_record *rec)
{
	file_arch *a = state;
	const syncd_event *ev = rec->ev;
	const syncd_relation *rel = ev ? ev->rel : NULL;
	const syncd_value *vals =
	    !ev ? NULL
	    : ev->type == SYNCD_EV_DELETE ? ev->old_values
	                                  : ev->new_values;
	json_object *o = json_object_new_object(), *key, *row;
	char lsn[32], when[40];
	const char *line;
	size_t len;
	ssize_t w;

	json_object_object_add(o, "job", file_str(rec->job));
	json_object_object_add(o, "worker", json_object_new_int(rec->worker));
	json_object_object_add(o, "database",
	                       file_str(rel ? rel->database : NULL));
	json_object_object_add(o, "schema", file_str(rel ? rel->schema : NULL));
	json_object_object_add(o, "table", file_str(rel ? rel->table : NULL));
	json_object_object_add(o, "target_schema",
	                       file_str(rel ? rel->target_schema : NULL));
	json_object_object_add(o, "target_table",
	                       file_str(rel ? rel->target_table : NULL));
	json_object_object_add(o, "op",
	                       file_str(file_op(ev ? ev->type : 0)));
	snprintf(lsn, sizeof lsn, SYNCD_LSN_FMT,
	         SYNCD_LSN_ARGS(ev ? ev->lsn : 0));
	json_object_object_add(o, "lsn", file_str(lsn));
	{
		int64_t us = ev ? ev->commit_time : 0;
		time_t t = (time_t) (us / 1000000);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(when, 24, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(when + strlen(when), sizeof when - strlen(when),
		         ".%06dZ", (int) (us % 1000000));
	}
	json_object_object_add(o, "commit_time", file_str(when));
	json_object_object_add(o, "sqlstate", file_str(rec->sqlstate));
	json_object_object_add(o, "message", file_str(rec->message));
	key = json_object_new_object();
	row = json_object_new_object();
	for (uint32_t i = 0; rel && vals && i < rel->ncolumns; i++) {
		const syncd_value *v = &vals[i];
		json_object *jv;
		if (v->kind == SYNCD_VALUE_UNCHANGED)
			continue;
		jv = v->kind == SYNCD_VALUE_NULL
		         ? NULL
		         : json_object_new_string_len(v->data, (int) v->len);
		if (rel->columns[i].flags & SYNCD_COL_KEY)
			json_object_object_add(key, rel->columns[i].name,
			                       json_object_get(jv));
		json_object_object_add(row, rel->columns[i].name, jv);
	}
	json_object_object_add(o, "key", key);
	json_object_object_add(o, "row", row);

	if (file_current(a) != SYNCD_OK) {
		json_object_put(o);
		return SYNCD_FATAL;
	}
	line = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                             JSON_C_TO_STRING_NOSLASHESCAPE);
	len = strlen(line);
	{
		/* the record and its newline in one write */
		char *buf = malloc(len + 1);
		memcpy(buf, line, len);
		buf[len] = '\n';
		w = write(a->fd, buf, len + 1);
		free(buf);
	}
	json_object_put(o);
	if (w != (ssize_t) (len + 1)) {
		a->host->set_error(a->inst, NULL,
		                   "could not write dirty-data file %s: %s",
		                   a->path, w < 0 ? strerror(errno) : "short write");
		return SYNCD_FATAL;
	}
	a->size += (int64_t) len + 1;
	a->dirty = true;
	return SYNCD_OK;
}

static const syncd_archiver_ops file_ops = {
    .size = sizeof(syncd_archiver_ops),
    .create = file_create,
    .destroy = file_destroy,
    .check = file_check,
    .write = file_write,
    .flush = file_flush,
};

SYNCD_PLUGIN(.kind = SYNCD_KIND_ARCHIVER, .name = "file", .version = "1.0",
             .description = "dirty data as JSON lines in a local directory, "
                            "rotated by size and age",
             .options = file_options, .ops.archiver = &file_ops);
