/*
 * core/shardcols.h - columns added to the shards of a logical table while
 * the job streams. The shards of one [logical_table.*] share one target,
 * and the sink follows the columns of whichever shard it sees
 * (schema.evolution = add): a column one shard gains but the others never
 * get would be a column of some shards' rows only. So a column the stream
 * of one shard brings that is not known to be on every shard is looked up
 * in every shard's catalog first: on all of them, it goes on (the sink
 * adds it to the target once); missing on some after SHARDCOLS_WAIT_MS
 * (an ALTER run shard by shard), the job stops before the change, naming
 * the shards that lack it.
 */
#ifndef SYNCD_SHARDCOLS_H
#define SYNCD_SHARDCOLS_H

#include <stdbool.h>

#include <syncd/plugin.h>

#include "job.h"

#define SHARDCOLS_WAIT_MS 30000

/* The columns every shard of logical table lt has (the shards agree at
 * start: see prepare_tables). */
void shardcols_seed(job *j, size_t lt, char *const *names, uint32_t n);
/* A Relation event of a stream: false (the job failed, said why) when it
 * brings a column some shards of its logical table do not have. */
bool shardcols_relation(job *j, const syncd_relation *rel);
void shardcols_free(job *j);

#endif
