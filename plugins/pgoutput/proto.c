/*
 * plugins/pgoutput/proto.c - see proto.h. Message layouts: PostgreSQL's
 * "Logical Replication Message Formats" and "Streaming Replication
 * Protocol" (XLogData, keepalive, standby status update).
 */
#include "proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rd {
	const unsigned char *p;
	size_t len, pos;
	char type;
	char *err;
	size_t errlen;
} rd;

static bool rd_fail(rd *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool
rd_fail(rd *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(
	    r->err, r->errlen, "message '%c' (%zu bytes), offset %zu: ",
	    r->type >= 32 && r->type < 127 ? r->type : '?', r->len, r->pos);
	if (n < 0 || (size_t) n >= r->errlen)
		return false;
	va_start(ap, fmt);
	vsnprintf(r->err + n, r->errlen - (size_t) n, fmt, ap);
	va_end(ap);
	return false;
}

static bool
rd_need(rd *r, size_t n, const char *what)
{
	if (r->len - r->pos < n)
		return rd_fail(r,
		               "truncated: %zu bytes left, %zu needed for %s",
		               r->len - r->pos, n, what);
	return true;
}

static bool
rd_u8(rd *r, uint8_t *v, const char *what)
{
	if (!rd_need(r, 1, what))
		return false;
	*v = r->p[r->pos++];
	return true;
}

static bool
rd_u16(rd *r, uint16_t *v, const char *what)
{
	if (!rd_need(r, 2, what))
		return false;
	*v = (uint16_t) ((r->p[r->pos] << 8) | r->p[r->pos + 1]);
	r->pos += 2;
	return true;
}

static bool
rd_u32(rd *r, uint32_t *v, const char *what)
{
	if (!rd_need(r, 4, what))
		return false;
	*v = ((uint32_t) r->p[r->pos] << 24) |
	     ((uint32_t) r->p[r->pos + 1] << 16) |
	     ((uint32_t) r->p[r->pos + 2] << 8) | (uint32_t) r->p[r->pos + 3];
	r->pos += 4;
	return true;
}

static bool
rd_u64(rd *r, uint64_t *v, const char *what)
{
	uint32_t hi, lo;
	if (!rd_need(r, 8, what))
		return false;
	rd_u32(r, &hi, what);
	rd_u32(r, &lo, what);
	*v = ((uint64_t) hi << 32) | lo;
	return true;
}

static bool
rd_i64(rd *r, int64_t *v, const char *what)
{
	uint64_t u;
	if (!rd_u64(r, &u, what))
		return false;
	*v = (int64_t) u;
	return true;
}

/* A NUL-terminated string inside the message. */
static bool
rd_string(rd *r, const char **s, const char *what)
{
	const unsigned char *nul;

	if (r->pos >= r->len)
		return rd_fail(r, "truncated: no bytes left for %s", what);
	nul = memchr(r->p + r->pos, '\0', r->len - r->pos);
	if (!nul)
		return rd_fail(r, "%s is not NUL-terminated", what);
	*s = (const char *) r->p + r->pos;
	r->pos = (size_t) (nul - r->p) + 1;
	return true;
}

static bool
rd_bytes(rd *r, size_t n, const char **s, const char *what)
{
	if (!rd_need(r, n, what))
		return false;
	*s = (const char *) r->p + r->pos;
	r->pos += n;
	return true;
}

static bool
rd_end(rd *r)
{
	if (r->pos != r->len)
		return rd_fail(r, "%zu unexpected bytes after the message",
		               r->len - r->pos);
	return true;
}

void
pgo_decoder_init(pgo_decoder *d, int proto_version)
{
	memset(d, 0, sizeof *d);
	d->proto_version = proto_version;
}

void
pgo_decoder_free(pgo_decoder *d)
{
	free(d->vals);
	free(d->atts);
	free(d->relids);
	memset(d, 0, sizeof *d);
}

static bool
dec_grow(void **arr, size_t *cap, size_t want, size_t size)
{
	void *p;
	if (want <= *cap)
		return true;
	p = realloc(*arr, want * size);
	if (!p)
		return false;
	*arr = p;
	*cap = want;
	return true;
}

/* TupleData. Values of one message share d->vals: old first, then new. */
static bool
dec_tuple(pgo_decoder *d, rd *r, pgo_tuple *t, size_t *used)
{
	uint16_t n;

	if (!rd_u16(r, &n, "the number of columns"))
		return false;
	if (!dec_grow((void **) &d->vals, &d->nvals, *used + n + 1,
	              sizeof(pgo_value)))
		return rd_fail(r, "out of memory for %u columns", n);
	t->ncols = n;
	t->cols = NULL; /* set by the caller once vals stops moving */
	for (uint16_t i = 0; i < n; i++) {
		pgo_value *v = &d->vals[*used + i];
		uint8_t kind;
		uint32_t len;

		if (!rd_u8(r, &kind, "a column's kind"))
			return false;
		v->kind = (char) kind;
		v->len = 0;
		v->data = NULL;
		switch (kind) {
		case 'n':
		case 'u': break;
		case 't':
			if (!rd_u32(r, &len, "a column's length"))
				return false;
			if (!rd_bytes(r, len, &v->data, "a column's value"))
				return false;
			v->len = len;
			break;
		default:
			return rd_fail(r, "column %u has unknown kind 0x%02x",
			               i, kind);
		}
	}
	*used += n;
	return true;
}

static bool
dec_xid(pgo_decoder *d, rd *r, pgo_msg *m)
{
	if (!d->in_stream)
		return true;
	m->has_xid = true;
	return rd_u32(r, &m->xid, "the transaction id");
}

bool
pgo_decode(pgo_decoder *d, const char *buf, size_t len, pgo_msg *m, char *err,
           size_t errlen)
{
	rd r = {(const unsigned char *) buf, len, 0, '?', err, errlen};
	uint8_t u8;
	size_t used = 0;
	size_t old_at = 0, new_at = 0;

	memset(m, 0, sizeof *m);
	if (len == 0) {
		snprintf(err, errlen, "empty message");
		return false;
	}
	m->type = r.type = buf[0];
	r.pos = 1;

	switch (m->type) {
	case 'B':
		if (d->in_stream)
			return rd_fail(&r, "Begin inside a stream block");
		if (!rd_u64(&r, &m->lsn, "the final LSN") ||
		    !rd_i64(&r, &m->time, "the commit time") ||
		    !rd_u32(&r, &m->xid, "the transaction id"))
			return false;
		break;
	case 'C':
		if (!rd_u8(&r, &m->flags, "the flags") ||
		    !rd_u64(&r, &m->lsn, "the commit LSN") ||
		    !rd_u64(&r, &m->end_lsn, "the end LSN") ||
		    !rd_i64(&r, &m->time, "the commit time"))
			return false;
		if (m->flags != 0)
			return rd_fail(&r, "unknown commit flags 0x%02x",
			               m->flags);
		break;
	case 'O':
		if (!rd_u64(&r, &m->lsn, "the origin LSN") ||
		    !rd_string(&r, &m->origin, "the origin name"))
			return false;
		break;
	case 'R':
		if (!dec_xid(d, &r, m) ||
		    !rd_u32(&r, &m->relid, "the relation id") ||
		    !rd_string(&r, &m->nspname, "the schema name") ||
		    !rd_string(&r, &m->relname, "the table name") ||
		    !rd_u8(&r, &u8, "the replica identity") ||
		    !rd_u16(&r, &m->natts, "the number of columns"))
			return false;
		m->replident = (char) u8;
		if (!strchr("dnfi", m->replident) || m->replident == '\0')
			return rd_fail(&r, "unknown replica identity 0x%02x",
			               u8);
		if (!dec_grow((void **) &d->atts, &d->natts,
		              (size_t) m->natts + 1, sizeof(pgo_attr)))
			return rd_fail(&r, "out of memory");
		for (uint16_t i = 0; i < m->natts; i++) {
			pgo_attr *a = &d->atts[i];
			uint32_t typmod;
			if (!rd_u8(&r, &a->flags, "a column's flags") ||
			    !rd_string(&r, &a->name, "a column's name") ||
			    !rd_u32(&r, &a->typid, "a column's type") ||
			    !rd_u32(&r, &typmod, "a column's type modifier"))
				return false;
			if (a->flags & ~1u)
				return rd_fail(
				    &r, "column %s has unknown flags 0x%02x",
				    a->name, a->flags);
			a->typmod = (int32_t) typmod;
		}
		m->atts = d->atts;
		break;
	case 'Y':
		if (!dec_xid(d, &r, m) ||
		    !rd_u32(&r, &m->typid, "the type id") ||
		    !rd_string(&r, &m->nspname, "the type's schema") ||
		    !rd_string(&r, &m->typname, "the type's name"))
			return false;
		break;
	case 'I':
	case 'U':
	case 'D':
		/* [xid] relid, then an old tuple ('K' key or 'O' row: U and D),
		 * then the new one ('N': I and U) */
		if (!dec_xid(d, &r, m) ||
		    !rd_u32(&r, &m->relid, "the relation id") ||
		    !rd_u8(&r, &u8, "the tuple marker"))
			return false;
		if (m->type != 'I' && (u8 == 'K' || u8 == 'O')) {
			m->old_kind = (char) u8;
			old_at = used;
			if (!dec_tuple(d, &r, &m->old_tuple, &used))
				return false;
			if (m->type == 'D')
				break;
			if (!rd_u8(&r, &u8, "the new tuple marker"))
				return false;
		} else if (m->type == 'D')
			return rd_fail(
			    &r, "expected old tuple 'K' or 'O', got 0x%02x",
			    u8);
		if (u8 != 'N')
			return rd_fail(&r, "expected new tuple 'N', got 0x%02x",
			               u8);
		new_at = used;
		if (!dec_tuple(d, &r, &m->new_tuple, &used))
			return false;
		break;
	case 'T':
		if (!dec_xid(d, &r, m) ||
		    !rd_u32(&r, &m->nrels, "the number of relations") ||
		    !rd_u8(&r, &m->flags, "the options"))
			return false;
		if (m->flags & ~3u)
			return rd_fail(&r, "unknown truncate options 0x%02x",
			               m->flags);
		if ((size_t) m->nrels > (r.len - r.pos) / 4)
			return rd_fail(&r,
			               "%u relations do not fit in the message",
			               m->nrels);
		if (!dec_grow((void **) &d->relids, &d->nrelids,
		              (size_t) m->nrels + 1, sizeof(uint32_t)))
			return rd_fail(&r, "out of memory");
		for (uint32_t i = 0; i < m->nrels; i++)
			if (!rd_u32(&r, &d->relids[i], "a relation id"))
				return false;
		m->relids = d->relids;
		break;
	case 'M':
		if (!dec_xid(d, &r, m) || !rd_u8(&r, &m->flags, "the flags") ||
		    !rd_u64(&r, &m->lsn, "the message LSN") ||
		    !rd_string(&r, &m->prefix, "the prefix") ||
		    !rd_u32(&r, &m->content_len, "the content length") ||
		    !rd_bytes(&r, m->content_len, &m->content, "the content"))
			return false;
		if (m->flags & ~1u)
			return rd_fail(&r, "unknown message flags 0x%02x",
			               m->flags);
		break;
	case 'S':
		if (d->proto_version < 2)
			return rd_fail(&r,
			               "Stream Start under protocol version 1");
		if (d->in_stream)
			return rd_fail(&r,
			               "Stream Start inside a stream block");
		if (!rd_u32(&r, &m->xid, "the transaction id") ||
		    !rd_u8(&r, &u8, "the first-segment flag"))
			return false;
		if (u8 > 1)
			return rd_fail(&r, "unknown first-segment flag 0x%02x",
			               u8);
		m->first_segment = u8 == 1;
		break;
	case 'E':
		if (!d->in_stream)
			return rd_fail(&r,
			               "Stream Stop outside a stream block");
		break;
	case 'c':
		if (d->proto_version < 2 || d->in_stream)
			return rd_fail(&r, "Stream Commit %s",
			               d->in_stream
			                   ? "inside a stream block"
			                   : "under protocol version 1");
		if (!rd_u32(&r, &m->xid, "the transaction id") ||
		    !rd_u8(&r, &m->flags, "the flags") ||
		    !rd_u64(&r, &m->lsn, "the commit LSN") ||
		    !rd_u64(&r, &m->end_lsn, "the end LSN") ||
		    !rd_i64(&r, &m->time, "the commit time"))
			return false;
		if (m->flags != 0)
			return rd_fail(&r, "unknown commit flags 0x%02x",
			               m->flags);
		break;
	case 'A':
		if (d->proto_version < 2 || d->in_stream)
			return rd_fail(&r, "Stream Abort %s",
			               d->in_stream
			                   ? "inside a stream block"
			                   : "under protocol version 1");
		if (!rd_u32(&r, &m->xid, "the transaction id") ||
		    !rd_u32(&r, &m->subxid, "the subtransaction id"))
			return false;
		if (d->proto_version >= 4 && d->parallel &&
		    (!rd_u64(&r, &m->abort_lsn, "the abort LSN") ||
		     !rd_i64(&r, &m->abort_time, "the abort time")))
			return false;
		break;
	default:
		snprintf(err, errlen, "unknown pgoutput message type 0x%02x",
		         (unsigned char) buf[0]);
		return false;
	}
	if (!rd_end(&r))
		return false;
	/* only a message that decoded opens or closes a stream block */
	if (m->type == 'S')
		d->in_stream = true;
	else if (m->type == 'E')
		d->in_stream = false;
	/* values were stored in one array that may have moved while growing */
	if (m->old_kind || m->type == 'U' || m->type == 'D')
		m->old_tuple.cols = m->old_kind ? d->vals + old_at : NULL;
	if (m->type == 'I' || m->type == 'U')
		m->new_tuple.cols = d->vals + new_at;
	return true;
}

bool
pgo_decode_copydata(const char *buf, size_t len, pgo_copydata *c, char *err,
                    size_t errlen)
{
	rd r = {(const unsigned char *) buf, len, 0, '?', err, errlen};
	uint8_t u8;
	uint64_t u;

	memset(c, 0, sizeof *c);
	if (len == 0) {
		snprintf(err, errlen, "empty CopyData message");
		return false;
	}
	c->type = r.type = buf[0];
	r.pos = 1;
	switch (c->type) {
	case 'w':
		if (!rd_u64(&r, &c->wal_start, "the WAL start") ||
		    !rd_u64(&r, &c->wal_end, "the WAL end") ||
		    !rd_u64(&r, &u, "the send time"))
			return false;
		c->send_time = (int64_t) u;
		c->data = buf + r.pos;
		c->len = len - r.pos;
		if (c->len == 0)
			return rd_fail(&r, "XLogData without a message");
		return true;
	case 'k':
		if (!rd_u64(&r, &c->wal_end, "the WAL end") ||
		    !rd_u64(&r, &u, "the send time") ||
		    !rd_u8(&r, &u8, "the reply flag"))
			return false;
		c->send_time = (int64_t) u;
		if (u8 > 1)
			return rd_fail(&r, "unknown reply flag 0x%02x", u8);
		c->reply_requested = u8 == 1;
		return rd_end(&r);
	default:
		snprintf(err, errlen, "unknown replication message type 0x%02x",
		         (unsigned char) buf[0]);
		return false;
	}
}

static void
put_u64(char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (char) (v & 0xff);
		v >>= 8;
	}
}

