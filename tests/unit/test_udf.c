/*
 * tests/unit/test_udf.c - the expression language of additional fields:
 * what parses into which tree, and errors with their positions.
 */
#include "config.h"

#include "tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

Suite *
udf_suite(void)
{
	Suite *s = suite_create("udf");
	TCase *tc = tcase_create("expressions");

	tcase_add_test(tc, parses);
	tcase_add_test(tc, errors);
	suite_add_tcase(s, tc);
	return s;
}
