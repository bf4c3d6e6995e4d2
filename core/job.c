/*
 * core/job.c - see job.h.
 */
#include "config.h"

#include "fullcopy.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- the core's keys ----------------------------------------------------- */

const syncd_option job_core_options[] = {
    {"name", SYNCD_OPT_STRING, NULL,
     "job name, [A-Za-z0-9_]+ (at most 48): names the slot and the job's state",
     SYNCD_OPT_REQUIRED, 0, 0, NULL, NULL},
    {"mode", SYNCD_OPT_ENUM, "full+incremental",
     "full+incremental: copy, then stream; incremental: stream only; full: "
     "copy only",
     0, 0, 0, "full+incremental|incremental|full", NULL},
    {"concurrency", SYNCD_OPT_INT, "2",
     "sink workers, each with its own destination connection (the reference's "
     "CPU cores)",
     0, 1, 64, NULL, NULL},
    {"auto_retry", SYNCD_OPT_BOOL, "false",
     "restart a failed job from its last checkpoint", 0, 0, 0, NULL, NULL},
    {"max_retries", SYNCD_OPT_INT, "1",
     "restarts allowed when auto_retry is on", 0, 0, 1000, NULL, NULL},
    {"retry_interval", SYNCD_OPT_DURATION, "120s",
     "wait between restarts (a bare number is seconds)", 0, 0, 86400000LL, NULL,
     "s"},
    {"reconnect.max_wait", SYNCD_OPT_DURATION, "15s",
     "how long a lost destination connection is tried again (after 1, 2, 4, "
     "... s) before the job fails; auto_retry may then restart it",
     0, 0, 86400000LL, NULL, "s"},
    {"state_dir", SYNCD_OPT_STRING, NULL,
     "local state directory (spill files); default $STATE_DIRECTORY, "
     "/var/lib/syncd as root, else ~/.local/state/syncd; the job uses DIR/NAME",
     0, 0, 0, NULL, NULL},
    {NULL, 0, NULL, NULL, 0, 0, 0, NULL, NULL}};

static const syncd_option job_source_core[] = {
    {"plugin", SYNCD_OPT_STRING, "pgoutput", "the source plugin", 0, 0, 0, NULL,
     NULL},
    {NULL, 0, NULL, NULL, 0, 0, 0, NULL, NULL}};

const syncd_option job_sink_core_options[] = {
    {"plugin", SYNCD_OPT_STRING, NULL,
     "the sink plugin; by default write_mode picks it (upsert: dws_upsert, "
     "copy: dws_copy)",
     0, 0, 0, NULL, NULL},
    {"write_mode", SYNCD_OPT_ENUM, "upsert",
     "upsert: batched INSERT ... ON CONFLICT; copy: COPY into staging, then "
     "merge",
     0, 0, 0, "upsert|copy", NULL},
    {"target.schema", SYNCD_OPT_STRING, "#{source_db_name}",
     "destination schema; may use #{source_db_name}, #{source_schema_name}, "
     "#{source_table_name}",
     0, 0, 0, NULL, NULL},
    {"target.table", SYNCD_OPT_STRING, "#{source_table_name}",
     "destination table; must contain #{source_table_name}", 0, 0, 0, NULL,
     NULL},
    {"batch.max_rows", SYNCD_OPT_INT, "50000",
     "flush a worker's batch at this many changes (Maximum Data Volume for "
     "Batch Write)",
     0, 1, 10000000, NULL, NULL},
    {"batch.interval", SYNCD_OPT_DURATION, "3s",
     "flush a batch this long after its first change (Scheduled Batch Write "
     "Interval; bare number: seconds)",
     0, 1, 3600000, NULL, "s"},
    {"sink.buffer-flush.max-size", SYNCD_OPT_SIZE, "512MB",
     "flush a worker's batch at this many bytes of values (bare number: MB)", 0,
     65536, 68719476736LL, NULL, "MB"},
    {"sink.keyby.enable", SYNCD_OPT_BOOL, "true",
     "spread changes over the concurrency workers; false: one worker", 0, 0, 0,
     NULL, NULL},
    {"sink.keyby.mode", SYNCD_OPT_ENUM, "table",
     "table: a table's changes go to one worker; pk: by hash of the primary "
     "key",
     0, 0, 0, "table|pk", NULL},
    {"sink.field.name.case-sensitive", SYNCD_OPT_BOOL, "true",
     "false: fold target schema, table and column names to lower case", 0, 0, 0,
     NULL, NULL},
    {"sink.truncate.mode", SYNCD_OPT_ENUM, "apply",
     "apply: TRUNCATE the target in position; ignore: skip source TRUNCATEs", 0,
     0, 0, "apply|ignore", NULL},
    {"logical.delete.enabled", SYNCD_OPT_BOOL, "false",
     "the reference's spelling of [transform.logical_delete]: deleted rows "
     "stay at the destination, marked deleted",
     0, 0, 0, NULL, NULL},
    {"logical.delete.column", SYNCD_OPT_STRING, "logical_is_deleted",
     "the column that marks them (with logical.delete.enabled)", 0, 0, 0, NULL,
     NULL},
    {NULL, 0, NULL, NULL, 0, 0, 0, NULL, NULL}};

static const syncd_option job_transform_core[] = {
    {"plugin", SYNCD_OPT_STRING, NULL, "the transform plugin",
     SYNCD_OPT_REQUIRED, 0, 0, NULL, NULL},
    {NULL, 0, NULL, NULL, 0, 0, 0, NULL, NULL}};

static const syncd_option job_archiver_core[] = {
    {"plugin", SYNCD_OPT_STRING, NULL,
     "the archiver plugin; default: [dirty] archiver", 0, 0, 0, NULL, NULL},
    {NULL, 0, NULL, NULL, 0, 0, 0, NULL, NULL}};

const syncd_option job_dirty_options[] = {
    {"enabled", SYNCD_OPT_BOOL, "false",
     "Write Dirty Data: false fails the job on the first refused row", 0, 0, 0,
     NULL, NULL},
    {"threshold", SYNCD_OPT_INT, "100",
     "refused rows allowed per worker before the job fails; -1: unlimited", 0,
     -1, INT64_MAX, NULL, NULL},
    {"policy", SYNCD_OPT_ENUM, "none",
     "none: log dirty rows only; archive: hand them to the archiver", 0, 0, 0,
     "none|archive", NULL},
    {"archiver", SYNCD_OPT_STRING, "file",
     "archiver plugin used by policy = archive", 0, 0, 0, NULL, NULL},
    {NULL, 0, NULL, NULL, 0, 0, 0, NULL, NULL}};

