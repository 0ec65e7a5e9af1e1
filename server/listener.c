/*
 * listener.c: binding, accepting and admission. Sockets are bound at startup
 * (possibly as root) and accepted on once the workers exist. Each socket is
 * an lsock with one owner thread, the main thread or (reuseport) a worker;
 * it is watched by a plain read event and accepted on in batches of
 * ACCEPT_BATCH per pass of its owner's loop, so that a burst of new
 * connections shares the loop with everything else. Two things pause an
 * lsock instead of letting it spin: reaching max_connections (resumed when
 * a connection closes) and running out of file descriptors (EMFILE/ENFILE:
 * retried on a short timer, since the socket would otherwise be readable,
 * forever, for the connection it cannot accept).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "listener.h"
#include "log.h"
#include "msgq.h"
#include "proxy.h"
#include "server.h"
#include "sock.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

#define EMFILE_RETRY_MS	100
#define EMFILE_LOG_US	(10 * 1000000ULL)	/* one pause line per 10 s */
#define MAX_ADDRS	8
/* Accepts per wake-up: each costs a few microseconds here and one message
 * to a worker; then the owner's other events get their turn. */
#define ACCEPT_BATCH	64
/* A graceful close serves at most this many already completed ones. */
#define BACKLOG_TAKE	65536

/* Main thread only, unless noted. */
static struct event_base	*main_base;
static struct msgq		*main_queue;
static struct listener_list	*running;
static pthread_t		 main_thread;
static int			 paused;	/* at max_connections */
static int			 stopped;

/* Any thread. */
static atomic_uint_fast64_t	 conns_open;
static atomic_uint_fast64_t	 max_conns;
static atomic_int		 resume_pending;

static void	lsock_arm(struct lsock *);
static void	lsock_stop(struct lsock *, int);
static void	listener_pause_all(void);
static void	listener_resume_all(void);

void
listener_init(struct event_base *base, struct msgq *mainq,
    struct listener_list *list, uint64_t max_connections)
{
	main_base = base;
	main_queue = mainq;
	running = list;
	main_thread = pthread_self();
	paused = 0;
	stopped = 0;
	atomic_store(&conns_open, 0);
	atomic_store(&max_conns, max_connections);
	atomic_store(&resume_pending, 0);
}

void
listener_ref(struct listener *l)
{
	atomic_fetch_add_explicit(&l->refcnt, 1, memory_order_relaxed);
}

void
listener_unref(struct listener *l)
{
	if (atomic_fetch_sub_explicit(&l->refcnt, 1,
	    memory_order_acq_rel) != 1)
		return;
	if (l->tls_ctx != NULL)
		tls_ctx_unref(l->tls_ctx);
	free(l->name);
	free(l->address);
	free(l->proxy_from);
	free(l->socks);
	free(l);
}

static int
bind_one(const struct sockaddr_storage *ss, socklen_t len, int backlog,
    int reuseport, char *err, size_t errlen)
{
	char	 where[ADDR_STRLEN];
	int	 fd, one = 1, zero = 0;

	addr_format((const struct sockaddr *)ss, where, sizeof(where));
	fd = sock_open(ss->ss_family, SOCK_STREAM, 0, 1);
	if (fd == -1) {
		snprintf(err, errlen, "%s: socket: %s", where, strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
		goto fail;
#if HAVE_SO_REUSEPORT_LB
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT_LB, &one,
	    sizeof(one)) != 0)
		goto fail;
#elif HAVE_SO_REUSEPORT
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
	    sizeof(one)) != 0)
		goto fail;
#else
	if (reuseport) {	/* listener_new turned it off */
		errno = EOPNOTSUPP;
		goto fail;
	}
#endif
	/* "*" binds [::] for both families; a named v6 address only v6. */
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)ss;
		int v6only = !IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);

		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
		    v6only ? &one : &zero, sizeof(one)) != 0)
			goto fail;
	}
	if (bind(fd, (const struct sockaddr *)ss, len) != 0)
		goto fail;
	if (listen(fd, backlog) != 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "%s: %s", where, strerror(errno));
	close(fd);
	return -1;
}

