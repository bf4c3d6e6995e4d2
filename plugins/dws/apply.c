/*
 * apply.c - writing a batch: one destination transaction holding the
 * batch's changes, folded per target table and key, applied set by set (the
 * upsert mode's multi-row INSERT ... ON CONFLICT and batched DELETE, or the
 * copy mode's COPY into a staging table and a few set-based statements
 * from it), and the batch's progress.
 *
 * A row that carries only some columns (unchanged TOAST values, a soft
 * delete) is an UPDATE of the existing destination row, never an insert:
 * its other values are unknown, and NOT NULL would refuse them. When the
 * UPDATE touches fewer rows than it was given, the keys it missed are
 * looked up and those rows handed to the dirty-data path (SQLSTATE 02000).
 *
 * A data error (SQLSTATE class 22 or 23, or 42804) rolls the batch back
 * and writes it again with that table's rows one by one, each under a
 * savepoint, so the refused row is found and handed to the dirty-data path
 * (which fails the job when dirty data is off) and the rest is applied.
 */
#define _GNU_SOURCE /* asprintf */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dws.h"

#define DWS_MAX_PARAMS 65535
#define DWS_MAX_ROWS   2000 /* rows per statement */

/* ---- shared steps ------------------------------------------------------ */

static const char *
dws_param(dws_worker *w, const syncd_value *v)
{
	if (v->kind != SYNCD_VALUE_TEXT)
		return NULL;
	return dws_arena_strndup(&w->arena, v->data, v->len);
}

static char *
dws_what(const char *verb, const dws_target *t)
{
	char *s = NULL;
	if (asprintf(&s, "%s target table %s", verb, t->label) < 0)
		abort();
	return s;
}

/* ---- replays over a newer copy ----------------------------------------
 *
 * A copy resumed after a restart reads the tables it had not finished
 * from a fresh snapshot, newer than the slot's position: the stream then
 * replays, for those tables, changes that the copied rows already hold.
 * Replaying a whole row is harmless (a later change in the replay sets
 * what it must), but a value taken from the destination is not: the row
 * there may be a newer version, or another row that took the key since
 * (issue 13, defect 10). So a row whose changes begin before the position
 * its table's copy was consistent with never reads the destination: a key
 * move keeps the values of the row at its new key (the copy holds that
 * row's version, or a later change replays what became of it), and a
 * partial row whose key is gone is skipped (a later change in the replay
 * deleted or moved it before the copy was taken). */

/* The position the copy of t's source table (rel) was consistent with (0
 * when there was none, or it is unknown), read once per target and
 * again after the copy state changed (dws_state.snap_epoch). */
static dws_rc
dws_snapshot_lsn(dws_worker *w, dws_target *t, const syncd_relation *rel,
                 uint32_t stream)
{
	const char *params[5];
	char streamtxt[16];
	char *copy = NULL;
	dws_buf sql = {0};
	PGresult *res = NULL;
	bool has = false;
	dws_rc rc = DWS_OK;
	unsigned epoch = __atomic_load_n(&w->s->snap_epoch, __ATOMIC_SEQ_CST);

	/* read again after a copy or a forget rewrote the copy state */
	if (t->snap_known && t->snap_epoch == epoch)
		return DWS_OK;
	t->snap_known = false;
	t->snap_epoch = epoch;
	t->snap_lsn = 0;
	if (!w->s->full) {
		t->snap_known = true;
		return DWS_OK;
	}
	/* the copy state may predate the column, or not exist at all */
	rc = dws_copy_has_snapshots(w, &has);
	if (rc != DWS_OK || !has) {
		t->snap_known = rc == DWS_OK;
		return rc;
	}
	copy = dws_qualified(w, w->s->state_schema, "syncd_copy");
	dws_buf_printf(
	    &sql,
	    "SELECT snapshot_lsn FROM %s WHERE job = $1 AND stream = "
	    "$2::integer AND source_schema = $3 AND source_table = "
	    "$4 AND chunk = -1",
	    copy);
	snprintf(streamtxt, sizeof streamtxt, "%u", stream);
	params[0] = w->s->job;
	params[1] = streamtxt;
	params[2] = rel->schema;
	params[3] = rel->table;
	rc = dws_exec(w, "reading the copy state", sql.data, 4, params, &res);
	if (rc == DWS_OK) {
		if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
			t->snap_lsn = (syncd_lsn) strtoull(
			    PQgetvalue(res, 0, 0), NULL, 10);
		t->snap_known = true;
		PQclear(res);
	}
	free(copy);
	dws_buf_free(&sql);
	return rc;
}

/* Does r replay changes its table's copy already holds? */
static bool
dws_replayed(const dws_target *t, const dws_row *r)
{
	return t->snap_lsn && r->first_lsn < t->snap_lsn;
}

/* A key change whose unchanged-TOAST values were not in the batch takes
 * them from the old row at the destination, read before it is deleted. If
 * the old row is gone, the row stays partial: an UPDATE at its new key.
 * A replayed one stays partial too (see above). */
