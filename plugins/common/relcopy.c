/*
 * plugins/common/relcopy.c - see relcopy.h.
 */
#include "relcopy.h"

#include <stdlib.h>
#include <string.h>

void *
relcopy_own(relcopy *r, void *p)
{
	void **owned = realloc(r->owned, (r->nowned + 1) * sizeof *owned);

	if (!p || !owned)
		abort();
	r->owned = owned;
	r->owned[r->nowned++] = p;
	return p;
}

const char *
relcopy_keep(relcopy *r, const char *s)
{
	return s ? relcopy_own(r, strdup(s)) : NULL;
}

/* Copies what both sizes cover of a structure that starts with its size
 * (the rest of dst stays zero), and sets dst's size to its own. */
static void
relcopy_fit(void *dst, uint32_t dst_size, const void *src)
{
	uint32_t src_size = *(const uint32_t *) src;

	memcpy(dst, src, src_size < dst_size ? src_size : dst_size);
	*(uint32_t *) dst = dst_size;
}

/* r's own copy of the details src has (rel.details stays NULL when it has
 * none), with n + extra column details when src has them. */
static void
relcopy_details(relcopy *r, const syncd_table_details *src, uint32_t n,
                uint32_t extra)
{
	syncd_table_details *d = &r->details;

	relcopy_fit(d, sizeof *d, src);
	d->comment = relcopy_keep(r, src->comment);
	d->nindexes = 0;
	d->indexes = NULL;
	d->columns = NULL;
	if (src->nindexes && src->indexes) {
		uint32_t stride = src->indexes[0].size;
		syncd_index *ix =
		    relcopy_own(r, calloc(src->nindexes, sizeof *ix));
		for (uint32_t i = 0; i < src->nindexes; i++) {
			const syncd_index *si =
			    (const void *) ((const char *) src->indexes +
			                    (size_t) i * stride);
			uint32_t *cols = relcopy_own(
			    r, calloc(si->ncolumns + 1, sizeof *cols));
			relcopy_fit(&ix[i], sizeof ix[i], si);
			memcpy(cols, si->columns, si->ncolumns * sizeof *cols);
			ix[i].name = relcopy_keep(r, si->name);
			ix[i].columns = cols;
		}
		d->nindexes = src->nindexes;
		d->indexes = ix;
	}
	if (src->columns) {
		uint32_t stride = src->columns[0].size;
		r->dcols =
		    relcopy_own(r, calloc(n + extra + 1, sizeof *r->dcols));
		for (uint32_t i = 0; i < n; i++) {
			const syncd_column_details *sc =
			    (const void *) ((const char *) src->columns +
			                    (size_t) i * stride);
			relcopy_fit(&r->dcols[i], sizeof r->dcols[i], sc);
			r->dcols[i].base_type_name =
			    relcopy_keep(r, sc->base_type_name);
			r->dcols[i].comment = relcopy_keep(r, sc->comment);
		}
		for (uint32_t i = n; i < n + extra; i++)
			r->dcols[i].size = sizeof r->dcols[i];
		d->columns = r->dcols;
	}
	r->rel.details = d;
}

relcopy *
relcopy_new(const syncd_relation *src, uint32_t extra)
{
	relcopy *r = calloc(1, sizeof *r);
	uint32_t n = src->ncolumns;

	if (!r)
		abort();
	r->nsrc = n;
	r->cols = calloc(n + extra + 1, sizeof *r->cols);
	if (!r->cols)
		abort();
	for (uint32_t i = 0; i < n; i++) {
		const syncd_column *c = relcopy_col(src, i);
		relcopy_fit(&r->cols[i], sizeof r->cols[i], c);
		r->cols[i].name = relcopy_keep(r, c->name);
		r->cols[i].type_name = relcopy_keep(r, c->type_name);
		r->cols[i].default_value = relcopy_keep(r, c->default_value);
	}
	for (uint32_t i = n; i < n + extra; i++)
		r->cols[i].size = sizeof r->cols[i];
	relcopy_fit(&r->rel, sizeof r->rel, src);
	r->rel.database = relcopy_keep(r, src->database);
	r->rel.schema = relcopy_keep(r, src->schema);
	r->rel.table = relcopy_keep(r, src->table);
	r->rel.target_schema = relcopy_keep(r, r->rel.target_schema);
	r->rel.target_table = relcopy_keep(r, r->rel.target_table);
	r->rel.columns = r->cols;
	r->rel.ncolumns = n + extra;
	r->rel.details = NULL;
	if (SYNCD_HAS(src, details) && src->details)
		relcopy_details(r, src->details, n, extra);
	return r;
}

bool
relcopy_same(const relcopy *r, const syncd_relation *src)
{
	if (r->nsrc != src->ncolumns)
		return false;
	for (uint32_t i = 0; i < r->nsrc; i++) {
		const syncd_column *c = relcopy_col(src, i);
		if (strcmp(r->cols[i].name, c->name) != 0 ||
		    r->cols[i].type_oid != c->type_oid ||
		    r->cols[i].flags != c->flags)
			return false;
	}
	return true;
}

void
relcopy_free(relcopy *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nowned; i++)
		free(r->owned[i]);
	free(r->owned);
	free(r->cols);
	free(r);
}

void
relcopy_scratch_values(relcopy_scratch *sc, size_t n)
{
	if (n <= sc->cap)
		return;
	sc->newv = realloc(sc->newv, n * sizeof *sc->newv);
	sc->oldv = realloc(sc->oldv, n * sizeof *sc->oldv);
	if (!sc->newv || !sc->oldv)
		abort();
	sc->cap = n;
}

void
relcopy_scratch_rels(relcopy_scratch *sc, size_t n)
{
	if (n <= sc->rcap)
		return;
	sc->rels = realloc(sc->rels, n * sizeof *sc->rels);
	if (!sc->rels)
		abort();
	sc->rcap = n;
}

void
relcopy_scratch_free(relcopy_scratch *sc)
{
	free(sc->newv);
	free(sc->oldv);
	free(sc->rels);
	memset(sc, 0, sizeof *sc);
}