/* "*" means [::] with IPv4 mapped in, or 0.0.0.0 without IPv6. */
static int
resolve(const struct listen_conf *lc, struct sockaddr_storage *ss,
    socklen_t *lens, char *err, size_t errlen)
{
	const char	*why;
	int		 n, fd;

	n = addr_resolve(&lc->spec, 1, ss, lens, MAX_ADDRS, &why);
	if (n < 0) {
		snprintf(err, errlen, "%s: %s", lc->address, why);
		return -1;
	}
	if (lc->spec.wildcard) {
		fd = socket(AF_INET6, SOCK_STREAM, 0);
		if (fd == -1 && (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT)) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss[0];

			memset(&ss[0], 0, sizeof(ss[0]));
			sin->sin_family = AF_INET;
			sin->sin_addr.s_addr = htonl(INADDR_ANY);
			sin->sin_port = htons((uint16_t)lc->spec.port);
			lens[0] = sizeof(*sin);
		} else if (fd != -1)
			close(fd);
	}
	return n;
}

struct listener *
listener_new(const struct listen_conf *lc)
{
	struct listener		*l;

	l = xcalloc(1, sizeof(*l));
	atomic_init(&l->refcnt, 1);
	l->name = xstrdup(lc->name);
	l->address = xstrdup(lc->address);
	l->mode = lc->mode;
	l->tls = lc->tls;
	l->backlog = lc->backlog;
	/* Without a balancing SO_REUSEPORT one socket would get every
	 * connection: keep the shared socket instead, and say so. */
	l->reuseport = lc->reuseport && HAVE_REUSEPORT;
	if (lc->reuseport && !HAVE_REUSEPORT)
		log_warnx("listener %s: reuseport is not available on this "
		    "system; its workers share one socket", lc->name);
	l->proxy = lc->proxy;
	l->proxy_timeout_us = lc->proxy_timeout_us;
	if (lc->nproxy_from > 0) {
		l->nproxy_from = lc->nproxy_from;
		l->proxy_from = xcalloc((size_t)lc->nproxy_from,
		    sizeof(*l->proxy_from));
		memcpy(l->proxy_from, lc->proxy_from,
		    sizeof(*l->proxy_from) * (size_t)lc->nproxy_from);
	}
	return l;
}

struct listener *
listener_bind(const struct listen_conf *lc, int nworkers, char *err,
    size_t errlen)
{
	struct sockaddr_storage	 ss[MAX_ADDRS];
	socklen_t		 lens[MAX_ADDRS];
	struct listener		*l;
	int			 n, i, j, copies, fd;
	socklen_t		 blen;

	l = listener_new(lc);
	if (lc->inherited_fd != -1) {
		/* Socket activation: systemd bound it for us. */
		l->socks = xcalloc(1, sizeof(*l->socks));
		l->socks[0].fd = lc->inherited_fd;
		atomic_init(&l->socks[0].listener, l);
		l->socks[0].worker_idx = -1;
		l->nsocks = 1;
		l->reuseport = 0;
		evutil_make_socket_nonblocking(lc->inherited_fd);
		evutil_make_socket_closeonexec(lc->inherited_fd);
		goto bound;
	}
	if ((n = resolve(lc, ss, lens, err, errlen)) < 0)
		goto fail;
	copies = l->reuseport ? nworkers : 1;
	l->socks = xcalloc((size_t)(n * copies), sizeof(*l->socks));
	for (i = 0; i < n; i++) {
		for (j = 0; j < copies; j++) {
			fd = bind_one(&ss[i], lens[i], l->backlog, l->reuseport,
			    err, errlen);
			if (fd == -1)
				goto fail;
			/* A port 0 listener: the copies share the port. */
			if (j == 0 && copies > 1 && addr_port(
			    (struct sockaddr *)&ss[i]) == 0) {
				blen = lens[i];
				getsockname(fd, (struct sockaddr *)&ss[i], &blen);
			}
			l->socks[l->nsocks].fd = fd;
			atomic_init(&l->socks[l->nsocks].listener, l);
			l->socks[l->nsocks].worker_idx = l->reuseport ? j : -1;
			l->nsocks++;
		}
	}
bound:
	blen = sizeof(l->bound);
	getsockname(l->socks[0].fd, (struct sockaddr *)&l->bound, &blen);
	return l;
fail:
	for (i = 0; i < l->nsocks; i++)
		close(l->socks[i].fd);
	l->nsocks = 0;
	listener_unref(l);
	return NULL;
}

