/*
 * logsink.c: one log file written only through POSIX aio_write.
 *
 * A sink owns its fd and a queue of chunks. Chunks hold whole lines only, so
 * every write boundary (and therefore every rotation boundary) falls between
 * lines. At most one aio_write is in flight per sink: that keeps lines in
 * order on every system (on FreeBSD several kernel workers may run two
 * writes of one file at once) and makes the glibc traps below manageable.
 *
 * Completions come back into the main event_base three ways, any of which
 * is enough on its own: the request's SIGEV_SIGNAL (SIGUSR2, a libevent
 * signal event), aio_error polling of what is in flight on every wake-up,
 * and a safety timer that runs while a request is in flight. aio_return is
 * called exactly once per request, right after aio_error stops saying
 * EINPROGRESS (aio_return(3): "should be called only once for any given
 * request").
 *
 * glibc facts this file relies on (glibc sysdeps/pthread/aio_misc.c,
 * aio_notify.c, and the Linux kernel's signal code); the code that acts
 * on them is under HAVE_GLIBC_AIO (platform.h), and elsewhere a finished
 * write that says EAGAIN is simply retried:
 *  - aio is emulated with a pool of helper threads; requests are kept in a
 *    list keyed by aio_fildes, and a new request for an fd that already has
 *    one is queued behind it (__aio_enqueue_request, __aio_find_req_fd). So
 *    an fd is never closed (and its number never reused) while a request on
 *    it is in flight: reopen opens the new file first, swaps, and closes the
 *    old fd only once its request is reaped. A request that cannot wait
 *    (stuck, see STALL_US, when a reopen is due, or not cancellable at close)
 *    is abandoned: its fd, aiocb and buffer stay alive on a list of their
 *    own until aio_error stops saying EINPROGRESS (struct stalled).
 *  - Writes go through pwrite(), retried with write() on ESPIPE (FIFOs and
 *    sockets); with O_APPEND Linux pwrite() appends whatever the offset.
 *  - __aio_notify(): when sending the completion signal fails, glibc
 *    overwrites the request's result with -1 and the sigqueue errno even
 *    though the write already happened. SIGUSR2 is a standard signal, and
 *    the kernel never fails to queue one of those (a second one while one is
 *    pending is merged, not refused), so this should not happen; if a
 *    completed write still reports EAGAIN, the sink treats the result as
 *    unknown and, for a regular file, measures what was written with fstat
 *    against the size it expects (we are the only writer through this fd).
 *  - Merged signals mean one SIGUSR2 may stand for several completions, so
 *    the signal only says "look": every sink polls its own request.
 *  - The helper thread may still hold a finished request's aiocb under the
 *    aio lock while we already see it done (older aio_error reads the field
 *    without that lock); each sink alternates between two aiocbs so a new
 *    request never rewrites the control block of the one just reaped.
 *  - libevent (signal.c) delivers every signal through one process-wide
 *    handler into the base that registered it last; only the main base adds
 *    signal events in echod, so SIGUSR2 may arrive on any thread.
 */
#include <sys/stat.h>
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "logsink.h"
#include "util.h"

#define CHUNK_MAX	(256 * 1024)	/* one write when the queue is long */
#define CHUNK_MIN	4096
#define LIMIT_MIN	4096
#define SAFETY_US	50000		/* poll while a request is in flight */
#define RETRY_MIN_US	5000		/* aio_write EAGAIN: queue full */
#define RETRY_MAX_US	500000
#define BACKOFF_MIN_US	50000		/* ENOSPC, EIO, ... */
#define BACKOFF_MAX_US	2000000
#define REPORT_US	10000000	/* one stderr report per interval */
/*
 * A reopen waits for the write in flight, so that no line lands in the wrong
 * file. A write in flight for STALL_US or longer that was also found still
 * running on STALL_POLLS polls or more is taken as stuck (a FIFO whose
 * reader stopped reading, a hung NFS server): a healthy disk finishes a
 * CHUNK_MAX write far sooner, while waiting for good would keep the old
 * file forever and drop every later line once the buffer is full. The stuck
 * request is abandoned (left to finish on the old fd) and the reopen goes on.
 * Time alone is not enough: on a loaded machine the loop itself may wake
 * late, so that a write which finished long ago (or, through a slow disk,
 * is about to) looks as old as a stuck one at its first look; the polls
 * make sure it was watched for that long.
 */
#define STALL_US	200000
#define STALL_POLLS	4
/*
 * Requests a sink may leave behind (abandoned) at once. Each holds a glibc
 * aio helper thread blocked in write(2), its fd and its buffer: without a
 * bound, every SIGUSR1 against a stalled FIFO took one more of each until
 * the helper pool was all blocked and the other sinks' writes queued behind
 * them. With one, a stuck sink holds at most two helpers (the abandoned
 * request and the one on its new fd); a further reopen waits until the
 * abandoned request ends.
 */
#define ABANDON_MAX	1
/*
 * glibc's aio helper pool (aio_init): at most AIO_THREADS threads, made on
 * demand and gone after AIO_IDLE_S idle. The default is 20; sinks hold at
 * most 1 + ABANDON_MAX each, so this leaves room for many stuck sinks
 * before a healthy one would wait for a helper.
 */
#define AIO_THREADS	32
#define AIO_IDLE_S	1
/*
 * A retired sink (a reload turned its log off) writes out all it holds,
 * however long that takes, and gives up only on a write that is stuck by
 * the same rule as a reopen (STALL_US and STALL_POLLS). There
 * is no deadline on the whole: a long queue on a slow file is not stuck. A
 * file that keeps failing (ENOSPC, EIO) is given up after RETIRE_FAILS
 * failed writes in a row, backoff between them. What a retired sink gives
 * up on is reported, counted, when it frees itself (logsink_free).
 */