/* ---- loading ---------------------------------------------------------------
 */

static const char *
job_raw(const jf_section *sec, const char *key, int *line)
{
	for (size_t i = 0; sec && i < sec->nkeys; i++)
		if (strcmp(sec->keys[i].name, key) == 0) {
			if (line)
				*line = sec->keys[i].line;
			return sec->keys[i].value;
		}
	return NULL;
}

static bool job_valid_ident(const char *s, size_t max);

/* One filter of a [logical_table.NAME] section, compiled. */
static bool
job_filter(const char *path, const jf_section *sec, const char *key,
           const char **text, regex_t *re, strbuf *errors)
{
	int line = sec->line, rc;
	char msg[256];

	*text = job_raw(sec, key, &line);
	if (!*text || !**text) {
		sb_printf(errors,
		          "%s:%d: [%s] %s is required: a POSIX extended "
		          "regular expression, e.g. %s\n",
		          path, line, sec->name, key,
		          strcmp(key, "source_db_filter") == 0
		              ? "^shop_[0-9]+$"
		              : "^orders_[0-9]+$");
		return false;
	}
	rc = regcomp(re, *text, REG_EXTENDED | REG_NOSUB);
	if (rc != 0) {
		regerror(rc, re, msg, sizeof msg);
		regfree(re);
		sb_printf(errors,
		          "%s:%d: [%s] %s = %s is not a POSIX extended regular "
		          "expression: %s\n",
		          path, line, sec->name, key, *text, msg);
		return false;
	}
	return true;
}

/* [logical_table.NAME] sections, in file order. */
static void
job_logical_tables(job *j, const char *path, strbuf *errors)
{
	int line;

	for (size_t i = 0; i < j->file->nsections; i++) {
		const jf_section *sec = &j->file->sections[i];
		const char *name = sec->name + 14;
		logical_table *lt;
		bool db_ok, table_ok;

		if (strncmp(sec->name, "logical_table.", 14) != 0)
			continue;
		if (!job_valid_ident(name, 63)) {
			sb_printf(errors,
			          "%s:%d: [%s]: a logical table's name (its "
			          "target table) is 1 to 63 of A-Z, a-z, 0-9 "
			          "and _\n",
			          path, sec->line, sec->name);
			continue;
		}
		for (size_t k = 0; k < sec->nkeys; k++)
			if (strcmp(sec->keys[k].name, "source_db_filter") !=
			        0 &&
			    strcmp(sec->keys[k].name, "source_table_filter") !=
			        0)
				sb_printf(
				    errors,
				    "%s:%d: [%s] unknown key %s; the keys "
				    "are source_db_filter and "
				    "source_table_filter\n",
				    path, sec->keys[k].line, sec->name,
				    sec->keys[k].name);
		j->ltables = xrealloc(j->ltables,
		                      (j->nltables + 1) * sizeof *j->ltables);
		lt = &j->ltables[j->nltables];
		memset(lt, 0, sizeof *lt);
		db_ok = job_filter(path, sec, "source_db_filter",
		                   &lt->db_filter, &lt->db_re, errors);
		table_ok = job_filter(path, sec, "source_table_filter",
		                      &lt->table_filter, &lt->table_re, errors);
		if (!db_ok || !table_ok) {
			if (db_ok)
				regfree(&lt->db_re);
			if (table_ok)
				regfree(&lt->table_re);
			continue;
		}
		for (size_t k = 0; k < j->nltables; k++)
			if (strcmp(j->ltables[k].name, name) == 0)
				sb_printf(errors,
				          "%s:%d: [%s] is given twice\n", path,
				          sec->line, sec->name);
		lt->name = xstrdup(name);
		j->nltables++;
	}
	if (j->nltables && j->sink &&
	    job_raw(jobfile_section(j->file, "sink"), "target.table", &line))
		sb_printf(errors,
		          "%s:%d: [sink] target.table does not apply with "
		          "[logical_table.*] sections: each logical table's "
		          "name is its target table; remove target.table\n",
		          path, line);
}

const logical_table *
job_logical_table(const job *j, const char *database, const char *table)
{
	for (size_t i = 0; i < j->nltables; i++) {
		const logical_table *lt = &j->ltables[i];
		if (regexec(&lt->db_re, database ? database : "", 0, NULL, 0) !=
		    0)
			continue;
		if (!table || regexec(&lt->table_re, table, 0, NULL, 0) == 0)
			return lt;
	}
	return NULL;
}

