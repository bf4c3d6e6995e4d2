/*
 * plugins/pgoutput/links.c - the partition links a job has checked, kept
 * across restarts (partitions = root).
 *
 * A partition ATTACHed with rows it already held sends no change for them:
 * the partition watch (pgo_watch_partitions) sees the new link and has the
 * core copy the root again. What the watch has checked is written to
 * STATE_DIR/pgoutput-SLOT.links, one "root leaf link-xmin" line per leaf,
 * and only once every re-copy it asked for has started (snapshot_tables():
 * the core recorded the request in STATE_DIR/resync before, and keeps it
 * there until the copy is done): a kill -9 before that leaves the link out
 * of the file, so the first watch of the next start checks it again,
 * however far the slot has gone since. A core that cannot copy (its sink
 * has no copy operations) never starts one: each start names the root
 * again. Without the file (the job's first start, a slot
 * made anew), a link the slot has not passed is checked.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgo.h"

#define PGO_LINKS_HEADER "syncd pgoutput partition links 1\n"

/* Writes data to path whole or not at all (a temporary file, fsync'd,
 * renamed); false with errno set when it could not. */
bool
pgo_write_file(const char *path, const char *data)
{
	char tmp[1100];
	FILE *f;
	bool ok;
	int err;

	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	f = fopen(tmp, "w");
	ok = f && fputs(data, f) >= 0;
	ok = f && fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
	if (f && fclose(f) != 0)
		ok = false;
	if (ok && rename(tmp, path) != 0)
		ok = false;
	if (!ok) {
		err = errno;
		unlink(tmp);
		errno = err;
	}
	return ok;
}

static void
pgo_links_path(pgo_db *db, char *path, size_t n)
{
	snprintf(path, n, "%s/pgoutput-%s.links", db->src->host->job->state_dir,
	         db->slot ? db->slot : "");
}

/* Forgets what the state directory notes of the slot (it was dropped, made
 * again, or is new): its received position and its checked links. */
void
pgo_forget_slot_notes(pgo_db *db)
{
	static const char *const kinds[] = {"received", "links"};

	for (size_t i = 0; i < 2; i++) {
		char path[1024];
		snprintf(path, sizeof path, "%s/pgoutput-%s.%s",
		         db->src->host->job->state_dir, db->slot, kinds[i]);
		if (unlink(path) != 0 && errno != ENOENT)
			SYNCD_LOG_WARNING(db->src->host,
			                  "could not remove %s: %s", path,
			                  strerror(errno));
	}
	db->recv_sent = db->recv_commit = 0;
	db->recv_loaded = true;
	free(db->known);
	db->known = NULL;
	db->nknown = 0;
	db->known_state = 1; /* none */
	free(db->links_saved);
	db->links_saved = NULL;
}

static void
pgo_links_load(pgo_db *db)
{
	char path[1024], line[128];
	FILE *f;
	bool ok;

	db->known_state = 1;
	pgo_links_path(db, path, sizeof path);
	f = fopen(path, "r");
	if (!f) {
		if (errno != ENOENT)
			SYNCD_LOG_WARNING(
			    db->src->host,
			    "could not read %s: %s; partitions "
			    "attached while the job was stopped "
			    "are checked only if the slot has not "
			    "passed them",
			    path, strerror(errno));
		return;
	}
	ok = fgets(line, sizeof line, f) && strcmp(line, PGO_LINKS_HEADER) == 0;
	while (ok && fgets(line, sizeof line, f)) {
		unsigned long root, leaf;
		char link[16];
		pgo_known *k;
		if (sscanf(line, "%lu %lu %15s", &root, &leaf, link) != 3) {
			ok = false;
			break;
		}
		db->known =
		    realloc(db->known, (db->nknown + 1) * sizeof *db->known);
		if (!db->known)
			abort();
		k = &db->known[db->nknown++];
		k->root = (uint32_t) root;
		k->leaf = (uint32_t) leaf;
		memcpy(k->link, link, sizeof k->link);
	}
	fclose(f);
	if (!ok) {
		SYNCD_LOG_WARNING(db->src->host,
		                  "%s is not as syncd writes it; it is "
		                  "ignored: partitions attached while the job "
		                  "was stopped are checked only if the slot "
		                  "has not passed them",
		                  path);
		free(db->known);
		db->known = NULL;
		db->nknown = 0;
		return;
	}
	db->known_state = 2;
}

int
pgo_link_known(pgo_db *db, uint32_t root, uint32_t leaf, const char *link)
{
	if (db->known_state == 0)
		pgo_links_load(db);
	if (db->known_state != 2)
		return -1;
	for (size_t i = 0; i < db->nknown; i++)
		if (db->known[i].root == root && db->known[i].leaf == leaf)
			return strcmp(db->known[i].link, link) == 0;
	return 0;
}

/* Writes the links the watch has checked, unless a re-copy it asked for has
 * not started yet. */
void
pgo_links_save(pgo_db *db)
{
	char path[1024];
	pgo_sb sb = {0};

	if (!db->via_root || !db->leaves_read || !db->slot)
		return;
	for (size_t i = 0; i < db->ntables; i++)
		if (db->tables[i].recopy)
			return;
	pgo_sb_printf(&sb, "%s", PGO_LINKS_HEADER);
	for (size_t i = 0; i < db->nleaves; i++)
		if (db->leaves[i].link)
			pgo_sb_printf(&sb, "%u %u %s\n", db->leaves[i].root,
			              db->leaves[i].oid, db->leaves[i].link);
	if (db->links_saved && strcmp(db->links_saved, sb.data) == 0) {
		free(sb.data);
		return;
	}
	pgo_links_path(db, path, sizeof path);
	if (!pgo_write_file(path, sb.data)) {
		SYNCD_LOG_WARNING(db->src->host,
		                  "database \"%s\": could not write %s: %s; "
		                  "the next start checks the partitions' links "
		                  "again (check the state directory)",
		                  db->dbname, path, strerror(errno));
		free(sb.data);
		return;
	}
	free(db->links_saved);
	db->links_saved = sb.data;
}
