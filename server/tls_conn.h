/*
 * tls_conn.h: TLS connections on a worker thread (the TLS twin of conn.h),
 * with the SSL_CTX their listener holds (tls.h).
 */
#ifndef ECHOD_TLS_CONN_H
#define ECHOD_TLS_CONN_H

#include <sys/socket.h>

struct listener;
struct worker;

/* Serve an accepted socket of a TLS listener (peer and via as in
 * conn_start()); takes over the listener reference. 0, or -1 when TLS
 * could not start (the socket is closed). */
int	tls_conn_start(struct worker *, int fd, struct listener *,
	    const struct sockaddr *peer, socklen_t, const struct sockaddr *via);
/* TERM, or the end of a graceful stop: close every TLS connection now. */
void	tls_conn_close_all(struct worker *);
/* Per-worker state (its TLS connections and counters), made and freed
 * with the worker. */
void	tls_conn_worker_init(struct worker *);
void	tls_conn_worker_free(struct worker *);

#endif
