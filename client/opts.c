/*
 * opts.c: echoload's command line. Parsing is strict and kept apart from
 * main so that the unit tests can drive it: every bad value is one clear
 * line naming the option, and combinations that cannot work are refused
 * before anything connects.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "echoload.h"
#include "parse.h"
#include "proxy_send.h"
#include "startat.h"
#include "sweep.h"

enum {
	OPT_VERIFY = 256,
	OPT_TIMEOUT,
	OPT_JSON,
	OPT_CSV,
	OPT_HGRM,
	OPT_TLS,
	OPT_CA,
	OPT_INSECURE,
	OPT_SNI,
	OPT_CERT,
	OPT_KEY,
	OPT_TLS_VERSION,
	OPT_NO_RESUME,
	OPT_CONNECT_RATE,
	OPT_CONNECT_TIMEOUT,
	OPT_REQUIRE_ALL,
	OPT_SOURCE,
	OPT_PROXY,
	OPT_PROXY_SOURCE,
	OPT_STEPS,
	OPT_SLO,
	OPT_SLO_PRECISION,
	OPT_HLOG,
	OPT_HLOG_INTERVAL,
	OPT_START_AT,
	OPT_TAG,
};

static const struct option longopts[] = {
	{ "threads",	 required_argument, NULL, 't' },
	{ "connections", required_argument, NULL, 'c' },
	{ "duration",	 required_argument, NULL, 'd' },
	{ "requests",	 required_argument, NULL, 'n' },
	{ "warmup",	 required_argument, NULL, 'w' },
	{ "size",	 required_argument, NULL, 's' },
	{ "pipeline",	 required_argument, NULL, 'P' },
	{ "mode",	 required_argument, NULL, 'm' },
	{ "rate",	 required_argument, NULL, 'R' },
	{ "quiet",	 no_argument,	    NULL, 'q' },
	{ "help",	 no_argument,	    NULL, 'h' },
	{ "version",	 no_argument,	    NULL, 'V' },
	{ "verify",	 no_argument,	    NULL, OPT_VERIFY },
	{ "timeout",	 required_argument, NULL, OPT_TIMEOUT },
	{ "json",	 required_argument, NULL, OPT_JSON },
	{ "csv",	 required_argument, NULL, OPT_CSV },
	{ "hgrm",	 required_argument, NULL, OPT_HGRM },
	{ "tls",	 no_argument,	    NULL, OPT_TLS },
	{ "ca",		 required_argument, NULL, OPT_CA },
	{ "insecure",	 no_argument,	    NULL, OPT_INSECURE },
	{ "sni",	 required_argument, NULL, OPT_SNI },
	{ "cert",	 required_argument, NULL, OPT_CERT },
	{ "key",	 required_argument, NULL, OPT_KEY },
	{ "tls-version", required_argument, NULL, OPT_TLS_VERSION },
	{ "no-resume",	 no_argument,	    NULL, OPT_NO_RESUME },
	{ "connect-rate", required_argument, NULL, OPT_CONNECT_RATE },
	{ "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
	{ "require-all", no_argument,	    NULL, OPT_REQUIRE_ALL },
	{ "source",	 required_argument, NULL, OPT_SOURCE },
	{ "proxy",	 required_argument, NULL, OPT_PROXY },
	{ "proxy-source", required_argument, NULL, OPT_PROXY_SOURCE },
	{ "steps",	 required_argument, NULL, OPT_STEPS },
	{ "slo",	 required_argument, NULL, OPT_SLO },
	{ "slo-precision", required_argument, NULL, OPT_SLO_PRECISION },
	{ "hlog",	 required_argument, NULL, OPT_HLOG },
	{ "hlog-interval", required_argument, NULL, OPT_HLOG_INTERVAL },
	{ "start-at",	 required_argument, NULL, OPT_START_AT },
	{ "tag",	 required_argument, NULL, OPT_TAG },
	{ NULL, 0, NULL, 0 }
};

static const char *mode_names[] = {
	[MODE_ECHO] = "echo",
	[MODE_CONNECT] = "connect",
	[MODE_UPLOAD] = "upload",
	[MODE_DOWNLOAD] = "download",
};

const char *
mode_name(enum mode m)
{
	return mode_names[m];
}

void
opts_usage(FILE *f)
{
	fprintf(f,
"usage: echoload [-hqV] [-c connections] [-d duration] [-m mode] [-n requests]\n"
"                [-P depth] [-R rate] [-s size] [-t threads] [-w warmup]\n"
"                [--verify] [--timeout duration] [--json file] [--csv file]\n"
"                [--hgrm file] [--tls [--ca file | --insecure] [--sni name]\n"
"                [--cert file [--key file]] [--tls-version 1.2|1.3]\n"
"                [--no-resume]] [--connect-rate rate]\n"
"                [--connect-timeout duration] [--require-all]\n"
"                [--source addr[,addr...] | --source cidr]\n"
"                [--proxy v1|v2 [--proxy-source addr:port]]\n"
"                [-R from:to[:step] [--steps n]]\n"
"                [--slo spec [--slo-precision pct]]\n"
"                [--hlog file [--hlog-interval time]] [--start-at time]\n"
"                [--tag name] [host:port]\n"
"       echoload merge [-q] [--json file] [--csv file] [--hgrm file]\n"
"                [--hlog file] file...\n"
"  -t N        threads (default: CPU count)\n"
"  -c N        connections shared by the threads (default 50)\n"
"  -d TIME     measured duration (default 10s; 500ms, 2m, ...)\n"
"  -n N        stop after N requests\n"
"  -w TIME     warm-up, run but not counted\n"
"  -s SIZE     message size (default 64; k and m suffixes)\n"
"  -P N        requests in flight per connection (default 1)\n"
"  -m MODE     echo, connect, upload or download (default echo)\n"
"  -R RATE     open loop at RATE requests/s in total (k and m suffixes)\n"
"  -R FROM:TO:STEP  a rate sweep: one step per rate on the same\n"
"              connections, each with -w warm-up and -d measured time\n"
"  --steps N   with -R FROM:TO: N steps, each a constant factor above the\n"
"              last\n"
"  --slo SPEC  with -R FROM:TO: find the highest rate that meets SPEC,\n"
"              e.g. 'p99<5ms' or 'p99.9<20ms,errors<0.1%%'\n"
"  --slo-precision P  stop the search when the answer is known to P\n"
"              percent (default 5%%)\n"
"  --verify    check every echoed byte\n"
"  --timeout T give up on a reply after T (default 5s)\n"
"  -q, --quiet no progress line\n"
"  --json F, --csv F, --hgrm F   write results to F (- for stdout)\n"
"  --tls       connect with TLS; the server is verified against the system\n"
"              store, or --ca FILE, or not at all with --insecure\n"
"  --sni NAME  server name to send and verify (default: the target's host)\n"
"  --cert F    client certificate for mutual TLS (--key F: its key, if\n"
"              not in F)\n"
"  --tls-version V  only TLS 1.2 or only 1.3 (default: 1.2 or later)\n"
"  --no-resume every handshake a full one (default: resume sessions)\n"
"  --connect-rate R  open connections at R/s in total (default: as fast\n"
"              as it goes, at most 256 connects under way)\n"
"  --connect-timeout T  give up on a connection after T (default 5s)\n"
"  --require-all  exit 1 without running the load unless every\n"
"              connection is established (default: run with those up)\n"
"  --source A  bind connections to these local addresses in turn: a list\n"
"              (10.0.0.1,10.0.0.2) or a block (10.0.0.0/24, fd00::/120)\n"
"  --proxy V   send a PROXY protocol header (v1 or v2) first on each\n"
"              connection, from the connection's own address or from\n"
"              --proxy-source ADDR:PORT\n"
"  --hlog F    HdrHistogram interval log (- for stdout), one line per\n"
"              --hlog-interval (default 1s) per series\n"
"  --start-at T  start at T by the wall clock: Unix seconds (1764628200.5)\n"
"              or RFC 3339 (2026-12-01T22:30:00Z); connects first\n"
"  --tag NAME  label of this run in every output (default: host name)\n"
"  merge       add the results of runs (JSON or .hlog) exactly\n"
"  -h, --help  print this help and exit\n"
"  -V, --version  print the version and exit\n"
"The target defaults to " DEFAULT_TARGET "; IPv6 as [::1]:PORT.\n");
}

static enum opts_result
fail(char *err, size_t len, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return OPTS_ERROR;
}

static int
parse_mode(const char *s, enum mode *out)
{
	size_t	i;

	for (i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++) {
		if (strcmp(s, mode_names[i]) == 0) {
			*out = (enum mode)i;
			return 0;
		}
	}
	return -1;
}

static unsigned
cpu_count(void)
{
	long	n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	if (n > MAX_THREADS)
		return MAX_THREADS;
	return (unsigned)n;
}

static void
opts_defaults(struct opts *o)
{
	memset(o, 0, sizeof *o);
	o->target = DEFAULT_TARGET;
	o->mode = MODE_ECHO;
	o->connections = DEFAULT_CONNECTIONS;
	o->depth = DEFAULT_DEPTH;
	o->size = DEFAULT_SIZE;
	o->duration_us = DEFAULT_DURATION_US;
	o->timeout_us = DEFAULT_TIMEOUT_US;
	o->connect_timeout_us = DEFAULT_CONNECT_TIMEOUT_US;
	o->slo_precision = DEFAULT_SLO_PRECISION;
	o->hlog_interval_us = DEFAULT_HLOG_INTERVAL_US;
	/* The host name labels the run unless --tag says otherwise. */
	if (gethostname(o->host_tag, sizeof o->host_tag) != 0 ||
	    !tag_valid(o->host_tag))
		strcpy(o->host_tag, "echoload");
	o->tag = o->host_tag;
}

