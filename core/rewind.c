/*
 * core/rewind.c - see rewind.h.
 */
#define _GNU_SOURCE /* timegm */
#include "config.h"

#include "log.h"
#include "plugerr.h"
#include "rewind.h"
#include "util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- TIME ---------------------------------------------------------------- */

/* n digits at *p into *v. */
static bool
rw_digits(const char **p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (!isdigit((unsigned char) **p))
			return false;
		*v = *v * 10 + (**p - '0');
	}
	return true;
}

/* ISO 8601: DATE[T ]HH:MM[:SS[.frac]] followed by Z or +-HH[[:]MM]. */
static bool
rw_parse_iso(const char *s, int64_t *at_us, bool *no_offset)
{
	const char *p = s;
	struct tm tm = {0};
	int y, mo, d, h, mi, sec = 0, oh = 0, om = 0, sign = 0;
	int64_t frac = 0, scale = 1000000;
	time_t t;

	*no_offset = false;
	if (!rw_digits(&p, 4, &y) || *p++ != '-' || !rw_digits(&p, 2, &mo) ||
	    *p++ != '-' || !rw_digits(&p, 2, &d) || (*p != 'T' && *p != ' '))
		return false;
	p++;
	if (!rw_digits(&p, 2, &h) || *p++ != ':' || !rw_digits(&p, 2, &mi))
		return false;
	if (*p == ':') {
		p++;
		if (!rw_digits(&p, 2, &sec))
			return false;
		if (*p == '.' || *p == ',') {
			p++;
			if (!isdigit((unsigned char) *p))
				return false;
			while (isdigit((unsigned char) *p)) {
				if (scale > 1) {
					scale /= 10;
					frac += (*p - '0') * scale;
				}
				p++;
			}
		}
	}
	if (*p == ' ')
		p++;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (!rw_digits(&p, 2, &oh))
			return false;
		if (*p == ':')
			p++;
		if (isdigit((unsigned char) *p) && !rw_digits(&p, 2, &om))
			return false;
	} else if (*p == '\0') {
		*no_offset = true;
		return false;
	} else
		return false;
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || sec > 60 || oh > 14 || om > 59)
		return false;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t) -1)
		return false;
	t -= (time_t) sign * (oh * 3600 + om * 60);
	*at_us = (int64_t) t * 1000000 + frac;
	return true;
}

bool
rewind_parse_time(const char *text, int64_t now_us, int64_t *at_us, char *err,
                  size_t n)
{
	bool no_offset = false;
	const char *why;
	char *copy, *end;
	int64_t ms;

	if (!text || !*text) {
		snprintf(err, n, "an empty time");
		return false;
	}
	if (rw_parse_iso(text, at_us, &no_offset))
		return true;
	if (no_offset) {
		snprintf(err, n,
		         "\"%s\" has no UTC offset: add one (e.g. "
		         "\"%sZ\" for UTC, or \"%s+08:00\")",
		         text, text, text);
		return false;
	}
	/* how long ago: "2hours", "30s", "1 day ago" */
	copy = xstrdup(text);
	end = copy + strlen(copy);
	while (end > copy && isspace((unsigned char) end[-1]))
		*--end = '\0';
	if (end - copy > 3 && strcasecmp(end - 3, "ago") == 0) {
		end -= 3;
		*end = '\0';
		while (end > copy && isspace((unsigned char) end[-1]))
			*--end = '\0';
	}
	if (!isdigit((unsigned char) copy[0]) ||
	    !parse_duration_ms(copy, "s", &ms, &why)) {
		snprintf(err, n,
		         "\"%s\" is not a time: give an ISO 8601 time with its "
		         "offset (2026-12-02T10:00:00+08:00) or how long ago "
		         "(30s, 15m, 2hours, 1day)",
		         text);
		free(copy);
		return false;
	}
	free(copy);
	*at_us = now_us - ms * 1000;
	return true;
}

