/*
 * test_proxy.c: the PROXY protocol parser (v1 and v2, TLVs, CRC32C), the
 * proxy_from address lists, the [listen] keys that configure them, and
 * echoload's header builder read back by the parser.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "proxy.h"
#include "proxy_send.h"

static const uint8_t sig[12] = "\r\n\r\n\0\r\nQUIT\n";

/* ---- helpers ------------------------------------------------------------ */

static enum proxy_status
parse_str(enum proxy_mode mode, const char *s, struct proxy_result *r)
{
	return proxy_parse(mode, (const uint8_t *)s, strlen(s), r);
}

static void
expect_fail(enum proxy_mode mode, const void *buf, size_t len,
    enum proxy_error e)
{
	struct proxy_result	r;

	if (proxy_parse(mode, buf, len, &r) != PROXY_FAIL)
		fail_msg("accepted a header that should fail with %s",
		    proxy_error_name(e));
	if (r.error != e)
		fail_msg("failed with %s, expected %s",
		    proxy_error_name(r.error), proxy_error_name(e));
}

static void
expect_fail_str(enum proxy_mode mode, const char *s, enum proxy_error e)
{
	expect_fail(mode, s, strlen(s), e);
}

/* Every strict prefix of a valid header is MORE, and asks for enough. */
static void
expect_prefixes_more(enum proxy_mode mode, const uint8_t *buf, size_t len)
{
	struct proxy_result	r;
	size_t			i;

	for (i = 0; i < len; i++) {
		if (proxy_parse(mode, buf, i, &r) != PROXY_MORE)
			fail_msg("prefix of %zu bytes of %zu not MORE (%s)", i,
			    len, proxy_error_name(r.error));
		assert_true(r.need > i);
		assert_true(r.need <= PROXY_MAX);
	}
}

struct v2 {
	uint8_t	b[PROXY_V2_MAX + 64];
	size_t	len;
};

static void
v2_begin(struct v2 *h, uint8_t ver_cmd, uint8_t fam)
{
	memcpy(h->b, sig, 12);
	h->b[12] = ver_cmd;
	h->b[13] = fam;
	h->len = 16;
}

static void
v2_add(struct v2 *h, const void *p, size_t n)
{
	memcpy(h->b + h->len, p, n);
	h->len += n;
}

static void
v2_tlv(struct v2 *h, uint8_t type, const void *p, size_t n)
{
	uint8_t	t[3] = { type, (uint8_t)(n >> 8), (uint8_t)n };

	v2_add(h, t, 3);
	v2_add(h, p, n);
}

static void
v2_inet(struct v2 *h, const char *src, const char *dst, uint16_t sp,
    uint16_t dp)
{
	uint8_t		a[12];
	uint16_t	p;

	inet_pton(AF_INET, src, a);
	inet_pton(AF_INET, dst, a + 4);
	p = htons(sp);
	memcpy(a + 8, &p, 2);
	p = htons(dp);
	memcpy(a + 10, &p, 2);
	v2_add(h, a, sizeof(a));
}

/* Set the length field to what was added. */
static void
v2_end(struct v2 *h)
{
	size_t	n = h->len - 16;

	h->b[14] = (uint8_t)(n >> 8);
	h->b[15] = (uint8_t)n;
}

/* Add a CRC32C TLV (last) and fill it in as a sender does. */
static void
v2_end_crc(struct v2 *h)
{
	uint8_t		zero[4] = { 0 };
	size_t		off;
	uint32_t	crc;

	v2_tlv(h, 0x03, zero, 4);
	off = h->len - 4;
	v2_end(h);
	crc = proxy_crc32c(h->b, h->len);
	h->b[off] = (uint8_t)(crc >> 24);
	h->b[off + 1] = (uint8_t)(crc >> 16);
	h->b[off + 2] = (uint8_t)(crc >> 8);
	h->b[off + 3] = (uint8_t)crc;
}

static void
assert_sin(const struct sockaddr_storage *ss, const char *host, uint16_t port)
{
	const struct sockaddr_in	*sin = (const void *)ss;
	char				 buf[INET_ADDRSTRLEN];

	assert_int_equal(sin->sin_family, AF_INET);
	inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
	assert_string_equal(buf, host);
	assert_int_equal(ntohs(sin->sin_port), port);
}

static void
assert_sin6(const struct sockaddr_storage *ss, const char *host,
    uint16_t port)
{
	const struct sockaddr_in6	*sin6 = (const void *)ss;
	char				 buf[INET6_ADDRSTRLEN];

	assert_int_equal(sin6->sin6_family, AF_INET6);
	inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
	assert_string_equal(buf, host);
	assert_int_equal(ntohs(sin6->sin6_port), port);
}

