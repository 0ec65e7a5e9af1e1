/*
 * proxy_send.h: echoload --proxy: the PROXY protocol header (v1 text or v2
 * binary) that each connection sends first, as a load balancer would, so
 * that echoload can test servers and balancers that accept it.
 */
#ifndef ECHOLOAD_PROXY_SEND_H
#define ECHOLOAD_PROXY_SEND_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

struct opts;

#define PROXY_HDR_MAX	128	/* v1 is at most 107, v2 TCP6 52 */

/* --proxy v1|v2 and --proxy-source ADDR:PORT into o: 0, or -1 with err. */
int	proxy_opt_version(struct opts *, const char *arg, char *err,
	    size_t errlen);
int	proxy_opt_source(struct opts *, const char *arg, char *err,
	    size_t errlen);
/* Options that need each other: 0, or -1 with err. */
int	proxy_opt_check(const struct opts *, char *err, size_t errlen);

/*
 * The header for a connection from src to dst (same family, AF_INET or
 * AF_INET6; an IPv4-mapped src is sent as IPv4 when dst is IPv4). Returns
 * its length, or 0 when the families cannot go together.
 */
size_t	proxy_build(int version, const struct sockaddr *src,
	    const struct sockaddr *dst, uint8_t *buf, size_t len);

/*
 * The header for fd, connected to dst, into buf (PROXY_HDR_MAX bytes): its
 * source is --proxy-source or the socket's own address. Its length, or 0
 * with errno set (EAFNOSUPPORT: the source and target families differ).
 */
size_t	proxy_header(const struct opts *, int fd, const struct sockaddr *dst,
	    uint8_t *buf);
/* Build the header and send it on fd before anything else: 0, or -1 with
 * errno set. */
int	proxy_send(const struct opts *, int fd, const struct sockaddr *dst);

#endif
