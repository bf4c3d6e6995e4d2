/*
 * core/metrics.c - see metrics.h. Families sorted by name, samples of a
 * family sorted by their label string, both found by binary search under
 * one lock: the exposition comes out grouped and in a stable order, which
 * the format requires and people diffing two scrapes like.
 */
#include "config.h"

#include "metrics.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum mtype { M_COUNTER, M_GAUGE, M_HISTOGRAM } mtype;

/* Flush durations go from milliseconds (a small batch nearby) to a minute
 * (a large upsert into a busy warehouse). */
static const double metrics_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,  0.5,  1,     2.5,  5,
                                        10,    30,   60};
#define NBOUNDS (sizeof metrics_bounds / sizeof metrics_bounds[0])

typedef struct sample {
	char *labels;
	double value;          /* counters, gauges; the sum of a histogram */
	uint64_t *counts;      /* histogram: per bound, not cumulative */
	uint64_t count;        /* histogram: observations */
} sample;

typedef struct family {
	char *name; /* as exposed: "syncd_lag_seconds" */
	mtype type;
	const char *help;
	sample *s;
	size_t n, cap;
} family;

/* The families the core knows; anything else comes from a plugin. */
static const struct known {
	const char *name; /* as exposed */
	mtype type;
	const char *help;
} known[] = {
    {"process_cpu_seconds_total", M_COUNTER,
     "User and system CPU time spent by syncd, in seconds."},
    {"process_open_fds", M_GAUGE, "Open file descriptors."},
    {"process_resident_memory_bytes", M_GAUGE, "Resident memory in bytes."},
    {"process_start_time_seconds", M_GAUGE,
     "Start time of syncd since the Unix epoch, in seconds."},
    {"syncd_batch_flush_duration_seconds", M_HISTOGRAM,
     "Time a worker took to write one batch and its progress to the "
     "destination, retries included."},
    {"syncd_batches_total", M_COUNTER,
     "Batches written to the destination, per worker."},
    {"syncd_build_info", M_GAUGE,
     "Always 1; the version of syncd and of its plugin ABI as labels."},
    {"syncd_changes_applied_total", M_COUNTER,
     "Changes made durable at the destination, per source table and "
     "operation (insert, update, delete, truncate)."},
    {"syncd_confirmed_position_bytes", M_GAUGE,
     "The source position (LSN) confirmed to the source, as a number of "
     "bytes."},
    {"syncd_dirty_rows_total", M_COUNTER,
     "Rows the destination refused (dirty data), per table."},
    {"syncd_full_rows_copied", M_GAUGE,
     "Rows copied by the full phase, per table."},
    {"syncd_full_rows_estimated", M_GAUGE,
     "Rows the source catalog estimates for a table of the full phase."},
    {"syncd_full_table_done", M_GAUGE,
     "1 once the full phase has copied every chunk of the table."},
    {"syncd_job_state", M_GAUGE,
     "1 for the state the job is in (starting, copying, streaming, "
     "retrying, stopping, failed), 0 for the others."},
    {"syncd_lag_bytes", M_GAUGE,
     "The source's current WAL position minus the position confirmed to "
     "it, in bytes."},
    {"syncd_lag_seconds", M_GAUGE,
     "Age of the oldest transaction read from the source and not yet "
     "durable at the destination, in seconds; 0 when every transaction "
     "read is applied."},
    {"syncd_memory_bytes", M_GAUGE,
     "Memory a plugin holds through the host's allocator."},
    {"syncd_queue_bytes", M_GAUGE,
     "Bytes of changes queued for a worker."},
    {"syncd_queue_items", M_GAUGE,
     "Changes and markers queued for a worker."},
    {"syncd_reconnects_total", M_COUNTER,
     "Lost connections opened again, by side (source, sink)."},
    {"syncd_retries_total", M_COUNTER,
     "Restarts of the whole job by auto_retry."},
    {"syncd_rows_folded_total", M_COUNTER,
     "Changes that a later change of the same key in the same batch made "
     "unnecessary to write."},
    {"syncd_slot_retained_wal_bytes", M_GAUGE,
     "WAL the source keeps for the job's replication slots, in bytes."},
    {"syncd_source_wal_position_bytes", M_GAUGE,
     "The source's current WAL position (LSN), as a number of bytes."},
    {"syncd_spill_bytes_total", M_COUNTER,
     "Bytes of large transactions the source wrote to spill files."},
    {"syncd_transactions_total", M_COUNTER,
     "Transactions read from the source, per database."},
};

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static family *families;
static size_t nfamilies;