/* ---- version 1 ---------------------------------------------------------- */

static void
test_v1_tcp4(void **state)
{
	const char		*h = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
	char			 buf[256];
	struct proxy_result	 r;

	(void)state;
	/* The payload that follows is not part of the header. */
	snprintf(buf, sizeof(buf), "%sGET / HTTP/1.1\r\n\r\n", h);
	assert_int_equal(parse_str(PROXY_V1, buf, &r), PROXY_DONE);
	assert_int_equal(r.version, 1);
	assert_int_equal(r.len, strlen(h));
	assert_false(r.local);
	assert_sin(&r.src, "192.168.0.1", 56324);
	assert_sin(&r.dst, "192.168.0.11", 443);
	assert_int_equal(parse_str(PROXY_ANY, buf, &r), PROXY_DONE);
	assert_int_equal(r.len, strlen(h));
	expect_prefixes_more(PROXY_V1, (const uint8_t *)h, strlen(h));
	expect_prefixes_more(PROXY_ANY, (const uint8_t *)h, strlen(h));
}

static void
test_v1_tcp6_and_unknown(void **state)
{
	const char		*h6 = "PROXY TCP6 2001:db8::1 ::1 65535 0\r\n";
	const char		*worst = "PROXY UNKNOWN "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	struct proxy_result	 r;

	(void)state;
	assert_int_equal(parse_str(PROXY_V1, h6, &r), PROXY_DONE);
	assert_sin6(&r.src, "2001:db8::1", 65535);
	assert_sin6(&r.dst, "::1", 0);
	assert_int_equal(parse_str(PROXY_V1, "PROXY UNKNOWN\r\nxyz", &r),
	    PROXY_DONE);
	assert_true(r.local);
	assert_int_equal(r.len, 15);
	/* The longest line the spec allows: 107 bytes with CRLF. */
	assert_int_equal(strlen(worst), PROXY_V1_MAX);
	assert_int_equal(parse_str(PROXY_V1, worst, &r), PROXY_DONE);
	assert_true(r.local);
	assert_int_equal(r.len, PROXY_V1_MAX);
}

static void
test_v1_line_ends(void **state)
{
	char	long_line[200];

	(void)state;
	/* A lone LF, a lone CR: never a line end. */
	expect_fail_str(PROXY_V1, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\nabc",
	    PROXY_ERR_MALFORMED);
	expect_fail_str(PROXY_V1, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rabc",
	    PROXY_ERR_MALFORMED);
	/* No CRLF within 107 bytes. */
	memset(long_line, 'a', sizeof(long_line));
	memcpy(long_line, "PROXY UNKNOWN ", 14);
	expect_fail(PROXY_V1, long_line, PROXY_V1_MAX, PROXY_ERR_OVERSIZED);
	expect_fail(PROXY_V1, long_line, sizeof(long_line),
	    PROXY_ERR_OVERSIZED);
	/* CRLF at bytes 108-109: one too many. */
	long_line[106] = '\r';
	long_line[107] = '\n';
	expect_fail(PROXY_V1, long_line, 108, PROXY_ERR_OVERSIZED);
	/* CR as the 107th byte: its LF would be the 108th. */
	expect_fail(PROXY_V1, long_line, 107, PROXY_ERR_OVERSIZED);
	long_line[105] = '\r';
	long_line[106] = '\n';
	{
		struct proxy_result r;

		assert_int_equal(proxy_parse(PROXY_V1,
		    (const uint8_t *)long_line, 200, &r), PROXY_DONE);
		assert_int_equal(r.len, PROXY_V1_MAX);
	}
}

static void
test_v1_malformed(void **state)
{
	static const char *const bad[] = {
		"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",	/* leading zero */
		"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
		"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",	/* two spaces */
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",	/* trailing space */
		"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
		"PROXY TCP4 ::1 ::1 1 2\r\n",		/* family mismatch */
		"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.256 1 2\r\n",
		"PROXY \r\n",
		"PROXY TCP4\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\t\r\n",
	};
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_fail_str(PROXY_V1, bad[i], PROXY_ERR_MALFORMED);
	/* A NUL before the CRLF. */
	expect_fail(PROXY_V1, "PROXY UNKNOWN\0\r\n", 16, PROXY_ERR_MALFORMED);
}

