/*
 * test_echoload_opts.c: echoload's command line: defaults, every option,
 * and the clear refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include "echoload.h"
#include "source.h"

#define MAXARGS	32

static char	errbuf[512];

/* Parse a NULL-terminated list of arguments after "echoload". */
static enum opts_result
parse(struct opts *o, ...)
{
	char		*argv[MAXARGS];
	const char	*a;
	va_list		 ap;
	int		 argc = 0;

	argv[argc++] = (char *)"echoload";
	va_start(ap, o);
	while ((a = va_arg(ap, const char *)) != NULL && argc < MAXARGS - 1)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	errbuf[0] = '\0';
	return opts_parse(o, argc, argv, errbuf, sizeof errbuf);
}

static void
test_defaults(void **state)
{
	struct opts	o;
	long		ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	(void)state;
	assert_int_equal(parse(&o, NULL), OPTS_RUN);
	assert_string_equal(o.target, "127.0.0.1:7007");
	assert_string_equal(o.spec.host, "127.0.0.1");
	assert_int_equal(o.spec.port, 7007);
	assert_int_equal(o.mode, MODE_ECHO);
	assert_int_equal(o.connections, 50);
	assert_int_equal(o.threads, ncpu < 50 ? ncpu : 50);
	assert_int_equal(o.duration_us, 10000000);
	assert_int_equal(o.size, 64);
	assert_int_equal(o.depth, 1);
	assert_int_equal(o.timeout_us, 5000000);
	assert_int_equal(o.requests, 0);
	assert_int_equal(o.warmup_us, 0);
	assert_true(o.rate == 0);
	assert_false(o.verify);
	assert_false(o.quiet);
	assert_null(o.json_path);
	assert_false(o.tls);
	assert_int_equal(o.tls_version, 0);
	assert_false(o.insecure);
	assert_false(o.no_resume);
	assert_null(o.ca_path);
	assert_null(o.cert_path);
	assert_null(o.key_path);
	assert_null(o.sni);
	assert_true(o.connect_rate == 0);
	assert_int_equal(o.connect_timeout_us, 5000000);
	assert_false(o.require_all);
	assert_int_equal(o.sources.n, 0);
	assert_int_equal(o.sources.total, 0);
}

static void
test_all_options(void **state)
{
	struct opts	o;

	(void)state;
	assert_int_equal(parse(&o, "-t", "3", "-c", "12", "-d", "1500ms",
	    "-w", "2", "-s", "4k", "-P", "16", "-R", "2.5k", "--verify",
	    "--timeout", "250ms", "-q", "--json", "-", "--csv", "x.csv",
	    "--hgrm", "x.hgrm", "[::1]:9000", NULL), OPTS_RUN);
	assert_int_equal(o.threads, 3);
	assert_int_equal(o.connections, 12);
	assert_int_equal(o.duration_us, 1500000);
	assert_int_equal(o.warmup_us, 2000000);
	assert_int_equal(o.size, 4096);
	assert_int_equal(o.depth, 16);
	assert_true(o.rate == 2500.0);
	assert_true(o.verify);
	assert_int_equal(o.timeout_us, 250000);
	assert_true(o.quiet);
	assert_string_equal(o.json_path, "-");
	assert_string_equal(o.csv_path, "x.csv");
	assert_string_equal(o.hgrm_path, "x.hgrm");
	assert_string_equal(o.spec.host, "::1");
	assert_int_equal(o.spec.port, 9000);
}

static void
test_modes(void **state)
{
	struct opts	o;

	(void)state;
	assert_int_equal(parse(&o, "-m", "connect", NULL), OPTS_RUN);
	assert_int_equal(o.mode, MODE_CONNECT);
	assert_int_equal(parse(&o, "-m", "upload", NULL), OPTS_RUN);
	assert_int_equal(o.mode, MODE_UPLOAD);
	assert_int_equal(parse(&o, "--mode=download", NULL), OPTS_RUN);
	assert_int_equal(o.mode, MODE_DOWNLOAD);
	assert_int_equal(parse(&o, "-m", "echo", NULL), OPTS_RUN);
	assert_int_equal(o.mode, MODE_ECHO);
	assert_int_equal(parse(&o, "-m", "ping", NULL), OPTS_ERROR);
	assert_non_null(strstr(errbuf, "-m ping"));
}

