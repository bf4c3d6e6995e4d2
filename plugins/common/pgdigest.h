/*
 * plugins/common/pgdigest.h - the digest() operation (syncd --verify) for
 * a table of a PostgreSQL-family database, shared by the pgoutput source
 * and the DWS sinks so that both sides hash rows the same way (see
 * syncd_digest_request in syncd/plugin.h): the hashes are computed by the
 * server, in one statement per request.
 */
#ifndef SYNCD_PGDIGEST_H
#define SYNCD_PGDIGEST_H

#include <stddef.h>

#include <libpq-fe.h>
#include <syncd/plugin.h>

/* Answers req for the table schema.table on c, whose columns are named by
 * req->rel (names as the server has them). SYNCD_OK, what fn returned if
 * it stopped, or SYNCD_FATAL / SYNCD_RETRY (a lost connection) with the
 * reason in err. */
syncd_status pgdigest_run(PGconn *c, const char *schema, const char *table,
                          const syncd_digest_request *req, syncd_digest_fn fn,
                          void *ctx, char *err, size_t n);

#endif
