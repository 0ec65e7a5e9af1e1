/*
 * session.c: one connection slot's state machine. The hot path is plain
 * libevent events on a non-blocking socket: one large recv into the worker's
 * shared buffer, replies matched to requests by byte count, latency recorded
 * into the worker's histograms, and the next requests written straight from
 * the shared pattern. Nothing here allocates after session_init.
 *
 * Requests are slices of one endless pattern stream per connection, so the
 * echoed stream can be checked with memcmp at any offset (--verify) and a
 * lost, doubled or reordered message shows as a mismatch too. The socket I/O
 * goes through sess_send and sess_recv so that another transport can take
 * their place without touching the state machine.
 *
 * With --tls a handshake state sits between connecting and established,
 * and sess_send and sess_recv go through client/tls_conn.c, which owns the
 * SSL object and answers as send(2) and recv(2) do; the state machine is
 * the same for both transports, and no OpenSSL call is made here.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connect.h"
#include "echoload.h"
#include "hist.h"
#include "proxy_send.h"
#include "run.h"
#include "session.h"
#include "sock.h"
#include "tls_conn.h"
#include "util.h"

#define BACKOFF_US	100000	/* wait before reconnecting after an error */
#define BACKOFF_MAX_US	2000000	/* doubled on each failed reconnect, to this */
#define UPLOAD_QUEUE	(256 * 1024)

static void	on_read(evutil_socket_t, short, void *);
static void	on_write(evutil_socket_t, short, void *);
static void	on_connected(evutil_socket_t, short, void *);
static void	on_timer(evutil_socket_t, short, void *);
static void	on_handshake(evutil_socket_t, short, void *);
static void	pump(struct session *, uint64_t);
static uint64_t	schedule_at(const struct session *, uint64_t);

static const struct opts *
sess_opts(const struct session *s)
{
	return s->w->run->o;
}

static enum mode
sess_mode(const struct session *s)
{
	return s->w->run->o->mode;
}

/* The PROXY header still owed goes in front of the first bytes written,
 * in the same system call; the count returned is of buf's bytes only. */
static ssize_t
send_with_header(struct session *s, const void *buf, size_t len)
{
	struct iovec	iov[2] = {
		{ s->pp_hdr, s->pp_len }, { (void *)(uintptr_t)buf, len },
	};
	struct msghdr	msg = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t		k;

	if ((k = sock_sendmsg(s->fd, &msg)) == -1)
		return -1;
	if ((size_t)k < s->pp_len) {
		memmove(s->pp_hdr, s->pp_hdr + k, s->pp_len - (size_t)k);
		s->pp_len = (uint8_t)(s->pp_len - (size_t)k);
		errno = EAGAIN;
		return -1;
	}
	k -= s->pp_len;
	s->pp_len = 0;
	return k;
}

static ssize_t
sess_send(struct session *s, const void *buf, size_t len)
{
	if (s->tls.ssl != NULL)
		return tls_conn_send(&s->tls, buf, len);
	if (s->pp_len != 0)
		return send_with_header(s, buf, len);
	return sock_send(s->fd, buf, len);
}

static ssize_t
sess_recv(struct session *s, void *buf, size_t len)
{
	if (s->tls.ssl != NULL)
		return tls_conn_recv(&s->tls, buf, len);
	return recv(s->fd, buf, len, 0);
}

static void
arm_timer(struct session *s, uint64_t delay_ns)
{
	struct timeval	tv;
	uint64_t	us = (delay_ns + 999) / 1000;

	evtimer_add(&s->ev_timer, tv_from_us(&tv, us));
}

/* Drop the socket and everything in flight on it. */
static void
sess_close(struct session *s)
{
	/* close_notify only on an established stream, once. */
	if (s->tls.ssl != NULL)
		tls_conn_close(&s->tls, s->state == S_ESTABLISHED);
	if (s->fd != -1) {
		event_del(&s->ev_read);
		event_del(&s->ev_write);
		close(s->fd);
		s->fd = -1;
	}
	s->head = s->count = 0;
	s->queued = s->sent = s->received = 0;
	s->rx_in_msg = 0;
	s->bad = s->shut = 0;
	s->pp_len = 0;
}

/* Can the session keep its connection for the next step of a sweep? Only
 * a healthy echo connection with nothing owed on it. */
