/*
 * tls_conn.h: the TLS half of one echoload connection (the TLS twin of a
 * session's plain socket calls): the handshake, SSL_read and SSL_write
 * with recv(2) and send(2) semantics, the handshake figures, and
 * close_notify. It knows a socket and its worker's TLS state, not the
 * session around it.
 */
#ifndef ECHOLOAD_TLS_CONN_H
#define ECHOLOAD_TLS_CONN_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

struct opts;
struct ssl_st;
struct tls_worker;

struct tls_conn {
	struct ssl_st	*ssl;		/* NULL: plain TCP */
	int		 dead;		/* fatal error: no close_notify */
	int		 error;		/* SSL_get_error of the failed call */
	int		 sys_errno;	/* errno when it failed */
	int		 want_write;	/* a read needs the socket writable */
};

enum tls_step {
	TLS_STEP_DONE,
	TLS_STEP_WANT_READ,
	TLS_STEP_WANT_WRITE,
	TLS_STEP_FAILED,	/* tls_conn_why says why */
};

/* An SSL on connected fd, resuming the worker's session when it has one:
 * 0, or -1 with err set. A failure here or in the handshake counts in the
 * worker's failed handshakes. */
int	tls_conn_open(struct tls_conn *, struct tls_worker *,
	    const struct opts *, int fd, char *err, size_t errlen);
/* One step of the handshake, as far as the socket lets it go now. */
enum tls_step tls_conn_handshake(struct tls_conn *, struct tls_worker *);
/* The handshake is done: count it into the worker's figures when counted,
 * with its time in microseconds. */
void	tls_conn_handshaken(struct tls_conn *, struct tls_worker *,
	    int counted, uint64_t us);
/* send(2) and recv(2) over TLS: -1 with EAGAIN when the socket is full or
 * empty (want_write set when a read needs it writable), EPROTO on a TLS
 * error (tls_conn_why), the socket's errno when it failed under TLS; recv
 * returns 0 at the peer's close_notify. */
ssize_t	tls_conn_send(struct tls_conn *, const void *, size_t);
ssize_t	tls_conn_recv(struct tls_conn *, void *, size_t);
/* Bytes OpenSSL read from the socket that no recv has returned yet. */
int	tls_conn_pending(const struct tls_conn *);
/* Why the last failed call failed, in words; empties the thread's error
 * queue, as every failed TLS call must before the next one. */
void	tls_conn_why(struct tls_conn *, char *buf, size_t len);
/* close_notify now, the connection staying open (connect mode). */
void	tls_conn_shutdown(struct tls_conn *);
/* The end: close_notify first when the stream is healthy, then the SSL
 * goes. The socket is the caller's. */
void	tls_conn_close(struct tls_conn *, int healthy);

#endif
