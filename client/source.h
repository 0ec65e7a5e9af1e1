/*
 * source.h: the set of local addresses echoload binds its connections to
 * (--source, or loopback addresses it picks itself): a list of address
 * ranges, each a base and a count, so that a CIDR block costs one entry
 * however large it is. Connection k uses address k modulo the total.
 */
#ifndef ECHOLOAD_SOURCE_H
#define ECHOLOAD_SOURCE_H

#include <sys/socket.h>
#include <netinet/in.h>

#include <stddef.h>
#include <stdint.h>

#define SOURCE_MAX_RANGES	64
/* No block is worth more addresses than there can be connections. */
#define SOURCE_MAX_RANGE	(UINT64_C(1) << 24)

struct source_range {
	int		family;		/* AF_INET or AF_INET6 */
	uint8_t		base[16];	/* network byte order */
	uint64_t	count;
};

struct source_set {
	unsigned	n;
	uint64_t	total;
	struct source_range r[SOURCE_MAX_RANGES];
};

/*
 * Add "ADDR", "ADDR/PREFIX" or a comma-separated list of them (IPv6 with
 * or without brackets). A block gives all its addresses, less the network
 * and broadcast addresses of an IPv4 prefix shorter than /31. Returns 0, or
 * -1 with *why set; the set is left as it was on error.
 */
int	source_parse(struct source_set *, const char *arg, const char **why);
/* The family every range shares, 0 when empty, -1 when they are mixed. */
int	source_family(const struct source_set *);
/* Address i (taken modulo the total), port 0. */
void	source_nth(const struct source_set *, uint64_t i,
	    struct sockaddr_storage *, socklen_t *);
/* count addresses of 127.0.0.0/8 from a base chosen by seed, never
 * 127.0.0.0/16, so that one run's TIME_WAIT sockets seldom meet the next's. */
void	source_loopback(struct source_set *, uint64_t count, uint32_t seed);
/* "127.9.3.1", "127.9.3.1 to 127.9.3.15" or "3 ranges, 40 addresses". */
const char *source_describe(const struct source_set *, char *, size_t);

#endif
