/*
 * udf/expr.c - see expr.h. A recursive-descent parser over a small lexer;
 * depth is bounded so that hostile input cannot exhaust the stack.
 */
#define _GNU_SOURCE /* asprintf, strncasecmp */
#include "expr.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EXPR_MAX_DEPTH 64

typedef enum tok_kind {
	T_END,
	T_STRING,
	T_NUMBER,
	T_COLUMN,
	T_NAME, /* identifiers, dotted (source.table) */
	T_LPAREN,
	T_RPAREN,
	T_COMMA,
	T_OP
} tok_kind;

typedef struct parser {
	const char *s;
	size_t at;
	/* the current token */
	tok_kind kind;
	size_t pos, len;
	char *value; /* STRING (unquoted), NUMBER, COLUMN, NAME */
	expr_op op;
	int depth;
	const char *err;
	size_t err_pos;
} parser;

static bool
fail(parser *p, size_t pos, const char *msg)
{
	if (!p->err) {
		p->err = msg;
		p->err_pos = pos;
	}
	return false;
}

static char *
dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (!d)
		abort();
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* Reads the next token into p. */
static bool
lex(parser *p)
{
	const char *s = p->s;
	size_t i = p->at;

	free(p->value);
	p->value = NULL;
	while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
		i++;
	p->pos = i;
	if (!s[i]) {
		p->kind = T_END;
		p->at = i;
		return true;
	}
	if (s[i] == '(' || s[i] == ')' || s[i] == ',') {
		p->kind = s[i] == '('   ? T_LPAREN
		          : s[i] == ')' ? T_RPAREN
		                        : T_COMMA;
		p->at = i + 1;
		return true;
	}
	if (s[i] == '\'') {
		size_t n = 0, cap = 16;
		char *v = malloc(cap);
		if (!v)
			abort();
		for (i++;; i++) {
			if (!s[i]) {
				free(v);
				return fail(p, p->pos, "unterminated string");
			}
			if (s[i] == '\'') {
				if (s[i + 1] != '\'')
					break;
				i++;
			}
			if (n + 2 > cap) {
				v = realloc(v, cap *= 2);
				if (!v)
					abort();
			}
			v[n++] = s[i];
		}
		v[n] = '\0';
		p->kind = T_STRING;
		p->value = v;
		p->at = i + 1;
		return true;
	}
	if (isdigit((unsigned char) s[i]) ||
	    ((s[i] == '-' || s[i] == '+' || s[i] == '.') &&
	     (isdigit((unsigned char) s[i + 1]) ||
	      (s[i + 1] == '.' && isdigit((unsigned char) s[i + 2]))))) {
		size_t b = i;
		bool dot = false;
		if (s[i] == '-' || s[i] == '+')
			i++;
		for (; isdigit((unsigned char) s[i]) || (s[i] == '.' && !dot);
		     i++)
			if (s[i] == '.')
				dot = true;
		if (isalpha((unsigned char) s[i]) || s[i] == '_')
			return fail(p, i, "a number runs into a name");
		p->kind = T_NUMBER;
		p->value = dup_n(s + b, i - b);
		p->at = i;
		return true;
	}
	if (s[i] == '#') {
		size_t b = ++i;
		while (isalnum((unsigned char) s[i]) || s[i] == '_' ||
		       s[i] == '$' || (unsigned char) s[i] >= 0x80)
			i++;
		if (i == b)
			return fail(p, p->pos,
			            "# must be followed by a column "
			            "name");
		p->kind = T_COLUMN;
		p->value = dup_n(s + b, i - b);
		p->at = i;
		return true;
	}
	if (isalpha((unsigned char) s[i]) || s[i] == '_') {
		size_t b = i;
		while (isalnum((unsigned char) s[i]) || s[i] == '_' ||
		       (s[i] == '.' &&
		        (isalpha((unsigned char) s[i + 1]) || s[i + 1] == '_')))
			i++;
		p->kind = T_NAME;
		p->value = dup_n(s + b, i - b);
		p->at = i;
		return true;
	}
	p->kind = T_OP;
	if (s[i] == '=') {
		p->op = OP_EQ;
		p->at = i + 1;
	} else if (s[i] == '!' && s[i + 1] == '=') {
		p->op = OP_NE;
		p->at = i + 2;
	} else if (s[i] == '<' && s[i + 1] == '>') {
		p->op = OP_NE;
		p->at = i + 2;
	} else if (s[i] == '<') {
		p->op = s[i + 1] == '=' ? OP_LE : OP_LT;
		p->at = i + (s[i + 1] == '=' ? 2 : 1);
	} else if (s[i] == '>') {
		p->op = s[i + 1] == '=' ? OP_GE : OP_GT;
		p->at = i + (s[i + 1] == '=' ? 2 : 1);
	} else
		return fail(p, i, "unexpected character");
	return true;
}