const char *
rewind_format(int64_t t, char *buf, size_t n)
{
	time_t secs = (time_t) (t / 1000000);
	struct tm tm;
	char day[32];

	gmtime_r(&secs, &tm);
	strftime(day, sizeof day, "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf, n, "%s.%06lldZ", day, (long long) (t % 1000000));
	return buf;
}

/* ---- setting the streams back -------------------------------------------- */

typedef struct rw_marks {
	syncd_time_mark *m;
	size_t n, cap;
} rw_marks;

static syncd_status
rw_collect(void *ctx, const syncd_time_mark *m)
{
	rw_marks *ms = ctx;

	if (ms->n == ms->cap) {
		ms->cap = ms->cap ? ms->cap * 2 : 256;
		ms->m = xrealloc(ms->m, ms->cap * sizeof *ms->m);
	}
	ms->m[ms->n++] = *m;
	return SYNCD_OK;
}

/* Refuses the start: the job fails as configured (not retried). */
static bool
rw_refuse(job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool
rw_refuse(job *j, const char *fmt, ...)
{
	va_list ap;
	char *what;

	va_start(ap, fmt);
	what = xvasprintf(fmt, ap);
	va_end(ap);
	atomic_store(&j->invalid, true);
	job_fail(j, "--start-time %s: %s", j->start_time_text, what);
	free(what);
	return false;
}

bool
rewind_streams(job *j)
{
	const syncd_source_ops *src = &j->source->plugin->ops.source;
	const syncd_sink_ops *sink = &j->sink->plugin->ops.sink;
	syncd_lsn at[SYNCD_MAX_STREAMS];
	int64_t now = wall_ms() * 1000;
	char t1[64], t2[64];
	bool ok = true;

	if (!j->start_time || j->rewound)
		return true;
	if (j->start_time > now + 1000000)
		return rw_refuse(j, "%s is in the future (it is %s now)",
		                 rewind_format(j->start_time, t1, sizeof t1),
		                 rewind_format(now, t2, sizeof t2));
	if (!src->rewind)
		return rw_refuse(j,
		                 "%s cannot go back to an earlier position (its "
		                 "plugin has no rewind operation)",
		                 j->source->prefix);
	if (!sink->marks || !sink->rewind)
		return rw_refuse(j,
		                 "%s keeps no commit times with its progress (its "
		                 "plugin has no marks and rewind operations)",
		                 j->sink->prefix);
	/* every stream is looked at before any is changed */
	for (uint32_t i = 0; i < j->nstreams && ok; i++) {
		rw_marks ms = {0};
		const syncd_time_mark *best = NULL;
		syncd_lsn oldest = 0;
		syncd_status st;
		const char *name = job_stream_name(j, i);

		st = sink->marks(j->sink->state, i, rw_collect, &ms);
		if (st != SYNCD_OK) {
			job_fail(j, "%s stream \"%s\": could not read the time "
			            "marks: %s",
			         j->sink->prefix, name, plugerr_msg(j->sink));
			free(ms.m);
			return false;
		}
		for (size_t k = 0; k < ms.n && ms.m[k].time <= j->start_time;
		     k++)
			best = &ms.m[k];
		if (ms.n == 0)
			ok = rw_refuse(
			    j,
			    "stream \"%s\": the job has recorded no commit "
			    "times yet: a job goes back only within what it "
			    "streamed before (for slot.flush.delay.time), "
			    "never at its first start",
			    name);
		else if (!best)
			ok = rw_refuse(
			    j,
			    "stream \"%s\": %s is before the oldest time the "
			    "job can go back to, %s (its commit times start "
			    "there)",
			    name, rewind_format(j->start_time, t1, sizeof t1),
			    rewind_format(ms.m[0].time, t2, sizeof t2));
		else {
			at[i] = best->lsn;
			st = src->rewind(j->source->state, i, at[i], false,
			                 &oldest);
			if (st == SYNCD_INVALID) {
				/* the first time the source still keeps */
				const syncd_time_mark *first = NULL;
				for (size_t k = 0; k < ms.n && !first; k++)
					if (oldest && ms.m[k].lsn >= oldest)
						first = &ms.m[k];
				if (first)
					ok = rw_refuse(
					    j,
					    "stream \"%s\": %s is older than "
					    "what the source keeps; the oldest "
					    "possible time is %s (%s)",
					    name,
					    rewind_format(j->start_time, t1,
					                  sizeof t1),
					    rewind_format(first->time, t2,
					                  sizeof t2),
					    plugerr_msg(j->source));
				else
					ok = rw_refuse(
					    j,
					    "stream \"%s\": %s is older than "
					    "what the source keeps (%s)",
					    name,
					    rewind_format(j->start_time, t1,
					                  sizeof t1),
					    plugerr_msg(j->source));
			} else if (st != SYNCD_OK) {
				job_fail(j, "%s stream \"%s\": %s",
				         j->source->prefix, name,
				         plugerr_msg(j->source));
				ok = false;
			}
		}
		free(ms.m);
	}
	if (!ok)
		return false;
	for (uint32_t i = 0; i < j->nstreams; i++) {
		const char *name = job_stream_name(j, i);
		syncd_lsn oldest = 0, applied = 0;
		syncd_status st =
		    src->rewind(j->source->state, i, at[i], true, &oldest);
		if (st != SYNCD_OK) {
			job_fail(j, "%s stream \"%s\": %s", j->source->prefix,
			         name, plugerr_msg(j->source));
			return false;
		}
		st = sink->rewind(j->sink->state, i, at[i], &applied);
		if (st != SYNCD_OK) {
			job_fail(j,
			         "%s stream \"%s\": could not set the progress "
			         "back: %s",
			         j->sink->prefix, name, plugerr_msg(j->sink));
			return false;
		}
		j->rewind_applied[i] = applied;
		if (applied > at[i])
			log_info("stream \"%s\": going back to %s: applying "
			         "again what committed since, after " SYNCD_LSN_FMT,
			         name, rewind_format(j->start_time, t1, sizeof t1),
			         SYNCD_LSN_ARGS(at[i]));
		else
			log_info("stream \"%s\": the destination has applied "
			         "only up to " SYNCD_LSN_FMT
			         ", before %s: it goes on from there",
			         name, SYNCD_LSN_ARGS(applied),
			         rewind_format(j->start_time, t1, sizeof t1));
	}
	/* done once: a restart (auto_retry) goes on from the progress */
	j->rewound = true;
	return true;
}

bool
rewind_skip(job *j, uint32_t stream, syncd_lsn lsn, int64_t commit_time)
{
	syncd_lsn first;

	if (!j->start_time || !commit_time || stream >= SYNCD_MAX_STREAMS ||
	    lsn > j->rewind_applied[stream])
		return false; /* never applied: never passed over */
	first = j->rewind_first[stream];
	if (first && lsn >= first)
		return false;
	if (commit_time >= j->start_time) {
		j->rewind_first[stream] = lsn;
		return false;
	}
	return true;
}
