/*
 * syncd/event.h - the events that flow from a source, through transforms,
 * to a sink: relations, changes and transaction boundaries.
 *
 * Ownership: every event, relation and value handed to a plugin is borrowed
 * for the duration of the call that receives it. A plugin that keeps any of
 * it past that call copies it. A source that emits an event keeps ownership
 * of what it passed in; the core copies what it needs before emit() returns.
 *
 * Values travel in PostgreSQL's text representation (the output of the
 * type's output function), not NUL-terminated: use len. A value is NULL,
 * text, or "unchanged TOAST" (the source did not send it because it did not
 * change and is stored out of line; a sink must keep the destination's value).
 */
#ifndef SYNCD_EVENT_H
#define SYNCD_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A PostgreSQL WAL position. 0 means "none". */
typedef uint64_t syncd_lsn;

#define SYNCD_LSN_FMT       "%X/%X"
#define SYNCD_LSN_ARGS(lsn) ((unsigned) ((lsn) >> 32)), ((unsigned) (lsn))

typedef enum syncd_value_kind {
	SYNCD_VALUE_NULL = 0, /* SQL NULL; data is NULL, len 0 */
	SYNCD_VALUE_TEXT = 1, /* text representation in data[0..len) */
	SYNCD_VALUE_UNCHANGED =
	    2, /* unchanged TOAST: not sent, keep the old value */
	SYNCD_VALUE_BINARY = 3 /* binary representation (only if negotiated) */
} syncd_value_kind;

typedef struct syncd_value {
	syncd_value_kind kind;
	uint32_t len;
	const char *data;
} syncd_value;

/* Column flags. */
#define SYNCD_COL_KEY      0x1u /* part of the primary key / replica identity */
#define SYNCD_COL_NOT_NULL 0x2u
/* The logical-delete flag a transform added (logical_delete): a TRUNCATE
 * with SYNCD_TRUNCATE_MARK sets it to true in every row. */
#define SYNCD_COL_DELETED 0x4u

typedef struct syncd_column {
	const char *name;      /* as in the source catalog, never quoted */
	uint32_t type_oid;     /* source type OID */
	const char *type_name; /* e.g. "integer", "character varying(20)"; may
	                          be NULL */
	int32_t typmod;        /* -1 when none */
	uint32_t flags;        /* SYNCD_COL_* */
	/* From list_tables (NULL in streamed relations): for an enum, "text";
	 * for a domain, its base type as format_type() writes it; else NULL.
	 * What a destination without the type can store instead. */
	const char *base_type_name;
	const char *comment; /* the column's comment, or NULL */
	/* For a column a transform adds: its SQL default for automatic table
	 * creation (e.g. "false"), or NULL. */
	const char *default_value;
	/* For a key column: its position in the primary key, from 1 (the
	 * key's own order, which may differ from the column order); 0 when
	 * the column is not a key column or the source does not know. */
	uint32_t key_position;
} syncd_column;

/* An ordinary (non-unique, plain-column, btree) index of a table, from
 * list_tables: the columns it covers, as indexes into the relation's
 * columns, in index order. */
typedef struct syncd_index {
	const char *name;
	uint32_t ncolumns;
	const uint32_t *columns;
} syncd_index;

/*
 * A table as the source sees it. id is chosen by the source and unique within
 * one source instance for the life of the job (pgoutput combines database and
 * relation OID). A new relation event with a known id means the table changed;
 * changes that follow refer to the new shape.
 *
 * target_schema / target_table are NULL coming out of a source; the core's
 * router fills them (and folds names to lower case when
 * sink.field.name.case-sensitive = false) before the sink sees the relation.
 */
typedef struct syncd_relation {
	uint64_t id;
	const char *database;
	const char *schema;
	const char *table;
	uint32_t ncolumns;
	const syncd_column *columns;
	char replica_identity; /* 'd' default, 'f' full, 'i' index, 'n' nothing
	                        */
	const char *target_schema;
	const char *target_table;
	/* From list_tables only (NULL / 0 in streamed relations), for
	 * automatic table creation: the table's comment and its ordinary
	 * indexes. */
	const char *comment;
	uint32_t nindexes;
	const syncd_index *indexes;
	/* The source server the table lives on, as the source reached it (a
	 * host name, an address, or a socket directory), or NULL: the udf
	 * transform's source.host. */
	const char *source_host;
} syncd_relation;

#define SYNCD_MAX_STREAMS 64

typedef enum syncd_event_type {
	SYNCD_EV_BEGIN = 1,
	SYNCD_EV_COMMIT = 2,
	SYNCD_EV_RELATION = 3,
	SYNCD_EV_INSERT = 4,
	SYNCD_EV_UPDATE = 5,
	SYNCD_EV_DELETE = 6,
	SYNCD_EV_TRUNCATE = 7
} syncd_event_type;

/* Truncate flags. */
#define SYNCD_TRUNCATE_CASCADE          0x1u
#define SYNCD_TRUNCATE_RESTART_IDENTITY 0x2u
/* Logical delete: instead of emptying the tables, set each one's
 * SYNCD_COL_DELETED column to true in every row. */
#define SYNCD_TRUNCATE_MARK 0x4u

/*
 * One event.
 *
 * lsn: for BEGIN, COMMIT and every change, the commit LSN of the transaction
 * it belongs to (pgoutput's "final LSN"); many changes share one. Progress is
 * tracked by it, never by the position of a single change.
 * commit_time: microseconds since the Unix epoch, UTC (BEGIN, COMMIT, changes).
 * xid: source transaction id, 0 if unknown.
 * stream: which ordered stream of its source the event belongs to, from 0
 * (a source reading several databases has one replication stream, and one
 * slot, per database). Commit LSNs grow within a stream; nothing is assumed
 * across streams. At most SYNCD_MAX_STREAMS.
 *
 * rel: the relation for changes and RELATION events. For TRUNCATE, rels and
 * nrels list every truncated relation (rel is rels[0]).
 *
 * old_values / new_values: arrays of rel->ncolumns values, or NULL.
 *   INSERT: new_values.
 *   UPDATE: new_values; old_values when the source sent the old key or the
 *           old row (old_is_key: only key columns are meaningful, the others
 *           are SYNCD_VALUE_NULL).
 *   DELETE: old_values (old_is_key as above).
 */
typedef struct syncd_event {
	syncd_event_type type;
	syncd_lsn lsn;
	int64_t commit_time;
	uint32_t xid;
	uint32_t stream;
	const syncd_relation *rel;
	const syncd_value *old_values;
	const syncd_value *new_values;
	bool old_is_key;
	uint32_t truncate_flags;
	uint32_t nrels;
	const syncd_relation *const *rels;
} syncd_event;

#ifdef __cplusplus
}
#endif
#endif
