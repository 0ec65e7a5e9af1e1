/*
 * main.c: echod's entry point and main thread: the command line, the
 * startup order of DESIGN.md, signals (as events on the main base, the only
 * base that owns signals), the messages workers send to the main thread,
 * and the orderly stop.
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "admin.h"
#include "config.h"
#include "conn.h"
#include "control.h"
#include "daemon.h"
#include "listener.h"
#include "log.h"
#include "pidfile.h"
#include "privdrop.h"
#include "reload.h"
#include "sd.h"
#include "server.h"
#include "stats.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

struct server	*srv;

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: echod [-dfhtV] [-c file] [-l [mode@]address]\n"
	    "             [-s signal [-p pidfile]]\n"
	    "  -c file     configuration file (default: built-in defaults)\n"
	    "  -d          run as a daemon (detach)\n"
	    "  -f          stay in the foreground, whatever the file says\n"
	    "  -t          check the configuration and exit\n"
	    "  -l [mode@]address\n"
	    "              add a listener: mode echo (default), discard or\n"
	    "              chargen; address 127.0.0.1:7007, [::1]:7007,\n"
	    "              *:7007 or a bare port (7007) for 127.0.0.1,\n"
	    "              e.g. discard@127.0.0.1:9009\n"
	    "  -s signal   send reload, reopen, stop or quit to the running\n"
	    "              echod named by the pid file, and exit\n"
	    "  -p pidfile  with -s: the pid file to use instead of pid_file\n"
	    "  -V          print the version and exit\n"
	    "  -h          print this help and exit\n");
}

/*
 * Any thread. The news itself is in srv (a counter, a flag, a worker's
 * seen_gen); the byte only wakes the main thread, so a full pipe (a wake-up
 * already pending) loses nothing and a worker never blocks here.
 */
void
server_notify_main(enum main_msg msg)
{
	unsigned char	c = (unsigned char)msg;

	switch (msg) {
	case MAIN_WORKER_EXITED:
		atomic_fetch_add(&srv->workers_exited, 1);
		break;
	case MAIN_RESUME_ACCEPT:
		if (atomic_exchange(&srv->resume_pending, 1) == 1)
			return;
		break;
	case MAIN_BARRIER:
		break;
	}
	while (write(srv->notify_wr, &c, 1) == -1 && errno == EINTR)
		;
}

int
server_conn_admit(struct listener *l)
{
	uint64_t	n;

	n = atomic_fetch_add(&srv->conns_open, 1) + 1;
	if (n > atomic_load(&srv->max_conns)) {
		atomic_fetch_sub(&srv->conns_open, 1);
		atomic_fetch_add_explicit(&l->stats.refused, 1,
		    memory_order_relaxed);
		return 0;
	}
	atomic_fetch_add_explicit(&l->stats.accepted, 1,
	    memory_order_relaxed);
	/* At the limit: stop before the next one, not after refusing it. */
	if (n == atomic_load(&srv->max_conns) && pthread_self() ==
	    srv->main_thread)
		listener_pause_all();
	return 1;
}

void
server_conn_closed(void)
{
	uint64_t	prev;

	prev = atomic_fetch_sub(&srv->conns_open, 1);
	if (prev >= atomic_load(&srv->max_conns))
		server_notify_main(MAIN_RESUME_ACCEPT);
}

static void
stop_listeners(int graceful)
{
	struct listener	*l;

	TAILQ_FOREACH(l, &srv->listeners, entry)
		listener_close(l, graceful);
}

static void
close_all_cb(evutil_socket_t fd, short what, void *arg)
{
	int	i;

	(void)fd;
	(void)what;
	(void)arg;
	log_notice("shutdown_timeout passed: closing the remaining "
	    "connections");
	for (i = 0; i < srv->nworkers; i++)
		worker_post(srv->workers[i], WMSG_CLOSE_ALL);
}

