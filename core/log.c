/*
 * core/log.c - see log.h. Lines go to stderr, one write each, through the
 * live display (display.h) so that they never cut into its area.
 */
#include "config.h"

#include "display.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#define LOG_MASK "********"

static syncd_log_level log_level = SYNCD_LEVEL_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char **log_secrets;
static size_t log_nsecrets;

static const char *const log_names[] = {"error", "warning", "info", "debug"};

void
log_set_level(syncd_log_level level)
{
	log_level = level;
}

bool
log_enabled(syncd_log_level level)
{
	return level <= log_level;
}

bool
log_parse_level(const char *s, syncd_log_level *level)
{
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(s, log_names[i]) == 0) {
			*level = (syncd_log_level) i;
			return true;
		}
	}
	if (strcasecmp(s, "warn") == 0) {
		*level = SYNCD_LEVEL_WARNING;
		return true;
	}
	return false;
}

void
log_add_secret(const char *s)
{
	if (!s || !*s)
		return;
	pthread_mutex_lock(&log_lock);
	log_secrets =
	    xrealloc(log_secrets, (log_nsecrets + 1) * sizeof(char *));
	log_secrets[log_nsecrets++] = xstrdup(s);
	pthread_mutex_unlock(&log_lock);
}

void
log_clear_secrets(void)
{
	pthread_mutex_lock(&log_lock);
	for (size_t i = 0; i < log_nsecrets; i++)
		free(log_secrets[i]);
	free(log_secrets);
	log_secrets = NULL;
	log_nsecrets = 0;
	pthread_mutex_unlock(&log_lock);
}

/* At p, the start of a word: if the word ends in "password" (password,
 * sslpassword, ...) and "=" follows, returns the length up to the value. */
static size_t
log_password_key(const char *p)
{
	static const char key[] = "password";
	const char *q = p;
	size_t n;

	while (isalnum((unsigned char) *q) || *q == '_')
		q++;
	n = (size_t) (q - p);
	if (n < sizeof key - 1 ||
	    strncasecmp(q - (sizeof key - 1), key, sizeof key - 1) != 0)
		return 0;
	while (*q == ' ' || *q == '\t')
		q++;
	if (*q != '=')
		return 0;
	q++;
	while (*q == ' ' || *q == '\t')
		q++;
	return (size_t) (q - p);
}

/* Length of a conninfo value at p: a single-quoted string with \-escapes,
 * or everything up to the next blank. */
static size_t
log_value_len(const char *p)
{
	const char *q = p;

	if (*q == '\'') {
		q++;
		while (*q && *q != '\'') {
			if (*q == '\\' && q[1])
				q++;
			q++;
		}
		if (*q == '\'')
			q++;
		return (size_t) (q - p);
	}
	while (*q && !isspace((unsigned char) *q))
		q++;
	return (size_t) (q - p);
}

/* At p, "scheme://user:secret@": returns the offset and length of secret. */
static bool
log_uri_password(const char *p, size_t *off, size_t *len)
{
	const char *q, *colon = NULL;

	if (strncmp(p, "://", 3) != 0)
		return false;
	for (q = p + 3;
	     *q && *q != '@' && *q != '/' && !isspace((unsigned char) *q);
	     q++) {
		if (*q == ':' && !colon)
			colon = q;
	}
	if (*q != '@' || !colon)
		return false;
	*off = (size_t) (colon + 1 - p);
	*len = (size_t) (q - colon - 1);
	return true;
}

char *
log_redact(const char *msg)
{
	strbuf sb = {0};
	const char *p = msg;

	while (*p) {
		size_t klen, off, len;

		if ((p == msg ||
		     !(isalnum((unsigned char) p[-1]) || p[-1] == '_')) &&
		    (klen = log_password_key(p)) > 0) {
			sb_append(&sb, p, klen);
			p += klen;
			len = log_value_len(p);
			sb_puts(&sb, LOG_MASK);
			p += len;
			continue;
		}
		if (*p == ':' && log_uri_password(p, &off, &len)) {
			sb_append(&sb, p, off);
			sb_puts(&sb, LOG_MASK);
			p += off + len;
			continue;
		}
		sb_append(&sb, p, 1);
		p++;
	}

	/* Registered secrets, wherever they appear. */
	pthread_mutex_lock(&log_lock);
	for (size_t i = 0; i < log_nsecrets; i++) {
		const char *s = log_secrets[i];
		size_t n = strlen(s);
		char *text = sb_steal(&sb), *hit, *from = text;

		while ((hit = strstr(from, s)) != NULL) {
			sb_append(&sb, from, (size_t) (hit - from));
			sb_puts(&sb, LOG_MASK);
			from = hit + n;
		}
		sb_puts(&sb, from);
		free(text);
	}
	pthread_mutex_unlock(&log_lock);
	return sb_steal(&sb);
}

void
log_vmsg(const char *prefix, syncd_log_level level, const char *fmt, va_list ap)
{
	char stamp[32], *raw, *line, *clean;
	struct timeval tv;
	struct tm tm;

	if (!log_enabled(level))
		return;
	raw = xvasprintf(fmt, ap);
	clean = log_redact(raw);
	free(raw);

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	line = xasprintf("%s.%03dZ %s %s%s%s\n", stamp,
	                 (int) (tv.tv_usec / 1000), log_names[level],
	                 prefix ? prefix : "", prefix ? " " : "", clean);
	/* the live area, if any, is taken away and drawn again below */
	display_write(line, strlen(line));
	free(line);
	free(clean);
}

void
log_msg(const char *prefix, syncd_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(prefix, level, fmt, ap);
	va_end(ap);
}
