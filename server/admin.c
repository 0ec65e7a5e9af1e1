/*
 * admin.c: the admin HTTP endpoint ([admin] address), served by libevent's
 * evhttp on the main base. It owns its sockets (bound before privileges
 * are dropped) and the three pages: /metrics in the Prometheus text
 * exposition format, /stats as JSON, and /healthz. Everything it reports is
 * read from the counters in stats.h with relaxed loads; nothing here ever
 * touches a worker's connections.
 *
 * A hostile or broken client gets bounded resources. evhttp (libevent 2.1)
 * keeps reading while it writes a reply and never bounds its input, and its
 * timeout restarts with every byte; so each connection's bufferevent is
 * made here (evhttp_set_bevcb), with a read watermark that bounds the
 * input, a reference of ours that tells us when evhttp is done with it, and
 * a deadline that no trickle of bytes moves. At
 * most ADMIN_MAX_CONNS connections are open at once: beyond that the
 * sockets stop accepting and clients wait in the backlog, so the endpoint
 * can never take the descriptors the echo listeners need. Out of
 * descriptors, the sockets pause and retry, as the echo listeners do.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "addr.h"
#include "admin.h"
#include "config.h"
#include "log.h"
#include "server.h"
#include "sock.h"
#include "stats.h"
#include "listener.h"
#include "tls_stats.h"
#include "util.h"
#include "worker.h"

#define ADMIN_MAX_SOCKS		8
#define ADMIN_MAX_CONNS		16	/* open at once; more wait */
#define ADMIN_DEADLINE_S	5	/* to send a request, read its reply */
#define ADMIN_MAX_HEADERS	8192
/* Input buffered per connection: a whole request line and headers fit. */
#define ADMIN_MAX_INPUT		(ADMIN_MAX_HEADERS + 8192)
#define ADMIN_RETRY_MS		100	/* after EMFILE */
#define ADMIN_TICK_MS		100	/* release and deadline checks */
#define ADMIN_EMFILE_LOG_US	(10 * 1000000ULL)	/* a pause line per 10 s */

/* The server reported on, handed over by admin_start. */
static struct server		*srv;
/* One accepted connection, as far as we track it: evhttp owns the rest. */
struct admin_conn {
	struct bufferevent	*bev;		/* evhttp's, and one reference */
	struct event		*tick;
	uint64_t		 deadline_us;
	LIST_ENTRY(admin_conn)	 entry;
};

static int			 admin_fds[ADMIN_MAX_SOCKS];
static int			 admin_nfds;
static struct evhttp		*admin_http;
static struct evconnlistener	*admin_evls[ADMIN_MAX_SOCKS];
static int			 admin_nevls;
static struct event		*admin_retry;
static LIST_HEAD(, admin_conn)	 admin_conns = LIST_HEAD_INITIALIZER(admin_conns);
static int			 admin_nconns;
static int			 admin_paused_emfile;
static int			 admin_at_limit;
static uint64_t			 admin_accept_failures;	/* since reported */
static uint64_t			 admin_emfile_logged_us;
static int			 admin_emfile_reported;

/* --- sockets --------------------------------------------------------------- */

static int
admin_bind_one(struct sockaddr_storage *ss, socklen_t len, char *err,
    size_t errlen)
{
	char	where[ADDR_STRLEN];
	int	fd, one = 1, zero = 0;

	addr_format((struct sockaddr *)ss, where, sizeof(where));
	fd = sock_open(ss->ss_family, SOCK_STREAM, 0, 1);
	if (fd == -1) {
		snprintf(err, errlen, "admin %s: socket: %s", where,
		    strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
		goto fail;
	if (ss->ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		int v6only = !IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);

		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
		    v6only ? &one : &zero, sizeof(one)) != 0)
			goto fail;
	}
	if (bind(fd, (struct sockaddr *)ss, len) != 0 || listen(fd, 64) != 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "admin %s: %s", where, strerror(errno));
	close(fd);
	return -1;
}

int
admin_bind(const struct config *conf, char *err, size_t errlen)
{
	struct sockaddr_storage	 ss[ADMIN_MAX_SOCKS];
	socklen_t		 lens[ADMIN_MAX_SOCKS];
	const char		*why;
	int			 i, n, fd;

	if (conf->admin_address == NULL)
		return 0;
	n = addr_resolve(&conf->admin_spec, 1, ss, lens, ADMIN_MAX_SOCKS,
	    &why);
	if (n <= 0) {
		snprintf(err, errlen, "admin %s: %s", conf->admin_address,
		    n < 0 ? why : "no address");
		return -1;
	}
	for (i = 0; i < n; i++) {
		fd = admin_bind_one(&ss[i], lens[i], err, errlen);
		if (fd == -1 && conf->admin_spec.wildcard &&
		    ss[i].ss_family == AF_INET6 && (errno == EAFNOSUPPORT ||
		    errno == EADDRNOTAVAIL)) {
			/* "*" without IPv6: every IPv4 address instead. */
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss[i];

			memset(&ss[i], 0, sizeof(ss[i]));
			sin->sin_family = AF_INET;
			sin->sin_addr.s_addr = htonl(INADDR_ANY);
			sin->sin_port = htons((uint16_t)conf->admin_spec.port);
			fd = admin_bind_one(&ss[i], sizeof(*sin), err, errlen);
		}
		if (fd == -1) {
			admin_stop();
			return -1;
		}
		admin_fds[admin_nfds++] = fd;
	}
	return 0;
}