static bool
is_word(const parser *p, const char *w)
{
	return p->kind == T_NAME && strcasecmp(p->value, w) == 0;
}

static expr *
node(expr_kind kind, size_t pos, size_t nargs)
{
	expr *e = calloc(1, sizeof *e);
	if (!e)
		abort();
	e->kind = kind;
	e->pos = pos;
	e->nargs = nargs;
	if (nargs) {
		e->args = calloc(nargs, sizeof *e->args);
		if (!e->args)
			abort();
	}
	return e;
}

/* One level deeper; false (and the error) past EXPR_MAX_DEPTH. */
static bool
deeper(parser *p, size_t pos)
{
	if (++p->depth <= EXPR_MAX_DEPTH)
		return true;
	return fail(p, pos, "the expression nests too deeply");
}

static expr *parse_or(parser *p);

static const struct {
	const char *name;
	expr_var var;
} vars[] = {{"source.host", VAR_SOURCE_HOST},
            {"source.database", VAR_SOURCE_DATABASE},
            {"source.schema", VAR_SOURCE_SCHEMA},
            {"source.table", VAR_SOURCE_TABLE},
            {"target.schema", VAR_TARGET_SCHEMA},
            {"target.table", VAR_TARGET_TABLE}};

static const struct {
	const char *name;
	expr_func fn;
	size_t min, max; /* max 0: any */
} funcs[] = {{"substring", FN_SUBSTRING, 2, 3},
             {"date_format", FN_DATE_FORMAT, 2, 4},
             {"now", FN_NOW, 0, 1},
             {"if", FN_IF, 3, 3},
             {"concat", FN_CONCAT, 1, 0},
             {"from_unixtime", FN_FROM_UNIXTIME, 1, 2},
             {"unix_timestamp", FN_UNIX_TIMESTAMP, 1, 3}};

static expr *
parse_call(parser *p, size_t fi, size_t pos)
{
	expr *e = node(EXPR_CALL, pos, 0);

	e->fn = funcs[fi].fn;
	if (!lex(p)) /* past ( */
		goto bad;
	if (p->kind != T_RPAREN)
		for (;;) {
			expr *a = parse_or(p);
			if (!a)
				goto bad;
			e->args =
			    realloc(e->args, (e->nargs + 1) * sizeof *e->args);
			if (!e->args)
				abort();
			e->args[e->nargs++] = a;
			if (p->kind == T_COMMA) {
				if (!lex(p))
					goto bad;
				continue;
			}
			if (p->kind != T_RPAREN) {
				fail(p, p->pos,
				     "expected , or ) in the arguments");
				goto bad;
			}
			break;
		}
	if (e->nargs < funcs[fi].min ||
	    (funcs[fi].max && e->nargs > funcs[fi].max) ||
	    (e->fn == FN_DATE_FORMAT && e->nargs == 3)) {
		static const char *const why[] = {
		    [FN_SUBSTRING] = "substring takes (#col, pos[, len])",
		    [FN_DATE_FORMAT] =
		        "date_format takes (#col, format[, src_tz, dst_tz])",
		    [FN_NOW] = "now takes ([tz])",
		    [FN_IF] = "if takes (condition, then, else)",
		    [FN_CONCAT] = "concat takes one argument or more",
		    [FN_FROM_UNIXTIME] = "from_unixtime takes (#col[, format])",
		    [FN_UNIX_TIMESTAMP] =
		        "unix_timestamp takes (#col[, precision, format])"};
		fail(p, pos, why[e->fn]);
		goto bad;
	}
	if (!lex(p)) /* past ) */
		goto bad;
	return e;
bad:
	expr_free(e);
	return NULL;
}

