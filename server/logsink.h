/*
 * logsink.h: one log file written only through POSIX aio_write. A sink takes
 * whole lines, batches them into large buffers, keeps at most one write in
 * flight, and reaps completions from the main event_base (SIGUSR2 as a
 * libevent signal event, aio_error polling, and a safety timer). Everything
 * here runs on the main thread; workers never touch a sink (see log.c).
 */
#ifndef ECHOD_LOGSINK_H
#define ECHOD_LOGSINK_H

#include <sys/types.h>
#include <aio.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct event_base;
struct logsink;

/* Completion signal: a standard signal, so that queueing it cannot fail. */
#define LOGSINK_SIGNAL	SIGUSR2

/*
 * The aio calls a sink makes, so that tests can inject faults. The default
 * table is libc's; logsink_set_ops(NULL) restores it.
 */
struct logsink_ops {
	int	(*write)(struct aiocb *);
	int	(*error)(const struct aiocb *);
	ssize_t	(*ret)(struct aiocb *);
	int	(*cancel)(int, struct aiocb *);
	int	(*suspend)(const struct aiocb *const[], int,
		    const struct timespec *);
};
void	logsink_set_ops(const struct logsink_ops *);

/* Formats the "N lines dropped" line into buf; returns its length. */
typedef size_t (*logsink_drop_fmt)(char *buf, size_t len, uint64_t ndropped);

struct logsink_stats {
	uint64_t	lines_written;	/* caller lines reaped as written */
	uint64_t	lines_dropped;	/* lines refused (buffer full) or
					   abandoned with a stuck write */
	uint64_t	lines_abandoned; /* in a write given up on: stuck at a
					   reopen, or not cancellable at close */
	uint64_t	bytes_written;
	uint64_t	bytes_queued;	/* accepted, not yet written */
	uint64_t	notices;	/* "N lines dropped" lines written */
	uint64_t	write_errors;	/* failed writes (ENOSPC, EIO, ...) */
	uint64_t	submit_retries;	/* aio_write said EAGAIN */
	uint64_t	short_writes;
	uint64_t	reopens;
	uint64_t	reopen_failures;
	uint64_t	reopens_deferred; /* a stuck write was already left
					   behind: wait rather than leave
					   another (logsink.c: ABANDON_MAX) */
	uint64_t	torn_undone;	/* torn line taken back (ftruncate)
					   before leaving a file */
	uint64_t	torn_dropped;	/* torn line that could not be: the
					   rest of it dropped */
	uint64_t	writes;		/* requests submitted */
};

/*
 * Open path (O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC, 0640). No aio request is
 * made and no event exists until logsink_start: this runs before daemonizing.
 * limit bounds the bytes queued. drop_fmt may be NULL (a plain text line).
 */
struct logsink	*logsink_open(const char *path, size_t limit,
		    logsink_drop_fmt drop_fmt, char *err, size_t errlen);
/* Attach to the main event_base; queued lines start being written. */
int		 logsink_start(struct logsink *, struct event_base *);
/*
 * Queue len bytes holding nlines whole lines. Returns the number of lines
 * dropped because the buffer is full (0: all accepted).
 */
size_t		 logsink_append(struct logsink *, const char *data, size_t len,
		    size_t nlines);
/* Count lines dropped before they reached the sink (hand-off queue). */
void		 logsink_add_drops(struct logsink *, uint64_t);
/*
 * Reopen (path NULL: the same path; else switch to path): stop submitting,
 * reap the write in flight, open the new file, swap, close the old fd. A
 * write in flight for longer than a bound (logsink.c: STALL_US) is not
 * waited for: it is abandoned (its fd and buffer kept until it ends, its
 * lines counted as dropped and abandoned) and the swap goes ahead; while
 * the sink already has a request left behind like that, the swap waits
 * (one at a time per sink, so a stuck sink holds two aio helpers at most).
 * The old file never ends in part of a line (see sink_untear).
 * Returns -1 only when the reopen was done at once and failed.
 */
int		 logsink_reopen(struct logsink *, const char *path);
void		 logsink_set_limit(struct logsink *, size_t);
/* Nothing queued, nothing in flight, no reopen pending. */
int		 logsink_idle(const struct logsink *);
/*
 * Write out everything queued without the event loop, waiting with
 * aio_suspend, until done or deadline (monotonic µs). 0 when all written.
 */
int		 logsink_drain(struct logsink *, uint64_t deadline_us);
/*
 * Close and free. A request still in flight is cancelled; if it cannot be,
 * its fd and buffer are abandoned (kept alive) rather than reused under it.
 * Returns the lines that were queued and never written.
 */
uint64_t	 logsink_free(struct logsink *);
/*
 * Hand over a sink that is no longer wanted, without blocking: it writes out
 * what it holds from the event loop and frees itself when done. A write
 * stuck past the stall bound, or anything left after a second, is given up
 * (abandoned as above, the rest counted as not written). A sink never
 * started is freed at once. The caller must not use s afterwards.
 */
void		 logsink_retire(struct logsink *);
/*
 * At exit: write out the retiring sinks within deadline (monotonic µs,
 * blocking), free them, and reap abandoned requests that have ended.
 * Returns the number of abandoned requests still in flight.
 */
size_t		 logsink_finish(uint64_t deadline_us);
/*
 * Reap abandoned requests that have ended (aio_return once, fd closed,
 * memory freed); returns the number still in flight.
 */
size_t		 logsink_abandoned(void);
void		 logsink_stats(const struct logsink *, struct logsink_stats *);
const char	*logsink_path(const struct logsink *);
int		 logsink_fd(const struct logsink *);

#endif