#define RETIRE_FAILS	8
/*
 * Small writes wait up to COALESCE_US for company, unless COALESCE_BYTES
 * are queued: at 200,000 lines/s that turns tens of thousands of 2 KiB
 * requests per second (each a helper-thread wake-up and a signal) into a
 * few hundred large ones.
 */
#define COALESCE_BYTES	(64 * 1024)
#define COALESCE_US	5000

struct chunk {
	struct chunk	*next;
	size_t		 cap;
	size_t		 len;		/* filled, always whole lines */
	size_t		 off;		/* written */
	size_t		 unsub_lines;	/* lines not yet in a write unit */
	char		 data[];
};

struct logsink {
	char		*path;
	int		 fd;
	int		 regular;
	off_t		 file_size;	/* expected size, regular files */
	size_t		 limit;
	size_t		 chunk_cap;
	logsink_drop_fmt drop_fmt;

	struct chunk	*head;
	struct chunk	*tail;
	struct chunk	*spare;
	size_t		 queued;	/* accepted bytes not yet written */

	/*
	 * A write unit is [head->off, unit_end) of the head chunk: whole
	 * lines. It stays until all of it is written, through short writes,
	 * retries and errors; its lines count as written only then.
	 */
	int		 unit_active;
	int		 unit_failed;	/* last attempt failed: may move file */
	size_t		 unit_start;	/* head->off when the unit began, or
					   after the lines it completed */
	size_t		 unit_end;
	size_t		 unit_lines;
	size_t		 nabandoned;	/* requests left behind, in flight */
	int		 deferred_told;	/* "reopen deferred" said */

	int		 inflight;
	struct aiocb	*cbs[2];	/* own allocations: see sink_abandon */
	int		 cbi;
	struct aiocb	*cur;
	off_t		 sub_size;	/* file_size when cur was submitted */
	uint64_t	 sub_us;	/* monotonic µs when cur was submitted */
	unsigned	 busy_polls;	/* aio_error said EINPROGRESS for cur */
	unsigned	 fail_streak;	/* failed writes since the last good one */

	uint64_t	 retry_at;	/* monotonic µs; 0: none */
	uint64_t	 retry_us;
	uint64_t	 backoff_us;

	/*
	 * Reopen: lines accepted before the request go to the old file.
	 * cut is the last chunk that belongs to it (sealed: nothing more is
	 * added to it); the swap happens once it is written.
	 */
	int		 reopen_pending;
	char		*reopen_path;
	struct chunk	*cut;

	uint64_t	 noticed;	/* drops already told in the file */
	uint64_t	 last_report_us;
	uint64_t	 suppressed;
	uint64_t	 drops_reported;
	uint64_t	 last_drop_report_us;

	struct logsink_stats st;

	int		 draining;
	int		 retiring;	/* logsink_retire: frees itself when done */
	struct event_base *base;
	struct event	*timer;
	struct event	*flush;		/* coalescing timer */
	int		 flush_armed;
	int		 flush_now;	/* activated: queue passed COALESCE */
	int		 flush_due;	/* in the flush callback */
	struct logsink	*next;		/* started sinks */
};

static int
real_suspend(const struct aiocb *const list[], int n,
    const struct timespec *ts)
{
	return aio_suspend(list, n, ts);
}

static const struct logsink_ops real_ops = {
	.write = aio_write,
	.error = aio_error,
	.ret = aio_return,
	.cancel = aio_cancel,
	.suspend = real_suspend,
};
static const struct logsink_ops *ops = &real_ops;

/* Started sinks, and the one SIGUSR2 event they share. */
static struct logsink	*sinks;
static struct event	*sig_ev;
static int		 sig_refs;

/*
 * Requests given up on while glibc may still run them: a write stuck when a
 * reopen is due, or one that could not be cancelled at close. The helper
 * thread still reads the buffer, writes the aiocb and keys the request by
 * the fd, so all three stay alive (the fd open, its number unused) until
 * aio_error stops saying EINPROGRESS; then aio_return is called once, the fd
 * closed and the memory freed (reap_abandoned). What is still in flight at
 * exit stays reachable here until the process ends.
 */
struct stalled {
	struct stalled	*next;
	int		 fd;
	struct aiocb	*cb;
	struct chunk	*chunk;		/* holds the request's buffer */
	char		*path;
	size_t		 nbytes;
	size_t		 lines;
	uint64_t	 since_us;	/* submitted */
	struct logsink	*owner;		/* NULL once the sink is freed */
};
static struct stalled	*abandoned;

static void	sink_submit(struct logsink *);
static size_t	count_lines(const char *, size_t);
static void	sink_arm(struct logsink *);
static int	sink_service(struct logsink *);

void
logsink_set_ops(const struct logsink_ops *o)
{
	ops = o != NULL ? o : &real_ops;
}

static size_t
default_drop_fmt(char *buf, size_t len, uint64_t n)
{
	int	r;

	r = snprintf(buf, len, "%llu lines dropped\n", (unsigned long long)n);
	return r < 0 || (size_t)r >= len ? 0 : (size_t)r;
}

/*
 * Errors go to stderr directly, at most once per interval per sink, with a
 * count of what was left out: the event log may be this very sink.
 */
