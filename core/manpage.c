/*
 * core/manpage.c - see manpage.h.
 */
#include "config.h"

#include "coreopts.h"
#include "loader.h"
#include "manpage.h"
#include "monitor.h"
#include "options.h"

#include <stdlib.h>
#include <string.h>

/* Text for roff: backslashes and minus signs escaped, a line never
 * starting with a control character. */
static void
man_text(FILE *out, const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", out);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", out);
		else if (*s == '-')
			fputs("\\-", out);
		else
			fputc(*s, out);
	}
}

static void
man_option(FILE *out, const syncd_option *o)
{
	fputs(".TP\n.B ", out);
	man_text(out, o->name);
	fputs("\n", out);
	if (o->flags & SYNCD_OPT_REQUIRED)
		fputs("Required. ", out);
	else if (o->default_value && *o->default_value) {
		fputs("Default: \\fB", out);
		man_text(out, o->default_value);
		fputs("\\fR. ", out);
	} else
		fputs("No default. ", out);
	fputs("Type: ", out);
	man_text(out, options_type_name(o->type));
	if (o->type == SYNCD_OPT_ENUM && o->choices) {
		fputs(", one of ", out);
		man_text(out, o->choices);
	}
	if (o->min || o->max) {
		char range[96];
		snprintf(range, sizeof range, ", from %lld to %lld%s",
		         (long long) o->min, (long long) o->max,
		         o->type == SYNCD_OPT_DURATION ? " ms"
		         : o->type == SYNCD_OPT_SIZE   ? " bytes"
		                                       : "");
		man_text(out, range);
	}
	if (o->unit && *o->unit) {
		fputs("; a bare number is in ", out);
		man_text(out, o->unit);
	}
	if (o->flags & SYNCD_OPT_SECRET)
		fputs("; secret: masked in every log line", out);
	fputs(".\n.br\n", out);
	man_text(out, o->help ? o->help : "");
	fputs("\n", out);
}

static void
man_table(FILE *out, const syncd_option *t)
{
	for (const syncd_option *o = t; o && o->name; o++)
		man_option(out, o);
}

/* The keys of one shipped plugin; false when it is not found. */
static bool
man_plugin(FILE *out, const char *name)
{
	char *err = NULL;
	const loaded_plugin *p = loader_load(name, &err);

	if (!p) {
		fprintf(stderr, "syncd --man-ini: %s\n", err ? err : name);
		free(err);
		return false;
	}
	fputs(".SS \"", out);
	man_text(out, name);
	fputs("\"\n", out);
	man_text(out, p->d.description ? p->d.description : "");
	fputs(".\n", out);
	if (!p->d.options || !p->d.options->name)
		fputs("It has no keys of its own.\n", out);
	man_table(out, p->d.options);
	return true;
}

/* The sections of a job file, in the order of the manual. */
static const struct man_section {
	const char *title, *intro; /* intro: roff, or NULL */
	const syncd_option *core;  /* keys syncd reads there, or NULL */
	const char *plugins[3];    /* the shipped plugins of the section */
} man_sections[] = {
    {"[job]", NULL, job_core_options, {NULL}},
    {"[source]", "Keys syncd reads for every source:\n", job_source_core,
     {"pgoutput", NULL}},
    {"[logical_table.NAME]",
     "The database/table shard scenario: the tables of the source "
     "databases that \\fBsource_db_filter\\fR matches, whose names "
     "\\fBsource_table_filter\\fR matches (POSIX extended regular "
     "expressions), go into one target table NAME.\n",
     NULL,
     {NULL}},
    {"[sink]", "Keys syncd reads for every sink:\n", job_sink_core_options,
     {"dws_upsert", "dws_copy", NULL}},
    {"[transform.NAME]", "Transforms run in file order.\n",
     job_transform_core,
     {"logical_delete", "udf", NULL}},
    {"[dirty]", NULL, job_dirty_options, {NULL}},
    {"[archiver]",
     "Read only with \\fB[dirty] enabled = true\\fR and \\fBpolicy "
     "= archive\\fR.\n",
     job_archiver_core,
     {"file", "obs", NULL}},
    {"[monitor]", NULL, monitor_options, {NULL}},
};

int
manpage_ini(FILE *out)
{
	int rc = 0;

	fprintf(out,
	        ".\\\" Written by syncd --man-ini from the option tables; do "
	        "not edit.\n"
	        ".TH SYNCD.INI 5 \"\" \"syncd %s\" \"File Formats\"\n"
	        ".SH NAME\n"
	        "syncd.ini \\- the job file of syncd\n"
	        ".SH SYNOPSIS\n"
	        ".B syncd \\-c\n.I job.ini\n"
	        ".SH DESCRIPTION\n"
	        "A job file says what syncd copies and streams, from where, "
	        "to where and how. It is an INI file read with inih: "
	        "sections in brackets, one \\fIkey\\fR = \\fIvalue\\fR per "
	        "line, comments from \\fB;\\fR or \\fB#\\fR. Unknown "
	        "sections and keys, a key set twice, a wrong type, unit or "
	        "range are errors naming \\fIFILE:LINE\\fR (exit 2). A value "
	        "may be continued on indented lines. \\fB${NAME}\\fR is the "
	        "environment variable NAME. An empty value means the "
	        "default.\n"
	        ".PP\n"
	        "Durations are written \\fB500ms\\fR, \\fB30s\\fR, "
	        "\\fB5m\\fR, \\fB6h\\fR, \\fB1d\\fR (or \\fB2hours\\fR); "
	        "sizes \\fB64KB\\fR, \\fB512MB\\fR, \\fB1GB\\fR "
	        "(1024\\-based); booleans true/false, yes/no, on/off, 1/0. "
	        "Passwords belong in ~/.pgpass, PGPASSFILE or PGPASSWORD, "
	        "not in the file.\n",
	        PACKAGE_VERSION);
	for (size_t i = 0; i < sizeof man_sections / sizeof man_sections[0];
	     i++) {
		const struct man_section *sec = &man_sections[i];
		fprintf(out, ".SH \"%s\"\n", sec->title);
		if (sec->intro)
			fputs(sec->intro, out);
		man_table(out, sec->core);
		for (int k = 0; sec->plugins[k]; k++)
			if (!man_plugin(out, sec->plugins[k]))
				rc = 1;
	}
	fputs(".SH FILES\n"
	      ".TP\n.I conf.d/example.ini\n"
	      "installed in syncd's configuration directory: every key of "
	      "syncd itself with its default, commented\n"
	      ".SH \"SEE ALSO\"\n"
	      ".BR syncd (1),\n.BR syncd\\-plugins (7)\n",
	      out);
	return rc;
}