static dws_rc
dws_resolve_origins(dws_worker *w, dws_pending *p)
{
	dws_target *t = p->t;
	dws_buf sql = {0};
	dws_rc rc = DWS_OK;
	char *what = NULL;

	for (size_t i = 0; i < p->nrows && rc == DWS_OK; i++) {
		dws_row *r = &p->rows[i];
		const char **params;
		PGresult *res = NULL;
		syncd_value *m;
		int nu = 0;

		if (r->op != DWS_OP_WRITE || !r->partial || !r->origin)
			continue;
		if (dws_replayed(t, r)) {
			r->origin = NULL;
			continue;
		}
		if (!what)
			what = dws_what("reading a moved row of", t);
		dws_buf_reset(&sql);
		dws_buf_puts(&sql, "SELECT ");
		for (int c = 0; c < t->ncols; c++)
			if (r->vals[c].kind == SYNCD_VALUE_UNCHANGED)
				dws_buf_printf(&sql, "%s%s", nu++ ? ", " : "",
				               t->cols[c].qname);
		dws_buf_printf(&sql, " FROM %s WHERE ", t->qtable);
		params = dws_arena_alloc(&w->arena,
		                         (size_t) t->nkeys * sizeof *params);
		for (int k = 0; k < t->nkeys; k++) {
			const dws_col *c = &t->cols[t->keys[k]];
			dws_buf_printf(&sql, "%s%s = $%d::%s", k ? " AND " : "",
			               c->qname, k + 1, c->generic);
			params[k] = dws_param(w, &r->origin[t->keys[k]]);
		}
		rc = dws_exec(w, what, sql.data, t->nkeys, params, &res);
		if (rc != DWS_OK)
			break;
		if (PQntuples(res) == 1) {
			int f = 0;
			m = dws_arena_alloc(&w->arena,
			                    (size_t) t->ncols * sizeof *m);
			for (int c = 0; c < t->ncols; c++) {
				m[c] = r->vals[c];
				if (r->vals[c].kind != SYNCD_VALUE_UNCHANGED)
					continue;
				if (PQgetisnull(res, 0, f))
					m[c] = (syncd_value){SYNCD_VALUE_NULL,
					                     0, NULL};
				else {
					int len = PQgetlength(res, 0, f);
					m[c] = (syncd_value){
					    SYNCD_VALUE_TEXT, (uint32_t) len,
					    dws_arena_strndup(
					        &w->arena,
					        PQgetvalue(res, 0, f),
					        (size_t) len)};
				}
				f++;
			}
			r->vals = m;
			r->partial = false;
		}
		r->origin = NULL;
		PQclear(res);
	}
	free(what);
	dws_buf_free(&sql);
	return rc;
}

/* Writes sharing the same known columns go in one statement. */
typedef struct dws_group {
	char *mask; /* per column: 1 when the value is known */
	int *cols;
	int n;
	bool partial; /* some column unknown: an UPDATE */
	int nset;     /* known non-key columns */
	dws_row **rows;
	size_t nrows;
} dws_group;

static size_t
dws_groups(dws_worker *w, dws_pending *p, dws_group **out)
{
	dws_target *t = p->t;
	dws_group *g = NULL;
	size_t ng = 0, cap = 0;
	char *mask = dws_arena_alloc(&w->arena, (size_t) t->ncols + 1);

	for (size_t i = 0; i < p->nrows; i++) {
		dws_row *r = &p->rows[i];
		size_t k;
		if (r->op != DWS_OP_WRITE)
			continue;
		for (int c = 0; c < t->ncols; c++)
			mask[c] = r->vals[c].kind != SYNCD_VALUE_UNCHANGED;
		for (k = 0; k < ng; k++)
			if (memcmp(g[k].mask, mask, (size_t) t->ncols) == 0)
				break;
		if (k == ng) {
			if (ng == cap) {
				cap = cap ? cap * 2 : 4;
				g = realloc(g, cap * sizeof *g);
				if (!g)
					abort();
			}
			memset(&g[ng], 0, sizeof g[ng]);
			g[ng].mask = dws_arena_strndup(&w->arena, mask,
			                               (size_t) t->ncols);
			g[ng].cols = dws_arena_alloc(
			    &w->arena, (size_t) t->ncols * sizeof(int));
			for (int c = 0; c < t->ncols; c++) {
				if (!mask[c]) {
					g[ng].partial = true;
					continue;
				}
				g[ng].cols[g[ng].n++] = c;
				if (!t->cols[c].key)
					g[ng].nset++;
			}
			ng++;
		}
		r->set = (int) k;
		g[k].nrows++;
	}
	for (size_t k = 0; k < ng; k++) {
		g[k].rows =
		    dws_arena_alloc(&w->arena, g[k].nrows * sizeof *g[k].rows);
		g[k].nrows = 0;
	}
	for (size_t i = 0; i < p->nrows; i++)
		if (p->rows[i].op == DWS_OP_WRITE) {
			dws_group *x = &g[p->rows[i].set];
			x->rows[x->nrows++] = &p->rows[i];
		}
	*out = g;
	return ng;
}

#define DWS_ARRAY_ROWS 20000 /* rows per statement with array parameters */

