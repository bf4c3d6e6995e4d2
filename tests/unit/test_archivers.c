/*
 * tests/unit/test_archivers.c - the dirty-data archivers (file, obs) and
 * the DWS sinks' create() through their real entry functions and
 * operations (the built modules, opened from $PLUGIN_DIR), on a mock host
 * (mock_host.h), without any server: the JSON line of a refused row as the
 * file archiver stores it, rotation by size, the obs archiver's refusals
 * of its endpoint, bucket and credentials (and that the secret is never
 * logged), and the DWS sinks' option checks.
 */
#define _GNU_SOURCE /* asprintf */
#include "config.h"

#include "tests.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mock_host.h"


/* ---- a plugin on a mock host --------------------------------------------- */

typedef struct plug {
	void *handle;
	const syncd_plugin *d;
	mock_host *m;
	void *state;
} plug;

/* Opens plugin `name` of kind `kind`, fills its options from kv and
 * returns what create() said. */
static syncd_status
plug_open(plug *p, const char *name, syncd_plugin_kind kind,
          const char *const *kv)
{
	const char *err = NULL;

	memset(p, 0, sizeof *p);
	p->d = mock_plugin_open(test_env("PLUGIN_DIR"), name, &p->handle, &err);
	ck_assert_msg(p->d != NULL, "plugin %s: %s", name, err);
	ck_assert_int_eq(p->d->kind, kind);
	p->m = mock_host_new(kind, NULL);
	mock_options(p->m, p->d, kv);
	if (kind == SYNCD_KIND_ARCHIVER)
		return p->d->ops.archiver->create(&p->m->host, &p->state);
	return p->d->ops.sink->create(&p->m->host, &p->state);
}

static void
plug_close(plug *p)
{
	if (p->state) {
		if (p->d->kind == SYNCD_KIND_ARCHIVER)
			p->d->ops.archiver->destroy(p->state);
		else
			p->d->ops.sink->destroy(p->state);
	}
	mock_host_free(p->m);
	mock_plugin_close(p->handle);
}

/* Whether no recorded log line or error contains needle. */
static bool
plug_never_said(const plug *p, const char *needle)
{
	return !mock_logged(p->m, needle) &&
	       !(p->m->error && strstr(p->m->error, needle));
}

/* ---- a refused row ------------------------------------------------------- */

/* Columns as a newer minor would build them: larger, so that readers must
 * use the stride of the first element's size. */
typedef struct big_col {
	syncd_column c;
	char newer[24];
} big_col;

typedef struct row {
	big_col cols[3];
	syncd_relation rel;
	syncd_value vals[3];
	syncd_event ev;
	syncd_dirty_record rec;
} row;

/* An UPDATE of public.t (id key, v, body) into dst.t: id = id, v NULL,
 * body unchanged, refused with 22001. */
static void
row_make(row *r, const char *id)
{
	memset(r, 0, sizeof *r);
	r->cols[0].c = (syncd_column){.size = sizeof(big_col),
	                              .name = "id",
	                              .type_name = "integer",
	                              .typmod = -1,
	                              .flags = SYNCD_COL_KEY,
	                              .key_position = 1};
	r->cols[1].c = (syncd_column){.size = sizeof(big_col),
	                              .name = "v",
	                              .type_name = "text",
	                              .typmod = -1};
	r->cols[2].c = (syncd_column){.size = sizeof(big_col),
	                              .name = "body",
	                              .type_name = "text",
	                              .typmod = -1};
	r->rel = (syncd_relation){.size = sizeof r->rel,
	                          .id = 7,
	                          .database = "shop",
	                          .schema = "public",
	                          .table = "t",
	                          .ncolumns = 3,
	                          .columns = &r->cols[0].c,
	                          .replica_identity = 'd',
	                          .target_schema = "dst",
	                          .target_table = "t"};
	r->vals[0] = (syncd_value){SYNCD_VALUE_TEXT, (uint32_t) strlen(id), id};
	r->vals[1] = (syncd_value){SYNCD_VALUE_NULL, 0, NULL};
	r->vals[2] = (syncd_value){SYNCD_VALUE_UNCHANGED, 0, NULL};
	r->ev = (syncd_event){.size = sizeof r->ev,
	                      .type = SYNCD_EV_UPDATE,
	                      .lsn = 0x16B3748,
	                      /* 2026-12-02 05:00:00.000123 UTC */
	                      .commit_time = 1796187600000123LL,
	                      .xid = 42,
	                      .rel = &r->rel,
	                      .new_values = r->vals};
	r->rec = (syncd_dirty_record){.size = sizeof r->rec,
	                              .job = "mock",
	                              .worker = 2,
	                              .ev = &r->ev,
	                              .sqlstate = "22001",
	                              .message = "value too long"};
}

