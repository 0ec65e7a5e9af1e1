/*
 * test_msgq.c: the inter-thread message queue: order, one wake-up per
 * empty-to-non-empty transition, batches that leave the loop to other
 * events, close, and many producers against one consumer.
 */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "msgq.h"

struct msg {
	struct msgq_item	 item;
	int			 producer;
	int			 seq;
};

struct sink {
	int	 n;
	int	 seen[64];	/* seq of the first ones */
	int	 last[8];	/* per producer, for the threaded test */
	int	 out_of_order;
	int	 other_ran_at;	/* n when the other event ran */
};

static void
record(struct msgq_item *it, void *arg)
{
	struct msg	*m = (struct msg *)it;
	struct sink	*s = arg;

	if (s->n < 64)
		s->seen[s->n] = m->seq;
	if (m->seq <= s->last[m->producer])
		s->out_of_order++;
	s->last[m->producer] = m->seq;
	s->n++;
	free(m);
}

static struct msg *
msg_new(int producer, int seq)
{
	struct msg	*m = calloc(1, sizeof(*m));

	assert_non_null(m);
	m->producer = producer;
	m->seq = seq;
	return m;
}

static int
pipe_readable(const struct msgq *q)
{
	struct pollfd	pfd = { .fd = q->rd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

static void
test_fifo_and_one_wakeup(void **state)
{
	struct msgq	q;
	struct sink	s = { 0 };
	int		i;

	(void)state;
	assert_int_equal(msgq_init(&q, record, &s, 0), 0);
	assert_false(pipe_readable(&q));
	for (i = 1; i <= 50; i++)
		assert_int_equal(msgq_push(&q, &msg_new(0, i)->item), 0);
	/* Fifty pushes onto an empty queue: one byte, one wake-up. */
	assert_int_equal(q.wakeups, 1);
	assert_true(pipe_readable(&q));
	assert_int_equal(msgq_length(&q), 50);
	assert_int_equal(msgq_drain(&q, 0), 50);
	for (i = 0; i < 50; i++)
		assert_int_equal(s.seen[i], i + 1);
	/* Emptied: the byte is gone with the last item. */
	assert_false(pipe_readable(&q));
	/* Empty again: the next push wakes again. */
	assert_int_equal(msgq_push(&q, &msg_new(0, 51)->item), 0);
	assert_int_equal(q.wakeups, 2);
	assert_int_equal(msgq_drain(&q, 0), 1);
	assert_int_equal(s.out_of_order, 0);
	msgq_close(&q, NULL, NULL);
}

static void
other_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sink	*s = arg;
	char		 c;

	(void)what;
	if (read(fd, &c, 1) == 1)
		s->other_ran_at = s->n;
}

static void
test_batches_share_the_loop(void **state)
{
	struct event_base	*base;
	struct event		*other;
	struct msgq		 q;
	struct sink		 s = { .other_ran_at = -1 };
	int			 fds[2], i;

	(void)state;
	assert_non_null(base = event_base_new());
	assert_int_equal(msgq_init(&q, record, &s, 10), 0);
	assert_int_equal(msgq_attach(&q, base), 0);
	assert_int_equal(pipe(fds), 0);
	other = event_new(base, fds[0], EV_READ | EV_PERSIST, other_cb, &s);
	assert_non_null(other);
	assert_int_equal(event_add(other, NULL), 0);
	for (i = 1; i <= 25; i++)
		assert_int_equal(msgq_push(&q, &msg_new(0, i)->item), 0);
	assert_int_equal(event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), 0);
	/* One pass: one batch, and the byte left for the next pass. */
	assert_int_equal(s.n, 10);
	assert_true(pipe_readable(&q));
	/* Another socket becomes ready: it runs before the rest of the
	 * queue is through, not after. */
	assert_int_equal(write(fds[1], "x", 1), 1);
	assert_int_equal(event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), 0);
	assert_int_equal(s.n, 20);
	assert_int_equal(s.other_ran_at >= 10 && s.other_ran_at <= 20, 1);
	assert_int_equal(event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), 0);
	assert_int_equal(s.n, 25);
	assert_false(pipe_readable(&q));
	assert_int_equal(q.wakeups, 1);
	assert_int_equal(s.out_of_order, 0);
	msgq_close(&q, NULL, NULL);
	event_free(other);
	close(fds[0]);
	close(fds[1]);
	event_base_free(base);
}