/* --- admission ------------------------------------------------------------ */

uint64_t
listener_conns_open(void)
{
	return atomic_load(&conns_open);
}

uint64_t
listener_max_connections(void)
{
	return atomic_load(&max_conns);
}

/* refuse: a connection not admitted is counted as refused (closed). */
static int
admit(struct listener *l, int refuse)
{
	uint64_t	n, max = atomic_load(&max_conns);

	n = atomic_fetch_add(&conns_open, 1) + 1;
	if (n > max) {
		atomic_fetch_sub(&conns_open, 1);
		if (refuse)
			atomic_fetch_add_explicit(&l->stats.refused, 1,
			    memory_order_relaxed);
		return 0;
	}
	atomic_fetch_add_explicit(&l->stats.accepted, 1,
	    memory_order_relaxed);
	/* At the limit: stop before the next one, not after refusing it. */
	if (n == max && pthread_equal(pthread_self(), main_thread))
		listener_pause_all();
	return 1;
}

int
listener_admit(struct listener *l)
{
	return admit(l, 1);
}

/* Main thread, from its queue: room was made since it was asked. */
static void
resume_cb(void *arg)
{
	(void)arg;
	atomic_store(&resume_pending, 0);
	if (atomic_load(&conns_open) < atomic_load(&max_conns))
		listener_resume_all();
}

/* Any thread: ask the main thread to look, once until it has. */
static void
request_resume(void)
{
	if (atomic_exchange(&resume_pending, 1) == 1)
		return;
	if (main_queue == NULL || msgq_call(main_queue, resume_cb, NULL) != 0)
		atomic_store(&resume_pending, 0);
}

void
listener_conn_done(struct listener *l)
{
	uint64_t	prev;

	prev = atomic_fetch_sub(&conns_open, 1);
	if (prev >= atomic_load(&max_conns))
		request_resume();
	listener_unref(l);
}

void
listener_set_max_connections(uint64_t n)
{
	atomic_store(&max_conns, n);
	/* A lower limit may pause accepting; a higher one resume it. */
	if (atomic_load(&conns_open) >= n)
		listener_pause_all();
	else
		listener_resume_all();
}

/* --- accepting ------------------------------------------------------------ */

static struct listener *
lsock_listener(struct lsock *ls)
{
	return atomic_load_explicit(&ls->listener, memory_order_acquire);
}

/* One accept, non-blocking and close-on-exec; -1 with errno. */
static int
accept_socket(int fd, struct sockaddr_storage *ss, socklen_t *len)
{
	*len = sizeof(*ss);
	return sock_accept(fd, (struct sockaddr *)ss, len);
}

/* An admitted connection, with a reference on its listener: the main
 * thread hands it to a worker; a worker with a reuseport socket serves it
 * itself. */
static void
lsock_serve(struct lsock *ls, struct listener *l, int fd,
    const struct sockaddr *sa, socklen_t len)
{
	listener_ref(l);
	if (ls->worker == NULL)
		worker_dispatch_conn(fd, l, sa, len);
	else
		worker_serve(ls->worker, fd, l, sa, len);
}

