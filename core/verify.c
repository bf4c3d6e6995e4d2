/*
 * core/verify.c - see verify.h.
 *
 * Per target table: the row count and the sum of the row hashes of the
 * whole table on both sides (one statement each); when they differ, the
 * source's keys split the table into ranges of VERIFY_CHUNK_ROWS rows,
 * each range is summed on both sides, and the rows of the ranges that
 * differ are listed (key and hash) from both and merged: missing, extra
 * and different keys. Only the columns the source has are compared (a
 * transform's columns are not), rows a logical_delete transform marked
 * deleted count as absent, and a logical table sums all its sources.
 *
 * While the job runs, the destination lags: a range that differs is
 * looked at again, VERIFY_SETTLE_MS later, up to VERIFY_ROUNDS times, and
 * what still differs is reported. --repair reads the rows of each range
 * that differs from the source and writes them again through the
 * transforms and the sink (INSERTs, which a sink applies as an upsert;
 * DELETEs of the extra keys), then compares the range again.
 */
#define _GNU_SOURCE /* qsort_r */
#include "config.h"

#include "chain.h"
#include "log.h"
#include "monitor.h"
#include "plugerr.h"
#include "queue.h"
#include "router.h"
#include "util.h"
#include "verify.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <syncd/copytext.h>

#define VERIFY_SETTLE_MS 3000
#define VERIFY_ROUNDS    3
/* The commit position of repair batches: after anything streamed, so that
 * a sink never takes them for a replay over a newer copy. */
#define VERIFY_LSN ((syncd_lsn) 1 << 62)

typedef struct vf_src {
	syncd_relation *rel; /* routed (what the source and the chain take) */
	uint32_t stream;
	uint32_t *cols, *keys; /* into rel, parallel to the table's */
} vf_src;

typedef struct vf_table {
	char *name;           /* the target, schema.table */
	syncd_relation *sink; /* as the sink has it, after the transforms */
	uint32_t ncols, nkeys, nskeys;
	uint32_t *cols, *keys; /* into sink */
	/* keys, then the sink's other key columns (a transform's, telling a
	 * logical table's shards apart): how the destination's rows are
	 * listed, so that an extra one can be deleted by its whole key */
	uint32_t *skeys;
	uint32_t absent_if;
	char *keyhdr; /* "(id)" */
	char *problem; /* why it cannot be compared */
	vf_src *src;
	size_t nsrc;
} vf_table;

typedef struct vf {
	job *j;
	vf_table *t;
	size_t n;
	char *const *names;
	size_t nnames;
	bool *used;
	bool running;
	bool failed;
} vf;

/* ---- what is compared ---------------------------------------------------- */

static uint32_t
vf_stream_of(job *j, const char *database)
{
	for (uint32_t i = 0; database && i < j->nstreams; i++)
		if (strcmp(job_stream_name(j, i), database) == 0)
			return i;
	return 0;
}

static uint32_t
vf_column(const syncd_relation *rel, const char *name, bool nocase)
{
	for (uint32_t i = 0; i < rel->ncolumns; i++) {
		const char *c = router_column(rel, i)->name;
		if (nocase ? strcasecmp(c, name) == 0 : strcmp(c, name) == 0)
			return i;
	}
	return UINT32_MAX;
}

/* Whether the user named this table (every table when nobody did). */
static bool
vf_wanted(vf *v, const syncd_relation *rel)
{
	bool any = v->nnames == 0;

	for (size_t i = 0; i < v->nnames; i++) {
		char *a = xasprintf("%s.%s", rel->schema, rel->table);
		char *b = xasprintf("%s.%s", rel->target_schema,
		                    rel->target_table);
		char *c = xasprintf("%s.%s.%s",
		                    rel->database ? rel->database : "",
		                    rel->schema, rel->table);
		if (strcmp(v->names[i], a) == 0 ||
		    strcmp(v->names[i], b) == 0 ||
		    strcmp(v->names[i], c) == 0 ||
		    strcmp(v->names[i], rel->table) == 0) {
			v->used[i] = true;
			any = true;
		}
		free(a);
		free(b);
		free(c);
	}
	return any;
}

typedef struct vf_rel_cap {
	job *j;
	syncd_relation *out;
} vf_rel_cap;

/* The relation the last transform emits, as the sink has it. */
static syncd_status
vf_capture_rel(void *ctx, const syncd_event *ev)
{
	vf_rel_cap *c = ctx;

	if (ev->type == SYNCD_EV_RELATION && ev->rel) {
		router_free(c->out);
		c->out = router_copy(c->j, ev->rel, ROUTER_SINK);
	}
	return SYNCD_OK;
}

static int
vf_key_order(const void *a, const void *b, void *rel)
{
	const syncd_column *x = router_column(rel, *(const uint32_t *) a);
	const syncd_column *y = router_column(rel, *(const uint32_t *) b);
	if (x->key_position != y->key_position)
		return x->key_position < y->key_position ? -1 : 1;
	return *(const uint32_t *) a < *(const uint32_t *) b ? -1 : 1;
}

