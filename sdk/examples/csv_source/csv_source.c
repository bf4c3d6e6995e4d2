/*
 * csv_source - a syncd source that syncs one CSV file as one table: the
 * rows it holds (the full phase), then every line appended to it (the
 * stream). The example of a complete third-party source: it includes only
 * <syncd/syncd.h> and builds out of tree with `pkg-config syncd-sdk` (see
 * the Makefile beside it).
 *
 * The file: RFC 4180 CSV. Fields are separated by `delimiter`; a field that
 * holds the delimiter, a quote or a line break is quoted ("a,b"), a quote
 * inside it written twice (""). Lines end in LF or CRLF. Like PostgreSQL's
 * COPY ... CSV, an unquoted empty field is NULL and a quoted one ("") the
 * empty string. Empty lines are skipped. With header = true the first line
 * names the columns, else they are c1..cN (N from the first line). Every
 * column is text; the key columns form the primary key.
 *
 * Positions. The one stream's position is a byte offset just after a
 * complete line (a line counts once its newline is written, so a line
 * being written is never read half). Its lsn is that offset + 1, so that
 * lsn 1 is the start of the file and 0 stays "none". Each appended line is
 * one transaction whose commit lsn is the position after it.
 *
 * The snapshot is the file's first N bytes, N the position open() found
 * (or, without a stream, mode = full, the file's current end); its lsn is
 * N + 2: every line with an lsn up to N + 1 is in the rows, none after.
 * The core commits a snapshot it sends through a sink's write() at the
 * snapshot's lsn - 1 = N + 1, the position of offset N, and the stream
 * starts after it: no line is lost and none comes twice.
 *
 * What the core confirms is kept in memory and written to the state file
 * (STATE_DIR/csv_source.position: the offset, and the file's device and
 * inode) when the stream closes, by a temporary file and rename(); a new
 * position (no state file) is written at once, like a new replication
 * slot. A file that shrank or was replaced since cannot be followed: the
 * job fails naming the file and the fix.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <syncd/syncd.h>

/* The option values, filled by the core (host->options). */
typedef struct csv_opts {
	const char *path;
	const char *schema;
	const char *table;
	syncd_list key;
	const char *delimiter;
	bool header;
	int64_t poll; /* ms */
} csv_opts;

static const syncd_option csv_options[] = {
    {.name = "path",
     .type = SYNCD_OPT_STRING,
     .flags = SYNCD_OPT_REQUIRED,
     .help = "the CSV file",
     SYNCD_OPT_FIELD(csv_opts, path)},
    {.name = "schema",
     .type = SYNCD_OPT_STRING,
     .default_value = "public",
     .help = "the table's schema",
     SYNCD_OPT_FIELD(csv_opts, schema)},
    {.name = "table",
     .type = SYNCD_OPT_STRING,
     .help = "the table's name; default: the file's name without extension",
     SYNCD_OPT_FIELD(csv_opts, table)},
    {.name = "key",
     .type = SYNCD_OPT_LIST,
     .flags = SYNCD_OPT_REQUIRED,
     .help = "the key columns, in key order",
     SYNCD_OPT_FIELD(csv_opts, key)},
    {.name = "delimiter",
     .type = SYNCD_OPT_STRING,
     .default_value = ",",
     .help = "the field separator, one character",
     SYNCD_OPT_FIELD(csv_opts, delimiter)},
    {.name = "header",
     .type = SYNCD_OPT_BOOL,
     .default_value = "true",
     .help = "the first line names the columns; false: columns c1..cN",
     SYNCD_OPT_FIELD(csv_opts, header)},
    {.name = "poll",
     .type = SYNCD_OPT_DURATION,
     .default_value = "1s",
     .help = "how often the file is checked for new lines",
     .min = 10,
     .max = 3600000,
     SYNCD_OPT_FIELD(csv_opts, poll)},
    {.name = NULL}};

/* ---- reading records ------------------------------------------------------
 *
 * A reader takes whole records from the file, from one offset on; a record
 * that is not complete yet stays in its buffer until more data comes. */

typedef struct csv_field {
	size_t off, len; /* in text */
	bool null;
} csv_field;

