/*
 * connect.c: the connection phase and what it needs: the limits checked
 * before the first connect, the source address of each connection, and the
 * pacing of the connects on each worker. Every worker opens its own
 * sessions at its share of --connect-rate with at most its share of
 * CONNECT_WINDOW connects under way, so that a burst of thousands does not
 * overrun the server's accept queue (a SYN the kernel drops there costs the
 * client a one-second retransmission). Each connection ends the phase
 * established or failed for one reason; the workers then hand their counts
 * to the main thread, which decides whether the load starts and when.
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "connect.h"
#include "report.h"
#include "run.h"
#include "session.h"
#include "sock.h"
#include "util.h"

/* Connects under way at once, over all workers. */
#define CONNECT_WINDOW		256
/* Loopback targets: one more 127.0.0.0/8 source address per this many
 * connections keeps the kernel's search for a free port short. */
#define LOOPBACK_PER_SOURCE	1000
/* Descriptors besides the connections: stdio, output files, each
 * worker's event base, the target check. */
#define FD_RESERVE		32
/* A paced run may catch up on this much lateness of its timer at once. */
#define PACE_BURST_NS		(20 * UINT64_C(1000000))
/* How often the accept queue guard looks; what counts as a hung connect
 * (beyond several times the quickest one); the pace it never goes below. */
#define WATCH_US		10000
#define STALL_NS		(50 * UINT64_C(1000000))
#define GROW_NS			(100 * UINT64_C(1000000))
#define CAP_MIN			100.0
#define PORT_RANGE_FILE		"/proc/sys/net/ipv4/ip_local_port_range"
#define NS_PER_S		UINT64_C(1000000000)

/* ---- before the run: limits and source addresses ---- */

static int
is_loopback4(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)ss;

	return ss->ss_family == AF_INET &&
	    (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
}

/* Can a socket be bound to source address i? */
static int
check_source(const struct run *r, uint64_t i)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	char			 buf[ADDR_STRLEN], why[128];
	int			 fd, err = 0;

	source_nth(&r->src, i, &ss, &len);
	if ((fd = sock_open(ss.ss_family, SOCK_STREAM, 0, 0)) == -1)
		err = errno;
	else if (bind(fd, (struct sockaddr *)&ss, len) != 0)
		err = errno;
	if (fd != -1)
		close(fd);
	if (err == 0)
		return 0;
	addr_host((struct sockaddr *)&ss, buf, sizeof buf);
	fprintf(stderr, "echoload: --source %s: %s\n", buf,
	    err == EADDRNOTAVAIL ? "not an address of this host" :
	    strerror_r(err, why, sizeof why));
	return -1;
}

static int
pick_sources(struct run *r)
{
	const struct opts	*o = r->o;
	uint64_t		 used, i;
	unsigned		 need;

	if (o->sources.n == 0) {
		/* 127.0.0.0/8 is all local on Linux: spread a large run
		 * over as many loopback addresses as it needs. */
		need = (o->connections + LOOPBACK_PER_SOURCE - 1) /
		    LOOPBACK_PER_SOURCE;
		if (is_loopback4(&r->addr) && need > 1)
			source_loopback(&r->src, need,
			    (uint32_t)getpid() ^ (uint32_t)time(NULL));
		return 0;
	}
	if (source_family(&o->sources) != r->addr.ss_family) {
		fprintf(stderr, "echoload: --source gives %s addresses, the "
		    "target %s is %s\n",
		    source_family(&o->sources) == AF_INET ? "IPv4" : "IPv6",
		    r->target, r->addr.ss_family == AF_INET ? "IPv4" : "IPv6");
		return -1;
	}
	r->src = o->sources;
	/* The first and last address of each range that the run uses: a
	 * typo shows here, once, not as a failure on every connection. */
	used = r->src.total < o->connections ? r->src.total : o->connections;
	for (i = 0; i < used; i++) {
		if (check_source(r, i) != 0)
			return -1;
		if (i + 1 < used && r->src.n == 1)
			i = used - 2;
	}
	return 0;
}

static unsigned
read_port_range(unsigned *lo, unsigned *hi)
{
	FILE	*f;
	int	 n;

	if ((f = fopen(PORT_RANGE_FILE, "r")) == NULL)
		return 0;
	n = fscanf(f, "%u %u", lo, hi);
	fclose(f);
	if (n != 2 || *hi < *lo)
		return 0;
	return *hi - *lo + 1;
}

