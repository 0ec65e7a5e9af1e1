/*
 * sd.h: the systemd notify protocol and socket activation.
 */
#ifndef ECHOD_SD_H
#define ECHOD_SD_H

#include <stddef.h>

struct config;

/* systemd notify protocol: one datagram to $NOTIFY_SOCKET when set. */
void	sd_notify_send(const char *msg);

/*
 * Socket activation: when LISTEN_PID is us and LISTEN_FDS is set, match the
 * inherited fds to [listen NAME] by LISTEN_FDNAMES (or in order) and set
 * their inherited_fd. Returns -1 with err set on a mismatch.
 */
int	sd_listen_fds_apply(struct config *, char *err, size_t errlen);

#endif
