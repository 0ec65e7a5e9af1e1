/*
 * stats.h: counters. Each counter has one writer thread (a worker, or the
 * main thread), so updates are plain relaxed load + store, never a locked
 * read-modify-write on the hot path; readers on other threads (admin,
 * summary) see a recent value through relaxed loads.
 */
#ifndef ECHOD_STATS_H
#define ECHOD_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "proxy.h"

typedef _Atomic uint64_t counter_t;

static inline void
counter_add(counter_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c,
	    memory_order_relaxed) + n, memory_order_relaxed);
}

static inline void
counter_sub(counter_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c,
	    memory_order_relaxed) - n, memory_order_relaxed);
}

static inline uint64_t
counter_get(counter_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* Kept by each worker for the connections it owns. */
struct worker_stats {
	counter_t	conns_open;
	counter_t	conns_total;
	counter_t	bytes_in;
	counter_t	bytes_out;
	counter_t	timed_out;
	counter_t	errors;		/* closed on a socket error */
	counter_t	backpressure;	/* times reading was paused */
	counter_t	tls_handshakes;
	counter_t	tls_handshake_failed;
	counter_t	tls_resumed;
	/* PROXY headers read, by version; LOCAL/UNKNOWN ones also apart. */
	counter_t	proxy_v1;
	counter_t	proxy_v2;
	counter_t	proxy_local;
	counter_t	proxy_rejected[PROXY_ERR_COUNT];
};

/* Kept by the thread that accepts (main, or a worker with reuseport):
 * several threads may write, so these use atomic adds (once per connection,
 * never per byte). */
struct listener_stats {
	_Atomic uint64_t accepted;
	_Atomic uint64_t refused;	/* over max_connections */
	_Atomic uint64_t accept_errors;	/* EMFILE and friends */
	_Atomic uint64_t closed;
	_Atomic uint64_t bytes_in;	/* added at close */
	_Atomic uint64_t bytes_out;
};

struct stats_total {
	uint64_t	conns_open;
	uint64_t	conns_total;
	uint64_t	bytes_in;
	uint64_t	bytes_out;
	uint64_t	timed_out;
	uint64_t	errors;
	uint64_t	refused;
	uint64_t	accept_errors;
	uint64_t	tls_handshakes;
	uint64_t	tls_handshake_failed;
	uint64_t	tls_resumed;
	uint64_t	proxy_v1;
	uint64_t	proxy_v2;
	uint64_t	proxy_local;
	uint64_t	proxy_rejected[PROXY_ERR_COUNT];
};

struct server;
void	stats_sum(struct server *, struct stats_total *);
void	stats_print_summary(struct server *);

#endif
