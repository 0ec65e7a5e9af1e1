/*
 * worker.c: worker threads. Each owns an event_base, the connections on it,
 * a read buffer shared by those connections, and a message queue with a
 * wake-up pipe through which the main thread hands it accepted sockets and
 * orders. The pipe is written only when the queue goes from empty to
 * non-empty, so a burst of accepts costs one wake-up.
 */
#include <sys/types.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conn.h"
#include "listener.h"
#include "log.h"
#include "proxy_conn.h"
#include "server.h"
#include "sock.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

#define SCRATCH_LEN	(256 * 1024)

static void	worker_wake_cb(evutil_socket_t, short, void *);

static __thread struct worker	*self;

struct worker *
worker_self(void)
{
	return self;
}

/* A wake-up pipe: both ends non-blocking and close-on-exec. */
int
wake_pipe(int *rd, int *wr)
{
	int	fds[2];

	if (pipe_nonblock(fds) != 0)
		return -1;
	*rd = fds[0];
	*wr = fds[1];
	return 0;
}

struct worker *
worker_new(int id)
{
	struct worker	*w;

	w = xcalloc(1, sizeof(*w));
	w->id = id;
	pthread_mutex_init(&w->lock, NULL);
	STAILQ_INIT(&w->queue);
	if (wake_pipe(&w->wake_rd, &w->wake_wr) != 0)
		fatal("worker %d: pipe", id);
	if ((w->base = event_base_new()) == NULL)
		fatalx("worker %d: cannot create event base", id);
	w->wake_ev = event_new(w->base, w->wake_rd, EV_READ | EV_PERSIST,
	    worker_wake_cb, w);
	if (w->wake_ev == NULL || event_add(w->wake_ev, NULL) != 0)
		fatalx("worker %d: cannot watch the wake-up pipe", id);
	w->scratch_len = SCRATCH_LEN;
	w->scratch = xmalloc(w->scratch_len);
	w->max_buffer = srv->conf->max_buffer;
	if (srv->conf->idle_timeout_us != 0) {
		struct timeval	tv;

		tv.tv_sec = (time_t)(srv->conf->idle_timeout_us / 1000000);
		tv.tv_usec = (suseconds_t)(srv->conf->idle_timeout_us % 1000000);
		/* A common timeout keeps thousands of idle timers in a queue
		 * instead of the heap: O(1) to re-arm on every read. */
		w->idle_timeout = event_base_init_common_timeout(w->base, &tv);
		if (w->idle_timeout == NULL)
			fatalx("worker %d: cannot set up idle timeouts", id);
		w->idle_tv = *w->idle_timeout;
		w->idle_timeout = &w->idle_tv;
	}
	tls_worker_init(w);
	return w;
}

void
worker_send(struct worker *w, struct worker_msg *m)
{
	int	was_empty;
	char	c = 0;

	pthread_mutex_lock(&w->lock);
	was_empty = STAILQ_EMPTY(&w->queue);
	STAILQ_INSERT_TAIL(&w->queue, m, entry);
	pthread_mutex_unlock(&w->lock);
	/* A full pipe already means a wake-up is pending. */
	if (was_empty && write(w->wake_wr, &c, 1) == -1 && errno != EAGAIN)
		log_warn("worker %d: wake-up", w->id);
}

void
worker_post(struct worker *w, enum worker_msg_type type)
{
	struct worker_msg	*m;

	m = xcalloc(1, sizeof(*m));
	m->type = type;
	m->fd = -1;
	worker_send(w, m);
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
	worker_send(w, m);
}

void
worker_dispatch_conn(struct worker *w, int fd, struct listener *l,
    const struct sockaddr *peer, socklen_t peerlen)
{
	struct worker_msg	*m;

	m = xmalloc(sizeof(*m));
	memset(m, 0, offsetof(struct worker_msg, peer));
	m->type = WMSG_CONN;
	m->fd = fd;
	listener_ref(l);
	m->listener = l;
	if (peerlen > sizeof(m->peer))
		peerlen = sizeof(m->peer);
	memcpy(&m->peer, peer, peerlen);
	m->peerlen = peerlen;
	worker_send(w, m);
}

/* Exit the loop once nothing is left to serve. */
static void
worker_maybe_exit(struct worker *w)
{
	if ((w->draining || w->closing) && w->nconns == 0)
		event_base_loopbreak(w->base);
}

static void
worker_handle(struct worker *w, struct worker_msg *m)
{
	switch (m->type) {
	case WMSG_CONN:
		if (w->closing) {
			close(m->fd);
			atomic_fetch_add_explicit(&m->listener->stats.closed,
			    1, memory_order_relaxed);
			server_conn_closed();
		} else if (m->listener->proxy != PROXY_OFF)
			proxy_conn_start(w, m->fd, m->listener,
			    (struct sockaddr *)&m->peer, m->peerlen);
		else if (m->listener->tls)
			tls_conn_start(w, m->fd, m->listener,
			    (struct sockaddr *)&m->peer, m->peerlen, NULL);
		else
			conn_start(w, m->fd, m->listener,
			    (struct sockaddr *)&m->peer, m->peerlen, NULL);
		listener_unref(m->listener);
		break;
	case WMSG_DRAIN:
		w->draining = 1;
		listener_worker_stop(w, 1);
		conn_drain_all(w);
		tls_drain_all(w);
		break;
	case WMSG_CLOSE_ALL:
		w->closing = 1;
		listener_worker_stop(w, 0);
		conn_close_all(w);
		tls_close_all(w);
		proxy_conn_close_all(w);
		break;
	case WMSG_RESUME_ACCEPT:
		listener_worker_resume(w);
		break;
	case WMSG_CALL:
		m->fn(w, m->arg);
		break;
	}
	free(m);
}

static void
worker_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker		*w = arg;
	struct worker_msg_list	 batch;
	struct worker_msg	*m;
	char			 buf[64];

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&w->lock);
	STAILQ_INIT(&batch);
	STAILQ_CONCAT(&batch, &w->queue);
	pthread_mutex_unlock(&w->lock);
	while ((m = STAILQ_FIRST(&batch)) != NULL) {
		STAILQ_REMOVE_HEAD(&batch, entry);
		worker_handle(w, m);
	}
	worker_maybe_exit(w);
}

/* Called by conn.c whenever a connection is freed. */
void
worker_conn_gone(struct worker *w)
{
	worker_maybe_exit(w);
}

static void *
worker_main(void *arg)
{
	struct worker	*w = arg;

	self = w;
	log_thread_attach(w->base);
	event_base_dispatch(w->base);
	log_thread_detach();
	server_notify_main(MAIN_WORKER_EXITED);
	return NULL;
}

int
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
	return 0;
}

void
worker_join_free(struct worker *w)
{
	struct worker_msg	*m;

	pthread_join(w->thread, NULL);
	while ((m = STAILQ_FIRST(&w->queue)) != NULL) {
		STAILQ_REMOVE_HEAD(&w->queue, entry);
		if (m->type == WMSG_CONN) {
			close(m->fd);
			listener_unref(m->listener);
		}
		free(m);
	}
	listener_worker_free(w);
	tls_worker_free(w);
	event_free(w->wake_ev);
	event_base_free(w->base);
	close(w->wake_rd);
	close(w->wake_wr);
	pthread_mutex_destroy(&w->lock);
	free(w->scratch);
	free(w);
}
