/*
 * dialect.c - every piece of SQL that differs between GaussDB(DWS) and
 * PostgreSQL, and the builders of the statements the sinks run. Names come
 * quoted (libpq's PQescapeIdentifier) in dws_target; values are always
 * parameters or staged rows, never pasted.
 *
 * DWS rules (8.1.1+): ON CONFLICT names its conflict target and takes no
 * WITH clause; the distribution column, which DWS requires to be part of
 * the primary key, is never SET (we never SET a key column); MERGE has one
 * MATCHED and one NOT MATCHED branch and no DELETE.
 */
#define _GNU_SOURCE /* asprintf */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dws.h"

/* ---- buffers and arenas ------------------------------------------------ */

void
dws_buf_add(dws_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->data = realloc(b->data, cap);
		if (!b->data)
			abort();
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
dws_buf_puts(dws_buf *b, const char *s)
{
	dws_buf_add(b, s, strlen(s));
}

void
dws_buf_printf(dws_buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	if ((size_t) n < sizeof small) {
		dws_buf_add(b, small, (size_t) n);
		return;
	}
	dws_buf_add(b, "", 0);
	{
		char *big = malloc((size_t) n + 1);
		if (!big)
			abort();
		va_start(ap, fmt);
		vsnprintf(big, (size_t) n + 1, fmt, ap);
		va_end(ap);
		dws_buf_add(b, big, (size_t) n);
		free(big);
	}
}

void
dws_buf_reset(dws_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void
dws_buf_free(dws_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

struct dws_arena_block {
	dws_arena_block *next;
	size_t used, cap;
	char data[];
};

void *
dws_arena_alloc(dws_arena *a, size_t n)
{
	dws_arena_block *b = a->head;

	n = (n + 15) & ~(size_t) 15;
	if (!b || b->used + n > b->cap) {
		size_t cap = n > 65536 ? n : 65536;
		b = malloc(sizeof *b + cap);
		if (!b)
			abort();
		b->used = 0;
		b->cap = cap;
		b->next = a->head;
		a->head = b;
	}
	b->used += n;
	return b->data + b->used - n;
}

char *
dws_arena_strndup(dws_arena *a, const char *s, size_t n)
{
	char *d = dws_arena_alloc(a, n + 1);
	if (n)
		memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

void
dws_arena_reset(dws_arena *a)
{
	while (a->head) {
		dws_arena_block *next = a->head->next;
		free(a->head);
		a->head = next;
	}
}

/* ---- the dialect table -------------------------------------------------- */

static const char *const dws_gauss_system_columns[] = {
    "ctid",     "xmin",       "cmin", "xmax", "cmax",
    "tableoid", "xc_node_id", "tid",  NULL};
static const char *const dws_pg_system_columns[] = {
    "ctid", "xmin", "cmin", "xmax", "cmax", "tableoid", NULL};

const dws_dialect dws_dialect_pg = {
    .name = "PostgreSQL",
    /* a batch's keys are joined to the target by its primary key: a
     * nested loop over the index costs what the batch holds, whereas the
     * planner, knowing nothing of a fresh staging table, may hash the
     * whole target table for every batch */
    .session_sql = "SET enable_hashjoin = off; SET enable_mergejoin = off",
    .arrays = true,
    .merge_from_stage = false,
    .distribute_by_hash = false,
    .char_length_in_bytes = false,
    .reserved_columns = dws_pg_system_columns,
};

const dws_dialect dws_dialect_dws = {
    .name = "GaussDB(DWS)",
    .merge_from_stage = true,
    .distribute_by_hash = true,
    .char_length_in_bytes = true,
    .index_needs_name = true,
    .reserved_columns = dws_gauss_system_columns,
};

/* GaussDB reports server_version 9.2.4; only version() tells it apart. */
const dws_dialect *
dws_dialect_for(const char *version)
{
	if (version && strstr(version, "GaussDB"))
		return &dws_dialect_dws;
	return &dws_dialect_pg;
}

/* ---- statements -----------------------------------------------------------
 */

static void
dws_col_list(dws_buf *sql, const dws_target *t, const int *cols, int n,
             const char *prefix)
{
	for (int i = 0; i < n; i++) {
		if (i)
			dws_buf_puts(sql, ", ");
		if (prefix)
			dws_buf_puts(sql, prefix);
		dws_buf_puts(sql, t->cols[cols[i]].qname);
	}
}

static void
dws_key_list(dws_buf *sql, const dws_target *t, const char *prefix)
{
	dws_col_list(sql, t, t->keys, t->nkeys, prefix);
}

static int
dws_nonkey_count(const dws_target *t, const int *cols, int n)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		if (!t->cols[cols[i]].key)
			k++;
	return k;
}

/* SET a = EXCLUDED.a, ... over the non-key columns (keys, and with them
 * DWS's distribution columns, are never SET). */
static void
dws_set_list(dws_buf *sql, const dws_target *t, const int *cols, int n,
             const char *from)
{
	bool first = true;
	for (int i = 0; i < n; i++) {
		const dws_col *c = &t->cols[cols[i]];
		if (c->key)
			continue;
		dws_buf_printf(sql, "%s%s = %s.%s", first ? "" : ", ", c->qname,
		               from, c->qname);
		first = false;
	}
}

static void
dws_on_conflict(dws_buf *sql, const dws_target *t, const int *cols, int n)
{
	dws_buf_puts(sql, " ON CONFLICT (");
	dws_key_list(sql, t, NULL);
	if (dws_nonkey_count(t, cols, n) == 0) {
		dws_buf_puts(sql, ") DO NOTHING");
		return;
	}
	dws_buf_puts(sql, ") DO UPDATE SET ");
	dws_set_list(sql, t, cols, n, "EXCLUDED");
}

void
dws_sql_upsert(dws_buf *sql, const dws_dialect *d, const dws_target *t,
               const int *cols, int n, int nrows)
{
	int p = 1;

	(void) d; /* the same statement in both dialects */
	dws_buf_printf(sql, "INSERT INTO %s (", t->qtable);
	dws_col_list(sql, t, cols, n, NULL);
	dws_buf_puts(sql, ") VALUES ");
	for (int r = 0; r < nrows; r++) {
		dws_buf_puts(sql, r ? ", (" : "(");
		for (int i = 0; i < n; i++) {
			const dws_col *c = &t->cols[cols[i]];
			dws_buf_printf(sql, "%s$%d", i ? ", " : "", p++);
			if (c->param)
				dws_buf_printf(sql, "::%s", c->param);
		}
		dws_buf_puts(sql, ")");
	}
	dws_on_conflict(sql, t, cols, n);
}

static void
dws_unnest(dws_buf *sql, int n, const char *alias)
{
	dws_buf_puts(sql, "unnest(");
	for (int i = 0; i < n; i++)
		dws_buf_printf(sql, "%s$%d::text[]", i ? ", " : "", i + 1);
	dws_buf_printf(sql, ") AS %s (", alias);
	for (int i = 0; i < n; i++)
		dws_buf_printf(sql, "%sc%d", i ? ", " : "", i + 1);
	dws_buf_puts(sql, ")");
}

void
dws_sql_upsert_arrays(dws_buf *sql, const dws_target *t, const int *cols, int n)
{
	dws_buf_printf(sql, "INSERT INTO %s (", t->qtable);
	dws_col_list(sql, t, cols, n, NULL);
	dws_buf_puts(sql, ") SELECT ");
	/* a cast to the type without its modifier, so that the column's
	 * own length or precision check applies, as for any INSERT */
	for (int i = 0; i < n; i++) {
		const dws_col *c = &t->cols[cols[i]];
		dws_buf_printf(sql, "%su.c%d::%s", i ? ", " : "", i + 1,
		               c->param ? c->param : c->generic);
	}
	dws_buf_puts(sql, " FROM ");
	dws_unnest(sql, n, "u");
	dws_on_conflict(sql, t, cols, n);
}

void
dws_sql_delete_arrays(dws_buf *sql, const dws_target *t)
{
	dws_buf_printf(sql, "DELETE FROM %s AS t USING ", t->qtable);
	dws_unnest(sql, t->nkeys, "v");
	dws_buf_puts(sql, " WHERE ");
	for (int i = 0; i < t->nkeys; i++) {
		const dws_col *c = &t->cols[t->keys[i]];
		dws_buf_printf(sql, "%st.%s = v.c%d::%s", i ? " AND " : "",
		               c->qname, i + 1, c->generic);
	}
}

void
dws_sql_delete(dws_buf *sql, const dws_dialect *d, const dws_target *t,
               int nrows)
{
	int p = 1;

	(void) d;
	dws_buf_printf(sql, "DELETE FROM %s AS t USING (VALUES ", t->qtable);
	for (int r = 0; r < nrows; r++) {
		dws_buf_puts(sql, r ? ", (" : "(");
		for (int i = 0; i < t->nkeys; i++)
			dws_buf_printf(sql, "%s$%d::%s", i ? ", " : "", p++,
			               t->cols[t->keys[i]].generic);
		dws_buf_puts(sql, ")");
	}
	dws_buf_puts(sql, ") AS v (");
	dws_key_list(sql, t, NULL);
	dws_buf_puts(sql, ") WHERE ");
	for (int i = 0; i < t->nkeys; i++) {
		const char *q = t->cols[t->keys[i]].qname;
		dws_buf_printf(sql, "%st.%s = v.%s", i ? " AND " : "", q, q);
	}
}

/* ---- partial rows: UPDATE of the existing row, never an insert ---------- */

/* The cast of a written value: the column's parameter cast, else its type
 * without modifier (the column's own length check applies, as for an
 * INSERT). */
static const char *
dws_value_cast(const dws_col *c)
{
	return c->param ? c->param : c->generic;
}

/* " WHERE t.k1 = v.cI[::type] AND ...": the key columns among cols
 * (numbered c1 .. cn in v), or the target's keys when cols is NULL. */
static void
dws_key_match(dws_buf *sql, const dws_target *t, const int *cols, int n,
              bool cast)
{
	bool first = true;

	if (!cols)
		n = t->nkeys;
	for (int i = 0; i < n; i++) {
		const dws_col *c = &t->cols[cols ? cols[i] : t->keys[i]];
		if (!c->key)
			continue;
		dws_buf_printf(sql, "%st.%s = v.c%d",
		               first ? " WHERE " : " AND ", c->qname, i + 1);
		if (cast)
			dws_buf_printf(sql, "::%s", c->generic);
		first = false;
	}
}

/* "UPDATE t AS t SET nk = v.cI[::type], ..." over the non-key columns. */
static void
dws_update_set(dws_buf *sql, const dws_target *t, const int *cols, int n,
               bool cast)
{
	bool first = true;

	dws_buf_printf(sql, "UPDATE %s AS t SET ", t->qtable);
	for (int i = 0; i < n; i++) {
		const dws_col *c = &t->cols[cols[i]];
		if (c->key)
			continue;
		dws_buf_printf(sql, "%s%s = v.c%d", first ? "" : ", ", c->qname,
		               i + 1);
		if (cast)
			dws_buf_printf(sql, "::%s", dws_value_cast(c));
		first = false;
	}
}

void
dws_sql_update(dws_buf *sql, const dws_dialect *d, const dws_target *t,
               const int *cols, int n, int nrows)
{
	int p = 1;

	(void) d; /* the same statement in both dialects */
	dws_update_set(sql, t, cols, n, false);
	dws_buf_puts(sql, " FROM (VALUES ");
	for (int r = 0; r < nrows; r++) {
		dws_buf_puts(sql, r ? ", (" : "(");
		for (int i = 0; i < n; i++) {
			const dws_col *c = &t->cols[cols[i]];
			dws_buf_printf(sql, "%s$%d::%s", i ? ", " : "", p++,
			               c->key ? c->generic : dws_value_cast(c));
		}
		dws_buf_puts(sql, ")");
	}
	dws_buf_puts(sql, ") AS v (");
	for (int i = 0; i < n; i++)
		dws_buf_printf(sql, "%sc%d", i ? ", " : "", i + 1);
	dws_buf_puts(sql, ")");
	dws_key_match(sql, t, cols, n, false);
}

void
dws_sql_update_arrays(dws_buf *sql, const dws_target *t, const int *cols, int n)
{
	dws_update_set(sql, t, cols, n, true);
	dws_buf_puts(sql, " FROM ");
	dws_unnest(sql, n, "v");
	dws_key_match(sql, t, cols, n, true);
}

void
dws_sql_update_all(dws_buf *sql, const dws_target *t, const int *cols, int n)
{
	dws_buf_printf(sql, "UPDATE %s SET ", t->qtable);
	for (int i = 0; i < n; i++) {
		const dws_col *c = &t->cols[cols[i]];
		dws_buf_printf(sql, "%s%s = $%d::%s", i ? ", " : "", c->qname,
		               i + 1, c->key ? c->generic : dws_value_cast(c));
	}
}

void
dws_sql_update_stage(dws_buf *sql, const dws_dialect *d, const dws_target *t,
                     const int *cols, int n, int set)
{
	bool first = true;

	(void) d; /* DWS has UPDATE ... FROM too */
	dws_buf_printf(sql, "UPDATE %s AS t SET ", t->qtable);
	for (int i = 0; i < n; i++) {
		const dws_col *c = &t->cols[cols[i]];
		if (c->key)
			continue;
		dws_buf_printf(sql, "%s%s = s.%s", first ? "" : ", ", c->qname,
		               c->qname);
		first = false;
	}
	dws_buf_printf(sql,
	               " FROM %s AS s WHERE s.syncd_op <> 'd' AND s.syncd_set "
	               "= %d",
	               t->stage, set);
	for (int i = 0; i < t->nkeys; i++) {
		const char *q = t->cols[t->keys[i]].qname;
		dws_buf_printf(sql, " AND t.%s = s.%s", q, q);
	}
}

/* " WHERE NOT EXISTS (SELECT 1 FROM t WHERE t.k = v.cI ...)" */
static void
dws_absent(dws_buf *sql, const dws_target *t, bool cast)
{
	dws_buf_printf(sql, " WHERE NOT EXISTS (SELECT 1 FROM %s AS t",
	               t->qtable);
	dws_key_match(sql, t, NULL, 0, cast);
	dws_buf_puts(sql, ")");
}

void
dws_sql_missing(dws_buf *sql, const dws_dialect *d, const dws_target *t,
                int nrows)
{
	int p = 1;

	(void) d;
	dws_buf_puts(sql, "SELECT v.syncd_n FROM (VALUES ");
	for (int r = 0; r < nrows; r++) {
		dws_buf_printf(sql, "%s(%d", r ? ", " : "", r + 1);
		for (int i = 0; i < t->nkeys; i++)
			dws_buf_printf(sql, ", $%d::%s", p++,
			               t->cols[t->keys[i]].generic);
		dws_buf_puts(sql, ")");
	}
	dws_buf_puts(sql, ") AS v (syncd_n");
	for (int i = 0; i < t->nkeys; i++)
		dws_buf_printf(sql, ", c%d", i + 1);
	dws_buf_puts(sql, ")");
	dws_absent(sql, t, false);
}

void
dws_sql_missing_arrays(dws_buf *sql, const dws_target *t)
{
	dws_buf_puts(sql, "SELECT v.syncd_n FROM unnest(");
	for (int i = 0; i < t->nkeys; i++)
		dws_buf_printf(sql, "%s$%d::text[]", i ? ", " : "", i + 1);
	dws_buf_puts(sql, ") WITH ORDINALITY AS v (");
	for (int i = 0; i < t->nkeys; i++)
		dws_buf_printf(sql, "c%d, ", i + 1);
	dws_buf_puts(sql, "syncd_n)");
	dws_absent(sql, t, true);
}

/* Rows of a staging table written into the target by key: INSERT ...
 * SELECT ... ON CONFLICT, or MERGE (one MATCHED and one NOT MATCHED
 * branch). where: a filter on the staged rows, or NULL. */
static void
dws_merge_from(dws_buf *sql, const dws_dialect *d, const dws_target *t,
               const int *cols, int n, const char *stage, const char *where)
{
	if (!d->merge_from_stage) {
		dws_buf_printf(sql, "INSERT INTO %s (", t->qtable);
		dws_col_list(sql, t, cols, n, NULL);
		dws_buf_puts(sql, ") SELECT ");
		dws_col_list(sql, t, cols, n, NULL);
		dws_buf_printf(sql, " FROM %s%s%s", stage,
		               where ? " WHERE " : "", where ? where : "");
		dws_on_conflict(sql, t, cols, n);
		return;
	}
	/* MERGE INTO t USING (staged rows) s ON (keys) WHEN MATCHED THEN
	 * UPDATE ... WHEN NOT MATCHED THEN INSERT ... */
	dws_buf_printf(sql, "MERGE INTO %s AS t USING (SELECT ", t->qtable);
	dws_col_list(sql, t, cols, n, NULL);
	dws_buf_printf(sql, " FROM %s%s%s) AS s ON (", stage,
	               where ? " WHERE " : "", where ? where : "");
	for (int i = 0; i < t->nkeys; i++) {
		const char *q = t->cols[t->keys[i]].qname;
		dws_buf_printf(sql, "%st.%s = s.%s", i ? " AND " : "", q, q);
	}
	dws_buf_puts(sql, ")");
	if (dws_nonkey_count(t, cols, n) > 0) {
		dws_buf_puts(sql, " WHEN MATCHED THEN UPDATE SET ");
		dws_set_list(sql, t, cols, n, "s");
	}
	dws_buf_puts(sql, " WHEN NOT MATCHED THEN INSERT (");
	dws_col_list(sql, t, cols, n, NULL);
	dws_buf_puts(sql, ") VALUES (");
	dws_col_list(sql, t, cols, n, "s.");
	dws_buf_puts(sql, ")");
}

void
dws_sql_merge_stage(dws_buf *sql, const dws_dialect *d, const dws_target *t,
                    const int *cols, int n, int set)
{
	char where[64];

	snprintf(where, sizeof where, "syncd_op <> 'd' AND syncd_set = %d",
	         set);
	dws_merge_from(sql, d, t, cols, n, t->stage, where);
}

void
dws_sql_full_stage(dws_buf *sql, const dws_dialect *d, const dws_target *t,
                   const char *stage, bool by_key)
{
	int *cols = malloc(((size_t) t->ncols + 1) * sizeof *cols);

	if (!cols)
		abort();
	for (int i = 0; i < t->ncols; i++)
		cols[i] = i;
	if (by_key)
		dws_merge_from(sql, d, t, cols, t->ncols, stage, NULL);
	else {
		dws_buf_printf(sql, "INSERT INTO %s (", t->qtable);
		dws_col_list(sql, t, cols, t->ncols, NULL);
		dws_buf_puts(sql, ") SELECT ");
		dws_col_list(sql, t, cols, t->ncols, NULL);
		dws_buf_printf(sql, " FROM %s", stage);
	}
	free(cols);
}

void
dws_sql_delete_stage(dws_buf *sql, const dws_dialect *d, const dws_target *t)
{
	(void) d;
	dws_buf_printf(sql,
	               "DELETE FROM %s AS t USING %s AS s WHERE s.syncd_op "
	               "<> 'w'",
	               t->qtable, t->stage);
	for (int i = 0; i < t->nkeys; i++) {
		const char *q = t->cols[t->keys[i]].qname;
		dws_buf_printf(sql, " AND t.%s = s.%s", q, q);
	}
}

/* ---- types and time zones ------------------------------------------------ */

/* The type to create a column with: the source's, or its base type when
 * it is an enum or a domain; with the DWS dialect, character lengths in
 * bytes (four per character: any UTF-8 character fits). */
char *
dws_create_type(const dws_dialect *d, const syncd_column *c,
                const char *base_type_name)
{
	const char *t = base_type_name ? base_type_name : c->type_name;
	static const char *const sized[] = {"character varying(", "character(",
	                                    NULL};
	char *out = NULL;

	if (!t)
		return NULL;
	if (d->char_length_in_bytes)
		for (size_t i = 0; sized[i]; i++) {
			size_t n = strlen(sized[i]);
			long len;
			char *end;
			if (strncmp(t, sized[i], n) != 0)
				continue;
			len = strtol(t + n, &end, 10);
			if (strcmp(end, ")") != 0)
				break;
			len *= 4;
			if (len > 10485760)
				len = 10485760;
			if (asprintf(&out, "%.*s%ld)", (int) n, t, len) < 0)
				return NULL;
			return out;
		}
	return strdup(t);
}

/* [UTC|GMT][+|-]H[H][[:]MM] with ISO signs (east is +), or an IANA name. */
char *
dws_timezone_sql(const char *spec, char **err)
{
	const char *p = spec;
	char out[128];

	*err = NULL;
	if (strncmp(p, "UTC", 3) == 0 || strncmp(p, "GMT", 3) == 0)
		p += 3;
	if (*p == '\0' || strcmp(spec, "Z") == 0)
		return strdup("SET TIME ZONE 'UTC'");
	if ((*p == '+' || *p == '-') && p != spec + strlen(spec)) {
		char sign = *p++;
		int h = 0, m = 0, nd = 0;
		while (isdigit((unsigned char) *p) && nd < 2) {
			h = h * 10 + (*p++ - '0');
			nd++;
		}
		if (nd == 0)
			goto bad;
		if (*p == ':')
			p++;
		if (isdigit((unsigned char) p[0]) &&
		    isdigit((unsigned char) p[1])) {
			m = (p[0] - '0') * 10 + (p[1] - '0');
			p += 2;
		}
		if (*p || h > 15 || m > 59)
			goto bad;
		snprintf(out, sizeof out,
		         "SET TIME ZONE INTERVAL '%c%02d:%02d' HOUR TO MINUTE",
		         sign, h, m);
		return strdup(out);
	}
	/* an IANA name: letters, digits, / _ - + */
	for (p = spec; *p; p++)
		if (!isalnum((unsigned char) *p) && !strchr("/_-+", *p))
			goto bad;
	if (strlen(spec) > 64)
		goto bad;
	snprintf(out, sizeof out, "SET TIME ZONE '%s'", spec);
	return strdup(out);
bad:
	if (asprintf(err,
	             "sink.server.timezone = %s is not a time zone; write "
	             "UTC+08:00, -05:30, UTC or an IANA name such as "
	             "Asia/Shanghai",
	             spec) < 0)
		*err = NULL;
	return NULL;
}
