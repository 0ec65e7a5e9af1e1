/*
 * tls.h: TLS contexts (OpenSSL 3). The main thread builds one SSL_CTX per
 * configuration; workers run TLS connections with it (tls_conn.h).
 */
#ifndef ECHOD_TLS_H
#define ECHOD_TLS_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

struct config;

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

/* The last OpenSSL error as text, and the thread's error queue emptied. */
const char *tls_error_text(char *buf, size_t len);
/* The handshake_timeout the context was loaded with. */
uint64_t tls_ctx_handshake_timeout_us(void *ctx);

#endif
