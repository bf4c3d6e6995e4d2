/*
 * tests/unit/test_udf.c - the expression language of additional fields:
 * what parses into which tree, and errors with their positions; what the
 * compiled programs (eval.h) give for rows, and their compile errors.
 */
#include "config.h"

#include "tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/udf/eval.h"
#include "../../plugins/udf/expr.h"

/* The tree as text: kinds and leaves in prefix form. */
static void
show(const expr *e, char *out, size_t n)
{
	static const char *const ops[] = {"=", "!=", "<", "<=", ">", ">="};
	static const char *const fns[] = {
	    "substring", "date_format",   "now",           "if",
	    "concat",    "from_unixtime", "unix_timestamp"};
	static const char *const vs[] = {"source.host",   "source.database",
	                                 "source.schema", "source.table",
	                                 "target.schema", "target.table"};
	size_t len = strlen(out);

	switch (e->kind) {
	case EXPR_STRING: snprintf(out + len, n - len, "'%s'", e->text); return;
	case EXPR_NUMBER: snprintf(out + len, n - len, "%s", e->text); return;
	case EXPR_COLUMN: snprintf(out + len, n - len, "#%s", e->text); return;
	case EXPR_VARIABLE:
		snprintf(out + len, n - len, "%s", vs[e->var]);
		return;
	case EXPR_CALL: snprintf(out + len, n - len, "%s(", fns[e->fn]); break;
	case EXPR_CMP: snprintf(out + len, n - len, "%s(", ops[e->op]); break;
	case EXPR_IS_NULL:
		snprintf(out + len, n - len, "%s(",
		         e->negated ? "notnull" : "isnull");
		break;
	case EXPR_AND: snprintf(out + len, n - len, "and("); break;
	case EXPR_OR: snprintf(out + len, n - len, "or("); break;
	case EXPR_NOT: snprintf(out + len, n - len, "not("); break;
	}
	for (size_t i = 0; i < e->nargs; i++) {
		if (i)
			strncat(out, ",", n - strlen(out) - 1);
		show(e->args[i], out, n);
	}
	strncat(out, ")", n - strlen(out) - 1);
}

static void
assert_tree(const char *text, const char *want)
{
	size_t pos = 0;
	const char *err = NULL;
	expr *e = expr_parse(text, &pos, &err);
	char got[1024] = "";

	ck_assert_msg(e != NULL, "%s: %s at %zu", text, err, pos);
	show(e, got, sizeof got);
	ck_assert_str_eq(got, want);
	expr_free(e);
}

static void
assert_bad(const char *text, size_t want_pos, const char *want_err)
{
	size_t pos = 0;
	const char *err = NULL;
	expr *e = expr_parse(text, &pos, &err);

	ck_assert_msg(e == NULL, "%s parsed", text);
	ck_assert_msg(strstr(err, want_err) != NULL, "%s: %s", text, err);
	ck_assert_msg(pos == want_pos, "%s: error at %zu, not %zu (%s)", text,
	              pos, want_pos, err);
}

START_TEST(parses)
{
	assert_tree("now('UTC+08:00')", "now('UTC+08:00')");
	assert_tree("concat(source.schema, '.', source.table)",
	            "concat(source.schema,'.',source.table)");
	assert_tree("concat(mgr.source.host, MGR.target.table)",
	            "concat(source.host,target.table)");
	assert_tree("substring(#name, 0, 3)", "substring(#name,0,3)");
	assert_tree("date_format(#created_at, 'yyyy-MM-dd', 'UTC', "
	            "'UTC+08:00')",
	            "date_format(#created_at,'yyyy-MM-dd','UTC','UTC+08:00')");
	assert_tree(
	    "if(#a > 10 and not #b is null or #c <> 'x', 'big', 'small')",
	    "if(or(and(>(#a,10),not(isnull(#b))),!=(#c,'x')),'big','"
	    "small')");
	assert_tree("IF(#a is not null, -1.5, +2)", "if(notnull(#a),-1.5,+2)");
	assert_tree("'it''s'", "'it's'");
	assert_tree("(#x)", "#x");
	assert_tree("from_unixtime(#ts, 'yyyy-MM-dd HH:mm:ss.SSS')",
	            "from_unixtime(#ts,'yyyy-MM-dd HH:mm:ss.SSS')");
	assert_tree("unix_timestamp(#t, 3, 'yyyy-MM-dd')",
	            "unix_timestamp(#t,3,'yyyy-MM-dd')");
	assert_tree("#a <= #b", "<=(#a,#b)");
}
END_TEST

