/*
 * test_hist.c: the latency histogram: bucket edges, percentiles against a
 * sorted array, merge, clamps and the .hgrm text.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hist.h"

static struct hist *
new_hist(void)
{
	struct hist	*h = malloc(sizeof *h);

	assert_non_null(h);
	hist_init(h);
	return h;
}

static uint64_t
rng(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
test_exact_below_2048(void **state)
{
	uint64_t	v;

	(void)state;
	for (v = 1; v < 2048; v++) {
		assert_int_equal(hist_lowest_equivalent(v), v);
		assert_int_equal(hist_highest_equivalent(v), v);
		assert_int_equal(hist_index_of(v), v);
	}
}

static void
test_bucket_edges(void **state)
{
	(void)state;
	/* 2048..4095 go in steps of 2, 4096..8191 in steps of 4. */
	assert_int_equal(hist_lowest_equivalent(2048), 2048);
	assert_int_equal(hist_highest_equivalent(2048), 2049);
	assert_int_equal(hist_lowest_equivalent(2049), 2048);
	assert_int_equal(hist_lowest_equivalent(4095), 4094);
	assert_int_equal(hist_highest_equivalent(4095), 4095);
	assert_int_equal(hist_lowest_equivalent(4096), 4096);
	assert_int_equal(hist_highest_equivalent(4096), 4099);
	assert_int_equal(hist_index_of(2047) + 1, hist_index_of(2048));
	assert_int_equal(hist_index_of(4095) + 1, hist_index_of(4096));
	/* One hour in microseconds fits, and the top index is the last. */
	assert_true(HIST_HIGHEST >= UINT64_C(3600000000));
	assert_int_equal(hist_index_of(HIST_HIGHEST), HIST_COUNTS - 1);
	assert_int_equal(hist_highest_equivalent(HIST_HIGHEST), HIST_HIGHEST);
}

static void
test_three_significant_digits(void **state)
{
	uint64_t	x = 88172645463325252ULL, v, lo, hi;
	int		i;

	(void)state;
	for (i = 0; i < 100000; i++) {
		v = 1 + rng(&x) % HIST_HIGHEST;
		lo = hist_lowest_equivalent(v);
		hi = hist_highest_equivalent(v);
		assert_true(lo <= v && v <= hi);
		/* Range at most 1/1024 of the value: 3 significant digits. */
		assert_true((hi - lo + 1) * 1024 <= lo || lo < 2048);
		assert_int_equal(hist_value_at_index(hist_index_of(v)), lo);
	}
}

static void
test_percentiles_vs_sorted(void **state)
{
	static const double	 ps[] = { 0, 1, 10, 25, 50, 75, 90, 99, 99.9,
				    99.99, 100 };
	struct hist		*h = new_hist();
	uint64_t		*vals, x = 0x9e3779b97f4a7c15ULL, want;
	size_t			 n = 200000, i, rank;

	(void)state;
	vals = malloc(n * sizeof *vals);
	assert_non_null(vals);
	for (i = 0; i < n; i++) {
		/* Log-spread values, 1 us to about 17 minutes. */
		vals[i] = 1 + rng(&x) % (UINT64_C(1) << (1 + rng(&x) % 30));
		hist_record(h, vals[i]);
	}
	qsort(vals, n, sizeof *vals, cmp_u64);
	assert_int_equal(h->total, n);
	assert_int_equal(hist_min(h), vals[0]);
	assert_int_equal(hist_max(h), vals[n - 1]);
	for (i = 0; i < sizeof ps / sizeof ps[0]; i++) {
		rank = (size_t)ceil(ps[i] / 100.0 * (double)n - 1e-9);
		if (rank == 0)
			rank = 1;
		want = vals[rank - 1];
		assert_int_equal(hist_lowest_equivalent(hist_percentile(h,
		    ps[i])), hist_lowest_equivalent(want));
	}
	free(vals);
	free(h);
}

static void
test_mean_exact(void **state)
{
	struct hist	*h = new_hist();

	(void)state;
	assert_int_equal(hist_percentile(h, 50), 0);
	assert_int_equal(hist_min(h), 0);
	hist_record(h, 10);
	hist_record(h, 20);
	hist_record(h, 3000001);
	assert_true(hist_mean(h) > 1000010.33 && hist_mean(h) < 1000010.34);
	assert_int_equal(hist_percentile(h, 50), 20);
	assert_int_equal(hist_percentile(h, 100), 3000001);
	free(h);
}

