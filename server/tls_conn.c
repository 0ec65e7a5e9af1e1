/*
 * tls_conn.c: TLS connections on a worker, the TLS twin of conn.c.
 *
 * A TLS connection runs on one libevent event over its socket, like a plain
 * one, with OpenSSL reading and writing the socket itself (no
 * bufferevent_openssl): a readable socket costs one SSL_read into the
 * worker's shared buffer and one SSL_write of the same bytes, and only what
 * the socket does not take is kept in the connection's own evbuffer. With
 * SSL_MODE_RELEASE_BUFFERS, OpenSSL's record buffers are freed whenever
 * they are empty, so an idle connection holds its SSL object and little
 * else.
 *
 * OpenSSL rules this follows: a write that returned WANT_READ/WANT_WRITE is
 * retried with the same bytes (the evbuffer keeps them; the buffer may move,
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER); the thread's error queue is cleared
 * after every failure, so that SSL_get_error stays right for the next
 * connection; close_notify goes out once, only when everything owed was
 * sent and never after a fatal error; each SSL is freed exactly once, in
 * tconn_free.
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "conn.h"
#include "log.h"
#include "server.h"
#include "stats.h"
#include "tls.h"
#include "tls_conn.h"
#include "tls_stats.h"
#include "util.h"
#include "worker.h"

#define TLS_WRITE_CHUNK	16384	/* one record */
#define TLS_READ_ROUNDS	16	/* SSL_reads per event, then yield */

enum tconn_state {
	TC_HANDSHAKE,
	TC_OPEN,
	TC_CLOSING,	/* sending close_notify */
};

/* A TLS connection: the common part first, then what TLS adds. Its
 * c.events is -1 while no event is set. */
struct tconn {
	struct conn		 c;
	struct worker		*worker;
	SSL			*ssl;
	uint64_t		 deadline_us;	/* of the handshake */
	LIST_ENTRY(tconn)	 entry;
	uint8_t			 state;
	uint8_t			 want;		/* EV_READ/EV_WRITE: SSL asks */
	uint8_t			 rd_want_write;	/* SSL_read needs writable */
	uint8_t			 wr_want_read;	/* SSL_write needs readable */
	uint8_t			 wr_blocked;	/* a write awaits its retry */
	uint8_t			 fatal;		/* no close_notify now */
	uint8_t			 shut_sent;
	uint8_t			 established;	/* counted in version/cipher */
	uint8_t			 more;		/* SSL holds unread records */
	uint8_t			 rearm;		/* timeout changes */
	int8_t			 version_idx;
	int8_t			 cipher_idx;
	uint8_t			 close_reason;	/* once closing */
};

/* Per worker: its TLS connections and its counters. */
struct tls_worker {
	LIST_HEAD(, tconn)	 conns;
	struct tls_counters	*counters;
};

static void	tconn_cb(evutil_socket_t, short, void *);
static void	tconn_free(struct tconn *, enum close_reason);

void
tls_conn_worker_init(struct worker *w)
{
	struct tls_worker	*tw;

	tw = xcalloc(1, sizeof(*tw));
	LIST_INIT(&tw->conns);
	tw->counters = tls_counters_new(&w->stats);
	w->tls = tw;
}

void
tls_conn_worker_free(struct worker *w)
{
	if (w->tls == NULL)
		return;
	/* The thread is gone: anything left was never started. */
	tls_counters_free(w->tls->counters);
	free(w->tls);
	w->tls = NULL;
}

static size_t
pending(const struct tconn *c)
{
	return c->c.out == NULL ? 0 : evbuffer_get_length(c->c.out);
}

static void
tconn_free(struct tconn *c, enum close_reason reason)
{
	struct worker		*w = c->worker;
	struct listener		*l = c->c.listener;
	const SSL_CIPHER	*cipher;
	const char		*version = NULL, *name = NULL;

	event_del(&c->c.ev);
	tls_counters_closed(w->tls->counters, c->established, c->version_idx,
	    c->cipher_idx);
	if (c->established && accesslog_enabled()) {
		version = SSL_get_version(c->ssl);
		cipher = SSL_get_current_cipher(c->ssl);
		name = cipher != NULL ? SSL_CIPHER_get_name(cipher) : NULL;
	}
	conn_account_close(w, &c->c, reason, version, name);
	SSL_free(c->ssl);
	c->ssl = NULL;
	ERR_clear_error();
	close(c->c.fd);
	if (c->c.out != NULL)
		evbuffer_free(c->c.out);
	LIST_REMOVE(c, entry);
	free(c->c.via);
	free(c);
	conn_release(w, l);
}