static void
test_signatures(void **state)
{
	struct v2	h;

	(void)state;
	/* Judged on the first byte that differs. */
	expect_fail_str(PROXY_V1, "G", PROXY_ERR_SIGNATURE);
	expect_fail_str(PROXY_ANY, "GET / HTTP/1.0\r\n\r\n",
	    PROXY_ERR_SIGNATURE);
	expect_fail_str(PROXY_ANY, "PROXX", PROXY_ERR_SIGNATURE);
	expect_fail_str(PROXY_V1, "PROXYTCP4", PROXY_ERR_SIGNATURE);
	/* A TLS ClientHello where the header should be. */
	expect_fail(PROXY_ANY, "\x16\x03\x01\x02\x00", 5, PROXY_ERR_SIGNATURE);
	/* Each version only where it is configured. */
	v2_begin(&h, 0x21, 0x11);
	v2_inet(&h, "1.2.3.4", "5.6.7.8", 1, 2);
	v2_end(&h);
	expect_fail(PROXY_V1, h.b, h.len, PROXY_ERR_SIGNATURE);
	expect_fail_str(PROXY_V2, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
	    PROXY_ERR_SIGNATURE);
	/* The 2.6.0 documentation's typo: \x02 is not a version. */
	h.b[12] = 0x02;
	expect_fail(PROXY_V2, h.b, h.len, PROXY_ERR_SIGNATURE);
	expect_fail(PROXY_V2, h.b, 13, PROXY_ERR_SIGNATURE);
	h.b[12] = 0x11;
	expect_fail(PROXY_V2, h.b, h.len, PROXY_ERR_SIGNATURE);
	/* One wrong byte in the 12-byte block. */
	v2_begin(&h, 0x21, 0x11);
	h.b[7] = 'q';
	expect_fail(PROXY_V2, h.b, 8, PROXY_ERR_SIGNATURE);
}

/* ---- version 2 ---------------------------------------------------------- */

static void
test_v2_tcp4(void **state)
{
	struct v2		h;
	struct proxy_result	r;

	(void)state;
	v2_begin(&h, 0x21, 0x11);
	v2_inet(&h, "10.1.2.3", "10.9.9.9", 40000, 7007);
	v2_end(&h);
	assert_int_equal(h.len, 28);
	expect_prefixes_more(PROXY_V2, h.b, h.len);
	expect_prefixes_more(PROXY_ANY, h.b, h.len);
	memcpy(h.b + h.len, "payload", 7);
	assert_int_equal(proxy_parse(PROXY_V2, h.b, h.len + 7, &r),
	    PROXY_DONE);
	assert_int_equal(r.len, 28);
	assert_int_equal(r.version, 2);
	assert_false(r.local);
	assert_sin(&r.src, "10.1.2.3", 40000);
	assert_sin(&r.dst, "10.9.9.9", 7007);
	assert_false(r.tlv.has_crc32c);
}

static void
test_v2_tcp6(void **state)
{
	struct v2		h;
	struct proxy_result	r;
	uint8_t			a[36];
	uint16_t		p;

	(void)state;
	v2_begin(&h, 0x21, 0x21);
	inet_pton(AF_INET6, "2001:db8::5", a);
	inet_pton(AF_INET6, "2001:db8::1", a + 16);
	p = htons(1234);
	memcpy(a + 32, &p, 2);
	p = htons(443);
	memcpy(a + 34, &p, 2);
	v2_add(&h, a, sizeof(a));
	v2_end(&h);
	assert_int_equal(proxy_parse(PROXY_ANY, h.b, h.len, &r), PROXY_DONE);
	assert_int_equal(r.len, 52);
	assert_sin6(&r.src, "2001:db8::5", 1234);
	assert_sin6(&r.dst, "2001:db8::1", 443);
}

static void
test_v2_local_unspec_unix(void **state)
{
	struct v2		h;
	struct proxy_result	r;
	uint8_t			unix_addrs[216] = { 0 };

	(void)state;
	/* LOCAL, as in HAProxy's health checks: no address. */
	v2_begin(&h, 0x20, 0x00);
	v2_end(&h);
	assert_int_equal(proxy_parse(PROXY_V2, h.b, h.len, &r), PROXY_DONE);
	assert_true(r.local);
	assert_int_equal(r.len, 16);
	/* LOCAL with an address block: skipped whole, family ignored. */
	v2_begin(&h, 0x20, 0x11);
	v2_inet(&h, "1.2.3.4", "5.6.7.8", 1, 2);
	v2_add(&h, "\x04\x00\x02xx", 5);		/* a NOOP TLV */
	v2_end(&h);
	assert_int_equal(proxy_parse(PROXY_V2, h.b, h.len, &r), PROXY_DONE);
	assert_true(r.local);
	assert_int_equal(r.len, 33);
	/* PROXY with UNSPEC, or over UNIX: the real endpoints. */
	v2_begin(&h, 0x21, 0x00);
	v2_end(&h);
	assert_int_equal(proxy_parse(PROXY_V2, h.b, h.len, &r), PROXY_DONE);
	assert_true(r.local);
	v2_begin(&h, 0x21, 0x31);
	v2_add(&h, unix_addrs, sizeof(unix_addrs));
	v2_end(&h);
	assert_int_equal(proxy_parse(PROXY_V2, h.b, h.len, &r), PROXY_DONE);
	assert_true(r.local);
	/* UDP is not what a TCP echo server serves. */
	v2_begin(&h, 0x21, 0x12);
	v2_inet(&h, "1.2.3.4", "5.6.7.8", 1, 2);
	v2_end(&h);
	expect_fail(PROXY_V2, h.b, h.len, PROXY_ERR_UNSUPPORTED);
}