static pthread_mutex_t collect_lock = PTHREAD_MUTEX_INITIALIZER;
static struct collector {
	metrics_collector fn;
	void *ctx;
} *collectors;
static size_t ncollectors;

/* ---- names and labels ----------------------------------------------------
 */

static void
mputc(strbuf *sb, char c)
{
	sb_append(sb, &c, 1);
}

char *
metrics_labels(const char *key, ...)
{
	strbuf sb = {0};
	va_list ap;

	va_start(ap, key);
	for (const char *k = key; k; k = va_arg(ap, const char *)) {
		const char *v = va_arg(ap, const char *);
		if (sb.len)
			mputc(&sb, ',');
		sb_printf(&sb, "%s=\"", k);
		for (const char *p = v ? v : ""; *p; p++) {
			if (*p == '\\' || *p == '"')
				mputc(&sb, '\\');
			if (*p == '\n')
				sb_puts(&sb, "\\n");
			else
				mputc(&sb, *p);
		}
		mputc(&sb, '"');
	}
	va_end(ap);
	return sb.data ? sb_steal(&sb) : xstrdup("");
}

static bool
metrics_name_char(char c, bool first)
{
	return isalpha((unsigned char) c) || c == '_' || c == ':' ||
	       (!first && isdigit((unsigned char) c));
}

/* A label set in the exposition syntax: k="v",k="v" with escapes; returns
 * the end, or NULL. The label name "job" is the core's. */
static const char *
metrics_parse_labels(const char *p)
{
	while (*p && *p != '}') {
		const char *k = p;
		if (!metrics_name_char(*p, true) || *p == ':')
			return NULL;
		while (metrics_name_char(*p, false) && *p != ':')
			p++;
		if ((p - k == 3 && strncmp(k, "job", 3) == 0) ||
		    (p - k >= 2 && strncmp(k, "__", 2) == 0))
			return NULL;
		if (p[0] != '=' || p[1] != '"')
			return NULL;
		for (p += 2; *p != '"'; p++) {
			if (!*p || *p == '\n')
				return NULL;
			if (*p == '\\') {
				if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
					return NULL;
				p++;
			}
		}
		p++;
		if (*p == ',')
			p++;
		else if (*p != '}')
			return NULL;
	}
	return *p == '}' ? p : NULL;
}

char *
metrics_label_value(const char *labels, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = labels; p && *p;) {
		const char *k = p;
		bool match;
		strbuf v = {0};
		p = strchr(p, '=');
		if (!p || p[1] != '"')
			return NULL;
		match = (size_t) (p - k) == klen && strncmp(k, key, klen) == 0;
		for (p += 2; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1]) {
				p++;
				if (match)
					mputc(&v, *p == 'n' ? '\n' : *p);
				continue;
			}
			if (match)
				mputc(&v, *p);
		}
		if (match)
			return v.data ? sb_steal(&v) : xstrdup("");
		if (*p == '"')
			p++;
		if (*p == ',')
			p++;
	}
	return NULL;
}

/* ---- the registry (under metrics_lock) -----------------------------------
 */

