/*
 * conn.h: one client connection on a worker: its socket, its pending output
 * and its counters. Plain connections run on a single libevent event and the
 * worker's shared read buffer, so an idle one costs little memory.
 */
#ifndef ECHOD_CONN_H
#define ECHOD_CONN_H

#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <stdint.h>

#include <event2/event_struct.h>

struct worker;
struct listener;
struct evbuffer;

enum close_reason {
	CLOSE_CLIENT,		/* client closed */
	CLOSE_IDLE,		/* idle timeout */
	CLOSE_ERROR,		/* socket or protocol error */
	CLOSE_SHUTDOWN,		/* echod stopping */
	CLOSE_HANDSHAKE,	/* TLS handshake failed or timed out */
};

union conn_addr {
	struct sockaddr		sa;
	struct sockaddr_in	sin;
	struct sockaddr_in6	sin6;
};

/*
 * A connection: what plain and TLS connections share (tls_conn.c's struct
 * embeds one first). Kept small on purpose: an idle plain connection is
 * this struct plus libevent's per-fd entry. The owning worker is the
 * thread's own (conn_thread_attach), and the worker finds its plain
 * connections through its event_base, so neither is stored here.
 */
struct conn {
	struct event		 ev;
	struct listener		*listener;	/* referenced */
	struct evbuffer		*out;		/* pending echo, lazily made */
	uint64_t		 bytes_in;	/* application bytes */
	uint64_t		 bytes_out;
	uint64_t		 start_us;	/* monotonic */
	union conn_addr		 peer;		/* from the PROXY header, if any */
	union conn_addr		*via;		/* the balancer (PROXY), else NULL:
						   made only when there is one, so
						   that plain connections stay small */
	int			 fd;
	short			 events;	/* what ev waits for */
	uint16_t		 chargen_pos;
	uint8_t			 eof;		/* client shut its write side */
};

/*
 * Registered by the worker (conn_init): called once a connection's memory
 * is gone, with the listener reference it held, for the worker's count and
 * the admission slot.
 */
typedef void (*conn_release_fn)(struct worker *, struct listener *);

/* Built once by conn_init(); used by plain and TLS chargen alike. */
#define CHARGEN_CHUNK	(64 * 1024)	/* readable at any chargen_at() */
const char *chargen_at(unsigned int pos);
unsigned int chargen_advance(unsigned int pos, size_t sent);

void	conn_init(conn_release_fn);
/* On a worker thread, before it serves anything. */
void	conn_thread_attach(struct worker *);
/* The common part of a new connection (plain or TLS): socket options,
 * fields, counters; takes over the listener reference. peer is the
 * client; via, when not NULL, the balancer that sent a PROXY header on its
 * behalf (the socket's own peer). */
void	conn_setup(struct worker *, struct conn *, int fd, struct listener *,
	    const struct sockaddr *peer, socklen_t, const struct sockaddr *via);
/* Keep what the socket did not take, in a buffer made on first use. */
void	conn_out_add(struct evbuffer **, const void *, size_t);
/* Counters and the access-log line of a connection that is closing;
 * tls_version and tls_cipher are NULL for a plain one. */
void	conn_account_close(struct worker *, const struct conn *,
	    enum close_reason, const char *tls_version, const char *tls_cipher);
/* The arguments of every event on base whose callback is cb, as a copy
 * (events must not change while libevent walks its list); the caller frees
 * the array. For closing every connection of a kind at shutdown. */
void	**conn_collect_events(struct event_base *, event_callback_fn,
	    size_t *n);
/* After the connection's memory is gone (the registered release). */
void	conn_release(struct worker *, struct listener *);
/* Serve a plain connection; takes over the listener reference. 0, or -1
 * when it could not start (the socket is closed). */
int	conn_start(struct worker *, int fd, struct listener *,
	    const struct sockaddr *peer, socklen_t, const struct sockaddr *via);
/* The same, for a socket whose first len bytes were already read into
 * data (what followed a PROXY header): they are served first. */
int	conn_start_read(struct worker *, int fd, struct listener *,
	    const struct sockaddr *peer, socklen_t, const struct sockaddr *via,
	    const char *data, size_t len);
void	conn_close_all(struct worker *);

#endif
