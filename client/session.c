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
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "echoload.h"
#include "hist.h"
#include "run.h"
#include "session.h"
#include "util.h"

#define BACKOFF_US	100000	/* wait before reconnecting after an error */
#define UPLOAD_QUEUE	(256 * 1024)

static void	on_read(evutil_socket_t, short, void *);
static void	on_write(evutil_socket_t, short, void *);
static void	on_connected(evutil_socket_t, short, void *);
static void	on_timer(evutil_socket_t, short, void *);
static void	pump(struct session *, uint64_t);

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

static ssize_t
sess_send(struct session *s, const void *buf, size_t len)
{
	return send(s->fd, buf, len, MSG_NOSIGNAL);
}

static ssize_t
sess_recv(struct session *s, void *buf, size_t len)
{
	return recv(s->fd, buf, len, 0);
}

static void
arm_timer(struct session *s, uint64_t delay_ns)
{
	struct timeval	tv;
	uint64_t	us = (delay_ns + 999) / 1000;

	tv.tv_sec = (time_t)(us / 1000000);
	tv.tv_usec = (suseconds_t)(us % 1000000);
	evtimer_add(&s->ev_timer, &tv);
}

/* Drop the socket and everything in flight on it. */
static void
sess_close(struct session *s)
{
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
}

static void
sess_finish(struct session *s, uint64_t now)
{
	if (s->state == S_DONE)
		return;
	evtimer_del(&s->ev_timer);
	sess_close(s);
	s->state = S_DONE;
	worker_session_done(s->w, now);
}

static void
sess_fail(struct session *s, enum err_kind kind, int err, uint64_t now)
{
	worker_error(s->w, kind, err);
	sess_close(s);
	if (s->w->draining) {
		sess_finish(s, now);
		return;
	}
	s->state = S_BACKOFF;
	arm_timer(s, BACKOFF_US * UINT64_C(1000));
}

static void
sess_established(struct session *s, uint64_t now)
{
	s->state = S_ESTABLISHED;
	s->since_ns = now;
	event_assign(&s->ev_write, s->w->base, s->fd, EV_WRITE, on_write, s);
	event_add(&s->ev_read, NULL);
	pump(s, now);
}

static void
sess_connect(struct session *s, uint64_t now)
{
	const struct run	*r = s->w->run;
	int			 one = 1;

	s->fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (s->fd == -1) {
		sess_fail(s, ERR_CONNECT, errno, now);
		return;
	}
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	event_assign(&s->ev_read, s->w->base, s->fd, EV_READ | EV_PERSIST,
	    on_read, s);
	event_assign(&s->ev_write, s->w->base, s->fd, EV_WRITE, on_connected,
	    s);
	s->since_ns = now;
	if (connect(s->fd, (const struct sockaddr *)&r->addr,
	    r->addrlen) == 0) {
		sess_established(s, now);
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
	sess_established(s, now_ns());
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
			sess_fail(s, ERR_RESET, errno, now);
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
	if (sess_mode(s) == MODE_CONNECT && !s->shut && s->count > 0) {
		/* The server closes once it has echoed everything: the
		 * TIME_WAIT stays on its side, not on ours. */
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
	return r->start_ns + (uint64_t)(slot * 1e9L / (long double)r->o->rate);
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
	if (s->count == 0 && !may_issue(s))
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
	if (s->queued == s->sent && !may_issue(s))
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
		worker_error(w, ERR_MISMATCH, 0);
		return;
	}
	w->ival.requests++;
	w->ival.bytes_received += sess_opts(s)->size;
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

static void
after_read(struct session *s, uint64_t now)
{
	switch (sess_mode(s)) {
	case MODE_ECHO:
		pump_echo(s, now);
		break;
	case MODE_CONNECT:
		if (s->count == 0)
			s->state = S_CLOSING;
		break;
	case MODE_UPLOAD:
		break;
	case MODE_DOWNLOAD:
		pump(s, now);
		break;
	}
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
			sess_fail(s, ERR_RESET, errno, now);
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
	} while (n == IO_CHUNK && ++rounds < 4);
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
	if (run_open_loop(w->run))
		s->next_ns = schedule_at(s, 0);
}

void
session_start(struct session *s)
{
	uint64_t	now = now_ns();

	if (s->quota == 0) {
		sess_finish(s, now);
		return;
	}
	s->state = S_IDLE;
	if (sess_mode(s) == MODE_CONNECT)
		pump(s, now);
	else
		sess_connect(s, now);
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
		if (sess_mode(s) != MODE_CONNECT || s->state != S_CONNECTING)
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
		since = s->since_ns;
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
