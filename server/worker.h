/*
 * worker.h: worker threads. A worker owns one event_base and every
 * connection on it; other threads talk to it only through messages on its
 * queue (msgq.h): no connection is ever touched by two threads. The pool of
 * workers lives here, and so does the choice of the worker for a new
 * connection (memcached's dispatch_conn_new) and of plain or TLS for it.
 */
#ifndef ECHOD_WORKER_H
#define ECHOD_WORKER_H

#include <sys/socket.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/time.h>

#include "msgq.h"
#include "stats.h"

struct event_base;
struct listener;
struct tls_worker;

enum worker_msg_type {
	WMSG_CONN,		/* serve fd for listener */
	WMSG_DRAIN,		/* stop taking work; exit when idle */
	WMSG_CLOSE_ALL,		/* close everything now and exit */
	WMSG_CALL,		/* run fn(worker, arg) on the worker */
};

struct worker;
typedef void (*worker_fn)(struct worker *, void *);

/*
 * What the room above registers (listener and server): called on the
 * worker's thread. conn_done: a connection handed over by
 * worker_dispatch_conn or worker_serve is gone, served or not (its listener
 * reference and its admission slot are released there). exited: the
 * worker left its loop.
 */
struct worker_hooks {
	void	(*conn_done)(struct listener *);
	void	(*exited)(struct worker *, void *arg);
	void	 *arg;
};

/* What the configuration sets for a worker; reload changes it live. */
struct worker_limits {
	uint64_t	max_buffer;
	uint64_t	idle_timeout_us;	/* 0: none */
};

struct worker {
	int			 id;
	pthread_t		 thread;
	int			 started;	/* thread made */
	struct event_base	*base;
	struct worker_stats	 stats;
	atomic_uint_fast64_t	 seen_gen;	/* reload barrier passed */
	struct msgq		 queue;	/* the only state shared with others */

	/* Owned by the worker thread; conn.c and tls_conn.c read them.
	 * nconns counts plain and TLS ones. */
	unsigned int		 nconns;
	int			 draining;
	int			 closing;
	char			*scratch;	/* one read buffer for all */
	size_t			 scratch_len;
	struct timeval		 idle_tv;	/* common timeout */
	const struct timeval	*idle_timeout;	/* NULL: none */
	uint64_t		 max_buffer;
	struct tls_worker	*tls;		/* tls_conn.c's per-worker state */
};

/* The pool: made (not running) by workers_init, started, then joined and
 * freed in two steps (sockets on a worker's base go between the two). */
int		 workers_init(int n, const struct worker_limits *,
		    const struct worker_hooks *);
int		 workers_start(void);
void		 workers_join(void);
void		 workers_free(void);
int		 worker_count(void);
struct worker	*worker_at(int i);

/* Main thread: hand an accepted socket, and the listener reference taken
 * for it, to the next worker (round robin). */
void		 worker_dispatch_conn(int fd, struct listener *,
		    const struct sockaddr *, socklen_t);
/* On w's thread: serve it there (a reuseport socket's accept). Takes over
 * the listener reference. */
void		 worker_serve(struct worker *, int fd, struct listener *,
		    const struct sockaddr *, socklen_t);
void		 worker_post(struct worker *, enum worker_msg_type);
void		 worker_post_all(enum worker_msg_type);
void		 worker_call(struct worker *, worker_fn, void *);
/* Reload: new limits for connections from now on, on every worker. */
void		 worker_set_limits_all(const struct worker_limits *);

#endif
