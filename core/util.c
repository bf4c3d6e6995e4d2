/*
 * core/util.c - see util.h.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "config.h"

#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <sys/stat.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static void
util_oom(void)
{
	fputs("syncd: out of memory\n", stderr);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		util_oom();
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		util_oom();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		util_oom();
	return p;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xvasprintf(const char *fmt, va_list ap)
{
	va_list copy;
	char *s;
	int n;

	va_copy(copy, ap);
	n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n < 0)
		util_oom();
	s = xmalloc((size_t) n + 1);
	vsnprintf(s, (size_t) n + 1, fmt, ap);
	return s;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

static void
sb_grow(strbuf *sb, size_t extra)
{
	if (sb->len + extra + 1 <= sb->cap)
		return;
	size_t cap = sb->cap ? sb->cap : 64;
	while (cap < sb->len + extra + 1)
		cap *= 2;
	sb->data = xrealloc(sb->data, cap);
	sb->cap = cap;
}

void
sb_append(strbuf *sb, const char *s, size_t n)
{
	sb_grow(sb, n);
	memcpy(sb->data + sb->len, s, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

void
sb_puts(strbuf *sb, const char *s)
{
	sb_append(sb, s, strlen(s));
}

void
sb_printf(strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	sb_grow(sb, (size_t) n);
	va_start(ap, fmt);
	vsnprintf(sb->data + sb->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t) n;
}

char *
sb_steal(strbuf *sb)
{
	char *s = sb->data ? sb->data : xstrdup("");
	sb->data = NULL;
	sb->len = sb->cap = 0;
	return s;
}

void
sb_free(strbuf *sb)
{
	free(sb->data);
	sb->data = NULL;
	sb->len = sb->cap = 0;
}

bool
parse_int64(const char *s, int64_t *out, const char **err)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || isspace((unsigned char) *s)) {
		*err = "not an integer";
		return false;
	}
	if (errno == ERANGE) {
		*err = "integer out of range";
		return false;
	}
	*out = v;
	return true;
}

bool
parse_bool(const char *s, bool *out, const char **err)
{
	static const char *yes[] = {"true", "yes", "on", "1"};
	static const char *no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	*err = "not a boolean (use true or false)";
	return false;
}

/* Splits "12.5hours" into a number and a unit; the number may have a
 * fraction. */
static bool
util_split_number(const char *s, double *num, const char **unit)
{
	char *end;

	if (!isdigit((unsigned char) *s))
		return false;
	errno = 0;
	*num = strtod(s, &end);
	if (errno == ERANGE || end == s)
		return false;
	while (*end == ' ')
		end++;
	*unit = end;
	return true;
}

typedef struct util_unit {
	const char *name;
	double factor;
} util_unit;

static bool
util_scale(const char *s, const char *default_unit, const util_unit *units,
           double *out)
{
	double num;
	const char *unit;

	if (!util_split_number(s, &num, &unit))
		return false;
	if (*unit == '\0')
		unit = default_unit;
	for (const util_unit *u = units; u->name; u++) {
		if (strcasecmp(unit, u->name) == 0) {
			*out = num * u->factor;
			return true;
		}
	}
	return false;
}

bool
parse_duration_ms(const char *s, const char *default_unit, int64_t *out,
                  const char **err)
{
	static const util_unit units[] = {
	    {"ms", 1},        {"millisecond", 1}, {"milliseconds", 1},
	    {"s", 1e3},       {"sec", 1e3},       {"second", 1e3},
	    {"seconds", 1e3}, {"m", 60e3},        {"min", 60e3},
	    {"minute", 60e3}, {"minutes", 60e3},  {"h", 3600e3},
	    {"hour", 3600e3}, {"hours", 3600e3},  {"d", 86400e3},
	    {"day", 86400e3}, {"days", 86400e3},  {NULL, 0}};
	double v;

	if (!util_scale(s, default_unit ? default_unit : "s", units, &v)) {
		*err = "not a duration (use a number with ms, s, m, h or d, "
		       "e.g. 30s, 5m, 6h, 1day)";
		return false;
	}
	if (v > 9.2e18) {
		*err = "duration out of range";
		return false;
	}
	*out = (int64_t) v;
	return true;
}

bool
parse_size(const char *s, const char *default_unit, int64_t *out,
           const char **err)
{
	static const util_unit units[] = {{"b", 1},
	                                  {"k", 1024.0},
	                                  {"kb", 1024.0},
	                                  {"kib", 1024.0},
	                                  {"m", 1048576.0},
	                                  {"mb", 1048576.0},
	                                  {"mib", 1048576.0},
	                                  {"g", 1073741824.0},
	                                  {"gb", 1073741824.0},
	                                  {"gib", 1073741824.0},
	                                  {"t", 1099511627776.0},
	                                  {"tb", 1099511627776.0},
	                                  {"tib", 1099511627776.0},
	                                  {NULL, 0}};
	double v;

	if (!util_scale(s, default_unit ? default_unit : "B", units, &v)) {
		*err = "not a size (use a number with B, KB, MB or GB, e.g. "
		       "512MB)";
		return false;
	}
	if (v > 9.2e18) {
		*err = "size out of range";
		return false;
	}
	*out = (int64_t) v;
	return true;
}

size_t
utf8_next(const char *s, size_t n, uint32_t *cp)
{
	const unsigned char *p = (const unsigned char *) s;
	unsigned char c;
	size_t len;
	uint32_t v;

	if (n == 0)
		return 0;
	c = p[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		len = 2;
		v = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3;
		v = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4;
		v = c & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (p[k] & 0x3f);
	}
	/* overlong forms, surrogates and what lies beyond Unicode */
	if ((len == 2 && v < 0x80) || (len == 3 && v < 0x800) ||
	    (len == 4 && (v < 0x10000 || v > 0x10ffff)) ||
	    (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

bool
utf8_valid(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint32_t cp;
		size_t len = utf8_next(s + i, n - i, &cp);
		if (len == 0)
			return false;
		i += len;
	}
	return true;
}

void
thread_name(const char *fmt, ...)
{
	char name[16]; /* the kernel keeps 15 characters */
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof name, fmt, ap);
	va_end(ap);
	pthread_setname_np(pthread_self(), name);
}

int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
backoff_ms(int n)
{
	int64_t ms = 1000LL << (n < 5 ? (n < 0 ? 0 : n) : 5);
	return ms < 30000 ? ms : 30000;
}

int
mkdir_p(const char *path)
{
	char *copy = xstrdup(path);
	int rc = 0;

	for (char *p = copy + 1; *p && rc == 0; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(copy, 0700) != 0 && errno != EEXIST)
				rc = -1;
			*p = '/';
		}
	if (rc == 0 && mkdir(copy, 0700) != 0 && errno != EEXIST)
		rc = -1;
	free(copy);
	return rc;
}