static int
sess_may_park(const struct session *s)
{
	return run_keeps_connections(s->w->run) && sess_mode(s) == MODE_ECHO &&
	    s->state == S_ESTABLISHED && s->fd != -1 && s->count == 0;
}

/* The session's part of the step is over: it closes, or in a sweep it
 * parks (stays connected and idle) until session_begin_step. */
static void
sess_finish(struct session *s, uint64_t now)
{
	if (s->state == S_DONE || s->parked)
		return;
	evtimer_del(&s->ev_timer);
	if (sess_may_park(s))
		s->parked = 1;
	else {
		sess_close(s);
		s->state = S_DONE;
	}
	s->w->run->sess_hooks->done(s->w, now);
}

/* After an error: close, then reconnect after a pause. */
static void
sess_reset(struct session *s, uint64_t now)
{
	sess_close(s);
	if (s->w->draining) {
		sess_finish(s, now);
		return;
	}
	/* A connection of the load comes back (counted as a reconnect);
	 * connect mode's next connection is simply its next request. */
	if (sess_mode(s) != MODE_CONNECT)
		s->reconnecting = 1;
	s->backoff_us = s->backoff_us == 0 ? BACKOFF_US :
	    s->backoff_us >= BACKOFF_MAX_US / 2 ? BACKOFF_MAX_US :
	    s->backoff_us * 2;
	s->state = S_BACKOFF;
	arm_timer(s, s->backoff_us * UINT64_C(1000));
}

/* During the connection phase a failure ends the session's part: it is
 * counted by reason and the session sits out the load. */
static void
phase_fail(struct session *s, enum conn_fail why, int err,
    const char *detail, uint64_t now)
{
	evtimer_del(&s->ev_timer);
	sess_close(s);
	s->state = S_IDLE;
	s->w->run->sess_hooks->failed(s, why, err, detail, now);
}

static enum conn_fail
phase_reason(enum err_kind kind, int err)
{
	switch (kind) {
	case ERR_CONNECT:
		return connect_fail_of(err);
	case ERR_TIMEOUT:
		return CF_TIMEOUT;
	case ERR_RESET:
	case ERR_CLOSED:
		return CF_RESET;
	case ERR_TLS:
		return CF_TLS;
	default:
		return CF_OTHER;
	}
}

static void
sess_fail(struct session *s, enum err_kind kind, int err, uint64_t now)
{
	if (s->w->cp.active) {
		phase_fail(s, phase_reason(kind, err), err, NULL, now);
		return;
	}
	if (s->reconnecting && (s->state == S_CONNECTING ||
	    s->state == S_HANDSHAKE || kind == ERR_CONNECT))
		s->w->rc.failed++;
	s->w->run->sess_hooks->error(s->w, kind, err);
	sess_reset(s, now);
}

/* A TLS failure: say what OpenSSL says. */
static void
tls_fail(struct session *s, uint64_t now)
{
	char	why[256], msg[300];

	tls_conn_why(&s->tls, why, sizeof why);
	if (s->state == S_HANDSHAKE)
		snprintf(msg, sizeof msg, "handshake: %s", why);
	else
		snprintf(msg, sizeof msg, "%s", why);
	if (s->w->cp.active) {
		phase_fail(s, CF_TLS, 0, msg, now);
		return;
	}
	if (s->reconnecting && s->state == S_HANDSHAKE)
		s->w->rc.failed++;
	s->w->run->sess_hooks->error_detail(s->w, ERR_TLS, msg);
	sess_reset(s, now);
}

/* A read or write failed with errno err (EPROTO from tls_conn.c: the
 * failure is TLS's, and tls_conn_why says what it was). */
static void
sess_io_fail(struct session *s, int err, uint64_t now)
{
	if (err == EPROTO && s->tls.ssl != NULL) {
		tls_fail(s, now);
		return;
	}
	sess_fail(s, ERR_RESET, err, now);
}

/* Back after a failure in the run: its setup time is a figure of its own,
 * and in open loop the requests that fell due while it was down are
 * skipped, not sent late: their wait was the reconnect, not the server. */
static void
reconnected(struct session *s, uint64_t now)
{
	struct worker	*w = s->w;
	const struct run *r = w->run;

	s->reconnecting = 0;
	s->backoff_us = 0;
	w->rc.established++;
	hist_record(&w->rc.lat, (now - s->connect_ns + 500) / 1000);
	if (!run_open_loop(r))
		return;
	while (s->next_ns < now && s->next_ns < r->end_ns) {
		if (run_measuring(r, s->next_ns))
			w->rc.skipped++;
		s->next_ns = schedule_at(s, ++s->seq);
	}
}

