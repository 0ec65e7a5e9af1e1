/*
 * tls.h: TLS listeners (OpenSSL 3). The main thread builds one SSL_CTX per
 * configuration; workers run TLS connections on their own bases.
 */
#ifndef ECHOD_TLS_H
#define ECHOD_TLS_H

#include <sys/socket.h>
#include <stddef.h>

struct config;
struct listener;
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

/* Worker thread: serve an accepted socket of a TLS listener. */
void	 tls_conn_start(struct worker *, int fd, struct listener *,
	    const struct sockaddr *, socklen_t);
/* Worker thread: QUIT (finish on their own) and TERM (close now). */
void	 tls_drain_all(struct worker *);
void	 tls_close_all(struct worker *);
/* Per-worker state (list of TLS connections), made and freed with it. */
void	 tls_worker_init(struct worker *);
void	 tls_worker_free(struct worker *);

#endif