START_TEST(errors)
{
	char *text;

	assert_bad("", 0, "empty");
	assert_bad("concat(#a, 'b'", 14, "expected , or )");
	assert_bad("substring(#a)", 0, "substring takes");
	assert_bad("date_format(#a, 'x', 'UTC')", 0, "date_format takes");
	assert_bad("now('a', 'b')", 0, "now takes");
	assert_bad("'open", 0, "unterminated string");
	assert_bad("source.nothing", 0, "unknown variable");
	assert_bad("frobnicate(1)", 0, "unknown function");
	assert_bad("#a = ", 5, "ends too early");
	assert_bad("#a 'b'", 3, "unexpected text after the expression");
	assert_bad("# ", 0, "# must be followed by a column name");
	assert_bad("#a is maybe", 6, "expected null");
	assert_bad("12abc", 2, "a number runs into a name");
	assert_bad("#a ~ 1", 3, "unexpected character");
	/* the caret sits under the position */
	text = expr_error_text("concat(#a, 'b'", 14, "expected , or )");
	ck_assert_str_eq(text, "expected , or ) at position 15:\n"
	                       "  concat(#a, 'b'\n"
	                       "                ^");
	free(text);
	/* deep nesting is an error, not a crash */
	{
		char deep[4096];
		size_t n = 0;
		for (int i = 0; i < 1000; i++)
			deep[n++] = '(';
		deep[n++] = '1';
		for (int i = 0; i < 1000; i++)
			deep[n++] = ')';
		deep[n] = '\0';
		assert_bad(deep, 32, "nests too deeply");
	}
}
END_TEST

/* ---- evaluation --------------------------------------------------------- */

#define UNCHANGED ((const char *) 1)

/* A column of the test row: its value (NULL: SQL NULL, UNCHANGED). */
typedef struct tcol {
	const char *name, *val;
} tcol;

/* The row every evaluation test reads. */
static const tcol tcols[] = {{"a", "5"},
                             {"n", NULL},
                             {"big", UNCHANGED},
                             {"s", "a\xc3\xb1"
                                   "b\xe2\x82\xac"}, /* añb€ */
                             {"bad", "a\xff"},
                             {"t", "2026-03-08 02:30:00"},
                             {"tu", "2026-03-08 02:30:00.123456"},
                             {"tz", "2026-03-08 02:30:00.5+00"},
                             {"flag", "t"},
                             {"word", "xyz"},
                             {"minus", "-1"},
                             {"half", "1.5"},
                             {"one", "1.0"},
                             {"epoch", "1772937000"},
                             {NULL, NULL}};

/* 2026-03-08 02:30:00.123 UTC */
#define TEST_NOW_MS 1772937000123.0

static udf_col_status
tcol_lookup(void *ctx, const char *name, const char **val, size_t *len)
{
	for (const tcol *c = ctx; c->name; c++)
		if (strcmp(c->name, name) == 0) {
			if (c->val == UNCHANGED)
				return UDF_COL_UNCHANGED;
			*val = c->val;
			*len = c->val ? strlen(c->val) : 0;
			return UDF_COL_VALUE;
		}
	return UDF_COL_MISSING;
}

static udf_prog *
compile_ok(const char *text)
{
	size_t pos = 0;
	const char *perr = NULL;
	char *err = NULL;
	expr *e = expr_parse(text, &pos, &perr);
	udf_prog *p;

	ck_assert_msg(e != NULL, "%s: %s at %zu", text, perr, pos);
	p = udf_compile(e, &pos, &err);
	ck_assert_msg(p != NULL, "%s: %s at %zu", text, err, pos);
	return p;
}

/* One evaluation as text: the value, "NULL", "UNCHANGED" or "ERROR: ". */
static void
eval_text(udf_prog *p, char *got, size_t n)
{
	udf_row row = {.column = tcol_lookup,
	               .ctx = (void *) tcols,
	               .vars = {[VAR_SOURCE_SCHEMA] = "public",
	                        [VAR_SOURCE_TABLE] = "orders",
	                        [VAR_TARGET_TABLE] = "ods_orders"},
	               .now_ms = TEST_NOW_MS};
	const char *out = NULL;
	size_t len = 0;

	switch (udf_eval(p, &row, &out, &len)) {
	case UDF_VALUE:
		ck_assert_msg(out[len] == '\0', "not terminated");
		snprintf(got, n, "%.*s", (int) len, out);
		break;
	case UDF_NULL: snprintf(got, n, "NULL"); break;
	case UDF_UNCHANGED: snprintf(got, n, "UNCHANGED"); break;
	case UDF_ERROR:
		ck_assert_msg(strlen(out) == len, "error length");
		snprintf(got, n, "ERROR: %.*s", (int) len, out);
		break;
	}
}