typedef struct csv_in {
	const char *path;
	char delim;
	int fd;
	off_t off;          /* the file offset of buf[0] */
	char *buf;          /* read, not yet taken */
	size_t len, cap;    /* bytes in buf; its size */
	size_t at;          /* bytes of buf taken by whole records */
	unsigned long line; /* the line the next record starts on */
	/* the last record: its fields, unquoted into text */
	char *text;
	size_t textcap;
	csv_field *f;
	uint32_t nf, fcap;
} csv_in;

/* The offset just after the last record taken. */
static off_t
csv_in_pos(const csv_in *in)
{
	return in->off + (off_t) in->at;
}

static bool
csv_in_open(csv_in *in, const char *path, char delim, off_t from,
            unsigned long line)
{
	memset(in, 0, sizeof *in);
	in->path = path;
	in->delim = delim;
	in->off = from;
	in->line = line;
	in->cap = 65536;
	in->buf = malloc(in->cap);
	in->fd = open(path, O_RDONLY | O_CLOEXEC);
	return in->buf && in->fd >= 0;
}

static void
csv_in_close(csv_in *in)
{
	if (in->fd >= 0)
		close(in->fd);
	free(in->buf);
	free(in->text);
	free(in->f);
	memset(in, 0, sizeof *in);
	in->fd = -1;
}

static bool
csv_add_field(csv_in *in, size_t off, size_t len, bool null)
{
	if (in->nf == in->fcap) {
		uint32_t n = in->fcap ? in->fcap * 2 : 16;
		csv_field *f = realloc(in->f, n * sizeof *f);
		if (!f)
			return false;
		in->f = f;
		in->fcap = n;
	}
	in->f[in->nf++] = (csv_field){off, len, null};
	return true;
}

/* Parses the record at p[0..n): 1 with *used (its bytes, line break
 * included) and *lines (the lines it spans), 0 when it goes on past n, -1
 * when it is malformed (*err). */
static int
csv_parse(csv_in *in, const char *p, size_t n, size_t *used,
          unsigned long *lines, const char **err)
{
	size_t i = 0, o = 0;

	*lines = 1;
	in->nf = 0;
	if (n > in->textcap) {
		char *t = realloc(in->text, n);
		if (!t) {
			*err = "out of memory";
			return -1;
		}
		in->text = t;
		in->textcap = n;
	}
	for (;;) {
		size_t start = o;
		bool quoted = i < n && p[i] == '"';

		if (quoted) {
			for (i++;; i++) {
				if (i >= n)
					return 0;
				if (p[i] == '"') {
					if (i + 1 >= n)
						return 0;
					if (p[i + 1] != '"')
						break;
					i++; /* "" is one quote */
				} else if (p[i] == '\n')
					(*lines)++;
				in->text[o++] = p[i];
			}
			i++; /* the closing quote */
			if (i < n && p[i] == '\r') {
				if (i + 1 >= n)
					return 0;
				if (p[i + 1] == '\n')
					i++;
			}
			if (i >= n)
				return 0;
			if (p[i] != in->delim && p[i] != '\n') {
				*err =
				    "text after the closing quote of a field "
				    "(a quote inside a quoted field is written "
				    "twice: \"\")";
				return -1;
			}
		} else {
			while (i < n && p[i] != in->delim && p[i] != '\n')
				in->text[o++] = p[i++];
			if (i >= n)
				return 0;
			if (p[i] == '\n' && o > start &&
			    in->text[o - 1] == '\r')
				o--; /* CRLF */
		}
		if (!csv_add_field(in, start, o - start,
		                   !quoted && o == start)) {
			*err = "out of memory";
			return -1;
		}
		if (p[i++] == '\n') {
			*used = i;
			return 1;
		}
	}
}

/* The next record, no further than offset limit (-1: the file's end): 1,
 * 0 when the data ends before the next record does, -1 on an error
 * (*err). */
