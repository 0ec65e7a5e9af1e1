/*
 * run.h: one load run: the workers (a thread and an event_base each), the
 * shared schedule, the once-a-second slots through which the workers hand
 * their interval figures to the main thread, and the final result.
 */
#ifndef ECHOLOAD_RUN_H
#define ECHOLOAD_RUN_H

#include <sys/socket.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "connect.h"
#include "echoload.h"
#include "hist.h"

/* The message pattern repeats every PATTERN_PERIOD bytes (a prime, so that
 * no message size lines up with it); the buffer holds one period plus the
 * longest single read or write so that any window is one contiguous slice. */
#define PATTERN_PERIOD	65521
#define IO_CHUNK	(128 * 1024)
#define PATTERN_LEN	(PATTERN_PERIOD + IO_CHUNK)
/* Seconds of progress a worker may run ahead of the main thread. */
#define SLOT_RING	8

struct session;
struct tls_worker;
struct tls_totals;
struct event;
struct event_base;

struct counters {
	uint64_t	requests;
	uint64_t	bytes_sent;
	uint64_t	bytes_received;
	uint64_t	errors[ERR_MAX];
};

/* When the first and the last EDGE_REPLIES measured replies of a step
 * came in: the rate at which the server delivered them, from the middle
 * of the first replies to the middle of the last ones (run.c). */
#define EDGE_REPLIES	256
struct reply_edges {
	unsigned	nfirst;
	uint64_t	nlast;		/* last[] is a ring: the newest */
	uint64_t	first[EDGE_REPLIES];
	uint64_t	last[EDGE_REPLIES];
};

static inline void
reply_edges_record(struct reply_edges *e, uint64_t now)
{
	if (e->nfirst < EDGE_REPLIES)
		e->first[e->nfirst++] = now;
	e->last[e->nlast++ % EDGE_REPLIES] = now;
}

/* One second of the run, summed over the workers. */
struct slot {
	uint64_t	second;		/* which second this slot collects */
	unsigned	reports;
	struct counters	c;
	struct hist	lat;
	struct hist	svc;
};

struct worker {
	struct run	*run;
	unsigned	 id;
	pthread_t	 thread;
	struct event_base *base;
	struct session	*sessions;
	unsigned	 nsessions;
	unsigned	 nactive;	/* sessions not yet done */
	uint8_t		*rbuf;		/* one read buffer for all sessions */
	struct tls_worker *tls;		/* NULL without --tls */
	int		 draining;	/* no new requests */
	unsigned	 step_gen;	/* the step last run */
	uint64_t	 finish_ns;
	uint64_t	 started_ns;	/* when the start time came here */
	struct reply_edges edges;
	uint64_t	 second;	/* the second now being counted */
	/* The current second; merged into the totals at each tick. */
	struct counters	 ival;
	struct hist	 ival_lat;
	struct hist	 ival_svc;
	struct counters	 total;
	struct hist	 lat;
	struct hist	 svc;
	struct event	*ev_sweep;
	struct event	*ev_tick;
	struct event	*ev_end;
	struct event	*ev_hard;
	struct connect_phase cp;	/* before the load */
	struct reconnect_stats rc;	/* during it */
	struct event	*ev_start;
};

struct result {
	double		 duration_s;
	/* Replies a second from the first few to the last few (see struct
	 * reply_edges); 0 with too few replies to tell. */
	double		 delivered_per_s;
	struct counters	 c;
	uint64_t	 errors;
	struct hist	 lat;		/* from the intended send time */
	struct hist	 svc;		/* from the actual write */
	struct tls_totals *tls;		/* NULL without --tls */
	struct connect_stats conn;	/* the connection phase */
	struct reconnect_stats reconn;
	int		 loaded;	/* the load ran after the phase */
	double		 start_delay_s;	/* latest worker's start, late by */
};

struct timeline;
struct hlog_writer;

/* What a session reports to the rooms above it, run.c and connect.c. run.c
 * fills this in for session.c, which calls neither directly
 * (doc/ARCHITECTURE.md, "echoload: the rooms"). */
struct session_hooks {
	void	(*error)(struct worker *, enum err_kind, int err);
	void	(*error_detail)(struct worker *, enum err_kind, const char *);
	void	(*done)(struct worker *, uint64_t now);
	void	(*up)(struct session *, uint64_t now);
	void	(*failed)(struct session *, enum conn_fail, int err,
		    const char *detail, uint64_t now);
	int	(*socket)(const struct run *, unsigned index, int *err);
};

