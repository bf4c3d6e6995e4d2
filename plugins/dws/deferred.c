/*
 * deferred.c - a table created for the full phase gets its primary key and
 * indexes after its copy (as pg_restore does): their DDL waits in
 * STATE.syncd_ddl, recorded with the table's creation, and runs in the
 * transaction that finishes the copy (or at start when there is no full
 * phase).
 */
#define _GNU_SOURCE /* asprintf */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dws.h"

dws_rc
dws_ddl_pending(dws_worker *w, const char *schema, const char *table,
                bool *pending)
{
	dws_state *s = w->s;
	const char *params[4] = {s->state_schema, s->job, schema, table};
	bool exists = false;
	PGresult *r = NULL;
	char *q;
	dws_buf sql = {0};
	dws_rc rc;

	*pending = false;
	if (!dws_bool_query(
	        w, "looking up the table of deferred keys",
	        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c "
	        "JOIN pg_catalog.pg_namespace n ON n.oid = "
	        "c.relnamespace WHERE n.nspname = $1 AND c.relname "
	        "= 'syncd_ddl')",
	        1, params, &exists))
		return DWS_FATAL;
	if (!exists)
		return DWS_OK;
	q = dws_qualified(w, s->state_schema, "syncd_ddl");
	dws_buf_printf(&sql,
	               "SELECT 1 FROM %s WHERE job = $1 AND target_schema = $2 "
	               "AND target_table = $3",
	               q);
	rc = dws_exec(w, "looking up deferred keys", sql.data, 3, params + 1,
	              &r);
	if (rc == DWS_OK)
		*pending = PQntuples(r) > 0;
	if (r)
		PQclear(r);
	dws_buf_free(&sql);
	free(q);
	return rc;
}

dws_rc
dws_ddl_apply(dws_worker *w, const char *schema, const char *table)
{
	dws_state *s = w->s;
	const char *params[3] = {s->job, schema, table};
	PGresult *r = NULL;
	bool pending = false;
	char *q, *what = NULL;
	dws_buf sql = {0};
	dws_rc rc = dws_ddl_pending(w, schema, table, &pending);

	if (rc != DWS_OK || !pending)
		return rc;
	q = dws_qualified(w, s->state_schema, "syncd_ddl");
	dws_buf_printf(&sql,
	               "SELECT ddl FROM %s WHERE job = $1 AND target_schema = "
	               "$2 AND target_table = $3",
	               q);
	if (asprintf(&what,
	             "creating the primary key and indexes of target table "
	             "%s.%s",
	             schema, table) < 0)
		abort();
	rc = dws_exec(w, what, sql.data, 3, params, &r);
	if (rc == DWS_OK && PQntuples(r) == 1)
		rc = dws_exec(w, what, PQgetvalue(r, 0, 0), 0, NULL, NULL);
	if (rc == DWS_OK) {
		dws_buf_reset(&sql);
		dws_buf_printf(
		    &sql,
		    "DELETE FROM %s WHERE job = $1 AND target_schema "
		    "= $2 AND target_table = $3",
		    q);
		rc = dws_exec(w, what, sql.data, 3, params, NULL);
	}
	if (rc == DWS_OK)
		SYNCD_LOG_INFO(
		    s->host,
		    "target table %s.%s: primary key and indexes created after "
		    "its copy",
		    schema, table);
	if (r)
		PQclear(r);
	dws_buf_free(&sql);
	free(what);
	free(q);
	return rc;
}
