/*
 * plugins/pgoutput/txbuf.c - see txbuf.h.
 *
 * Each transaction keeps its messages in one growing memory block of
 * records [subxid u32][len u32][bytes]. When the memory of all of them
 * passes the limit, the largest one moves to its spill file (same record
 * format) and from then on appends there. Replay reads the block or the
 * file sequentially.
 */
#include "txbuf.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct tx {
	uint32_t xid;
	char *mem; /* records, while in memory */
	size_t len, cap;
	FILE *file; /* once spilled */
	char *path;
	uint32_t *aborted; /* aborted subtransactions */
	size_t naborted;
} tx;

struct txbuf {
	char *dir, *prefix;
	size_t limit, memory, spilled;
	tx *txs;
	size_t ntxs;
};

static tx *
txbuf_find(txbuf *b, uint32_t xid)
{
	for (size_t i = 0; i < b->ntxs; i++)
		if (b->txs[i].xid == xid)
			return &b->txs[i];
	return NULL;
}

txbuf *
txbuf_new(const char *dir, const char *prefix, size_t limit, char *err,
          size_t errlen)
{
	txbuf *b = calloc(1, sizeof *b);
	DIR *d;
	struct dirent *de;

	if (!b) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	b->dir = strdup(dir);
	b->prefix = strdup(prefix);
	b->limit = limit;
	/* spill files of an earlier run are never needed: the transactions
	 * they held come again from the slot */
	d = opendir(dir);
	if (d) {
		size_t n = strlen(prefix);
		while ((de = readdir(d)) != NULL) {
			size_t l = strlen(de->d_name);
			if (strncmp(de->d_name, prefix, n) == 0 && l > 6 &&
			    strcmp(de->d_name + l - 6, ".spill") == 0) {
				char path[4096];
				snprintf(path, sizeof path, "%s/%s", dir,
				         de->d_name);
				unlink(path);
			}
		}
		closedir(d);
	}
	return b;
}

static void
tx_release(txbuf *b, tx *t)
{
	b->memory -= t->len;
	free(t->mem);
	if (t->file) {
		fclose(t->file);
		unlink(t->path);
	}
	free(t->path);
	free(t->aborted);
	*t = b->txs[--b->ntxs];
}

void
txbuf_free(txbuf *b)
{
	if (!b)
		return;
	while (b->ntxs)
		tx_release(b, &b->txs[0]);
	free(b->txs);
	free(b->dir);
	free(b->prefix);
	free(b);
}

static bool
tx_spill(txbuf *b, tx *t, char *err, size_t errlen)
{
	char path[4096];

	snprintf(path, sizeof path, "%s/%s%u.spill", b->dir, b->prefix, t->xid);
	t->file = fopen(path, "w+");
	if (!t->file) {
		snprintf(
		    err, errlen,
		    "cannot create spill file %s: %s; make [job] state_dir "
		    "writable and large enough for big transactions",
		    path, strerror(errno));
		return false;
	}
	t->path = strdup(path);
	if (t->len && fwrite(t->mem, 1, t->len, t->file) != t->len) {
		snprintf(err, errlen, "cannot write spill file %s: %s", path,
		         strerror(errno));
		return false;
	}
	b->spilled += t->len;
	b->memory -= t->len;
	free(t->mem);
	t->mem = NULL;
	t->len = t->cap = 0;
	return true;
}

