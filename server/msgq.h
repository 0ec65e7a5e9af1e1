/*
 * msgq.h: the one way echod hands work from one thread to another. A queue
 * has one consumer, the thread whose event_base it is attached to, and any
 * number of producers. Items are the producers' own structs with a struct
 * msgq_item inside (no allocation here). The consumer is woken by one byte
 * on a pipe, written only when the queue goes from empty to non-empty, so a
 * burst of pushes costs one wake-up (doc/ARCHITECTURE.md, "Hand-offs").
 */
#ifndef ECHOD_MSGQ_H
#define ECHOD_MSGQ_H

#include <sys/queue.h>
#include <pthread.h>
#include <stdint.h>

struct event;
struct event_base;

struct msgq_item {
	STAILQ_ENTRY(msgq_item)	 entry;
};

struct msgq;
/* Runs on the consumer thread, once per item; the item is the handler's. */
typedef void (*msgq_handler)(struct msgq_item *, void *arg);

struct msgq {
	pthread_mutex_t			 lock;
	STAILQ_HEAD(, msgq_item)	 items;	/* under lock */
	int				 closed;	/* under lock */
	uint64_t			 wakeups;	/* under lock */
	int				 rd, wr;	/* the wake-up pipe */
	struct event			*ev;
	msgq_handler			 handler;
	void				*arg;
	unsigned int			 batch;	/* per wake-up; 0: all */
};

/*
 * Make an empty queue and its pipe. batch bounds how many items one wake-up
 * handles before the consumer's other events get their turn (the rest are
 * handled on the next pass of the loop); 0 handles all. -1 on error (errno).
 */
int	msgq_init(struct msgq *, msgq_handler, void *arg, unsigned int batch);
/* Handle items from the loop of base (the consumer's). -1 on error. */
int	msgq_attach(struct msgq *, struct event_base *);
/*
 * Any thread: queue an item. Returns 0, or -1 when the queue was closed
 * (the item stays the caller's). Never blocks on the consumer.
 */
int	msgq_push(struct msgq *, struct msgq_item *);
/* Consumer thread: handle up to max queued items now (0: all). Returns how
 * many were handled. */
unsigned int msgq_drain(struct msgq *, unsigned int max);
/* Items queued now (for tests and teardown checks). */
unsigned int msgq_length(struct msgq *);
/*
 * A queue of calls: the simplest message, "run fn(arg) on the consumer".
 * msgq_call allocates one and pushes it (-1 when the queue is closed: fn
 * will not run); give msgq_run_call as the queue's handler, and
 * msgq_free_call to msgq_close.
 */
typedef void (*msgq_fn)(void *);
int	msgq_call(struct msgq *, msgq_fn, void *arg);
void	msgq_run_call(struct msgq_item *, void *unused);
void	msgq_free_call(struct msgq_item *, void *unused);

/*
 * Refuse further pushes, hand every item still queued to discard (may be
 * NULL when nothing can be left), and release the pipe and event. Safe
 * while producers race: a push after this returns -1. The struct itself
 * stays valid (a static queue may be closed while other threads run).
 */
void	msgq_close(struct msgq *, msgq_handler discard, void *arg);

#endif