static void
test_v2_malformed(void **state)
{
	struct v2	h;

	(void)state;
	/* Unassigned command, family, protocol: at once. */
	v2_begin(&h, 0x22, 0x11);
	expect_fail(PROXY_V2, h.b, 13, PROXY_ERR_MALFORMED);
	v2_begin(&h, 0x21, 0x41);
	expect_fail(PROXY_V2, h.b, 14, PROXY_ERR_MALFORMED);
	v2_begin(&h, 0x21, 0x13);
	expect_fail(PROXY_V2, h.b, 14, PROXY_ERR_MALFORMED);
	/* Length shorter than the family's addresses. */
	v2_begin(&h, 0x21, 0x11);
	v2_add(&h, "12345678", 8);
	v2_end(&h);
	expect_fail(PROXY_V2, h.b, h.len, PROXY_ERR_MALFORMED);
	v2_begin(&h, 0x21, 0x21);
	v2_inet(&h, "1.2.3.4", "5.6.7.8", 1, 2);
	v2_end(&h);
	expect_fail(PROXY_V2, h.b, h.len, PROXY_ERR_MALFORMED);
	/* A TLV that runs past the header, or is cut short. */
	v2_begin(&h, 0x21, 0x11);
	v2_inet(&h, "1.2.3.4", "5.6.7.8", 1, 2);
	v2_add(&h, "\x01\x00\x09" "ab", 5);
	v2_end(&h);
	expect_fail(PROXY_V2, h.b, h.len, PROXY_ERR_MALFORMED);
	v2_begin(&h, 0x21, 0x11);
	v2_inet(&h, "1.2.3.4", "5.6.7.8", 1, 2);
	v2_add(&h, "\x01\x00", 2);
	v2_end(&h);
	expect_fail(PROXY_V2, h.b, h.len, PROXY_ERR_MALFORMED);
}

static void
test_v2_oversized(void **state)
{
	struct v2		h;
	struct proxy_result	r;

	(void)state;
	v2_begin(&h, 0x21, 0x11);
	h.b[14] = 0xff;
	h.b[15] = 0xff;
	expect_fail(PROXY_V2, h.b, 16, PROXY_ERR_OVERSIZED);
	/* The largest accepted: all padding after the addresses. */
	v2_begin(&h, 0x21, 0x11);
	v2_inet(&h, "1.2.3.4", "5.6.7.8", 1, 2);
	{
		static uint8_t pad[PROXY_V2_MAX];

		v2_tlv(&h, 0x04, pad, PROXY_V2_MAX - h.len - 3);
	}
	v2_end(&h);
	assert_int_equal(h.len, PROXY_V2_MAX);
	assert_int_equal(proxy_parse(PROXY_V2, h.b, h.len, &r), PROXY_DONE);
	h.b[15]++;
	expect_fail(PROXY_V2, h.b, h.len + 1, PROXY_ERR_OVERSIZED);
}

