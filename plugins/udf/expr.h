/*
 * udf/expr.h - the expression language of additional fields (the
 * reference's "UDF" values), parsed once at load into a tree.
 *
 *   expr    := or
 *   or      := and ("or" and)*
 *   and     := not ("and" not)*
 *   not     := "not" not | cmp
 *   cmp     := primary [op primary | "is" ["not"] "null"]
 *              op: = != <> < <= > >=
 *   primary := 'string' | number | #column | variable
 *            | function "(" [expr ("," expr)*] ")" | "(" expr ")"
 *
 * Strings are in single quotes ('' is a quote); numbers are decimal, with
 * an optional sign and fraction. Variables: source.host, source.database,
 * source.schema, source.table, target.schema, target.table, also written
 * with the reference's "mgr." prefix. Functions and their argument counts:
 * substring(2-3), date_format(2 or 4), now(0-1), if(3), concat(1+),
 * from_unixtime(1-2), unix_timestamp(1-3). Keywords and function names are
 * case-insensitive; column names are as written.
 *
 * An error names the position: expr_error_text() renders the expression
 * with a caret under it.
 */
#ifndef SYNCD_UDF_EXPR_H
#define SYNCD_UDF_EXPR_H

#include <stddef.h>

typedef enum expr_kind {
	EXPR_STRING,
	EXPR_NUMBER,
	EXPR_COLUMN,
	EXPR_VARIABLE,
	EXPR_CALL,
	EXPR_CMP,
	EXPR_IS_NULL,
	EXPR_AND,
	EXPR_OR,
	EXPR_NOT
} expr_kind;

typedef enum expr_var {
	VAR_SOURCE_HOST,
	VAR_SOURCE_DATABASE,
	VAR_SOURCE_SCHEMA,
	VAR_SOURCE_TABLE,
	VAR_TARGET_SCHEMA,
	VAR_TARGET_TABLE
} expr_var;

typedef enum expr_func {
	FN_SUBSTRING,
	FN_DATE_FORMAT,
	FN_NOW,
	FN_IF,
	FN_CONCAT,
	FN_FROM_UNIXTIME,
	FN_UNIX_TIMESTAMP
} expr_func;

typedef enum expr_op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE } expr_op;

typedef struct expr {
	expr_kind kind;
	size_t pos;   /* where it starts in the text */
	char *text;   /* STRING, NUMBER (as written), COLUMN name */
	expr_var var; /* VARIABLE */
	expr_func fn; /* CALL */
	expr_op op;   /* CMP */
	int negated;  /* IS_NULL: is not null */
	size_t nargs; /* CALL, CMP (2), AND/OR (2), NOT (1), IS_NULL (1) */
	struct expr **args;
} expr;

/* Parses text; NULL on error, with *err_pos and *err (a static message)
 * set. */
expr *expr_parse(const char *text, size_t *err_pos, const char **err);
void expr_free(expr *e);

/* "MESSAGE\n  TEXT\n  ^" with the caret under err_pos (malloc'd). */
char *expr_error_text(const char *text, size_t err_pos, const char *err);

#endif