static const struct known *
metrics_known(const char *name)
{
	size_t lo = 0, hi = sizeof known / sizeof known[0];

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(name, known[mid].name);
		if (c == 0)
			return &known[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* The exposed name of a core name. */
static void
metrics_full_name(const char *name, char *out, size_t n)
{
	if (strncmp(name, "process_", 8) == 0 ||
	    strncmp(name, "syncd_", 6) == 0)
		snprintf(out, n, "%s", name);
	else
		snprintf(out, n, "syncd_%s", name);
}

static size_t
metrics_family_pos(const char *name, bool *found)
{
	size_t lo = 0, hi = nfamilies;

	*found = false;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(name, families[mid].name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static family *
metrics_family(const char *name, mtype want, bool create)
{
	char full[256];
	bool found;
	size_t pos;
	const struct known *k;
	family *f;

	metrics_full_name(name, full, sizeof full);
	pos = metrics_family_pos(full, &found);
	if (found)
		return &families[pos];
	if (!create)
		return NULL;
	families = xrealloc(families, (nfamilies + 1) * sizeof *families);
	memmove(&families[pos + 1], &families[pos],
	        (nfamilies - pos) * sizeof *families);
	nfamilies++;
	f = &families[pos];
	memset(f, 0, sizeof *f);
	f->name = xstrdup(full);
	k = metrics_known(full);
	if (k) {
		f->type = k->type;
		f->help = k->help;
	} else {
		size_t len = strlen(full);
		f->type = want == M_HISTOGRAM ? M_HISTOGRAM
		          : len > 6 && strcmp(full + len - 6, "_total") == 0
		              ? M_COUNTER
		              : M_GAUGE;
		f->help = "Reported by a plugin.";
	}
	return f;
}

static sample *
metrics_sample(family *f, const char *labels, bool create)
{
	size_t lo = 0, hi = f->n;
	sample *s;

	if (!labels)
		labels = "";
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(labels, f->s[mid].labels);
		if (c == 0)
			return &f->s[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (!create)
		return NULL;
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 4;
		f->s = xrealloc(f->s, f->cap * sizeof *f->s);
	}
	memmove(&f->s[lo + 1], &f->s[lo], (f->n - lo) * sizeof *f->s);
	f->n++;
	s = &f->s[lo];
	memset(s, 0, sizeof *s);
	s->labels = xstrdup(labels);
	if (f->type == M_HISTOGRAM)
		s->counts = xcalloc(NBOUNDS, sizeof *s->counts);
	return s;
}

static void
metrics_sample_free(sample *s)
{
	free(s->labels);
	free(s->counts);
}

static void
metrics_family_free(family *f)
{
	for (size_t i = 0; i < f->n; i++)
		metrics_sample_free(&f->s[i]);
	free(f->s);
	free(f->name);
}

/* ---- updates -------------------------------------------------------------
 */

static void
metrics_update(const char *name, const char *labels, double v, bool add)
{
	family *f;

	pthread_mutex_lock(&metrics_lock);
	f = metrics_family(name, M_GAUGE, true);
	if (f->type != M_HISTOGRAM) {
		sample *s = metrics_sample(f, labels, true);
		s->value = add ? s->value + v : v;
	}
	pthread_mutex_unlock(&metrics_lock);
}

void
metrics_add(const char *name, const char *labels, double delta)
{
	metrics_update(name, labels, delta, true);
}

void
metrics_set(const char *name, const char *labels, double value)
{
	metrics_update(name, labels, value, false);
}

void
metrics_observe(const char *name, const char *labels, double value)
{
	family *f;

	pthread_mutex_lock(&metrics_lock);
	f = metrics_family(name, M_HISTOGRAM, true);
	if (f->type == M_HISTOGRAM) {
		sample *s = metrics_sample(f, labels, true);
		size_t b = 0;
		while (b < NBOUNDS && value > metrics_bounds[b])
			b++;
		if (b < NBOUNDS)
			s->counts[b]++;
		s->count++;
		s->value += value;
	}
	pthread_mutex_unlock(&metrics_lock);
}

bool
metrics_plugin(const char *plugin, const char *name, double value, bool add)
{
	const char *p = name, *brace;
	char *base, *labels, *mine;

	if (!name || !metrics_name_char(*p, true))
		return false;
	while (metrics_name_char(*p, false))
		p++;
	brace = p;
	if (*p == '{') {
		const char *end = metrics_parse_labels(p + 1);
		if (!end || end[1] != '\0')
			return false;
	} else if (*p)
		return false;
	base = xstrndup(name, (size_t) (brace - name));
	if (strncmp(base, "process_", 8) == 0) {
		free(base);
		return false; /* the core's */
	}
	mine = metrics_labels("plugin", plugin, NULL);
	if (*brace == '{' && brace[1] != '}')
		labels = xasprintf("%.*s,%s", (int) (strlen(brace) - 2),
		                   brace + 1, mine);
	else
		labels = xstrdup(mine);
	metrics_update(base, labels, value, add);
	free(base);
	free(labels);
	free(mine);
	return true;
}

/* ---- reading -------------------------------------------------------------
 */

bool
metrics_get(const char *name, const char *labels, double *value)
{
	family *f;
	sample *s = NULL;

	pthread_mutex_lock(&metrics_lock);
	f = metrics_family(name, M_GAUGE, false);
	if (f)
		s = metrics_sample(f, labels, false);
	if (s)
		*value = s->value;
	pthread_mutex_unlock(&metrics_lock);
	return s != NULL;
}

static double
metrics_fold(const char *name, bool max)
{
	family *f;
	double v = 0;

	pthread_mutex_lock(&metrics_lock);
	f = metrics_family(name, M_GAUGE, false);
	for (size_t i = 0; f && i < f->n; i++) {
		if (!max)
			v += f->s[i].value;
		else if (i == 0 || f->s[i].value > v)
			v = f->s[i].value;
	}
	pthread_mutex_unlock(&metrics_lock);
	return v;
}

double
metrics_sum(const char *name)
{
	return metrics_fold(name, false);
}

double
metrics_max(const char *name)
{
	return metrics_fold(name, true);
}

void
metrics_each(const char *name,
             void (*fn)(void *ctx, const char *labels, double value),
             void *ctx)
{
	family *f;
	size_t n = 0;
	char **labels = NULL;
	double *values = NULL;

	/* copied out: fn may read other metrics */
	pthread_mutex_lock(&metrics_lock);
	f = metrics_family(name, M_GAUGE, false);
	if (f && f->n) {
		n = f->n;
		labels = xcalloc(n, sizeof *labels);
		values = xcalloc(n, sizeof *values);
		for (size_t i = 0; i < n; i++) {
			labels[i] = xstrdup(f->s[i].labels);
			values[i] = f->s[i].value;
		}
	}
	pthread_mutex_unlock(&metrics_lock);
	for (size_t i = 0; i < n; i++) {
		fn(ctx, labels[i], values[i]);
		free(labels[i]);
	}
	free(labels);
	free(values);
}

/* ---- collectors ----------------------------------------------------------
 */

void
metrics_collector_add(metrics_collector fn, void *ctx)
{
	pthread_mutex_lock(&collect_lock);
	collectors =
	    xrealloc(collectors, (ncollectors + 1) * sizeof *collectors);
	collectors[ncollectors++] = (struct collector){fn, ctx};
	pthread_mutex_unlock(&collect_lock);
}

void
metrics_collector_remove(metrics_collector fn, void *ctx)
{
	pthread_mutex_lock(&collect_lock);
	for (size_t i = 0; i < ncollectors; i++)
		if (collectors[i].fn == fn && collectors[i].ctx == ctx) {
			memmove(&collectors[i], &collectors[i + 1],
			        (ncollectors - i - 1) * sizeof *collectors);
			ncollectors--;
			break;
		}
	pthread_mutex_unlock(&collect_lock);
}

void
metrics_collect(void)
{
	pthread_mutex_lock(&collect_lock);
	for (size_t i = 0; i < ncollectors; i++)
		collectors[i].fn(collectors[i].ctx);
	pthread_mutex_unlock(&collect_lock);
}

/* ---- the exposition ------------------------------------------------------
 */

static void
metrics_value(strbuf *out, double v)
{
	if (isnan(v))
		sb_puts(out, "NaN");
	else if (isinf(v))
		sb_puts(out, v > 0 ? "+Inf" : "-Inf");
	else if (v == (double) (int64_t) v && fabs(v) < 9e15)
		sb_printf(out, "%lld", (long long) v);
	else
		sb_printf(out, "%.17g", v);
}

static void
metrics_line(strbuf *out, const char *name, const char *suffix,
             const char *job, const char *labels, const char *extra,
             double v)
{
	sb_printf(out, "%s%s{job=\"%s\"%s%s%s%s} ", name, suffix, job,
	          *labels ? "," : "", labels, extra ? "," : "",
	          extra ? extra : "");
	metrics_value(out, v);
	mputc(out, '\n');
}

void
metrics_format(strbuf *out, const char *job)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};

	metrics_collect();
	pthread_mutex_lock(&metrics_lock);
	for (size_t i = 0; i < nfamilies; i++) {
		family *f = &families[i];
		if (f->n == 0)
			continue;
		sb_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name,
		          f->help, f->name, types[f->type]);
		for (size_t k = 0; k < f->n; k++) {
			sample *s = &f->s[k];
			uint64_t cum = 0;
			if (f->type != M_HISTOGRAM) {
				metrics_line(out, f->name, "", job, s->labels,
				             NULL, s->value);
				continue;
			}
			for (size_t b = 0; b < NBOUNDS; b++) {
				char le[32];
				cum += s->counts[b];
				snprintf(le, sizeof le, "le=\"%g\"",
				         metrics_bounds[b]);
				metrics_line(out, f->name, "_bucket", job,
				             s->labels, le, (double) cum);
			}
			metrics_line(out, f->name, "_bucket", job, s->labels,
			             "le=\"+Inf\"", (double) s->count);
			metrics_line(out, f->name, "_sum", job, s->labels,
			             NULL, s->value);
			metrics_line(out, f->name, "_count", job, s->labels,
			             NULL, (double) s->count);
		}
	}
	pthread_mutex_unlock(&metrics_lock);
}

void
metrics_reset(void)
{
	pthread_mutex_lock(&metrics_lock);
	for (size_t i = 0; i < nfamilies; i++)
		metrics_family_free(&families[i]);
	free(families);
	families = NULL;
	nfamilies = 0;
	pthread_mutex_unlock(&metrics_lock);
}
