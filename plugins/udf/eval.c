/*
 * udf/eval.c - see eval.h. A compiled program is a tree parallel to the
 * expression (cnode) holding what compiling resolved: column indexes, the
 * ICU formats and calendars (opened once, reused for every row), the
 * precision of unix_timestamp. Values produced while evaluating live in an
 * arena that each udf_eval() resets; once it has grown to a row's needs,
 * evaluating allocates nothing. A program is not thread-safe (ICU's
 * formats and calendars are not).
 *
 * Choices beyond eval.h:
 *  - numbers are decimal text ([+-]digits[.digits][e[+-]digits]; no nan,
 *    inf, hex, white space), compared exactly (not through double);
 *  - truth values are written 'true' and 'false'; a condition is true for
 *    'true', 't' or a non-zero number, false for 'false', 'f' or zero (any
 *    case), anything else is an error;
 *  - concat() of only NULLs is '' (as PostgreSQL's);
 *  - if any column the expression reads is unchanged (TOAST), the result
 *    is UDF_UNCHANGED, whatever branch would have been taken;
 *  - substring() of text that is not valid UTF-8 is an error;
 *  - unix_timestamp() rounds toward negative infinity (floor), also for
 *    times before 1970;
 *  - as PostgreSQL does: an ambiguous local time (DST ends) is the later
 *    instant (standard time), a skipped one (DST starts) is read with the
 *    offset before the gap (so 02:30 is 03:30 daylight time).
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
#define _GNU_SOURCE /* vasprintf */
#include "eval.h"

#include <math.h>
#include <stdarg.h>
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

typedef struct val {
	const char *s; /* NULL: SQL NULL */
	size_t len;
} val;

typedef struct cnode cnode;
struct cnode {
	const expr *e;
	size_t nargs;
	cnode **args;
	size_t len; /* STRING, NUMBER: strlen(text) */
	size_t col; /* COLUMN: index in the program's columns */
	/* date functions */
	UDateFormat *fmt;  /* output format (or input, unix_timestamp) */
	UCalendar *outcal; /* fmt's calendar (its zone), or the parse one */
	UCalendar *src;    /* local times of date_format's source zone */
	bool reset_zone;   /* unix_timestamp: fmt parses a zone */
	int precision;     /* unix_timestamp: 0, 3, 6 */
};

typedef struct arena_blk {
	struct arena_blk *next;
	size_t cap, used;
	max_align_t data[];
} arena_blk;

struct udf_prog {
	expr *root;
	cnode *top;
	const char **cols; /* names in root */
	size_t ncols;
	val *colv; /* this row's values of cols */
	bool uses_now;
	UCalendar *utc; /* texts with an offset; unix_timestamp's */
	arena_blk *arena;
	char err[512];
};

static const val val_true = {"true", 4}, val_false = {"false", 5};

/* ---- memory ------------------------------------------------------------ */

static void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

static void *
arena_alloc(udf_prog *p, size_t n)
{
	arena_blk *b = p->arena;
	void *r;

	if (n > SIZE_MAX / 4)
		abort();
	n = (n + 15) & ~(size_t) 15;
	if (!b || b->cap - b->used < n) {
		size_t cap = b ? b->cap * 2 : 4096;
		if (cap < n)
			cap = n;
		b = xmalloc(sizeof *b + cap);
		b->next = p->arena;
		b->cap = cap;
		b->used = 0;
		p->arena = b;
	}
	r = (char *) b->data + b->used;
	b->used += n;
	return r;
}

/* Empties the arena, keeping one block as large as all of them were. */
static void
arena_reset(udf_prog *p)
{
	arena_blk *b = p->arena, *next;
	size_t total = 0;

	if (!b)
		return;
	if (!b->next) {
		b->used = 0;
		return;
	}
	for (; b; b = next) {
		next = b->next;
		total += b->cap;
		free(b);
	}
	b = xmalloc(sizeof *b + total);
	b->next = NULL;
	b->cap = total;
	b->used = 0;
	p->arena = b;
}

/* ---- messages ---------------------------------------------------------- */

/* How much of v goes into a message: at most EVAL_QUOTE_MAX bytes, not
 * cutting a UTF-8 sequence. */