static void
sink_report(struct logsink *s, const char *what, int err)
{
	uint64_t	now = now_us();

	if (s->last_report_us != 0 && now - s->last_report_us < REPORT_US) {
		s->suppressed++;
		return;
	}
	if (s->suppressed > 0)
		fprintf(stderr, "echod: log %s: %s: %s (%llu more errors since "
		    "the last report)\n", s->path, what, strerror(err),
		    (unsigned long long)s->suppressed);
	else
		fprintf(stderr, "echod: log %s: %s: %s\n", s->path, what,
		    strerror(err));
	s->suppressed = 0;
	s->last_report_us = now;
}

static void
sink_report_drops(struct logsink *s, int force)
{
	uint64_t	now = now_us();

	if (s->st.lines_dropped == s->drops_reported)
		return;
	if (!force && s->last_drop_report_us != 0 &&
	    now - s->last_drop_report_us < REPORT_US)
		return;
	fprintf(stderr, "echod: log %s: %llu lines dropped (buffer full), "
	    "%llu in all\n", s->path,
	    (unsigned long long)(s->st.lines_dropped - s->drops_reported),
	    (unsigned long long)s->st.lines_dropped);
	s->drops_reported = s->st.lines_dropped;
	s->last_drop_report_us = now;
}

static int
open_file(const char *path, int *regular, off_t *size, char *err,
    size_t errlen)
{
	struct stat	sb;
	int		fd, fl;

	/*
	 * O_NONBLOCK for the open only: a FIFO without a reader would block
	 * a plain open (and with it the main thread) until one shows up; this
	 * way it fails with ENXIO and the old file stays in use. Writes go
	 * through aio threads, which may block, so the flag is cleared again:
	 * a non-blocking FIFO would report EAGAIN as a completed write.
	 */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK,
	    0640);
	if (fd == -1) {
		if (errno == ENXIO)
			snprintf(err, errlen, "%s: a FIFO with no reader",
			    path);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1) {
		snprintf(err, errlen, "%s: fcntl: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	*regular = 0;
	*size = 0;
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
		*regular = 1;
		*size = sb.st_size;
	}
	return fd;
}

/*
 * A completion signal that arrives while no signal event is registered
 * (draining at exit after the event is gone, or a request abandoned at
 * close) must not end the process: SIGUSR2's default action does. libevent
 * saves this disposition when the signal event is added and puts it back
 * when the event is deleted.
 */
static void
ignore_signal(void)
{
	struct sigaction	sa;

	if (sigaction(LOGSINK_SIGNAL, NULL, &sa) == 0 &&
	    sa.sa_handler == SIG_DFL && !(sa.sa_flags & SA_SIGINFO)) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_IGN;
		sigemptyset(&sa.sa_mask);
		sigaction(LOGSINK_SIGNAL, &sa, NULL);
	}
}

static size_t
clamp_limit(size_t limit)
{
	return limit < LIMIT_MIN ? LIMIT_MIN : limit;
}

static size_t
chunk_cap_for(size_t limit)
{
	size_t	cap = limit / 4;

	if (cap < CHUNK_MIN)
		cap = CHUNK_MIN;
	if (cap > CHUNK_MAX)
		cap = CHUNK_MAX;
	return cap;
}

/*
 * Size glibc's helper pool before the first request (aio_init has no effect
 * once the pool exists).
 */
static void
aio_pool_init(void)
{
	static int	done;
	struct aioinit	ai;

	if (done)
		return;
	done = 1;
	memset(&ai, 0, sizeof(ai));
	ai.aio_threads = AIO_THREADS;
	ai.aio_num = 64;
	ai.aio_idle_time = AIO_IDLE_S;
	aio_init(&ai);
}

struct logsink *
logsink_open(const char *path, size_t limit, logsink_drop_fmt drop_fmt,
    char *err, size_t errlen)
{
	struct logsink	*s;
	int		 fd, regular;
	off_t		 size;

	if ((fd = open_file(path, &regular, &size, err, errlen)) == -1)
		return NULL;
	ignore_signal();
	aio_pool_init();
	s = xcalloc(1, sizeof(*s));
	s->path = xstrdup(path);
	s->fd = fd;
	s->regular = regular;
	s->file_size = size;
	s->limit = clamp_limit(limit);
	s->chunk_cap = chunk_cap_for(s->limit);
	s->drop_fmt = drop_fmt != NULL ? drop_fmt : default_drop_fmt;
	s->cbs[0] = xcalloc(1, sizeof(*s->cbs[0]));
	s->cbs[1] = xcalloc(1, sizeof(*s->cbs[1]));
	return s;
}

/* --- the queue */

static struct chunk *
chunk_new(struct logsink *s, size_t need)
{
	struct chunk	*c;
	size_t		 cap = need > s->chunk_cap ? need : s->chunk_cap;

	if (s->spare != NULL && s->spare->cap >= cap) {
		c = s->spare;
		s->spare = NULL;
	} else {
		c = xmalloc(sizeof(*c) + cap);
		c->cap = cap;
	}
	c->next = NULL;
	c->len = c->off = c->unsub_lines = 0;
	return c;
}

static void
chunk_recycle(struct logsink *s, struct chunk *c)
{
	if (s->spare == NULL && c->cap == s->chunk_cap)
		s->spare = c;
	else
		free(c);
}

/* Add bytes of whole lines, memory permitting: the caller checked limit. */
static void
queue_add(struct logsink *s, const char *data, size_t len, size_t nlines)
{
	struct chunk	*c = s->tail;

	if (c == NULL || c == s->cut || c->cap - c->len < len) {
		/*
		 * A written-out chunk (sink_wrote keeps the last one, emptied)
		 * must not stay in front of a new one: the writer starts at
		 * the head and would never get past it.
		 */
		if (c != NULL && c->off == c->len) {
			s->head = s->tail = NULL;
			chunk_recycle(s, c);
		}
		c = chunk_new(s, len);
		if (s->tail != NULL)
			s->tail->next = c;
		else
			s->head = c;
		s->tail = c;
	}
	memcpy(c->data + c->len, data, len);
	c->len += len;
	c->unsub_lines += nlines;
	s->queued += len;
}

