/*
 * daemon.c: detaching, pid file, privilege drop, systemd. (Interim.)
 */
#include <stdio.h>

#include "config.h"
#include "daemon.h"
#include "log.h"

void
daemon_detach(void)
{
	fatalx("daemon mode is not available in this build; use -f");
}

void
daemon_ready(void)
{
}

int
pidfile_write(const char *path, char *err, size_t errlen)
{
	snprintf(err, errlen, "pid_file %s: not available in this build",
	    path);
	return -1;
}

void
pidfile_remove(void)
{
}

int
privdrop(const char *user, const char *group, char *err, size_t errlen)
{
	(void)group;
	snprintf(err, errlen, "user %s: not available in this build", user);
	return -1;
}

void
sd_notify_send(const char *msg)
{
	(void)msg;
}

int
sd_listen_fds_apply(struct config *conf, char *err, size_t errlen)
{
	(void)conf;
	(void)err;
	(void)errlen;
	return 0;
}

int
daemon_signal(const struct config *conf, const char *name)
{
	(void)conf;
	fprintf(stderr, "echod: -s %s: not available in this build\n", name);
	return 1;
}
