/*
 * msgq.c: message queues between threads (memcached's connection queue,
 * made general): a mutex-protected list plus a wake-up pipe watched by the
 * consumer's event_base. It serves every hand-off in echod: accepted
 * sockets and orders to a worker, log lines to the main thread, and the
 * workers' news for the main thread (doc/ARCHITECTURE.md, "Hand-offs").
 *
 * The invariant that makes one byte enough: the pipe holds a byte exactly
 * when the list is non-empty. A push writes it when the list was empty; the
 * consumer reads it when it takes the last item; both under the lock. So a
 * burst of pushes wakes the consumer once, and a consumer that stops after
 * a batch leaves the byte in place: the level-triggered event fires again
 * on the next pass of its loop, after the other events that were ready.
 */
#include <sys/types.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "msgq.h"
#include "sock.h"
#include "util.h"

struct msgq_callmsg {
	struct msgq_item	 item;
	msgq_fn			 fn;
	void			*arg;
};

static void	msgq_cb(evutil_socket_t, short, void *);

int
msgq_init(struct msgq *q, msgq_handler handler, void *arg,
    unsigned int batch)
{
	int	fds[2];

	/* Both ends non-blocking and close-on-exec: a wake-up never blocks. */
	if (pipe_nonblock(fds) != 0)
		return -1;
	q->rd = fds[0];
	q->wr = fds[1];
	pthread_mutex_init(&q->lock, NULL);
	STAILQ_INIT(&q->items);
	q->closed = 0;
	q->wakeups = 0;
	q->ev = NULL;
	q->handler = handler;
	q->arg = arg;
	q->batch = batch;
	return 0;
}

int
msgq_attach(struct msgq *q, struct event_base *base)
{
	q->ev = event_new(base, q->rd, EV_READ | EV_PERSIST, msgq_cb, q);
	if (q->ev == NULL)
		return -1;
	if (event_add(q->ev, NULL) != 0) {
		event_free(q->ev);
		q->ev = NULL;
		return -1;
	}
	return 0;
}

int
msgq_push(struct msgq *q, struct msgq_item *it)
{
	const char	c = 0;
	int		was_empty;

	pthread_mutex_lock(&q->lock);
	if (q->closed) {
		pthread_mutex_unlock(&q->lock);
		return -1;
	}
	was_empty = STAILQ_EMPTY(&q->items);
	STAILQ_INSERT_TAIL(&q->items, it, entry);
	/* Under the lock: the consumer reads the byte under it too, and
	 * msgq_close cannot close the pipe in between. */
	if (was_empty) {
		q->wakeups++;
		while (write(q->wr, &c, 1) == -1 && errno == EINTR)
			;
	}
	pthread_mutex_unlock(&q->lock);
	return 0;
}

/* Under the lock, the list just emptied: take the byte that said it was
 * not. */
static void
consume_wakeup(struct msgq *q)
{
	char	buf[64];
	ssize_t	n;

	do
		n = read(q->rd, buf, sizeof(buf));
	while (n > 0 || (n == -1 && errno == EINTR));
}

unsigned int
msgq_drain(struct msgq *q, unsigned int max)
{
	STAILQ_HEAD(, msgq_item)	 batch;
	struct msgq_item		*it;
	unsigned int			 n = 0;

	STAILQ_INIT(&batch);
	pthread_mutex_lock(&q->lock);
	if (max == 0)
		STAILQ_CONCAT(&batch, &q->items);
	else {
		while (n < max && (it = STAILQ_FIRST(&q->items)) != NULL) {
			STAILQ_REMOVE_HEAD(&q->items, entry);
			STAILQ_INSERT_TAIL(&batch, it, entry);
			n++;
		}
	}
	if (STAILQ_EMPTY(&q->items))
		consume_wakeup(q);
	pthread_mutex_unlock(&q->lock);
	/* Outside the lock: a handler may push, even onto this queue. */
	n = 0;
	while ((it = STAILQ_FIRST(&batch)) != NULL) {
		STAILQ_REMOVE_HEAD(&batch, entry);
		q->handler(it, q->arg);
		n++;
	}
	return n;
}

unsigned int
msgq_length(struct msgq *q)
{
	struct msgq_item	*it;
	unsigned int		 n = 0;

	pthread_mutex_lock(&q->lock);
	STAILQ_FOREACH(it, &q->items, entry)
		n++;
	pthread_mutex_unlock(&q->lock);
	return n;
}

static void
msgq_cb(evutil_socket_t fd, short what, void *arg)
{
	struct msgq	*q = arg;

	(void)fd;
	(void)what;
	msgq_drain(q, q->batch);
}

void
msgq_close(struct msgq *q, msgq_handler discard, void *arg)
{
	STAILQ_HEAD(, msgq_item)	 left;
	struct msgq_item		*it;

	STAILQ_INIT(&left);
	pthread_mutex_lock(&q->lock);
	if (q->closed) {
		pthread_mutex_unlock(&q->lock);
		return;
	}
	q->closed = 1;
	STAILQ_CONCAT(&left, &q->items);
	if (q->ev != NULL)
		event_free(q->ev);
	q->ev = NULL;
	close(q->rd);
	close(q->wr);
	q->rd = q->wr = -1;
	pthread_mutex_unlock(&q->lock);
	while ((it = STAILQ_FIRST(&left)) != NULL) {
		STAILQ_REMOVE_HEAD(&left, entry);
		if (discard != NULL)
			discard(it, arg);
	}
}

int
msgq_call(struct msgq *q, msgq_fn fn, void *arg)
{
	struct msgq_callmsg	*m;

	m = xmalloc(sizeof(*m));
	m->fn = fn;
	m->arg = arg;
	if (msgq_push(q, &m->item) != 0) {
		free(m);
		return -1;
	}
	return 0;
}

void
msgq_run_call(struct msgq_item *it, void *unused)
{
	struct msgq_callmsg	*m = (struct msgq_callmsg *)it;

	(void)unused;
	m->fn(m->arg);
	free(m);
}

void
msgq_free_call(struct msgq_item *it, void *unused)
{
	(void)unused;
	free(it);
}
