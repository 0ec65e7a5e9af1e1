/*
 * proxy_send.c: the PROXY protocol header echoload sends first on each
 * connection with --proxy: version 1 (one text line) or version 2 (binary,
 * the PROXY command over TCP). The destination is the target as connected;
 * the source is the connection's own address unless --proxy-source names
 * another, so that a server's access log can be checked against it.
 *
 * On plain TCP the session sends the header in front of its first write,
 * in one system call and one segment, as a balancer does (session.c); with
 * TLS, and before the run, it goes alone. It is a few dozen bytes on a
 * fresh socket whose send buffer is empty, so one send() takes it whole; a
 * short send is an error rather than a state of its own.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "echoload.h"
#include "proxy_send.h"
#include "sock.h"

static const uint8_t v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};

int
proxy_opt_version(struct opts *o, const char *arg, char *err, size_t errlen)
{
	if (strcmp(arg, "v1") == 0)
		o->proxy = 1;
	else if (strcmp(arg, "v2") == 0)
		o->proxy = 2;
	else {
		snprintf(err, errlen, "--proxy %s: not v1 or v2", arg);
		return -1;
	}
	return 0;
}

int
proxy_opt_source(struct opts *o, const char *arg, char *err, size_t errlen)
{
	struct addr_spec	 spec;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&o->proxy_src;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&o->proxy_src;
	const char		*why;

	memset(&o->proxy_src, 0, sizeof(o->proxy_src));
	if (addr_parse(arg, NULL, &spec, &why) != 0) {
		snprintf(err, errlen, "--proxy-source %s: %s", arg, why);
		return -1;
	}
	if (spec.wildcard || spec.host[0] == '\0') {
		snprintf(err, errlen, "--proxy-source %s: needs an address",
		    arg);
		return -1;
	}
	if (inet_pton(AF_INET, spec.host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)spec.port);
	} else if (inet_pton(AF_INET6, spec.host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)spec.port);
	} else {
		snprintf(err, errlen, "--proxy-source %s: not an IPv4 or IPv6 "
		    "address", arg);
		return -1;
	}
	o->proxy_source = arg;
	return 0;
}

int
proxy_opt_check(const struct opts *o, char *err, size_t errlen)
{
	if (o->proxy_source != NULL && o->proxy == 0) {
		snprintf(err, errlen, "--proxy-source needs --proxy");
		return -1;
	}
	return 0;
}

/* An IPv4-mapped IPv6 address as the IPv4 one it is. */
static const struct sockaddr *
unmap(const struct sockaddr *sa, struct sockaddr_in *tmp)
{
	const struct sockaddr_in6	*sin6 = (const void *)sa;

	if (sa->sa_family != AF_INET6 ||
	    !IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
		return sa;
	memset(tmp, 0, sizeof(*tmp));
	tmp->sin_family = AF_INET;
	memcpy(&tmp->sin_addr, sin6->sin6_addr.s6_addr + 12, 4);
	tmp->sin_port = sin6->sin6_port;
	return (const struct sockaddr *)tmp;
}

static size_t
build_v1(const struct sockaddr *src, const struct sockaddr *dst,
    uint8_t *buf, size_t len)
{
	char	s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	int	n;

	addr_host(src, s, sizeof(s));
	addr_host(dst, d, sizeof(d));
	n = snprintf((char *)buf, len, "PROXY %s %s %s %d %d\r\n",
	    src->sa_family == AF_INET ? "TCP4" : "TCP6", s, d,
	    addr_port(src), addr_port(dst));
	return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

static size_t
build_v2(const struct sockaddr *src, const struct sockaddr *dst,
    uint8_t *buf, size_t len)
{
	size_t		alen = src->sa_family == AF_INET ? 12 : 36;
	uint8_t		*p = buf + 16;

	if (len < 16 + alen)
		return 0;
	memcpy(buf, v2_sig, sizeof(v2_sig));
	buf[12] = 0x21;				/* version 2, PROXY */
	buf[13] = src->sa_family == AF_INET ? 0x11 : 0x21;	/* TCP */
	buf[14] = 0;
	buf[15] = (uint8_t)alen;
	if (src->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)src;
		const struct sockaddr_in *d = (const void *)dst;

		memcpy(p, &s->sin_addr, 4);
		memcpy(p + 4, &d->sin_addr, 4);
		memcpy(p + 8, &s->sin_port, 2);
		memcpy(p + 10, &d->sin_port, 2);
	} else {
		const struct sockaddr_in6 *s = (const void *)src;
		const struct sockaddr_in6 *d = (const void *)dst;

		memcpy(p, &s->sin6_addr, 16);
		memcpy(p + 16, &d->sin6_addr, 16);
		memcpy(p + 32, &s->sin6_port, 2);
		memcpy(p + 34, &d->sin6_port, 2);
	}
	return 16 + alen;
}

size_t
proxy_build(int version, const struct sockaddr *src,
    const struct sockaddr *dst, uint8_t *buf, size_t len)
{
	struct sockaddr_in	s4, d4;

	src = unmap(src, &s4);
	dst = unmap(dst, &d4);
	if (src->sa_family != dst->sa_family ||
	    (src->sa_family != AF_INET && src->sa_family != AF_INET6))
		return 0;
	return version == 1 ? build_v1(src, dst, buf, len) :
	    build_v2(src, dst, buf, len);
}

size_t
proxy_header(const struct opts *o, int fd, const struct sockaddr *dst,
    uint8_t *buf)
{
	struct sockaddr_storage	 local;
	socklen_t		 llen = sizeof(local);
	const struct sockaddr	*src;
	size_t			 n;

	if (o->proxy_source != NULL)
		src = (const struct sockaddr *)&o->proxy_src;
	else {
		if (getsockname(fd, (struct sockaddr *)&local, &llen) != 0)
			return 0;
		src = (const struct sockaddr *)&local;
	}
	n = proxy_build(o->proxy, src, dst, buf, PROXY_HDR_MAX);
	if (n == 0)
		errno = EAFNOSUPPORT;
	return n;
}

int
proxy_send(const struct opts *o, int fd, const struct sockaddr *dst)
{
	uint8_t		buf[PROXY_HDR_MAX];
	size_t		n;
	ssize_t		k;

	if ((n = proxy_header(o, fd, dst, buf)) == 0)
		return -1;
	do
		k = sock_send(fd, buf, n);
	while (k == -1 && errno == EINTR);
	if (k == -1)
		return -1;
	if ((size_t)k != n) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}