static int
to_stdout(const char *path)
{
	return path != NULL && strcmp(path, "-") == 0;
}

/* Parsing state: where errors go, and which defaults were overridden. */
struct parser {
	struct opts	*o;
	char		*err;
	size_t		 len;
	int		 threads_set;
	int		 duration_set;
	int		 tls_extra;	/* a TLS option other than --tls */
};

static int
uint_opt(struct parser *p, const char *name, const char *arg, uint64_t max,
    uint64_t *out)
{
	const char	*why = NULL;

	if (parse_uint(arg, 1, max, out, &why) == 0)
		return 0;
	fail(p->err, p->len, "%s %s: %s", name, arg, why);
	return -1;
}

static int
duration_opt(struct parser *p, const char *name, const char *arg,
    uint64_t min_us, uint64_t *out)
{
	const char	*why = NULL;

	if (parse_duration(arg, out, &why) != 0) {
		fail(p->err, p->len, "%s %s: %s", name, arg, why);
		return -1;
	}
	if (*out < min_us) {
		fail(p->err, p->len, "%s %s: must be at least %s", name, arg,
		    min_us == 1 ? "1us" : "1ms");
		return -1;
	}
	return 0;
}

static int
size_opt(struct parser *p, const char *arg)
{
	const char	*why = NULL;
	uint64_t	 v;

	if (parse_size(arg, &v, &why) != 0) {
		fail(p->err, p->len, "-s %s: %s", arg, why);
		return -1;
	}
	if (v < 1 || v > MAX_SIZE) {
		fail(p->err, p->len, "-s %s: out of range (1 byte to 64m)",
		    arg);
		return -1;
	}
	p->o->size = (size_t)v;
	return 0;
}

