/*
 * proxy.c: the PROXY protocol parser, versions 1 and 2, and the proxy_from
 * address lists. Pure: it reads the bytes it is given and nothing else, so
 * the same code runs in echod, in the unit tests and under the fuzzer.
 *
 * The parser is called on everything a connection has sent so far. It
 * answers DONE with the header's exact length (the reader then consumes
 * exactly that, and the payload after it stays in the socket for the echo
 * or TLS path), MORE when all it has is a valid prefix (so the reader may
 * consume it all without touching the payload), or FAIL with a reason.
 * Malformed input fails as early as the bytes show it, so a wrong client is
 * dropped without waiting for the timeout.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

static const uint8_t v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};
static const char v1_sig[] = "PROXY ";

#define V2_CMD_LOCAL	0x0
#define V2_CMD_PROXY	0x1

#define V2_FAM_UNSPEC	0x0
#define V2_FAM_INET	0x1
#define V2_FAM_INET6	0x2
#define V2_FAM_UNIX	0x3

#define V2_PROTO_UNSPEC	0x0
#define V2_PROTO_STREAM	0x1
#define V2_PROTO_DGRAM	0x2

#define PP2_TYPE_ALPN		0x01
#define PP2_TYPE_AUTHORITY	0x02
#define PP2_TYPE_CRC32C		0x03
#define PP2_TYPE_NOOP		0x04
#define PP2_TYPE_UNIQUE_ID	0x05
#define PP2_TYPE_SSL		0x20
#define PP2_SUBTYPE_SSL_VERSION	0x21
#define PP2_SUBTYPE_SSL_CN	0x22
#define PP2_SUBTYPE_SSL_CIPHER	0x23
#define PP2_TYPE_NETNS		0x30

static const char *const error_names[PROXY_ERR_COUNT] = {
	[PROXY_ERR_SIGNATURE] = "signature",
	[PROXY_ERR_MALFORMED] = "malformed",
	[PROXY_ERR_OVERSIZED] = "oversized",
	[PROXY_ERR_CRC] = "crc",
	[PROXY_ERR_UNSUPPORTED] = "unsupported",
	[PROXY_ERR_TRUNCATED] = "truncated",
	[PROXY_ERR_TIMEOUT] = "timeout",
	[PROXY_ERR_UNTRUSTED] = "untrusted",
};

const char *
proxy_error_name(enum proxy_error e)
{
	if ((unsigned)e >= PROXY_ERR_COUNT)
		return "?";
	return error_names[e];
}

const char *
proxy_mode_name(enum proxy_mode m)
{
	switch (m) {
	case PROXY_OFF:
		return "off";
	case PROXY_V1:
		return "v1";
	case PROXY_V2:
		return "v2";
	case PROXY_ANY:
		return "any";
	}
	return "?";
}

int
proxy_mode_parse(const char *s, enum proxy_mode *out)
{
	static const enum proxy_mode modes[] = {
		PROXY_OFF, PROXY_V1, PROXY_V2, PROXY_ANY,
	};
	size_t	i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(s, proxy_mode_name(modes[i])) == 0) {
			*out = modes[i];
			return 0;
		}
	}
	return -1;
}

/* ---- CRC32C ------------------------------------------------------------ */

static uint32_t		crc_table[256];
static pthread_once_t	crc_once = PTHREAD_ONCE_INIT;