static bool
job_valid_ident(const char *s, size_t max)
{
	size_t n = 0;
	for (; s && *s; s++, n++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return n > 0 && n <= max;
}

/* [sink] logical.delete.enabled = true (the reference's keys) stands for a
 * [transform.logical_delete] section after the others, with column =
 * logical.delete.column. */
static void
job_logical_delete_keys(job *j, strbuf *errors)
{
	jf_section *sink = jobfile_section(j->file, "sink"), *t;
	int line = 0, cline = 0;
	const char *on =
	    sink ? job_raw(sink, "logical.delete.enabled", &line) : NULL;
	const char *column =
	    sink ? job_raw(sink, "logical.delete.column", &cline) : NULL;
	const char *err = NULL;
	bool enabled = false;

	if (!on || !*on)
		return;
	if (!parse_bool(on, &enabled, &err))
		return; /* [sink]'s own validation says so */
	if (!enabled)
		return;
	if (jobfile_section(j->file, "transform.logical_delete")) {
		sb_printf(errors,
		          "%s:%d: [sink] logical.delete.enabled = true and a "
		          "[transform.logical_delete] section both configure "
		          "logical deletion; keep one\n",
		          j->file->path, line);
		return;
	}
	j->file->sections =
	    xrealloc(j->file->sections,
	             (j->file->nsections + 1) * sizeof *j->file->sections);
	t = &j->file->sections[j->file->nsections++];
	t->name = xstrdup("transform.logical_delete");
	t->line = line;
	t->nkeys = column && *column ? 2 : 1;
	t->keys = xcalloc(t->nkeys, sizeof *t->keys);
	t->keys[0] =
	    (jf_key){xstrdup("plugin"), xstrdup("logical_delete"), line};
	if (t->nkeys == 2)
		t->keys[1] =
		    (jf_key){xstrdup("column"), xstrdup(column), cline};
}

/* Creates an instance of plugin `name` for section `section`, checking its
 * kind, and binds the section's keys to core_table + the plugin's table. */
static syncd_instance *
job_instance(job *j, const char *section, const char *name, int name_line,
             syncd_plugin_kind kind, const syncd_option *core_table,
             strbuf *errors)
{
	const jf_section *sec = jobfile_section(j->file, section);
	const char *path = j->file->path;
	const loaded_plugin *p;
	syncd_instance *inst;
	const syncd_option *tables[3] = {core_table, NULL, NULL};
	char *err = NULL;
	int line = name_line ? name_line : (sec ? sec->line : 0);

	p = loader_load(name, &err);
	if (!p) {
		sb_printf(errors, "%s:%d: [%s] %s\n", path, line, section, err);
		free(err);
		return NULL;
	}
	if (p->d.kind != kind) {
		sb_printf(errors,
		          "%s:%d: [%s] plugin %s (%s) is a %s plugin; [%s] "
		          "needs a %s plugin (see syncd --list-plugins)\n",
		          path, line, section, name, p->path,
		          loader_kind_name(p->d.kind), section,
		          loader_kind_name(kind));
		return NULL;
	}
	for (const syncd_option *o = p->d.options; o && o->name; o++)
		for (const syncd_option *c = core_table; c->name; c++)
			if (strcmp(o->name, c->name) == 0) {
				sb_printf(
				    errors,
				    "%s: plugin %s declares the key %s, which "
				    "syncd itself owns in [%s]; rename it in "
				    "the plugin\n",
				    p->path, name, o->name, section);
				return NULL;
			}
	inst = xcalloc(1, sizeof *inst);
	inst->job = j;
	inst->section = xstrdup(section);
	inst->prefix = xasprintf("[%s:%s]", section, name);
	inst->plugin = p;
	tables[1] = p->d.options;
	if (!tables[1]) {
		static const syncd_option none[] = {
		    {NULL, 0, NULL, NULL, 0, 0, 0, NULL, NULL}};
		tables[1] = none;
	}
	optset_bind(&inst->opts, path, section, sec, tables, errors);
	for (size_t i = 0; i < inst->opts.n; i++)
		if ((inst->opts.v[i].decl->flags & SYNCD_OPT_SECRET) &&
		    inst->opts.v[i].text)
			log_add_secret(inst->opts.v[i].text);
	return inst;
}

static void
job_instance_free(syncd_instance *inst)
{
	if (!inst)
		return;
	optset_free(&inst->opts);
	free(inst->section);
	free(inst->prefix);
	free(inst);
}

/* #{...} variables in target.schema / target.table. */
static void
job_check_pattern(job *j, const char *key, bool need_table, strbuf *errors)
{
	static const char *const vars[] = {"#{source_db_name}",
	                                   "#{source_schema_name}",
	                                   "#{source_table_name}"};
	const opt_value *v = optset_get(&j->sink->opts, key);
	const char *text = v ? v->text : NULL;

	if (!text || !*text) {
		sb_printf(errors, "%s: [sink] %s may not be empty\n",
		          j->file->path, key);
		return;
	}
	for (const char *p = strstr(text, "#{"); p; p = strstr(p + 2, "#{")) {
		bool known = false;
		for (size_t i = 0; i < 3; i++)
			if (strncmp(p, vars[i], strlen(vars[i])) == 0)
				known = true;
		if (!known)
			sb_printf(
			    errors,
			    "%s:%d: [sink] %s: unknown variable in \"%s\"; "
			    "use #{source_db_name}, #{source_schema_name} or "
			    "#{source_table_name}\n",
			    j->file->path, v->line, key, text);
	}
	if (need_table && !strstr(text, "#{source_table_name}"))
		sb_printf(errors,
		          "%s:%d: [sink] %s = %s must contain "
		          "#{source_table_name}, or every table would go to "
		          "one target\n",
		          j->file->path, v->line, key, text);
}

job *
job_load(const char *path, strbuf *errors)
{
	job *j;
	char *ferr = NULL;
	size_t before = errors->len;
	const jf_section *sec;
	const char *name;
	int line = 0;

	j = xcalloc(1, sizeof *j);
	pthread_mutex_init(&j->fail_lock, NULL);
	pthread_mutex_init(&j->dirty_lock, NULL);
	j->file = jobfile_read(path, &ferr);
	if (!j->file) {
		sb_puts(errors, ferr);
		free(ferr);
		job_free(j);
		return NULL;
	}

	/* sections */
	for (size_t i = 0; i < j->file->nsections; i++) {
		const jf_section *s = &j->file->sections[i];
		if (strcmp(s->name, "job") == 0 ||
		    strcmp(s->name, "source") == 0 ||
		    strcmp(s->name, "sink") == 0 ||
		    strcmp(s->name, "dirty") == 0 ||
		    strcmp(s->name, "archiver") == 0)
			continue;
		if (strncmp(s->name, "transform.", 10) == 0) {
			if (!job_valid_ident(s->name + 10, 63))
				sb_printf(errors,
				          "%s:%d: [%s]: a transform's name is "
				          "made of "
				          "A-Z, a-z, 0-9 and _\n",
				          path, s->line, s->name);
			continue;
		}
		if (strncmp(s->name, "logical_table.", 14) == 0)
			continue; /* job_logical_tables() */
		if (strcmp(s->name, "monitor") == 0) {
			sb_printf(
			    errors,
			    "%s:%d: [%s] is not available in this version of "
			    "syncd yet; remove the section\n",
			    path, s->line, s->name);
			continue;
		}
		sb_printf(
		    errors,
		    "%s:%d: unknown section [%s]; the sections are [job], "
		    "[source], [logical_table.NAME], [sink], [transform.NAME], "
		    "[dirty], [archiver]\n",
		    path, s->line, s->name);
	}

	/* [job] and [dirty] */
	{
		const syncd_option *t[] = {job_core_options, NULL};
		const syncd_option *d[] = {job_dirty_options, NULL};
		optset_bind(&j->job_opts, path, "job",
		            jobfile_section(j->file, "job"), t, errors);
		optset_bind(&j->dirty_opts, path, "dirty",
		            jobfile_section(j->file, "dirty"), d, errors);
	}
	{
		const opt_value *v = optset_get(&j->job_opts, "name");
		if (v && v->text && !job_valid_ident(v->text, 48))
			sb_printf(
			    errors,
			    "%s:%d: [job] name = %s: use 1 to 48 of A-Z, a-z, "
			    "0-9 and _ (it names the replication slot)\n",
			    path, v->line, v->text);
	}

	/* [source] */
	sec = jobfile_section(j->file, "source");
	if (!sec)
		sb_printf(errors, "%s: section [source] is missing\n", path);
	else {
		name = job_raw(sec, "plugin", &line);
		if (!name || !*name) {
			name = "pgoutput";
			line = 0;
		}
		j->source =
		    job_instance(j, "source", name, line, SYNCD_KIND_SOURCE,
		                 job_source_core, errors);
	}

	job_logical_delete_keys(j, errors);
	/* [transform.*], in file order */
	for (size_t i = 0; i < j->file->nsections; i++) {
		const jf_section *s = &j->file->sections[i];
		syncd_instance *t;
		if (strncmp(s->name, "transform.", 10) != 0)
			continue;
		name = job_raw(s, "plugin", &line);
		if (!name || !*name) {
			sb_printf(
			    errors,
			    "%s:%d: [%s] plugin is required (the transform "
			    "plugin to run, e.g. logical_delete or udf)\n",
			    path, s->line, s->name);
			continue;
		}
		t = job_instance(j, s->name, name, line, SYNCD_KIND_TRANSFORM,
		                 job_transform_core, errors);
		if (t) {
			j->transforms =
			    xrealloc(j->transforms, (j->ntransforms + 1) *
			                                sizeof *j->transforms);
			j->transforms[j->ntransforms++] = t;
		}
	}

	/* [sink] */
	sec = jobfile_section(j->file, "sink");
	if (!sec)
		sb_printf(errors, "%s: section [sink] is missing\n", path);
	else {
		name = job_raw(sec, "plugin", &line);
		if (!name || !*name) {
			const char *mode = job_raw(sec, "write_mode", &line);
			if (!mode || !*mode || strcmp(mode, "upsert") == 0)
				name = "dws_upsert";
			else if (strcmp(mode, "copy") == 0)
				name = "dws_copy";
			else
				name = NULL; /* binding reports the bad
				                write_mode */
		}
		if (name)
			j->sink =
			    job_instance(j, "sink", name, line, SYNCD_KIND_SINK,
			                 job_sink_core_options, errors);
	}
	job_logical_tables(j, path, errors);
	if (j->sink) {
		job_check_pattern(j, "target.schema", false, errors);
		if (!j->nltables)
			job_check_pattern(j, "target.table", true, errors);
	}

	/* [archiver]: only when dirty rows are archived */
	sec = jobfile_section(j->file, "archiver");
	if (errors->len == before) {
		bool archive = optset_num(&j->dirty_opts, "enabled") &&
		               strcmp(optset_str(&j->dirty_opts, "policy"),
		                      "archive") == 0;
		if (archive || sec) {
			name = job_raw(sec, "plugin", &line);
			if (!name || !*name) {
				name = optset_str(&j->dirty_opts, "archiver");
				line = 0;
			}
			j->archiver = job_instance(j, "archiver", name, line,
			                           SYNCD_KIND_ARCHIVER,
			                           job_archiver_core, errors);
			if (j->archiver && !archive) {
				log_warning("%s:%d: [archiver] is not used: "
				            "dirty rows are "
				            "archived only with [dirty] "
				            "enabled = true and "
				            "policy = archive",
				            path, sec->line);
				job_instance_free(j->archiver);
				j->archiver = NULL;
			}
		}
	}

	/* the full phase needs a source and a sink that can copy tables */
	if (errors->len == before) {
		const opt_value *m = optset_get(&j->job_opts, "mode");
		const char *who;
		if (m && m->text && strcmp(m->text, "incremental") != 0) {
			char where[32] = " (the default)";
			if (m->line)
				snprintf(where, sizeof where, ":%d", m->line);
			if (!fullcopy_supported(j, &who))
				sb_printf(errors,
				          "%s%s: [job] mode = %s: %s cannot "
				          "copy tables (its plugin has no "
				          "full-phase operations); set mode = "
				          "incremental and copy the tables "
				          "another way\n",
				          path, where, m->text, who);
		}
	}
	if (errors->len != before) {
		job_free(j);
		return NULL;
	}
	j->nworkers = (int) optset_num(&j->job_opts, "concurrency");
	if (!optset_num(&j->sink->opts, "sink.keyby.enable"))
		j->nworkers = 1;
	j->dirty_count = xcalloc((size_t) j->nworkers, sizeof *j->dirty_count);
	return j;
}

/* ---- life cycle ------------------------------------------------------------
 */

static syncd_instance **
job_instances(job *j, size_t *n)
{
	syncd_instance **all = xcalloc(j->ntransforms + 3, sizeof *all);
	size_t k = 0;

	if (j->source)
		all[k++] = j->source;
	for (size_t i = 0; i < j->ntransforms; i++)
		all[k++] = j->transforms[i];
	if (j->sink)
		all[k++] = j->sink;
	if (j->archiver)
		all[k++] = j->archiver;
	*n = k;
	return all;
}

/* The create/destroy/check operations sit at the same place in every
 * kind's table: size, create, destroy, check. */
typedef struct job_common_ops {
	uint32_t size;
	syncd_status (*create)(syncd_instance *, const syncd_host *, void **);
	void (*destroy)(void *);
	syncd_status (*check)(void *);
} job_common_ops;

static const job_common_ops *
job_ops(const syncd_instance *inst)
{
	return (const job_common_ops *) &inst->plugin->ops;
}

bool
job_create(job *j)
{
	size_t n;
	syncd_instance **all = job_instances(j, &n);
	bool ok = true;

	for (size_t i = 0; i < n && ok; i++) {
		syncd_instance *inst = all[i];
		if (inst->created)
			continue;
		if (job_ops(inst)->create(inst, &job_host, &inst->state) !=
		    SYNCD_OK) {
			log_error("%s could not start: %s", inst->prefix,
			          host_error(inst));
			ok = false;
			break;
		}
		inst->created = true;
	}
	free(all);
	return ok;
}

static void
job_destroy_instances(job *j)
{
	size_t n;
	syncd_instance **all = job_instances(j, &n);

	/* in reverse: the archiver and sink outlive what feeds them */
	for (size_t i = n; i-- > 0;) {
		if (all[i]->created)
			job_ops(all[i])->destroy(all[i]->state);
		all[i]->created = false;
		all[i]->state = NULL;
	}
	free(all);
}

bool
job_check(job *j)
{
	size_t n;
	syncd_instance **all = job_instances(j, &n);
	bool ok = true;

	for (size_t i = 0; i < n; i++) {
		syncd_instance *inst = all[i];
		if (!job_ops(inst)->check)
			continue;
		if (job_ops(inst)->check(inst->state) != SYNCD_OK) {
			log_error("%s pre-check failed: %s", inst->prefix,
			          host_error(inst));
			ok = false;
		}
	}
	free(all);
	return ok;
}

/* The targets the selected tables are routed to, to refuse two tables
 * written into one (DESIGN §5 "Names"). */
typedef struct job_target_entry {
	char *schema, *table; /* as routed */
	char *source;         /* database.schema.table, or NULL */
	const logical_table *lt;
} job_target_entry;

typedef struct job_targets {
	job_target_entry *v;
	size_t n;
} job_targets;

static void
job_targets_free(job_targets *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].schema);
		free(t->v[i].table);
		free(t->v[i].source);
	}
	free(t->v);
	memset(t, 0, sizeof *t);
}

