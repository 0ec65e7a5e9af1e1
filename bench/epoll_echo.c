/*
 * epoll_echo.c: the raw-epoll baseline echo server that the server
 * benchmarks measure echod against. One thread, level-triggered epoll,
 * nonblocking sockets, TCP_NODELAY, SIGPIPE ignored. Each readiness does one
 * read of up to 64 KiB and writes it straight back; what the kernel does not
 * take is kept per connection, and reading stops until it has been written,
 * so the server stays correct (and bounded) under backpressure.
 *
 * usage: epoll_echo PORT [HOST]	(HOST defaults to 127.0.0.1)
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_MAX	(64 * 1024)
#define NEVENTS		256

struct conn {
	int	 fd;
	char	*pending;	/* read but not yet written back */
	size_t	 off;
	size_t	 len;
};

static int	 ep;
static char	 buf[READ_MAX];

static void
conn_close(struct conn *c)
{
	close(c->fd);
	free(c->pending);
	free(c);
}

static void
conn_want(struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == -1)
		err(1, "epoll_ctl");
}

/* Write back what the kernel did not take; -1 when the peer is gone. */
static int
conn_write(struct conn *c)
{
	ssize_t	n;

	n = write(c->fd, c->pending + c->off, c->len - c->off);
	if (n == -1)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
	c->off += n;
	if (c->off == c->len) {
		free(c->pending);
		c->pending = NULL;
		c->off = c->len = 0;
		conn_want(c, EPOLLIN);
	}
	return 0;
}

/* One read, then echo it; -1 on EOF or error. */
static int
conn_read(struct conn *c)
{
	ssize_t	n, w;

	n = read(c->fd, buf, sizeof(buf));
	if (n == -1)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
	if (n == 0)
		return -1;	/* nothing is pending while reading: all sent */
	w = write(c->fd, buf, n);
	if (w == -1) {
		if (errno != EAGAIN && errno != EINTR)
			return -1;
		w = 0;
	}
	if (w < n) {
		if ((c->pending = malloc(n - w)) == NULL)
			err(1, "malloc");
		memcpy(c->pending, buf + w, n - w);
		c->off = 0;
		c->len = n - w;
		conn_want(c, EPOLLOUT);	/* and stop reading until drained */
	}
	return 0;
}

static void
accept_one(int lfd)
{
	struct epoll_event	 ev;
	struct conn		*c;
	int			 fd, one = 1;

	if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) == -1) {
		if (errno == EMFILE || errno == ENFILE)
			usleep(10000);	/* let connections close */
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((c = calloc(1, sizeof(*c))) == NULL)
		err(1, "calloc");
	c->fd = fd;
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1)
		err(1, "epoll_ctl");
}

static int
listen_on(const char *host, const char *port)
{
	struct addrinfo	 hints, *res;
	int		 fd, one = 1, e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0)
		errx(1, "%s:%s: %s", host, port, gai_strerror(e));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd == -1)
		err(1, "socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) == -1)
		err(1, "bind %s:%s", host, port);
	if (listen(fd, 1024) == -1)
		err(1, "listen");
	freeaddrinfo(res);
	return fd;
}

int
main(int argc, char *argv[])
{
	struct epoll_event	 ev, events[NEVENTS];
	struct conn		*c;
	int			 lfd, i, n;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: epoll_echo PORT [HOST]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	lfd = listen_on(argc == 3 ? argv[2] : "127.0.0.1", argv[1]);
	if ((ep = epoll_create1(0)) == -1)
		err(1, "epoll_create1");
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;	/* the listener */
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) == -1)
		err(1, "epoll_ctl");

	for (;;) {
		if ((n = epoll_wait(ep, events, NEVENTS, -1)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "epoll_wait");
		}
		for (i = 0; i < n; i++) {
			if ((c = events[i].data.ptr) == NULL) {
				accept_one(lfd);
				continue;
			}
			if (c->pending != NULL ? conn_write(c) == -1 :
			    conn_read(c) == -1)
				conn_close(c);
		}
	}
}
