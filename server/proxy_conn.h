/*
 * proxy_conn.h: a connection on a listener with proxy_protocol, on its
 * worker, from accept until its PROXY header is read; then it becomes a
 * plain or TLS connection like any other.
 */
#ifndef ECHOD_PROXY_CONN_H
#define ECHOD_PROXY_CONN_H

#include <sys/socket.h>
#include <stddef.h>

struct worker;
struct listener;

/*
 * Registered by the worker: serve the connection once its header is read,
 * as its client's (peer) with the balancer as via (NULL for a LOCAL or
 * UNKNOWN header), starting with the len bytes after the header that were
 * read with it (plain listeners only; a TLS listener's socket still holds
 * everything after the header). The listener reference goes with it.
 */
typedef void (*proxy_next_fn)(struct worker *, int fd, struct listener *,
    const struct sockaddr *peer, socklen_t, const struct sockaddr *via,
    const char *data, size_t len);
void	proxy_conn_init(proxy_next_fn);
/* Worker thread: wait for the header of an accepted socket (peer is the
 * socket's own peer: the balancer). Takes over the listener reference;
 * a connection that never gets past its header is released as any other
 * (conn_release). */
void	proxy_conn_start(struct worker *, int fd, struct listener *,
	    const struct sockaddr *peer, socklen_t);
/* Worker thread, stopping now: close the connections still waiting. */
void	proxy_conn_close_all(struct worker *);

#endif