/*
 * After an SSL call failed with err: 0 when it only has to wait, else the
 * connection is closed (-1). A fatal error forbids close_notify.
 */
static int
tconn_failed(struct tconn *c, int err, const char *what)
{
	char			 why[256];
	enum close_reason	 reason = CLOSE_ERROR;

	switch (err) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (errno == EPIPE || errno == ECONNRESET || errno == 0)
			reason = CLOSE_CLIENT;
		if (reason == CLOSE_ERROR)
			log_debug("tls %s: %s", what, strerror(errno));
		break;
	case SSL_ERROR_ZERO_RETURN:
		reason = CLOSE_CLIENT;
		break;
	default:
		log_debug("tls %s: %s", what, tls_error_text(why,
		    sizeof(why)));
		break;
	}
	ERR_clear_error();
	c->fatal = 1;
	tconn_free(c, reason);
	return -1;
}

static void
tconn_established(struct tconn *c)
{
	struct worker		*w = c->worker;
	const SSL_CIPHER	*cipher;

	c->state = TC_OPEN;
	c->established = 1;
	c->want = 0;
	counter_add(&w->stats.tls_handshakes, 1);
	if (SSL_session_reused(c->ssl))
		counter_add(&w->stats.tls_resumed, 1);
	cipher = SSL_get_current_cipher(c->ssl);
	tls_counters_established(w->tls->counters, SSL_version(c->ssl),
	    cipher != NULL ? SSL_CIPHER_get_name(cipher) : "none",
	    &c->version_idx, &c->cipher_idx);
}

static int
tconn_handshake(struct tconn *c)
{
	struct worker	*w = c->worker;
	int		 r, err;
	char		 why[256];

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		tconn_established(c);
		return 0;
	}
	err = SSL_get_error(c->ssl, r);
	if (err == SSL_ERROR_WANT_READ) {
		c->want = EV_READ;
		return 0;
	}
	if (err == SSL_ERROR_WANT_WRITE) {
		c->want = EV_WRITE;
		return 0;
	}
	c->fatal = 1;
	/* A connection that closed before saying anything (a port probe)
	 * is not a failed handshake. */
	if (BIO_number_read(SSL_get_rbio(c->ssl)) == 0 &&
	    (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN ||
	    ERR_GET_REASON(ERR_peek_last_error()) ==
	    SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
		ERR_clear_error();
		tconn_free(c, CLOSE_CLIENT);
		return -1;
	}
	counter_add(&w->stats.tls_handshake_failed, 1);
	if (err == SSL_ERROR_SYSCALL)
		log_debug("tls handshake: %s", errno != 0 ? strerror(errno) :
		    "connection closed");
	else
		log_debug("tls handshake: %s", tls_error_text(why,
		    sizeof(why)));
	ERR_clear_error();
	tconn_free(c, CLOSE_HANDSHAKE);
	return -1;
}

static void
count_out(struct tconn *c, size_t n)
{
	c->c.bytes_out += n;
	counter_add(&c->worker->stats.bytes_out, n);
}

/* One SSL_write: >0 bytes taken, 0 must wait, -1 connection freed. */
static int
tconn_write(struct tconn *c, const void *buf, size_t len)
{
	int	n, err;

	/* Record-sized, always: a write that has to be retried must be
	 * retried with the same length, and flushes retry 16 KiB. */
	if (len > TLS_WRITE_CHUNK)
		len = TLS_WRITE_CHUNK;
	n = SSL_write(c->ssl, buf, (int)len);
	if (n > 0) {
		c->wr_blocked = 0;
		count_out(c, (size_t)n);
		return n;
	}
	err = SSL_get_error(c->ssl, n);
	c->wr_blocked = 1;
	c->wr_want_read = err == SSL_ERROR_WANT_READ;
	if (tconn_failed(c, err, "write") != 0)
		return -1;
	return 0;
}

/* Send what is owed, in record-sized pieces. -1: freed. */
static int
tconn_flush(struct tconn *c)
{
	size_t		 len;
	unsigned char	*p;
	int		 n;

	while ((len = pending(c)) > 0) {
		if (len > TLS_WRITE_CHUNK)
			len = TLS_WRITE_CHUNK;
		/* Contiguous, and the same bytes a retry must present. */
		if ((p = evbuffer_pullup(c->c.out, (ssize_t)len)) == NULL)
			fatalx("out of memory for a connection buffer");
		if ((n = tconn_write(c, p, len)) <= 0)
			return n;
		evbuffer_drain(c->c.out, (size_t)n);
	}
	return 0;
}

