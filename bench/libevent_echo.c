/*
 * libevent_echo.c: a plain libevent echo server, the baseline that shows
 * what libevent's bufferevents cost before anything of echod's own: one
 * thread, one event_base, an evconnlistener, and per connection one
 * bufferevent whose read callback moves its input buffer to its output
 * (no copy). Reading stops while more than 1 MiB waits to be sent, so a
 * client that does not read cannot make it grow.
 *
 * usage: libevent_echo PORT [HOST]	(HOST defaults to 127.0.0.1)
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <err.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#define OUT_HIGH	(1024 * 1024)

static void
on_read(struct bufferevent *bev, void *arg)
{
	(void)arg;
	bufferevent_write_buffer(bev, bufferevent_get_input(bev));
	if (evbuffer_get_length(bufferevent_get_output(bev)) > OUT_HIGH)
		bufferevent_disable(bev, EV_READ);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	(void)arg;
	bufferevent_enable(bev, EV_READ);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		bufferevent_free(bev);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct event_base	*base = arg;
	struct bufferevent	*bev;
	int			 one = 1;

	(void)l;
	(void)sa;
	(void)salen;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		evutil_closesocket(fd);
		return;
	}
	/* Resume reading once the output is below half the mark. */
	bufferevent_setwatermark(bev, EV_WRITE, OUT_HIGH / 2, 0);
	bufferevent_setcb(bev, on_read, on_write, on_event, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int
main(int argc, char **argv)
{
	struct event_base	*base;
	struct evconnlistener	*l;
	struct sockaddr_in	 sin;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: libevent_echo PORT [HOST]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)atoi(argv[1]));
	if (inet_pton(AF_INET, argc == 3 ? argv[2] : "127.0.0.1",
	    &sin.sin_addr) != 1)
		errx(2, "bad host");
	if ((base = event_base_new()) == NULL)
		errx(1, "event_base_new");
	l = evconnlistener_new_bind(base, on_accept, base,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 1024,
	    (struct sockaddr *)&sin, sizeof sin);
	if (l == NULL)
		err(1, "listen on port %s", argv[1]);
	event_base_dispatch(base);
	evconnlistener_free(l);
	event_base_free(base);
	return 0;
}
