/*
 * udf/eval_func.c - the built-in functions of the evaluator (see
 * eval_impl.h): their table, the string functions (substring, concat), the
 * conditional (if), and the dispatch of every call, compiled and
 * evaluated; the date and time functions are in eval_time.c.
 */
#include "eval_impl.h"

#include <stdint.h>
#include <string.h>

const char *const udf_fn_names[] = {[FN_SUBSTRING] = "substring",
                                    [FN_DATE_FORMAT] = "date_format",
                                    [FN_NOW] = "now",
                                    [FN_IF] = "if",
                                    [FN_CONCAT] = "concat",
                                    [FN_FROM_UNIXTIME] = "from_unixtime",
                                    [FN_UNIX_TIMESTAMP] = "unix_timestamp"};

/* ---- compiling --------------------------------------------------------- */

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
	if (!udf_dec_parse(a->text, strlen(a->text), &d) || d.sign < 0)
		return false;
	return !udf_dec_fixed(&d, 0, &v, &frac) || !frac;
}

bool
udf_compile_call(udf_prog *p, cnode *n, size_t *err_pos, char **err)
{
	const expr *e = n->e;

	switch (e->fn) {
	case FN_SUBSTRING:
		for (size_t i = 1; i < e->nargs; i++)
			if (!index_literal_ok(e->args[i])) {
				udf_cfail(err_pos, err, e->args[i]->pos,
				          "substring: the %s must be a "
				          "non-negative integer",
				          i == 1 ? "position" : "length");
				return false;
			}
		return true;
	case FN_DATE_FORMAT:
	case FN_NOW:
	case FN_FROM_UNIXTIME:
	case FN_UNIX_TIMESTAMP: return udf_compile_time(p, n, err_pos, err);
	case FN_IF:
		if (e->args[0]->kind == EXPR_STRING ||
		    e->args[0]->kind == EXPR_NUMBER) {
			val v = {e->args[0]->text, strlen(e->args[0]->text)};
			if (udf_truth(p, "if", v) == -2) {
				udf_cfail(err_pos, err, e->args[0]->pos, "%s",
				          p->err);
				return false;
			}
		}
		return true;
	case FN_CONCAT: return true;
	}
	return true;
}

/* ---- evaluating -------------------------------------------------------- */

/* An argument that must be a non-negative integer, clipped to SIZE_MAX. */
static bool
index_val(udf_prog *p, const char *what, val v, size_t *out)
{
	dec d;
	uint64_t x;
	bool frac;

	if (!udf_dec_parse(v.s, v.len, &d) || d.sign < 0)
		return udf_fail(p,
		                "substring: the %s " QFMT " is not a "
		                "non-negative integer",
		                what, QARG(v));
	if (!udf_dec_fixed(&d, 0, &x, &frac)) {
		*out = SIZE_MAX;
		return true;
	}
	if (frac)
		return udf_fail(p,
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

	if (!udf_ev(p, n->args[0], row, &s))
		return false;
	if (!udf_ev(p, n->args[1], row, &a))
		return false;
	if (!a.s || !s.s)
		goto null;
	if (!index_val(p, "position", a, &pos))
		return false;
	if (n->nargs == 3) {
		if (!udf_ev(p, n->args[2], row, &a))
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
			return udf_fail(p, "substring: the value is not valid "
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
fn_concat(udf_prog *p, const cnode *n, const udf_row *row, val *out)
{
	val *a = udf_arena_alloc(p, n->nargs * sizeof *a);
	size_t len = 0;
	char *b;

	for (size_t i = 0; i < n->nargs; i++) {
		if (!udf_ev(p, n->args[i], row, &a[i]))
			return false;
		if (a[i].s)
			len += a[i].len;
	}
	b = udf_arena_alloc(p, len + 1);
	out->s = b;
	out->len = len;
	for (size_t i = 0; i < n->nargs; i++)
		if (a[i].s) {
			memcpy(b, a[i].s, a[i].len);
			b += a[i].len;
		}
	return true;
}

bool
udf_ev_call(udf_prog *p, const cnode *n, const udf_row *row, val *out)
{
	const char *fn = udf_fn_names[n->e->fn];
	val v;
	int c;

	switch (n->e->fn) {
	case FN_SUBSTRING: return fn_substring(p, n, row, out);
	case FN_DATE_FORMAT: return udf_fn_date_format(p, n, row, out);
	case FN_NOW: return udf_fn_now(p, n, row, out);
	case FN_IF:
		if (!udf_ev(p, n->args[0], row, &v))
			return false;
		if ((c = udf_truth(p, fn, v)) == -2)
			return false;
		return udf_ev(p, n->args[c == 1 ? 1 : 2], row, out);
	case FN_CONCAT: return fn_concat(p, n, row, out);
	case FN_FROM_UNIXTIME: return udf_fn_from_unixtime(p, n, row, out);
	case FN_UNIX_TIMESTAMP: return udf_fn_unix_timestamp(p, n, row, out);
	}
	return udf_fail(p, "unknown function");
}