/* text evaluated against tcols gives want (twice: programs are reused) */
static void
assert_eval(const char *text, const char *want)
{
	udf_prog *p = compile_ok(text);
	char got[512];

	for (int i = 0; i < 2; i++) {
		eval_text(p, got, sizeof got);
		ck_assert_msg(strcmp(got, want) == 0, "%s: got '%s', want '%s'",
		              text, got, want);
	}
	udf_prog_free(p);
}

/* text does not compile: the message and its position */
static void
assert_compile_error(const char *text, size_t want_pos, const char *want)
{
	size_t pos = 0;
	const char *perr = NULL;
	char *err = NULL;
	expr *e = expr_parse(text, &pos, &perr);
	udf_prog *p;

	ck_assert_msg(e != NULL, "%s: %s at %zu", text, perr, pos);
	pos = 9999;
	p = udf_compile(e, &pos, &err);
	ck_assert_msg(p == NULL, "%s compiled", text);
	ck_assert_msg(err && strcmp(err, want) == 0, "%s: got '%s', want '%s'",
	              text, err, want);
	ck_assert_msg(pos == want_pos, "%s: error at %zu, not %zu", text, pos,
	              want_pos);
	free(err);
}

START_TEST(values)
{
	udf_prog *p;
	const char *const *names;

	assert_eval("'it''s'", "it's");
	assert_eval("-1.5", "-1.5");
	assert_eval("#a", "5");
	assert_eval("#n", "NULL");
	assert_eval("source.schema", "public");
	assert_eval("mgr.target.table", "ods_orders");
	assert_eval("source.host", "NULL");
	assert_eval("#nope", "ERROR: no column nope");
	/* an unchanged column anywhere makes the result unknown */
	assert_eval("#big", "UNCHANGED");
	assert_eval("concat(#a, #big)", "UNCHANGED");
	assert_eval("if(1 = 1, 'x', #big)", "UNCHANGED");
	assert_eval("#big is null", "UNCHANGED");
	/* columns, each once, in order */
	p = compile_ok("concat(#a, #s, #a, if(#n is null, #t, #s))");
	ck_assert_uint_eq(udf_prog_columns(p, &names), 4);
	ck_assert_str_eq(names[0], "a");
	ck_assert_str_eq(names[1], "s");
	ck_assert_str_eq(names[2], "n");
	ck_assert_str_eq(names[3], "t");
	ck_assert(!udf_prog_uses_now(p));
	udf_prog_free(p);
	p = compile_ok("concat('x', now())");
	ck_assert_uint_eq(udf_prog_columns(p, &names), 0);
	ck_assert(udf_prog_uses_now(p));
	udf_prog_free(p);
}
END_TEST

