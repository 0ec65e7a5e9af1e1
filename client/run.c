/*
 * run.c: a load run from start to result. It resolves the target, checks
 * that it answers, starts one worker thread per -t with its own event_base
 * and share of the connections, and follows the run from the main thread:
 * once a second every worker hands its interval figures to a slot (the only
 * lock, taken once a second, never per request), and the main thread turns
 * complete slots into the progress line and CSV rows. At the end the
 * workers' totals are merged into the result.
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "echoload.h"
#include "hlog.h"
#include "proxy_send.h"
#include "report.h"
#include "run.h"
#include "session.h"
#include "sock.h"
#include "startat.h"
#include "timeline.h"
#include "tls.h"
#include "util.h"

#define START_DELAY_NS	(100 * UINT64_C(1000000))
#define NS_PER_S	UINT64_C(1000000000)
/* --start-at must leave the workers this long to get going. */
#define START_LEAD_NS	(20 * UINT64_C(1000000))
/* A worker whose start came this much late says so. */
#define START_LATE_NS	(50 * UINT64_C(1000000))
/* Descriptors besides the connections under the select back end: stdio,
 * output files, each worker's base, the target check (as connect.c). */
#define SELECT_RESERVE	32

static atomic_int stop_requested;

void
run_request_stop(void)
{
	atomic_store(&stop_requested, 1);
}

int
run_stop_requested(void)
{
	return atomic_load(&stop_requested);
}

static struct timeval
tv_until(uint64_t at_ns, uint64_t now)
{
	struct timeval	tv;
	uint64_t	us = at_ns > now ? (at_ns - now + 999) / 1000 : 0;

	return *tv_from_us(&tv, us);
}

static void
counters_add(struct counters *dst, const struct counters *src)
{
	int	i;

	dst->requests += src->requests;
	dst->bytes_sent += src->bytes_sent;
	dst->bytes_received += src->bytes_received;
	for (i = 0; i < ERR_MAX; i++)
		dst->errors[i] += src->errors[i];
}

static void
warn_error(struct run *r, enum err_kind kind, int err, const char *detail)
{
	char	 buf[128], tmo[32];
	const char *pre = r->progress ? "\r\033[K" : "";

	switch (kind) {
	case ERR_CONNECT:
		fprintf(stderr, "%sechoload: connect to %s: %s\n", pre,
		    r->target, strerror_r(err, buf, sizeof buf));
		break;
	case ERR_RESET:
		fprintf(stderr, "%sechoload: connection to %s: %s\n", pre,
		    r->target, strerror_r(err, buf, sizeof buf));
		break;
	case ERR_CLOSED:
		fprintf(stderr, "%sechoload: %s closed a connection that "
		    "still owed data\n", pre, r->target);
		break;
	case ERR_TIMEOUT:
		report_duration(tmo, sizeof tmo, r->timeout_ns / 1000);
		fprintf(stderr, "%sechoload: %s: no reply within %s\n", pre,
		    r->target, tmo);
		break;
	case ERR_MISMATCH:
		fprintf(stderr, "%sechoload: %s: reply differs from the "
		    "request\n", pre, r->target);
		break;
	case ERR_UNEXPECTED:
		fprintf(stderr, "%sechoload: %s sent bytes no request asked "
		    "for\n", pre, r->target);
		break;
	case ERR_TLS:
		fprintf(stderr, "%sechoload: TLS with %s: %s\n", pre,
		    r->target, detail != NULL ? detail : "error");
		break;
	default:
		break;
	}
}

void
worker_error(struct worker *w, enum err_kind kind, int err)
{
	unsigned	bit = 1u << kind;

	w->ival.errors[kind]++;
	if ((atomic_fetch_or(&w->run->warned, bit) & bit) == 0)
		warn_error(w->run, kind, err, NULL);
}

void
worker_error_detail(struct worker *w, enum err_kind kind, const char *what)
{
	unsigned	bit = 1u << kind;

	w->ival.errors[kind]++;
	if ((atomic_fetch_or(&w->run->warned, bit) & bit) == 0)
		warn_error(w->run, kind, 0, what);
}

void
worker_session_done(struct worker *w, uint64_t now)
{
	const struct run	*r = w->run;

	if (--w->nactive > 0)
		return;
	/* An open loop bounded by time ends with its schedule, even when
	 * the last replies came in early: the window is the schedule's. */
	if (w->finish_ns == 0 && run_open_loop(r) && r->o->requests == 0)
		w->finish_ns = r->end_ns;
	if (w->finish_ns == 0)
		w->finish_ns = now < r->end_ns ? now : r->end_ns;
	event_base_loopbreak(w->base);
}

