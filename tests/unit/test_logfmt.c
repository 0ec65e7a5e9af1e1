/*
 * test_logfmt.c: the log lines as a reader sees them: timestamps, the
 * access line in text and JSON (with a PROXY balancer, TLS and hostile
 * names), the drop notices, and truncation that still ends in a newline.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "logfmt.h"

/* 2025-06-01T12:00:00.123456Z */
#define WALL	(1748779200ull * 1000000 + 123456)

static void
test_time(void **state)
{
	char	buf[64];

	(void)state;
	assert_int_equal(logfmt_time(buf, sizeof(buf), WALL), 27);
	assert_string_equal(buf, "2025-06-01T12:00:00.123456Z");
	/* The cached seconds change with the second. */
	logfmt_time(buf, sizeof(buf), WALL + 1000000);
	assert_string_equal(buf, "2025-06-01T12:00:01.123456Z");
}

static void
rec_init(struct access_rec *r, struct sockaddr_in6 *peer,
    struct sockaddr_in *via)
{
	memset(r, 0, sizeof(*r));
	memset(peer, 0, sizeof(*peer));
	peer->sin6_family = AF_INET6;
	peer->sin6_port = htons(4242);
	inet_pton(AF_INET6, "2001:db8::1", &peer->sin6_addr);
	memset(via, 0, sizeof(*via));
	via->sin_family = AF_INET;
	via->sin_port = htons(9000);
	inet_pton(AF_INET, "10.0.0.7", &via->sin_addr);
	r->start_wall_us = WALL;
	r->duration_us = 1500000;
	r->listener = "main";
	r->peer = (struct sockaddr *)peer;
	r->bytes_in = 10;
	r->bytes_out = 10;
	r->reason = "client closed";
}

static void
test_access_text(void **state)
{
	struct access_rec	r;
	struct sockaddr_in6	peer;
	struct sockaddr_in	via;
	char			buf[1024];
	size_t			n;

	(void)state;
	rec_init(&r, &peer, &via);
	n = logfmt_access(&r, 0, buf, sizeof(buf));
	assert_int_equal(n, strlen(buf));
	assert_string_equal(buf, "2025-06-01T12:00:00.123456Z listener=main "
	    "peer=[2001:db8::1]:4242 duration=1.500000 bytes_in=10 "
	    "bytes_out=10 reason=\"client closed\"\n");
	r.via = (struct sockaddr *)&via;
	r.listener = "a b\"c";
	r.tls_version = "TLSv1.3";
	r.tls_cipher = "TLS_AES_128_GCM_SHA256";
	logfmt_access(&r, 0, buf, sizeof(buf));
	/* One token per field: a space or quote in a name cannot split it. */
	assert_non_null(strstr(buf, " listener=a_b_c peer=[2001:db8::1]:4242 "
	    "via=10.0.0.7:9000 duration="));
	assert_non_null(strstr(buf, " tls=TLSv1.3 cipher="
	    "TLS_AES_128_GCM_SHA256\n"));
}

static void
test_access_json(void **state)
{
	struct access_rec	r;
	struct sockaddr_in6	peer;
	struct sockaddr_in	via;
	char			buf[1024];

	(void)state;
	rec_init(&r, &peer, &via);
	r.via = (struct sockaddr *)&via;
	r.listener = "q\"\\\n";
	logfmt_access(&r, 1, buf, sizeof(buf));
	assert_string_equal(buf, "{\"time\":\"2025-06-01T12:00:00.123456Z\","
	    "\"listener\":\"q\\\"\\\\\\u000a\",\"peer\":\"2001:db8::1\","
	    "\"port\":4242,\"via\":\"10.0.0.7\",\"via_port\":9000,"
	    "\"duration_us\":1500000,\"bytes_in\":10,\"bytes_out\":10,"
	    "\"reason\":\"client closed\"}\n");
}

static void
test_truncated_line_still_ends(void **state)
{
	struct access_rec	r;
	struct sockaddr_in6	peer;
	struct sockaddr_in	via;
	char			buf[40];
	size_t			n;

	(void)state;
	rec_init(&r, &peer, &via);
	n = logfmt_access(&r, 0, buf, sizeof(buf));
	assert_int_equal(n, sizeof(buf) - 1);
	assert_int_equal(buf[n - 1], '\n');
}

static void
test_drop_lines(void **state)
{
	char	buf[256];

	(void)state;
	logfmt_event_drop(buf, sizeof(buf), WALL, 7);
	assert_string_equal(buf, "2025-06-01T12:00:00.123456Z warn: 7 lines "
	    "dropped\n");
	logfmt_access_drop(buf, sizeof(buf), WALL, 7, 0);
	assert_string_equal(buf, "2025-06-01T12:00:00.123456Z 7 lines "
	    "dropped\n");
	logfmt_access_drop(buf, sizeof(buf), WALL, 7, 1);
	assert_string_equal(buf, "{\"time\":\"2025-06-01T12:00:00.123456Z\","
	    "\"event\":\"dropped\",\"lines\":7,\"message\":\"7 lines "
	    "dropped\"}\n");
	assert_int_equal(logfmt_access_drop(buf, 8, WALL, 7, 0), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_access_text),
		cmocka_unit_test(test_access_json),
		cmocka_unit_test(test_truncated_line_still_ends),
		cmocka_unit_test(test_drop_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
