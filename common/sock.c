/*
 * sock.c: portable forms of the socket and pipe calls both programs use
 * (see sock.h). With -Dportable=true every function takes its POSIX path.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "sock.h"

static int
set_cloexec(int fd)
{
	int	fl;

	if ((fl = fcntl(fd, F_GETFD)) == -1)
		return -1;
	return fl & FD_CLOEXEC ? 0 : fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

static int
set_nonblock(int fd)
{
	int	fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1)
		return -1;
	return fl & O_NONBLOCK ? 0 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int
fd_nonblock_cloexec(int fd)
{
	return set_nonblock(fd) == 0 && set_cloexec(fd) == 0 ? 0 : -1;
}

/* On a failure after the fd exists: close it, keep the first errno. */
static int
fail_close(int fd)
{
	int	saved = errno;

	close(fd);
	errno = saved;
	return -1;
}

/* Systems without MSG_NOSIGNAL say it once per socket instead. */
static int
set_nosigpipe(int fd)
{
#if HAVE_SO_NOSIGPIPE && !HAVE_MSG_NOSIGNAL
	int	one = 1;

	return setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#else
	(void)fd;
	return 0;
#endif
}

int
sock_open(int domain, int type, int protocol, int nonblock)
{
	int	fd;

#if HAVE_SOCK_FLAGS
	type |= SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0);
	if ((fd = socket(domain, type, protocol)) == -1)
		return -1;
#else
	if ((fd = socket(domain, type, protocol)) == -1)
		return -1;
	if (set_cloexec(fd) != 0 || (nonblock && set_nonblock(fd) != 0))
		return fail_close(fd);
#endif
	if (set_nosigpipe(fd) != 0)
		return fail_close(fd);
	return fd;
}

int
sock_accept(int lfd, struct sockaddr *sa, socklen_t *len)
{
	int	fd;

#if HAVE_ACCEPT4 && HAVE_SOCK_FLAGS
	if ((fd = accept4(lfd, sa, len, SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1)
		return -1;
#else
	/* Between accept and fcntl a fork+exec elsewhere in the process
	 * could inherit fd; neither program execs, so that window is moot. */
	if ((fd = accept(lfd, sa, len)) == -1)
		return -1;
	if (fd_nonblock_cloexec(fd) != 0)
		return fail_close(fd);
#endif
	if (set_nosigpipe(fd) != 0)
		return fail_close(fd);
	return fd;
}

int
pipe_nonblock(int fds[2])
{
#if HAVE_PIPE2
	return pipe2(fds, O_NONBLOCK | O_CLOEXEC);
#else
	if (pipe(fds) != 0)
		return -1;
	if (fd_nonblock_cloexec(fds[0]) != 0 ||
	    fd_nonblock_cloexec(fds[1]) != 0) {
		int	saved = errno;

		close(fds[0]);
		close(fds[1]);
		errno = saved;
		return -1;
	}
	return 0;
#endif
}

#if HAVE_MSG_NOSIGNAL
#define SEND_FLAGS	MSG_NOSIGNAL
#else
#define SEND_FLAGS	0
#endif

ssize_t
sock_send(int fd, const void *buf, size_t len)
{
	return send(fd, buf, len, SEND_FLAGS);
}

ssize_t
sock_sendmsg(int fd, const struct msghdr *msg)
{
	return sendmsg(fd, msg, SEND_FLAGS);
}

ssize_t
sock_sendto(int fd, const void *buf, size_t len, const struct sockaddr *to,
    socklen_t tolen)
{
	return sendto(fd, buf, len, SEND_FLAGS, to, tolen);
}
