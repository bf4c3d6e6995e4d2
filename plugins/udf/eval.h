/*
 * udf/eval.h - evaluation of the additional fields' expressions (expr.h)
 * against one row.
 *
 * Every value is text, as PostgreSQL writes it (the pgoutput text format),
 * or NULL. A program is compiled once at load from a parsed expression:
 * what can be checked then is checked then (argument kinds, date formats,
 * time zones, precisions), with the position of the offending argument.
 * Time work (formats in Java's SimpleDateFormat pattern letters, time zones
 * as UTC+08:00 or IANA names, daylight saving time) is done by ICU.
 *
 * Semantics (the README's "Additional fields" section says the same):
 *  - #col is the column's text, NULL for NULL;
 *  - substring(s, pos[, len]): characters (not bytes) [pos, pos+len),
 *    counted from 0; clipped to the string; without len, to the end;
 *  - date_format(t, fmt[, src_tz, dst_tz]): t as PostgreSQL writes a
 *    date, timestamp or timestamptz (an offset in t wins over src_tz),
 *    src_tz and dst_tz default to UTC;
 *  - now([tz]): the row's time of processing in tz (default UTC), as
 *    yyyy-MM-dd HH:mm:ss.SSS;
 *  - from_unixtime(n[, fmt]): seconds since 1970 (fraction allowed) in UTC,
 *    default format yyyy-MM-dd HH:mm:ss;
 *  - unix_timestamp(t[, precision, fmt]): t read with fmt (default: as
 *    PostgreSQL writes it), in UTC unless t has an offset; precision s
 *    (default), ms, us (also second/millisecond/microsecond, 0/3/6);
 *  - if(cond, a, b): a if cond is true, b if it is false or NULL;
 *  - concat(...): NULL arguments are skipped (as PostgreSQL's concat());
 *  - comparisons: numerically when both sides are numbers, else bytewise;
 *    NULL on either side gives NULL; and/or/not follow SQL's three-valued
 *    logic; is [not] null is never NULL;
 *  - any other function of a NULL argument (other than a format or time
 *    zone) is NULL.
 * An error while evaluating (a date that does not parse, a number that is
 * not one) is UDF_ERROR with a message naming the function and the value.
 */
#ifndef SYNCD_UDF_EVAL_H
#define SYNCD_UDF_EVAL_H

#include <stdbool.h>
#include <stddef.h>

#include "expr.h"

typedef struct udf_prog udf_prog;

/* Compiles e (owned by the program from then on, also on failure). NULL on
 * error, with *err_pos (a position in the expression's text) and *err (a
 * message, malloc'd) set. */
udf_prog *udf_compile(expr *e, size_t *err_pos, char **err);
void udf_prog_free(udf_prog *p);

/* The names of the columns the expression reads (#col), each once. */
size_t udf_prog_columns(const udf_prog *p, const char *const **names);
/* Whether the expression calls now() (its value changes between rows). */
bool udf_prog_uses_now(const udf_prog *p);

/* What a row offers the expression. */
typedef enum udf_col_status {
	UDF_COL_VALUE,     /* *val, *len (val NULL: SQL NULL) */
	UDF_COL_UNCHANGED, /* an unchanged TOASTed value: not known */
	UDF_COL_MISSING    /* no such column */
} udf_col_status;

typedef struct udf_row {
	udf_col_status (*column)(void *ctx, const char *name, const char **val,
	                         size_t *len);
	void *ctx;
	/* indexed by expr_var; NULL is SQL NULL */
	const char *vars[VAR_TARGET_TABLE + 1];
	/* now(), in milliseconds since 1970 UTC: one value for the whole row */
	double now_ms;
} udf_row;

typedef enum udf_result {
	UDF_VALUE,     /* *out, *outlen: valid until the next udf_eval(p) */
	UDF_NULL,      /* SQL NULL */
	UDF_UNCHANGED, /* reads an unchanged TOASTed column */
	UDF_ERROR      /* *out: the message, valid until the next udf_eval(p) */
} udf_result;

udf_result udf_eval(udf_prog *p, const udf_row *row, const char **out,
                    size_t *outlen);

#endif
