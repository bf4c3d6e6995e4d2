/*
 * plugins/pgoutput/proto.h - decoding of pgoutput messages (protocol
 * versions 1 to 4) and of the replication protocol's CopyData envelopes.
 *
 * The decoder never trusts its input: every read is bounds-checked, unknown
 * message types, tuple kinds and flags are errors, and an error says what
 * was wrong at which offset. Decoded strings and values point into the
 * caller's buffer (valid while it is); arrays live in the decoder and are
 * reused by the next call.
 */
#ifndef PGO_PROTO_H
#define PGO_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Microseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
#define PGO_EPOCH_OFFSET_US 946684800000000LL

typedef struct pgo_value {
	/* 'n' null, 'u' unchanged TOAST, 't' text; 'b' (binary) is refused:
	 * syncd never asks for binary values */
	char kind;
	uint32_t len;
	const char *data;
} pgo_value;

typedef struct pgo_tuple {
	uint16_t ncols;
	pgo_value *cols;
} pgo_tuple;

typedef struct pgo_attr {
	uint8_t flags; /* 1: part of the replica identity key */
	const char *name;
	uint32_t typid;
	int32_t typmod;
} pgo_attr;

typedef struct pgo_msg {
	char type; /* 'B','C','O','R','Y','I','U','D','T','M','S','E','c','A' */
	bool has_xid; /* inside a stream block: xid is the (sub)transaction's */
	uint32_t xid;
	uint64_t lsn; /* B: final LSN; C, c: commit LSN; M: message LSN; O */
	uint64_t end_lsn; /* C, c */
	int64_t time; /* B, C, c: commit time, PostgreSQL epoch, microseconds */
	uint8_t flags;  /* C, c (must be 0); M: 1 = transactional; T: options */
	uint32_t relid; /* R, I, U, D */
	/* R */
	const char *nspname, *relname;
	char replident;
	uint16_t natts;
	pgo_attr *atts;
	/* Y */
	uint32_t typid;
	const char *typname;
	/* I, U, D: old is 'K' (key), 'O' (old row) or 0 */
	char old_kind;
	pgo_tuple old_tuple, new_tuple;
	/* T */
	uint32_t nrels;
	uint32_t *relids;
	/* M */
	const char *prefix;
	uint32_t content_len;
	const char *content;
	/* O */
	const char *origin;
	/* S */
	bool first_segment;
	/* A */
	uint32_t subxid;
	uint64_t abort_lsn; /* v4 parallel streaming only */
	int64_t abort_time;
} pgo_msg;

typedef struct pgo_decoder {
	int proto_version; /* 1..4 */
	bool parallel;  /* streaming = parallel (v4): Stream Abort is longer */
	bool in_stream; /* between Stream Start and Stream Stop */
	/* reused storage */
	pgo_value *vals;
	size_t nvals;
	pgo_attr *atts;
	size_t natts;
	uint32_t *relids;
	size_t nrelids;
} pgo_decoder;

void pgo_decoder_init(pgo_decoder *d, int proto_version);
void pgo_decoder_free(pgo_decoder *d);

/* Decodes one pgoutput message. Returns true, or false with err set to a
 * message naming the problem and its offset. Tracks Stream Start/Stop. */
bool pgo_decode(pgo_decoder *d, const char *buf, size_t len, pgo_msg *m,
                char *err, size_t errlen);

/* The replication protocol's CopyData messages. */
typedef struct pgo_copydata {
	char type;            /* 'w' XLogData, 'k' primary keepalive */
	uint64_t wal_start;   /* w */
	uint64_t wal_end;     /* w, k: the server's end of WAL */
	int64_t send_time;    /* w, k */
	bool reply_requested; /* k */
	const char *data;     /* w: the pgoutput message */
	size_t len;
} pgo_copydata;

bool pgo_decode_copydata(const char *buf, size_t len, pgo_copydata *c,
                         char *err, size_t errlen);

/* Builds a standby status update ('r') in out[34]. */
void pgo_standby_status(char out[34], uint64_t written, uint64_t flushed,
                        uint64_t applied, int64_t now_pg_us, bool reply);

/* An MVCC snapshot as txid_current_snapshot() prints it (xmin:xmax:xip,
 * ...): which transactions a catalog read saw. */
typedef struct pgo_snap {
	uint64_t xmin, xmax;
	uint64_t *xip; /* malloc'd */
	size_t nxip;
} pgo_snap;

/* Parses "xmin:xmax:xip,xip,..." into out (free out->xip); false when it
 * is not one. */
bool pgo_snap_parse(const char *text, pgo_snap *out);
/* to = a copy of from; to's old list is freed. */
void pgo_snap_copy(pgo_snap *to, const pgo_snap *from);
/* Did snapshot s see the committed transaction xid (32 bits, as pgoutput
 * sends it: placed in the epoch nearest to s's xmax)? */
bool pgo_snap_sees(const pgo_snap *s, uint32_t xid);

#endif