static int
qlen(val v)
{
	size_t n = v.len;

	if (n > EVAL_QUOTE_MAX) {
		n = EVAL_QUOTE_MAX;
		while (n > 0 && ((unsigned char) v.s[n] & 0xc0) == 0x80)
			n--;
	}
	return (int) n;
}

#define QFMT    "'%.*s%s'"
#define QARG(v) qlen(v), (v).s, ((size_t) qlen(v) < (v).len ? "..." : "")

/* Sets the message of UDF_ERROR; returns false. */
static bool __attribute__((format(printf, 2, 3)))
fail(udf_prog *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, sizeof p->err, fmt, ap);
	va_end(ap);
	return false;
}

/* A compile error at pos; returns NULL. */
static cnode *__attribute__((format(printf, 4, 5)))
cfail(size_t *err_pos, char **err, size_t pos, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(err, fmt, ap) < 0)
		abort();
	va_end(ap);
	*err_pos = pos;
	return NULL;
}

/* ---- numbers ----------------------------------------------------------- */

/* A decimal number: sign * 0.D * 10^exp, D the digits from first to last
 * (both non-zero, '.' skipped). */
typedef struct dec {
	int sign; /* -1, 0 (the number is zero), 1 */
	long exp;
	const char *first, *last;
} dec;

static bool
isdig(char c)
{
	return c >= '0' && c <= '9';
}

/* ":dd" (colon true) or "dd" at *s into *v, advancing. */
static bool
digits2(const char **s, const char *end, bool colon, int *v)
{
	const char *c = *s + colon;

	if (end - *s < 2 + colon || (colon && **s != ':') || !isdig(c[0]) ||
	    !isdig(c[1]))
		return false;
	*v = (c[0] - '0') * 10 + (c[1] - '0');
	*s = c + 2;
	return true;
}

static bool
dec_parse(const char *s, size_t len, dec *d)
{
	const char *end = s + len, *m;
	long intdigits = 0, seen = 0, lead = 0, e = 0;
	bool digits = false, esign = false;

	d->sign = 1;
	d->first = d->last = NULL;
	if (s < end && (*s == '+' || *s == '-'))
		d->sign = *s++ == '-' ? -1 : 1;
	for (m = s; s < end && isdig(*s); s++, intdigits++)
		digits = true;
	if (s < end && *s == '.')
		for (s++; s < end && isdig(*s); s++)
			digits = true;
	if (!digits)
		return false;
	if (s < end && (*s == 'e' || *s == 'E')) {
		s++;
		if (s < end && (*s == '+' || *s == '-'))
			esign = *s++ == '-';
		if (s == end || !isdig(*s))
			return false;
		for (; s < end && isdig(*s); s++)
			if (e < 100000000)
				e = e * 10 + (*s - '0');
		if (esign)
			e = -e;
	}
	if (s != end)
		return false;
	/* the digits: m up to the mantissa's end */
	for (const char *c = m; c < end && (isdig(*c) || *c == '.'); c++) {
		if (*c == '.')
			continue;
		seen++;
		if (*c != '0') {
			if (!d->first) {
				d->first = c;
				lead = seen - 1;
			}
			d->last = c;
		}
	}
	if (!d->first) {
		d->sign = 0;
		d->exp = 0;
		return true;
	}
	d->exp = intdigits - lead + e;
	return true;
}

/* The next digit of d after *c (skipping '.'), or -1 past the last. */
static int
dec_next(const dec *d, const char **c)
{
	if (!*c || *c > d->last)
		return -1;
	while (**c == '.')
		(*c)++;
	return *(*c)++ - '0';
}

static int
dec_cmp(const dec *a, const dec *b)
{
	const char *ca = a->first, *cb = b->first;

	if (a->sign != b->sign)
		return a->sign < b->sign ? -1 : 1;
	if (a->sign == 0)
		return 0;
	if (a->exp != b->exp)
		return (a->exp < b->exp ? -1 : 1) * a->sign;
	for (;;) {
		int x = dec_next(a, &ca), y = dec_next(b, &cb);
		if (x != y)
			/* -1 past the end: the shorter one is smaller */
			return (x < y ? -1 : 1) * a->sign;
		if (x < 0)
			return 0;
	}
}

