/*
 * core/resync.h - the tables waiting to be copied again while the job
 * streams: STATE_DIR/resync, one table a line,
 * "database<TAB>schema<TAB>table" (database empty when the source names
 * none), written whole to a new file that replaces the old one (fsync'd),
 * under an flock of STATE_DIR/resync.lock. A line stays until its table is
 * copied and the changes held meanwhile are durable (see livecopy.h), so
 * that a stop or a crash copies it again at the next start.
 */
#ifndef SYNCD_RESYNC_H
#define SYNCD_RESYNC_H

#include <stdio.h>

#include <syncd/plugin.h>

#include "job.h"

typedef struct live_lines {
	char **v;
	size_t n;
} live_lines;

void live_lines_free(live_lines *l);
bool live_lines_has(const live_lines *l, const char *line);
void live_lines_add(live_lines *l, const char *line);
/* rel's line (malloc'd) */
char *live_line(const syncd_relation *r);
/* "database.schema.table" of a line, for people (malloc'd) */
char *live_label(const char *line);
/* STATE_DIR/name (malloc'd) */
char *live_path(job *j, const char *name);
/* The requests as they are now (none when there is no file). */
void live_read(job *j, live_lines *out);
/* Adds (or, with remove, removes) lines, durably; false (logged) when the
 * file could not be written. */
bool live_update(job *j, const live_lines *lines, bool remove);
bool live_update_one(job *j, const char *line, bool remove);

/* Whether the full phase of this run copies rel: not when a request waits
 * for it (it is copied while streaming, from a snapshot of its own). */
bool live_requested(job *j, const syncd_relation *rel);
/* The full phase copied every table of a new position: requests for
 * those tables are done. */
void live_requests_done(job *j, const syncd_relation *const *rels, size_t n);
/* syncd --preview: the tables waiting to be copied again. */
void live_preview(job *j, FILE *out);
/* Holds STATE_DIR/job.lock while the job runs: -1 when it could not (it
 * runs: syncd --resync TABLE tells a running job by it). */
int live_lock(job *j);

#endif
