/*
 * server.c: the running server, on the main thread (tmux's server.c and
 * proc_loop). It owns struct server: the main event_base, the main thread's
 * queue, the signals (events on the main base, the only base that owns
 * signals), the listeners and what reloads retired, and the orderly stop.
 * Below it the listener room accepts and the workers serve; they reach the
 * main thread only through its queue (doc/ARCHITECTURE.md).
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "admin.h"
#include "config.h"
#include "conn.h"
#include "listener.h"
#include "log.h"
#include "msgq.h"
#include "reload.h"
#include "sd.h"
#include "server.h"
#include "stats.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

/*
 * Descriptors echod needs besides its connections: standard streams, log
 * files, the queues' pipes and the bases' epoll fds, the listening and
 * admin sockets, and room for a reload.
 */
static uint64_t
fd_reserve(const struct config *conf)
{
	return 128 + 4 * (uint64_t)config_workers(conf) +
	    2 * (uint64_t)conf->nlisteners;
}

/*
 * Raise the soft descriptor limit as far as max_connections needs (up to
 * the hard limit, which needs no privilege), and say so when the hard
 * limit is what bounds the connections: past it, accepting pauses on
 * EMFILE instead of at max_connections.
 */
static void
fit_fd_limit(const struct config *conf)
{
	struct rlimit	rl;
	uint64_t	want = conf->max_connections + fd_reserve(conf);

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ||
		    rl.rlim_max > want ? (rlim_t)want : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn("setrlimit RLIMIT_NOFILE %llu",
			    (unsigned long long)rl.rlim_cur);
		if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
			return;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
		log_notice("the descriptor limit (%llu) allows about %llu "
		    "connections, fewer than max_connections (%llu): raise "
		    "the hard limit (ulimit -Hn, LimitNOFILE=) for more",
		    (unsigned long long)rl.rlim_cur,
		    (unsigned long long)(rl.rlim_cur > fd_reserve(conf) ?
		    rl.rlim_cur - fd_reserve(conf) : 0),
		    (unsigned long long)conf->max_connections);
}

/*
 * libevent's select back end (where it is all there is, or chosen with
 * EVENT_NOEPOLL and EVENT_NOPOLL) watches descriptors below FD_SETSIZE
 * only, and glibc aborts the process at the first FD_SET past it. So on
 * select the soft descriptor limit is lowered to FD_SETSIZE: an accept
 * past it fails with EMFILE and accepting pauses, as at the hard limit.
 * Called once the main base exists, before any connection.
 */
static void
fit_select(const struct server *s)
{
	struct rlimit	rl;
	uint64_t	fit;

	if (strcmp(event_base_get_method(s->base), "select") != 0 ||
	    getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur <= FD_SETSIZE)
		return;
	rl.rlim_cur = FD_SETSIZE;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		log_warn("setrlimit RLIMIT_NOFILE %d", FD_SETSIZE);
		return;
	}
	fit = FD_SETSIZE > fd_reserve(s->conf) ?
	    FD_SETSIZE - fd_reserve(s->conf) : 0;
	if (fit < s->conf->max_connections)
		log_notice("libevent's select back end watches descriptors "
		    "below FD_SETSIZE (%d) only: the descriptor limit is "
		    "lowered to %d, which allows about %llu connections, fewer "
		    "than max_connections (%llu); accepting pauses past it",
		    FD_SETSIZE, FD_SETSIZE, (unsigned long long)fit,
		    (unsigned long long)s->conf->max_connections);
}

struct server *
server_new(struct config *conf, char **cmdline, int ncmdline, void *tls_ctx)
{
	struct server	*s;

	s = xcalloc(1, sizeof(*s));
	TAILQ_INIT(&s->listeners);
	TAILQ_INIT(&s->retired);
	s->conf = conf;
	s->cmdline = cmdline;
	s->ncmdline = ncmdline;
	s->tls_ctx = tls_ctx;
	s->nworkers = config_workers(conf);
	s->started_us = now_us();
	fit_fd_limit(conf);
	return s;
}

/* Bind every listener and the admin endpoint: may need root, so before
 * privileges are dropped; nothing is served yet. */
int
server_bind(struct server *s, char *err, size_t errlen)
{
	struct listen_conf	*lc;
	struct listener		*l;
	char			 why[CONFIG_ERRLEN / 2];

	for (lc = s->conf->listeners; lc != NULL; lc = lc->next) {
		if ((l = listener_bind(lc, s->nworkers, why,
		    sizeof(why))) == NULL) {
			if (lc->line > 0)
				snprintf(err, errlen, "%s:%d: address: "
				    "[listen %s] %s", s->conf->path,
				    lc->address_line, lc->name, why);
			else
				snprintf(err, errlen, "listen %s: %s",
				    lc->name, why);
			return -1;
		}
		if (l->tls) {
			tls_ctx_ref(s->tls_ctx);
			l->tls_ctx = s->tls_ctx;
		}
		TAILQ_INSERT_TAIL(&s->listeners, l, entry);
	}
	return admin_bind(s->conf, err, errlen);
}

static void
close_all_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	log_notice("shutdown_timeout passed: closing the remaining "
	    "connections");
	worker_post_all(WMSG_CLOSE_ALL);
}