static void
discard(struct msgq_item *it, void *arg)
{
	(*(int *)arg)++;
	free(it);
}

static void
test_close(void **state)
{
	struct msgq	 q;
	struct sink	 s = { 0 };
	struct msg	*late;
	int		 dropped = 0, i;

	(void)state;
	assert_int_equal(msgq_init(&q, record, &s, 0), 0);
	for (i = 1; i <= 3; i++)
		assert_int_equal(msgq_push(&q, &msg_new(0, i)->item), 0);
	msgq_close(&q, discard, &dropped);
	assert_int_equal(dropped, 3);
	assert_int_equal(s.n, 0);
	/* Closed: the item stays the caller's. */
	late = msg_new(0, 4);
	assert_int_equal(msgq_push(&q, &late->item), -1);
	free(late);
	msgq_close(&q, discard, &dropped);	/* twice: harmless */
	assert_int_equal(dropped, 3);
}

/* A handler may push onto its own queue: that item waits for the next
 * drain, and its push wakes the queue again. */
struct again {
	struct msgq	*q;
	int		 n;
};

static void
push_again(struct msgq_item *it, void *arg)
{
	struct again	*a = arg;

	a->n++;
	if (a->n == 1)
		assert_int_equal(msgq_push(a->q, it), 0);
	else
		free(it);
}

static void
test_push_from_handler(void **state)
{
	struct msgq	q;
	struct again	a = { &q, 0 };

	(void)state;
	assert_int_equal(msgq_init(&q, push_again, &a, 0), 0);
	assert_int_equal(msgq_push(&q, &msg_new(0, 1)->item), 0);
	assert_int_equal(msgq_drain(&q, 0), 1);
	assert_true(pipe_readable(&q));
	assert_int_equal(q.wakeups, 2);
	assert_int_equal(msgq_drain(&q, 0), 1);
	assert_int_equal(a.n, 2);
	assert_false(pipe_readable(&q));
	msgq_close(&q, NULL, NULL);
}

#define PRODUCERS	4
#define PER_PRODUCER	20000

struct producer {
	struct msgq	*q;
	int		 id;
};

static void *
produce(void *arg)
{
	struct producer	*p = arg;
	int		 i;

	for (i = 1; i <= PER_PRODUCER; i++)
		if (msgq_push(p->q, &msg_new(p->id, i)->item) != 0)
			abort();
	return NULL;
}

static void
test_many_producers(void **state)
{
	struct event_base	*base;
	struct msgq		 q;
	struct sink		 s = { 0 };
	struct producer		 p[PRODUCERS];
	pthread_t		 t[PRODUCERS];
	int			 i, passes = 0;

	(void)state;
	assert_non_null(base = event_base_new());
	assert_int_equal(msgq_init(&q, record, &s, 64), 0);
	assert_int_equal(msgq_attach(&q, base), 0);
	for (i = 0; i < PRODUCERS; i++) {
		p[i].q = &q;
		p[i].id = i;
		assert_int_equal(pthread_create(&t[i], NULL, produce, &p[i]),
		    0);
	}
	/* The consumer sleeps in the loop until a wake-up: nothing else
	 * would ever end EVLOOP_ONCE. */
	while (s.n < PRODUCERS * PER_PRODUCER) {
		assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
		passes++;
	}
	for (i = 0; i < PRODUCERS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(s.n, PRODUCERS * PER_PRODUCER);
	assert_int_equal(s.out_of_order, 0);
	assert_int_equal(msgq_length(&q), 0);
	/* Never more wake-ups than passes that found work (plus the last
	 * one, already read): pushes onto a busy queue do not write. */
	assert_true(q.wakeups <= (uint64_t)passes + 1);
	msgq_close(&q, NULL, NULL);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo_and_one_wakeup),
		cmocka_unit_test(test_batches_share_the_loop),
		cmocka_unit_test(test_close),
		cmocka_unit_test(test_push_from_handler),
		cmocka_unit_test(test_many_producers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
