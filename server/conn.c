/*
 * conn.c: plain (non-TLS) connections and the three modes. This is the hot
 * path. A connection waits on one persistent event; a readable socket is
 * read once into the worker's shared buffer and, in echo mode, written
 * straight back, so the usual request costs one read and one write and no
 * copy. Only what the socket does not take is copied into the connection's
 * own evbuffer, and when that passes max_buffer the connection stops reading
 * until it drains (backpressure): a client that never reads cannot make
 * echod grow.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "conn.h"
#include "log.h"
#include "server.h"
#include "util.h"
#include "worker.h"

/*
 * RFC 864 character generator: lines of 72 printable characters, each line
 * starting one character further into the 95 printable ASCII characters,
 * ended by CRLF. The pattern repeats every 95 lines; it is stored with one
 * write's worth of overlap so that any offset can be sent without wrapping.
 */
#define CHARGEN_LINE	72
#define CHARGEN_PERIOD	(95 * (CHARGEN_LINE + 2))

static char		chargen_pattern[CHARGEN_PERIOD + CHARGEN_CHUNK];
static conn_release_fn	release_hook;
/* The worker this thread runs (conn_thread_attach). */
static __thread struct worker *home;

static void	conn_cb(evutil_socket_t, short, void *);

void
conn_thread_attach(struct worker *w)
{
	home = w;
}

void
conn_init(conn_release_fn release)
{
	size_t	i, line, col, len = 0;

	release_hook = release;

	for (line = 0; line < 95; line++) {
		for (col = 0; col < CHARGEN_LINE; col++)
			chargen_pattern[len++] = (char)(' ' +
			    (line + col) % 95);
		chargen_pattern[len++] = '\r';
		chargen_pattern[len++] = '\n';
	}
	for (i = 0; len < sizeof(chargen_pattern); i++)
		chargen_pattern[len++] = chargen_pattern[i];
}

const char *
chargen_at(unsigned int pos)
{
	return chargen_pattern + pos;
}

unsigned int
chargen_advance(unsigned int pos, size_t sent)
{
	return (unsigned int)((pos + sent) % CHARGEN_PERIOD);
}

static void
conn_socket_setup(int fd)
{
	int	one = 1;

	/*
	 * Replies go out at once, not after a delayed ACK. The socket is
	 * already non-blocking: the listener accepts with sock_accept().
	 */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		log_debug("TCP_NODELAY: %s", strerror(errno));
}

void
conn_out_add(struct evbuffer **out, const void *buf, size_t len)
{
	if (*out == NULL && (*out = evbuffer_new()) == NULL)
		fatalx("out of memory for a connection buffer");
	if (evbuffer_add(*out, buf, len) != 0)
		fatalx("out of memory for a connection buffer");
}

static const char *
close_reason_name(enum close_reason reason)
{
	switch (reason) {
	case CLOSE_CLIENT:
		return "client closed";
	case CLOSE_IDLE:
		return "idle timeout";
	case CLOSE_ERROR:
		return "error";
	case CLOSE_SHUTDOWN:
		return "shutdown";
	case CLOSE_HANDSHAKE:
		return "handshake failed";
	}
	return "?";
}

static size_t
pending(const struct conn *c)
{
	return c->out == NULL ? 0 : evbuffer_get_length(c->out);
}

void
conn_account_close(struct worker *w, const struct conn *c,
    enum close_reason reason, const char *tls_version, const char *tls_cipher)
{
	struct listener		*l = c->listener;
	struct access_rec	 rec;

	if (reason == CLOSE_IDLE)
		counter_add(&w->stats.timed_out, 1);
	else if (reason == CLOSE_ERROR)
		counter_add(&w->stats.errors, 1);
	counter_sub(&w->stats.conns_open, 1);
	atomic_fetch_add_explicit(&l->stats.closed, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&l->stats.bytes_in, c->bytes_in,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&l->stats.bytes_out, c->bytes_out,
	    memory_order_relaxed);
	if (!accesslog_enabled())
		return;
	rec.duration_us = now_us() - c->start_us;
	rec.start_wall_us = wall_us() - rec.duration_us;
	rec.listener = l->name;
	rec.peer = &c->peer.sa;
	rec.via = c->via != NULL ? &c->via->sa : NULL;
	rec.bytes_in = c->bytes_in;
	rec.bytes_out = c->bytes_out;
	rec.reason = close_reason_name(reason);
	rec.tls_version = tls_version;
	rec.tls_cipher = tls_cipher;
	accesslog_record(&rec);
}