/* Hand the current second to its slot, then fold it into the totals. */
static void
worker_report(struct worker *w, int final)
{
	struct run	*r = w->run;
	struct slot	*sl = &r->slots[w->second % SLOT_RING];

	pthread_mutex_lock(&r->lock);
	while (sl->second != w->second)
		pthread_cond_wait(&r->cond, &r->lock);
	counters_add(&sl->c, &w->ival);
	hist_merge(&sl->lat, &w->ival_lat);
	hist_merge(&sl->svc, &w->ival_svc);
	sl->reports++;
	if (final)
		r->finished_at[w->id] = w->second;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);

	counters_add(&w->total, &w->ival);
	hist_merge(&w->lat, &w->ival_lat);
	hist_merge(&w->svc, &w->ival_svc);
	memset(&w->ival, 0, sizeof w->ival);
	hist_reset(&w->ival_lat);
	hist_reset(&w->ival_svc);
	w->second++;
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	struct run	*r = w->run;
	struct timeval	 tv;
	uint64_t	 next;

	(void)fd;
	(void)what;
	worker_report(w, 0);
	next = r->measure_ns + w->second * NS_PER_S;
	if (next < r->end_ns && !w->draining) {
		tv = tv_until(next, now_ns());
		evtimer_add(w->ev_tick, &tv);
	}
}

/* When the start time came by this worker's clock: how late it ran. */
static void
on_start(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;

	(void)fd;
	(void)what;
	w->started_ns = now_ns();
}

static void
on_hard_stop(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	uint64_t	 now = now_ns();
	unsigned	 i;

	(void)fd;
	(void)what;
	for (i = 0; i < w->nsessions; i++)
		session_stop(&w->sessions[i], now);
}

static void
worker_drain(struct worker *w, uint64_t now, uint64_t finish)
{
	struct timeval	tv;
	unsigned	i;

	if (w->draining)
		return;
	w->draining = 1;
	if (w->finish_ns == 0)
		w->finish_ns = finish;
	evtimer_del(w->ev_tick);
	for (i = 0; i < w->nsessions; i++)
		session_drain(&w->sessions[i], now);
	if (w->nactive > 0) {
		/* Replies still owed get --timeout, and a little more. */
		tv = tv_until(now + w->run->timeout_ns +
		    200 * UINT64_C(1000000), now);
		evtimer_add(w->ev_hard, &tv);
	}
}

static void
on_end(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;

	(void)fd;
	(void)what;
	worker_drain(w, now_ns(), w->run->end_ns);
}

static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	uint64_t	 now = now_ns();
	unsigned	 i;

	(void)fd;
	(void)what;
	if (w->cp.active) {
		if (atomic_load(&stop_requested)) {
			connect_phase_stop(w);
			return;
		}
		for (i = 0; i < w->nsessions; i++)
			session_sweep(&w->sessions[i], now);
		return;
	}
	if (atomic_load(&stop_requested)) {
		worker_drain(w, now, now < w->run->end_ns ? now :
		    w->run->end_ns);
		on_hard_stop(-1, 0, w);
		return;
	}
	for (i = 0; i < w->nsessions; i++)
		session_sweep(&w->sessions[i], now);
}