/* Why the source table src cannot go to the target schema.table (a name
 * PostgreSQL would cut, or a target another table already goes to), or
 * NULL; records it otherwise. The message names both names and the fix. */
static char *
job_target_problem(job *j, job_targets *t, const syncd_relation *src,
                   const char *schema, const char *table)
{
	const logical_table *lt =
	    j->nltables ? job_logical_table(j, src->database, src->table)
	                : NULL;
	char *label = xasprintf("%s.%s.%s", src->database ? src->database : "",
	                        src->schema, src->table);
	char *why = NULL;

	if (strlen(schema) > 63 || strlen(table) > 63) {
		const char *name = strlen(schema) > 63 ? schema : table;
		why = xasprintf(
		    "target name \"%s\" of source table %s is %zu bytes "
		    "long: PostgreSQL would cut it to 63, and tables whose "
		    "names differ after that would be merged into one; set "
		    "%s to a shorter pattern",
		    name, label, strlen(name),
		    name == schema ? "target.schema"
		    : lt           ? "the [logical_table.*] name"
		                   : "target.table");
		free(label);
		return why;
	}
	for (size_t i = 0; i < t->n; i++) {
		const job_target_entry *e = &t->v[i];
		if (strcmp(e->schema, schema) != 0 ||
		    strcmp(e->table, table) != 0 || (lt && e->lt == lt) ||
		    (e->source && strcmp(e->source, label) == 0))
			continue;
		why = xasprintf(
		    "source tables %s and %s would both be written into "
		    "target table %s.%s; route them apart (for example "
		    "target.schema = #{source_schema_name} or target.table "
		    "= #{source_schema_name}_#{source_table_name}), leave "
		    "one out of tables, or declare a [logical_table.NAME] "
		    "to merge them on purpose",
		    e->source, label, schema, table);
		free(label);
		return why;
	}
	t->v = xrealloc(t->v, (t->n + 1) * sizeof *t->v);
	t->v[t->n++] =
	    (job_target_entry){xstrdup(schema), xstrdup(table), label, lt};
	return NULL;
}

