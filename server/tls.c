/*
 * tls.c: TLS listeners on OpenSSL 3. It owns the SSL_CTX built from [tls]
 * (checked at load, shared by every worker so that session tickets issued
 * by one resume on any), the TLS connections on each worker, and the TLS
 * counters.
 *
 * A TLS connection runs on one libevent event over its socket, like a plain
 * one, with OpenSSL reading and writing the socket itself (no
 * bufferevent_openssl): a readable socket costs one SSL_read into the
 * worker's shared buffer and one SSL_write of the same bytes, and only what
 * the socket does not take is kept in the connection's own evbuffer. With
 * SSL_MODE_RELEASE_BUFFERS, OpenSSL's record buffers are freed whenever
 * they are empty, so an idle connection holds its SSL object and little
 * else.
 *
 * OpenSSL rules this follows: a write that returned WANT_READ/WANT_WRITE is
 * retried with the same bytes (the evbuffer keeps them; the buffer may move,
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER); the thread's error queue is cleared
 * after every failure, so that SSL_get_error stays right for the next
 * connection; close_notify goes out once, only when everything owed was
 * sent and never after a fatal error; each SSL is freed exactly once, in
 * tconn_free.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "conn.h"
#include "log.h"
#include "server.h"
#include "stats.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

#define TLS_WRITE_CHUNK	16384	/* one record */
#define TLS_READ_ROUNDS	16	/* SSL_reads per event, then yield */
#define TLS_CIPHER_SLOTS 16


enum tconn_state {
	TC_HANDSHAKE,
	TC_OPEN,
	TC_CLOSING,	/* sending close_notify */
};

struct tconn {
	struct event		 ev;
	struct worker		*worker;
	struct listener		*listener;
	SSL			*ssl;
	struct evbuffer		*out;		/* owed, not yet taken */
	uint64_t		 bytes_in;	/* application bytes */
	uint64_t		 bytes_out;
	uint64_t		 start_us;
	uint64_t		 deadline_us;	/* of the handshake */
	LIST_ENTRY(tconn)	 entry;
	union conn_addr		 peer;		/* from the PROXY header, if any */
	union conn_addr		 via;		/* the balancer; AF_UNSPEC: none */
	int			 fd;
	short			 events;	/* what ev waits for; -1: none */
	uint16_t		 chargen_pos;
	uint8_t			 state;
	uint8_t			 want;		/* EV_READ/EV_WRITE: SSL asks */
	uint8_t			 rd_want_write;	/* SSL_read needs writable */
	uint8_t			 wr_want_read;	/* SSL_write needs readable */
	uint8_t			 wr_blocked;	/* a write awaits its retry */
	uint8_t			 eof;		/* peer ended its side */
	uint8_t			 fatal;		/* no close_notify now */
	uint8_t			 shut_sent;
	uint8_t			 established;	/* counted in version/cipher */
	uint8_t			 more;		/* SSL holds unread records */
	uint8_t			 rearm;		/* timeout changes */
	int8_t			 version_idx;
	int8_t			 cipher_idx;
	uint8_t			 close_reason;	/* once closing */
};

struct cipher_slot {
	_Atomic(const char *)	 name;		/* set once, then published */
	counter_t		 open;
	counter_t		 total;
};

/* Per worker: its TLS connections and the counters only it writes. */
struct tls_worker {
	LIST_HEAD(, tconn)	 conns;
	counter_t		 conns_open;
	counter_t		 timeouts;
	counter_t		 ver_open[TLS_STATS_VERSIONS];
	counter_t		 ver_total[TLS_STATS_VERSIONS];
	struct cipher_slot	 ciphers[TLS_CIPHER_SLOTS];
	atomic_int		 nciphers;
};

static const char *const version_names[TLS_STATS_VERSIONS] = {
	"TLSv1.2", "TLSv1.3", "other",
};