/* Tell the file how many lines were dropped, once there is room. */
static void
sink_notice(struct logsink *s)
{
	char		buf[128];
	size_t		n;
	uint64_t	pending = s->st.lines_dropped - s->noticed;

	if (pending == 0)
		return;
	n = s->drop_fmt(buf, sizeof(buf), pending);
	if (n == 0 || s->queued + n > s->limit)
		return;
	queue_add(s, buf, n, 0);
	s->noticed = s->st.lines_dropped;
	s->st.notices++;
}

/* Can a pending reopen swap files now? Once the old file has its lines,
 * or at once when the old file fails. */
static int
reopen_ready(const struct logsink *s)
{
	return s->reopen_pending && (s->unit_failed ||
	    (s->cut == NULL && !s->unit_active));
}

static void
sink_schedule(struct logsink *s)
{
	struct timeval	tv = { 0, COALESCE_US };

	if (s->flush == NULL || s->inflight || s->queued == 0)
		return;
	/* A write that failed waits for its retry time, which sink_arm's
	 * timer keeps: a flush now would find nothing to do and ask for
	 * another, and the loop would spin for the whole backoff. */
	if (s->retry_at != 0 && !reopen_ready(s))
		return;
	if (s->queued >= COALESCE_BYTES || s->reopen_pending) {
		if (!s->flush_now) {
			s->flush_now = 1;
			event_active(s->flush, EV_TIMEOUT, 0);
		}
	} else if (!s->flush_armed) {
		s->flush_armed = 1;
		event_add(s->flush, &tv);
	}
}

static size_t
count_lines(const char *p, size_t n)
{
	const char	*end = p + n;
	size_t		 k = 0;

	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		k++;
		p++;
	}
	return k;
}

size_t
logsink_append(struct logsink *s, const char *data, size_t len,
    size_t nlines)
{
	size_t		 room, take, took_lines;
	const char	*nl;

	if (len == 0)
		return 0;
	sink_notice(s);
	room = s->queued < s->limit ? s->limit - s->queued : 0;
	if (len <= room) {
		queue_add(s, data, len, nlines);
		sink_schedule(s);
		return 0;
	}
	/* Take the whole lines that fit, drop the rest, count them exactly. */
	took_lines = 0;
	if (room > 0 && nlines > 1 &&
	    (nl = memrchr(data, '\n', room)) != NULL) {
		take = (size_t)(nl - data) + 1;
		took_lines = count_lines(data, take);
		queue_add(s, data, take, took_lines);
	}
	s->st.lines_dropped += nlines - took_lines;
	sink_report_drops(s, 0);
	sink_schedule(s);
	return nlines - took_lines;
}

void
logsink_add_drops(struct logsink *s, uint64_t n)
{
	if (n == 0)
		return;
	s->st.lines_dropped += n;
	sink_notice(s);
	sink_report_drops(s, 0);
	sink_schedule(s);
}

void
logsink_set_limit(struct logsink *s, size_t limit)
{
	s->limit = clamp_limit(limit);
	s->chunk_cap = chunk_cap_for(s->limit);
	if (s->spare != NULL && s->spare->cap != s->chunk_cap) {
		free(s->spare);
		s->spare = NULL;
	}
}

int
logsink_idle(const struct logsink *s)
{
	return !s->inflight && s->queued == 0 && !s->reopen_pending;
}

/*
 * Before a reaped aiocb is freed or its fd closed: glibc's helper thread
 * sets a finished request's error code and then, still holding
 * __aio_requests_mutex, reads the aiocb again (__aio_notify) and unlinks the
 * request from its fd's list (sysdeps/pthread/aio_misc.c, handle_fildes_io).
 * aio_error takes that mutex since glibc 2.34, older ones do not;
 * aio_suspend always does before it looks at its list, and returns at once
 * for a finished request (rt/aio_suspend.c). Once it returns, no helper
 * thread touches cb or the request's fd any more.
 */
static void
aio_settle(const struct aiocb *cb)
{
	const struct aiocb	*list[1] = { cb };
	struct timespec		 zero = { 0, 0 };

	ops->suspend(list, 1, &zero);
}

/*
 * Reap the abandoned requests that have ended: aio_return once, close the
 * fd, free. Returns the number still in flight.
 */
static size_t
reap_abandoned(void)
{
	struct stalled	**pp = &abandoned, *a;
	size_t		  left = 0;
	ssize_t		  res;
	int		  err;
	double		  secs;

	while ((a = *pp) != NULL) {
		err = ops->error(a->cb);
		if (err == EINPROGRESS) {
			left++;
			pp = &a->next;
			continue;
		}
		if (err == -1)
			err = errno != 0 ? errno : EIO;
		res = ops->ret(a->cb);		/* exactly once */
		aio_settle(a->cb);
		secs = (double)(now_us() - a->since_us) / 1e6;
		if (err == 0)
			fprintf(stderr, "echod: log %s: the stalled write ended "
			    "after %.1f s: %zd of %zu bytes (%zu lines) "
			    "written\n", a->path, secs, res, a->nbytes, a->lines);
		else
			fprintf(stderr, "echod: log %s: the stalled write ended "
			    "after %.1f s: %s (%zu lines)\n", a->path, secs,
			    strerror(err), a->lines);
		*pp = a->next;
		if (a->owner != NULL)
			a->owner->nabandoned--;
		close(a->fd);
		free(a->cb);
		free(a->chunk);
		free(a->path);
		free(a);
	}
	return left;
}