static struct event_base *
worker_base(const struct run *r)
{
	struct event_config	*cfg;
	struct event_base	*base;

	if ((cfg = event_config_new()) == NULL)
		return NULL;
	/* One thread per base: no locking. Open loop needs timers finer
	 * than epoll's milliseconds. */
	event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
	if (run_open_loop(r))
		event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

static uint64_t
session_quota(const struct opts *o, unsigned index)
{
	if (o->requests == 0)
		return UINT64_MAX;
	return o->requests / o->connections +
	    (index < o->requests % o->connections ? 1 : 0);
}

/* The context was made once already, by the target check: this cannot
 * fail but for memory. */
static void
worker_tls(struct worker *w)
{
	SSL_CTX	*ctx;
	char	 err[512];

	if ((ctx = tls_ctx_new(w->run->o, err, sizeof err)) == NULL) {
		fprintf(stderr, "echoload: %s\n", err);
		exit(1);
	}
	w->tls = tls_worker_new(ctx);
}

static void
worker_setup(struct worker *w)
{
	struct run	*r = w->run;
	struct timeval	 tv;
	uint64_t	 sweep_us;
	unsigned	 i;

	w->rbuf = xmalloc(IO_CHUNK);
	if (r->o->tls)
		worker_tls(w);
	w->nsessions = (r->o->connections - w->id + r->nworkers - 1) /
	    r->nworkers;
	w->sessions = xcalloc(w->nsessions, sizeof *w->sessions);
	for (i = 0; i < w->nsessions; i++) {
		session_init(&w->sessions[i], w, w->id + i * r->nworkers,
		    session_quota(r->o, w->id + i * r->nworkers));
	}
	w->nactive = w->nsessions;

	sweep_us = (r->o->timeout_us < r->o->connect_timeout_us ?
	    r->o->timeout_us : r->o->connect_timeout_us) / 4;
	if (sweep_us > 100000)
		sweep_us = 100000;
	if (sweep_us < 1000)
		sweep_us = 1000;
	w->ev_sweep = event_new(w->base, -1, EV_PERSIST, on_sweep, w);
	event_add(w->ev_sweep, tv_from_us(&tv, sweep_us));
	w->ev_tick = evtimer_new(w->base, on_tick, w);
	w->ev_end = evtimer_new(w->base, on_end, w);
	w->ev_hard = evtimer_new(w->base, on_hard_stop, w);
	w->ev_start = evtimer_new(w->base, on_start, w);
	if (w->ev_sweep == NULL || w->ev_tick == NULL || w->ev_end == NULL ||
	    w->ev_hard == NULL || w->ev_start == NULL) {
		fprintf(stderr, "echoload: cannot create timer events\n");
		exit(1);
	}
}

static void
worker_teardown(struct worker *w)
{
	unsigned	i;

	for (i = 0; i < w->nsessions; i++)
		session_free(&w->sessions[i]);
	free(w->sessions);
	w->sessions = NULL;
	event_free(w->ev_sweep);
	event_free(w->ev_tick);
	event_free(w->ev_end);
	event_free(w->ev_hard);
	event_free(w->ev_start);
	event_base_free(w->base);
	w->base = NULL;
	free(w->rbuf);
	w->rbuf = NULL;
}

/* The worker's TLS figures outlive its thread, for collect(). */
static void
worker_tls_free(struct worker *w)
{
	tls_worker_free(w->tls);
	w->tls = NULL;
}

/* Hand the phase's figures to the main thread and wait for its word:
 * 1, the load starts at the times it set; -1, it does not. */
static int
worker_phase_done(struct worker *w)
{
	struct run	*r = w->run;
	int		 go;

	pthread_mutex_lock(&r->lock);
	connect_stats_add(&r->res.conn, &w->cp.st);
	r->phase_done++;
	pthread_cond_broadcast(&r->cond);
	while (r->go == 0)
		pthread_cond_wait(&r->cond, &r->lock);
	go = r->go;
	pthread_mutex_unlock(&r->lock);
	return go;
}

/* A step's timers and its sessions: the first step begins on the
 * connections of the connection phase; a later one on the connections the
 * last one parked, the others connecting again. */
static void
worker_step_begin(struct worker *w, int first)
{
	struct run	*r = w->run;
	struct timeval	 tv;
	uint64_t	 now = now_ns();
	unsigned	 i;

	w->draining = 0;
	w->finish_ns = 0;
	memset(&w->edges, 0, sizeof w->edges);
	w->second = 1;
	w->nactive = w->nsessions;
	evtimer_del(w->ev_hard);
	w->started_ns = 0;
	tv = tv_until(r->start_ns, now);
	evtimer_add(w->ev_start, &tv);
	if (r->measure_ns + NS_PER_S < r->end_ns) {
		tv = tv_until(r->measure_ns + NS_PER_S, now);
		evtimer_add(w->ev_tick, &tv);
	}
	if (r->end_ns != UINT64_MAX) {
		tv = tv_until(r->end_ns, now);
		evtimer_add(w->ev_end, &tv);
	}
	for (i = 0; i < w->nsessions; i++) {
		if (first)
			session_begin(&w->sessions[i], now);
		else
			session_begin_step(&w->sessions[i]);
	}
}

/* A step is over: say so, and wait for the next one; 0 when there is
 * none. */
static int
worker_next_step(struct worker *w)
{
	struct run	*r = w->run;
	int		 go;

	pthread_mutex_lock(&r->lock);
	r->parked++;
	pthread_cond_broadcast(&r->cond);
	while (r->step_gen == w->step_gen && !r->quit)
		pthread_cond_wait(&r->cond, &r->lock);
	go = !r->quit;
	w->step_gen = r->step_gen;
	pthread_mutex_unlock(&r->lock);
	return go;
}

static void *
worker_main(void *arg)
{
	struct worker	*w = arg;
	int		 first = 1;

	if ((w->base = worker_base(w->run)) == NULL) {
		fprintf(stderr, "echoload: cannot create an event base\n");
		exit(1);
	}
	worker_setup(w);
	if (run_has_phase(w->run))
		connect_phase_run(w);
	if (worker_phase_done(w) < 0) {
		worker_teardown(w);
		return NULL;
	}
	do {
		worker_step_begin(w, first);
		first = 0;
		if (w->nactive > 0)
			event_base_dispatch(w->base);
		worker_report(w, 1);
	} while (worker_next_step(w));
	worker_teardown(w);
	return NULL;
}

/* Pseudo-random printable bytes: easy to read in a packet dump, and no
 * shifted copy of the stream matches itself. */
static uint8_t *
make_pattern(void)
{
	uint8_t		*p = xmalloc(PATTERN_LEN);
	uint32_t	 x = 2463534242u;
	size_t		 i;

	for (i = 0; i < PATTERN_PERIOD; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)(33 + x % 94);
	}
	for (; i < PATTERN_LEN; i++)
		p[i] = p[i - PATTERN_PERIOD];
	return p;
}

