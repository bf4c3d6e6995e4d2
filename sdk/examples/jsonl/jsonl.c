/*
 * jsonl - a syncd sink that writes every change as one JSON line, to a file
 * or to standard output. Useful to see what a source sends, and the example
 * of a complete third-party plugin: it includes only <syncd/syncd.h>, builds
 * out of tree with `pkg-config syncd-sdk` (see Makefile beside it), and is
 * shipped with syncd as the plugin "jsonl".
 *
 * One line per change:
 *   {"op":"insert","lsn":"0/16B3748","commit_time":"2026-11-24T08:00:00.000000Z",
 *    "xid":735,"database":"shop","schema":"public","table":"orders",
 *    "target":"shop.orders","worker":0,"new":{"id":"1","note":"hi"}}
 * Values are strings in PostgreSQL's text form, or null. "old" holds the old
 * key (or the old row under REPLICA IDENTITY FULL) for updates and deletes.
 * Columns the source did not send because they are unchanged TOAST values
 * are left out of "new" and listed in "unchanged_toast". A TRUNCATE line
 * lists its "tables". An "update_all" line (a TRUNCATE the logical_delete
 * transform turned into marking every row deleted) sets, in every row of
 * its table, the columns in its "new". With transactions = true, "begin"
 * and "commit" lines frame each transaction; with relations = true, a
 * "relation" line describes a table's columns (name, type, type_oid, key,
 * not_null) before its first change in a batch and whenever it changed.
 *
 * The sink has no code for the full phase: the core sends it through
 * write() like the stream, per table a "truncate" line and then one
 * "insert" line per row.
 *
 * Delivery is at least once: after a restart, changes after the last
 * confirmed position are written again (same lsn), so readers deduplicate by
 * lsn when it matters. Lines of different workers (concurrency > 1) are
 * interleaved batch by batch; each worker's lines are in commit order, and
 * its begin/commit lines frame its share of a transaction.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <syncd/syncd.h>

/* The option values, filled by the core (host->options). */
typedef struct jsonl_opts {
	const char *path;
	bool transactions;
	bool relations;
	bool fsync;
} jsonl_opts;

typedef struct jsonl {
	const syncd_host *host;
	const char *path;
	bool transactions;
	bool relations;
	bool sync;
	FILE *out;
	bool own; /* out was opened by us */
	pthread_mutex_t lock;
} jsonl;

static const syncd_option jsonl_options[] = {
    {.name = "path",
     .type = SYNCD_OPT_STRING,
     .default_value = "-",
     .help = "file to append the lines to; - is standard output",
     SYNCD_OPT_FIELD(jsonl_opts, path)},
    {.name = "transactions",
     .type = SYNCD_OPT_BOOL,
     .default_value = "false",
     .help = "also write a begin and a commit line for each transaction",
     SYNCD_OPT_FIELD(jsonl_opts, transactions)},
    {.name = "relations",
     .type = SYNCD_OPT_BOOL,
     .default_value = "false",
     .help = "also write a line describing each table (columns, types, "
             "keys) when it first appears in a batch or changes",
     SYNCD_OPT_FIELD(jsonl_opts, relations)},
    {.name = "fsync",
     .type = SYNCD_OPT_BOOL,
     .default_value = "true",
     .help =
         "fsync the file after each batch, before its progress is confirmed",
     SYNCD_OPT_FIELD(jsonl_opts, fsync)},
    {.name = NULL}};

static syncd_status
jsonl_create(const syncd_host *host, void **state)
{
	const jsonl_opts *o = host->options;
	jsonl *j = calloc(1, sizeof *j);

	if (!j) {
		host->set_error(host, NULL, "out of memory");
		return SYNCD_FATAL;
	}
	j->host = host;
	j->path = o->path;
	j->transactions = o->transactions;
	j->relations = o->relations;
	j->sync = o->fsync;
	pthread_mutex_init(&j->lock, NULL);
	*state = j;
	return SYNCD_OK;
}

