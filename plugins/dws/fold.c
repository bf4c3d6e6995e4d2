/*
 * fold.c - the changes of one batch to one target table, folded per key to
 * their net effect, so that no statement touches a row twice ("ON CONFLICT
 * DO UPDATE command cannot affect row a second time") and a hot key costs
 * one write per batch:
 *
 *   insert, update, delete       -> delete
 *   delete, insert               -> delete, then write the new row
 *   update, update, ...          -> one write; a value that arrived as
 *                                   unchanged TOAST keeps the value an
 *                                   earlier change of the batch gave it
 *   key change a -> b            -> delete a; write b, with a's values for
 *                                   the columns that came as unchanged TOAST
 *                                   (from the batch, or else from a's row at
 *                                   the destination: row->origin)
 *
 * The values are borrowed from the batch's events (valid for the whole
 * write() call); merged rows live in the batch's arena.
 */
#include <stdlib.h>
#include <string.h>

#include "dws.h"

static uint32_t
dws_hash_bytes(uint32_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++) { /* FNV-1a */
		h ^= s[i];
		h *= 16777619u;
	}
	return h;
}

static uint32_t
dws_key_hash(const dws_target *t, const syncd_value *v)
{
	uint32_t h = 2166136261u;
	for (int i = 0; i < t->nkeys; i++) {
		const syncd_value *x = &v[t->keys[i]];
		uint32_t len =
		    x->kind == SYNCD_VALUE_NULL ? 0xffffffffu : x->len;
		h = dws_hash_bytes(h, &len, sizeof len);
		if (x->kind != SYNCD_VALUE_NULL)
			h = dws_hash_bytes(h, x->data, x->len);
	}
	return h;
}

bool
dws_key_equal(const dws_target *t, const syncd_value *a, const syncd_value *b)
{
	for (int i = 0; i < t->nkeys; i++) {
		const syncd_value *x = &a[t->keys[i]], *y = &b[t->keys[i]];
		if ((x->kind == SYNCD_VALUE_NULL) !=
		    (y->kind == SYNCD_VALUE_NULL))
			return false;
		if (x->len != y->len ||
		    (x->len && memcmp(x->data, y->data, x->len) != 0))
			return false;
	}
	return true;
}

static void
dws_grow(dws_pending *p)
{
	if (p->nrows == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->rows = realloc(p->rows, p->cap * sizeof *p->rows);
		if (!p->rows)
			abort();
	}
	/* keep the table at most half full */
	if ((p->nrows + 1) * 2 > p->nslots) {
		size_t n = p->nslots ? p->nslots * 2 : 128;
		uint32_t *slots = calloc(n, sizeof *slots);
		if (!slots)
			abort();
		for (size_t i = 0; i < p->nrows; i++) {
			size_t j = p->rows[i].hash & (n - 1);
			while (slots[j])
				j = (j + 1) & (n - 1);
			slots[j] = (uint32_t) i + 1;
		}
		free(p->slots);
		p->slots = slots;
		p->nslots = n;
	}
}

/* The row for key `key` (values array, key columns read), or NULL with
 * *slot where a new one goes. */
static dws_row *
dws_find(dws_pending *p, const syncd_value *key, uint32_t h, size_t *slot)
{
	size_t j;

	dws_grow(p);
	j = h & (p->nslots - 1);
	while (p->slots[j]) {
		dws_row *r = &p->rows[p->slots[j] - 1];
		if (r->hash == h && dws_key_equal(p->t, r->vals, key))
			return r;
		j = (j + 1) & (p->nslots - 1);
	}
	*slot = j;
	return NULL;
}

static dws_row *
dws_add(dws_pending *p, size_t slot, uint32_t h, const syncd_value *vals,
        char op, const syncd_event *ev)
{
	dws_row *r = &p->rows[p->nrows];
	memset(r, 0, sizeof *r);
	r->vals = vals;
	r->hash = h;
	r->op = op;
	r->ev = ev;
	r->first_lsn = ev->lsn;
	p->slots[slot] = (uint32_t) ++p->nrows;
	return r;
}

