/*
 * log.c: event log and access log front end. (Interim: synchronous stderr
 * until the aio log sinks are wired in.)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "log.h"

static enum log_level	log_level = LOG_LEVEL_INFO;
static const char *level_names[] = { "debug", "info", "notice", "warn",
    "error" };

int
log_parse_level(const char *s, enum log_level *out)
{
	size_t	i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void
log_vmsg(enum log_level level, int with_errno, const char *fmt, va_list ap)
{
	char	msg[1024];
	int	saved = errno;

	if (level < log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno)
		fprintf(stderr, "echod: %s: %s\n", msg, strerror(saved));
	else
		fprintf(stderr, "echod: %s\n", msg);
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

void
fatal(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, 1, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

int
accesslog_enabled(void)
{
	return 0;
}

void
accesslog_record(const struct access_rec *rec)
{
	(void)rec;
}

int
log_open(const struct log_conf *conf, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	log_level = conf->level;
	return 0;
}

void
log_start(struct event_base *base)
{
	(void)base;
}

void
log_reopen(void)
{
}

int
log_thread_attach(struct event_base *base)
{
	(void)base;
	return 0;
}

void
log_thread_detach(void)
{
}

void
log_finish(uint64_t timeout_us)
{
	(void)timeout_us;
}
