/*
 * udf/eval_value.c - values and their conversions for the evaluator (see
 * eval_impl.h): the arena the values of a row live in, error messages,
 * decimal numbers, truth values.
 */
#define _GNU_SOURCE /* vasprintf */
#include "eval_impl.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EVAL_QUOTE_MAX 60 /* bytes of a value quoted in a message */

static const val val_true = {"true", 4}, val_false = {"false", 5};

/* ---- memory ------------------------------------------------------------ */

void *
udf_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

void *
udf_arena_alloc(udf_prog *p, size_t n)
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
		b = udf_xmalloc(sizeof *b + cap);
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
void
udf_arena_reset(udf_prog *p)
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
	b = udf_xmalloc(sizeof *b + total);
	b->next = NULL;
	b->cap = total;
	b->used = 0;
	p->arena = b;
}

/* ---- messages ---------------------------------------------------------- */

/* How much of v goes into a message: at most EVAL_QUOTE_MAX bytes, not
 * cutting a UTF-8 sequence. */
int
udf_qlen(val v)
{
	size_t n = v.len;

	if (n > EVAL_QUOTE_MAX) {
		n = EVAL_QUOTE_MAX;
		while (n > 0 && ((unsigned char) v.s[n] & 0xc0) == 0x80)
			n--;
	}
	return (int) n;
}

#define QFMT "'%.*s%s'"
#define QARG(v)                                                                \
	udf_qlen(v), (v).s, ((size_t) udf_qlen(v) < (v).len ? "..." : "")

/* Sets the message of UDF_ERROR; returns false. */
bool
udf_fail(udf_prog *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, sizeof p->err, fmt, ap);
	va_end(ap);
	return false;
}

/* A compile error at pos; returns NULL. */
cnode *__attribute__((format(printf, 4, 5)))
udf_cfail(size_t *err_pos, char **err, size_t pos, const char *fmt, ...)
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

bool
udf_isdig(char c)
{
	return c >= '0' && c <= '9';
}

/* ":dd" (colon true) or "dd" at *s into *v, advancing. */
bool
udf_digits2(const char **s, const char *end, bool colon, int *v)
{
	const char *c = *s + colon;

	if (end - *s < 2 + colon || (colon && **s != ':') || !udf_isdig(c[0]) ||
	    !udf_isdig(c[1]))
		return false;
	*v = (c[0] - '0') * 10 + (c[1] - '0');
	*s = c + 2;
	return true;
}

bool
udf_dec_parse(const char *s, size_t len, dec *d)
{
	const char *end = s + len, *m;
	long intdigits = 0, seen = 0, lead = 0, e = 0;
	bool digits = false, esign = false;

	d->sign = 1;
	d->first = d->last = NULL;
	if (s < end && (*s == '+' || *s == '-'))
		d->sign = *s++ == '-' ? -1 : 1;
	for (m = s; s < end && udf_isdig(*s); s++, intdigits++)
		digits = true;
	if (s < end && *s == '.')
		for (s++; s < end && udf_isdig(*s); s++)
			digits = true;
	if (!digits)
		return false;
	if (s < end && (*s == 'e' || *s == 'E')) {
		s++;
		if (s < end && (*s == '+' || *s == '-'))
			esign = *s++ == '-';
		if (s == end || !udf_isdig(*s))
			return false;
		for (; s < end && udf_isdig(*s); s++)
			if (e < 100000000)
				e = e * 10 + (*s - '0');
		if (esign)
			e = -e;
	}
	if (s != end)
		return false;
	/* the digits: m up to the mantissa's end */
	for (const char *c = m; c < end && (udf_isdig(*c) || *c == '.'); c++) {
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

int
udf_dec_cmp(const dec *a, const dec *b)
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
bool
udf_dec_fixed(const dec *d, int scale, uint64_t *v, bool *frac)
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
int
udf_truth(udf_prog *p, const char *fn, val v)
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
	if (udf_dec_parse(v.s, v.len, &d))
		return d.sign != 0;
	udf_fail(p,
	         "%s: " QFMT " is not a condition (true, false, t, f or a "
	         "number)",
	         fn, QARG(v));
	return -2;
}

val
udf_truth_val(bool b)
{
	return b ? val_true : val_false;
}
