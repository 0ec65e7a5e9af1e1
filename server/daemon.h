/*
 * daemon.h: detaching from the terminal and the starting directory.
 */
#ifndef ECHOD_DAEMON_H
#define ECHOD_DAEMON_H

struct config;

/*
 * Open /dev/null on any of fds 0, 1 and 2 that is closed, so that no socket
 * or log file lands there (detaching points them at /dev/null and would
 * close it). Call first thing in main().
 */
void	daemon_stdio_open(void);

/*
 * Detach (fork, setsid, chdir /, umask, standard streams to /dev/null). Must
 * run before any thread, event_base or aio request exists. conf's path is
 * made absolute first, for reloads. The parent stays until the child calls
 * daemon_ready() (then exits 0) or exits (then prints what the child wrote
 * to stderr and exits non-zero): `echod -d && next` is reliable. Returns in
 * the child only.
 */
void	daemon_detach(struct config *conf);
/* The child is serving: release the waiting parent. */
void	daemon_ready(void);
/* 1 once detached (the main process is the child). */
int	daemon_detached(void);
/* A path as from the directory echod started in (allocated). */
char	*daemon_path(const char *path);

#endif
