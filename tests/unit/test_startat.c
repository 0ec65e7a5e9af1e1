/*
 * test_startat.c: --start-at times (Unix seconds and RFC 3339), --tag
 * names, and the options around them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "echoload.h"
#include "startat.h"

#define NS	UINT64_C(1000000000)

static void
expect_time(const char *s, uint64_t want)
{
	const char	*why = NULL;
	uint64_t	 got = 0;

	if (parse_start_time(s, &got, &why) != 0)
		fail_msg("%s: refused: %s", s, why);
	if (got != want)
		fail_msg("%s: %llu, want %llu", s, (unsigned long long)got,
		    (unsigned long long)want);
}

static void
expect_bad_time(const char *s)
{
	const char	*why = NULL;
	uint64_t	 got = 0;

	if (parse_start_time(s, &got, &why) == 0)
		fail_msg("%s: accepted as %llu", s, (unsigned long long)got);
	assert_non_null(why);
}

static void
test_unix_seconds(void **state)
{
	(void)state;
	expect_time("1764628200", UINT64_C(1764628200) * NS);
	expect_time("1764628200.5", UINT64_C(1764628200) * NS + NS / 2);
	expect_time("1764628200.000000001", UINT64_C(1764628200) * NS + 1);
	/* Beyond nanoseconds the digits are dropped, not rounded. */
	expect_time("1.1234567899", NS + 123456789);
	expect_bad_time("");
	expect_bad_time("0");
	expect_bad_time("-5");
	expect_bad_time("1764628200.");
	expect_bad_time("1764628200.5s");
	expect_bad_time(".5");
	expect_bad_time("99999999999999999999");
}

static void
test_rfc3339(void **state)
{
	uint64_t	t = UINT64_C(1764628200) * NS;	/* 2025-12-01T22:30:00Z */

	(void)state;
	expect_time("2025-12-01T22:30:00Z", t);
	expect_time("2025-12-01t22:30:00z", t);
	expect_time("2025-12-01 22:30:00Z", t);
	expect_time("2025-12-01T22:30:00.250Z", t + NS / 4);
	expect_time("2025-12-01T23:30:00+01:00", t);
	expect_time("2025-12-01T17:00:00.5-05:30", t + NS / 2);
	expect_time("2024-02-29T00:00:00Z", UINT64_C(1709164800) * NS);
	expect_bad_time("2025-12-01T22:30:00");		/* no offset */
	expect_bad_time("2025-12-01");
	expect_bad_time("2025-13-01T00:00:00Z");
	expect_bad_time("2025-02-30T00:00:00Z");
	expect_bad_time("2025-12-01T24:00:00Z");
	expect_bad_time("2025-12-01T22:30:00+1:00");
	expect_bad_time("2025-12-01T22:30:00Zjunk");
	expect_bad_time("1969-12-31T23:59:59Z");
}

static void
test_format_rfc3339(void **state)
{
	char	buf[40];

	(void)state;
	assert_string_equal(format_rfc3339(buf, sizeof buf,
	    UINT64_C(1764628200) * NS + 250000000), "2025-12-01T22:30:00.250Z");
}

static void
test_tags(void **state)
{
	char	long_tag[MAX_TAG_LEN + 2];

	(void)state;
	assert_true(tag_valid("load-1.example_b"));
	assert_false(tag_valid(""));
	assert_false(tag_valid("a,b"));
	assert_false(tag_valid("a b"));
	assert_false(tag_valid("a=b"));
	memset(long_tag, 'x', sizeof long_tag - 1);
	long_tag[sizeof long_tag - 1] = '\0';
	assert_false(tag_valid(long_tag));
	long_tag[MAX_TAG_LEN] = '\0';
	assert_true(tag_valid(long_tag));
}

static enum opts_result
parse(struct opts *o, char *err, size_t len, int argc, char **argv)
{
	return opts_parse(o, argc, argv, err, len);
}

static void
test_options(void **state)
{
	struct opts	 o;
	char		 err[256];
	char		*a1[] = { "echoload", "--tag", "h1", "--hlog", "x.hlog",
			    "--hlog-interval", "5s", "--start-at",
			    "9999999999", NULL };
	char		*a2[] = { "echoload", "--start-at", "1000", NULL };
	char		*a3[] = { "echoload", "--hlog-interval", "1500ms", NULL };
	char		*a4[] = { "echoload", "--tag", "a,b", NULL };
	char		*a5[] = { "echoload", "--hlog", "-", "--json", "-", NULL };
	char		*a6[] = { "echoload", NULL };

	(void)state;
	assert_int_equal(parse(&o, err, sizeof err, 9, a1), OPTS_RUN);
	assert_string_equal(o.tag, "h1");
	assert_string_equal(o.hlog_path, "x.hlog");
	assert_int_equal(o.hlog_interval_us, 5000000);
	assert_true(o.start_at_ns == UINT64_C(9999999999) * NS);
	/* A start in the past is refused, not shifted. */
	assert_int_equal(parse(&o, err, sizeof err, 3, a2), OPTS_ERROR);
	assert_non_null(strstr(err, "past"));
	assert_int_equal(parse(&o, err, sizeof err, 3, a3), OPTS_ERROR);
	assert_non_null(strstr(err, "whole seconds"));
	assert_int_equal(parse(&o, err, sizeof err, 3, a4), OPTS_ERROR);
	assert_non_null(strstr(err, "--tag"));
	assert_int_equal(parse(&o, err, sizeof err, 5, a5), OPTS_ERROR);
	/* Defaults: the host name, 1 s intervals, no start time. */
	assert_int_equal(parse(&o, err, sizeof err, 1, a6), OPTS_RUN);
	assert_true(tag_valid(o.tag));
	assert_int_equal(o.hlog_interval_us, 1000000);
	assert_true(o.start_at_ns == 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unix_seconds),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_format_rfc3339),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