static void
sess_established(struct session *s, uint64_t now)
{
	s->state = S_ESTABLISHED;
	s->since_ns = now;
	event_assign(&s->ev_write, s->w->base, s->fd, EV_WRITE, on_write, s);
	event_add(&s->ev_read, NULL);
	if (s->w->cp.active) {
		/* The phase: up, and idle until the load begins. */
		s->w->run->sess_hooks->up(s, now);
		return;
	}
	if (s->reconnecting)
		reconnected(s, now);
	pump(s, now);
}

/* Does this handshake count? In connect mode when its request does;
 * otherwise every one of the run. */
static int
tls_counted(const struct session *s)
{
	if (sess_mode(s) != MODE_CONNECT)
		return 1;
	return s->count > 0 && s->ring[s->head].counted;
}

static void
handshake_done(struct session *s)
{
	uint64_t	now = now_ns();

	tls_conn_handshaken(&s->tls, s->w->tls, tls_counted(s),
	    (now - s->hs_start_ns + 500) / 1000);
	event_del(&s->ev_read);
	event_del(&s->ev_write);
	event_assign(&s->ev_read, s->w->base, s->fd, EV_READ | EV_PERSIST,
	    on_read, s);
	sess_established(s, now);
	/* Records OpenSSL already read do not make the socket readable. */
	if (s->tls.ssl != NULL && s->state == S_ESTABLISHED &&
	    tls_conn_pending(&s->tls))
		event_active(&s->ev_read, EV_READ, 1);
}

static void
handshake_step(struct session *s)
{
	switch (tls_conn_handshake(&s->tls, s->w->tls)) {
	case TLS_STEP_DONE:
		handshake_done(s);
		break;
	case TLS_STEP_WANT_READ:
		event_add(&s->ev_read, NULL);
		break;
	case TLS_STEP_WANT_WRITE:
		event_add(&s->ev_write, NULL);
		break;
	case TLS_STEP_FAILED:
		tls_fail(s, now_ns());
		break;
	}
}

static void
on_handshake(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	handshake_step(arg);
}

static void
tls_start(struct session *s, uint64_t now)
{
	struct event_base	*base = s->w->base;
	char			 err[256];

	if (tls_conn_open(&s->tls, s->w->tls, sess_opts(s), s->fd, err,
	    sizeof err) != 0) {
		if (s->w->cp.active) {
			phase_fail(s, CF_TLS, 0, err, now);
			return;
		}
		s->w->run->sess_hooks->error_detail(s->w, ERR_TLS, err);
		sess_reset(s, now);
		return;
	}
	s->state = S_HANDSHAKE;
	s->since_ns = s->hs_start_ns = now;
	event_del(&s->ev_read);
	event_del(&s->ev_write);
	event_assign(&s->ev_read, base, s->fd, EV_READ, on_handshake, s);
	event_assign(&s->ev_write, base, s->fd, EV_WRITE, on_handshake, s);
	handshake_step(s);
}

/* TCP is up: the PROXY header first (--proxy), then TLS, if asked for.
 * Anything that must precede every other byte on the connection is
 * written here, before TLS. */
static void
sess_ready(struct session *s, uint64_t now)
{
	const struct opts	*o = sess_opts(s);
	const struct sockaddr	*dst = (const struct sockaddr *)&s->w->run->addr;
	size_t			 n;

	if (o->proxy != 0 && s->w->tls != NULL && proxy_send(o, s->fd,
	    dst) != 0) {
		sess_fail(s, ERR_CONNECT, errno, now);
		return;
	}
	if (s->w->tls != NULL) {
		tls_start(s, now);
		return;
	}
	if (o->proxy != 0) {
		/* Sent with the first request, or alone if none goes now. */
		if ((n = proxy_header(o, s->fd, dst, s->pp_hdr)) == 0) {
			sess_fail(s, ERR_CONNECT, errno, now);
			return;
		}
		s->pp_len = (uint8_t)n;
	}
	sess_established(s, now);
	if (s->pp_len != 0 && s->fd != -1 && sess_send(s, "", 0) == -1 &&
	    errno != EAGAIN)
		sess_io_fail(s, errno, now);
}