/* |d| * 10^scale: its integer part into *v and whether a fraction
 * remains; false if that does not fit 18 digits. */
static bool
dec_fixed(const dec *d, int scale, uint64_t *v, bool *frac)
{
	const char *c = d->first;
	long n;

	*v = 0;
	*frac = false;
	if (d->sign == 0)
		return true;
	n = d->exp + scale; /* digits before the point */
	if (n > 18)
		return false;
	for (long i = 0; i < n; i++) {
		int x = dec_next(d, &c);
		*v = *v * 10 + (uint64_t) (x < 0 ? 0 : x);
	}
	*frac = dec_next(d, &c) >= 0 || n < 0;
	return true;
}

/* ---- truth values ------------------------------------------------------ */

/* 1 true, 0 false, -1 NULL; -2 (and the message) if v is no condition. */
static int
truth(udf_prog *p, const char *fn, val v)
{
	dec d;

	if (!v.s)
		return -1;
	if ((v.len == 4 && strncasecmp(v.s, "true", 4) == 0) ||
	    (v.len == 1 && (v.s[0] == 't' || v.s[0] == 'T')))
		return 1;
	if ((v.len == 5 && strncasecmp(v.s, "false", 5) == 0) ||
	    (v.len == 1 && (v.s[0] == 'f' || v.s[0] == 'F')))
		return 0;
	if (dec_parse(v.s, v.len, &d))
		return d.sign != 0;
	fail(p,
	     "%s: " QFMT " is not a condition (true, false, t, f or a "
	     "number)",
	     fn, QARG(v));
	return -2;
}

static val
truth_val(bool b)
{
	return b ? val_true : val_false;
}

/* ---- time zones and formats (compile time) ----------------------------- */

/* An offset's [+-]hh[:mm[:ss]] or [+-]hhmm (hours up to 23) after the
 * sign at s; seconds east of UTC into *off. */
static bool
offset_read(const char *s, const char *end, int *off)
{
	int sign = *s == '-' ? -1 : 1, h = 0, m = 0, sec = 0, n = 0;

	for (s++; s < end && isdig(*s) && n < 2; s++, n++)
		h = h * 10 + (*s - '0');
	if (n == 0)
		return false;
	if (s < end && *s == ':') {
		if (!digits2(&s, end, true, &m))
			return false;
		if (s < end && *s == ':' && !digits2(&s, end, true, &sec))
			return false;
	} else if (s < end && (n != 2 || !digits2(&s, end, false, &m)))
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
static UCalendar *
open_cal(const UChar *id, bool lenient, UErrorCode *st)
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
	upat = xmalloc(((size_t) ulen + 1) * sizeof *upat);
	u_strFromUTF8(upat, ulen + 1, NULL, pat, -1, &st);
	if (U_SUCCESS(st))
		n->fmt = udat_open(UDAT_PATTERN, UDAT_PATTERN, EVAL_LOCALE, id,
		                   -1, upat, ulen, &st);
	free(upat);
	if (U_FAILURE(st))
		goto icu;
	if (!(n->outcal = open_cal(id, !parse, &st)))
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

/* ---- compiling --------------------------------------------------------- */

static const char *const fn_names[] = {[FN_SUBSTRING] = "substring",
                                       [FN_DATE_FORMAT] = "date_format",
                                       [FN_NOW] = "now",
                                       [FN_IF] = "if",
                                       [FN_CONCAT] = "concat",
                                       [FN_FROM_UNIXTIME] = "from_unixtime",
                                       [FN_UNIX_TIMESTAMP] = "unix_timestamp"};

static void
cnode_free(cnode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nargs; i++)
		cnode_free(n->args[i]);
	free(n->args);
	if (n->fmt)
		udat_close(n->fmt);
	if (n->outcal)
		ucal_close(n->outcal);
	if (n->src)
		ucal_close(n->src);
	free(n);
}

