/*
 * udf/eval_time.c - time zones, date formats and PostgreSQL's times for the
 * evaluator (see eval_impl.h), and the date and time functions: formats in
 * Java's SimpleDateFormat pattern letters, zones as UTC+08:00 or IANA
 * names, through ICU.
 *
 * What ICU 72 does, found by trying it:
 *  - its calendar fields stop at the millisecond: a pattern with more than
 *    three S prints the milliseconds padded with zeros (SSSSSS of
 *    02:30:00.123456 is 123000) and parsing "123456" with SSSSSS keeps
 *    123 ms. Microseconds are kept (as int64) only where ICU is not
 *    involved: the PostgreSQL text reader and from_unixtime's argument,
 *    which feed unix_timestamp(..., 'us') exactly;
 *  - its Gregorian calendar is Julian before 1582-10-15; PostgreSQL's is
 *    proleptic, so every calendar here is made proleptic;
 *  - an unknown zone ID silently becomes "Etc/Unknown" (GMT): zones are
 *    checked with ucal_getCanonicalTimeZoneID (a system ID is required;
 *    IANA names are case-sensitive there);
 *  - a letter that is not a pattern letter (j, T) is no error: it prints
 *    nothing; nor is an unterminated quote. Both are rejected here, as
 *    Java's SimpleDateFormat rejects them;
 *  - parsing skips leading white space even when not lenient, and
 *    parsing a pattern with a zone or offset changes the calendar's zone.
 */
#define _GNU_SOURCE /* asprintf */
#include "eval_impl.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <unicode/ucal.h>
#include <unicode/udat.h>
#include <unicode/uenum.h>
#include <unicode/ustring.h>

#define EVAL_LOCALE    "en_US_POSIX" /* English names, ASCII digits */
#define EVAL_ZONE_MAX  64            /* UChars of a zone ID */
#define EVAL_NOW_FMT   "yyyy-MM-dd HH:mm:ss.SSS"
#define EVAL_UNIX_FMT  "yyyy-MM-dd HH:mm:ss"
#define EVAL_QUOTE_MAX 60 /* bytes of a value quoted in a message */
/* ambiguous local times: UCAL_WALLTIME_FIRST (earlier), _LAST (later) */
#define WALLTIME_REPEATED UCAL_WALLTIME_LAST
/* 0001-01-01 00:00:00 UTC in ms; |ms| below EVAL_MS_MAX (about year
 * 287000) keeps microseconds in an int64 */
#define EVAL_MS_YEAR1 (-62135596800000.0)
#define EVAL_MS_MAX   (9e15)
#define EVAL_DAY_MS   86400000.0
/* the letters ICU 72 gives a meaning in a pattern (gPatternChars) */
static const char eval_pattern_letters[] =
    "GyMdkHmsSEDFwWahKzYeugAZvcLQqVUOXxrbB";

/* ---- time zones and formats (compile time) ----------------------------- */

/* An offset's [+-]hh[:mm[:ss]] or [+-]hhmm (hours up to 23) after the
 * sign at s; seconds east of UTC into *off. */
static bool
offset_read(const char *s, const char *end, int *off)
{
	int sign = *s == '-' ? -1 : 1, h = 0, m = 0, sec = 0, n = 0;

	for (s++; s < end && udf_isdig(*s) && n < 2; s++, n++)
		h = h * 10 + (*s - '0');
	if (n == 0)
		return false;
	if (s < end && *s == ':') {
		if (!udf_digits2(&s, end, true, &m))
			return false;
		if (s < end && *s == ':' && !udf_digits2(&s, end, true, &sec))
			return false;
	} else if (s < end && (n != 2 || !udf_digits2(&s, end, false, &m)))
		return false;
	if (s != end || h > 23 || m > 59 || sec > 59)
		return false;
	*off = sign * (h * 3600 + m * 60 + sec);
	return true;
}

/* The ICU ID of a zone as written in an expression into id; a message
 * (malloc'd) if there is none. */
