/*
 * connect.h: the connection phase. Before warm-up and measurement every
 * worker opens all its connections (TCP, and the TLS handshake with --tls)
 * at a paced rate with a bounded number under way; each one ends
 * established or failed for a reason, and the phase's counts, duration and
 * connect-latency histogram are reported apart from the requests. Also
 * here: the limits checked before the first connect (descriptors, local
 * ports, source addresses), the socket each connection is made from, and
 * the counts of reconnects during the run.
 */
#ifndef ECHOLOAD_CONNECT_H
#define ECHOLOAD_CONNECT_H

#include <sys/socket.h>

#include <stdint.h>

#include "hist.h"
#include "source.h"

struct run;
struct worker;
struct session;

/* Why a connection of the phase did not come up. */
enum conn_fail {
	CF_REFUSED,	/* ECONNREFUSED: nothing listens */
	CF_TIMEOUT,	/* no connection within --connect-timeout */
	CF_ADDRNOTAVAIL, /* no free local port, or a source not of this host */
	CF_NOFILE,	/* EMFILE, ENFILE: out of descriptors */
	CF_RESET,	/* reset or closed before the load began */
	CF_TLS,		/* the handshake failed */
	CF_OTHER,	/* unreachable and the rest */
	CF_MAX
};

struct connect_stats {
	uint64_t	asked;
	uint64_t	established;
	uint64_t	failed[CF_MAX];
	uint64_t	retried;	/* connects begun again after a stall */
	uint64_t	start_ns;	/* first connect of the phase */
	uint64_t	end_ns;		/* last connection resolved */
	struct hist	lat;		/* connect (and handshake) time, us */
};

/* Connections that failed during the run and were opened again. */
struct reconnect_stats {
	uint64_t	established;
	uint64_t	failed;		/* attempts that did not come up */
	uint64_t	skipped;	/* open loop: slots due while down */
	struct hist	lat;		/* setup time of the new connection */
};

/* A worker's part of the phase. */
struct connect_phase {
	unsigned	 next;		/* next session to connect */
	unsigned	 pending;	/* connecting, not yet resolved */
	unsigned	 resolved;
	unsigned	 window;	/* at most this many pending */
	double		 rate;		/* --connect-rate's share; 0: unpaced */
	/* The accept queue guard: a connect that hangs where others take
	 * microseconds had its SYN dropped by a full accept queue; the pace
	 * then falls to half the rate that was getting through, and grows
	 * back by an eighth every 100 ms without another stall. A hung
	 * connect is begun again at once rather than left to the kernel's
	 * one-second SYN retransmission (so again after twice as long). */
	double		 cap;		/* per second; 0: no stall seen */
	uint64_t	 due_ns;	/* the next connect may start then */
	uint64_t	 cut_ns;	/* last time cap was cut */
	uint64_t	 fastest_ns;	/* quickest connect so far */
	unsigned	 oldest;	/* oldest connect still under way */
	unsigned	 seen;		/* resolved at the last rate sample */
	uint64_t	 seen_ns;
	double		 through;	/* connects/s resolved, recent */
	int		 pumping;	/* in connect_pump: no recursion */
	int		 active;	/* the phase is under way */
	struct event	*ev_pace;
	struct event	*ev_watch;
	struct connect_stats st;
};

uint64_t	 connect_failed_total(const struct connect_stats *);
/* Connections a stop (SIGINT) left unresolved: neither up nor failed. */
uint64_t	 connect_not_tried(const struct connect_stats *);
const char	*connect_fail_name(enum conn_fail);	/* "timed_out" */
const char	*connect_fail_text(enum conn_fail);	/* "timed out" */
void		 connect_stats_init(struct connect_stats *);
void		 connect_stats_add(struct connect_stats *,
		    const struct connect_stats *);
void		 reconnect_stats_add(struct reconnect_stats *,
		    const struct reconnect_stats *);

/* Main thread, before any worker: pick the source addresses, check the
 * descriptor limit and the local port range. Returns -1 after saying why
 * the run cannot start. */
int	connect_prepare(struct run *);

/* A non-blocking TCP socket for connection index, bound to its source
 * address; -1 with *err set. */
int	connect_socket(const struct run *, unsigned index, int *err);

/* Worker thread: open every session's connection, return when all are
 * resolved (or a stop was asked for). */
void	connect_phase_run(struct worker *);
/* A stop was asked for during the phase. */
void	connect_phase_stop(struct worker *);
/* From the session: its connection is up, or failed (errno err, or 0). */
void	connect_phase_up(struct session *, uint64_t now);
void	connect_phase_failed(struct session *, enum conn_fail, int err,
	    const char *detail, uint64_t now);
/* The reason for a connect error, or a failure of kind during the phase. */
enum conn_fail connect_fail_of(int err);

/* What the phase's end asks of run.c, the room above, which passes them
 * in: was a stop asked for, and schedule the first step's start. */
struct connect_hooks {
	int	(*stopped)(void);
	int	(*schedule)(struct run *);
};

/* Main thread: wait for every worker's phase, with a progress line.
 * Returns 0 to go on with the load, -1 when it must not start. */
int	connect_phase_wait(struct run *, const struct connect_hooks *);

#endif