/* The table's compared columns and key, from its first source. */
static void
vf_table_shape(vf *v, vf_table *t, const syncd_relation *src,
               const syncd_relation *folded)
{
	bool fold = !optset_num(&v->j->sink->opts,
	                        "sink.field.name.case-sensitive");
	strbuf hdr = {0};

	t->cols = xcalloc(src->ncolumns + 1, sizeof *t->cols);
	t->keys = xcalloc(src->ncolumns + 1, sizeof *t->keys);
	for (uint32_t i = 0; i < src->ncolumns; i++) {
		uint32_t k = vf_column(t->sink, router_column(folded, i)->name,
		                       false);
		if (k != UINT32_MAX)
			t->cols[t->ncols++] = k;
		if (router_column(src, i)->flags & SYNCD_COL_KEY) {
			if (k == UINT32_MAX) {
				t->nkeys = UINT32_MAX; /* not all at the target */
				continue;
			}
			if (t->nkeys != UINT32_MAX)
				t->keys[t->nkeys++] = k;
		}
	}
	if (t->nkeys == UINT32_MAX)
		t->nkeys = 0;
	if (t->nkeys)
		qsort_r(t->keys, t->nkeys, sizeof *t->keys, vf_key_order,
		        t->sink);
	t->skeys = xcalloc(t->sink->ncolumns + 1, sizeof *t->skeys);
	if (t->nkeys)
		memcpy(t->skeys, t->keys, t->nkeys * sizeof *t->keys);
	t->nskeys = t->nkeys;
	for (uint32_t i = 0; t->nkeys && i < t->sink->ncolumns; i++) {
		bool in = false;
		for (uint32_t k = 0; k < t->nkeys; k++)
			in = in || t->keys[k] == i;
		if (!in && (router_column(t->sink, i)->flags & SYNCD_COL_KEY))
			t->skeys[t->nskeys++] = i;
	}
	sb_printf(&hdr, "(");
	for (uint32_t i = 0; i < t->nkeys; i++)
		sb_printf(&hdr, "%s%s", i ? ", " : "",
		          router_column(t->sink, t->keys[i])->name);
	sb_printf(&hdr, ")");
	t->keyhdr = hdr.data;
	/* rows a logical_delete transform marked deleted count as absent */
	t->absent_if = UINT32_MAX;
	for (size_t i = 0; i < v->j->ntransforms; i++) {
		instance *tr = v->j->transforms[i];
		const char *col;
		if (strcmp(tr->plugin->name, "logical_delete") != 0)
			continue;
		col = optset_str(&tr->opts, "column");
		if (col)
			t->absent_if = vf_column(t->sink, col, fold);
	}
}

/* A source of table t: its columns, in the order of t's. */
static void
vf_add_source(vf *v, vf_table *t, syncd_relation *rel,
              const syncd_relation *folded)
{
	vf_src *s;

	t->src = xrealloc(t->src, (t->nsrc + 1) * sizeof *t->src);
	s = &t->src[t->nsrc++];
	s->rel = rel;
	s->stream = vf_stream_of(v->j, rel->database);
	s->cols = xcalloc(t->ncols + 1, sizeof *s->cols);
	s->keys = xcalloc(t->nkeys + 1, sizeof *s->keys);
	for (uint32_t i = 0; i < t->ncols + t->nkeys; i++) {
		const char *name = router_column(
		    t->sink, i < t->ncols ? t->cols[i] : t->keys[i - t->ncols])
		                       ->name;
		uint32_t k = vf_column(folded, name, false);
		if (k == UINT32_MAX && !t->problem)
			t->problem = xasprintf(
			    "source table %s%s%s.%s has no column %s, which "
			    "another source of it has",
			    rel->database ? rel->database : "",
			    rel->database ? "." : "", rel->schema, rel->table,
			    name);
		if (i < t->ncols)
			s->cols[i] = k;
		else
			s->keys[i - t->ncols] = k;
	}
}

static syncd_status
vf_one(void *ctx, const syncd_relation *in)
{
	vf *v = ctx;
	syncd_relation *rel = router_copy(v->j, in, ROUTER_DETAILS);
	syncd_relation *folded;
	syncd_event ev = {
	    .size = sizeof ev, .type = SYNCD_EV_RELATION, .rel = rel};
	vf_rel_cap cap = {.j = v->j};
	vf_table *t = NULL;
	char *name;

	if (!vf_wanted(v, rel)) {
		router_free(rel);
		return SYNCD_OK;
	}
	if (chain_apply(v->j, &ev, vf_capture_rel, &cap) != SYNCD_OK ||
	    !cap.out) {
		log_error("%s.%s: the transforms did not pass the table on",
		          rel->schema, rel->table);
		router_free(cap.out);
		router_free(rel);
		v->failed = true;
		return SYNCD_OK;
	}
	folded = router_copy(v->j, rel, ROUTER_SINK);
	name = xasprintf("%s.%s", cap.out->target_schema,
	                 cap.out->target_table);
	for (size_t i = 0; i < v->n && !t; i++)
		if (strcmp(v->t[i].name, name) == 0)
			t = &v->t[i];
	if (!t) {
		v->t = xrealloc(v->t, (v->n + 1) * sizeof *v->t);
		t = &v->t[v->n++];
		memset(t, 0, sizeof *t);
		t->name = name;
		t->sink = cap.out;
		vf_table_shape(v, t, rel, folded);
	} else {
		free(name);
		router_free(cap.out);
	}
	vf_add_source(v, t, rel, folded);
	router_free(folded);
	return SYNCD_OK;
}

