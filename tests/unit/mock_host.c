/*
 * tests/unit/mock_host.c - see mock_host.h.
 */
#define _GNU_SOURCE /* vasprintf */
#include "mock_host.h"

#include <ctype.h>
#include <dlfcn.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *
mock_own(mock_host *m, void *p)
{
	void **owned;

	if (!p)
		abort();
	owned = realloc(m->owned, (m->nowned + 1) * sizeof *owned);
	if (!owned)
		abort();
	m->owned = owned;
	m->owned[m->nowned++] = p;
	return p;
}

static char *
mock_strdup(mock_host *m, const char *s)
{
	return mock_own(m, strdup(s));
}

static char *
mock_vprintf(const char *fmt, va_list ap)
{
	char *s;

	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	return s;
}

static const char *const mock_levels[] = {"ERROR", "WARNING", "INFO", "DEBUG"};

static void
mock_vlog(const syncd_host *h, syncd_log_level level, const char *fmt,
          va_list ap)
{
	mock_host *m = mock_host_of(h);
	char *msg = mock_vprintf(fmt, ap), *line;

	if (asprintf(&line, "%s %s",
	             level <= SYNCD_LEVEL_DEBUG ? mock_levels[level] : "?",
	             msg) < 0)
		abort();
	free(msg);
	pthread_mutex_lock(&m->lock);
	m->lines = realloc(m->lines, (m->nlines + 1) * sizeof *m->lines);
	if (!m->lines)
		abort();
	m->lines[m->nlines++] = line;
	pthread_mutex_unlock(&m->lock);
}

static void __attribute__((format(printf, 3, 4)))
mock_log(const syncd_host *h, syncd_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mock_vlog(h, level, fmt, ap);
	va_end(ap);
}

static bool
mock_log_enabled(const syncd_host *h, syncd_log_level level)
{
	return level <= mock_host_of(h)->level;
}

static void __attribute__((format(printf, 3, 4)))
mock_set_error(const syncd_host *h, const char *sqlstate, const char *fmt, ...)
{
	mock_host *m = mock_host_of(h);
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = mock_vprintf(fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&m->lock);
	free(m->error);
	free(m->sqlstate);
	m->error = msg;
	m->sqlstate = sqlstate ? strdup(sqlstate) : NULL;
	m->nerrors++;
	pthread_mutex_unlock(&m->lock);
}

static bool
mock_stopping(const syncd_host *h)
{
	return mock_host_of(h)->stopping;
}

static void
mock_record_metric(const syncd_host *h, const char *name, double v, bool add)
{
	mock_host *m = mock_host_of(h);
	size_t i;

	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->nmetrics; i++)
		if (strcmp(m->metrics[i].name, name) == 0)
			break;
	if (i == m->nmetrics) {
		m->metrics =
		    realloc(m->metrics, (m->nmetrics + 1) * sizeof *m->metrics);
		if (!m->metrics)
			abort();
		m->metrics[m->nmetrics++] =
		    (mock_metric){.name = strdup(name), .value = 0};
	}
	m->metrics[i].value = add ? m->metrics[i].value + v : v;
	pthread_mutex_unlock(&m->lock);
}

static void
mock_metric_add(const syncd_host *h, const char *name, double delta)
{
	mock_record_metric(h, name, delta, true);
}

static void
mock_metric_set(const syncd_host *h, const char *name, double value)
{
	mock_record_metric(h, name, value, false);
}

/* A header keeps the size, as the core's does. */
typedef union mock_block {
	size_t size;
	max_align_t align;
} mock_block;

static void *
mock_alloc(const syncd_host *h, size_t size)
{
	mock_host *m = mock_host_of(h);
	mock_block *b = malloc(sizeof *b + size);

	if (!b)
		return NULL;
	b->size = size;
	pthread_mutex_lock(&m->lock);
	m->allocs++;
	m->alloc_bytes += (long long) size;
	pthread_mutex_unlock(&m->lock);
	return b + 1;
}

static void
mock_free_mem(const syncd_host *h, void *ptr)
{
	mock_host *m = mock_host_of(h);
	mock_block *b;

	if (!ptr)
		return;
	b = (mock_block *) ptr - 1;
	pthread_mutex_lock(&m->lock);
	m->frees++;
	m->alloc_bytes -= (long long) b->size;
	pthread_mutex_unlock(&m->lock);
	free(b);
}

static const syncd_stream *
mock_stream(const syncd_host *h, uint32_t stream)
{
	mock_host *m = mock_host_of(h);

	return stream < m->nstreams ? &m->streams[stream] : NULL;
}

static syncd_selection
mock_select(const syncd_host *h, const char *database, const char *schema,
            const char *table)
{
	(void) database;
	(void) schema;
	(void) table;
	return mock_host_of(h)->selection;
}