/* TERM, INT: close everything now. QUIT: drain within shutdown_timeout. */
static void
server_stop(int graceful)
{
	struct timeval	tv;
	int		i;

	if (srv->stopping == 2 || (srv->stopping == 1 && graceful))
		return;
	if (srv->stopping == 0)
		stop_listeners(graceful);
	if (graceful) {
		srv->stopping = 1;
		sd_notify_send("STOPPING=1");
		log_notice("stopping gracefully (up to %.3f s)",
		    (double)srv->conf->shutdown_timeout_us / 1e6);
		for (i = 0; i < srv->nworkers; i++)
			worker_post(srv->workers[i], WMSG_DRAIN);
		tv.tv_sec = (time_t)(srv->conf->shutdown_timeout_us / 1000000);
		tv.tv_usec = (suseconds_t)(srv->conf->shutdown_timeout_us %
		    1000000);
		srv->drain_timer = evtimer_new(srv->base, close_all_cb, NULL);
		if (srv->drain_timer == NULL)
			fatalx("cannot make the shutdown timer");
		evtimer_add(srv->drain_timer, &tv);
		return;
	}
	srv->stopping = 2;
	log_notice("stopping");
	sd_notify_send("STOPPING=1");
	for (i = 0; i < srv->nworkers; i++)
		worker_post(srv->workers[i], WMSG_CLOSE_ALL);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		server_stop(0);
		break;
	case SIGQUIT:
		server_stop(1);
		break;
	case SIGHUP:
		server_reload();
		break;
	case SIGUSR1:
		log_notice("reopening log files");
		log_reopen();
		break;
	}
}

static void
notify_cb(evutil_socket_t fd, short what, void *arg)
{
	unsigned char	buf[256];
	ssize_t		n;

	(void)what;
	(void)arg;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	if (atomic_exchange(&srv->resume_pending, 0) &&
	    atomic_load(&srv->conns_open) < atomic_load(&srv->max_conns))
		listener_resume_all();
	server_reload_reap();
	if (atomic_load(&srv->workers_exited) == srv->workers_running)
		event_base_loopbreak(srv->base);
}

static void
add_signal(int sig)
{
	struct event	*ev;

	if (srv->nsignals >= (int)nitems(srv->signals))
		fatalx("too many signals");
	if ((ev = evsignal_new(srv->base, sig, signal_cb, NULL)) == NULL ||
	    evsignal_add(ev, NULL) != 0)
		fatalx("cannot watch signal %d", sig);
	srv->signals[srv->nsignals++] = ev;
}

static struct config *
load_config(const char *path, char **extra, int nextra)
{
	struct config	*conf;
	char		 err[CONFIG_ERRLEN];
	int		 i;

	if (path != NULL) {
		if ((conf = config_load(path, err, sizeof(err))) == NULL) {
			fprintf(stderr, "echod: %s\n", err);
			return NULL;
		}
	} else
		conf = config_new();
	for (i = 0; i < nextra; i++) {
		if (config_add_listener(conf, extra[i], err,
		    sizeof(err)) != 0) {
			fprintf(stderr, "echod: %s\n", err);
			config_free(conf);
			return NULL;
		}
	}
	config_finish(conf);
	return conf;
}

static int
bind_listeners(void)
{
	struct listen_conf	*lc;
	struct listener		*l;
	char			 err[CONFIG_ERRLEN];

	for (lc = srv->conf->listeners; lc != NULL; lc = lc->next) {
		if ((l = listener_bind(lc, err, sizeof(err))) == NULL) {
			if (lc->line > 0)
				fprintf(stderr, "echod: %s:%d: address: [listen %s] %s\n",
				    srv->conf->path, lc->address_line, lc->name,
				    err);
			else
				fprintf(stderr, "echod: listen %s: %s\n",
				    lc->name, err);
			return -1;
		}
		if (l->tls) {
			tls_ctx_ref(srv->tls_ctx);
			l->tls_ctx = srv->tls_ctx;
		}
		TAILQ_INSERT_TAIL(&srv->listeners, l, entry);
	}
	return 0;
}