/* ---- digests ------------------------------------------------------------- */

/* An exact sum of 64-bit hashes. */
typedef __int128 vf_sum_t;

static vf_sum_t
vf_parse_sum(const char *s)
{
	vf_sum_t v = 0;
	bool neg = *s == '-';

	for (s += neg; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (*s - '0');
	return neg ? -v : v;
}

typedef struct vf_sum_ctx {
	uint64_t count;
	vf_sum_t sum;
} vf_sum_ctx;

static syncd_status
vf_sum_fn(void *ctx, const syncd_digest_answer *a)
{
	vf_sum_ctx *c = ctx;
	c->count += a->count;
	c->sum += a->hash ? vf_parse_sum(a->hash) : 0;
	return SYNCD_OK;
}

/* A request for source s of t (s NULL: the sink). */
static syncd_digest_request
vf_request(const vf_table *t, const vf_src *s, syncd_digest_kind kind,
           char *const *lo, char *const *hi)
{
	syncd_digest_request r = {.size = sizeof r,
	                          .kind = kind,
	                          .rel = s ? s->rel : t->sink,
	                          .stream = s ? s->stream : 0,
	                          .ncols = t->ncols,
	                          .cols = s ? s->cols : t->cols,
	                          .nkeys = t->nkeys,
	                          .keys = s ? s->keys : t->keys,
	                          .lo = (const char *const *) lo,
	                          .hi = (const char *const *) hi,
	                          .absent_if = s ? UINT32_MAX : t->absent_if};
	if (!s && kind == SYNCD_DIGEST_ROWS && t->nskeys > t->nkeys) {
		r.nkeys = t->nskeys;
		r.keys = t->skeys;
		r.range_keys = t->nkeys;
	}
	return r;
}

static bool
vf_digest(vf *v, const vf_src *s, const syncd_digest_request *r,
          syncd_digest_fn fn, void *ctx)
{
	instance *in = s ? v->j->source : v->j->sink;
	syncd_status st =
	    s ? in->plugin->ops.source.digest(in->state, r, fn, ctx)
	      : in->plugin->ops.sink.digest(in->state, r, fn, ctx);

	if (st != SYNCD_OK) {
		log_error("%s %s", in->prefix, plugerr_msg(in));
		v->failed = true;
		return false;
	}
	return true;
}

/* One request kind over (lo, hi] at both ends at once: the sources in a
 * thread, the sink in this one. */
typedef struct vf_pair {
	vf *v;
	vf_table *t;
	syncd_digest_kind kind;
	char *const *lo, *const *hi;
	syncd_digest_fn fn;
	void *src_ctx, *dst_ctx;
	bool src_ok;
} vf_pair;

static void *
vf_pair_sources(void *arg)
{
	vf_pair *p = arg;

	p->src_ok = true;
	for (size_t i = 0; i < p->t->nsrc && p->src_ok; i++) {
		syncd_digest_request r =
		    vf_request(p->t, &p->t->src[i], p->kind, p->lo, p->hi);
		p->src_ok = vf_digest(p->v, &p->t->src[i], &r, p->fn,
		                      p->src_ctx);
	}
	return NULL;
}

static bool
vf_both(vf_pair *p)
{
	syncd_digest_request r =
	    vf_request(p->t, NULL, p->kind, p->lo, p->hi);
	pthread_t th;
	bool threaded = pthread_create(&th, NULL, vf_pair_sources, p) == 0;
	bool ok;

	if (!threaded)
		vf_pair_sources(p);
	ok = vf_digest(p->v, NULL, &r, p->fn, p->dst_ctx);
	if (threaded)
		pthread_join(th, NULL);
	return ok && p->src_ok;
}

/* Both sides' count and sum over (lo, hi]. */
static bool
vf_sums(vf *v, vf_table *t, char *const *lo, char *const *hi,
        vf_sum_ctx *src, vf_sum_ctx *dst)
{
	vf_pair p = {v, t, SYNCD_DIGEST_SUM, lo, hi, vf_sum_fn, src, dst,
	             false};

	memset(src, 0, sizeof *src);
	memset(dst, 0, sizeof *dst);
	return vf_both(&p);
}

/* ---- ranges and rows ----------------------------------------------------- */

typedef struct vf_keys {
	char ***k; /* each nkeys values (NULL: a NULL key value) */
	size_t n, cap;
	uint32_t nkeys;
} vf_keys;

static char **
vf_key_dup(const char *const *key, uint32_t n)
{
	char **k = xcalloc(n + 1, sizeof *k);
	for (uint32_t i = 0; i < n; i++)
		k[i] = key[i] ? xstrdup(key[i]) : NULL;
	return k;
}

static void
vf_key_free(char **k, uint32_t n)
{
	for (uint32_t i = 0; k && i < n; i++)
		free(k[i]);
	free(k);
}

static syncd_status
vf_split_fn(void *ctx, const syncd_digest_answer *a)
{
	vf_keys *ks = ctx;
	if (ks->n == ks->cap) {
		ks->cap = ks->cap ? ks->cap * 2 : 64;
		ks->k = xrealloc(ks->k, ks->cap * sizeof *ks->k);
	}
	ks->k[ks->n++] = vf_key_dup(a->key, ks->nkeys);
	return SYNCD_OK;
}

typedef struct vf_row {
	char *key; /* the key's values joined by \x1f (\x1e: NULL) */
	char *hash;
	char **vals; /* the key's values (the destination's, for DELETEs) */
} vf_row;

typedef struct vf_rows {
	vf_row *r;
	size_t n, cap;
	uint32_t nkeys; /* the key compared */
	uint32_t nvals; /* the values answered: the key and more */
} vf_rows;

static syncd_status
vf_rows_fn(void *ctx, const syncd_digest_answer *a)
{
	vf_rows *rs = ctx;
	strbuf k = {0};

	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 1024;
		rs->r = xrealloc(rs->r, rs->cap * sizeof *rs->r);
	}
	for (uint32_t i = 0; i < rs->nkeys; i++) {
		if (i)
			sb_append(&k, "\x1f", 1);
		if (a->key[i])
			sb_printf(&k, "%s", a->key[i]);
		else
			sb_append(&k, "\x1e", 1);
	}
	if (!k.data)
		sb_printf(&k, "%s", "");
	rs->r[rs->n++] = (vf_row){k.data, xstrdup(a->hash ? a->hash : ""),
	                          vf_key_dup(a->key, rs->nvals)};
	return SYNCD_OK;
}

