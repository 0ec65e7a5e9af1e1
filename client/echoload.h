/*
 * echoload.h: what the client's subsystems share: the run's options as the
 * command line set them, modes, and the kinds of error a run counts.
 */
#ifndef ECHOLOAD_ECHOLOAD_H
#define ECHOLOAD_ECHOLOAD_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include <sys/socket.h>

#include "addr.h"
#include "source.h"

#define DEFAULT_TARGET		"127.0.0.1:7007"
#define DEFAULT_CONNECTIONS	50
#define DEFAULT_DURATION_US	(10 * UINT64_C(1000000))
#define DEFAULT_SIZE		64
#define DEFAULT_DEPTH		1
#define DEFAULT_TIMEOUT_US	(5 * UINT64_C(1000000))
#define DEFAULT_CONNECT_TIMEOUT_US (5 * UINT64_C(1000000))
#define MAX_THREADS		1024
#define MAX_CONNECTIONS		1000000
#define MAX_DEPTH		65536
#define MAX_SIZE		(64 * 1024 * 1024)
#define DEFAULT_HLOG_INTERVAL_US (1 * UINT64_C(1000000))
#define MAX_TAG_LEN		128

enum mode {
	MODE_ECHO,
	MODE_CONNECT,
	MODE_UPLOAD,
	MODE_DOWNLOAD,
};

/* -R FROM:TO with a step, a step count or an SLO: more than one rate. */
enum sweep_kind {
	SWEEP_NONE,	/* one rate, or closed loop */
	SWEEP_LINEAR,	/* -R FROM:TO:STEP */
	SWEEP_GEOMETRIC,	/* -R FROM:TO --steps N */
	SWEEP_SLO,	/* -R FROM:TO --slo ...: search */
};

#define SLO_MAX_TERMS	4
#define DEFAULT_SLO_PRECISION	0.05
#define MAX_STEPS	1000

/* One bound of an SLO: the response time at this percentile stays below
 * limit_us. */
struct slo_term {
	double		percentile;	/* 0 < p < 100 */
	uint64_t	limit_us;
};

struct slo {
	struct slo_term	terms[SLO_MAX_TERMS];
	unsigned	nterms;
	int		has_error_bound;
	double		max_error_rate;	/* fraction of requests, below which */
	const char	*text;		/* as given */
};

enum err_kind {
	ERR_CONNECT,	/* connect failed: refused, unreachable */
	ERR_RESET,	/* read or write failed: reset, broken pipe */
	ERR_CLOSED,	/* the server closed while replies were owed */
	ERR_TIMEOUT,	/* no reply (or no progress) within --timeout */
	ERR_MISMATCH,	/* --verify found a reply that differs */
	ERR_UNEXPECTED,	/* bytes arrived that no request asked for */
	ERR_TLS,	/* handshake failed, or a TLS protocol error */
	ERR_MAX
};

struct opts {
	const char	*target;	/* HOST:PORT as given */
	struct addr_spec spec;
	enum mode	 mode;
	unsigned	 threads;
	unsigned	 connections;
	unsigned	 depth;		/* -P: in flight per connection */
	size_t		 size;		/* -s: message size */
	uint64_t	 duration_us;	/* -d, 0 when only -n bounds the run */
	uint64_t	 requests;	/* -n, 0 when unbounded */
	uint64_t	 warmup_us;	/* -w */
	double		 rate;		/* -R requests/s; 0: closed loop */
	/* -R FROM:TO[:STEP], --steps, --slo, --slo-precision. rate is FROM. */
	enum sweep_kind	 sweep;
	double		 rate_to;
	double		 rate_step;	/* SWEEP_LINEAR */
	unsigned	 steps;		/* SWEEP_GEOMETRIC */
	struct slo	 slo;		/* SWEEP_SLO */
	double		 slo_precision;	/* fraction: 0.05 is 5% */
	uint64_t	 timeout_us;
	/* The connection phase: --connect-rate (0: as fast as it goes),
	 * --connect-timeout, --require-all, --source. */
	double		 connect_rate;
	uint64_t	 connect_timeout_us;
	int		 require_all;
	struct source_set sources;
	int		 verify;
	int		 quiet;
	const char	*json_path;
	const char	*csv_path;
	const char	*hgrm_path;
	const char	*hlog_path;	/* --hlog: HdrHistogram interval log */
	uint64_t	 hlog_interval_us; /* whole seconds */
	/* --start-at: warm-up begins at this wall-clock moment (ns since
	 * the epoch); 0 starts as soon as the target answers. */
	uint64_t	 start_at_ns;
	const char	*start_at;	/* as given */
	const char	*tag;		/* --tag, or the host name */
	char		 host_tag[256];
	/* --tls and its companions; all unset without --tls. */
	int		 tls;
	int		 tls_version;	/* 0 (1.2 or later), 12 or 13 */
	int		 insecure;	/* no certificate verification */
	int		 no_resume;	/* every handshake a full one */
	const char	*ca_path;	/* NULL: the system store */
	const char	*cert_path;	/* client certificate: mutual TLS */
	const char	*key_path;	/* NULL: the key is in cert_path */
	const char	*sni;		/* NULL: the target's host name */
	/* --proxy: a PROXY header first on each connection (client/proxy.c). */
	int		 proxy;		/* 0: none, 1 or 2: its version */
	const char	*proxy_source;	/* NULL: the connection's own address */
	struct sockaddr_storage proxy_src;
};

enum opts_result {
	OPTS_RUN,
	OPTS_HELP,
	OPTS_VERSION,
	OPTS_ERROR,
};

/* Parse a --start-at value: Unix seconds with an optional fraction, or an
 * RFC 3339 date and time with an offset. 0, or -1 with *why set. */
int		 parse_start_time(const char *, uint64_t *ns, const char **why);
/* Can NAME label a run in every output (.hlog lines, CSV, JSON)? */
int		 tag_valid(const char *);

/* Parse argv into o; on OPTS_ERROR err holds one line saying what is wrong. */
enum opts_result opts_parse(struct opts *o, int argc, char **argv,
		    char *err, size_t errlen);
void		 opts_usage(FILE *);
/* A rate: a positive number with an optional k or m; 0, or -1 with why. */
int		 opts_parse_rate(const char *, double *, const char **why);

const char	*mode_name(enum mode);
const char	*err_name(enum err_kind);

#endif