/* A text[] literal of column col of rows: {"a","b\\"c",NULL} */
static const char *
dws_array(dws_worker *w, dws_row **rows, size_t n, int col)
{
	dws_buf *b = &w->data;

	dws_buf_reset(b);
	dws_buf_add(b, "{", 1);
	for (size_t i = 0; i < n; i++) {
		const syncd_value *v = &rows[i]->vals[col];
		const char *s, *run, *end;
		if (i)
			dws_buf_add(b, ",", 1);
		if (v->kind != SYNCD_VALUE_TEXT) {
			dws_buf_add(b, "NULL", 4);
			continue;
		}
		dws_buf_add(b, "\"", 1);
		s = run = v->data;
		end = s + v->len;
		for (; s < end; s++)
			if (*s == '"' || *s == '\\') {
				dws_buf_add(b, run, (size_t) (s - run));
				dws_buf_add(b, "\\", 1);
				run = s;
			}
		dws_buf_add(b, run, (size_t) (s - run));
		dws_buf_add(b, "\"", 1);
	}
	dws_buf_add(b, "}", 1);
	return dws_arena_strndup(&w->arena, b->data, b->len);
}

/* Rows per statement and the parameters of rows[0..m) for the columns
 * cols: one text[] per column with the arrays dialect, else one parameter
 * per value, row by row. */
static size_t
dws_rows_per_stmt(const dws_worker *w, int nc)
{
	size_t per;

	if (w->dialect->arrays)
		return DWS_ARRAY_ROWS;
	per = DWS_MAX_PARAMS / (size_t) nc;
	return per > DWS_MAX_ROWS ? DWS_MAX_ROWS : per;
}

static const char **
dws_row_params(dws_worker *w, dws_row **rows, size_t m, const int *cols, int nc,
               int *nparams)
{
	bool arrays = w->dialect->arrays;
	const char **params = dws_arena_alloc(
	    &w->arena, (arrays ? 1 : m) * (size_t) nc * sizeof *params);
	int k = 0;

	if (arrays)
		for (int c = 0; c < nc; c++)
			params[k++] = dws_array(w, rows, m, cols[c]);
	else
		for (size_t i = 0; i < m; i++)
			for (int c = 0; c < nc; c++)
				params[k++] =
				    dws_param(w, &rows[i]->vals[cols[c]]);
	*nparams = k;
	return params;
}

/* Hands a row to the dirty-data path, once per write() however often the
 * batch is written again. */
struct dws_rejected {
	const syncd_event *ev;
	char op;
};

static dws_rc
dws_reject_row(dws_worker *w, const dws_row *r, const char *sqlstate,
               const char *msg)
{
	for (size_t i = 0; i < w->nrejected; i++)
		if (w->rejected[i].ev == r->ev && w->rejected[i].op == r->op)
			return DWS_OK;
	if (w->nrejected == w->caprejected) {
		w->caprejected = w->caprejected ? w->caprejected * 2 : 16;
		w->rejected =
		    realloc(w->rejected, w->caprejected * sizeof *w->rejected);
		if (!w->rejected)
			abort();
	}
	w->rejected[w->nrejected++] = (struct dws_rejected){r->ev, r->op};
	if (w->s->host->sink->reject(w->s->host, w->id, r->ev, sqlstate, msg) !=
	    SYNCD_OK)
		return DWS_REJECTED;
	return DWS_OK;
}

/* "(a, b)=(1, x)": r's key, names and values, long values cut. */
static void
dws_row_text(dws_buf *b, const dws_target *t, const dws_row *r)
{
	dws_buf_puts(b, "(");
	for (int k = 0; k < t->nkeys; k++)
		dws_buf_printf(b, "%s%s", k ? ", " : "",
		               t->cols[t->keys[k]].name);
	dws_buf_puts(b, ")=(");
	for (int k = 0; k < t->nkeys; k++) {
		const syncd_value *v = &r->vals[t->keys[k]];
		if (k)
			dws_buf_puts(b, ", ");
		if (v->kind != SYNCD_VALUE_TEXT)
			dws_buf_puts(b, "NULL");
		else if (v->len > 64) {
			dws_buf_add(b, v->data, 64);
			dws_buf_puts(b, "...");
		} else
			dws_buf_add(b, v->data, v->len);
	}
	dws_buf_puts(b, ")");
}

/* A partial row whose key has no row at the destination: its other values
 * are unknown, so it cannot be inserted; it is dirty data (no_data). */
static dws_rc
dws_reject_missing_row(dws_worker *w, dws_target *t, const dws_row *r)
{
	dws_buf msg = {0};
	int shown = 0, more = 0;
	dws_rc rc;

	if (dws_replayed(t, r)) {
		if (!t->snap_logged)
			SYNCD_LOG_INFO(
			    w->s->host,
			    "worker %d: replaying changes of %s older than its "
			    "copy (consistent with " SYNCD_LSN_FMT
			    "): a partial row whose key is gone is skipped, "
			    "as the copy holds what became of it",
			    w->id, t->label, SYNCD_LSN_ARGS(t->snap_lsn));
		t->snap_logged = true;
		return DWS_OK;
	}
	dws_buf_puts(&msg, "no row with key ");
	dws_row_text(&msg, t, r);
	dws_buf_printf(&msg,
	               " in target table %s: the change carries only some "
	               "columns (",
	               t->label);
	for (int c = 0; c < t->ncols; c++) {
		if (r->vals[c].kind != SYNCD_VALUE_UNCHANGED)
			continue;
		if (shown == 8) {
			more++;
			continue;
		}
		dws_buf_printf(&msg, "%s%s", shown++ ? ", " : "",
		               t->cols[c].name);
	}
	if (more)
		dws_buf_printf(&msg, " and %d more", more);
	dws_buf_puts(&msg, " unchanged), so it cannot be inserted; copy the "
	                   "row from the source or re-sync the table");
	rc = dws_reject_row(w, r, "02000", msg.data);
	dws_buf_free(&msg);
	return rc;
}

