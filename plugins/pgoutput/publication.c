/*
 * plugins/pgoutput/publication.c - the publication: checks, creates or
 * completes the publication of the selected tables.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgo.h"

/* The name to suggest for a publication of syncd's own. */
static void
pgo_own_publication(pgo *s, char *buf, size_t len)
{
	snprintf(buf, len, "syncd_%s", s->host->job->name);
}

/*
 * Checks that the publication publishes every operation and every selected
 * table; with apply and publication.autocreate, creates it or adds what is
 * missing, else fails with the statement that would fix it and who may run
 * it.
 *
 * A publication syncd creates carries the comment "created by syncd job
 * NAME"; one without it is another consumer's (Debezium's default name is
 * ours too) and is never changed: what it lacks is a failure naming the
 * statement its owner must run. Its owner opts in by setting the comment.
 * CREATE PUBLICATION ... FOR TABLE needs CREATE on the database and the
 * ownership of each table; ALTER PUBLICATION ... ADD TABLE the ownership
 * of the publication and of each table: both are checked first.
 */
bool
pgo_publication(pgo_db *db, bool apply, bool *problems)
{
	pgo *s = db->src;
	const char *params[] = {s->publication};
	PGresult *res;
	bool exists, all_tables = false, ops_ok = true, ours = false;
	bool via_root = false, pub_owned = true, may_create, fix_root;
	char *pub = pgo_ident(db->sql, s->publication);
	char *owner = NULL, *role = NULL, *mark = NULL, own[128], sql[1024];
	pgo_sb missing = {0}, others = {0}, parts = {0}, stmt = {0}, need = {0};
	size_t nmissing = 0;
	bool ok = false;

	pgo_own_publication(s, own, sizeof own);
	snprintf(sql, sizeof sql, "created by syncd job %s",
	         s->host->job->name);
	{
		char *q = PQescapeLiteral(db->sql, sql, strlen(sql));
		mark = strdup(q ? q : "''");
		PQfreemem(q);
	}
	snprintf(
	    sql, sizeof sql,
	    "SELECT puballtables, pubinsert AND pubupdate AND pubdelete%s, "
	    "pg_get_userbyid(pubowner), pg_has_role(pubowner, 'USAGE'), "
	    "coalesce(obj_description(oid, 'pg_publication') LIKE "
	    "'created by syncd%%', false), %s FROM pg_publication WHERE "
	    "pubname = $1",
	    db->version >= 110000 ? " AND pubtruncate" : "",
	    db->version >= 130000 ? "pubviaroot" : "false");
	res = pgo_query(db, db->sql, "reading the publication", sql, 1, params);
	if (!res)
		goto done;
	exists = PQntuples(res) == 1;
	if (exists) {
		all_tables = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		ops_ok = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
		owner = strdup(PQgetvalue(res, 0, 2));
		pub_owned = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
		ours = strcmp(PQgetvalue(res, 0, 4), "t") == 0;
		via_root = strcmp(PQgetvalue(res, 0, 5), "t") == 0;
	}
	PQclear(res);
	res = pgo_query(db, db->sql, "reading the role's rights",
	                "SELECT current_user, has_database_privilege("
	                "current_database(), 'CREATE')",
	                0, NULL);
	if (!res)
		goto done;
	role = strdup(PQgetvalue(res, 0, 0));
	may_create = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	PQclear(res);

	/* publish_via_partition_root must match partitions: under true,
	 * pgoutput reports a partition's changes under its published root;
	 * under false, a root's partitions as tables of their own. It
	 * matters once a root (root mode) or a partition (leaf) is synced. */
	for (size_t i = 0; exists && i < db->ntables; i++)
		if (db->via_root ? db->tables[i].root : db->tables[i].partition)
			pgo_sb_printf(&parts, "%s%s.%s", parts.len ? ", " : "",
			              db->tables[i].schema, db->tables[i].name);
	fix_root = parts.len && via_root != db->via_root;
	if (!ops_ok) {
		*problems = true;
		if (ours)
			pgo_fail(
			    db, NULL,
			    "publication %s in database \"%s\" does not "
			    "publish every operation; run ALTER PUBLICATION "
			    "%s SET (publish = 'insert, update, delete, "
			    "truncate')",
			    s->publication, db->dbname, pub);
		else
			pgo_fail(
			    db, NULL,
			    "publication %s in database \"%s\" does not "
			    "publish every operation, and syncd did not "
			    "create it: another consumer may rely on it as "
			    "it is; set [source] publication = %s (a "
			    "publication of syncd's own)",
			    s->publication, db->dbname, own);
		goto done;
	}

	/* the selected tables the publication lacks */
	if (!all_tables) {
		PGresult *have = NULL;
		if (exists) {
			have = pgo_query(
			    db, db->sql, "reading the publication's tables",
			    "SELECT schemaname, tablename FROM "
			    "pg_publication_tables WHERE pubname = $1 UNION "
			    "SELECT n.nspname, c.relname FROM "
			    "pg_publication_rel pr JOIN pg_publication p ON "
			    "p.oid = pr.prpubid JOIN pg_class c ON c.oid = "
			    "pr.prrelid JOIN pg_namespace n ON n.oid = "
			    "c.relnamespace WHERE p.pubname = $1",
			    1, params);
			if (!have)
				goto done;
		}
		for (size_t i = 0; i < db->ntables; i++) {
			pgo_table *t = &db->tables[i];
			bool found = false;
			char *sn, *tn;
			for (int k = 0; have && k < PQntuples(have) && !found;
			     k++)
				found = strcmp(PQgetvalue(have, k, 0),
				               t->schema) == 0 &&
				        strcmp(PQgetvalue(have, k, 1),
				               t->name) == 0;
			/* leaving: dropped, or renamed out of the
			 * publication's view of it */
			if (found || t->leave_lsn)
				continue;
			sn = pgo_ident(db->sql, t->schema);
			tn = pgo_ident(db->sql, t->name);
			pgo_sb_printf(&missing, "%s%s.%s", nmissing ? ", " : "",
			              sn, tn);
			nmissing++;
			if (!t->owned)
				pgo_sb_printf(&others, "%s%s.%s (owner %s)",
				              others.len ? ", " : "", t->schema,
				              t->name, t->owner);
			free(sn);
			free(tn);
		}
		PQclear(have);
	}
	if (nmissing == 0 && exists && !fix_root) {
		if (!ours && s->checking)
			SYNCD_LOG_INFO(
			    s->host,
			    "publication %s in database \"%s\" was not "
			    "created by syncd: syncd reads it and never "
			    "changes it",
			    s->publication, db->dbname);
		ok = true;
		goto done;
	}
	/* only tables syncd can sync are ever added (a primary key, an
	 * identity other than NOTHING), so the application's own UPDATE and
	 * DELETE keep working */
	if (fix_root) {
		pgo_sb_printf(&stmt,
		              "ALTER PUBLICATION %s SET "
		              "(publish_via_partition_root = %s)",
		              pub, db->via_root ? "true" : "false");
		pgo_sb_printf(&need,
		              "is created WITH (publish_via_partition_root = "
		              "%s), which reports %s %s %s (partitions = %s)",
		              via_root ? "true" : "false",
		              db->via_root ? "the partitions of"
		                           : "the changes of the partitions",
		              parts.data,
		              db->via_root ? "as tables of their own"
		                           : "under their partitioned table",
		              db->via_root ? "root" : "leaf");
	}
	if (nmissing) {
		pgo_sb_printf(&stmt, "%s%s PUBLICATION %s %s TABLE %s%s",
		              stmt.len ? "; " : "", exists ? "ALTER" : "CREATE",
		              pub, exists ? "ADD" : "FOR", missing.data,
		              !exists && db->via_root
		                  ? " WITH (publish_via_partition_root = true)"
		                  : "");
		pgo_sb_printf(&need, "%s%s %s", need.len ? " and " : "",
		              exists ? "lacks"
		                     : "does not exist and is needed for",
		              missing.data);
	}
	if (exists && !ours) {
		*problems = true;
		pgo_fail(
		    db, NULL,
		    "publication %s in database \"%s\" %s, and syncd "
		    "did not create it: syncd never changes a publication "
		    "another consumer (such as Debezium, whose default "
		    "name this is) may use; set [source] publication = %s "
		    "for a publication of syncd's own%s%s, or have its owner "
		    "%s run: %s",
		    s->publication, db->dbname, need.data, own,
		    fix_root ? ", or [source] partitions = " : "",
		    fix_root ? (db->via_root ? "leaf" : "root") : "", owner,
		    stmt.data);
		goto done;
	}
	if (!s->autocreate) {
		*problems = true;
		SYNCD_LOG_ERROR(
		    s->host, "publication %s in database \"%s\" %s; fix: %s",
		    s->publication, db->dbname, need.data, stmt.data);
		pgo_fail(db, NULL,
		         "publication %s in database \"%s\" is incomplete (see "
		         "above)",
		         s->publication, db->dbname);
		goto done;
	}
	if (!(exists ? pub_owned : may_create) || others.len) {
		pgo_sb why = {0};
		if (exists && !pub_owned)
			pgo_sb_printf(&why, "the publication is owned by %s",
			              owner);
		if (!exists && !may_create)
			pgo_sb_printf(&why,
			              "it lacks CREATE on database \"%s\"",
			              db->dbname);
		if (others.len)
			pgo_sb_printf(&why, "%sthe tables %s belong to others",
			              why.len ? "; " : "", others.data);
		*problems = true;
		pgo_fail(
		    db, NULL,
		    "publication %s in database \"%s\" %s, and role %s "
		    "may not %s it (%s): have a role that %s run: %s%s%s%s%s",
		    s->publication, db->dbname, need.data, role,
		    exists ? "alter" : "create", why.data,
		    !exists    ? "has CREATE on the database and owns the "
		                 "tables"
		    : nmissing ? "owns the publication and the tables"
		               : "owns the publication",
		    stmt.data, exists ? "" : "; COMMENT ON PUBLICATION ",
		    exists ? "" : pub, exists ? "" : " IS ",
		    exists ? "" : mark);
		free(why.data);
		goto done;
	}
	if (!exists)
		pgo_sb_printf(&stmt, "; COMMENT ON PUBLICATION %s IS %s", pub,
		              mark);
	if (!apply) {
		SYNCD_LOG_INFO(s->host,
		               "publication %s in database \"%s\" %s; syncd "
		               "will run: %s",
		               s->publication, db->dbname, need.data,
		               stmt.data);
		ok = true;
		goto done;
	}
	/* one transaction: a publication syncd creates is always marked */
	{
		PGresult *r = PQexec(db->sql, "BEGIN");
		bool began = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		if (began) {
			r = PQexec(db->sql, stmt.data);
			if (PQresultStatus(r) != PGRES_COMMAND_OK) {
				pgo_fail(db, pgo_sqlstate(r),
				         "%s in database \"%s\" failed: %s",
				         stmt.data, db->dbname,
				         PQerrorMessage(db->sql));
				PQclear(r);
				r = PQexec(db->sql, "ROLLBACK");
			} else {
				PQclear(r);
				r = PQexec(db->sql, "COMMIT");
				ok = PQresultStatus(r) == PGRES_COMMAND_OK;
				if (!ok)
					pgo_fail(
					    db, pgo_sqlstate(r),
					    "%s in database \"%s\" failed: %s",
					    stmt.data, db->dbname,
					    PQerrorMessage(db->sql));
			}
			PQclear(r);
		} else
			pgo_fail(db, NULL,
			         "could not begin a transaction in database "
			         "\"%s\": %s",
			         db->dbname, PQerrorMessage(db->sql));
	}
	if (ok)
		SYNCD_LOG_INFO(s->host, "database \"%s\": %s", db->dbname,
		               stmt.data);
done:
	free(pub);
	free(mark);
	free(owner);
	free(role);
	free(missing.data);
	free(others.data);
	free(parts.data);
	free(stmt.data);
	free(need.data);
	return ok;
}