static void
test_requests_without_duration(void **state)
{
	struct opts	o;

	(void)state;
	/* -n alone: no time limit; with -d: whichever comes first. */
	assert_int_equal(parse(&o, "-n", "1000", NULL), OPTS_RUN);
	assert_int_equal(o.requests, 1000);
	assert_int_equal(o.duration_us, 0);
	assert_int_equal(parse(&o, "-n", "1000", "-d", "3s", NULL), OPTS_RUN);
	assert_int_equal(o.duration_us, 3000000);
}

static void
test_threads_capped(void **state)
{
	struct opts	o;

	(void)state;
	assert_int_equal(parse(&o, "-t", "8", "-c", "3", NULL), OPTS_RUN);
	assert_int_equal(o.threads, 3);
}

static void
test_options_after_target(void **state)
{
	struct opts	o;

	(void)state;
	assert_int_equal(parse(&o, "127.0.0.1:9", "-c", "2", NULL), OPTS_RUN);
	assert_int_equal(o.connections, 2);
	assert_int_equal(o.spec.port, 9);
}

static void
expect_error(const char *word, ...)
{
	struct opts	 o;
	char		*argv[MAXARGS];
	const char	*a;
	va_list		 ap;
	int		 argc = 0;

	argv[argc++] = (char *)"echoload";
	va_start(ap, word);
	while ((a = va_arg(ap, const char *)) != NULL)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	errbuf[0] = '\0';
	assert_int_equal(opts_parse(&o, argc, argv, errbuf, sizeof errbuf),
	    OPTS_ERROR);
	if (strstr(errbuf, word) == NULL)
		fail_msg("\"%s\" does not mention \"%s\"", errbuf, word);
	assert_null(strchr(errbuf, '\n'));
}

static void
test_errors(void **state)
{
	(void)state;
	expect_error("-c 0", "-c", "0", NULL);
	expect_error("-c x", "-c", "x", NULL);
	expect_error("-t 0", "-t", "0", NULL);
	expect_error("-d 0", "-d", "0", NULL);
	expect_error("-d soon", "-d", "soon", NULL);
	expect_error("-s 0", "-s", "0", NULL);
	expect_error("-s 65m", "-s", "65m", NULL);
	expect_error("-P 0", "-P", "0", NULL);
	expect_error("-R 0", "-R", "0", NULL);
	expect_error("-R -5", "-R", "-5", NULL);
	expect_error("-R 10q", "-R", "10q", NULL);
	expect_error("-n 0", "-n", "0", NULL);
	expect_error("--timeout", "--timeout", "0", NULL);
	expect_error("-x", "-x", NULL);
	expect_error("--bogus", "--bogus", NULL);
	expect_error("-c", "-c", NULL);
	expect_error("needs a value", "--json", NULL);
	expect_error("only one target", "a:1", "b:2", NULL);
	expect_error("target", "nohostport", NULL);
	expect_error("target", "*:7007", NULL);
	expect_error("-P", "-m", "connect", "-P", "4", NULL);
	expect_error("--verify", "-m", "upload", "--verify", NULL);
	expect_error("-R", "-m", "download", "-R", "100", NULL);
	expect_error("write to -", "--json", "-", "--csv", "-", NULL);
}

/* Source address i of the parsed set, as text. */
static const char *
nth(const struct opts *o, uint64_t i)
{
	static char		 buf[INET6_ADDRSTRLEN];
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	const void		*a;

	source_nth(&o->sources, i, &ss, &len);
	if (ss.ss_family == AF_INET) {
		assert_int_equal(len, sizeof(struct sockaddr_in));
		assert_int_equal(((struct sockaddr_in *)&ss)->sin_port, 0);
		a = &((struct sockaddr_in *)&ss)->sin_addr;
	} else {
		assert_int_equal(len, sizeof(struct sockaddr_in6));
		a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
	}
	assert_non_null(inet_ntop(ss.ss_family, a, buf, sizeof buf));
	return buf;
}

static void
test_connect_options(void **state)
{
	struct opts	o;

	(void)state;
	assert_int_equal(parse(&o, "--connect-rate", "2k",
	    "--connect-timeout", "750ms", "--require-all", NULL), OPTS_RUN);
	assert_true(o.connect_rate == 2000.0);
	assert_int_equal(o.connect_timeout_us, 750000);
	assert_true(o.require_all);
	assert_int_equal(parse(&o, "--connect-rate=150.5", NULL), OPTS_RUN);
	assert_true(o.connect_rate == 150.5);
	/* The request timeout and the connect timeout are apart. */
	assert_int_equal(parse(&o, "--timeout", "1s", NULL), OPTS_RUN);
	assert_int_equal(o.timeout_us, 1000000);
	assert_int_equal(o.connect_timeout_us, 5000000);
}