static char *
zone_id(const char *text, UChar *id)
{
	const char *s = text;
	UChar canon[EVAL_ZONE_MAX];
	UBool sys = false;
	UErrorCode st = U_ZERO_ERROR;
	char *msg = NULL;

	if (strcasecmp(s, "UTC") == 0 || strcasecmp(s, "GMT") == 0 ||
	    strcasecmp(s, "Z") == 0) {
		u_uastrcpy(id, "UTC");
		return NULL;
	}
	if ((strncasecmp(s, "UTC", 3) == 0 || strncasecmp(s, "GMT", 3) == 0) &&
	    (s[3] == '+' || s[3] == '-'))
		s += 3;
	if (*s == '+' || *s == '-') {
		char buf[32];
		int off, a;
		if (!offset_read(s, s + strlen(s), &off)) {
			if (asprintf(
			        &msg,
			        "invalid time zone offset '%s': write it "
			        "as UTC+08:00 or UTC-05:30 (east of UTC is "
			        "+, hours up to 23)",
			        text) < 0)
				abort();
			return msg;
		}
		a = off < 0 ? -off : off;
		if (a % 60)
			snprintf(buf, sizeof buf, "GMT%c%02d:%02d:%02d",
			         off < 0 ? '-' : '+', a / 3600, a / 60 % 60,
			         a % 60);
		else
			snprintf(buf, sizeof buf, "GMT%c%02d:%02d",
			         off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
		u_uastrcpy(id, buf);
		return NULL;
	}
	if (strlen(text) < EVAL_ZONE_MAX &&
	    strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                 "abcdefghijklmnopqrstuvwxyz"
	                 "0123456789/_-+") == strlen(text)) {
		u_uastrcpy(id, text);
		ucal_getCanonicalTimeZoneID(id, -1, canon, EVAL_ZONE_MAX, &sys,
		                            &st);
		if (U_SUCCESS(st) && sys)
			return NULL;
	}
	/* a wrong case is worth a hint */
	{
		UEnumeration *all;
		const char *name, *hint = NULL;
		st = U_ZERO_ERROR;
		all = ucal_openTimeZones(&st);
		while (U_SUCCESS(st) && (name = uenum_next(all, NULL, &st)))
			if (strcasecmp(name, text) == 0) {
				hint = name;
				break;
			}
		if (hint &&
		    asprintf(&msg, "unknown time zone '%s' (did you mean %s?)",
		             text, hint) < 0)
			abort();
		uenum_close(all);
		if (msg)
			return msg;
	}
	if (asprintf(&msg,
	             "unknown time zone '%s': write an IANA name such as "
	             "Asia/Shanghai or an offset such as UTC+08:00",
	             text) < 0)
		abort();
	return msg;
}

/* A proleptic Gregorian calendar in zone id. */
UCalendar *
udf_open_cal(const UChar *id, bool lenient, UErrorCode *st)
{
	UCalendar *c = ucal_open(id, -1, EVAL_LOCALE, UCAL_GREGORIAN, st);

	if (U_FAILURE(*st))
		return NULL;
	ucal_setGregorianChange(c, U_DATE_MIN, st);
	ucal_setAttribute(c, UCAL_LENIENT, lenient);
	ucal_setAttribute(c, UCAL_REPEATED_WALL_TIME, WALLTIME_REPEATED);
	ucal_setAttribute(c, UCAL_SKIPPED_WALL_TIME, UCAL_WALLTIME_LAST);
	if (U_FAILURE(*st)) {
		ucal_close(c);
		return NULL;
	}
	return c;
}

/* What is wrong with a pattern ICU would take silently (a malloc'd
 * message), or NULL. *zone: whether it reads a zone or an offset. */