static void
vf_rows_free(vf_rows *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		free(rs->r[i].key);
		free(rs->r[i].hash);
		vf_key_free(rs->r[i].vals, rs->nvals);
	}
	free(rs->r);
	memset(rs, 0, sizeof *rs);
}

static int
vf_row_cmp(const void *a, const void *b)
{
	const vf_row *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : strcmp(x->hash, y->hash);
}

/* What differs in a range: a key missing at the destination, extra there,
 * or different. */
typedef struct vf_drec {
	char *key;
	int kind;    /* 0 missing, 1 extra, 2 different */
	char **vals; /* extra: the destination's whole key (skeys) */
	uint32_t nvals;
} vf_drec;

/* One range of a table and what differs in it, in key order. */
typedef struct vf_range {
	char **lo, **hi;
	bool differ;
	uint64_t n[3]; /* missing, extra, different */
	vf_drec *d;
	size_t nd, capd;
} vf_range;

static void
vf_range_clear(vf_range *g, uint32_t nkeys)
{
	for (size_t i = 0; i < g->nd; i++) {
		free(g->d[i].key);
		vf_key_free(g->d[i].vals, g->d[i].nvals);
	}
	free(g->d);
	g->d = NULL;
	g->nd = g->capd = 0;
	g->n[0] = g->n[1] = g->n[2] = 0;
	g->differ = false;
}

/* Records a difference; with a previous round's (prev), only one of a
 * key that differed then too: a key that differs only now changed since
 * (a running job's destination catches up on it). */
static void
vf_record(vf_range *g, const vf_range *prev, int kind, const vf_row *r,
          uint32_t nvals, uint64_t count)
{
	vf_drec *d;

	if (prev) {
		size_t lo = 0, hi = prev->nd;
		bool seen = false;
		while (lo < hi && !seen) {
			size_t mid = (lo + hi) / 2;
			int c = strcmp(prev->d[mid].key, r->key);
			if (c == 0)
				seen = true;
			else if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (!seen)
			return;
	}
	if (g->nd == g->capd) {
		g->capd = g->capd ? g->capd * 2 : 64;
		g->d = xrealloc(g->d, g->capd * sizeof *g->d);
	}
	d = &g->d[g->nd++];
	d->key = xstrdup(r->key);
	d->kind = kind;
	d->nvals = kind == 1 ? nvals : 0;
	d->vals = kind == 1 ? vf_key_dup((const char *const *) r->vals, nvals)
	                    : NULL;
	g->n[kind] += count;
	g->differ = true;
}

/* Lists both sides' rows of range g and merges them; with prev, keeps
 * only keys that differed in prev. */
static bool
vf_diff(vf *v, vf_table *t, vf_range *g, const vf_range *prev)
{
	vf_rows src = {.nkeys = t->nkeys, .nvals = t->nkeys};
	vf_rows dst = {.nkeys = t->nkeys, .nvals = t->nskeys};
	size_t i = 0, k = 0;
	bool ok = true;

	vf_pair p = {v,          t,    SYNCD_DIGEST_ROWS, g->lo, g->hi,
	             vf_rows_fn, &src, &dst,              false};

	if (!(ok = vf_both(&p)))
		goto out;
	if (src.n)
		qsort(src.r, src.n, sizeof *src.r, vf_row_cmp);
	if (dst.n)
		qsort(dst.r, dst.n, sizeof *dst.r, vf_row_cmp);
	while (i < src.n || k < dst.n) {
		int c = i == src.n   ? 1
		        : k == dst.n ? -1
		                     : strcmp(src.r[i].key, dst.r[k].key);
		if (c < 0) {
			vf_record(g, prev, 0, &src.r[i++], t->nkeys, 1);
		} else if (c > 0) {
			vf_record(g, prev, 1, &dst.r[k++], t->nskeys, 1);
		} else {
			/* one key, several rows (shards of a logical table):
			 * rows with equal hashes pair off */
			size_t i2 = i, k2 = k, us = 0, ud = 0, a, b, pair;
			while (i2 < src.n && strcmp(src.r[i2].key, src.r[i].key) == 0)
				i2++;
			while (k2 < dst.n && strcmp(dst.r[k2].key, dst.r[k].key) == 0)
				k2++;
			for (a = i, b = k; a < i2 || b < k2;) {
				int h = a == i2   ? 1
				        : b == k2 ? -1
				                  : strcmp(src.r[a].hash,
				                           dst.r[b].hash);
				a += h <= 0;
				b += h >= 0;
				us += h < 0;
				ud += h > 0;
			}
			pair = us < ud ? us : ud;
			if (pair)
				vf_record(g, prev, 2, &src.r[i], t->nkeys, pair);
			if (us > pair)
				vf_record(g, prev, 0, &src.r[i], t->nkeys,
				          us - pair);
			if (ud > pair)
				vf_record(g, prev, 1, &dst.r[k], t->nskeys,
				          ud - pair);
			i = i2;
			k = k2;
		}
	}
out:
	vf_rows_free(&src);
	vf_rows_free(&dst);
	return ok;
}

/* Compares range g again, keeping what differed before too. */
static bool
vf_diff_again(vf *v, vf_table *t, vf_range *g)
{
	vf_range prev = *g;
	bool ok;

	g->d = NULL;
	g->nd = g->capd = 0;
	g->n[0] = g->n[1] = g->n[2] = 0;
	g->differ = false;
	ok = vf_diff(v, t, g, &prev);
	vf_range_clear(&prev, t->nkeys);
	return ok;
}

/* ---- repair -------------------------------------------------------------- */

typedef struct vf_cap {
	job *j;
	item **items;
	size_t n, cap;
	struct vf_cap_rel {
		const syncd_relation *in;
		syncd_relation *out;
	} *rels;
	size_t nrels;
	size_t nchanges;
} vf_cap;

static void
vf_cap_push(vf_cap *c, item *it)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 1024;
		c->items = xrealloc(c->items, c->cap * sizeof *c->items);
	}
	c->items[c->n++] = it;
}

