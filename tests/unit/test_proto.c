/*
 * tests/unit/test_proto.c - the pgoutput decoder (plugins/pgoutput/proto.c):
 * every message type built byte by byte and its decoded fields, then
 * malformed input (every prefix of every message, trailing bytes, unknown
 * types, kinds and flags, misplaced stream messages), the replication
 * protocol's CopyData envelopes and the standby status update.
 *
 * Last, the stream captured from PostgreSQL 15 for the fuzzing seed corpus
 * (tests/fuzz/corpus/pgoutput) must decode message by message.
 *
 * Every message is decoded from a heap copy of exactly its size, so that
 * the sanitizer build (--enable-sanitizers) catches a read past its end.
 */
#include "config.h"

#include "tests.h"

#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- building messages ------------------------------------------------ */

typedef struct wbuf {
	unsigned char b[4096];
	size_t n;
} wbuf;

static void
w_u8(wbuf *w, uint8_t v)
{
	ck_assert_uint_lt(w->n, sizeof w->b);
	w->b[w->n++] = v;
}

static void
w_u16(wbuf *w, uint16_t v)
{
	w_u8(w, (uint8_t) (v >> 8));
	w_u8(w, (uint8_t) v);
}

static void
w_u32(wbuf *w, uint32_t v)
{
	w_u16(w, (uint16_t) (v >> 16));
	w_u16(w, (uint16_t) v);
}

static void
w_u64(wbuf *w, uint64_t v)
{
	w_u32(w, (uint32_t) (v >> 32));
	w_u32(w, (uint32_t) v);
}

