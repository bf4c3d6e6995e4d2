/*
 * plugins/pgoutput/txbuf.h - buffers of streamed (in-progress) transactions
 * until their Stream Commit or Stream Abort, with bounded memory: beyond a
 * limit, a transaction's messages go to a spill file in the job's state
 * directory. Subtransactions aborted on the way are skipped at replay.
 */
#ifndef PGO_TXBUF_H
#define PGO_TXBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct txbuf txbuf;

/* dir: where spill files go; prefix names them (one prefix per stream);
 * limit: bytes kept in memory over all transactions. Leftover spill files
 * with this prefix are removed. */
txbuf *txbuf_new(const char *dir, const char *prefix, size_t limit, char *err,
                 size_t errlen);
void txbuf_free(txbuf *b);

/* Appends message (len bytes) of subtransaction subxid to top-level xid. */
bool txbuf_add(txbuf *b, uint32_t xid, uint32_t subxid, const char *msg,
               size_t len, char *err, size_t errlen);
/* Stream Abort: the whole transaction (subxid == xid) or one subxact. */
void txbuf_abort(txbuf *b, uint32_t xid, uint32_t subxid);

/* Stream Commit: calls fn for each message of xid, in order, skipping
 * aborted subtransactions, then forgets xid. fn returns false to stop. */
bool txbuf_replay(txbuf *b, uint32_t xid,
                  bool (*fn)(void *ctx, const char *msg, size_t len), void *ctx,
                  char *err, size_t errlen);

size_t txbuf_spilled_bytes(const txbuf *b); /* written to files so far */
size_t txbuf_open(const txbuf *b);          /* transactions buffered */

#endif
