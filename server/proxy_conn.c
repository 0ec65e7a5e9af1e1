/*
 * proxy_conn.c: the PROXY header phase of a connection, on its worker. A
 * listener with proxy_protocol hands each accepted socket here first; once
 * the header is read the socket goes on to conn_start() or
 * tls_conn_start() with the client's address from the header, and nothing
 * here is on the echo path any more.
 *
 * Not a byte after the header is lost. On a plain listener the socket is
 * read as the echo path reads it, in one large read, and what follows the
 * header is handed on to be served first (conn_start_read). On a TLS
 * listener OpenSSL reads the socket itself, so there the bytes that have
 * come are looked at with MSG_PEEK, the parser says how long the header
 * is, and exactly that many are read: the ClientHello stays in the socket.
 * When only part of a header has come, all of it is header (the parser
 * promises that), so it is read and kept here (a few bytes; the socket is
 * drained, so a level-triggered event does not fire again until more
 * arrives).
 *
 * A header that is wrong, incomplete when the peer closes, or not complete
 * within proxy_timeout closes the connection and is counted by reason; so
 * is a peer that is not in proxy_from, before a byte is read.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "conn.h"
#include "log.h"
#include "proxy.h"
#include "proxy_conn.h"
#include "server.h"
#include "util.h"
#include "worker.h"

struct proxy_conn {
	struct event		 ev;
	struct worker		*worker;
	struct listener		*listener;
	union conn_addr		 peer;		/* the socket's: the balancer */
	uint64_t		 start_us;
	uint64_t		 deadline_us;
	uint8_t			*buf;		/* header bytes read so far */
	size_t			 have;
	int			 fd;
	int			 armed;
};

static void	proxy_conn_cb(evutil_socket_t, short, void *);

static proxy_next_fn	serve_next;

void
proxy_conn_init(proxy_next_fn next)
{
	serve_next = next;
}

static void
pconn_free(struct proxy_conn *pc)
{
	if (pc->armed)
		event_del(&pc->ev);
	free(pc->buf);
	free(pc);
}

/* The access-log line of a connection that never got past its header. */
static void
log_rejected(struct listener *l, const struct sockaddr *peer,
    uint64_t start_us, uint64_t bytes_in, enum proxy_error why)
{
	struct access_rec	rec;
	char			reason[64];

	if (!accesslog_enabled())
		return;
	memset(&rec, 0, sizeof(rec));
	snprintf(reason, sizeof(reason), "proxy header %s",
	    proxy_error_name(why));
	rec.duration_us = now_us() - start_us;
	rec.start_wall_us = wall_us() - rec.duration_us;
	rec.listener = l->name;
	rec.peer = peer;
	rec.bytes_in = bytes_in;
	rec.reason = reason;
	accesslog_record(&rec);
}

static void
pconn_reject(struct worker *w, struct proxy_conn *pc, enum proxy_error why)
{
	struct listener	*l = pc->listener;
	char		 where[ADDR_STRLEN];
	int		 fd;

	counter_add(&w->stats.proxy_rejected[why], 1);
	if (log_level_enabled(LOG_LEVEL_DEBUG)) {
		addr_format(&pc->peer.sa, where, sizeof(where));
		log_debug("listener %s: %s: PROXY header %s", l->name,
		    where, proxy_error_name(why));
	}
	log_rejected(l, &pc->peer.sa, pc->start_us, pc->have, why);
	fd = pc->fd;
	pconn_free(pc);		/* unwatched before it is closed */
	close(fd);
	atomic_fetch_add_explicit(&l->stats.closed, 1, memory_order_relaxed);
	conn_release(w, l);
}

static void
log_header(const struct listener *l, const struct proxy_conn *pc,
    const struct proxy_result *r)
{
	char	via[ADDR_STRLEN], src[ADDR_STRLEN];

	if (!log_level_enabled(LOG_LEVEL_DEBUG))
		return;
	addr_format(&pc->peer.sa, via, sizeof(via));
	if (r->local)
		snprintf(src, sizeof(src), "local");
	else
		addr_format((const struct sockaddr *)&r->src, src, sizeof(src));
	log_debug("listener %s: PROXY v%d from %s: client %s%s%s%s%s%s%s%s%s",
	    l->name, r->version, via, src,
	    r->tlv.authority[0] ? ", authority " : "", r->tlv.authority,
	    r->tlv.alpn[0] ? ", alpn " : "", r->tlv.alpn,
	    r->tlv.ssl_version[0] ? ", ssl " : "", r->tlv.ssl_version,
	    r->tlv.ssl_cn[0] ? ", cn " : "", r->tlv.ssl_cn);
}

/* The header is read: serve the connection as its client's, starting
 * with the len bytes after the header that were read with it. */
static void
pconn_done(struct worker *w, struct proxy_conn *pc,
    const struct proxy_result *r, const char *data, size_t len)
{
	struct listener		*l = pc->listener;
	const struct sockaddr	*peer, *via;
	socklen_t		 plen;
	int			 fd = pc->fd;

	counter_add(r->version == 1 ? &w->stats.proxy_v1 : &w->stats.proxy_v2,
	    1);
	log_header(l, pc, r);
	if (r->local) {
		/* LOCAL (health checks) and UNKNOWN: the real endpoints. */
		counter_add(&w->stats.proxy_local, 1);
		peer = &pc->peer.sa;
		via = NULL;
	} else {
		peer = (const struct sockaddr *)&r->src;
		via = &pc->peer.sa;
	}
	plen = peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
	/*
	 * The next owner takes over the listener reference, and watches the
	 * socket, before our event goes: while our persistent event still
	 * holds the fd's read interest, libevent adds and then drops events
	 * on it without an epoll_ctl, so the hand-off costs no system call.
	 * peer and via are copied before pc goes.
	 */
	serve_next(w, fd, l, peer, plen, via, data, len);
	pconn_free(pc);
}