/* --- connections ------------------------------------------------------- */

/* Accept while below the cap and not out of descriptors. */
static void
admin_arm(void)
{
	int	i, on = !admin_paused_emfile && admin_nconns < ADMIN_MAX_CONNS;

	if (admin_nconns >= ADMIN_MAX_CONNS && !admin_at_limit)
		log_notice("admin: %d connections open: not accepting more "
		    "until one closes", admin_nconns);
	admin_at_limit = admin_nconns >= ADMIN_MAX_CONNS;
	for (i = 0; i < admin_nevls; i++) {
		if (on)
			evconnlistener_enable(admin_evls[i]);
		else
			evconnlistener_disable(admin_evls[i]);
	}
}

/*
 * We hold a reference on each connection's bufferevent, so evhttp's
 * bufferevent_free leaves it (and its socket) to us: evhttp has let go
 * once the event callback it always sets is gone. The tick finds that,
 * and enforces the deadline meanwhile.
 */
static void
admin_conn_release(struct admin_conn *ac)
{
	evutil_socket_t	fd = bufferevent_getfd(ac->bev);

	LIST_REMOVE(ac, entry);
	event_free(ac->tick);
	/* The socket goes now, not when the base finalizes the
	 * bufferevent. */
	bufferevent_disable(ac->bev, EV_READ | EV_WRITE);
	bufferevent_setfd(ac->bev, -1);
	if (fd != -1)
		close(fd);
	bufferevent_decref(ac->bev);
	free(ac);
	admin_nconns--;
	admin_arm();
}

static void
admin_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct admin_conn	*ac = arg;
	bufferevent_event_cb	 eventcb;

	(void)fd;
	(void)what;
	bufferevent_getcb(ac->bev, NULL, NULL, &eventcb, NULL);
	if (eventcb == NULL) {
		admin_conn_release(ac);
		return;
	}
	if (now_us() < ac->deadline_us)
		return;
	/* Too slow, however many bytes trickled in: evhttp drops the
	 * connection as on its own timeout. */
	log_debug("admin: a connection passed its %d s deadline: closed",
	    ADMIN_DEADLINE_S);
	ac->deadline_us = UINT64_MAX;
	bufferevent_trigger_event(ac->bev, BEV_EVENT_READING |
	    BEV_EVENT_TIMEOUT, 0);
}

/* evhttp's bufferevent for a connection it has just accepted. */
static struct bufferevent *
admin_conn_new(struct event_base *base, void *arg)
{
	struct timeval		 tick = { 0, ADMIN_TICK_MS * 1000 };
	struct admin_conn	*ac;

	(void)arg;
	if (admin_emfile_reported) {
		log_notice("admin: accepting again after %" PRIu64 " failed "
		    "accept%s", admin_accept_failures,
		    admin_accept_failures == 1 ? "" : "s");
		admin_accept_failures = 0;
		admin_emfile_reported = 0;
	}
	ac = xcalloc(1, sizeof(*ac));
	ac->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	ac->tick = event_new(base, -1, EV_PERSIST, admin_tick_cb, ac);
	if (ac->bev == NULL || ac->tick == NULL)
		fatalx("admin: cannot make a connection");
	bufferevent_incref(ac->bev);
	/* Reading stops at the bound until evhttp has parsed what is in. */
	bufferevent_setwatermark(ac->bev, EV_READ, 0, ADMIN_MAX_INPUT);
	ac->deadline_us = now_us() + ADMIN_DEADLINE_S * 1000000ULL;
	event_add(ac->tick, &tick);
	LIST_INSERT_HEAD(&admin_conns, ac, entry);
	admin_nconns++;
	admin_arm();
	return ac->bev;
}

/* evhttp is freeing the connection: release ours once it is done, in
 * this turn of the loop rather than at the next tick. */
static void
admin_conn_closing(struct evhttp_connection *evcon, void *arg)
{
	struct admin_conn	*ac = arg;

	(void)evcon;
	event_active(ac->tick, EV_TIMEOUT, 1);
}

