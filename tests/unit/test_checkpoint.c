/*
 * tests/unit/test_checkpoint.c - what may be confirmed: workers finishing
 * out of order never confirm early.
 */
#include "config.h"

#include "tests.h"

#include "checkpoint.h"

START_TEST(min_over_workers)
{
	checkpoint *c = ckpt_new(3);

	ck_assert_uint_eq(ckpt_flushed(c, 0), 0);
	/* worker 2 races ahead: nothing may be confirmed while 0 and 1 lag */
	ckpt_record(c, 2, 0, 300);
	ck_assert_uint_eq(ckpt_flushed(c, 0), 0);
	ckpt_record(c, 0, 0, 200);
	ck_assert_uint_eq(ckpt_flushed(c, 0), 0);
	ckpt_record(c, 1, 0, 100);
	ck_assert_uint_eq(ckpt_flushed(c, 0), 100);
	ckpt_record(c, 1, 0, 250);
	ck_assert_uint_eq(ckpt_flushed(c, 0), 200);
	ckpt_record(c, 0, 0, 400);
	ck_assert_uint_eq(ckpt_flushed(c, 0), 250);
	/* progress never moves back */
	ckpt_record(c, 1, 0, 50);
	ck_assert_uint_eq(ckpt_worker(c, 1, 0), 250);
	ck_assert_uint_eq(ckpt_flushed(c, 0), 250);
	ckpt_free(c);
}
END_TEST

START_TEST(streams_are_independent)
{
	checkpoint *c = ckpt_new(2);

	ckpt_record(c, 0, 0, 500);
	ckpt_record(c, 1, 0, 500);
	ckpt_record(c, 0, 1, 90);
	ck_assert_uint_eq(ckpt_flushed(c, 0), 500);
	ck_assert_uint_eq(ckpt_flushed(c, 1), 0);
	ckpt_record(c, 1, 1, 120);
	ck_assert_uint_eq(ckpt_flushed(c, 1), 90);
	/* out of range: ignored, never confirmed */
	ckpt_record(c, 5, 0, 9999);
	ckpt_record(c, 0, SYNCD_MAX_STREAMS, 9999);
	ck_assert_uint_eq(ckpt_flushed(c, 0), 500);
	ck_assert_uint_eq(ckpt_flushed(c, SYNCD_MAX_STREAMS), 0);
	ckpt_free(c);
}
END_TEST

Suite *
checkpoint_suite(void)
{
	Suite *s = suite_create("checkpoint");
	TCase *tc = tcase_create("accounting");

	tcase_add_test(tc, min_over_workers);
	tcase_add_test(tc, streams_are_independent);
	suite_add_tcase(s, tc);
	return s;
}
