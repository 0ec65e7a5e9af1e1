/*
 * uv_echo.c: a plain libuv echo server, the baseline of the other common
 * event library: one thread, the default loop, and per connection a
 * uv_tcp_t whose reads are written straight back, each write owning the
 * buffer it was read into until it completes. Reading stops while more
 * than 1 MiB waits to be sent (uv_stream_get_write_queue_size), so a
 * client that does not read cannot make it grow.
 *
 * usage: uv_echo PORT [HOST]	(HOST defaults to 127.0.0.1)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#define READ_MAX	(64 * 1024)
#define OUT_HIGH	(1024 * 1024)

/* The handle comes first: a uv_stream_t * is a struct conn *. */
struct conn {
	uv_tcp_t	 tcp;
	int		 stopped;	/* reading paused for backpressure */
};

struct echo_write {
	uv_write_t	 req;
	uv_buf_t	 buf;
};

static void	on_read(uv_stream_t *, ssize_t, const uv_buf_t *);

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)h;
	(void)hint;
	buf->base = malloc(READ_MAX);
	buf->len = buf->base != NULL ? READ_MAX : 0;
}

static void
on_close(uv_handle_t *h)
{
	free(h);
}

static void
on_written(uv_write_t *req, int status)
{
	struct echo_write	*w = (struct echo_write *)req;
	uv_stream_t		*s = req->handle;

	free(w->buf.base);
	free(w);
	if (status < 0) {
		if (!uv_is_closing((uv_handle_t *)s))
			uv_close((uv_handle_t *)s, on_close);
		return;
	}
	if (((struct conn *)s)->stopped &&
	    uv_stream_get_write_queue_size(s) < OUT_HIGH / 2 &&
	    !uv_is_closing((uv_handle_t *)s)) {
		((struct conn *)s)->stopped = 0;
		uv_read_start(s, on_alloc, on_read);
	}
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct echo_write	*w;

	if (n <= 0) {
		free(buf->base);
		if (n < 0 && !uv_is_closing((uv_handle_t *)s))
			uv_close((uv_handle_t *)s, on_close);
		return;
	}
	if ((w = malloc(sizeof *w)) == NULL) {
		free(buf->base);
		uv_close((uv_handle_t *)s, on_close);
		return;
	}
	w->buf = uv_buf_init(buf->base, (unsigned)n);
	if (uv_write(&w->req, s, &w->buf, 1, on_written) != 0) {
		free(w->buf.base);
		free(w);
		uv_close((uv_handle_t *)s, on_close);
		return;
	}
	if (uv_stream_get_write_queue_size(s) > OUT_HIGH) {
		((struct conn *)s)->stopped = 1;
		uv_read_stop(s);
	}
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct conn	*c;

	if (status < 0 || (c = calloc(1, sizeof *c)) == NULL)
		return;
	uv_tcp_init(server->loop, &c->tcp);
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		uv_close((uv_handle_t *)&c->tcp, on_close);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in	 sin;
	uv_tcp_t		 server;
	int			 rv;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: uv_echo PORT [HOST]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (uv_ip4_addr(argc == 3 ? argv[2] : "127.0.0.1", atoi(argv[1]),
	    &sin) != 0) {
		fprintf(stderr, "uv_echo: bad address\n");
		return 2;
	}
	uv_tcp_init(uv_default_loop(), &server);
	if ((rv = uv_tcp_bind(&server, (const struct sockaddr *)&sin, 0)) != 0 ||
	    (rv = uv_listen((uv_stream_t *)&server, 1024, on_connection)) != 0) {
		fprintf(stderr, "uv_echo: listen on port %s: %s\n", argv[1],
		    uv_strerror(rv));
		return 1;
	}
	return uv_run(uv_default_loop(), UV_RUN_DEFAULT);
}