/* TERM, INT: close everything now. QUIT: drain within shutdown_timeout. */
static void
server_stop(struct server *s, int graceful)
{
	struct timeval	tv;

	if (s->stopping == 2 || (s->stopping == 1 && graceful))
		return;
	/* Before the workers' orders: a reuseport socket's stop is queued
	 * on its worker ahead of them. */
	if (s->stopping == 0)
		listener_stop_all(graceful);
	if (graceful) {
		s->stopping = 1;
		sd_notify_send("STOPPING=1");
		log_notice("stopping gracefully (up to %.3f s)",
		    (double)s->conf->shutdown_timeout_us / 1e6);
		worker_post_all(WMSG_DRAIN);
		s->drain_timer = evtimer_new(s->base, close_all_cb, NULL);
		if (s->drain_timer == NULL)
			fatalx("cannot make the shutdown timer");
		evtimer_add(s->drain_timer, tv_from_us(&tv,
		    s->conf->shutdown_timeout_us));
		return;
	}
	s->stopping = 2;
	log_notice("stopping");
	sd_notify_send("STOPPING=1");
	worker_post_all(WMSG_CLOSE_ALL);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server	*s = arg;

	(void)what;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		server_stop(s, 0);
		break;
	case SIGQUIT:
		server_stop(s, 1);
		break;
	case SIGHUP:
		reload_run(s);
		break;
	case SIGUSR1:
		log_notice("reopening log files");
		log_reopen();
		break;
	}
}

static void
add_signal(struct server *s, int sig)
{
	struct event	*ev;

	if (s->nsignals >= (int)nitems(s->signals))
		fatalx("too many signals");
	if ((ev = evsignal_new(s->base, sig, signal_cb, s)) == NULL ||
	    evsignal_add(ev, NULL) != 0)
		fatalx("cannot watch signal %d", sig);
	s->signals[s->nsignals++] = ev;
}

/* Main thread, from its queue: one more worker has left its loop. */
static void
worker_exited_cb(void *arg)
{
	struct server	*s = arg;

	if (++s->workers_exited == s->workers_running)
		event_base_loopbreak(s->base);
}

/* Worker thread, as it leaves its loop. */
static void
worker_exited(struct worker *w, void *arg)
{
	struct server	*s = arg;

	if (msgq_call(&s->mainq, worker_exited_cb, s) != 0)
		log_warnx("worker %d: cannot tell the main thread it "
		    "exited", w->id);
}

static void
start_workers(struct server *s)
{
	struct worker_limits	lim = {
		.max_buffer = s->conf->max_buffer,
		.idle_timeout_us = s->conf->idle_timeout_us,
	};
	struct worker_hooks	hooks = {
		.conn_done = listener_conn_done,
		.exited = worker_exited,
		.arg = s,
	};
	struct listener		*l;

	workers_init(s->nworkers, &lim, &hooks);
	TAILQ_FOREACH(l, &s->listeners, entry)
		listener_enable(l, 0);
	if (workers_start() != 0)
		fatal("cannot start the worker threads");
	s->workers_running = s->nworkers;
}

/*
 * Everything that runs: the main base, the log hand-off, the main queue,
 * signals, the workers, accepting and the admin endpoint. After
 * daemonizing and dropping privileges: no thread or base exists before.
 */
void
server_start(struct server *s)
{
	/*
	 * No evthread_use_pthreads(): every base has one owner thread and
	 * threads talk only through queues, so libevent's internal locks
	 * would be pure cost on every event (doc/ARCHITECTURE.md).
	 */
	if ((s->base = event_base_new()) == NULL)
		fatalx("cannot create the main event base");
	fit_select(s);
	log_start(s->base);
	if (msgq_init(&s->mainq, msgq_run_call, NULL, 0) != 0)
		fatal("main queue");
	if (msgq_attach(&s->mainq, s->base) != 0)
		fatalx("cannot watch the main queue");
	add_signal(s, SIGTERM);
	add_signal(s, SIGINT);
	add_signal(s, SIGQUIT);
	add_signal(s, SIGHUP);
	add_signal(s, SIGUSR1);
	listener_init(s->base, &s->mainq, &s->listeners,
	    s->conf->max_connections);
	start_workers(s);
	if (admin_start(s->base, s) != 0)
		fatalx("cannot serve the admin endpoint");
}

void
server_loop(struct server *s)
{
	log_notice("echod %s started: %d worker%s, libevent %s (%s)",
	    ECHOLOAD_VERSION, s->nworkers, s->nworkers == 1 ? "" : "s",
	    event_get_version(), event_base_get_method(s->base));
	event_base_dispatch(s->base);
	log_notice("stopped after %.1f s", (double)(now_us() -
	    s->started_us) / 1e6);
	stats_print_summary(s);
	admin_stop();
}

void
server_free(struct server *s)
{
	struct listener	*l;
	int		 i, sig;

	if (s->base != NULL) {
		workers_join();
		/* The threads are gone; their bases, where reuseport sockets
		 * live, not yet. */
		TAILQ_FOREACH(l, &s->listeners, entry)
			listener_close(l);
		TAILQ_FOREACH(l, &s->retired, entry)
			listener_close(l);
		workers_free();
	}
	reload_free(s);
	if (s->tls_ctx != NULL)
		tls_ctx_unref(s->tls_ctx);
	while ((l = TAILQ_FIRST(&s->listeners)) != NULL) {
		TAILQ_REMOVE(&s->listeners, l, entry);
		listener_close(l);
		listener_unref(l);
	}
	/* Freeing a signal event puts back the default action. The exit is
	 * under way by now: a late stop or reload must not turn it into
	 * death by signal (exit status, pid file), so they are ignored. */
	for (i = 0; i < s->nsignals; i++) {
		sig = event_get_signal(s->signals[i]);
		event_free(s->signals[i]);
		signal(sig, SIG_IGN);
	}
	if (s->drain_timer != NULL)
		event_free(s->drain_timer);
	if (s->base != NULL) {
		msgq_close(&s->mainq, msgq_free_call, NULL);
		event_base_free(s->base);
	}
	config_free(s->conf);
	free(s->cmdline);
	free(s);
}