/* Options with a number: 0, or -1 with the error set. */
static int
number_opt(struct parser *p, int ch, const char *arg)
{
	struct opts	*o = p->o;
	const char	*why = NULL;
	uint64_t	 v;

	switch (ch) {
	case 't':
		p->threads_set = 1;
		if (uint_opt(p, "-t", arg, MAX_THREADS, &v) != 0)
			return -1;
		o->threads = (unsigned)v;
		return 0;
	case 'c':
		if (uint_opt(p, "-c", arg, MAX_CONNECTIONS, &v) != 0)
			return -1;
		o->connections = (unsigned)v;
		return 0;
	case 'P':
		if (uint_opt(p, "-P", arg, MAX_DEPTH, &v) != 0)
			return -1;
		o->depth = (unsigned)v;
		return 0;
	case 'n':
		return uint_opt(p, "-n", arg, UINT64_MAX / 2, &o->requests);
	case 'd':
		p->duration_set = 1;
		return duration_opt(p, "-d", arg, 1, &o->duration_us);
	case 'w':
		return duration_opt(p, "-w", arg, 0, &o->warmup_us);
	case OPT_TIMEOUT:
		return duration_opt(p, "--timeout", arg, 1000, &o->timeout_us);
	case OPT_CONNECT_TIMEOUT:
		return duration_opt(p, "--connect-timeout", arg, 1000,
		    &o->connect_timeout_us);
	case OPT_CONNECT_RATE:
		if (opts_parse_rate(arg, &o->connect_rate, &why) == 0)
			return 0;
		fail(p->err, p->len, "--connect-rate %s: %s", arg, why);
		return -1;
	case OPT_SOURCE:
		if (source_parse(&o->sources, arg, &why) == 0)
			return 0;
		fail(p->err, p->len, "--source %s: %s", arg, why);
		return -1;
	case OPT_HLOG_INTERVAL:
		if (duration_opt(p, "--hlog-interval", arg, 1000000,
		    &o->hlog_interval_us) != 0)
			return -1;
		if (o->hlog_interval_us % 1000000 == 0)
			return 0;
		/* The run's figures come a second at a time. */
		fail(p->err, p->len, "--hlog-interval %s: must be whole "
		    "seconds", arg);
		return -1;
	case OPT_START_AT:
		o->start_at = arg;
		if (parse_start_time(arg, &o->start_at_ns, &why) == 0)
			return 0;
		fail(p->err, p->len, "--start-at %s: %s", arg, why);
		return -1;
	case OPT_STEPS:
		if (uint_opt(p, "--steps", arg, MAX_STEPS, &v) != 0)
			return -1;
		if (v < 2) {
			fail(p->err, p->len, "--steps %s: at least 2", arg);
			return -1;
		}
		o->steps = (unsigned)v;
		return 0;
	case OPT_SLO:
		return slo_parse(&o->slo, arg, p->err, p->len);
	case OPT_SLO_PRECISION:
		return sweep_parse_precision(o, arg, p->err, p->len);
	case 's':
		return size_opt(p, arg);
	case 'R':
		if (strchr(arg, ':') != NULL)
			return sweep_parse_range(o, arg, p->err, p->len);
		o->sweep = SWEEP_NONE;
		if (opts_parse_rate(arg, &o->rate, &why) == 0)
			return 0;
		fail(p->err, p->len, "-R %s: %s", arg, why);
		return -1;
	}
	return -1;
}