bool
txbuf_add(txbuf *b, uint32_t xid, uint32_t subxid, const char *msg, size_t len,
          char *err, size_t errlen)
{
	tx *t = txbuf_find(b, xid);
	uint32_t head[2] = {subxid, (uint32_t) len};

	if (len > UINT32_MAX) {
		snprintf(err, errlen, "message of %zu bytes is too large", len);
		return false;
	}
	if (!t) {
		tx *grown = realloc(b->txs, (b->ntxs + 1) * sizeof *grown);
		if (!grown) {
			snprintf(err, errlen, "out of memory");
			return false;
		}
		b->txs = grown;
		t = &b->txs[b->ntxs++];
		memset(t, 0, sizeof *t);
		t->xid = xid;
	}
	if (t->file) {
		if (fwrite(head, sizeof head, 1, t->file) != 1 ||
		    (len && fwrite(msg, 1, len, t->file) != len)) {
			snprintf(err, errlen, "cannot write spill file %s: %s",
			         t->path, strerror(errno));
			return false;
		}
		b->spilled += sizeof head + len;
		return true;
	}
	if (t->len + sizeof head + len > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		char *p;
		while (cap < t->len + sizeof head + len)
			cap *= 2;
		p = realloc(t->mem, cap);
		if (!p) {
			snprintf(err, errlen, "out of memory");
			return false;
		}
		t->mem = p;
		t->cap = cap;
	}
	memcpy(t->mem + t->len, head, sizeof head);
	memcpy(t->mem + t->len + sizeof head, msg, len);
	t->len += sizeof head + len;
	b->memory += sizeof head + len;

	/* over the limit: the largest transaction in memory goes to disk */
	while (b->memory > b->limit) {
		tx *big = NULL;
		for (size_t i = 0; i < b->ntxs; i++)
			if (!b->txs[i].file &&
			    (!big || b->txs[i].len > big->len))
				big = &b->txs[i];
		if (!big || !tx_spill(b, big, err, errlen))
			return big == NULL;
	}
	return true;
}

void
txbuf_abort(txbuf *b, uint32_t xid, uint32_t subxid)
{
	tx *t = txbuf_find(b, xid);
	uint32_t *a;

	if (!t)
		return;
	if (subxid == xid || subxid == 0) {
		tx_release(b, t);
		return;
	}
	a = realloc(t->aborted, (t->naborted + 1) * sizeof *a);
	if (!a)
		return;
	t->aborted = a;
	t->aborted[t->naborted++] = subxid;
}

static bool
tx_is_aborted(const tx *t, uint32_t subxid)
{
	for (size_t i = 0; i < t->naborted; i++)
		if (t->aborted[i] == subxid)
			return true;
	return false;
}

bool
txbuf_replay(txbuf *b, uint32_t xid,
             bool (*fn)(void *ctx, const char *msg, size_t len), void *ctx,
             char *err, size_t errlen)
{
	tx *t = txbuf_find(b, xid);
	bool ok = true;

	if (!t)
		return true; /* a streamed transaction with nothing for us */
	if (t->file) {
		uint32_t head[2];
		char *msg = NULL;
		size_t cap = 0;

		if (fflush(t->file) != 0 || fseek(t->file, 0, SEEK_SET) != 0) {
			snprintf(err, errlen, "cannot read spill file %s: %s",
			         t->path, strerror(errno));
			ok = false;
		}
		while (ok && fread(head, sizeof head, 1, t->file) == 1) {
			if (head[1] > cap) {
				char *p = realloc(msg, head[1]);
				if (!p) {
					snprintf(err, errlen, "out of memory");
					ok = false;
					break;
				}
				msg = p;
				cap = head[1];
			}
			if (head[1] &&
			    fread(msg, 1, head[1], t->file) != head[1]) {
				snprintf(err, errlen,
				         "spill file %s is cut short", t->path);
				ok = false;
				break;
			}
			if (!tx_is_aborted(t, head[0]) &&
			    !fn(ctx, msg, head[1]))
				ok = false;
		}
		free(msg);
	} else {
		for (size_t pos = 0; ok && pos < t->len;) {
			uint32_t head[2];
			memcpy(head, t->mem + pos, sizeof head);
			if (!tx_is_aborted(t, head[0]) &&
			    !fn(ctx, t->mem + pos + sizeof head, head[1]))
				ok = false;
			pos += sizeof head + head[1];
		}
	}
	tx_release(b, t);
	return ok;
}

size_t
txbuf_spilled_bytes(const txbuf *b)
{
	return b->spilled;
}

size_t
txbuf_open(const txbuf *b)
{
	return b ? b->ntxs : 0;
}