/* Counts of workers already freed, so that the totals survive them. */
static pthread_mutex_t	 retired_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tls_stats	 retired;

static int		 timeout_idx = -1;
static pthread_once_t	 once = PTHREAD_ONCE_INIT;

static void	tconn_cb(evutil_socket_t, short, void *);
static void	tconn_free(struct tconn *, enum close_reason);

static void
tls_once(void)
{
	timeout_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* ---- configuration ---------------------------------------------------- */

/* The last OpenSSL error as text, and the queue emptied. */
static const char *
ssl_error_text(char *buf, size_t len)
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
		    "%s: %s", tc->certificate, ssl_error_text(why,
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
		    ssl_error_text(why, sizeof(why)));
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
		    ssl_error_text(why, sizeof(why)));
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
		    ssl_error_text(why, sizeof(why)));
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

/* ---- statistics ------------------------------------------------------- */

static int
version_index(int v)
{
	if (v == TLS1_2_VERSION)
		return 0;
	if (v == TLS1_3_VERSION)
		return 1;
	return 2;
}

/* The worker's slot for a cipher, added on first use; -1 when full. */
static int
cipher_index(struct tls_worker *tw, const char *name)
{
	int	i, n = atomic_load_explicit(&tw->nciphers, memory_order_relaxed);

	for (i = 0; i < n; i++) {
		const char *s = atomic_load_explicit(&tw->ciphers[i].name,
		    memory_order_relaxed);
		if (s == name || strcmp(s, name) == 0)
			return i;
	}
	if (n == TLS_CIPHER_SLOTS)
		return -1;
	atomic_store_explicit(&tw->ciphers[n].name, name,
	    memory_order_relaxed);
	atomic_store_explicit(&tw->nciphers, n + 1, memory_order_release);
	return n;
}

static void
add_item(struct tls_stats_item *items, int *n, int max, const char *name,
    uint64_t open, uint64_t total)
{
	int	i;

	for (i = 0; i < *n; i++) {
		if (strcmp(items[i].name, name) == 0) {
			items[i].open += open;
			items[i].total += total;
			return;
		}
	}
	if (*n == max)
		return;
	items[*n].name = name;
	items[*n].open = open;
	items[*n].total = total;
	(*n)++;
}

static void
add_worker(struct tls_stats *t, struct worker *w)
{
	struct tls_worker	*tw = w->tls;
	int			 i, n;

	t->handshakes += counter_get(&w->stats.tls_handshakes);
	t->handshake_failed += counter_get(&w->stats.tls_handshake_failed);
	t->resumed += counter_get(&w->stats.tls_resumed);
	if (tw == NULL)
		return;
	t->handshake_timeouts += counter_get(&tw->timeouts);
	t->conns_open += counter_get(&tw->conns_open);
	for (i = 0; i < TLS_STATS_VERSIONS; i++)
		t->versions[i].open += counter_get(&tw->ver_open[i]),
		t->versions[i].total += counter_get(&tw->ver_total[i]);
	n = atomic_load_explicit(&tw->nciphers, memory_order_acquire);
	for (i = 0; i < n; i++)
		add_item(t->ciphers, &t->nciphers, TLS_STATS_CIPHERS,
		    atomic_load_explicit(&tw->ciphers[i].name,
		    memory_order_relaxed), counter_get(&tw->ciphers[i].open),
		    counter_get(&tw->ciphers[i].total));
}

static void
add_stats(struct tls_stats *t, const struct tls_stats *s)
{
	int	i;

	t->handshakes += s->handshakes;
	t->handshake_failed += s->handshake_failed;
	t->handshake_timeouts += s->handshake_timeouts;
	t->resumed += s->resumed;
	t->conns_open += s->conns_open;
	for (i = 0; i < TLS_STATS_VERSIONS; i++) {
		t->versions[i].open += s->versions[i].open;
		t->versions[i].total += s->versions[i].total;
	}
	for (i = 0; i < s->nciphers; i++)
		add_item(t->ciphers, &t->nciphers, TLS_STATS_CIPHERS,
		    s->ciphers[i].name, s->ciphers[i].open,
		    s->ciphers[i].total);
}