/* Finds which of rows[0..n) have no row at the destination (a SELECT of
 * the absent keys) and hands those to the dirty-data path. */
static dws_rc
dws_reject_missing(dws_worker *w, dws_target *t, dws_row **rows, size_t n)
{
	size_t per = dws_rows_per_stmt(w, t->nkeys);
	char *what = dws_what("looking for the keys of partial rows in", t);
	dws_rc rc = DWS_OK;

	for (size_t at = 0; at < n && rc == DWS_OK; at += per) {
		size_t m = n - at < per ? n - at : per;
		int np;
		const char **params =
		    dws_row_params(w, rows + at, m, t->keys, t->nkeys, &np);
		PGresult *res = NULL;

		dws_buf_reset(&w->sql);
		if (w->dialect->arrays)
			dws_sql_missing_arrays(&w->sql, t);
		else
			dws_sql_missing(&w->sql, w->dialect, t, (int) m);
		rc = dws_exec(w, what, w->sql.data, np, params, &res);
		for (int i = 0; rc == DWS_OK && i < PQntuples(res); i++) {
			long pos = atol(PQgetvalue(res, i, 0));
			if (pos < 1 || (size_t) pos > m)
				continue;
			rc = dws_reject_missing_row(w, t, rows[at + pos - 1]);
		}
		PQclear(res);
	}
	free(what);
	return rc;
}

/* Partial rows of group g: UPDATE ... FROM the batch's values; when fewer
 * rows were updated than given, the missing keys are rejected. A group
 * that knows no non-key column has nothing to SET: only its keys are
 * checked. */
static dws_rc
dws_update_rows(dws_worker *w, dws_target *t, const dws_group *g,
                dws_row **rows, size_t n)
{
	size_t per = dws_rows_per_stmt(w, g->n);
	char *what = dws_what("updating", t);
	dws_rc rc = DWS_OK;

	if (g->nset == 0) {
		free(what);
		return dws_reject_missing(w, t, rows, n);
	}
	for (size_t at = 0; at < n && rc == DWS_OK; at += per) {
		size_t m = n - at < per ? n - at : per;
		int np;
		const char **params =
		    dws_row_params(w, rows + at, m, g->cols, g->n, &np);
		PGresult *res = NULL;

		dws_buf_reset(&w->sql);
		if (w->dialect->arrays)
			dws_sql_update_arrays(&w->sql, t, g->cols, g->n);
		else
			dws_sql_update(&w->sql, w->dialect, t, g->cols, g->n,
			               (int) m);
		rc = dws_exec(w, what, w->sql.data, np, params, &res);
		if (rc == DWS_OK && strtoull(PQcmdTuples(res), NULL, 10) <
		                        (unsigned long long) m)
			rc = dws_reject_missing(w, t, rows + at, m);
		PQclear(res);
	}
	free(what);
	return rc;
}

/* Deletes rows by key (g NULL) or writes the columns of group g (partial
 * groups: dws_update_rows), in as few statements as the parameters
 * allow. */
static dws_rc
dws_rows_stmt(dws_worker *w, dws_target *t, const dws_group *g, dws_row **rows,
              size_t n)
{
	const int *cols = g ? g->cols : t->keys;
	int nc = g ? g->n : t->nkeys;
	size_t per = dws_rows_per_stmt(w, nc);
	char *what;
	dws_rc rc = DWS_OK;

	if (g && g->partial)
		return dws_update_rows(w, t, g, rows, n);
	what = dws_what(g ? "writing to" : "deleting from", t);
	for (size_t at = 0; at < n && rc == DWS_OK; at += per) {
		size_t m = n - at < per ? n - at : per;
		int np;
		const char **params =
		    dws_row_params(w, rows + at, m, cols, nc, &np);
		dws_buf_reset(&w->sql);
		if (w->dialect->arrays) {
			if (g)
				dws_sql_upsert_arrays(&w->sql, t, cols, nc);
			else
				dws_sql_delete_arrays(&w->sql, t);
		} else if (g)
			dws_sql_upsert(&w->sql, w->dialect, t, cols, nc,
			               (int) m);
		else
			dws_sql_delete(&w->sql, w->dialect, t, (int) m);
		rc = dws_exec(w, what, w->sql.data, np, params, NULL);
	}
	free(what);
	return rc;
}

static size_t
dws_collect_deletes(dws_worker *w, dws_pending *p, dws_row ***out)
{
	dws_row **d = dws_arena_alloc(&w->arena, (p->nrows + 1) * sizeof *d);
	size_t n = 0;
	for (size_t i = 0; i < p->nrows; i++)
		if (p->rows[i].op == DWS_OP_DELETE || p->rows[i].delete_first)
			d[n++] = &p->rows[i];
	*out = d;
	return n;
}

/* ---- upsert mode ------------------------------------------------------- */

dws_rc
dws_upsert_apply(dws_worker *w, dws_pending *p)
{
	dws_row **dels;
	size_t nd, ng;
	dws_group *g = NULL;
	dws_rc rc = dws_resolve_origins(w, p);

	if (rc != DWS_OK)
		return rc;
	nd = dws_collect_deletes(w, p, &dels);
	if (nd)
		rc = dws_rows_stmt(w, p->t, NULL, dels, nd);
	ng = dws_groups(w, p, &g);
	for (size_t k = 0; k < ng && rc == DWS_OK; k++)
		rc = dws_rows_stmt(w, p->t, &g[k], g[k].rows, g[k].nrows);
	free(g);
	return rc;
}