/* A file or name option: a value that is not empty. */
static enum opts_result
text_opt(struct parser *p, const char *name, const char *arg,
    const char **out)
{
	if (*arg == '\0')
		return fail(p->err, p->len, "%s needs a value", name);
	*out = arg;
	return OPTS_RUN;
}

static enum opts_result
tls_opt(struct parser *p, int ch, const char *arg)
{
	struct opts	*o = p->o;

	if (ch != OPT_TLS)
		p->tls_extra = ch;
	switch (ch) {
	case OPT_TLS:
		o->tls = 1;
		return OPTS_RUN;
	case OPT_INSECURE:
		o->insecure = 1;
		return OPTS_RUN;
	case OPT_NO_RESUME:
		o->no_resume = 1;
		return OPTS_RUN;
	case OPT_CA:
		return text_opt(p, "--ca", arg, &o->ca_path);
	case OPT_SNI:
		return text_opt(p, "--sni", arg, &o->sni);
	case OPT_CERT:
		return text_opt(p, "--cert", arg, &o->cert_path);
	case OPT_KEY:
		return text_opt(p, "--key", arg, &o->key_path);
	case OPT_TLS_VERSION:
		if (strcmp(arg, "1.2") == 0)
			o->tls_version = 12;
		else if (strcmp(arg, "1.3") == 0)
			o->tls_version = 13;
		else
			return fail(p->err, p->len, "--tls-version %s: "
			    "not 1.2 or 1.3", arg);
		return OPTS_RUN;
	}
	return OPTS_ERROR;
}

