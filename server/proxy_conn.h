/*
 * proxy_conn.h: a connection on a listener with proxy_protocol, on its
 * worker, from accept until its PROXY header is read; then it becomes a
 * plain or TLS connection like any other.
 */
#ifndef ECHOD_PROXY_CONN_H
#define ECHOD_PROXY_CONN_H

#include <sys/socket.h>

struct worker;
struct listener;

/* Worker thread: wait for the header of an accepted socket (peer is the
 * socket's own peer: the balancer). */
void	proxy_conn_start(struct worker *, int fd, struct listener *,
	    const struct sockaddr *peer, socklen_t);
/* Worker thread, stopping now: close the connections still waiting. */
void	proxy_conn_close_all(struct worker *);

#endif