/* The sink's copy of a relation the chain emits (and its RELATION event
 * the first time). */
static const syncd_relation *
vf_cap_rel(vf_cap *c, const syncd_event *ev)
{
	syncd_event rev;
	item *it;

	for (size_t i = 0; i < c->nrels; i++)
		if (c->rels[i].in == ev->rel)
			return c->rels[i].out;
	c->rels = xrealloc(c->rels, (c->nrels + 1) * sizeof *c->rels);
	c->rels[c->nrels].in = ev->rel;
	c->rels[c->nrels].out = router_copy(c->j, ev->rel, ROUTER_SINK);
	rev = (syncd_event){.size = sizeof rev,
	                    .type = SYNCD_EV_RELATION,
	                    .lsn = ev->lsn,
	                    .stream = ev->stream,
	                    .rel = c->rels[c->nrels].out};
	it = item_small(ITEM_EVENT, &rev);
	it->ev.rel = c->rels[c->nrels].out;
	vf_cap_push(c, it);
	return c->rels[c->nrels++].out;
}

static syncd_status
vf_cap_fn(void *ctx, const syncd_event *ev)
{
	vf_cap *c = ctx;
	const syncd_relation *out;

	if (!ev->rel)
		return SYNCD_OK;
	out = vf_cap_rel(c, ev);
	if (ev->type == SYNCD_EV_RELATION)
		return SYNCD_OK;
	vf_cap_push(c, item_event(ev, out, NULL));
	c->nchanges++;
	return SYNCD_OK;
}

static void
vf_cap_free(vf_cap *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->items[i]);
	free(c->items);
	for (size_t i = 0; i < c->nrels; i++)
		router_free(c->rels[i].out);
	free(c->rels);
	memset(c, 0, sizeof *c);
}

typedef struct vf_copy {
	job *j;
	vf_src *s;
	vf_cap *cap;
	strbuf rest;
	syncd_value *vals;
	char *text;
	size_t textcap;
	uint64_t rows;
	bool bad;
} vf_copy;

/* The source's rows of the range, as INSERTs through the transforms. */
static syncd_status
vf_copy_fn(void *ctx, const char *data, size_t len)
{
	vf_copy *c = ctx;
	size_t at = 0;

	while (at < len) {
		const char *nl = memchr(data + at, '\n', len - at);
		const char *row = data + at, *err = NULL;
		size_t rowlen;
		syncd_event ev = {.size = sizeof ev,
		                  .type = SYNCD_EV_INSERT,
		                  .lsn = VERIFY_LSN,
		                  .stream = c->s->stream,
		                  .rel = c->s->rel,
		                  .new_values = c->vals};
		if (!nl) {
			sb_append(&c->rest, row, len - at);
			return SYNCD_OK;
		}
		rowlen = (size_t) (nl - row) + 1;
		if (c->rest.len) {
			sb_append(&c->rest, row, rowlen);
			row = c->rest.data;
			rowlen = c->rest.len;
		}
		if (rowlen > c->textcap) {
			c->textcap = rowlen * 2;
			c->text = xrealloc(c->text, c->textcap);
		}
		at += (size_t) (nl - (data + at)) + 1;
		c->rest.len = 0;
		if (syncd_copytext_parse_row(row, rowlen, c->s->rel->ncolumns,
		                             c->vals, c->text, &err) == 0) {
			log_error("%s.%s: the source sent a row that is not "
			          "COPY text: %s",
			          c->s->rel->schema, c->s->rel->table, err);
			c->bad = true;
			return SYNCD_FATAL;
		}
		if (chain_apply(c->j, &ev, vf_cap_fn, c->cap) != SYNCD_OK) {
			c->bad = true;
			return SYNCD_FATAL;
		}
		c->rows++;
	}
	return SYNCD_OK;
}

