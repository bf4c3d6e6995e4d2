/*
 * core/queue.c - see queue.h.
 */
#include "config.h"

#include "queue.h"
#include "util.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUEUE_WAKE_COUNT 64
#define QUEUE_WAKE_BYTES (256 * 1024)

static size_t
item_values_size(const syncd_value *v, uint32_t n)
{
	size_t size = 0;
	if (!v)
		return 0;
	size = n * sizeof(syncd_value);
	for (uint32_t i = 0; i < n; i++)
		if (v[i].kind == SYNCD_VALUE_TEXT)
			size += v[i].len + 1;
	return size;
}

static const syncd_value *
item_values_copy(char **cursor, const syncd_value *v, uint32_t n)
{
	syncd_value *out;
	char *data;

	if (!v)
		return NULL;
	out = (syncd_value *) *cursor;
	data = *cursor + n * sizeof(syncd_value);
	for (uint32_t i = 0; i < n; i++) {
		out[i].kind = v[i].kind;
		out[i].len = 0;
		out[i].data = NULL;
		if (v[i].kind == SYNCD_VALUE_TEXT) {
			if (v[i].len)
				memcpy(data, v[i].data, v[i].len);
			data[v[i].len] = '\0';
			out[i].data = data;
			out[i].len = v[i].len;
			data += v[i].len + 1;
		}
	}
	*cursor = data;
	return out;
}

item *
item_event(const syncd_event *ev, const syncd_relation *rel,
           const syncd_relation *const *rels)
{
	uint32_t n = rel ? rel->ncolumns : 0;
	/* each value array is realigned to 16 bytes: room for that too */
	size_t vsize = item_values_size(ev->old_values, n) +
	               item_values_size(ev->new_values, n) + 32;
	size_t rsize = ev->type == SYNCD_EV_TRUNCATE
	                   ? ev->nrels * sizeof(syncd_relation *)
	                   : 0;
	/* keep the trailing storage aligned for the value arrays */
	size_t head = (sizeof(item) + 15) & ~(size_t) 15;
	item *it = xmalloc(head + rsize + vsize);
	char *cursor = (char *) it + head;

	memset(it, 0, sizeof *it);
	it->kind = ITEM_EVENT;
	it->ev = *ev;
	it->ev.rel = rel;
	it->bytes = head + rsize + vsize;
	if (ev->type == SYNCD_EV_TRUNCATE) {
		const syncd_relation **r = (const syncd_relation **) cursor;
		for (uint32_t i = 0; i < ev->nrels; i++)
			r[i] = rels[i];
		it->ev.rels = r;
		cursor += rsize;
		it->ev.old_values = it->ev.new_values = NULL;
	} else {
		it->ev.rels = NULL;
		it->ev.nrels = 0;
		/* values are arrays of syncd_value followed by their bytes;
		 * align each array */
		it->ev.old_values =
		    item_values_copy(&cursor, ev->old_values, n);
		cursor = (char *) (((uintptr_t) cursor + 15) & ~(uintptr_t) 15);
		it->ev.new_values =
		    item_values_copy(&cursor, ev->new_values, n);
		cursor = (char *) (((uintptr_t) cursor + 15) & ~(uintptr_t) 15);
	}
	return it;
}

item *
item_small(item_kind kind, const syncd_event *ev)
{
	item *it = xcalloc(1, sizeof *it);
	it->kind = kind;
	it->bytes = sizeof *it;
	if (ev)
		it->ev = *ev;
	return it;
}

void
queue_init(queue *q, size_t max_count, size_t max_bytes,
           const atomic_bool *failed)
{
	memset(q, 0, sizeof *q);
	q->max_count = max_count;
	q->max_bytes = max_bytes;
	q->failed = failed;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->nonempty, NULL);
	pthread_cond_init(&q->nonfull, NULL);
}

void
queue_destroy(queue *q)
{
	item *it = q->head, *next;
	for (; it; it = next) {
		next = it->next;
		free(it);
	}
	for (it = q->taken; it; it = next) {
		next = it->next;
		free(it);
	}
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->nonempty);
	pthread_cond_destroy(&q->nonfull);
}

syncd_status
queue_push(queue *q, item *it)
{
	bool control = it->kind == ITEM_FENCE || it->kind == ITEM_LEARN ||
	               it->kind == ITEM_STOP;

	pthread_mutex_lock(&q->lock);
	while (
	    !control && q->count > 0 &&
	    (q->count >= q->max_count || q->bytes + it->bytes > q->max_bytes) &&
	    !atomic_load(q->failed)) {
		/* full: the consumer must take what is there */
		pthread_cond_signal(&q->nonempty);
		pthread_cond_wait(&q->nonfull, &q->lock);
	}
	if (!control && atomic_load(q->failed)) {
		pthread_mutex_unlock(&q->lock);
		free(it);
		return SYNCD_FATAL;
	}
	it->next = NULL;
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->count++;
	q->bytes += it->bytes;
	if (q->waiting &&
	    (control || q->waiting == 2 || q->count >= QUEUE_WAKE_COUNT ||
	     q->bytes >= QUEUE_WAKE_BYTES || q->count >= q->max_count))
		pthread_cond_signal(&q->nonempty);
	pthread_mutex_unlock(&q->lock);
	return SYNCD_OK;
}

/* A timed wait may return what queued meanwhile. */
item *
queue_pop(queue *q, int64_t timeout_ms)
{
	item *it;
	struct timespec until;

	if (!q->taken) {
		pthread_mutex_lock(&q->lock);
		if (timeout_ms >= 0) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += timeout_ms / 1000;
			until.tv_nsec += (timeout_ms % 1000) * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
		}
		while (!q->head && !atomic_load(q->failed)) {
			q->waiting = timeout_ms < 0 ? 2 : 1;
			if (timeout_ms < 0)
				pthread_cond_wait(&q->nonempty, &q->lock);
			else if (pthread_cond_timedwait(&q->nonempty, &q->lock,
			                                &until) == ETIMEDOUT)
				break;
		}
		q->waiting = 0;
		if (q->head) {
			q->taken = q->head;
			q->head = q->tail = NULL;
			q->count = 0;
			q->bytes = 0;
			pthread_cond_signal(&q->nonfull);
		}
		pthread_mutex_unlock(&q->lock);
	}
	it = q->taken;
	if (it)
		q->taken = it->next;
	return it;
}

void
queue_take_now(queue *q)
{
	item **end = &q->taken;

	while (*end)
		end = &(*end)->next;
	pthread_mutex_lock(&q->lock);
	if (q->head) {
		*end = q->head;
		q->head = q->tail = NULL;
		q->count = 0;
		q->bytes = 0;
		pthread_cond_signal(&q->nonfull);
	}
	pthread_mutex_unlock(&q->lock);
}

void
queue_wake(queue *q)
{
	pthread_mutex_lock(&q->lock);
	pthread_cond_broadcast(&q->nonempty);
	pthread_cond_broadcast(&q->nonfull);
	pthread_mutex_unlock(&q->lock);
}
