/*
 * daemon.h: running as a daemon: detaching, the pid file, dropping
 * privileges, the systemd notify protocol and socket activation, and
 * `echod -s SIGNAL` control of a running echod.
 */
#ifndef ECHOD_DAEMON_H
#define ECHOD_DAEMON_H

#include <stddef.h>

struct config;

/*
 * Open /dev/null on any of fds 0, 1 and 2 that is closed, so that no socket
 * or log file lands there (detaching points them at /dev/null and would
 * close it). Call first thing in main().
 */
void	daemon_stdio_open(void);

/*
 * Detach (fork, setsid, chdir /, umask, standard streams to /dev/null). Must
 * run before any thread, event_base or aio request exists. The parent stays
 * until the child calls daemon_ready() (then exits 0) or exits (then prints
 * what the child wrote to stderr and exits non-zero): `echod -d && next`
 * is reliable. Returns in the child only.
 */
void	daemon_detach(void);
/* The child is serving: release the waiting parent. */
void	daemon_ready(void);

/* Write the pid file atomically; refuse when a live echod holds it. */
int	pidfile_write(const char *path, char *err, size_t errlen);
/* Remove it at exit (only when this process wrote it). */
void	pidfile_remove(void);

/* setgroups, setgid, setuid; verified. */
int	privdrop(const char *user, const char *group, char *err,
	    size_t errlen);

/* systemd notify protocol: one datagram to $NOTIFY_SOCKET when set. */
void	sd_notify_send(const char *msg);

/*
 * Socket activation: when LISTEN_PID is us and LISTEN_FDS is set, match the
 * inherited fds to [listen NAME] by LISTEN_FDNAMES (or in order) and set
 * their inherited_fd. Returns -1 with err set on a mismatch.
 */
int	sd_listen_fds_apply(struct config *, char *err, size_t errlen);

/* echod -s reload|reopen|stop|quit: signal the pid in the pid file. */
int	daemon_signal(const struct config *, const char *name);

#endif