START_TEST(logic)
{
	/* numbers compare as numbers, exactly */
	assert_eval("'10' > '9'", "true");
	assert_eval("#a = 5.000", "true");
	assert_eval("#one = 1", "true");
	assert_eval("'-0' = 0", "true");
	assert_eval("'1e3' = 1000", "true");
	assert_eval("-5 > -10", "true");
	assert_eval("0.05 < 0.5", "true");
	assert_eval("'9007199254740993' > '9007199254740992'", "true");
	assert_eval("#a <> 5", "false");
	assert_eval("#a >= 6", "false");
	assert_eval("#a <= 5", "true");
	/* otherwise bytes, then length */
	assert_eval("'abc' < 'abd'", "true");
	assert_eval("'10' > 'abc'", "false");
	assert_eval("'ab' < 'abc'", "true");
	assert_eval("'nan' = 'nan'", "true");
	assert_eval("'inf' > '1'", "true");
	assert_eval("'0x10' = '16'", "false");
	/* NULL */
	assert_eval("#n = 1", "NULL");
	assert_eval("1 != #n", "NULL");
	assert_eval("#n is null", "true");
	assert_eval("#n is not null", "false");
	assert_eval("#a is not null", "true");
	/* three-valued and / or / not */
	assert_eval("#n = 1 and 1 = 2", "false");
	assert_eval("1 = 2 and #n = 1", "false");
	assert_eval("#n = 1 and 1 = 1", "NULL");
	assert_eval("#n = 1 and #n = 1", "NULL");
	assert_eval("1 = 1 and 2 = 2", "true");
	assert_eval("#n = 1 or 1 = 1", "true");
	assert_eval("1 = 1 or #n = 1", "true");
	assert_eval("#n = 1 or 1 = 2", "NULL");
	assert_eval("1 = 2 or 2 = 3", "false");
	assert_eval("not #n = 1", "NULL");
	assert_eval("not 1 = 2", "true");
	assert_eval("not #flag", "false");
	assert_eval("not 'F'", "true");
	assert_eval("not 0", "true");
	assert_eval("#word and 1 = 1",
	            "ERROR: and: 'xyz' is not a condition (true, false, t, "
	            "f or a number)");
	/* the left side decides: the right is not evaluated */
	assert_eval("1 = 2 and #word", "false");
	assert_eval("1 = 1 or #word", "true");
	assert_eval("not #word", "ERROR: not: 'xyz' is not a condition (true, "
	                         "false, t, f or a number)");
	/* if */
	assert_eval("if(#a > 3, 'big', 'small')", "big");
	assert_eval("if(#a > 30, 'big', 'small')", "small");
	assert_eval("if(#n = 1, 'y', 'n')", "n");
	assert_eval("if(#n, 'y', 'n')", "n");
	assert_eval("if(#flag, 'y', 'n')", "y");
	assert_eval("if('TRUE', 'y', 'n')", "y");
	assert_eval("if(0, 'y', 'n')", "n");
	assert_eval("if(#minus, 'y', 'n')", "y");
	assert_eval("if(0.0, 'y', 'n')", "n");
	assert_eval("if(1 = 1, #n, 'n')", "NULL");
	assert_eval("if(1 = 1, 'y', from_unixtime('x'))", "y");
	assert_eval("if(#s, 'y', 'n')",
	            "ERROR: if: 'a\xc3\xb1"
	            "b\xe2\x82\xac' is not a condition (true, false, t, f or "
	            "a number)");
	/* comparisons as values */
	assert_eval("concat(#a > 3, '/', #n is null)", "true/true");
}
END_TEST

START_TEST(strings)
{
	/* substring counts characters (añb€: 1, 2, 1 and 3 bytes) */
	assert_eval("substring(#s, 0)", "a\xc3\xb1"
	                                "b\xe2\x82\xac");
	assert_eval("substring(#s, 1, 2)", "\xc3\xb1"
	                                   "b");
	assert_eval("substring(#s, 3)", "\xe2\x82\xac");
	assert_eval("substring(#s, 3, 1)", "\xe2\x82\xac");
	assert_eval("substring(#s, 4)", "");
	assert_eval("substring(#s, 10, 2)", "");
	assert_eval("substring(#s, 1, 0)", "");
	assert_eval("substring(#s, 0, 100)", "a\xc3\xb1"
	                                     "b\xe2\x82\xac");
	assert_eval("substring(#s, 2, '99999999999999999999999')",
	            "b\xe2\x82\xac");
	assert_eval("substring(#s, '2')", "b\xe2\x82\xac");
	assert_eval("substring(#s, #one, 1)", "\xc3\xb1");
	assert_eval("substring('hello', 1, 3)", "ell");
	assert_eval("substring(#n, 1)", "NULL");
	assert_eval("substring(#s, #n)", "NULL");
	assert_eval("substring(#s, 0, #n)", "NULL");
	assert_eval("substring(#s, #minus)",
	            "ERROR: substring: the position '-1' is not a "
	            "non-negative integer");
	assert_eval("substring(#s, 0, #half)",
	            "ERROR: substring: the length '1.5' is not a "
	            "non-negative integer");
	assert_eval("substring(#s, #word)",
	            "ERROR: substring: the position 'xyz' is not a "
	            "non-negative integer");
	assert_eval("substring(#bad, 0, 1)",
	            "ERROR: substring: the value is not valid UTF-8");
	/* concat skips NULLs */
	assert_eval("concat('a', #n, 'c')", "ac");
	assert_eval("concat(#n)", "");
	assert_eval("concat(source.host, #n)", "");
	assert_eval("concat(source.schema, '.', source.table)",
	            "public.orders");
	assert_eval("concat(#a, 1.50, '')", "51.50");
}
END_TEST

