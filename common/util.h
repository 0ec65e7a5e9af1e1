/*
 * util.h: small helpers shared by echod and echoload: allocation wrappers
 * that treat running out of memory as fatal (as tmux does), and clocks.
 */
#ifndef ECHOLOAD_UTIL_H
#define ECHOLOAD_UTIL_H

#include <sys/time.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.h"

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
int	 xasprintf(char **, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

/* Monotonic clock in microseconds and nanoseconds. */
uint64_t	 now_us(void);
uint64_t	 now_ns(void);
/* Wall clock in microseconds since the epoch. */
uint64_t	 wall_us(void);
/* A duration in microseconds as a timeval (for libevent); returns tv. */
struct timeval	*tv_from_us(struct timeval *tv, uint64_t us);

/* memrchr(3) is a GNU and BSD extension that macOS lacks. */
#if !HAVE_MEMRCHR
void	*compat_memrchr(const void *, int, size_t);
#define memrchr compat_memrchr
#endif

#endif