/* The files of dir, sorted names in *names (caller frees), their count. */
static size_t
dir_files(const char *dir, char ***names)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	*names = NULL;
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		*names = realloc(*names, (n + 1) * sizeof **names);
		(*names)[n++] = strdup(e->d_name);
	}
	closedir(d);
	for (size_t i = 0; i < n; i++) /* few: a simple sort */
		for (size_t k = i + 1; k < n; k++)
			if (strcmp((*names)[k], (*names)[i]) < 0) {
				char *t = (*names)[i];
				(*names)[i] = (*names)[k];
				(*names)[k] = t;
			}
	return n;
}

static char *
file_read(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	n = getdelim(&buf, &cap, '\0', f);
	fclose(f);
	ck_assert_int_gt(n, 0);
	return buf;
}

/* ---- file ---------------------------------------------------------------- */

START_TEST(file_writes_the_json_line)
{
	char *dir = test_tmpdir(), **names, *path, *text;
	const char *kv[] = {"directory", dir, NULL};
	plug p;
	row r;
	size_t n;

	ck_assert_int_eq(plug_open(&p, "file", SYNCD_KIND_ARCHIVER, kv),
	                 SYNCD_OK);
	row_make(&r, "1");
	ck_assert_int_eq(p.d->ops.archiver->write(p.state, &r.rec), SYNCD_OK);
	ck_assert_int_eq(p.d->ops.archiver->flush(p.state), SYNCD_OK);
	n = dir_files(dir, &names);
	ck_assert_uint_eq(n, 1);
	/* JOB-YYYYMMDDTHHMMSSZ-SEQ.jsonl */
	ck_assert_msg(
	    strncmp(names[0], "mock-", 5) == 0 &&
	        strlen(names[0]) == strlen("mock-") + 16 + strlen("-1.jsonl") &&
	        strcmp(names[0] + strlen(names[0]) - 8, "-1.jsonl") == 0,
	    "file name %s", names[0]);
	if (asprintf(&path, "%s/%s", dir, names[0]) < 0)
		abort();
	text = file_read(path);
	ck_assert_str_eq(
	    text, "{\"job\":\"mock\",\"worker\":2,\"database\":\"shop\","
	          "\"schema\":\"public\",\"table\":\"t\",\"target_schema\":"
	          "\"dst\",\"target_table\":\"t\",\"op\":\"update\",\"lsn\":"
	          "\"0/16B3748\",\"commit_time\":\"2026-12-02T05:00:00."
	          "000123Z\",\"sqlstate\":\"22001\",\"message\":\"value too "
	          "long\",\"key\":{\"id\":\"1\"},\"row\":{\"id\":\"1\",\"v\":"
	          "null}}\n");
	free(text);
	free(path);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	plug_close(&p);
	test_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(file_rotates_by_size)
{
	char *dir = test_tmpdir(), **names;
	/* rotate.size below its 1024 B minimum (the mock does not check),
	 * below one record */
	const char *kv[] = {"directory", dir, "rotate.size", "100", NULL};
	plug p;
	row r;
	size_t n;

	ck_assert_int_eq(plug_open(&p, "file", SYNCD_KIND_ARCHIVER, kv),
	                 SYNCD_OK);
	row_make(&r, "1");
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(p.d->ops.archiver->write(p.state, &r.rec),
		                 SYNCD_OK);
	ck_assert_int_eq(p.d->ops.archiver->flush(p.state), SYNCD_OK);
	/* each record passes rotate.size: one file per record */
	n = dir_files(dir, &names);
	ck_assert_uint_eq(n, 3);
	ck_assert_ptr_nonnull(strstr(names[0], "-1.jsonl"));
	ck_assert_ptr_nonnull(strstr(names[2], "-3.jsonl"));
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	plug_close(&p);
	test_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(file_defaults_to_the_state_dir)
{
	const char *kv[] = {NULL};
	char *path, **names;
	plug p;
	row r;
	size_t n;

	ck_assert_int_eq(plug_open(&p, "file", SYNCD_KIND_ARCHIVER, kv),
	                 SYNCD_OK);
	row_make(&r, "1");
	ck_assert_int_eq(p.d->ops.archiver->check(p.state), SYNCD_OK);
	ck_assert_int_eq(p.d->ops.archiver->write(p.state, &r.rec), SYNCD_OK);
	ck_assert_int_eq(p.d->ops.archiver->flush(p.state), SYNCD_OK);
	if (asprintf(&path, "%s/dirty", p.m->job.state_dir) < 0)
		abort();
	n = dir_files(path, &names);
	ck_assert_uint_eq(n, 1);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	plug_close(&p);
	free(path);
}
END_TEST

/* ---- obs: what create() refuses ----------------------------------------- */

static void
obs_env_clear(void)
{
	unsetenv("OBS_ACCESS_KEY_ID");
	unsetenv("OBS_SECRET_ACCESS_KEY");
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("OBS_SECURITY_TOKEN");
	unsetenv("AWS_SESSION_TOKEN");
}

START_TEST(obs_needs_credentials)
{
	const char *kv[] = {"endpoint", "http://127.0.0.1:9", "bucket", "dirty",
	                    NULL};
	plug p;

	obs_env_clear();
	ck_assert_int_eq(plug_open(&p, "obs", SYNCD_KIND_ARCHIVER, kv),
	                 SYNCD_FATAL);
	ck_assert_ptr_null(p.state);
	ck_assert_ptr_nonnull(p.m->error);
	ck_assert_ptr_nonnull(strstr(p.m->error, "no credentials for bucket "
	                                         "\"dirty\" at "
	                                         "http://127.0.0.1:9"));
	plug_close(&p);

	setenv("OBS_ACCESS_KEY_ID", "KEYID", 1);
	ck_assert_int_eq(plug_open(&p, "obs", SYNCD_KIND_ARCHIVER, kv),
	                 SYNCD_FATAL);
	ck_assert_str_eq(p.m->error, "OBS_ACCESS_KEY_ID is set but "
	                             "OBS_SECRET_ACCESS_KEY is not; set both");
	plug_close(&p);
	obs_env_clear();
}
END_TEST

START_TEST(obs_key_file)
{
	char *dir = test_tmpdir();
	char *path = test_write_file(dir, "keys",
	                             "# syncd\naccess_key_id = KEYID\n"
	                             "secret_access_key = 'top-secret-42'\n");
	const char *kv[] = {"endpoint", "http://127.0.0.1:9", "bucket",
	                    "dirty",    "credentials_file",   path,
	                    NULL};
	char *half;
	plug p;

	obs_env_clear();
	/* open to other users */
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(plug_open(&p, "obs", SYNCD_KIND_ARCHIVER, kv),
	                 SYNCD_FATAL);
	ck_assert_ptr_nonnull(strstr(p.m->error, "chmod 600 it"));
	plug_close(&p);

	/* mode 600: taken, and the secret is never said */
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(plug_open(&p, "obs", SYNCD_KIND_ARCHIVER, kv),
	                 SYNCD_OK);
	ck_assert(mock_logged(p.m, "credentials from [archiver] "
	                           "credentials_file"));
	ck_assert(mock_logged(p.m, "as syncd/mock/WORKER/*.jsonl"));
	ck_assert(plug_never_said(&p, "top-secret-42"));
	plug_close(&p);

	/* a file without the secret's line */
	half = test_write_file(dir, "half", "access_key_id = KEYID\n");
	ck_assert_int_eq(chmod(half, 0600), 0);
	kv[5] = half;
	ck_assert_int_eq(plug_open(&p, "obs", SYNCD_KIND_ARCHIVER, kv),
	                 SYNCD_FATAL);
	ck_assert_ptr_nonnull(
	    strstr(p.m->error, "has no secret_access_key line"));
	plug_close(&p);
	free(half);
	free(path);
	test_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(obs_endpoint_and_bucket)
{
	const char *bad_scheme[] = {"endpoint", "ftp://127.0.0.1", "bucket",
	                            "dirty", NULL};
	const char *bad_bucket[] = {"endpoint", "http://127.0.0.1:9", "bucket",
	                            "a/b", NULL};
	const char *no_scheme[] = {"endpoint", "obs.cn-north-4.example.com",
	                           "bucket",   "dirty",
	                           "prefix",   "/x//",
	                           NULL};
	plug p;

	obs_env_clear();
	setenv("AWS_ACCESS_KEY_ID", "KEYID", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "top-secret-42", 1);
	ck_assert_int_eq(plug_open(&p, "obs", SYNCD_KIND_ARCHIVER, bad_scheme),
	                 SYNCD_FATAL);
	ck_assert_ptr_nonnull(
	    strstr(p.m->error, "not an http:// or https:// URL"));
	plug_close(&p);
	ck_assert_int_eq(plug_open(&p, "obs", SYNCD_KIND_ARCHIVER, bad_bucket),
	                 SYNCD_FATAL);
	ck_assert_ptr_nonnull(strstr(p.m->error, "not a bucket name"));
	plug_close(&p);
	/* https assumed; the prefix trimmed to one final '/' */
	ck_assert_int_eq(plug_open(&p, "obs", SYNCD_KIND_ARCHIVER, no_scheme),
	                 SYNCD_OK);
	ck_assert(mock_logged(p.m, "bucket \"dirty\" at "
	                           "https://obs.cn-north-4.example.com as "
	                           "x/mock/WORKER/*.jsonl"));
	ck_assert(mock_logged(p.m, "credentials from the environment "
	                           "(AWS_ACCESS_KEY_ID"));
	ck_assert(plug_never_said(&p, "top-secret-42"));
	plug_close(&p);
	obs_env_clear();
}
END_TEST

START_TEST(obs_security_token)
{
	const char *kv[] = {"endpoint", "http://127.0.0.1:9", "bucket", "dirty",
	                    NULL};
	plug p;

	/* with its key pair: said where it came from, never what it is */
	obs_env_clear();
	setenv("OBS_ACCESS_KEY_ID", "KEYID", 1);
	setenv("OBS_SECRET_ACCESS_KEY", "top-secret-42", 1);
	setenv("OBS_SECURITY_TOKEN", "token-secret-77", 1);
	ck_assert_int_eq(plug_open(&p, "obs", SYNCD_KIND_ARCHIVER, kv),
	                 SYNCD_OK);
	ck_assert(mock_logged(p.m, "credentials from the environment "
	                           "(OBS_ACCESS_KEY_ID, OBS_SECRET_ACCESS_KEY) "
	                           "with the security token of "
	                           "OBS_SECURITY_TOKEN"));
	ck_assert(plug_never_said(&p, "token-secret-77"));
	plug_close(&p);

	/* the AWS_ pair's token does not go with the OBS_ pair */
	unsetenv("OBS_SECURITY_TOKEN");
	setenv("AWS_SESSION_TOKEN", "token-secret-77", 1);
	ck_assert_int_eq(plug_open(&p, "obs", SYNCD_KIND_ARCHIVER, kv),
	                 SYNCD_OK);
	ck_assert(!mock_logged(p.m, "security token"));
	plug_close(&p);

	/* a token without its key pair: refused, naming the variables */
	obs_env_clear();
	setenv("AWS_SESSION_TOKEN", "token-secret-77", 1);
	ck_assert_int_eq(plug_open(&p, "obs", SYNCD_KIND_ARCHIVER, kv),
	                 SYNCD_FATAL);
	ck_assert_ptr_nonnull(strstr(p.m->error,
	                             "AWS_SESSION_TOKEN is set but "
	                             "AWS_ACCESS_KEY_ID and "
	                             "AWS_SECRET_ACCESS_KEY are not"));
	ck_assert(plug_never_said(&p, "token-secret-77"));
	plug_close(&p);
	obs_env_clear();
}
END_TEST

/* ---- the DWS sinks' create() --------------------------------------------- */

START_TEST(dws_create_checks_options)
{
	static const char *const names[] = {"dws_upsert", "dws_copy"};

	for (size_t i = 0; i < 2; i++) {
		const char *ok[] = {"conninfo", "dbname=nowhere",
		                    "sink.server.timezone", "UTC+08:00", NULL};
		const char *tz[] = {"conninfo", "dbname=nowhere",
		                    "sink.server.timezone", "Mars/Olympus Mons",
		                    NULL};
		const char *schema[] = {"conninfo", "dbname=nowhere",
		                        "state.schema", "", NULL};
		plug p;

		/* no I/O in create() */
		ck_assert_int_eq(plug_open(&p, names[i], SYNCD_KIND_SINK, ok),
		                 SYNCD_OK);
		plug_close(&p);
		ck_assert_int_eq(plug_open(&p, names[i], SYNCD_KIND_SINK, tz),
		                 SYNCD_FATAL);
		ck_assert_ptr_nonnull(strstr(
		    p.m->error, "sink.server.timezone = Mars/Olympus Mons is "
		                "not a time zone"));
		plug_close(&p);
		ck_assert_int_eq(
		    plug_open(&p, names[i], SYNCD_KIND_SINK, schema),
		    SYNCD_FATAL);
		ck_assert_str_eq(p.m->error, "state.schema may not be empty");
		plug_close(&p);
	}
}
END_TEST

Suite *
archivers_suite(void)
{
	Suite *s = suite_create("archivers");
	TCase *tc = tcase_create("archivers");
	tcase_add_test(tc, file_writes_the_json_line);
	tcase_add_test(tc, file_rotates_by_size);
	tcase_add_test(tc, file_defaults_to_the_state_dir);
	tcase_add_test(tc, obs_needs_credentials);
	tcase_add_test(tc, obs_key_file);
	tcase_add_test(tc, obs_endpoint_and_bucket);
	tcase_add_test(tc, obs_security_token);
	tcase_add_test(tc, dws_create_checks_options);
	suite_add_tcase(s, tc);
	return s;
}
