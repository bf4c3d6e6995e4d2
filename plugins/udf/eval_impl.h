/*
 * udf/eval_impl.h - what the parts of the evaluator (eval.h) share; not
 * for use outside plugins/udf/eval*.c.
 *
 * A compiled program is a tree parallel to the expression (cnode) holding
 * what compiling resolved: column indexes, the ICU formats and calendars
 * (opened once, reused for every row), the precision of unix_timestamp.
 * Values produced while evaluating live in an arena that each udf_eval()
 * resets; once it has grown to a row's needs, evaluating allocates
 * nothing. A program is not thread-safe (ICU's formats and calendars are
 * not).
 *
 * The parts:
 *   eval_value.c  values and their conversions: the arena, messages,
 *                 decimal numbers, truth values;
 *   eval_time.c   time zones, date formats and PostgreSQL's times (ICU),
 *                 and the date and time functions;
 *   eval_func.c   the function table, the string and conditional
 *                 functions, and the dispatch of every call;
 *   eval.c        the evaluator proper: compiling the tree, evaluating
 *                 it (columns, variables, comparisons, logic).
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
 */
#ifndef SYNCD_UDF_EVAL_IMPL_H
#define SYNCD_UDF_EVAL_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <unicode/ucal.h>
#include <unicode/udat.h>

#include "eval.h"

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

/* ---- eval_value.c ------------------------------------------------------- */

void *udf_xmalloc(size_t n);
void *udf_arena_alloc(udf_prog *p, size_t n);
/* Empties the arena, keeping one block as large as all of them were. */
void udf_arena_reset(udf_prog *p);

/* How much of v goes into a message: at most EVAL_QUOTE_MAX bytes, not
 * cutting a UTF-8 sequence. */
int udf_qlen(val v);

#define QFMT "'%.*s%s'"
#define QARG(v)                                                                \
	udf_qlen(v), (v).s, ((size_t) udf_qlen(v) < (v).len ? "..." : "")

/* Sets the message of UDF_ERROR; returns false. */
bool udf_fail(udf_prog *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A compile error at pos; returns NULL. */
cnode *udf_cfail(size_t *err_pos, char **err, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A decimal number: sign * 0.D * 10^exp, D the digits from first to last
 * (both non-zero, '.' skipped). */
typedef struct dec {
	int sign; /* -1, 0 (the number is zero), 1 */
	long exp;
	const char *first, *last;
} dec;

bool udf_isdig(char c);
/* ":dd" (colon true) or "dd" at *s into *v, advancing. */
bool udf_digits2(const char **s, const char *end, bool colon, int *v);
bool udf_dec_parse(const char *s, size_t len, dec *d);
int udf_dec_cmp(const dec *a, const dec *b);
/* |d| * 10^scale: its integer part into *v and whether a fraction
 * remains; false if that does not fit 18 digits. */
bool udf_dec_fixed(const dec *d, int scale, uint64_t *v, bool *frac);

/* 1 true, 0 false, -1 NULL; -2 (and the message) if v is no condition. */
int udf_truth(udf_prog *p, const char *fn, val v);
val udf_truth_val(bool b);

/* ---- eval_time.c -------------------------------------------------------- */

/* A proleptic Gregorian calendar in zone id. */
UCalendar *udf_open_cal(const UChar *id, bool lenient, UErrorCode *st);
/* Compiles a call of a date and time function: its zones and formats. */
bool udf_compile_time(udf_prog *p, cnode *n, size_t *err_pos, char **err);
bool udf_fn_date_format(udf_prog *p, const cnode *n, const udf_row *row,
                        val *out);
bool udf_fn_now(udf_prog *p, const cnode *n, const udf_row *row, val *out);
bool udf_fn_from_unixtime(udf_prog *p, const cnode *n, const udf_row *row,
                          val *out);
bool udf_fn_unix_timestamp(udf_prog *p, const cnode *n, const udf_row *row,
                           val *out);

/* ---- eval_func.c -------------------------------------------------------- */

/* The functions' names, for messages, indexed by expr_func. */
extern const char *const udf_fn_names[];
/* Checks a call's arguments, opens what it needs (into n). */
bool udf_compile_call(udf_prog *p, cnode *n, size_t *err_pos, char **err);
bool udf_ev_call(udf_prog *p, const cnode *n, const udf_row *row, val *out);

/* ---- eval.c ------------------------------------------------------------- */

/* Evaluates n into *out (out->s NULL: SQL NULL); false (the message set)
 * on an error. */
bool udf_ev(udf_prog *p, const cnode *n, const udf_row *row, val *out);

#endif