static void
test_v2_tlvs(void **state)
{
	struct v2		h;
	struct proxy_result	r;
	uint8_t			ssl[64];
	size_t			n = 0;

	(void)state;
	v2_begin(&h, 0x21, 0x11);
	v2_inet(&h, "1.2.3.4", "5.6.7.8", 1, 2);
	v2_tlv(&h, 0x01, "h2", 2);
	v2_tlv(&h, 0x02, "echo.example", 12);
	v2_tlv(&h, 0x05, "\x01\x02\x03\x04", 4);
	ssl[n++] = 0x07;			/* client: ssl, cert conn+sess */
	memcpy(ssl + n, "\0\0\0\0", 4);		/* verified */
	n += 4;
	memcpy(ssl + n, "\x21\x00\x07TLSv1.3", 10);
	n += 10;
	memcpy(ssl + n, "\x22\x00\x06" "client", 9);
	n += 9;
	memcpy(ssl + n, "\x23\x00\x03" "AES", 6);
	n += 6;
	v2_tlv(&h, 0x20, ssl, n);
	v2_tlv(&h, 0xe0, "custom", 6);		/* unknown: ignored */
	v2_end_crc(&h);
	expect_prefixes_more(PROXY_V2, h.b, h.len);
	assert_int_equal(proxy_parse(PROXY_V2, h.b, h.len, &r), PROXY_DONE);
	assert_int_equal(r.len, h.len);
	assert_string_equal(r.tlv.alpn, "h2");
	assert_string_equal(r.tlv.authority, "echo.example");
	assert_int_equal(r.tlv.unique_id_len, 4);
	assert_memory_equal(r.tlv.unique_id, "\x01\x02\x03\x04", 4);
	assert_true(r.tlv.has_ssl);
	assert_int_equal(r.tlv.ssl_client, 7);
	assert_int_equal(r.tlv.ssl_verify, 0);
	assert_string_equal(r.tlv.ssl_version, "TLSv1.3");
	assert_string_equal(r.tlv.ssl_cn, "client");
	assert_string_equal(r.tlv.ssl_cipher, "AES");
	assert_true(r.tlv.has_crc32c);
	assert_sin(&r.src, "1.2.3.4", 1);

	/* Any one bit changed: the CRC no longer matches. */
	h.b[20] ^= 0x01;
	expect_fail(PROXY_V2, h.b, h.len, PROXY_ERR_CRC);
	h.b[20] ^= 0x01;
	h.b[h.len - 1] ^= 0x80;
	expect_fail(PROXY_V2, h.b, h.len, PROXY_ERR_CRC);

	/* A CRC32C TLV of the wrong size, or two of them. */
	v2_begin(&h, 0x21, 0x11);
	v2_inet(&h, "1.2.3.4", "5.6.7.8", 1, 2);
	v2_tlv(&h, 0x03, "abc", 3);
	v2_end(&h);
	expect_fail(PROXY_V2, h.b, h.len, PROXY_ERR_MALFORMED);
	v2_begin(&h, 0x21, 0x11);
	v2_inet(&h, "1.2.3.4", "5.6.7.8", 1, 2);
	v2_tlv(&h, 0x03, "abcd", 4);
	v2_end_crc(&h);
	expect_fail(PROXY_V2, h.b, h.len, PROXY_ERR_MALFORMED);

	/* A unique ID over 128 bytes; an SSL TLV too short or overrun. */
	{
		static const uint8_t uid[129];

		v2_begin(&h, 0x21, 0x11);
		v2_inet(&h, "1.2.3.4", "5.6.7.8", 1, 2);
		v2_tlv(&h, 0x05, uid, sizeof(uid));
		v2_end(&h);
		expect_fail(PROXY_V2, h.b, h.len, PROXY_ERR_MALFORMED);
		v2_begin(&h, 0x21, 0x11);
		v2_inet(&h, "1.2.3.4", "5.6.7.8", 1, 2);
		v2_tlv(&h, 0x05, uid, 128);
		v2_end(&h);
		assert_int_equal(proxy_parse(PROXY_V2, h.b, h.len, &r),
		    PROXY_DONE);
	}
	v2_begin(&h, 0x21, 0x11);
	v2_inet(&h, "1.2.3.4", "5.6.7.8", 1, 2);
	v2_tlv(&h, 0x20, "\x01\0\0", 3);
	v2_end(&h);
	expect_fail(PROXY_V2, h.b, h.len, PROXY_ERR_MALFORMED);
	v2_begin(&h, 0x21, 0x11);
	v2_inet(&h, "1.2.3.4", "5.6.7.8", 1, 2);
	v2_tlv(&h, 0x20, "\x01\0\0\0\0\x21\x00\x09TLS", 11);
	v2_end(&h);
	expect_fail(PROXY_V2, h.b, h.len, PROXY_ERR_MALFORMED);
	/* Strings are kept printable. */
	v2_begin(&h, 0x21, 0x11);
	v2_inet(&h, "1.2.3.4", "5.6.7.8", 1, 2);
	v2_tlv(&h, 0x02, "a\nb\0c", 5);
	v2_end(&h);
	assert_int_equal(proxy_parse(PROXY_V2, h.b, h.len, &r), PROXY_DONE);
	assert_string_equal(r.tlv.authority, "a?b?c");
}

/* What HAProxy 2.6 sent with send-proxy-v2 proxy-v2-options
 * crc32c,unique-id, and the client's "hello" after it. */