void
pgo_standby_status(char out[34], uint64_t written, uint64_t flushed,
                   uint64_t applied, int64_t now_pg_us, bool reply)
{
	out[0] = 'r';
	put_u64(out + 1, written);
	put_u64(out + 9, flushed);
	put_u64(out + 17, applied);
	put_u64(out + 25, (uint64_t) now_pg_us);
	out[33] = reply ? 1 : 0;
}

/* ---- snapshots ---------------------------------------------------------- */

static bool
snap_num(const char **p, uint64_t *v)
{
	char *end;

	if (**p < '0' || **p > '9')
		return false;
	errno = 0;
	*v = strtoull(*p, &end, 10);
	if (errno)
		return false;
	*p = end;
	return true;
}

bool
pgo_snap_parse(const char *text, pgo_snap *out)
{
	const char *p = text;
	size_t n = 1;

	memset(out, 0, sizeof *out);
	if (!snap_num(&p, &out->xmin) || *p++ != ':' ||
	    !snap_num(&p, &out->xmax) || *p++ != ':' || out->xmin > out->xmax)
		return false;
	if (!*p)
		return true;
	for (const char *c = p; *c; c++)
		n += *c == ',';
	out->xip = malloc(n * sizeof *out->xip);
	if (!out->xip)
		abort();
	for (;;) {
		if (!snap_num(&p, &out->xip[out->nxip]))
			break;
		out->nxip++;
		if (*p == '\0')
			return true;
		if (*p++ != ',')
			break;
	}
	free(out->xip);
	out->xip = NULL;
	out->nxip = 0;
	return false;
}

void
pgo_snap_copy(pgo_snap *to, const pgo_snap *from)
{
	free(to->xip);
	*to = *from;
	to->xip = NULL;
	if (from->nxip) {
		to->xip = malloc(from->nxip * sizeof *to->xip);
		if (!to->xip)
			abort();
		memcpy(to->xip, from->xip, from->nxip * sizeof *to->xip);
	}
}

/* Did snapshot s see the (committed) transaction xid? Its 32 bits are
 * placed in the epoch nearest to s's xmax. */
bool
pgo_snap_sees(const pgo_snap *s, uint32_t xid)
{
	int32_t d = (int32_t) (xid - (uint32_t) s->xmax);
	uint64_t x = (uint64_t) ((int64_t) s->xmax + d);

	if (x >= s->xmax)
		return false;
	if (x < s->xmin)
		return true;
	for (size_t i = 0; i < s->nxip; i++)
		if (s->xip[i] == x)
			return false;
	return true;
}
