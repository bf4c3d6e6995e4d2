/*
 * syncd/abi.h - version of the plugin ABI, and the log of what each bump
 * changed.
 *
 * The loader reads a plugin's descriptor and checks, before calling anything
 * else: the magic, the ABI major (must equal SYNCD_ABI_MAJOR), the ABI minor
 * (must not be newer than the core's), and the size of every structure the
 * plugin hands over (never larger than the core's; smaller means an older
 * minor, and the core fills the missing tail with zeros / NULL).
 *
 * Rules for changing the ABI:
 *  - a new field or callback is appended at the end of its structure and the
 *    minor is bumped; nothing is ever reordered, removed or retyped;
 *  - anything else bumps the major, and every plugin must be rebuilt.
 *
 * History:
 *  1.0 (2026-11-24)  first version: descriptor, option table, host services
 *                    (incl. emit/drain/flushed_lsn/stored_lsn for sources,
 *                    reject for sinks), source (incl. the optional
 *                    list_tables) / transform / sink (incl. the optional
 *                    prepare_table) / archiver operations, events with
 *                    ordered streams; list_tables relations carry base
 *                    types, comments and ordinary indexes;
 *                    full phase: host->copy, source copy_open/read/close,
 *                    sink copy_open/close/table/begin/data/end;
 *                    status SYNCD_INVALID;
 *                    column default_value, SYNCD_COL_DELETED and
 *                    SYNCD_TRUNCATE_MARK (logical delete);
 *                    host->target_of and relation source_host (udf);
 *                    host->logical_tables/logical_table (sharding);
 *                    column key_position (the key's own order);
 *                    copy table snapshot_lsn.
 */
#ifndef SYNCD_ABI_H
#define SYNCD_ABI_H

#define SYNCD_ABI_MAGIC 0x53594e43u /* "SYNC" */
#define SYNCD_ABI_MAJOR 1
#define SYNCD_ABI_MINOR 0

/* Name of the one function every plugin exports (see syncd/plugin.h). */
#define SYNCD_ENTRY_SYMBOL "syncd_plugin_entry"

#endif
