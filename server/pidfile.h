/*
 * pidfile.h: the pid file, and what `echod -s` asks of it.
 */
#ifndef ECHOD_PIDFILE_H
#define ECHOD_PIDFILE_H

#include <sys/types.h>
#include <stddef.h>

/* Write the pid file atomically; refuse when a live echod holds it. */
int	pidfile_write(const char *path, char *err, size_t errlen);
/* Remove it at exit (only when this process wrote it). */
void	pidfile_remove(void);
/* The pid in a pid file: >0, 0 when the file does not exist, -1 with err
 * set. */
pid_t	pidfile_read(const char *path, char *err, size_t errlen);
/* 1 when pid names a process that has not exited (zombies have). */
int	process_alive(pid_t);
/* 1 when pid looks like an echod (or there is no /proc to tell). */
int	process_is_echod(pid_t);

#endif
