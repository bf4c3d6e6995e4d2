/*
 * tests/unit/test_conformance.c - every built plugin, shipped or test-only,
 * through the real loader: entry symbol, ABI, name = file name, version,
 * description, a valid option table, and create/destroy with defaults
 * (required keys get a value of their type).
 */
#include "config.h"

#include "tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "job.h"
#include "coreopts.h"
#include "jobload.h"
#include "loader.h"
#include "log.h"
#include "options.h"
#include "plugerr.h"

static const char *
dummy_value(const syncd_option *o, char *buf, size_t n)
{
	switch (o->type) {
	case SYNCD_OPT_INT:
		snprintf(buf, n, "%lld", (long long) o->min);
		return buf;
	case SYNCD_OPT_BOOL: return "false";
	case SYNCD_OPT_DURATION: return "1s";
	case SYNCD_OPT_SIZE: return "1MB";
	case SYNCD_OPT_ENUM: {
		const char *bar = strchr(o->choices, '|');
		size_t len =
		    bar ? (size_t) (bar - o->choices) : strlen(o->choices);
		snprintf(buf, n, "%.*s", (int) len, o->choices);
		return buf;
	}
	default: return "conformance";
	}
}

static void
check_plugin(const loaded_plugin *p)
{
	jf_section sec = {.name = "conformance", .line = 1};
	jf_section jsec = {.name = "job", .line = 1};
	jf_key jkey = {.name = "name", .value = "conformance", .line = 2};
	instance inst;
	job j;
	void *opts = NULL;
	strbuf errors = {0};
	const syncd_option *tables[] = {p->d.options, NULL};
	const syncd_option *jtables[] = {job_core_options, NULL};
	char bufs[32][64];
	jf_key keys[32];
	void *state = NULL;
	size_t nk = 0;
	syncd_status st;

	ck_assert_msg(p->d.abi_major == SYNCD_ABI_MAJOR, "%s: ABI major",
	              p->path);
	ck_assert_msg(p->d.abi_minor <= SYNCD_ABI_MINOR, "%s: ABI minor",
	              p->path);
	ck_assert_msg(p->d.version && *p->d.version, "%s: no version", p->path);
	ck_assert_msg(p->d.description && *p->d.description,
	              "%s: no description", p->path);
	ck_assert_msg(strstr(p->path, p->d.name), "%s: name %s", p->path,
	              p->d.name);

	for (const syncd_option *o = p->d.options; o && o->name; o++) {
		ck_assert_msg(o->help && *o->help, "%s: option %s has no help",
		              p->path, o->name);
		if ((o->flags & SYNCD_OPT_REQUIRED) && nk < 32) {
			keys[nk] = (jf_key){
			    .name = (char *) o->name,
			    .value = (char *) dummy_value(o, bufs[nk], 64),
			    .line = (int) nk + 2};
			nk++;
		}
	}
	sec.keys = keys;
	sec.nkeys = nk;
	jsec.keys = &jkey;
	jsec.nkeys = 1;

	memset(&j, 0, sizeof j);
	ck_assert(optset_bind(&j.job_opts, "conformance.ini", "job", &jsec,
	                      jtables, &errors));
	memset(&inst, 0, sizeof inst);
	inst.job = &j;
	inst.section = "conformance";
	inst.prefix = "[conformance]";
	inst.plugin = p;
	if (!tables[0]) {
		static const syncd_option none[] = {
		    {NULL, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0, 0}};
		tables[0] = none;
	}
	/* as in a job: a sink's section also holds the core's [sink] keys,
	 * which the plugin may read */
	const syncd_option *sink_tables[] = {job_sink_core_options, tables[0],
	                                     NULL};
	ck_assert_msg(
	    optset_bind(&inst.opts, "conformance.ini", "conformance", &sec,
	                p->d.kind == SYNCD_KIND_SINK ? sink_tables : tables,
	                &errors),
	    "%s: defaults do not bind: %s", p->path, errors.data);

	/* the option structure is filled as in a job */
	if (p->d.options_size) {
		opts = calloc(1, p->d.options_size);
		optset_fill(&inst.opts, p->d.options, opts, p->d.options_size);
	}
	inst.options = opts;
	j.info = (syncd_job){.size = sizeof j.info,
	                     .name = "conformance",
	                     .state_dir = "/nonexistent/conformance",
	                     .full = true,
	                     .incremental = true,
	                     .workers = 1,
	                     .layout = "1/table"};
	host_init(&inst);
	ck_assert_ptr_eq(inst.host.job, &j.info);
	ck_assert(p->d.kind != SYNCD_KIND_SOURCE || inst.host.source);
	ck_assert(p->d.kind != SYNCD_KIND_SINK || inst.host.sink);

	/* every stored option has a field inside the structure (the loader
	 * refused the plugin otherwise) */
	for (const syncd_option *o = p->d.options; o && o->name; o++)
		ck_assert_msg(o->field_size == 0 || o->offset + o->field_size <=
		                                        p->d.options_size,
		              "%s: option %s outside its structure", p->path,
		              o->name);

	/* a source streams or copies (the loader checks the groups) */
	if (p->d.kind == SYNCD_KIND_SOURCE)
		ck_assert_msg(p->ops.source.open || p->ops.source.snapshot,
		              "%s: a source that neither streams nor copies",
		              p->path);

	/* create and destroy with defaults; the common prefix of every kind's
	 * operations is size, create, destroy */
	switch (p->d.kind) {
	case SYNCD_KIND_SOURCE:
		st = p->ops.source.create(&inst.host, &state);
		ck_assert_msg(st == SYNCD_OK, "%s: create: %s", p->path,
		              plugerr_msg(&inst));
		p->ops.source.destroy(state);
		break;
	case SYNCD_KIND_TRANSFORM:
		st = p->ops.transform.create(&inst.host, &state);
		ck_assert_msg(st == SYNCD_OK, "%s: create: %s", p->path,
		              plugerr_msg(&inst));
		p->ops.transform.destroy(state);
		break;
	case SYNCD_KIND_SINK:
		st = p->ops.sink.create(&inst.host, &state);
		ck_assert_msg(st == SYNCD_OK, "%s: create: %s", p->path,
		              plugerr_msg(&inst));
		p->ops.sink.destroy(state);
		break;
	case SYNCD_KIND_ARCHIVER:
		st = p->ops.archiver.create(&inst.host, &state);
		ck_assert_msg(st == SYNCD_OK, "%s: create: %s", p->path,
		              plugerr_msg(&inst));
		p->ops.archiver.destroy(state);
		break;
	default: ck_abort_msg("%s: unknown kind", p->path);
	}
	free(opts);
	optset_free(&inst.opts);
	optset_free(&j.job_opts);
	plugerr_clear();
	sb_free(&errors);
}