/* An accept worked: the end of a pause for descriptors, if any. */
static void
lsock_accepted(struct lsock *ls, struct listener *l)
{
	if (!ls->emfile_reported)
		return;
	log_notice("listener %s: accepting again after %llu failed "
	    "accept%s", l->name, (unsigned long long)ls->emfile_failures,
	    ls->emfile_failures == 1 ? "" : "s");
	ls->emfile_failures = 0;
	ls->emfile_reported = 0;
}

/* Refused at the limit. The main thread has paused every socket it owns;
 * a worker pauses its own and asks the main thread to look, since a close
 * may have come between the count and the pause and found nothing to
 * resume. */
static void
lsock_refuse(struct lsock *ls, int fd)
{
	close(fd);
	if (ls->worker == NULL) {
		listener_pause_all();
		return;
	}
	ls->paused_limit = 1;
	lsock_arm(ls);
	if (atomic_load(&conns_open) < atomic_load(&max_conns))
		request_resume();
}

/*
 * Reuseport: workers accept on their own sockets at once, so one may
 * accept just after another took the last place. The shared socket would
 * have left that connection in the backlog; this one holds it, unread,
 * with its socket paused, until a place frees (at most one per socket).
 */
static void
lsock_park(struct lsock *ls, int fd, const struct sockaddr_storage *ss,
    socklen_t len)
{
	ls->parked_fd = fd;
	ls->parked_sa = *ss;
	ls->parked_len = len;
	ls->paused_limit = 1;
	lsock_arm(ls);
	if (atomic_load(&conns_open) < atomic_load(&max_conns))
		request_resume();
}

/* Reuseport: the last place is taken; stop before the next connection,
 * as the main thread does for its sockets, so that it waits in the
 * backlog. */
static void
lsock_pause_at_limit(struct lsock *ls)
{
	if (atomic_load(&conns_open) < atomic_load(&max_conns))
		return;
	ls->paused_limit = 1;
	lsock_arm(ls);
	/* A close in between would have found this socket running. */
	if (atomic_load(&conns_open) < atomic_load(&max_conns))
		request_resume();
}

/* Serve the connection held, if there is room now; 1 when the socket may
 * accept again. */
static int
lsock_unpark(struct lsock *ls)
{
	struct listener	*l = lsock_listener(ls);
	socklen_t	 len = ls->parked_len;

	if (len == 0)
		return 1;
	if (!admit(l, 0))
		return 0;
	ls->parked_len = 0;
	lsock_serve(ls, l, ls->parked_fd, (struct sockaddr *)&ls->parked_sa,
	    len);
	return atomic_load(&conns_open) < atomic_load(&max_conns);
}

/* Stopping: the connection held is served if the stop is graceful and
 * there is room, or else closed (and counted as refused). */
static void
lsock_drop_parked(struct lsock *ls, int graceful)
{
	if (ls->parked_len == 0)
		return;
	if (graceful)
		lsock_unpark(ls);
	if (ls->parked_len != 0) {
		close(ls->parked_fd);
		ls->parked_len = 0;
		atomic_fetch_add_explicit(&lsock_listener(ls)->stats.refused,
		    1, memory_order_relaxed);
	}
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lsock	*ls = arg;

	(void)fd;
	(void)what;
	ls->paused_emfile = 0;
	lsock_arm(ls);
}

static void
accept_failed(struct lsock *ls, int err)
{
	struct listener	*l = lsock_listener(ls);
	struct timeval	 tv;

	atomic_fetch_add_explicit(&l->stats.accept_errors, 1,
	    memory_order_relaxed);
	if (err != EMFILE && err != ENFILE && err != ENOBUFS &&
	    err != ENOMEM) {
		log_debug("listener %s: accept: %s", l->name, strerror(err));
		return;
	}
	/* One line for the whole pause, however many retries fail, and one
	 * more with the count when an accept works again; a socket that
	 * keeps reaching the limit says so at most every EMFILE_LOG_US. */
	ls->emfile_failures++;
	if (!ls->emfile_reported && (ls->emfile_logged_us == 0 ||
	    now_us() - ls->emfile_logged_us >= EMFILE_LOG_US)) {
		log_warnx("listener %s: accept: %s; pausing, retrying every "
		    "%d ms", l->name, strerror(err), EMFILE_RETRY_MS);
		ls->emfile_reported = 1;
		ls->emfile_logged_us = now_us();
	}
	ls->paused_emfile = 1;
	lsock_arm(ls);
	evtimer_add(ls->retry_timer, tv_from_us(&tv, EMFILE_RETRY_MS * 1000));
}