void
conn_release(struct worker *w, struct listener *l)
{
	release_hook(w, l);
}

/* Free a connection: closes the socket, counts, writes the access line. */
static void
conn_free(struct conn *c, enum close_reason reason)
{
	struct worker	*w = home;
	struct listener	*l = c->listener;

	event_del(&c->ev);
	close(c->fd);
	if (c->out != NULL)
		evbuffer_free(c->out);
	conn_account_close(w, c, reason, NULL, NULL);
	free(c->via);
	free(c);
	conn_release(w, l);
}

/* Wait for what the connection needs now; re-arm only on a change. */
static void
conn_set_events(struct conn *c, short events)
{
	struct worker	*w = home;

	if (events == c->events)
		return;
	if (c->events != 0)
		event_del(&c->ev);
	event_assign(&c->ev, w->base, c->fd, events | EV_PERSIST, conn_cb, c);
	if (event_add(&c->ev, w->idle_timeout) != 0)
		log_warnx("worker %d: cannot watch a connection", w->id);
	c->events = events;
}

static void
conn_update(struct conn *c)
{
	struct worker	*w = home;
	size_t		 out = pending(c);
	short		 events;

	switch (c->listener->mode) {
	case MODE_DISCARD:
		events = EV_READ;
		break;
	case MODE_CHARGEN:
		events = c->eof ? EV_WRITE : EV_READ | EV_WRITE;
		break;
	case MODE_ECHO:
	default:
		if (out == 0)
			events = EV_READ;
		else if (c->eof)
			events = EV_WRITE;
		else if (out > w->max_buffer) {
			events = EV_WRITE;
			if (c->events & EV_READ)
				counter_add(&w->stats.backpressure, 1);
		} else
			events = EV_READ | EV_WRITE;
		break;
	}
	conn_set_events(c, events);
}

static void
count_out(struct conn *c, size_t n)
{
	c->bytes_out += n;
	counter_add(&home->stats.bytes_out, n);
}

/* A write failed: 0 when the socket is only full, else the connection is
 * freed (-1); a peer that reset or went away closed it, not an error. */
static int
conn_write_failed(struct conn *c)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return 0;
	conn_free(c, errno == EPIPE || errno == ECONNRESET ? CLOSE_CLIENT :
	    CLOSE_ERROR);
	return -1;
}

/* Send buf back, keeping what the socket does not take. -1: freed. */
static int
conn_echo(struct conn *c, const char *buf, size_t len)
{
	ssize_t	n;

	if (pending(c) == 0) {
		n = write(c->fd, buf, len);
		if (n < 0) {
			if (conn_write_failed(c) != 0)
				return -1;
			n = 0;
		}
		count_out(c, (size_t)n);
		buf += n;
		len -= (size_t)n;
		if (len == 0)
			return 0;
	}
	conn_out_add(&c->out, buf, len);
	return 0;
}

static int
conn_readable(struct conn *c)
{
	struct worker	*w = home;
	ssize_t		 n;

	n = read(c->fd, w->scratch, w->scratch_len);
	if (n > 0) {
		c->bytes_in += (size_t)n;
		counter_add(&w->stats.bytes_in, (uint64_t)n);
		if (c->listener->mode == MODE_ECHO)
			return conn_echo(c, w->scratch, (size_t)n);
		return 0;
	}
	if (n == 0) {
		c->eof = 1;
		/* Half-close: what is still owed goes out first. */
		if (c->listener->mode == MODE_CHARGEN || pending(c) > 0)
			return 0;
		conn_free(c, CLOSE_CLIENT);
		return -1;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return 0;
	conn_free(c, errno == ECONNRESET ? CLOSE_CLIENT : CLOSE_ERROR);
	return -1;
}

static int
conn_flush(struct conn *c)
{
	int	n;

	n = evbuffer_write(c->out, c->fd);
	if (n < 0)
		return conn_write_failed(c);
	count_out(c, (size_t)n);
	if (c->eof && pending(c) == 0) {
		conn_free(c, CLOSE_CLIENT);
		return -1;
	}
	return 0;
}

static int
conn_chargen(struct conn *c)
{
	ssize_t	n;

	n = write(c->fd, chargen_at(c->chargen_pos), CHARGEN_CHUNK);
	if (n < 0)
		return conn_write_failed(c);
	count_out(c, (size_t)n);
	c->chargen_pos = (uint16_t)chargen_advance(c->chargen_pos, (size_t)n);
	return 0;
}

static void
conn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;

	(void)fd;
	if (what & EV_TIMEOUT) {
		conn_free(c, CLOSE_IDLE);
		return;
	}
	if (what & EV_WRITE) {
		if (c->listener->mode == MODE_CHARGEN) {
			if (conn_chargen(c) != 0)
				return;
		} else if (pending(c) > 0 && conn_flush(c) != 0)
			return;
	}
	if ((what & EV_READ) && conn_readable(c) != 0)
		return;
	conn_update(c);
}