static void
stats_init(struct tls_stats *t)
{
	int	i;

	memset(t, 0, sizeof(*t));
	t->nversions = TLS_STATS_VERSIONS;
	for (i = 0; i < TLS_STATS_VERSIONS; i++)
		t->versions[i].name = version_names[i];
}

void
tls_stats_sum(struct server *s, struct tls_stats *t)
{
	int	i;

	stats_init(t);
	pthread_mutex_lock(&retired_lock);
	add_stats(t, &retired);
	pthread_mutex_unlock(&retired_lock);
	for (i = 0; s != NULL && s->workers != NULL && i < s->nworkers; i++)
		if (s->workers[i] != NULL && s->workers[i]->tls != NULL)
			add_worker(t, s->workers[i]);
}

int
tls_stats_format(const struct tls_stats *t, char *buf, size_t len)
{
	size_t	off;
	int	i, n;

	n = snprintf(buf, len, "handshakes %llu, failed %llu (timed out "
	    "%llu), resumed %llu, open %llu",
	    (unsigned long long)t->handshakes,
	    (unsigned long long)t->handshake_failed,
	    (unsigned long long)t->handshake_timeouts,
	    (unsigned long long)t->resumed,
	    (unsigned long long)t->conns_open);
	if (n < 0)
		return n;
	for (i = 0; i < t->nversions + t->nciphers; i++) {
		const struct tls_stats_item *it = i < t->nversions ?
		    &t->versions[i] : &t->ciphers[i - t->nversions];

		if (it->total == 0)
			continue;
		off = (size_t)n < len ? (size_t)n : len;
		n += snprintf(buf + off, len - off, ", %s %llu", it->name,
		    (unsigned long long)it->total);
	}
	return n;
}

/* ---- per worker --------------------------------------------------------- */

void
tls_worker_init(struct worker *w)
{
	struct tls_worker	*tw;

	pthread_once(&once, tls_once);
	tw = xcalloc(1, sizeof(*tw));
	LIST_INIT(&tw->conns);
	w->tls = tw;
}

void
tls_worker_free(struct worker *w)
{
	struct tls_stats	 mine;

	if (w->tls == NULL)
		return;
	/* The thread is gone: anything left was never started. */
	stats_init(&mine);
	add_worker(&mine, w);
	pthread_mutex_lock(&retired_lock);
	add_stats(&retired, &mine);
	pthread_mutex_unlock(&retired_lock);
	free(w->tls);
	w->tls = NULL;
}

/* ---- connections -------------------------------------------------------- */

static size_t
pending(const struct tconn *c)
{
	return c->out == NULL ? 0 : evbuffer_get_length(c->out);
}

static void
tconn_free(struct tconn *c, enum close_reason reason)
{
	struct worker		*w = c->worker;
	struct tls_worker	*tw = w->tls;
	struct listener		*l = c->listener;
	const SSL_CIPHER	*cipher;
	struct conn_close_info	 ci = {
		.listener = l, .peer = &c->peer.sa, .start_us = c->start_us,
		.via = c->via.sa.sa_family != AF_UNSPEC ? &c->via.sa : NULL,
		.bytes_in = c->bytes_in, .bytes_out = c->bytes_out,
	};

	event_del(&c->ev);
	counter_sub(&tw->conns_open, 1);
	if (c->established) {
		counter_sub(&tw->ver_open[c->version_idx], 1);
		if (c->cipher_idx >= 0)
			counter_sub(&tw->ciphers[c->cipher_idx].open, 1);
		if (accesslog_enabled()) {
			ci.tls_version = SSL_get_version(c->ssl);
			cipher = SSL_get_current_cipher(c->ssl);
			ci.tls_cipher = cipher != NULL ?
			    SSL_CIPHER_get_name(cipher) : NULL;
		}
	}
	conn_account_close(w, &ci, reason);
	SSL_free(c->ssl);
	c->ssl = NULL;
	ERR_clear_error();
	close(c->fd);
	if (c->out != NULL)
		evbuffer_free(c->out);
	LIST_REMOVE(c, entry);
	free(c);
	conn_release(w, l);
}