static void
jsonl_destroy(void *state)
{
	jsonl *j = state;

	if (j->own && j->out)
		fclose(j->out);
	pthread_mutex_destroy(&j->lock);
	free(j);
}

static syncd_status
jsonl_check(void *state)
{
	jsonl *j = state;
	FILE *f;

	if (strcmp(j->path, "-") == 0)
		return SYNCD_OK;
	f = fopen(j->path, "a");
	if (!f) {
		j->host->set_error(j->host, NULL,
		                   "cannot write to %s: %s; fix path", j->path,
		                   strerror(errno));
		return SYNCD_FATAL;
	}
	fclose(f);
	return SYNCD_OK;
}

/* A crash (kill -9, power loss) can leave the file ending in the middle of
 * a line. That line was never confirmed, so it comes again: cut it, so
 * that the file stays one JSON document per line. */
static syncd_status
jsonl_cut_torn_line(jsonl *j)
{
	int fd = fileno(j->out);
	off_t end = lseek(fd, 0, SEEK_END), pos = end;
	char buf[4096];

	if (end <= 0)
		return SYNCD_OK;
	while (pos > 0) {
		size_t n =
		    pos >= (off_t) sizeof buf ? sizeof buf : (size_t) pos;
		ssize_t r = pread(fd, buf, n, pos - (off_t) n);
		if (r != (ssize_t) n) {
			j->host->set_error(j->host, NULL, "cannot read %s: %s",
			                   j->path, strerror(errno));
			return SYNCD_FATAL;
		}
		if (pos == end && buf[n - 1] == '\n')
			return SYNCD_OK; /* whole lines only */
		pos -= (off_t) n;
		for (size_t i = n; i-- > 0;)
			if (buf[i] == '\n') {
				pos += (off_t) i + 1;
				goto cut;
			}
	}
	/* no newline at all: the file is one partial line */
cut:
	if (ftruncate(fd, pos) != 0) {
		j->host->set_error(j->host, NULL,
		                   "cannot cut the partial last line "
		                   "of %s: %s",
		                   j->path, strerror(errno));
		return SYNCD_FATAL;
	}
	SYNCD_LOG_WARNING(j->host,
	                  "%s ended in a partial line (%lld bytes) left by a "
	                  "crash; removed it (its changes come again)",
	                  j->path, (long long) (end - pos));
	return SYNCD_OK;
}

/* Workers share one output, opened by the first of them. */
static syncd_status
jsonl_open(void *state, int worker, void **wstate)
{
	jsonl *j = state;
	syncd_status st = SYNCD_OK;

	(void) worker; /* one output for every worker */
	pthread_mutex_lock(&j->lock);
	if (!j->out) {
		if (strcmp(j->path, "-") == 0)
			j->out = stdout;
		else {
			j->out = fopen(j->path, "a+"); /* a+: read the tail */
			j->own = j->out != NULL;
			if (!j->out) {
				j->host->set_error(j->host, NULL,
				                   "cannot open %s: %s",
				                   j->path, strerror(errno));
				st = SYNCD_FATAL;
			} else
				st = jsonl_cut_torn_line(j);
		}
	}
	pthread_mutex_unlock(&j->lock);
	*wstate = j;
	return st;
}

static void
jsonl_close(void *wstate)
{
	(void) wstate; /* the output is closed by destroy */
}

static const char *
jsonl_op(syncd_event_type t)
{
	switch (t) {
	case SYNCD_EV_BEGIN: return "begin";
	case SYNCD_EV_COMMIT: return "commit";
	case SYNCD_EV_INSERT: return "insert";
	case SYNCD_EV_UPDATE: return "update";
	case SYNCD_EV_DELETE: return "delete";
	case SYNCD_EV_TRUNCATE: return "truncate";
	case SYNCD_EV_UPDATE_ALL: return "update_all";
	case SYNCD_EV_RELATION: return "relation";
	}
	return "unknown";
}