START_TEST(dates)
{
	/* patterns */
	assert_eval("date_format(#tu, 'yyyy-MM-dd HH:mm:ss.SSS')",
	            "2026-03-08 02:30:00.123");
	assert_eval("date_format('2026-03-08', 'yy/M/d')", "26/3/8");
	assert_eval("date_format(#t, 'EEE, d MMM yyyy')", "Sun, 8 Mar 2026");
	assert_eval("date_format('2026-03-08 14:05:00', 'a hh:mm')",
	            "PM 02:05");
	assert_eval("date_format('2026-03-08 00:05:00', 'hh:mm a')",
	            "12:05 AM");
	assert_eval("date_format(#t, 'yyyy-MM-dd''T''HH:mm')",
	            "2026-03-08T02:30");
	/* ICU stops at milliseconds: more S are zeros */
	assert_eval("date_format(#tu, 'ss.SSSSSS')", "00.123000");
	assert_eval("date_format('2026-03-08T02:30', 'HH:mm:ss')", "02:30:00");
	/* zones */
	assert_eval("date_format(#t, 'yyyy-MM-dd HH:mm', 'UTC', 'UTC+08:00')",
	            "2026-03-08 10:30");
	assert_eval("date_format(#t, 'yyyy-MM-dd HH:mm', 'Asia/Shanghai', "
	            "'UTC')",
	            "2026-03-07 18:30");
	assert_eval("date_format(#t, 'yyyy-MM-dd HH:mm XXX', 'UTC+8', "
	            "'Asia/Shanghai')",
	            "2026-03-08 02:30 +08:00");
	assert_eval("date_format(#t, 'HH:mm', '+08:00', '-0500')", "13:30");
	assert_eval("date_format(#t, 'HH:mm', 'Z', 'UTC-05:30')", "21:00");
	/* New York: spring forward 2026-03-08 02:00 EST -> 03:00 EDT */
	assert_eval("date_format('2026-03-08 01:59:59', 'HH:mm:ss', "
	            "'America/New_York', 'UTC')",
	            "06:59:59");
	assert_eval("date_format('2026-03-08 02:30:00', 'HH:mm:ss', "
	            "'America/New_York', 'UTC')",
	            "07:30:00");
	assert_eval("date_format('2026-03-08 03:00:00', 'HH:mm:ss', "
	            "'America/New_York', 'UTC')",
	            "07:00:00");
	assert_eval("date_format('2026-03-08 06:59:59', 'HH:mm:ss XXX', 'UTC', "
	            "'America/New_York')",
	            "01:59:59 -05:00");
	assert_eval("date_format('2026-03-08 07:00:00', 'HH:mm:ss XXX', 'UTC', "
	            "'America/New_York')",
	            "03:00:00 -04:00");
	/* fall back 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 is the later
	 * (standard time), as in PostgreSQL */
	assert_eval("date_format('2026-11-01 01:30:00', 'HH:mm', "
	            "'America/New_York', 'UTC')",
	            "06:30");
	assert_eval("date_format('2026-11-01 02:00:00', 'HH:mm', "
	            "'America/New_York', 'UTC')",
	            "07:00");
	assert_eval("date_format('2026-11-01 05:30:00', 'HH:mm XXX', 'UTC', "
	            "'America/New_York')",
	            "01:30 -04:00");
	assert_eval("date_format('2026-11-01 06:30:00', 'HH:mm XXX', 'UTC', "
	            "'America/New_York')",
	            "01:30 -05:00");
	/* Berlin: 2026-03-29 02:00 CET -> 03:00 CEST, 2026-10-25 back */
	assert_eval("date_format('2026-03-29 02:30:00', 'HH:mm', "
	            "'Europe/Berlin', 'UTC')",
	            "01:30");
	assert_eval("date_format('2026-10-25 02:30:00', 'HH:mm', "
	            "'Europe/Berlin', 'UTC')",
	            "01:30");
	assert_eval("date_format('2026-07-01 12:00:00', 'HH:mm', "
	            "'Europe/Berlin', 'UTC')",
	            "10:00");
	assert_eval("date_format('2026-07-01 10:00:00', 'HH:mm z', 'UTC', "
	            "'Europe/Berlin')",
	            "12:00 GMT+2");
	/* an offset in the text wins over the source zone */
	assert_eval("date_format('2026-03-08 02:30:00+05:30', "
	            "'yyyy-MM-dd HH:mm:ss', 'America/New_York', 'UTC')",
	            "2026-03-07 21:00:00");
	assert_eval("date_format('2026-03-08 02:30:00-08', 'HH:mm', "
	            "'Asia/Shanghai', 'UTC')",
	            "10:30");
	assert_eval("date_format('2026-03-08 02:30:00+05:30:15', 'HH:mm:ss')",
	            "20:59:45");
	assert_eval("date_format(#tz, 'HH:mm:ss.SSS', 'Asia/Shanghai', 'UTC')",
	            "02:30:00.500");
	assert_eval("date_format('2026-03-08T02:30:00Z', 'HH:mm', "
	            "'Asia/Shanghai', 'UTC+01:00')",
	            "03:30");
	/* proleptic Gregorian, as PostgreSQL */
	assert_eval("date_format('1582-10-10', 'yyyy-MM-dd EEE')",
	            "1582-10-10 Sun");
	assert_eval("date_format('0001-01-01 00:00:00', 'yyyy-MM-dd', 'UTC', "
	            "'UTC+01:00')",
	            "0001-01-01");
	/* what is no time */
	assert_eval("date_format(#n, 'yyyy')", "NULL");
	assert_eval("date_format('infinity', 'yyyy')",
	            "ERROR: date_format: 'infinity' is not a point in time");
	assert_eval("date_format('-infinity', 'yyyy')",
	            "ERROR: date_format: '-infinity' is not a point in time");
	assert_eval("date_format('0044-03-15 12:00:00 BC', 'yyyy')",
	            "ERROR: date_format: '0044-03-15 12:00:00 BC' is a year "
	            "BC, which is not supported");
	assert_eval("date_format('0001-01-01 00:00:00', 'yyyy', 'UTC', "
	            "'UTC-01:00')",
	            "ERROR: date_format: the time is a year BC, which is not "
	            "supported");
	assert_eval("date_format('2026-02-30', 'yyyy')",
	            "ERROR: date_format: '2026-02-30' is not a valid date or "
	            "time");
	assert_eval("date_format('2026-03-08 24:00:00', 'yyyy')",
	            "ERROR: date_format: '2026-03-08 24:00:00' is not a valid "
	            "date or time");
	assert_eval("date_format(#word, 'yyyy')",
	            "ERROR: date_format: 'xyz' is not a date or timestamp");
	assert_eval("date_format('2026-03-08 02:30:00+', 'yyyy')",
	            "ERROR: date_format: '2026-03-08 02:30:00+' is not a date "
	            "or timestamp");
	assert_eval("date_format('2026-03-08 02:30:00.', 'yyyy')",
	            "ERROR: date_format: '2026-03-08 02:30:00.' is not a date "
	            "or timestamp");
	assert_eval("date_format('2026-03-08 02', 'yyyy')",
	            "ERROR: date_format: '2026-03-08 02' is not a date or "
	            "timestamp");
	assert_eval("date_format('', 'yyyy')",
	            "ERROR: date_format: '' is not a date or timestamp");
}
END_TEST

