/*
 * test_sock.c: the portable socket and pipe calls (common/sock.c) and
 * memrchr, on whichever path this build takes (-Dportable=true: POSIX).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sock.h"
#include "util.h"

static int
nonblocking(int fd)
{
	int	fl = fcntl(fd, F_GETFL);

	assert_int_not_equal(fl, -1);
	return (fl & O_NONBLOCK) != 0;
}

static int
cloexec(int fd)
{
	int	fl = fcntl(fd, F_GETFD);

	assert_int_not_equal(fl, -1);
	return (fl & FD_CLOEXEC) != 0;
}

/* A blocking listener on 127.0.0.1, port chosen by the kernel. */
static int
listen_loopback(struct sockaddr_in *sin)
{
	socklen_t	len = sizeof(*sin);
	int		fd;

	fd = sock_open(AF_INET, SOCK_STREAM, 0, 0);
	assert_int_not_equal(fd, -1);
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)sin, sizeof(*sin)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)sin, &len), 0);
	return fd;
}

static void
test_open_flags(void **state)
{
	int	fd;

	(void)state;
	fd = sock_open(AF_INET, SOCK_STREAM, 0, 1);
	assert_int_not_equal(fd, -1);
	assert_true(nonblocking(fd));
	assert_true(cloexec(fd));
	close(fd);
	fd = sock_open(AF_UNIX, SOCK_DGRAM, 0, 0);
	assert_int_not_equal(fd, -1);
	assert_false(nonblocking(fd));
	assert_true(cloexec(fd));
	close(fd);
	errno = 0;
	assert_int_equal(sock_open(-1, SOCK_STREAM, 0, 1), -1);
	assert_int_not_equal(errno, 0);
}

static void
test_accept_flags(void **state)
{
	struct sockaddr_in	sin, peer;
	socklen_t		len = sizeof(peer);
	int			lfd, cfd, afd;

	(void)state;
	lfd = listen_loopback(&sin);
	assert_false(nonblocking(lfd));
	cfd = sock_open(AF_INET, SOCK_STREAM, 0, 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	afd = sock_accept(lfd, (struct sockaddr *)&peer, &len);
	assert_int_not_equal(afd, -1);
	assert_int_equal(len, sizeof(peer));
	assert_true(nonblocking(afd));
	assert_true(cloexec(afd));
	/* Nothing pending: a non-blocking listener says EAGAIN, not hang. */
	assert_int_equal(fd_nonblock_cloexec(lfd), 0);
	assert_true(nonblocking(lfd));
	assert_int_equal(sock_accept(lfd, NULL, NULL), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	close(afd);
	close(cfd);
	close(lfd);
}

static void
test_pipe(void **state)
{
	char	buf[4096] = { 0 };
	int	fds[2], n = 0;

	(void)state;
	assert_int_equal(pipe_nonblock(fds), 0);
	assert_true(nonblocking(fds[0]) && nonblocking(fds[1]));
	assert_true(cloexec(fds[0]) && cloexec(fds[1]));
	assert_int_equal(read(fds[0], buf, 1), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	/* A full pipe refuses the write instead of blocking. */
	while (write(fds[1], buf, sizeof(buf)) > 0)
		assert_true(++n < 100000);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	close(fds[0]);
	close(fds[1]);
}

/*
 * Sending to a peer that has gone: EPIPE, and no SIGPIPE where the system
 * can say so. Without MSG_NOSIGNAL or SO_NOSIGPIPE the programs ignore
 * SIGPIPE, so this test does the same there.
 */
static void
test_send_no_sigpipe(void **state)
{
	struct sockaddr_in	sin;
	const char		msg[] = "x";
	ssize_t			n = 0;
	int			lfd, cfd, afd, i;

	(void)state;
	signal(SIGPIPE, HAVE_MSG_NOSIGNAL || HAVE_SO_NOSIGPIPE ? SIG_DFL :
	    SIG_IGN);
	lfd = listen_loopback(&sin);
	cfd = sock_open(AF_INET, SOCK_STREAM, 0, 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	afd = sock_accept(lfd, NULL, NULL);
	assert_int_not_equal(afd, -1);
	close(afd);		/* the peer resets on the first byte */
	for (i = 0; i < 100 && n != -1; i++) {
		n = sock_send(cfd, msg, 1);
		usleep(1000);
	}
	assert_int_equal(n, -1);
	assert_true(errno == EPIPE || errno == ECONNRESET);
	close(cfd);
	close(lfd);
	signal(SIGPIPE, SIG_DFL);
}

static void
test_memrchr(void **state)
{
	const char	s[] = "ab\ncd\nef";

	(void)state;
	assert_ptr_equal(memrchr(s, '\n', sizeof(s) - 1), s + 5);
	assert_ptr_equal(memrchr(s, '\n', 5), s + 2);
	assert_ptr_equal(memrchr(s, 'a', 1), s);
	assert_null(memrchr(s, '\n', 2));
	assert_null(memrchr(s, 'a', 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_flags),
		cmocka_unit_test(test_accept_flags),
		cmocka_unit_test(test_pipe),
		cmocka_unit_test(test_send_no_sigpipe),
		cmocka_unit_test(test_memrchr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