static void
sess_connect(struct session *s, uint64_t now)
{
	const struct run	*r = s->w->run;
	int			 err = 0;

	s->connect_ns = now;
	if ((s->fd = r->sess_hooks->socket(r, s->index, &err)) == -1) {
		sess_fail(s, ERR_CONNECT, err, now);
		return;
	}
	event_assign(&s->ev_read, s->w->base, s->fd, EV_READ | EV_PERSIST,
	    on_read, s);
	event_assign(&s->ev_write, s->w->base, s->fd, EV_WRITE, on_connected,
	    s);
	s->since_ns = now;
	if (connect(s->fd, (const struct sockaddr *)&r->addr,
	    r->addrlen) == 0) {
		sess_ready(s, now);
		return;
	}
	if (errno != EINPROGRESS) {
		sess_fail(s, ERR_CONNECT, errno, now);
		return;
	}
	s->state = S_CONNECTING;
	event_add(&s->ev_write, NULL);
}

static void
on_connected(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s = arg;
	socklen_t	 len = sizeof(int);
	int		 err = 0;

	(void)what;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		sess_fail(s, ERR_CONNECT, err, now_ns());
		return;
	}
	sess_ready(s, now_ns());
}

/* Upload counts a message once its last byte is written. */
static void
account_upload(struct session *s, size_t n, uint64_t now)
{
	struct worker	*w = s->w;
	uint64_t	 size = sess_opts(s)->size, done;

	done = (s->sent + n) / size - s->sent / size;
	if (run_measuring(w->run, now)) {
		w->ival.bytes_sent += n;
		w->ival.requests += done;
	}
}

/* Write what is queued; returns -1 when the session failed. */
static int
flush(struct session *s, uint64_t now)
{
	const uint8_t	*pat = s->w->run->pattern;
	size_t		 off, n;
	ssize_t		 k;

	while (s->sent < s->queued) {
		off = (size_t)(s->sent % PATTERN_PERIOD);
		n = s->queued - s->sent > IO_CHUNK ? IO_CHUNK :
		    (size_t)(s->queued - s->sent);
		k = sess_send(s, pat + off, n);
		if (k == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			sess_io_fail(s, errno, now);
			return -1;
		}
		if (sess_mode(s) == MODE_UPLOAD)
			account_upload(s, (size_t)k, now);
		s->sent += (size_t)k;
		s->since_ns = now;
		if ((size_t)k < n)
			break;
	}
	if (s->sent < s->queued) {
		event_add(&s->ev_write, NULL);
		return 0;
	}
	if (sess_mode(s) == MODE_CONNECT && !s->shut && s->count > 0 &&
	    s->tls.ssl == NULL) {
		/* Our FIN says "that was all"; the server closes once it has
		 * echoed everything. Closing first, we keep the TIME_WAIT. */
		shutdown(s->fd, SHUT_WR);
		s->shut = 1;
	}
	return 0;
}

static void
on_write(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s = arg;
	uint64_t	 now = now_ns();

	(void)fd;
	(void)what;
	if (flush(s, now) == 0 && sess_mode(s) != MODE_CONNECT)
		pump(s, now);
}

static int
may_issue(const struct session *s)
{
	const struct run	*r = s->w->run;

	if (s->w->draining || s->quota == 0)
		return 0;
	return !run_open_loop(r) || s->next_ns < r->end_ns;
}

/* Intended time of schedule slot seq: this connection's share of the total
 * rate, offset by its index so that connections do not fire together. */
static uint64_t
schedule_at(const struct session *s, uint64_t seq)
{
	const struct run	*r = s->w->run;
	long double		 slot;

	slot = (long double)s->index + (long double)seq *
	    (long double)r->o->connections;
	return r->start_ns + (uint64_t)(slot * 1e9L / (long double)r->rate);
}

/*
 * When may the next request go? Returns 0 with *intended set when it may go
 * now, or the delay in nanoseconds to wait (the timer is then armed).
 */
static uint64_t
next_request(struct session *s, uint64_t now, uint64_t *intended)
{
	const struct run	*r = s->w->run;

	if (!run_open_loop(r)) {
		if (now < r->start_ns)
			return r->start_ns - now;
		*intended = now;
		return 0;
	}
	if (s->next_ns > now)
		return s->next_ns - now;
	*intended = s->next_ns;
	s->next_ns = schedule_at(s, ++s->seq);
	return 0;
}

