/*
 * session.h: one connection slot of a worker and its state machine: connect,
 * send requests on schedule, read and check replies, time them, and start
 * over after an error.
 */
#ifndef ECHOLOAD_SESSION_H
#define ECHOLOAD_SESSION_H

#include <event2/event.h>
#include <event2/event_struct.h>

#include <stdint.h>

#include "proxy_send.h"
#include "tls_conn.h"

struct worker;

enum sess_state {
	S_IDLE,		/* no socket (connect mode between requests) */
	S_CONNECTING,
	S_HANDSHAKE,	/* --tls: connected, TLS handshake under way */
	S_ESTABLISHED,
	S_CLOSING,	/* connect mode: reply read, waiting for the close */
	S_BACKOFF,	/* after an error, before reconnecting */
	S_DONE,
};

/* A request on the wire: when it should have been sent, when it was. */
struct inflight {
	uint64_t	intended_ns;
	uint64_t	sent_ns;
	int		counted;	/* intended in the measured window */
};

struct session {
	struct worker	*w;
	unsigned	 index;		/* over all workers, for the stagger */
	int		 fd;
	enum sess_state	 state;
	struct tls_conn	 tls;		/* tls.ssl NULL: plain TCP */
	struct event	 ev_read;
	struct event	 ev_write;
	struct event	 ev_timer;
	uint64_t	 quota;		/* measured requests still to issue */
	uint64_t	 seq;		/* open loop: next schedule slot */
	uint64_t	 next_ns;	/* open loop: its intended time */
	struct inflight	*ring;		/* requests in flight, oldest at head */
	unsigned	 cap;
	unsigned	 head;
	unsigned	 count;
	uint64_t	 queued;	/* stream bytes to send, in total */
	uint64_t	 sent;		/* stream bytes written */
	uint64_t	 received;	/* stream bytes read */
	size_t		 rx_in_msg;	/* bytes of the current reply read */
	uint64_t	 since_ns;	/* what the timeout measures from */
	int		 bad;		/* current reply failed --verify */
	int		 shut;		/* connect mode: write side shut down */
	int		 parked;	/* sweep: connected, idle between steps */
	uint64_t	 hs_start_ns;	/* when the TLS handshake began */
	uint64_t	 connect_ns;	/* when this connection's setup began */
	uint32_t	 backoff_us;	/* wait before the next reconnect */
	uint8_t		 phase_up;	/* established in the connection phase */
	uint8_t		 reconnecting;	/* setup after a failure in the run */
	uint8_t		 retries;	/* phase: connects begun again */
	/* --proxy on plain TCP: the header not yet sent, which goes out in
	 * front of the first write (client/proxy_send.c). */
	uint8_t		 pp_len;
	uint8_t		 pp_hdr[PROXY_HDR_MAX];
};

void	session_init(struct session *, struct worker *, unsigned index,
	    uint64_t quota);
/* The connection phase: open this session's connection. */
void	session_connect(struct session *, uint64_t now);
/* The phase: close a hung connect and begin it again; its latency and
 * timeout still count from the first attempt. */
void	session_retry(struct session *, uint64_t now);
/* The load begins: requests on an established session; the others end
 * (connect mode: the first connection). */
void	session_begin(struct session *, uint64_t now);
/* A step begins: schedule from its start; a parked session goes on on its
 * connection, any other one (re)connects. */
void	session_begin_step(struct session *);
/* The measured window is over: finish once nothing is owed. */
void	session_drain(struct session *, uint64_t now);
/* Close now, owed replies or not. */
void	session_stop(struct session *, uint64_t now);
/* Check --timeout; called a few times a second. */
void	session_sweep(struct session *, uint64_t now);
void	session_free(struct session *);

#endif
