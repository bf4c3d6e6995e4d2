/*
 * plugins/common/relcopy.h - a transform's own copy of a relation, with
 * room for the columns it adds (logical_delete, udf).
 *
 * The copy owns every string it points to, and its own table details
 * (syncd/details.h) when the source's relation has them: indexes keep
 * their positions, which stay right with columns appended; per-column
 * details, when present, get one entry per added column too (with NULL
 * base type and comment for the caller to fill).
 */
#ifndef SYNCD_PLUGINS_RELCOPY_H
#define SYNCD_PLUGINS_RELCOPY_H

#include <stdbool.h>

#include <syncd/syncd.h>

typedef struct relcopy {
	syncd_relation rel;
	syncd_column *cols; /* rel.columns: src's, then `extra` zeroed */
	uint32_t nsrc;      /* columns copied from the source */
	/* rel.details, when src has them (else rel.details is NULL) */
	syncd_table_details details;
	/* details.columns: NULL, or src's then `extra` zeroed */
	syncd_column_details *dcols;
	void **owned;
	size_t nowned;
} relcopy;

/* Column i of rel, whatever the stride its builder gave the array. */
static inline const syncd_column *
relcopy_col(const syncd_relation *rel, uint32_t i)
{
	return (
	    const syncd_column *) (const void *) ((const char *) rel->columns +
	                                          (size_t) i *
	                                              rel->columns[0].size);
}

/* A copy of src with `extra` more columns for the caller to fill (each
 * with its size set). */
relcopy *relcopy_new(const syncd_relation *src, uint32_t extra);
/* Whether src still has the shape r was made from (names and types). */
bool relcopy_same(const relcopy *r, const syncd_relation *src);
/* p or a copy of s, freed with r. */
void *relcopy_own(relcopy *r, void *p);
const char *relcopy_keep(relcopy *r, const char *s);
void relcopy_free(relcopy *r);

/* A transform's scratch for one change: its values with room for the
 * columns it adds (newv, oldv), and one TRUNCATE's relations (rels). */
typedef struct relcopy_scratch {
	syncd_value *newv, *oldv;
	size_t cap;
	const syncd_relation **rels;
	size_t rcap;
} relcopy_scratch;

/* Room for n values in newv and oldv, and for n relations in rels. */
void relcopy_scratch_values(relcopy_scratch *sc, size_t n);
void relcopy_scratch_rels(relcopy_scratch *sc, size_t n);
void relcopy_scratch_free(relcopy_scratch *sc);

#endif
