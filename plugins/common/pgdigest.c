/*
 * plugins/common/pgdigest.c - see pgdigest.h.
 */
#define _GNU_SOURCE /* asprintf */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgdigest.h"
#include "relcopy.h"

typedef struct pgd_buf {
	char *data;
	size_t len, cap;
	bool failed;
} pgd_buf;

static void pgd_printf(pgd_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
pgd_printf(pgd_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		n = vsnprintf(b->data ? b->data + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
			return;
		}
		if ((size_t) n < room) {
			b->len += (size_t) n;
			return;
		}
		b->cap = (b->cap + (size_t) n + 1) * 2;
		b->data = realloc(b->data, b->cap);
		if (!b->data)
			abort();
	}
}

/* Identifier and literal quoting by the server's rules. */
static bool
pgd_ident(PGconn *c, pgd_buf *b, const char *name)
{
	char *q = PQescapeIdentifier(c, name, strlen(name));
	if (!q)
		return false;
	pgd_printf(b, "%s", q);
	PQfreemem(q);
	return true;
}

static bool
pgd_literal(PGconn *c, pgd_buf *b, const char *text)
{
	char *q = PQescapeLiteral(c, text, strlen(text));
	if (!q)
		return false;
	pgd_printf(b, "%s", q);
	PQfreemem(q);
	return true;
}

/* Whether a column of this type compares with a collation. */
static bool
pgd_collatable(const syncd_column *col)
{
	static const char *const text[] = {"text", "character", "varchar",
	                                   "char", "bpchar", "citext"};
	const char *t = col->type_name ? col->type_name : "";

	if (col->type_oid == 25 || col->type_oid == 1042 ||
	    col->type_oid == 1043)
		return true;
	for (size_t i = 0; i < sizeof text / sizeof text[0]; i++)
		if (strncmp(t, text[i], strlen(text[i])) == 0 &&
		    strchr("( ", t[strlen(text[i])]) != NULL)
			return true;
	return false;
}

/* How many key columns the range compares. */
static uint32_t
pgd_range_keys(const syncd_digest_request *req)
{
	if (SYNCD_HAS(req, range_keys) && req->range_keys &&
	    req->range_keys < req->nkeys)
		return req->range_keys;
	return req->nkeys;
}

/* The key as a row: (k1 COLLATE "C", k2 ...), its range part. */
static bool
pgd_key(PGconn *c, pgd_buf *b, const syncd_digest_request *req)
{
	pgd_printf(b, "ROW(");
	for (uint32_t i = 0; i < pgd_range_keys(req); i++) {
		const syncd_column *col = relcopy_col(req->rel, req->keys[i]);
		if (i)
			pgd_printf(b, ", ");
		if (!pgd_ident(c, b, col->name))
			return false;
		if (pgd_collatable(col))
			pgd_printf(b, " COLLATE \"C\"");
	}
	pgd_printf(b, ")");
	return true;
}

static bool
pgd_bound(PGconn *c, pgd_buf *b, const syncd_digest_request *req,
          const char *op, const char *const *v)
{
	pgd_printf(b, " AND ");
	if (!pgd_key(c, b, req))
		return false;
	pgd_printf(b, " %s ROW(", op);
	for (uint32_t i = 0; i < pgd_range_keys(req); i++) {
		if (i)
			pgd_printf(b, ", ");
		if (!v[i]) {
			pgd_printf(b, "NULL");
			continue;
		}
		if (!pgd_literal(c, b, v[i]))
			return false;
	}
	pgd_printf(b, ")");
	return true;
}

/* The hash of a row over req->cols (see syncd_digest_request). */
static bool
pgd_hash(PGconn *c, pgd_buf *b, const syncd_digest_request *req)
{
	pgd_printf(b, "('x' || substr(md5(''");
	for (uint32_t i = 0; i < req->ncols; i++) {
		const syncd_column *col = relcopy_col(req->rel, req->cols[i]);
		pgd_buf q = {0};
		if (!pgd_ident(c, &q, col->name)) {
			free(q.data);
			return false;
		}
		pgd_printf(b,
		           " || CASE WHEN %s IS NULL THEN 'N' ELSE 'V' || "
		           "octet_length(%s::text) || ':' || %s::text END",
		           q.data, q.data, q.data);
		free(q.data);
	}
	pgd_printf(b, "), 1, 16))::bit(64)::bigint");
	return true;
}