/*
 * After an SSL call failed with err: 0 when it only has to wait, else the
 * connection is closed (-1). A fatal error forbids close_notify.
 */
static int
tconn_failed(struct tconn *c, int err, const char *what)
{
	char			 why[256];
	enum close_reason	 reason = CLOSE_ERROR;

	switch (err) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (errno == EPIPE || errno == ECONNRESET || errno == 0)
			reason = CLOSE_CLIENT;
		if (reason == CLOSE_ERROR)
			log_debug("tls %s: %s", what, strerror(errno));
		break;
	case SSL_ERROR_ZERO_RETURN:
		reason = CLOSE_CLIENT;
		break;
	default:
		log_debug("tls %s: %s", what, ssl_error_text(why,
		    sizeof(why)));
		break;
	}
	ERR_clear_error();
	c->fatal = 1;
	tconn_free(c, reason);
	return -1;
}

static void
tconn_established(struct tconn *c)
{
	struct worker		*w = c->worker;
	struct tls_worker	*tw = w->tls;
	const SSL_CIPHER	*cipher;

	c->state = TC_OPEN;
	c->established = 1;
	c->want = 0;
	counter_add(&w->stats.tls_handshakes, 1);
	if (SSL_session_reused(c->ssl))
		counter_add(&w->stats.tls_resumed, 1);
	c->version_idx = (int8_t)version_index(SSL_version(c->ssl));
	counter_add(&tw->ver_open[c->version_idx], 1);
	counter_add(&tw->ver_total[c->version_idx], 1);
	cipher = SSL_get_current_cipher(c->ssl);
	c->cipher_idx = (int8_t)cipher_index(tw, cipher != NULL ?
	    SSL_CIPHER_get_name(cipher) : "none");
	if (c->cipher_idx >= 0) {
		counter_add(&tw->ciphers[c->cipher_idx].open, 1);
		counter_add(&tw->ciphers[c->cipher_idx].total, 1);
	}
}

static int
tconn_handshake(struct tconn *c)
{
	struct worker	*w = c->worker;
	int		 r, err;
	char		 why[256];

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		tconn_established(c);
		return 0;
	}
	err = SSL_get_error(c->ssl, r);
	if (err == SSL_ERROR_WANT_READ) {
		c->want = EV_READ;
		return 0;
	}
	if (err == SSL_ERROR_WANT_WRITE) {
		c->want = EV_WRITE;
		return 0;
	}
	c->fatal = 1;
	/* A connection that closed before saying anything (a port probe)
	 * is not a failed handshake. */
	if (BIO_number_read(SSL_get_rbio(c->ssl)) == 0 &&
	    (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN ||
	    ERR_GET_REASON(ERR_peek_last_error()) ==
	    SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
		ERR_clear_error();
		tconn_free(c, CLOSE_CLIENT);
		return -1;
	}
	counter_add(&w->stats.tls_handshake_failed, 1);
	if (err == SSL_ERROR_SYSCALL)
		log_debug("tls handshake: %s", errno != 0 ? strerror(errno) :
		    "connection closed");
	else
		log_debug("tls handshake: %s", ssl_error_text(why,
		    sizeof(why)));
	ERR_clear_error();
	tconn_free(c, CLOSE_HANDSHAKE);
	return -1;
}

static void
count_out(struct tconn *c, size_t n)
{
	c->bytes_out += n;
	counter_add(&c->worker->stats.bytes_out, n);
}