static void
accept_cb(evutil_socket_t sfd, short what, void *arg)
{
	struct lsock		*ls = arg;
	struct listener		*l;
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 fd, n;

	(void)what;
	for (n = 0; n < ACCEPT_BATCH && ls->armed; n++) {
		if ((fd = accept_socket(sfd, &ss, &len)) == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				accept_failed(ls, errno);
			return;
		}
		l = lsock_listener(ls);
		lsock_accepted(ls, l);
		if (ls->worker != NULL && !admit(l, 0)) {
			lsock_park(ls, fd, &ss, len);
			return;
		}
		if (ls->worker == NULL && !listener_admit(l)) {
			lsock_refuse(ls, fd);
			return;
		}
		lsock_serve(ls, l, fd, (struct sockaddr *)&ss, len);
		if (ls->worker != NULL)
			lsock_pause_at_limit(ls);
	}
}

/* Watch the socket or not, to match its pause flags. */
static void
lsock_arm(struct lsock *ls)
{
	int	want = !ls->paused_emfile && !ls->paused_limit;

	if (ls->accept_ev == NULL || want == ls->armed)
		return;
	if (want && event_add(ls->accept_ev, NULL) != 0) {
		log_warnx("listener %s: cannot watch its socket",
		    lsock_listener(ls)->name);
		return;
	}
	if (!want)
		event_del(ls->accept_ev);
	ls->armed = want;
}

static void
lsock_start(struct lsock *ls)
{
	struct event_base	*base;

	if (ls->worker_idx >= 0)
		ls->worker = worker_at(ls->worker_idx);
	base = ls->worker != NULL ? ls->worker->base : main_base;
	ls->accept_ev = event_new(base, ls->fd, EV_READ | EV_PERSIST,
	    accept_cb, ls);
	ls->retry_timer = evtimer_new(base, retry_cb, ls);
	if (ls->accept_ev == NULL || ls->retry_timer == NULL)
		fatalx("listener %s: cannot watch its socket",
		    lsock_listener(ls)->name);
	ls->armed = 0;
	ls->paused_limit = paused;
	lsock_arm(ls);
}

static void
lsock_start_on_worker(struct worker *w, void *arg)
{
	(void)w;
	lsock_start(arg);
}

static void
lsock_stop_on_worker(struct worker *w, void *arg)
{
	(void)w;
	lsock_stop(arg, 1);
}

static void
lsock_close_on_worker(struct worker *w, void *arg)
{
	(void)w;
	lsock_stop(arg, 0);
}

static void
lsock_resume_on_worker(struct worker *w, void *arg)
{
	struct lsock	*ls = arg;

	(void)w;
	if (!lsock_unpark(ls))
		return;
	ls->paused_limit = 0;
	lsock_arm(ls);
}

void
listener_enable(struct listener *l, int running_now)
{
	char	where[ADDR_STRLEN];
	int	i;

	/* Once workers run, their bases are theirs alone: ask them. */
	for (i = 0; i < l->nsocks; i++) {
		if (running_now && l->socks[i].worker_idx >= 0)
			worker_call(worker_at(l->socks[i].worker_idx),
			    lsock_start_on_worker, &l->socks[i]);
		else
			lsock_start(&l->socks[i]);
	}
	addr_format((struct sockaddr *)&l->bound, where, sizeof(where));
	log_info("listening on %s (%s, %s, %s%s%s%s)", where, l->name,
	    mode_name(l->mode), l->tls ? "tls" : "plain",
	    l->reuseport ? ", reuseport" : "",
	    l->proxy != PROXY_OFF ? ", proxy protocol " : "",
	    l->proxy != PROXY_OFF ? proxy_mode_name(l->proxy) : "");
}

