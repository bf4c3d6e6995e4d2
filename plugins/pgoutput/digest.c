/*
 * digest.c - the source operation digest() (syncd --verify): hashes of a
 * table's key ranges, computed by the server on a connection of the
 * stream's database kept for it (see plugins/common/pgdigest.h).
 */
#include <string.h>

#include "../common/pgdigest.h"
#include "pgo.h"

syncd_status
pgo_digest(void *state, const syncd_digest_request *req, syncd_digest_fn fn,
           void *ctx)
{
	pgo *s = state;
	pgo_db *db;
	char err[1024];
	syncd_status st;

	if ((st = pgo_find_dbs(s)) != SYNCD_OK)
		return st;
	if (!(db = pgo_db_of(s, req->stream)))
		return SYNCD_FATAL;
	if (db->dconn && PQstatus(db->dconn) != CONNECTION_OK) {
		PQfinish(db->dconn);
		db->dconn = NULL;
	}
	if (!db->dconn) {
		db->err[0] = '\0';
		db->sqlstate[0] = '\0';
		db->dconn = pgo_connect_within(db, false, "10");
		if (!db->dconn)
			return pgo_report(db, pgo_transient(db->sqlstate)
			                          ? SYNCD_RETRY
			                          : SYNCD_FATAL);
	}
	err[0] = '\0';
	st = pgdigest_run(db->dconn, req->rel->schema, req->rel->table, req,
	                  fn, ctx, err, sizeof err);
	if ((st == SYNCD_FATAL || st == SYNCD_RETRY) && err[0]) {
		pgo_fail(db, NULL, "database \"%s\", table %s.%s: %s",
		         db->dbname, req->rel->schema, req->rel->table, err);
		return pgo_report(db, st);
	}
	return st;
}
