/*
 * listener.c: binding, accepting and admission. Sockets are bound at startup
 * (possibly as root) and accepted on once the workers exist. Each socket is
 * an lsock with one owner thread. Two things pause an lsock instead of
 * letting it spin: reaching max_connections (resumed when a connection
 * closes) and running out of file descriptors (EMFILE/ENFILE: retried on a
 * short timer, since libevent's listener would otherwise wake up at once,
 * forever, for the connection it cannot accept).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "conn.h"
#include "listener.h"
#include "log.h"
#include "proxy_conn.h"
#include "server.h"
#include "sock.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

#define EMFILE_RETRY_MS	100
#define EMFILE_LOG_US	(10 * 1000000ULL)	/* one pause line per 10 s */
#define MAX_ADDRS	8

static void	lsock_arm(struct lsock *);
static void	lsock_stop(struct lsock *, int);

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
listener_bind(const struct listen_conf *lc, char *err, size_t errlen)
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
	copies = l->reuseport ? srv->nworkers : 1;
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

static struct worker *
next_worker(void)
{
	struct worker	*w = srv->workers[srv->next_worker];

	srv->next_worker = (srv->next_worker + 1) % srv->nworkers;
	return w;
}

static struct listener *
lsock_listener(struct lsock *ls)
{
	return atomic_load_explicit(&ls->listener, memory_order_acquire);
}

/* An admitted connection: the main thread hands it to a worker; a worker
 * with a reuseport socket serves it itself. */