typedef struct job_preview_ctx {
	job *j;
	FILE *out;
	size_t n;
	strbuf *groups; /* per logical table: its source tables' lines */
	size_t *counts;
	job_targets targets;
} job_preview_ctx;

static syncd_status
job_preview_one(void *arg, const syncd_relation *rel)
{
	job_preview_ctx *c = arg;
	char *ts, *tt;
	strbuf keys = {0}, line = {0};
	const logical_table *lt =
	    c->j->nltables ? job_logical_table(c->j, rel->database, rel->table)
	                   : NULL;
	char *why;

	job_target(c->j, rel, &ts, &tt);
	/* the key in its own order (key_position), else column order */
	for (uint32_t pos = 1, n = 0; pos <= rel->ncolumns; pos++)
		for (uint32_t i = 0; i < rel->ncolumns; i++)
			if ((rel->columns[i].flags & SYNCD_COL_KEY) &&
			    rel->columns[i].key_position == pos)
				sb_printf(&keys, "%s%s", n++ ? ", " : "",
				          rel->columns[i].name);
	if (!keys.len)
		for (uint32_t i = 0; i < rel->ncolumns; i++)
			if (rel->columns[i].flags & SYNCD_COL_KEY)
				sb_printf(&keys, "%s%s", keys.len ? ", " : "",
				          rel->columns[i].name);
	why = job_target_problem(c->j, &c->targets, rel, ts, tt);
	sb_printf(&line, "%s%s.%s.%s -> %s.%s (%u columns, key: %s)%s%s\n",
	          lt ? "  " : "", rel->database ? rel->database : "",
	          rel->schema, rel->table, ts, tt, rel->ncolumns,
	          keys.len ? keys.data : "none", why ? "\n    refused: " : "",
	          why ? why : "");
	free(why);
	if (lt) {
		size_t g = (size_t) (lt - c->j->ltables);
		sb_puts(&c->groups[g], line.data);
		c->counts[g]++;
	} else
		fputs(line.data, c->out);
	sb_free(&line);
	sb_free(&keys);
	free(ts);
	free(tt);
	c->n++;
	return SYNCD_OK;
}

int
job_preview(job *j, FILE *out)
{
	job_preview_ctx c = {.j = j, .out = out};
	syncd_instance *src = j->source;
	int rc = 0;

	if (!src->plugin->ops.source.list_tables) {
		log_error("%s cannot list its tables (its plugin has no "
		          "list_tables operation)",
		          src->prefix);
		return 1;
	}
	c.groups = xcalloc(j->nltables + 1, sizeof *c.groups);
	c.counts = xcalloc(j->nltables + 1, sizeof *c.counts);
	if (src->plugin->ops.source.list_tables(src->state, job_preview_one,
	                                        &c) != SYNCD_OK) {
		log_error("%s could not list its tables: %s", src->prefix,
		          host_error(src));
		rc = 1;
	}
	for (size_t i = 0; rc == 0 && i < j->nltables; i++) {
		const logical_table *lt = &j->ltables[i];
		fprintf(out,
		        "logical table %s (source_db_filter %s, "
		        "source_table_filter %s): %zu source table(s)\n%s",
		        lt->name, lt->db_filter, lt->table_filter, c.counts[i],
		        c.groups[i].len ? c.groups[i].data
		                        : "  no source table matches\n");
	}
	if (rc == 0)
		fprintf(out, "%zu table(s)\n", c.n);
	for (size_t i = 0; i < j->nltables; i++)
		sb_free(&c.groups[i]);
	free(c.groups);
	free(c.counts);
	job_targets_free(&c.targets);
	return rc;
}