/* ---- copy mode --------------------------------------------------------- */

/* COPY text format: backslash, tab, newline and carriage return escaped;
 * \N is NULL (and the unknown value of a column a row does not write). */
static void
dws_copy_value(dws_buf *b, const syncd_value *v)
{
	const char *s, *end, *run;

	if (v->kind != SYNCD_VALUE_TEXT) {
		dws_buf_add(b, "\\N", 2);
		return;
	}
	s = v->data;
	end = s + v->len;
	run = s;
	for (; s < end; s++) {
		const char *esc;
		switch (*s) {
		case '\\': esc = "\\\\"; break;
		case '\t': esc = "\\t"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		default: continue;
		}
		dws_buf_add(b, run, (size_t) (s - run));
		dws_buf_add(b, esc, 2);
		run = s + 1;
	}
	dws_buf_add(b, run, (size_t) (s - run));
}

static dws_rc
dws_stage_prepare(dws_worker *w, dws_target *t, int tx)
{
	char *what = dws_what("staging rows for", t);
	dws_rc rc;

	dws_buf_reset(&w->sql);
	if (t->stage_ready && t->stage_used_tx != tx) {
		t->stage_used_tx = tx;
		free(what);
		return DWS_OK; /* ON COMMIT DELETE ROWS emptied it */
	}
	if (t->stage_ready)
		dws_buf_printf(&w->sql, "TRUNCATE %s", t->stage);
	else {
		free(t->stage);
		if (asprintf(&t->stage, "syncd_stage_%d", ++w->stage_seq) < 0)
			abort();
		dws_buf_printf(&w->sql,
		               "CREATE TEMPORARY TABLE %s (syncd_op char(1), "
		               "syncd_set integer",
		               t->stage);
		for (int c = 0; c < t->ncols; c++)
			dws_buf_printf(&w->sql, ", %s %s", t->cols[c].qname,
			               t->cols[c].stage);
		dws_buf_puts(&w->sql, ") ON COMMIT DELETE ROWS");
		t->stage_created_tx = tx;
	}
	rc = dws_exec(w, what, w->sql.data, 0, NULL, NULL);
	if (rc == DWS_OK) {
		t->stage_ready = true;
		t->stage_used_tx = tx;
	}
	free(what);
	return rc;
}

static dws_rc
dws_copy_rows(dws_worker *w, dws_pending *p)
{
	dws_target *t = p->t;
	dws_buf *b = &w->data;
	char *what = dws_what("copying rows for", t);
	PGresult *res;
	dws_rc rc = DWS_OK;

	dws_buf_reset(&w->sql);
	dws_buf_printf(&w->sql, "COPY %s (syncd_op, syncd_set", t->stage);
	for (int c = 0; c < t->ncols; c++)
		dws_buf_printf(&w->sql, ", %s", t->cols[c].qname);
	dws_buf_puts(&w->sql, ") FROM STDIN");
	res = PQexec(w->conn, w->sql.data);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		rc = dws_result_error(w, what, res);
		free(what);
		return rc == DWS_OK ? DWS_FATAL : rc;
	}
	PQclear(res);
	dws_buf_reset(b);
	for (size_t i = 0; i < p->nrows; i++) {
		const dws_row *r = &p->rows[i];
		char op = r->op == DWS_OP_DELETE ? 'd'
		          : r->delete_first      ? 'r'
		                                 : 'w';
		dws_buf_printf(b, "%c\t%d", op,
		               r->op == DWS_OP_WRITE ? r->set : 0);
		for (int c = 0; c < t->ncols; c++) {
			dws_buf_add(b, "\t", 1);
			if (r->op == DWS_OP_DELETE && !t->cols[c].key)
				dws_buf_add(b, "\\N", 2);
			else
				dws_copy_value(b, &r->vals[c]);
		}
		dws_buf_add(b, "\n", 1);
		if (b->len >= 1024 * 1024 || i + 1 == p->nrows) {
			if (PQputCopyData(w->conn, b->data, (int) b->len) != 1)
				break;
			dws_buf_reset(b);
		}
	}
	PQputCopyEnd(w->conn, NULL);
	while ((res = PQgetResult(w->conn)) != NULL) {
		ExecStatusType st = PQresultStatus(res);
		if (st != PGRES_COMMAND_OK && rc == DWS_OK) {
			rc = dws_result_error(w, what, res);
			continue;
		}
		PQclear(res);
	}
	if (rc == DWS_OK && PQstatus(w->conn) == CONNECTION_BAD)
		rc = dws_exec(w, what, "SELECT 1", 0, NULL, NULL);
	free(what);
	return rc;
}

