/*
 * startat.h: the moment a run starts by the wall clock (--start-at), so that
 * echoload processes on many hosts measure the same window, and the
 * conversion between that clock and the monotonic one the run keeps time in.
 */
#ifndef ECHOLOAD_STARTAT_H
#define ECHOLOAD_STARTAT_H

#include <stddef.h>
#include <stdint.h>

/* The wall clock in nanoseconds since the epoch. */
uint64_t	wall_ns(void);
/* Wall-clock time (ns since the epoch) of monotonic time mono_ns. */
uint64_t	mono_to_wall(uint64_t mono_ns);
/* Monotonic time of wall-clock time wall (ns); 0 if it is already past. */
uint64_t	wall_to_mono(uint64_t wall);
/* "2026-12-01T22:30:00.250Z" into buf (UTC, milliseconds). */
const char	*format_rfc3339(char *buf, size_t len, uint64_t wall);

#endif