static struct admin_conn *
admin_conn_of(struct evhttp_request *req)
{
	struct evhttp_connection	*evcon;
	struct bufferevent		*bev;
	struct admin_conn		*ac;

	if ((evcon = evhttp_request_get_connection(req)) == NULL)
		return NULL;
	bev = evhttp_connection_get_bufferevent(evcon);
	LIST_FOREACH(ac, &admin_conns, entry) {
		if (ac->bev == bev) {
			evhttp_connection_set_closecb(evcon,
			    admin_conn_closing, ac);
			return ac;
		}
	}
	return NULL;
}

/*
 * Every reply goes out here. A reply restarts the connection's deadline,
 * which then covers writing it and reading the next request. HEAD gets
 * the headers of GET, Content-Length included, and no body: evhttp 2.1
 * would send the body, and a keep-alive client would read it as the start
 * of its next reply.
 */
static void
admin_send(struct evhttp_request *req, int code, const char *reason)
{
	struct evbuffer		*body = evhttp_request_get_output_buffer(req);
	struct admin_conn	*ac = admin_conn_of(req);
	char			 len[32];

	if (ac != NULL)
		ac->deadline_us = now_us() + ADMIN_DEADLINE_S * 1000000ULL;
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		snprintf(len, sizeof(len), "%zu", evbuffer_get_length(body));
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Length", len);
		evbuffer_drain(body, evbuffer_get_length(body));
	}
	evhttp_send_reply(req, code, reason, NULL);
}

static void
admin_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	admin_paused_emfile = 0;
	admin_arm();
}

/* Out of descriptors: libevent would report the pending connection again
 * at once, forever. Pause all admin sockets and retry; one log line per
 * pause, and one when accepting works again. */
static void
admin_accept_error_cb(struct evconnlistener *evl, void *arg)
{
	struct timeval	tv = { 0, ADMIN_RETRY_MS * 1000 };
	int		err = EVUTIL_SOCKET_ERROR();

	(void)evl;
	(void)arg;
	if (err != EMFILE && err != ENFILE && err != ENOBUFS &&
	    err != ENOMEM) {
		log_debug("admin: accept: %s", strerror(err));
		return;
	}
	admin_accept_failures++;
	if (!admin_emfile_reported && (admin_emfile_logged_us == 0 ||
	    now_us() - admin_emfile_logged_us >= ADMIN_EMFILE_LOG_US)) {
		log_warnx("admin: accept: %s; pausing, retrying every %d ms",
		    strerror(err), ADMIN_RETRY_MS);
		admin_emfile_reported = 1;
		admin_emfile_logged_us = now_us();
	}
	admin_paused_emfile = 1;
	admin_arm();
	evtimer_add(admin_retry, &tv);
}

/* --- text helpers ------------------------------------------------------- */