size_t
logsink_abandoned(void)
{
	return reap_abandoned();
}

/*
 * Give up on the request in flight without cancelling it: its fd, aiocb and
 * the chunk holding its buffer move to the abandoned list, and the sink
 * forgets it (s->fd becomes -1: the caller installs a new fd or frees the
 * sink). Lines queued behind the request stay queued, in order; those that
 * share its chunk are copied out. Returns the lines of the request's unit.
 */
static size_t
sink_abandon(struct logsink *s)
{
	struct stalled	*a = xcalloc(1, sizeof(*a));
	struct chunk	*c = s->head, *rest = NULL;
	size_t		 lines = s->unit_lines;

	a->fd = s->fd;
	a->cb = s->cur;
	a->chunk = c;
	a->path = xstrdup(s->path);
	a->nbytes = s->unit_end - c->off;
	a->lines = lines;
	a->since_us = s->sub_us;
	a->owner = s;
	a->next = abandoned;
	abandoned = a;
	s->nabandoned++;

	/* The next request must not reuse the abandoned control block. */
	s->cbs[s->cbi] = xcalloc(1, sizeof(*s->cbs[s->cbi]));
	s->cur = NULL;
	s->inflight = 0;
	s->fd = -1;
	s->queued -= a->nbytes;
	s->head = c->next;
	if (c->len > s->unit_end) {
		rest = chunk_new(s, c->len - s->unit_end);
		rest->len = c->len - s->unit_end;
		memcpy(rest->data, c->data + s->unit_end, rest->len);
		rest->unsub_lines = c->unsub_lines;
		rest->next = s->head;
		s->head = rest;
	}
	if (s->tail == c)
		s->tail = rest;
	if (s->cut == c)
		s->cut = rest;
	s->unit_active = 0;
	s->unit_failed = 0;
	s->unit_lines = 0;
	s->retry_at = 0;
	s->backoff_us = 0;
	return lines;
}

/* --- writing */

static void
sink_fail(struct logsink *s, const char *what, int err)
{
	s->st.write_errors++;
	s->fail_streak++;
	s->unit_failed = 1;
	s->backoff_us = s->backoff_us == 0 ? BACKOFF_MIN_US :
	    s->backoff_us * 2;
	if (s->backoff_us > BACKOFF_MAX_US)
		s->backoff_us = BACKOFF_MAX_US;
	s->retry_at = now_us() + s->backoff_us;
	sink_report(s, what, err);
}

/*
 * n bytes of the unit are done with (written, or skipped by sink_untear).
 * Returns 0 while the unit has more to send.
 */
static int
unit_advance(struct logsink *s, size_t n)
{
	struct chunk	*c = s->head;

	c->off += n;
	s->queued -= n;
	if (c->off < s->unit_end)
		return 0;
	s->unit_active = 0;
	s->st.lines_written += s->unit_lines;
	s->unit_lines = 0;
	if (c->off < c->len)
		return 1;	/* more was added during the write */
	if (c == s->cut)
		s->cut = NULL;	/* the old file has all it should */
	if (c == s->tail) {
		c->off = c->len = 0;
		return 1;
	}
	s->head = c->next;
	chunk_recycle(s, c);
	return 1;
}

/* n bytes of the unit reached the file. */
static void
sink_wrote(struct logsink *s, size_t n)
{
	s->file_size += (off_t)n;
	s->st.bytes_written += n;
	s->backoff_us = 0;
	s->unit_failed = 0;
	s->fail_streak = 0;
	if (!unit_advance(s, n))
		s->st.short_writes++;	/* sink_submit sends the rest */
}

/*
 * Before the sink leaves a file (a reopen, the end) with the write unit
 * written in part: a short write (a full file system) may have stopped in
 * the middle of a line, and sending the rest to the next file would tear
 * that line across two files. The lines the part completed count as
 * written; a torn tail is taken back with ftruncate when the file is a
 * regular one still the size we expect (we are its only writer), so the
 * whole line goes on to the new file. When it cannot be taken back (a FIFO,
 * someone else wrote, ftruncate failed), the fragment stays as the old
 * file's last bytes and the rest of that line is dropped, counted as such:
 * never carried over.
 */
static void
sink_untear(struct logsink *s)
{
	struct chunk	*c = s->head;
	struct stat	 sb;
	const char	*nl;
	size_t		 start, torn, done;

	if (!s->unit_active || c == NULL || c->off == s->unit_start ||
	    s->fd == -1 || s->inflight)
		return;
	nl = memrchr(c->data + s->unit_start, '\n', c->off - s->unit_start);
	start = nl != NULL ? (size_t)(nl - c->data) + 1 : s->unit_start;
	done = count_lines(c->data + s->unit_start, start - s->unit_start);
	s->st.lines_written += done;
	s->unit_lines -= done;
	s->unit_start = start;
	if ((torn = c->off - start) == 0)
		return;
	if (s->regular && fstat(s->fd, &sb) == 0 &&
	    sb.st_size == s->file_size && s->file_size >= (off_t)torn &&
	    ftruncate(s->fd, s->file_size - (off_t)torn) == 0) {
		c->off = start;
		s->queued += torn;
		s->file_size -= (off_t)torn;
		s->st.bytes_written -= torn;
		s->st.torn_undone++;
		return;
	}
	/* The line's fragment stays; skip what is left of it. */
	nl = memchr(c->data + c->off, '\n', s->unit_end - c->off);
	torn = nl != NULL ? (size_t)(nl - (c->data + c->off)) + 1 :
	    s->unit_end - c->off;
	s->unit_lines--;
	s->st.lines_dropped++;
	s->st.torn_dropped++;
	s->drops_reported++;	/* told here, not as "buffer full" */
	fprintf(stderr, "echod: log %s: a short write left part of a line "
	    "that cannot be taken back; the rest of that line is dropped\n",
	    s->path);
	if (!unit_advance(s, torn))
		s->unit_start = s->head->off;
}