static size_t
check_dir(const char *dir)
{
	const loaded_plugin **list = NULL;
	strbuf problems = {0};
	size_t n;

	loader_init(dir);
	n = loader_list(&list, &problems);
	ck_assert_msg(problems.len == 0, "unusable plugins in %s:\n%s", dir,
	              problems.data);
	for (size_t i = 0; i < n; i++)
		check_plugin(list[i]);
	free(list);
	sb_free(&problems);
	loader_shutdown();
	return n;
}

START_TEST(every_plugin)
{
	log_set_level(SYNCD_LEVEL_ERROR);
	/* plugins that take credentials from the environment (obs) */
	setenv("OBS_ACCESS_KEY_ID", "conformance", 1);
	setenv("OBS_SECRET_ACCESS_KEY", "conformance", 1);
	/* the shipped plugins (at least jsonl), then the test plugins */
	ck_assert_uint_ge(check_dir(test_env("PLUGIN_DIR")), 1);
	ck_assert_uint_ge(check_dir(test_env("TEST_PLUGIN_DIR")), 2);
}
END_TEST

Suite *
conformance_suite(void)
{
	Suite *s = suite_create("conformance");
	TCase *tc = tcase_create("plugins");

	tcase_add_test(tc, every_plugin);
	suite_add_tcase(s, tc);
	return s;
}