/* FROM schema.table WHERE range [AND present] */
static bool
pgd_from(PGconn *c, pgd_buf *b, const char *schema, const char *table,
         const syncd_digest_request *req)
{
	pgd_printf(b, " FROM ");
	if (!pgd_ident(c, b, schema))
		return false;
	pgd_printf(b, ".");
	if (!pgd_ident(c, b, table))
		return false;
	pgd_printf(b, " WHERE true");
	if (req->lo && !pgd_bound(c, b, req, ">", req->lo))
		return false;
	if (req->hi && !pgd_bound(c, b, req, "<=", req->hi))
		return false;
	if (req->absent_if != UINT32_MAX && req->absent_if < req->rel->ncolumns) {
		pgd_printf(b, " AND ");
		if (!pgd_ident(c, b, relcopy_col(req->rel, req->absent_if)->name))
			return false;
		pgd_printf(b, " IS NOT TRUE");
	}
	return true;
}

static bool
pgd_keys_text(PGconn *c, pgd_buf *b, const syncd_digest_request *req)
{
	for (uint32_t i = 0; i < req->nkeys; i++) {
		if (i)
			pgd_printf(b, ", ");
		if (!pgd_ident(c, b, relcopy_col(req->rel, req->keys[i])->name))
			return false;
		pgd_printf(b, "::text");
	}
	return true;
}

static bool
pgd_order(PGconn *c, pgd_buf *b, const syncd_digest_request *req)
{
	for (uint32_t i = 0; i < req->nkeys; i++) {
		const syncd_column *col = relcopy_col(req->rel, req->keys[i]);
		pgd_printf(b, i ? ", " : "");
		if (!pgd_ident(c, b, col->name))
			return false;
		if (pgd_collatable(col))
			pgd_printf(b, " COLLATE \"C\"");
	}
	return true;
}

/* The statement for req. */
static bool
pgd_sql(PGconn *c, pgd_buf *b, const char *schema, const char *table,
        const syncd_digest_request *req)
{
	switch (req->kind) {
	case SYNCD_DIGEST_SUM:
		pgd_printf(b, "SELECT count(*), coalesce(sum(");
		if (!pgd_hash(c, b, req))
			return false;
		pgd_printf(b, "), 0)::text");
		return pgd_from(c, b, schema, table, req);
	case SYNCD_DIGEST_SPLIT:
		if (req->nkeys == 0 || req->step == 0)
			return false;
		pgd_printf(b, "SELECT * FROM (SELECT ");
		if (!pgd_keys_text(c, b, req))
			return false;
		pgd_printf(b, ", row_number() OVER (ORDER BY ");
		if (!pgd_order(c, b, req))
			return false;
		pgd_printf(b, ") AS syncd_rn");
		if (!pgd_from(c, b, schema, table, req))
			return false;
		pgd_printf(b, ") s WHERE syncd_rn %% %llu = 0 ORDER BY syncd_rn",
		           (unsigned long long) req->step);
		return true;
	case SYNCD_DIGEST_ROWS:
		if (req->nkeys == 0)
			return false;
		pgd_printf(b, "SELECT ");
		if (!pgd_keys_text(c, b, req))
			return false;
		pgd_printf(b, ", (");
		if (!pgd_hash(c, b, req))
			return false;
		pgd_printf(b, ")::text");
		if (!pgd_from(c, b, schema, table, req))
			return false;
		pgd_printf(b, " ORDER BY ");
		return pgd_order(c, b, req);
	case SYNCD_DIGEST_COPY:
		pgd_printf(b, "COPY (SELECT ");
		for (uint32_t i = 0; i < req->rel->ncolumns; i++) {
			if (i)
				pgd_printf(b, ", ");
			if (!pgd_ident(c, b, relcopy_col(req->rel, i)->name))
				return false;
		}
		if (!pgd_from(c, b, schema, table, req))
			return false;
		if (req->nkeys) {
			pgd_printf(b, " ORDER BY ");
			if (!pgd_order(c, b, req))
				return false;
		}
		pgd_printf(b, ") TO STDOUT");
		return true;
	}
	return false;
}

