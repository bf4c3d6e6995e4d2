/*
 * tests/unit/test_loader.c - every refusal of the plugin loader names the
 * file and the reason, and nothing of a refused plugin is called (the
 * broken test plugins abort() in every operation).
 */
#include "config.h"

#include "tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"

static void
assert_refused(const char *name, const char *needle)
{
	char *err = NULL;
	const loaded_plugin *p;
	char path[4096];

	loader_init(test_env("BAD_PLUGIN_DIR"));
	p = loader_load(name, &err);
	ck_assert_msg(p == NULL, "%s was loaded", name);
	snprintf(path, sizeof path, "%s/%s.la", test_env("BAD_PLUGIN_DIR"),
	         name);
	ck_assert_msg(err && strstr(err, path), "error \"%s\" does not name %s",
	              err, path);
	ck_assert_msg(strstr(err, needle), "error \"%s\" lacks \"%s\"", err,
	              needle);
	free(err);
	loader_shutdown();
}

START_TEST(refusals)
{
	char expect[256];

	assert_refused("bad_magic", "refused: wrong magic 0xdeadbeef");
	snprintf(
	    expect, sizeof expect,
	    "built for plugin ABI %d.%d, this syncd speaks ABI %d.%d; rebuild",
	    SYNCD_ABI_MAJOR + 1, SYNCD_ABI_MINOR, SYNCD_ABI_MAJOR,
	    SYNCD_ABI_MINOR);
	assert_refused("abi_major", expect);
	snprintf(expect, sizeof expect,
	         "built for plugin ABI %d.%d, newer than this syncd's %d.%d",
	         SYNCD_ABI_MAJOR, SYNCD_ABI_MINOR + 1, SYNCD_ABI_MAJOR,
	         SYNCD_ABI_MINOR);
	assert_refused("abi_minor", expect);
	assert_refused(
	    "missing_op",
	    "sink plugin missing_op lacks the required operation write");
	assert_refused("name_mismatch", "the file is named name_mismatch but "
	                                "the plugin calls itself another_name");
	assert_refused("bad_options",
	               "bad option table: enum option mode has no choices");
	assert_refused("ops_size", "operations table size");
	assert_refused(
	    "not_plugin",
	    "not a syncd plugin (it exports no syncd_plugin_entry function)");
}
END_TEST

START_TEST(not_a_module_and_not_found)
{
	char *dir = test_tmpdir(), *path, *err = NULL;

	path = test_write_file(dir, "junk.so", "this is not an ELF file\n");
	loader_init(dir);
	ck_assert_ptr_null(loader_load("junk", &err));
	ck_assert_msg(strstr(err, "junk.so: refused: not a loadable module"),
	              "%s", err);
	free(err);
	ck_assert_ptr_null(loader_load("nosuch", &err));
	ck_assert_msg(strstr(err, "plugin nosuch not found in") &&
	                  strstr(err, dir),
	              "%s", err);
	free(err);
	ck_assert_ptr_null(loader_load("../evil", &err));
	ck_assert_msg(strstr(err, "is not valid"), "%s", err);
	free(err);
	loader_shutdown();
	free(path);
	test_rmdir(dir);
	free(dir);
}
END_TEST

static void
copy_file(const char *from, const char *to)
{
	char cmd[8192];
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(search_order_and_no_la)
{
	char *a = test_tmpdir(), *b = test_tmpdir(), *err = NULL, so[4096],
	     dst[4096];
	const loaded_plugin *p;

	/* installed plugins may come without their .la files */
	snprintf(so, sizeof so, "%s/.libs/synth.so",
	         test_env("TEST_PLUGIN_DIR"));
	snprintf(dst, sizeof dst, "%s/synth.so", a);
	copy_file(so, dst);
	snprintf(dst, sizeof dst, "%s/synth.so", b);
	copy_file(so, dst);

	setenv("SYNCD_PLUGIN_PATH", b, 1);
	loader_init(a); /* --plugin-dir first */
	p = loader_load("synth", &err);
	ck_assert_msg(p != NULL, "%s", err);
	ck_assert_int_eq(p->d.kind, SYNCD_KIND_SOURCE);
	ck_assert_msg(strncmp(p->path, a, strlen(a)) == 0, "loaded %s",
	              p->path);
	loader_shutdown();

	loader_init(NULL); /* then SYNCD_PLUGIN_PATH */
	p = loader_load("synth", &err);
	ck_assert_msg(p != NULL, "%s", err);
	ck_assert_msg(strncmp(p->path, b, strlen(b)) == 0, "loaded %s",
	              p->path);
	loader_shutdown();
	unsetenv("SYNCD_PLUGIN_PATH");
	test_rmdir(a);
	test_rmdir(b);
	free(a);
	free(b);
}
END_TEST

START_TEST(listing)
{
	const loaded_plugin **list = NULL;
	strbuf problems = {0};
	size_t n;
	bool synth = false, capture = false;

	loader_init(test_env("TEST_PLUGIN_DIR"));
	n = loader_list(&list, &problems);
	for (size_t i = 0; i < n; i++) {
		synth |= strcmp(list[i]->d.name, "synth") == 0;
		capture |= strcmp(list[i]->d.name, "capture") == 0;
	}
	ck_assert(synth && capture);
	ck_assert_msg(problems.len == 0, "%s", problems.data);
	free(list);
	loader_shutdown();

	loader_init(test_env("BAD_PLUGIN_DIR"));
	n = loader_list(&list, &problems);
	ck_assert_int_eq(n, 0);
	ck_assert_msg(strstr(problems.data, "wrong magic"), "%s",
	              problems.data);
	free(list);
	sb_free(&problems);
	loader_shutdown();
}
END_TEST

Suite *
loader_suite(void)
{
	Suite *s = suite_create("loader");
	TCase *tc = tcase_create("refusals");

	tcase_add_test(tc, refusals);
	tcase_add_test(tc, not_a_module_and_not_found);
	tcase_add_test(tc, search_order_and_no_la);
	tcase_add_test(tc, listing);
	suite_add_tcase(s, tc);
	return s;
}
