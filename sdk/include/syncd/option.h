/*
 * syncd/option.h - the table of options a plugin declares.
 *
 * The table is the single source of truth: the core validates the keys of the
 * plugin's job-file section against it (unknown key, wrong type, out of range
 * and missing required keys are errors naming file:line), prints it for
 * `syncd --plugin-help NAME`, and takes defaults from it. A plugin reads the
 * resulting values through the host (syncd/host.h), never from the file.
 *
 * The table and its strings are owned by the plugin and must stay valid while
 * the module is loaded (static storage). It ends with an entry whose name is
 * NULL.
 */
#ifndef SYNCD_OPTION_H
#define SYNCD_OPTION_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum syncd_option_type {
	SYNCD_OPT_STRING = 1,   /* any text */
	SYNCD_OPT_INT = 2,      /* 64-bit signed integer, within [min, max] */
	SYNCD_OPT_BOOL = 3,     /* true/false, yes/no, on/off, 1/0 */
	SYNCD_OPT_DURATION = 4, /* 500ms, 30s, 5m, 6h, 1d, 1day, 2hours,
	                           1minute; a bare number is in `unit` (default
	                           "s"); read back in milliseconds */
	SYNCD_OPT_SIZE = 5,     /* 512KB, 64MB, 1GB (1024-based), 100B; a bare
	                           number is in `unit` (default "B"); read back in
	                           bytes */
	SYNCD_OPT_ENUM = 6,     /* one of `choices`, written "a|b|c" */
	SYNCD_OPT_LIST =
	    7 /* comma-separated list; blanks around items trimmed */
} syncd_option_type;

/* Option flags. */
#define SYNCD_OPT_REQUIRED 0x1u /* the key must be present and non-empty */
#define SYNCD_OPT_SECRET   0x2u /* the value is masked in every log line */
#define SYNCD_OPT_PREFIX                                                       \
	0x4u /* name ends with '.', and the entry accepts                      \
	        every key that starts with it (e.g. the                        \
	        udf transform's "field.") */

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
} syncd_option;

#ifdef __cplusplus
}
#endif
#endif