struct run {
	const struct session_hooks *sess_hooks;
	const struct opts *o;
	struct sockaddr_storage addr;
	socklen_t	 addrlen;
	char		 target[ADDR_STRLEN];
	uint8_t		*pattern;
	uint64_t	 start_ns;	/* first request, all connections */
	uint64_t	 measure_ns;	/* end of the warm-up */
	uint64_t	 end_ns;	/* UINT64_MAX when -n alone bounds it */
	uint64_t	 measure_wall_ns; /* measure_ns by the wall clock */
	uint64_t	 phase_wall_ns;	/* the connection phase's start, or 0 */
	unsigned	 series;	/* SERIES_BITs recorded */
	struct timeline	*tl;		/* every second's figures */
	struct hlog_writer *hlog;	/* NULL without --hlog */
	int		 hlog_failed;	/* a write to it failed */
	int		 start_missed;	/* --start-at passed while connecting */
	FILE		*hlog_fp;	/* --hlog, opened by main */
	uint64_t	 timeout_ns;
	uint64_t	 connect_timeout_ns;
	struct source_set src;		/* empty: the system picks */
	unsigned	 port_range;	/* ip_local_port_range, 0: unknown */
	double		 rate;		/* this step's target; o->rate for one */
	int		 stepping;	/* sweep: connections outlive the step */
	unsigned	 step_gen;	/* bumped by the main thread per step */
	unsigned	 parked;	/* workers done with this step */
	int		 quit;		/* no more steps: workers end */
	unsigned	 steps_run;
	int		 phase_ended;	/* the connection phase ended the run */
	uint64_t	 second_base;	/* CSV seconds of the steps before */
	FILE		*csv;
	int		 progress;	/* print the progress line */
	struct worker	*workers;
	unsigned	 nworkers;
	atomic_int	 stop;
	atomic_uint	 warned;	/* error kinds already reported */
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	uint64_t	*finished_at;	/* second each worker ended in */
	/* The connection phase's hand-off: workers count as they go, then
	 * each adds its figures and waits for the main thread's go. */
	atomic_uint	 phase_up;
	atomic_uint	 phase_failed;
	atomic_uint	 phase_warned;	/* conn_fail kinds already said */
	unsigned	 phase_done;	/* workers through the phase */
	int		 go;		/* 1: run the load, -1: do not */
	struct slot	 slots[SLOT_RING];
	struct result	 res;
};

/* Prepare, run one step at -R (or closed loop) and tear down; res is
 * filled in. Returns 0, or -1 after printing why the run could not start,
 * -2 when it cannot be run as asked on this event back end (exit 2). */
int	run_load(const struct opts *, FILE *csv, FILE *hlog, struct run **);
/*
 * The same in parts, for sweeps: run_open checks the target, starts the
 * workers and runs the connection phase; it returns 0 when the load may
 * go, 1 when the phase ended the run (run_close, then report), -1 or -2
 * as run_load. The first run_step must be at o->rate (the phase hands over to
 * it); each runs one warm-up and measured window on the same connections
 * and leaves its figures in res. run_close ends the workers and adds what
 * counts over all steps (reconnects, TLS handshakes).
 */
int	run_open(const struct opts *, FILE *csv, int stepping, struct run **);
int	run_step(struct run *, double rate);
void	run_close(struct run *);
void	run_free(struct run *);
/* Ask a running load to stop (from the main thread, e.g. on SIGINT). */
void	run_request_stop(void);
int	run_stop_requested(void);
/* Set the load's start, measure and end times (main thread, once the
 * connection phase is over): from now, or for the first step at
 * --start-at; -1 when that time has passed. */
int	run_schedule(struct run *);

/* Called by sessions on their worker's thread. */
void	worker_error(struct worker *, enum err_kind, int err);
/* The same, with words saying what failed (TLS errors). */
void	worker_error_detail(struct worker *, enum err_kind, const char *);
void	worker_session_done(struct worker *, uint64_t now);

/* Does the run open its connections in a phase of their own? Not in
 * connect mode, where every request is a connection. */
static inline int
run_has_phase(const struct run *r)
{
	return r->o->mode != MODE_CONNECT;
}

static inline int
run_open_loop(const struct run *r)
{
	return r->o->rate > 0;
}

/* Sweep: does a session keep its connection when the step ends? */
static inline int
run_keeps_connections(const struct run *r)
{
	return r->stepping && !r->quit;
}

static inline int
run_measuring(const struct run *r, uint64_t t)
{
	return t >= r->measure_ns && t < r->end_ns;
}

#endif
