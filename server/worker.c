/*
 * worker.c: the worker threads and the hand-over of connections to them.
 * Each worker owns an event_base, the connections on it, a read buffer
 * shared by those connections, and a message queue through which the main
 * thread hands it accepted sockets and orders. The pool is memcached's
 * thread.c: worker_dispatch_conn picks the next worker round robin and
 * queues the socket; the queue wakes the worker only when it goes from
 * empty to non-empty, and the worker takes at most DISPATCH_BATCH messages
 * per pass of its loop, so that a burst of accepts costs one wake-up and
 * never holds up echo on the connections it already serves
 * (doc/ARCHITECTURE.md).
 */
#include <sys/types.h>
#include <stddef.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conn.h"
#include "log.h"
#include "proxy.h"
#include "proxy_conn.h"
#include "server.h"
#include "tls_conn.h"
#include "util.h"
#include "worker.h"

#define SCRATCH_LEN	(256 * 1024)
/* Messages per pass of the loop: new connections cost a few microseconds
 * each, so a pass stays well under a millisecond. */
#define DISPATCH_BATCH	64

struct worker_msg {
	struct msgq_item	 item;	/* first: the queue's handle */
	enum worker_msg_type	 type;
	int			 fd;
	struct listener		*listener;	/* referenced */
	worker_fn		 fn;
	void			*arg;
	socklen_t		 peerlen;
	struct sockaddr_storage	 peer;	/* last: WMSG_CONN only copies it */
};

static struct worker		**workers;
static int			  nworkers;
static int			  next_worker;	/* round robin, main thread */
static struct worker_hooks	  hooks;

static void	worker_handle(struct msgq_item *, void *);
static void	worker_conn_released(struct worker *, struct listener *);
static void	worker_start_conn(struct worker *, int, struct listener *,
		    const struct sockaddr *, socklen_t, const struct sockaddr *,
		    const char *, size_t);

int
worker_count(void)
{
	return nworkers;
}

struct worker *
worker_at(int i)
{
	return i >= 0 && i < nworkers ? workers[i] : NULL;
}

/* Worker thread: the limits connections are made with from now on. */
static void
worker_apply_limits(struct worker *w, const struct worker_limits *lim)
{
	struct timeval		 tv;
	const struct timeval	*common;

	w->max_buffer = lim->max_buffer;
	if (lim->idle_timeout_us == 0) {
		w->idle_timeout = NULL;
		return;
	}
	/* A common timeout keeps thousands of idle timers in a queue
	 * instead of the heap: O(1) to re-arm on every read. But a base has
	 * at most 256 of them, never freed (each reload with a new value
	 * makes one): past that, a plain timer, which applies the new value
	 * all the same. */
	common = event_base_init_common_timeout(w->base,
	    tv_from_us(&tv, lim->idle_timeout_us));
	w->idle_tv = common != NULL ? *common : tv;
	w->idle_timeout = &w->idle_tv;
}

static struct worker *
worker_new(int id, const struct worker_limits *lim)
{
	struct worker	*w;

	w = xcalloc(1, sizeof(*w));
	w->id = id;
	if (msgq_init(&w->queue, worker_handle, w, DISPATCH_BATCH) != 0)
		fatal("worker %d: pipe", id);
	if ((w->base = event_base_new()) == NULL)
		fatalx("worker %d: cannot create event base", id);
	if (msgq_attach(&w->queue, w->base) != 0)
		fatalx("worker %d: cannot watch its queue", id);
	w->scratch_len = SCRATCH_LEN;
	w->scratch = xmalloc(w->scratch_len);
	worker_apply_limits(w, lim);
	tls_conn_worker_init(w);
	return w;
}

int
workers_init(int n, const struct worker_limits *lim,
    const struct worker_hooks *h)
{
	int	i;

	conn_init(worker_conn_released);
	proxy_conn_init(worker_start_conn);
	hooks = *h;
	workers = xcalloc((size_t)n, sizeof(*workers));
	nworkers = n;
	next_worker = 0;
	for (i = 0; i < n; i++)
		workers[i] = worker_new(i, lim);
	return 0;
}

static void
worker_msg_send(struct worker *w, struct worker_msg *m)
{
	if (msgq_push(&w->queue, &m->item) != 0)
		fatalx("worker %d: message after its queue closed", w->id);
}

void
worker_post(struct worker *w, enum worker_msg_type type)
{
	struct worker_msg	*m;

	m = xcalloc(1, sizeof(*m));
	m->type = type;
	m->fd = -1;
	worker_msg_send(w, m);
}

void
worker_post_all(enum worker_msg_type type)
{
	int	i;

	for (i = 0; i < nworkers; i++)
		worker_post(workers[i], type);
}

void
worker_call(struct worker *w, worker_fn fn, void *arg)
{
	struct worker_msg	*m;

	m = xcalloc(1, sizeof(*m));
	m->type = WMSG_CALL;
	m->fd = -1;
	m->fn = fn;
	m->arg = arg;
	worker_msg_send(w, m);
}

static void
limits_cb(struct worker *w, void *arg)
{
	worker_apply_limits(w, arg);
	free(arg);
}

void
worker_set_limits_all(const struct worker_limits *lim)
{
	struct worker_limits	*copy;
	int			 i;

	for (i = 0; i < nworkers; i++) {
		copy = xmalloc(sizeof(*copy));
		*copy = *lim;
		worker_call(workers[i], limits_cb, copy);
	}
}

