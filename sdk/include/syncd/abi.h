/*
 * syncd/abi.h - the version of the plugin ABI, what a version may change,
 * and the log of what each version changed.
 *
 * The loader reads a plugin's descriptor and checks, before it calls
 * anything: the magic; the ABI major (must equal SYNCD_ABI_MAJOR); the ABI
 * minor (must not be newer than the core's); and the size of every
 * structure the plugin hands over: never smaller than its 1.0 size (the
 * SYNCD_*_SIZE_1_0 constants), never larger than the core's. A smaller size
 * means an older minor: the core reads only the fields that size covers and
 * takes the rest as zero / NULL.
 *
 * Every structure that crosses the module boundary starts with
 * `uint32_t size`, set to sizeof() as the builder of the structure was
 * compiled, except the two that never change: syncd_value and
 * syncd_progress. An array of sized structures has the stride of its first
 * element's size. Structures the core builds for a plugin carry the core's
 * size: a plugin built for a newer minor reads a newer field only when
 * `SYNCD_HAS(p, field)`.
 *
 * What a minor version (1.x) may do, and all it may do:
 *  - append a field at the end of a structure, or an operation at the end
 *    of an operations table, or a function at the end of the host table,
 *    always optional: zero / NULL keeps the 1.0 behaviour;
 *  - add a value to an enum or a flag, which 1.0 plugins never receive
 *    unless they asked for it;
 *  - add a header, a macro or a new optional extension structure.
 * What never changes within major 1: the order, type and meaning of
 * existing fields and operations; the magic; the entry symbol; ownership
 * (arguments are borrowed for the call; nothing is freed across the module
 * boundary except through host->free_mem); the 1.0 sizes below.
 * Anything else bumps the major, and every plugin must be rebuilt.
 *
 * History:
 *  1.0 (2026-12-02)  frozen: descriptor with typed options; a host table
 *                    per plugin instance, grouped by kind; a source that
 *                    only streams (streams/open/start/read/confirm/close)
 *                    and reads snapshots (snapshot/release and the chunk
 *                    readers) while the core runs the job; transforms;
 *                    sinks with write() and the optional copy fast path;
 *                    archivers; events with ordered streams and
 *                    UPDATE_ALL; table details as an optional extension of
 *                    a relation.
 *  1.1               a source's position says where it comes from
 *                    (origin) and whether it was lost (lost); a source
 *                    may drop a position (drop); a sink may record the
 *                    origin with its progress and forget a stream's
 *                    progress (origin_get, origin_set, forget).
 *  1.2 (2026-12-02)  frozen: a source and a sink may say what
 *                    a job left behind and remove it (retire); a source
 *                    may go back to an earlier position (rewind,
 *                    syncd_position.retention_ms) and a sink record
 *                    time marks with its progress and set it back
 *                    (syncd_batch.marks, marks, rewind); both may
 *                    hash key ranges of a table (digest).
 *  1.3 (open)        a source may name the tables that join its
 *                    selection while it streams (new_tables) and take a
 *                    snapshot of some tables while it streams
 *                    (snapshot_tables, release_tables): tables are then
 *                    copied while the others stream.
 */
#ifndef SYNCD_ABI_H
#define SYNCD_ABI_H

#include <stddef.h>

#define SYNCD_ABI_MAGIC 0x53594e43u /* "SYNC" */
#define SYNCD_ABI_MAJOR 1
#define SYNCD_ABI_MINOR 3

/* Name of the one function every plugin exports (see syncd/plugin.h). */
#define SYNCD_ENTRY_SYMBOL "syncd_plugin_entry"

/* The size of a structure up to and including one of its fields: how the
 * 1.0 sizes are written, so that appending fields never changes them. */
#define SYNCD_SIZE_THROUGH(type, field)                                        \
	(offsetof(type, field) + sizeof(((type *) 0)->field))

/* True when the structure p (which starts with its size) has field: use it
 * before reading a field newer than 1.0 in a structure someone else built. */
#define SYNCD_HAS(p, field)                                                    \
	((p)->size >= SYNCD_SIZE_THROUGH(__typeof__(*(p)), field))

#endif
