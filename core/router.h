/*
 * core/router.h - where every table goes: target names from the [sink]
 * target.* patterns or a [logical_table.*] section, name folding
 * (sink.field.name.case-sensitive = false), which databases and tables a
 * sharded job selects, and which worker a change goes to (sink.keyby).
 */
#ifndef SYNCD_ROUTER_H
#define SYNCD_ROUTER_H

#include <stdbool.h>

#include <syncd/plugin.h>

#include "job.h"

/* Bumped whenever router_worker would send some key to another worker
 * than before for the same concurrency and keyby mode: it is part of the
 * job's layout ("2/table/2"), so that a sink resumes every worker from
 * the smallest recorded position after an upgrade (see syncd_job.layout). */
#define ROUTER_LAYOUT_VERSION 2

/* The logical table database.table belongs to (NULL: none); with table
 * NULL, the first whose source_db_filter matches database. */
const logical_table *router_logical_table(const job *j, const char *database,
                                          const char *table);
/* host->source->select: see syncd/host.h. */
syncd_selection router_select(const job *j, const char *database,
                              const char *schema, const char *table);

/* A target.schema / target.table pattern applied to a relation; fold:
 * lower case. Caller frees. */
char *router_name(const char *pattern, const syncd_relation *rel, bool fold);
/* Where rel goes: its target schema and table (caller frees both). */
void router_target(const job *j, const syncd_relation *rel, char **schema,
                   char **table);

/* Copies of relations, with target names. ROUTER_SINK: column names folded
 * as the sink wants them (else as the source wrote them: what transforms
 * see); ROUTER_DETAILS: keep rel->details (borrowed: only while rel
 * lives). A relation a plugin built may be older than the core's (its
 * size): the copy is core-sized, missing fields zero. Free with
 * router_free. */
#define ROUTER_SINK    0x1u
#define ROUTER_DETAILS 0x2u
syncd_relation *router_copy(const job *j, const syncd_relation *rel,
                            unsigned flags);
void router_free(syncd_relation *rel);

/* Column i of a relation a plugin built (columns have the stride of the
 * first one's size). */
const syncd_column *router_column(const syncd_relation *rel, uint32_t i);

/* Which of n workers takes a change of rel: by table, or (keyby_pk) by
 * the key values v when the table has a key. */
int router_worker(int n, bool keyby_pk, const syncd_relation *rel,
                  const syncd_value *v);

#endif