/*
 * A finished write reported EAGAIN: that is glibc telling us the completion
 * signal could not be sent, after the write ran, and the real result is
 * lost. Measure it where we can rather than write the lines twice.
 */
#if HAVE_GLIBC_AIO
static void
sink_resolve(struct logsink *s, size_t nbytes)
{
	struct stat	sb;
	off_t		grew;

	s->st.write_errors++;
	sink_report(s, "aio completion notification failed", EAGAIN);
	if (!s->regular) {
		sink_wrote(s, nbytes);
		return;
	}
	if (fstat(s->fd, &sb) == -1) {
		sink_fail(s, "fstat", errno);
		return;
	}
	grew = sb.st_size - s->sub_size;
	if (grew <= 0) {
		s->retry_at = now_us() + RETRY_MIN_US;
		return;
	}
	sink_wrote(s, (size_t)grew > nbytes ? nbytes : (size_t)grew);
}
#endif

/* Reap the request in flight if it is done. Returns 1 if it was. */
static int
sink_reap(struct logsink *s)
{
	struct aiocb	*cb = s->cur;
	ssize_t		 res;
	int		 err;

	if (!s->inflight)
		return 0;
	err = ops->error(cb);
	if (err == EINPROGRESS) {
		s->busy_polls++;
		return 0;
	}
	if (err == -1)
		err = errno != 0 ? errno : EIO;
	res = ops->ret(cb);		/* exactly once */
	s->inflight = 0;
	s->cur = NULL;
	if (err == 0 && res > 0)
		sink_wrote(s, (size_t)res > cb->aio_nbytes ? cb->aio_nbytes :
		    (size_t)res);
	else if (err == 0)
		sink_fail(s, "aio_write wrote nothing", EIO);
#if HAVE_GLIBC_AIO
	else if (err == EAGAIN)
		sink_resolve(s, cb->aio_nbytes);
#endif
	else if (err == ECANCELED || err == EAGAIN)
		s->retry_at = now_us() + RETRY_MIN_US;
	else
		sink_fail(s, "aio_write", err);
	return 1;
}

/*
 * The reopen's first half: end the pending state and open the new file.
 * Returns its fd, or -1 (reported, counted) when the old file stays.
 */
static int
reopen_open(struct logsink *s, int *regular, off_t *size)
{
	char		 err[512];
	const char	*path = s->reopen_path != NULL ? s->reopen_path :
			    s->path;
	int		 fd;

	s->reopen_pending = 0;
	s->cut = NULL;
	fd = open_file(path, regular, size, err, sizeof(err));
	if (fd == -1) {
		s->st.reopen_failures++;
		fprintf(stderr, "echod: log reopen: %s (still writing %s)\n",
		    err, s->path);
		free(s->reopen_path);
		s->reopen_path = NULL;
	}
	return fd;
}

/* The second half: swap, and only then close the old fd (if still ours). */
static void
reopen_swap(struct logsink *s, int fd, int regular, off_t size)
{
	sink_untear(s);
	if (s->fd != -1)
		close(s->fd);	/* nothing is in flight on it */
	s->fd = fd;
	s->regular = regular;
	s->file_size = size;
	if (s->reopen_path != NULL) {
		free(s->path);
		s->path = s->reopen_path;
		s->reopen_path = NULL;
	}
	s->st.reopens++;
	s->deferred_told = 0;
	/* A failing old file says nothing about the new one. */
	if (s->unit_failed) {
		s->retry_at = 0;
		s->backoff_us = 0;
	}
}

/* Open the new file, swap, and only then close the old fd. */
static void
sink_do_reopen(struct logsink *s)
{
	int	fd, regular;
	off_t	size;

	if ((fd = reopen_open(s, &regular, &size)) != -1)
		reopen_swap(s, fd, regular, size);
}

/*
 * The write in flight is stuck: in flight for STALL_US or longer and found
 * still running on STALL_POLLS polls or more (see STALL_US).
 */
static int
sink_stuck(const struct logsink *s)
{
	return s->inflight && s->busy_polls >= STALL_POLLS &&
	    now_us() - s->sub_us >= STALL_US;
}

/*
 * A retired sink is done: all written, or what is left cannot be written
 * (the write in flight is stuck, or the file keeps failing).
 */
static int
sink_retired_done(const struct logsink *s)
{
	if (logsink_idle(s))
		return 1;
	if (s->inflight)
		return sink_stuck(s);
	return s->fail_streak >= RETIRE_FAILS;
}

/*
 * A reopen is due and the write in flight is stuck: open the new file,
 * leave the request with the old fd (sink_abandon), and swap. The lines of
 * the abandoned write are counted as dropped (the new file says so); they
 * may still reach the old file, and reap_abandoned reports how it ended.
 * Lines queued behind them go to the new file, in order.
 */
