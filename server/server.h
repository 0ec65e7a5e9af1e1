/*
 * server.h: the running echod as the main thread sees it, and the two
 * shared objects below it: a listener ([listen NAME]: settings, counters,
 * sockets) and its sockets. server.c owns struct server; the rooms below
 * it (listener, worker, conn) never see it, and the main-thread modules
 * that read it (reload, admin, stats) are handed a pointer
 * (doc/ARCHITECTURE.md).
 */
#ifndef ECHOD_SERVER_H
#define ECHOD_SERVER_H

#include <sys/queue.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "msgq.h"
#include "stats.h"

struct event_base;
struct event;
struct event;
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
	struct event		*accept_ev;
	struct event		*retry_timer;	/* after EMFILE */
	int			 armed;		/* accept_ev added */
	int			 paused_emfile;
	int			 paused_limit;
	/* Out of descriptors, logged once per pause (and not more often
	 * than EMFILE_LOG_US): failures since the last report. */
	uint64_t		 emfile_failures;
	uint64_t		 emfile_logged_us;
	int			 emfile_reported;
	/* Reuseport: accepted over max_connections by a worker racing the
	 * others, held unread (as the backlog would) until one closes. */
	int			 parked_fd;
	socklen_t		 parked_len;	/* 0: none */
	struct sockaddr_storage	 parked_sa;
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

struct retired_tls {
	void		*ctx;
	uint64_t	 gen;
};

struct server {
	struct config		*conf;
	struct event_base	*base;
	/* The main thread's queue: workers and listeners post calls to it
	 * (msgq_call), e.g. "a worker exited", "below max_connections". */
	struct msgq		 mainq;
	struct listener_list	 listeners;

	/* What reloads replaced, kept until every worker has passed a
	 * barrier (a message queued after the change), so that no worker
	 * still holds a pointer to it. */
	struct listener_list	 retired;
	struct retired_tls	*retired_tls;
	int			 nretired_tls;
	uint64_t		 reload_gen;
	char			**cmdline;	/* -l listeners, kept for reload */
	int			 ncmdline;

	struct event		*signals[8];
	int			 nsignals;
	struct event		*drain_timer;
	int			 stopping;	/* 1 graceful, 2 fast */
	int			 nworkers;
	int			 workers_running;
	int			 workers_exited;
	uint64_t		 started_us;
	uint64_t		 reloads_ok;
	uint64_t		 reloads_failed;
	void			*tls_ctx;	/* SSL_CTX of the config */
};

/*
 * The server's life, in the startup order of doc/ARCHITECTURE.md; main.c
 * calls these in turn. server_new takes conf and cmdline (the -l
 * listeners, kept for reload). server_bind binds the listeners and the
 * admin endpoint (may need root); server_start makes the main base, the
 * signal events and the workers, and starts accepting; server_loop serves
 * until the stop and prints the summary; server_free releases it all.
 */
struct server	*server_new(struct config *, char **cmdline, int ncmdline,
		    void *tls_ctx);
int		 server_bind(struct server *, char *err, size_t errlen);
void		 server_start(struct server *);
void		 server_loop(struct server *);
void		 server_free(struct server *);

#endif