static void
lsock_serve(struct lsock *ls, struct listener *l, int fd,
    const struct sockaddr *sa, socklen_t len)
{
	if (ls->worker == NULL)
		worker_dispatch_conn(next_worker(), fd, l, sa, len);
	else if (l->proxy != PROXY_OFF)
		proxy_conn_start(ls->worker, fd, l, sa, len);
	else if (l->tls)
		tls_conn_start(ls->worker, fd, l, sa, len, NULL);
	else
		conn_start(ls->worker, fd, l, sa, len, NULL);
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

static void
accept_main_cb(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct lsock	*ls = arg;
	struct listener	*l = lsock_listener(ls);

	(void)evl;
	lsock_accepted(ls, l);
	if (!server_conn_admit(l)) {
		close(fd);
		listener_pause_all();
		return;
	}
	lsock_serve(ls, l, fd, sa, (socklen_t)salen);
}

/* Worker thread, reuseport: serve it here. */
static void
accept_worker_cb(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct lsock	*ls = arg;
	struct listener	*l = lsock_listener(ls);

	(void)evl;
	lsock_accepted(ls, l);
	if (!server_conn_admit(l)) {
		close(fd);
		ls->paused_limit = 1;
		lsock_arm(ls);
		/* A close may have come between our count and the pause and
		 * found nothing to resume: ask the main thread to look. */
		if (atomic_load(&srv->conns_open) < atomic_load(&srv->max_conns))
			server_notify_main(MAIN_RESUME_ACCEPT);
		return;
	}
	lsock_serve(ls, l, fd, sa, (socklen_t)salen);
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
accept_error_cb(struct evconnlistener *evl, void *arg)
{
	struct lsock	*ls = arg;
	struct listener	*l = lsock_listener(ls);
	struct timeval	 tv = { 0, EMFILE_RETRY_MS * 1000 };
	int		 err = EVUTIL_SOCKET_ERROR();

	(void)evl;
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
	evtimer_add(ls->retry_timer, &tv);
}

/* Enable or disable the socket to match its pause flags. */
static void
lsock_arm(struct lsock *ls)
{
	if (ls->evl == NULL)
		return;
	if (ls->paused_emfile || ls->paused_limit)
		evconnlistener_disable(ls->evl);
	else
		evconnlistener_enable(ls->evl);
}

static void
lsock_start(struct lsock *ls)
{
	struct event_base	*base;

	if (ls->worker_idx >= 0)
		ls->worker = srv->workers[ls->worker_idx];
	base = ls->worker != NULL ? ls->worker->base : srv->base;
	/* Not LEV_OPT_CLOSE_ON_FREE: a reload may hand the socket on. */
	ls->evl = evconnlistener_new(base, ls->worker != NULL ?
	    accept_worker_cb : accept_main_cb, ls, LEV_OPT_CLOSE_ON_EXEC, 0,
	    ls->fd);
	if (ls->evl == NULL)
		fatalx("listener %s: cannot watch its socket",
		    lsock_listener(ls)->name);
	evconnlistener_set_error_cb(ls->evl, accept_error_cb);
	ls->retry_timer = evtimer_new(base, retry_cb, ls);
	if (ls->retry_timer == NULL)
		fatalx("listener %s: cannot make a timer",
		    lsock_listener(ls)->name);
	if (ls->worker != NULL) {
		struct worker *w = ls->worker;

		w->reuse = xrealloc(w->reuse, sizeof(*w->reuse) *
		    (size_t)(w->nreuse + 1));
		w->reuse[w->nreuse++] = ls;
	}
	ls->paused_limit = srv->accept_paused;
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
	struct lsock	*ls = arg;
	int		 i;

	for (i = 0; i < w->nreuse; i++) {
		if (w->reuse[i] == ls) {
			w->reuse[i] = w->reuse[--w->nreuse];
			break;
		}
	}
	lsock_stop(ls, 1);
}

void
listener_enable(struct listener *l, int running)
{
	char	where[ADDR_STRLEN];
	int	i;

	/* Once workers run, their bases are theirs alone: ask them. */
	for (i = 0; i < l->nsocks; i++) {
		if (running && l->socks[i].worker_idx >= 0)
			worker_call(srv->workers[l->socks[i].worker_idx],
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

	for (n = 0; n < 65536; n++) {
		len = sizeof(ss);
		fd = sock_accept(ls->fd, (struct sockaddr *)&ss, &len);
		if (fd == -1)
			return;
		if (!server_conn_admit(l)) {
			close(fd);
			continue;
		}
		lsock_serve(ls, l, fd, (struct sockaddr *)&ss, len);
	}
}

static void
lsock_stop(struct lsock *ls, int take_backlog)
{
	if (take_backlog && ls->fd != -1)
		lsock_take_backlog(ls);
	if (ls->retry_timer != NULL) {
		event_free(ls->retry_timer);
		ls->retry_timer = NULL;
	}
	if (ls->evl != NULL) {
		evconnlistener_free(ls->evl);
		ls->evl = NULL;
	}
	if (ls->fd != -1)
		close(ls->fd);
	ls->fd = -1;
}

void
listener_close(struct listener *l, int graceful)
{
	int	i;

	/* Reuseport sockets are closed by their workers (stop/free). */
	for (i = 0; i < l->nsocks; i++) {
		if (l->socks[i].worker_idx < 0)
			lsock_stop(&l->socks[i], graceful);
	}
}

void
listener_remove(struct listener *l)
{
	char	where[ADDR_STRLEN];
	int	i;

	for (i = 0; i < l->nsocks; i++) {
		if (l->socks[i].worker_idx >= 0)
			worker_call(srv->workers[l->socks[i].worker_idx],
			    lsock_stop_on_worker, &l->socks[i]);
		else
			lsock_stop(&l->socks[i], 1);
	}
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

void
listener_pause_all(void)
{
	struct listener	*l;
	int		 i;

	if (srv->accept_paused)
		return;
	srv->accept_paused = 1;
	log_notice("max_connections (%llu) reached: not accepting",
	    (unsigned long long)srv->conf->max_connections);
	TAILQ_FOREACH(l, &srv->listeners, entry) {
		for (i = 0; i < l->nsocks; i++) {
			if (l->socks[i].worker_idx >= 0)
				continue;
			l->socks[i].paused_limit = 1;
			lsock_arm(&l->socks[i]);
		}
	}
}

void
listener_resume_all(void)
{
	struct listener	*l;
	int		 i;

	if (srv->stopping)
		return;
	if (srv->accept_paused)
		log_notice("below max_connections: accepting again");
	srv->accept_paused = 0;
	TAILQ_FOREACH(l, &srv->listeners, entry) {
		for (i = 0; i < l->nsocks; i++) {
			if (l->socks[i].worker_idx >= 0)
				continue;
			l->socks[i].paused_limit = 0;
			lsock_arm(&l->socks[i]);
		}
	}
	/* Every worker: only a worker may look at its own sockets. */
	for (i = 0; i < srv->nworkers; i++)
		worker_post(srv->workers[i], WMSG_RESUME_ACCEPT);
}

void
listener_worker_stop(struct worker *w, int graceful)
{
	int	i;

	for (i = 0; i < w->nreuse; i++)
		lsock_stop(w->reuse[i], graceful);
}

void
listener_worker_resume(struct worker *w)
{
	int	i;

	for (i = 0; i < w->nreuse; i++) {
		w->reuse[i]->paused_limit = 0;
		lsock_arm(w->reuse[i]);
	}
}

void
listener_worker_free(struct worker *w)
{
	listener_worker_stop(w, 0);
	free(w->reuse);
	w->reuse = NULL;
	w->nreuse = 0;
}