/* A Prometheus label value: backslash, quote and newline escaped. */
static const char *
label_escape(const char *s, char *buf, size_t len)
{
	size_t	o = 0;

	for (; *s != '\0' && o + 3 < len; s++) {
		if (*s == '\\' || *s == '"') {
			buf[o++] = '\\';
			buf[o++] = *s;
		} else if (*s == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else
			buf[o++] = *s;
	}
	buf[o] = '\0';
	return buf;
}

/* A JSON string, quotes included. */
static void
json_string(struct evbuffer *b, const char *s)
{
	evbuffer_add(b, "\"", 1);
	for (; *s != '\0'; s++) {
		unsigned char	c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			evbuffer_add_printf(b, "\\%c", c);
		else if (c < 0x20)
			evbuffer_add_printf(b, "\\u%04x", c);
		else
			evbuffer_add(b, s, 1);
	}
	evbuffer_add(b, "\"", 1);
}

static double
uptime_seconds(void)
{
	return (double)(now_us() - srv->started_us) / 1e6;
}

/* Connections of a listener open now: accepted and not yet closed. */
static uint64_t
listener_open(struct listener *l)
{
	uint64_t	acc = atomic_load(&l->stats.accepted);
	uint64_t	closed = atomic_load(&l->stats.closed);

	return acc > closed ? acc - closed : 0;
}

/* --- /metrics ----------------------------------------------------------- */

static void
family(struct evbuffer *b, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/* One family with one sample per listener. */
typedef uint64_t (*listener_get)(struct listener *);

static uint64_t l_open(struct listener *l) { return listener_open(l); }
static uint64_t l_accepted(struct listener *l)
    { return atomic_load(&l->stats.accepted); }
static uint64_t l_refused(struct listener *l)
    { return atomic_load(&l->stats.refused); }
static uint64_t l_closed(struct listener *l)
    { return atomic_load(&l->stats.closed); }
static uint64_t l_accept_errors(struct listener *l)
    { return atomic_load(&l->stats.accept_errors); }
static uint64_t l_bytes_in(struct listener *l)
    { return atomic_load(&l->stats.bytes_in); }
static uint64_t l_bytes_out(struct listener *l)
    { return atomic_load(&l->stats.bytes_out); }

static const struct {
	const char	*name;
	const char	*type;
	const char	*help;
	listener_get	 get;
} listener_metrics[] = {
	{ "echod_listener_connections_open", "gauge",
	    "Connections of this listener open now.", l_open },
	{ "echod_listener_connections_total", "counter",
	    "Connections accepted and served.", l_accepted },
	{ "echod_listener_connections_refused_total", "counter",
	    "Connections accepted and closed at once: over max_connections.",
	    l_refused },
	{ "echod_listener_connections_closed_total", "counter",
	    "Connections that have closed.", l_closed },
	{ "echod_listener_accept_errors_total", "counter",
	    "Failed accept calls (EMFILE, ENFILE and others).",
	    l_accept_errors },
	{ "echod_listener_received_bytes_total", "counter",
	    "Bytes received on connections of this listener, added when "
	    "each connection closes.", l_bytes_in },
	{ "echod_listener_sent_bytes_total", "counter",
	    "Bytes sent on connections of this listener, added when each "
	    "connection closes.", l_bytes_out },
};

/* One family with one sample per worker. */
#define W_FIELD(f)	offsetof(struct worker_stats, f)
static const struct {
	const char	*name;
	const char	*type;
	const char	*help;
	size_t		 off;
} worker_metrics[] = {
	{ "echod_worker_connections_open", "gauge",
	    "Connections this worker serves now.", W_FIELD(conns_open) },
	{ "echod_worker_connections_total", "counter",
	    "Connections this worker has served.", W_FIELD(conns_total) },
	{ "echod_worker_connections_timed_out_total", "counter",
	    "Connections closed by idle_timeout or handshake_timeout.",
	    W_FIELD(timed_out) },
	{ "echod_worker_connection_errors_total", "counter",
	    "Connections closed on a socket or TLS error.", W_FIELD(errors) },
	{ "echod_worker_received_bytes_total", "counter",
	    "Bytes received, counted as they arrive.", W_FIELD(bytes_in) },
	{ "echod_worker_sent_bytes_total", "counter",
	    "Bytes sent, counted as they leave.", W_FIELD(bytes_out) },
	{ "echod_worker_read_pauses_total", "counter",
	    "Times reading paused because pending output passed max_buffer.",
	    W_FIELD(backpressure) },
	{ "echod_worker_tls_handshakes_total", "counter",
	    "TLS handshakes completed.", W_FIELD(tls_handshakes) },
	{ "echod_worker_tls_handshake_failures_total", "counter",
	    "TLS handshakes that failed.", W_FIELD(tls_handshake_failed) },
	{ "echod_worker_tls_sessions_resumed_total", "counter",
	    "TLS handshakes that resumed a session.", W_FIELD(tls_resumed) },
};

static uint64_t
worker_get(int i, size_t off)
{
	return counter_get((counter_t *)((char *)&worker_at(i)->stats +
	    off));
}

static void
metrics_server(struct evbuffer *b)
{
	family(b, "echod_info", "gauge", "Version of echod and libevent.");
	evbuffer_add_printf(b, "echod_info{version=\"%s\",libevent=\"%s\","
	    "backend=\"%s\"} 1\n", ECHOLOAD_VERSION, event_get_version(),
	    event_base_get_method(srv->base));
	family(b, "echod_start_time_seconds", "gauge",
	    "When echod started, in seconds since the Unix epoch.");
	evbuffer_add_printf(b, "echod_start_time_seconds %.3f\n",
	    ((double)wall_us() - (double)(now_us() - srv->started_us)) / 1e6);
	family(b, "echod_uptime_seconds", "gauge",
	    "Seconds since echod started.");
	evbuffer_add_printf(b, "echod_uptime_seconds %.3f\n",
	    uptime_seconds());
	family(b, "echod_workers", "gauge", "Worker threads.");
	evbuffer_add_printf(b, "echod_workers %d\n", srv->nworkers);
	family(b, "echod_connections_open", "gauge",
	    "Connections open now, all listeners.");
	evbuffer_add_printf(b, "echod_connections_open %" PRIu64 "\n",
	    listener_conns_open());
	family(b, "echod_connections_max", "gauge",
	    "max_connections: accepting pauses at this many.");
	evbuffer_add_printf(b, "echod_connections_max %" PRIu64 "\n",
	    srv->conf->max_connections);
	family(b, "echod_reloads_total", "counter",
	    "Configuration reloads, by result.");
	evbuffer_add_printf(b, "echod_reloads_total{result=\"ok\"} %" PRIu64
	    "\n", srv->reloads_ok);
	evbuffer_add_printf(b, "echod_reloads_total{result=\"failed\"} %"
	    PRIu64 "\n", srv->reloads_failed);
}

static void
metrics_listeners(struct evbuffer *b)
{
	struct listener	*l;
	char		 name[256], addr[512];
	size_t		 m;

	family(b, "echod_listener_info", "gauge",
	    "One per listener: its address, mode and whether it serves TLS.");
	TAILQ_FOREACH(l, &srv->listeners, entry) {
		label_escape(l->name, name, sizeof(name));
		label_escape(l->address, addr, sizeof(addr));
		evbuffer_add_printf(b, "echod_listener_info{listener=\"%s\","
		    "address=\"%s\",mode=\"%s\",tls=\"%s\"} 1\n", name, addr,
		    mode_name(l->mode), l->tls ? "yes" : "no");
	}
	for (m = 0; m < nitems(listener_metrics); m++) {
		family(b, listener_metrics[m].name, listener_metrics[m].type,
		    listener_metrics[m].help);
		TAILQ_FOREACH(l, &srv->listeners, entry)
			evbuffer_add_printf(b, "%s{listener=\"%s\"} %" PRIu64
			    "\n", listener_metrics[m].name,
			    label_escape(l->name, name, sizeof(name)),
			    listener_metrics[m].get(l));
	}
}

static void
metrics_workers(struct evbuffer *b)
{
	size_t	m;
	int	i;

	for (m = 0; m < nitems(worker_metrics); m++) {
		family(b, worker_metrics[m].name, worker_metrics[m].type,
		    worker_metrics[m].help);
		for (i = 0; i < worker_count(); i++)
			evbuffer_add_printf(b, "%s{worker=\"%d\"} %" PRIu64
			    "\n", worker_metrics[m].name, i,
			    worker_get(i, worker_metrics[m].off));
	}
}

/* The two log sinks, by their config key; only those writing a file. */
static const struct {
	const char	*name;
	const char	*type;
	const char	*help;
	size_t		 off;
} log_metrics[] = {
	{ "echod_log_lines_written_total", "counter",
	    "Log lines written to the file.",
	    offsetof(struct log_sink_stats, lines_written) },
	{ "echod_log_lines_dropped_total", "counter",
	    "Log lines dropped because the sink's buffer was full.",
	    offsetof(struct log_sink_stats, lines_dropped) },
	{ "echod_log_lines_abandoned_total", "counter",
	    "Of the dropped lines, those in a write given up on (a stalled "
	    "file replaced by a reopen).",
	    offsetof(struct log_sink_stats, lines_abandoned) },
	{ "echod_log_written_bytes_total", "counter",
	    "Bytes written to the log file.",
	    offsetof(struct log_sink_stats, bytes_written) },
	{ "echod_log_queued_bytes", "gauge",
	    "Bytes waiting to be written.",
	    offsetof(struct log_sink_stats, bytes_queued) },
	{ "echod_log_write_errors_total", "counter",
	    "Failed writes to the log file (ENOSPC, EIO and others).",
	    offsetof(struct log_sink_stats, write_errors) },
	{ "echod_log_reopens_total", "counter",
	    "Times the log file was reopened (SIGUSR1).",
	    offsetof(struct log_sink_stats, reopens) },
};

static uint64_t
log_get(const struct log_sink_stats *st, size_t off)
{
	return *(const uint64_t *)(const void *)((const char *)st + off);
}

static void
metrics_logs(struct evbuffer *b)
{
	struct log_sink_stats	 st[2];
	const char		*names[2] = { "error_log", "access_log" };
	size_t			 m;
	int			 k;

	memset(st, 0, sizeof(st));
	log_stats(&st[0], &st[1]);
	for (m = 0; m < nitems(log_metrics); m++) {
		family(b, log_metrics[m].name, log_metrics[m].type,
		    log_metrics[m].help);
		for (k = 0; k < 2; k++)
			if (st[k].enabled)
				evbuffer_add_printf(b, "%s{sink=\"%s\"} %"
				    PRIu64 "\n", log_metrics[m].name,
				    names[k], log_get(&st[k],
				    log_metrics[m].off));
	}
}

static void
stats_logs(struct evbuffer *b)
{
	struct log_sink_stats	 st[2];
	const char		*names[2] = { "error_log", "access_log" };
	size_t			 m;
	int			 k;

	memset(st, 0, sizeof(st));
	log_stats(&st[0], &st[1]);
	evbuffer_add_printf(b, "\"logs\":{");
	for (k = 0; k < 2; k++) {
		evbuffer_add_printf(b, "%s\"%s\":{\"enabled\":%s", k ? "," : "",
		    names[k], st[k].enabled ? "true" : "false");
		for (m = 0; m < nitems(log_metrics); m++) {
			/* "echod_log_lines_written_total" -> "lines_written" */
			const char *n = log_metrics[m].name +
			    strlen("echod_log_");
			size_t len = strlen(n);

			if (len > 6 && strcmp(n + len - 6, "_total") == 0)
				len -= 6;
			evbuffer_add_printf(b, ",\"%.*s\":%" PRIu64, (int)len,
			    n, log_get(&st[k], log_metrics[m].off));
		}
		evbuffer_add_printf(b, "}");
	}
	evbuffer_add_printf(b, "}");
}

/* TLS across workers (those gone too): per version and per cipher. */
static void
metrics_tls_items(struct evbuffer *b, const char *what,
    const struct tls_stats_item *items, int n)
{
	char	name[256], fam[128];
	int	i;

	snprintf(fam, sizeof(fam), "echod_tls_%s_connections_open", what);
	family(b, fam, "gauge", strcmp(what, "version") == 0 ?
	    "TLS connections open now, by protocol version." :
	    "TLS connections open now, by cipher.");
	for (i = 0; i < n; i++)
		if (items[i].name != NULL)
			evbuffer_add_printf(b, "%s{%s=\"%s\"} %" PRIu64 "\n",
			    fam, what, label_escape(items[i].name, name,
			    sizeof(name)), items[i].open);
	snprintf(fam, sizeof(fam), "echod_tls_%s_handshakes_total", what);
	family(b, fam, "counter", strcmp(what, "version") == 0 ?
	    "TLS handshakes completed, by protocol version." :
	    "TLS handshakes completed, by cipher.");
	for (i = 0; i < n; i++)
		if (items[i].name != NULL)
			evbuffer_add_printf(b, "%s{%s=\"%s\"} %" PRIu64 "\n",
			    fam, what, label_escape(items[i].name, name,
			    sizeof(name)), items[i].total);
}

static void
metrics_tls(struct evbuffer *b)
{
	struct tls_stats	t;

	tls_stats_sum(&t);
	family(b, "echod_tls_connections_open", "gauge",
	    "TLS connections open now, handshakes in progress included.");
	evbuffer_add_printf(b, "echod_tls_connections_open %" PRIu64 "\n",
	    t.conns_open);
	family(b, "echod_tls_handshake_timeouts_total", "counter",
	    "TLS handshakes not finished within handshake_timeout.");
	evbuffer_add_printf(b, "echod_tls_handshake_timeouts_total %" PRIu64
	    "\n", t.handshake_timeouts);
	metrics_tls_items(b, "version", t.versions, t.nversions);
	metrics_tls_items(b, "cipher", t.ciphers, t.nciphers);
}

static void
stats_tls_items(struct evbuffer *b, const struct tls_stats_item *items,
    int n)
{
	int	i, first = 1;

	evbuffer_add_printf(b, "{");
	for (i = 0; i < n; i++) {
		if (items[i].name == NULL)
			continue;
		if (!first)
			evbuffer_add_printf(b, ",");
		json_string(b, items[i].name);
		evbuffer_add_printf(b, ":{\"open\":%" PRIu64 ",\"total\":%"
		    PRIu64 "}", items[i].open, items[i].total);
		first = 0;
	}
	evbuffer_add_printf(b, "}");
}

static void
stats_tls(struct evbuffer *b)
{
	struct tls_stats	t;

	tls_stats_sum(&t);
	evbuffer_add_printf(b, "\"tls\":{\"handshakes\":%" PRIu64 ","
	    "\"handshake_failures\":%" PRIu64 ","
	    "\"handshake_timeouts\":%" PRIu64 ","
	    "\"sessions_resumed\":%" PRIu64 ","
	    "\"connections_open\":%" PRIu64 ",\"versions\":",
	    t.handshakes, t.handshake_failed, t.handshake_timeouts, t.resumed,
	    t.conns_open);
	stats_tls_items(b, t.versions, t.nversions);
	evbuffer_add_printf(b, ",\"ciphers\":");
	stats_tls_items(b, t.ciphers, t.nciphers);
	evbuffer_add_printf(b, "}");
}

/* PROXY headers across workers: accepted by version, rejected by reason. */
static void
metrics_proxy(struct evbuffer *b)
{
	struct stats_total	t;
	int			i;

	stats_sum(srv, &t);
	family(b, "echod_proxy_headers_total", "counter",
	    "PROXY protocol headers accepted, by version.");
	evbuffer_add_printf(b, "echod_proxy_headers_total{version=\"1\"} %"
	    PRIu64 "\n", t.proxy_v1);
	evbuffer_add_printf(b, "echod_proxy_headers_total{version=\"2\"} %"
	    PRIu64 "\n", t.proxy_v2);
	family(b, "echod_proxy_local_total", "counter",
	    "PROXY headers that kept the real endpoints (v2 LOCAL, as in "
	    "health checks, v1 UNKNOWN), also counted by version.");
	evbuffer_add_printf(b, "echod_proxy_local_total %" PRIu64 "\n",
	    t.proxy_local);
	family(b, "echod_proxy_rejected_total", "counter",
	    "Connections closed for their PROXY header, by reason.");
	for (i = 0; i < PROXY_ERR_COUNT; i++)
		evbuffer_add_printf(b, "echod_proxy_rejected_total{reason=\"%s\"}"
		    " %" PRIu64 "\n", proxy_error_name((enum proxy_error)i),
		    t.proxy_rejected[i]);
}

static void
stats_proxy(struct evbuffer *b)
{
	struct stats_total	t;
	int			i;

	stats_sum(srv, &t);
	evbuffer_add_printf(b, "\"proxy\":{\"headers\":{\"v1\":%" PRIu64
	    ",\"v2\":%" PRIu64 ",\"local\":%" PRIu64 "},\"rejected\":{",
	    t.proxy_v1, t.proxy_v2, t.proxy_local);
	for (i = 0; i < PROXY_ERR_COUNT; i++)
		evbuffer_add_printf(b, "%s\"%s\":%" PRIu64, i ? "," : "",
		    proxy_error_name((enum proxy_error)i),
		    t.proxy_rejected[i]);
	evbuffer_add_printf(b, "}}");
}

static void
metrics_cb(struct evhttp_request *req, void *arg)
{
	struct evbuffer	*b;

	(void)arg;
	b = evhttp_request_get_output_buffer(req);
	metrics_server(b);
	metrics_listeners(b);
	metrics_workers(b);
	metrics_tls(b);
	metrics_proxy(b);
	metrics_logs(b);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	admin_send(req, HTTP_OK, "OK");
}

/* --- /stats -------------------------------------------------------------- */

static void
stats_listeners(struct evbuffer *b)
{
	struct listener	*l;
	int		 first = 1;

	evbuffer_add_printf(b, "\"listeners\":[");
	TAILQ_FOREACH(l, &srv->listeners, entry) {
		evbuffer_add_printf(b, "%s{\"name\":", first ? "" : ",");
		json_string(b, l->name);
		evbuffer_add_printf(b, ",\"address\":");
		json_string(b, l->address);
		evbuffer_add_printf(b, ",\"mode\":\"%s\",\"tls\":%s,"
		    "\"connections_open\":%" PRIu64 ","
		    "\"connections_total\":%" PRIu64 ","
		    "\"connections_refused\":%" PRIu64 ","
		    "\"connections_closed\":%" PRIu64 ","
		    "\"accept_errors\":%" PRIu64 ","
		    "\"received_bytes\":%" PRIu64 ","
		    "\"sent_bytes\":%" PRIu64 "}",
		    mode_name(l->mode), l->tls ? "true" : "false",
		    l_open(l), l_accepted(l), l_refused(l), l_closed(l),
		    l_accept_errors(l), l_bytes_in(l), l_bytes_out(l));
		first = 0;
	}
	evbuffer_add_printf(b, "]");
}

static void
stats_workers(struct evbuffer *b)
{
	size_t	m;
	int	i;

	evbuffer_add_printf(b, "\"workers\":[");
	for (i = 0; i < worker_count(); i++) {
		evbuffer_add_printf(b, "%s{\"id\":%d", i ? "," : "", i);
		for (m = 0; m < nitems(worker_metrics); m++) {
			/* "echod_worker_sent_bytes_total" -> "sent_bytes" */
			const char *n = worker_metrics[m].name +
			    strlen("echod_worker_");
			size_t len = strlen(n);

			if (len > 6 && strcmp(n + len - 6, "_total") == 0)
				len -= 6;
			evbuffer_add_printf(b, ",\"%.*s\":%" PRIu64, (int)len,
			    n, worker_get(i, worker_metrics[m].off));
		}
		evbuffer_add_printf(b, "}");
	}
	evbuffer_add_printf(b, "]");
}

static void
stats_cb(struct evhttp_request *req, void *arg)
{
	struct stats_total	 t;
	struct evbuffer		*b;

	(void)arg;
	b = evhttp_request_get_output_buffer(req);
	stats_sum(srv, &t);
	evbuffer_add_printf(b, "{\"version\":\"%s\",\"libevent\":",
	    ECHOLOAD_VERSION);
	json_string(b, event_get_version());
	evbuffer_add_printf(b, ",\"pid\":%ld,\"uptime_seconds\":%.3f,"
	    "\"workers_count\":%d,\"stopping\":%s,",
	    (long)getpid(), uptime_seconds(), srv->nworkers,
	    srv->stopping ? "true" : "false");
	evbuffer_add_printf(b, "\"total\":{"
	    "\"connections_open\":%" PRIu64 ","
	    "\"connections_total\":%" PRIu64 ","
	    "\"connections_refused\":%" PRIu64 ","
	    "\"connections_timed_out\":%" PRIu64 ","
	    "\"connection_errors\":%" PRIu64 ","
	    "\"accept_errors\":%" PRIu64 ","
	    "\"received_bytes\":%" PRIu64 ","
	    "\"sent_bytes\":%" PRIu64 ","
	    "\"tls_handshakes\":%" PRIu64 ","
	    "\"tls_handshake_failures\":%" PRIu64 ","
	    "\"tls_sessions_resumed\":%" PRIu64 "},",
	    listener_conns_open(), t.conns_total,
	    t.refused, t.timed_out, t.errors, t.accept_errors, t.bytes_in,
	    t.bytes_out, t.tls_handshakes, t.tls_handshake_failed,
	    t.tls_resumed);
	evbuffer_add_printf(b, "\"reloads\":{\"ok\":%" PRIu64 ",\"failed\":%"
	    PRIu64 "},", srv->reloads_ok, srv->reloads_failed);
	stats_listeners(b);
	evbuffer_add_printf(b, ",");
	stats_workers(b);
	evbuffer_add_printf(b, ",");
	stats_logs(b);
	evbuffer_add_printf(b, ",");
	stats_tls(b);
	evbuffer_add_printf(b, ",");
	stats_proxy(b);
	evbuffer_add_printf(b, "}\n");
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	admin_send(req, HTTP_OK, "OK");
}

/* --- /healthz and the rest ------------------------------------------------ */

static void
reply_text(struct evhttp_request *req, int code, const char *reason,
    const char *text)
{
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; charset=utf-8");
	evbuffer_add(evhttp_request_get_output_buffer(req), text,
	    strlen(text));
	admin_send(req, code, reason);
}

static void
healthz_cb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	/* Stopping: tell load balancers to look elsewhere. */
	if (srv->stopping)
		reply_text(req, HTTP_SERVUNAVAIL, "Service Unavailable",
		    "stopping\n");
	else
		reply_text(req, HTTP_OK, "OK", "ok\n");
}

static void
notfound_cb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	reply_text(req, HTTP_NOTFOUND, "Not Found",
	    "not found: try /metrics, /stats or /healthz\n");
}

