/*
 * test_util.c: the small shared helpers: clocks and the microseconds to
 * timeval conversion every timer uses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util.h"

static void
test_tv_from_us(void **state)
{
	struct timeval	tv;

	(void)state;
	assert_ptr_equal(tv_from_us(&tv, 0), &tv);
	assert_int_equal(tv.tv_sec, 0);
	assert_int_equal(tv.tv_usec, 0);
	tv_from_us(&tv, 999999);
	assert_int_equal(tv.tv_sec, 0);
	assert_int_equal(tv.tv_usec, 999999);
	tv_from_us(&tv, 1000000);
	assert_int_equal(tv.tv_sec, 1);
	assert_int_equal(tv.tv_usec, 0);
	tv_from_us(&tv, 3600ull * 1000000 + 250000);
	assert_int_equal(tv.tv_sec, 3600);
	assert_int_equal(tv.tv_usec, 250000);
}

static void
test_clocks_move_forward(void **state)
{
	uint64_t	a, b;

	(void)state;
	a = now_us();
	b = now_us();
	assert_true(b >= a);
	assert_true(now_ns() / 1000 >= a);
	assert_true(wall_us() > 1500000000ull * 1000000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tv_from_us),
		cmocka_unit_test(test_clocks_move_forward),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