static void
check_ports(struct run *r)
{
	const struct opts	*o = r->o;
	unsigned		 lo = 0, hi = 0;
	uint64_t		 nsrc, per;

	if ((r->port_range = read_port_range(&lo, &hi)) == 0)
		return;
	nsrc = r->src.total > 0 ? r->src.total : 1;
	if (nsrc > o->connections)
		nsrc = o->connections;
	per = (o->connections + nsrc - 1) / nsrc;
	if (per <= r->port_range)
		return;
	fprintf(stderr, "echoload: warning: %llu connections per source "
	    "address to %s, but the local port range (%u-%u, "
	    "net.ipv4.ip_local_port_range) has %u ports: expect about %llu "
	    "to fail with \"address not available\"; give more source "
	    "addresses with --source\n", (unsigned long long)per, r->target,
	    lo, hi, r->port_range,
	    (unsigned long long)((per - r->port_range) * nsrc));
}

/* One descriptor per connection: raise the soft limit as far as needed,
 * and say plainly when the hard limit is in the way. */
static int
check_fds(struct run *r)
{
	const struct opts	*o = r->o;
	struct rlimit		 rl;
	rlim_t			 want;

	want = (rlim_t)o->connections + FD_RESERVE + 2 * (rlim_t)o->threads;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return 0;
	rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ?
	    rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE,
	    &rl) != 0)
		return 0;
	if (rl.rlim_cur >= want)
		return 0;
	fprintf(stderr, "echoload: %u connections need about %llu file "
	    "descriptors, but the limit is %llu (hard limit %llu, ulimit -Hn): "
	    "%s. Raise the hard limit (nofile in /etc/security/limits.conf, "
	    "LimitNOFILE= in a systemd unit, or prlimit --nofile as root), or "
	    "split the connections over several echoload processes\n",
	    o->connections, (unsigned long long)want,
	    (unsigned long long)rl.rlim_cur,
	    (unsigned long long)rl.rlim_max,
	    o->require_all ? "not starting (--require-all)" :
	    "the connections past it will fail with \"too many open files\"");
	return o->require_all ? -1 : 0;
}

int
connect_prepare(struct run *r)
{
	r->connect_timeout_ns = r->o->connect_timeout_us * 1000;
	if (pick_sources(r) != 0)
		return -1;
	check_ports(r);
	return check_fds(r);
}

