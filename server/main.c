/*
 * main.c: echod's entry point: the command line, and the startup order of
 * doc/ARCHITECTURE.md, each step failing with a clear message and exit
 * code. What runs after startup is server.c's (tmux's main ->
 * server_start -> proc_loop).
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

#include "config.h"
#include "control.h"
#include "daemon.h"
#include "log.h"
#include "pidfile.h"
#include "privdrop.h"
#include "sd.h"
#include "server.h"
#include "tls.h"
#include "util.h"

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
static int
early_exit(struct config *conf, char **extra, void *tls_ctx, int code)
{
	if (tls_ctx != NULL)
		tls_ctx_unref(tls_ctx);
	config_free(conf);
	free(extra);
	return code;
}

/* After server_new the server owns the config, the command line and the
 * TLS context: one free releases them all. */
static int
start_failed(struct server *s, const char *err)
{
	fprintf(stderr, "echod: %s\n", err);
	log_finish(0);
	server_free(s);
	return 1;
}

int
main(int argc, char **argv)
{
	const char	*path = NULL;
	char		**extra = NULL;
	char		 err[CONFIG_ERRLEN];
	struct config	*conf;
	struct server	*s;
	void		*tls_ctx;
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
	if ((conf = load_config(path, extra, nextra)) == NULL) {
		free(extra);
		return 1;
	}
	tls_ctx = tls_ctx_load(conf, err, sizeof(err));
	if (tls_ctx == NULL && err[0] != '\0') {
		fprintf(stderr, "echod: %s\n", err);
		return early_exit(conf, extra, NULL, 1);
	}
	if (check) {
		printf("echod: %s: configuration OK\n",
		    path != NULL ? path : "built-in defaults");
		return early_exit(conf, extra, tls_ctx, 0);
	}
	signal(SIGPIPE, SIG_IGN);

	if (sd_listen_fds_apply(conf, err, sizeof(err)) != 0 ||
	    log_open(&conf->log, err, sizeof(err)) != 0) {
		fprintf(stderr, "echod: %s\n", err);
		log_finish(0);
		return early_exit(conf, extra, tls_ctx, 1);
	}
	s = server_new(conf, extra, nextra, tls_ctx);
	if (server_bind(s, err, sizeof(err)) != 0)
		return start_failed(s, err);
	if (!foreground && (daemonize || conf->daemon))
		daemon_detach(conf);
	if (conf->pid_file != NULL &&
	    pidfile_write(conf->pid_file, err, sizeof(err)) != 0)
		return start_failed(s, err);
	if ((conf->user != NULL || conf->group != NULL) &&
	    privdrop(conf->user, conf->group, err, sizeof(err)) != 0) {
		pidfile_remove();
		return start_failed(s, err);
	}
	server_start(s);
	daemon_ready();
	sd_notify_send("READY=1");

	server_loop(s);

	log_finish(s->conf->shutdown_timeout_us);
	server_free(s);
	pidfile_remove();
	libevent_global_shutdown();
	return 0;
}
