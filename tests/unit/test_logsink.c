/*
 * test_logsink.c: the aio log sink under injected faults. A fake aio table
 * performs each request with a real write(2) when it "completes", following
 * a per-request script (submit error, result, error, polls before done), so
 * the file's content shows exactly what the sink did. One test runs the
 * real glibc aio with SIGUSR2 through libevent.
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
	int	polls;		/* EINPROGRESS this many times first */
	int	signal;		/* raise SIGUSR2 when submitted */
};

static struct step	plan[256];
static int		nplan, iplan;
static struct step	dflt = { 0, -1, 0, 0, 0 };

static struct aiocb	*f_cb;
static struct step	 f_step;
static int		 f_done, f_returned, f_inflight, f_max_inflight;
static ssize_t		 f_res;
static int		 f_writes;

static void
plan_reset(struct step d)
{
	nplan = iplan = 0;
	dflt = d;
	f_cb = NULL;
	f_inflight = f_max_inflight = f_writes = 0;
}

static void
plan_add(struct step s)
{
	assert_true(nplan < (int)nitems(plan));
	plan[nplan++] = s;
}

static int
fake_write(struct aiocb *cb)
{
	struct step	s = iplan < nplan ? plan[iplan++] : dflt;

	/* The fd must be open when a request is made on it. */
	assert_true(fcntl(cb->aio_fildes, F_GETFD) != -1);
	assert_int_equal(cb->aio_sigevent.sigev_notify, SIGEV_SIGNAL);
	assert_int_equal(cb->aio_sigevent.sigev_signo, SIGUSR2);
	if (s.submit_err != 0) {
		errno = s.submit_err;
		return -1;
	}
	assert_int_equal(f_inflight, 0);	/* one in flight per file */
	f_inflight++;
	f_writes++;
	f_cb = cb;
	f_step = s;
	f_done = f_returned = 0;
	if (s.signal)
		raise(SIGUSR2);
	return 0;
}

static int
fake_error(const struct aiocb *cb)
{
	size_t	n;

	assert_ptr_equal(cb, f_cb);
	assert_false(f_returned);
	if (f_done)
		return f_step.err;
	if (f_step.polls > 0) {
		f_step.polls--;
		return EINPROGRESS;
	}
	f_done = 1;
	if (f_step.err != 0) {
		f_res = -1;
		return f_step.err;
	}
	n = cb->aio_nbytes;
	if (f_step.result >= 0 && (size_t)f_step.result < n)
		n = (size_t)f_step.result;
	/* The fd is still open when the request runs. */
	f_res = write(cb->aio_fildes, (const void *)cb->aio_buf, n);
	assert_int_equal(f_res, (ssize_t)n);
	return 0;
}

static ssize_t
fake_return(struct aiocb *cb)
{
	assert_ptr_equal(cb, f_cb);
	assert_true(f_done);
	assert_false(f_returned);	/* exactly once */
	f_returned = 1;
	f_inflight--;
	if (f_step.err != 0) {
		errno = f_step.err;
		return -1;
	}
	return f_res;
}

static int
fake_cancel(int fd, struct aiocb *cb)
{
	(void)fd;
	(void)cb;
	return f_done ? AIO_ALLDONE : AIO_NOTCANCELED;
}

static int
fake_suspend(const struct aiocb *const list[], int n,
    const struct timespec *ts)
{
	(void)list;
	(void)n;
	(void)ts;
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

/* The file holds exactly lines [from, to), in order. */
static void
check_lines(const char *path, int from, int to)
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
	assert_int_equal((size_t)(p - data), len);
	free(data);
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

	plan_reset((struct step){ 0, -1, 0, 2, 0 });
	plan_add((struct step){ 0, first_result, 0, 4, 0 });
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
		cmocka_unit_test_setup_teardown(test_lost_signals, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopen_inflight, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopen_inflight_short,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_new_path, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_overflow_exact, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_partial_batch, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_real_aio, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_real_drain, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
