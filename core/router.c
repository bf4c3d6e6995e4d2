/*
 * core/router.c - see router.h.
 */
#include "config.h"

#include "router.h"
#include "util.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

const logical_table *
router_logical_table(const job *j, const char *database, const char *table)
{
	for (size_t i = 0; i < j->nltables; i++) {
		const logical_table *lt = &j->ltables[i];
		if (regexec(&lt->db_re, database ? database : "", 0, NULL, 0) !=
		    0)
			continue;
		if (!table || regexec(&lt->table_re, table, 0, NULL, 0) == 0)
			return lt;
	}
	return NULL;
}

syncd_selection
router_select(const job *j, const char *database, const char *schema,
              const char *table)
{
	(void) schema; /* source_table_filter matches the table's name */
	if (j->nltables == 0)
		return SYNCD_SELECT_OWN;
	if (!database && !table)
		return SYNCD_SELECT_YES;
	return router_logical_table(j, database, table) ? SYNCD_SELECT_YES
	                                                : SYNCD_SELECT_NO;
}

static void
router_fold(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char) (*s - 'A' + 'a');
}

char *
router_name(const char *pattern, const syncd_relation *rel, bool fold)
{
	static const struct {
		const char *var;
		size_t off;
	} vars[] = {
	    {"#{source_db_name}", offsetof(syncd_relation, database)},
	    {"#{source_schema_name}", offsetof(syncd_relation, schema)},
	    {"#{source_table_name}", offsetof(syncd_relation, table)},
	};
	strbuf sb = {0};
	char *s;

	for (const char *c = pattern; *c;) {
		bool done = false;
		for (size_t v = 0; v < 3 && !done; v++) {
			size_t n = strlen(vars[v].var);
			if (strncmp(c, vars[v].var, n) == 0) {
				const char *val =
				    *(const char *const *) ((const char *) rel +
				                            vars[v].off);
				sb_puts(&sb, val ? val : "");
				c += n;
				done = true;
			}
		}
		if (!done) {
			sb_append(&sb, c, 1);
			c++;
		}
	}
	s = sb_steal(&sb);
	if (fold)
		router_fold(s);
	return s;
}

static bool
router_folds(const job *j)
{
	return !optset_num(&j->sink->opts, "sink.field.name.case-sensitive");
}

void
router_target(const job *j, const syncd_relation *rel, char **schema,
              char **table)
{
	const optset *so = &j->sink->opts;
	bool fold = router_folds(j);
	const logical_table *lt =
	    j->nltables ? router_logical_table(j, rel->database, rel->table)
	                : NULL;

	*schema = router_name(optset_str(so, "target.schema"), rel, fold);
	/* the shard scenario: the logical table's name (no variables in it) */
	*table = router_name(lt ? lt->name : optset_str(so, "target.table"),
	                     rel, fold);
}

const syncd_column *
router_column(const syncd_relation *rel, uint32_t i)
{
	size_t stride =
	    rel->columns[0].size ? rel->columns[0].size : sizeof(syncd_column);
	return (const syncd_column *) ((const char *) rel->columns +
	                               i * stride);
}

static char *
router_dup(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

syncd_relation *
router_copy(const job *j, const syncd_relation *src, unsigned flags)
{
	syncd_relation *r = xcalloc(1, sizeof *r);
	syncd_column *cols = xcalloc(src->ncolumns + 1, sizeof *cols);
	bool fold = (flags & ROUTER_SINK) && router_folds(j);
	size_t rsize = src->size < sizeof *r ? src->size : sizeof *r;

	memcpy(r, src, rsize);
	r->size = sizeof *r;
	r->database = router_dup(src->database);
	r->schema = xstrdup(src->schema ? src->schema : "");
	r->table = xstrdup(src->table ? src->table : "");
	if (!(flags & ROUTER_DETAILS) ||
	    rsize < SYNCD_SIZE_THROUGH(syncd_relation, details))
		r->details = NULL;
	for (uint32_t i = 0; i < src->ncolumns; i++) {
		const syncd_column *c = router_column(src, i);
		size_t csize = c->size < sizeof *cols ? c->size : sizeof *cols;
		memcpy(&cols[i], c, csize);
		cols[i].size = sizeof *cols;
		cols[i].name = xstrdup(c->name ? c->name : "");
		if (fold)
			router_fold((char *) cols[i].name);
		cols[i].type_name = router_dup(c->type_name);
		cols[i].default_value = router_dup(c->default_value);
	}
	r->columns = cols;
	router_target(j, r, (char **) &r->target_schema,
	              (char **) &r->target_table);
	return r;
}

void
router_free(syncd_relation *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; i < r->ncolumns; i++) {
		free((char *) r->columns[i].name);
		free((char *) r->columns[i].type_name);
		free((char *) r->columns[i].default_value);
	}
	free((syncd_column *) r->columns);
	free((char *) r->database);
	free((char *) r->schema);
	free((char *) r->table);
	free((char *) r->target_schema);
	free((char *) r->target_table);
	free(r);
}

static uint64_t
router_hash(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;
	if (!h)
		h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* MurmurHash3's finalizer: every bit of h reaches the low bits that pick
 * the worker. FNV-1a alone picks by its lowest bits, and its lowest bit is
 * the parity of the odd bytes of the name: with two workers, tables fell
 * on one worker or the other by the parity of their names' odd letters.
 * Changing it changes which worker has a key: ROUTER_LAYOUT_VERSION says
 * so to the sinks' progress. */
static uint64_t
router_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static int
router_by_table(int n, const syncd_relation *rel)
{
	uint64_t h = 0;
	if (n == 1)
		return 0;
	h = router_hash(h, rel->target_schema, strlen(rel->target_schema) + 1);
	h = router_hash(h, rel->target_table, strlen(rel->target_table));
	return (int) (router_mix(h) % (uint64_t) n);
}

int
router_worker(int n, bool keyby_pk, const syncd_relation *rel,
              const syncd_value *v)
{
	uint64_t h = 0;
	bool any = false;

	if (n == 1)
		return 0;
	if (!keyby_pk || !v)
		return router_by_table(n, rel);
	h = router_hash(h, rel->target_schema, strlen(rel->target_schema) + 1);
	h = router_hash(h, rel->target_table, strlen(rel->target_table) + 1);
	for (uint32_t i = 0; i < rel->ncolumns; i++) {
		if (!(rel->columns[i].flags & SYNCD_COL_KEY))
			continue;
		any = true;
		h = router_hash(h, &v[i].kind, sizeof v[i].kind);
		if (v[i].kind == SYNCD_VALUE_TEXT)
			h = router_hash(h, v[i].data, v[i].len);
	}
	if (!any)
		return router_by_table(n, rel);
	return (int) (router_mix(h) % (uint64_t) n);
}
