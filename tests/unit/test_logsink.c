/*
 * test_logsink.c: the aio log sink under injected faults. A fake aio table
 * performs each request with a real write(2) when it "completes", following
 * a per-request script (submit error, result, error, polls before done), so
 * the file's content shows exactly what the sink did. A request may also be
 * stuck (in flight until the test releases it), to show what a sink does
 * with a write that never comes back. One test runs the real glibc aio with
 * SIGUSR2 through libevent.
 */
#include <sys/stat.h>
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "logsink.h"
#include "util.h"

struct step {
	int	submit_err;	/* aio_write fails with this */
	ssize_t	result;		/* bytes written; -1: all */
	int	err;		/* completion error */
	int	polls;		/* EINPROGRESS this many times first;
				   STUCK: until fake_release */
	int	signal;		/* raise SIGUSR2 when submitted */
};
#define STUCK	(-1)

static struct step	plan[256];
static int		nplan, iplan;
static struct step	dflt = { 0, -1, 0, 0, 0 };

/* Every request made since plan_reset, in order. */
struct freq {
	struct aiocb	*cb;
	int		 fd;
	ino_t		 ino;		/* the file it was made on */
	struct step	 step;
	int		 done;
	int		 returns;	/* aio_return calls: exactly one */
	int		 busy;		/* aio_error said EINPROGRESS */
	ssize_t		 res;
};
static struct freq	reqs[256];
static int		nreqs;
static int		f_inflight;
static int		f_writes;
static int		f_released;
static int		f_waits;	/* aio_suspend calls that could block */

static void
plan_reset(struct step d)
{
	nplan = iplan = 0;
	dflt = d;
	nreqs = 0;
	f_inflight = f_writes = f_released = f_waits = 0;
}

/* From now on every request follows d; what is left of the plan is not
 * used. Requests already made keep their own step. */
static void
plan_default(struct step d)
{
	iplan = nplan;
	dflt = d;
}

/* Let stuck requests complete (each on its next aio_error). */
static void
fake_release(void)
{
	f_released = 1;
}

static struct freq *
req_find(const struct aiocb *cb)
{
	int	i;

	/* The newest request on cb: a control block is reused only after
	 * its request was returned. */
	for (i = nreqs - 1; i >= 0; i--)
		if (reqs[i].cb == cb)
			return &reqs[i];
	fail_msg("no request on aiocb %p", (const void *)cb);
	return NULL;
}

static void
plan_add(struct step s)
{
	assert_true(nplan < (int)nitems(plan));
	plan[nplan++] = s;
}

static ino_t
fd_ino(int fd)
{
	struct stat	sb;

	assert_int_equal(fstat(fd, &sb), 0);
	return sb.st_ino;
}

static int
fake_write(struct aiocb *cb)
{
	struct step	 s = iplan < nplan ? plan[iplan++] : dflt;
	struct freq	*r;
	int		 i;

	/* The fd must be open when a request is made on it. */
	assert_true(fcntl(cb->aio_fildes, F_GETFD) != -1);
	assert_int_equal(cb->aio_sigevent.sigev_notify, SIGEV_SIGNAL);
	assert_int_equal(cb->aio_sigevent.sigev_signo, SIGUSR2);
	if (s.submit_err != 0) {
		errno = s.submit_err;
		return -1;
	}
	for (i = 0; i < nreqs; i++) {
		/* One in flight per file, and a control block is never
		 * rewritten while its request is outstanding. */
		if (reqs[i].returns == 0)
			assert_true(reqs[i].fd != cb->aio_fildes &&
			    reqs[i].cb != cb);
	}
	assert_true(nreqs < (int)nitems(reqs));
	r = &reqs[nreqs++];
	memset(r, 0, sizeof(*r));
	r->cb = cb;
	r->fd = cb->aio_fildes;
	r->ino = fd_ino(cb->aio_fildes);
	r->step = s;
	f_inflight++;
	f_writes++;
	if (s.signal)
		raise(SIGUSR2);
	return 0;
}

static int
fake_error(const struct aiocb *cb)
{
	struct freq	*r = req_find(cb);
	size_t		 n;

	assert_int_equal(r->returns, 0);
	if (r->done)
		return r->step.err;
	if (r->step.polls == STUCK && !f_released) {
		r->busy++;
		return EINPROGRESS;
	}
	if (r->step.polls > 0) {
		r->step.polls--;
		r->busy++;
		return EINPROGRESS;
	}
	r->done = 1;
	if (r->step.err != 0) {
		r->res = -1;
		return r->step.err;
	}
	n = cb->aio_nbytes;
	if (r->step.result >= 0 && (size_t)r->step.result < n)
		n = (size_t)r->step.result;
	/* The fd is still open, on the same file, when the request runs. */
	assert_int_equal(fd_ino(cb->aio_fildes), r->ino);
	r->res = write(cb->aio_fildes, (const void *)cb->aio_buf, n);
	assert_int_equal(r->res, (ssize_t)n);
	return 0;
}

static ssize_t
fake_return(struct aiocb *cb)
{
	struct freq	*r = req_find(cb);

	assert_true(r->done);
	assert_int_equal(r->returns, 0);	/* exactly once */
	r->returns++;
	f_inflight--;
	if (r->step.err != 0) {
		errno = r->step.err;
		return -1;
	}
	return r->res;
}