/* One SSL_write: >0 bytes taken, 0 must wait, -1 connection freed. */
static int
tconn_write(struct tconn *c, const void *buf, size_t len)
{
	int	n, err;

	/* Record-sized, always: a write that has to be retried must be
	 * retried with the same length, and flushes retry 16 KiB. */
	if (len > TLS_WRITE_CHUNK)
		len = TLS_WRITE_CHUNK;
	n = SSL_write(c->ssl, buf, (int)len);
	if (n > 0) {
		c->wr_blocked = 0;
		count_out(c, (size_t)n);
		return n;
	}
	err = SSL_get_error(c->ssl, n);
	c->wr_blocked = 1;
	c->wr_want_read = err == SSL_ERROR_WANT_READ;
	if (tconn_failed(c, err, "write") != 0)
		return -1;
	return 0;
}

/* Send what is owed, in record-sized pieces. -1: freed. */
static int
tconn_flush(struct tconn *c)
{
	size_t		 len;
	unsigned char	*p;
	int		 n;

	while ((len = pending(c)) > 0) {
		if (len > TLS_WRITE_CHUNK)
			len = TLS_WRITE_CHUNK;
		/* Contiguous, and the same bytes a retry must present. */
		if ((p = evbuffer_pullup(c->out, (ssize_t)len)) == NULL)
			fatalx("out of memory for a connection buffer");
		if ((n = tconn_write(c, p, len)) <= 0)
			return n;
		evbuffer_drain(c->out, (size_t)n);
	}
	return 0;
}

/* Echo buf: straight to SSL when nothing is owed, else queued. */
static int
tconn_echo(struct tconn *c, const char *buf, size_t len)
{
	int	n;

	while (pending(c) == 0 && len > 0) {
		if ((n = tconn_write(c, buf, len)) < 0)
			return -1;
		if (n == 0)
			break;
		buf += n;
		len -= (size_t)n;
	}
	if (len == 0)
		return 0;
	conn_out_add(&c->out, buf, len);
	return 0;
}

static int
reading(const struct tconn *c)
{
	return !c->eof && pending(c) <= c->worker->max_buffer;
}

/* Read what has arrived. -1: freed. */
static int
tconn_read(struct tconn *c)
{
	struct worker	*w = c->worker;
	int		 n, err, round;

	c->more = 0;
	for (round = 0; round < TLS_READ_ROUNDS; round++) {
		n = SSL_read(c->ssl, w->scratch, (int)(w->scratch_len >
		    INT_MAX ? INT_MAX : w->scratch_len));
		if (n <= 0) {
			err = SSL_get_error(c->ssl, n);
			c->rd_want_write = err == SSL_ERROR_WANT_WRITE;
			if (err == SSL_ERROR_ZERO_RETURN) {
				/* close_notify, or EOF without one. */
				ERR_clear_error();
				c->eof = 1;
				return 0;
			}
			return tconn_failed(c, err, "read");
		}
		c->rd_want_write = 0;
		c->bytes_in += (size_t)n;
		counter_add(&w->stats.bytes_in, (uint64_t)n);
		if (c->listener->mode == MODE_ECHO &&
		    tconn_echo(c, w->scratch, (size_t)n) != 0)
			return -1;
		if (!reading(c)) {
			counter_add(&w->stats.backpressure, 1);
			return 0;
		}
		/* Records already in OpenSSL's buffer raise no event; the
		 * socket, level-triggered, does. */
		if (!SSL_has_pending(c->ssl))
			return 0;
	}
	c->more = 1;
	return 0;
}

static int
tconn_chargen(struct tconn *c)
{
	int	n;

	/* conn_init() built the pattern: CHARGEN_CHUNK >= TLS_WRITE_CHUNK. */
	n = tconn_write(c, chargen_at(c->chargen_pos), TLS_WRITE_CHUNK);
	if (n <= 0)
		return n;
	c->chargen_pos = (uint16_t)chargen_advance(c->chargen_pos, (size_t)n);
	return 0;
}