static bool
dws_has_unchanged(const dws_target *t, const syncd_value *v)
{
	for (int i = 0; i < t->ncols; i++)
		if (v[i].kind == SYNCD_VALUE_UNCHANGED)
			return true;
	return false;
}

/* new values, with the unchanged-TOAST ones taken from prev where prev has
 * them (prev may be NULL). */
static const syncd_value *
dws_merge(dws_arena *a, const dws_target *t, const syncd_value *nv,
          const syncd_value *prev)
{
	syncd_value *m;

	if (!prev || !dws_has_unchanged(t, nv))
		return nv;
	m = dws_arena_alloc(a, (size_t) t->ncols * sizeof *m);
	for (int i = 0; i < t->ncols; i++)
		m[i] = nv[i].kind == SYNCD_VALUE_UNCHANGED ? prev[i] : nv[i];
	return m;
}

/* Write `vals` at its key: what is already in the batch for that key is
 * replaced (a delete before it makes it delete-then-write). */
static void
dws_put_write(dws_pending *p, const syncd_value *vals,
              const syncd_value *origin, const syncd_event *ev)
{
	uint32_t h = dws_key_hash(p->t, vals);
	size_t slot = 0;
	dws_row *r = dws_find(p, vals, h, &slot);

	if (!r)
		r = dws_add(p, slot, h, vals, DWS_OP_WRITE, ev);
	else {
		if (r->op == DWS_OP_DELETE)
			r->delete_first = true;
		r->op = DWS_OP_WRITE;
		r->vals = vals;
		r->ev = ev;
	}
	r->partial = dws_has_unchanged(p->t, vals);
	r->origin = r->partial ? origin : NULL;
}

void
dws_fold(dws_pending *p, dws_arena *a, const syncd_event *ev)
{
	const dws_target *t = p->t;
	const syncd_value *nv = ev->new_values, *ov = ev->old_values;
	uint32_t h;
	size_t slot = 0;
	dws_row *r;

	switch (ev->type) {
	case SYNCD_EV_INSERT: dws_put_write(p, nv, NULL, ev); return;
	case SYNCD_EV_DELETE:
		h = dws_key_hash(t, ov);
		r = dws_find(p, ov, h, &slot);
		if (!r)
			r = dws_add(p, slot, h, ov, DWS_OP_DELETE, ev);
		r->op = DWS_OP_DELETE;
		r->vals = ov;
		r->ev = ev;
		r->origin = NULL;
		r->partial = false;
		return;
	case SYNCD_EV_UPDATE: break;
	default: return;
	}

	if (ov && !dws_key_equal(t, ov, nv)) {
		/* a key change: the old key goes, the row moves */
		const syncd_value *prev = NULL, *origin = ov;
		h = dws_key_hash(t, ov);
		r = dws_find(p, ov, h, &slot);
		if (r && r->op == DWS_OP_WRITE) {
			/* what the batch has for the old key; values it
			 * still lacks are in the old key's row at the
			 * destination, or further back if it moved too */
			prev = r->vals;
			origin = !r->partial ? NULL
			         : r->origin ? r->origin
			                     : ov;
		}
		if (!r)
			r = dws_add(p, slot, h, ov, DWS_OP_DELETE, ev);
		r->op = DWS_OP_DELETE;
		r->vals = ov;
		r->ev = ev;
		r->origin = NULL;
		r->partial = false;
		dws_put_write(p, dws_merge(a, t, nv, prev), origin, ev);
		return;
	}

	/* an update in place */
	h = dws_key_hash(t, nv);
	r = dws_find(p, nv, h, &slot);
	if (r && r->op == DWS_OP_WRITE) {
		const syncd_value *origin = r->origin;
		dws_put_write(p, dws_merge(a, t, nv, r->vals), origin, ev);
	} else
		dws_put_write(p, nv, NULL, ev);
}

void
dws_pending_free(dws_pending *p)
{
	free(p->rows);
	free(p->slots);
	memset(p, 0, sizeof *p);
}