static void
test_source_list(void **state)
{
	struct opts	o;

	(void)state;
	assert_int_equal(parse(&o, "--source", "127.0.0.2,127.0.0.3", NULL),
	    OPTS_RUN);
	assert_int_equal(o.sources.n, 2);
	assert_int_equal(o.sources.total, 2);
	assert_int_equal(source_family(&o.sources), AF_INET);
	assert_string_equal(nth(&o, 0), "127.0.0.2");
	assert_string_equal(nth(&o, 1), "127.0.0.3");
	/* Round robin: connection 2 is back at the first. */
	assert_string_equal(nth(&o, 2), "127.0.0.2");
	assert_string_equal(nth(&o, 5), "127.0.0.3");
	/* Repeated --source adds to the set. */
	assert_int_equal(parse(&o, "--source", "10.0.0.1", "--source",
	    "10.0.0.9", NULL), OPTS_RUN);
	assert_int_equal(o.sources.total, 2);
	assert_string_equal(nth(&o, 1), "10.0.0.9");
}

static void
test_source_cidr(void **state)
{
	struct opts	o;

	(void)state;
	/* A /24 gives .1 to .254: no network or broadcast address. */
	assert_int_equal(parse(&o, "--source", "10.1.2.77/24", NULL),
	    OPTS_RUN);
	assert_int_equal(o.sources.total, 254);
	assert_string_equal(nth(&o, 0), "10.1.2.1");
	assert_string_equal(nth(&o, 253), "10.1.2.254");
	assert_string_equal(nth(&o, 254), "10.1.2.1");
	/* A block across an octet boundary carries. */
	assert_int_equal(parse(&o, "--source", "10.1.0.0/23", NULL),
	    OPTS_RUN);
	assert_int_equal(o.sources.total, 510);
	assert_string_equal(nth(&o, 254), "10.1.0.255");
	assert_string_equal(nth(&o, 255), "10.1.1.0");
	/* /31 and /32: every address. */
	assert_int_equal(parse(&o, "--source", "10.9.9.8/31", NULL),
	    OPTS_RUN);
	assert_int_equal(o.sources.total, 2);
	assert_string_equal(nth(&o, 0), "10.9.9.8");
	assert_int_equal(parse(&o, "--source", "10.9.9.8/32", NULL),
	    OPTS_RUN);
	assert_int_equal(o.sources.total, 1);
	/* A huge block is capped, not expanded. */
	assert_int_equal(parse(&o, "--source", "10.0.0.0/8", NULL), OPTS_RUN);
	assert_int_equal(o.sources.n, 1);
	assert_true(o.sources.total <= SOURCE_MAX_RANGE);
	/* A list and a block together, in order. */
	assert_int_equal(parse(&o, "--source", "192.168.0.5,192.168.1.0/30",
	    NULL), OPTS_RUN);
	assert_int_equal(o.sources.total, 3);
	assert_string_equal(nth(&o, 0), "192.168.0.5");
	assert_string_equal(nth(&o, 1), "192.168.1.1");
	assert_string_equal(nth(&o, 2), "192.168.1.2");
}

static void
test_source_ipv6(void **state)
{
	struct opts	o;

	(void)state;
	assert_int_equal(parse(&o, "--source", "::1", "[::1]:9000", NULL),
	    OPTS_RUN);
	assert_int_equal(source_family(&o.sources), AF_INET6);
	assert_string_equal(nth(&o, 0), "::1");
	assert_int_equal(parse(&o, "--source", "[fd00::5],fd00::6", NULL),
	    OPTS_RUN);
	assert_int_equal(o.sources.total, 2);
	assert_string_equal(nth(&o, 1), "fd00::6");
	assert_int_equal(parse(&o, "--source", "fd00::ff00/120", NULL),
	    OPTS_RUN);
	assert_int_equal(o.sources.total, 255);
	assert_string_equal(nth(&o, 0), "fd00::ff01");
	assert_string_equal(nth(&o, 254), "fd00::ffff");
	/* Carries through 16-bit groups. */
	assert_int_equal(parse(&o, "--source", "fd00::/111", NULL),
	    OPTS_RUN);
	assert_string_equal(nth(&o, 0), "fd00::1");
	assert_string_equal(nth(&o, 0xfffe), "fd00::ffff");
	assert_string_equal(nth(&o, 0xffff), "fd00::1:0");
}