static void
test_v2_from_haproxy(void **state)
{
	static const uint8_t h[] = {
		0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49,
		0x54, 0x0a, 0x21, 0x11, 0x00, 0x3f, 0x7f, 0x00, 0x00, 0x01,
		0x7f, 0x00, 0x00, 0x01, 0xb0, 0x80, 0x43, 0x94, 0x03, 0x00,
		0x04, 0xea, 0xbb, 0xb9, 0x12, 0x05, 0x00, 0x29,
		'7', 'F', '0', '0', '0', '0', '0', '1', ':', 'B', '0', '8',
		'0', '_', '7', 'F', '0', '0', '0', '0', '0', '1', ':', '4',
		'3', '9', '4', '_', '6', 'B', '0', 'F', '5', '9', '5', '3',
		'_', '0', '0', '0', '0', 'h', 'e', 'l', 'l', 'o',
	};
	static const char uid[] = "7F000001:B080_7F000001:4394_6B0F5953_0000";
	struct proxy_result	r;
	uint8_t			bad[sizeof(h)];

	(void)state;
	assert_int_equal(proxy_parse(PROXY_V2, h, sizeof(h), &r), PROXY_DONE);
	assert_int_equal(r.len, sizeof(h) - 5);
	assert_true(r.tlv.has_crc32c);
	assert_int_equal(r.tlv.unique_id_len, strlen(uid));
	assert_memory_equal(r.tlv.unique_id, uid, strlen(uid));
	assert_sin(&r.src, "127.0.0.1", 45184);
	assert_sin(&r.dst, "127.0.0.1", 17300);
	memcpy(bad, h, sizeof(h));
	bad[60] ^= 1;			/* one bit of the unique ID */
	expect_fail(PROXY_V2, bad, sizeof(bad), PROXY_ERR_CRC);
}

static void
test_crc32c(void **state)
{
	(void)state;
	/* RFC 3720 B.4 check value, and the empty string. */
	assert_int_equal(proxy_crc32c((const uint8_t *)"123456789", 9),
	    0xe3069283u);
	assert_int_equal(proxy_crc32c((const uint8_t *)"", 0), 0);
	{
		uint8_t zeros[32] = { 0 };

		assert_int_equal(proxy_crc32c(zeros, 32), 0x8a9136aau);
	}
}

/* ---- proxy_from --------------------------------------------------------- */

static void
sa4(struct sockaddr_storage *ss, const char *a)
{
	struct sockaddr_in	*sin = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, a, &sin->sin_addr), 1);
}

static void
sa6(struct sockaddr_storage *ss, const char *a)
{
	struct sockaddr_in6	*sin6 = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, a, &sin6->sin6_addr), 1);
}

static void
test_cidr(void **state)
{
	struct proxy_cidr	 c[3];
	struct sockaddr_storage	 ss;
	const char		*why;

	(void)state;
	assert_int_equal(proxy_cidr_parse("10.1.2.3/8", &c[0], &why), 0);
	assert_int_equal(c[0].prefix, 8);
	assert_int_equal(proxy_cidr_parse("2001:db8::/32", &c[1], &why), 0);
	assert_int_equal(proxy_cidr_parse("127.0.0.1", &c[2], &why), 0);
	assert_int_equal(c[2].prefix, 32);
	sa4(&ss, "10.200.0.1");
	assert_true(proxy_cidr_match(c, 3, (struct sockaddr *)&ss));
	sa4(&ss, "11.0.0.1");
	assert_false(proxy_cidr_match(c, 3, (struct sockaddr *)&ss));
	sa4(&ss, "127.0.0.1");
	assert_true(proxy_cidr_match(c, 3, (struct sockaddr *)&ss));
	sa4(&ss, "127.0.0.2");
	assert_false(proxy_cidr_match(c, 3, (struct sockaddr *)&ss));
	sa6(&ss, "2001:db8:ffff::1");
	assert_true(proxy_cidr_match(c, 3, (struct sockaddr *)&ss));
	sa6(&ss, "2001:db9::1");
	assert_false(proxy_cidr_match(c, 3, (struct sockaddr *)&ss));
	/* A v4 peer on a [::] socket arrives mapped. */
	sa6(&ss, "::ffff:10.9.9.9");
	assert_true(proxy_cidr_match(c, 3, (struct sockaddr *)&ss));
	sa6(&ss, "::ffff:12.9.9.9");
	assert_false(proxy_cidr_match(c, 3, (struct sockaddr *)&ss));
	/* /0 takes everyone of its family. */
	assert_int_equal(proxy_cidr_parse("0.0.0.0/0", &c[0], &why), 0);
	sa4(&ss, "203.0.113.9");
	assert_true(proxy_cidr_match(c, 1, (struct sockaddr *)&ss));
	sa6(&ss, "2001:db9::1");
	assert_false(proxy_cidr_match(c, 1, (struct sockaddr *)&ss));
	/* Odd prefixes mask inside a byte. */
	assert_int_equal(proxy_cidr_parse("192.168.5.0/23", &c[0], &why), 0);
	sa4(&ss, "192.168.4.200");
	assert_true(proxy_cidr_match(c, 1, (struct sockaddr *)&ss));
	sa4(&ss, "192.168.6.1");
	assert_false(proxy_cidr_match(c, 1, (struct sockaddr *)&ss));

	assert_int_equal(proxy_cidr_parse("10.0.0.0/33", &c[0], &why), -1);
	assert_int_equal(proxy_cidr_parse("::/129", &c[0], &why), -1);
	assert_int_equal(proxy_cidr_parse("10.0.0.0/", &c[0], &why), -1);
	assert_int_equal(proxy_cidr_parse("10.0.0.0/08", &c[0], &why), -1);
	assert_int_equal(proxy_cidr_parse("10.0.0.0/a", &c[0], &why), -1);
	assert_int_equal(proxy_cidr_parse("example.com", &c[0], &why), -1);
	assert_int_equal(proxy_cidr_parse("/8", &c[0], &why), -1);
	assert_int_equal(proxy_cidr_parse("", &c[0], &why), -1);
}

