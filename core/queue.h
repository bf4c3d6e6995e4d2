/*
 * core/queue.h - what the dispatcher hands a worker: items (a copy of a
 * change, a commit marker, a control request), in a bounded queue with one
 * producer and one consumer.
 *
 * The consumer takes everything queued at once into its private list, and
 * is woken only when it waits without a timer, when enough has queued,
 * when the queue is full, or for a control item: handing items over one by
 * one, with a wake-up each, cost more than the rest of the pipeline.
 */
#ifndef SYNCD_QUEUE_H
#define SYNCD_QUEUE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <syncd/plugin.h>

typedef enum item_kind {
	ITEM_EVENT,  /* a change, TRUNCATE or UPDATE_ALL */
	ITEM_COMMIT, /* commit marker, broadcast */
	ITEM_FENCE,  /* flush, write progress, acknowledge */
	ITEM_LEARN,  /* learn a stream's stored progress, acknowledge */
	ITEM_STOP    /* leave the worker loop */
} item_kind;

typedef struct item {
	struct item *next;
	item_kind kind;
	size_t bytes;   /* what it weighs in the queue */
	syncd_event ev; /* values and relation arrays follow the struct */
} item;

/* A copy of a change whose relation(s) are rel (and, for a TRUNCATE,
 * rels[0..ev->nrels)): interned relations that outlive the item. */
item *item_event(const syncd_event *ev, const syncd_relation *rel,
                 const syncd_relation *const *rels);
/* A commit marker, control item or synthesized event (no values). */
item *item_small(item_kind kind, const syncd_event *ev);

typedef struct queue {
	pthread_mutex_t lock;
	pthread_cond_t nonempty;
	pthread_cond_t nonfull;
	item *head, *tail;
	size_t count, bytes;
	int waiting; /* consumer: 0 busy, 1 timed wait, 2 untimed wait */
	item *taken; /* consumer's private list, taken from head..tail */
	size_t max_count, max_bytes;
	const atomic_bool *failed; /* wakes and refuses when set */
} queue;

void queue_init(queue *q, size_t max_count, size_t max_bytes,
                const atomic_bool *failed);
void queue_destroy(queue *q);
/* Blocks while the queue is full; control items always get in.
 * SYNCD_FATAL (it is freed) once *failed. */
syncd_status queue_push(queue *q, item *it);
/* The next item: from the private list, else everything queued is taken
 * at once, waiting up to timeout_ms (-1: forever) for something; NULL on
 * timeout or failure. */
item *queue_pop(queue *q, int64_t timeout_ms);
/* Takes what is queued now into the private list, without waiting. */
void queue_take_now(queue *q);
/* Wakes both sides (after a failure). */
void queue_wake(queue *q);

#endif
