/*
 * core/resync.c - see resync.h.
 */
#include "config.h"

#include "log.h"
#include "resync.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* ---- the requests: STATE_DIR/resync ---------------------------------------
 *
 * One line per table, "database<TAB>schema<TAB>table" (database empty when
 * the source names none), written whole to a new file that replaces the
 * old one (fsync'd), under an flock of STATE_DIR/resync.lock.
 */


void
live_lines_free(live_lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

bool
live_lines_has(const live_lines *l, const char *line)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], line) == 0)
			return true;
	return false;
}

void
live_lines_add(live_lines *l, const char *line)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
	l->v[l->n++] = xstrdup(line);
}

char *
live_line(const syncd_relation *r)
{
	return xasprintf("%s\t%s\t%s", r->database ? r->database : "",
	                 r->schema ? r->schema : "", r->table ? r->table : "");
}

/* "database.schema.table" for people. */
char *
live_label(const char *line)
{
	char *s = xstrdup(line);
	for (char *c = s; *c; c++)
		if (*c == '\t')
			*c = '.';
	return *s == '.' ? memmove(s, s + 1, strlen(s)) : s;
}

char *
live_path(job *j, const char *name)
{
	return xasprintf("%s/%s", j->state_dir, name);
}

/* Takes the requests' lock (an fd to close), or -1. */
static int
live_file_lock(job *j)
{
	char *path = live_path(j, "resync.lock");
	int fd;

	if (mkdir_p(j->state_dir) != 0) {
		log_error("could not create the state directory %s: %s",
		          j->state_dir, strerror(errno));
		free(path);
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) != 0) {
		log_error("could not lock %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	free(path);
	return fd;
}

void
live_read(job *j, live_lines *out)
{
	char *path = live_path(j, "resync");
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	out->v = NULL;
	out->n = 0;
	free(path);
	if (!f)
		return;
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		if (len > 0 && strchr(line, '\t') && !live_lines_has(out, line))
			live_lines_add(out, line);
	}
	free(line);
	fclose(f);
}

static bool
live_write(job *j, const live_lines *l)
{
	char *path = live_path(j, "resync");
	char *tmp = live_path(j, "resync.new");
	FILE *f;
	bool ok;

	if (l->n == 0) {
		ok = unlink(path) == 0 || errno == ENOENT;
		goto out;
	}
	f = fopen(tmp, "w");
	ok = f != NULL;
	for (size_t i = 0; ok && i < l->n; i++)
		ok = fprintf(f, "%s\n", l->v[i]) > 0;
	if (f) {
		ok = fflush(f) == 0 && ok && fsync(fileno(f)) == 0;
		ok = fclose(f) == 0 && ok;
	}
	ok = ok && rename(tmp, path) == 0;
out:
	if (!ok)
		log_error("could not write %s: %s", path, strerror(errno));
	free(path);
	free(tmp);
	return ok;
}

/* Adds (or, with remove, removes) lines to the requests. */
bool
live_update(job *j, const live_lines *lines, bool remove)
{
	live_lines l;
	bool ok, changed = false;
	int fd = live_file_lock(j);

	if (fd < 0)
		return false;
	live_read(j, &l);
	for (size_t i = 0; i < lines->n; i++) {
		if (!remove && !live_lines_has(&l, lines->v[i])) {
			live_lines_add(&l, lines->v[i]);
			changed = true;
		}
		for (size_t k = 0; remove && k < l.n; k++)
			if (strcmp(l.v[k], lines->v[i]) == 0) {
				free(l.v[k]);
				l.v[k] = l.v[--l.n];
				changed = true;
				break;
			}
	}
	ok = !changed || live_write(j, &l);
	live_lines_free(&l);
	close(fd);
	return ok;
}

bool
live_update_one(job *j, const char *line, bool remove)
{
	char *v[1] = {(char *) line};
	live_lines l = {v, 1};
	return live_update(j, &l, remove);
}

bool
live_requested(job *j, const syncd_relation *rel)
{
	live_lines l;
	char *line = live_line(rel);
	bool has;

	live_read(j, &l);
	has = live_lines_has(&l, line);
	free(line);
	live_lines_free(&l);
	return has;
}

void
live_requests_done(job *j, const syncd_relation *const *rels, size_t n)
{
	live_lines l = {0};

	for (size_t i = 0; i < n; i++) {
		char *line = live_line(rels[i]);
		live_lines_add(&l, line);
		free(line);
	}
	if (l.n)
		live_update(j, &l, true);
	live_lines_free(&l);
}

int
live_lock(job *j)
{
	char *path = live_path(j, "job.lock");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		fd = -1;
	}
	free(path);
	return fd;
}

void
live_preview(job *j, FILE *out)
{
	live_lines l;

	live_read(j, &l);
	for (size_t i = 0; i < l.n; i++) {
		char *label = live_label(l.v[i]);
		fprintf(out, "copied again while streaming (syncd --resync, or "
		             "a table that joined): %s\n",
		        label);
		free(label);
	}
	live_lines_free(&l);
}
