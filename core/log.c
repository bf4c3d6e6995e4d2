/*
 * core/log.c - see log.h. Lines go to stderr, one write each, through the
 * live display (display.h) so that they never cut into its area.
 */
#include "config.h"

#include "display.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_MASK "********"

static syncd_log_level log_level = SYNCD_LEVEL_INFO;
static log_format log_fmt = LOG_FORMAT_TEXT;
/* the secrets, the job's name and whether stderr is the journal; held
 * while a line is written, so that lines from many threads come out whole
 * and in the order they were made */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char **log_secrets;
static size_t log_nsecrets;
static char *log_job;
static int log_journal = -1; /* not looked at yet */

static const char *const log_names[] = {"error", "warning", "info", "debug"};
/* sd-daemon.h's SD_ERR, SD_WARNING, SD_INFO and SD_DEBUG */
static const int log_priorities[] = {3, 4, 6, 7};

void
log_set_level(syncd_log_level level)
{
	log_level = level;
}

bool
log_parse_format(const char *s, log_format *format)
{
	if (strcasecmp(s, "text") == 0)
		*format = LOG_FORMAT_TEXT;
	else if (strcasecmp(s, "json") == 0)
		*format = LOG_FORMAT_JSON;
	else
		return false;
	return true;
}

void
log_set_format(log_format format)
{
	log_fmt = format;
	/* a log shipper reads the lines: cursor movements would be noise */
	if (format == LOG_FORMAT_JSON)
		display_disable();
}

void
log_set_job(const char *name)
{
	pthread_mutex_lock(&log_lock);
	free(log_job);
	log_job = name && *name ? xstrdup(name) : NULL;
	pthread_mutex_unlock(&log_lock);
}

void
log_reopen(void)
{
	pthread_mutex_lock(&log_lock);
	log_journal = -1;
	pthread_mutex_unlock(&log_lock);
}

/* systemd connects stderr to the journal and says so in JOURNAL_STREAM
 * ("DEV:INODE" of that stream): a stderr that was redirected since (a
 * shell's 2>file under a unit) is not the journal. */
static bool
log_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int end = 0;

	if (!v || sscanf(v, "%llu:%llu%n", &dev, &ino, &end) != 2 || v[end])
		return false;
	if (fstat(STDERR_FILENO, &st) != 0)
		return false;
	return (unsigned long long) st.st_dev == dev &&
	       (unsigned long long) st.st_ino == ino;
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

static void
log_stamp(char *out, size_t n, const struct timeval *tv)
{
	char stamp[32];
	struct tm tm;

	gmtime_r(&tv->tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, n, "%s.%03dZ", stamp, (int) (tv->tv_usec / 1000));
}

/* For people. Into the journal: the priority before each line of the
 * message, since journald makes an entry of each line (journalctl -p err
 * then finds errors), and no timestamp: journald stamps every entry as it
 * arrives and journalctl shows that stamp, so ours would be a second one
 * on every line, a few microseconds apart. */
static void
log_text(strbuf *sb, const struct timeval *tv, syncd_log_level level,
         const char *prefix, const char *msg)
{
	const char *p = msg;
	char stamp[48];

	if (!log_journal) {
		log_stamp(stamp, sizeof stamp, tv);
		sb_printf(sb, "%s %s %s%s%s\n", stamp, log_names[level],
		          prefix ? prefix : "", prefix ? " " : "", msg);
		return;
	}
	sb_printf(sb, "<%d>%s %s%s", log_priorities[level], log_names[level],
	          prefix ? prefix : "", prefix ? " " : "");
	for (;;) {
		const char *nl = strchr(p, '\n');
		sb_append(sb, p, nl ? (size_t) (nl - p) : strlen(p));
		sb_puts(sb, "\n");
		if (!nl || !nl[1])
			break;
		p = nl + 1;
		sb_printf(sb, "<%d>", log_priorities[level]);
	}
}

/* s with each byte that is not UTF-8 replaced by U+FFFD: JSON is UTF-8,
 * and a parser may refuse the whole line for one stray byte (a value
 * quoted from the source in another encoding). */
static json_object *
log_json_string(const char *s, size_t n)
{
	strbuf sb = {0};
	json_object *o;

	if (utf8_valid(s, n))
		return json_object_new_string_len(s, (int) n);
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t len = utf8_next(s + i, n - i, &cp);
		if (len == 0) {
			sb_puts(&sb, "\xef\xbf\xbd");
			i++;
		} else {
			sb_append(&sb, s + i, len);
			i += len;
		}
	}
	o = json_object_new_string_len(sb.data, (int) sb.len);
	sb_free(&sb);
	return o;
}

/* For log shippers: one object per line, json-c's escaping. The instance
 * is the prefix without its brackets, or the one a core message starts
 * with ("%s could not start", inst->prefix), taken out of the message. */
static void
log_json(strbuf *sb, const struct timeval *tv, syncd_log_level level,
         const char *prefix, const char *msg)
{
	json_object *o = json_object_new_object();
	const char *inst = NULL, *end;
	size_t ilen = 0;
	char stamp[48];

	log_stamp(stamp, sizeof stamp, tv);
	if (prefix && *prefix) {
		inst = prefix;
		ilen = strlen(prefix);
		if (ilen >= 2 && inst[0] == '[' && inst[ilen - 1] == ']') {
			inst++;
			ilen -= 2;
		}
	} else if (msg[0] == '[' && (end = strpbrk(msg + 1, "] \t\n")) &&
	           end > msg + 1 && end[0] == ']' && end[1] == ' ') {
		inst = msg + 1;
		ilen = (size_t) (end - inst);
		msg = end + 2;
	}
	json_object_object_add(o, "time", json_object_new_string(stamp));
	json_object_object_add(o, "level",
	                       json_object_new_string(log_names[level]));
	if (log_job)
		json_object_object_add(
		    o, "job", log_json_string(log_job, strlen(log_job)));
	if (inst)
		json_object_object_add(o, "instance",
		                       log_json_string(inst, ilen));
	json_object_object_add(o, "message", log_json_string(msg, strlen(msg)));
	if (log_journal)
		sb_printf(sb, "<%d>", log_priorities[level]);
	sb_puts(sb, json_object_to_json_string_ext(
	                o, JSON_C_TO_STRING_PLAIN |
	                       JSON_C_TO_STRING_NOSLASHESCAPE));
	sb_puts(sb, "\n");
	json_object_put(o);
}

void
log_vmsg(const char *prefix, syncd_log_level level, const char *fmt, va_list ap)
{
	strbuf line = {0};
	struct timeval tv;
	char *raw, *clean;

	if (!log_enabled(level))
		return;
	raw = xvasprintf(fmt, ap);
	clean = log_redact(raw);
	free(raw);

	gettimeofday(&tv, NULL);
	pthread_mutex_lock(&log_lock);
	if (log_journal < 0)
		log_journal = log_is_journal();
	if (log_fmt == LOG_FORMAT_JSON)
		log_json(&line, &tv, level, prefix, clean);
	else
		log_text(&line, &tv, level, prefix, clean);
	/* the live area, if any, is taken away and drawn again below */
	display_write(line.data, line.len);
	pthread_mutex_unlock(&log_lock);
	sb_free(&line);
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