START_TEST(now_and_unix)
{
	/* now() is the row's time */
	assert_eval("now()", "2026-03-08 02:30:00.123");
	assert_eval("now('UTC+08:00')", "2026-03-08 10:30:00.123");
	assert_eval("now('GMT+8')", "2026-03-08 10:30:00.123");
	assert_eval("now('America/New_York')", "2026-03-07 21:30:00.123");
	assert_eval("now('Z')", "2026-03-08 02:30:00.123");
	/* from_unixtime */
	assert_eval("from_unixtime(0)", "1970-01-01 00:00:00");
	assert_eval("from_unixtime(#epoch)", "2026-03-08 02:30:00");
	assert_eval("from_unixtime('1772937000.5', 'yyyy-MM-dd HH:mm:ss.SSS')",
	            "2026-03-08 02:30:00.500");
	assert_eval("from_unixtime(-1.5, 'yyyy-MM-dd HH:mm:ss.SSS')",
	            "1969-12-31 23:59:58.500");
	assert_eval("from_unixtime('-0.0001', 'HH:mm:ss.SSS')", "23:59:59.999");
	assert_eval("from_unixtime('1e9')", "2001-09-09 01:46:40");
	assert_eval("from_unixtime(#epoch, 'EEE d MMM')", "Sun 8 Mar");
	assert_eval("from_unixtime(#n)", "NULL");
	assert_eval("from_unixtime('abc')",
	            "ERROR: from_unixtime: 'abc' is not a number");
	assert_eval("from_unixtime(' 1')",
	            "ERROR: from_unixtime: ' 1' is not a number");
	assert_eval("from_unixtime('1e30')",
	            "ERROR: from_unixtime: '1e30' is out of range");
	assert_eval("from_unixtime('-62135596801')",
	            "ERROR: from_unixtime: the time is a year BC, which is not "
	            "supported");
	/* unix_timestamp: the three precisions, floor */
	assert_eval("unix_timestamp(#tu)", "1772937000");
	assert_eval("unix_timestamp(#tu, 's')", "1772937000");
	assert_eval("unix_timestamp(#tu, 'ms')", "1772937000123");
	assert_eval("unix_timestamp(#tu, 'us')", "1772937000123456");
	assert_eval("unix_timestamp(#tu, 'Microsecond')", "1772937000123456");
	assert_eval("unix_timestamp(#tu, 3)", "1772937000123");
	assert_eval("unix_timestamp(#tu, 0)", "1772937000");
	assert_eval("unix_timestamp(#tu, '6')", "1772937000123456");
	assert_eval("unix_timestamp('1969-12-31 23:59:59.5')", "-1");
	assert_eval("unix_timestamp('1969-12-31 23:59:59.5', 'ms')", "-500");
	assert_eval("unix_timestamp('1969-12-31 23:59:59.5', 'us')", "-500000");
	assert_eval("unix_timestamp(#tz, 'ms')", "1772937000500");
	assert_eval("unix_timestamp('2026-03-08 10:30:00+08')", "1772937000");
	assert_eval("unix_timestamp('2026-03-08')", "1772928000");
	assert_eval("unix_timestamp('1000-01-01')", "-30610224000");
	assert_eval("unix_timestamp('0001-01-01 00:00:00')", "-62135596800");
	assert_eval("unix_timestamp(#n)", "NULL");
	assert_eval("unix_timestamp('infinity')",
	            "ERROR: unix_timestamp: 'infinity' is not a point in time");
	assert_eval("unix_timestamp(#word, 'ms')",
	            "ERROR: unix_timestamp: 'xyz' is not a date or timestamp");
	/* with a format: strict, UTC unless it reads an offset */
	assert_eval("unix_timestamp('08/03/2026 02:30', 's', "
	            "'dd/MM/yyyy HH:mm')",
	            "1772937000");
	assert_eval("unix_timestamp('2026-03-08 10:30 +08:00', 'ms', "
	            "'yyyy-MM-dd HH:mm XXX')",
	            "1772937000000");
	assert_eval("unix_timestamp('2026-03-08 02:30:00.123456', 'us', "
	            "'yyyy-MM-dd HH:mm:ss.SSSSSS')",
	            "1772937000123000");
	assert_eval("unix_timestamp('2026-3-8', 's', 'yyyy-MM-dd')",
	            "ERROR: unix_timestamp: '2026-3-8' does not match the "
	            "format 'yyyy-MM-dd'");
	assert_eval("unix_timestamp('2026-03-08x', 's', 'yyyy-MM-dd')",
	            "ERROR: unix_timestamp: '2026-03-08x' does not match the "
	            "format 'yyyy-MM-dd'");
	assert_eval("unix_timestamp('2026-02-30', 's', 'yyyy-MM-dd')",
	            "ERROR: unix_timestamp: '2026-02-30' does not match the "
	            "format 'yyyy-MM-dd'");
	assert_eval("unix_timestamp(#bad, 's', 'yyyy-MM-dd')",
	            "ERROR: unix_timestamp: the value is not valid UTF-8");
	assert_eval("unix_timestamp(#n, 's', 'yyyy-MM-dd')", "NULL");
}
END_TEST