static syncd_status
mock_reject_row(const syncd_host *h, int worker, const syncd_event *ev,
                const char *sqlstate, const char *message)
{
	mock_host *m = mock_host_of(h);
	mock_reject r = {.worker = worker, .type = ev->type};

	if (ev->rel &&
	    asprintf(&r.table, "%s.%s", ev->rel->schema, ev->rel->table) < 0)
		abort();
	r.sqlstate = sqlstate ? strdup(sqlstate) : NULL;
	r.message = strdup(message ? message : "");
	pthread_mutex_lock(&m->lock);
	m->rejects =
	    realloc(m->rejects, (m->nrejects + 1) * sizeof *m->rejects);
	if (!m->rejects)
		abort();
	m->rejects[m->nrejects++] = r;
	pthread_mutex_unlock(&m->lock);
	return m->reject_status;
}

mock_host *
mock_host_of(const syncd_host *h)
{
	/* host is the first member */
	return (mock_host *) (void *) h;
}

mock_host *
mock_host_new(syncd_plugin_kind kind, const void *options)
{
	mock_host *m = calloc(1, sizeof *m);
	char dir[] = "/tmp/syncd-mock-XXXXXX";
	const char *tmp = getenv("TMPDIR");
	char *state;

	if (!m)
		abort();
	pthread_mutex_init(&m->lock, NULL);
	if (tmp && *tmp) {
		if (asprintf(&state, "%s/syncd-mock-XXXXXX", tmp) < 0)
			abort();
	} else
		state = strdup(dir);
	if (!state || !mkdtemp(state))
		abort();
	mock_own(m, state);
	m->job = (syncd_job){.size = sizeof m->job,
	                     .name = "mock",
	                     .state_dir = state,
	                     .full = true,
	                     .incremental = true,
	                     .workers = 1,
	                     .layout = "1/pk"};
	m->source = (syncd_source_host){.size = sizeof m->source,
	                                .select = mock_select};
	m->sink = (syncd_sink_host){.size = sizeof m->sink,
	                            .reject = mock_reject_row};
	m->level = SYNCD_LEVEL_INFO;
	m->reject_status = SYNCD_OK;
	m->selection = SYNCD_SELECT_OWN;
	m->host = (syncd_host){
	    .size = sizeof m->host,
	    .abi_major = SYNCD_ABI_MAJOR,
	    .abi_minor = SYNCD_ABI_MINOR,
	    .job = &m->job,
	    .options = options,
	    .log = mock_log,
	    .vlog = mock_vlog,
	    .log_enabled = mock_log_enabled,
	    .set_error = mock_set_error,
	    .stopping = mock_stopping,
	    .metric_add = mock_metric_add,
	    .metric_set = mock_metric_set,
	    .alloc = mock_alloc,
	    .free_mem = mock_free_mem,
	    .stream = mock_stream,
	    .source = kind == SYNCD_KIND_SOURCE ? &m->source : NULL,
	    .sink = kind == SYNCD_KIND_SINK ? &m->sink : NULL,
	};
	return m;
}

static int
mock_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void) st;
	(void) ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void
mock_host_clear(mock_host *m)
{
	for (size_t i = 0; i < m->nlines; i++)
		free(m->lines[i]);
	free(m->lines);
	m->lines = NULL;
	m->nlines = 0;
	free(m->error);
	free(m->sqlstate);
	m->error = m->sqlstate = NULL;
	m->nerrors = 0;
	for (size_t i = 0; i < m->nrejects; i++) {
		free(m->rejects[i].table);
		free(m->rejects[i].sqlstate);
		free(m->rejects[i].message);
	}
	free(m->rejects);
	m->rejects = NULL;
	m->nrejects = 0;
}