/* Open loop: a connection whose schedule has nothing more before the end
 * stays open until the end, so that the run keeps the connections it was
 * asked for, and closes with the others when the window is over. */
static int
holding(const struct session *s)
{
	const struct run	*r = s->w->run;

	return run_open_loop(r) && !s->w->draining && s->quota > 0 &&
	    r->end_ns != UINT64_MAX;
}

static void
issue(struct session *s, uint64_t intended, uint64_t now)
{
	struct worker	*w = s->w;
	struct inflight	*f;
	size_t		 size = sess_opts(s)->size;

	f = &s->ring[(s->head + s->count) % s->cap];
	f->intended_ns = intended;
	f->sent_ns = now;
	f->counted = run_measuring(w->run, intended);
	if (f->counted) {
		s->quota--;
		w->ival.bytes_sent += size;
	}
	s->count++;
	s->queued += size;
}

static void
pump_echo(struct session *s, uint64_t now)
{
	uint64_t	intended, wait;

	while (s->count < s->cap && may_issue(s)) {
		if ((wait = next_request(s, now, &intended)) != 0) {
			arm_timer(s, wait);
			break;
		}
		issue(s, intended, now);
	}
	if (flush(s, now) != 0)
		return;
	if (s->count == 0 && !may_issue(s) && !holding(s))
		sess_finish(s, now);
}

static void
pump_upload(struct session *s, uint64_t now)
{
	uint64_t	intended, wait = 0;
	size_t		size = sess_opts(s)->size;

	/* Keep the socket full: queue, write, and again until it blocks. */
	do {
		while (s->queued - s->sent < UPLOAD_QUEUE && may_issue(s)) {
			if ((wait = next_request(s, now, &intended)) != 0) {
				arm_timer(s, wait);
				break;
			}
			if (run_measuring(s->w->run, intended))
				s->quota--;
			s->queued += size;
		}
		if (flush(s, now) != 0)
			return;
	} while (s->queued == s->sent && wait == 0 && may_issue(s));
	if (s->queued == s->sent && !may_issue(s) && !holding(s))
		sess_finish(s, now);
}

/* Connect mode: each request is a connection of its own. */
static void
pump_connect(struct session *s, uint64_t now)
{
	uint64_t	intended, wait;

	if (s->state != S_IDLE)
		return;
	if (!may_issue(s)) {
		sess_finish(s, now);
		return;
	}
	if ((wait = next_request(s, now, &intended)) != 0) {
		arm_timer(s, wait);
		return;
	}
	issue(s, intended, now);
	sess_connect(s, now);
}

static void
pump(struct session *s, uint64_t now)
{
	switch (sess_mode(s)) {
	case MODE_ECHO:
		if (s->state == S_ESTABLISHED)
			pump_echo(s, now);
		break;
	case MODE_CONNECT:
		if (s->state == S_ESTABLISHED)
			flush(s, now);
		else
			pump_connect(s, now);
		break;
	case MODE_UPLOAD:
		if (s->state == S_ESTABLISHED)
			pump_upload(s, now);
		break;
	case MODE_DOWNLOAD:
		if (s->quota == 0 || s->w->draining)
			sess_finish(s, now);
		break;
	}
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s = arg;
	uint64_t	 now = now_ns();

	(void)fd;
	(void)what;
	if (s->state == S_BACKOFF) {
		s->state = S_IDLE;
		if (sess_mode(s) == MODE_CONNECT)
			pump(s, now);
		else
			sess_connect(s, now);
		return;
	}
	pump(s, now);
}

static void
complete(struct session *s, uint64_t now)
{
	struct worker	*w = s->w;
	struct inflight	*f = &s->ring[s->head];
	int		 bad = s->bad;

	s->head = (s->head + 1) % s->cap;
	s->count--;
	s->rx_in_msg = 0;
	s->bad = 0;
	if (!f->counted)
		return;
	if (bad) {
		w->run->sess_hooks->error(w, ERR_MISMATCH, 0);
		return;
	}
	w->ival.requests++;
	w->ival.bytes_received += sess_opts(s)->size;
	reply_edges_record(&w->edges, now);
	hist_record(&w->ival_lat, (now - f->intended_ns + 500) / 1000);
	hist_record(&w->ival_svc, (now - f->sent_ns + 500) / 1000);
}

