/*
 * tests/unit/tests.h - the Check suites of syncd, and helpers they share.
 */
#ifndef SYNCD_TESTS_H
#define SYNCD_TESTS_H

#include <check.h>
#include <stdbool.h>

Suite *util_suite(void);
Suite *jobfile_suite(void);
Suite *loader_suite(void);
Suite *checkpoint_suite(void);
Suite *conformance_suite(void);
Suite *pipeline_suite(void);
Suite *proto_suite(void);
Suite *dws_suite(void);
Suite *udf_suite(void);
Suite *transforms_suite(void);
Suite *archivers_suite(void);
Suite *sigv4_suite(void);
Suite *txbuf_suite(void);
Suite *display_suite(void);
Suite *log_suite(void);
Suite *metrics_suite(void);

/* A fresh directory under $TMPDIR for one test; removed by the caller with
 * test_rmdir(). */
char *test_tmpdir(void);
void test_rmdir(const char *dir);
/* Writes text to dir/name and returns the path (caller frees). */
char *test_write_file(const char *dir, const char *name, const char *text);
/* An environment variable the tests need (set by make check). */
const char *test_env(const char *name);

/* Runs $SYNCD with args (NULL-terminated), stderr into *err (caller frees);
 * returns the exit code, or -signal. */
int test_run_syncd(char **err, const char *const *args);

#endif
