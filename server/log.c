/*
 * log.c: echod's event log and access log front end.
 *
 * The main thread owns the sinks (logsink.c: one file each, POSIX aio).
 * Lines logged on the main thread go straight into a sink. A worker thread
 * formats its lines into a thread-local buffer (log_thread_attach) and hands
 * whole buffers to the main thread through a queue (msgq.h) watched by the
 * main event_base: one lock per batch, none per connection. A batch leaves the worker when it is large, on a short timer
 * on the worker's base, and at detach. Any other thread, and libevent's own
 * log callback (which must not call back into libevent), queue single lines
 * the same way. The event log may instead go to stderr, written
 * synchronously from whatever thread logs, or be off.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "logfmt.h"
#include "logsink.h"
#include "msgq.h"
#include "util.h"

#define BATCH_BYTES	(32 * 1024)	/* hand a worker's lines over */
#define BATCH_US	25000		/* ... or after this long */
#define LINE_MAX_LEN	4096
#define DEFAULT_BUFFER	(4 * 1024 * 1024)
#define FINISH_MIN_US	100000

enum kind {
	K_EVENT,
	K_ACCESS,
	K_N
};

enum dest {
	DEST_STDERR,
	DEST_OFF,
	DEST_SINK,
};

static const char *level_names[] = { "debug", "info", "notice", "warn",
    "error" };

static atomic_int	 cur_level = LOG_LEVEL_INFO;
static atomic_int	 event_dest = DEST_STDERR;
static atomic_int	 access_on;
static atomic_int	 access_fmt = ACCESS_TEXT;
static atomic_size_t	 buffer_limit = DEFAULT_BUFFER;
static atomic_int	 finished;

/* Main thread only. */
static struct logsink	*sinks[K_N];
static struct event_base *main_base;

/* The hand-off queue: batches of lines for the main thread. Static, so
 * that it stays valid after log_finish closes it. */
struct batch {
	struct msgq_item item;	/* first: the queue's handle */
	enum kind	 kind;
	size_t		 len;
	size_t		 nlines;
	char		*data;
};
static struct msgq		q;
static atomic_int		q_open;
static atomic_size_t		q_bytes[K_N];	/* queued, not yet drained */
static atomic_uint_fast64_t	q_drops[K_N];	/* not yet told a sink */

/* A worker's lines not yet handed over. */
struct wbuf {
	char	*data;
	size_t	 len;
	size_t	 cap;
	size_t	 nlines;
};
struct wlog {
	struct event	*timer;
	int		 armed;
	struct wbuf	 b[K_N];
};

static __thread int		 tls_main;
static __thread int		 tls_in_evcb;
static __thread struct wlog	*tls_w;

/* --- small helpers */

int
log_level_enabled(enum log_level level)
{
	return (int)level >= atomic_load_explicit(&cur_level,
	    memory_order_relaxed);
}

