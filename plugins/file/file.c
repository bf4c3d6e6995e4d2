/*
 * file - dirty-data archiver: every row the destination refused, as one
 * JSON line in a file of a local directory. Files are named
 * JOB-YYYYMMDDTHHMMSSZ-SEQ.jsonl and rotated by size and age; flush()
 * fsyncs the file (and the directory after a new file), and the core calls
 * it before it confirms the LSN of the rows written, so a confirmed change
 * whose row was refused is always on disk. The records are those of
 * plugins/common/dirty_json.h.
 */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <syncd/syncd.h>

#include "../common/dirty_json.h"

typedef struct file_opts {
	const char *directory;
	int64_t rotate_size;     /* bytes */
	int64_t rotate_interval; /* ms */
} file_opts;

static const syncd_option file_options[] = {
    {.name = "directory",
     .type = SYNCD_OPT_STRING,
     .help = "where the files go (created if absent); default: the job's "
             "state directory's dirty/",
     SYNCD_OPT_FIELD(file_opts, directory)},
    {.name = "rotate.size",
     .type = SYNCD_OPT_SIZE,
     .default_value = "64MB",
     .help = "start a new file past this size",
     .min = 1024,
     .max = 1LL << 40,
     .unit = "MB",
     SYNCD_OPT_FIELD(file_opts, rotate_size)},
    {.name = "rotate.interval",
     .type = SYNCD_OPT_DURATION,
     .default_value = "1h",
     .help = "start a new file when the current one is this old",
     .min = 1000,
     .max = 31LL * 86400000,
     .unit = "s",
     SYNCD_OPT_FIELD(file_opts, rotate_interval)},
    {.name = NULL}};

typedef struct file_arch {
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
file_create(const syncd_host *host, void **state)
{
	const file_opts *o = host->options;
	file_arch *a = calloc(1, sizeof *a);
	const char *dir;

	*state = NULL;
	if (!a)
		return SYNCD_FATAL;
	a->host = host;
	a->fd = -1;
	a->max_size = o->rotate_size;
	a->max_age_ms = o->rotate_interval;
	dir = o->directory;
	if (dir && *dir)
		a->dir = strdup(dir);
	else if (asprintf(&a->dir, "%s/dirty", host->job->state_dir) < 0)
		a->dir = NULL;
	if (!a->dir) {
		/* the core destroys only what it created */
		host->set_error(host, NULL, "out of memory");
		free(a);
		return SYNCD_FATAL;
	}
	*state = a;
	return SYNCD_OK;
}

static syncd_status
file_flush(void *state)
{
	file_arch *a = state;

	if (a->fd < 0 || !a->dirty)
		return SYNCD_OK;
	if (fsync(a->fd) != 0) {
		a->host->set_error(a->host, NULL,
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
		a->host->set_error(
		    a->host, NULL,
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
		SYNCD_LOG_ERROR(
		    a->host,
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
	if (asprintf(&a->path, "%s/%s-%s-%u.jsonl", a->dir, a->host->job->name,
	             stamp, ++a->seq) < 0)
		return SYNCD_FATAL;
	a->fd = open(a->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (a->fd < 0) {
		a->host->set_error(a->host, NULL,
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

static syncd_status
file_write(void *state, const syncd_dirty_record *rec)
{
	file_arch *a = state;
	size_t len;
	char *line = dirty_json_line(rec, &len);
	ssize_t w;

	if (!line) {
		a->host->set_error(a->host, NULL, "out of memory");
		return SYNCD_FATAL;
	}
	if (file_current(a) != SYNCD_OK) {
		free(line);
		return SYNCD_FATAL;
	}
	/* the record and its newline in one write */
	w = write(a->fd, line, len);
	free(line);
	if (w != (ssize_t) len) {
		a->host->set_error(
		    a->host, NULL, "could not write dirty-data file %s: %s",
		    a->path, w < 0 ? strerror(errno) : "short write");
		return SYNCD_FATAL;
	}
	a->size += (int64_t) len;
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
             .options = file_options, .options_size = sizeof(file_opts),
             .ops.archiver = &file_ops);