static void
test_merge_exact(void **state)
{
	struct hist	*a = new_hist(), *b = new_hist(), *all = new_hist();
	uint64_t	 x = 12345, v;
	int		 i;
	uint32_t	 k;

	(void)state;
	for (i = 0; i < 50000; i++) {
		v = rng(&x) % 5000000;
		hist_record(i % 3 ? a : b, v);
		hist_record(all, v);
	}
	hist_record(b, UINT64_MAX);
	hist_record(all, UINT64_MAX);
	hist_merge(a, b);
	assert_int_equal(a->total, all->total);
	assert_int_equal(a->sum, all->sum);
	assert_int_equal(a->min, all->min);
	assert_int_equal(a->max, all->max);
	assert_int_equal(a->underflow, all->underflow);
	assert_int_equal(a->overflow, all->overflow);
	for (k = 0; k < HIST_COUNTS; k++)
		assert_int_equal(a->counts[k], all->counts[k]);
	free(a);
	free(b);
	free(all);
}

static void
test_clamps_counted(void **state)
{
	struct hist	*h = new_hist();

	(void)state;
	hist_record(h, 0);
	hist_record(h, 0);
	hist_record(h, HIST_HIGHEST + 1);
	hist_record(h, UINT64_MAX);
	hist_record(h, 500);
	assert_int_equal(h->total, 5);
	assert_int_equal(h->underflow, 2);
	assert_int_equal(h->overflow, 2);
	assert_int_equal(hist_min(h), HIST_LOWEST);
	assert_int_equal(hist_max(h), HIST_HIGHEST);
	assert_int_equal(h->counts[hist_index_of(HIST_LOWEST)], 2);
	assert_int_equal(h->counts[hist_index_of(HIST_HIGHEST)], 2);
	hist_reset(h);
	assert_int_equal(h->total, 0);
	assert_int_equal(h->underflow, 0);
	free(h);
}

static void
test_hgrm_format(void **state)
{
	struct hist	*h = new_hist();
	char		*buf = NULL, *line, *save = NULL;
	size_t		 len = 0;
	FILE		*f;
	double		 value, pct, inv, last_pct = -1;
	unsigned long long count, last_count = 0;
	int		 i, rows = 0, footer = 0;

	(void)state;
	for (i = 1; i <= 2000; i++)
		hist_record(h, (uint64_t)i);
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(hist_write_hgrm(h, f, 5, 1000.0), 0);
	fclose(f);
	assert_true(strncmp(buf, "       Value     Percentile TotalCount "
	    "1/(1-Percentile)\n\n", 50) == 0);
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#') {
			footer++;
			continue;
		}
		if (strstr(line, "Value") != NULL)
			continue;
		if (sscanf(line, "%lf %lf %llu %lf", &value, &pct, &count,
		    &inv) >= 3) {
			assert_true(pct >= last_pct);
			assert_true(count >= last_count);
			last_pct = pct;
			last_count = count;
			rows++;
		}
	}
	assert_true(rows > 20);
	assert_true(last_pct == 1.0);
	assert_int_equal(last_count, 2000);
	assert_int_equal(footer, 3);
	free(buf);
	buf = NULL;
	f = open_memstream(&buf, &len);
	hist_write_hgrm(h, f, 5, 1000.0);
	fclose(f);
	assert_non_null(strstr(buf, "#[Mean    =        1.00"));
	assert_non_null(strstr(buf, "#[Max     =        2.000, Total count    ="
	    "         2000]"));
	assert_non_null(strstr(buf, "#[Buckets =           22, SubBuckets     ="
	    "         2048]"));
	/* The median line: 50% of 1..2000 us at 1.000 ms. */
	assert_non_null(strstr(buf, "       1.000 0.500000000000       1000"
	    "           2.00\n"));
	/* The last line has no 1/(1-Percentile): it would be infinite. */
	assert_non_null(strstr(buf,
	    "       2.000 1.000000000000       2000\n"));
	free(buf);
	free(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_below_2048),
		cmocka_unit_test(test_bucket_edges),
		cmocka_unit_test(test_three_significant_digits),
		cmocka_unit_test(test_percentiles_vs_sorted),
		cmocka_unit_test(test_mean_exact),
		cmocka_unit_test(test_merge_exact),
		cmocka_unit_test(test_clamps_counted),
		cmocka_unit_test(test_hgrm_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