static void
make_notify_pipe(void)
{
	if (wake_pipe(&srv->notify_rd, &srv->notify_wr) != 0)
		fatal("notify pipe");
	srv->notify_ev = event_new(srv->base, srv->notify_rd,
	    EV_READ | EV_PERSIST, notify_cb, NULL);
	if (srv->notify_ev == NULL || event_add(srv->notify_ev, NULL) != 0)
		fatalx("cannot watch the notify pipe");
}

static void
start_workers(void)
{
	struct listener	*l;
	int		 i;

	srv->workers = xcalloc((size_t)srv->nworkers, sizeof(*srv->workers));
	for (i = 0; i < srv->nworkers; i++)
		srv->workers[i] = worker_new(i);
	TAILQ_FOREACH(l, &srv->listeners, entry)
		listener_enable(l, 0);
	for (i = 0; i < srv->nworkers; i++) {
		if (worker_start(srv->workers[i]) != 0)
			fatal("worker %d: cannot start thread", i);
		srv->workers_running++;
	}
}

static void
server_free(void)
{
	struct listener	*l;
	int		 i;

	for (i = 0; i < srv->nworkers; i++)
		worker_join_free(srv->workers[i]);
	free(srv->workers);
	srv->workers = NULL;
	server_reload_free();
	if (srv->tls_ctx != NULL)
		tls_ctx_unref(srv->tls_ctx);
	while ((l = TAILQ_FIRST(&srv->listeners)) != NULL) {
		TAILQ_REMOVE(&srv->listeners, l, entry);
		listener_close(l, 0);
		listener_unref(l);
	}
	for (i = 0; i < srv->nsignals; i++)
		event_free(srv->signals[i]);
	if (srv->drain_timer != NULL)
		event_free(srv->drain_timer);
	event_free(srv->notify_ev);
	close(srv->notify_rd);
	close(srv->notify_wr);
	event_base_free(srv->base);
	config_free(srv->conf);
	free(srv->cmdline);
	free(srv);
	srv = NULL;
}

/*
 * echod -s: only the pid file matters, so a config file with errors
 * elsewhere (a typo that the next reload would refuse) must not stop
 * logrotate's `echod -s reopen`; -p names the pid file directly.
 */
static int
control(const char *path, const char *pid_file, const char *signame)
{
	struct config	*conf;
	char		 err[CONFIG_ERRLEN];
	int		 rv;

	if (path == NULL)
		conf = config_new();
	else if ((conf = config_load_control(path, err, sizeof(err))) ==
	    NULL) {
		if (pid_file == NULL) {
			fprintf(stderr, "echod: %s\n", err);
			return 1;
		}
		fprintf(stderr, "echod: %s (using -p %s)\n", err, pid_file);
		conf = config_new();
	} else if (err[0] != '\0')
		fprintf(stderr, "echod: warning: %s has errors: %s; -s %s "
		    "uses its pid_file%s%s anyway\n", path, err, signame,
		    conf->pid_file != NULL ? " " : "",
		    conf->pid_file != NULL ? conf->pid_file : "");
	if (pid_file != NULL) {
		free(conf->pid_file);
		conf->pid_file = xstrdup(pid_file);
	}
	rv = control_signal(conf, signame);
	config_free(conf);
	return rv;
}

/* Before anything runs: -t and startup errors. */
static void
early_free(void)
{
	config_free(srv->conf);
	free(srv->cmdline);
	free(srv);
	srv = NULL;
}

