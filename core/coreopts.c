/*
 * core/coreopts.c - see coreopts.h.
 */
#include "config.h"

#include "coreopts.h"

const syncd_option job_core_options[] = {
    {"name", SYNCD_OPT_STRING, NULL,
     "job name, [A-Za-z0-9_]+ (at most 48): names the slot and the job's state",
     SYNCD_OPT_REQUIRED, 0, 0, NULL, NULL, 0, 0},
    {"mode", SYNCD_OPT_ENUM, "full+incremental",
     "full+incremental: copy, then stream; incremental: stream only; full: "
     "copy only",
     0, 0, 0, "full+incremental|incremental|full", NULL, 0, 0},
    {"concurrency", SYNCD_OPT_INT, "2",
     "sink workers, each with its own destination connection (the reference's "
     "CPU cores)",
     0, 1, 64, NULL, NULL, 0, 0},
    {"auto_retry", SYNCD_OPT_BOOL, "false",
     "restart a failed job from its last checkpoint", 0, 0, 0, NULL, NULL, 0,
     0},
    {"max_retries", SYNCD_OPT_INT, "1",
     "restarts allowed when auto_retry is on", 0, 0, 1000, NULL, NULL, 0, 0},
    {"retry_interval", SYNCD_OPT_DURATION, "120s",
     "wait between restarts (a bare number is seconds)", 0, 0, 86400000LL, NULL,
     "s", 0, 0},
    {"reconnect.max_wait", SYNCD_OPT_DURATION, "5m",
     "how long a lost source or destination connection is tried again "
     "(after 1, 2, 4, 8, 16, then every 30 s) before the job fails; "
     "auto_retry may then restart it",
     0, 0, 86400000LL, NULL, "s", 0, 0},
    {"state_dir", SYNCD_OPT_STRING, NULL,
     "local state directory (spill files); default $STATE_DIRECTORY, "
     "/var/lib/syncd as root, else ~/.local/state/syncd; the job uses DIR/NAME",
     0, 0, 0, NULL, NULL, 0, 0},
    {"log.format", SYNCD_OPT_ENUM, "text",
     "text: lines for people (the full phase's live display on a "
     "terminal); json: one JSON object per line (time, level, job, "
     "instance, message) for log shippers, and no live display",
     0, 0, 0, "text|json", NULL, 0, 0},
    {NULL, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0, 0}};

const syncd_option job_source_core[] = {
    {"plugin", SYNCD_OPT_STRING, "pgoutput", "the source plugin", 0, 0, 0, NULL,
     NULL, 0, 0},
    {"slot.lost", SYNCD_OPT_ENUM, "fail",
     "a replication slot the source invalidated (its WAL removed, "
     "max_slot_wal_keep_size): fail: stop and say how to re-sync; resync: "
     "create it anew and copy the tables again (mode full+incremental)",
     0, 0, 0, "fail|resync", NULL, 0, 0},
    {NULL, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0, 0}};

const syncd_option job_sink_core_options[] = {
    {"plugin", SYNCD_OPT_STRING, NULL,
     "the sink plugin; by default write_mode picks it (upsert: dws_upsert, "
     "copy: dws_copy)",
     0, 0, 0, NULL, NULL, 0, 0},
    {"write_mode", SYNCD_OPT_ENUM, "upsert",
     "upsert: batched INSERT ... ON CONFLICT; copy: COPY into staging, then "
     "merge",
     0, 0, 0, "upsert|copy", NULL, 0, 0},
    {"target.schema", SYNCD_OPT_STRING, "#{source_db_name}",
     "destination schema; may use #{source_db_name}, #{source_schema_name}, "
     "#{source_table_name}",
     0, 0, 0, NULL, NULL, 0, 0},
    {"target.table", SYNCD_OPT_STRING, "#{source_table_name}",
     "destination table; must contain #{source_table_name}", 0, 0, 0, NULL,
     NULL, 0, 0},
    {"batch.max_rows", SYNCD_OPT_INT, "50000",
     "flush a worker's batch at this many changes (Maximum Data Volume for "
     "Batch Write)",
     0, 1, 10000000, NULL, NULL, 0, 0},
    {"batch.interval", SYNCD_OPT_DURATION, "3s",
     "flush a batch this long after its first change (Scheduled Batch Write "
     "Interval; bare number: seconds)",
     0, 1, 3600000, NULL, "s", 0, 0},
    {"sink.buffer-flush.max-size", SYNCD_OPT_SIZE, "512MB",
     "flush a worker's batch at this many bytes of values (bare number: MB)", 0,
     65536, 68719476736LL, NULL, "MB", 0, 0},
    {"sink.keyby.enable", SYNCD_OPT_BOOL, "true",
     "spread changes over the concurrency workers; false: one worker", 0, 0, 0,
     NULL, NULL, 0, 0},
    {"sink.keyby.mode", SYNCD_OPT_ENUM, "table",
     "table: a table's changes go to one worker; pk: by hash of the primary "
     "key",
     0, 0, 0, "table|pk", NULL, 0, 0},
    {"sink.field.name.case-sensitive", SYNCD_OPT_BOOL, "true",
     "false: fold target schema, table and column names to lower case", 0, 0, 0,
     NULL, NULL, 0, 0},
    {"sink.truncate.mode", SYNCD_OPT_ENUM, "apply",
     "apply: TRUNCATE the target in position; ignore: skip source TRUNCATEs", 0,
     0, 0, "apply|ignore", NULL, 0, 0},
    {"logical.delete.enabled", SYNCD_OPT_BOOL, "false",
     "the reference's spelling of [transform.logical_delete]: deleted rows "
     "stay at the destination, marked deleted",
     0, 0, 0, NULL, NULL, 0, 0},
    {"logical.delete.column", SYNCD_OPT_STRING, "logical_is_deleted",
     "the column that marks them (with logical.delete.enabled)", 0, 0, 0, NULL,
     NULL, 0, 0},
    {NULL, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0, 0}};

const syncd_option job_transform_core[] = {
    {"plugin", SYNCD_OPT_STRING, NULL, "the transform plugin",
     SYNCD_OPT_REQUIRED, 0, 0, NULL, NULL, 0, 0},
    {NULL, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0, 0}};

const syncd_option job_archiver_core[] = {
    {"plugin", SYNCD_OPT_STRING, NULL,
     "the archiver plugin; default: [dirty] archiver", 0, 0, 0, NULL, NULL, 0,
     0},
    {NULL, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0, 0}};

const syncd_option job_dirty_options[] = {
    {"enabled", SYNCD_OPT_BOOL, "false",
     "Write Dirty Data: false fails the job on the first refused row", 0, 0, 0,
     NULL, NULL, 0, 0},
    {"threshold", SYNCD_OPT_INT, "100",
     "refused rows allowed per worker before the job fails; -1: unlimited", 0,
     -1, INT64_MAX, NULL, NULL, 0, 0},
    {"policy", SYNCD_OPT_ENUM, "none",
     "none: log dirty rows only; archive: hand them to the archiver", 0, 0, 0,
     "none|archive", NULL, 0, 0},
    {"archiver", SYNCD_OPT_STRING, "file",
     "archiver plugin used by policy = archive", 0, 0, 0, NULL, NULL, 0, 0},
    {NULL, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0, 0}};