/* The zone of argument a (a string literal) into id, or an error. */
static bool
zone_arg(const cnode *n, size_t a, UChar *id, size_t *err_pos, char **err)
{
	const expr *z = n->e->args[a];
	char *why;

	if (z->kind != EXPR_STRING) {
		cfail(err_pos, err, z->pos,
		      "%s: the time zone must be a string literal",
		      fn_names[n->e->fn]);
		return false;
	}
	if ((why = zone_id(z->text, id))) {
		cfail(err_pos, err, z->pos, "%s: %s", fn_names[n->e->fn], why);
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
			cfail(err_pos, err, pos,
			      "%s: the format must be a string literal",
			      fn_names[n->e->fn]);
			return false;
		}
		pat = f->text;
	}
	if ((why = open_format(n, pat, id, parse))) {
		cfail(err_pos, err, pos, "%s: %s", fn_names[n->e->fn], why);
		free(why);
		return false;
	}
	return true;
}

/* A literal position or length of substring must be a non-negative
 * integer. */
static bool
index_literal_ok(const expr *a)
{
	dec d;
	uint64_t v;
	bool frac;

	if (a->kind != EXPR_STRING && a->kind != EXPR_NUMBER)
		return true;
	if (!dec_parse(a->text, strlen(a->text), &d) || d.sign < 0)
		return false;
	return !dec_fixed(&d, 0, &v, &frac) || !frac;
}