static syncd_status
pgd_failed(PGconn *c, char *err, size_t n, const char *what)
{
	snprintf(err, n, "%s: %s", what, PQerrorMessage(c));
	return PQstatus(c) == CONNECTION_OK ? SYNCD_FATAL : SYNCD_RETRY;
}

syncd_status
pgdigest_run(PGconn *c, const char *schema, const char *table,
             const syncd_digest_request *req, syncd_digest_fn fn, void *ctx,
             char *err, size_t n)
{
	pgd_buf sql = {0};
	PGresult *res;
	syncd_status st = SYNCD_OK;
	const char **key = NULL;

	if (!req || !req->rel || req->ncols > req->rel->ncolumns ||
	    (req->kind == SYNCD_DIGEST_COPY && !req->copy)) {
		snprintf(err, n, "a digest request the plugin cannot answer");
		return SYNCD_FATAL;
	}
	for (uint32_t i = 0; i < req->ncols; i++)
		if (req->cols[i] >= req->rel->ncolumns) {
			snprintf(err, n, "a digest request names column %u "
			                 "of %u",
			         req->cols[i], req->rel->ncolumns);
			return SYNCD_FATAL;
		}
	for (uint32_t i = 0; i < req->nkeys; i++)
		if (req->keys[i] >= req->rel->ncolumns) {
			snprintf(err, n, "a digest request names key column %u "
			                 "of %u",
			         req->keys[i], req->rel->ncolumns);
			return SYNCD_FATAL;
		}
	/* the same text output on both sides */
	res = PQexec(c, "SET DateStyle = ISO; SET IntervalStyle = postgres; "
	                "SET TimeZone = 'UTC'; SET extra_float_digits = 1; "
	                "SET bytea_output = hex");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		PQclear(res);
		return pgd_failed(c, err, n, "setting the output formats");
	}
	PQclear(res);
	if (!pgd_sql(c, &sql, schema, table, req) || sql.failed) {
		free(sql.data);
		if (PQstatus(c) != CONNECTION_OK)
			return pgd_failed(c, err, n, "quoting");
		snprintf(err, n, "a digest request the plugin cannot answer "
		                 "(kind %d, %u key columns)",
		         (int) req->kind, req->nkeys);
		return SYNCD_FATAL;
	}
	if (req->kind == SYNCD_DIGEST_COPY) {
		char *buf = NULL;
		int len;
		res = PQexec(c, sql.data);
		free(sql.data);
		if (PQresultStatus(res) != PGRES_COPY_OUT) {
			PQclear(res);
			return pgd_failed(c, err, n, "reading the rows");
		}
		PQclear(res);
		while ((len = PQgetCopyData(c, &buf, 0)) > 0) {
			if (st == SYNCD_OK)
				st = req->copy(req->copy_ctx, buf, (size_t) len);
			PQfreemem(buf);
		}
		res = PQgetResult(c);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			PQclear(res);
			while ((res = PQgetResult(c)))
				PQclear(res);
			return pgd_failed(c, err, n, "reading the rows");
		}
		PQclear(res);
		while ((res = PQgetResult(c)))
			PQclear(res);
		return st;
	}
	res = PQexec(c, sql.data);
	free(sql.data);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		return pgd_failed(c, err, n, "hashing the rows");
	}
	key = calloc(req->nkeys + 1, sizeof *key);
	if (!key)
		abort();
	for (int r = 0; r < PQntuples(res) && st == SYNCD_OK; r++) {
		syncd_digest_answer a = {.size = sizeof a};
		if (req->kind == SYNCD_DIGEST_SUM) {
			a.count = strtoull(PQgetvalue(res, r, 0), NULL, 10);
			a.hash = PQgetvalue(res, r, 1);
		} else {
			for (uint32_t i = 0; i < req->nkeys; i++)
				key[i] = PQgetisnull(res, r, (int) i)
				             ? NULL
				             : PQgetvalue(res, r, (int) i);
			a.key = key;
			if (req->kind == SYNCD_DIGEST_ROWS)
				a.hash = PQgetvalue(res, r, (int) req->nkeys);
		}
		st = fn(ctx, &a);
	}
	free(key);
	PQclear(res);
	return st;
}
