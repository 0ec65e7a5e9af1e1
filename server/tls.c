/*
 * tls.c: TLS contexts on OpenSSL 3, on the main thread. It builds the
 * SSL_CTX of a configuration from [tls] (checked at load: files readable,
 * PEM valid, key matching the certificate), shared by every worker so that
 * session tickets issued by one resume on any, and carries the ticket keys
 * over a reload. The connections that use it are tls_conn.c's, the
 * counters tls_stats.c's (doc/ARCHITECTURE.md).
 */
#include <sys/types.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "tls.h"

/* Where a context keeps its handshake_timeout, in ms. */
static int		 timeout_idx = -1;
static pthread_once_t	 once = PTHREAD_ONCE_INIT;

static void
tls_once(void)
{
	timeout_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

const char *
tls_error_text(char *buf, size_t len)
{
	unsigned long	 e = ERR_peek_last_error();
	const char	*reason;

	reason = e != 0 ? ERR_reason_error_string(e) : NULL;
	if (reason != NULL)
		snprintf(buf, len, "%s", reason);
	else if (e != 0)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "unknown error");
	ERR_clear_error();
	return buf;
}

static int
load_fail(const struct config *conf, int line, const char *key, char *err,
    size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int
load_fail(const struct config *conf, int line, const char *key, char *err,
    size_t errlen, const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (conf->path != NULL && line > 0)
		snprintf(err, errlen, "%s:%d: %s: %s", conf->path, line, key,
		    msg);
	else
		snprintf(err, errlen, "tls: %s: %s", key, msg);
	return -1;
}

/* An unreadable file gets the system's reason rather than OpenSSL's. */
static int
check_readable(const struct config *conf, int line, const char *key,
    const char *path, char *err, size_t errlen)
{
	int	fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return load_fail(conf, line, key, err, errlen,
		    "cannot read %s: %s", path, strerror(errno));
	close(fd);
	return 0;
}

static int
load_identity(SSL_CTX *ctx, const struct config *conf, char *err,
    size_t errlen)
{
	const struct tls_conf	*tc = &conf->tls;
	char			 why[256];

	if (check_readable(conf, tc->certificate_line, "certificate",
	    tc->certificate, err, errlen) != 0)
		return -1;
	if (SSL_CTX_use_certificate_chain_file(ctx, tc->certificate) != 1)
		return load_fail(conf, tc->certificate_line, "certificate",
		    err, errlen, "cannot load a PEM certificate chain from "
		    "%s: %s", tc->certificate, tls_error_text(why,
		    sizeof(why)));
	if (check_readable(conf, tc->key_line, "key", tc->key, err,
	    errlen) != 0)
		return -1;
	if (SSL_CTX_use_PrivateKey_file(ctx, tc->key, SSL_FILETYPE_PEM) != 1) {
		unsigned long e = ERR_peek_last_error();

		if (ERR_GET_LIB(e) == ERR_LIB_X509 &&
		    ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
			ERR_clear_error();
			return load_fail(conf, tc->key_line, "key", err,
			    errlen, "%s does not match the certificate in %s",
			    tc->key, tc->certificate);
		}
		return load_fail(conf, tc->key_line, "key", err, errlen,
		    "cannot load a PEM private key from %s: %s", tc->key,
		    tls_error_text(why, sizeof(why)));
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		return load_fail(conf, tc->key_line, "key", err, errlen,
		    "%s does not match the certificate in %s", tc->key,
		    tc->certificate);
	}
	return 0;
}

/* ca: clients must present a certificate that it signed (mutual TLS). */
static int
load_ca(SSL_CTX *ctx, const struct config *conf, char *err, size_t errlen)
{
	const struct tls_conf	*tc = &conf->tls;
	STACK_OF(X509_NAME)	*names;
	char			 why[256];

	if (check_readable(conf, tc->ca_line, "ca", tc->ca, err, errlen) != 0)
		return -1;
	if (SSL_CTX_load_verify_locations(ctx, tc->ca, NULL) != 1)
		return load_fail(conf, tc->ca_line, "ca", err, errlen,
		    "cannot load PEM CA certificates from %s: %s", tc->ca,
		    tls_error_text(why, sizeof(why)));
	if ((names = SSL_load_client_CA_file(tc->ca)) == NULL) {
		ERR_clear_error();
		return load_fail(conf, tc->ca_line, "ca", err, errlen,
		    "no PEM certificate in %s", tc->ca);
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return 0;
}

static int
load_params(SSL_CTX *ctx, const struct config *conf, char *err,
    size_t errlen)
{
	const struct tls_conf	*tc = &conf->tls;
	static const unsigned char sid_ctx[] = "echod";

	if (!SSL_CTX_set_min_proto_version(ctx,
	    tc->min_version == TLSV_1_3 ? TLS1_3_VERSION : TLS1_2_VERSION))
		return load_fail(conf, 0, "min_version", err, errlen,
		    "not supported by this OpenSSL");
	if (tc->ciphers != NULL && SSL_CTX_set_cipher_list(ctx,
	    tc->ciphers) != 1) {
		ERR_clear_error();
		return load_fail(conf, tc->ciphers_line, "ciphers", err,
		    errlen, "no usable TLS 1.2 cipher in \"%s\"",
		    tc->ciphers);
	}
	if (tc->ciphersuites != NULL && SSL_CTX_set_ciphersuites(ctx,
	    tc->ciphersuites) != 1) {
		ERR_clear_error();
		return load_fail(conf, tc->ciphersuites_line, "ciphersuites",
		    err, errlen, "no usable TLS 1.3 cipher suite in \"%s\"",
		    tc->ciphersuites);
	}
	/*
	 * Renegotiation off; a peer that closes without close_notify ends its
	 * stream (SSL_ERROR_ZERO_RETURN, as before OpenSSL 3) instead of
	 * failing: echo has no framing that a truncation could fool.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF |
	    SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_PRIORITIZE_CHACHA);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* One read(2) takes whatever records have arrived. */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	/*
	 * Resumption is by stateless tickets, whose keys live in this one
	 * SSL_CTX that all workers share; no server-side session cache (a
	 * lock shared by every worker, and memory per session).
	 */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (!tc->session_tickets) {
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx, 0);
	}
	return 0;
}

static int
any_tls_listener(const struct config *conf)
{
	const struct listen_conf	*l;

	for (l = conf->listeners; l != NULL; l = l->next)
		if (l->tls)
			return 1;
	return 0;
}

void *
tls_ctx_load(const struct config *conf, char *err, size_t errlen)
{
	SSL_CTX		*ctx;
	uint64_t	 ms;
	char		 why[256];

	err[0] = '\0';
	if (!any_tls_listener(conf))
		return NULL;
	pthread_once(&once, tls_once);
	if (conf->tls.certificate == NULL || conf->tls.key == NULL) {
		snprintf(err, errlen, "%s: [tls] needs a certificate and a key",
		    conf->path != NULL ? conf->path : "echod");
		return NULL;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(err, errlen, "tls: cannot create a context: %s",
		    tls_error_text(why, sizeof(why)));
		return NULL;
	}
	if (load_params(ctx, conf, err, errlen) != 0 ||
	    load_identity(ctx, conf, err, errlen) != 0 ||
	    (conf->tls.ca != NULL && load_ca(ctx, conf, err, errlen) != 0)) {
		SSL_CTX_free(ctx);
		ERR_clear_error();
		return NULL;
	}
	ms = (conf->tls.handshake_timeout_us + 999) / 1000;
	if (ms == 0)
		ms = 1;
	SSL_CTX_set_ex_data(ctx, timeout_idx, (void *)(uintptr_t)ms);
	return ctx;
}

void
tls_ctx_ref(void *ctx)
{
	if (ctx != NULL)
		SSL_CTX_up_ref(ctx);
}

void
tls_ctx_unref(void *ctx)
{
	SSL_CTX_free(ctx);
}

int
tls_ctx_inherit_tickets(void *newctx, void *oldctx)
{
	unsigned char	keys[80];

	if (newctx == NULL || oldctx == NULL ||
	    (SSL_CTX_get_options(newctx) & SSL_OP_NO_TICKET) ||
	    (SSL_CTX_get_options(oldctx) & SSL_OP_NO_TICKET))
		return -1;
	if (SSL_CTX_get_tlsext_ticket_keys((SSL_CTX *)oldctx, keys,
	    sizeof(keys)) != 1 ||
	    SSL_CTX_set_tlsext_ticket_keys((SSL_CTX *)newctx, keys,
	    sizeof(keys)) != 1) {
		ERR_clear_error();
		OPENSSL_cleanse(keys, sizeof(keys));
		return -1;
	}
	OPENSSL_cleanse(keys, sizeof(keys));
	return 0;
}

uint64_t
tls_ctx_handshake_timeout_us(void *ctx)
{
	return (uint64_t)(uintptr_t)SSL_CTX_get_ex_data(ctx, timeout_idx) *
	    1000;
}