static void
w_bytes(wbuf *w, const void *p, size_t n)
{
	ck_assert_uint_le(n, sizeof w->b - w->n);
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

/* A String: the bytes and their terminating NUL. */
static void
w_str(wbuf *w, const char *s)
{
	w_bytes(w, s, strlen(s) + 1);
}

/* A 't' column (or a refused 'b' one): kind, Int32 length, the bytes. */
static void
w_val(wbuf *w, char kind, const void *p, uint32_t n)
{
	w_u8(w, (uint8_t) kind);
	w_u32(w, n);
	w_bytes(w, p, n);
}

/* ---- decoding from exact-size heap copies ------------------------------ */

static char errbuf[512];
static char *held[64];
static size_t nheld;

/* A heap copy of exactly n bytes, freed by the teardown (decoded strings
 * and values point into it). */
static const char *
hold(const void *p, size_t n)
{
	char *c = malloc(n ? n : 1);
	ck_assert_ptr_ne(c, NULL);
	memcpy(c, p, n);
	ck_assert_uint_lt(nheld, sizeof held / sizeof held[0]);
	held[nheld++] = c;
	return c;
}

static void
release(void)
{
	for (size_t i = 0; i < nheld; i++)
		free(held[i]);
	nheld = 0;
}

static bool
decode(pgo_decoder *d, const wbuf *w, pgo_msg *m)
{
	errbuf[0] = '\0';
	return pgo_decode(d, hold(w->b, w->n), w->n, m, errbuf, sizeof errbuf);
}

static void
expect_ok(pgo_decoder *d, const wbuf *w, pgo_msg *m)
{
	if (!decode(d, w, m))
		ck_abort_msg("decoding failed: %s", errbuf);
}

static void
expect_err(pgo_decoder *d, const wbuf *w, const char *needle)
{
	pgo_msg m;

	ck_assert_msg(!decode(d, w, &m), "decoded, expected an error with '%s'",
	              needle);
	ck_assert_msg(strstr(errbuf, needle) != NULL,
	              "error \"%s\" lacks \"%s\"", errbuf, needle);
}

/* ---- the messages ------------------------------------------------------ */

#define LSN        0x0000000100000028ULL
#define END_LSN    0x0000000100000060ULL
#define TIME       765432109876543LL /* 2024-04-03, PostgreSQL epoch */
#define XID        745u
#define STREAM_XID 900u
#define SUBXID     901u
#define RELID      16384u
#define RELID2     16390u

/* Inside a stream block, R/Y/I/U/D/T/M start with the transaction id. */
static void
w_xid(wbuf *w, bool stream)
{
	if (stream)
		w_u32(w, STREAM_XID);
}

static void
build_begin(wbuf *w)
{
	w_u8(w, 'B');
	w_u64(w, LSN);
	w_u64(w, (uint64_t) TIME);
	w_u32(w, XID);
}

static void
build_commit(wbuf *w)
{
	w_u8(w, 'C');
	w_u8(w, 0);
	w_u64(w, LSN);
	w_u64(w, END_LSN);
	w_u64(w, (uint64_t) TIME);
}

static void
build_origin(wbuf *w)
{
	w_u8(w, 'O');
	w_u64(w, LSN);
	w_str(w, "origin_a");
}

static void
build_relation_ri(wbuf *w, bool stream, char replident)
{
	w_u8(w, 'R');
	w_xid(w, stream);
	w_u32(w, RELID);
	w_str(w, "public");
	w_str(w, "items");
	w_u8(w, (uint8_t) replident);
	w_u16(w, 3);
	w_u8(w, 1); /* key */
	w_str(w, "id");
	w_u32(w, 23);          /* int4 */
	w_u32(w, 0xffffffffu); /* typmod -1 */
	w_u8(w, 0);
	w_str(w, "name");
	w_u32(w, 1043); /* varchar(64) */
	w_u32(w, 68);
	w_u8(w, 0);
	w_str(w, "payload");
	w_u32(w, 17); /* bytea */
	w_u32(w, 0xffffffffu);
}

static void
build_relation(wbuf *w, bool stream)
{
	build_relation_ri(w, stream, 'f');
}

static void
build_type(wbuf *w, bool stream)
{
	w_u8(w, 'Y');
	w_xid(w, stream);
	w_u32(w, 16401);
	w_str(w, "public");
	w_str(w, "mood");
}

/* The tuple used for new rows: n, u, t "hello", t "a\0b\0", t "". */
static void
w_tuple5(wbuf *w)
{
	w_u16(w, 5);
	w_u8(w, 'n');
	w_u8(w, 'u');
	w_val(w, 't', "hello", 5);
	w_val(w, 't', "a\0b\0", 4);
	w_val(w, 't', "", 0);
}

static void
check_tuple5(const pgo_tuple *t)
{
	ck_assert_uint_eq(t->ncols, 5);
	ck_assert_ptr_ne(t->cols, NULL);
	ck_assert_int_eq(t->cols[0].kind, 'n');
	ck_assert_uint_eq(t->cols[0].len, 0);
	ck_assert_ptr_eq(t->cols[0].data, NULL);
	ck_assert_int_eq(t->cols[1].kind, 'u');
	ck_assert_uint_eq(t->cols[1].len, 0);
	ck_assert_ptr_eq(t->cols[1].data, NULL);
	ck_assert_int_eq(t->cols[2].kind, 't');
	ck_assert_uint_eq(t->cols[2].len, 5);
	ck_assert_int_eq(memcmp(t->cols[2].data, "hello", 5), 0);
	ck_assert_int_eq(t->cols[3].kind, 't');
	ck_assert_uint_eq(t->cols[3].len, 4);
	ck_assert_int_eq(memcmp(t->cols[3].data, "a\0b\0", 4), 0);
	ck_assert_int_eq(t->cols[4].kind, 't');
	ck_assert_uint_eq(t->cols[4].len, 0);
	ck_assert_ptr_ne(t->cols[4].data, NULL); /* empty, not null */
}

/* The tuple used for old rows: t "7", n. */
static void
w_tuple2(wbuf *w)
{
	w_u16(w, 2);
	w_val(w, 't', "7", 1);
	w_u8(w, 'n');
}

static void
check_tuple2(const pgo_tuple *t)
{
	ck_assert_uint_eq(t->ncols, 2);
	ck_assert_ptr_ne(t->cols, NULL);
	ck_assert_int_eq(t->cols[0].kind, 't');
	ck_assert_uint_eq(t->cols[0].len, 1);
	ck_assert_int_eq(t->cols[0].data[0], '7');
	ck_assert_int_eq(t->cols[1].kind, 'n');
}

static void
build_insert(wbuf *w, bool stream)
{
	w_u8(w, 'I');
	w_xid(w, stream);
	w_u32(w, RELID);
	w_u8(w, 'N');
	w_tuple5(w);
}

/* old: 0 (no old tuple), 'K' or 'O' */
static void
build_update(wbuf *w, bool stream, char old)
{
	w_u8(w, 'U');
	w_xid(w, stream);
	w_u32(w, RELID);
	if (old) {
		w_u8(w, (uint8_t) old);
		w_tuple2(w);
	}
	w_u8(w, 'N');
	w_tuple5(w);
}

static void
build_delete(wbuf *w, bool stream, char old)
{
	w_u8(w, 'D');
	w_xid(w, stream);
	w_u32(w, RELID);
	w_u8(w, (uint8_t) old);
	w_tuple2(w);
}

static void
build_truncate(wbuf *w, bool stream, uint8_t options)
{
	w_u8(w, 'T');
	w_xid(w, stream);
	w_u32(w, 2);
	w_u8(w, options);
	w_u32(w, RELID);
	w_u32(w, RELID2);
}

static void
build_message(wbuf *w, bool stream, bool transactional)
{
	w_u8(w, 'M');
	w_xid(w, stream);
	w_u8(w, transactional ? 1 : 0);
	w_u64(w, LSN);
	w_str(w, "syncd-test");
	w_u32(w, 5);
	w_bytes(w, "x\0y\0z", 5);
}

static void
build_stream_start(wbuf *w, bool first)
{
	w_u8(w, 'S');
	w_u32(w, STREAM_XID);
	w_u8(w, first ? 1 : 0);
}

static void
build_stream_stop(wbuf *w)
{
	w_u8(w, 'E');
}

static void
build_stream_commit(wbuf *w)
{
	w_u8(w, 'c');
	w_u32(w, STREAM_XID);
	w_u8(w, 0);
	w_u64(w, LSN);
	w_u64(w, END_LSN);
	w_u64(w, (uint64_t) TIME);
}

static void
build_stream_abort(wbuf *w, uint32_t subxid, bool abort_info)
{
	w_u8(w, 'A');
	w_u32(w, STREAM_XID);
	w_u32(w, subxid);
	if (abort_info) {
		w_u64(w, END_LSN);
		w_u64(w, (uint64_t) (TIME + 5));
	}
}

/* ---- decoded fields ---------------------------------------------------- */

START_TEST(begin_commit)
{
	pgo_decoder d;
	wbuf w = {0};
	pgo_msg m;

	pgo_decoder_init(&d, 1);
	build_begin(&w);
	ck_assert_uint_eq(w.n, 21);
	expect_ok(&d, &w, &m);
	ck_assert_int_eq(m.type, 'B');
	ck_assert_uint_eq(m.lsn, LSN);
	ck_assert_int_eq(m.time, TIME);
	ck_assert_uint_eq(m.xid, XID);
	ck_assert(!m.has_xid);

	w.n = 0;
	build_commit(&w);
	ck_assert_uint_eq(w.n, 26);
	expect_ok(&d, &w, &m);
	ck_assert_int_eq(m.type, 'C');
	ck_assert_uint_eq(m.flags, 0);
	ck_assert_uint_eq(m.lsn, LSN);
	ck_assert_uint_eq(m.end_lsn, END_LSN);
	ck_assert_int_eq(m.time, TIME);

	/* a commit time before 2000-01-01 is negative */
	w.n = 0;
	w_u8(&w, 'B');
	w_u64(&w, LSN);
	w_u64(&w, (uint64_t) -1000000LL);
	w_u32(&w, 0xfffffffeu);
	expect_ok(&d, &w, &m);
	ck_assert_int_eq(m.time, -1000000LL);
	ck_assert_uint_eq(m.xid, 0xfffffffeu);
	pgo_decoder_free(&d);
}
END_TEST

START_TEST(origin)
{
	pgo_decoder d;
	wbuf w = {0};
	pgo_msg m;

	pgo_decoder_init(&d, 1);
	build_origin(&w);
	expect_ok(&d, &w, &m);
	ck_assert_int_eq(m.type, 'O');
	ck_assert_uint_eq(m.lsn, LSN);
	ck_assert_str_eq(m.origin, "origin_a");
	pgo_decoder_free(&d);
}
END_TEST

START_TEST(relation)
{
	static const char idents[] = {'d', 'f', 'i', 'n'};
	pgo_decoder d;
	wbuf w = {0};
	pgo_msg m;

	pgo_decoder_init(&d, 1);
	build_relation(&w, false);
	expect_ok(&d, &w, &m);
	ck_assert_int_eq(m.type, 'R');
	ck_assert(!m.has_xid);
	ck_assert_uint_eq(m.relid, RELID);
	ck_assert_str_eq(m.nspname, "public");
	ck_assert_str_eq(m.relname, "items");
	ck_assert_int_eq(m.replident, 'f');
	ck_assert_uint_eq(m.natts, 3);
	ck_assert_uint_eq(m.atts[0].flags, 1);
	ck_assert_str_eq(m.atts[0].name, "id");
	ck_assert_uint_eq(m.atts[0].typid, 23);
	ck_assert_int_eq(m.atts[0].typmod, -1);
	ck_assert_uint_eq(m.atts[1].flags, 0);
	ck_assert_str_eq(m.atts[1].name, "name");
	ck_assert_uint_eq(m.atts[1].typid, 1043);
	ck_assert_int_eq(m.atts[1].typmod, 68);
	ck_assert_uint_eq(m.atts[2].flags, 0);
	ck_assert_str_eq(m.atts[2].name, "payload");
	ck_assert_uint_eq(m.atts[2].typid, 17);
	ck_assert_int_eq(m.atts[2].typmod, -1);

	for (size_t i = 0; i < sizeof idents; i++) {
		w.n = 0;
		build_relation_ri(&w, false, idents[i]);
		expect_ok(&d, &w, &m);
		ck_assert_int_eq(m.replident, idents[i]);
		ck_assert_uint_eq(m.natts, 3);
	}

	/* pg_catalog's schema is sent as an empty string; no columns */
	w.n = 0;
	w_u8(&w, 'R');
	w_u32(&w, 11);
	w_str(&w, "");
	w_str(&w, "t");
	w_u8(&w, 'n');
	w_u16(&w, 0);
	expect_ok(&d, &w, &m);
	ck_assert_str_eq(m.nspname, "");
	ck_assert_str_eq(m.relname, "t");
	ck_assert_uint_eq(m.natts, 0);
	pgo_decoder_free(&d);
}
END_TEST

START_TEST(type)
{
	pgo_decoder d;
	wbuf w = {0};
	pgo_msg m;

	pgo_decoder_init(&d, 1);
	build_type(&w, false);
	expect_ok(&d, &w, &m);
	ck_assert_int_eq(m.type, 'Y');
	ck_assert(!m.has_xid);
	ck_assert_uint_eq(m.typid, 16401);
	ck_assert_str_eq(m.nspname, "public");
	ck_assert_str_eq(m.typname, "mood");
	pgo_decoder_free(&d);
}
END_TEST

START_TEST(insert_tuple_kinds)
{
	pgo_decoder d;
	wbuf w = {0};
	pgo_msg m;

	pgo_decoder_init(&d, 1);
	build_insert(&w, false);
	expect_ok(&d, &w, &m);
	ck_assert_int_eq(m.type, 'I');
	ck_assert(!m.has_xid);
	ck_assert_uint_eq(m.relid, RELID);
	ck_assert_int_eq(m.old_kind, 0);
	ck_assert_uint_eq(m.old_tuple.ncols, 0);
	check_tuple5(&m.new_tuple);

	/* a row of no columns */
	w.n = 0;
	w_u8(&w, 'I');
	w_u32(&w, RELID);
	w_u8(&w, 'N');
	w_u16(&w, 0);
	expect_ok(&d, &w, &m);
	ck_assert_uint_eq(m.new_tuple.ncols, 0);
	pgo_decoder_free(&d);
}
END_TEST

START_TEST(update_old_kinds)
{
	pgo_decoder d;
	wbuf w = {0};
	pgo_msg m;

	pgo_decoder_init(&d, 1);
	build_update(&w, false, 0);
	expect_ok(&d, &w, &m);
	ck_assert_int_eq(m.type, 'U');
	ck_assert_uint_eq(m.relid, RELID);
	ck_assert_int_eq(m.old_kind, 0);
	ck_assert_uint_eq(m.old_tuple.ncols, 0);
	ck_assert_ptr_eq(m.old_tuple.cols, NULL);
	check_tuple5(&m.new_tuple);

	w.n = 0;
	build_update(&w, false, 'K');
	expect_ok(&d, &w, &m);
	ck_assert_int_eq(m.old_kind, 'K');
	check_tuple2(&m.old_tuple);
	check_tuple5(&m.new_tuple);

	w.n = 0;
	build_update(&w, false, 'O');
	expect_ok(&d, &w, &m);
	ck_assert_int_eq(m.old_kind, 'O');
	check_tuple2(&m.old_tuple);
	check_tuple5(&m.new_tuple);
	pgo_decoder_free(&d);
}
END_TEST

/* Old and new values share one array that grows while the new tuple is
 * read: both tuples must still be right on a fresh decoder. */
START_TEST(update_wide_rows)
{
	pgo_decoder d;
	wbuf w = {0};
	pgo_msg m;
	char v[8];

	pgo_decoder_init(&d, 1);
	w_u8(&w, 'U');
	w_u32(&w, RELID);
	w_u8(&w, 'O');
	w_u16(&w, 100);
	for (int i = 0; i < 100; i++) {
		int n = snprintf(v, sizeof v, "o%d", i);
		w_val(&w, 't', v, (uint32_t) n);
	}
	w_u8(&w, 'N');
	w_u16(&w, 300);
	for (int i = 0; i < 300; i++) {
		int n = snprintf(v, sizeof v, "n%d", i);
		w_val(&w, 't', v, (uint32_t) n);
	}
	expect_ok(&d, &w, &m);
	ck_assert_uint_eq(m.old_tuple.ncols, 100);
	ck_assert_uint_eq(m.new_tuple.ncols, 300);
	for (int i = 0; i < 100; i++) {
		int n = snprintf(v, sizeof v, "o%d", i);
		ck_assert_uint_eq(m.old_tuple.cols[i].len, (uint32_t) n);
		ck_assert_int_eq(memcmp(m.old_tuple.cols[i].data, v, n), 0);
	}
	for (int i = 0; i < 300; i++) {
		int n = snprintf(v, sizeof v, "n%d", i);
		ck_assert_uint_eq(m.new_tuple.cols[i].len, (uint32_t) n);
		ck_assert_int_eq(memcmp(m.new_tuple.cols[i].data, v, n), 0);
	}
	pgo_decoder_free(&d);
	ck_assert_ptr_eq(d.vals, NULL);
}
END_TEST

START_TEST(delete_old_kinds)
{
	pgo_decoder d;
	wbuf w = {0};
	pgo_msg m;

	pgo_decoder_init(&d, 1);
	build_delete(&w, false, 'K');
	expect_ok(&d, &w, &m);
	ck_assert_int_eq(m.type, 'D');
	ck_assert_uint_eq(m.relid, RELID);
	ck_assert_int_eq(m.old_kind, 'K');
	check_tuple2(&m.old_tuple);
	ck_assert_uint_eq(m.new_tuple.ncols, 0);
	ck_assert_ptr_eq(m.new_tuple.cols, NULL);

	w.n = 0;
	build_delete(&w, false, 'O');
	expect_ok(&d, &w, &m);
	ck_assert_int_eq(m.old_kind, 'O');
	check_tuple2(&m.old_tuple);
	pgo_decoder_free(&d);
}
END_TEST

START_TEST(truncate_options)
{
	pgo_decoder d;
	wbuf w = {0};
	pgo_msg m;

	pgo_decoder_init(&d, 1);
	for (uint8_t opt = 0; opt <= 3; opt++) { /* 1 cascade, 2 restart id */
		w.n = 0;
		build_truncate(&w, false, opt);
		expect_ok(&d, &w, &m);
		ck_assert_int_eq(m.type, 'T');
		ck_assert_uint_eq(m.flags, opt);
		ck_assert_uint_eq(m.nrels, 2);
		ck_assert_uint_eq(m.relids[0], RELID);
		ck_assert_uint_eq(m.relids[1], RELID2);
	}
	w.n = 0;
	w_u8(&w, 'T');
	w_u32(&w, 0);
	w_u8(&w, 0);
	expect_ok(&d, &w, &m);
	ck_assert_uint_eq(m.nrels, 0);
	pgo_decoder_free(&d);
}
END_TEST

START_TEST(logical_message)
{
	pgo_decoder d;
	wbuf w = {0};
	pgo_msg m;

	pgo_decoder_init(&d, 1);
	build_message(&w, false, true);
	expect_ok(&d, &w, &m);
	ck_assert_int_eq(m.type, 'M');
	ck_assert(!m.has_xid);
	ck_assert_uint_eq(m.flags, 1);
	ck_assert_uint_eq(m.lsn, LSN);
	ck_assert_str_eq(m.prefix, "syncd-test");
	ck_assert_uint_eq(m.content_len, 5);
	ck_assert_int_eq(memcmp(m.content, "x\0y\0z", 5), 0);

	w.n = 0;
	build_message(&w, false, false);
	expect_ok(&d, &w, &m);
	ck_assert_uint_eq(m.flags, 0);
	ck_assert_uint_eq(m.content_len, 5);

	/* empty content */
	w.n = 0;
	w_u8(&w, 'M');
	w_u8(&w, 0);
	w_u64(&w, LSN);
	w_str(&w, "p");
	w_u32(&w, 0);
	expect_ok(&d, &w, &m);
	ck_assert_str_eq(m.prefix, "p");
	ck_assert_uint_eq(m.content_len, 0);
	pgo_decoder_free(&d);
}
END_TEST

/* Between Stream Start and Stream Stop the changes carry the xid of their
 * (sub)transaction; outside they do not. */
START_TEST(stream_block)
{
	pgo_decoder d;
	wbuf w = {0};
	pgo_msg m;

	pgo_decoder_init(&d, 2);
	build_stream_start(&w, true);
	expect_ok(&d, &w, &m);
	ck_assert_int_eq(m.type, 'S');
	ck_assert_uint_eq(m.xid, STREAM_XID);
	ck_assert(m.first_segment);
	ck_assert(d.in_stream);

	w.n = 0;
	build_relation(&w, true);
	expect_ok(&d, &w, &m);
	ck_assert(m.has_xid);
	ck_assert_uint_eq(m.xid, STREAM_XID);
	ck_assert_uint_eq(m.relid, RELID);
	ck_assert_str_eq(m.relname, "items");
	ck_assert_uint_eq(m.natts, 3);

	w.n = 0;
	build_type(&w, true);
	expect_ok(&d, &w, &m);
	ck_assert(m.has_xid);
	ck_assert_uint_eq(m.xid, STREAM_XID);
	ck_assert_str_eq(m.typname, "mood");

	/* a change of a subtransaction carries the subtransaction's xid */
	w.n = 0;
	w_u8(&w, 'I');
	w_u32(&w, SUBXID);
	w_u32(&w, RELID);
	w_u8(&w, 'N');
	w_tuple5(&w);
	expect_ok(&d, &w, &m);
	ck_assert(m.has_xid);
	ck_assert_uint_eq(m.xid, SUBXID);
	ck_assert_uint_eq(m.relid, RELID);
	check_tuple5(&m.new_tuple);

	w.n = 0;
	build_update(&w, true, 'O');
	expect_ok(&d, &w, &m);
	ck_assert(m.has_xid);
	ck_assert_uint_eq(m.xid, STREAM_XID);
	check_tuple2(&m.old_tuple);
	check_tuple5(&m.new_tuple);

	w.n = 0;
	build_delete(&w, true, 'K');
	expect_ok(&d, &w, &m);
	ck_assert(m.has_xid);
	ck_assert_uint_eq(m.xid, STREAM_XID);
	check_tuple2(&m.old_tuple);

	w.n = 0;
	build_truncate(&w, true, 1);
	expect_ok(&d, &w, &m);
	ck_assert(m.has_xid);
	ck_assert_uint_eq(m.xid, STREAM_XID);
	ck_assert_uint_eq(m.nrels, 2);
	ck_assert_uint_eq(m.relids[1], RELID2);

	w.n = 0;
	build_message(&w, true, true);
	expect_ok(&d, &w, &m);
	ck_assert(m.has_xid);
	ck_assert_uint_eq(m.xid, STREAM_XID);
	ck_assert_str_eq(m.prefix, "syncd-test");

	/* the origin message has no xid, even inside a block */
	w.n = 0;
	build_origin(&w);
	expect_ok(&d, &w, &m);
	ck_assert(!m.has_xid);
	ck_assert_str_eq(m.origin, "origin_a");

	w.n = 0;
	build_stream_stop(&w);
	expect_ok(&d, &w, &m);
	ck_assert_int_eq(m.type, 'E');
	ck_assert(!d.in_stream);

	/* after the block: no xid */
	w.n = 0;
	build_insert(&w, false);
	expect_ok(&d, &w, &m);
	ck_assert(!m.has_xid);
	check_tuple5(&m.new_tuple);

	/* the next segment of the same transaction */
	w.n = 0;
	build_stream_start(&w, false);
	expect_ok(&d, &w, &m);
	ck_assert(!m.first_segment);
	ck_assert(d.in_stream);
	w.n = 0;
	build_stream_stop(&w);
	expect_ok(&d, &w, &m);

	w.n = 0;
	build_stream_commit(&w);
	expect_ok(&d, &w, &m);
	ck_assert_int_eq(m.type, 'c');
	ck_assert_uint_eq(m.xid, STREAM_XID);
	ck_assert_uint_eq(m.flags, 0);
	ck_assert_uint_eq(m.lsn, LSN);
	ck_assert_uint_eq(m.end_lsn, END_LSN);
	ck_assert_int_eq(m.time, TIME);
	pgo_decoder_free(&d);
}
END_TEST

START_TEST(stream_abort)
{
	pgo_decoder d;
	wbuf w = {0};
	pgo_msg m;

	/* the whole transaction: subxid is the xid */
	for (int v = 2; v <= 4; v++) {
		pgo_decoder_init(&d, v);
		w.n = 0;
		build_stream_abort(&w, STREAM_XID, false);
		expect_ok(&d, &w, &m);
		ck_assert_int_eq(m.type, 'A');
		ck_assert_uint_eq(m.xid, STREAM_XID);
		ck_assert_uint_eq(m.subxid, STREAM_XID);
		ck_assert_uint_eq(m.abort_lsn, 0);
		ck_assert_int_eq(m.abort_time, 0);
		/* one subtransaction (ROLLBACK TO SAVEPOINT) */
		w.n = 0;
		build_stream_abort(&w, SUBXID, false);
		expect_ok(&d, &w, &m);
		ck_assert_uint_eq(m.xid, STREAM_XID);
		ck_assert_uint_eq(m.subxid, SUBXID);
		/* without parallel streaming there is no abort LSN */
		w.n = 0;
		build_stream_abort(&w, SUBXID, true);
		expect_err(&d, &w, "16 unexpected bytes");
		pgo_decoder_free(&d);
	}

	/* protocol 4, streaming = parallel: abort LSN and time follow */
	pgo_decoder_init(&d, 4);
	d.parallel = true;
	w.n = 0;
	build_stream_abort(&w, SUBXID, true);
	expect_ok(&d, &w, &m);
	ck_assert_uint_eq(m.xid, STREAM_XID);
	ck_assert_uint_eq(m.subxid, SUBXID);
	ck_assert_uint_eq(m.abort_lsn, END_LSN);
	ck_assert_int_eq(m.abort_time, TIME + 5);
	w.n = 0;
	build_stream_abort(&w, SUBXID, false);
	expect_err(&d, &w, "truncated");
	expect_err(&d, &w, "the abort LSN");
	pgo_decoder_free(&d);

	/* parallel means nothing before protocol 4 */
	pgo_decoder_init(&d, 3);
	d.parallel = true;
	w.n = 0;
	build_stream_abort(&w, SUBXID, false);
	expect_ok(&d, &w, &m);
	ck_assert_uint_eq(m.abort_lsn, 0);
	pgo_decoder_free(&d);
}
END_TEST

/* ---- malformed input --------------------------------------------------- */

typedef struct sample {
	const char *name;
	int version;
	bool parallel;
	bool in_stream; /* the decoder's state before the message */
	wbuf w;
} sample;

/* One valid message of every type and shape, with the decoder state it
 * needs. */
static size_t
samples(sample *s, size_t cap)
{
	size_t n = 0;

#define ADD(nm, ver, par, st, call)                                            \
	do {                                                                   \
		ck_assert_uint_lt(n, cap);                                     \
		s[n].name = nm;                                                \
		s[n].version = ver;                                            \
		s[n].parallel = par;                                           \
		s[n].in_stream = st;                                           \
		s[n].w.n = 0;                                                  \
		call;                                                          \
		n++;                                                           \
	} while (0)

	ADD("begin", 1, false, false, build_begin(&s[n].w));
	ADD("commit", 1, false, false, build_commit(&s[n].w));
	ADD("origin", 1, false, false, build_origin(&s[n].w));
	ADD("relation", 1, false, false, build_relation(&s[n].w, false));
	ADD("type", 1, false, false, build_type(&s[n].w, false));
	ADD("insert", 1, false, false, build_insert(&s[n].w, false));
	ADD("update", 1, false, false, build_update(&s[n].w, false, 0));
	ADD("update K", 1, false, false, build_update(&s[n].w, false, 'K'));
	ADD("update O", 1, false, false, build_update(&s[n].w, false, 'O'));
	ADD("delete K", 1, false, false, build_delete(&s[n].w, false, 'K'));
	ADD("delete O", 1, false, false, build_delete(&s[n].w, false, 'O'));
	ADD("truncate", 1, false, false, build_truncate(&s[n].w, false, 3));
	ADD("message", 1, false, false, build_message(&s[n].w, false, true));
	ADD("stream start", 2, false, false, build_stream_start(&s[n].w, true));
	ADD("stream stop", 2, false, true, build_stream_stop(&s[n].w));
	ADD("stream commit", 2, false, false, build_stream_commit(&s[n].w));
	ADD("stream abort", 2, false, false,
	    build_stream_abort(&s[n].w, SUBXID, false));
	ADD("stream abort v4", 4, true, false,
	    build_stream_abort(&s[n].w, SUBXID, true));
	ADD("streamed relation", 2, false, true, build_relation(&s[n].w, true));
	ADD("streamed type", 2, false, true, build_type(&s[n].w, true));
	ADD("streamed insert", 2, false, true, build_insert(&s[n].w, true));
	ADD("streamed update", 2, false, true,
	    build_update(&s[n].w, true, 'K'));
	ADD("streamed delete", 2, false, true,
	    build_delete(&s[n].w, true, 'O'));
	ADD("streamed truncate", 2, false, true,
	    build_truncate(&s[n].w, true, 1));
	ADD("streamed message", 2, false, true,
	    build_message(&s[n].w, true, true));
#undef ADD
	return n;
}

static void
sample_decoder(pgo_decoder *d, const sample *s)
{
	pgo_decoder_init(d, s->version);
	d->parallel = s->parallel;
	d->in_stream = s->in_stream;
}

START_TEST(every_prefix_fails)
{
	sample s[32];
	size_t ns = samples(s, 32);
	size_t prefixes = 0;

	for (size_t i = 0; i < ns; i++) {
		pgo_decoder d;
		pgo_msg m;

		sample_decoder(&d, &s[i]);
		if (!decode(&d, &s[i].w, &m))
			ck_abort_msg("%s: %s", s[i].name, errbuf);
		pgo_decoder_free(&d);
		release();
		for (size_t len = 0; len < s[i].w.n; len++) {
			wbuf p = s[i].w;
			bool ok;

			p.n = len;
			sample_decoder(&d, &s[i]);
			ok = decode(&d, &p, &m);
			ck_assert_msg(!ok,
			              "%s: a prefix of %zu of %zu bytes "
			              "decoded",
			              s[i].name, len, s[i].w.n);
			ck_assert_msg(
			    strstr(errbuf, "truncated") ||
			        strstr(errbuf, "not NUL-terminated") ||
			        strstr(errbuf, "do not fit") ||
			        (len == 0 && strstr(errbuf, "empty message")),
			    "%s, prefix of %zu bytes: \"%s\"", s[i].name, len,
			    errbuf);
			/* a message that failed changes no state */
			ck_assert_msg(d.in_stream == s[i].in_stream,
			              "%s, prefix of %zu bytes: stream state "
			              "changed",
			              s[i].name, len);
			pgo_decoder_free(&d);
			release();
			prefixes++;
		}
	}
	ck_assert_uint_gt(prefixes, 500);
}
END_TEST

START_TEST(trailing_bytes)
{
	sample s[32];
	size_t ns = samples(s, 32);

	for (size_t i = 0; i < ns; i++) {
		pgo_decoder d;

		w_u8(&s[i].w, 'x');
		sample_decoder(&d, &s[i]);
		expect_err(&d, &s[i].w, "1 unexpected bytes after the message");
		ck_assert_msg(d.in_stream == s[i].in_stream,
		              "%s: stream state changed", s[i].name);
		pgo_decoder_free(&d);
		release();
	}
}
END_TEST

/* Stream Start or Stop that fail (here: a byte too many) leave the decoder
 * where it was; otherwise the next messages are read with or without an
 * xid that is not there. */
START_TEST(failed_stream_start_stop_keep_state)
{
	pgo_decoder d;
	wbuf w = {0};
	pgo_msg m;

	pgo_decoder_init(&d, 2);
	build_stream_start(&w, true);
	w_u8(&w, 0);
	expect_err(&d, &w, "unexpected bytes");
	ck_assert(!d.in_stream);
	w.n = 0;
	build_insert(&w, false);
	expect_ok(&d, &w, &m);
	ck_assert(!m.has_xid);
	check_tuple5(&m.new_tuple);

	w.n = 0;
	build_stream_start(&w, true);
	expect_ok(&d, &w, &m);
	w.n = 0;
	build_stream_stop(&w);
	w_u8(&w, 0);
	expect_err(&d, &w, "unexpected bytes");
	ck_assert(d.in_stream);
	w.n = 0;
	build_insert(&w, true);
	expect_ok(&d, &w, &m);
	ck_assert(m.has_xid);
	ck_assert_uint_eq(m.xid, STREAM_XID);
	pgo_decoder_free(&d);
}
END_TEST

START_TEST(unknown_message_type)
{
	static const char types[] = {'Z', 'b', 'P', 'K', 'r', 'p', 0, '\xff'};
	pgo_decoder d;
	wbuf w = {0};

	pgo_decoder_init(&d, 4);
	for (size_t i = 0; i < sizeof types; i++) {
		char want[64];
		w.n = 0;
		w_u8(&w, (uint8_t) types[i]);
		w_u64(&w, LSN);
		snprintf(want, sizeof want,
		         "unknown pgoutput message type 0x%02x",
		         (unsigned char) types[i]);
		expect_err(&d, &w, want);
	}
	w.n = 0;
	expect_err(&d, &w, "empty message");
	pgo_decoder_free(&d);
}
END_TEST

START_TEST(unknown_tuple_kind)
{
	pgo_decoder d;
	wbuf w = {0};

	pgo_decoder_init(&d, 1);
	w_u8(&w, 'I');
	w_u32(&w, RELID);
	w_u8(&w, 'N');
	w_u16(&w, 2);
	w_u8(&w, 'n');
	w_u8(&w, 'x');
	expect_err(&d, &w, "column 1 has unknown kind 0x78");
	/* the error says where: just past the kind, byte 9 */
	expect_err(&d, &w, "offset 10");
	pgo_decoder_free(&d);
}
END_TEST

/* syncd never asks for binary values (protocol option binary): a 'b'
 * column is refused like any unknown kind, its bytes never taken as text */
START_TEST(binary_value_refused)
{
	pgo_decoder d;
	wbuf w = {0};

	pgo_decoder_init(&d, 1);
	w_u8(&w, 'I');
	w_u32(&w, RELID);
	w_u8(&w, 'N');
	w_u16(&w, 2);
	w_val(&w, 't', "1", 1);
	w_val(&w, 'b', "\0\0\0\1", 4);
	expect_err(&d, &w, "column 1 has unknown kind 0x62");
	pgo_decoder_free(&d);
}
END_TEST

START_TEST(bad_tuple_markers)
{
	pgo_decoder d;
	wbuf w = {0};

	pgo_decoder_init(&d, 1);
	w_u8(&w, 'I');
	w_u32(&w, RELID);
	w_u8(&w, 'K');
	w_tuple2(&w);
	expect_err(&d, &w, "expected new tuple 'N', got 0x4b");

	w.n = 0;
	w_u8(&w, 'U');
	w_u32(&w, RELID);
	w_u8(&w, 'X');
	w_tuple2(&w);
	expect_err(&d, &w, "expected new tuple 'N', got 0x58");

	/* old tuple, then no 'N' */
	w.n = 0;
	w_u8(&w, 'U');
	w_u32(&w, RELID);
	w_u8(&w, 'K');
	w_tuple2(&w);
	w_u8(&w, 'K');
	w_tuple2(&w);
	expect_err(&d, &w, "expected new tuple 'N', got 0x4b");

	w.n = 0;
	w_u8(&w, 'D');
	w_u32(&w, RELID);
	w_u8(&w, 'N');
	w_tuple2(&w);
	expect_err(&d, &w, "expected old tuple 'K' or 'O', got 0x4e");
	pgo_decoder_free(&d);
}
END_TEST

START_TEST(unknown_flags)
{
	pgo_decoder d;
	wbuf w = {0};

	pgo_decoder_init(&d, 2);
	build_commit(&w);
	w.b[1] = 2;
	expect_err(&d, &w, "unknown commit flags 0x02");

	w.n = 0;
	build_stream_commit(&w);
	w.b[5] = 1;
	expect_err(&d, &w, "unknown commit flags 0x01");

	w.n = 0;
	build_message(&w, false, true);
	w.b[1] = 3;
	expect_err(&d, &w, "unknown message flags 0x03");

	w.n = 0;
	build_truncate(&w, false, 4);
	expect_err(&d, &w, "unknown truncate options 0x04");

	w.n = 0;
	build_stream_start(&w, true);
	w.b[5] = 2;
	expect_err(&d, &w, "unknown first-segment flag 0x02");
	ck_assert(!d.in_stream);
	pgo_decoder_free(&d);
}
END_TEST

START_TEST(relation_bad_fields)
{
	pgo_decoder d;
	wbuf w = {0};

	pgo_decoder_init(&d, 1);
	/* column flags other than the key bit */
	w_u8(&w, 'R');
	w_u32(&w, RELID);
	w_str(&w, "public");
	w_str(&w, "items");
	w_u8(&w, 'd');
	w_u16(&w, 1);
	w_u8(&w, 3);
	w_str(&w, "id");
	w_u32(&w, 23);
	w_u32(&w, 0xffffffffu);
	expect_err(&d, &w, "column id has unknown flags 0x03");

	w.n = 0;
	build_relation_ri(&w, false, 'x');
	expect_err(&d, &w, "unknown replica identity 0x78");
	w.n = 0;
	build_relation_ri(&w, false, '\0');
	expect_err(&d, &w, "unknown replica identity 0x00");

	/* more columns announced than sent */
	w.n = 0;
	build_relation(&w, false);
	w.b[1 + 4 + 7 + 6 + 1 + 1] = 4; /* natts 3 -> 4 */
	expect_err(&d, &w, "truncated");
	expect_err(&d, &w, "a column's flags");

	/* a name that runs to the end */
	w.n = 0;
	w_u8(&w, 'R');
	w_u32(&w, RELID);
	w_bytes(&w, "public", 6);
	expect_err(&d, &w, "the schema name is not NUL-terminated");
	pgo_decoder_free(&d);
}
END_TEST

START_TEST(truncate_count_does_not_fit)
{
	pgo_decoder d;
	wbuf w = {0};

	pgo_decoder_init(&d, 1);
	w_u8(&w, 'T');
	w_u32(&w, 3);
	w_u8(&w, 0);
	w_u32(&w, RELID);
	w_u32(&w, RELID2);
	expect_err(&d, &w, "3 relations do not fit in the message");

	/* a count that would need 16 GB must not be allocated */
	w.n = 0;
	w_u8(&w, 'T');
	w_u32(&w, 0xffffffffu);
	w_u8(&w, 0);
	w_u32(&w, RELID);
	expect_err(&d, &w, "4294967295 relations do not fit");
	ck_assert_uint_lt(d.nrelids, 16);
	pgo_decoder_free(&d);
}
END_TEST

START_TEST(value_longer_than_message)
{
	pgo_decoder d;
	wbuf w = {0};

	pgo_decoder_init(&d, 1);
	w_u8(&w, 'I');
	w_u32(&w, RELID);
	w_u8(&w, 'N');
	w_u16(&w, 1);
	w_u8(&w, 't');
	w_u32(&w, 1000);
	w_bytes(&w, "abc", 3);
	expect_err(&d, &w,
	           "truncated: 3 bytes left, 1000 needed for a "
	           "column's value");

	w.n = 0;
	w_u8(&w, 'I');
	w_u32(&w, RELID);
	w_u8(&w, 'N');
	w_u16(&w, 1);
	w_u8(&w, 't');
	w_u32(&w, 0xffffffffu);
	expect_err(&d, &w, "4294967295 needed");

	/* a message whose content length is too large */
	w.n = 0;
	w_u8(&w, 'M');
	w_u8(&w, 1);
	w_u64(&w, LSN);
	w_str(&w, "p");
	w_u32(&w, 6);
	w_bytes(&w, "12345", 5);
	expect_err(&d, &w, "truncated: 5 bytes left, 6 needed for the content");

	/* more columns announced than sent */
	w.n = 0;
	w_u8(&w, 'I');
	w_u32(&w, RELID);
	w_u8(&w, 'N');
	w_u16(&w, 65535);
	w_u8(&w, 'n');
	expect_err(&d, &w, "0 bytes left, 1 needed for a column's kind");
	pgo_decoder_free(&d);
}
END_TEST

START_TEST(stream_messages_out_of_place)
{
	pgo_decoder d;
	wbuf w = {0};
	pgo_msg m;

	/* protocol 1 has no streaming */
	pgo_decoder_init(&d, 1);
	build_stream_start(&w, true);
	expect_err(&d, &w, "Stream Start under protocol version 1");
	ck_assert(!d.in_stream);
	w.n = 0;
	build_stream_commit(&w);
	expect_err(&d, &w, "Stream Commit under protocol version 1");
	w.n = 0;
	build_stream_abort(&w, SUBXID, false);
	expect_err(&d, &w, "Stream Abort under protocol version 1");
	w.n = 0;
	build_stream_stop(&w);
	expect_err(&d, &w, "Stream Stop outside a stream block");
	pgo_decoder_free(&d);

	pgo_decoder_init(&d, 2);
	w.n = 0;
	build_stream_stop(&w);
	expect_err(&d, &w, "Stream Stop outside a stream block");
	ck_assert(!d.in_stream);

	w.n = 0;
	build_stream_start(&w, true);
	expect_ok(&d, &w, &m);
	expect_err(&d, &w, "Stream Start inside a stream block");
	ck_assert(d.in_stream);
	w.n = 0;
	build_begin(&w);
	expect_err(&d, &w, "Begin inside a stream block");
	w.n = 0;
	build_stream_commit(&w);
	expect_err(&d, &w, "Stream Commit inside a stream block");
	w.n = 0;
	build_stream_abort(&w, SUBXID, false);
	expect_err(&d, &w, "Stream Abort inside a stream block");
	/* a change without its xid: the relation id is read as the xid */
	w.n = 0;
	build_insert(&w, false);
	expect_err(&d, &w, "expected new tuple 'N', got 0x75");
	ck_assert(d.in_stream);
	pgo_decoder_free(&d);
}
END_TEST

START_TEST(errors_fit_small_buffers)
{
	pgo_decoder d;
	wbuf w = {0};
	pgo_msg m;
	char small[8];

	pgo_decoder_init(&d, 1);
	build_insert(&w, false);
	memset(small, 'z', sizeof small);
	ck_assert(!pgo_decode(&d, hold(w.b, 5), 5, &m, small, sizeof small));
	ck_assert_uint_lt(strnlen(small, sizeof small), sizeof small);
	ck_assert_str_eq(small, "message");
	pgo_decoder_free(&d);
}
END_TEST

/* ---- CopyData and the standby status update ---------------------------- */

static bool
decode_cd(const wbuf *w, pgo_copydata *c)
{
	errbuf[0] = '\0';
	return pgo_decode_copydata(hold(w->b, w->n), w->n, c, errbuf,
	                           sizeof errbuf);
}

static void
expect_cd_err(const wbuf *w, const char *needle)
{
	pgo_copydata c;

	ck_assert_msg(!decode_cd(w, &c), "decoded, expected an error with '%s'",
	              needle);
	ck_assert_msg(strstr(errbuf, needle) != NULL,
	              "error \"%s\" lacks \"%s\"", errbuf, needle);
}

static void
build_xlogdata(wbuf *w, const wbuf *payload)
{
	w_u8(w, 'w');
	w_u64(w, LSN);
	w_u64(w, END_LSN);
	w_u64(w, (uint64_t) TIME);
	w_bytes(w, payload->b, payload->n);
}

static void
build_keepalive(wbuf *w, uint8_t reply)
{
	w_u8(w, 'k');
	w_u64(w, END_LSN);
	w_u64(w, (uint64_t) TIME);
	w_u8(w, reply);
}

START_TEST(copydata_xlogdata)
{
	wbuf payload = {0}, w = {0};
	pgo_copydata c;
	pgo_decoder d;
	pgo_msg m;
	const char *buf;

	build_begin(&payload);
	build_xlogdata(&w, &payload);
	buf = hold(w.b, w.n);
	if (!pgo_decode_copydata(buf, w.n, &c, errbuf, sizeof errbuf))
		ck_abort_msg("%s", errbuf);
	ck_assert_int_eq(c.type, 'w');
	ck_assert_uint_eq(c.wal_start, LSN);
	ck_assert_uint_eq(c.wal_end, END_LSN);
	ck_assert_int_eq(c.send_time, TIME);
	ck_assert_ptr_eq(c.data, buf + 25);
	ck_assert_uint_eq(c.len, payload.n);
	/* the payload is a pgoutput message */
	pgo_decoder_init(&d, 1);
	ck_assert(pgo_decode(&d, c.data, c.len, &m, errbuf, sizeof errbuf));
	ck_assert_int_eq(m.type, 'B');
	ck_assert_uint_eq(m.xid, XID);
	pgo_decoder_free(&d);

	/* without a payload */
	w.n = 0;
	payload.n = 0;
	build_xlogdata(&w, &payload);
	expect_cd_err(&w, "XLogData without a message");
	/* every prefix of the header */
	for (size_t len = 0; len < 25; len++) {
		wbuf p = w;
		p.n = len;
		expect_cd_err(&p, len ? "truncated" : "empty CopyData message");
	}
}
END_TEST

START_TEST(copydata_keepalive)
{
	wbuf w = {0};
	pgo_copydata c;

	for (uint8_t reply = 0; reply <= 1; reply++) {
		w.n = 0;
		build_keepalive(&w, reply);
		ck_assert_uint_eq(w.n, 18);
		if (!decode_cd(&w, &c))
			ck_abort_msg("%s", errbuf);
		ck_assert_int_eq(c.type, 'k');
		ck_assert_uint_eq(c.wal_end, END_LSN);
		ck_assert_int_eq(c.send_time, TIME);
		ck_assert(c.reply_requested == (reply == 1));
		ck_assert_ptr_eq(c.data, NULL);
	}
	w.n = 0;
	build_keepalive(&w, 2);
	expect_cd_err(&w, "unknown reply flag 0x02");
	w.n = 0;
	build_keepalive(&w, 0);
	w_u8(&w, 0);
	expect_cd_err(&w, "1 unexpected bytes");
	w.n = 0;
	build_keepalive(&w, 0);
	for (size_t len = 1; len < 18; len++) {
		wbuf p = w;
		p.n = len;
		expect_cd_err(&p, "truncated");
	}
}
END_TEST

START_TEST(copydata_unknown)
{
	wbuf w = {0};

	w_u8(&w, 'r');
	w_u64(&w, LSN);
	expect_cd_err(&w, "unknown replication message type 0x72");
	w.n = 0;
	w_u8(&w, 'B');
	expect_cd_err(&w, "unknown replication message type 0x42");
}
END_TEST

START_TEST(standby_status)
{
	static const unsigned char want[34] = {
	    'r',
	    /* written */
	    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
	    /* flushed */
	    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x28,
	    /* applied */
	    0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88,
	    /* now: -2 */
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
	    /* reply */
	    1};
	char out[35];

	memset(out, 0x5a, sizeof out);
	pgo_standby_status(out, 0x0102030405060708ULL, LSN,
	                   0xffeeddccbbaa9988ULL, -2, true);
	ck_assert_int_eq(memcmp(out, want, 34), 0);
	ck_assert_int_eq(out[34], 0x5a); /* exactly 34 bytes */
	pgo_standby_status(out, 0, 0, 0, 0, false);
	ck_assert_int_eq(out[0], 'r');
	for (int i = 1; i < 34; i++)
		ck_assert_int_eq(out[i], 0);
}
END_TEST

/* ---- the stream captured from PostgreSQL 15 ---------------------------- */

typedef struct captured {
	size_t msgs, fails, in_stream_at_end;
	size_t types[256];
	size_t unchanged, old_k, old_o, subxact_aborts, xid_in_stream;
} captured;

/* Decodes a corpus file of tests/fuzz/corpus/pgoutput (the fuzz target's
 * format: a settings byte, then messages with 2-byte lengths) message by
 * message through one decoder. */
static void
decode_captured(const char *name, captured *c)
{
	char path[4096];
	FILE *f;
	unsigned char *buf;
	long size;
	size_t pos = 1;
	pgo_decoder d;

	memset(c, 0, sizeof *c);
	snprintf(path, sizeof path, "%s/tests/fuzz/corpus/pgoutput/%s",
	         test_env("top_srcdir"), name);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "%s: cannot open", path);
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	ck_assert_int_gt(size, 1);
	buf = malloc((size_t) size);
	ck_assert_uint_eq(fread(buf, 1, (size_t) size, f), (size_t) size);
	fclose(f);
	ck_assert_int_eq(buf[0], 1); /* protocol version 2, not parallel */
	pgo_decoder_init(&d, 2);
	while (pos < (size_t) size) {
		size_t len;
		pgo_msg m;

		ck_assert_uint_ge((size_t) size - pos, 2);
		len = ((size_t) buf[pos] << 8) | buf[pos + 1];
		pos += 2;
		ck_assert_uint_le(len, (size_t) size - pos);
		c->msgs++;
		if (!pgo_decode(&d, hold(buf + pos, len), len, &m, errbuf,
		                sizeof errbuf)) {
			fprintf(stderr, "%s, message %zu: %s\n", name, c->msgs,
			        errbuf);
			c->fails++;
		} else {
			const pgo_tuple *ts[] = {&m.old_tuple, &m.new_tuple};
			c->types[(unsigned char) m.type]++;
			c->xid_in_stream += m.has_xid;
			c->old_k += m.old_kind == 'K';
			c->old_o += m.old_kind == 'O';
			c->subxact_aborts += m.type == 'A' && m.subxid != m.xid;
			for (int t = 0; t < 2; t++)
				for (uint16_t i = 0; i < ts[t]->ncols; i++)
					c->unchanged +=
					    ts[t]->cols[i].kind == 'u';
		}
		release();
		pos += len;
	}
	c->in_stream_at_end = d.in_stream;
	pgo_decoder_free(&d);
	free(buf);
}