/* With --tls, one handshake too: a wrong CA, a version the server does
 * not speak or an unreadable certificate file are said once, before the
 * load, rather than as an error on every connection. */
static int
check_tls(struct run *r, int fd)
{
	SSL_CTX	*ctx;
	char	 err[512];
	int	 rv;

	if ((ctx = tls_ctx_new(r->o, err, sizeof err)) == NULL) {
		fprintf(stderr, "echoload: %s\n", err);
		return -1;
	}
	rv = tls_probe(ctx, r->o, fd, (int)(r->o->timeout_us / 1000), err,
	    sizeof err);
	SSL_CTX_free(ctx);
	if (rv != 0)
		fprintf(stderr, "echoload: %s: %s\n", r->target, err);
	return rv;
}

/* One blocking connect, so that a dead target fails fast and plainly. */
static int
check_target(struct run *r)
{
	struct pollfd	pfd;
	socklen_t	len = sizeof(int);
	char		buf[128];
	int		fd, err = 0, rv;

	/* From the first source address, as the first connection will. */
	if ((fd = connect_socket(r, 0, &err)) == -1)
		goto fail;
	if (connect(fd, (struct sockaddr *)&r->addr, r->addrlen) == -1) {
		if (errno != EINPROGRESS) {
			err = errno;
			goto fail;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		rv = poll(&pfd, 1, (int)(r->o->timeout_us / 1000));
		if (rv == 0)
			err = ETIMEDOUT;
		else if (rv == -1)
			err = errno;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err != 0)
			goto fail;
	}
	/* A server that expects the header must not see a bare connection. */
	if (r->o->proxy != 0 && proxy_send(r->o, fd,
	    (const struct sockaddr *)&r->addr) != 0) {
		err = errno;
		if (err == EAFNOSUPPORT) {
			close(fd);
			fprintf(stderr, "echoload: --proxy-source %s and %s are "
			    "not of one address family\n", r->o->proxy_source,
			    r->target);
			return -1;
		}
		goto fail;
	}
	rv = r->o->tls ? check_tls(r, fd) : 0;
	close(fd);
	return rv;
fail:
	if (fd != -1)
		close(fd);
	fprintf(stderr, "echoload: cannot connect to %s: %s\n", r->target,
	    strerror_r(err, buf, sizeof buf));
	return -1;
}

static int
resolve_target(struct run *r)
{
	const char	*why = NULL;

	if (addr_resolve(&r->o->spec, 0, &r->addr, &r->addrlen, 1, &why) < 1) {
		fprintf(stderr, "echoload: target %s: %s\n", r->o->target,
		    why != NULL ? why : "no address");
		return -1;
	}
	addr_format((struct sockaddr *)&r->addr, r->target, sizeof r->target);
	return 0;
}