static void
test_source_errors(void **state)
{
	(void)state;
	expect_error("--source", "--source", "", NULL);
	expect_error("not an IPv4 or IPv6 address", "--source", "localhost",
	    NULL);
	expect_error("--source 10.0.0.1,,10.0.0.2: empty item", "--source",
	    "10.0.0.1,,10.0.0.2", NULL);
	expect_error("empty item", "--source", "10.0.0.1,", NULL);
	expect_error("prefix length above 32", "--source", "10.0.0.0/33",
	    NULL);
	expect_error("prefix length above 128", "--source", "fd00::/129",
	    NULL);
	expect_error("bad prefix", "--source", "10.0.0.0/", NULL);
	expect_error("bad prefix", "--source", "10.0.0.0/-1", NULL);
	expect_error("bad prefix", "--source", "10.0.0.0/8x", NULL);
	expect_error("mixes IPv4 and IPv6", "--source", "127.0.0.1,::1",
	    NULL);
	expect_error("--connect-rate 0", "--connect-rate", "0", NULL);
	expect_error("--connect-rate fast", "--connect-rate", "fast", NULL);
	expect_error("--connect-timeout", "--connect-timeout", "0", NULL);
	expect_error("--connect-timeout 5x", "--connect-timeout", "5x", NULL);
}

static void
test_tls_options(void **state)
{
	struct opts	o;

	(void)state;
	assert_int_equal(parse(&o, "--tls", "host:443", NULL), OPTS_RUN);
	assert_true(o.tls);
	assert_null(o.ca_path);
	assert_false(o.insecure);
	assert_false(o.no_resume);
	assert_int_equal(o.tls_version, 0);

	assert_int_equal(parse(&o, "--tls", "--ca", "ca.pem", "--sni",
	    "example.org", "--cert", "c.pem", "--key", "c.key",
	    "--tls-version", "1.3", "--no-resume", "-m", "connect",
	    "127.0.0.1:7443", NULL), OPTS_RUN);
	assert_true(o.tls);
	assert_string_equal(o.ca_path, "ca.pem");
	assert_string_equal(o.sni, "example.org");
	assert_string_equal(o.cert_path, "c.pem");
	assert_string_equal(o.key_path, "c.key");
	assert_int_equal(o.tls_version, 13);
	assert_true(o.no_resume);
	assert_int_equal(o.mode, MODE_CONNECT);

	assert_int_equal(parse(&o, "--insecure", "--tls-version", "1.2",
	    "--cert", "both.pem", "--tls", NULL), OPTS_RUN);
	assert_true(o.insecure);
	assert_int_equal(o.tls_version, 12);
	assert_string_equal(o.cert_path, "both.pem");
	assert_null(o.key_path);
}

static void
test_tls_errors(void **state)
{
	(void)state;
	expect_error("--ca needs --tls", "--ca", "ca.pem", NULL);
	expect_error("--insecure needs --tls", "--insecure", NULL);
	expect_error("--sni needs --tls", "--sni", "x", NULL);
	expect_error("--cert needs --tls", "--cert", "c.pem", NULL);
	expect_error("--key needs --tls", "--key", "c.key", NULL);
	expect_error("--tls-version needs --tls", "--tls-version", "1.3",
	    NULL);
	expect_error("--no-resume needs --tls", "--no-resume", NULL);
	expect_error("exclude", "--tls", "--ca", "ca.pem", "--insecure",
	    NULL);
	expect_error("--key needs --cert", "--tls", "--key", "c.key", NULL);
	expect_error("--tls-version 1.1", "--tls", "--tls-version", "1.1",
	    NULL);
	expect_error("--tls-version 1.3x", "--tls", "--tls-version", "1.3x",
	    NULL);
	expect_error("--ca needs a value", "--tls", "--ca", "", NULL);
	expect_error("--sni needs a value", "--tls", "--sni", "", NULL);
	expect_error("needs a value", "--tls", "--cert", NULL);
}