/* txid_current_snapshot() text, and which committed transactions it saw */
START_TEST(snapshots)
{
	pgo_snap s, c = {0};

	ck_assert(pgo_snap_parse("100:105:101,103", &s));
	ck_assert_uint_eq(s.xmin, 100);
	ck_assert_uint_eq(s.xmax, 105);
	ck_assert_uint_eq(s.nxip, 2);
	ck_assert(pgo_snap_sees(&s, 99));
	ck_assert(!pgo_snap_sees(&s, 101)); /* in progress then */
	ck_assert(pgo_snap_sees(&s, 102));
	ck_assert(!pgo_snap_sees(&s, 103));
	ck_assert(pgo_snap_sees(&s, 104));
	ck_assert(!pgo_snap_sees(&s, 105)); /* began after */
	pgo_snap_copy(&c, &s);
	free(s.xip);
	ck_assert(!pgo_snap_sees(&c, 103));
	free(c.xip);
	/* 32-bit xids across an epoch boundary: 2^32 + 5 */
	ck_assert(pgo_snap_parse("4294967290:4294967301:", &s));
	ck_assert_uint_eq(s.nxip, 0);
	ck_assert(pgo_snap_sees(&s, 4294967295u)); /* 2^32 - 1 */
	ck_assert(pgo_snap_sees(&s, 3));           /* 2^32 + 3 */
	ck_assert(!pgo_snap_sees(&s, 5));          /* 2^32 + 5 */
	ck_assert(pgo_snap_sees(&s, 4294967280u)); /* before xmin */
	free(s.xip);
	/* not snapshots */
	ck_assert(!pgo_snap_parse("", &s));
	ck_assert(!pgo_snap_parse("1:2", &s));
	ck_assert(!pgo_snap_parse("5:2:", &s));
	ck_assert(!pgo_snap_parse("1:2:x", &s));
	ck_assert(!pgo_snap_parse("1:9:3,,4", &s));
	ck_assert(!pgo_snap_parse("1:9:3,", &s));
	ck_assert(!pgo_snap_parse("-1:9:", &s));
	ck_assert(!pgo_snap_parse("1:99999999999999999999999:", &s));
}
END_TEST

