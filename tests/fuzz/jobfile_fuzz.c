/*
 * tests/fuzz/jobfile_fuzz.c - libFuzzer target for the job file reader and
 * the validation of its keys against the core's option tables. Any input
 * must give a job file or errors, never a crash, a leak or undefined
 * behaviour. Run: make fuzz (needs clang).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "coreopts.h"
#include "jobfile.h"
#include "log.h"
#include "options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f = fmemopen((void *) data, size, "r");
	char *errors = NULL;
	jobfile *jf;

	if (!f)
		return 0;
	log_set_level(SYNCD_LEVEL_ERROR);
	jf = jobfile_parse(f, "fuzz.ini", &errors);
	fclose(f);
	if (jf) {
		static const char *const names[] = {"job", "sink", "dirty"};
		const syncd_option *tables[][2] = {
		    {job_core_options, NULL},
		    {job_sink_core_options, NULL},
		    {job_dirty_options, NULL}};
		for (size_t i = 0; i < 3; i++) {
			strbuf sb = {0};
			optset os;
			optset_bind(&os, "fuzz.ini", names[i],
			            jobfile_section(jf, names[i]), tables[i],
			            &sb);
			optset_free(&os);
			sb_free(&sb);
		}
		jobfile_free(jf);
	}
	free(errors);
	return 0;
}