static bool
compile_call(udf_prog *p, cnode *n, size_t *err_pos, char **err)
{
	const expr *e = n->e;
	UChar src[EVAL_ZONE_MAX], dst[EVAL_ZONE_MAX];
	UErrorCode st = U_ZERO_ERROR;

	u_uastrcpy(src, "UTC");
	u_uastrcpy(dst, "UTC");
	switch (e->fn) {
	case FN_SUBSTRING:
		for (size_t i = 1; i < e->nargs; i++)
			if (!index_literal_ok(e->args[i])) {
				cfail(err_pos, err, e->args[i]->pos,
				      "substring: the %s must be a "
				      "non-negative integer",
				      i == 1 ? "position" : "length");
				return false;
			}
		return true;
	case FN_DATE_FORMAT:
		if (e->nargs == 4 && (!zone_arg(n, 2, src, err_pos, err) ||
		                      !zone_arg(n, 3, dst, err_pos, err)))
			return false;
		if (!format_arg(n, 1, NULL, dst, false, err_pos, err))
			return false;
		if (!(n->src = open_cal(src, true, &st)))
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
				cfail(err_pos, err, a->pos,
				      "unix_timestamp: the precision must be a "
				      "literal: 's', 'ms' or 'us'");
				return false;
			}
			while (i < sizeof precs / sizeof *precs &&
			       strcasecmp(a->text, precs[i].name) != 0)
				i++;
			if (i == sizeof precs / sizeof *precs) {
				cfail(err_pos, err, a->pos,
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
	case FN_IF:
		if (e->args[0]->kind == EXPR_STRING ||
		    e->args[0]->kind == EXPR_NUMBER) {
			val v = {e->args[0]->text, strlen(e->args[0]->text)};
			if (truth(p, "if", v) == -2) {
				cfail(err_pos, err, e->args[0]->pos, "%s",
				      p->err);
				return false;
			}
		}
		return true;
	case FN_CONCAT: return true;
	}
	return true;
icu:
	cfail(err_pos, err, e->pos, "%s: could not open a calendar (%s)",
	      fn_names[e->fn], u_errorName(st));
	return false;
}

static cnode *
compile(udf_prog *p, const expr *e, size_t *err_pos, char **err)
{
	cnode *n = calloc(1, sizeof *n);

	if (!n)
		abort();
	n->e = e;
	if (e->nargs) {
		n->args = calloc(e->nargs, sizeof *n->args);
		if (!n->args)
			abort();
	}
	/* children first: their errors come before the call's */
	for (; n->nargs < e->nargs; n->nargs++)
		if (!(n->args[n->nargs] =
		          compile(p, e->args[n->nargs], err_pos, err)))
			goto bad;
	switch (e->kind) {
	case EXPR_STRING:
	case EXPR_NUMBER: n->len = strlen(e->text); break;
	case EXPR_COLUMN:
		for (n->col = 0; n->col < p->ncols; n->col++)
			if (strcmp(p->cols[n->col], e->text) == 0)
				break;
		if (n->col == p->ncols) {
			p->cols =
			    realloc(p->cols, (p->ncols + 1) * sizeof *p->cols);
			if (!p->cols)
				abort();
			p->cols[p->ncols++] = e->text;
		}
		break;
	case EXPR_CALL:
		if (!compile_call(p, n, err_pos, err))
			goto bad;
		break;
	default: break;
	}
	return n;
bad:
	cnode_free(n);
	return NULL;
}

udf_prog *
udf_compile(expr *e, size_t *err_pos, char **err)
{
	udf_prog *p = calloc(1, sizeof *p);
	UErrorCode st = U_ZERO_ERROR;

	if (!p)
		abort();
	p->root = e;
	*err = NULL;
	if (!e) {
		cfail(err_pos, err, 0, "no expression");
		goto bad;
	}
	if (!(p->utc = open_cal(u"UTC", true, &st))) {
		cfail(err_pos, err, 0, "could not open a calendar (%s)",
		      u_errorName(st));
		goto bad;
	}
	if (!(p->top = compile(p, e, err_pos, err)))
		goto bad;
	p->colv = calloc(p->ncols ? p->ncols : 1, sizeof *p->colv);
	if (!p->colv)
		abort();
	return p;
bad:
	udf_prog_free(p);
	return NULL;
}

void
udf_prog_free(udf_prog *p)
{
	arena_blk *b, *next;

	if (!p)
		return;
	cnode_free(p->top);
	if (p->utc)
		ucal_close(p->utc);
	for (b = p->arena; b; b = next) {
		next = b->next;
		free(b);
	}
	free(p->colv);
	free(p->cols);
	expr_free(p->root);
	free(p);
}

size_t
udf_prog_columns(const udf_prog *p, const char *const **names)
{
	*names = p->cols;
	return p->ncols;
}

bool
udf_prog_uses_now(const udf_prog *p)
{
	return p->uses_now;
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
	for (; s < end && isdig(*s) && s - y0 < 7; s++)
		t->year = t->year * 10 + (*s - '0');
	if (s - y0 < 4 || s - y0 > 6 || !skip(&s, end, '-') ||
	    !digits2(&s, end, false, &t->mon) || !skip(&s, end, '-') ||
	    !digits2(&s, end, false, &t->day))
		return bad;
	if (s < end) {
		if ((!skip(&s, end, ' ') && !skip(&s, end, 'T')) ||
		    !digits2(&s, end, false, &t->hour) ||
		    !digits2(&s, end, true, &t->min))
			return bad;
		if (s < end && *s == ':' && !digits2(&s, end, true, &t->sec))
			return bad;
		if (skip(&s, end, '.')) {
			int scale = 100000;
			if (s == end || !isdig(*s))
				return bad;
			/* microseconds; further digits are cut */
			for (; s < end && isdig(*s); s++, scale /= 10)
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
		return fail(p, "%s: " QFMT " %s", fn, QARG(v), why);
	cal = t.has_off ? p->utc : local;
	ucal_clear(cal);
	ucal_setDateTime(cal, t.year, t.mon - 1, t.day, t.hour, t.min, t.sec,
	                 &st);
	ms = ucal_getMillis(cal, &st);
	if (U_FAILURE(st))
		return fail(p, "%s: " QFMT " could not be converted (%s)", fn,
		            QARG(v), u_errorName(st));
	if (fabs(ms) >= EVAL_MS_MAX)
		return fail(p, "%s: " QFMT " is out of range", fn, QARG(v));
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
		return fail(p, "%s: the time is out of range", fn);
	if (ms < EVAL_MS_YEAR1 - EVAL_DAY_MS)
		return fail(p,
		            "%s: the time is a year BC, which is not "
		            "supported",
		            fn);
	if (ms < EVAL_MS_YEAR1 + EVAL_DAY_MS) {
		/* the day before or after 0001-01-01 UTC: BC in the zone? */
		ucal_setMillis(n->outcal, ms, &st);
		if (U_SUCCESS(st) && ucal_get(n->outcal, UCAL_ERA, &st) == 0)
			return fail(p,
			            "%s: the time is a year BC, which is "
			            "not supported",
			            fn);
		st = U_ZERO_ERROR;
	}
	u = arena_alloc(p, (size_t) cap * sizeof *u);
	len = udat_format(n->fmt, ms, u, cap, NULL, &st);
	if (st == U_BUFFER_OVERFLOW_ERROR) {
		st = U_ZERO_ERROR;
		cap = len + 1;
		u = arena_alloc(p, (size_t) cap * sizeof *u);
		len = udat_format(n->fmt, ms, u, cap, NULL, &st);
	}
	if (U_FAILURE(st))
		return fail(p, "%s: could not format the time (%s)", fn,
		            u_errorName(st));
	st = U_ZERO_ERROR;
	b = arena_alloc(p, (size_t) len * 3 + 1);
	u_strToUTF8(b, len * 3 + 1, &blen, u, len, &st);
	if (U_FAILURE(st))
		return fail(p, "%s: could not format the time (%s)", fn,
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
		return fail(p, "unix_timestamp: the value is too long");
	u = arena_alloc(p, (v.len + 1) * sizeof *u);
	u_strFromUTF8(u, (int32_t) v.len + 1, &ulen, v.s, (int32_t) v.len, &st);
	if (U_FAILURE(st))
		return fail(p, "unix_timestamp: the value is not valid UTF-8");
	if (n->reset_zone)
		ucal_setTimeZone(n->outcal, u"UTC", -1, &st);
	ucal_clear(n->outcal);
	udat_parseCalendar(n->fmt, n->outcal, u, ulen, &pos, &st);
	if (U_SUCCESS(st) && pos == ulen)
		ms = ucal_getMillis(n->outcal, &st);
	if (U_FAILURE(st) || pos != ulen)
		return fail(p,
		            "unix_timestamp: " QFMT " does not match the "
		            "format '%s'",
		            QARG(v), n->e->args[2]->text);
	if (!isfinite(ms) || fabs(ms) >= EVAL_MS_MAX)
		return fail(p, "unix_timestamp: " QFMT " is out of range",
		            QARG(v));
	*us = (int64_t) ms * 1000;
	return true;
}

/* ---- evaluating -------------------------------------------------------- */

static bool ev(udf_prog *p, const cnode *n, const udf_row *row, val *out);

/* An argument that must be a non-negative integer, clipped to SIZE_MAX. */
static bool
index_val(udf_prog *p, const char *what, val v, size_t *out)
{
	dec d;
	uint64_t x;
	bool frac;

	if (!dec_parse(v.s, v.len, &d) || d.sign < 0)
		return fail(p,
		            "substring: the %s " QFMT " is not a "
		            "non-negative integer",
		            what, QARG(v));
	if (!dec_fixed(&d, 0, &x, &frac)) {
		*out = SIZE_MAX;
		return true;
	}
	if (frac)
		return fail(p,
		            "substring: the %s " QFMT " is not a "
		            "non-negative integer",
		            what, QARG(v));
	*out = x > SIZE_MAX ? SIZE_MAX : (size_t) x;
	return true;
}

/* The length of the UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	uint32_t c;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] < 0xc2)
		return 0;
	len = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : s[0] < 0xf5 ? 4 : 0;
	if (!len || len > n)
		return 0;
	c = s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (len == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	return len;
}

static bool
fn_substring(udf_prog *p, const cnode *n, const udf_row *row, val *out)
{
	val s, a;
	size_t pos, len = SIZE_MAX, i = 0, k = 0, from, to;

	if (!ev(p, n->args[0], row, &s))
		return false;
	if (!ev(p, n->args[1], row, &a))
		return false;
	if (!a.s || !s.s)
		goto null;
	if (!index_val(p, "position", a, &pos))
		return false;
	if (n->nargs == 3) {
		if (!ev(p, n->args[2], row, &a))
			return false;
		if (!a.s)
			goto null;
		if (!index_val(p, "length", a, &len))
			return false;
	}
	/* all of it is checked, not only the part taken */
	from = to = s.len;
	for (; i < s.len; k++) {
		size_t l = utf8_seq((const unsigned char *) s.s + i, s.len - i);
		if (!l)
			return fail(p, "substring: the value is not valid "
			               "UTF-8");
		if (k == pos)
			from = i;
		if (len != SIZE_MAX && pos < SIZE_MAX - len && k == pos + len)
			to = i;
		i += l;
	}
	if (to < from)
		to = from;
	out->s = s.s + from;
	out->len = to - from;
	return true;
null:
	out->s = NULL;
	return true;
}

static bool
fn_from_unixtime(udf_prog *p, const cnode *n, const udf_row *row, val *out)
{
	val v;
	dec d;
	uint64_t x;
	bool frac;
	int64_t us;

	if (!ev(p, n->args[0], row, &v))
		return false;
	if (!v.s) {
		out->s = NULL;
		return true;
	}
	if (!dec_parse(v.s, v.len, &d))
		return fail(p, "from_unixtime: " QFMT " is not a number",
		            QARG(v));
	/* |seconds| < 9e12 keeps microseconds in an int64 */
	if (!dec_fixed(&d, 6, &x, &frac) || x >= 9000000000000000000ULL)
		return fail(p, "from_unixtime: " QFMT " is out of range",
		            QARG(v));
	us = d.sign < 0 ? -(int64_t) x - frac : (int64_t) x;
	return format_ms(p, "from_unixtime", n, us_to_ms(us), out);
}

static bool
fn_unix_timestamp(udf_prog *p, const cnode *n, const udf_row *row, val *out)
{
	static const int64_t unit[] = {[0] = 1000000, [3] = 1000, [6] = 1};
	val v;
	int64_t us;
	char *b;

	if (!ev(p, n->args[0], row, &v))
		return false;
	if (!v.s) {
		out->s = NULL;
		return true;
	}
	if (n->fmt ? !parse_with_format(p, n, v, &us)
	           : !pgtime_us(p, "unix_timestamp", p->utc, v, &us))
		return false;
	b = arena_alloc(p, 24);
	out->len = (size_t) snprintf(
	    b, 24, "%lld", (long long) floor_div(us, unit[n->precision]));
	out->s = b;
	return true;
}

static bool
fn_concat(udf_prog *p, const cnode *n, const udf_row *row, val *out)
{
	val *a = arena_alloc(p, n->nargs * sizeof *a);
	size_t len = 0;
	char *b;

	for (size_t i = 0; i < n->nargs; i++) {
		if (!ev(p, n->args[i], row, &a[i]))
			return false;
		if (a[i].s)
			len += a[i].len;
	}
	b = arena_alloc(p, len + 1);
	out->s = b;
	out->len = len;
	for (size_t i = 0; i < n->nargs; i++)
		if (a[i].s) {
			memcpy(b, a[i].s, a[i].len);
			b += a[i].len;
		}
	return true;
}

static bool
ev_call(udf_prog *p, const cnode *n, const udf_row *row, val *out)
{
	const char *fn = fn_names[n->e->fn];
	val v;
	int64_t us;
	int c;

	switch (n->e->fn) {
	case FN_SUBSTRING: return fn_substring(p, n, row, out);
	case FN_DATE_FORMAT:
		if (!ev(p, n->args[0], row, &v))
			return false;
		if (!v.s) {
			*out = v;
			return true;
		}
		return pgtime_us(p, fn, n->src, v, &us) &&
		       format_ms(p, fn, n, us_to_ms(us), out);
	case FN_NOW: return format_ms(p, fn, n, floor(row->now_ms), out);
	case FN_IF:
		if (!ev(p, n->args[0], row, &v))
			return false;
		if ((c = truth(p, fn, v)) == -2)
			return false;
		return ev(p, n->args[c == 1 ? 1 : 2], row, out);
	case FN_CONCAT: return fn_concat(p, n, row, out);
	case FN_FROM_UNIXTIME: return fn_from_unixtime(p, n, row, out);
	case FN_UNIX_TIMESTAMP: return fn_unix_timestamp(p, n, row, out);
	}
	return fail(p, "unknown function");
}

static bool
ev_cmp(udf_prog *p, const cnode *n, const udf_row *row, val *out)
{
	val a, b;
	dec da, db;
	int c;

	if (!ev(p, n->args[0], row, &a) || !ev(p, n->args[1], row, &b))
		return false;
	if (!a.s || !b.s) {
		out->s = NULL;
		return true;
	}
	if (dec_parse(a.s, a.len, &da) && dec_parse(b.s, b.len, &db))
		c = dec_cmp(&da, &db);
	else {
		c = memcmp(a.s, b.s, a.len < b.len ? a.len : b.len);
		if (c == 0)
			c = a.len < b.len ? -1 : a.len > b.len;
	}
	switch (n->e->op) {
	case OP_EQ: *out = truth_val(c == 0); break;
	case OP_NE: *out = truth_val(c != 0); break;
	case OP_LT: *out = truth_val(c < 0); break;
	case OP_LE: *out = truth_val(c <= 0); break;
	case OP_GT: *out = truth_val(c > 0); break;
	case OP_GE: *out = truth_val(c >= 0); break;
	}
	return true;
}

/* and / or: three-valued; the right side is not evaluated when the left
 * decides (false and ..., true or ...). */
static bool
ev_logic(udf_prog *p, const cnode *n, const udf_row *row, val *out)
{
	bool is_and = n->e->kind == EXPR_AND;
	const char *fn = is_and ? "and" : "or";
	int decides = is_and ? 0 : 1, l, r;
	val v;

	if (!ev(p, n->args[0], row, &v) || (l = truth(p, fn, v)) == -2)
		return false;
	if (l == decides) {
		*out = truth_val(l);
		return true;
	}
	if (!ev(p, n->args[1], row, &v) || (r = truth(p, fn, v)) == -2)
		return false;
	if (r == decides)
		*out = truth_val(r);
	else if (l < 0 || r < 0)
		out->s = NULL;
	else
		*out = truth_val(l);
	return true;
}

static bool
ev(udf_prog *p, const cnode *n, const udf_row *row, val *out)
{
	const expr *e = n->e;
	val v;
	int t;

	switch (e->kind) {
	case EXPR_STRING:
	case EXPR_NUMBER:
		out->s = e->text;
		out->len = n->len;
		return true;
	case EXPR_COLUMN: *out = p->colv[n->col]; return true;
	case EXPR_VARIABLE:
		out->s = row->vars[e->var];
		out->len = out->s ? strlen(out->s) : 0;
		return true;
	case EXPR_CALL: return ev_call(p, n, row, out);
	case EXPR_CMP: return ev_cmp(p, n, row, out);
	case EXPR_IS_NULL:
		if (!ev(p, n->args[0], row, &v))
			return false;
		*out = truth_val((v.s == NULL) != (e->negated != 0));
		return true;
	case EXPR_AND:
	case EXPR_OR: return ev_logic(p, n, row, out);
	case EXPR_NOT:
		if (!ev(p, n->args[0], row, &v) ||
		    (t = truth(p, "not", v)) == -2)
			return false;
		if (t < 0)
			out->s = NULL;
		else
			*out = truth_val(!t);
		return true;
	}
	return fail(p, "unknown expression");
}

udf_result
udf_eval(udf_prog *p, const udf_row *row, const char **out, size_t *outlen)
{
	bool unchanged = false;
	val v;
	char *b;

	arena_reset(p);
	*out = p->err;
	*outlen = 0;
	/* every column once, up front: missing or unchanged decide alone */
	for (size_t i = 0; i < p->ncols; i++) {
		const char *s = NULL;
		size_t len = 0;
		switch (row->column(row->ctx, p->cols[i], &s, &len)) {
		case UDF_COL_VALUE:
			p->colv[i].s = s;
			p->colv[i].len = s ? len : 0;
			break;
		case UDF_COL_UNCHANGED: unchanged = true; break;
		case UDF_COL_MISSING:
		default:
			fail(p, "no column %s", p->cols[i]);
			*outlen = strlen(p->err);
			return UDF_ERROR;
		}
	}
	if (unchanged)
		return UDF_UNCHANGED;
	if (!ev(p, p->top, row, &v)) {
		*outlen = strlen(p->err);
		return UDF_ERROR;
	}
	if (!v.s)
		return UDF_NULL;
	/* a copy: the row's text may not outlive this call */
	b = arena_alloc(p, v.len + 1);
	memcpy(b, v.s, v.len);
	b[v.len] = '\0';
	*out = b;
	*outlen = v.len;
	return UDF_VALUE;
}
