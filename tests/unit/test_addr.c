/*
 * test_addr.c: HOST:PORT parsing, resolving and printing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <netinet/in.h>

#include "addr.h"

static void
test_parse_ok(void **state)
{
	struct addr_spec	 a;
	const char		*why;

	(void)state;
	assert_int_equal(addr_parse("127.0.0.1:7007", NULL, &a, &why), 0);
	assert_string_equal(a.host, "127.0.0.1");
	assert_int_equal(a.port, 7007);
	assert_int_equal(a.wildcard, 0);

	assert_int_equal(addr_parse("[::1]:80", NULL, &a, &why), 0);
	assert_string_equal(a.host, "::1");
	assert_int_equal(a.port, 80);

	assert_int_equal(addr_parse("*:9", NULL, &a, &why), 0);
	assert_int_equal(a.wildcard, 1);
	assert_int_equal(a.port, 9);

	assert_int_equal(addr_parse("localhost:0", NULL, &a, &why), 0);
	assert_string_equal(a.host, "localhost");
	assert_int_equal(a.port, 0);

	assert_int_equal(addr_parse("8080", "127.0.0.1", &a, &why), 0);
	assert_string_equal(a.host, "127.0.0.1");
	assert_int_equal(a.port, 8080);
}

static void
test_parse_bad(void **state)
{
	const char	*bad[] = { "", "127.0.0.1", "127.0.0.1:", ":80",
	    "127.0.0.1:65536", "127.0.0.1:-1", "::1:80", "[::1]80", "[::1",
	    "[]:80", "[1.2.3.4]:80", "host:http", "7007" };
	struct addr_spec	 a;
	const char		*why;
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(addr_parse(bad[i], NULL, &a, &why), -1);
		assert_non_null(why);
	}
}

static void
test_resolve_format(void **state)
{
	struct addr_spec	 a;
	struct sockaddr_storage	 ss[4];
	socklen_t		 lens[4];
	char			 buf[ADDR_STRLEN];
	const char		*why;

	(void)state;
	assert_int_equal(addr_parse("127.0.0.1:7007", NULL, &a, &why), 0);
	assert_int_equal(addr_resolve(&a, 1, ss, lens, 4, &why), 1);
	assert_string_equal(addr_format((struct sockaddr *)&ss[0], buf,
	    sizeof(buf)), "127.0.0.1:7007");

	assert_int_equal(addr_parse("[::1]:9", NULL, &a, &why), 0);
	assert_int_equal(addr_resolve(&a, 1, ss, lens, 4, &why), 1);
	assert_int_equal(ss[0].ss_family, AF_INET6);
	assert_string_equal(addr_format((struct sockaddr *)&ss[0], buf,
	    sizeof(buf)), "[::1]:9");
	assert_int_equal(addr_port((struct sockaddr *)&ss[0]), 9);

	assert_int_equal(addr_parse("*:10", NULL, &a, &why), 0);
	assert_int_equal(addr_resolve(&a, 1, ss, lens, 4, &why), 1);
	assert_string_equal(addr_format((struct sockaddr *)&ss[0], buf,
	    sizeof(buf)), "[::]:10");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_resolve_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
