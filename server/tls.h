/*
 * tls.h: TLS listeners (OpenSSL 3). The main thread builds one SSL_CTX per
 * configuration; workers run TLS connections on their own bases.
 */
#ifndef ECHOD_TLS_H
#define ECHOD_TLS_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct listener;
struct server;
struct worker;

/*
 * Check and load [tls] when any listener uses it: files readable, PEM valid,
 * key matching the certificate. Errors are "FILE:LINE: key: message". Called
 * for -t as well as at startup and reload. Returns an SSL_CTX (as void *) to
 * share among the TLS listeners, NULL with *err empty when no listener uses
 * TLS, or NULL with err set on error.
 */
void	*tls_ctx_load(const struct config *, char *err, size_t errlen);
void	 tls_ctx_ref(void *);
void	 tls_ctx_unref(void *);
/*
 * Reload: give a new SSL_CTX the session ticket keys of the old one, so
 * that tickets issued before the reload still resume. Returns 0, or -1 when
 * either context has tickets off (nothing copied). Main thread, before the
 * new context serves.
 */
int	 tls_ctx_inherit_tickets(void *newctx, void *oldctx);

/* Worker thread: serve an accepted socket of a TLS listener (peer and via
 * as in conn_start()). */
void	 tls_conn_start(struct worker *, int fd, struct listener *,
	    const struct sockaddr *peer, socklen_t, const struct sockaddr *via);
/* Worker thread: QUIT (finish on their own) and TERM (close now). */
void	 tls_drain_all(struct worker *);
void	 tls_close_all(struct worker *);
/* Per-worker state (list of TLS connections), made and freed with it. */
void	 tls_worker_init(struct worker *);
void	 tls_worker_free(struct worker *);

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

void	tls_stats_sum(struct server *, struct tls_stats *);
/* One line: "handshakes N, failed N, ..., TLSv1.3 N, CIPHER N". */
int	tls_stats_format(const struct tls_stats *, char *buf, size_t len);

#endif
