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
 * Kept small on purpose: an idle connection is this struct plus libevent's
 * per-fd entry. The owning worker is the thread's own (worker_self()), and
 * the worker finds its connections through its event_base, so neither is
 * stored here.
 */
struct conn {
	struct event		 ev;
	struct listener		*listener;
	struct evbuffer		*out;		/* pending echo, lazily made */
	uint64_t		 bytes_in;
	uint64_t		 bytes_out;
	uint64_t		 start_us;	/* monotonic */
	union conn_addr		 peer;		/* from the PROXY header, if any */
	union conn_addr		 via;		/* the balancer; AF_UNSPEC: none */
	int			 fd;
	short			 events;	/* what ev waits for */
	uint16_t		 chargen_pos;
	uint8_t			 eof;		/* client shut its write side */
	uint8_t			 draining;
};

/* What every closing connection reports, plain or TLS. */
struct conn_close_info {
	struct listener		*listener;
	const struct sockaddr	*peer;
	const struct sockaddr	*via;		/* NULL: no PROXY header */
	uint64_t		 start_us;
	uint64_t		 bytes_in;
	uint64_t		 bytes_out;
	const char		*tls_version;	/* NULL when plain */
	const char		*tls_cipher;
};

/* Built once by conn_init(); used by plain and TLS chargen alike. */
#define CHARGEN_CHUNK	(64 * 1024)	/* readable at any chargen_at() */
const char *chargen_at(unsigned int pos);
unsigned int chargen_advance(unsigned int pos, size_t sent);
/* An accepted socket, before it is served (plain or TLS). */
void	conn_socket_setup(int fd);
/* Keep what the socket did not take, in a buffer made on first use. */
void	conn_out_add(struct evbuffer **, const void *, size_t);

void	conn_init(void);
/* Counters and the access-log line of a connection that is closing. */
void	conn_account_close(struct worker *, const struct conn_close_info *,
	    enum close_reason);
/* After the connection's memory is gone: its listener reference, the
 * global count (max_connections) and the worker's drain check. */
void	conn_release(struct worker *, struct listener *);
/* peer is the client; via, when not NULL, the balancer that sent a PROXY
 * header on its behalf (the socket's own peer). */
void	conn_start(struct worker *, int fd, struct listener *,
	    const struct sockaddr *peer, socklen_t, const struct sockaddr *via);
/* Keep a peer address in a connection's slot; NULL leaves it AF_UNSPEC. */
void	conn_addr_set(union conn_addr *, const struct sockaddr *);
void	conn_drain_all(struct worker *);
void	conn_close_all(struct worker *);
/* Free a connection: closes the socket, counts, writes the access line. */
void	conn_free(struct conn *, enum close_reason);
const char *close_reason_name(enum close_reason);

#endif