/* close_notify, once; the connection ends when it is out. -1: freed. */
static int
tconn_shutdown(struct tconn *c)
{
	int	r, err;

	c->state = TC_CLOSING;
	c->shut_sent = 1;
	r = SSL_shutdown(c->ssl);
	if (r < 0) {
		err = SSL_get_error(c->ssl, r);
		if (err == SSL_ERROR_WANT_WRITE) {
			c->want = EV_WRITE;
			return 0;
		}
		ERR_clear_error();
	}
	tconn_free(c, (enum close_reason)c->close_reason);
	return -1;
}

/* Closing without waiting: close_notify only when nothing is owed. */
static void
tconn_close_now(struct tconn *c, enum close_reason reason)
{
	if (c->established && !c->fatal && !c->shut_sent && !c->wr_blocked &&
	    pending(c) == 0) {
		c->shut_sent = 1;
		if (SSL_shutdown(c->ssl) < 0)
			ERR_clear_error();
	}
	tconn_free(c, reason);
}

/* Open connection: send what is owed, then read. -1: freed. */
static int
tconn_io(struct tconn *c, short what)
{
	short	wr_ev = c->wr_want_read ? EV_READ : EV_WRITE;
	short	rd_ev = c->rd_want_write ? EV_WRITE : EV_READ;

	if (pending(c) > 0 && (what & wr_ev) && tconn_flush(c) != 0)
		return -1;
	if (c->listener->mode == MODE_CHARGEN && pending(c) == 0 &&
	    (what & wr_ev) && tconn_chargen(c) != 0)
		return -1;
	if (reading(c) && ((what & rd_ev) || SSL_has_pending(c->ssl)) &&
	    tconn_read(c) != 0)
		return -1;
	/* Half-close: the peer is done sending; what it is owed goes out
	 * first, then close_notify. */
	if (c->eof && pending(c) == 0 && !c->wr_blocked &&
	    c->listener->mode != MODE_CHARGEN) {
		c->close_reason = CLOSE_CLIENT;
		return tconn_shutdown(c);
	}
	return 0;
}

static short
tconn_events(const struct tconn *c)
{
	short	events = 0;

	switch (c->state) {
	case TC_HANDSHAKE:
	case TC_CLOSING:
		return c->want;
	case TC_OPEN:
	default:
		break;
	}
	if (reading(c))
		events |= c->rd_want_write ? EV_WRITE : EV_READ;
	if (pending(c) > 0 || c->wr_blocked ||
	    c->listener->mode == MODE_CHARGEN)
		events |= c->wr_want_read ? EV_READ : EV_WRITE;
	return events;
}

/* Wait for what the connection needs now; re-arm only on a change, but
 * always during the handshake, whose deadline does not move. */
static void
tconn_update(struct tconn *c)
{
	struct worker		*w = c->worker;
	const struct timeval	*tv = w->idle_timeout;
	struct timeval		 left;
	short			 events = tconn_events(c);
	uint64_t		 now;

	if (c->state == TC_HANDSHAKE) {
		now = now_us();
		now = now < c->deadline_us ? c->deadline_us - now : 1;
		left.tv_sec = (time_t)(now / 1000000);
		left.tv_usec = (suseconds_t)(now % 1000000);
		tv = &left;
	} else if (events == c->events && !c->rearm)
		goto out;
	c->rearm = 0;
	if (c->events != -1)
		event_del(&c->ev);
	event_assign(&c->ev, w->base, c->fd, events | EV_PERSIST, tconn_cb, c);
	if (event_add(&c->ev, tv) != 0)
		log_warnx("worker %d: cannot watch a TLS connection", w->id);
	c->events = events;
out:
	/* Records left in OpenSSL's buffer: come back on the next loop. */
	if (c->more && reading(c))
		event_active(&c->ev, EV_READ, 1);
}

