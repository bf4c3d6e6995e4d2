/*
 * core/util.h - small helpers of the core: allocation that aborts on
 * exhaustion, a growable string, and the parsers of job-file values
 * (durations, sizes, booleans, integers).
 */
#ifndef SYNCD_UTIL_H
#define SYNCD_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap);

typedef struct strbuf {
	char *data;
	size_t len;
	size_t cap;
} strbuf;

void sb_append(strbuf *sb, const char *s, size_t n);
void sb_puts(strbuf *sb, const char *s);
void sb_printf(strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *sb_steal(strbuf *sb); /* returns the string ("" if empty), resets sb */
void sb_free(strbuf *sb);

/* Parsers: return true and set *out, or false and set *err to a static
 * message naming the accepted forms. */
bool parse_int64(const char *s, int64_t *out, const char **err);
bool parse_bool(const char *s, bool *out, const char **err);
/* default_unit is used for a bare number: "ms", "s", "m", "h", "d" */
bool parse_duration_ms(const char *s, const char *default_unit, int64_t *out,
                       const char **err);
/* default_unit: "B", "KB", "MB", "GB" */
bool parse_size(const char *s, const char *default_unit, int64_t *out,
                const char **err);

/* True if s is valid UTF-8 (n bytes). */
bool utf8_valid(const char *s, size_t n);
/* The character at s (n bytes left): its length, with *cp set; 0 when the
 * bytes there are not valid UTF-8 (or n is 0). */
size_t utf8_next(const char *s, size_t n, uint32_t *cp);

/* The wait before retry n (from 0) of something that failed for now: 1, 2,
 * 4, 8, 16 s, then 30 s each. */
int64_t backoff_ms(int n);

/* mkdir -p, mode 0700; 0 or -1 with errno. */
int mkdir_p(const char *path);

/* Monotonic clock in milliseconds. */
int64_t now_ms(void);
/* Milliseconds since the Unix epoch (wall clock). */
int64_t wall_ms(void);
/* Names the calling thread (top -H, ps -L, perf): at most 15 characters. */
void thread_name(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