/*
 * Connections the kernel has already completed are ours to serve: closing
 * the socket would reset them. Taken before a graceful stop or a removal.
 */
static void
lsock_take_backlog(struct lsock *ls)
{
	struct listener		*l = lsock_listener(ls);
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 fd, n;

	for (n = 0; n < BACKLOG_TAKE; n++) {
		if ((fd = accept_socket(ls->fd, &ss, &len)) == -1)
			return;
		if (!listener_admit(l)) {
			close(fd);
			continue;
		}
		lsock_serve(ls, l, fd, (struct sockaddr *)&ss, len);
	}
}

static void
lsock_stop(struct lsock *ls, int take_backlog)
{
	lsock_drop_parked(ls, take_backlog);
	if (take_backlog && ls->fd != -1)
		lsock_take_backlog(ls);
	if (ls->retry_timer != NULL) {
		event_free(ls->retry_timer);
		ls->retry_timer = NULL;
	}
	if (ls->accept_ev != NULL) {
		event_free(ls->accept_ev);
		ls->accept_ev = NULL;
	}
	ls->armed = 0;
	if (ls->fd != -1)
		close(ls->fd);
	ls->fd = -1;
}

/* Stop every socket of l where it lives: the main thread's here, a
 * worker's through its queue (graceful: after the backlog is taken). */
static void
listener_stop(struct listener *l, int graceful)
{
	int	i;

	for (i = 0; i < l->nsocks; i++) {
		if (l->socks[i].worker_idx < 0)
			lsock_stop(&l->socks[i], graceful);
		else if (l->socks[i].worker != NULL)
			worker_call(l->socks[i].worker, graceful ?
			    lsock_stop_on_worker : lsock_close_on_worker,
			    &l->socks[i]);
	}
}

void
listener_stop_all(int graceful)
{
	struct listener	*l;

	stopped = 1;
	TAILQ_FOREACH(l, running, entry)
		listener_stop(l, graceful);
}

void
listener_close(struct listener *l)
{
	int	i;

	/* The workers have stopped: every socket is the caller's now. */
	for (i = 0; i < l->nsocks; i++)
		lsock_stop(&l->socks[i], 0);
}

void
listener_remove(struct listener *l)
{
	char	where[ADDR_STRLEN];

	listener_stop(l, 1);
	addr_format((struct sockaddr *)&l->bound, where, sizeof(where));
	log_info("no longer listening on %s (%s)", where, l->name);
}

void
listener_discard(struct listener *l)
{
	int	i;

	/* Bound by a reload that failed: never started. */
	for (i = 0; i < l->nsocks; i++)
		close(l->socks[i].fd);
	l->nsocks = 0;
	listener_unref(l);
}

void
listener_adopt(struct listener *to, struct listener *from)
{
	int	i;

	free(to->socks);
	to->socks = from->socks;
	to->nsocks = from->nsocks;
	to->bound = from->bound;
	from->socks = NULL;
	from->nsocks = 0;
	for (i = 0; i < to->nsocks; i++)
		atomic_store_explicit(&to->socks[i].listener, to,
		    memory_order_release);
}

/* Same family, address and port (and IPv6 scope). */
static int
sockaddr_equal(const struct sockaddr_storage *a,
    const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a;
		const struct sockaddr_in *y = (const void *)b;

		return x->sin_port == y->sin_port &&
		    x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a;
		const struct sockaddr_in6 *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		    x->sin6_scope_id == y->sin6_scope_id &&
		    memcmp(&x->sin6_addr, &y->sin6_addr,
		    sizeof(x->sin6_addr)) == 0;
	}
	return 0;
}

