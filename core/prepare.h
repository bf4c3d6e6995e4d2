/*
 * core/prepare.h - the tables the source selects, before anything is
 * streamed: where they go (--preview), whether the targets can take them
 * (--check), creating missing targets (--create-tables, auto_create_table),
 * and refusing names PostgreSQL would cut or tables that would collide.
 */
#ifndef SYNCD_PREPARE_H
#define SYNCD_PREPARE_H

#include <stdio.h>

#include "job.h"

/* syncd --preview: the tables the source selects and where they go.
 * Returns the exit code (0, or 1 if the source could not list them). */
int prepare_preview(job *j, FILE *out);

/* What prepare_tables found. */
typedef enum job_prepared {
	JOB_PREPARED = 0,   /* every table can be synced */
	JOB_PREPARE_SOURCE, /* the source could not list its tables */
	JOB_PREPARE_TABLES  /* a table or its target cannot be synced */
} job_prepared;

/* Hands every table the source selects, through the transforms, to the
 * sink's prepare_table (with target names); *supported is false when the
 * source cannot list tables or the sink has no prepare_table (nothing is
 * done then). Logs what fails (a check logs every table). */
job_prepared prepare_tables(job *j, syncd_prepare what, bool *supported);

/* One table that joins while the job streams (a source's relation): its
 * target checked and, as the sink is set to, created; false (logged) when
 * it cannot take the rows. */
bool prepare_one(job *j, const syncd_relation *rel);

#endif