static void
pconn_keep(struct proxy_conn *pc, const uint8_t *p, size_t n)
{
	pc->buf = xrealloc(pc->buf, pc->have + n);
	memcpy(pc->buf + pc->have, p, n);
	pc->have += n;
}

/* recv, without EINTR. */
static ssize_t
pconn_recv(int fd, uint8_t *buf, size_t len, int flags)
{
	ssize_t	n;

	do
		n = recv(fd, buf, len, flags);
	while (n == -1 && errno == EINTR);
	return n;
}

/*
 * Look at what has come, take what is header. 1: wait for more; 0: done
 * with (served or closed).
 */
static int
pconn_read(struct worker *w, struct proxy_conn *pc)
{
	struct proxy_result	 r;
	uint8_t			*buf = (uint8_t *)w->scratch;
	size_t			 have = pc->have, got, want;
	ssize_t			 n;
	int			 peek = pc->listener->tls;

	/* Peeking, only the header's bytes are worth copying; reading, as
	 * much as the echo path would read. */
	want = peek ? PROXY_MAX - have : w->scratch_len - have;
	if (have > 0)
		memcpy(buf, pc->buf, have);
	n = pconn_recv(pc->fd, buf + have, want, peek ? MSG_PEEK : 0);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 1;
	if (n <= 0) {
		/* Closed or reset before the header ended. */
		pconn_reject(w, pc, PROXY_ERR_TRUNCATED);
		return 0;
	}
	got = have + (size_t)n;
	switch (proxy_parse(pc->listener->proxy, buf, got, &r)) {
	case PROXY_DONE:
		counter_add(&w->stats.bytes_in, r.len - have);
		if (!peek) {
			pconn_done(w, pc, &r, (const char *)buf + r.len,
			    got - r.len);
			return 0;
		}
		/* Only the header; it was peeked, so it is all there. */
		n = (ssize_t)(r.len - have);
		if (pconn_recv(pc->fd, buf + have, (size_t)n, 0) != n) {
			pconn_reject(w, pc, PROXY_ERR_TRUNCATED);
			return 0;
		}
		pconn_done(w, pc, &r, NULL, 0);
		return 0;
	case PROXY_MORE:
		/* All of it is header: take it, wait for the rest. */
		if (peek && pconn_recv(pc->fd, buf + have, (size_t)n, 0) != n) {
			pconn_reject(w, pc, PROXY_ERR_TRUNCATED);
			return 0;
		}
		counter_add(&w->stats.bytes_in, (uint64_t)n);
		pconn_keep(pc, buf + have, (size_t)n);
		return 1;
	case PROXY_FAIL:
	default:
		pconn_reject(w, pc, r.error);
		return 0;
	}
}

/* Wait for readable, never past the deadline (a header that trickles in
 * does not push it back). */
static void
pconn_wait(struct worker *w, struct proxy_conn *pc)
{
	uint64_t	now = now_us(), left;
	struct timeval	tv;

	left = pc->deadline_us > now ? pc->deadline_us - now : 0;
	tv_from_us(&tv, left);
	if (!pc->armed) {
		event_assign(&pc->ev, w->base, pc->fd, EV_READ | EV_PERSIST,
		    proxy_conn_cb, pc);
		pc->armed = 1;
	}
	if (event_add(&pc->ev, &tv) != 0)
		log_warnx("worker %d: cannot watch a connection", w->id);
}

static void
proxy_conn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_conn	*pc = arg;
	struct worker		*w = pc->worker;

	(void)fd;
	if (what & EV_TIMEOUT) {
		pconn_reject(w, pc, PROXY_ERR_TIMEOUT);
		return;
	}
	if (pconn_read(w, pc) == 0)
		return;
	if (now_us() >= pc->deadline_us) {
		pconn_reject(w, pc, PROXY_ERR_TIMEOUT);
		return;
	}
	pconn_wait(w, pc);
}

void
proxy_conn_start(struct worker *w, int fd, struct listener *l,
    const struct sockaddr *peer, socklen_t peerlen)
{
	struct proxy_conn	*pc;

	pc = xcalloc(1, sizeof(*pc));
	if (peerlen > sizeof(pc->peer))
		peerlen = sizeof(pc->peer);
	memcpy(&pc->peer, peer, peerlen);
	pc->worker = w;
	pc->listener = l;
	pc->fd = fd;
	pc->start_us = now_us();
	pc->deadline_us = pc->start_us + l->proxy_timeout_us;
	if (l->nproxy_from > 0 &&
	    !proxy_cidr_match(l->proxy_from, l->nproxy_from, &pc->peer.sa)) {
		pconn_reject(w, pc, PROXY_ERR_UNTRUSTED);
		return;
	}
	/* Not read at once: the worker nearly always has the socket before
	 * its first segment (the balancer sends once connected), so that
	 * would be one failed recv per connection. */
	pconn_wait(w, pc);
}

void
proxy_conn_close_all(struct worker *w)
{
	void	**v;
	size_t	  i, n;

	v = conn_collect_events(w->base, proxy_conn_cb, &n);
	for (i = 0; i < n; i++) {
		struct proxy_conn	*pc = v[i];
		struct listener		*l = pc->listener;
		int			 fd = pc->fd;

		pconn_free(pc);
		close(fd);
		atomic_fetch_add_explicit(&l->stats.closed, 1,
		    memory_order_relaxed);
		conn_release(w, l);
	}
	free(v);
}