/* ---- echoload's headers ------------------------------------------------- */

static void
test_built_headers_parse(void **state)
{
	struct sockaddr_storage	 src, dst;
	struct sockaddr_in6	*d6;
	struct proxy_result	 r;
	uint8_t			 buf[PROXY_HDR_MAX];
	size_t			 n;

	(void)state;
	sa4(&src, "203.0.113.7");
	((struct sockaddr_in *)&src)->sin_port = htons(40000);
	sa4(&dst, "127.0.0.1");
	((struct sockaddr_in *)&dst)->sin_port = htons(7007);
	n = proxy_build(1, (struct sockaddr *)&src, (struct sockaddr *)&dst,
	    buf, sizeof(buf));
	assert_int_equal(n, strlen("PROXY TCP4 203.0.113.7 127.0.0.1 "
	    "40000 7007\r\n"));
	assert_memory_equal(buf, "PROXY TCP4 203.0.113.7 127.0.0.1 40000 "
	    "7007\r\n", n);
	assert_int_equal(proxy_parse(PROXY_V1, buf, n, &r), PROXY_DONE);
	assert_int_equal(r.len, n);
	assert_sin(&r.src, "203.0.113.7", 40000);
	assert_sin(&r.dst, "127.0.0.1", 7007);
	n = proxy_build(2, (struct sockaddr *)&src, (struct sockaddr *)&dst,
	    buf, sizeof(buf));
	assert_int_equal(n, 28);
	assert_int_equal(proxy_parse(PROXY_V2, buf, n, &r), PROXY_DONE);
	assert_sin(&r.src, "203.0.113.7", 40000);
	assert_sin(&r.dst, "127.0.0.1", 7007);

	/* IPv6, and an IPv4-mapped source sent as IPv4 to an IPv4 target. */
	sa6(&src, "2001:db8::7");
	((struct sockaddr_in6 *)&src)->sin6_port = htons(1);
	sa6(&dst, "::1");
	d6 = (struct sockaddr_in6 *)&dst;
	d6->sin6_port = htons(2);
	for (int v = 1; v <= 2; v++) {
		n = proxy_build(v, (struct sockaddr *)&src,
		    (struct sockaddr *)&dst, buf, sizeof(buf));
		assert_true(n > 0);
		assert_int_equal(proxy_parse(PROXY_ANY, buf, n, &r),
		    PROXY_DONE);
		assert_int_equal(r.version, v);
		assert_sin6(&r.src, "2001:db8::7", 1);
		assert_sin6(&r.dst, "::1", 2);
	}
	sa6(&src, "::ffff:192.0.2.1");
	sa4(&dst, "192.0.2.2");
	n = proxy_build(2, (struct sockaddr *)&src, (struct sockaddr *)&dst,
	    buf, sizeof(buf));
	assert_int_equal(proxy_parse(PROXY_V2, buf, n, &r), PROXY_DONE);
	assert_sin(&r.src, "192.0.2.1", 0);
	/* Families that cannot go together. */
	sa6(&src, "2001:db8::7");
	assert_int_equal(proxy_build(1, (struct sockaddr *)&src,
	    (struct sockaddr *)&dst, buf, sizeof(buf)), 0);
}

/* ---- config keys -------------------------------------------------------- */

static char	path[64];

