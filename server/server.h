/*
 * server.h: the state of the running echod, owned by the main thread. Worker
 * threads read only what is passed to them in messages, plus the listener
 * they were handed (immutable while referenced) and the global open count.
 */
#ifndef ECHOD_SERVER_H
#define ECHOD_SERVER_H

#include <sys/queue.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "stats.h"

struct event_base;
struct event;
struct evconnlistener;
struct worker;

/*
 * One listening socket. Owned by the main thread, or, with reuseport, by the
 * worker whose base it accepts on (worker != NULL).
 */
struct lsock {
	/* Swapped by a reload that keeps the socket; read by the accepting
	 * thread, hence atomic. */
	_Atomic(struct listener *) listener;
	struct worker		*worker;
	int			 worker_idx;	/* reuseport: which worker */
	int			 fd;
	struct evconnlistener	*evl;
	struct event		*retry_timer;	/* after EMFILE */
	int			 paused_emfile;
	int			 paused_limit;
	/* Out of descriptors, logged once per pause (and not more often
	 * than EMFILE_LOG_US): failures since the last report. */
	uint64_t		 emfile_failures;
	uint64_t		 emfile_logged_us;
	int			 emfile_reported;
};

/*
 * One [listen NAME]: its settings, counters and sockets. Connections hold a
 * reference, so a listener removed by a reload lives until its last
 * connection closes; its sockets are closed by their owners at once.
 */
struct listener {
	atomic_int		 refcnt;
	char			*name;
	char			*address;
	enum listen_mode	 mode;
	int			 tls;
	int			 backlog;
	int			 reuseport;
	enum proxy_mode		 proxy;		/* PROXY header expected */
	uint64_t		 proxy_timeout_us;
	struct proxy_cidr	*proxy_from;	/* NULL: from any peer */
	int			 nproxy_from;
	_Atomic(void *)		 tls_ctx;	/* SSL_CTX when tls; swapped by reload */
	uint64_t		 retired_gen;	/* reload that replaced it */
	struct listener_stats	 stats;
	struct lsock		*socks;
	int			 nsocks;
	struct sockaddr_storage	 bound;		/* first bound address */
	TAILQ_ENTRY(listener)	 entry;
};
TAILQ_HEAD(listener_list, listener);

/* Messages from workers to the main thread: a flag or counter to look
 * at, plus a byte on the notify pipe to wake the main thread up. */
enum main_msg {
	MAIN_WORKER_EXITED = 1,
	MAIN_RESUME_ACCEPT,
	MAIN_BARRIER,
};

struct retired_tls {
	void		*ctx;
	uint64_t	 gen;
};

struct server {
	struct config		*conf;
	struct event_base	*base;
	struct worker		**workers;
	int			 nworkers;
	int			 next_worker;	/* round robin */
	struct listener_list	 listeners;

	atomic_uint_fast64_t	 conns_open;	/* all workers, for the limit */
	atomic_uint_fast64_t	 max_conns;	/* conf->max_connections */
	/* What reloads replaced, kept until every worker has passed a
	 * barrier (a message queued after the change), so that no worker
	 * still holds a pointer to it. */
	struct listener_list	 retired;
	struct retired_tls	*retired_tls;
	int			 nretired_tls;
	uint64_t		 reload_gen;
	atomic_int		 workers_exited;
	atomic_int		 resume_pending;
	char			**cmdline;	/* -l listeners, kept for reload */
	int			 ncmdline;
	int			 accept_paused;	/* at max_connections */

	int			 notify_rd, notify_wr;
	struct event		*notify_ev;
	struct event		*signals[8];
	int			 nsignals;
	struct event		*drain_timer;
	int			 stopping;	/* 1 graceful, 2 fast */
	int			 workers_running;
	uint64_t		 started_us;
	uint64_t		 reloads_ok;
	uint64_t		 reloads_failed;
	pthread_t		 main_thread;
	void			*tls_ctx;	/* SSL_CTX of the config */
};

extern struct server	*srv;

void	server_notify_main(enum main_msg);
/* Called by a worker after a connection closed. */
void	server_conn_closed(void);
/* Accept-side admission: 1 when a new connection may be served. */
int	server_conn_admit(struct listener *);

void	listener_ref(struct listener *);
void	listener_unref(struct listener *);

#endif