static void
tconn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tconn	*c = arg;
	enum tconn_state before = c->state;

	(void)fd;
	if (what & EV_TIMEOUT) {
		if (c->state == TC_HANDSHAKE) {
			struct tls_worker *tw = c->worker->tls;

			counter_add(&c->worker->stats.tls_handshake_failed, 1);
			counter_add(&c->worker->stats.timed_out, 1);
			counter_add(&tw->timeouts, 1);
			c->fatal = 1;
			tconn_free(c, CLOSE_HANDSHAKE);
		} else
			tconn_close_now(c, CLOSE_IDLE);
		return;
	}
	switch (c->state) {
	case TC_HANDSHAKE:
		if (tconn_handshake(c) != 0)
			return;
		/* Data that came with the client's Finished is already
		 * in OpenSSL's buffer. */
		if (c->state == TC_OPEN && SSL_has_pending(c->ssl) &&
		    tconn_io(c, 0) != 0)
			return;
		break;
	case TC_OPEN:
		if (tconn_io(c, what) != 0)
			return;
		break;
	case TC_CLOSING:
		if (tconn_shutdown(c) != 0)
			return;
		break;
	}
	/* Leaving the handshake: the idle timeout replaces its deadline. */
	if (before != c->state)
		c->rearm = 1;
	tconn_update(c);
}

void
tls_conn_start(struct worker *w, int fd, struct listener *l,
    const struct sockaddr *peer, socklen_t peerlen,
    const struct sockaddr *via)
{
	struct tls_worker	*tw = w->tls;
	struct tconn		*c;
	SSL			*ssl;
	SSL_CTX			*ctx;
	uint64_t		 ms;
	char			 why[256];

	/* Once: a reload may swap the listener's context meanwhile (the old
	 * one stays alive until every worker has moved past this). */
	ctx = atomic_load_explicit(&l->tls_ctx, memory_order_acquire);
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1) {
		log_warnx("worker %d: cannot start TLS: %s", w->id,
		    ssl_error_text(why, sizeof(why)));
		SSL_free(ssl);
		close(fd);
		counter_add(&w->stats.errors, 1);
		server_conn_closed();
		return;
	}
	SSL_set_accept_state(ssl);
	conn_socket_setup(fd);
	c = xcalloc(1, sizeof(*c));
	c->worker = w;
	listener_ref(l);
	c->listener = l;
	c->ssl = ssl;
	c->fd = fd;
	c->events = -1;
	c->state = TC_HANDSHAKE;
	c->want = EV_READ;
	c->cipher_idx = -1;
	c->start_us = now_us();
	ms = (uintptr_t)SSL_CTX_get_ex_data(ctx, timeout_idx);
	c->deadline_us = c->start_us + ms * 1000;
	if (peerlen > sizeof(c->peer))
		peerlen = sizeof(c->peer);
	memcpy(&c->peer, peer, peerlen);
	conn_addr_set(&c->via, via);
	LIST_INSERT_HEAD(&tw->conns, c, entry);
	w->nconns++;
	counter_add(&w->stats.conns_open, 1);
	counter_add(&w->stats.conns_total, 1);
	counter_add(&tw->conns_open, 1);
	tconn_update(c);
}

void
tls_drain_all(struct worker *w)
{
	/* Graceful: like plain connections, TLS ones finish on their own
	 * (or at the deadline, when WMSG_CLOSE_ALL arrives). */
	(void)w;
}

void
tls_close_all(struct worker *w)
{
	struct tls_worker	*tw = w->tls;
	struct tconn		*c;

	while ((c = LIST_FIRST(&tw->conns)) != NULL) {
		if (c->state == TC_HANDSHAKE) {
			c->fatal = 1;
			tconn_free(c, CLOSE_SHUTDOWN);
		} else
			tconn_close_now(c, CLOSE_SHUTDOWN);
	}
}
