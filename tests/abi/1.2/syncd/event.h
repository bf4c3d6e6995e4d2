/*
 * syncd/event.h - the events that flow from a source, through transforms,
 * to a sink: relations, changes and transaction boundaries.
 *
 * Ownership: every event, relation and value handed to a plugin is
 * borrowed for the duration of the call that receives it. A plugin that
 * keeps any of it past that call copies it. A plugin that emits an event
 * keeps ownership of what it passed in; the core copies what it needs
 * before emit returns.
 *
 * Values travel in PostgreSQL's text representation (the output of the
 * type's output function), not NUL-terminated: use len. A value is NULL,
 * text, or "unchanged" (the source did not send it: an unchanged TOAST
 * value, or a column a change leaves alone; a sink keeps the destination's
 * value).
 */
#ifndef SYNCD_EVENT_H
#define SYNCD_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <syncd/abi.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A position in a source's ordered stream (for PostgreSQL, a WAL
 * position). Grows within a stream. 0 means "none". */
typedef uint64_t syncd_lsn;

#define SYNCD_LSN_FMT       "%X/%X"
#define SYNCD_LSN_ARGS(lsn) ((unsigned) ((lsn) >> 32)), ((unsigned) (lsn))

typedef enum syncd_value_kind {
	/* SQL NULL; data is NULL, len 0 */
	SYNCD_VALUE_NULL = 0,
	/* the text representation in data[0..len) */
	SYNCD_VALUE_TEXT = 1,
	/* not sent: keep the destination's value */
	SYNCD_VALUE_UNCHANGED = 2
	/* 3 is reserved */
} syncd_value_kind;

/* One value. Never changes (no size field): arrays of values are as long
 * as their relation has columns. */
typedef struct syncd_value {
	syncd_value_kind kind;
	uint32_t len;
	const char *data;
} syncd_value;

/* Column flags. */
#define SYNCD_COL_KEY      0x1u /* part of the primary key / replica identity */
#define SYNCD_COL_NOT_NULL 0x2u

typedef struct syncd_column {
	uint32_t size;         /* sizeof(syncd_column) */
	const char *name;      /* as in the source catalog, never quoted */
	uint32_t type_oid;     /* PostgreSQL type OID; 0 when unknown */
	const char *type_name; /* e.g. "integer", "character varying(20)" */
	int32_t typmod;        /* -1 when none */
	uint32_t flags;        /* SYNCD_COL_* */
	/* For a key column, its position in the key from 1 (the key's own
	 * order, which may differ from the column order); 0 otherwise or
	 * when unknown. */
	uint32_t key_position;
	/* For a column a transform adds: its SQL default, used when a sink
	 * creates the table (e.g. "false"); else NULL. */
	const char *default_value;
} syncd_column;

#define SYNCD_COLUMN_SIZE_1_0 SYNCD_SIZE_THROUGH(syncd_column, default_value)

struct syncd_table_details; /* syncd/details.h */

/*
 * A table as the source sees it. id is chosen by the source and unique
 * within one source instance for the life of the job (pgoutput combines
 * database and relation OID). A new relation event with a known id means
 * the table changed; changes that follow refer to the new shape.
 *
 * target_schema / target_table are NULL coming out of a source; the core's
 * router fills them (folding names to lower case when the sink wants it)
 * before any transform or sink sees the relation.
 */
typedef struct syncd_relation {
	uint32_t size; /* sizeof(syncd_relation) */
	uint64_t id;
	const char *database; /* the source database, or NULL */
	const char *schema;
	const char *table;
	uint32_t ncolumns;
	const syncd_column *columns; /* stride columns[0].size */
	/* 'd' default (the primary key), 'f' full, 'i' index, 'n' nothing */
	char replica_identity;
	const char *target_schema;
	const char *target_table;
	/* Optional: what automatic table creation may use beyond the
	 * columns (comments, indexes, base types), when the source knows it
	 * (from list_tables); NULL otherwise. See syncd/details.h. */
	const struct syncd_table_details *details;
} syncd_relation;

#define SYNCD_RELATION_SIZE_1_0 SYNCD_SIZE_THROUGH(syncd_relation, details)

#define SYNCD_MAX_STREAMS 64

typedef enum syncd_event_type {
	SYNCD_EV_BEGIN = 1,
	SYNCD_EV_COMMIT = 2,
	SYNCD_EV_RELATION = 3,
	SYNCD_EV_INSERT = 4,
	SYNCD_EV_UPDATE = 5,
	SYNCD_EV_DELETE = 6,
	SYNCD_EV_TRUNCATE = 7,
	/* Set, in every row of rel, the columns whose new_values are not
	 * SYNCD_VALUE_UNCHANGED (the logical_delete transform turns a
	 * TRUNCATE into this: every row marked deleted). A sink that cannot
	 * returns SYNCD_FATAL naming the table. */
	SYNCD_EV_UPDATE_ALL = 8
} syncd_event_type;

/* Truncate flags. */
#define SYNCD_TRUNCATE_CASCADE          0x1u
#define SYNCD_TRUNCATE_RESTART_IDENTITY 0x2u

/*
 * One event.
 *
 * lsn: for BEGIN, COMMIT and every change, the commit position of the
 * transaction it belongs to (pgoutput's "final LSN"); many changes share
 * one. Progress is tracked by it, never by the position of a single change.
 * commit_time: microseconds since the Unix epoch, UTC; 0 when unknown.
 * xid: source transaction id, 0 if unknown.
 * stream: which ordered stream of its source the event belongs to, from 0
 * (a source reading several databases has one stream per database).
 * Positions grow within a stream; nothing is assumed across streams.
 *
 * rel: the relation for changes and RELATION events. For TRUNCATE, rels
 * and nrels list every truncated relation (rel is rels[0]).
 *
 * old_values / new_values: arrays of rel->ncolumns values, or NULL.
 *   INSERT: new_values.
 *   UPDATE: new_values; old_values when the source sent the old key or the
 *           old row (old_is_key: only key columns are meaningful, the
 *           others are SYNCD_VALUE_NULL).
 *   DELETE: old_values (old_is_key as above).
 *   UPDATE_ALL: new_values.
 */
typedef struct syncd_event {
	uint32_t size; /* sizeof(syncd_event) */
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

#define SYNCD_EVENT_SIZE_1_0 SYNCD_SIZE_THROUGH(syncd_event, rels)

#ifdef __cplusplus
}
#endif
#endif