/* Column i: the array's stride is its first element's size (syncd/abi.h). */
static const syncd_column *
jsonl_column(const syncd_relation *rel, uint32_t i)
{
	return (
	    const syncd_column *) (const void *) ((const char *) rel->columns +
	                                          (size_t) i *
	                                              rel->columns[0].size);
}

static json_object *
jsonl_values(const syncd_relation *rel, const syncd_value *v, bool key_only,
             json_object **unchanged)
{
	json_object *o = json_object_new_object();

	for (uint32_t i = 0; i < rel->ncolumns; i++) {
		const char *name = jsonl_column(rel, i)->name;
		if (key_only && !(jsonl_column(rel, i)->flags & SYNCD_COL_KEY))
			continue;
		switch (v[i].kind) {
		case SYNCD_VALUE_NULL:
			json_object_object_add(o, name, NULL);
			break;
		case SYNCD_VALUE_UNCHANGED:
			if (unchanged) {
				if (!*unchanged)
					*unchanged = json_object_new_array();
				json_object_array_add(
				    *unchanged, json_object_new_string(name));
			}
			break;
		default:
			json_object_object_add(o, name,
			                       json_object_new_string_len(
			                           v[i].data, (int) v[i].len));
		}
	}
	return o;
}

static void
jsonl_header(json_object *o, const syncd_event *ev, int worker)
{
	char lsn[32], when[40];
	time_t secs = (time_t) (ev->commit_time / 1000000);
	long micros = (long) (ev->commit_time % 1000000);
	struct tm tm;

	if (micros < 0) {
		micros += 1000000;
		secs--;
	}
	snprintf(lsn, sizeof lsn, SYNCD_LSN_FMT, SYNCD_LSN_ARGS(ev->lsn));
	gmtime_r(&secs, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + strlen(when), sizeof when - strlen(when), ".%06ldZ",
	         micros);
	json_object_object_add(o, "op",
	                       json_object_new_string(jsonl_op(ev->type)));
	json_object_object_add(o, "lsn", json_object_new_string(lsn));
	json_object_object_add(o, "commit_time", json_object_new_string(when));
	json_object_object_add(o, "xid", json_object_new_int64(ev->xid));
	if (ev->stream)
		json_object_object_add(o, "stream",
		                       json_object_new_int64(ev->stream));
	json_object_object_add(o, "worker", json_object_new_int(worker));
}

static json_object *
jsonl_columns(const syncd_relation *rel)
{
	json_object *cols = json_object_new_array();

	for (uint32_t i = 0; i < rel->ncolumns; i++) {
		const syncd_column *c = jsonl_column(rel, i);
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name",
		                       json_object_new_string(c->name));
		json_object_object_add(
		    o, "type",
		    c->type_name ? json_object_new_string(c->type_name) : NULL);
		json_object_object_add(o, "type_oid",
		                       json_object_new_int64(c->type_oid));
		json_object_object_add(
		    o, "key",
		    json_object_new_boolean((c->flags & SYNCD_COL_KEY) != 0));
		json_object_object_add(
		    o, "not_null",
		    json_object_new_boolean((c->flags & SYNCD_COL_NOT_NULL) !=
		                            0));
		json_object_array_add(cols, o);
	}
	return cols;
}