static void
sink_unstick(struct logsink *s)
{
	char	*old;
	int	 fd, regular;
	off_t	 size;
	size_t	 lines;

	if (!s->reopen_pending || !sink_stuck(s))
		return;
	if (s->nabandoned >= ABANDON_MAX) {
		/* Leave no more behind: wait for the stuck writes to end. */
		if (!s->deferred_told) {
			s->deferred_told = 1;
			s->st.reopens_deferred++;
			fprintf(stderr, "echod: log %s: reopen deferred: the "
			    "write left behind at the previous reopen is "
			    "still stuck, and so is the current one; lines "
			    "beyond the buffer are dropped until one ends\n",
			    s->path);
		}
		return;
	}
	if ((fd = reopen_open(s, &regular, &size)) == -1)
		return;
	old = xstrdup(s->path);
	lines = sink_abandon(s);
	reopen_swap(s, fd, regular, size);
	s->st.lines_abandoned += lines;
	s->st.lines_dropped += lines;
	s->drops_reported += lines;	/* told here, not as "buffer full" */
	fprintf(stderr, "echod: log %s: a write stalled for more than %d ms; "
	    "reopened as %s without it: %zu lines left with the stalled "
	    "write, counted as dropped\n", old, STALL_US / 1000, s->path,
	    lines);
	free(old);
	sink_notice(s);
	sink_schedule(s);
}

static void
sink_submit(struct logsink *s)
{
	struct chunk	*c;
	struct aiocb	*cb;

	if (s->inflight || (s->base == NULL && !s->draining))
		return;
	/* Swap once the old file has its lines; if the old file fails, what
	 * it could not take moves over to the new one. */
	if (reopen_ready(s))
		sink_do_reopen(s);
	if (s->retry_at != 0) {
		/* A retry goes when its time comes, whatever its size: the
		 * timer that brought us here is not rearmed otherwise. */
		if (now_us() < s->retry_at)
			return;
		s->retry_at = 0;
	} else if (!s->draining && !s->flush_due && !s->unit_active &&
	    !s->reopen_pending && !s->retiring && s->queued < COALESCE_BYTES)
		return;		/* batch small writes: the coalescing timer */
	if (!s->unit_active) {
		c = s->head;
		if (c == NULL || c->off == c->len)
			return;
		s->unit_active = 1;
		s->unit_start = c->off;
		s->unit_end = c->len;
		s->unit_lines = c->unsub_lines;
		c->unsub_lines = 0;
	}
	c = s->head;
	s->cbi ^= 1;
	cb = s->cbs[s->cbi];
	memset(cb, 0, sizeof(*cb));
	cb->aio_fildes = s->fd;
	cb->aio_buf = c->data + c->off;
	cb->aio_nbytes = s->unit_end - c->off;
	cb->aio_offset = 0;		/* O_APPEND */
	cb->aio_sigevent.sigev_notify = SIGEV_SIGNAL;
	cb->aio_sigevent.sigev_signo = LOGSINK_SIGNAL;
	cb->aio_sigevent.sigev_value.sival_ptr = s;
	s->sub_size = s->file_size;
	s->sub_us = now_us();
	if (ops->write(cb) == -1) {
		int	err = errno;

		if (err == EAGAIN) {
			/* The queue is full (macOS: 16 per process): keep
			 * the data and retry on a timer. */
			s->st.submit_retries++;
			s->retry_us = s->retry_us == 0 ? RETRY_MIN_US :
			    s->retry_us * 2;
			if (s->retry_us > RETRY_MAX_US)
				s->retry_us = RETRY_MAX_US;
			s->retry_at = now_us() + s->retry_us;
			if (s->retry_us == RETRY_MAX_US)
				sink_report(s, "aio_write", err);
		} else
			sink_fail(s, "aio_write", err);
		return;
	}
	s->retry_us = 0;
	s->inflight = 1;
	s->busy_polls = 0;
	s->cur = cb;
	s->st.writes++;
}

static void
sink_arm(struct logsink *s)
{
	struct timeval	tv;
	uint64_t	us, now;

	if (s->timer == NULL)
		return;
	now = now_us();
	if (s->inflight)
		us = SAFETY_US;
	else if (s->retry_at != 0)
		us = s->retry_at > now ? s->retry_at - now : 0;
	else if (s->retiring)
		us = SAFETY_US;
	else {
		event_del(s->timer);
		return;
	}
	event_add(s->timer, tv_from_us(&tv, us));
}

/*
 * Reap, swap past a stuck write, submit, rearm. A retiring sink that is done
 * (or gives up) is freed here: returns 1 then, and s is gone.
 */
static int
sink_service(struct logsink *s)
{
	if (sink_reap(s))
		sink_notice(s);
	if (s->nabandoned > 0)
		reap_abandoned();
	sink_unstick(s);
	if (s->retiring && sink_retired_done(s)) {
		logsink_free(s);
		return 1;
	}
	sink_submit(s);
	sink_arm(s);
	if (!s->inflight)
		sink_schedule(s);
	if (s->st.lines_dropped != s->drops_reported)
		sink_report_drops(s, 0);
	if (abandoned != NULL)
		reap_abandoned();
	return 0;
}

static void
sink_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sink_service(arg);
}

static void
sink_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct logsink	*s = arg;

	(void)fd;
	(void)what;
	if (s->flush_armed)
		event_del(s->flush);
	s->flush_armed = s->flush_now = 0;
	s->flush_due = 1;
	if (sink_service(s) == 0)
		s->flush_due = 0;
}

/* One SIGUSR2 may stand for several completions: poll every sink. */
static void
sink_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct logsink	*s, *next;

	(void)sig;
	(void)what;
	(void)arg;
	for (s = sinks; s != NULL; s = next) {
		next = s->next;		/* a retiring sink may free itself */
		sink_service(s);
	}
	if (abandoned != NULL)
		reap_abandoned();
}