/* Match echoed bytes to requests; returns -1 when the session failed. */
static int
consume_replies(struct session *s, const uint8_t *buf, size_t n, uint64_t now)
{
	const struct opts	*o = sess_opts(s);
	const uint8_t		*pat = s->w->run->pattern;
	size_t			 take;

	while (n > 0) {
		if (s->count == 0 || s->state != S_ESTABLISHED) {
			sess_fail(s, ERR_UNEXPECTED, 0, now);
			return -1;
		}
		take = o->size - s->rx_in_msg;
		if (take > n)
			take = n;
		if (o->verify && memcmp(buf, pat + s->received % PATTERN_PERIOD,
		    take) != 0)
			s->bad = 1;
		s->received += take;
		s->rx_in_msg += take;
		buf += take;
		n -= take;
		if (s->rx_in_msg == o->size)
			complete(s, now);
	}
	s->since_ns = now;
	return 0;
}

static void
consume_download(struct session *s, size_t n, uint64_t now)
{
	struct worker	*w = s->w;
	size_t		 size = sess_opts(s)->size;

	s->since_ns = now;
	if (!run_measuring(w->run, now))
		return;
	w->ival.bytes_received += n;
	s->rx_in_msg += n;
	while (s->rx_in_msg >= size && s->quota > 0) {
		s->rx_in_msg -= size;
		s->quota--;
		w->ival.requests++;
	}
}

static void
on_eof(struct session *s, uint64_t now)
{
	if (s->state == S_CLOSING) {
		/* Connect mode: the server closed after the reply. */
		sess_close(s);
		s->state = S_IDLE;
		pump(s, now);
		return;
	}
	sess_fail(s, ERR_CLOSED, 0, now);
}

/*
 * Connect mode over TLS: close_notify and the TCP write side go once the
 * reply is in, not after the request as on plain TCP: OpenSSL drops what
 * arrives after its close_notify, and the reply and TLS 1.3 tickets come
 * after the request.
 */
static void
tls_shut(struct session *s)
{
	tls_conn_shutdown(&s->tls);
	shutdown(s->fd, SHUT_WR);
	s->shut = 1;
}

static void
after_read(struct session *s, uint64_t now)
{
	switch (sess_mode(s)) {
	case MODE_ECHO:
		pump_echo(s, now);
		break;
	case MODE_CONNECT:
		if (s->count == 0) {
			s->state = S_CLOSING;
			if (s->tls.ssl != NULL && !s->shut)
				tls_shut(s);
		}
		break;
	case MODE_UPLOAD:
		break;
	case MODE_DOWNLOAD:
		pump(s, now);
		break;
	}
}

/* Plain TCP: a few full reads, then back to the loop, fair to the other
 * sessions. TLS: a recv returns one record, and records OpenSSL already
 * read from the socket do not make it readable again: read until OpenSSL
 * wants the socket, or come back at once when the round limit stops the
 * loop. */
#define READ_ROUNDS	4
#define TLS_READ_ROUNDS	64

static int
read_more(const struct session *s, ssize_t n, int rounds)
{
	if (s->tls.ssl != NULL)
		return rounds < TLS_READ_ROUNDS;
	return n == IO_CHUNK && rounds < READ_ROUNDS;
}

static void
on_read(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s = arg;
	uint8_t		*buf = s->w->rbuf;
	uint64_t	 now = now_ns();
	ssize_t		 n;
	int		 rounds = 0;

	(void)fd;
	(void)what;
	do {
		n = sess_recv(s, buf, IO_CHUNK);
		if (n == 0) {
			on_eof(s, now);
			return;
		}
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR)
				break;
			sess_io_fail(s, errno, now);
			return;
		}
		switch (sess_mode(s)) {
		case MODE_ECHO:
		case MODE_CONNECT:
			if (consume_replies(s, buf, (size_t)n, now) != 0)
				return;
			break;
		case MODE_DOWNLOAD:
			consume_download(s, (size_t)n, now);
			break;
		case MODE_UPLOAD:
			break;	/* a discard server sends nothing; drop it */
		}
	} while (read_more(s, n, ++rounds));
	if (s->tls.ssl != NULL) {
		if (n == -1 && s->tls.want_write)
			event_add(&s->ev_write, NULL);
		else if (rounds == TLS_READ_ROUNDS && tls_conn_pending(&s->tls))
			event_active(&s->ev_read, EV_READ, 1);
	}
	after_read(s, now);
}

