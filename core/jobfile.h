/*
 * core/jobfile.h - reading the job file: sections and keys with their line
 * numbers, ${ENV} expanded, continuation lines joined. Only syntax is
 * checked here; keys are validated against option tables by options.c.
 */
#ifndef SYNCD_JOBFILE_H
#define SYNCD_JOBFILE_H

#include <stddef.h>
#include <stdio.h>

/* Longest line accepted: what Debian's inih reads (INI_MAX_LINE 200 with
 * the NUL). Longer lines are refused, never cut. */
#define JOBFILE_MAX_LINE 199

typedef struct jf_key {
	char *name;
	char *value; /* after ${ENV} expansion; "" when empty */
	int line;
} jf_key;

typedef struct jf_section {
	char *name;
	int line;
	jf_key *keys;
	size_t nkeys;
} jf_section;

typedef struct jobfile {
	char *path;
	jf_section *sections;
	size_t nsections;
} jobfile;

/* Reads path. On failure returns NULL and sets *errors to one or more
 * "path:LINE: message" lines (caller frees). */
jobfile *jobfile_read(const char *path, char **errors);
/* The same from an open stream; name is used in messages. */
jobfile *jobfile_parse(FILE *f, const char *name, char **errors);
void jobfile_free(jobfile *jf);
jf_section *jobfile_section(const jobfile *jf, const char *name);

#endif
