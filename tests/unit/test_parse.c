/*
 * test_parse.c: the size, duration, integer and boolean parsers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "parse.h"

static void
test_sizes(void **state)
{
	static const struct {
		const char	*in;
		uint64_t	 out;
	} ok[] = {
		{ "0", 0 }, { "64", 64 }, { "64b", 64 }, { "1k", 1024 },
		{ "1K", 1024 }, { "4kb", 4096 }, { "2KiB", 2048 },
		{ "1m", 1048576 }, { "8M", 8388608 }, { "1g", 1073741824 },
		{ "1.5k", 1536 }, { "0.5m", 524288 },
	};
	const char	*bad[] = { "", "k", "-1", "1x", "1 k", "1kk", "abc",
	    "99999999999999999999", "20000000000g", "+5" };
	const char	*why;
	uint64_t	 v;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 12345;
		assert_int_equal(parse_size(ok[i].in, &v, &why), 0);
		assert_int_equal(v, ok[i].out);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		why = NULL;
		assert_int_equal(parse_size(bad[i], &v, &why), -1);
		assert_non_null(why);
		assert_int_equal(v, 12345);
	}
}

static void
test_durations(void **state)
{
	static const struct {
		const char	*in;
		uint64_t	 us;
	} ok[] = {
		{ "0", 0 }, { "5", 5000000 }, { "5s", 5000000 },
		{ "250ms", 250000 }, { "10us", 10 }, { "2m", 120000000 },
		{ "1min", 60000000 }, { "1h", 3600000000ull },
		{ "1.5s", 1500000 }, { "0.25", 250000 },
	};
	const char	*bad[] = { "", "s", "5x", "5 s", "-1s", "5S", "1d",
	    "ms" };
	const char	*why;
	uint64_t	 v;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(parse_duration(ok[i].in, &v, &why), 0);
		assert_int_equal(v, ok[i].us);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 7;
		assert_int_equal(parse_duration(bad[i], &v, &why), -1);
		assert_int_equal(v, 7);
	}
}

static void
test_uint(void **state)
{
	const char	*why;
	uint64_t	 v;

	(void)state;
	assert_int_equal(parse_uint("10", 1, 10, &v, &why), 0);
	assert_int_equal(v, 10);
	assert_int_equal(parse_uint("0", 1, 10, &v, &why), -1);
	assert_int_equal(parse_uint("11", 1, 10, &v, &why), -1);
	assert_int_equal(parse_uint("1.5", 0, 10, &v, &why), -1);
	assert_int_equal(parse_uint("5k", 0, 10000, &v, &why), -1);
	assert_int_equal(parse_uint("", 0, 10, &v, &why), -1);
	assert_int_equal(parse_uint("18446744073709551616", 0, UINT64_MAX,
	    &v, &why), -1);
}

static void
test_bool(void **state)
{
	const char	*why;
	int		 b;

	(void)state;
	assert_int_equal(parse_bool("yes", &b, &why), 0);
	assert_int_equal(b, 1);
	assert_int_equal(parse_bool("On", &b, &why), 0);
	assert_int_equal(b, 1);
	assert_int_equal(parse_bool("false", &b, &why), 0);
	assert_int_equal(b, 0);
	assert_int_equal(parse_bool("0", &b, &why), 0);
	assert_int_equal(b, 0);
	assert_int_equal(parse_bool("maybe", &b, &why), -1);
	assert_int_equal(parse_bool("", &b, &why), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_bool),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