int
connect_socket(const struct run *r, unsigned index, int *err)
{
	struct sockaddr_storage	 src;
	socklen_t		 len;
	int			 fd, one = 1;

	if ((fd = sock_open(r->addr.ss_family, SOCK_STREAM, 0, 1)) == -1) {
		*err = errno;
		return -1;
	}
#if HAVE_TCP_NODELAY
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#endif
	if (r->src.n == 0)
		return fd;
#if HAVE_IP_BIND_ADDRESS_NO_PORT
	/* The port is then picked at connect time, per destination, rather
	 * than reserved per source address at bind time. */
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
	(void)one;
	source_nth(&r->src, index, &src, &len);
	if (bind(fd, (struct sockaddr *)&src, len) != 0) {
		*err = errno;
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- the phase, on each worker ---- */

static void	connect_pump(struct worker *);

static void
on_pace(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	connect_pump(arg);
}

static void
arm_pace(struct worker *w, uint64_t due, uint64_t now)
{
	struct timeval	tv;
	uint64_t	us = due > now ? (due - now + 999) / 1000 : 0;

	evtimer_add(w->cp.ev_pace, tv_from_us(&tv, us));
}

/* The pace now: --connect-rate's share, lowered by the guard's cap. */
static double
pace(const struct connect_phase *cp)
{
	if (cp->cap > 0 && (cp->rate == 0 || cp->cap < cp->rate))
		return cp->cap;
	return cp->rate;
}

/* Start the connects that are due and fit in the window. */
static void
connect_pump(struct worker *w)
{
	struct connect_phase	*cp = &w->cp;
	uint64_t		 now;
	double			 r;

	if (cp->pumping || !cp->active)
		return;
	cp->pumping = 1;
	now = now_ns();
	while (cp->next < w->nsessions && cp->pending < cp->window) {
		if ((r = pace(cp)) > 0) {
			if (cp->due_ns > now) {
				arm_pace(w, cp->due_ns, now);
				break;
			}
			if (cp->due_ns + PACE_BURST_NS < now)
				cp->due_ns = now - PACE_BURST_NS;
			cp->due_ns += (uint64_t)(1e9 / r);
		}
		cp->pending++;
		session_connect(&w->sessions[cp->next++], now);
	}
	cp->pumping = 0;
	if (cp->resolved == w->nsessions) {
		cp->st.end_ns = now_ns();
		cp->active = 0;
		event_base_loopbreak(w->base);
	}
}

static int
connecting(const struct session *s)
{
	return s->state == S_CONNECTING || s->state == S_HANDSHAKE;
}

/* Is this connect still waiting for the SYN-ACK? Age alone cannot tell a
 * dropped SYN from a connection this busy thread has not yet seen. */
static int
syn_sent(const struct session *s)
{
#if defined(TCP_INFO) && defined(__linux__)
	struct tcp_info	ti;
	socklen_t	len = sizeof ti;

	if (getsockopt(s->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
		return 0;
	return ti.tcpi_state == TCP_SYN_SENT;
#else
	(void)s;
	return 1;
#endif
}

/* Begin again the TCP connects (not handshakes) that hang: the window
 * bounds how many there are to look at. Returns how many hung. */
static unsigned
retry_hung(struct worker *w, uint64_t now, uint64_t limit)
{
	struct connect_phase	*cp = &w->cp;
	struct session		*s;
	unsigned		 i, hung = 0;

	while (cp->oldest < cp->next && !connecting(&w->sessions[cp->oldest]))
		cp->oldest++;
	for (i = cp->oldest; i < cp->next; i++) {
		s = &w->sessions[i];
		if (s->state != S_CONNECTING || s->retries >= 8 ||
		    now - s->since_ns < limit << s->retries || !syn_sent(s))
			continue;
		hung++;
		cp->st.retried++;
		session_retry(s, now);
	}
	return hung;
}

/* The accept queue guard, every WATCH_US. */
static void
on_watch(evutil_socket_t fd, short what, void *arg)
{
	struct worker		*w = arg;
	struct connect_phase	*cp = &w->cp;
	uint64_t		 now = now_ns(), limit;

	(void)fd;
	(void)what;
	if (now - cp->seen_ns >= GROW_NS) {
		cp->through = (double)(cp->resolved - cp->seen) * 1e9 /
		    (double)(now - cp->seen_ns);
		cp->seen = cp->resolved;
		cp->seen_ns = now;
		if (cp->cap > 0 && now - cp->cut_ns >= GROW_NS)
			cp->cap += cp->cap / 8;
	}
	limit = STALL_NS + 4 * cp->fastest_ns;
	if (retry_hung(w, now, limit) == 0 || now - cp->cut_ns < limit)
		return;
	/* Hung: the queue was full. The ones after go at half the rate
	 * that got through. */
	cp->cap = cp->through / 2 > CAP_MIN ? cp->through / 2 : CAP_MIN;
	cp->cut_ns = now;
}

void
connect_phase_run(struct worker *w)
{
	struct connect_phase	*cp = &w->cp;
	const struct run	*r = w->run;
	unsigned		 n = r->nworkers;
	struct timeval		 tv = { 0, WATCH_US };

	cp->window = (CONNECT_WINDOW + n - 1) / n;
	cp->rate = r->o->connect_rate / n;
	cp->st.asked = w->nsessions;
	cp->st.start_ns = cp->due_ns = cp->seen_ns = now_ns();
	cp->fastest_ns = UINT64_MAX / 8;
	cp->ev_pace = evtimer_new(w->base, on_pace, w);
	cp->ev_watch = event_new(w->base, -1, EV_PERSIST, on_watch, w);
	if (cp->ev_pace == NULL || cp->ev_watch == NULL) {
		fprintf(stderr, "echoload: cannot create timer events\n");
		exit(1);
	}
	event_add(cp->ev_watch, &tv);
	cp->active = 1;
	connect_pump(w);
	if (cp->active)
		event_base_dispatch(w->base);
	if (cp->active) {
		/* Stopped by a signal: what is under way stays uncounted. */
		cp->st.end_ns = now_ns();
		cp->active = 0;
	}
	event_free(cp->ev_pace);
	event_free(cp->ev_watch);
	cp->ev_pace = cp->ev_watch = NULL;
}

/* A stop asked for during the phase (the sweep calls this). */
void
connect_phase_stop(struct worker *w)
{
	event_base_loopbreak(w->base);
}

void
connect_phase_up(struct session *s, uint64_t now)
{
	struct worker	*w = s->w;

	w->cp.pending--;
	w->cp.resolved++;
	w->cp.st.established++;
	s->phase_up = 1;
	if (now - s->connect_ns < w->cp.fastest_ns)
		w->cp.fastest_ns = now - s->connect_ns;
	hist_record(&w->cp.st.lat, (now - s->connect_ns + 500) / 1000);
	atomic_fetch_add(&w->run->phase_up, 1);
	connect_pump(w);
}

/* The first failure of each kind is explained, once for the run. */
static void
warn_failure(struct session *s, enum conn_fail why, int err,
    const char *detail)
{
	struct run		*r = s->w->run;
	struct sockaddr_storage	 src;
	socklen_t		 len;
	unsigned		 bit = 1u << why;
	char			 from[ADDR_STRLEN + 8] = "", buf[128], tmo[32];
	struct rlimit		 rl;

	if ((atomic_fetch_or(&r->phase_warned, bit) & bit) != 0)
		return;
	if (r->progress)
		fprintf(stderr, "\r\033[K");
	if (r->src.n > 0) {
		source_nth(&r->src, s->index, &src, &len);
		memcpy(from, " from ", 6);
		addr_host((struct sockaddr *)&src, from + 6, sizeof from - 6);
	}
	switch (why) {
	case CF_TIMEOUT:
		report_duration(tmo, sizeof tmo, r->o->connect_timeout_us);
		fprintf(stderr, "echoload: connect%s to %s: not up within %s "
		    "(--connect-timeout): the server's accept queue may be "
		    "full (its backlog, or its connection limit reached)\n",
		    from, r->target, tmo);
		break;
	case CF_ADDRNOTAVAIL:
		fprintf(stderr, "echoload: connect%s to %s: no free local "
		    "port (%s): the local port range has %u ports per source "
		    "address and destination, and TIME_WAIT sockets of earlier "
		    "runs hold some (ss -tan state time-wait | wc -l); spread "
		    "the connections over more addresses with --source\n",
		    from, r->target, strerror_r(err, buf, sizeof buf),
		    r->port_range);
		break;
	case CF_NOFILE:
		if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
			rl.rlim_cur = 0;
		fprintf(stderr, "echoload: out of file descriptors (%s; limit "
		    "%llu, ulimit -n)\n", strerror_r(err, buf, sizeof buf),
		    (unsigned long long)rl.rlim_cur);
		break;
	case CF_TLS:
		fprintf(stderr, "echoload: TLS with %s: %s\n", r->target,
		    detail != NULL ? detail : "handshake failed");
		break;
	case CF_RESET:
		if (err == 0) {
			fprintf(stderr, "echoload: %s closed a connection "
			    "before the load began\n", r->target);
			break;
		}
		/* FALLTHROUGH */
	default:
		fprintf(stderr, "echoload: connect%s to %s: %s\n", from,
		    r->target, err != 0 ? strerror_r(err, buf, sizeof buf) :
		    detail != NULL ? detail : "failed");
		break;
	}
}

void
connect_phase_failed(struct session *s, enum conn_fail why, int err,
    const char *detail, uint64_t now)
{
	struct worker	*w = s->w;

	(void)now;
	if (s->phase_up) {
		/* It came up, then went before the load began. */
		s->phase_up = 0;
		w->cp.st.established--;
		atomic_fetch_sub(&w->run->phase_up, 1);
	} else {
		w->cp.pending--;
		w->cp.resolved++;
	}
	w->cp.st.failed[why]++;
	atomic_fetch_add(&w->run->phase_failed, 1);
	warn_failure(s, why, err, detail);
	connect_pump(w);
}

/* ---- the main thread's side ---- */

static void
say_short(const struct run *r, const struct connect_stats *st)
{
	char	reasons[256];

	report_connect_reasons(reasons, sizeof reasons, st);
	if (st->established == 0)
		fprintf(stderr, "echoload: no connection established (%s): "
		    "nothing to measure\n", reasons);
	else if (r->o->require_all)
		fprintf(stderr, "echoload: only %llu of %llu connections "
		    "established (%s): not running the load (--require-all)\n",
		    (unsigned long long)st->established,
		    (unsigned long long)st->asked, reasons);
	else
		fprintf(stderr, "echoload: only %llu of %llu connections "
		    "established (%s): running the load on those\n",
		    (unsigned long long)st->established,
		    (unsigned long long)st->asked, reasons);
}

static void
wait_workers(struct run *r)
{
	struct timespec	ts;

	pthread_mutex_lock(&r->lock);
	while (r->phase_done < r->nworkers) {
		if (r->progress && run_has_phase(r)) {
			report_connecting(stderr, atomic_load(&r->phase_up),
			    atomic_load(&r->phase_failed), r->o->connections);
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&r->cond, &r->lock, &ts);
	}
	pthread_mutex_unlock(&r->lock);
	if (r->progress && run_has_phase(r))
		report_progress_clear(stderr);
}

int
connect_phase_wait(struct run *r, const struct connect_hooks *h)
{
	const struct connect_stats	*st = &r->res.conn;
	int				 go = 1;

	wait_workers(r);
	if (h->stopped())
		go = -1;
	else if (run_has_phase(r) && st->established < st->asked) {
		say_short(r, st);
		if (st->established == 0 || r->o->require_all)
			go = -1;
	}
	if (go > 0 && h->schedule(r) != 0)
		go = -1;
	pthread_mutex_lock(&r->lock);
	r->go = go;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return go > 0 ? 0 : -1;
}
