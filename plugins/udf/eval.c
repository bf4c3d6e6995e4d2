/*
 * udf/eval.c - see eval.h: the evaluator proper, which compiles an
 * expression into a tree of cnodes and evaluates it for each row. The rest
 * is in eval_value.c, eval_time.c and eval_func.c (see eval_impl.h).
 */
#include "eval_impl.h"

#include <stdlib.h>
#include <string.h>

#include <unicode/ucal.h>
#include <unicode/udat.h>

/* ---- compiling --------------------------------------------------------- */

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
		if (!udf_compile_call(p, n, err_pos, err))
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
		udf_cfail(err_pos, err, 0, "no expression");
		goto bad;
	}
	if (!(p->utc = udf_open_cal(u"UTC", true, &st))) {
		udf_cfail(err_pos, err, 0, "could not open a calendar (%s)",
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

/* ---- evaluating -------------------------------------------------------- */

static bool
ev_cmp(udf_prog *p, const cnode *n, const udf_row *row, val *out)
{
	val a, b;
	dec da, db;
	int c;

	if (!udf_ev(p, n->args[0], row, &a) || !udf_ev(p, n->args[1], row, &b))
		return false;
	if (!a.s || !b.s) {
		out->s = NULL;
		return true;
	}
	if (udf_dec_parse(a.s, a.len, &da) && udf_dec_parse(b.s, b.len, &db))
		c = udf_dec_cmp(&da, &db);
	else {
		c = memcmp(a.s, b.s, a.len < b.len ? a.len : b.len);
		if (c == 0)
			c = a.len < b.len ? -1 : a.len > b.len;
	}
	switch (n->e->op) {
	case OP_EQ: *out = udf_truth_val(c == 0); break;
	case OP_NE: *out = udf_truth_val(c != 0); break;
	case OP_LT: *out = udf_truth_val(c < 0); break;
	case OP_LE: *out = udf_truth_val(c <= 0); break;
	case OP_GT: *out = udf_truth_val(c > 0); break;
	case OP_GE: *out = udf_truth_val(c >= 0); break;
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

	if (!udf_ev(p, n->args[0], row, &v) || (l = udf_truth(p, fn, v)) == -2)
		return false;
	if (l == decides) {
		*out = udf_truth_val(l);
		return true;
	}
	if (!udf_ev(p, n->args[1], row, &v) || (r = udf_truth(p, fn, v)) == -2)
		return false;
	if (r == decides)
		*out = udf_truth_val(r);
	else if (l < 0 || r < 0)
		out->s = NULL;
	else
		*out = udf_truth_val(l);
	return true;
}

bool
udf_ev(udf_prog *p, const cnode *n, const udf_row *row, val *out)
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
	case EXPR_CALL: return udf_ev_call(p, n, row, out);
	case EXPR_CMP: return ev_cmp(p, n, row, out);
	case EXPR_IS_NULL:
		if (!udf_ev(p, n->args[0], row, &v))
			return false;
		*out = udf_truth_val((v.s == NULL) != (e->negated != 0));
		return true;
	case EXPR_AND:
	case EXPR_OR: return ev_logic(p, n, row, out);
	case EXPR_NOT:
		if (!udf_ev(p, n->args[0], row, &v) ||
		    (t = udf_truth(p, "not", v)) == -2)
			return false;
		if (t < 0)
			out->s = NULL;
		else
			*out = udf_truth_val(!t);
		return true;
	}
	return udf_fail(p, "unknown expression");
}

udf_result
udf_eval(udf_prog *p, const udf_row *row, const char **out, size_t *outlen)
{
	bool unchanged = false;
	val v;
	char *b;

	udf_arena_reset(p);
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
			udf_fail(p, "no column %s", p->cols[i]);
			*outlen = strlen(p->err);
			return UDF_ERROR;
		}
	}
	if (unchanged)
		return UDF_UNCHANGED;
	if (!udf_ev(p, p->top, row, &v)) {
		*outlen = strlen(p->err);
		return UDF_ERROR;
	}
	if (!v.s)
		return UDF_NULL;
	/* a copy: the row's text may not outlive this call */
	b = udf_arena_alloc(p, v.len + 1);
	memcpy(b, v.s, v.len);
	b[v.len] = '\0';
	*out = b;
	*outlen = v.len;
	return UDF_VALUE;
}
