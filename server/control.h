/*
 * control.h: `echod -s SIGNAL`, control of a running echod.
 */
#ifndef ECHOD_CONTROL_H
#define ECHOD_CONTROL_H

struct config;

/* echod -s reload|reopen|stop|quit: signal the pid in the pid file. Returns
 * the exit code. */
int	control_signal(const struct config *, const char *name);

#endif