static const char *
tls_opt_name(int ch)
{
	size_t	i;

	for (i = 0; longopts[i].name != NULL; i++)
		if (longopts[i].val == ch)
			return longopts[i].name;
	return "?";
}

/* TLS options that cannot go together. */
static enum opts_result
check_tls(struct parser *p)
{
	struct opts	*o = p->o;

	if (!o->tls) {
		if (p->tls_extra != 0)
			return fail(p->err, p->len, "--%s needs --tls",
			    tls_opt_name(p->tls_extra));
		return OPTS_RUN;
	}
	if (o->insecure && o->ca_path != NULL)
		return fail(p->err, p->len, "--ca and --insecure exclude each "
		    "other");
	if (o->key_path != NULL && o->cert_path == NULL)
		return fail(p->err, p->len, "--key needs --cert");
	return OPTS_RUN;
}

static enum opts_result
apply(struct parser *p, int ch, const char *arg, const char *given)
{
	struct opts	*o = p->o;

	switch (ch) {
	case 'm':
		if (parse_mode(arg, &o->mode) == 0)
			return OPTS_RUN;
		return fail(p->err, p->len, "-m %s: unknown mode (echo, "
		    "connect, upload or download)", arg);
	case 'q':
		o->quiet = 1;
		return OPTS_RUN;
	case OPT_VERIFY:
		o->verify = 1;
		return OPTS_RUN;
	case OPT_REQUIRE_ALL:
		o->require_all = 1;
		return OPTS_RUN;
	case OPT_JSON:
		o->json_path = arg;
		return OPTS_RUN;
	case OPT_CSV:
		o->csv_path = arg;
		return OPTS_RUN;
	case OPT_HGRM:
		o->hgrm_path = arg;
		return OPTS_RUN;
	case OPT_HLOG:
		return text_opt(p, "--hlog", arg, &o->hlog_path);
	case OPT_TAG:
		if (!tag_valid(arg))
			return fail(p->err, p->len, "--tag %s: letters, digits, "
			    "'.', '_' and '-' only, 1 to %d of them", arg,
			    MAX_TAG_LEN);
		o->tag = arg;
		return OPTS_RUN;
	case OPT_TLS:
	case OPT_CA:
	case OPT_INSECURE:
	case OPT_SNI:
	case OPT_CERT:
	case OPT_KEY:
	case OPT_TLS_VERSION:
	case OPT_NO_RESUME:
		return tls_opt(p, ch, arg);
	case OPT_PROXY:
		return proxy_opt_version(o, arg, p->err, p->len) == 0 ?
		    OPTS_RUN : OPTS_ERROR;
	case OPT_PROXY_SOURCE:
		return proxy_opt_source(o, arg, p->err, p->len) == 0 ?
		    OPTS_RUN : OPTS_ERROR;
	case 'h':
		return OPTS_HELP;
	case 'V':
		return OPTS_VERSION;
	case ':':
		return fail(p->err, p->len, "option %s needs a value", given);
	case '?':
		if (optopt != 0)
			return fail(p->err, p->len, "unknown option -%c",
			    optopt);
		return fail(p->err, p->len, "unknown option %s", given);
	}
	return number_opt(p, ch, arg) == 0 ? OPTS_RUN : OPTS_ERROR;
}

