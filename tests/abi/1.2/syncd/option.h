/*
 * syncd/option.h - the options a plugin declares, and the structure the
 * core fills with their values.
 *
 * The table is the single source of truth: the core validates the keys of
 * the plugin's job-file section against it (unknown key, wrong type, out of
 * range and missing required keys are errors naming file:line), prints it
 * for `syncd --plugin-help NAME`, and takes defaults from it.
 *
 * Values are typed: the plugin declares a structure with one field per
 * option and names the field in the table with SYNCD_OPT_FIELD(), so that
 * a misspelt field fails at build time and a field of the wrong type is
 * refused when the plugin loads. The core fills the structure before
 * create() and hands it over as host->options (see syncd/host.h):
 *
 *     typedef struct my_opts {
 *         const char *path;       // SYNCD_OPT_STRING, _ENUM
 *         int64_t batch;          // SYNCD_OPT_INT, _DURATION (ms), _SIZE (B)
 *         bool sync;              // SYNCD_OPT_BOOL
 *         syncd_list tables;      // SYNCD_OPT_LIST
 *         syncd_pairs fields;     // SYNCD_OPT_PREFIX
 *     } my_opts;
 *
 *     static const syncd_option my_options[] = {
 *         {.name = "path", .type = SYNCD_OPT_STRING, .default_value = "-",
 *          .help = "...", SYNCD_OPT_FIELD(my_opts, path)},
 *         ...
 *         {.name = NULL}};
 *
 * and in the descriptor `.options = my_options, .options_size =
 * sizeof(my_opts)`. The table, its strings and the values the core fills
 * in stay valid while the instance exists.
 */
#ifndef SYNCD_OPTION_H
#define SYNCD_OPTION_H

#include <stddef.h>
#include <stdint.h>

#include <syncd/abi.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum syncd_option_type {
	/* any text; field: const char * (NULL when unset without default) */
	SYNCD_OPT_STRING = 1,
	/* 64-bit signed integer within [min, max]; field: int64_t */
	SYNCD_OPT_INT = 2,
	/* true/false, yes/no, on/off, 1/0; field: bool */
	SYNCD_OPT_BOOL = 3,
	/* 500ms, 30s, 5m, 6h, 1d, 1day, 2hours, 1minute; a bare number is in
	 * `unit` (default "s"); field: int64_t, in milliseconds */
	SYNCD_OPT_DURATION = 4,
	/* 512KB, 64MB, 1GB (1024-based), 100B; a bare number is in `unit`
	 * (default "B"); field: int64_t, in bytes */
	SYNCD_OPT_SIZE = 5,
	/* one of `choices`, written "a|b|c"; field: const char *, the
	 * choice as written in `choices` */
	SYNCD_OPT_ENUM = 6,
	/* comma-separated list, blanks around items trimmed; field:
	 * syncd_list */
	SYNCD_OPT_LIST = 7,
	/* every key that starts with name (which ends with '.'), in file
	 * order, e.g. the udf transform's "field."; field: syncd_pairs */
	SYNCD_OPT_PREFIX = 8
} syncd_option_type;

/* Option flags. */
#define SYNCD_OPT_REQUIRED 0x1u /* the key must be present and non-empty */
#define SYNCD_OPT_SECRET   0x2u /* the value is masked in every log line */

/* The value of a LIST option. */
typedef struct syncd_list {
	size_t n;
	const char *const *items;
} syncd_list;

/* The value of a PREFIX option: n keys (whole, prefix included) and their
 * values, in file order. */
typedef struct syncd_pairs {
	size_t n;
	const char *const *keys;
	const char *const *values;
} syncd_pairs;

typedef struct syncd_option {
	const char *name; /* key in the job file; NULL ends the table */
	syncd_option_type type;
	const char *default_value; /* in job-file syntax; NULL: no default */
	const char *help;          /* one line, shown by --plugin-help */
	uint32_t flags;            /* SYNCD_OPT_* */
	int64_t min;         /* INT, DURATION (ms), SIZE (bytes): lower bound */
	int64_t max;         /* upper bound; min == max == 0: unbounded */
	const char *choices; /* ENUM: "a|b|c" */
	const char *unit;    /* DURATION / SIZE: unit of a bare number */
	/* Where the value goes in the plugin's option structure: set both
	 * with SYNCD_OPT_FIELD(). field_size 0: the value is not stored (an
	 * option kept for compatibility, read by nobody). */
	size_t offset;
	uint32_t field_size;
} syncd_option;

#define SYNCD_OPT_FIELD(type, field)                                           \
	.offset = offsetof(type, field),                                       \
	.field_size = (uint32_t) sizeof(((type *) 0)->field)

#ifdef __cplusplus
}
#endif
#endif