int
admin_start(struct event_base *base, struct server *s)
{
	struct sockaddr_storage	ss;
	socklen_t		len = sizeof(ss);
	char			where[ADDR_STRLEN];
	int			i;

	srv = s;
	if (admin_nfds == 0)
		return 0;
	if (getsockname(admin_fds[0], (struct sockaddr *)&ss, &len) == 0)
		addr_format((struct sockaddr *)&ss, where, sizeof(where));
	else
		snprintf(where, sizeof(where), "%s", srv->conf->admin_address);
	if ((admin_http = evhttp_new(base)) == NULL)
		return -1;
	evhttp_set_allowed_methods(admin_http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_HEAD);
	/* evhttp's own timeout too: it bounds a stall even between the
	 * deadline's restarts. */
	evhttp_set_timeout(admin_http, ADMIN_DEADLINE_S);
	evhttp_set_max_headers_size(admin_http, ADMIN_MAX_HEADERS);
	evhttp_set_max_body_size(admin_http, 0);
	if (evhttp_set_cb(admin_http, "/metrics", metrics_cb, NULL) != 0 ||
	    evhttp_set_cb(admin_http, "/stats", stats_cb, NULL) != 0 ||
	    evhttp_set_cb(admin_http, "/healthz", healthz_cb, NULL) != 0)
		return -1;
	evhttp_set_gencb(admin_http, notfound_cb, NULL);
	evhttp_set_bevcb(admin_http, admin_conn_new, NULL);
	if ((admin_retry = evtimer_new(base, admin_retry_cb, NULL)) == NULL)
		return -1;
	for (i = 0; i < admin_nfds; i++) {
		struct evhttp_bound_socket	*bound;
		struct evconnlistener		*evl;

		/* From here on evhttp owns the socket and closes it. */
		bound = evhttp_accept_socket_with_handle(admin_http,
		    admin_fds[i]);
		if (bound == NULL)
			return -1;
		admin_fds[i] = -1;
		evl = evhttp_bound_socket_get_listener(bound);
		evconnlistener_set_error_cb(evl, admin_accept_error_cb);
		admin_evls[admin_nevls++] = evl;
	}
	log_info("admin endpoint on http://%s/ (/metrics, /stats, /healthz)",
	    where);
	return 0;
}

void
admin_stop(void)
{
	int			 i;

	/* Freeing evhttp lets go of its connections; then ours go. */
	if (admin_http != NULL) {
		evhttp_free(admin_http);
		admin_http = NULL;
	}
	admin_nevls = 0;
	while (!LIST_EMPTY(&admin_conns))
		admin_conn_release(LIST_FIRST(&admin_conns));
	if (admin_retry != NULL) {
		event_free(admin_retry);
		admin_retry = NULL;
	}
	for (i = 0; i < admin_nfds; i++)
		if (admin_fds[i] != -1)
			close(admin_fds[i]);
	admin_nfds = 0;
}