static void
crc_init(void)
{
	uint32_t	c;
	int		i, k;

	/* The reflected Castagnoli polynomial. */
	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t
crc_update(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len-- > 0)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

uint32_t
proxy_crc32c(const uint8_t *p, size_t len)
{
	pthread_once(&crc_once, crc_init);
	return ~crc_update(~0u, p, len);
}

/* The CRC of a header whose 4-byte checksum field at off reads as zero. */
static uint32_t
crc_with_hole(const uint8_t *buf, size_t len, size_t off)
{
	static const uint8_t	zero[4];
	uint32_t		crc = ~0u;

	pthread_once(&crc_once, crc_init);
	crc = crc_update(crc, buf, off);
	crc = crc_update(crc, zero, sizeof(zero));
	crc = crc_update(crc, buf + off + 4, len - off - 4);
	return ~crc;
}

/* ---- helpers ----------------------------------------------------------- */

static enum proxy_status
fail(struct proxy_result *r, enum proxy_error e)
{
	r->error = e;
	return PROXY_FAIL;
}

static enum proxy_status
more(struct proxy_result *r, size_t need)
{
	r->need = need;
	return PROXY_MORE;
}

static uint16_t
be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* Copy a TLV value as a printable string, cut to cap bytes. */
static void
copy_str(char *dst, size_t cap, const uint8_t *src, size_t len)
{
	size_t	i;

	if (len > cap)
		len = cap;
	for (i = 0; i < len; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? (char)src[i] : '?';
	dst[len] = '\0';
}

/* ---- version 1 --------------------------------------------------------- */

/* A decimal port: no sign, no leading zero, at most 65535. */
static int
v1_port(const char *s, uint16_t *out)
{
	unsigned long	v = 0;
	size_t		n = strlen(s);
	size_t		i;

	if (n == 0 || n > 5 || (s[0] == '0' && n > 1))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

static int
v1_addr(int family, const char *host, const char *port,
    struct sockaddr_storage *ss)
{
	uint16_t	p;

	if (v1_port(port, &p) != 0)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		/* inet_pton takes only dotted quads, without leading zeros. */
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(p);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (strchr(host, ':') == NULL ||
		    inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(p);
	}
	return 0;
}

/* Split line at single spaces into at most max fields; an empty field
 * (two spaces, a trailing space) is an error. */
static int
v1_split(char *line, char **f, int max)
{
	int	n = 0;
	char	*p = line, *sp;

	for (;;) {
		if (n == max)
			return -1;
		f[n++] = p;
		if ((sp = strchr(p, ' ')) == NULL)
			break;
		*sp = '\0';
		p = sp + 1;
	}
	for (int i = 0; i < n; i++)
		if (*f[i] == '\0')
			return -1;
	return n;
}

static enum proxy_status
parse_v1(const uint8_t *buf, size_t len, struct proxy_result *r)
{
	char	 line[PROXY_V1_MAX + 1], *f[7];
	size_t	 i, end = 0, scan = len < PROXY_V1_MAX ? len : PROXY_V1_MAX;
	int	 n, family;

	for (i = 0; i < scan; i++) {
		if (buf[i] == '\n')	/* a lone LF never ends the line */
			return fail(r, PROXY_ERR_MALFORMED);
		if (buf[i] == '\r') {
			if (i + 1 == len)
				return i + 2 <= PROXY_V1_MAX ?
				    more(r, PROXY_V1_MAX) :
				    fail(r, PROXY_ERR_OVERSIZED);
			if (buf[i + 1] != '\n' || i + 2 > PROXY_V1_MAX)
				return fail(r, buf[i + 1] != '\n' ?
				    PROXY_ERR_MALFORMED : PROXY_ERR_OVERSIZED);
			end = i;
			break;
		}
		/* Only printable US-ASCII before the CRLF. */
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return fail(r, PROXY_ERR_MALFORMED);
	}
	if (i == scan)
		return len >= PROXY_V1_MAX ? fail(r, PROXY_ERR_OVERSIZED) :
		    more(r, PROXY_V1_MAX);
	memcpy(line, buf, end);
	line[end] = '\0';
	r->version = 1;
	r->len = end + 2;
	n = v1_split(line, f, 7);
	if (n < 2 || strcmp(f[0], "PROXY") != 0)
		return fail(r, PROXY_ERR_MALFORMED);
	if (strcmp(f[1], "UNKNOWN") == 0) {
		/* The rest of the line says nothing we may use. */
		r->local = 1;
		return PROXY_DONE;
	}
	if (strcmp(f[1], "TCP4") == 0)
		family = AF_INET;
	else if (strcmp(f[1], "TCP6") == 0)
		family = AF_INET6;
	else
		return fail(r, PROXY_ERR_MALFORMED);
	if (n != 6 || v1_addr(family, f[2], f[4], &r->src) != 0 ||
	    v1_addr(family, f[3], f[5], &r->dst) != 0)
		return fail(r, PROXY_ERR_MALFORMED);
	return PROXY_DONE;
}

/* Only the line's first bytes are known: do they still read "PROXY "? */
static int
v1_prefix(const uint8_t *buf, size_t len)
{
	size_t	n = len < sizeof(v1_sig) - 1 ? len : sizeof(v1_sig) - 1;

	return memcmp(buf, v1_sig, n) == 0;
}

/* ---- version 2 --------------------------------------------------------- */

static int
v2_prefix(const uint8_t *buf, size_t len)
{
	size_t	n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);

	return memcmp(buf, v2_sig, n) == 0;
}

/* Sub-TLVs of PP2_TYPE_SSL, after its client and verify fields. */
static int
v2_ssl(const uint8_t *p, size_t len, struct proxy_tlvs *t)
{
	size_t		o = 5, vlen;
	uint8_t		type;

	if (len < 5)
		return -1;
	t->has_ssl = 1;
	t->ssl_client = p[0];
	t->ssl_verify = be32(p + 1);
	while (o < len) {
		if (len - o < 3)
			return -1;
		type = p[o];
		vlen = be16(p + o + 1);
		o += 3;
		if (vlen > len - o)
			return -1;
		if (type == PP2_SUBTYPE_SSL_VERSION)
			copy_str(t->ssl_version, PROXY_SSL_STR_MAX, p + o, vlen);
		else if (type == PP2_SUBTYPE_SSL_CN)
			copy_str(t->ssl_cn, PROXY_SSL_STR_MAX, p + o, vlen);
		else if (type == PP2_SUBTYPE_SSL_CIPHER)
			copy_str(t->ssl_cipher, PROXY_SSL_STR_MAX, p + o, vlen);
		o += vlen;
	}
	return 0;
}

/* The TLVs in buf[off, total); checks the CRC32C when one is there. */
static enum proxy_status
v2_tlvs(const uint8_t *buf, size_t off, size_t total, struct proxy_result *r)
{
	struct proxy_tlvs	*t = &r->tlv;
	size_t			 vlen, crc_off = 0;
	uint8_t			 type;
	int			 has_crc = 0;

	while (off < total) {
		if (total - off < 3)
			return fail(r, PROXY_ERR_MALFORMED);
		type = buf[off];
		vlen = be16(buf + off + 1);
		off += 3;
		if (vlen > total - off)
			return fail(r, PROXY_ERR_MALFORMED);
		switch (type) {
		case PP2_TYPE_ALPN:
			copy_str(t->alpn, PROXY_ALPN_MAX, buf + off, vlen);
			break;
		case PP2_TYPE_AUTHORITY:
			copy_str(t->authority, PROXY_AUTHORITY_MAX, buf + off,
			    vlen);
			break;
		case PP2_TYPE_CRC32C:
			if (vlen != 4 || has_crc)
				return fail(r, PROXY_ERR_MALFORMED);
			has_crc = 1;
			crc_off = off;
			break;
		case PP2_TYPE_UNIQUE_ID:
			if (vlen > PROXY_UNIQUE_ID_MAX)
				return fail(r, PROXY_ERR_MALFORMED);
			memcpy(t->unique_id, buf + off, vlen);
			t->unique_id_len = vlen;
			break;
		case PP2_TYPE_SSL:
			if (v2_ssl(buf + off, vlen, t) != 0)
				return fail(r, PROXY_ERR_MALFORMED);
			break;
		case PP2_TYPE_NOOP:
		case PP2_TYPE_NETNS:
		default:
			/* Ignored, as the protocol allows. */
			break;
		}
		off += vlen;
	}
	if (has_crc) {
		if (crc_with_hole(buf, total, crc_off) != be32(buf + crc_off))
			return fail(r, PROXY_ERR_CRC);
		t->has_crc32c = 1;
	}
	return PROXY_DONE;
}

static void
v2_addrs(const uint8_t *a, int family, struct proxy_result *r)
{
	memset(&r->src, 0, sizeof(r->src));
	memset(&r->dst, 0, sizeof(r->dst));
	if (family == V2_FAM_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&r->src;
		struct sockaddr_in *d = (struct sockaddr_in *)&r->dst;

		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, a, 4);
		memcpy(&d->sin_addr, a + 4, 4);
		memcpy(&s->sin_port, a + 8, 2);
		memcpy(&d->sin_port, a + 10, 2);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&r->src;
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)&r->dst;

		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, a, 16);
		memcpy(&d->sin6_addr, a + 16, 16);
		memcpy(&s->sin6_port, a + 32, 2);
		memcpy(&d->sin6_port, a + 34, 2);
	}
}

