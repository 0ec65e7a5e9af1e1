/*
 * hist.c: the latency histogram's queries, merge and .hgrm output. The
 * layout follows HdrHistogram: bucket 0 holds values 0..2047 one per count;
 * each further bucket doubles the range and keeps the upper half of its
 * 2048 sub-buckets, so every count covers at most 1/1024 of its value.
 */
#include <math.h>
#include <string.h>

#include "hist.h"

void
hist_init(struct hist *h)
{
	memset(h, 0, sizeof *h);
	h->min = UINT64_MAX;
}

void
hist_merge(struct hist *dst, const struct hist *src)
{
	uint32_t	i;

	if (src->total == 0)
		return;
	for (i = 0; i < HIST_COUNTS; i++)
		dst->counts[i] += src->counts[i];
	dst->total += src->total;
	dst->sum += src->sum;
	dst->underflow += src->underflow;
	dst->overflow += src->overflow;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint32_t
hist_index_of(uint64_t v)
{
	if (v > HIST_HIGHEST)
		v = HIST_HIGHEST;
	return hist_index_inline(v);
}

static uint32_t
bucket_of_index(uint32_t i)
{
	return i < HIST_SUB_COUNT ? 0 : (i >> HIST_HALF_BITS) - 1;
}

uint64_t
hist_value_at_index(uint32_t i)
{
	uint32_t	bucket, sub;

	if (i < HIST_SUB_COUNT)
		return i;
	bucket = (i >> HIST_HALF_BITS) - 1;
	sub = (i & (HIST_HALF_COUNT - 1)) + HIST_HALF_COUNT;
	return (uint64_t)sub << bucket;
}

uint64_t
hist_lowest_equivalent(uint64_t v)
{
	return hist_value_at_index(hist_index_of(v));
}

uint64_t
hist_highest_equivalent(uint64_t v)
{
	uint32_t	i = hist_index_of(v);

	return hist_value_at_index(i) + (UINT64_C(1) << bucket_of_index(i)) - 1;
}

static uint64_t
median_equivalent_at(uint32_t i)
{
	return hist_value_at_index(i) +
	    ((UINT64_C(1) << bucket_of_index(i)) >> 1);
}

static uint64_t
highest_equivalent_at(uint32_t i)
{
	return hist_value_at_index(i) + (UINT64_C(1) << bucket_of_index(i)) - 1;
}

static uint64_t
clamp_to_max(const struct hist *h, uint64_t v)
{
	return v > h->max ? h->max : v;
}

/*
 * The rank of percentile p among total values: the smallest count that
 * covers at least p percent, as HdrHistogram's own readers count it (the
 * product rounded up, less one ulp of floating-point error), so that the
 * same counts give the same percentiles in echoload and in those readers.
 */
static uint64_t
rank_at(double p, uint64_t total)
{
	double		want = p / 100.0 * (double)total;
	uint64_t	rank;

	rank = (uint64_t)ceil(want - (nextafter(want, INFINITY) - want));
	return rank == 0 ? 1 : rank;
}

uint64_t
hist_percentile(const struct hist *h, double p)
{
	uint64_t	want, seen = 0;
	uint32_t	i;

	if (h->total == 0)
		return 0;
	if (p < 0)
		p = 0;
	if (p > 100)
		p = 100;
	want = rank_at(p, h->total);
	for (i = 0; i < HIST_COUNTS; i++) {
		seen += h->counts[i];
		if (seen >= want)
			return clamp_to_max(h, highest_equivalent_at(i));
	}
	return h->max;
}

double
hist_mean(const struct hist *h)
{
	return h->total == 0 ? 0.0 : (double)h->sum / (double)h->total;
}

double
hist_stddev(const struct hist *h)
{
	double		mean, dev, acc = 0;
	uint32_t	i;

	if (h->total == 0)
		return 0.0;
	mean = hist_mean(h);
	for (i = 0; i < HIST_COUNTS; i++) {
		if (h->counts[i] == 0)
			continue;
		dev = (double)median_equivalent_at(i) - mean;
		acc += dev * dev * (double)h->counts[i];
	}
	return sqrt(acc / (double)h->total);
}

uint64_t
hist_min(const struct hist *h)
{
	return h->total == 0 ? 0 : h->min;
}

uint64_t
hist_max(const struct hist *h)
{
	return h->max;
}

/* Next percentile to report: HdrHistogram's halving steps towards 100. */
static double
next_percentile(double p, int ticks_per_half)
{
	int64_t	halves;
	double	ticks;

	halves = (int64_t)(log(100.0 / (100.0 - p)) / log(2.0)) + 1;
	ticks = (double)ticks_per_half * pow(2.0, (double)halves);
	return p + 100.0 / ticks;
}

static int
hgrm_line(FILE *f, uint64_t value, double scale, double p, uint64_t count)
{
	double	q = p / 100.0, v = (double)value / scale;

	/* At 100% the last column would be infinite: leave it out. */
	if (q >= 1.0)
		return fprintf(f, "%12.3f %2.12f %10llu\n", v, q,
		    (unsigned long long)count);
	return fprintf(f, "%12.3f %2.12f %10llu %14.2f\n", v, q,
	    (unsigned long long)count, 1.0 / (1.0 - q));
}

int
hist_write_hgrm(const struct hist *h, FILE *f, int ticks_per_half,
    double scale)
{
	uint64_t	cum = 0, last = 0;
	double		to = 0.0;
	uint32_t	i;
	int		rc = 0;

	if (fprintf(f, "%12s %14s %10s %14s\n\n", "Value", "Percentile",
	    "TotalCount", "1/(1-Percentile)") < 0)
		return -1;
	for (i = 0; i < HIST_COUNTS && h->total != 0; i++) {
		if (h->counts[i] == 0)
			continue;
		cum += h->counts[i];
		last = clamp_to_max(h, highest_equivalent_at(i));
		while (to <= 100.0 * (double)cum / (double)h->total) {
			if (hgrm_line(f, last, scale, to, cum) < 0)
				return -1;
			to = next_percentile(to, ticks_per_half);
			if (cum == h->total)
				break;
		}
		if (cum == h->total)
			break;
	}
	if (h->total != 0 && hgrm_line(f, last, scale, 100.0, cum) < 0)
		return -1;
	if (fprintf(f, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n",
	    hist_mean(h) / scale, hist_stddev(h) / scale) < 0 ||
	    fprintf(f, "#[Max     = %12.3f, Total count    = %12llu]\n",
	    (double)h->max / scale, (unsigned long long)h->total) < 0 ||
	    fprintf(f, "#[Buckets = %12d, SubBuckets     = %12d]\n",
	    HIST_BUCKETS, HIST_SUB_COUNT) < 0)
		rc = -1;
	return rc;
}