static int
csv_next(csv_in *in, off_t limit, const char **err)
{
	for (;;) {
		size_t used;
		unsigned long lines;
		ssize_t got;
		size_t want;
		int r = csv_parse(in, in->buf + in->at, in->len - in->at, &used,
		                  &lines, err);

		if (r != 0) {
			if (r > 0) {
				in->at += used;
				in->line += lines;
			}
			return r;
		}
		/* need more: keep the partial record, read after it */
		memmove(in->buf, in->buf + in->at, in->len - in->at);
		in->off += (off_t) in->at;
		in->len -= in->at;
		in->at = 0;
		if (in->len == in->cap) {
			char *b = realloc(in->buf, in->cap * 2);
			if (!b) {
				*err = "out of memory";
				return -1;
			}
			in->buf = b;
			in->cap *= 2;
		}
		want = in->cap - in->len;
		if (limit >= 0) {
			off_t left = limit - (in->off + (off_t) in->len);
			if (left <= 0)
				return 0;
			if ((off_t) want > left)
				want = (size_t) left;
		}
		got = pread(in->fd, in->buf + in->len, want,
		            in->off + (off_t) in->len);
		if (got < 0) {
			*err = strerror(errno);
			return -1;
		}
		if (got == 0)
			return 0;
		in->len += (size_t) got;
	}
}

/* An empty line: one unquoted empty field. */
static bool
csv_in_blank(const csv_in *in)
{
	return in->nf == 1 && in->f[0].null;
}

/* ---- the plugin -------------------------------------------------------- */

typedef struct csv {
	const syncd_host *host;
	const csv_opts *o;
	char delim;
	char *table;
	char *state_path; /* STATE_DIR/csv_source.position */

	/* the table, read from the file's first line once */
	bool loaded;
	off_t data_start; /* just after the header line */
	uint32_t ncols;
	char **names;
	syncd_column *cols;
	syncd_relation rel;

	/* the stream */
	pthread_mutex_t lock; /* confirmed: confirm() runs in any thread */
	syncd_lsn confirmed;
	bool opened;
	off_t open_at; /* the offset open() found */
	csv_in in;
	bool announced;
	struct timespec next_poll;
	syncd_value *vals;

	/* the snapshot */
	char snap_name[48], chunk_name[48];
	const char *chunks[1];
	syncd_copy_table copy;
} csv;

/* One reader of the full phase: the snapshot's end. */
typedef struct csv_reader {
	csv *c;
	off_t end;
} csv_reader;

