/*
 * core/options.h - binding a job-file section to the option tables that
 * declare its keys (the core's own and its plugin's): validation with
 * file:line errors, defaults, typed values.
 */
#ifndef SYNCD_OPTIONS_H
#define SYNCD_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include <syncd/option.h>

#include "jobfile.h"
#include "util.h"

typedef struct opt_value {
	const syncd_option *decl;
	char *key;    /* as written; for PREFIX options the whole key */
	char *text;   /* from the file or the default; NULL: unset */
	int line;     /* 0: from the default */
	int64_t num;  /* INT; DURATION in ms; SIZE in bytes; BOOL 0/1 */
	char **items; /* LIST */
	size_t nitems;
} opt_value;

typedef struct optset {
	char *section;
	opt_value *v;
	size_t n;
	void **owned; /* arrays handed out by optset_fill */
	size_t nowned;
} optset;

/* Checks a declared table (names, types, choices, defaults). Returns NULL or
 * a message naming the bad entry (caller frees). */
char *options_check_table(const syncd_option *table);

/* Checks where a declared table stores its values: every field inside the
 * plugin's option structure of options_size bytes, with its type's size.
 * Returns NULL or a message naming the bad entry (caller frees). */
char *options_check_fields(const syncd_option *table, size_t options_size);

/* Binds section `name` (sec may be NULL when absent from the file) to the
 * NULL-terminated list of tables. Appends "path:LINE: ..." lines to errors;
 * returns false if any. */
bool optset_bind(optset *os, const char *path, const char *name,
                 const jf_section *sec, const syncd_option *const *tables,
                 strbuf *errors);
void optset_free(optset *os);

/* Fills dst (size bytes, zeroed first) with the values of the options of
 * table that have a field (syncd/option.h). Strings and arrays point into
 * os and stay valid until optset_free. */
void optset_fill(optset *os, const syncd_option *table, void *dst, size_t size);

/* The value of a declared option (NULL for an unknown name). */
const opt_value *optset_get(const optset *os, const char *name);
/* Shorthands for the core's own keys (abort on an undeclared name). */
const char *optset_str(const optset *os, const char *name);
int64_t optset_num(const optset *os, const char *name);

/* Parses text for decl; on error returns false with *err set. */
bool options_parse(const syncd_option *decl, const char *text, opt_value *out,
                   const char **err);

const char *options_type_name(syncd_option_type type);

#endif
