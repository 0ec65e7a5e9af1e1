/*
 * tls.c: the TLS client setup behind --tls. Each worker has a context of
 * its own, so nothing here is shared between threads: no lock on the
 * session cache, no reference counts bouncing between cores. Resumption
 * keeps the newest resumable session per worker; TLS 1.3 tickets arrive
 * after the handshake, while the connection reads, so sessions are taken
 * from the new-session callback and never from the handshake's end.
 */
#include <arpa/inet.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls.h"
#include "util.h"

/* The name the server's certificate must carry, and whether it is an IP
 * address (no SNI then: RFC 6066 allows host names only). */
static const char *
peer_name(const struct opts *o, int *is_ip)
{
	const char	*name = o->sni != NULL ? o->sni : o->spec.host;
	unsigned char	 buf[sizeof(struct in6_addr)];

	*is_ip = inet_pton(AF_INET, name, buf) == 1 ||
	    inet_pton(AF_INET6, name, buf) == 1;
	return name;
}

/* The earliest error in the queue says what went wrong; later ones say
 * where it surfaced. The queue is cleared. */
static void
queue_text(char *buf, size_t len, const char *fallback)
{
	unsigned long	 e = ERR_peek_error();
	const char	*why = e != 0 ? ERR_reason_error_string(e) : NULL;

	if (why == NULL && e != 0 && ERR_GET_LIB(e) == ERR_LIB_SYS)
		why = strerror(ERR_GET_REASON(e));
	snprintf(buf, len, "%s", why != NULL ? why : fallback);
	ERR_clear_error();
}

void
tls_error_text(SSL *ssl, int ssl_error, char *buf, size_t len)
{
	long	vr = SSL_get_verify_result(ssl);

	if (vr != X509_V_OK) {
		snprintf(buf, len, "certificate verify failed: %s",
		    X509_verify_cert_error_string(vr));
		ERR_clear_error();
		return;
	}
	if (ssl_error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
		snprintf(buf, len, "%s", errno != 0 ? strerror(errno) :
		    "connection closed by the server");
		return;
	}
	queue_text(buf, len, "TLS error");
}

/* Encrypted keys would prompt on the terminal mid-run: refuse instead. */
static int
no_passphrase(char *buf, int size, int rw, void *u)
{
	(void)buf;
	(void)size;
	(void)rw;
	(void)u;
	return 0;
}

static int
on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_worker	*tw = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));

	if (tw == NULL || !SSL_SESSION_is_resumable(sess))
		return 0;
	if (tw->session != NULL)
		SSL_SESSION_free(tw->session);
	tw->session = sess;
	return 1;	/* the reference is ours now */
}

static int
ctx_verify(SSL_CTX *ctx, const struct opts *o, char *err, size_t len)
{
	X509_VERIFY_PARAM	*vp = SSL_CTX_get0_param(ctx);
	const char		*name;
	int			 is_ip, ok;
	char			 why[256];

	if (o->insecure) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		return 0;
	}
	if (o->ca_path != NULL)
		ok = SSL_CTX_load_verify_locations(ctx, o->ca_path, NULL);
	else
		ok = SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		queue_text(why, sizeof why, "cannot load");
		snprintf(err, len, "--ca %s: %s", o->ca_path != NULL ?
		    o->ca_path : "(system store)", why);
		return -1;
	}
	name = peer_name(o, &is_ip);
	ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, name) :
	    X509_VERIFY_PARAM_set1_host(vp, name, 0);
	if (ok != 1) {
		queue_text(why, sizeof why, "not a usable name");
		snprintf(err, len, "server name %s: %s", name, why);
		return -1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return 0;
}

static int
ctx_client_cert(SSL_CTX *ctx, const struct opts *o, char *err, size_t len)
{
	const char	*key = o->key_path != NULL ? o->key_path : o->cert_path;
	char		 why[256];

	if (o->cert_path == NULL)
		return 0;
	if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_path) != 1) {
		queue_text(why, sizeof why, "cannot load");
		snprintf(err, len, "--cert %s: %s", o->cert_path, why);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		queue_text(why, sizeof why, "cannot load");
		snprintf(err, len, "%s %s: %s", o->key_path != NULL ? "--key" :
		    "--cert (no --key)", key, why);
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		queue_text(why, sizeof why, "does not match");
		snprintf(err, len, "--key %s: does not belong to --cert %s: %s",
		    key, o->cert_path, why);
		return -1;
	}
	return 0;
}

