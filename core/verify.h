/*
 * core/verify.h - syncd --verify [TABLE...] [--repair]: compares every
 * selected source table with its target, by hashes of key ranges computed
 * in both databases (the plugins' digest operation), narrowing down to the
 * differing rows; --repair copies the differing ranges again.
 */
#ifndef SYNCD_VERIFY_H
#define SYNCD_VERIFY_H

#include <stdbool.h>
#include <stdio.h>

#include "job.h"

/* Rows per key range. */
#define VERIFY_CHUNK_ROWS 10000
/* Example keys printed per kind of difference. */
#define VERIFY_EXAMPLES 5

/* Compares the tables named (all when n == 0: "schema.table", or the
 * target's name), one line per target table on out. Exit code: 0 every
 * table the same (after a repair), 1 otherwise. */
int verify_job(job *j, char *const *tables, size_t n, bool repair, FILE *out);

#endif
