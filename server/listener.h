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

/* Bind (before privileges are dropped); nothing is accepted yet. */
struct listener	*listener_bind(const struct listen_conf *, char *err,
		    size_t errlen);
/* Start accepting: on the main base, or on the workers with reuseport. */
void		 listener_enable(struct listener *);
/* Close the sockets now; the memory goes with the last reference. */
void		 listener_close(struct listener *);
void		 listener_pause_all(void);
void		 listener_resume_all(void);
/* Worker side, for reuseport sockets handed to a worker. */
void		 listener_worker_stop(struct worker *);
void		 listener_worker_resume(struct worker *);
void		 listener_worker_free(struct worker *);

#endif
