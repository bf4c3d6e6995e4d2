/*
 * tests/fuzz/pgoutput_fuzz.c - libFuzzer target for the pgoutput decoder
 * and the replication protocol's CopyData envelopes (plugins/pgoutput/
 * proto.c). Any input must decode or give an error that says something,
 * never a crash, a read outside the message, a leak or undefined behaviour.
 * Run: make fuzz (needs clang).
 *
 * Input: one byte of settings, then messages, each a 2-byte big-endian
 * length and that many bytes (the last one may be shorter than its
 * length says: it takes what is left; a last lone byte is ignored).
 *   settings & 3:    protocol version - 1 (1 to 4)
 *   settings & 4:    streaming = parallel (Stream Abort carries LSN, time)
 *   settings & 8:    a 16-byte error buffer instead of 256 bytes
 * All messages go through ONE decoder in order, so the Stream Start/Stop
 * state carries from one to the next, as in a real stream. Each message is
 * decoded as the payload of an XLogData ('w') envelope, as syncd receives
 * it, and its bytes are also decoded as a CopyData message of their own.
 * Every buffer is a heap copy of exactly its size, so that AddressSanitizer
 * sees any read past a message's end.
 *
 * tests/fuzz/corpus/pgoutput/ holds a stream captured from PostgreSQL 15 in
 * this format (tests/fuzz/capture_pgoutput_corpus.sh).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads every byte a decoded pointer claims, so that ASan checks it, and
 * checks it lies inside the message. */
static volatile unsigned char sink;

static void
within(const char *buf, size_t len, const char *p, size_t n)
{
	if (!p) {
		if (n != 0)
			abort();
		return;
	}
	if (p < buf || p > buf + len || n > (size_t) (buf + len - p))
		abort();
	for (size_t i = 0; i < n; i++)
		sink ^= (unsigned char) p[i];
}

/* A decoded string: inside the message, NUL included. */
static void
string_within(const char *buf, size_t len, const char *s)
{
	size_t left, n;

	if (!s || s < buf || s >= buf + len)
		abort();
	left = (size_t) (buf + len - s);
	n = strnlen(s, left);
	if (n == left)
		abort();
	within(buf, len, s, n + 1);
}

static void
tuple_within(const char *buf, size_t len, const pgo_tuple *t)
{
	if (t->ncols && !t->cols)
		abort();
	for (uint16_t i = 0; i < t->ncols; i++) {
		const pgo_value *v = &t->cols[i];
		switch (v->kind) {
		case 'n':
		case 'u':
			if (v->len || v->data)
				abort();
			break;
		case 't':
		case 'b': within(buf, len, v->data, v->len); break;
		default: abort();
		}
	}
}

static void
check_msg(const char *buf, size_t len, const pgo_msg *m)
{
	if (m->type != buf[0])
		abort();
	switch (m->type) {
	case 'O': string_within(buf, len, m->origin); break;
	case 'R':
		string_within(buf, len, m->nspname);
		string_within(buf, len, m->relname);
		if (!strchr("dfin", m->replident) || !m->replident)
			abort();
		for (uint16_t i = 0; i < m->natts; i++) {
			string_within(buf, len, m->atts[i].name);
			if (m->atts[i].flags > 1)
				abort();
		}
		break;
	case 'Y':
		string_within(buf, len, m->nspname);
		string_within(buf, len, m->typname);
		break;
	case 'I':
	case 'U':
	case 'D':
		tuple_within(buf, len, &m->old_tuple);
		tuple_within(buf, len, &m->new_tuple);
		if ((m->type == 'D') != (m->new_tuple.cols == NULL))
			abort();
		break;
	case 'T':
		if (m->nrels > len / 4)
			abort();
		for (uint32_t i = 0; i < m->nrels; i++)
			sink ^= (unsigned char) m->relids[i];
		break;
	case 'M':
		string_within(buf, len, m->prefix);
		within(buf, len, m->content, m->content_len);
		break;
	default: break;
	}
}

static void
check_err(const char *err, size_t errlen)
{
	/* an error is never silent and always terminated */
	if (err[0] == '\0' || memchr(err, '\0', errlen) == NULL)
		abort();
}

static void
one_message(pgo_decoder *d, const uint8_t *msg, size_t len, size_t errlen)
{
	char err[256];
	char *raw = malloc(len ? len : 1);
	char *env = malloc(25 + len);
	pgo_copydata c;
	pgo_msg m;
	bool was_in_stream = d->in_stream;

	if (!raw || !env)
		abort();
	memcpy(raw, msg, len);

	/* the bytes as a CopyData message of their own */
	memset(err, 0, sizeof err);
	if (pgo_decode_copydata(raw, len, &c, err, errlen)) {
		if (c.type == 'w')
			within(raw, len, c.data, c.len);
		else if (c.type != 'k' || len != 18)
			abort();
	} else {
		check_err(err, errlen);
	}

	/* the message inside an XLogData envelope */
	env[0] = 'w';
	memset(env + 1, 0x11, 24);
	memcpy(env + 25, msg, len);
	memset(err, 0, sizeof err);
	if (!pgo_decode_copydata(env, 25 + len, &c, err, errlen)) {
		check_err(err, errlen);
		if (len != 0) /* only an empty payload is refused */
			abort();
	} else if (c.data != env + 25 || c.len != len) {
		abort();
	} else {
		memset(err, 0, sizeof err);
		if (pgo_decode(d, c.data, c.len, &m, err, errlen)) {
			bool want = m.type == 'S'   ? true
			            : m.type == 'E' ? false
			                            : was_in_stream;
			check_msg(c.data, c.len, &m);
			if (d->in_stream != want)
				abort();
		} else {
			check_err(err, errlen);
			if (d->in_stream != was_in_stream)
				abort();
		}
	}
	free(env);
	free(raw);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pgo_decoder d;
	size_t pos = 1, errlen;

	if (size < 1)
		return 0;
	pgo_decoder_init(&d, 1 + (data[0] & 3));
	d.parallel = (data[0] & 4) != 0;
	errlen = (data[0] & 8) ? 16 : 256;
	while (pos < size) {
		size_t len;

		if (size - pos < 2)
			break;
		len = ((size_t) data[pos] << 8) | data[pos + 1];
		pos += 2;
		if (len > size - pos)
			len = size - pos;
		one_message(&d, data + pos, len, errlen);
		pos += len;
	}
	pgo_decoder_free(&d);
	return 0;
}
