/*
 * logfmt.h: log line formatting (logfmt.c). Each returns the length
 * written to buf, without a NUL, at most len - 1; 0 when it does not fit.
 */
#ifndef ECHOD_LOGFMT_H
#define ECHOD_LOGFMT_H

#include <stddef.h>
#include <stdint.h>

struct access_rec;

/* "2025-06-01T12:00:00.123456Z" for wall (microseconds since the epoch). */
size_t	logfmt_time(char *buf, size_t len, uint64_t wall);
/* The access-log line of rec, newline included; json selects the format. */
size_t	logfmt_access(const struct access_rec *rec, int json, char *buf,
	    size_t len);
/* "N lines dropped", as an event-log line and as an access-log line. */
size_t	logfmt_event_drop(char *buf, size_t len, uint64_t wall, uint64_t n);
size_t	logfmt_access_drop(char *buf, size_t len, uint64_t wall, uint64_t n,
	    int json);

#endif
