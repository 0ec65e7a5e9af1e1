/*
 * source.c: parsing and walking the source address set. Addresses are kept
 * as big-endian byte strings (4 or 16 bytes) so that IPv4 and IPv6 share
 * one piece of arithmetic: the i-th address of a range is its base plus i.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source.h"

static size_t
family_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

/* a += v, big-endian, len bytes (carry past the top is dropped). */
static void
bytes_add(uint8_t *a, size_t len, uint64_t v)
{
	size_t		i = len;
	unsigned	carry = 0;

	while (i-- > 0 && (v != 0 || carry != 0)) {
		unsigned	sum = a[i] + (unsigned)(v & 0xff) + carry;

		a[i] = (uint8_t)sum;
		carry = sum >> 8;
		v >>= 8;
	}
}

/* Clear the host bits past prefix. */
static void
bytes_mask(uint8_t *a, size_t len, unsigned prefix)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		if (prefix >= 8) {
			prefix -= 8;
			continue;
		}
		a[i] &= (uint8_t)(0xff << (8 - prefix));
		prefix = 0;
	}
}

static int
parse_host(const char *s, size_t n, struct source_range *r)
{
	char	buf[INET6_ADDRSTRLEN + 2];

	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(r->base, 0, sizeof r->base);
	if (inet_pton(AF_INET, buf, r->base) == 1)
		r->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, r->base) == 1)
		r->family = AF_INET6;
	else
		return -1;
	return 0;
}

/* The addresses of a block of 2^bits, capped, less its network address
 * (and for IPv4 its broadcast address) when it has more than two. */
static void
block(struct source_range *r, unsigned bits)
{
	uint64_t	n;

	n = bits >= 24 ? SOURCE_MAX_RANGE : UINT64_C(1) << bits;
	if (bits < 2) {
		r->count = n;
		return;
	}
	bytes_add(r->base, family_len(r->family), 1);
	if (bits < 24)
		n -= r->family == AF_INET ? 2 : 1;
	r->count = n;
}

static int
parse_item(const char *s, size_t n, struct source_range *r,
    const char **why)
{
	const char	*slash = memchr(s, '/', n);
	unsigned long	 prefix;
	unsigned	 width;
	char		 num[8], *end;
	size_t		 k;

	if (parse_host(s, slash != NULL ? (size_t)(slash - s) : n, r) != 0) {
		*why = "not an IPv4 or IPv6 address";
		return -1;
	}
	r->count = 1;
	if (slash == NULL)
		return 0;
	k = n - (size_t)(slash - s) - 1;
	if (k == 0 || k >= sizeof num || slash[1] < '0' || slash[1] > '9') {
		*why = "bad prefix length after /";
		return -1;
	}
	memcpy(num, slash + 1, k);
	num[k] = '\0';
	prefix = strtoul(num, &end, 10);
	width = r->family == AF_INET ? 32 : 128;
	if (*end != '\0') {
		*why = "bad prefix length after /";
		return -1;
	}
	if (prefix > width) {
		*why = r->family == AF_INET ? "prefix length above 32" :
		    "prefix length above 128";
		return -1;
	}
	bytes_mask(r->base, family_len(r->family), (unsigned)prefix);
	block(r, width - (unsigned)prefix);
	return 0;
}

int
source_parse(struct source_set *set, const char *arg, const char **why)
{
	struct source_set	 next = *set;
	const char		*p = arg, *comma;
	size_t			 n;

	if (*arg == '\0') {
		*why = "no address";
		return -1;
	}
	for (;;) {
		comma = strchr(p, ',');
		n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (n == 0) {
			*why = "empty item in the list";
			return -1;
		}
		if (next.n == SOURCE_MAX_RANGES) {
			*why = "more than 64 addresses or blocks";
			return -1;
		}
		if (parse_item(p, n, &next.r[next.n], why) != 0)
			return -1;
		next.total += next.r[next.n].count;
		next.n++;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	*set = next;
	return 0;
}

int
source_family(const struct source_set *set)
{
	unsigned	i;

	if (set->n == 0)
		return 0;
	for (i = 1; i < set->n; i++)
		if (set->r[i].family != set->r[0].family)
			return -1;
	return set->r[0].family;
}

void
source_nth(const struct source_set *set, uint64_t i,
    struct sockaddr_storage *ss, socklen_t *len)
{
	const struct source_range	*r = set->r;
	struct sockaddr_in		*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6		*sin6 = (struct sockaddr_in6 *)ss;
	uint8_t				 a[16];

	i %= set->total;
	while (i >= r->count) {
		i -= r->count;
		r++;
	}
	memcpy(a, r->base, sizeof a);
	bytes_add(a, family_len(r->family), i);
	memset(ss, 0, sizeof *ss);
	if (r->family == AF_INET) {
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a, 4);
		*len = sizeof *sin;
	} else {
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a, 16);
		*len = sizeof *sin6;
	}
}

void
source_loopback(struct source_set *set, uint64_t count, uint32_t seed)
{
	struct source_range	*r = &set->r[0];

	memset(set, 0, sizeof *set);
	r->family = AF_INET;
	r->base[0] = 127;
	/* From 127.1.0.1 to 127.127.255.1: far from 127.0.0.1, and room
	 * above for any count a run can use. */
	r->base[1] = (uint8_t)(1 + seed % 127);
	r->base[2] = (uint8_t)(seed >> 8);
	r->base[3] = 1;
	r->count = count;
	set->n = 1;
	set->total = count;
}

static const char *
range_addr(const struct source_range *r, uint64_t i, char *buf, size_t len)
{
	uint8_t	a[16];

	memcpy(a, r->base, sizeof a);
	bytes_add(a, family_len(r->family), i);
	if (inet_ntop(r->family, a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
	return buf;
}

const char *
source_describe(const struct source_set *set, char *buf, size_t len)
{
	char	a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];

	if (set->n == 0)
		snprintf(buf, len, "chosen by the system");
	else if (set->n == 1 && set->total == 1)
		snprintf(buf, len, "%s", range_addr(&set->r[0], 0, a,
		    sizeof a));
	else if (set->n == 1)
		snprintf(buf, len, "%llu addresses, %s to %s",
		    (unsigned long long)set->total,
		    range_addr(&set->r[0], 0, a, sizeof a),
		    range_addr(&set->r[0], set->total - 1, b, sizeof b));
	else
		snprintf(buf, len, "%llu addresses in %u ranges, from %s",
		    (unsigned long long)set->total, set->n,
		    range_addr(&set->r[0], 0, a, sizeof a));
	return buf;
}
