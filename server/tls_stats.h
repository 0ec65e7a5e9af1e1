/*
 * tls_stats.h: TLS counters. Each worker has its own set (tls_counters),
 * written only by that worker's connections (tls_conn.c); the main thread
 * adds them up for the admin endpoint and the exit summary, together with
 * the sets of workers already gone.
 */
#ifndef ECHOD_TLS_STATS_H
#define ECHOD_TLS_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "stats.h"

struct tls_counters;

/* A worker's set; its handshake counts are in ws (the worker's stats). */
struct tls_counters *tls_counters_new(const struct worker_stats *ws);
/* At the worker's end: its counts move to the totals of workers gone. */
void	tls_counters_free(struct tls_counters *);
/* Worker thread, on its own set. */
void	tls_counters_opened(struct tls_counters *);
void	tls_counters_timed_out(struct tls_counters *);
/* Established with protocol version v (SSL_version) and cipher name (a
 * static OpenSSL string); fills the indexes to give tls_counters_closed. */
void	tls_counters_established(struct tls_counters *, int v,
	    const char *cipher, int8_t *version_idx, int8_t *cipher_idx);
void	tls_counters_closed(struct tls_counters *, int established,
	    int8_t version_idx, int8_t cipher_idx);

/*
 * TLS statistics, summed over the workers (and over workers already gone).
 * "open" counts connections established now, "total" every handshake done
 * since start. Names are static strings from OpenSSL ("TLSv1.3",
 * "TLS_AES_256_GCM_SHA384"). Main thread (admin endpoint, exit summary).
 */
#define TLS_STATS_VERSIONS	3	/* TLSv1.2, TLSv1.3, other */
#define TLS_STATS_CIPHERS	16

struct tls_stats_item {
	const char	*name;
	uint64_t	 open;
	uint64_t	 total;
};

struct tls_stats {
	uint64_t		handshakes;	/* completed */
	uint64_t		handshake_failed; /* incl. timed out */
	uint64_t		handshake_timeouts;
	uint64_t		resumed;	/* of the completed ones */
	uint64_t		conns_open;	/* incl. in handshake */
	int			nversions;
	struct tls_stats_item	versions[TLS_STATS_VERSIONS];
	int			nciphers;	/* more are not listed */
	struct tls_stats_item	ciphers[TLS_STATS_CIPHERS];
};

void	tls_stats_sum(struct tls_stats *);
/* One line: "handshakes N, failed N, ..., TLSv1.3 N, CIPHER N". */
int	tls_stats_format(const struct tls_stats *, char *buf, size_t len);

#endif