int
log_parse_level(const char *s, enum log_level *out)
{
	size_t	i;

	for (i = 0; i < nitems(level_names); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

static void
write_all(int fd, const char *p, size_t n)
{
	ssize_t	w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static size_t
limit_bytes(void)
{
	return atomic_load_explicit(&buffer_limit, memory_order_relaxed);
}

/* --- the hand-off queue */

static void
batch_free(struct batch *b)
{
	free(b->data);
	free(b);
}

static void
queue_push(struct batch *b)
{
	size_t	prev;

	if (atomic_load(&finished) || !atomic_load(&q_open)) {
		batch_free(b);
		return;
	}
	prev = atomic_fetch_add(&q_bytes[b->kind], b->len);
	if (prev + b->len > limit_bytes()) {
		/* The main thread is behind by a whole buffer: count. */
		atomic_fetch_sub(&q_bytes[b->kind], b->len);
		atomic_fetch_add(&q_drops[b->kind], b->nlines);
		batch_free(b);
		return;
	}
	if (msgq_push(&q, &b->item) != 0) {
		/* Closed meanwhile: log_finish is done. */
		atomic_fetch_sub(&q_bytes[b->kind], b->len);
		batch_free(b);
	}
}

static void
queue_line(enum kind kind, const char *line, size_t n)
{
	struct batch	*b = xmalloc(sizeof(*b));

	b->kind = kind;
	b->len = n;
	b->nlines = 1;
	b->data = xmalloc(n);
	memcpy(b->data, line, n);
	queue_push(b);
}

/* Main thread, the queue's handler: one batch into its sink. */
static void
batch_write(struct msgq_item *it, void *arg)
{
	struct batch	*b = (struct batch *)it;

	(void)arg;
	atomic_fetch_sub(&q_bytes[b->kind], b->len);
	if (sinks[b->kind] != NULL)
		logsink_append(sinks[b->kind], b->data, b->len, b->nlines);
	else if (b->kind == K_EVENT &&
	    atomic_load(&event_dest) == DEST_STDERR)
		write_all(STDERR_FILENO, b->data, b->len);
	batch_free(b);
}

static void
batch_discard(struct msgq_item *it, void *arg)
{
	(void)arg;
	batch_free((struct batch *)it);
}

/* Main thread: move everything queued into the sinks. */
static void
queue_drain(void)
{
	uint64_t	drops;
	int		k;

	if (!atomic_load(&q_open))
		return;
	for (k = 0; k < K_N; k++) {
		drops = atomic_exchange(&q_drops[k], 0);
		if (drops > 0 && sinks[k] != NULL)
			logsink_add_drops(sinks[k], drops);
	}
	msgq_drain(&q, 0);
}

/* --- worker buffers */

static void
wbuf_handoff(struct wlog *w, enum kind kind)
{
	struct wbuf	*wb = &w->b[kind];
	struct batch	*b;

	if (wb->len == 0)
		return;
	b = xmalloc(sizeof(*b));
	b->kind = kind;
	b->len = wb->len;
	b->nlines = wb->nlines;
	b->data = wb->data;
	wb->data = NULL;
	wb->len = wb->cap = wb->nlines = 0;
	queue_push(b);
}

static void
wtimer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wlog	*w = arg;

	(void)fd;
	(void)what;
	w->armed = 0;
	wbuf_handoff(w, K_EVENT);
	wbuf_handoff(w, K_ACCESS);
}

static void
wbuf_add(struct wlog *w, enum kind kind, const char *line, size_t n)
{
	struct wbuf	*wb = &w->b[kind];
	struct timeval	 tv = { 0, BATCH_US };

	if (wb->cap - wb->len < n) {
		wb->cap = wb->len + n > BATCH_BYTES + LINE_MAX_LEN ?
		    wb->len + n : BATCH_BYTES + LINE_MAX_LEN;
		wb->data = xrealloc(wb->data, wb->cap);
	}
	memcpy(wb->data + wb->len, line, n);
	wb->len += n;
	wb->nlines++;
	if (wb->len >= BATCH_BYTES)
		wbuf_handoff(w, kind);
	else if (!w->armed) {
		evtimer_add(w->timer, &tv);
		w->armed = 1;
	}
}

/* Route one finished line to its sink, from whatever thread. */
static void
route(enum kind kind, const char *line, size_t n)
{
	if (tls_in_evcb)
		queue_line(kind, line, n);
	else if (tls_w != NULL)
		wbuf_add(tls_w, kind, line, n);
	else if (tls_main && sinks[kind] != NULL)
		logsink_append(sinks[kind], line, n, 1);
	else
		queue_line(kind, line, n);
}

/* --- event log */

static void
log_vmsg(enum log_level level, int with_errno, const char *fmt, va_list ap)
{
	char	msg[LINE_MAX_LEN - 128], line[LINE_MAX_LEN];
	int	saved = errno, dest, n;
	size_t	t;

	if ((int)level < atomic_load_explicit(&cur_level,
	    memory_order_relaxed))
		return;
	dest = atomic_load(&event_dest);
	if (dest == DEST_OFF && !atomic_load(&finished))
		goto out;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (dest == DEST_STDERR || atomic_load(&finished)) {
		if (with_errno)
			n = snprintf(line, sizeof(line), "echod: %s: %s\n",
			    msg, strerror(saved));
		else
			n = snprintf(line, sizeof(line), "echod: %s\n", msg);
		if (n > 0)
			write_all(STDERR_FILENO, line, (size_t)n >=
			    sizeof(line) ? sizeof(line) - 1 : (size_t)n);
		goto out;
	}
	t = logfmt_time(line, sizeof(line), wall_us());
	if (with_errno)
		n = snprintf(line + t, sizeof(line) - t, " %s: %s: %s\n",
		    level_names[level], msg, strerror(saved));
	else
		n = snprintf(line + t, sizeof(line) - t, " %s: %s\n",
		    level_names[level], msg);
	if (n < 0)
		goto out;
	t += (size_t)n;
	if (t >= sizeof(line)) {
		t = sizeof(line) - 1;
		line[t - 1] = '\n';
	}
	route(K_EVENT, line, t);
out:
	errno = saved;
}

#define LOG_FN(name, level, witherr)				\
void								\
name(const char *fmt, ...)					\
{								\
	va_list	ap;						\
								\
	va_start(ap, fmt);					\
	log_vmsg(level, witherr, fmt, ap);			\
	va_end(ap);						\
}
LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_notice, LOG_LEVEL_NOTICE, 0)
LOG_FN(log_warn, LOG_LEVEL_WARN, 1)
LOG_FN(log_warnx, LOG_LEVEL_WARN, 0)
LOG_FN(log_error, LOG_LEVEL_ERROR, 1)
LOG_FN(log_errorx, LOG_LEVEL_ERROR, 0)

/* Before exiting: the message also on stderr, and the sinks written. */
static __attribute__((noreturn)) void
fatal_exit(int with_errno, const char *fmt, va_list ap)
{
	va_list	ap2;
	int	saved = errno;
	char	msg[1024];

	va_copy(ap2, ap);
	log_vmsg(LOG_LEVEL_ERROR, with_errno, fmt, ap);
	if (atomic_load(&event_dest) == DEST_SINK &&
	    !atomic_load(&finished)) {
		vsnprintf(msg, sizeof(msg), fmt, ap2);
		if (with_errno)
			fprintf(stderr, "echod: %s: %s\n", msg,
			    strerror(saved));
		else
			fprintf(stderr, "echod: %s\n", msg);
	}
	va_end(ap2);
	if (tls_main && !atomic_load(&finished))
		log_finish(1000000);
	exit(1);
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	fatal_exit(1, fmt, ap);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	fatal_exit(0, fmt, ap);
}

static void __attribute__((format(printf, 2, 3)))
log_at(enum log_level level, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vmsg(level, 0, fmt, ap);
	va_end(ap);
}

/*
 * libevent's own messages. The callback must not call into libevent, so
 * even on a worker or the main thread the line goes through the queue,
 * whose wake-up is a plain write(2) on its pipe.
 */
static void
evlog_cb(int severity, const char *msg)
{
	enum log_level	level;

	switch (severity) {
	case EVENT_LOG_DEBUG:
		level = LOG_LEVEL_DEBUG;
		break;
	case EVENT_LOG_MSG:
		level = LOG_LEVEL_INFO;
		break;
	case EVENT_LOG_WARN:
		level = LOG_LEVEL_WARN;
		break;
	default:
		level = LOG_LEVEL_ERROR;
		break;
	}
	tls_in_evcb++;
	log_at(level, "libevent: %s", msg);
	tls_in_evcb--;
}

/* --- access log: formatted by logfmt.c, routed like any line */

/* Drop notices, as each log's own kind of line (logsink's callback). */
static size_t
event_drop_fmt(char *buf, size_t len, uint64_t n)
{
	return logfmt_event_drop(buf, len, wall_us(), n);
}

static size_t
access_drop_fmt(char *buf, size_t len, uint64_t n)
{
	return logfmt_access_drop(buf, len, wall_us(), n,
	    atomic_load(&access_fmt) == ACCESS_JSON);
}

int
accesslog_enabled(void)
{
	return atomic_load_explicit(&access_on, memory_order_relaxed);
}

void
accesslog_record(const struct access_rec *rec)
{
	char	line[1024];
	size_t	n;

	if (!accesslog_enabled() || atomic_load(&finished))
		return;
	if ((n = logfmt_access(rec, atomic_load_explicit(&access_fmt,
	    memory_order_relaxed) == ACCESS_JSON, line, sizeof(line))) > 0)
		route(K_ACCESS, line, n);
}

/* --- life cycle */

static int
is_path(const char *s)
{
	return s != NULL && strcmp(s, LOG_OFF) != 0 &&
	    strcmp(s, LOG_STDERR) != 0;
}

static struct logsink *
open_sink(enum kind kind, const char *path, char *err, size_t errlen)
{
	char	e[512];
	struct logsink *s;

	s = logsink_open(path, limit_bytes(), kind == K_EVENT ?
	    event_drop_fmt : access_drop_fmt, e, sizeof(e));
	if (s == NULL)
		snprintf(err, errlen, "%s: %s", kind == K_EVENT ?
		    "error_log" : "access_log", e);
	return s;
}

int
log_open(const struct log_conf *conf, char *err, size_t errlen)
{
	tls_main = 1;
	atomic_store(&cur_level, (int)conf->level);
	atomic_store(&buffer_limit, conf->buffer != 0 ? (size_t)conf->buffer :
	    DEFAULT_BUFFER);
	atomic_store(&access_fmt, (int)conf->access_format);
	if (!atomic_load(&q_open)) {
		if (msgq_init(&q, batch_write, NULL, 0) != 0) {
			snprintf(err, errlen, "log hand-off queue: %s",
			    strerror(errno));
			return -1;
		}
		atomic_store(&q_open, 1);
	}
	event_set_log_callback(evlog_cb);

	if (is_path(conf->error_log)) {
		if ((sinks[K_EVENT] = open_sink(K_EVENT, conf->error_log, err,
		    errlen)) == NULL)
			return -1;
		atomic_store(&event_dest, DEST_SINK);
	} else if (conf->error_log != NULL &&
	    strcmp(conf->error_log, LOG_OFF) == 0)
		atomic_store(&event_dest, DEST_OFF);
	else
		atomic_store(&event_dest, DEST_STDERR);

	if (is_path(conf->access_log)) {
		if ((sinks[K_ACCESS] = open_sink(K_ACCESS, conf->access_log,
		    err, errlen)) == NULL) {
			logsink_free(sinks[K_EVENT]);
			sinks[K_EVENT] = NULL;
			atomic_store(&event_dest, DEST_STDERR);
			return -1;
		}
		atomic_store(&access_on, 1);
	}
	return 0;
}

void
log_start(struct event_base *base)
{
	int	k;

	tls_main = 1;
	main_base = base;
	if (!atomic_load(&q_open) || msgq_attach(&q, base) != 0)
		fatalx("cannot watch the log hand-off queue");
	for (k = 0; k < K_N; k++)
		if (sinks[k] != NULL && logsink_start(sinks[k], base) != 0)
			fatalx("cannot start the log sink %s",
			    logsink_path(sinks[k]));
	queue_drain();
}

void
log_reopen(void)
{
	int	k;

	queue_drain();
	for (k = 0; k < K_N; k++)
		if (sinks[k] != NULL)
			logsink_reopen(sinks[k], NULL);
}

int
log_thread_attach(struct event_base *base)
{
	struct wlog	*w;

	if (tls_w != NULL)
		return 0;
	w = xcalloc(1, sizeof(*w));
	if ((w->timer = evtimer_new(base, wtimer_cb, w)) == NULL) {
		free(w);
		return -1;
	}
	tls_w = w;
	return 0;
}

void
log_thread_detach(void)
{
	struct wlog	*w = tls_w;
	int		 k;

	if (w == NULL)
		return;
	for (k = 0; k < K_N; k++) {
		wbuf_handoff(w, (enum kind)k);
		free(w->b[k].data);
	}
	event_free(w->timer);
	free(w);
	tls_w = NULL;
}

/*
 * Stop writing to a sink that the new settings turn off. It writes out what
 * it holds from the event loop and frees itself (logsink_retire): waiting
 * for it here would hold up the main thread for as long as its file stalls.
 */
static void
retire_sink(enum kind kind)
{
	if (sinks[kind] == NULL)
		return;
	logsink_retire(sinks[kind]);
	sinks[kind] = NULL;
}

static int
reconfigure_sink(enum kind kind, const char *path)
{
	char	err[600];

	if (!is_path(path)) {
		retire_sink(kind);
		return 0;
	}
	if (sinks[kind] != NULL) {
		if (strcmp(logsink_path(sinks[kind]), path) != 0)
			return logsink_reopen(sinks[kind], path);
		return 0;
	}
	if ((sinks[kind] = open_sink(kind, path, err, sizeof(err))) == NULL) {
		log_warnx("%s", err);
		return -1;
	}
	if (main_base != NULL)
		logsink_start(sinks[kind], main_base);
	return 0;
}

int
log_reconfigure(const struct log_conf *conf)
{
	int	k, rc = 0;

	queue_drain();
	atomic_store(&cur_level, (int)conf->level);
	atomic_store(&buffer_limit, conf->buffer != 0 ? (size_t)conf->buffer :
	    DEFAULT_BUFFER);
	atomic_store(&access_fmt, (int)conf->access_format);
	for (k = 0; k < K_N; k++)
		if (sinks[k] != NULL)
			logsink_set_limit(sinks[k], limit_bytes());

	if (is_path(conf->error_log)) {
		if (reconfigure_sink(K_EVENT, conf->error_log) != 0)
			rc = -1;
		if (sinks[K_EVENT] != NULL)
			atomic_store(&event_dest, DEST_SINK);
	} else {
		atomic_store(&event_dest, conf->error_log != NULL &&
		    strcmp(conf->error_log, LOG_OFF) == 0 ? DEST_OFF :
		    DEST_STDERR);
		retire_sink(K_EVENT);
	}
	if (reconfigure_sink(K_ACCESS, conf->access_log) != 0)
		rc = -1;
	atomic_store(&access_on, sinks[K_ACCESS] != NULL);
	return rc;
}

void
log_stats(struct log_sink_stats *event_log, struct log_sink_stats *access)
{
	struct log_sink_stats	*out[K_N] = { event_log, access };
	struct logsink_stats	 st;
	uint64_t		 pending[K_N];
	int			 k;

	for (k = 0; k < K_N; k++)
		pending[k] = atomic_load(&q_drops[k]);
	for (k = 0; k < K_N; k++) {
		if (out[k] == NULL)
			continue;
		memset(out[k], 0, sizeof(*out[k]));
		if (sinks[k] == NULL)
			continue;
		logsink_stats(sinks[k], &st);
		out[k]->enabled = 1;
		out[k]->lines_written = st.lines_written;
		out[k]->lines_dropped = st.lines_dropped + pending[k];
		out[k]->lines_abandoned = st.lines_abandoned;
		out[k]->bytes_written = st.bytes_written;
		out[k]->bytes_queued = st.bytes_queued;
		out[k]->write_errors = st.write_errors;
		out[k]->reopens = st.reopens;
	}
}

void
log_finish(uint64_t timeout_us)
{
	uint64_t	 deadline;
	int		 k;

	if (atomic_load(&finished))
		return;
	if (timeout_us < FINISH_MIN_US)
		timeout_us = FINISH_MIN_US;
	deadline = now_us() + timeout_us;
	queue_drain();
	for (k = 0; k < K_N; k++)
		if (sinks[k] != NULL)
			logsink_drain(sinks[k], deadline);
	logsink_finish(deadline);	/* sinks a reload retired */
	/* From here on, whatever is logged goes to stderr. */
	atomic_store(&finished, 1);
	atomic_store(&access_on, 0);
	event_set_log_callback(NULL);
	for (k = 0; k < K_N; k++) {
		if (sinks[k] != NULL)
			logsink_free(sinks[k]);
		sinks[k] = NULL;
	}
	/* A line pushed from here on is dropped by the closed queue. */
	if (atomic_load(&q_open))
		msgq_close(&q, batch_discard, NULL);
	main_base = NULL;
}

void
log_chown(unsigned int uid, unsigned int gid)
{
	int	k, fd;

	for (k = 0; k < K_N; k++) {
		if (sinks[k] == NULL || (fd = logsink_fd(sinks[k])) == -1)
			continue;
		if (fchown(fd, (uid_t)uid, (gid_t)gid) != 0)
			log_warn("%s: chown", logsink_path(sinks[k]));
	}
}