/* ---- target tables ahead of the stream -------------------------------- */

/* The first source table of a logical table, which the others must match. */
typedef struct job_shard {
	char *label; /* database.schema.table */
	uint32_t ncolumns;
	char **names, **types;
	uint32_t *flags;
	size_t count;      /* source tables seen */
	bool distinct_key; /* a transform added a key column */
} job_shard;

typedef struct job_prepare_ctx {
	job *j;
	syncd_prepare what;
	size_t n, failed;
	job_shard *shards;  /* per logical table */
	job_shard *current; /* the shard group of the table in the chain */
	const syncd_relation *src; /* ... and its source relation */
} job_prepare_ctx;

static char *
job_shard_label(const syncd_relation *rel)
{
	return xasprintf("%s.%s.%s", rel->database ? rel->database : "",
	                 rel->schema, rel->table);
}

static const char *
job_type(const syncd_column *c)
{
	return c->type_name ? c->type_name : "?";
}

static uint32_t
job_find_column(const syncd_relation *rel, const char *name)
{
	for (uint32_t i = 0; i < rel->ncolumns; i++)
		if (strcmp(rel->columns[i].name, name) == 0)
			return i;
	return UINT32_MAX;
}

/* How rel differs from the first shard g, or NULL when it does not. */
static char *
job_shard_diff(const job_shard *g, const syncd_relation *rel)
{
	char *label = job_shard_label(rel), *out = NULL;

	for (uint32_t i = 0; i < g->ncolumns && !out; i++) {
		uint32_t k = job_find_column(rel, g->names[i]);
		if (k == UINT32_MAX)
			out = xasprintf("column %s (%s) of %s is missing in %s",
			                g->names[i], g->types[i], g->label,
			                label);
		else if (strcmp(job_type(&rel->columns[k]), g->types[i]) != 0)
			out = xasprintf("column %s is %s in %s but %s in %s",
			                g->names[i], g->types[i], g->label,
			                job_type(&rel->columns[k]), label);
		else if ((rel->columns[k].flags & SYNCD_COL_KEY) !=
		         (g->flags[i] & SYNCD_COL_KEY))
			out = xasprintf(
			    "column %s is %sin the primary key of %s "
			    "but %sin that of %s",
			    g->names[i],
			    g->flags[i] & SYNCD_COL_KEY ? "" : "not ", g->label,
			    rel->columns[k].flags & SYNCD_COL_KEY ? "" : "not ",
			    label);
	}
	for (uint32_t k = 0; k < rel->ncolumns && !out; k++) {
		bool known = false;
		for (uint32_t i = 0; i < g->ncolumns && !known; i++)
			known = strcmp(g->names[i], rel->columns[k].name) == 0;
		if (!known)
			out = xasprintf("column %s (%s) of %s is missing in %s",
			                rel->columns[k].name,
			                job_type(&rel->columns[k]), label,
			                g->label);
	}
	free(label);
	return out;
}

/* Records rel as a shard of its logical table; false (logged) when its
 * columns differ from the first shard's. */
static bool
job_shard_add(job_prepare_ctx *c, const syncd_relation *rel)
{
	const logical_table *lt =
	    job_logical_table(c->j, rel->database, rel->table);
	job_shard *g;
	char *diff;

	c->current = NULL;
	if (!lt)
		return true;
	g = &c->shards[lt - c->j->ltables];
	c->current = g;
	g->count++;
	if (!g->label) {
		g->label = job_shard_label(rel);
		g->ncolumns = rel->ncolumns;
		g->names = xcalloc(rel->ncolumns + 1, sizeof *g->names);
		g->types = xcalloc(rel->ncolumns + 1, sizeof *g->types);
		g->flags = xcalloc(rel->ncolumns + 1, sizeof *g->flags);
		for (uint32_t i = 0; i < rel->ncolumns; i++) {
			g->names[i] = xstrdup(rel->columns[i].name);
			g->types[i] = xstrdup(job_type(&rel->columns[i]));
			g->flags[i] = rel->columns[i].flags;
		}
		return true;
	}
	diff = job_shard_diff(g, rel);
	if (!diff)
		return true;
	log_error("[logical_table.%s]: the shards' columns differ: %s; make "
	          "them the same (ALTER TABLE), or narrow source_db_filter / "
	          "source_table_filter",
	          lt->name, diff);
	free(diff);
	return false;
}

static void
job_shards_free(job *j, job_shard *shards)
{
	for (size_t i = 0; shards && i < j->nltables; i++) {
		job_shard *g = &shards[i];
		for (uint32_t k = 0; k < g->ncolumns; k++) {
			free(g->names[k]);
			free(g->types[k]);
		}
		free(g->names);
		free(g->types);
		free(g->flags);
		free(g->label);
	}
	free(shards);
}

/* ---- the transform chain ------------------------------------------------
 */

typedef struct job_stage {
	job *j;
	size_t index;
	syncd_emit_fn final;
	void *ctx;
} job_stage;

static syncd_status
job_stage_emit(void *arg, const syncd_event *ev)
{
	job_stage *stage = arg;
	job *j = stage->j;
	syncd_instance *t;
	job_stage next = *stage;
	syncd_status st;

	if (stage->index >= j->ntransforms)
		return stage->final(stage->ctx, ev);
	t = j->transforms[stage->index];
	next.index = stage->index + 1;
	st =
	    t->plugin->ops.transform.apply(t->state, ev, job_stage_emit, &next);
	if (st == SYNCD_REJECT) {
		/* a row the transform could not handle: dirty data */
		return job_host.reject(t, 0, ev, host_error_sqlstate(t),
		                       host_error(t));
	}
	if (st != SYNCD_OK && !atomic_load(&j->failed))
		job_fail(j, "%s: %s", t->prefix, host_error(t));
	return st;
}

syncd_status
job_transform(job *j, const syncd_event *ev, syncd_emit_fn final, void *ctx)
{
	job_stage first = {j, 0, final, ctx};
	return job_stage_emit(&first, ev);
}

