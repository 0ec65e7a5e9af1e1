/*
 * tls.h: echoload's TLS client side: one SSL_CTX per worker with the
 * run's verification, client certificate and version settings, the
 * worker's session cache (the newest resumable session the server gave
 * it), handshake figures, and the one-off handshake that checks a target
 * before the run.
 */
#ifndef ECHOLOAD_TLS_H
#define ECHOLOAD_TLS_H

#include <openssl/ssl.h>

#include <stddef.h>
#include <stdint.h>

#include "echoload.h"
#include "hist.h"

/* One worker's TLS state: only its own thread touches it. */
struct tls_worker {
	SSL_CTX		*ctx;
	SSL_SESSION	*session;	/* to resume with; NULL: none yet */
	const char	*version;	/* of the first handshake done */
	const char	*cipher;
	uint64_t	 full;		/* handshakes done, by kind */
	uint64_t	 resumed;
	uint64_t	 failed;
	struct hist	 hs_full;	/* handshake latency, microseconds */
	struct hist	 hs_resumed;
};

/* A run's TLS figures, the workers' summed. */
struct tls_totals {
	const char	*version;	/* NULL when no handshake succeeded */
	const char	*cipher;
	uint64_t	 full;
	uint64_t	 resumed;
	uint64_t	 failed;
	struct hist	 hs_all;
	struct hist	 hs_full;
	struct hist	 hs_resumed;
};

/* A context for the run's options, or NULL with err set (one line). */
SSL_CTX	*tls_ctx_new(const struct opts *, char *err, size_t errlen);

/* The worker's state around ctx, which it then owns. */
struct tls_worker *tls_worker_new(SSL_CTX *);
void	 tls_worker_free(struct tls_worker *);

/* A client SSL on fd, resuming the worker's session when it has one, or
 * NULL when OpenSSL could not make one (err set). */
SSL	*tls_ssl_new(struct tls_worker *, const struct opts *, int fd,
	    char *err, size_t errlen);

/* Why the last TLS call on ssl failed, in words, from the verification
 * result and this thread's OpenSSL error queue, which is then cleared. */
void	 tls_error_text(SSL *, int ssl_error, char *buf, size_t len);

/* A handshake on a connected blocking-capable socket within timeout_ms:
 * 0, or -1 with err set. Checks the target before the load starts. */
int	 tls_probe(SSL_CTX *, const struct opts *, int fd, int timeout_ms,
	    char *err, size_t errlen);

void	 tls_totals_add(struct tls_totals *, const struct tls_worker *);

#endif