int
logsink_start(struct logsink *s, struct event_base *base)
{
	if (s->base != NULL)
		return 0;
	if (sig_ev == NULL) {
		sig_ev = evsignal_new(base, LOGSINK_SIGNAL, sink_signal_cb,
		    NULL);
		if (sig_ev == NULL || event_add(sig_ev, NULL) == -1)
			return -1;
	}
	s->timer = evtimer_new(base, sink_timer_cb, s);
	s->flush = evtimer_new(base, sink_flush_cb, s);
	if (s->timer == NULL || s->flush == NULL)
		return -1;
	sig_refs++;
	s->base = base;
	s->next = sinks;
	sinks = s;
	if (s->queued > 0)
		sink_schedule(s);
	return 0;
}

int
logsink_reopen(struct logsink *s, const char *path)
{
	uint64_t	failures = s->st.reopen_failures;

	free(s->reopen_path);
	s->reopen_path = path != NULL ? xstrdup(path) : NULL;
	s->reopen_pending = 1;
	if (s->tail != NULL && s->tail->off < s->tail->len)
		s->cut = s->tail;
	/* Reap what is done, then stop submitting to the old file past the
	 * cut: sink_submit swaps files before writing anything newer. */
	if (sink_reap(s))
		sink_notice(s);
	if (s->nabandoned > 0)
		reap_abandoned();
	sink_unstick(s);	/* in flight for long already: swap now */
	if (s->reopen_pending && !s->inflight && (s->unit_failed ||
	    (s->cut == NULL && !s->unit_active)))
		sink_do_reopen(s);
	sink_submit(s);
	sink_arm(s);
	return s->st.reopen_failures != failures ? -1 : 0;
}

void
logsink_retire(struct logsink *s)
{
	if (s == NULL)
		return;
	/* Whatever it still holds goes to the file it has. */
	free(s->reopen_path);
	s->reopen_path = NULL;
	s->reopen_pending = 0;
	s->cut = NULL;
	if (s->base == NULL) {
		logsink_free(s);
		return;
	}
	s->retiring = 1;
	sink_service(s);		/* may free s */
}

size_t
logsink_finish(uint64_t deadline_us)
{
	struct logsink	*s, *next;

	for (s = sinks; s != NULL; s = next) {
		next = s->next;
		if (!s->retiring)
			continue;
		logsink_drain(s, deadline_us);
		logsink_free(s);
	}
	return reap_abandoned();
}

int
logsink_drain(struct logsink *s, uint64_t deadline_us)
{
	const struct aiocb	*list[1];
	struct timespec		 ts;
	uint64_t		 now, wait;
	int			 was = s->draining;

	s->draining = 1;
	for (;;) {
		if (sink_reap(s))
			sink_notice(s);
		sink_unstick(s);
		sink_submit(s);
		if (logsink_idle(s))
			break;
		now = now_us();
		if (now >= deadline_us)
			break;
		wait = deadline_us - now;
		if (wait > SAFETY_US)
			wait = SAFETY_US;
		if (!s->inflight && s->retry_at > now &&
		    s->retry_at - now < wait)
			wait = s->retry_at - now;
		ts.tv_sec = (time_t)(wait / 1000000);
		ts.tv_nsec = (long)(wait % 1000000) * 1000;
		if (s->inflight) {
			list[0] = s->cur;
			ops->suspend(list, 1, &ts);
		} else
			nanosleep(&ts, NULL);
	}
	s->draining = was;
	sink_arm(s);
	return logsink_idle(s) ? 0 : -1;
}

static uint64_t
queued_lines(const struct logsink *s)
{
	const struct chunk	*c;
	uint64_t		 n = s->unit_active ? s->unit_lines : 0;

	for (c = s->head; c != NULL; c = c->next)
		n += c->unsub_lines;
	return n;
}

uint64_t
logsink_free(struct logsink *s)
{
	struct logsink	**pp;
	struct chunk	*c, *next;
	struct stalled	*a;
	uint64_t	 lost;

	if (s == NULL)
		return 0;
	/* Cancelled or done: reap it (its lines may be written). */
	if (s->inflight && ops->cancel(s->fd, s->cur) != AIO_NOTCANCELED)
		sink_reap(s);
	sink_untear(s);		/* the file ends with a whole line */
	lost = queued_lines(s);
	sink_report_drops(s, 1);
	if (lost > 0)
		fprintf(stderr, "echod: log %s: %llu lines not written%s%s\n",
		    s->path, (unsigned long long)lost, s->retiring ?
		    " (log turned off)" : " at exit", s->inflight ?
		    ", some of them left with a stalled write" : "");
	if (s->inflight)
		s->st.lines_abandoned += sink_abandon(s);
	for (a = abandoned; a != NULL; a = a->next)
		if (a->owner == s)
			a->owner = NULL;
	for (pp = &sinks; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	if (s->base != NULL && --sig_refs == 0) {
		event_free(sig_ev);
		sig_ev = NULL;
	}
	if (s->timer != NULL)
		event_free(s->timer);
	if (s->flush != NULL)
		event_free(s->flush);
	s->timer = s->flush = NULL;
	s->base = NULL;
	for (c = s->head; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	free(s->spare);
	aio_settle(s->cbs[s->cbi]);	/* the last one reaped */
	if (s->fd != -1)
		close(s->fd);
	free(s->cbs[0]);
	free(s->cbs[1]);
	free(s->reopen_path);
	free(s->path);
	free(s);
	return lost;
}

void
logsink_stats(const struct logsink *s, struct logsink_stats *st)
{
	*st = s->st;
	st->bytes_queued = s->queued;
}

const char *
logsink_path(const struct logsink *s)
{
	return s->path;
}

int
logsink_fd(const struct logsink *s)
{
	return s->fd;
}
