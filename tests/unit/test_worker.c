/*
 * test_worker.c: the worker pool without the rest of the server. Sockets
 * dispatched go round robin with one wake-up per worker for a whole
 * burst; running workers serve them in their listener's mode; a closed
 * connection and a close-all report each connection gone exactly once
 * (the hook the listener registers), and the workers leave their loops.
 */
#include <sys/socket.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "listener.h"
#include "server.h"
#include "util.h"
#include "worker.h"

#define NWORKERS	3
#define NCONNS		9

static atomic_int	done_count;
static atomic_int	exit_count;

static void
count_done(struct listener *l)
{
	atomic_fetch_add(&done_count, 1);
	listener_unref(l);
}

static void
count_exit(struct worker *w, void *arg)
{
	(void)w;
	(void)arg;
	atomic_fetch_add(&exit_count, 1);
}

static void
wait_for(atomic_int *v, int want)
{
	uint64_t	deadline = now_us() + 10 * 1000000;

	while (atomic_load(v) < want && now_us() < deadline)
		usleep(1000);
	assert_int_equal(atomic_load(v), want);
}

/* Send and read back exactly the same bytes, with a bound on the wait. */
static void
echo_roundtrip(int fd, const char *msg)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLIN };
	char		buf[64];
	size_t		got = 0, len = strlen(msg);
	ssize_t		n;

	assert_int_equal(write(fd, msg, len), (ssize_t)len);
	while (got < len) {
		assert_int_equal(poll(&pfd, 1, 10000), 1);
		n = read(fd, buf + got, sizeof(buf) - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_memory_equal(buf, msg, len);
}

static void
test_dispatch_serve_close(void **state)
{
	struct worker_limits	 lim = { .max_buffer = 65536 };
	struct worker_hooks	 hooks = { .conn_done = count_done,
	    .exited = count_exit };
	struct sockaddr_storage	 peer;
	struct config		*conf;
	struct listener		*l;
	char			 err[256];
	int			 pairs[NCONNS][2], i;

	(void)state;
	conf = config_new();
	assert_int_equal(config_add_listener(conf, "echo@127.0.0.1:0", err,
	    sizeof(err)), 0);
	config_finish(conf);
	l = listener_new(conf->listeners);
	assert_int_equal(workers_init(NWORKERS, &lim, &hooks), 0);
	assert_int_equal(worker_count(), NWORKERS);

	memset(&peer, 0, sizeof(peer));
	peer.ss_family = AF_UNIX;
	for (i = 0; i < NCONNS; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0,
		    pairs[i]), 0);
		/* The reference a listener takes for each one it hands on. */
		listener_ref(l);
		worker_dispatch_conn(pairs[i][0], l,
		    (struct sockaddr *)&peer, sizeof(sa_family_t));
	}
	/* Round robin, and one wake-up per worker for the whole burst. */
	for (i = 0; i < NWORKERS; i++) {
		assert_int_equal(msgq_length(&worker_at(i)->queue),
		    NCONNS / NWORKERS);
		assert_int_equal(worker_at(i)->queue.wakeups, 1);
	}

	assert_int_equal(workers_start(), 0);
	for (i = 0; i < NCONNS; i++)
		echo_roundtrip(pairs[i][1], "ping");
	for (i = 0; i < NWORKERS; i++)
		assert_int_equal(counter_get(&worker_at(i)->stats.conns_total),
		    NCONNS / NWORKERS);

	/* A client that leaves: reported gone once. */
	close(pairs[0][1]);
	wait_for(&done_count, 1);

	/* The stop: every other connection closed, every worker out. */
	worker_post_all(WMSG_CLOSE_ALL);
	wait_for(&exit_count, NWORKERS);
	wait_for(&done_count, NCONNS);
	for (i = 1; i < NCONNS; i++) {
		char	c;

		/* The worker closed its end: end of file here. */
		assert_int_equal(read(pairs[i][1], &c, 1), 0);
		close(pairs[i][1]);
	}
	workers_join();
	workers_free();
	assert_int_equal(worker_count(), 0);
	assert_int_equal(atomic_load(&l->refcnt), 1);
	listener_unref(l);
	config_free(conf);
}

static void
test_closing_worker_refuses(void **state)
{
	struct worker_limits	 lim = { .max_buffer = 65536 };
	struct worker_hooks	 hooks = { .conn_done = count_done,
	    .exited = count_exit };
	struct sockaddr_storage	 peer;
	struct config		*conf;
	struct listener		*l;
	char			 err[256], c;
	int			 pair[2];

	(void)state;
	atomic_store(&done_count, 0);
	atomic_store(&exit_count, 0);
	conf = config_new();
	assert_int_equal(config_add_listener(conf, "127.0.0.1:0", err,
	    sizeof(err)), 0);
	config_finish(conf);
	l = listener_new(conf->listeners);
	assert_int_equal(workers_init(1, &lim, &hooks), 0);
	/* Ordered to close before the socket arrives: it is not served. */
	worker_post(worker_at(0), WMSG_CLOSE_ALL);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
	memset(&peer, 0, sizeof(peer));
	peer.ss_family = AF_UNIX;
	listener_ref(l);
	worker_dispatch_conn(pair[0], l, (struct sockaddr *)&peer,
	    sizeof(sa_family_t));
	assert_int_equal(workers_start(), 0);
	wait_for(&done_count, 1);
	wait_for(&exit_count, 1);
	assert_int_equal(read(pair[1], &c, 1), 0);
	assert_int_equal(atomic_load(&l->stats.closed), 1);
	assert_int_equal(counter_get(&worker_at(0)->stats.conns_total), 0);
	close(pair[1]);
	workers_join();
	workers_free();
	assert_int_equal(atomic_load(&l->refcnt), 1);
	listener_unref(l);
	config_free(conf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dispatch_serve_close),
		cmocka_unit_test(test_closing_worker_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