dws_rc
dws_copy_apply(dws_worker *w, dws_pending *p, int tx)
{
	dws_group *g = NULL;
	size_t ng, nd = 0;
	char *what;
	dws_rc rc = dws_resolve_origins(w, p);

	if (rc != DWS_OK)
		return rc;
	ng = dws_groups(w, p, &g);
	for (size_t i = 0; i < p->nrows; i++)
		if (p->rows[i].op == DWS_OP_DELETE || p->rows[i].delete_first)
			nd++;
	rc = dws_stage_prepare(w, p->t, tx);
	if (rc == DWS_OK)
		rc = dws_copy_rows(w, p);
	if (rc == DWS_OK && nd) {
		what = dws_what("deleting from", p->t);
		dws_buf_reset(&w->sql);
		dws_sql_delete_stage(&w->sql, w->dialect, p->t);
		rc = dws_exec(w, what, w->sql.data, 0, NULL, NULL);
		free(what);
	}
	for (size_t k = 0; k < ng && rc == DWS_OK; k++) {
		PGresult *res = NULL;
		if (g[k].partial && g[k].nset == 0) {
			rc = dws_reject_missing(w, p->t, g[k].rows, g[k].nrows);
			continue;
		}
		what = dws_what(g[k].partial ? "updating" : "writing to", p->t);
		dws_buf_reset(&w->sql);
		if (g[k].partial)
			dws_sql_update_stage(&w->sql, w->dialect, p->t,
			                     g[k].cols, g[k].n, (int) k);
		else
			dws_sql_merge_stage(&w->sql, w->dialect, p->t,
			                    g[k].cols, g[k].n, (int) k);
		rc = dws_exec(w, what, w->sql.data, 0, NULL,
		              g[k].partial ? &res : NULL);
		free(what);
		if (rc == DWS_OK && g[k].partial &&
		    strtoull(PQcmdTuples(res), NULL, 10) <
		        (unsigned long long) g[k].nrows)
			rc = dws_reject_missing(w, p->t, g[k].rows, g[k].nrows);
		PQclear(res);
	}
	free(g);
	return rc;
}

/* ---- bisection, to find the rows the destination refuses ------------- */

/* Applies rows[0..n) (deletes first, then the writes of each column set)
 * under a savepoint. When the destination refuses them for their data,
 * the range is rolled back and its halves are applied in turn, down to
 * single rows, which go to the dirty-data path: a few bad rows cost about
 * 2 log2(n) statements each, and every other row is applied. Rows of one
 * table in a batch are folded to one per key, so their order does not
 * matter. */
static dws_rc
dws_bisect(dws_worker *w, dws_target *t, const dws_group *g, size_t ng,
           dws_row **rows, size_t n, dws_row **scratch)
{
	size_t k = 0;
	dws_rc rc;

	if (n == 0)
		return DWS_OK;
	rc = dws_exec(w, "setting a savepoint", "SAVEPOINT syncd_part", 0, NULL,
	              NULL);
	if (rc != DWS_OK)
		return rc;
	for (size_t i = 0; i < n; i++)
		if (rows[i]->op == DWS_OP_DELETE || rows[i]->delete_first)
			scratch[k++] = rows[i];
	rc = dws_rows_stmt(w, t, NULL, scratch, k);
	for (size_t set = 0; set < ng && rc == DWS_OK; set++) {
		k = 0;
		for (size_t i = 0; i < n; i++)
			if (rows[i]->op == DWS_OP_WRITE &&
			    rows[i]->set == (int) set)
				scratch[k++] = rows[i];
		rc = dws_rows_stmt(w, t, &g[set], scratch, k);
	}
	if (rc == DWS_OK)
		return dws_exec(w, "releasing a savepoint",
		                "RELEASE SAVEPOINT syncd_part", 0, NULL, NULL);
	if (rc != DWS_DATA)
		return rc;
	{
		char state[6];
		char *msg = strdup(dws_last_message());
		snprintf(state, sizeof state, "%s",
		         dws_last_sqlstate() ? dws_last_sqlstate() : "");
		rc = dws_exec(w, "rolling back to a savepoint",
		              "ROLLBACK TO SAVEPOINT syncd_part; RELEASE "
		              "SAVEPOINT syncd_part",
		              0, NULL, NULL);
		if (rc == DWS_OK && n == 1)
			rc = dws_reject_row(w, rows[0], state[0] ? state : NULL,
			                    msg);
		free(msg);
	}
	if (rc != DWS_OK || n == 1)
		return rc;
	rc = dws_bisect(w, t, g, ng, rows, n / 2, scratch);
	if (rc == DWS_OK)
		rc = dws_bisect(w, t, g, ng, rows + n / 2, n - n / 2, scratch);
	return rc;
}

dws_rc
dws_apply_rows(dws_worker *w, dws_pending *p)
{
	dws_group *g = NULL;
	dws_row **rows, **scratch;
	size_t ng;
	dws_rc rc = dws_resolve_origins(w, p);

	if (rc != DWS_OK)
		return rc;
	ng = dws_groups(w, p, &g);
	rows = calloc(p->nrows + 1, sizeof *rows);
	scratch = calloc(p->nrows + 1, sizeof *scratch);
	if (!rows || !scratch)
		abort();
	for (size_t i = 0; i < p->nrows; i++)
		rows[i] = &p->rows[i];
	rc = dws_bisect(w, p->t, g, ng, rows, p->nrows, scratch);
	free(rows);
	free(scratch);
	free(g);
	return rc;
}

/* ---- the batch ----------------------------------------------------------- */

typedef struct dws_batch_ctx {
	dws_worker *w;
	int tx;
	dws_pending *head, **tail;
} dws_batch_ctx;

static bool
dws_is_careful(dws_worker *w, uint64_t id)
{
	for (size_t i = 0; i < w->ncareful; i++)
		if (w->careful[i] == id)
			return true;
	return false;
}

