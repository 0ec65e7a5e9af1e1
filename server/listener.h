/*
 * listener.h: listening sockets. The main thread binds every listener and
 * accepts on it, handing each connection to a worker round-robin; with
 * reuseport each worker gets its own SO_REUSEPORT socket and accepts itself.
 */
#ifndef ECHOD_LISTENER_H
#define ECHOD_LISTENER_H

#include "config.h"
#include "server.h"

struct worker;

/* A listener with lc's settings and no socket yet. */
struct listener	*listener_new(const struct listen_conf *);
/* Bind (before privileges are dropped); nothing is accepted yet. */
struct listener	*listener_bind(const struct listen_conf *, char *err,
		    size_t errlen);
/* Start accepting: on the main base, or on the workers with reuseport
 * (through their queues when running). */
void		 listener_enable(struct listener *, int running);
/* Close the main thread's sockets (workers close theirs); graceful
 * serves what the kernel had already accepted first. */
void		 listener_close(struct listener *, int graceful);
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
void		 listener_pause_all(void);
void		 listener_resume_all(void);
/* Worker side, for reuseport sockets handed to a worker. */
void		 listener_worker_stop(struct worker *, int graceful);
void		 listener_worker_resume(struct worker *);
void		 listener_worker_free(struct worker *);

#endif