void
worker_dispatch_conn(int fd, struct listener *l, const struct sockaddr *peer,
    socklen_t peerlen)
{
	struct worker		*w = workers[next_worker];
	struct worker_msg	*m;

	next_worker = (next_worker + 1) % nworkers;
	m = xmalloc(sizeof(*m));
	memset(m, 0, offsetof(struct worker_msg, peer));
	m->type = WMSG_CONN;
	m->fd = fd;
	m->listener = l;
	if (peerlen > sizeof(m->peer))
		peerlen = sizeof(m->peer);
	memcpy(&m->peer, peer, peerlen);
	m->peerlen = peerlen;
	worker_msg_send(w, m);
}

/* Exit the loop once nothing is left to serve. */
static void
worker_maybe_exit(struct worker *w)
{
	if ((w->draining || w->closing) && w->nconns == 0)
		event_base_loopbreak(w->base);
}

/* A connection that will never be served: closed, and accounted as if it
 * had been (its listener's closed count, its admission slot). */
static void
worker_refuse(struct listener *l, int fd)
{
	close(fd);
	atomic_fetch_add_explicit(&l->stats.closed, 1, memory_order_relaxed);
	hooks.conn_done(l);
}

/*
 * The one place where a connection becomes plain or TLS: at once, or once
 * its PROXY header is read (proxy_conn.c calls back here, with the client's
 * address and the balancer's as via). w->nconns already counts it.
 */
static void
worker_start_conn(struct worker *w, int fd, struct listener *l,
    const struct sockaddr *peer, socklen_t peerlen,
    const struct sockaddr *via, const char *data, size_t len)
{
	int	rc;

	if (l->tls)
		rc = tls_conn_start(w, fd, l, peer, peerlen, via);
	else if (len > 0)
		rc = conn_start_read(w, fd, l, peer, peerlen, via, data, len);
	else
		rc = conn_start(w, fd, l, peer, peerlen, via);
	if (rc != 0) {
		/* Not started: the socket is closed, nothing to count. */
		w->nconns--;
		hooks.conn_done(l);
		worker_maybe_exit(w);
	}
}

void
worker_serve(struct worker *w, int fd, struct listener *l,
    const struct sockaddr *peer, socklen_t peerlen)
{
	if (w->closing) {
		worker_refuse(l, fd);
		return;
	}
	w->nconns++;
	if (l->proxy != PROXY_OFF)
		proxy_conn_start(w, fd, l, peer, peerlen);
	else
		worker_start_conn(w, fd, l, peer, peerlen, NULL, NULL, 0);
}

/* Called by conn.c once a connection's memory is gone. */
static void
worker_conn_released(struct worker *w, struct listener *l)
{
	w->nconns--;
	hooks.conn_done(l);
	worker_maybe_exit(w);
}

static void
worker_handle(struct msgq_item *it, void *arg)
{
	struct worker		*w = arg;
	struct worker_msg	*m = (struct worker_msg *)it;

	switch (m->type) {
	case WMSG_CONN:
		worker_serve(w, m->fd, m->listener,
		    (struct sockaddr *)&m->peer, m->peerlen);
		break;
	case WMSG_DRAIN:
		/* Graceful: connections finish on their own, or at the
		 * deadline, when the main thread sends WMSG_CLOSE_ALL. */
		w->draining = 1;
		break;
	case WMSG_CLOSE_ALL:
		w->closing = 1;
		conn_close_all(w);
		tls_conn_close_all(w);
		proxy_conn_close_all(w);
		break;
	case WMSG_CALL:
		m->fn(w, m->arg);
		break;
	}
	free(m);
	worker_maybe_exit(w);
}

static void *
worker_main(void *arg)
{
	struct worker	*w = arg;

	conn_thread_attach(w);
	log_thread_attach(w->base);
	event_base_dispatch(w->base);
	log_thread_detach();
	hooks.exited(w, hooks.arg);
	return NULL;
}

static int
worker_start(struct worker *w)
{
	sigset_t	all, old;
	int		rv;

	/* Signals belong to the main thread's event_base. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rv = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rv != 0) {
		errno = rv;
		return -1;
	}
	w->started = 1;
	return 0;
}

int
workers_start(void)
{
	int	i;

	for (i = 0; i < nworkers; i++) {
		if (worker_start(workers[i]) != 0)
			return -1;
	}
	return 0;
}

void
workers_join(void)
{
	int	i;

	for (i = 0; i < nworkers; i++) {
		if (workers[i]->started)
			pthread_join(workers[i]->thread, NULL);
		workers[i]->started = 0;
	}
}

/* Left in a queue at exit: a socket never served is closed. */
static void
discard_msg(struct msgq_item *it, void *arg)
{
	struct worker_msg	*m = (struct worker_msg *)it;

	(void)arg;
	if (m->type == WMSG_CONN)
		worker_refuse(m->listener, m->fd);
	else if (m->type == WMSG_CALL && m->fn == limits_cb)
		free(m->arg);
	free(m);
}

void
workers_free(void)
{
	struct worker	*w;
	int		 i;

	for (i = 0; i < nworkers; i++) {
		w = workers[i];
		msgq_close(&w->queue, discard_msg, w);
		tls_conn_worker_free(w);
		event_base_free(w->base);
		free(w->scratch);
		free(w);
	}
	free(workers);
	workers = NULL;
	nworkers = 0;
}