static expr *
parse_primary(parser *p)
{
	size_t pos = p->pos;
	expr *e;

	if (!deeper(p, pos))
		return NULL;
	switch (p->kind) {
	case T_STRING:
	case T_NUMBER:
	case T_COLUMN:
		e = node(p->kind == T_STRING   ? EXPR_STRING
		         : p->kind == T_NUMBER ? EXPR_NUMBER
		                               : EXPR_COLUMN,
		         pos, 0);
		e->text = p->value;
		p->value = NULL;
		if (!lex(p)) {
			expr_free(e);
			return NULL;
		}
		break;
	case T_LPAREN:
		if (!lex(p) || !(e = parse_or(p)))
			return NULL;
		if (p->kind != T_RPAREN) {
			fail(p, p->pos, "expected )");
			expr_free(e);
			return NULL;
		}
		if (!lex(p)) {
			expr_free(e);
			return NULL;
		}
		break;
	case T_NAME: {
		const char *name = p->value;
		if (strncasecmp(name, "mgr.", 4) == 0)
			name += 4;
		for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
			if (strcasecmp(name, vars[i].name) == 0) {
				e = node(EXPR_VARIABLE, pos, 0);
				e->var = vars[i].var;
				if (!lex(p)) {
					expr_free(e);
					return NULL;
				}
				p->depth--;
				return e;
			}
		for (size_t i = 0; i < sizeof funcs / sizeof *funcs; i++)
			if (strcasecmp(p->value, funcs[i].name) == 0) {
				if (!lex(p))
					return NULL;
				if (p->kind != T_LPAREN) {
					fail(p, p->pos,
					     "expected ( after the function "
					     "name");
					return NULL;
				}
				e = parse_call(p, i, pos);
				p->depth--;
				return e;
			}
		fail(p, pos,
		     strchr(p->value, '.')
		         ? "unknown variable (source.host, source.database, "
		           "source.schema, source.table, target.schema, "
		           "target.table)"
		         : "unknown function or word (a column is written "
		           "#name, a string 'text')");
		return NULL;
	}
	case T_END: fail(p, pos, "the expression ends too early"); return NULL;
	default: fail(p, pos, "expected a value"); return NULL;
	}
	p->depth--;
	return e;
}

static expr *
parse_cmp(parser *p)
{
	expr *left = parse_primary(p), *e;
	size_t pos = p->pos;

	if (!left)
		return NULL;
	if (is_word(p, "is")) {
		e = node(EXPR_IS_NULL, pos, 1);
		e->args[0] = left;
		if (!lex(p))
			goto bad;
		if (is_word(p, "not")) {
			e->negated = 1;
			if (!lex(p))
				goto bad;
		}
		if (!is_word(p, "null")) {
			fail(p, p->pos, "expected null after is [not]");
			goto bad;
		}
		if (!lex(p))
			goto bad;
		return e;
	}
	if (p->kind != T_OP)
		return left;
	e = node(EXPR_CMP, pos, 2);
	e->op = p->op;
	e->args[0] = left;
	if (!lex(p) || !(e->args[1] = parse_primary(p)))
		goto bad;
	return e;
bad:
	expr_free(e);
	return NULL;
}

static expr *
parse_not(parser *p)
{
	size_t pos = p->pos;
	expr *e;

	if (!is_word(p, "not"))
		return parse_cmp(p);
	if (!deeper(p, pos))
		return NULL;
	e = node(EXPR_NOT, pos, 1);
	if (!lex(p) || !(e->args[0] = parse_not(p))) {
		expr_free(e);
		return NULL;
	}
	p->depth--;
	return e;
}

static expr *
parse_binary(parser *p, const char *word, expr_kind kind,
             expr *(*next)(parser *) )
{
	expr *left = next(p);

	while (left && is_word(p, word)) {
		expr *e = node(kind, p->pos, 2);
		e->args[0] = left;
		if (!lex(p) || !(e->args[1] = next(p))) {
			expr_free(e);
			return NULL;
		}
		left = e;
	}
	return left;
}

static expr *
parse_and(parser *p)
{
	return parse_binary(p, "and", EXPR_AND, parse_not);
}

static expr *
parse_or(parser *p)
{
	expr *e;

	if (!deeper(p, p->pos))
		return NULL;
	e = parse_binary(p, "or", EXPR_OR, parse_and);
	p->depth--;
	return e;
}

expr *
expr_parse(const char *text, size_t *err_pos, const char **err)
{
	parser p = {.s = text ? text : ""};
	expr *e = NULL;

	if (lex(&p)) {
		if (p.kind == T_END)
			fail(&p, p.pos, "the expression is empty");
		else if ((e = parse_or(&p)) && p.kind != T_END) {
			fail(&p, p.pos,
			     "unexpected text after the expression (a missing "
			     "operator or comma?)");
			expr_free(e);
			e = NULL;
		}
	}
	free(p.value);
	if (!e) {
		*err_pos = p.err_pos;
		*err = p.err ? p.err : "invalid expression";
	}
	return e;
}

void
expr_free(expr *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->nargs; i++)
		expr_free(e->args[i]);
	free(e->args);
	free(e->text);
	free(e);
}

char *
expr_error_text(const char *text, size_t err_pos, const char *err)
{
	char *out = NULL;
	size_t len = strlen(text);

	if (err_pos > len)
		err_pos = len;
	if (asprintf(&out, "%s at position %zu:\n  %s\n  %*s^", err,
	             err_pos + 1, text, (int) err_pos, "") < 0)
		abort();
	return out;
}
