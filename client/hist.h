/*
 * hist.h: the latency histogram. A log-linear histogram in HdrHistogram's
 * design: values from 1 to 2^32-1 (microseconds: 1 us to about 71 minutes)
 * at 3 significant digits, a fixed array of counts (no allocation after the
 * structure exists), constant-time recording and an exact merge.
 */
#ifndef ECHOLOAD_HIST_H
#define ECHOLOAD_HIST_H

#include <stdint.h>
#include <stdio.h>

#define HIST_LOWEST	UINT64_C(1)
#define HIST_HIGHEST	((UINT64_C(1) << 32) - 1)
#define HIST_SIGFIGS	3
/* 2048 sub-buckets resolve 3 significant digits (2 * 10^3 rounded up). */
#define HIST_SUB_BITS	11
#define HIST_SUB_COUNT	(1 << HIST_SUB_BITS)
#define HIST_SUB_MASK	((uint64_t)HIST_SUB_COUNT - 1)
#define HIST_HALF_BITS	(HIST_SUB_BITS - 1)
#define HIST_HALF_COUNT	(1 << HIST_HALF_BITS)
/* Buckets needed so that HIST_SUB_COUNT << (HIST_BUCKETS - 1) covers 2^32. */
#define HIST_BUCKETS	22
#define HIST_COUNTS	((HIST_BUCKETS + 1) * HIST_HALF_COUNT)

struct hist {
	uint64_t	total;
	uint64_t	sum;		/* of the values: an exact mean */
	uint64_t	min;		/* exact, UINT64_MAX when empty */
	uint64_t	max;		/* exact, 0 when empty */
	uint64_t	underflow;	/* values below HIST_LOWEST, clamped */
	uint64_t	overflow;	/* values above HIST_HIGHEST, clamped */
	uint64_t	counts[HIST_COUNTS];
};

void		hist_init(struct hist *);
#define hist_reset hist_init
void		hist_merge(struct hist *dst, const struct hist *src);
/* Value at percentile p (0..100): the highest value equivalent to the
 * recorded value at that rank, never above the exact maximum. 0 if empty. */
uint64_t	hist_percentile(const struct hist *, double p);
double		hist_mean(const struct hist *);
double		hist_stddev(const struct hist *);
uint64_t	hist_min(const struct hist *);
uint64_t	hist_max(const struct hist *);

/* Equivalence ranges: every value in [lowest, highest] shares one count. */
uint64_t	hist_lowest_equivalent(uint64_t);
uint64_t	hist_highest_equivalent(uint64_t);
/* Index of the count a value goes to, and back. */
uint32_t	hist_index_of(uint64_t);
uint64_t	hist_value_at_index(uint32_t);

/*
 * The percentile distribution in HdrHistogram's text format (.hgrm):
 * Value, Percentile, TotalCount, 1/(1-Percentile), then the #[Mean/Max]
 * footer. Values are divided by scale (1000 prints microseconds as ms).
 * Returns 0, or -1 on a write error.
 */
int		hist_write_hgrm(const struct hist *, FILE *, int ticks_per_half,
		    double scale);

static inline uint32_t
hist_index_inline(uint64_t v)
{
	uint32_t	bucket, sub;

	/* Position of the highest bit above the first bucket's range. */
	bucket = 64 - (uint32_t)__builtin_clzll(v | HIST_SUB_MASK) -
	    HIST_SUB_BITS;
	sub = (uint32_t)(v >> bucket);
	return ((bucket + 1) << HIST_HALF_BITS) + sub - HIST_HALF_COUNT;
}

/* Constant time, no allocation, no lock: one histogram per thread. */
static inline void
hist_record(struct hist *h, uint64_t v)
{
	if (v < HIST_LOWEST) {
		h->underflow++;
		v = HIST_LOWEST;
	} else if (v > HIST_HIGHEST) {
		h->overflow++;
		v = HIST_HIGHEST;
	}
	h->counts[hist_index_inline(v)]++;
	h->total++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

#endif
