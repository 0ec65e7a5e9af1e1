/*
 * listener.h: listening sockets, accepting, and admission. The main thread
 * binds every listener and accepts on it, handing each connection to a
 * worker (worker_dispatch_conn); with reuseport each worker gets its own
 * SO_REUSEPORT socket and accepts itself. Admission (max_connections) is
 * counted here for every listener together.
 */
#ifndef ECHOD_LISTENER_H
#define ECHOD_LISTENER_H

#include <stdint.h>

#include "config.h"
#include "server.h"

struct event_base;
struct msgq;

/*
 * Before any socket starts: the main base, the main thread's queue (a
 * worker's close that makes room is news for the main thread), the list of
 * running listeners that pausing and resuming walk, and max_connections.
 * Main thread.
 */
void		 listener_init(struct event_base *, struct msgq *mainq,
		    struct listener_list *, uint64_t max_connections);
/* A listener with lc's settings and no socket yet. */
struct listener	*listener_new(const struct listen_conf *);
/* Bind (before privileges are dropped); nothing is accepted yet. With
 * reuseport, one socket per worker (nworkers). */
struct listener	*listener_bind(const struct listen_conf *, int nworkers,
		    char *err, size_t errlen);
void		 listener_ref(struct listener *);
void		 listener_unref(struct listener *);
/* Start accepting: on the main base, or on the workers with reuseport
 * (through their queues when running). */
void		 listener_enable(struct listener *, int running);
/* The stop: no more accepting anywhere; graceful serves what the kernel had
 * already accepted first. Resuming is off from then on. */
void		 listener_stop_all(int graceful);
/* At exit, once the workers have stopped: close every socket left. */
void		 listener_close(struct listener *);
/* Reload: stop and close every socket of a listener that is gone. */
void		 listener_remove(struct listener *);
/* Reload: close a listener that was bound but never started. */
void		 listener_discard(struct listener *);
/* Reload: take over from's sockets (same address, new settings). */
void		 listener_adopt(struct listener *to, struct listener *from);
/* Would lc bind exactly l's sockets? */
int		 listener_same_socket(const struct listener *,
		    const struct listen_conf *);
/* Reload: a new backlog for the sockets kept. */
void		 listener_set_backlog(struct listener *, int);

/*
 * Admission. listener_admit: 1 when one more connection may be served
 * (counted, and accepting pauses when that one reaches the limit), 0 when
 * refused (counted as refused). listener_conn_done: a connection that was
 * admitted is gone (any thread; registered with the workers); it also
 * drops the listener reference the connection held. A new limit (reload)
 * pauses or resumes at once.
 */
int		 listener_admit(struct listener *);
void		 listener_conn_done(struct listener *);
void		 listener_set_max_connections(uint64_t);
uint64_t	 listener_conns_open(void);
uint64_t	 listener_max_connections(void);

#endif