/* A start in the past is refused, not shifted: the other hosts given the
 * same time would measure another window. */
static enum opts_result
check_start(struct parser *p)
{
	struct opts	*o = p->o;
	char		 now[40];

	if (o->start_at_ns == 0 || o->start_at_ns > wall_ns())
		return OPTS_RUN;
	return fail(p->err, p->len, "--start-at %s: that time is past "
	    "(now %s)", o->start_at, format_rfc3339(now, sizeof now,
	    wall_ns()));
}

/* Options that are valid one by one but not together. */
static enum opts_result
check(struct parser *p)
{
	struct opts	*o = p->o;

	if (o->requests != 0 && !p->duration_set)
		o->duration_us = 0;
	if (o->depth > 1 && o->mode != MODE_ECHO)
		return fail(p->err, p->len, "-P applies only to echo mode");
	if (o->verify && (o->mode == MODE_UPLOAD || o->mode == MODE_DOWNLOAD))
		return fail(p->err, p->len,
		    "--verify needs echo or connect mode");
	if (o->rate > 0 && o->mode == MODE_DOWNLOAD)
		return fail(p->err, p->len,
		    "-R does not apply to download mode");
	if (to_stdout(o->json_path) + to_stdout(o->csv_path) +
	    to_stdout(o->hgrm_path) + to_stdout(o->hlog_path) > 1)
		return fail(p->err, p->len, "only one of --json, --csv, "
		    "--hgrm and --hlog can write to -");
	if (check_start(p) != OPTS_RUN)
		return OPTS_ERROR;
	/* A sweep's steps are separate windows: one log of all of them
	 * would not say which step a second belongs to. */
	if (o->hlog_path != NULL && o->sweep != SWEEP_NONE)
		return fail(p->err, p->len, "--hlog applies to a run at one "
		    "rate, not to -R FROM:TO or --slo");
	if (check_tls(p) != OPTS_RUN)
		return OPTS_ERROR;
	if (source_family(&o->sources) == -1)
		return fail(p->err, p->len, "--source mixes IPv4 and IPv6 "
		    "addresses; a run has one target family");
	if (proxy_opt_check(o, p->err, p->len) != 0)
		return OPTS_ERROR;
	if (sweep_check(o, p->err, p->len) != 0)
		return OPTS_ERROR;
	if (!p->threads_set)
		o->threads = cpu_count();
	if (o->threads > o->connections)
		o->threads = o->connections;
	return OPTS_RUN;
}

static enum opts_result
target(struct parser *p, int argc, char **argv)
{
	struct opts	*o = p->o;
	const char	*why = NULL;

	if (argc - optind > 1)
		return fail(p->err, p->len,
		    "only one target, got \"%s\" and \"%s\"",
		    argv[optind], argv[optind + 1]);
	if (argc - optind == 1)
		o->target = argv[optind];
	if (addr_parse(o->target, NULL, &o->spec, &why) != 0)
		return fail(p->err, p->len, "target %s: %s", o->target, why);
	if (o->spec.wildcard || o->spec.host[0] == '\0')
		return fail(p->err, p->len, "target %s: needs a host",
		    o->target);
	return OPTS_RUN;
}

enum opts_result
opts_parse(struct opts *o, int argc, char **argv, char *err, size_t len)
{
	struct parser	 p = { o, err, len, 0, 0, 0 };
	enum opts_result r;
	int		 ch;

	opts_defaults(o);
	optind = 0;	/* GNU getopt: start over; the tests parse often */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:d:hm:n:P:qR:s:t:Vw:",
	    longopts, NULL)) != -1) {
		r = apply(&p, ch, optarg, argv[optind - 1]);
		if (r != OPTS_RUN)
			return r;
	}
	if ((r = target(&p, argc, argv)) != OPTS_RUN)
		return r;
	return check(&p);
}
