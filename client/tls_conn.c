/*
 * tls_conn.c: the TLS half of one echoload connection. session.c drives
 * the state machine and owns the socket and its events; this file owns
 * the SSL object on it and every OpenSSL call a connection makes, and
 * answers as the socket calls would (see doc/ARCHITECTURE.md, "one rule
 * for both programs"), so that the session's code does not branch on
 * OpenSSL's error kinds. The context and the worker's session cache are
 * client/tls.c's.
 */
#include <sys/types.h>

#include <errno.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "hist.h"
#include "tls.h"
#include "tls_conn.h"

int
tls_conn_open(struct tls_conn *c, struct tls_worker *tw,
    const struct opts *o, int fd, char *err, size_t errlen)
{
	c->dead = c->want_write = 0;
	c->error = SSL_ERROR_SSL;
	c->sys_errno = 0;
	if ((c->ssl = tls_ssl_new(tw, o, fd, err, errlen)) == NULL) {
		tw->failed++;
		return -1;
	}
	return 0;
}

/* A failed call: remember what failed for tls_conn_why. A failed socket
 * under TLS (no error queued) is a reset as on plain TCP: errno tells. */
static ssize_t
failed(struct tls_conn *c, int e)
{
	c->dead = 1;
	c->error = e;
	if (e == SSL_ERROR_SYSCALL && errno != 0 && ERR_peek_error() == 0) {
		c->sys_errno = errno;
		return -1;
	}
	c->sys_errno = errno;
	errno = EPROTO;
	return -1;
}

enum tls_step
tls_conn_handshake(struct tls_conn *c, struct tls_worker *tw)
{
	int	r, e;

	errno = 0;
	if ((r = SSL_connect(c->ssl)) == 1)
		return TLS_STEP_DONE;
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ)
		return TLS_STEP_WANT_READ;
	if (e == SSL_ERROR_WANT_WRITE)
		return TLS_STEP_WANT_WRITE;
	c->dead = 1;
	c->error = e;
	c->sys_errno = errno;
	tw->failed++;
	return TLS_STEP_FAILED;
}

void
tls_conn_handshaken(struct tls_conn *c, struct tls_worker *tw, int counted,
    uint64_t us)
{
	if (counted) {
		if (SSL_session_reused(c->ssl)) {
			tw->resumed++;
			hist_record(&tw->hs_resumed, us);
		} else {
			tw->full++;
			hist_record(&tw->hs_full, us);
		}
	}
	if (tw->version == NULL) {
		tw->version = SSL_get_version(c->ssl);
		tw->cipher = SSL_get_cipher_name(c->ssl);
	}
}

/* SSL_write until len is out or the socket is full: as with send(2), a
 * short count means full. With partial writes, SSL_write returns after
 * each record; a retry after WANT_WRITE starts at the same stream offset
 * with at least as many bytes, as OpenSSL requires. */
ssize_t
tls_conn_send(struct tls_conn *c, const void *buf, size_t len)
{
	const unsigned char	*p = buf;
	size_t			 done = 0, k;
	int			 r, e;

	while (done < len) {
		errno = 0;
		r = SSL_write_ex(c->ssl, p + done, len - done, &k);
		if (r == 1) {
			done += k;
			continue;
		}
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
			if (done > 0)
				return (ssize_t)done;
			errno = EAGAIN;
			return -1;
		}
		if (e == SSL_ERROR_ZERO_RETURN) {
			errno = EPIPE;
			return -1;
		}
		return failed(c, e);
	}
	return (ssize_t)done;
}

/* One record at most: SSL_read hands over a record at a time. */
ssize_t
tls_conn_recv(struct tls_conn *c, void *buf, size_t len)
{
	size_t	n;
	int	r, e;

	errno = 0;
	c->want_write = 0;
	if ((r = SSL_read_ex(c->ssl, buf, len, &n)) == 1)
		return (ssize_t)n;
	e = SSL_get_error(c->ssl, r);
	switch (e) {
	case SSL_ERROR_WANT_WRITE:
		c->want_write = 1;
		/* FALLTHROUGH */
	case SSL_ERROR_WANT_READ:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		return failed(c, e);
	}
}

int
tls_conn_pending(const struct tls_conn *c)
{
	return SSL_has_pending(c->ssl);
}

void
tls_conn_why(struct tls_conn *c, char *buf, size_t len)
{
	errno = c->sys_errno;
	tls_error_text(c->ssl, c->error, buf, len);
}

void
tls_conn_shutdown(struct tls_conn *c)
{
	SSL_shutdown(c->ssl);
	ERR_clear_error();
}

void
tls_conn_close(struct tls_conn *c, int healthy)
{
	if (healthy && !c->dead &&
	    (SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN) == 0) {
		SSL_shutdown(c->ssl);
		ERR_clear_error();
	}
	SSL_free(c->ssl);
	c->ssl = NULL;
	c->dead = 0;
}
