/*
 * sock.h: the socket and pipe calls whose one-call form is not POSIX.
 * Each uses the system's form when meson found it (platform.h) and the
 * POSIX one (fcntl, pipe) otherwise, so call sites never need an #if.
 */
#ifndef ECHOLOAD_SOCK_H
#define ECHOLOAD_SOCK_H

#include <sys/types.h>
#include <sys/socket.h>

#include "platform.h"

/* Make fd non-blocking and close-on-exec. 0, or -1 with errno. */
int	fd_nonblock_cloexec(int);
/* socket(2) whose fd is non-blocking and close-on-exec; blocking when
 * the last argument is 0 (still close-on-exec). */
int	sock_open(int, int, int, int);
/* accept(2), the new fd non-blocking and close-on-exec. */
int	sock_accept(int, struct sockaddr *, socklen_t *);
/* A pipe with both ends non-blocking and close-on-exec. */
int	pipe_nonblock(int [2]);
/*
 * send(2) and sendto(2) that never raise SIGPIPE where the system can say
 * so per call (MSG_NOSIGNAL) or per socket (SO_NOSIGPIPE, set by sock_open
 * and sock_accept). Elsewhere the program must ignore SIGPIPE, as both
 * echod and echoload do from their first line.
 */
ssize_t	sock_send(int, const void *, size_t);
ssize_t	sock_sendmsg(int, const struct msghdr *);
ssize_t	sock_sendto(int, const void *, size_t, const struct sockaddr *,
	    socklen_t);

#endif
