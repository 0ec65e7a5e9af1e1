/*
 * control.c: `echod -s reload|reopen|stop|quit`: signal the echod named by
 * the pid file, after checking that it is one, and for stop and quit wait
 * (within a bound) until it is gone.
 */
#include <sys/types.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "pidfile.h"
#include "util.h"

static const struct {
	const char	*name;
	int		 sig;
	int		 stops;
} control_signals[] = {
	{ "reload", SIGHUP, 0 },
	{ "reopen", SIGUSR1, 0 },
	{ "stop", SIGTERM, 1 },
	{ "quit", SIGQUIT, 1 },
};

/* Sleep a little, in a way that survives signals. */
static void
nap_ms(long ms)
{
	struct timespec	ts = { 0, ms * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

int
control_signal(const struct config *conf, const char *name)
{
	char		 err[512];
	uint64_t	 deadline, bound_us;
	size_t		 i;
	pid_t		 pid;

	for (i = 0; i < nitems(control_signals); i++)
		if (strcmp(name, control_signals[i].name) == 0)
			break;
	if (i == nitems(control_signals)) {
		fprintf(stderr, "echod: -s %s: unknown signal (use reload, "
		    "reopen, stop or quit)\n", name);
		return 2;
	}
	if (conf->pid_file == NULL) {
		fprintf(stderr, "echod: -s %s: no pid_file in %s: set it in "
		    "[server] or give -p PIDFILE to control a running echod\n", name,
		    conf->path != NULL ? conf->path : "the built-in defaults");
		return 1;
	}
	err[0] = '\0';
	if ((pid = pidfile_read(conf->pid_file, err, sizeof(err))) <= 0) {
		if (pid == 0)
			fprintf(stderr, "echod: -s %s: pid file %s does not "
			    "exist: is echod running?\n", name,
			    conf->pid_file);
		else
			fprintf(stderr, "echod: -s %s: %s\n", name, err);
		return 1;
	}
	if (!process_alive(pid)) {
		fprintf(stderr, "echod: -s %s: no process %ld (stale pid "
		    "file %s): is echod running?\n", name, (long)pid,
		    conf->pid_file);
		return 1;
	}
	if (!process_is_echod(pid)) {
		fprintf(stderr, "echod: -s %s: process %ld from %s is not "
		    "echod: not signalled\n", name, (long)pid, conf->pid_file);
		return 1;
	}
	if (kill(pid, control_signals[i].sig) != 0) {
		fprintf(stderr, "echod: -s %s: pid %ld: %s\n", name, (long)pid,
		    strerror(errno));
		return 1;
	}
	if (!control_signals[i].stops) {
		printf("echod: %s sent to pid %ld\n", name, (long)pid);
		return 0;
	}
	/* stop and quit: report whether it is gone, within a bound. */
	bound_us = 10ull * 1000000;
	if (control_signals[i].sig == SIGQUIT)
		bound_us += conf->shutdown_timeout_us;
	deadline = now_us() + bound_us;
	while (process_alive(pid)) {
		if (now_us() > deadline) {
			fprintf(stderr, "echod: -s %s: pid %ld is still "
			    "running after %.0f s\n", name, (long)pid,
			    (double)bound_us / 1e6);
			return 1;
		}
		nap_ms(20);
	}
	printf("echod: pid %ld stopped\n", (long)pid);
	return 0;
}