void
job_target(job *j, const syncd_relation *rel, char **schema, char **table)
{
	const optset *so = &j->sink->opts;
	bool fold = !optset_num(so, "sink.field.name.case-sensitive");
	const logical_table *lt =
	    j->nltables ? job_logical_table(j, rel->database, rel->table)
	                : NULL;

	*schema =
	    pipeline_target_name(optset_str(so, "target.schema"), rel, fold);
	/* the shard scenario: the logical table's name (no variables in it) */
	*table = pipeline_target_name(
	    lt ? lt->name : optset_str(so, "target.table"), rel, fold);
}

void
job_route(job *j, const syncd_relation *rel, syncd_relation *out)
{
	const optset *so = &j->sink->opts;
	bool fold = !optset_num(so, "sink.field.name.case-sensitive");
	syncd_column *cols = xcalloc(rel->ncolumns + 1, sizeof *cols);

	*out = *rel;
	for (uint32_t i = 0; i < rel->ncolumns; i++) {
		cols[i] = rel->columns[i];
		cols[i].name = xstrdup(rel->columns[i].name);
		if (fold)
			for (char *p = (char *) cols[i].name; *p; p++)
				if (*p >= 'A' && *p <= 'Z')
					*p = (char) (*p - 'A' + 'a');
	}
	out->columns = cols;
	job_target(j, rel, (char **) &out->target_schema,
	           (char **) &out->target_table);
}

void
job_route_free(syncd_relation *r)
{
	for (uint32_t i = 0; i < r->ncolumns; i++)
		free((char *) r->columns[i].name);
	free((syncd_column *) r->columns);
	free((char *) r->target_schema);
	free((char *) r->target_table);
	memset(r, 0, sizeof *r);
}

/* Hands one table, as the transforms make it, to the sink with its target
 * names, as the router will name it (and with column names folded the
 * same way). */
static syncd_status
job_prepare_routed(void *arg, const syncd_event *ev)
{
	job_prepare_ctx *c = arg;
	const syncd_relation *rel = ev->rel;
	syncd_instance *sink = c->j->sink;
	syncd_relation r;
	syncd_status st;

	if (ev->type != SYNCD_EV_RELATION || !rel)
		return SYNCD_OK;
	/* a key column a transform added tells the shards' rows apart */
	for (uint32_t i = 0; c->current && i < rel->ncolumns; i++)
		if ((rel->columns[i].flags & SYNCD_COL_KEY) &&
		    job_find_column(c->src, rel->columns[i].name) == UINT32_MAX)
			c->current->distinct_key = true;
	job_route(c->j, rel, &r);
	st = sink->plugin->ops.sink.prepare_table(sink->state, &r, c->what);
	c->n++;
	if (st != SYNCD_OK) {
		c->failed++;
		if (c->what != SYNCD_PREPARE_CHECK)
			log_error("%s target of %s.%s: %s", sink->prefix,
			          rel->schema, rel->table, host_error(sink));
	}
	job_route_free(&r);
	/* a check reports every table; creating and starting stop at the
	 * first failure */
	return c->what == SYNCD_PREPARE_CHECK ? SYNCD_OK : st;
}

/* One selected table: through the transforms (which may add columns),
 * then to the sink. */
static syncd_status
job_prepare_one(void *arg, const syncd_relation *rel)
{
	job_prepare_ctx *c = arg;
	syncd_event ev = {.type = SYNCD_EV_RELATION, .rel = rel};

	if (c->j->nltables && !job_shard_add(c, rel)) {
		c->failed++;
		return c->what == SYNCD_PREPARE_CHECK ? SYNCD_OK : SYNCD_FATAL;
	}
	c->src = rel;
	return job_transform(c->j, &ev, job_prepare_routed, c);
}

typedef struct job_names_ctx {
	job *j;
	job_targets targets;
	size_t failed;
} job_names_ctx;

/* One selected table's target names: refused (logged) when PostgreSQL
 * would cut them or another table goes there too. */
static syncd_status
job_names_one(void *arg, const syncd_relation *rel)
{
	job_names_ctx *c = arg;
	char *schema, *table, *why;

	job_target(c->j, rel, &schema, &table);
	why = job_target_problem(c->j, &c->targets, rel, schema, table);
	if (why) {
		log_error("%s", why);
		c->failed++;
	}
	free(why);
	free(schema);
	free(table);
	return SYNCD_OK;
}

job_prepared
job_prepare_tables(job *j, syncd_prepare what, bool *supported)
{
	job_prepare_ctx c = {.j = j, .what = what};
	job_names_ctx names = {.j = j};
	syncd_instance *src = j->source, *sink = j->sink;
	syncd_status st;

	*supported = src->plugin->ops.source.list_tables &&
	             sink->plugin->ops.sink.prepare_table;
	if (!*supported)
		return JOB_PREPARED;
	/* names first: nothing is created for a job that cannot run */
	st = src->plugin->ops.source.list_tables(src->state, job_names_one,
	                                         &names);
	job_targets_free(&names.targets);
	if (st != SYNCD_OK && names.failed == 0) {
		log_error("%s could not list its tables: %s", src->prefix,
		          host_error(src));
		return JOB_PREPARE_SOURCE;
	}
	if (names.failed && what != SYNCD_PREPARE_CHECK)
		return JOB_PREPARE_TABLES;
	c.failed = names.failed;
	c.shards = xcalloc(j->nltables + 1, sizeof *c.shards);
	st = src->plugin->ops.source.list_tables(src->state, job_prepare_one,
	                                         &c);
	for (size_t i = 0; i < j->nltables; i++) {
		const job_shard *g = &c.shards[i];
		if (g->count == 0 && st == SYNCD_OK)
			log_warning("[logical_table.%s]: no source table "
			            "matches (syncd --preview lists what the "
			            "filters select)",
			            j->ltables[i].name);
		else if (what == SYNCD_PREPARE_CHECK && g->count > 1 &&
		         !g->distinct_key)
			log_warning(
			    "[logical_table.%s]: %zu source tables go into "
			    "one target with the key of %s: rows of different "
			    "shards with the same key overwrite each other. "
			    "Unless keys are unique across shards, add a "
			    "[transform.NAME] with plugin = udf, field.origin "
			    "= varchar(200) : concat(source.database, '.', "
			    "source.table) and key = origin",
			    j->ltables[i].name, g->count, g->label);
	}
	job_shards_free(j, c.shards);
	if (st != SYNCD_OK && c.failed == 0) {
		log_error("%s could not list its tables: %s", src->prefix,
		          host_error(src));
		return JOB_PREPARE_SOURCE;
	}
	if (what == SYNCD_PREPARE_CREATE && c.failed == 0)
		log_info("%s %zu target table(s) checked; missing ones created",
		         sink->prefix, c.n);
	return c.failed == 0 ? JOB_PREPARED : JOB_PREPARE_TABLES;
}

