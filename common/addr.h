/*
 * addr.h: the HOST:PORT syntax both programs accept. "127.0.0.1:7007",
 * "[::1]:7007", "localhost:7007" and, where listening, "*:7007" (every
 * address) or a bare "7007" where the caller allows a default host.
 */
#ifndef ECHOLOAD_ADDR_H
#define ECHOLOAD_ADDR_H

#include <sys/socket.h>
#include <netinet/in.h>

#define ADDR_HOSTMAX	256
/* Longest text addr_format writes, with the NUL: "[v6%scope]:65535". */
#define ADDR_STRLEN	(INET6_ADDRSTRLEN + 16)

struct addr_spec {
	char	host[ADDR_HOSTMAX];	/* empty for "*" */
	int	port;
	int	wildcard;		/* "*:PORT" */
};

/*
 * Split spec into host and port. default_host, when not NULL, allows a bare
 * port ("7007" -> default_host:7007). Returns 0, or -1 with *why set.
 */
int	addr_parse(const char *spec, const char *default_host,
	    struct addr_spec *out, const char **why);

/*
 * Resolve a parsed spec into up to max socket addresses (numeric hosts need
 * no DNS; names go through getaddrinfo). passive selects wildcard binding.
 * Returns the number found, or -1 with *why set.
 */
int	addr_resolve(const struct addr_spec *, int passive,
	    struct sockaddr_storage *out, socklen_t *lens, int max,
	    const char **why);

/* "1.2.3.4:80" or "[::1]:80" into buf (at least ADDR_STRLEN bytes). */
const char *addr_format(const struct sockaddr *, char *buf, size_t len);
/* Host part only, and the port. */
const char *addr_host(const struct sockaddr *, char *buf, size_t len);
int	addr_port(const struct sockaddr *);

#endif
