/*
 * plugins/common/dirty_json.h - one refused row as one JSON line, the
 * record every dirty-data archiver of the tree writes (file, obs). Compiled
 * into each archiver module; built with json-c.
 *
 * A record: {"job", "worker", "database", "schema", "table",
 * "target_schema", "target_table", "op", "lsn", "commit_time", "sqlstate",
 * "message", "key": {column: value}, "row": {column: value}} where "lsn" is
 * the commit LSN, "commit_time" is UTC with microseconds, and values are
 * the text the source sent, null for NULL; a value the source did not send
 * (unchanged TOAST) is left out of "row".
 */
#ifndef SYNCD_DIRTY_JSON_H
#define SYNCD_DIRTY_JSON_H

#include <stddef.h>

#include <syncd/syncd.h>

/* The record of rec as one line of JSON ending in '\n', in malloc'd memory
 * the caller frees, its length without the final NUL in *len; NULL when
 * out of memory. */
char *dirty_json_line(const syncd_dirty_record *rec, size_t *len);

#endif