/* Records why an operation fails; returns st. */
static syncd_status csv_err(csv *c, syncd_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static syncd_status
csv_err(csv *c, syncd_status st, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	c->host->set_error(c->host, NULL, "%s", msg);
	return st;
}

static syncd_status
csv_create(const syncd_host *host, void **state)
{
	const csv_opts *o = host->options;
	csv *c = calloc(1, sizeof *c);
	const char *base =
	    strrchr(o->path, '/') ? strrchr(o->path, '/') + 1 : o->path;
	size_t n;

	if (!c) {
		host->set_error(host, NULL, "out of memory");
		return SYNCD_FATAL;
	}
	*state = c; /* destroy() is called even if create() fails */
	c->host = host;
	c->o = o;
	c->in.fd = -1;
	pthread_mutex_init(&c->lock, NULL);
	if (strlen(o->delimiter) != 1 || strchr("\"\r\n", o->delimiter[0]))
		return csv_err(c, SYNCD_INVALID,
		               "delimiter \"%s\" is not one character other "
		               "than a quote or a line break; fix delimiter",
		               o->delimiter);
	c->delim = o->delimiter[0];
	/* the table: the option, or the file's name without extension */
	n = strchr(base, '.') ? (size_t) (strchr(base, '.') - base)
	                      : strlen(base);
	c->table = o->table ? strdup(o->table) : strndup(base, n);
	n = strlen(host->job->state_dir) + sizeof "/csv_source.position";
	c->state_path = malloc(n);
	if (!c->table || !c->state_path)
		return csv_err(c, SYNCD_FATAL, "out of memory");
	snprintf(c->state_path, n, "%s/csv_source.position",
	         host->job->state_dir);
	if (!c->table[0])
		return csv_err(c, SYNCD_INVALID,
		               "cannot name the table after %s; set table",
		               o->path);
	return SYNCD_OK;
}

/* Forgets the columns. */
static void
csv_unload(csv *c)
{
	for (uint32_t i = 0; c->names && i < c->ncols; i++)
		free(c->names[i]);
	free(c->names);
	free(c->cols);
	free(c->vals);
	c->names = NULL;
	c->cols = NULL;
	c->vals = NULL;
	c->ncols = 0;
}

static void
csv_destroy(void *state)
{
	csv *c = state;

	csv_unload(c);
	free(c->table);
	free(c->state_path);
	csv_in_close(&c->in);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Opens a reader at offset `from` (line `line`), or says why not. */
static syncd_status
csv_reader_open(csv *c, csv_in *in, off_t from, unsigned long line)
{
	if (csv_in_open(in, c->o->path, c->delim, from, line))
		return SYNCD_OK;
	csv_in_close(in);
	return csv_err(c, SYNCD_FATAL, "cannot read %s: %s; fix path",
	               c->o->path, strerror(errno));
}

/* The columns, from the file's first line (read once). */
static syncd_status
csv_load(csv *c)
{
	const csv_opts *o = c->o;
	csv_in in;
	const char *err = NULL;
	unsigned long line;
	int r;

	if (c->loaded)
		return SYNCD_OK;
	csv_unload(c); /* what an earlier, failed call left */
	if (csv_reader_open(c, &in, 0, 1) != SYNCD_OK)
		return SYNCD_INVALID;
	do { /* the first line that is not empty */
		line = in.line;
		r = csv_next(&in, -1, &err);
	} while (r > 0 && csv_in_blank(&in));
	if (r <= 0) {
		csv_in_close(&in);
		if (r < 0)
			return csv_err(c, SYNCD_INVALID,
			               "line %lu of %s: %s; fix the line", line,
			               o->path, err);
		return csv_err(c, SYNCD_INVALID,
		               "%s has no complete first line: it must %s; "
		               "write it, with its line break, and start again",
		               o->path,
		               o->header ? "name the columns (header = true)"
		                         : "set the number of columns");
	}
	c->ncols = in.nf;
	c->names = calloc(c->ncols, sizeof *c->names);
	c->cols = calloc(c->ncols, sizeof *c->cols);
	c->vals = calloc(c->ncols, sizeof *c->vals);
	for (uint32_t i = 0; c->names && i < c->ncols; i++) {
		const char *name = in.text + in.f[i].off;
		size_t len = in.f[i].len;
		char num[16];
		if (i == 0 && len >= 3 &&
		    memcmp(name, "\xEF\xBB\xBF", 3) == 0) {
			name += 3; /* a UTF-8 byte order mark */
			len -= 3;
		}
		snprintf(num, sizeof num, "c%u", i + 1);
		c->names[i] = o->header ? strndup(name, len) : strdup(num);
	}
	c->data_start = o->header ? csv_in_pos(&in) : 0;
	csv_in_close(&in);
	if (!c->names || !c->cols || !c->vals)
		return csv_err(c, SYNCD_FATAL, "out of memory");
	for (uint32_t i = 0; i < c->ncols; i++) {
		if (!c->names[i])
			return csv_err(c, SYNCD_FATAL, "out of memory");
		if (!c->names[i][0])
			return csv_err(c, SYNCD_INVALID,
			               "line %lu of %s: column %u has no name; "
			               "name it in the header",
			               line, o->path, i + 1);
		for (uint32_t k = 0; k < i; k++)
			if (strcmp(c->names[k], c->names[i]) == 0)
				return csv_err(
				    c, SYNCD_INVALID,
				    "line %lu of %s: column \"%s\" is "
				    "named twice; rename one",
				    line, o->path, c->names[i]);
		c->cols[i] = (syncd_column){.size = sizeof(syncd_column),
		                            .name = c->names[i],
		                            .type_oid = 25,
		                            .type_name = "text",
		                            .typmod = -1};
	}
	for (size_t k = 0; k < o->key.n; k++) {
		uint32_t i = 0;
		while (i < c->ncols && strcmp(c->names[i], o->key.items[k]))
			i++;
		if (i == c->ncols)
			return csv_err(
			    c, SYNCD_INVALID,
			    "key column \"%s\" is not a column of %s "
			    "(%s); fix key",
			    o->key.items[k], o->path,
			    o->header ? "see its first line"
			              : "header = false: c1..cN");
		c->cols[i].flags = SYNCD_COL_KEY | SYNCD_COL_NOT_NULL;
		c->cols[i].key_position = (uint32_t) k + 1;
	}
	c->rel = (syncd_relation){.size = sizeof(syncd_relation),
	                          .id = 1,
	                          .schema = o->schema,
	                          .table = c->table,
	                          .ncolumns = c->ncols,
	                          .columns = c->cols,
	                          .replica_identity = 'd'};
	c->loaded = true;
	return SYNCD_OK;
}

/* `syncd --check`: the file is readable and its header has the key (the
 * core prints the error). */
static syncd_status
csv_check(void *state)
{
	return csv_load(state) == SYNCD_OK ? SYNCD_OK : SYNCD_INVALID;
}

static syncd_status
csv_list_tables(void *state, syncd_relation_fn fn, void *ctx)
{
	csv *c = state;
	syncd_status st = csv_load(c);

	return st == SYNCD_OK ? fn(ctx, &c->rel) : st;
}

static syncd_status
csv_streams(void *state, syncd_stream_fn fn, void *ctx)
{
	csv *c = state;
	syncd_stream s = {.size = sizeof s, .id = 0, .name = c->table};

	return fn(ctx, &s);
}

/* Reads whole records from the start (lines and quotes that span them are
 * known only from there) up to `upto` (-1: as far as they go); *end: the
 * offset after the last, *line: the line after it. */
static syncd_status
csv_scan(csv *c, off_t upto, off_t *end, unsigned long *line)
{
	csv_in in;
	const char *err = NULL;

	if (csv_reader_open(c, &in, 0, 1) != SYNCD_OK)
		return SYNCD_FATAL;
	while ((upto < 0 || csv_in_pos(&in) < upto) &&
	       csv_next(&in, upto, &err) > 0)
		;
	*end = csv_in_pos(&in);
	*line = in.line;
	csv_in_close(&in);
	if (err)
		return csv_err(c, SYNCD_FATAL,
		               "line %lu of %s: %s; fix the line", *line,
		               c->o->path, err);
	return SYNCD_OK;
}

/* The file moved on in a way the stream cannot follow. */
static syncd_status
csv_lost(csv *c, syncd_status st, const char *how)
{
	return csv_err(c, st,
	               "%s %s: the lines synced so far are not where they "
	               "were; to sync it again, stop syncd and delete %s (with "
	               "a sink that keeps its progress, such as dws_upsert, "
	               "also rename the job)",
	               c->o->path, how, c->state_path);
}

/* Writes the confirmed offset and the file's identity, atomically (the
 * caller holds lock). */
static syncd_status
csv_store(csv *c)
{
	char tmp[4096];
	struct stat sb;
	FILE *f;

	if (stat(c->o->path, &sb) != 0)
		return csv_err(c, SYNCD_FATAL, "cannot read %s: %s", c->o->path,
		               strerror(errno));
	snprintf(tmp, sizeof tmp, "%s.tmp", c->state_path);
	f = fopen(tmp, "w");
	if (!f ||
	    fprintf(f, "%llu %llu %llu\n",
	            (unsigned long long) (c->confirmed - 1),
	            (unsigned long long) sb.st_dev,
	            (unsigned long long) sb.st_ino) < 0 ||
	    fflush(f) != 0 || fsync(fileno(f)) != 0) {
		if (f)
			fclose(f);
		return csv_err(c, SYNCD_FATAL,
		               "cannot write %s: %s; fix [job] state_dir", tmp,
		               strerror(errno));
	}
	if (fclose(f) != 0 || rename(tmp, c->state_path) != 0)
		return csv_err(c, SYNCD_FATAL,
		               "cannot write %s: %s; fix [job] state_dir",
		               c->state_path, strerror(errno));
	return SYNCD_OK;
}

/* Finds the position: the state file's, or a new one at the end of the
 * last complete line (written at once, like a new replication slot). */
static syncd_status
csv_open(void *state, uint32_t stream, syncd_position *pos)
{
	csv *c = state;
	struct stat sb;
	unsigned long long off, dev, ino;
	unsigned long line;
	off_t end;
	FILE *f;
	syncd_status st = csv_load(c);

	(void) stream; /* the one stream */
	if (st != SYNCD_OK)
		return st;
	if (stat(c->o->path, &sb) != 0)
		return csv_err(c, SYNCD_FATAL, "cannot read %s: %s; fix path",
		               c->o->path, strerror(errno));
	f = fopen(c->state_path, "r");
	if (f) {
		int n = fscanf(f, "%llu %llu %llu", &off, &dev, &ino);
		fclose(f);
		if (n != 3)
			return csv_err(
			    c, SYNCD_INVALID,
			    "%s is not a csv_source position; delete "
			    "it to sync %s again",
			    c->state_path, c->o->path);
		if (dev != (unsigned long long) sb.st_dev ||
		    ino != (unsigned long long) sb.st_ino)
			return csv_lost(c, SYNCD_INVALID,
			                "was replaced since the last run");
		if ((off_t) off > sb.st_size)
			return csv_lost(c, SYNCD_INVALID,
			                "shrank since the last run");
		end = (off_t) off;
	} else {
		st = csv_scan(c, -1, &end, &line);
		if (st != SYNCD_OK)
			return st;
		pos->created = true;
	}
	pthread_mutex_lock(&c->lock);
	c->confirmed = (syncd_lsn) end + 1;
	if (pos->created)
		st = csv_store(c);
	pthread_mutex_unlock(&c->lock);
	if (st != SYNCD_OK)
		return st;
	c->open_at = end;
	c->opened = true;
	pos->confirmed = c->confirmed;
	pos->holder = c->state_path;
	return SYNCD_OK;
}

static syncd_status
csv_start(void *state, uint32_t stream, syncd_lsn after)
{
	csv *c = state;
	off_t from = after > 0 ? (off_t) (after - 1) : 0, end;
	unsigned long line;
	syncd_status st;

	(void) stream;
	if (from < c->data_start)
		from = c->data_start;
	/* from must end a line; counting the lines before it numbers the
	 * lines in messages */
	st = csv_scan(c, from, &end, &line);
	if (st != SYNCD_OK)
		return st;
	if (end != from)
		return csv_lost(c, SYNCD_INVALID,
		                "shrank or changed before the synced "
		                "position");
	csv_in_close(&c->in);
	st = csv_reader_open(c, &c->in, from, line);
	c->announced = false;
	memset(&c->next_poll, 0, sizeof c->next_poll);
	return st;
}

static void
csv_after_ms(struct timespec *t, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_sec += ms / 1000;
	t->tv_nsec += (long) (ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

static int64_t
csv_ms_until(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (t->tv_sec - now.tv_sec) * 1000 +
	       (t->tv_nsec - now.tv_nsec) / 1000000;
}

/* The record just read, as one transaction committed at the offset after
 * it. */
static syncd_status
csv_emit_line(csv *c, syncd_emit_fn emit, void *ctx)
{
	syncd_event ev = {.size = sizeof ev,
	                  .lsn = (syncd_lsn) csv_in_pos(&c->in) + 1,
	                  .commit_time = (int64_t) time(NULL) * 1000000};
	syncd_status st;

	for (uint32_t i = 0; i < c->ncols; i++) {
		const csv_field *f = &c->in.f[i];
		c->vals[i] = (syncd_value){
		    f->null ? SYNCD_VALUE_NULL : SYNCD_VALUE_TEXT,
		    (uint32_t) f->len, f->null ? NULL : c->in.text + f->off};
	}
	ev.type = SYNCD_EV_BEGIN;
	st = emit(ctx, &ev);
	ev.rel = &c->rel; /* RELATION and INSERT only */
	if (st == SYNCD_OK && !c->announced) {
		ev.type = SYNCD_EV_RELATION;
		st = emit(ctx, &ev);
		c->announced = st == SYNCD_OK;
	}
	ev.type = SYNCD_EV_INSERT;
	ev.new_values = c->vals;
	if (st == SYNCD_OK)
		st = emit(ctx, &ev);
	ev.type = SYNCD_EV_COMMIT;
	ev.rel = NULL;
	ev.new_values = NULL;
	if (st == SYNCD_OK)
		st = emit(ctx, &ev);
	return st;
}

static syncd_status
csv_bad_fields(csv *c, const csv_in *in, unsigned long line)
{
	return csv_err(c, SYNCD_FATAL,
	               "line %lu of %s has %u fields, the table %u columns; "
	               "fix the line (quote a field that holds the delimiter, "
	               "a quote or a line break)",
	               line, c->o->path, in->nf, c->ncols);
}

/* Emits the lines appended since, one transaction each; looks at the file
 * every `poll`. */
static syncd_status
csv_read(void *state, uint32_t stream, int timeout_ms, syncd_emit_fn emit,
         void *emit_ctx)
{
	csv *c = state;
	struct timespec deadline;
	int lines = 0;

	(void) stream;
	csv_after_ms(&deadline, timeout_ms);
	for (;;) {
		const char *err = NULL;
		unsigned long line = c->in.line;
		struct stat now, was;
		int64_t wait = csv_ms_until(&c->next_poll);
		int r;

		if (c->host->stopping(c->host))
			return SYNCD_OK;
		if (wait > 0) {
			int64_t left = csv_ms_until(&deadline);
			struct timespec ts;
			if (left <= 0)
				return SYNCD_OK;
			wait = wait < left ? wait : left;
			ts = (struct timespec){wait / 1000,
			                       (wait % 1000) * 1000000L};
			nanosleep(&ts, NULL);
			continue;
		}
		r = csv_next(&c->in, -1, &err);
		if (r < 0)
			return csv_err(c, SYNCD_FATAL,
			               "line %lu of %s: %s; fix the line", line,
			               c->o->path, err);
		if (r > 0) {
			syncd_status st;
			if (csv_in_blank(&c->in))
				continue;
			if (c->in.nf != c->ncols)
				return csv_bad_fields(c, &c->in, line);
			st = csv_emit_line(c, emit, emit_ctx);
			if (st != SYNCD_OK || ++lines >= 1000)
				return st;
			continue;
		}
		/* nothing new: did the file shrink or was it replaced? */
		if (stat(c->o->path, &now) != 0 || fstat(c->in.fd, &was) != 0)
			return csv_err(c, SYNCD_FATAL, "cannot read %s: %s",
			               c->o->path, strerror(errno));
		if (now.st_dev != was.st_dev || now.st_ino != was.st_ino)
			return csv_lost(c, SYNCD_FATAL, "was replaced");
		if (was.st_size < csv_in_pos(&c->in))
			return csv_lost(c, SYNCD_FATAL, "shrank (truncated)");
		csv_after_ms(&c->next_poll, c->o->poll);
		if (lines > 0)
			return SYNCD_OK;
	}
}

/* Remembered; written to the state file when the stream closes. */
static void
csv_confirm(void *state, uint32_t stream, syncd_lsn lsn)
{
	csv *c = state;

	(void) stream;
	pthread_mutex_lock(&c->lock);
	if (lsn > c->confirmed)
		c->confirmed = lsn;
	pthread_mutex_unlock(&c->lock);
}

static void
csv_close(void *state, uint32_t stream)
{
	csv *c = state;

	(void) stream;
	pthread_mutex_lock(&c->lock);
	if (c->opened && csv_store(c) != SYNCD_OK)
		SYNCD_LOG_ERROR(c->host,
		                "could not keep the position in %s: the lines "
		                "since the last start come again at the next",
		                c->state_path);
	pthread_mutex_unlock(&c->lock);
	c->opened = false;
	csv_in_close(&c->in);
}

/* ---- the full phase ------------------------------------------------------ */

/* The file's first N bytes: N the position open() found, or (mode = full)
 * the end of its last complete line. */
static syncd_status
csv_snapshot(void *state, uint32_t stream, syncd_snapshot *snap)
{
	csv *c = state;
	off_t end = c->open_at;
	unsigned long line;
	struct stat sb;
	syncd_status st = csv_load(c);

	(void) stream;
	if (st != SYNCD_OK)
		return st;
	if (!c->opened) {
		st = csv_scan(c, -1, &end, &line);
		if (st != SYNCD_OK)
			return st;
		if (stat(c->o->path, &sb) == 0 && sb.st_size > end)
			SYNCD_LOG_WARNING(
			    c->host,
			    "%s ends in %lld bytes without a line "
			    "break: not copied",
			    c->o->path, (long long) (sb.st_size - end));
	}
	if (end < c->data_start)
		end = c->data_start;
	snprintf(c->snap_name, sizeof c->snap_name, "offset=%lld",
	         (long long) end);
	snprintf(c->chunk_name, sizeof c->chunk_name, "bytes %lld-%lld",
	         (long long) c->data_start, (long long) end);
	c->chunks[0] = c->chunk_name;
	c->copy = (syncd_copy_table){.size = sizeof c->copy,
	                             .rel = &c->rel,
	                             .est_rows = -1,
	                             .est_bytes = end - c->data_start,
	                             .nchunks = 1,
	                             .chunks = c->chunks};
	snap->name = c->snap_name;
	snap->lsn = (syncd_lsn) end + 2; /* see the top of the file */
	snap->ntables = 1;
	snap->tables = &c->copy;
	return SYNCD_OK;
}

static void
csv_release(void *state, uint32_t stream)
{
	(void) state; /* the file's first bytes: nothing to hold */
	(void) stream;
}

static syncd_status
csv_copy_open(void *state, uint32_t stream, const char *snapshot, void **reader)
{
	csv *c = state;
	csv_reader *r;
	long long end;

	(void) stream;
	if (sscanf(snapshot, "offset=%lld", &end) != 1)
		return csv_err(c, SYNCD_FATAL, "no such snapshot \"%s\"",
		               snapshot);
	r = calloc(1, sizeof *r);
	if (!r)
		return csv_err(c, SYNCD_FATAL, "out of memory");
	r->c = c;
	r->end = (off_t) end;
	*reader = r;
	return SYNCD_OK;
}

/* Appends the record's fields to out as one row of COPY text. */
static bool
csv_copy_row(const csv_in *in, char **out, size_t *len, size_t *cap)
{
	for (uint32_t i = 0; i < in->nf; i++) {
		const csv_field *f = &in->f[i];
		if (*len + 2 * f->len + 3 > *cap) {
			size_t want = (*len + 2 * f->len + 3) * 2;
			char *b = realloc(*out, want);
			if (!b)
				return false;
			*out = b;
			*cap = want;
		}
		if (f->null) {
			memcpy(*out + *len, "\\N", 2);
			*len += 2;
		} else
			*len += syncd_copytext_escape(in->text + f->off, f->len,
			                              *out + *len);
		(*out)[(*len)++] = i + 1 < in->nf ? '\t' : '\n';
	}
	return true;
}

/* Streams the snapshot's rows as COPY text, in pieces of about 64 kB. */
static syncd_status
csv_copy_read(void *reader, const syncd_copy_table *t, uint32_t chunk,
              const char *changed_since, syncd_copy_fn fn, void *ctx)
{
	csv_reader *r = reader;
	csv *c = r->c;
	csv_in in;
	char *out = NULL;
	size_t len = 0, cap = 0;
	syncd_status st = SYNCD_OK;
	const char *err = NULL;

	(void) t;             /* the one table */
	(void) chunk;         /* the one chunk */
	(void) changed_since; /* every row, always */
	if (csv_reader_open(c, &in, 0, 1) != SYNCD_OK)
		return SYNCD_FATAL;
	while (st == SYNCD_OK) {
		unsigned long line = in.line;
		int got = csv_next(&in, r->end, &err);
		if (got == 0)
			break;
		if (got < 0) {
			st = csv_err(c, SYNCD_FATAL,
			             "line %lu of %s: %s; fix the line", line,
			             c->o->path, err);
			break;
		}
		if (csv_in_pos(&in) <= c->data_start || csv_in_blank(&in))
			continue; /* the header, an empty line */
		if (in.nf != c->ncols)
			st = csv_bad_fields(c, &in, line);
		else if (!csv_copy_row(&in, &out, &len, &cap))
			st = csv_err(c, SYNCD_FATAL, "out of memory");
		else if (len >= 65536) {
			st = fn(ctx, out, len);
			len = 0;
		}
	}
	if (st == SYNCD_OK && csv_in_pos(&in) != r->end)
		st = csv_lost(c, SYNCD_FATAL, "shrank while it was copied");
	if (st == SYNCD_OK && len > 0)
		st = fn(ctx, out, len);
	free(out);
	csv_in_close(&in);
	return st;
}

static void
csv_copy_close(void *reader)
{
	free(reader);
}

static const syncd_source_ops csv_ops = {
    .size = sizeof(syncd_source_ops),
    .create = csv_create,
    .destroy = csv_destroy,
    .check = csv_check,
    .list_tables = csv_list_tables,
    .streams = csv_streams,
    .open = csv_open,
    .start = csv_start,
    .read = csv_read,
    .confirm = csv_confirm,
    .close = csv_close,
    .snapshot = csv_snapshot,
    .release = csv_release,
    .copy_open = csv_copy_open,
    .copy_read = csv_copy_read,
    .copy_close = csv_copy_close,
};

SYNCD_PLUGIN(.kind = SYNCD_KIND_SOURCE, .name = "csv_source", .version = "1.0",
             .description = "one CSV file as one table: its rows, then "
                            "every line appended to it",
             .options = csv_options, .options_size = sizeof(csv_opts),
             .ops.source = &csv_ops)