START_TEST(captured_stream)
{
	captured c;

	decode_captured("01-dml", &c);
	ck_assert_uint_eq(c.fails, 0);
	ck_assert_uint_gt(c.msgs, 10);
	ck_assert_uint_eq(c.types['B'], c.types['C']);
	ck_assert_uint_gt(c.types['Y'], 0);
	ck_assert_uint_gt(c.types['R'], 0);
	ck_assert_uint_gt(c.types['I'], 0);
	ck_assert_uint_gt(c.types['U'], 0);
	ck_assert_uint_gt(c.types['D'], 0);
	ck_assert_uint_gt(c.unchanged, 0); /* the untouched TOASTed text */
	ck_assert_uint_gt(c.old_k, 0);
	ck_assert_uint_eq(c.xid_in_stream, 0);

	decode_captured("02-full-truncate-message", &c);
	ck_assert_uint_eq(c.fails, 0);
	ck_assert_uint_gt(c.old_o, 0);
	ck_assert_uint_eq(c.types['T'], 2);
	ck_assert_uint_eq(c.types['M'], 2);

	decode_captured("03-stream-commit", &c);
	ck_assert_uint_eq(c.fails, 0);
	ck_assert_uint_gt(c.types['S'], 1);
	ck_assert_uint_eq(c.types['S'], c.types['E']);
	ck_assert_uint_eq(c.types['c'], 1);
	ck_assert_uint_eq(c.types['B'], 0);
	ck_assert_uint_gt(c.xid_in_stream, 1000);
	ck_assert_uint_eq(c.in_stream_at_end, 0);

	decode_captured("04-stream-abort", &c);
	ck_assert_uint_eq(c.fails, 0);
	ck_assert_uint_eq(c.types['S'], c.types['E']);
	ck_assert_uint_eq(c.types['A'], 1);
	ck_assert_uint_eq(c.subxact_aborts, 0);
	ck_assert_uint_eq(c.types['c'], 0);

	decode_captured("05-stream-savepoint", &c);
	ck_assert_uint_eq(c.fails, 0);
	ck_assert_uint_eq(c.types['S'], c.types['E']);
	ck_assert_uint_eq(c.subxact_aborts, 1);
	ck_assert_uint_eq(c.types['c'], 1);
}
END_TEST

