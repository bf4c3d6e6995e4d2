/*
 * core/log.h - the core's log: levels, timestamps, an instance prefix such
 * as "[sink:dws_upsert]", and masking of secrets in every line. Lines are
 * text for people, or JSON for log shippers ([job] log.format); when
 * stderr is the journal (JOURNAL_STREAM), each line starts with its
 * sd-daemon priority ("<3>" error ... "<7>" debug) for journalctl -p.
 */
#ifndef SYNCD_LOG_H
#define SYNCD_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include <syncd/host.h>

typedef enum log_format {
	LOG_FORMAT_TEXT, /* "2024-05-01T12:00:00.123Z info [sink:x] ..." */
	LOG_FORMAT_JSON  /* {"time":...,"level":...,"job":...,"instance":
	                    ...,"message":...}: turns the live display off */
} log_format;

void log_set_level(syncd_log_level level);
bool log_parse_format(const char *s, log_format *format);
void log_set_format(log_format format);
/* The job's name, in JSON lines ("job"); NULL for none. */
void log_set_job(const char *name);
/* stderr was redirected: look again whether it is the journal. */
void log_reopen(void);
bool log_parse_level(const char *s, syncd_log_level *level);
bool log_enabled(syncd_log_level level);

/* Mask every later occurrence of s (a secret option's value). */
void log_add_secret(const char *s);
void log_clear_secrets(void);

/* Returns a copy of msg with passwords in conninfo strings and URIs and the
 * registered secrets replaced by "********". Caller frees. */
char *log_redact(const char *msg);

void log_msg(const char *prefix, syncd_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(const char *prefix, syncd_log_level level, const char *fmt,
              va_list ap);

#define log_error(...)   log_msg(NULL, SYNCD_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(NULL, SYNCD_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...)    log_msg(NULL, SYNCD_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)   log_msg(NULL, SYNCD_LEVEL_DEBUG, __VA_ARGS__)

#endif