void
session_init(struct session *s, struct worker *w, unsigned index,
    uint64_t quota)
{
	const struct opts	*o = w->run->o;

	memset(s, 0, sizeof *s);
	s->w = w;
	s->index = index;
	s->fd = -1;
	s->quota = quota;
	s->cap = o->mode == MODE_ECHO ? o->depth : 1;
	s->ring = xcalloc(s->cap, sizeof *s->ring);
	evtimer_assign(&s->ev_timer, w->base, on_timer, s);
}

void
session_connect(struct session *s, uint64_t now)
{
	s->state = S_IDLE;
	sess_connect(s, now);
}

void
session_retry(struct session *s, uint64_t now)
{
	uint64_t	first = s->connect_ns;

	sess_close(s);
	s->retries++;
	sess_connect(s, now);
	s->connect_ns = first;
}

void
session_begin(struct session *s, uint64_t now)
{
	/* The schedule starts now that the connections are up. */
	if (run_open_loop(s->w->run))
		s->next_ns = schedule_at(s, 0);
	if (sess_mode(s) == MODE_CONNECT) {
		s->state = S_IDLE;
		if (s->quota == 0)
			sess_finish(s, now);
		else
			pump(s, now);
		return;
	}
	s->phase_up = 0;
	if (s->state != S_ESTABLISHED || s->quota == 0) {
		sess_finish(s, now);
		return;
	}
	pump(s, now);
}

void
session_begin_step(struct session *s)
{
	uint64_t	now = now_ns();

	s->seq = 0;
	if (run_open_loop(s->w->run))
		s->next_ns = schedule_at(s, 0);
	if (s->parked) {
		s->parked = 0;
		switch (s->state) {
		case S_ESTABLISHED:
			if (s->fd != -1) {
				pump(s, now);
				return;
			}
			break;	/* lost while parked: connect again */
		case S_CONNECTING:
		case S_HANDSHAKE:
		case S_BACKOFF:
			return;	/* reconnecting: goes on once connected */
		default:
			break;
		}
	}
	/* Closed at the end of the last step (an error while draining, or
	 * a connect that failed): it comes back as a reconnect. */
	if (s->state == S_DONE || s->fd == -1) {
		sess_close(s);
		if (sess_mode(s) != MODE_CONNECT)
			s->reconnecting = 1;
		session_connect(s, now);
	}
}

void
session_drain(struct session *s, uint64_t now)
{
	switch (s->state) {
	case S_DONE:
		return;
	case S_IDLE:
	case S_BACKOFF:
	case S_CONNECTING:
	case S_HANDSHAKE:
		/* Connect mode: a connection under way carries its request. */
		if (sess_mode(s) != MODE_CONNECT || (s->state != S_CONNECTING &&
		    s->state != S_HANDSHAKE))
			sess_finish(s, now);
		return;
	case S_ESTABLISHED:
	case S_CLOSING:
		if (sess_mode(s) == MODE_UPLOAD ||
		    sess_mode(s) == MODE_DOWNLOAD ||
		    (sess_mode(s) == MODE_ECHO && s->count == 0))
			sess_finish(s, now);
		else
			evtimer_del(&s->ev_timer);
		return;
	}
}

void
session_stop(struct session *s, uint64_t now)
{
	sess_finish(s, now);
}

void
session_sweep(struct session *s, uint64_t now)
{
	uint64_t	since, limit = s->w->run->timeout_ns;

	switch (s->state) {
	case S_CONNECTING:
	case S_HANDSHAKE:
		since = s->connect_ns;
		limit = s->w->run->connect_timeout_ns;
		break;
	case S_ESTABLISHED:
	case S_CLOSING:
		switch (sess_mode(s)) {
		case MODE_ECHO:
			if (s->count == 0)
				return;
			since = s->ring[s->head].sent_ns;
			break;
		case MODE_CONNECT:
			since = s->ring[s->head].sent_ns;
			break;
		case MODE_UPLOAD:
			if (s->sent == s->queued)
				return;
			since = s->since_ns;
			break;
		default:
			since = s->since_ns;
			break;
		}
		break;
	default:
		return;
	}
	if (now > since && now - since > limit)
		sess_fail(s, ERR_TIMEOUT, 0, now);
}

void
session_free(struct session *s)
{
	if (s->state != S_DONE) {
		evtimer_del(&s->ev_timer);
		sess_close(s);
	}
	free(s->ring);
	s->ring = NULL;
}