static dws_rc
dws_flush_one(dws_batch_ctx *c, dws_pending *p)
{
	dws_worker *w = c->w;
	dws_rc rc;

	if (p->nrows == 0)
		return DWS_OK;
	rc = dws_snapshot_lsn(w, p->t, p->rel, p->rows[0].ev->stream);
	if (rc != DWS_OK)
		return rc;
	if (dws_is_careful(w, p->rel->id))
		return dws_apply_rows(w, p);
	SYNCD_LOG_DEBUG(w->s->host, "worker %d: %zu folded rows for %s", w->id,
	                p->nrows, p->t->label);
	rc = w->s->mode == DWS_MODE_COPY ? dws_copy_apply(w, p, c->tx)
	                                 : dws_upsert_apply(w, p);
	if (rc == DWS_DATA) {
		/* write the batch again, bisecting this table's rows */
		w->careful =
		    realloc(w->careful, (w->ncareful + 1) * sizeof *w->careful);
		if (!w->careful)
			abort();
		w->careful[w->ncareful++] = p->rel->id;
		rc = DWS_AGAIN;
	}
	return rc;
}

static void
dws_drop_pending(dws_batch_ctx *c)
{
	while (c->head) {
		dws_pending *n = c->head->next;
		dws_pending_free(c->head);
		free(c->head);
		c->head = n;
	}
	c->tail = &c->head;
}

static dws_rc
dws_flush_all(dws_batch_ctx *c)
{
	dws_rc rc = DWS_OK;
	for (dws_pending *p = c->head; p && rc == DWS_OK; p = p->next)
		rc = dws_flush_one(c, p);
	dws_drop_pending(c);
	return rc;
}

static dws_pending *
dws_pending_for(dws_batch_ctx *c, const syncd_relation *rel, dws_rc *rc)
{
	dws_pending **pp, *p;
	dws_target *t;

	*rc = DWS_OK;
	for (pp = &c->head; *pp; pp = &(*pp)->next)
		if ((*pp)->rel->id == rel->id)
			break;
	p = *pp;
	if (p && p->rel == rel)
		return p;
	if (p) {
		/* the table changed shape within the batch: what came
		 * before goes first */
		*rc = dws_flush_one(c, p);
		if (*rc != DWS_OK)
			return NULL;
		*pp = p->next;
		if (c->tail == &p->next)
			c->tail = pp;
		dws_pending_free(p);
		free(p);
	}
	t = dws_target_get(c->w, rel, rc);
	if (!t)
		return NULL;
	p = calloc(1, sizeof *p);
	if (!p)
		abort();
	p->t = t;
	p->rel = rel;
	*c->tail = p;
	c->tail = &p->next;
	return p;
}

static dws_rc
dws_truncate(dws_batch_ctx *c, const syncd_event *ev)
{
	dws_worker *w = c->w;
	dws_rc rc = dws_flush_all(c);
	dws_buf sql = {0};

	if (rc != DWS_OK)
		return rc;
	/* a table that another, not truncated with it, references by a
	 * foreign key cannot be truncated (whatever session_replication_role
	 * says): its rows are deleted instead (the key's triggers do not
	 * fire under replica, which syncd's sessions run as when targets
	 * have foreign keys) */
	{
		dws_buf oids = {0};
		const char *param[1];
		PGresult *r = NULL;
		bool referenced = false;

		dws_buf_puts(&oids, "{");
		for (uint32_t i = 0; i < ev->nrels && rc == DWS_OK; i++) {
			dws_target *t = dws_target_get(w, ev->rels[i], &rc);
			if (!t)
				break;
			param[0] = t->qtable;
			rc = dws_exec(w, "looking up a target table",
			              "SELECT $1::regclass::oid", 1, param, &r);
			if (rc == DWS_OK)
				dws_buf_printf(&oids, "%s%s", i ? "," : "",
				               PQgetvalue(r, 0, 0));
			if (r)
				PQclear(r);
			r = NULL;
		}
		dws_buf_puts(&oids, "}");
		param[0] = oids.data;
		if (rc == DWS_OK && ev->nrels)
			rc = dws_exec(
			    w, "looking for foreign keys to target tables",
			    "SELECT EXISTS (SELECT 1 FROM "
			    "pg_catalog.pg_constraint WHERE contype = 'f' "
			    "AND confrelid = ANY ($1::oid[]) AND NOT "
			    "conrelid = ANY ($1::oid[]))",
			    1, param, &r);
		if (rc == DWS_OK && r)
			referenced = PQgetvalue(r, 0, 0)[0] == 't';
		if (r)
			PQclear(r);
		dws_buf_free(&oids);
		for (uint32_t i = 0;
		     referenced && i < ev->nrels && rc == DWS_OK; i++) {
			dws_target *t = dws_target_get(w, ev->rels[i], &rc);
			if (!t)
				break;
			dws_buf_reset(&sql);
			dws_buf_printf(&sql, "DELETE FROM %s", t->qtable);
			rc = dws_exec(w, "emptying a target table (TRUNCATE)",
			              sql.data, 0, NULL, NULL);
		}
		if (referenced || rc != DWS_OK) {
			dws_buf_free(&sql);
			return rc;
		}
	}
	dws_buf_reset(&sql);
	dws_buf_puts(&sql, "TRUNCATE ");
	for (uint32_t i = 0; i < ev->nrels && rc == DWS_OK; i++) {
		dws_target *t = dws_target_get(w, ev->rels[i], &rc);
		if (t)
			dws_buf_printf(&sql, "%s%s", i ? ", " : "", t->qtable);
	}
	if (rc == DWS_OK && ev->nrels)
		rc = dws_exec(w, "truncating target tables", sql.data, 0, NULL,
		              NULL);
	dws_buf_free(&sql);
	return rc;
}