static void
test_sweep_ranges(void **state)
{
	struct opts	o;

	(void)state;
	assert_int_equal(parse(&o, NULL), OPTS_RUN);
	assert_int_equal(o.sweep, SWEEP_NONE);
	assert_true(o.slo_precision == 0.05);

	assert_int_equal(parse(&o, "-R", "10k:200k:10k", NULL), OPTS_RUN);
	assert_int_equal(o.sweep, SWEEP_LINEAR);
	assert_true(o.rate == 10000);
	assert_true(o.rate_to == 200000);
	assert_true(o.rate_step == 10000);

	assert_int_equal(parse(&o, "-R", "1k:8k", "--steps", "4", NULL),
	    OPTS_RUN);
	assert_int_equal(o.sweep, SWEEP_GEOMETRIC);
	assert_int_equal(o.steps, 4);
	assert_true(o.rate == 1000);
	assert_true(o.rate_to == 8000);

	/* A later -R takes the place of an earlier one. */
	assert_int_equal(parse(&o, "-R", "1k:8k:1k", "-R", "500", NULL),
	    OPTS_RUN);
	assert_int_equal(o.sweep, SWEEP_NONE);
	assert_true(o.rate == 500);
}

static void
test_slo(void **state)
{
	struct opts	o;

	(void)state;
	assert_int_equal(parse(&o, "-R", "1k:100k", "--slo", "p99<5ms",
	    NULL), OPTS_RUN);
	assert_int_equal(o.sweep, SWEEP_SLO);
	assert_int_equal(o.slo.nterms, 1);
	assert_true(o.slo.terms[0].percentile == 99);
	assert_int_equal(o.slo.terms[0].limit_us, 5000);
	assert_false(o.slo.has_error_bound);
	assert_string_equal(o.slo.text, "p99<5ms");

	assert_int_equal(parse(&o, "-R", "1k:100k", "--slo",
	    "p99.9<20ms, p50<800us,errors<0.1%", "--slo-precision", "2%",
	    NULL), OPTS_RUN);
	assert_int_equal(o.slo.nterms, 2);
	assert_true(o.slo.terms[0].percentile == 99.9);
	assert_int_equal(o.slo.terms[0].limit_us, 20000);
	assert_true(o.slo.terms[1].percentile == 50);
	assert_int_equal(o.slo.terms[1].limit_us, 800);
	assert_true(o.slo.has_error_bound);
	assert_true(o.slo.max_error_rate > 0.000999 &&
	    o.slo.max_error_rate < 0.001001);
	assert_true(o.slo_precision > 0.0199 && o.slo_precision < 0.0201);

	assert_int_equal(parse(&o, "-R", "1k:2k", "--slo", "p50<=1s",
	    "--slo-precision", "10", NULL), OPTS_RUN);
	assert_int_equal(o.slo.terms[0].limit_us, 1000000);
	assert_true(o.slo_precision > 0.0999 && o.slo_precision < 0.1001);
}

static void
test_sweep_errors(void **state)
{
	(void)state;
	expect_error("-R 10k:5k: TO must be above FROM", "-R", "10k:5k",
	    NULL);
	expect_error("-R 1k:1k", "-R", "1k:1k", "--steps", "2", NULL);
	expect_error("-R 10k::1k: TO is empty", "-R", "10k::1k", NULL);
	expect_error("-R :5k:1: FROM is empty", "-R", ":5k:1", NULL);
	expect_error("-R 1k:: TO is empty", "-R", "1k:", NULL);
	expect_error("-R 1:2:3:4: too many parts", "-R", "1:2:3:4", NULL);
	expect_error("-R 1k:2k:0: STEP 0", "-R", "1k:2k:0", NULL);
	expect_error("-R 1k:2kx:1: TO 2kx: trailing", "-R", "1k:2kx:1", NULL);
	expect_error("-R 1:100k:1: more than 1000 steps", "-R", "1:100k:1",
	    NULL);
	expect_error("-R FROM:TO needs a STEP", "-R", "1k:2k", NULL);
	expect_error("--steps 1: at least 2", "-R", "1k:2k", "--steps", "1",
	    NULL);
	expect_error("--steps 1001", "-R", "1k:2k", "--steps", "1001", NULL);
	expect_error("--steps x", "-R", "1k:2k", "--steps", "x", NULL);
	expect_error("--steps needs -R FROM:TO", "--steps", "3", NULL);
	expect_error("--steps needs -R FROM:TO", "-R", "1k", "--steps", "3",
	    NULL);
	expect_error("--steps and -R FROM:TO:STEP", "-R", "1k:2k:100",
	    "--steps", "3", NULL);
	expect_error("-R FROM:TO needs echo mode", "-m", "upload", "-R",
	    "1k:2k:100", NULL);
	expect_error("-n cannot bound a sweep", "-n", "100", "-R",
	    "1k:2k:100", NULL);
	expect_error("--hgrm", "--hgrm", "x.hgrm", "-R", "1k:2k:100", NULL);
}

