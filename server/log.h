/*
 * log.h: echod's event log and access log front end. Any thread may log;
 * worker threads never touch a sink: what they log is batched per thread and
 * handed to the main thread, which owns the sinks (logsink.c, POSIX aio).
 */
#ifndef ECHOD_LOG_H
#define ECHOD_LOG_H

#include <sys/socket.h>
#include <stdarg.h>
#include <stdint.h>

struct event_base;
struct log_conf;

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_NOTICE,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

/* Event log. log_warn and log_error append strerror(errno). */
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_notice(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_error(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_errorx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
int	log_parse_level(const char *, enum log_level *);
/* Would a message at this level be written? (Skip costly formatting.) */
int	log_level_enabled(enum log_level);

/* One closed connection, as the access log records it. */
struct access_rec {
	uint64_t		 start_wall_us;	/* when it was accepted */
	uint64_t		 duration_us;
	const char		*listener;
	const struct sockaddr	*peer;
	const struct sockaddr	*via;		/* the balancer (PROXY), or NULL */
	uint64_t		 bytes_in;
	uint64_t		 bytes_out;
	const char		*reason;	/* "client closed", ... */
	const char		*tls_version;	/* NULL when plain */
	const char		*tls_cipher;
};

int	accesslog_enabled(void);
/* Called on the thread that owned the connection, at close. */
void	accesslog_record(const struct access_rec *);

/*
 * Life cycle, in the startup order of doc/ARCHITECTURE.md: log_open
 * (parse-time settings, files opened, may need root) before daemonizing;
 * log_start once the main event_base exists; log_thread_attach/detach on
 * each worker thread; log_finish at exit writes out everything queued,
 * within the deadline.
 */
int	log_open(const struct log_conf *, char *err, size_t errlen);
void	log_start(struct event_base *);
void	log_reopen(void);
int	log_thread_attach(struct event_base *);
void	log_thread_detach(void);
void	log_finish(uint64_t timeout_us);

/*
 * Apply the [log] settings of a reloaded config (main thread): level,
 * access_format and buffer at once; a changed path is switched to like a
 * reopen, a sink turned off is written out and closed. Returns -1 when a new
 * file could not be opened (the old one, if any, keeps being written).
 */
int	log_reconfigure(const struct log_conf *);

/*
 * Hand the open log files to the user echod is about to become, so that it
 * can still write them after a reopen of the same path (main thread, as
 * root, just before privileges are dropped).
 */
void	log_chown(unsigned int uid, unsigned int gid);

/* Per sink counters, for the stats (main thread). */
struct log_sink_stats {
	int		enabled;
	uint64_t	lines_written;
	uint64_t	lines_dropped;	/* buffer full: counted, never silent */
	uint64_t	lines_abandoned; /* of those, in a write given up on */
	uint64_t	bytes_written;
	uint64_t	bytes_queued;
	uint64_t	write_errors;
	uint64_t	reopens;
};
void	log_stats(struct log_sink_stats *error_log,
	    struct log_sink_stats *access_log);

#endif
