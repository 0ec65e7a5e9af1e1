/*
 * timeline.h: a run's figures interval by interval (a second each while it
 * runs; what a log says when merged): counters, and each series' histogram
 * kept in HdrHistogram's compressed encoding, for the JSON result and the
 * interval log.
 */
#ifndef ECHOLOAD_TIMELINE_H
#define ECHOLOAD_TIMELINE_H

#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "run.h"

/* A series is one latency histogram stream: the Tag= of an .hlog line. */
enum series {
	SERIES_RESPONSE,	/* from the intended send time */
	SERIES_SERVICE,		/* from the actual write (open loop) */
	SERIES_CONNECT,		/* connect latency (connection phase) */
	SERIES_RECONNECT,	/* reconnects during the load (JSON only) */
	NSERIES
};
/* The series that come interval by interval; the others once a run. */
#define SERIES_INTERVALS	(SERIES_BIT(SERIES_RESPONSE) | \
				 SERIES_BIT(SERIES_SERVICE))
#define SERIES_BIT(s)	(1u << (s))

const char	*series_name(enum series);
/* -1 for a name that is no series. */
int		 series_by_name(const char *name, size_t len);

struct tl_interval {
	double		 start_s;	/* from the start of the measurement */
	double		 length_s;
	struct counters	 c;
	uint64_t	 max[NSERIES];	/* exact, microseconds */
	char		*hist[NSERIES];	/* encoded; NULL where absent */
};

struct timeline {
	unsigned		 series;	/* SERIES_BITs present */
	struct tl_interval	*iv;
	size_t			 n, cap;
};

struct timeline	*timeline_new(unsigned series);
void		 timeline_free(struct timeline *);
/* A new interval at the end, zeroed, for the caller to fill in. */
struct tl_interval *timeline_push(struct timeline *);
/* Keep one interval of a run: h[s] for each series present (encoded here). */
void		 timeline_add(struct timeline *, double start_s,
		    double length_s, const struct counters *,
		    struct hist *const h[NSERIES]);

#endif
