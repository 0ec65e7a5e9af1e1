/*
 * sd.c: the two halves of the systemd protocol that need no libsystemd:
 * notify datagrams to $NOTIFY_SOCKET (READY=1, RELOADING=1, STOPPING=1)
 * and socket activation (LISTEN_FDS matched to [listen NAME]).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "parse.h"
#include "sd.h"
#include "sock.h"
#include "util.h"

void
sd_notify_send(const char *msg)
{
	struct sockaddr_un	 sun;
	const char		*path;
	char			 buf[256];
	socklen_t		 len;
	size_t			 plen;
	int			 fd, n;

	if ((path = getenv("NOTIFY_SOCKET")) == NULL || *path == '\0')
		return;
	if (path[0] != '/' && path[0] != '@')
		return;		/* vsock and friends: not supported */
	plen = strlen(path);
	if (plen >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, plen);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';	/* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen +
	    (path[0] == '/'));
	/* A daemon that forked tells systemd which process is the main one. */
	if (daemon_detached() && strcmp(msg, "READY=1") == 0)
		n = snprintf(buf, sizeof(buf), "%s\nMAINPID=%ld", msg,
		    (long)getpid());
	else
		n = snprintf(buf, sizeof(buf), "%s", msg);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return;
	if ((fd = sock_open(AF_UNIX, SOCK_DGRAM, 0, 0)) == -1) {
		log_warn("NOTIFY_SOCKET");
		return;
	}
	if (sock_sendto(fd, buf, (size_t)n, (struct sockaddr *)&sun, len) == -1)
		log_warn("NOTIFY_SOCKET %s", path);
	close(fd);
}

#define SD_LISTEN_FDS_START	3

static struct listen_conf *
listener_named(struct config *conf, const char *name)
{
	struct listen_conf	*lc;

	for (lc = conf->listeners; lc != NULL; lc = lc->next)
		if (strcmp(lc->name, name) == 0)
			return lc;
	return NULL;
}

static int
check_listening(int fd, char *err, size_t errlen)
{
	int		v;
	socklen_t	len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) != 0) {
		snprintf(err, errlen, "socket activation: fd %d: %s", fd,
		    strerror(errno));
		return -1;
	}
	if (v != SOCK_STREAM) {
		snprintf(err, errlen, "socket activation: fd %d is not a "
		    "stream socket", fd);
		return -1;
	}
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) != 0 || !v) {
		snprintf(err, errlen, "socket activation: fd %d is not "
		    "listening", fd);
		return -1;
	}
	return 0;
}

/* Split LISTEN_FDNAMES into n names (missing ones are ""). */
static char **
split_names(const char *s, int n)
{
	char		**names;
	const char	*p, *colon;
	int		  i;

	names = xcalloc((size_t)n, sizeof(*names));
	p = s;
	for (i = 0; i < n; i++) {
		if (p == NULL) {
			names[i] = xstrdup("");
			continue;
		}
		colon = strchr(p, ':');
		if (colon == NULL) {
			names[i] = xstrdup(p);
			p = NULL;
		} else {
			names[i] = xstrdup(p);
			names[i][colon - p] = '\0';
			p = colon + 1;
		}
	}
	return names;
}

/*
 * With LISTEN_FDNAMES, each fd goes to the [listen NAME] of its name. When
 * no name matches any listener (systemd names fds after the .socket unit
 * unless FileDescriptorName= says otherwise), fds go to listeners in file
 * order.
 */
static int
assign_fds(struct config *conf, int n, char **names, char *err,
    size_t errlen)
{
	struct listen_conf	*lc;
	int			 i, fd, matched = 0;

	for (i = 0; i < n && names != NULL; i++)
		if (listener_named(conf, names[i]) != NULL)
			matched++;
	for (i = 0, lc = conf->listeners; i < n; i++) {
		fd = SD_LISTEN_FDS_START + i;
		if (check_listening(fd, err, errlen) != 0)
			return -1;
		if (matched > 0) {
			if ((lc = listener_named(conf, names[i])) == NULL) {
				snprintf(err, errlen, "socket activation: fd "
				    "%d is named \"%s\" but there is no "
				    "[listen %s]", fd, names[i], names[i]);
				return -1;
			}
		} else if (lc == NULL) {
			snprintf(err, errlen, "socket activation: %d sockets "
			    "passed but only %d listeners configured", n,
			    conf->nlisteners);
			return -1;
		}
		if (lc->inherited_fd != -1) {
			snprintf(err, errlen, "socket activation: two sockets "
			    "for [listen %s]", lc->name);
			return -1;
		}
		lc->inherited_fd = fd;
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		log_info("listen %s: socket fd %d from the service manager",
		    lc->name, fd);
		if (matched == 0)
			lc = lc->next;
	}
	return 0;
}

int
sd_listen_fds_apply(struct config *conf, char *err, size_t errlen)
{
	const char	*s, *why;
	char		*names_env = NULL, **names = NULL;
	uint64_t	 v;
	pid_t		 pid;
	int		 i, n, rv = 0;

	if ((s = getenv("LISTEN_PID")) == NULL)
		return 0;
	if (parse_uint(s, 1, INT_MAX, &v, &why) != 0)
		pid = 0;
	else
		pid = (pid_t)v;
	if (pid != getpid())
		goto out;	/* meant for another process */
	if ((s = getenv("LISTEN_FDS")) == NULL)
		goto out;
	if (parse_uint(s, 0, 1024, &v, &why) != 0) {
		snprintf(err, errlen, "LISTEN_FDS=%s: %s", s, why);
		rv = -1;
		goto out;
	}
	n = (int)v;
	if (n == 0)
		goto out;
	if ((s = getenv("LISTEN_FDNAMES")) != NULL) {
		names_env = xstrdup(s);
		names = split_names(names_env, n);
	}
	rv = assign_fds(conf, n, names, err, errlen);
	for (i = 0; names != NULL && i < n; i++)
		free(names[i]);
	free(names);
	free(names_env);
out:
	/* Not for our children, and not for a second look after a reload. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return rv;
}