static enum proxy_status
parse_v2(const uint8_t *buf, size_t len, struct proxy_result *r)
{
	size_t	total, addrlen;
	int	cmd, family, proto;

	/* Judge each fixed byte as soon as it arrives. */
	if (len > 12 && (buf[12] & 0xf0) != 0x20)
		return fail(r, PROXY_ERR_SIGNATURE);
	cmd = len > 12 ? buf[12] & 0x0f : 0;
	if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
		return fail(r, PROXY_ERR_MALFORMED);
	family = len > 13 ? buf[13] >> 4 : 0;
	proto = len > 13 ? buf[13] & 0x0f : 0;
	if (family > V2_FAM_UNIX || proto > V2_PROTO_DGRAM)
		return fail(r, PROXY_ERR_MALFORMED);
	if (len < PROXY_V2_HDR)
		return more(r, PROXY_V2_HDR);
	total = PROXY_V2_HDR + be16(buf + 14);
	if (total > PROXY_V2_MAX)
		return fail(r, PROXY_ERR_OVERSIZED);
	if (len < total)
		return more(r, total);

	r->version = 2;
	r->len = total;
	switch (family) {
	case V2_FAM_INET:
		addrlen = 12;
		break;
	case V2_FAM_INET6:
		addrlen = 36;
		break;
	case V2_FAM_UNIX:
		addrlen = 216;
		break;
	default:
		addrlen = 0;
		break;
	}
	if (total - PROXY_V2_HDR < addrlen)
		return fail(r, PROXY_ERR_MALFORMED);
	if (v2_tlvs(buf, PROXY_V2_HDR + addrlen, total, r) != PROXY_DONE)
		return PROXY_FAIL;
	if (cmd == V2_CMD_LOCAL) {
		/* Health checks: the real endpoints, whatever the family. */
		r->local = 1;
		return PROXY_DONE;
	}
	if (proto == V2_PROTO_DGRAM)
		return fail(r, PROXY_ERR_UNSUPPORTED);
	if (family == V2_FAM_UNSPEC || proto == V2_PROTO_UNSPEC ||
	    family == V2_FAM_UNIX) {
		/* Nothing a TCP server can use: keep the real endpoints. */
		r->local = 1;
		return PROXY_DONE;
	}
	v2_addrs(buf + PROXY_V2_HDR, family, r);
	return PROXY_DONE;
}