static void
slots_init(struct run *r)
{
	unsigned	i;

	for (i = 0; i < SLOT_RING; i++) {
		memset(&r->slots[i].c, 0, sizeof r->slots[i].c);
		hist_init(&r->slots[i].lat);
		hist_init(&r->slots[i].svc);
		r->slots[i].reports = 0;
		r->slots[i].second = i == 0 ? SLOT_RING : i;
	}
}

static int
start_workers(struct run *r)
{
	sigset_t	all, old;
	unsigned	i;
	int		rv;

	/* Signals stay with the main thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < r->nworkers; i++) {
		rv = pthread_create(&r->workers[i].thread, NULL, worker_main,
		    &r->workers[i]);
		if (rv != 0) {
			fprintf(stderr, "echoload: cannot start a thread: %s\n",
			    strerror(rv));
			exit(1);
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}

/* Is every worker's figure for second k in? *last: nothing comes after. */
static int
slot_complete(struct run *r, uint64_t k, int *last)
{
	unsigned	i, before = 0;

	*last = 1;
	for (i = 0; i < r->nworkers; i++) {
		if (r->finished_at[i] < k)
			before++;
		if (r->finished_at[i] > k)
			*last = 0;
	}
	return r->slots[k % SLOT_RING].reports + before == r->nworkers;
}

static uint64_t
latest_finish(const struct run *r)
{
	uint64_t	t = r->measure_ns;
	unsigned	i;

	for (i = 0; i < r->nworkers; i++)
		if (r->workers[i].finish_ns > t)
			t = r->workers[i].finish_ns;
	return t;
}

/* Keep the second for JSON, and log it with --hlog. */
static void
record_second(struct run *r, const struct interval *iv, uint64_t k)
{
	struct hist	*h[NSERIES] = { NULL };

	h[SERIES_RESPONSE] = iv->lat;
	h[SERIES_SERVICE] = iv->svc;
	timeline_add(r->tl, (double)(k - 1), iv->length_s, &iv->c, h);
	if (r->hlog != NULL &&
	    hlog_write_interval(r->hlog, &r->tl->iv[r->tl->n - 1]) != 0)
		r->hlog_failed = 1;
}

/* The main thread's part: one progress line and CSV row per second. */
static void
follow(struct run *r, FILE *csv)
{
	struct interval	 iv;
	struct slot	*sl;
	uint64_t	 k;
	int		 last = 0;

	iv.lat = xmalloc(sizeof *iv.lat);
	iv.svc = xmalloc(sizeof *iv.svc);
	iv.tag = r->o->tag;
	if (r->progress && r->o->warmup_us > 0)
		report_warmup(stderr, r->o->warmup_us);
	for (k = 1; !last; k++) {
		sl = &r->slots[k % SLOT_RING];
		pthread_mutex_lock(&r->lock);
		while (!slot_complete(r, k, &last))
			pthread_cond_wait(&r->cond, &r->lock);
		iv.second = r->second_base + k;
		iv.c = sl->c;
		memcpy(iv.lat, &sl->lat, sizeof *iv.lat);
		memcpy(iv.svc, &sl->svc, sizeof *iv.svc);
		memset(&sl->c, 0, sizeof sl->c);
		hist_reset(&sl->lat);
		hist_reset(&sl->svc);
		sl->reports = 0;
		sl->second = k + SLOT_RING;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);

		iv.length_s = 1.0;
		if (last) {
			iv.length_s = (double)(latest_finish(r) -
			    r->measure_ns) / 1e9 - (double)(k - 1);
			if (iv.length_s <= 0)
				iv.length_s = 0;
		}
		if (r->progress)
			report_progress(stderr, &iv);
		if (csv != NULL)
			report_csv_row(csv, &iv);
		record_second(r, &iv, k);
	}
	if (r->progress)
		report_progress_clear(stderr);
	r->second_base += k - 1;
	free(iv.lat);
	free(iv.svc);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The median of n sorted values. */
static double
median_u64(const uint64_t *v, unsigned n)
{
	if (n % 2 == 1)
		return (double)v[n / 2];
	return ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2;
}

/*
 * The step's reply rate from the workers' edges: the medians of the
 * earliest k of all first replies and of the latest k of all last ones.
 * Between those medians lie replies - k intervals. A median, unlike a
 * single reply or a mean, does not move when a stall delays a few of the
 * edge's replies; k is a quarter of the replies, so each edge spans a
 * quarter of the window at most.
 */
static double
delivered_rate(const struct run *r, uint64_t replies)
{
	const struct reply_edges *e;
	uint64_t	*firsts, *lasts;
	unsigned	 i, j, nf = 0, nl = 0, k;
	double		 span_ns;

	if (replies < 32)
		return 0;
	k = replies / 4 < EDGE_REPLIES ? (unsigned)(replies / 4) :
	    EDGE_REPLIES;
	firsts = xcalloc(r->nworkers, sizeof e->first);
	lasts = xcalloc(r->nworkers, sizeof e->last);
	for (i = 0; i < r->nworkers; i++) {
		e = &r->workers[i].edges;
		for (j = 0; j < e->nfirst; j++)
			firsts[nf++] = e->first[j];
		for (j = 0; j < EDGE_REPLIES && j < e->nlast; j++)
			lasts[nl++] = e->last[j];
	}
	qsort(firsts, nf, sizeof *firsts, cmp_u64);
	qsort(lasts, nl, sizeof *lasts, cmp_u64);
	span_ns = median_u64(lasts + nl - k, k) - median_u64(firsts, k);
	free(firsts);
	free(lasts);
	if (span_ns <= 0)
		return 0;
	return (double)(replies - k) * 1e9 / span_ns;
}

/* The step's figures into res; the workers' totals start over. They are
 * parked, so their totals are the main thread's to touch. */
static void
collect_step(struct run *r)
{
	struct result	*res = &r->res;
	struct worker	*w;
	unsigned	 i;
	int		 k;

	memset(&res->c, 0, sizeof res->c);
	res->errors = 0;
	hist_init(&res->lat);
	hist_init(&res->svc);
	res->start_delay_s = 0;
	for (i = 0; i < r->nworkers; i++) {
		w = &r->workers[i];
		if (w->started_ns > r->start_ns &&
		    (double)(w->started_ns - r->start_ns) / 1e9 >
		    res->start_delay_s)
			res->start_delay_s = (double)(w->started_ns -
			    r->start_ns) / 1e9;
		counters_add(&res->c, &w->total);
		hist_merge(&res->lat, &w->lat);
		hist_merge(&res->svc, &w->svc);
		memset(&w->total, 0, sizeof w->total);
		hist_reset(&w->lat);
		hist_reset(&w->svc);
	}
	for (k = 0; k < ERR_MAX; k++)
		res->errors += res->c.errors[k];
	if (res->start_delay_s * 1e9 > (double)START_LATE_NS)
		fprintf(stderr, "echoload: started %.0fms after the start "
		    "time\n", res->start_delay_s * 1e3);
	res->duration_s = (double)(latest_finish(r) - r->measure_ns) / 1e9;
	res->delivered_per_s = delivered_rate(r, res->c.requests);
	res->loaded = 1;
}

/* After the workers have ended: what counts over all steps, the
 * reconnects and the handshakes. */
static void
collect_run(struct run *r)
{
	struct result	*res = &r->res;
	unsigned	 i;

	hist_init(&res->reconn.lat);
	if (r->o->tls) {
		res->tls = xcalloc(1, sizeof *res->tls);
		hist_init(&res->tls->hs_all);
		hist_init(&res->tls->hs_full);
		hist_init(&res->tls->hs_resumed);
	}
	for (i = 0; i < r->nworkers; i++) {
		reconnect_stats_add(&res->reconn, &r->workers[i].rc);
		if (r->workers[i].tls != NULL) {
			tls_totals_add(res->tls, r->workers[i].tls);
			worker_tls_free(&r->workers[i]);
		}
	}
}

/*
 * The schedule, once the connections are open: start now (after a moment
 * for the threads), or, for the first step, at --start-at by the wall
 * clock. A start time that passed while connecting is an error: starting
 * later would measure another window than the other hosts given the same
 * time.
 */
int
run_schedule(struct run *r)
{
	const struct opts	*o = r->o;
	uint64_t		 now = now_ns();
	char			 when[40], at[40];
	int			 at_time = o->start_at_ns != 0 && r->steps_run == 0;

	if (!at_time)
		r->start_ns = now + START_DELAY_NS;
	else {
		r->start_ns = wall_to_mono(o->start_at_ns);
		if (r->start_ns < now + START_LEAD_NS) {
			fprintf(stderr, "echoload: --start-at %s: too late, "
			    "it is %s already (after the connection phase)\n",
			    format_rfc3339(at, sizeof at, o->start_at_ns),
			    format_rfc3339(when, sizeof when, wall_ns()));
			r->start_missed = 1;
			return -1;
		}
		if (!o->quiet)
			fprintf(stderr, "echoload: starting at %s (in %.1fs)\n",
			    format_rfc3339(at, sizeof at, o->start_at_ns),
			    (double)(r->start_ns - now) / 1e9);
	}
	r->measure_ns = r->start_ns + o->warmup_us * 1000;
	r->end_ns = o->duration_us == 0 ? UINT64_MAX :
	    r->measure_ns + o->duration_us * 1000;
	/* With --start-at the window is defined by the wall clock: say it
	 * as given rather than as converted back. */
	r->measure_wall_ns = at_time ? o->start_at_ns + o->warmup_us * 1000 :
	    mono_to_wall(r->measure_ns);
	return 0;
}

static unsigned
run_series(const struct opts *o)
{
	unsigned	s = 0;

	if (o->mode == MODE_ECHO || o->mode == MODE_CONNECT)
		s |= SERIES_BIT(SERIES_RESPONSE);
	if (o->rate > 0 && s != 0)
		s |= SERIES_BIT(SERIES_SERVICE);
	return s;
}

static int
start_hlog(struct run *r, FILE *f)
{
	const struct opts	*o = r->o;
	struct hlog_info	 in;

	r->hlog = hlog_writer_new(f, o->hlog_interval_us / 1000000, r->series);
	memset(&in, 0, sizeof in);
	in.tag = o->tag;
	in.start_wall_ns = r->measure_wall_ns;
	in.mode = mode_name(o->mode);
	in.target = o->target;
	in.address = r->target;
	in.message_size = o->size;
	in.connections = o->connections;
	in.threads = o->threads;
	in.pipeline = o->depth;
	in.rate = o->rate;
	in.warmup_s = (double)o->warmup_us / 1e6;
	in.base_wall_ns = r->phase_wall_ns;
	/* The connection phase is over: its connect times first. */
	if (hlog_write_header(r->hlog, &in) != 0 || (in.base_wall_ns != 0 &&
	    hlog_write_once(r->hlog, SERIES_CONNECT, in.base_wall_ns,
	    (double)(r->res.conn.end_ns - r->res.conn.start_ns) / 1e9,
	    &r->res.conn.lat) != 0)) {
		fprintf(stderr, "echoload: writing %s failed\n", o->hlog_path);
		return -1;
	}
	return 0;
}

/* The connection phase ended the run: only its figures. */
static void
collect_phase_only(struct run *r)
{
	unsigned	i;

	hist_init(&r->res.lat);
	hist_init(&r->res.svc);
	hist_init(&r->res.reconn.lat);
	for (i = 0; i < r->nworkers; i++)
		if (r->workers[i].tls != NULL)
			worker_tls_free(&r->workers[i]);
}

/*
 * libevent's select back end (chosen with EVENT_NOEPOLL and EVENT_NOPOLL
 * set, or where it is all there is) watches descriptors below FD_SETSIZE
 * only, and glibc aborts the process at the first FD_SET past it. A run
 * that needs more descriptors than that is refused up front; a smaller one
 * gets a soft limit of FD_SETSIZE, so that a descriptor past it fails with
 * "too many open files" (counted like any failed connect) instead.
 */
static int
check_select(const struct run *r)
{
	const struct opts	*o = r->o;
	struct event_base	*base;
	struct rlimit		 rl;
	uint64_t		 want;
	int			 select_only;

	if ((base = worker_base(r)) == NULL)
		return 0;	/* the workers will say so */
	select_only = strcmp(event_base_get_method(base), "select") == 0;
	event_base_free(base);
	if (!select_only)
		return 0;
	want = (uint64_t)o->connections + SELECT_RESERVE +
	    2 * (uint64_t)o->threads;
	if (want > FD_SETSIZE) {
		fprintf(stderr, "echoload: -c %u needs about %llu file "
		    "descriptors, more than libevent's select back end can "
		    "watch (descriptors below FD_SETSIZE, %d): use at most "
		    "about %llu connections per echoload process, or a back "
		    "end without that limit (unset EVENT_NOEPOLL and "
		    "EVENT_NOPOLL)\n", o->connections,
		    (unsigned long long)want, FD_SETSIZE,
		    (unsigned long long)(FD_SETSIZE - SELECT_RESERVE -
		    2 * (uint64_t)o->threads));
		return -1;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > FD_SETSIZE)) {
		rl.rlim_cur = FD_SETSIZE;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	return 0;
}

/* connect.c is below run.c: the end of its phase reaches back up only
 * through these (doc/ARCHITECTURE.md, "echoload: the rooms"). */
static const struct session_hooks sess_hooks = {
	.error = worker_error,
	.error_detail = worker_error_detail,
	.done = worker_session_done,
	.up = connect_phase_up,
	.failed = connect_phase_failed,
	.socket = connect_socket,
};

static const struct connect_hooks phase_hooks = {
	.stopped = run_stop_requested,
	.schedule = run_schedule,
};

int
run_open(const struct opts *o, FILE *csv, int stepping, struct run **out)
{
	struct run	*r;
	unsigned	 i;

	*out = r = xcalloc(1, sizeof *r);
	r->sess_hooks = &sess_hooks;
	r->o = o;
	r->csv = csv;
	r->stepping = stepping;
	r->rate = o->rate;
	r->timeout_ns = o->timeout_us * 1000;
	r->progress = !o->quiet && isatty(STDERR_FILENO);
	connect_stats_init(&r->res.conn);
	if (check_select(r) != 0)
		return -2;
	if (resolve_target(r) != 0 || connect_prepare(r) != 0 ||
	    check_target(r) != 0)
		return -1;
	r->pattern = make_pattern();
	r->nworkers = o->threads;
	r->workers = xcalloc(r->nworkers, sizeof *r->workers);
	r->finished_at = xcalloc(r->nworkers, sizeof *r->finished_at);
	for (i = 0; i < r->nworkers; i++) {
		r->workers[i].run = r;
		r->workers[i].id = i;
		hist_init(&r->workers[i].ival_lat);
		hist_init(&r->workers[i].ival_svc);
		hist_init(&r->workers[i].lat);
		hist_init(&r->workers[i].svc);
		connect_stats_init(&r->workers[i].cp.st);
		hist_init(&r->workers[i].rc.lat);
		r->finished_at[i] = UINT64_MAX;
	}
	slots_init(r);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->series = run_series(o);
	r->tl = timeline_new(r->series);

	/* The first step (at o->rate) begins when the phase is over. */
	start_workers(r);
	if (connect_phase_wait(r, &phase_hooks) != 0) {
		r->phase_ended = 1;
		return 1;
	}
	if (run_has_phase(r) && r->res.conn.start_ns != 0)
		r->phase_wall_ns = mono_to_wall(r->res.conn.start_ns);
	return 0;
}

int
run_step(struct run *r, double rate)
{
	unsigned	i;

	if (r->steps_run++ > 0) {
		slots_init(r);
		for (i = 0; i < r->nworkers; i++)
			r->finished_at[i] = UINT64_MAX;
		pthread_mutex_lock(&r->lock);
		r->rate = rate;
		(void)run_schedule(r);	/* from now: it cannot fail */
		r->parked = 0;
		r->step_gen++;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
	} else if (r->hlog_fp != NULL && start_hlog(r, r->hlog_fp) != 0) {
		/* The log's header needs the start time, known from here on. */
		run_request_stop();
		r->hlog_failed = 1;
	}
	follow(r, r->csv);
	pthread_mutex_lock(&r->lock);
	while (r->parked < r->nworkers)
		pthread_cond_wait(&r->cond, &r->lock);
	pthread_mutex_unlock(&r->lock);
	collect_step(r);
	return 0;
}

void
run_close(struct run *r)
{
	unsigned	i;

	if (r->workers == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	r->quit = 1;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	for (i = 0; i < r->nworkers; i++)
		pthread_join(r->workers[i].thread, NULL);
	if (r->phase_ended)
		collect_phase_only(r);
	else
		collect_run(r);
}

int
run_load(const struct opts *o, FILE *csv, FILE *hlog, struct run **out)
{
	int	rv;

	if ((rv = run_open(o, csv, 0, out)) < 0)
		return rv;
	(*out)->hlog_fp = hlog;
	if (rv == 0)
		run_step(*out, o->rate);
	run_close(*out);
	return (*out)->start_missed || (*out)->hlog_failed ? -1 : 0;
}

void
run_free(struct run *r)
{
	if (r == NULL)
		return;
	if (r->workers != NULL) {
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->cond);
	}
	free(r->res.tls);
	timeline_free(r->tl);
	hlog_writer_free(r->hlog);
	free(r->workers);
	free(r->finished_at);
	free(r->pattern);
	free(r);
}
