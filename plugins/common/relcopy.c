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
		const syncd_column *c = &src->columns[i];
		r->cols[i] = *c;
		r->cols[i].name = relcopy_keep(r, c->name);
		r->cols[i].type_name = relcopy_keep(r, c->type_name);
		r->cols[i].base_type_name = relcopy_keep(r, c->base_type_name);
		r->cols[i].comment = relcopy_keep(r, c->comment);
		r->cols[i].default_value = relcopy_keep(r, c->default_value);
	}
	r->rel = *src;
	r->rel.database = relcopy_keep(r, src->database);
	r->rel.schema = relcopy_keep(r, src->schema);
	r->rel.table = relcopy_keep(r, src->table);
	r->rel.target_schema = relcopy_keep(r, src->target_schema);
	r->rel.target_table = relcopy_keep(r, src->target_table);
	r->rel.comment = relcopy_keep(r, src->comment);
	r->rel.source_host = relcopy_keep(r, src->source_host);
	r->rel.columns = r->cols;
	r->rel.ncolumns = n + extra;
	r->rel.nindexes = 0;
	r->rel.indexes = NULL;
	if (src->nindexes) {
		syncd_index *ix =
		    relcopy_own(r, calloc(src->nindexes, sizeof *ix));
		for (uint32_t i = 0; i < src->nindexes; i++) {
			uint32_t *cols =
			    relcopy_own(r, calloc(src->indexes[i].ncolumns + 1,
			                          sizeof *cols));
			memcpy(cols, src->indexes[i].columns,
			       src->indexes[i].ncolumns * sizeof *cols);
			ix[i] = src->indexes[i];
			ix[i].name = relcopy_keep(r, src->indexes[i].name);
			ix[i].columns = cols;
		}
		r->rel.nindexes = src->nindexes;
		r->rel.indexes = ix;
	}
	return r;
}

bool
relcopy_same(const relcopy *r, const syncd_relation *src)
{
	if (r->nsrc != src->ncolumns)
		return false;
	for (uint32_t i = 0; i < r->nsrc; i++)
		if (strcmp(r->cols[i].name, src->columns[i].name) != 0 ||
		    r->cols[i].type_oid != src->columns[i].type_oid ||
		    r->cols[i].flags != src->columns[i].flags)
			return false;
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