static char *
pattern_check(const char *pat, bool *zone)
{
	bool quoted = false;
	char *msg = NULL;

	*zone = false;
	for (const char *c = pat; *c; c++) {
		if (*c == '\'') {
			quoted = !quoted;
			continue;
		}
		if (quoted ||
		    !((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')))
			continue;
		if (!strchr(eval_pattern_letters, *c)) {
			if (asprintf(
			        &msg,
			        "'%c' in the format '%s' is not a pattern "
			        "letter (put literal text in quotes, written "
			        "'' inside a string)",
			        *c, pat) < 0)
				abort();
			return msg;
		}
		if (strchr("zZOvVXx", *c))
			*zone = true;
	}
	if (quoted &&
	    asprintf(&msg, "the format '%s' has an unterminated quote", pat) <
	        0)
		abort();
	return msg;
}

/* Opens n->fmt (pattern in zone id) and n->outcal. A message, or NULL. */
static char *
open_format(cnode *n, const char *pat, const UChar *id, bool parse)
{
	UErrorCode st = U_ZERO_ERROR;
	UChar *upat, out[8];
	int32_t ulen = 0;
	char *msg;
	bool zone;

	if ((msg = pattern_check(pat, &zone)))
		return msg;
	n->reset_zone = zone;
	u_strFromUTF8(NULL, 0, &ulen, pat, -1, &st);
	if (st != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(st))
		goto icu;
	st = U_ZERO_ERROR;
	upat = udf_xmalloc(((size_t) ulen + 1) * sizeof *upat);
	u_strFromUTF8(upat, ulen + 1, NULL, pat, -1, &st);
	if (U_SUCCESS(st))
		n->fmt = udat_open(UDAT_PATTERN, UDAT_PATTERN, EVAL_LOCALE, id,
		                   -1, upat, ulen, &st);
	free(upat);
	if (U_FAILURE(st))
		goto icu;
	if (!(n->outcal = udf_open_cal(id, !parse, &st)))
		goto icu;
	udat_setCalendar(n->fmt, n->outcal);
	if (parse)
		udat_setLenient(n->fmt, false);
	/* a trial, for what ICU only finds out when formatting */
	udat_format(n->fmt, 0, out, 8, NULL, &st);
	if (st == U_BUFFER_OVERFLOW_ERROR ||
	    st == U_STRING_NOT_TERMINATED_WARNING)
		st = U_ZERO_ERROR;
	if (U_SUCCESS(st))
		return NULL;
icu:
	if (asprintf(&msg, "invalid format '%s' (%s)", pat, u_errorName(st)) <
	    0)
		abort();
	return msg;
}

/* The zone of argument a (a string literal) into id, or an error. */
static bool
zone_arg(const cnode *n, size_t a, UChar *id, size_t *err_pos, char **err)
{
	const expr *z = n->e->args[a];
	char *why;

	if (z->kind != EXPR_STRING) {
		udf_cfail(err_pos, err, z->pos,
		          "%s: the time zone must be a string literal",
		          udf_fn_names[n->e->fn]);
		return false;
	}
	if ((why = zone_id(z->text, id))) {
		udf_cfail(err_pos, err, z->pos, "%s: %s",
		          udf_fn_names[n->e->fn], why);
		free(why);
		return false;
	}
	return true;
}

/* The format of argument a (a string literal, or pat if a is past the
 * arguments) opened into n in zone id. */
static bool
format_arg(cnode *n, size_t a, const char *pat, const UChar *id, bool parse,
           size_t *err_pos, char **err)
{
	size_t pos = n->e->pos;
	char *why;

	if (a < n->e->nargs) {
		const expr *f = n->e->args[a];
		pos = f->pos;
		if (f->kind != EXPR_STRING) {
			udf_cfail(err_pos, err, pos,
			          "%s: the format must be a string literal",
			          udf_fn_names[n->e->fn]);
			return false;
		}
		pat = f->text;
	}
	if ((why = open_format(n, pat, id, parse))) {
		udf_cfail(err_pos, err, pos, "%s: %s", udf_fn_names[n->e->fn],
		          why);
		free(why);
		return false;
	}
	return true;
}

/* Compiles a call of a date and time function: its zones and formats. */
bool
udf_compile_time(udf_prog *p, cnode *n, size_t *err_pos, char **err)
{
	const expr *e = n->e;
	UChar src[EVAL_ZONE_MAX], dst[EVAL_ZONE_MAX];
	UErrorCode st = U_ZERO_ERROR;

	u_uastrcpy(src, "UTC");
	u_uastrcpy(dst, "UTC");
	switch (e->fn) {
	case FN_DATE_FORMAT:
		if (e->nargs == 4 && (!zone_arg(n, 2, src, err_pos, err) ||
		                      !zone_arg(n, 3, dst, err_pos, err)))
			return false;
		if (!format_arg(n, 1, NULL, dst, false, err_pos, err))
			return false;
		if (!(n->src = udf_open_cal(src, true, &st)))
			goto icu;
		return true;
	case FN_NOW:
		p->uses_now = true;
		if (e->nargs == 1 && !zone_arg(n, 0, dst, err_pos, err))
			return false;
		return format_arg(n, 1, EVAL_NOW_FMT, dst, false, err_pos, err);
	case FN_FROM_UNIXTIME:
		return format_arg(n, 1, EVAL_UNIX_FMT, dst, false, err_pos,
		                  err);
	case FN_UNIX_TIMESTAMP:
		if (e->nargs >= 2) {
			static const struct {
				const char *name;
				int precision;
			} precs[] = {{"s", 0},  {"second", 0},      {"0", 0},
			             {"ms", 3}, {"millisecond", 3}, {"3", 3},
			             {"us", 6}, {"microsecond", 6}, {"6", 6}};
			const expr *a = e->args[1];
			size_t i = 0;
			if (a->kind != EXPR_STRING && a->kind != EXPR_NUMBER) {
				udf_cfail(
				    err_pos, err, a->pos,
				    "unix_timestamp: the precision must be a "
				    "literal: 's', 'ms' or 'us'");
				return false;
			}
			while (i < sizeof precs / sizeof *precs &&
			       strcasecmp(a->text, precs[i].name) != 0)
				i++;
			if (i == sizeof precs / sizeof *precs) {
				udf_cfail(
				    err_pos, err, a->pos,
				    "unix_timestamp: unknown precision '%s': "
				    "write 's', 'ms' or 'us' (or second, "
				    "millisecond, microsecond, 0, 3, 6)",
				    a->text);
				return false;
			}
			n->precision = precs[i].precision;
		}
		if (e->nargs == 3)
			return format_arg(n, 2, NULL, dst, true, err_pos, err);
		return true;
	default: break;
	}
	return true;
icu:
	udf_cfail(err_pos, err, e->pos, "%s: could not open a calendar (%s)",
	          udf_fn_names[e->fn], u_errorName(st));
	return false;
}

/* ---- times ------------------------------------------------------------- */

typedef struct pgtime {
	int year, mon, day, hour, min, sec, us;
	bool has_off;
	int off; /* seconds east of UTC */
} pgtime;

static int
days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30,
	                           31, 31, 30, 31, 30, 31};
	if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		return 29;
	return days[m - 1];
}

/* Whether *s is c (then past it). */
static bool
skip(const char **s, const char *end, char c)
{
	if (*s == end || **s != c)
		return false;
	(*s)++;
	return true;
}

/* Reads a date, timestamp or timestamptz as PostgreSQL writes it (ISO
 * DateStyle: 2026-03-08, 2026-03-08 02:30:00[.123456][+05:30[:15]]; also
 * with a T, Z, an offset +0530, or no seconds). NULL, or why not. */
static const char *
pgtime_read(const char *s, size_t len, pgtime *t)
{
	static const char bad[] = "is not a date or timestamp";
	const char *end = s + len, *y0 = s;

	memset(t, 0, sizeof *t);
	if ((len == 8 && memcmp(s, "infinity", 8) == 0) ||
	    (len == 9 && (memcmp(s, "-infinity", 9) == 0 ||
	                  memcmp(s, "+infinity", 9) == 0)))
		return "is not a point in time";
	if (len >= 3 && memcmp(end - 3, " BC", 3) == 0)
		return "is a year BC, which is not supported";
	for (; s < end && udf_isdig(*s) && s - y0 < 7; s++)
		t->year = t->year * 10 + (*s - '0');
	if (s - y0 < 4 || s - y0 > 6 || !skip(&s, end, '-') ||
	    !udf_digits2(&s, end, false, &t->mon) || !skip(&s, end, '-') ||
	    !udf_digits2(&s, end, false, &t->day))
		return bad;
	if (s < end) {
		if ((!skip(&s, end, ' ') && !skip(&s, end, 'T')) ||
		    !udf_digits2(&s, end, false, &t->hour) ||
		    !udf_digits2(&s, end, true, &t->min))
			return bad;
		if (s < end && *s == ':' &&
		    !udf_digits2(&s, end, true, &t->sec))
			return bad;
		if (skip(&s, end, '.')) {
			int scale = 100000;
			if (s == end || !udf_isdig(*s))
				return bad;
			/* microseconds; further digits are cut */
			for (; s < end && udf_isdig(*s); s++, scale /= 10)
				t->us += (*s - '0') * scale;
		}
		if (s < end && *s == 'Z' && s + 1 == end)
			t->has_off = true;
		else if (s < end && (*s == '+' || *s == '-')) {
			if (!offset_read(s, end, &t->off))
				return bad;
			t->has_off = true;
		} else if (s != end)
			return bad;
	}
	if (t->year < 1 || t->mon < 1 || t->mon > 12 || t->day < 1 ||
	    t->day > days_in_month(t->year, t->mon) || t->hour > 23 ||
	    t->min > 59 || t->sec > 59)
		return "is not a valid date or time";
	if (t->year > 200000)
		return "is out of range";
	return NULL;
}

static int64_t
floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* A date or timestamp text as microseconds since 1970 UTC: a local time
 * in local's zone unless it has an offset. */
static bool
pgtime_us(udf_prog *p, const char *fn, UCalendar *local, val v, int64_t *us)
{
	UErrorCode st = U_ZERO_ERROR;
	const char *why;
	UCalendar *cal;
	pgtime t;
	UDate ms;

	if ((why = pgtime_read(v.s, v.len, &t)))
		return udf_fail(p, "%s: " QFMT " %s", fn, QARG(v), why);
	cal = t.has_off ? p->utc : local;
	ucal_clear(cal);
	ucal_setDateTime(cal, t.year, t.mon - 1, t.day, t.hour, t.min, t.sec,
	                 &st);
	ms = ucal_getMillis(cal, &st);
	if (U_FAILURE(st))
		return udf_fail(p, "%s: " QFMT " could not be converted (%s)",
		                fn, QARG(v), u_errorName(st));
	if (fabs(ms) >= EVAL_MS_MAX)
		return udf_fail(p, "%s: " QFMT " is out of range", fn, QARG(v));
	*us = (int64_t) ms * 1000 + t.us - (int64_t) t.off * 1000000;
	return true;
}

/* Formats ms (since 1970 UTC) with n's format into *out. */
static bool
format_ms(udf_prog *p, const char *fn, const cnode *n, double ms, val *out)
{
	UErrorCode st = U_ZERO_ERROR;
	int32_t cap = 64, len, blen = 0;
	UChar *u;
	char *b;

	if (!isfinite(ms) || ms >= EVAL_MS_MAX)
		return udf_fail(p, "%s: the time is out of range", fn);
	if (ms < EVAL_MS_YEAR1 - EVAL_DAY_MS)
		return udf_fail(p,
		                "%s: the time is a year BC, which is not "
		                "supported",
		                fn);
	if (ms < EVAL_MS_YEAR1 + EVAL_DAY_MS) {
		/* the day before or after 0001-01-01 UTC: BC in the zone? */
		ucal_setMillis(n->outcal, ms, &st);
		if (U_SUCCESS(st) && ucal_get(n->outcal, UCAL_ERA, &st) == 0)
			return udf_fail(p,
			                "%s: the time is a year BC, which is "
			                "not supported",
			                fn);
		st = U_ZERO_ERROR;
	}
	u = udf_arena_alloc(p, (size_t) cap * sizeof *u);
	len = udat_format(n->fmt, ms, u, cap, NULL, &st);
	if (st == U_BUFFER_OVERFLOW_ERROR) {
		st = U_ZERO_ERROR;
		cap = len + 1;
		u = udf_arena_alloc(p, (size_t) cap * sizeof *u);
		len = udat_format(n->fmt, ms, u, cap, NULL, &st);
	}
	if (U_FAILURE(st))
		return udf_fail(p, "%s: could not format the time (%s)", fn,
		                u_errorName(st));
	st = U_ZERO_ERROR;
	b = udf_arena_alloc(p, (size_t) len * 3 + 1);
	u_strToUTF8(b, len * 3 + 1, &blen, u, len, &st);
	if (U_FAILURE(st))
		return udf_fail(p, "%s: could not format the time (%s)", fn,
		                u_errorName(st));
	out->s = b;
	out->len = (size_t) blen;
	return true;
}

static double
us_to_ms(int64_t us)
{
	return (double) floor_div(us, 1000);
}

/* unix_timestamp(t, precision, fmt): t read with ICU. */
static bool
parse_with_format(udf_prog *p, const cnode *n, val v, int64_t *us)
{
	UErrorCode st = U_ZERO_ERROR;
	int32_t ulen = 0, pos = 0;
	UChar *u;
	UDate ms = 0;

	if (v.len > INT32_MAX / 2)
		return udf_fail(p, "unix_timestamp: the value is too long");
	u = udf_arena_alloc(p, (v.len + 1) * sizeof *u);
	u_strFromUTF8(u, (int32_t) v.len + 1, &ulen, v.s, (int32_t) v.len, &st);
	if (U_FAILURE(st))
		return udf_fail(p,
		                "unix_timestamp: the value is not valid UTF-8");
	if (n->reset_zone)
		ucal_setTimeZone(n->outcal, u"UTC", -1, &st);
	ucal_clear(n->outcal);
	udat_parseCalendar(n->fmt, n->outcal, u, ulen, &pos, &st);
	if (U_SUCCESS(st) && pos == ulen)
		ms = ucal_getMillis(n->outcal, &st);
	if (U_FAILURE(st) || pos != ulen)
		return udf_fail(p,
		                "unix_timestamp: " QFMT " does not match the "
		                "format '%s'",
		                QARG(v), n->e->args[2]->text);
	if (!isfinite(ms) || fabs(ms) >= EVAL_MS_MAX)
		return udf_fail(p, "unix_timestamp: " QFMT " is out of range",
		                QARG(v));
	*us = (int64_t) ms * 1000;
	return true;
}

bool
udf_fn_date_format(udf_prog *p, const cnode *n, const udf_row *row, val *out)
{
	const char *fn = udf_fn_names[n->e->fn];
	val v;
	int64_t us;

	if (!udf_ev(p, n->args[0], row, &v))
		return false;
	if (!v.s) {
		*out = v;
		return true;
	}
	return pgtime_us(p, fn, n->src, v, &us) &&
	       format_ms(p, fn, n, us_to_ms(us), out);
}

bool
udf_fn_now(udf_prog *p, const cnode *n, const udf_row *row, val *out)
{
	return format_ms(p, udf_fn_names[n->e->fn], n, floor(row->now_ms), out);
}

bool
udf_fn_from_unixtime(udf_prog *p, const cnode *n, const udf_row *row, val *out)
{
	val v;
	dec d;
	uint64_t x;
	bool frac;
	int64_t us;

	if (!udf_ev(p, n->args[0], row, &v))
		return false;
	if (!v.s) {
		out->s = NULL;
		return true;
	}
	if (!udf_dec_parse(v.s, v.len, &d))
		return udf_fail(p, "from_unixtime: " QFMT " is not a number",
		                QARG(v));
	/* |seconds| < 9e12 keeps microseconds in an int64 */
	if (!udf_dec_fixed(&d, 6, &x, &frac) || x >= 9000000000000000000ULL)
		return udf_fail(p, "from_unixtime: " QFMT " is out of range",
		                QARG(v));
	us = d.sign < 0 ? -(int64_t) x - frac : (int64_t) x;
	return format_ms(p, "from_unixtime", n, us_to_ms(us), out);
}

bool
udf_fn_unix_timestamp(udf_prog *p, const cnode *n, const udf_row *row, val *out)
{
	static const int64_t unit[] = {[0] = 1000000, [3] = 1000, [6] = 1};
	val v;
	int64_t us;
	char *b;

	if (!udf_ev(p, n->args[0], row, &v))
		return false;
	if (!v.s) {
		out->s = NULL;
		return true;
	}
	if (n->fmt ? !parse_with_format(p, n, v, &us)
	           : !pgtime_us(p, "unix_timestamp", p->utc, v, &us))
		return false;
	b = udf_arena_alloc(p, 24);
	out->len = (size_t) snprintf(
	    b, 24, "%lld", (long long) floor_div(us, unit[n->precision]));
	out->s = b;
	return true;
}
