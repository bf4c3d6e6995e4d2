/*
 * plugins/common/dirty_json.c - the JSON line of a refused row (see
 * dirty_json.h).
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dirty_json.h"

static const char *
dirty_json_op(syncd_event_type t)
{
	switch (t) {
	case SYNCD_EV_INSERT: return "insert";
	case SYNCD_EV_UPDATE: return "update";
	case SYNCD_EV_DELETE: return "delete";
	case SYNCD_EV_TRUNCATE: return "truncate";
	default: return "other";
	}
}

/* Column i of rel: the array has the stride of its first element's size. */
static const syncd_column *
dirty_json_column(const syncd_relation *rel, uint32_t i)
{
	size_t stride =
	    rel->columns[0].size ? rel->columns[0].size : sizeof(syncd_column);
	return (const syncd_column *) ((const char *) rel->columns +
	                               (size_t) i * stride);
}

static json_object *
dirty_json_str(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

char *
dirty_json_line(const syncd_dirty_record *rec, size_t *len)
{
	const syncd_event *ev = rec->ev;
	const syncd_relation *rel = ev ? ev->rel : NULL;
	const syncd_value *vals = !ev ? NULL
	                          : ev->type == SYNCD_EV_DELETE
	                              ? ev->old_values
	                              : ev->new_values;
	json_object *o = json_object_new_object(), *key, *row;
	char lsn[32], when[40];
	const char *text;
	char *line;
	size_t n;

	if (!o)
		return NULL;
	json_object_object_add(o, "job", dirty_json_str(rec->job));
	json_object_object_add(o, "worker", json_object_new_int(rec->worker));
	json_object_object_add(o, "database",
	                       dirty_json_str(rel ? rel->database : NULL));
	json_object_object_add(o, "schema",
	                       dirty_json_str(rel ? rel->schema : NULL));
	json_object_object_add(o, "table",
	                       dirty_json_str(rel ? rel->table : NULL));
	json_object_object_add(o, "target_schema",
	                       dirty_json_str(rel ? rel->target_schema : NULL));
	json_object_object_add(o, "target_table",
	                       dirty_json_str(rel ? rel->target_table : NULL));
	json_object_object_add(
	    o, "op", dirty_json_str(dirty_json_op(ev ? ev->type : 0)));
	snprintf(lsn, sizeof lsn, SYNCD_LSN_FMT,
	         SYNCD_LSN_ARGS(ev ? ev->lsn : 0));
	json_object_object_add(o, "lsn", dirty_json_str(lsn));
	if (ev && ev->commit_time) {
		int64_t us = ev->commit_time;
		time_t t = (time_t) (us / 1000000);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(when, 24, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(when + strlen(when), sizeof when - strlen(when),
		         ".%06dZ", (int) (us % 1000000));
		json_object_object_add(o, "commit_time", dirty_json_str(when));
	} else /* a row of the full phase: copied, not committed then */
		json_object_object_add(o, "commit_time", NULL);
	json_object_object_add(o, "sqlstate", dirty_json_str(rec->sqlstate));
	json_object_object_add(o, "message", dirty_json_str(rec->message));
	key = json_object_new_object();
	row = json_object_new_object();
	for (uint32_t i = 0; rel && vals && i < rel->ncolumns; i++) {
		const syncd_value *v = &vals[i];
		const syncd_column *col = dirty_json_column(rel, i);
		json_object *jv;
		if (v->kind == SYNCD_VALUE_UNCHANGED)
			continue;
		jv = v->kind == SYNCD_VALUE_NULL
		         ? NULL
		         : json_object_new_string_len(v->data, (int) v->len);
		if (col->flags & SYNCD_COL_KEY)
			json_object_object_add(key, col->name,
			                       json_object_get(jv));
		json_object_object_add(row, col->name, jv);
	}
	json_object_object_add(o, "key", key);
	json_object_object_add(o, "row", row);

	text = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	n = text ? strlen(text) : 0;
	line = text ? malloc(n + 2) : NULL;
	if (line) {
		memcpy(line, text, n);
		line[n] = '\n';
		line[n + 1] = '\0';
		*len = n + 1;
	}
	json_object_put(o);
	return line;
}