/* A format parsing offsets keeps no zone from one row to the next. */
START_TEST(parse_zone_per_row)
{
	udf_prog *p =
	    compile_ok("unix_timestamp(#t, 's', 'yyyy-MM-dd HH:mm:ss')");
	char got[128];

	eval_text(p, got, sizeof got);
	ck_assert_str_eq(got, "1772937000");
	udf_prog_free(p);
	p = compile_ok("unix_timestamp(concat(#t, if(#a = 5, ' +08:00', ' Z')),"
	               " 's', 'yyyy-MM-dd HH:mm:ss XXX')");
	eval_text(p, got, sizeof got);
	ck_assert_str_eq(got, "1772908200");
	eval_text(p, got, sizeof got);
	ck_assert_str_eq(got, "1772908200");
	udf_prog_free(p);
}
END_TEST

START_TEST(compile_errors)
{
	static const char zone_hint[] =
	    "write an IANA name such as Asia/Shanghai or an offset such as "
	    "UTC+08:00";
	char want[256];

	snprintf(want, sizeof want,
	         "date_format: unknown time zone 'Asia/Shangai': %s",
	         zone_hint);
	assert_compile_error("date_format(#t, 'yyyy', 'Asia/Shangai', 'UTC')",
	                     24, want);
	snprintf(want, sizeof want,
	         "date_format: unknown time zone 'Etc/Unknown': %s", zone_hint);
	assert_compile_error("date_format(#t, 'yyyy', 'UTC', 'Etc/Unknown')",
	                     31, want);
	assert_compile_error("now('asia/shanghai')", 4,
	                     "now: unknown time zone 'asia/shanghai' (did you "
	                     "mean Asia/Shanghai?)");
	assert_compile_error("now('UTC+24:00')", 4,
	                     "now: invalid time zone offset 'UTC+24:00': write "
	                     "it as UTC+08:00 or UTC-05:30 (east of UTC is +, "
	                     "hours up to 23)");
	assert_compile_error("now('+8:0')", 4,
	                     "now: invalid time zone offset '+8:0': write "
	                     "it as UTC+08:00 or UTC-05:30 (east of UTC is +, "
	                     "hours up to 23)");
	assert_compile_error("now(#z)", 4,
	                     "now: the time zone must be a string literal");
	assert_compile_error("date_format(#t, 'yyyy', #z, 'UTC')", 24,
	                     "date_format: the time zone must be a string "
	                     "literal");
	assert_compile_error(
	    "date_format(#t, #f)", 16,
	    "date_format: the format must be a string literal");
	assert_compile_error(
	    "date_format(#t, 1)", 16,
	    "date_format: the format must be a string literal");
	assert_compile_error("date_format(#t, 'yyyy-MM-ddTHH:mm')", 16,
	                     "date_format: 'T' in the format "
	                     "'yyyy-MM-ddTHH:mm' is not a pattern letter (put "
	                     "literal text in quotes, written '' inside a "
	                     "string)");
	assert_compile_error("date_format(#t, 'yyyy''-MM')", 16,
	                     "date_format: the format 'yyyy'-MM' has an "
	                     "unterminated quote");
	assert_compile_error("from_unixtime(#e, 'jjj')", 18,
	                     "from_unixtime: 'j' in the format 'jjj' is not a "
	                     "pattern letter (put literal text in quotes, "
	                     "written '' inside a string)");
	assert_compile_error("from_unixtime(#e, concat('yyyy'))", 18,
	                     "from_unixtime: the format must be a string "
	                     "literal");
	assert_compile_error(
	    "unix_timestamp(#t, 'minute')", 19,
	    "unix_timestamp: unknown precision 'minute': write "
	    "'s', 'ms' or 'us' (or second, millisecond, "
	    "microsecond, 0, 3, 6)");
	assert_compile_error("unix_timestamp(#t, 2)", 19,
	                     "unix_timestamp: unknown precision '2': write "
	                     "'s', 'ms' or 'us' (or second, millisecond, "
	                     "microsecond, 0, 3, 6)");
	assert_compile_error("unix_timestamp(#t, #p)", 19,
	                     "unix_timestamp: the precision must be a literal: "
	                     "'s', 'ms' or 'us'");
	assert_compile_error("unix_timestamp(#t, 's', #f)", 24,
	                     "unix_timestamp: the format must be a string "
	                     "literal");
	assert_compile_error("substring(#s, -1)", 14,
	                     "substring: the position must be a non-negative "
	                     "integer");
	assert_compile_error("substring(#s, 0, 1.5)", 17,
	                     "substring: the length must be a non-negative "
	                     "integer");
	assert_compile_error(
	    "if('maybe', 1, 2)", 3,
	    "if: 'maybe' is not a condition (true, false, t, f "
	    "or a number)");
	/* the first error, inside nested calls */
	assert_compile_error("concat('a', now('Mars/Olympus'), now(#z))", 16,
	                     "now: unknown time zone 'Mars/Olympus': write an "
	                     "IANA name such as Asia/Shanghai or an offset "
	                     "such as UTC+08:00");
}
END_TEST

Suite *
udf_suite(void)
{
	Suite *s = suite_create("udf");
	TCase *tc = tcase_create("expressions");

	tcase_add_test(tc, parses);
	tcase_add_test(tc, errors);
	suite_add_tcase(s, tc);
	tc = tcase_create("evaluation");
	tcase_add_test(tc, values);
	tcase_add_test(tc, logic);
	tcase_add_test(tc, strings);
	suite_add_tcase(s, tc);
	tc = tcase_create("time");
	tcase_add_test(tc, dates);
	tcase_add_test(tc, now_and_unix);
	tcase_add_test(tc, parse_zone_per_row);
	suite_add_tcase(s, tc);
	tc = tcase_create("compile errors");
	tcase_add_test(tc, compile_errors);
	suite_add_tcase(s, tc);
	return s;
}
