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

int
manpage_ini(FILE *out)
{
	static const char *const sources[] = {"pgoutput", NULL};
	static const char *const sinks[] = {"dws_upsert", "dws_copy", NULL};
	static const char *const transforms[] = {"logical_delete", "udf",
	                                         NULL};
	static const char *const archivers[] = {"file", "obs", NULL};
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

	fputs(".SH \"[job]\"\n", out);
	man_table(out, job_core_options);

	fputs(".SH \"[source]\"\n"
	      "Keys syncd reads for every source:\n",
	      out);
	man_table(out, job_source_core);
	for (int i = 0; sources[i]; i++)
		if (!man_plugin(out, sources[i]))
			rc = 1;

	fputs(".SH \"[logical_table.NAME]\"\n"
	      "The database/table shard scenario: the tables of the source "
	      "databases that \\fBsource_db_filter\\fR matches, whose names "
	      "\\fBsource_table_filter\\fR matches (POSIX extended regular "
	      "expressions), go into one target table NAME.\n",
	      out);

	fputs(".SH \"[sink]\"\n"
	      "Keys syncd reads for every sink:\n",
	      out);
	man_table(out, job_sink_core_options);
	for (int i = 0; sinks[i]; i++)
		if (!man_plugin(out, sinks[i]))
			rc = 1;

	fputs(".SH \"[transform.NAME]\"\n"
	      "Transforms run in file order.\n",
	      out);
	man_table(out, job_transform_core);
	for (int i = 0; transforms[i]; i++)
		if (!man_plugin(out, transforms[i]))
			rc = 1;

	fputs(".SH \"[dirty]\"\n", out);
	man_table(out, job_dirty_options);

	fputs(".SH \"[archiver]\"\n"
	      "Read only with \\fB[dirty] enabled = true\\fR and \\fBpolicy "
	      "= archive\\fR.\n",
	      out);
	man_table(out, job_archiver_core);
	for (int i = 0; archivers[i]; i++)
		if (!man_plugin(out, archivers[i]))
			rc = 1;

	fputs(".SH \"[monitor]\"\n", out);
	man_table(out, monitor_options);

	fputs(".SH FILES\n"
	      ".TP\n.I conf.d/example.ini\n"
	      "installed in syncd's configuration directory: every key of "
	      "syncd itself with its default, commented\n"
	      ".SH \"SEE ALSO\"\n"
	      ".BR syncd (1),\n.BR syncd\\-plugins (7)\n",
	      out);
	return rc;
}
