/*
 * syncd/details.h - an optional extension of a relation: what a sink that
 * creates its target tables may use beyond the columns (the table's and
 * columns' comments, ordinary indexes, the base type of an enum or a
 * domain). A source fills it in list_tables when it knows it; a sink
 * checks `rel->details != NULL` and `details->version`.
 *
 * Versioned apart from the ABI: version 1 is what this header describes;
 * a later version only appends fields (check SYNCD_HAS()).
 */
#ifndef SYNCD_DETAILS_H
#define SYNCD_DETAILS_H

#include <stdint.h>

#include <syncd/abi.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SYNCD_DETAILS_VERSION 1

/* An ordinary (non-unique, plain-column, btree) index of the table: the
 * columns it covers, as indexes into the relation's columns, in index
 * order. */
typedef struct syncd_index {
	uint32_t size; /* sizeof(syncd_index) */
	const char *name;
	uint32_t ncolumns;
	const uint32_t *columns;
} syncd_index;

#define SYNCD_INDEX_SIZE_1_0 SYNCD_SIZE_THROUGH(syncd_index, columns)

/* Per column, in the relation's column order. */
typedef struct syncd_column_details {
	uint32_t size; /* sizeof(syncd_column_details) */
	/* For an enum, "text"; for a domain, its base type as format_type()
	 * writes it; else NULL: what a destination without the type can
	 * store instead. */
	const char *base_type_name;
	const char *comment; /* the column's comment, or NULL */
} syncd_column_details;

#define SYNCD_COLUMN_DETAILS_SIZE_1_0                                          \
	SYNCD_SIZE_THROUGH(syncd_column_details, comment)

typedef struct syncd_table_details {
	uint32_t size;       /* sizeof(syncd_table_details) */
	uint32_t version;    /* SYNCD_DETAILS_VERSION */
	const char *comment; /* the table's comment, or NULL */
	uint32_t nindexes;
	const syncd_index *indexes; /* stride indexes[0].size */
	/* rel->ncolumns entries (stride columns[0].size), or NULL */
	const syncd_column_details *columns;
} syncd_table_details;

#define SYNCD_TABLE_DETAILS_SIZE_1_0                                           \
	SYNCD_SIZE_THROUGH(syncd_table_details, columns)

#ifdef __cplusplus
}
#endif
#endif