void
job_fail(job *j, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);

	pthread_mutex_lock(&j->fail_lock);
	if (!j->failure) {
		j->failure = msg;
		log_error("%s", msg);
	} else
		free(msg);
	atomic_store(&j->failed, true);
	atomic_store(&j->stopping, true);
	pthread_mutex_unlock(&j->fail_lock);
	if (j->pipe)
		pipeline_wake(j->pipe);
}

void
job_request_stop(job *j)
{
	atomic_store(&j->stopping, true);
}

static int
job_mkdirs(const char *path)
{
	char *copy = xstrdup(path);
	int rc = 0;

	for (char *p = copy + 1; *p && rc == 0; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(copy, 0700) != 0 && errno != EEXIST)
				rc = -1;
			*p = '/';
		}
	if (rc == 0 && mkdir(copy, 0700) != 0 && errno != EEXIST)
		rc = -1;
	free(copy);
	return rc;
}

static bool
job_prepare_state_dir(job *j)
{
	const char *base = optset_str(&j->job_opts, "state_dir");
	char *dflt = NULL;

	if (!base || !*base) {
		const char *env = getenv("STATE_DIRECTORY");
		const char *home = getenv("HOME");
		if (env && *env)
			base = env;
		else if (geteuid() == 0)
			base = "/var/lib/syncd";
		else
			base = dflt = xasprintf("%s/.local/state/syncd",
			                        home && *home ? home : "/tmp");
	}
	free(j->state_dir);
	j->state_dir =
	    xasprintf("%s/%s", base, optset_str(&j->job_opts, "name"));
	free(dflt);
	if (job_mkdirs(j->state_dir) != 0) {
		log_error(
		    "could not create the state directory %s: %s; set [job] "
		    "state_dir to a writable directory",
		    j->state_dir, strerror(errno));
		return false;
	}
	return true;
}

typedef struct job_source_thread {
	job *j;
	syncd_status status;
	char *error; /* why run() failed, taken in the source's thread */
	atomic_bool done;
} job_source_thread;

static void *
job_source_main(void *arg)
{
	job_source_thread *t = arg;
	syncd_instance *src = t->j->source;

	t->status = src->plugin->ops.source.run(src->state);
	if (t->status != SYNCD_OK)
		t->error = xstrdup(host_error(src));
	host_error_clear();
	atomic_store(&t->done, true);
	return NULL;
}

int
job_run(job *j)
{
	job_source_thread t = {.j = j};
	pthread_t thread;
	sigset_t sigs;
	int signals = 0;
	int64_t started = now_ms();

	atomic_store(&j->stopping, false);
	atomic_store(&j->failed, false);
	atomic_store(&j->invalid, false);
	free(j->failure);
	j->failure = NULL;
	memset(j->dirty_count, 0,
	       (size_t) j->nworkers * sizeof *j->dirty_count);
	if (!job_prepare_state_dir(j))
		return 1;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);

	j->pipe = pipeline_new(j);
	if (pipeline_start(j->pipe) != SYNCD_OK)
		goto stop;
	log_info("job %s started: %s -> %d worker(s) -> %s",
	         optset_str(&j->job_opts, "name"), j->source->prefix,
	         j->nworkers, j->sink->prefix);
	if (pthread_create(&thread, NULL, job_source_main, &t) != 0) {
		job_fail(j, "could not start the source thread");
		goto stop;
	}
	while (!atomic_load(&t.done)) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		int sig = sigtimedwait(&sigs, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM) {
			if (++signals == 1) {
				log_info("received %s: stopping; flushing and "
				         "confirming what "
				         "is applied (send it again to stop at "
				         "once)",
				         sig == SIGINT ? "SIGINT" : "SIGTERM");
				job_request_stop(j);
			} else {
				log_error("received %s again: stopping at "
				          "once; changes not "
				          "yet confirmed will be replayed at "
				          "the next start",
				          sig == SIGINT ? "SIGINT" : "SIGTERM");
				_exit(1);
			}
		}
	}
	pthread_join(thread, NULL);
	if (t.status == SYNCD_INVALID)
		atomic_store(&j->invalid, true);
	if (t.status != SYNCD_OK && !atomic_load(&j->failed))
		job_fail(j, "%s %s", j->source->prefix, t.error);
	if (!atomic_load(&j->failed))
		pipeline_drain(j->pipe);
stop:
	pipeline_stop(j->pipe);
	{
		strbuf m = {0};
		metrics_format(&m);
		if (m.len)
			log_debug("metrics at the end of the run:\n%s", m.data);
		sb_free(&m);
	}
	pipeline_free(j->pipe);
	j->pipe = NULL;
	free(t.error);
	if (atomic_load(&j->failed)) {
		log_error("job %s failed after %.1f s: %s",
		          optset_str(&j->job_opts, "name"),
		          (double) (now_ms() - started) / 1000.0,
		          j->failure ? j->failure : "unknown reason");
		return 1;
	}
	log_info("job %s stopped cleanly after %.1f s",
	         optset_str(&j->job_opts, "name"),
	         (double) (now_ms() - started) / 1000.0);
	return 0;
}

bool
job_restart(job *j)
{
	job_destroy_instances(j);
	return job_create(j);
}

void
job_free(job *j)
{
	if (!j)
		return;
	job_destroy_instances(j);
	job_instance_free(j->source);
	for (size_t i = 0; i < j->ntransforms; i++)
		job_instance_free(j->transforms[i]);
	free(j->transforms);
	job_instance_free(j->sink);
	job_instance_free(j->archiver);
	for (size_t i = 0; i < j->nltables; i++) {
		free(j->ltables[i].name);
		regfree(&j->ltables[i].db_re);
		regfree(&j->ltables[i].table_re);
	}
	free(j->ltables);
	optset_free(&j->job_opts);
	optset_free(&j->dirty_opts);
	jobfile_free(j->file);
	free(j->state_dir);
	free(j->failure);
	free(j->dirty_count);
	pthread_mutex_destroy(&j->fail_lock);
	pthread_mutex_destroy(&j->dirty_lock);
	free(j);
}