SSL_CTX *
tls_ctx_new(const struct opts *o, char *err, size_t len)
{
	SSL_CTX	*ctx;
	char	 why[256];

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		queue_text(why, sizeof why, "out of memory");
		snprintf(err, len, "cannot make a TLS context: %s", why);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, o->tls_version == 13 ?
	    TLS1_3_VERSION : TLS1_2_VERSION);
	if (o->tls_version != 0)
		SSL_CTX_set_max_proto_version(ctx, o->tls_version == 12 ?
		    TLS1_2_VERSION : TLS1_3_VERSION);
	/* Writes behave like write(2): partial, from wherever the stream's
	 * next byte lies in the pattern buffer. A server's EOF without
	 * close_notify ends the stream like one (the load checks the bytes
	 * itself: a short reply is still an error). */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF |
	    SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	if (o->no_resume)
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	else {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
		    SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ctx, on_new_session);
	}
	if (ctx_verify(ctx, o, err, len) != 0 ||
	    ctx_client_cert(ctx, o, err, len) != 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

struct tls_worker *
tls_worker_new(SSL_CTX *ctx)
{
	struct tls_worker	*tw = xcalloc(1, sizeof *tw);

	tw->ctx = ctx;
	hist_init(&tw->hs_full);
	hist_init(&tw->hs_resumed);
	SSL_CTX_set_app_data(ctx, tw);
	return tw;
}

void
tls_worker_free(struct tls_worker *tw)
{
	if (tw == NULL)
		return;
	if (tw->session != NULL)
		SSL_SESSION_free(tw->session);
	SSL_CTX_free(tw->ctx);
	free(tw);
}

static SSL *
ssl_new(SSL_CTX *ctx, const struct opts *o, int fd, char *err, size_t len)
{
	const char	*name;
	SSL		*ssl;
	char		 why[256];
	int		 is_ip;

	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1) {
		queue_text(why, sizeof why, "out of memory");
		snprintf(err, len, "cannot start TLS: %s", why);
		SSL_free(ssl);
		return NULL;
	}
	name = peer_name(o, &is_ip);
	if (!is_ip)
		SSL_set_tlsext_host_name(ssl, name);
	SSL_set_connect_state(ssl);
	return ssl;
}

/*
 * Each connection resumes from a copy of the worker's session: when a
 * resumed TLS 1.3 connection gets its new ticket, OpenSSL marks the
 * session it started from unresumable, and connections sharing that one
 * object would all fall back to full handshakes.
 */
SSL *
tls_ssl_new(struct tls_worker *tw, const struct opts *o, int fd, char *err,
    size_t len)
{
	SSL		*ssl = ssl_new(tw->ctx, o, fd, err, len);
	SSL_SESSION	*copy;

	if (ssl == NULL || tw->session == NULL)
		return ssl;
	if ((copy = SSL_SESSION_dup(tw->session)) == NULL) {
		ERR_clear_error();
		return ssl;
	}
	SSL_set_session(ssl, copy);
	SSL_SESSION_free(copy);
	return ssl;
}

static int
remaining_ms(uint64_t deadline)
{
	uint64_t	now = now_us();

	return now >= deadline ? 0 : (int)((deadline - now + 999) / 1000);
}

int
tls_probe(SSL_CTX *ctx, const struct opts *o, int fd, int timeout_ms,
    char *err, size_t len)
{
	uint64_t	 deadline = now_us() + (uint64_t)timeout_ms * 1000;
	struct pollfd	 pfd;
	SSL		*ssl;
	char		 why[256];
	int		 r, e;

	if ((ssl = ssl_new(ctx, o, fd, err, len)) == NULL)
		return -1;
	for (;;) {
		ERR_clear_error();
		errno = 0;
		if ((r = SSL_connect(ssl)) == 1)
			break;
		e = SSL_get_error(ssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			tls_error_text(ssl, e, why, sizeof why);
			snprintf(err, len, "TLS handshake: %s", why);
			SSL_free(ssl);
			return -1;
		}
		pfd.fd = fd;
		pfd.events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		if (poll(&pfd, 1, remaining_ms(deadline)) == 0) {
			snprintf(err, len, "TLS handshake: no answer within "
			    "%dms", timeout_ms);
			SSL_free(ssl);
			return -1;
		}
	}
	SSL_shutdown(ssl);
	ERR_clear_error();
	SSL_free(ssl);
	return 0;
}

void
tls_totals_add(struct tls_totals *t, const struct tls_worker *tw)
{
	if (t->version == NULL && tw->version != NULL) {
		t->version = tw->version;
		t->cipher = tw->cipher;
	}
	t->full += tw->full;
	t->resumed += tw->resumed;
	t->failed += tw->failed;
	hist_merge(&t->hs_full, &tw->hs_full);
	hist_merge(&t->hs_resumed, &tw->hs_resumed);
	hist_merge(&t->hs_all, &tw->hs_full);
	hist_merge(&t->hs_all, &tw->hs_resumed);
}