int
main(int argc, char **argv)
{
	const char	*path = NULL;
	char		**extra = NULL;
	char		 err[CONFIG_ERRLEN];
	struct stats_total t;
	const char	*signame = NULL, *pid_file = NULL;
	int		 ch, nextra = 0, check = 0, foreground = 0;
	int		 daemonize = 0;

	daemon_stdio_open();
	while ((ch = getopt(argc, argv, "c:dfhl:p:s:tV")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'd':
			daemonize = 1;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'p':
			pid_file = optarg;
			break;
		case 's':
			signame = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'l':
			extra = xrealloc(extra, sizeof(*extra) *
			    (size_t)(nextra + 1));
			extra[nextra++] = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'V':
			printf("echod %s (libevent %s, %s)\n", ECHOLOAD_VERSION,
			    event_get_version(), OpenSSL_version(OPENSSL_VERSION));
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "echod: unexpected argument: %s\n",
		    argv[optind]);
		usage(stderr);
		return 2;
	}
	if (pid_file != NULL && signame == NULL) {
		fprintf(stderr, "echod: -p goes with -s (the pid file of the "
		    "echod to signal)\n");
		usage(stderr);
		return 2;
	}
	if (signame != NULL) {
		ch = control(path, pid_file, signame);
		free(extra);
		return ch;
	}

	srv = xcalloc(1, sizeof(*srv));
	TAILQ_INIT(&srv->listeners);
	TAILQ_INIT(&srv->retired);
	srv->main_thread = pthread_self();
	if ((srv->conf = load_config(path, extra, nextra)) == NULL) {
		free(extra);
		free(srv);
		return 1;
	}
	srv->cmdline = extra;
	srv->ncmdline = nextra;
	atomic_store(&srv->max_conns, srv->conf->max_connections);
	srv->tls_ctx = tls_ctx_load(srv->conf, err, sizeof(err));
	if (srv->tls_ctx == NULL && err[0] != '\0') {
		fprintf(stderr, "echod: %s\n", err);
		early_free();
		return 1;
	}
	if (check) {
		if (srv->tls_ctx != NULL)
			tls_ctx_unref(srv->tls_ctx);
		printf("echod: %s: configuration OK\n",
		    path != NULL ? path : "built-in defaults");
		early_free();
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	srv->nworkers = config_workers(srv->conf);
	srv->started_us = now_us();

	if (sd_listen_fds_apply(srv->conf, err, sizeof(err)) != 0) {
		fprintf(stderr, "echod: %s\n", err);
		return 1;
	}
	if (log_open(&srv->conf->log, err, sizeof(err)) != 0) {
		fprintf(stderr, "echod: %s\n", err);
		return 1;
	}
	if (bind_listeners() != 0)
		return 1;
	if (admin_bind(srv->conf, err, sizeof(err)) != 0) {
		fprintf(stderr, "echod: %s\n", err);
		return 1;
	}
	if (!foreground && (daemonize || srv->conf->daemon))
		daemon_detach(srv->conf);
	if (srv->conf->pid_file != NULL &&
	    pidfile_write(srv->conf->pid_file, err, sizeof(err)) != 0) {
		fprintf(stderr, "echod: %s\n", err);
		return 1;
	}
	if ((srv->conf->user != NULL || srv->conf->group != NULL) &&
	    privdrop(srv->conf->user, srv->conf->group, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "echod: %s\n", err);
		pidfile_remove();
		return 1;
	}
	conn_init();
	/*
	 * No evthread_use_pthreads(): every base has one owner thread and
	 * threads talk only through pipes, so libevent's internal locks would
	 * be pure cost on every event (DESIGN.md).
	 */
	if ((srv->base = event_base_new()) == NULL)
		fatalx("cannot create the main event base");
	log_start(srv->base);
	make_notify_pipe();
	add_signal(SIGTERM);
	add_signal(SIGINT);
	add_signal(SIGQUIT);
	add_signal(SIGHUP);
	add_signal(SIGUSR1);
	start_workers();
	if (admin_start(srv->base) != 0)
		fatalx("cannot serve the admin endpoint");
	daemon_ready();
	sd_notify_send("READY=1");
	log_notice("echod %s started: %d worker%s, libevent %s (%s)",
	    ECHOLOAD_VERSION, srv->nworkers, srv->nworkers == 1 ? "" : "s",
	    event_get_version(), event_base_get_method(srv->base));

	event_base_dispatch(srv->base);

	stats_sum(srv, &t);
	log_notice("stopped after %.1f s", (double)(now_us() -
	    srv->started_us) / 1e6);
	stats_print_summary(srv);
	admin_stop();
	log_finish(srv->conf->shutdown_timeout_us);
	server_free();
	pidfile_remove();
	libevent_global_shutdown();
	return 0;
}
