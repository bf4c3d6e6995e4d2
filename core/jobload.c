/*
 * core/jobload.c - see jobload.h.
 */
#include "config.h"

#include "chain.h"
#include "coreopts.h"
#include "dirty.h"
#include "host.h"
#include "instance.h"
#include "jobload.h"
#include "log.h"
#include "monitor.h"
#include "router.h"
#include "shardcols.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
static instance *
job_instance(job *j, const char *section, const char *name, int name_line,
             syncd_plugin_kind kind, const syncd_option *core_table,
             strbuf *errors)
{
	const jf_section *sec = jobfile_section(j->file, section);
	const char *path = j->file->path;
	const loaded_plugin *p;
	instance *inst;
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
	inst->label = xasprintf("%s:%s", section, name);
	inst->plugin = p;
	tables[1] = p->d.options;
	if (!tables[1]) {
		static const syncd_option none[] = {
		    {NULL, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0, 0}};
		tables[1] = none;
	}
	optset_bind(&inst->opts, path, section, sec, tables, errors);
	for (size_t i = 0; i < inst->opts.n; i++)
		if ((inst->opts.v[i].decl->flags & SYNCD_OPT_SECRET) &&
		    inst->opts.v[i].text)
			log_add_secret(inst->opts.v[i].text);
	if (p->d.options_size) {
		inst->options = xcalloc(1, p->d.options_size);
		optset_fill(&inst->opts, p->d.options, inst->options,
		            p->d.options_size);
	}
	host_init(inst);
	return inst;
}

static void
job_instance_free(instance *inst)
{
	if (!inst)
		return;
	optset_free(&inst->opts);
	free(inst->options);
	free(inst->section);
	free(inst->prefix);
	free(inst->label);
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

/* What plugins see of the job; the state directory's path. */
static void
job_info(job *j)
{
	const char *mode = optset_str(&j->job_opts, "mode");
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
	j->state_dir =
	    xasprintf("%s/%s", base, optset_str(&j->job_opts, "name"));
	free(dflt);
	/* how keys are spread over workers: a sink's progress recorded per
	 * worker under another layout says nothing of a worker now */
	if (optset_num(&j->sink->opts, "sink.keyby.enable"))
		j->layout = xasprintf(
		    "%lld/%s/%d",
		    (long long) optset_num(&j->job_opts, "concurrency"),
		    optset_str(&j->sink->opts, "sink.keyby.mode"),
		    ROUTER_LAYOUT_VERSION);
	else
		j->layout = xstrdup("1/table");
	j->info = (syncd_job){
	    .size = sizeof j->info,
	    .name = optset_str(&j->job_opts, "name"),
	    .state_dir = j->state_dir,
	    .full = strncmp(mode, "full", 4) == 0,
	    .incremental = strcmp(mode, "full") != 0,
	    .workers = (uint32_t) j->nworkers,
	    .layout = j->layout,
	};
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
	chain_init(j);
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
		    strcmp(s->name, "monitor") == 0 ||
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
		sb_printf(
		    errors,
		    "%s:%d: unknown section [%s]; the sections are [job], "
		    "[source], [logical_table.NAME], [sink], [transform.NAME], "
		    "[dirty], [archiver], [monitor]\n",
		    path, s->line, s->name);
	}

	/* [job] and [dirty] */
	{
		const syncd_option *t[] = {job_core_options, NULL};
		const syncd_option *d[] = {job_dirty_options, NULL};
		const syncd_option *m[] = {monitor_options, NULL};
		optset_bind(&j->job_opts, path, "job",
		            jobfile_section(j->file, "job"), t, errors);
		optset_bind(&j->dirty_opts, path, "dirty",
		            jobfile_section(j->file, "dirty"), d, errors);
		optset_bind(&j->monitor_opts, path, "monitor",
		            jobfile_section(j->file, "monitor"), m, errors);
		monitor_check(j, path, errors);
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
		instance *t;
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

	/* what the mode asks of the source */
	if (errors->len == before) {
		const opt_value *m = optset_get(&j->job_opts, "mode");
		const syncd_source_ops *so = &j->source->plugin->ops.source;
		char where[32] = " (the default)";
		if (m && m->line)
			snprintf(where, sizeof where, ":%d", m->line);
		if (m && m->text && strcmp(m->text, "incremental") != 0 &&
		    !so->snapshot)
			sb_printf(
			    errors,
			    "%s%s: [job] mode = %s: %s cannot copy "
			    "tables (its plugin has no full-phase "
			    "operations); set mode = incremental and copy "
			    "the tables another way\n",
			    path, where, m->text, j->source->prefix);
		else if (m && m->text && strcmp(m->text, "full") != 0 &&
		         !so->open)
			sb_printf(errors,
			          "%s%s: [job] mode = %s: %s cannot stream "
			          "changes (its plugin has no stream "
			          "operations); set mode = full\n",
			          path, where, m->text, j->source->prefix);
	}
	if (errors->len != before) {
		job_free(j);
		return NULL;
	}
	j->nworkers = (int) optset_num(&j->job_opts, "concurrency");
	if (!optset_num(&j->sink->opts, "sink.keyby.enable"))
		j->nworkers = 1;
	dirty_init(j);
	job_info(j);
	return j;
}

void
job_free(job *j)
{
	if (!j)
		return;
	instance_destroy_all(j);
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
	for (size_t i = 0; i < SYNCD_MAX_STREAMS; i++) {
		free(j->streams[i].name);
		free(j->streams[i].server);
	}
	optset_free(&j->job_opts);
	optset_free(&j->dirty_opts);
	optset_free(&j->monitor_opts);
	jobfile_free(j->file);
	free(j->state_dir);
	free(j->layout);
	free(j->failure);
	free(j->last_error);
	dirty_free(j);
	chain_free(j);
	shardcols_free(j);
	pthread_mutex_destroy(&j->fail_lock);
	free(j);
}