/* Echo buf: straight to SSL when nothing is owed, else queued. */
static int
tconn_echo(struct tconn *c, const char *buf, size_t len)
{
	int	n;

	while (pending(c) == 0 && len > 0) {
		if ((n = tconn_write(c, buf, len)) < 0)
			return -1;
		if (n == 0)
			break;
		buf += n;
		len -= (size_t)n;
	}
	if (len == 0)
		return 0;
	conn_out_add(&c->c.out, buf, len);
	return 0;
}

static int
reading(const struct tconn *c)
{
	return !c->c.eof && pending(c) <= c->worker->max_buffer;
}

/* Read what has arrived. -1: freed. */
static int
tconn_read(struct tconn *c)
{
	struct worker	*w = c->worker;
	int		 n, err, round;

	c->more = 0;
	for (round = 0; round < TLS_READ_ROUNDS; round++) {
		n = SSL_read(c->ssl, w->scratch, (int)(w->scratch_len >
		    INT_MAX ? INT_MAX : w->scratch_len));
		if (n <= 0) {
			err = SSL_get_error(c->ssl, n);
			c->rd_want_write = err == SSL_ERROR_WANT_WRITE;
			if (err == SSL_ERROR_ZERO_RETURN) {
				/* close_notify, or EOF without one. */
				ERR_clear_error();
				c->c.eof = 1;
				return 0;
			}
			return tconn_failed(c, err, "read");
		}
		c->rd_want_write = 0;
		c->c.bytes_in += (size_t)n;
		counter_add(&w->stats.bytes_in, (uint64_t)n);
		if (c->c.listener->mode == MODE_ECHO &&
		    tconn_echo(c, w->scratch, (size_t)n) != 0)
			return -1;
		if (!reading(c)) {
			counter_add(&w->stats.backpressure, 1);
			return 0;
		}
		/* Records already in OpenSSL's buffer raise no event; the
		 * socket, level-triggered, does. */
		if (!SSL_has_pending(c->ssl))
			return 0;
	}
	c->more = 1;
	return 0;
}

static int
tconn_chargen(struct tconn *c)
{
	int	n;

	/* conn_init() built the pattern: CHARGEN_CHUNK >= TLS_WRITE_CHUNK. */
	n = tconn_write(c, chargen_at(c->c.chargen_pos), TLS_WRITE_CHUNK);
	if (n <= 0)
		return n;
	c->c.chargen_pos = (uint16_t)chargen_advance(c->c.chargen_pos, (size_t)n);
	return 0;
}

/* close_notify, once; the connection ends when it is out. -1: freed. */
static int
tconn_shutdown(struct tconn *c)
{
	int	r, err;

	c->state = TC_CLOSING;
	c->shut_sent = 1;
	r = SSL_shutdown(c->ssl);
	if (r < 0) {
		err = SSL_get_error(c->ssl, r);
		if (err == SSL_ERROR_WANT_WRITE) {
			c->want = EV_WRITE;
			return 0;
		}
		ERR_clear_error();
	}
	tconn_free(c, (enum close_reason)c->close_reason);
	return -1;
}

/* Closing without waiting: close_notify only when nothing is owed. */
static void
tconn_close_now(struct tconn *c, enum close_reason reason)
{
	if (c->established && !c->fatal && !c->shut_sent && !c->wr_blocked &&
	    pending(c) == 0) {
		c->shut_sent = 1;
		if (SSL_shutdown(c->ssl) < 0)
			ERR_clear_error();
	}
	tconn_free(c, reason);
}

/* Open connection: send what is owed, then read. -1: freed. */
static int
tconn_io(struct tconn *c, short what)
{
	short	wr_ev = c->wr_want_read ? EV_READ : EV_WRITE;
	short	rd_ev = c->rd_want_write ? EV_WRITE : EV_READ;

	if (pending(c) > 0 && (what & wr_ev) && tconn_flush(c) != 0)
		return -1;
	if (c->c.listener->mode == MODE_CHARGEN && pending(c) == 0 &&
	    (what & wr_ev) && tconn_chargen(c) != 0)
		return -1;
	if (reading(c) && ((what & rd_ev) || SSL_has_pending(c->ssl)) &&
	    tconn_read(c) != 0)
		return -1;
	/* Half-close: the peer is done sending; what it is owed goes out
	 * first, then close_notify. */
	if (c->c.eof && pending(c) == 0 && !c->wr_blocked &&
	    c->c.listener->mode != MODE_CHARGEN) {
		c->close_reason = CLOSE_CLIENT;
		return tconn_shutdown(c);
	}
	return 0;
}