/* ---- entry point ------------------------------------------------------- */

enum proxy_status
proxy_parse(enum proxy_mode mode, const uint8_t *buf, size_t len,
    struct proxy_result *r)
{
	int	v1 = mode == PROXY_V1 || mode == PROXY_ANY;
	int	v2 = mode == PROXY_V2 || mode == PROXY_ANY;

	r->error = PROXY_ERR_SIGNATURE;
	r->need = 0;
	r->len = 0;
	r->version = 0;
	r->local = 0;
	memset(&r->tlv, 0, sizeof(r->tlv));
	if (len == 0)
		return more(r, v1 && !v2 ? PROXY_V1_MAX : PROXY_V2_HDR);
	/* The signatures differ in their first byte ('P' and CR). */
	if (v2 && v2_prefix(buf, len))
		return parse_v2(buf, len, r);
	if (v1 && v1_prefix(buf, len)) {
		if (len < sizeof(v1_sig) - 1)
			return more(r, PROXY_V1_MAX);
		return parse_v1(buf, len, r);
	}
	return fail(r, PROXY_ERR_SIGNATURE);
}

/* ---- proxy_from -------------------------------------------------------- */

static void
mask(uint8_t *a, int bytes, int prefix)
{
	int	i;

	for (i = 0; i < bytes; i++) {
		int bits = prefix - i * 8;

		if (bits >= 8)
			continue;
		a[i] &= bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
	}
}

int
proxy_cidr_parse(const char *s, struct proxy_cidr *c, const char **why)
{
	char		 host[64];
	const char	*slash = strchr(s, '/');
	size_t		 hlen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	int		 max, bytes;

	memset(c, 0, sizeof(*c));
	if (hlen == 0 || hlen >= sizeof(host)) {
		*why = "expected ADDRESS or ADDRESS/PREFIX";
		return -1;
	}
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		*why = "not an IPv4 or IPv6 address";
		return -1;
	}
	c->prefix = max;
	if (slash != NULL) {
		const char	*p = slash + 1;
		int		 v = 0;

		if (*p == '\0' || strlen(p) > 3 || (p[0] == '0' && p[1] != '\0')) {
			*why = "bad prefix length";
			return -1;
		}
		for (; *p != '\0'; p++) {
			if (*p < '0' || *p > '9') {
				*why = "bad prefix length";
				return -1;
			}
			v = v * 10 + (*p - '0');
		}
		if (v > max) {
			*why = c->family == AF_INET ? "prefix longer than 32" :
			    "prefix longer than 128";
			return -1;
		}
		c->prefix = v;
	}
	bytes = c->family == AF_INET ? 4 : 16;
	mask(c->addr, bytes, c->prefix);
	return 0;
}

static int
match_one(const struct proxy_cidr *c, int family, const uint8_t *addr)
{
	uint8_t	a[16];
	int	bytes = family == AF_INET ? 4 : 16;

	if (c->family != family)
		return 0;
	memcpy(a, addr, (size_t)bytes);
	mask(a, bytes, c->prefix);
	return memcmp(a, c->addr, (size_t)bytes) == 0;
}

int
proxy_cidr_match(const struct proxy_cidr *c, int n, const struct sockaddr *sa)
{
	const uint8_t	*a4 = NULL, *a6 = NULL;
	int		 i;

	if (sa->sa_family == AF_INET)
		a4 = (const uint8_t *)&((const struct sockaddr_in *)
		    (const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *in6 = &((const struct sockaddr_in6 *)
		    (const void *)sa)->sin6_addr;

		a6 = in6->s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(in6))
			a4 = a6 + 12;
	} else
		return 0;
	for (i = 0; i < n; i++) {
		if (a4 != NULL && match_one(&c[i], AF_INET, a4))
			return 1;
		if (a6 != NULL && match_one(&c[i], AF_INET6, a6))
			return 1;
	}
	return 0;
}
