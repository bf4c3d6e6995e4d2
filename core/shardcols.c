/*
 * core/shardcols.c - see shardcols.h.
 */
#include "config.h"

#include "log.h"
#include "plugerr.h"
#include "router.h"
#include "shardcols.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Per logical table, the column names known to be on every shard. */
typedef struct shard_known {
	char **names;
	size_t n;
} shard_known;

struct shardcols {
	shard_known *lt; /* j->nltables */
};

/* Stream threads meet here; one job per process. */
static pthread_mutex_t shardcols_lock = PTHREAD_MUTEX_INITIALIZER;

static struct shardcols *
shardcols_get(job *j)
{
	if (!j->shardcols) {
		j->shardcols = xcalloc(1, sizeof *j->shardcols);
		j->shardcols->lt = xcalloc(j->nltables + 1, sizeof(shard_known));
	}
	return j->shardcols;
}

static bool
known_has(const shard_known *k, const char *name)
{
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->names[i], name) == 0)
			return true;
	return false;
}

static void
known_add(shard_known *k, const char *name)
{
	if (known_has(k, name))
		return;
	k->names = xrealloc(k->names, (k->n + 1) * sizeof *k->names);
	k->names[k->n++] = xstrdup(name);
}

void
shardcols_seed(job *j, size_t lt, char *const *names, uint32_t n)
{
	shard_known *k;

	if (lt >= j->nltables)
		return;
	pthread_mutex_lock(&shardcols_lock);
	k = &shardcols_get(j)->lt[lt];
	for (uint32_t i = 0; i < n; i++)
		known_add(k, names[i]);
	pthread_mutex_unlock(&shardcols_lock);
}

void
shardcols_free(job *j)
{
	if (!j->shardcols)
		return;
	for (size_t i = 0; i < j->nltables; i++) {
		shard_known *k = &j->shardcols->lt[i];
		for (size_t c = 0; c < k->n; c++)
			free(k->names[c]);
		free(k->names);
	}
	free(j->shardcols->lt);
	free(j->shardcols);
	j->shardcols = NULL;
}

/* What the shards' catalogs say of the new columns. */
typedef struct shard_look {
	job *j;
	const logical_table *lt;
	const syncd_relation *rel; /* the shard that brought them */
	char **cols;               /* the new columns */
	size_t ncols;
	strbuf lacking; /* "db.schema.table (a, b), ..." */
	size_t nlacking, nshards;
} shard_look;

static syncd_status
shard_look_one(void *ctx, const syncd_relation *r)
{
	shard_look *l = ctx;
	strbuf miss = {0};

	if (router_logical_table(l->j, r->database, r->table) != l->lt)
		return SYNCD_OK;
	l->nshards++;
	for (size_t c = 0; c < l->ncols; c++) {
		bool has = false;
		for (uint32_t i = 0; i < r->ncolumns && !has; i++)
			has = strcmp(r->columns[i].name, l->cols[c]) == 0;
		if (!has)
			sb_printf(&miss, "%s%s", miss.len ? ", " : "",
			          l->cols[c]);
	}
	if (miss.len) {
		sb_printf(&l->lacking, "%s%s.%s.%s (%s)",
		          l->lacking.len ? ", " : "",
		          r->database ? r->database : "", r->schema, r->table,
		          miss.data);
		l->nlacking++;
	}
	sb_free(&miss);
	return SYNCD_OK;
}

static const char *
shard_type(const syncd_relation *rel, const char *name)
{
	for (uint32_t i = 0; i < rel->ncolumns; i++)
		if (strcmp(rel->columns[i].name, name) == 0 &&
		    rel->columns[i].type_name)
			return rel->columns[i].type_name;
	return "TYPE";
}

bool
shardcols_relation(job *j, const syncd_relation *rel)
{
	const logical_table *lt;
	const syncd_source_ops *ops = &j->source->plugin->ops.source;
	shard_look l = {.j = j, .rel = rel};
	shard_known *k;
	int64_t deadline = now_ms() + SHARDCOLS_WAIT_MS;
	bool ok = false, said = false;

	if (!j->nltables || !rel || !ops->list_tables ||
	    !(lt = router_logical_table(j, rel->database, rel->table)))
		return true;
	l.lt = lt;
	pthread_mutex_lock(&shardcols_lock);
	k = &shardcols_get(j)->lt[lt - j->ltables];
	for (uint32_t i = 0; i < rel->ncolumns; i++)
		if (!known_has(k, rel->columns[i].name)) {
			l.cols = xrealloc(l.cols, (l.ncols + 1) * sizeof *l.cols);
			l.cols[l.ncols++] = xstrdup(rel->columns[i].name);
		}
	pthread_mutex_unlock(&shardcols_lock);
	if (l.ncols == 0)
		return true;

	for (;;) {
		syncd_status st;
		sb_free(&l.lacking);
		l.nlacking = l.nshards = 0;
		st = ops->list_tables(j->source->state, shard_look_one, &l);
		if (st != SYNCD_OK) {
			job_fail(j,
			         "[logical_table.%s]: source table %s.%s.%s has "
			         "a new column; the other shards' columns could "
			         "not be read to see whether they have it too: "
			         "%s",
			         lt->name, rel->database ? rel->database : "",
			         rel->schema, rel->table, plugerr_msg(j->source));
			break;
		}
		if (l.nlacking == 0) {
			pthread_mutex_lock(&shardcols_lock);
			for (size_t c = 0; c < l.ncols; c++)
				known_add(k, l.cols[c]);
			pthread_mutex_unlock(&shardcols_lock);
			if (said || l.nshards > 1)
				log_info("[logical_table.%s]: the new column(s) "
				         "of %s.%s.%s are on every shard (%zu): "
				         "the target follows",
				         lt->name, rel->database ? rel->database : "",
				         rel->schema, rel->table, l.nshards);
			ok = true;
			break;
		}
		if (job_stopping(j))
			break;
		if (now_ms() >= deadline) {
			strbuf alter = {0};
			for (size_t c = 0; c < l.ncols; c++)
				sb_printf(&alter, "%sADD COLUMN %s %s",
				          c ? ", " : "", l.cols[c],
				          shard_type(rel, l.cols[c]));
			job_fail(j,
			         "[logical_table.%s]: source table %s.%s.%s has "
			         "new column(s) that other shards of the logical "
			         "table do not have: %s; their target would hold "
			         "them for some shards' rows only. Add them to "
			         "every shard (ALTER TABLE ... %s), or drop them "
			         "from %s.%s.%s, and start the job again (syncd "
			         "waited %d s for the other shards; nothing past "
			         "this change was written)",
			         lt->name, rel->database ? rel->database : "",
			         rel->schema, rel->table, l.lacking.data,
			         alter.data, rel->database ? rel->database : "",
			         rel->schema, rel->table,
			         SHARDCOLS_WAIT_MS / 1000);
			sb_free(&alter);
			break;
		}
		if (!said) {
			log_warning("[logical_table.%s]: source table %s.%s.%s "
			            "has new column(s) that other shards do not "
			            "have yet: %s; its stream waits up to %d s "
			            "for them to get the column(s) too",
			            lt->name,
			            rel->database ? rel->database : "",
			            rel->schema, rel->table, l.lacking.data,
			            SHARDCOLS_WAIT_MS / 1000);
			said = true;
		}
		job_sleep(j, 2000);
	}
	sb_free(&l.lacking);
	for (size_t c = 0; c < l.ncols; c++)
		free(l.cols[c]);
	free(l.cols);
	return ok;
}