void
mock_host_free(mock_host *m)
{
	if (!m)
		return;
	mock_host_clear(m);
	for (size_t i = 0; i < m->nmetrics; i++)
		free(m->metrics[i].name);
	free(m->metrics);
	nftw(m->job.state_dir, mock_rm, 8, FTW_DEPTH | FTW_PHYS);
	for (size_t i = 0; i < m->nowned; i++)
		free(m->owned[i]);
	free(m->owned);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void
mock_host_stream(mock_host *m, uint32_t i, const char *name, const char *server)
{
	if (i >= SYNCD_MAX_STREAMS)
		abort();
	for (uint32_t k = m->nstreams; k < i; k++) {
		char buf[32];
		snprintf(buf, sizeof buf, "stream%u", k);
		m->streams[k] = (syncd_stream){.size = sizeof(syncd_stream),
		                               .id = k,
		                               .name = mock_strdup(m, buf)};
	}
	m->streams[i] =
	    (syncd_stream){.size = sizeof(syncd_stream),
	                   .id = i,
	                   .name = mock_strdup(m, name),
	                   .server = server ? mock_strdup(m, server) : NULL};
	if (i >= m->nstreams)
		m->nstreams = i + 1;
}

bool
mock_logged(const mock_host *m, const char *needle)
{
	for (size_t i = 0; i < m->nlines; i++)
		if (strstr(m->lines[i], needle))
			return true;
	return false;
}

double
mock_metric_value(const mock_host *m, const char *name)
{
	for (size_t i = 0; i < m->nmetrics; i++)
		if (strcmp(m->metrics[i].name, name) == 0)
			return m->metrics[i].value;
	return 0;
}

const syncd_plugin *
mock_plugin_open(const char *dir, const char *name, void **handle,
                 const char **err)
{
	const char *const forms[] = {"%s/.libs/%s.so", "%s/%s.so"};
	const syncd_plugin *(*entry)(void);
	const syncd_plugin *d;
	void *h = NULL;

	*handle = NULL;
	*err = "not found";
	for (size_t i = 0; i < 2 && !h; i++) {
		char path[4096];
		snprintf(path, sizeof path, forms[i], dir, name);
		if (access(path, R_OK) != 0)
			continue;
		/* kept mapped after dlclose(), as the core keeps its
		 * plugins: the libraries a plugin loads (ICU) stay loaded
		 * between tests */
		h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
		if (!h)
			*err = dlerror();
	}
	if (!h)
		return NULL;
	*(void **) &entry = dlsym(h, SYNCD_ENTRY_SYMBOL);
	if (!entry) {
		*err = "no " SYNCD_ENTRY_SYMBOL;
		dlclose(h);
		return NULL;
	}
	d = entry();
	if (!d || d->magic != SYNCD_ABI_MAGIC ||
	    d->abi_major != SYNCD_ABI_MAJOR) {
		*err = "not a plugin of this ABI";
		dlclose(h);
		return NULL;
	}
	*handle = h;
	return d;
}

void
mock_plugin_close(void *handle)
{
	if (handle)
		dlclose(handle);
}

/* ---- options ------------------------------------------------------------ */

static char *
mock_trim(char *s)
{
	char *e;

	while (isspace((unsigned char) *s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char) e[-1]))
		*--e = '\0';
	return s;
}

/* A LIST value: comma-separated, blanks trimmed, empty items dropped. */
static syncd_list
mock_list(mock_host *m, const char *text)
{
	char *copy = mock_strdup(m, text), *save = NULL, *item;
	const char **items =
	    mock_own(m, calloc(strlen(text) + 1, sizeof *items));
	syncd_list l = {.n = 0, .items = items};

	for (item = strtok_r(copy, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		item = mock_trim(item);
		if (*item)
			items[l.n++] = item;
	}
	return l;
}

static void
mock_set(mock_host *m, char *opts, const syncd_option *o, const char *value)
{
	void *field = opts + o->offset;

	if (o->field_size == 0)
		return;
	switch (o->type) {
	case SYNCD_OPT_STRING:
	case SYNCD_OPT_ENUM: {
		const char *v = mock_strdup(m, value);
		memcpy(field, &v, sizeof v);
		break;
	}
	case SYNCD_OPT_INT:
	case SYNCD_OPT_DURATION:
	case SYNCD_OPT_SIZE: {
		int64_t v = strtoll(value, NULL, 10);
		memcpy(field, &v, sizeof v);
		break;
	}
	case SYNCD_OPT_BOOL: {
		bool v = strcmp(value, "true") == 0 ||
		         strcmp(value, "yes") == 0 ||
		         strcmp(value, "on") == 0 || strcmp(value, "1") == 0;
		memcpy(field, &v, sizeof v);
		break;
	}
	case SYNCD_OPT_LIST: {
		syncd_list v = mock_list(m, value);
		memcpy(field, &v, sizeof v);
		break;
	}
	case SYNCD_OPT_PREFIX: break; /* see mock_options */
	}
}

void *
mock_options(mock_host *m, const syncd_plugin *d, const char *const *kv)
{
	char *opts = mock_own(m, calloc(1, d->options_size + 1));

	for (const syncd_option *o = d->options; o && o->name; o++) {
		if (o->type == SYNCD_OPT_PREFIX) {
			size_t n = 0, len = strlen(o->name);
			const char **keys, **values;
			syncd_pairs p;
			for (size_t i = 0; kv && kv[i]; i += 2)
				n += strncmp(kv[i], o->name, len) == 0;
			keys = mock_own(m, calloc(n + 1, sizeof *keys));
			values = mock_own(m, calloc(n + 1, sizeof *values));
			p = (syncd_pairs){
			    .n = 0, .keys = keys, .values = values};
			for (size_t i = 0; kv && kv[i]; i += 2)
				if (strncmp(kv[i], o->name, len) == 0) {
					keys[p.n] = mock_strdup(m, kv[i]);
					values[p.n++] =
					    mock_strdup(m, kv[i + 1]);
				}
			if (o->field_size)
				memcpy(opts + o->offset, &p, sizeof p);
			continue;
		}
		if (o->default_value)
			mock_set(m, opts, o, o->default_value);
		for (size_t i = 0; kv && kv[i]; i += 2)
			if (strcmp(kv[i], o->name) == 0)
				mock_set(m, opts, o, kv[i + 1]);
	}
	m->host.options = opts;
	return opts;
}