/* Is ss the address one of l's sockets is bound to? */
static int
listener_has_address(const struct listener *l,
    const struct sockaddr_storage *ss)
{
	struct sockaddr_storage	bound;
	socklen_t		len;
	int			i;

	for (i = 0; i < l->nsocks; i++) {
		len = sizeof(bound);
		if (l->socks[i].fd != -1 && getsockname(l->socks[i].fd,
		    (struct sockaddr *)&bound, &len) == 0 &&
		    sockaddr_equal(&bound, ss))
			return 1;
	}
	return 0;
}

/*
 * Would lc bind l's sockets? The same text is; otherwise the addresses
 * are compared as resolved ("localhost:7" is "127.0.0.1:7"): every new
 * one must be a socket l has, and l must have no socket besides. Backlog
 * and reuseport are settings of the socket kept, not a reason to bind
 * another one on the same address (which fails).
 */
int
listener_same_socket(const struct listener *l, const struct listen_conf *lc)
{
	struct sockaddr_storage	 ss[MAX_ADDRS];
	socklen_t		 lens[MAX_ADDRS];
	struct addr_spec	 spec;
	const char		*why;
	char			 err[256];
	int			 n, i, j, found, addrs;

	if (l->nsocks == 0)
		return 0;
	if (addr_parse(l->address, "127.0.0.1", &spec, &why) == 0 &&
	    strcmp(spec.host, lc->spec.host) == 0 &&
	    spec.port == lc->spec.port && spec.wildcard == lc->spec.wildcard)
		return 1;
	if (lc->spec.port == 0 || lc->inherited_fd != -1)
		return 0;
	if ((n = resolve(lc, ss, lens, err, sizeof(err))) <= 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!listener_has_address(l, &ss[i]))
			return 0;
	/* Distinct addresses of l's sockets (reuseport has copies). */
	for (addrs = 0, i = 0; i < l->nsocks; i++) {
		struct sockaddr_storage	a, b;
		socklen_t		len = sizeof(a);

		if (getsockname(l->socks[i].fd, (struct sockaddr *)&a,
		    &len) != 0)
			return 0;
		for (found = 0, j = 0; j < i && !found; j++) {
			len = sizeof(b);
			found = getsockname(l->socks[j].fd,
			    (struct sockaddr *)&b, &len) == 0 &&
			    sockaddr_equal(&a, &b);
		}
		addrs += !found;
	}
	return addrs == n;
}

void
listener_set_backlog(struct listener *l, int backlog)
{
	int	i;

	/* listen(2) again on a listening socket only resizes its queue. */
	for (i = 0; i < l->nsocks; i++) {
		if (l->socks[i].fd != -1 && listen(l->socks[i].fd,
		    backlog) != 0)
			log_warn("listener %s: backlog %d", l->name, backlog);
	}
	l->backlog = backlog;
}

static void
listener_pause_all(void)
{
	struct listener	*l;
	int		 i;

	if (paused)
		return;
	paused = 1;
	log_notice("max_connections (%llu) reached: not accepting",
	    (unsigned long long)atomic_load(&max_conns));
	TAILQ_FOREACH(l, running, entry) {
		for (i = 0; i < l->nsocks; i++) {
			if (l->socks[i].worker_idx >= 0)
				continue;
			l->socks[i].paused_limit = 1;
			lsock_arm(&l->socks[i]);
		}
	}
}

static void
listener_resume_all(void)
{
	struct listener	*l;
	struct lsock	*ls;
	int		 i;

	if (stopped)
		return;
	if (paused)
		log_notice("below max_connections: accepting again");
	paused = 0;
	TAILQ_FOREACH(l, running, entry) {
		for (i = 0; i < l->nsocks; i++) {
			ls = &l->socks[i];
			if (ls->worker_idx < 0) {
				ls->paused_limit = 0;
				lsock_arm(ls);
			} else if (ls->worker != NULL)
				/* Only a worker may look at its own
				 * sockets. */
				worker_call(ls->worker,
				    lsock_resume_on_worker, ls);
		}
	}
}
