/*
 * worker.h: a worker thread owns one event_base and every connection on it.
 * Other threads talk to it only through messages on its queue (the memcached
 * model): no connection is ever touched by two threads.
 */
#ifndef ECHOD_WORKER_H
#define ECHOD_WORKER_H

#include <sys/queue.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "stats.h"

struct event_base;
struct event;
struct listener;
struct conn;
struct lsock;

enum worker_msg_type {
	WMSG_CONN,		/* serve fd for listener */
	WMSG_DRAIN,		/* stop taking work; exit when idle */
	WMSG_CLOSE_ALL,		/* close everything now and exit */
	WMSG_RESUME_ACCEPT,	/* below max_connections again */
	WMSG_CALL,		/* run fn(worker, arg) on the worker */
};

struct worker;
typedef void (*worker_fn)(struct worker *, void *);

struct worker_msg {
	enum worker_msg_type	 type;
	int			 fd;
	struct listener		*listener;	/* referenced */
	struct sockaddr_storage	 peer;
	socklen_t		 peerlen;
	worker_fn		 fn;
	void			*arg;
	STAILQ_ENTRY(worker_msg) entry;
};
STAILQ_HEAD(worker_msg_list, worker_msg);

struct worker {
	int			 id;
	pthread_t		 thread;
	struct event_base	*base;
	struct worker_stats	 stats;
	atomic_uint_fast64_t	 seen_gen;	/* reload barrier passed */

	/* The queue: the only state shared with other threads. */
	pthread_mutex_t		 lock;
	struct worker_msg_list	 queue;
	int			 wake_rd, wake_wr;
	struct event		*wake_ev;

	/* Owned by the worker thread. nconns counts plain and TLS ones. */
	unsigned int		 nconns;
	int			 draining;
	int			 closing;
	char			*scratch;	/* one read buffer for all */
	size_t			 scratch_len;
	struct timeval		 idle_tv;	/* common timeout */
	const struct timeval	*idle_timeout;	/* NULL: none */
	uint64_t		 max_buffer;
	struct lsock		**reuse;	/* reuseport sockets */
	int			 nreuse;
	void			*tls;		/* tls.c's per-worker state */
};

struct worker	*worker_new(int id);
int		 worker_start(struct worker *);
void		 worker_join_free(struct worker *);
void		 worker_send(struct worker *, struct worker_msg *);
void		 worker_post(struct worker *, enum worker_msg_type);
void		 worker_call(struct worker *, worker_fn, void *);
void		 worker_conn_gone(struct worker *);
/* The worker running the calling thread (NULL on the main thread). */
struct worker	*worker_self(void);
int		 wake_pipe(int *rd, int *wr);
void		 worker_dispatch_conn(struct worker *, int fd,
		    struct listener *, const struct sockaddr *, socklen_t);

#endif