static struct config *
load(const char *text, char *err, size_t errlen)
{
	struct config	*conf;
	FILE		*fp;
	int		 fd;

	strcpy(path, "/tmp/echod-test-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd != -1);
	fp = fdopen(fd, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	err[0] = '\0';
	conf = config_load(path, err, errlen);
	unlink(path);
	return conf;
}

static void
expect_error(const char *text, int line, const char *key, const char *what)
{
	struct config	*conf;
	char		 err[CONFIG_ERRLEN], want[256];

	conf = load(text, err, sizeof(err));
	if (conf != NULL) {
		config_free(conf);
		fail_msg("loaded, expected an error at line %d:\n%s", line,
		    text);
	}
	snprintf(want, sizeof(want), "%s:%d: %s: ", path, line, key);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("error \"%s\" does not start with \"%s\"", err, want);
	if (what != NULL && strstr(err, what) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, what);
}

static void
test_config_keys(void **state)
{
	struct config		*conf;
	struct listen_conf	*l;
	char			 err[CONFIG_ERRLEN];

	(void)state;
	conf = load("[listen a]\naddress = 127.0.0.1:1\n"
	    "[listen b]\naddress = 127.0.0.1:2\nproxy_protocol = v2\n"
	    "proxy_timeout = 250ms\n"
	    "proxy_from = 10.0.0.0/8 ,  ::1, 192.168.1.7\n"
	    "[listen c]\naddress = 127.0.0.1:3\nproxy_protocol = any\n"
	    "[listen d]\naddress = 127.0.0.1:4\nproxy_protocol = v1\n",
	    err, sizeof(err));
	if (conf == NULL)
		fail_msg("%s", err);
	l = conf->listeners;
	assert_int_equal(l->proxy, PROXY_OFF);
	assert_int_equal(l->proxy_timeout_us, 3000000);
	assert_null(l->proxy_from);
	l = l->next;
	assert_int_equal(l->proxy, PROXY_V2);
	assert_int_equal(l->proxy_timeout_us, 250000);
	assert_int_equal(l->nproxy_from, 3);
	assert_int_equal(l->proxy_from[0].prefix, 8);
	assert_int_equal(l->proxy_from[1].family, AF_INET6);
	assert_int_equal(l->proxy_from[2].prefix, 32);
	assert_int_equal(l->next->proxy, PROXY_ANY);
	assert_int_equal(l->next->next->proxy, PROXY_V1);
	config_free(conf);

	expect_error("[listen a]\naddress = 127.0.0.1:1\nproxy_protocol = v3\n",
	    3, "proxy_protocol", "v3");
	expect_error("[listen a]\naddress = 127.0.0.1:1\nproxy_protocol = v1\n"
	    "proxy_timeout = 0\n", 4, "proxy_timeout", "above 0");
	expect_error("[listen a]\naddress = 127.0.0.1:1\nproxy_protocol = v1\n"
	    "proxy_timeout = soon\n", 4, "proxy_timeout", "soon");
	expect_error("[listen a]\naddress = 127.0.0.1:1\nproxy_protocol = v1\n"
	    "proxy_from = 10.0.0.0/40\n", 4, "proxy_from", "10.0.0.0/40");
	expect_error("[listen a]\naddress = 127.0.0.1:1\nproxy_protocol = v1\n"
	    "proxy_from = 10.0.0.1,,10.0.0.2\n", 4, "proxy_from", "empty");
	expect_error("[listen a]\naddress = 127.0.0.1:1\nproxy_protocol = v1\n"
	    "proxy_from = lb.example\n", 4, "proxy_from", "lb.example");
	/* proxy_from without the protocol would protect nothing. */
	expect_error("[listen a]\naddress = 127.0.0.1:1\n"
	    "proxy_from = 10.0.0.1\n", 3, "proxy_from", "proxy_protocol");
	expect_error("[listen a]\naddress = 127.0.0.1:1\nproxy_protocol = v1\n"
	    "proxy_protocol = v2\n", 4, "proxy_protocol", "twice");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_tcp4),
		cmocka_unit_test(test_v1_tcp6_and_unknown),
		cmocka_unit_test(test_v1_line_ends),
		cmocka_unit_test(test_v1_malformed),
		cmocka_unit_test(test_signatures),
		cmocka_unit_test(test_v2_tcp4),
		cmocka_unit_test(test_v2_tcp6),
		cmocka_unit_test(test_v2_local_unspec_unix),
		cmocka_unit_test(test_v2_malformed),
		cmocka_unit_test(test_v2_oversized),
		cmocka_unit_test(test_v2_tlvs),
		cmocka_unit_test(test_v2_from_haproxy),
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_built_headers_parse),
		cmocka_unit_test(test_config_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