static int
fake_cancel(int fd, struct aiocb *cb)
{
	struct freq	*r = req_find(cb);

	assert_int_equal(fd, r->fd);
	return r->done ? AIO_ALLDONE : AIO_NOTCANCELED;
}

static int
fake_suspend(const struct aiocb *const list[], int n,
    const struct timespec *ts)
{
	(void)list;
	(void)n;
	if (ts == NULL || ts->tv_sec != 0 || ts->tv_nsec != 0)
		f_waits++;
	return 0;
}

static const struct logsink_ops fake_ops = {
	.write = fake_write,
	.error = fake_error,
	.ret = fake_return,
	.cancel = fake_cancel,
	.suspend = fake_suspend,
};

/* --- helpers */

struct fixture {
	char			 dir[64];
	char			 path[128];
	struct event_base	*base;
	struct logsink		*sink;
};

static int
setup(void **state)
{
	struct fixture	*f = xcalloc(1, sizeof(*f));
	char		 err[256];

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_logsink.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/log", f->dir);
	f->base = event_base_new();
	assert_non_null(f->base);
	logsink_set_ops(&fake_ops);
	f->sink = logsink_open(f->path, 4 << 20, NULL, err, sizeof(err));
	assert_non_null(f->sink);
	*state = f;
	return 0;
}