/* Copies range g of t again: the source's rows written, the extra rows
 * deleted, in one batch of one sink worker. */
static bool
vf_repair(vf *v, vf_table *t, vf_range *g, void *wstate, uint64_t *copied,
          uint64_t *deleted)
{
	job *j = v->j;
	vf_cap cap = {.j = j};
	const syncd_event **evs = NULL;
	syncd_event begin = {.size = sizeof begin,
	                     .type = SYNCD_EV_BEGIN,
	                     .lsn = VERIFY_LSN,
	                     .commit_time = wall_ms() * 1000};
	syncd_event commit = begin;
	syncd_batch b;
	bool ok = true;
	syncd_status st;

	commit.type = SYNCD_EV_COMMIT;
	/* the extra rows first: DELETEs of their keys through every source
	 * of the table (only one of a logical table's shards makes the key
	 * of the row; the others' match nothing or a row the INSERTs below
	 * write again) */
	for (size_t e = 0; ok && e < g->nd; e++) {
		if (g->d[e].kind != 1)
			continue;
		for (size_t si = 0; ok && si < t->nsrc; si++) {
			vf_src *s = &t->src[si];
			syncd_value *old =
			    xcalloc(s->rel->ncolumns + 1, sizeof *old);
			syncd_event ev = {.size = sizeof ev,
			                  .type = SYNCD_EV_DELETE,
			                  .lsn = VERIFY_LSN,
			                  .stream = s->stream,
			                  .rel = s->rel,
			                  .old_values = old,
			                  .old_is_key = true};
			for (uint32_t k = 0; k < t->nkeys; k++) {
				const char *val = g->d[e].vals[k];
				if (val)
					old[s->keys[k]] = (syncd_value){
					    SYNCD_VALUE_TEXT,
					    (uint32_t) strlen(val), val};
			}
			ok = chain_apply(j, &ev, vf_cap_fn, &cap) == SYNCD_OK;
			free(old);
		}
		/* a key column no source has (a transform's): the row by
		 * its whole key, at the sink (a logical_delete job's rows
		 * are only ever marked) */
		if (ok && t->nskeys > t->nkeys && t->absent_if == UINT32_MAX) {
			syncd_value *old =
			    xcalloc(t->sink->ncolumns + 1, sizeof *old);
			syncd_event ev = {.size = sizeof ev,
			                  .type = SYNCD_EV_DELETE,
			                  .lsn = VERIFY_LSN,
			                  .stream = t->src[0].stream,
			                  .rel = t->sink,
			                  .old_values = old,
			                  .old_is_key = true};
			for (uint32_t k = 0; k < g->d[e].nvals; k++) {
				const char *val = g->d[e].vals[k];
				if (val)
					old[t->skeys[k]] = (syncd_value){
					    SYNCD_VALUE_TEXT,
					    (uint32_t) strlen(val), val};
			}
			ok = vf_cap_fn(&cap, &ev) == SYNCD_OK;
			free(old);
		}
		(*deleted)++;
	}
	/* then the source's rows of the range */
	for (size_t s = 0; s < t->nsrc && ok; s++) {
		vf_copy c = {.j = j, .s = &t->src[s], .cap = &cap};
		syncd_digest_request r =
		    vf_request(t, &t->src[s], SYNCD_DIGEST_COPY, g->lo, g->hi);
		c.vals = xcalloc(t->src[s].rel->ncolumns + 1, sizeof *c.vals);
		r.copy = vf_copy_fn;
		r.copy_ctx = &c;
		ok = vf_digest(v, &t->src[s], &r, NULL, NULL) && !c.bad;
		*copied += c.rows;
		free(c.vals);
		free(c.text);
		sb_free(&c.rest);
	}
	if (!ok) {
		vf_cap_free(&cap);
		v->failed = true;
		return false;
	}
	evs = xcalloc(cap.n + 2, sizeof *evs);
	begin.stream = commit.stream = t->src[0].stream;
	evs[0] = &begin;
	for (size_t i = 0; i < cap.n; i++)
		evs[i + 1] = &cap.items[i]->ev;
	evs[cap.n + 1] = &commit;
	memset(&b, 0, sizeof b);
	b.size = sizeof b;
	b.nevents = cap.n + 2;
	b.events = evs;
	b.nchanges = cap.nchanges;
	st = j->sink->plugin->ops.sink.write(wstate, &b);
	if (st != SYNCD_OK) {
		log_error("%s %s: %s", j->sink->prefix, t->name,
		          plugerr_msg(j->sink));
		v->failed = true;
		ok = false;
	}
	free(evs);
	vf_cap_free(&cap);
	return ok;
}