static void
conn_addr_set(union conn_addr *a, const struct sockaddr *sa)
{
	memset(a, 0, sizeof(*a));
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET)
		memcpy(&a->sin, sa, sizeof(a->sin));
	else if (sa->sa_family == AF_INET6)
		memcpy(&a->sin6, sa, sizeof(a->sin6));
	else
		a->sa.sa_family = sa->sa_family;
}

void
conn_setup(struct worker *w, struct conn *c, int fd, struct listener *l,
    const struct sockaddr *peer, socklen_t peerlen,
    const struct sockaddr *via)
{
	conn_socket_setup(fd);
	c->listener = l;
	c->fd = fd;
	c->start_us = now_us();
	if (peerlen > sizeof(c->peer))
		peerlen = sizeof(c->peer);
	memcpy(&c->peer, peer, peerlen);
	c->via = NULL;
	if (via != NULL) {
		c->via = xmalloc(sizeof(*c->via));
		conn_addr_set(c->via, via);
	}
	counter_add(&w->stats.conns_open, 1);
	counter_add(&w->stats.conns_total, 1);
}

int
conn_start(struct worker *w, int fd, struct listener *l,
    const struct sockaddr *peer, socklen_t peerlen,
    const struct sockaddr *via)
{
	struct conn	*c;

	c = xcalloc(1, sizeof(*c));
	conn_setup(w, c, fd, l, peer, peerlen, via);
	conn_update(c);
	return 0;
}

int
conn_start_read(struct worker *w, int fd, struct listener *l,
    const struct sockaddr *peer, socklen_t peerlen,
    const struct sockaddr *via, const char *data, size_t len)
{
	struct conn	*c;

	c = xcalloc(1, sizeof(*c));
	conn_setup(w, c, fd, l, peer, peerlen, via);
	/* As if conn_readable() had just read them. */
	if (len > 0) {
		c->bytes_in += len;
		counter_add(&w->stats.bytes_in, len);
		if (l->mode == MODE_ECHO && conn_echo(c, data, len) != 0)
			return 0;	/* served; closed already */
	}
	conn_update(c);
	return 0;
}

struct event_args {
	event_callback_fn	  cb;
	void			**v;
	size_t			  n, cap;
};

static int
collect_cb(const struct event_base *base, const struct event *ev, void *arg)
{
	struct event_args	*list = arg;

	(void)base;
	if (event_get_callback(ev) != list->cb)
		return 0;
	if (list->n == list->cap) {
		list->cap = list->cap ? list->cap * 2 : 64;
		list->v = xrealloc(list->v, list->cap * sizeof(*list->v));
	}
	list->v[list->n++] = event_get_callback_arg(ev);
	return 0;
}

void **
conn_collect_events(struct event_base *base, event_callback_fn cb, size_t *n)
{
	struct event_args	list = { cb, NULL, 0, 0 };

	event_base_foreach_event(base, collect_cb, &list);
	*n = list.n;
	return list.v;
}

void
conn_close_all(struct worker *w)
{
	void	**v;
	size_t	  i, n;

	v = conn_collect_events(w->base, conn_cb, &n);
	for (i = 0; i < n; i++)
		conn_free(v[i], CLOSE_SHUTDOWN);
	free(v);
}