static void
test_slo_errors(void **state)
{
	(void)state;
	expect_error("--slo needs -R FROM:TO", "--slo", "p99<5ms", NULL);
	expect_error("--slo needs -R FROM:TO", "-R", "1k", "--slo",
	    "p99<5ms", NULL);
	expect_error("--slo takes -R FROM:TO, without a STEP", "-R",
	    "1k:2k:1k", "--slo", "p99<5ms", NULL);
	expect_error("--slo and --steps", "-R", "1k:2k", "--slo", "p99<5ms",
	    "--steps", "3", NULL);
	expect_error("--slo p99<5: the limit needs a unit", "-R", "1k:2k",
	    "--slo", "p99<5", NULL);
	expect_error("--slo p100<5ms: the percentile", "-R", "1k:2k",
	    "--slo", "p100<5ms", NULL);
	expect_error("--slo p0<5ms: the percentile", "-R", "1k:2k",
	    "--slo", "p0<5ms", NULL);
	expect_error("--slo q99<5ms: unknown term", "-R", "1k:2k",
	    "--slo", "q99<5ms", NULL);
	expect_error("--slo p99x<5ms: not a percentile", "-R", "1k:2k",
	    "--slo", "p99x<5ms", NULL);
	expect_error("--slo p99>5ms: no '<'", "-R", "1k:2k", "--slo",
	    "p99>5ms", NULL);
	expect_error("--slo p99<: no limit", "-R", "1k:2k", "--slo", "p99<",
	    NULL);
	expect_error("--slo p99<0ms: the limit must be above 0", "-R",
	    "1k:2k", "--slo", "p99<0ms", NULL);
	expect_error("--slo p99<soon", "-R", "1k:2k", "--slo", "p99<soon",
	    NULL);
	expect_error("--slo errors<1%: needs a percentile bound", "-R",
	    "1k:2k", "--slo", "errors<1%", NULL);
	expect_error("--slo p99<5ms,errors<1: the error bound is a "
	    "percentage", "-R", "1k:2k", "--slo", "p99<5ms,errors<1", NULL);
	expect_error("--slo p99<5ms,errors<0%", "-R", "1k:2k", "--slo",
	    "p99<5ms,errors<0%", NULL);
	expect_error("errors given twice", "-R", "1k:2k", "--slo",
	    "p99<5ms,errors<1%,errors<2%", NULL);
	expect_error("at most 4", "-R", "1k:2k", "--slo",
	    "p50<1ms,p90<2ms,p99<3ms,p99.9<4ms,p99.99<5ms", NULL);
	expect_error("--slo p99<5ms,: no '<'", "-R", "1k:2k", "--slo",
	    "p99<5ms,", NULL);
	expect_error("--slo needs a value", "-R", "1k:2k", "--slo", "",
	    NULL);
	expect_error("--slo-precision 0: out of range", "-R", "1k:2k",
	    "--slo", "p99<5ms", "--slo-precision", "0", NULL);
	expect_error("--slo-precision 60%: out of range", "-R", "1k:2k",
	    "--slo", "p99<5ms", "--slo-precision", "60%", NULL);
	expect_error("--slo-precision 5x: not a percentage", "-R", "1k:2k",
	    "--slo", "p99<5ms", "--slo-precision", "5x", NULL);
}

static void
test_help_version(void **state)
{
	struct opts	o;

	(void)state;
	assert_int_equal(parse(&o, "-h", NULL), OPTS_HELP);
	assert_int_equal(parse(&o, "--version", NULL), OPTS_VERSION);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_options),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_requests_without_duration),
		cmocka_unit_test(test_threads_capped),
		cmocka_unit_test(test_options_after_target),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_connect_options),
		cmocka_unit_test(test_source_list),
		cmocka_unit_test(test_source_cidr),
		cmocka_unit_test(test_source_ipv6),
		cmocka_unit_test(test_source_errors),
		cmocka_unit_test(test_tls_options),
		cmocka_unit_test(test_tls_errors),
		cmocka_unit_test(test_sweep_ranges),
		cmocka_unit_test(test_slo),
		cmocka_unit_test(test_sweep_errors),
		cmocka_unit_test(test_slo_errors),
		cmocka_unit_test(test_help_version),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
