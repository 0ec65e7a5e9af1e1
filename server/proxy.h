/*
 * proxy.h: the PROXY protocol (versions 1 and 2, as HAProxy specifies it)
 * as pure functions: bytes in, a parsed header, a
 * request for more bytes, or the reason it is not one. No I/O and no
 * allocation, so that it can be unit-tested and fuzzed alone; the worker
 * side that reads sockets is proxy_conn.c. Also the CIDR lists of
 * proxy_from.
 */
#ifndef ECHOD_PROXY_H
#define ECHOD_PROXY_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

enum proxy_mode {
	PROXY_OFF,
	PROXY_V1,
	PROXY_V2,
	PROXY_ANY,
};

enum proxy_status {
	PROXY_DONE,		/* a whole header: result->len bytes */
	PROXY_MORE,		/* a valid prefix: read up to result->need */
	PROXY_FAIL,		/* result->error says why */
};

/* Why a connection lost its header; the first five come from the parser,
 * the rest from the connection side. Names in proxy_error_name(). */
enum proxy_error {
	PROXY_ERR_SIGNATURE,	/* not a PROXY header of an accepted version */
	PROXY_ERR_MALFORMED,	/* bad syntax, address, command or TLV */
	PROXY_ERR_OVERSIZED,	/* v1 without CRLF in 107 bytes, v2 too long */
	PROXY_ERR_CRC,		/* v2 CRC32C does not match */
	PROXY_ERR_UNSUPPORTED,	/* valid, but not a stream: UDP, UNIX dgram */
	PROXY_ERR_TRUNCATED,	/* the peer closed before the header ended */
	PROXY_ERR_TIMEOUT,	/* not complete within proxy_timeout */
	PROXY_ERR_UNTRUSTED,	/* the peer is not in proxy_from */
	PROXY_ERR_COUNT
};

#define PROXY_V1_MAX		107	/* longest line, CRLF included */
#define PROXY_V2_HDR		16	/* signature, command, family, length */
/* A v2 header may say up to 16 + 65535 bytes; balancers send a few
 * hundred. Beyond this echod drops the connection rather than hold the
 * memory for every slow one. */
#define PROXY_V2_MAX		4096
#define PROXY_MAX		PROXY_V2_MAX

#define PROXY_ALPN_MAX		64
#define PROXY_AUTHORITY_MAX	255
#define PROXY_UNIQUE_ID_MAX	128	/* the spec's limit */
#define PROXY_SSL_STR_MAX	64

/* What a v2 header's TLVs said; strings are NUL-terminated copies (cut to
 * size; the unique ID is bytes with a length). */
struct proxy_tlvs {
	uint8_t		has_crc32c;	/* present and verified */
	uint8_t		has_ssl;
	uint8_t		ssl_client;	/* PP2_CLIENT_* bits */
	uint32_t	ssl_verify;	/* 0: client certificate verified */
	char		alpn[PROXY_ALPN_MAX + 1];
	char		authority[PROXY_AUTHORITY_MAX + 1];
	uint8_t		unique_id[PROXY_UNIQUE_ID_MAX];
	size_t		unique_id_len;
	char		ssl_version[PROXY_SSL_STR_MAX + 1];
	char		ssl_cn[PROXY_SSL_STR_MAX + 1];
	char		ssl_cipher[PROXY_SSL_STR_MAX + 1];
};

struct proxy_result {
	enum proxy_error	 error;		/* PROXY_FAIL */
	size_t			 need;		/* PROXY_MORE: read up to this */
	size_t			 len;		/* PROXY_DONE: header bytes */
	int			 version;	/* 1 or 2 */
	/* LOCAL (v2), UNKNOWN (v1) or UNSPEC/UNIX (v2): keep the real
	 * endpoints of the connection; src and dst are then unset. */
	int			 local;
	struct sockaddr_storage	 src;		/* the client, as the balancer saw it */
	struct sockaddr_storage	 dst;		/* the address it connected to */
	struct proxy_tlvs	 tlv;
};

/*
 * Parse the len bytes a connection has sent so far under mode (not
 * PROXY_OFF). PROXY_MORE means that every one of the len bytes belongs to
 * the header and that it may continue up to result->need bytes in all, so
 * that a reader can consume what it has and ask for that many: never a
 * byte of what follows the header.
 */
enum proxy_status proxy_parse(enum proxy_mode, const uint8_t *buf,
		    size_t len, struct proxy_result *);

const char	*proxy_error_name(enum proxy_error);
const char	*proxy_mode_name(enum proxy_mode);
int		 proxy_mode_parse(const char *, enum proxy_mode *);

/* CRC32C (Castagnoli, RFC 4960 appendix B) of len bytes. */
uint32_t	 proxy_crc32c(const uint8_t *, size_t);

/* One entry of proxy_from: an address and a prefix length. */
struct proxy_cidr {
	int		family;		/* AF_INET or AF_INET6 */
	int		prefix;
	uint8_t		addr[16];	/* masked to prefix */
};

/* "ADDR" or "ADDR/LEN", v4 or v6. 0, or -1 with *why set. */
int	proxy_cidr_parse(const char *, struct proxy_cidr *, const char **why);
/* Is sa in one of the n entries? An IPv4-mapped IPv6 peer matches the
 * IPv4 entries too. */
int	proxy_cidr_match(const struct proxy_cidr *, int n,
	    const struct sockaddr *sa);

#endif