/* ---- one table ----------------------------------------------------------- */

static void
vf_print_keys(FILE *out, const vf_table *t, const char *what,
              const vf_range *gs, size_t ng, int kind, uint64_t n)
{
	int shown = 0;

	if (!n)
		return;
	fprintf(out, "; %s %s=", what, t->keyhdr);
	for (size_t i = 0; i < ng && shown < VERIFY_EXAMPLES; i++)
		for (size_t e = 0; e < gs[i].nd && shown < VERIFY_EXAMPLES;
		     e++) {
			if (gs[i].d[e].kind != kind)
				continue;
			fputs(shown++ ? ", (" : "(", out);
			for (const char *p = gs[i].d[e].key; *p; p++)
				if (*p == '\x1f')
					fputs(", ", out);
				else if (*p == '\x1e')
					fputs("NULL", out);
				else
					fputc(*p, out);
			fputc(')', out);
		}
	if (n > (uint64_t) shown)
		fputs(", ...", out);
}

static void
vf_totals(const vf_range *gs, size_t ng, uint64_t *m, uint64_t *x,
          uint64_t *d)
{
	*m = *x = *d = 0;
	for (size_t i = 0; i < ng; i++) {
		*m += gs[i].n[0];
		*x += gs[i].n[1];
		*d += gs[i].n[2];
	}
}

/* Compares table t, repairs it when asked; one line on out. True when it
 * is the same (after the repair). */
static bool
vf_table_run(vf *v, vf_table *t, bool repair, FILE *out)
{
	job *j = v->j;
	vf_sum_ctx src, dst;
	vf_keys bounds = {.nkeys = t->nkeys};
	vf_range *gs = NULL;
	size_t ng = 0, nd = 0;
	uint64_t m, x, d, copied = 0, deleted = 0;
	int64_t started = wall_ms();
	bool same = false, ok = true;

	if (t->problem) {
		fprintf(out, "%s: not compared: %s\n", t->name, t->problem);
		return false;
	}
	if (t->nkeys == 0) {
		if (!vf_sums(v, t, NULL, NULL, &src, &dst))
			goto failed;
		if (src.count == dst.count && src.sum == dst.sum) {
			fprintf(out, "%s: same (%llu rows, %.1f s)\n", t->name,
			        (unsigned long long) src.count,
			        (double) (wall_ms() - started) / 1000.0);
			return true;
		}
		fprintf(out,
		        "%s: differs: the source has %llu rows, the "
		        "destination %llu; without a key at both ends the rows "
		        "cannot be told apart%s\n",
		        t->name, (unsigned long long) src.count,
		        (unsigned long long) dst.count,
		        repair ? " (not repaired: --resync copies it again)"
		               : "");
		return false;
	}
	/* ranges of VERIFY_CHUNK_ROWS source rows: each summed at both
	 * ends, the rows of those that differ listed */
	{
		syncd_digest_request r = vf_request(
		    t, &t->src[0], SYNCD_DIGEST_SPLIT, NULL, NULL);
		r.step = VERIFY_CHUNK_ROWS;
		if (!vf_digest(v, &t->src[0], &r, vf_split_fn, &bounds))
			goto failed;
	}
	ng = bounds.n + 1;
	gs = xcalloc(ng, sizeof *gs);
	for (size_t i = 0; i < ng; i++) {
		gs[i].lo = i ? bounds.k[i - 1] : NULL;
		gs[i].hi = i < bounds.n ? bounds.k[i] : NULL;
	}
	memset(&src, 0, sizeof src);
	memset(&dst, 0, sizeof dst);
	for (size_t i = 0; i < ng && ok; i++) {
		vf_sum_ctx a, b;
		ok = vf_sums(v, t, gs[i].lo, gs[i].hi, &a, &b);
		src.count += a.count;
		dst.count += b.count;
		if (ok && (a.count != b.count || a.sum != b.sum))
			ok = vf_diff(v, t, &gs[i], NULL);
	}
	/* the destination lags a running job: look again */
	for (int round = 1; ok && v->running && round < VERIFY_ROUNDS;
	     round++) {
		bool any = false;
		for (size_t i = 0; i < ng; i++)
			any = any || gs[i].differ;
		if (!any)
			break;
		job_sleep(j, VERIFY_SETTLE_MS);
		for (size_t i = 0; i < ng && ok; i++)
			if (gs[i].differ)
				ok = vf_diff_again(v, t, &gs[i]);
	}
	if (!ok)
		goto failed;
	vf_totals(gs, ng, &m, &x, &d);
	for (size_t i = 0; i < ng; i++)
		nd += gs[i].differ;
	same = nd == 0;
	fprintf(out, "%s: ", t->name);
	if (same)
		fprintf(out, "same (%llu rows", (unsigned long long) src.count);
	else
		fprintf(out,
		        "%llu missing, %llu extra, %llu different (source %llu "
		        "rows, destination %llu)",
		        (unsigned long long) m, (unsigned long long) x,
		        (unsigned long long) d, (unsigned long long) src.count,
		        (unsigned long long) dst.count);
	vf_print_keys(out, t, "missing", gs, ng, 0, m);
	vf_print_keys(out, t, "extra", gs, ng, 1, x);
	vf_print_keys(out, t, "different", gs, ng, 2, d);
	fprintf(out, "%s%.1f s)\n", same ? ", " : " (",
	        (double) (wall_ms() - started) / 1000.0);
	if (!same && repair) {
		void *wstate = NULL;
		syncd_status st =
		    j->sink->plugin->ops.sink.open(j->sink->state, 0, &wstate);
		size_t left = 0;
		if (st != SYNCD_OK) {
			log_error("%s %s", j->sink->prefix,
			          plugerr_msg(j->sink));
			if (wstate)
				j->sink->plugin->ops.sink.close(wstate);
			goto failed;
		}
		for (size_t i = 0; i < ng && ok; i++)
			if (gs[i].differ)
				ok = vf_repair(v, t, &gs[i], wstate, &copied,
				               &deleted) &&
				     vf_diff_again(v, t, &gs[i]);
		j->sink->plugin->ops.sink.close(wstate);
		if (!ok)
			goto failed;
		for (size_t i = 0; i < ng; i++)
			left += gs[i].differ;
		vf_totals(gs, ng, &m, &x, &d);
		fprintf(out,
		        "%s: repaired %zu range(s): %llu row(s) written "
		        "again, %llu deleted; ",
		        t->name, nd, (unsigned long long) copied,
		        (unsigned long long) deleted);
		if (left == 0)
			fprintf(out, "same now\n");
		else
			fprintf(out,
			        "still %llu missing, %llu extra, %llu different "
			        "(the source changes them: run again)\n",
			        (unsigned long long) m, (unsigned long long) x,
			        (unsigned long long) d);
		same = left == 0;
	}
	goto done;
failed:
	fprintf(out, "%s: not compared (see the error above)\n", t->name);
	same = false;
done:
	for (size_t i = 0; i < ng; i++)
		vf_range_clear(&gs[i], t->nkeys);
	free(gs);
	for (size_t i = 0; i < bounds.n; i++)
		vf_key_free(bounds.k[i], t->nkeys);
	free(bounds.k);
	return same;
}