static short
tconn_events(const struct tconn *c)
{
	short	events = 0;

	switch (c->state) {
	case TC_HANDSHAKE:
	case TC_CLOSING:
		return c->want;
	case TC_OPEN:
	default:
		break;
	}
	if (reading(c))
		events |= c->rd_want_write ? EV_WRITE : EV_READ;
	if (pending(c) > 0 || c->wr_blocked ||
	    c->c.listener->mode == MODE_CHARGEN)
		events |= c->wr_want_read ? EV_READ : EV_WRITE;
	return events;
}

/* Wait for what the connection needs now; re-arm only on a change, but
 * always during the handshake, whose deadline does not move. */
static void
tconn_update(struct tconn *c)
{
	struct worker		*w = c->worker;
	const struct timeval	*tv = w->idle_timeout;
	struct timeval		 left;
	short			 events = tconn_events(c);
	uint64_t		 now;

	if (c->state == TC_HANDSHAKE) {
		now = now_us();
		tv = tv_from_us(&left, now < c->deadline_us ?
		    c->deadline_us - now : 1);
	} else if (events == c->c.events && !c->rearm)
		goto out;
	c->rearm = 0;
	if (c->c.events != -1)
		event_del(&c->c.ev);
	event_assign(&c->c.ev, w->base, c->c.fd, events | EV_PERSIST, tconn_cb, c);
	if (event_add(&c->c.ev, tv) != 0)
		log_warnx("worker %d: cannot watch a TLS connection", w->id);
	c->c.events = events;
out:
	/* Records left in OpenSSL's buffer: come back on the next loop. */
	if (c->more && reading(c))
		event_active(&c->c.ev, EV_READ, 1);
}

static void
tconn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tconn	*c = arg;
	enum tconn_state before = c->state;

	(void)fd;
	if (what & EV_TIMEOUT) {
		if (c->state == TC_HANDSHAKE) {
			counter_add(&c->worker->stats.tls_handshake_failed, 1);
			counter_add(&c->worker->stats.timed_out, 1);
			tls_counters_timed_out(c->worker->tls->counters);
			c->fatal = 1;
			tconn_free(c, CLOSE_HANDSHAKE);
		} else
			tconn_close_now(c, CLOSE_IDLE);
		return;
	}
	switch (c->state) {
	case TC_HANDSHAKE:
		if (tconn_handshake(c) != 0)
			return;
		/* Data that came with the client's Finished is already
		 * in OpenSSL's buffer. */
		if (c->state == TC_OPEN && SSL_has_pending(c->ssl) &&
		    tconn_io(c, 0) != 0)
			return;
		break;
	case TC_OPEN:
		if (tconn_io(c, what) != 0)
			return;
		break;
	case TC_CLOSING:
		if (tconn_shutdown(c) != 0)
			return;
		break;
	}
	/* Leaving the handshake: the idle timeout replaces its deadline. */
	if (before != c->state)
		c->rearm = 1;
	tconn_update(c);
}

int
tls_conn_start(struct worker *w, int fd, struct listener *l,
    const struct sockaddr *peer, socklen_t peerlen,
    const struct sockaddr *via)
{
	struct tconn	*c;
	SSL		*ssl;
	SSL_CTX		*ctx;
	char		 why[256];

	/* Once: a reload may swap the listener's context meanwhile (the old
	 * one stays alive until every worker has moved past this). */
	ctx = atomic_load_explicit(&l->tls_ctx, memory_order_acquire);
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1) {
		log_warnx("worker %d: cannot start TLS: %s", w->id,
		    tls_error_text(why, sizeof(why)));
		SSL_free(ssl);
		close(fd);
		counter_add(&w->stats.errors, 1);
		return -1;
	}
	SSL_set_accept_state(ssl);
	c = xcalloc(1, sizeof(*c));
	conn_setup(w, &c->c, fd, l, peer, peerlen, via);
	c->worker = w;
	c->ssl = ssl;
	c->c.events = -1;
	c->state = TC_HANDSHAKE;
	c->want = EV_READ;
	c->cipher_idx = -1;
	c->deadline_us = c->c.start_us + tls_ctx_handshake_timeout_us(ctx);
	LIST_INSERT_HEAD(&w->tls->conns, c, entry);
	tls_counters_opened(w->tls->counters);
	tconn_update(c);
	return 0;
}

void
tls_conn_close_all(struct worker *w)
{
	struct tconn	*c;

	while ((c = LIST_FIRST(&w->tls->conns)) != NULL) {
		if (c->state == TC_HANDSHAKE) {
			c->fatal = 1;
			tconn_free(c, CLOSE_SHUTDOWN);
		} else
			tconn_close_now(c, CLOSE_SHUTDOWN);
	}
}