Suite *
proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc = tcase_create("messages");
	TCase *bad = tcase_create("malformed");
	TCase *cd = tcase_create("copydata");
	TCase *real = tcase_create("captured");

	tcase_add_checked_fixture(tc, NULL, release);
	tcase_add_test(tc, begin_commit);
	tcase_add_test(tc, origin);
	tcase_add_test(tc, relation);
	tcase_add_test(tc, type);
	tcase_add_test(tc, insert_tuple_kinds);
	tcase_add_test(tc, update_old_kinds);
	tcase_add_test(tc, update_wide_rows);
	tcase_add_test(tc, delete_old_kinds);
	tcase_add_test(tc, truncate_options);
	tcase_add_test(tc, logical_message);
	tcase_add_test(tc, stream_block);
	tcase_add_test(tc, stream_abort);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(bad, NULL, release);
	tcase_add_test(bad, every_prefix_fails);
	tcase_add_test(bad, trailing_bytes);
	tcase_add_test(bad, failed_stream_start_stop_keep_state);
	tcase_add_test(bad, unknown_message_type);
	tcase_add_test(bad, unknown_tuple_kind);
	tcase_add_test(bad, binary_value_refused);
	tcase_add_test(bad, bad_tuple_markers);
	tcase_add_test(bad, unknown_flags);
	tcase_add_test(bad, relation_bad_fields);
	tcase_add_test(bad, truncate_count_does_not_fit);
	tcase_add_test(bad, value_longer_than_message);
	tcase_add_test(bad, stream_messages_out_of_place);
	tcase_add_test(bad, errors_fit_small_buffers);
	suite_add_tcase(s, bad);

	tcase_add_checked_fixture(cd, NULL, release);
	tcase_add_test(cd, copydata_xlogdata);
	tcase_add_test(cd, copydata_keepalive);
	tcase_add_test(cd, copydata_unknown);
	tcase_add_test(cd, standby_status);
	tcase_add_test(cd, snapshots);
	suite_add_tcase(s, cd);

	tcase_add_checked_fixture(real, NULL, release);
	tcase_add_test(real, captured_stream);
	suite_add_tcase(s, real);
	return s;
}