/* ---- the job ------------------------------------------------------------- */

static void
vf_quiet(void *ctx, const char *line)
{
	(void) ctx;
	(void) line;
}

/* Whether the job runs: its endpoint answers, or the source says its
 * position is in use. */
static bool
vf_running(job *j)
{
	const syncd_source_ops *src = &j->source->plugin->ops.source;
	char *url = NULL;
	bool running = monitor_running(j, &url);

	free(url);
	for (uint32_t i = 0; !running && src->retire && i < j->nstreams; i++)
		running = src->retire(j->source->state, i, false, vf_quiet,
		                      NULL) == SYNCD_RETRY;
	plugerr_clear();
	return running;
}

int
verify_job(job *j, char *const *tables, size_t n, bool repair, FILE *out)
{
	const syncd_source_ops *src = &j->source->plugin->ops.source;
	vf v = {.j = j, .names = tables, .nnames = n};
	size_t nsame = 0;
	int rc = 0;

	if (!src->list_tables || !src->digest) {
		log_error("%s cannot compare its tables (its plugin has no "
		          "list_tables or digest operation)",
		          j->source->prefix);
		return 1;
	}
	if (!j->sink->plugin->ops.sink.digest) {
		log_error("%s cannot compare its tables (its plugin has no "
		          "digest operation)",
		          j->sink->prefix);
		return 1;
	}
	if (!job_list_streams(j))
		return 1;
	v.used = xcalloc(n + 1, sizeof *v.used);
	if (src->list_tables(j->source->state, vf_one, &v) != SYNCD_OK) {
		log_error("%s could not list its tables: %s", j->source->prefix,
		          plugerr_msg(j->source));
		rc = 1;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (!v.used[i]) {
			log_error("--verify %s: the job selects no such table "
			          "(syncd --preview lists them: give schema.table "
			          "of the source or of the target)",
			          tables[i]);
			rc = 1;
		}
	if (rc)
		goto out;
	v.running = vf_running(j);
	fprintf(out, "comparing %zu table(s) of job %s%s\n", v.n, job_name(j),
	        v.running ? " while it runs (what differs is looked at "
	                    "again as the destination catches up)"
	                  : "");
	for (size_t i = 0; i < v.n && !job_stopping(j); i++)
		nsame += vf_table_run(&v, &v.t[i], repair, out);
	fprintf(out, "%zu of %zu table(s) the same\n", nsame, v.n);
	rc = nsame == v.n && !v.failed ? 0 : 1;
out:
	for (size_t i = 0; i < v.n; i++) {
		vf_table *t = &v.t[i];
		for (size_t s = 0; s < t->nsrc; s++) {
			router_free(t->src[s].rel);
			free(t->src[s].cols);
			free(t->src[s].keys);
		}
		free(t->src);
		router_free(t->sink);
		free(t->name);
		free(t->cols);
		free(t->keys);
		free(t->skeys);
		free(t->keyhdr);
		free(t->problem);
	}
	free(v.t);
	free(v.used);
	return rc;
}