/* UPDATE_ALL: in every row of the target, the columns whose new values
 * the event carries (the logical_delete transform's TRUNCATE: every row
 * marked deleted, none removed). Nothing to set: nothing to do. */
static dws_rc
dws_update_all(dws_batch_ctx *c, const syncd_event *ev)
{
	dws_worker *w = c->w;
	dws_rc rc = dws_flush_all(c);
	const char **params;
	dws_target *t;
	char *what;
	int *cols, n = 0;

	if (rc != DWS_OK)
		return rc;
	t = dws_target_get(w, ev->rel, &rc);
	if (!t)
		return rc;
	cols =
	    dws_arena_alloc(&w->arena, ((size_t) t->ncols + 1) * sizeof *cols);
	params = dws_arena_alloc(&w->arena,
	                         ((size_t) t->ncols + 1) * sizeof *params);
	for (int i = 0; ev->new_values && i < t->ncols; i++)
		if (ev->new_values[i].kind != SYNCD_VALUE_UNCHANGED) {
			params[n] = dws_param(w, &ev->new_values[i]);
			cols[n++] = i;
		}
	if (n == 0)
		return DWS_OK;
	what = dws_what("updating every row of", t);
	dws_buf_reset(&w->sql);
	dws_sql_update_all(&w->sql, t, cols, n);
	rc = dws_exec(w, what, w->sql.data, n, params, NULL);
	free(what);
	return rc;
}

/* Writes the batch in one transaction; *folded: the changes that folding
 * made unnecessary to write. */
static dws_rc
dws_write_once(dws_worker *w, const syncd_batch *b, int tx, size_t *folded)
{
	dws_batch_ctx c = {.w = w, .tx = tx};
	size_t changes = 0, rows = 0;
	dws_rc rc;

	c.tail = &c.head;
	rc = dws_exec(w, "starting a transaction", "BEGIN", 0, NULL, NULL);
	for (size_t i = 0; i < b->nevents && rc == DWS_OK; i++) {
		const syncd_event *ev = b->events[i];
		dws_pending *p;

		switch (ev->type) {
		case SYNCD_EV_INSERT:
		case SYNCD_EV_UPDATE:
		case SYNCD_EV_DELETE:
			p = dws_pending_for(&c, ev->rel, &rc);
			if (p) {
				dws_fold(p, &w->arena, ev);
				changes++;
			}
			break;
		case SYNCD_EV_TRUNCATE: rc = dws_truncate(&c, ev); break;
		case SYNCD_EV_UPDATE_ALL: rc = dws_update_all(&c, ev); break;
		default: break;
		}
	}
	for (dws_pending *p = c.head; p; p = p->next)
		rows += p->nrows;
	*folded = changes > rows ? changes - rows : 0;
	if (rc == DWS_OK)
		rc = dws_flush_all(&c);
	dws_drop_pending(&c);
	for (size_t i = 0; i < b->nprogress && rc == DWS_OK; i++)
		rc = dws_progress_write(w, b->progress[i].stream, w->id,
		                        b->progress[i].lsn, w->s->layout);
	if (rc == DWS_OK)
		rc = dws_marks_write(w, b);
	if (rc == DWS_OK)
		rc = dws_exec(w, "committing a batch", "COMMIT", 0, NULL, NULL);
	return rc;
}

syncd_status
dws_write(void *wstate, const syncd_batch *b)
{
	dws_worker *w = wstate;
	syncd_status st = SYNCD_FATAL;

	w->ncareful = 0;
	w->nrejected = 0;
	for (;;) {
		int tx = ++w->tx;
		size_t folded = 0;
		dws_rc rc;

		w->evolving = true;
		rc = dws_write_once(w, b, tx, &folded);
		w->evolving = false;

		dws_arena_reset(&w->arena);
		if (rc == DWS_OK) {
			if (folded)
				w->s->host->metric_add(w->s->host,
				                       "rows_folded_total",
				                       (double) folded);
			st = SYNCD_OK;
			break;
		}
		if (PQstatus(w->conn) == CONNECTION_OK)
			PQclear(PQexec(w->conn, "ROLLBACK"));
		/* staging tables created by the rolled-back transaction are
		 * gone */
		for (dws_target *t = w->targets; t; t = t->next)
			if (t->stage_created_tx == tx)
				t->stage_ready = false;
		/* a target altered by it is as it was: looked at again */
		if (w->altered_tx == tx)
			dws_targets_free(w);
		if (rc == DWS_AGAIN)
			continue;
		/* DWS_DATA here is a data error outside a table's rows (a
		 * deferred constraint at COMMIT): nothing to isolate */
		st = rc == DWS_RETRY ? SYNCD_RETRY : SYNCD_FATAL;
		break;
	}
	free(w->rejected);
	w->rejected = NULL;
	w->nrejected = w->caprejected = 0;
	return st;
}
