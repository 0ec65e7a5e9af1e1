/*
 * test_listener.c: admission and accepting, without the rest of the
 * server: the limit counts and pauses, a close made on another thread
 * resumes through the main queue (once, however many closes), a reload's
 * new limit applies at once, and a burst of pending connections is
 * accepted in batches per pass of the loop and dispatched to a worker's
 * queue with one wake-up.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "config.h"
#include "listener.h"
#include "msgq.h"
#include "server.h"
#include "worker.h"

struct fixture {
	struct event_base	*base;
	struct msgq		 mainq;
	struct listener_list	 list;
	struct config		*conf;
	struct listener		*l;
};

static struct fixture	fx;

static void
no_done(struct listener *l)
{
	listener_conn_done(l);
}

static void
no_exit(struct worker *w, void *arg)
{
	(void)w;
	(void)arg;
}

static int
setup(void **state)
{
	char	err[256];

	(void)state;
	memset(&fx, 0, sizeof(fx));
	assert_non_null(fx.base = event_base_new());
	assert_int_equal(msgq_init(&fx.mainq, msgq_run_call, NULL, 0), 0);
	assert_int_equal(msgq_attach(&fx.mainq, fx.base), 0);
	TAILQ_INIT(&fx.list);
	fx.conf = config_new();
	assert_int_equal(config_add_listener(fx.conf, "127.0.0.1:0", err,
	    sizeof(err)), 0);
	config_finish(fx.conf);
	fx.l = listener_bind(fx.conf->listeners, 1, err, sizeof(err));
	assert_non_null(fx.l);
	TAILQ_INSERT_TAIL(&fx.list, fx.l, entry);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	TAILQ_REMOVE(&fx.list, fx.l, entry);
	listener_close(fx.l);
	listener_unref(fx.l);
	msgq_close(&fx.mainq, msgq_free_call, NULL);
	event_base_free(fx.base);
	config_free(fx.conf);
	return 0;
}

static int
armed(void)
{
	return fx.l->socks[0].armed;
}

/* One pass of the main loop, without waiting. */
static void
main_pass(void)
{
	assert_int_equal(event_base_loop(fx.base,
	    EVLOOP_ONCE | EVLOOP_NONBLOCK), 0);
}

/* Admit one, and the reference a connection would hold. */
static int
admit(void)
{
	if (!listener_admit(fx.l))
		return 0;
	listener_ref(fx.l);
	return 1;
}

static void
test_limit_pauses_and_refuses(void **state)
{
	(void)state;
	listener_init(fx.base, &fx.mainq, &fx.list, 2);
	listener_enable(fx.l, 0);
	assert_true(armed());
	assert_int_equal(admit(), 1);
	assert_true(armed());
	/* The one that reaches the limit pauses accepting: the next client
	 * waits in the kernel's backlog instead of being refused. */
	assert_int_equal(admit(), 1);
	assert_false(armed());
	assert_int_equal(listener_conns_open(), 2);
	assert_int_equal(admit(), 0);
	assert_int_equal(atomic_load(&fx.l->stats.accepted), 2);
	assert_int_equal(atomic_load(&fx.l->stats.refused), 1);
	assert_int_equal(listener_conns_open(), 2);

	/* A close resumes, but through the main thread's queue. */
	listener_conn_done(fx.l);
	assert_int_equal(listener_conns_open(), 1);
	assert_false(armed());
	assert_int_equal(msgq_length(&fx.mainq), 1);
	main_pass();
	assert_true(armed());
	listener_conn_done(fx.l);
	/* Below the limit already: nothing to tell the main thread. */
	assert_int_equal(msgq_length(&fx.mainq), 0);
	assert_int_equal(listener_conns_open(), 0);
	assert_int_equal(atomic_load(&fx.l->refcnt), 1);
}

static void *
close_one(void *arg)
{
	listener_conn_done(arg);
	return NULL;
}

static void
test_closes_on_workers_resume_once(void **state)
{
	pthread_t	t[4];
	int		i;

	(void)state;
	listener_init(fx.base, &fx.mainq, &fx.list, 4);
	listener_enable(fx.l, 0);
	for (i = 0; i < 4; i++)
		assert_int_equal(admit(), 1);
	assert_false(armed());
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, close_one, fx.l),
		    0);
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	/* Four closes, one message: the first asks, the rest see it
	 * pending. */
	assert_int_equal(msgq_length(&fx.mainq), 1);
	main_pass();
	assert_true(armed());
	assert_int_equal(listener_conns_open(), 0);
}

static void
test_new_limit_applies_at_once(void **state)
{
	(void)state;
	listener_init(fx.base, &fx.mainq, &fx.list, 10);
	listener_enable(fx.l, 0);
	assert_int_equal(admit(), 1);
	assert_int_equal(admit(), 1);
	listener_set_max_connections(2);
	assert_false(armed());
	assert_int_equal(admit(), 0);
	listener_set_max_connections(3);
	assert_true(armed());
	assert_int_equal(listener_max_connections(), 3);
	listener_conn_done(fx.l);
	listener_conn_done(fx.l);
	main_pass();
}

static void
test_stop_ends_resuming(void **state)
{
	(void)state;
	listener_init(fx.base, &fx.mainq, &fx.list, 1);
	listener_enable(fx.l, 0);
	assert_int_equal(admit(), 1);
	assert_false(armed());
	listener_stop_all(0);
	assert_int_equal(fx.l->socks[0].fd, -1);
	listener_conn_done(fx.l);
	main_pass();
	assert_false(armed());
}

static int
connect_to(const struct listener *l)
{
	int	fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (const struct sockaddr *)&l->bound,
	    sizeof(struct sockaddr_in)), 0);
	return fd;
}

#define BURST	150

static void
test_burst_accepted_in_batches(void **state)
{
	struct worker_limits	 lim = { .max_buffer = 65536 };
	struct worker_hooks	 hooks = { .conn_done = no_done,
	    .exited = no_exit };
	struct worker		*w;
	int			 fds[BURST], i;
	unsigned int		 n, before;

	(void)state;
	listener_init(fx.base, &fx.mainq, &fx.list, 1000);
	assert_int_equal(workers_init(1, &lim, &hooks), 0);
	w = worker_at(0);
	listener_enable(fx.l, 0);
	/* The kernel completes them all in the backlog (511). */
	for (i = 0; i < BURST; i++)
		fds[i] = connect_to(fx.l);
	before = 0;
	for (i = 0; i < 10 && (n = msgq_length(&w->queue)) < BURST; i++) {
		main_pass();
		n = msgq_length(&w->queue);
		/* At most one batch per pass, and progress on each. */
		assert_true(n > before);
		assert_true(n - before <= 64);
		before = n;
	}
	assert_int_equal(msgq_length(&w->queue), BURST);
	assert_true(i >= (BURST + 63) / 64);
	/* A burst handed over costs the worker one wake-up. */
	assert_int_equal(w->queue.wakeups, 1);
	assert_int_equal(listener_conns_open(), BURST);
	assert_int_equal(atomic_load(&fx.l->stats.accepted), BURST);
	/* The worker never ran: freeing it closes what it was handed and
	 * gives every admission back. */
	workers_join();
	workers_free();
	assert_int_equal(listener_conns_open(), 0);
	assert_int_equal(atomic_load(&fx.l->stats.closed), BURST);
	assert_int_equal(atomic_load(&fx.l->refcnt), 1);
	for (i = 0; i < BURST; i++)
		close(fds[i]);
	main_pass();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_limit_pauses_and_refuses,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_closes_on_workers_resume_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_limit_applies_at_once,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_ends_resuming,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_burst_accepted_in_batches,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