/* A string, or JSON null for NULL (a source may know no database). */
static json_object *
jsonl_string(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

/* "schema.table", or "table" when the source has no schema. */
static json_object *
jsonl_qualified(const char *schema, const char *table)
{
	json_object *o;
	char *name;

	if (!schema)
		return jsonl_string(table);
	name = malloc(strlen(schema) + strlen(table) + 2);
	if (!name)
		return NULL;
	sprintf(name, "%s.%s", schema, table);
	o = json_object_new_string(name);
	free(name);
	return o;
}

static json_object *
jsonl_event(const syncd_event *ev, int worker)
{
	json_object *o = json_object_new_object(), *unchanged = NULL;
	const syncd_relation *rel = ev->rel;

	jsonl_header(o, ev, worker);
	if (ev->type == SYNCD_EV_TRUNCATE) {
		json_object *tables = json_object_new_array();
		for (uint32_t i = 0; i < ev->nrels; i++)
			json_object_array_add(
			    tables, jsonl_qualified(ev->rels[i]->schema,
			                            ev->rels[i]->table));
		json_object_object_add(o, "tables", tables);
		json_object_object_add(
		    o, "cascade",
		    json_object_new_boolean(ev->truncate_flags &
		                            SYNCD_TRUNCATE_CASCADE));
		json_object_object_add(
		    o, "restart_identity",
		    json_object_new_boolean(ev->truncate_flags &
		                            SYNCD_TRUNCATE_RESTART_IDENTITY));
		return o;
	}
	if (!rel)
		return o;
	json_object_object_add(o, "database", jsonl_string(rel->database));
	json_object_object_add(o, "schema", jsonl_string(rel->schema));
	json_object_object_add(o, "table", jsonl_string(rel->table));
	if (rel->target_table)
		json_object_object_add(
		    o, "target",
		    jsonl_qualified(rel->target_schema, rel->target_table));
	if (ev->type == SYNCD_EV_RELATION) {
		json_object_object_add(o, "columns", jsonl_columns(rel));
		return o;
	}
	if (ev->new_values)
		json_object_object_add(
		    o, "new",
		    jsonl_values(rel, ev->new_values, false,
		                 /* update_all: "new" holds what it sets */
		                 ev->type == SYNCD_EV_UPDATE_ALL ? NULL
		                                                 : &unchanged));
	if (ev->old_values)
		json_object_object_add(
		    o, "old",
		    jsonl_values(rel, ev->old_values, ev->old_is_key, NULL));
	if (unchanged)
		json_object_object_add(o, "unchanged_toast", unchanged);
	return o;
}

static syncd_status
jsonl_write(void *wstate, const syncd_batch *b)
{
	jsonl *j = wstate;
	syncd_status st = SYNCD_OK;

	pthread_mutex_lock(&j->lock);
	for (size_t i = 0; i < b->nevents; i++) {
		const syncd_event *ev = b->events[i];
		json_object *o;

		if (ev->type == SYNCD_EV_RELATION && !j->relations)
			continue;
		if ((ev->type == SYNCD_EV_BEGIN ||
		     ev->type == SYNCD_EV_COMMIT) &&
		    !j->transactions)
			continue;
		o = jsonl_event(ev, b->worker);
		fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
		      j->out);
		fputc('\n', j->out);
		json_object_put(o);
	}
	if (fflush(j->out) != 0 ||
	    (j->own && j->sync && fsync(fileno(j->out)) != 0)) {
		j->host->set_error(j->host, NULL, "cannot write to %s: %s",
		                   j->path, strerror(errno));
		st = SYNCD_FATAL;
	}
	pthread_mutex_unlock(&j->lock);
	if (st == SYNCD_OK)
		j->host->metric_add(j->host, "changes_written_total",
		                    (double) b->nchanges);
	return st;
}

static const syncd_sink_ops jsonl_ops = {
    .size = sizeof(syncd_sink_ops),
    .create = jsonl_create,
    .destroy = jsonl_destroy,
    .check = jsonl_check,
    .open = jsonl_open,
    .close = jsonl_close,
    .write = jsonl_write,
};

SYNCD_PLUGIN(.kind = SYNCD_KIND_SINK, .name = "jsonl", .version = "1.0",
             .description =
                 "every change as one JSON line, to a file or stdout",
             .options = jsonl_options, .options_size = sizeof(jsonl_opts),
             .ops.sink = &jsonl_ops)
