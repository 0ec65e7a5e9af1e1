/*
 * addr.c: parsing, resolving and printing of HOST:PORT addresses, shared by
 * echod's listeners and echoload's target.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "parse.h"

static int
parse_port(const char *s, int *port, const char **why)
{
	uint64_t	v;

	if (parse_uint(s, 0, 65535, &v, why) != 0) {
		*why = "bad port (use 0 to 65535)";
		return -1;
	}
	*port = (int)v;
	return 0;
}

int
addr_parse(const char *spec, const char *default_host, struct addr_spec *out,
    const char **why)
{
	const char	*colon, *host, *port;
	size_t		 hostlen;

	memset(out, 0, sizeof(*out));
	if (spec == NULL || *spec == '\0') {
		*why = "empty address";
		return -1;
	}
	if (*spec == '[') {
		const char *close = strchr(spec, ']');

		if (close == NULL) {
			*why = "missing ']' after IPv6 address";
			return -1;
		}
		if (close[1] != ':') {
			*why = "missing :PORT after ']'";
			return -1;
		}
		host = spec + 1;
		hostlen = (size_t)(close - host);
		port = close + 2;
		if (hostlen == 0 || memchr(host, ':', hostlen) == NULL) {
			*why = "brackets hold an IPv6 address";
			return -1;
		}
	} else if ((colon = strrchr(spec, ':')) == NULL) {
		if (default_host == NULL) {
			*why = "missing :PORT";
			return -1;
		}
		host = default_host;
		hostlen = strlen(default_host);
		port = spec;
	} else {
		if (strchr(spec, ':') != colon) {
			*why = "IPv6 addresses need brackets: [::1]:PORT";
			return -1;
		}
		host = spec;
		hostlen = (size_t)(colon - spec);
		port = colon + 1;
		if (hostlen == 0) {
			*why = "missing host before ':' (use * for all)";
			return -1;
		}
	}
	if (hostlen >= sizeof(out->host)) {
		*why = "host name too long";
		return -1;
	}
	if (parse_port(port, &out->port, why) != 0)
		return -1;
	if (hostlen == 1 && host[0] == '*') {
		out->wildcard = 1;
		return 0;
	}
	memcpy(out->host, host, hostlen);
	out->host[hostlen] = '\0';
	return 0;
}

int
addr_resolve(const struct addr_spec *spec, int passive,
    struct sockaddr_storage *out, socklen_t *lens, int max, const char **why)
{
	struct addrinfo	 hints, *res, *ai;
	char		 port[16];
	int		 n = 0, rv;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	snprintf(port, sizeof(port), "%d", spec->port);
	if (spec->wildcard) {
		/* One IPv6 socket with V6ONLY off takes IPv4 as well; the
		 * listener falls back to 0.0.0.0 where IPv6 is missing. */
		struct sockaddr_in6 *sin6;

		if (max < 1) {
			*why = "no room";
			return -1;
		}
		memset(&out[0], 0, sizeof(out[0]));
		sin6 = (struct sockaddr_in6 *)&out[0];
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = htons((uint16_t)spec->port);
		lens[0] = sizeof(*sin6);
		return 1;
	}
	if ((rv = getaddrinfo(spec->host, port, &hints, &res)) != 0) {
		*why = gai_strerror(rv);
		return -1;
	}
	for (ai = res; ai != NULL && n < max; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		memcpy(&out[n], ai->ai_addr, ai->ai_addrlen);
		lens[n] = ai->ai_addrlen;
		n++;
	}
	freeaddrinfo(res);
	if (n == 0) {
		*why = "no IPv4 or IPv6 address found";
		return -1;
	}
	return n;
}

const char *
addr_host(const struct sockaddr *sa, char *buf, size_t len)
{
	const void	*src;

	if (sa->sa_family == AF_INET)
		src = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		src = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	else {
		snprintf(buf, len, "unknown");
		return buf;
	}
	if (inet_ntop(sa->sa_family, src, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "unknown");
	return buf;
}

int
addr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

const char *
addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char	host[INET6_ADDRSTRLEN];

	addr_host(sa, host, sizeof(host));
	if (sa->sa_family == AF_INET6)
		snprintf(buf, len, "[%s]:%d", host, addr_port(sa));
	else
		snprintf(buf, len, "%s:%d", host, addr_port(sa));
	return buf;
}