static void
rm_dir(const char *dir)
{
	char	cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	if (f->sink != NULL)
		logsink_free(f->sink);
	/* Nothing is left behind for the next test's aio table. */
	fake_release();
	assert_int_equal(logsink_abandoned(), 0);
	event_base_free(f->base);
	logsink_set_ops(NULL);
	rm_dir(f->dir);
	free(f);
	return 0;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE	*fp = fopen(path, "r");
	char	*buf;
	long	 n;

	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = xmalloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

static size_t
line(char *buf, size_t len, int i)
{
	return (size_t)snprintf(buf, len, "line %06d the quick brown fox\n", i);
}

/* Append lines [from, to) one by one. */
static void
append_lines(struct logsink *s, int from, int to)
{
	char	buf[64];
	int	i;

	for (i = from; i < to; i++)
		assert_int_equal(logsink_append(s, buf,
		    line(buf, sizeof(buf), i), 1), 0);
}

/* The file holds exactly lines [from, to), in order, then tail. */
static void
check_file(const char *path, int from, int to, const char *tail)
{
	char	*data, *p, want[64];
	size_t	 len, n;
	int	 i;

	data = slurp(path, &len);
	p = data;
	for (i = from; i < to; i++) {
		n = line(want, sizeof(want), i);
		assert_true((size_t)(p - data) + n <= len);
		if (memcmp(p, want, n) != 0)
			fail_msg("line %d: got %.*s", i, (int)n, p);
		p += n;
	}
	if (tail != NULL) {
		assert_true((size_t)(p - data) + strlen(tail) <= len);
		if (memcmp(p, tail, strlen(tail)) != 0)
			fail_msg("want %s, got %.*s", tail, (int)(len -
			    (size_t)(p - data)), p);
		p += strlen(tail);
	}
	assert_int_equal((size_t)(p - data), len);
	free(data);
}

/* Lines [a, b), then mid, then lines [c, d): the whole file. */
static void
check_content(const char *path, int a, int b, const char *mid, int c, int d)
{
	char	*data, *want;
	size_t	 len, n = 0, cap = (size_t)(b - a + d - c) * 64 + 256;
	int	 i;

	want = xmalloc(cap);
	for (i = a; i < b; i++)
		n += line(want + n, cap - n, i);
	n += (size_t)snprintf(want + n, cap - n, "%s", mid);
	for (i = c; i < d; i++)
		n += line(want + n, cap - n, i);
	data = slurp(path, &len);
	if (len != n || memcmp(data, want, n) != 0)
		fail_msg("%s: got %.*s", path, (int)len, data);
	free(data);
	free(want);
}

static void
check_lines(const char *path, int from, int to)
{
	check_file(path, from, to, NULL);
}

/*
 * As in logsink.c: a write is stuck once in flight for STALL_US and seen in
 * progress on STALL_POLLS polls. Tests sleep past the time and drive the
 * polls themselves, one SIGUSR2 each, so that neither depends on how the
 * loop's timers happen to fire.
 */
#define STALL_US	200000
#define STALL_POLLS	4

/* Poll the sink once, as a completion signal does. */
static void
poll_once(struct fixture *f)
{
	raise(SIGUSR2);
	event_base_loop(f->base, EVLOOP_NONBLOCK);
}

/*
 * Request r is stuck and past STALL_US: poll until the sink has seen it in
 * progress STALL_POLLS times. The sink must not give up on it before (the
 * reopen waits), and must once it has (reopens goes up by one).
 */
static void
poll_until_unstuck(struct fixture *f, int r)
{
	struct logsink_stats	st;
	uint64_t		reopens;
	int			i;

	logsink_stats(f->sink, &st);
	reopens = st.reopens;
	for (i = 0; i < 100 && reqs[r].busy < STALL_POLLS; i++) {
		assert_int_equal(st.reopens, reopens);
		poll_once(f);
		logsink_stats(f->sink, &st);
	}
	assert_true(reqs[r].busy >= STALL_POLLS);
	assert_int_equal(st.reopens, reopens + 1);
}

static void
run_until_idle(struct fixture *f)
{
	int	i;

	for (i = 0; i < 100000 && !logsink_idle(f->sink); i++)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_true(logsink_idle(f->sink));
}

/* --- tests */

static void
test_plain(void **state)
{
	struct fixture		*f = *state;
	struct logsink_stats	 st;

	plan_reset((struct step){ 0, -1, 0, 0, 1 });
	append_lines(f->sink, 0, 1000);
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	run_until_idle(f);
	check_lines(f->path, 0, 1000);
	logsink_stats(f->sink, &st);
	assert_int_equal(st.lines_written, 1000);
	assert_int_equal(st.lines_dropped, 0);
	assert_int_equal(st.bytes_queued, 0);
	/* Batched: far fewer writes than lines. */
	assert_true(f_writes < 10);
}

static void
test_eagain_then_success(void **state)
{
	struct fixture		*f = *state;
	struct logsink_stats	 st;
	int			 i;

	plan_reset(dflt);
	for (i = 0; i < 5; i++)
		plan_add((struct step){ EAGAIN, -1, 0, 0, 0 });
	append_lines(f->sink, 0, 300);
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	run_until_idle(f);
	check_lines(f->path, 0, 300);
	logsink_stats(f->sink, &st);
	assert_int_equal(st.submit_retries, 5);
	assert_int_equal(st.lines_written, 300);
	assert_int_equal(st.lines_dropped, 0);
	assert_int_equal(st.write_errors, 0);
}

static void
test_short_writes(void **state)
{
	struct fixture		*f = *state;
	struct logsink_stats	 st;

	plan_reset((struct step){ 0, -1, 0, 0, 0 });
	plan_add((struct step){ 0, 10, 0, 0, 0 });
	plan_add((struct step){ 0, 1, 0, 1, 0 });
	plan_add((struct step){ 0, 33, 0, 0, 1 });
	plan_add((struct step){ 0, 7, 0, 0, 0 });
	append_lines(f->sink, 0, 100);
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	run_until_idle(f);
	append_lines(f->sink, 100, 200);
	plan_add((struct step){ 0, 5, 0, 0, 0 });
	run_until_idle(f);
	check_lines(f->path, 0, 200);
	logsink_stats(f->sink, &st);
	assert_int_equal(st.short_writes, 5);
	assert_int_equal(st.lines_written, 200);
}

static void
test_eio_then_recovery(void **state)
{
	struct fixture		*f = *state;
	struct logsink_stats	 st;

	plan_reset((struct step){ 0, -1, 0, 0, 0 });
	plan_add((struct step){ 0, -1, EIO, 0, 1 });
	plan_add((struct step){ 0, -1, ENOSPC, 1, 0 });
	plan_add((struct step){ 0, -1, EIO, 0, 0 });
	append_lines(f->sink, 0, 50);
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	/* Lines added while the file fails are kept, in order. */
	event_base_loop(f->base, EVLOOP_ONCE);
	append_lines(f->sink, 50, 80);
	run_until_idle(f);
	check_lines(f->path, 0, 80);
	logsink_stats(f->sink, &st);
	assert_int_equal(st.write_errors, 3);
	assert_int_equal(st.lines_written, 80);
	assert_int_equal(st.lines_dropped, 0);
}

/* After a failed write the sink waits out its backoff asleep, even with
 * more than a batch queued behind it: the loop wakes a handful of times,
 * not once per pass (it used to spin on its own flush event). */
static void
test_backoff_sleeps(void **state)
{
	struct fixture		*f = *state;
	struct logsink_stats	 st;
	uint64_t		 t0;
	int			 wakeups = 0;

	plan_reset((struct step){ 0, -1, 0, 0, 1 });
	plan_add((struct step){ 0, -1, EIO, 0, 1 });
	append_lines(f->sink, 0, 4000);		/* above COALESCE_BYTES */
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	do {					/* submitted, then reaped */
		event_base_loop(f->base, EVLOOP_ONCE);
		logsink_stats(f->sink, &st);
	} while (st.write_errors == 0 && ++wakeups < 100);
	assert_int_equal(st.write_errors, 1);
	wakeups = 0;
	t0 = now_us();
	while (now_us() - t0 < 30000 && wakeups < 1000) {
		event_base_loop(f->base, EVLOOP_ONCE);
		wakeups++;
	}
	assert_true(wakeups < 10);
	run_until_idle(f);
	check_lines(f->path, 0, 4000);
}

static void
test_lost_signals(void **state)
{
	struct fixture		*f = *state;
	struct logsink_stats	 st;
	int			 i;

	/* No request ever signals, and each stays in flight for a while:
	 * only the safety timer's polling can reap them. */
	plan_reset((struct step){ 0, -1, 0, 3, 0 });
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	for (i = 0; i < 5; i++) {
		append_lines(f->sink, i * 100, i * 100 + 100);
		event_base_loop(f->base, EVLOOP_ONCE);
	}
	run_until_idle(f);
	check_lines(f->path, 0, 500);
	logsink_stats(f->sink, &st);
	assert_int_equal(st.lines_written, 500);
	assert_true(f_writes >= 2);
}

static void
reopen_inflight(struct fixture *f, ssize_t first_result)
{
	struct logsink_stats	 st;
	char			 old[160];
	int			 i;

	/* The first write completes a few safety-timer ticks after the
	 * reopen: slow, but well within the stall bound, so the reopen
	 * waits for it. */
	plan_reset((struct step){ 0, -1, 0, 2, 0 });
	plan_add((struct step){ 0, first_result, 0, 2, 0 });
	append_lines(f->sink, 0, 100);
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	for (i = 0; i < 100 && f_writes == 0; i++)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(f_inflight, 1);

	/* logrotate: rename, then ask for a reopen while a write runs. */
	snprintf(old, sizeof(old), "%s.1", f->path);
	assert_int_equal(rename(f->path, old), 0);
	assert_int_equal(logsink_reopen(f->sink, NULL), 0);
	append_lines(f->sink, 100, 150);
	run_until_idle(f);
	check_lines(old, 0, 100);
	check_lines(f->path, 100, 150);
	logsink_stats(f->sink, &st);
	assert_int_equal(st.reopens, 1);
	assert_int_equal(st.lines_written, 150);
	assert_int_equal(st.lines_abandoned, 0);
	assert_int_equal(st.lines_dropped, 0);
	assert_int_equal(logsink_abandoned(), 0);
}

static void
test_reopen_inflight(void **state)
{
	reopen_inflight(*state, -1);
}

/* A short write before the swap: the rest of its lines stay in the old file. */
static void
test_reopen_inflight_short(void **state)
{
	reopen_inflight(*state, 45);
}

static void
test_reopen_new_path(void **state)
{
	struct fixture	*f = *state;
	char		 other[160];

	plan_reset((struct step){ 0, -1, 0, 0, 0 });
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	append_lines(f->sink, 0, 10);
	run_until_idle(f);
	snprintf(other, sizeof(other), "%s/other", f->dir);
	assert_int_equal(logsink_reopen(f->sink, other), 0);
	append_lines(f->sink, 10, 20);
	run_until_idle(f);
	check_lines(f->path, 0, 10);
	check_lines(other, 10, 20);
	assert_string_equal(logsink_path(f->sink), other);
	/* A reopen that cannot open keeps the old file. */
	assert_int_equal(logsink_reopen(f->sink, "/nonexistent/dir/log"), -1);
	append_lines(f->sink, 20, 30);
	run_until_idle(f);
	check_lines(other, 10, 30);
}

/*
 * A reopen while the write in flight never comes back (a FIFO nobody reads):
 * after the stall bound the new file is opened and used anyway. The stuck
 * request keeps its fd (open, on the old file) and buffer until it ends;
 * then it is reaped once and its fd closed. extra: lines added to the stuck
 * write's chunk after it was submitted, before the reopen.
 */
static void
reopen_stuck(struct fixture *f, int extra)
{
	struct logsink_stats	 st;
	char			 old[160], notice[64];
	int			 i, stuck_fd;
	ino_t			 old_ino;

	plan_reset((struct step){ 0, -1, 0, 0, 0 });
	plan_add((struct step){ 0, -1, 0, STUCK, 0 });
	append_lines(f->sink, 0, 100);
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	for (i = 0; i < 100 && f_writes == 0; i++)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(f_writes, 1);
	stuck_fd = reqs[0].fd;
	old_ino = reqs[0].ino;
	append_lines(f->sink, 100, 100 + extra);

	snprintf(old, sizeof(old), "%s.1", f->path);
	assert_int_equal(rename(f->path, old), 0);
	assert_int_equal(logsink_reopen(f->sink, NULL), 0);
	append_lines(f->sink, 100 + extra, 150);
	/* Not at once: a slow write may still come back in time. */
	logsink_stats(f->sink, &st);
	assert_int_equal(st.reopens, 0);
	assert_int_equal(logsink_fd(f->sink), stuck_fd);
	/* Nor on time alone, however late the loop looks. */
	usleep(STALL_US + 50000);
	poll_until_unstuck(f, 0);
	logsink_stats(f->sink, &st);
	assert_int_equal(st.reopens, 1);
	assert_true(logsink_fd(f->sink) != stuck_fd);
	run_until_idle(f);

	/* Later lines are in the new file, with the count of those left
	 * with the stuck write; the old file has none of them. */
	snprintf(notice, sizeof(notice), "100 lines dropped\n");
	check_file(f->path, 100, 150, notice);
	check_lines(old, 0, 0);
	logsink_stats(f->sink, &st);
	assert_int_equal(st.lines_written, 50);
	assert_int_equal(st.lines_abandoned, 100);
	assert_int_equal(st.lines_dropped, 100);
	assert_int_equal(st.notices, 1);
	assert_int_equal(st.bytes_queued, 0);

	/* Still in flight: its fd is open, on the old file, not returned. */
	assert_int_equal(logsink_abandoned(), 1);
	assert_true(fcntl(stuck_fd, F_GETFD) != -1);
	assert_true(fd_ino(stuck_fd) == old_ino);
	assert_int_equal(reqs[0].returns, 0);

	/* It ends at last and signals: reaped once, its fd closed then. */
	fake_release();
	raise(SIGUSR2);
	event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(reqs[0].returns, 1);
	assert_int_equal(fcntl(stuck_fd, F_GETFD), -1);
	assert_int_equal(logsink_abandoned(), 0);
	assert_int_equal(reqs[0].returns, 1);
	check_lines(old, 0, 100);
	check_file(f->path, 100, 150, notice);
}

static void
test_reopen_stuck(void **state)
{
	reopen_stuck(*state, 0);
}

/* Lines that shared the stuck write's buffer move to the new file. */
static void
test_reopen_stuck_shared_chunk(void **state)
{
	reopen_stuck(*state, 20);
}

/* A reload to a new path while the write is stuck: the same, by path. */
static void
test_reopen_stuck_new_path(void **state)
{
	struct fixture		*f = *state;
	struct logsink_stats	 st;
	char			 other[160];
	int			 i;

	plan_reset((struct step){ 0, -1, 0, 0, 0 });
	plan_add((struct step){ 0, -1, 0, STUCK, 0 });
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	append_lines(f->sink, 0, 10);
	for (i = 0; i < 100 && f_writes == 0; i++)
		event_base_loop(f->base, EVLOOP_ONCE);
	snprintf(other, sizeof(other), "%s/other", f->dir);
	assert_int_equal(logsink_reopen(f->sink, other), 0);
	append_lines(f->sink, 10, 20);
	usleep(STALL_US + 50000);
	poll_until_unstuck(f, 0);
	run_until_idle(f);
	assert_string_equal(logsink_path(f->sink), other);
	check_file(other, 10, 20, "10 lines dropped\n");
	/*
	 * Stuck again while the first abandoned write is still stuck: a
	 * second request is not left behind (each holds an aio helper, an
	 * fd and a buffer); the reopen waits, and says so once.
	 */
	plan_add((struct step){ 0, -1, 0, STUCK, 0 });
	append_lines(f->sink, 20, 30);
	for (i = 0; i < 100 && f_writes == 2; i++)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(f_writes, 3);
	usleep(STALL_US + 50000);
	assert_int_equal(logsink_reopen(f->sink, f->path), 0);
	for (i = 0; i < 100 && reqs[2].busy < STALL_POLLS; i++)
		poll_once(f);
	assert_true(reqs[2].busy >= STALL_POLLS);
	for (i = 0; i < 20; i++)
		poll_once(f);
	logsink_stats(f->sink, &st);
	assert_int_equal(st.reopens, 1);
	assert_int_equal(st.reopens_deferred, 1);
	assert_int_equal(st.lines_abandoned, 10);
	assert_string_equal(logsink_path(f->sink), other);
	assert_int_equal(logsink_abandoned(), 1);
	/* Both end: the first in the first file, the second in the one it
	 * was written to, and the reopen goes ahead with nothing dropped. */
	fake_release();
	raise(SIGUSR2);
	run_until_idle(f);
	logsink_stats(f->sink, &st);
	assert_int_equal(st.reopens, 2);
	assert_int_equal(st.lines_abandoned, 10);
	assert_string_equal(logsink_path(f->sink), f->path);
	assert_int_equal(logsink_abandoned(), 0);
	check_content(other, 10, 20, "10 lines dropped\n", 20, 30);
	check_lines(f->path, 0, 10);
}

/*
 * A reopen storm against a write that never ends (a FIFO whose reader
 * stopped): one request is left behind, not one per reopen; descriptors
 * stay bounded, and the lines beyond the buffer are counted as dropped.
 */
static void
test_reopen_storm_stuck(void **state)
{
	struct fixture		*f = *state;
	struct logsink_stats	 st;
	int			 i, k, fd0, maxfd = 0;

	plan_reset((struct step){ 0, -1, 0, STUCK, 0 });
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	fd0 = dup(0);
	close(fd0);
	for (k = 0; k < 30; k++) {
		append_lines(f->sink, k * 10, k * 10 + 10);
		for (i = 0; i < 5; i++)
			event_base_loop(f->base, EVLOOP_NONBLOCK);
		usleep(STALL_US + 10000);
		for (i = 0; i < STALL_POLLS; i++)
			poll_once(f);	/* seen in progress: stuck */
		assert_int_equal(logsink_reopen(f->sink, NULL), 0);
		for (i = 0; i < 5; i++)
			poll_once(f);
		assert_true(logsink_abandoned() <= 1);
		if (logsink_fd(f->sink) > maxfd)
			maxfd = logsink_fd(f->sink);
	}
	logsink_stats(f->sink, &st);
	assert_int_equal(st.reopens, 1);
	assert_true(st.reopens_deferred >= 1);
	/* The old fd and the current one, nothing more. */
	assert_true(maxfd <= fd0 + 2);
	assert_true(f_writes <= 2);
	fake_release();
	raise(SIGUSR2);
	run_until_idle(f);
	logsink_stats(f->sink, &st);
	assert_int_equal(st.reopens, 2);
	assert_int_equal(logsink_abandoned(), 0);
	assert_int_equal(st.lines_written + st.lines_dropped, 300);
}

/*
 * A reopen on a slow file, watched by a loop that wakes late (a loaded
 * machine): the write in flight is older than the stall bound when the
 * reopen looks at it, but it ends on its next polls. Slow is not stuck: the
 * reopen waits for it, its lines are in the old file and none is counted
 * as dropped.
 */
static void
test_reopen_slow_loop(void **state)
{
	struct fixture		*f = *state;
	struct logsink_stats	 st;
	char			 old[160];
	int			 i;

	/* Each write is seen in progress one poll short of the bound. */
	plan_reset((struct step){ 0, -1, 0, STALL_POLLS - 1, 0 });
	append_lines(f->sink, 0, 100);
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	for (i = 0; i < 100 && f_writes == 0; i++)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(f_inflight, 1);
	usleep(STALL_US + 50000);
	snprintf(old, sizeof(old), "%s.1", f->path);
	assert_int_equal(rename(f->path, old), 0);
	assert_int_equal(logsink_reopen(f->sink, NULL), 0);
	append_lines(f->sink, 100, 150);
	for (i = 0; i < 100 && !logsink_idle(f->sink); i++) {
		usleep(STALL_US + 50000);
		poll_once(f);
	}
	assert_true(logsink_idle(f->sink));
	check_lines(old, 0, 100);
	check_lines(f->path, 100, 150);
	logsink_stats(f->sink, &st);
	assert_int_equal(st.reopens, 1);
	assert_int_equal(st.lines_written, 150);
	assert_int_equal(st.lines_abandoned, 0);
	assert_int_equal(st.lines_dropped, 0);
	assert_int_equal(logsink_abandoned(), 0);
}

/*
 * A full file system: a short write stops mid-line, then ENOSPC. A reopen
 * (logrotate after freeing space) must not carry the rest of that line to
 * the top of the new file: the old file is cut back to its last whole
 * line, and the line goes whole to the new file.
 */
static void
test_torn_line_not_carried_over(void **state)
{
	struct fixture		*f = *state;
	struct logsink_stats	 st;
	char			 old[160];
	int			 i;

	plan_reset((struct step){ 0, -1, 0, 0, 0 });
	/* 3 whole lines (32 bytes each) and 10 bytes of the fourth. */
	plan_add((struct step){ 0, 3 * 32 + 10, 0, 0, 0 });
	for (i = 0; i < 20; i++)
		plan_add((struct step){ 0, -1, ENOSPC, 0, 0 });
	append_lines(f->sink, 0, 10);
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	memset(&st, 0, sizeof(st));
	for (i = 0; i < 100 && st.write_errors == 0; i++) {
		event_base_loop(f->base, EVLOOP_ONCE);
		logsink_stats(f->sink, &st);
	}
	assert_true(st.write_errors >= 1);
	snprintf(old, sizeof(old), "%s.1", f->path);
	assert_int_equal(rename(f->path, old), 0);
	assert_int_equal(logsink_reopen(f->sink, NULL), 0);
	plan_default((struct step){ 0, -1, 0, 0, 0 });
	append_lines(f->sink, 10, 20);
	run_until_idle(f);
	check_lines(old, 0, 3);
	check_lines(f->path, 3, 20);
	logsink_stats(f->sink, &st);
	assert_int_equal(st.lines_written, 20);
	assert_int_equal(st.lines_dropped, 0);
	assert_int_equal(st.torn_undone, 1);
}

/*
 * The same when the tail cannot be taken back (another process wrote to
 * the file since): the fragment stays last in the old file, the rest of
 * that line is dropped and counted, and the new file starts on a line.
 */
static void
test_torn_line_dropped_when_not_undoable(void **state)
{
	struct fixture		*f = *state;
	struct logsink_stats	 st;
	char			 old[160], *data, want[64];
	size_t			 len;
	int			 i, fd;

	plan_reset((struct step){ 0, -1, 0, 0, 0 });
	plan_add((struct step){ 0, 2 * 32 + 5, 0, 0, 0 });
	for (i = 0; i < 20; i++)
		plan_add((struct step){ 0, -1, ENOSPC, 0, 0 });
	append_lines(f->sink, 0, 10);
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	memset(&st, 0, sizeof(st));
	for (i = 0; i < 100 && st.write_errors == 0; i++) {
		event_base_loop(f->base, EVLOOP_ONCE);
		logsink_stats(f->sink, &st);
	}
	fd = open(f->path, O_WRONLY | O_APPEND);
	assert_true(fd != -1);
	assert_int_equal(write(fd, "X", 1), 1);
	close(fd);
	snprintf(old, sizeof(old), "%s.1", f->path);
	assert_int_equal(rename(f->path, old), 0);
	assert_int_equal(logsink_reopen(f->sink, NULL), 0);
	plan_default((struct step){ 0, -1, 0, 0, 0 });
	run_until_idle(f);
	check_file(f->path, 3, 10, "1 lines dropped\n");
	data = slurp(old, &len);
	line(want, sizeof(want), 2);
	assert_int_equal(len, 2 * 32 + 5 + 1);
	assert_memory_equal(data + 2 * 32, want, 5);
	free(data);
	logsink_stats(f->sink, &st);
	assert_int_equal(st.lines_written, 9);
	assert_int_equal(st.lines_dropped, 1);
	assert_int_equal(st.torn_dropped, 1);
}

/* At exit with a torn tail: the file still ends with a whole line. */
static void
test_torn_line_at_free(void **state)
{
	struct fixture		*f = *state;
	struct logsink_stats	 st;
	int			 i;

	memset(&st, 0, sizeof(st));
	plan_reset((struct step){ 0, -1, ENOSPC, 0, 0 });
	plan_add((struct step){ 0, 4 * 32 + 17, 0, 0, 0 });
	append_lines(f->sink, 0, 10);
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	for (i = 0; i < 100 && st.write_errors == 0; i++) {
		event_base_loop(f->base, EVLOOP_ONCE);
		logsink_stats(f->sink, &st);
	}
	assert_int_equal(logsink_free(f->sink), 6);
	f->sink = NULL;
	check_lines(f->path, 0, 4);
}

/*
 * A sink that a reload turns off while its write is stuck: retiring it never
 * waits, and it lets go of the stuck write after the bound, freeing itself.
 */
static void
test_retire_stuck(void **state)
{
	struct fixture	*f = *state;
	int		 i, stuck_fd, idle = 0;

	plan_reset((struct step){ 0, -1, 0, 0, 0 });
	plan_add((struct step){ 0, -1, 0, STUCK, 0 });
	append_lines(f->sink, 0, 100);
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	for (i = 0; i < 100 && f_writes == 0; i++)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(f_writes, 1);
	stuck_fd = reqs[0].fd;
	append_lines(f->sink, 100, 120);

	logsink_retire(f->sink);
	f->sink = NULL;
	assert_int_equal(f_waits, 0);
	/* The sink's events go away with it: the loop runs dry. */
	for (i = 0; i < 1000 && !idle; i++)
		idle = event_base_loop(f->base, EVLOOP_ONCE) == 1;
	assert_true(idle);
	assert_int_equal(f_waits, 0);
	assert_int_equal(f_writes, 1);
	assert_int_equal(logsink_abandoned(), 1);
	assert_true(fcntl(stuck_fd, F_GETFD) != -1);
	fake_release();
	assert_int_equal(logsink_abandoned(), 0);
	assert_int_equal(reqs[0].returns, 1);
	assert_int_equal(fcntl(stuck_fd, F_GETFD), -1);
	check_lines(f->path, 0, 100);
}

/* A retired sink on a working file writes out what it holds, then goes. */
static void
test_retire_writes_out(void **state)
{
	struct fixture	*f = *state;
	int		 i, idle = 0;

	plan_reset((struct step){ 0, 1000, 0, 1, 0 });
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	append_lines(f->sink, 0, 300);
	logsink_retire(f->sink);
	f->sink = NULL;
	for (i = 0; i < 100000 && !idle; i++)
		idle = event_base_loop(f->base, EVLOOP_ONCE) == 1;
	assert_true(idle);
	assert_int_equal(f_waits, 0);
	assert_int_equal(f_inflight, 0);
	check_lines(f->path, 0, 300);
}

/*
 * A retired sink on a slow file, watched by a loop that wakes late (a loaded
 * machine): every write is older than the stall bound by the time the loop
 * first looks at it, and the whole takes longer than any fixed deadline, yet
 * each one ends within a few polls. Slow is not stuck: every line is
 * written, and nothing is left behind.
 */
static void
test_retire_slow_loop(void **state)
{
	struct fixture	*f = *state;
	int		 i, idle = 0;

	/* 10 lines of 32 bytes in 3 writes, each done on its third poll. */
	plan_reset((struct step){ 0, 128, 0, 2, 0 });
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	append_lines(f->sink, 0, 10);
	logsink_retire(f->sink);
	f->sink = NULL;
	for (i = 0; i < 100 && !idle; i++) {
		usleep(150000);		/* three of these: past STALL_US */
		idle = event_base_loop(f->base, EVLOOP_ONCE) == 1;
	}
	assert_true(idle);
	assert_int_equal(f_writes, 3);
	assert_int_equal(f_inflight, 0);
	assert_int_equal(logsink_abandoned(), 0);
	check_lines(f->path, 0, 10);
}

/* At exit, what a retired sink still holds is written out (blocking). */
static void
test_retire_then_finish(void **state)
{
	struct fixture	*f = *state;

	plan_reset((struct step){ 0, -1, 0, 3, 0 });
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	append_lines(f->sink, 0, 300);
	logsink_retire(f->sink);
	f->sink = NULL;
	assert_int_equal(logsink_finish(now_us() + 5000000), 0);
	check_lines(f->path, 0, 300);
	/* Nothing is left on the base. */
	assert_int_equal(event_base_loop(f->base, EVLOOP_NONBLOCK), 1);
}

static void
test_overflow_exact(void **state)
{
	struct fixture		*f = *state;
	struct logsink_stats	 st;
	char			 buf[64], batch[64 * 20], *data, want[64];
	size_t			 n, len, blen, dropped = 0;
	int			 i, accepted;

	plan_reset((struct step){ 0, -1, 0, 0, 0 });
	logsink_free(f->sink);
	f->sink = logsink_open(f->path, 4096, NULL, buf, sizeof(buf));
	assert_non_null(f->sink);
	n = line(buf, sizeof(buf), 0);
	accepted = (int)(4096 / n);
	/* Not started: nothing drains, so the buffer fills. */
	for (i = 0; i < 1000; i++)
		dropped += logsink_append(f->sink, buf,
		    line(buf, sizeof(buf), i), 1);
	assert_int_equal(dropped, 1000 - accepted);
	/* A batch that does not fit whole: drop counted per line. */
	blen = 0;
	for (i = 0; i < 20; i++)
		blen += line(batch + blen, sizeof(batch) - blen, 2000 + i);
	assert_int_equal(logsink_append(f->sink, batch, blen, 20), 20);
	logsink_add_drops(f->sink, 7);
	logsink_stats(f->sink, &st);
	assert_int_equal(st.lines_dropped, 1000 - accepted + 20 + 7);
	assert_true(st.bytes_queued <= 4096);

	assert_int_equal(logsink_drain(f->sink, now_us() + 5000000), 0);
	data = slurp(f->path, &len);
	n = 0;
	for (i = 0; i < accepted; i++) {
		size_t	k = line(want, sizeof(want), i);

		assert_memory_equal(data + n, want, k);
		n += k;
	}
	snprintf(want, sizeof(want), "%d lines dropped\n",
	    1000 - accepted + 27);
	assert_string_equal(data + n, want);
	free(data);
	logsink_stats(f->sink, &st);
	assert_int_equal(st.lines_written, accepted);
	assert_int_equal(st.notices, 1);

	/* Room again: the next batch is taken, partly when it overflows. */
	assert_int_equal(logsink_append(f->sink, batch, blen, 20), 0);
	for (i = 0; i < 200; i++)
		dropped += logsink_append(f->sink, buf,
		    line(buf, sizeof(buf), i), 1);
	logsink_stats(f->sink, &st);
	assert_int_equal(st.lines_dropped, dropped + 20 + 7);
}

static void
test_partial_batch(void **state)
{
	struct fixture		*f = *state;
	struct logsink_stats	 st;
	char			 buf[64], batch[64 * 200];
	size_t			 blen = 0, n;
	int			 i;

	plan_reset((struct step){ 0, -1, 0, 0, 0 });
	logsink_free(f->sink);
	f->sink = logsink_open(f->path, 4096, NULL, buf, sizeof(buf));
	for (i = 0; i < 200; i++)
		blen += line(batch + blen, sizeof(batch) - blen, i);
	n = line(buf, sizeof(buf), 0);
	assert_int_equal(logsink_append(f->sink, batch, blen, 200),
	    200 - 4096 / n);
	logsink_stats(f->sink, &st);
	assert_int_equal(st.bytes_queued, (4096 / n) * n);
	assert_int_equal(logsink_drain(f->sink, now_us() + 5000000), 0);
	logsink_stats(f->sink, &st);
	assert_int_equal(st.lines_written, 4096 / n);
}

/*
 * A batch larger than a chunk, after everything was written: the emptied
 * chunk that the sink keeps must not block the queue behind it.
 */
static void
test_big_batch_after_idle(void **state)
{
	struct fixture	*f = *state;
	char		 buf[64], *batch;
	size_t		 blen = 0, cap = 64 * 600;
	int		 i;

	plan_reset((struct step){ 0, -1, 0, 0, 0 });
	logsink_free(f->sink);
	f->sink = logsink_open(f->path, 64 * 1024, NULL, buf, sizeof(buf));
	assert_non_null(f->sink);
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	append_lines(f->sink, 0, 10);
	run_until_idle(f);
	batch = xmalloc(cap);
	for (i = 10; i < 610; i++)
		blen += line(batch + blen, cap - blen, i);
	assert_true(blen > 16 * 1024);	/* more than one chunk holds */
	assert_int_equal(logsink_append(f->sink, batch, blen, 600), 0);
	free(batch);
	append_lines(f->sink, 610, 620);
	run_until_idle(f);
	check_lines(f->path, 0, 620);
}

/* Real glibc aio, SIGUSR2 through libevent, with a rotation. */
static void
test_real_aio(void **state)
{
	struct fixture		*f = *state;
	struct logsink_stats	 st;
	char			 old[160];
	int			 i;

	logsink_set_ops(NULL);
	assert_int_equal(logsink_start(f->sink, f->base), 0);
	for (i = 0; i < 200; i++) {
		append_lines(f->sink, i * 100, i * 100 + 100);
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		if (i == 100) {
			snprintf(old, sizeof(old), "%s.1", f->path);
			assert_int_equal(rename(f->path, old), 0);
			logsink_reopen(f->sink, NULL);
		}
	}
	run_until_idle(f);
	check_lines(old, 0, 10100);
	check_lines(f->path, 10100, 20000);
	logsink_stats(f->sink, &st);
	assert_int_equal(st.lines_written, 20000);
	assert_int_equal(st.write_errors, 0);
}

/* Drain without an event loop, as at exit. */
static void
test_real_drain(void **state)
{
	struct fixture	*f = *state;

	logsink_set_ops(NULL);
	append_lines(f->sink, 0, 50000);
	assert_int_equal(logsink_drain(f->sink, now_us() + 10000000), 0);
	check_lines(f->path, 0, 50000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_plain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eagain_then_success,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_writes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_eio_then_recovery, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_backoff_sleeps, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_lost_signals, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopen_inflight, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopen_inflight_short,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_new_path, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopen_storm_stuck, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopen_slow_loop, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_torn_line_not_carried_over,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_torn_line_dropped_when_not_undoable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_line_at_free, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopen_stuck, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopen_stuck_shared_chunk,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_stuck_new_path,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_retire_stuck, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_retire_writes_out, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_retire_slow_loop, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_retire_then_finish, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_overflow_exact, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_partial_batch, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_big_batch_after_idle,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_real_aio, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_real_drain, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
