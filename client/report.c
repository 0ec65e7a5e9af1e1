/*
 * report.c: turns a run's counters and histograms into text for people
 * (summary, progress line) and for programs (JSON, CSV, .hgrm). Latencies
 * are microseconds everywhere except .hgrm, which is in milliseconds as the
 * HdrHistogram plotters expect.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connect.h"
#include "echoload.h"
#include "hcodec.h"
#include "hlog.h"
#include "report.h"
#include "startat.h"
#include "timeline.h"
#include "tls.h"

static const double	percentiles[] = { 50, 90, 99, 99.9, 99.99 };
static const char	*pct_json[] = { "p50", "p90", "p99", "p99_9",
			    "p99_99" };
static const char	*pct_text[] = { "p50", "p90", "p99", "p99.9",
			    "p99.99" };

#define NPCT	(sizeof percentiles / sizeof percentiles[0])

const char *
report_duration(char *buf, size_t len, uint64_t us)
{
	if (us < 1000)
		snprintf(buf, len, "%lluus", (unsigned long long)us);
	else if (us % 1000000 == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(us / 1000000));
	else if (us < 1000000 && us % 1000 == 0)
		snprintf(buf, len, "%llums", (unsigned long long)(us / 1000));
	else if (us < 1000000)
		snprintf(buf, len, "%.2fms", (double)us / 1e3);
	else
		snprintf(buf, len, "%.2fs", (double)us / 1e6);
	return buf;
}

static double
per_second(uint64_t n, double s)
{
	return s > 0 ? (double)n / s : 0.0;
}

static uint64_t
error_total(const struct counters *c)
{
	uint64_t	n = 0;
	int		i;

	for (i = 0; i < ERR_MAX; i++)
		n += c->errors[i];
	return n;
}

void
report_warmup(FILE *f, uint64_t warmup_us)
{
	char	buf[32];

	fprintf(f, "\r\033[Kwarming up for %s",
	    report_duration(buf, sizeof buf, warmup_us));
	fflush(f);
}

void
report_connecting(FILE *f, unsigned up, unsigned failed, unsigned asked)
{
	fprintf(f, "\r\033[Kconnecting %u of %u established, %u failed", up,
	    asked, failed);
	fflush(f);
}

const char *
report_connect_reasons(char *buf, size_t len, const struct connect_stats *st)
{
	size_t	off = 0;
	int	i, n;

	buf[0] = '\0';
	for (i = 0; i < CF_MAX && off < len; i++) {
		if (st->failed[i] == 0)
			continue;
		n = snprintf(buf + off, len - off, "%s%s %llu",
		    off > 0 ? ", " : "", connect_fail_text(i),
		    (unsigned long long)st->failed[i]);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	return buf;
}

void
report_progress(FILE *f, const struct interval *iv)
{
	char	buf[32];

	fprintf(f, "\r\033[K[%4llus] %12.1f req/s  p99 %-9s errors %llu",
	    (unsigned long long)iv->second,
	    per_second(iv->c.requests, iv->length_s),
	    iv->lat->total ? report_duration(buf, sizeof buf,
	    hist_percentile(iv->lat, 99)) : "-",
	    (unsigned long long)error_total(&iv->c));
	fflush(f);
}

void
report_progress_clear(FILE *f)
{
	fprintf(f, "\r\033[K");
	fflush(f);
}

void
report_csv_header(FILE *f)
{
	fprintf(f, "second,length_s,requests,requests_per_s,errors,"
	    "bytes_sent,bytes_received,latency_p50_us,latency_p90_us,"
	    "latency_p99_us,latency_max_us,tag\n");
}

void
report_csv_row(FILE *f, const struct interval *iv)
{
	fprintf(f, "%llu,%.6f,%llu,%.3f,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%s\n",
	    (unsigned long long)iv->second, iv->length_s,
	    (unsigned long long)iv->c.requests,
	    per_second(iv->c.requests, iv->length_s),
	    (unsigned long long)error_total(&iv->c),
	    (unsigned long long)iv->c.bytes_sent,
	    (unsigned long long)iv->c.bytes_received,
	    (unsigned long long)hist_percentile(iv->lat, 50),
	    (unsigned long long)hist_percentile(iv->lat, 90),
	    (unsigned long long)hist_percentile(iv->lat, 99),
	    (unsigned long long)hist_max(iv->lat), iv->tag);
	fflush(f);
}

int
report_rate_reached(const struct run *r)
{
	double	achieved = per_second(r->res.c.requests, r->res.duration_s);

	return achieved >= r->rate * 0.99;
}

static int
has_latency(const struct opts *o)
{
	return o->mode == MODE_ECHO || o->mode == MODE_CONNECT;
}

static void
text_errors(FILE *f, const struct result *res)
{
	const char	*sep = " (";
	int		 i;

	fprintf(f, "errors     %llu", (unsigned long long)res->errors);
	for (i = 0; i < ERR_MAX; i++) {
		if (res->c.errors[i] == 0)
			continue;
		fprintf(f, "%s%s %llu", sep, err_name(i),
		    (unsigned long long)res->c.errors[i]);
		sep = ", ";
	}
	fprintf(f, "%s\n", res->errors ? ")" : "");
}

static void
text_latency_row(FILE *f, const char *name, const struct hist *h)
{
	char	buf[32];
	size_t	i;

	fprintf(f, "  %-9s %9s", name,
	    report_duration(buf, sizeof buf, hist_min(h)));
	fprintf(f, " %9s", report_duration(buf, sizeof buf,
	    (uint64_t)(hist_mean(h) + 0.5)));
	for (i = 0; i < NPCT; i++)
		fprintf(f, " %9s", report_duration(buf, sizeof buf,
		    hist_percentile(h, percentiles[i])));
	fprintf(f, " %9s\n", report_duration(buf, sizeof buf, hist_max(h)));
}

static void
text_latency(FILE *f, const struct run *r)
{
	const struct result	*res = &r->res;
	size_t			 i;

	if (!has_latency(r->o)) {
		fprintf(f, "latency    not measured in %s mode\n",
		    mode_name(r->o->mode));
		return;
	}
	if (res->lat.total == 0) {
		fprintf(f, "latency    no replies\n");
		return;
	}
	fprintf(f, "latency    %9s %9s", "min", "mean");
	for (i = 0; i < NPCT; i++)
		fprintf(f, " %9s", pct_text[i]);
	fprintf(f, " %9s\n", "max");
	if (run_open_loop(r)) {
		text_latency_row(f, "response", &res->lat);
		text_latency_row(f, "service", &res->svc);
		fprintf(f, "  (response: from the intended send time; service: "
		    "from the actual write)\n");
	} else
		text_latency_row(f, "reply", &res->lat);
}

static uint64_t
tls_handshakes(const struct tls_totals *t)
{
	return t->full + t->resumed;
}

/* Handshakes per second: a figure of connect mode, where each request is
 * a connection of its own. */
static int
has_handshake_rate(const struct opts *o)
{
	return o->mode == MODE_CONNECT;
}

static void
text_tls(FILE *f, const struct run *r)
{
	const struct tls_totals	*t = r->res.tls;
	size_t			 i;

	fprintf(f, "tls        %s, %s, resumption %s\n",
	    t->version != NULL ? t->version : "no handshake",
	    t->cipher != NULL ? t->cipher : "-",
	    r->o->no_resume ? "off" : "on");
	fprintf(f, "handshakes %llu (%llu full, %llu resumed, %llu failed)",
	    (unsigned long long)tls_handshakes(t),
	    (unsigned long long)t->full, (unsigned long long)t->resumed,
	    (unsigned long long)t->failed);
	if (has_handshake_rate(r->o))
		fprintf(f, ", %.1f/s", per_second(tls_handshakes(t),
		    r->res.duration_s));
	fprintf(f, "\n");
	if (t->hs_all.total == 0)
		return;
	fprintf(f, "handshake  %9s %9s", "min", "mean");
	for (i = 0; i < NPCT; i++)
		fprintf(f, " %9s", pct_text[i]);
	fprintf(f, " %9s\n", "max");
	if (t->hs_full.total > 0)
		text_latency_row(f, "full", &t->hs_full);
	if (t->hs_resumed.total > 0)
		text_latency_row(f, "resumed", &t->hs_resumed);
}

static double
phase_seconds(const struct connect_stats *st)
{
	return st->end_ns > st->start_ns ?
	    (double)(st->end_ns - st->start_ns) / 1e9 : 0.0;
}

static void
latency_header(FILE *f, const char *name)
{
	size_t	i;

	fprintf(f, "%-10s %9s %9s", name, "min", "mean");
	for (i = 0; i < NPCT; i++)
		fprintf(f, " %9s", pct_text[i]);
	fprintf(f, " %9s\n", "max");
}

/* The connection phase: counts, what failed and why, the source
 * addresses, connect latency; then the reconnects of the load. A sweep
 * shows the phase before its steps (loaded: they will run) and the
 * reconnects after them. */
static void
text_connect(FILE *f, const struct run *r, int loaded, int reconnects)
{
	const struct connect_stats	*st = &r->res.conn;
	const struct reconnect_stats	*rc = &r->res.reconn;
	uint64_t			 failed = connect_failed_total(st);
	uint64_t			 not_tried = connect_not_tried(st);
	double				 d = phase_seconds(st);
	char				 buf[256];

	fprintf(f, "connected  %llu of %llu in %s (%.1f/s)",
	    (unsigned long long)st->established,
	    (unsigned long long)st->asked,
	    report_duration(buf, sizeof buf, (uint64_t)(d * 1e6 + 0.5)),
	    per_second(st->established + failed, d));
	if (failed == 0)
		fprintf(f, ", none failed");
	else
		fprintf(f, ", %llu FAILED (%s)", (unsigned long long)failed,
		    report_connect_reasons(buf, sizeof buf, st));
	if (not_tried > 0)
		fprintf(f, ", %llu unfinished (stopped)",
		    (unsigned long long)not_tried);
	if (!loaded)
		fprintf(f, ": the load did not run\n");
	else if (failed > 0)
		fprintf(f, ": the load ran on the connections that were up\n");
	else
		fprintf(f, "\n");
	if (st->retried > 0)
		fprintf(f, "           %llu connects begun again after a "
		    "dropped SYN (a full accept queue)\n",
		    (unsigned long long)st->retried);
	if (r->src.n > 0)
		fprintf(f, "sources    %s\n", source_describe(&r->src, buf,
		    sizeof buf));
	if (st->lat.total > 0 || rc->lat.total > 0)
		latency_header(f, "connect");
	if (st->lat.total > 0)
		text_latency_row(f, "phase", &st->lat);
	if (rc->lat.total > 0 && reconnects)
		text_latency_row(f, "reconnect", &rc->lat);
	if (!loaded || !reconnects)
		return;
	fprintf(f, "reconnects %llu", (unsigned long long)rc->established);
	if (rc->failed > 0)
		fprintf(f, ", %llu failed attempts",
		    (unsigned long long)rc->failed);
	if (rc->skipped > 0)
		fprintf(f, ", %llu requests skipped while down",
		    (unsigned long long)rc->skipped);
	fprintf(f, "\n");
}

void
report_text(FILE *f, const struct run *r)
{
	const struct opts	*o = r->o;
	const struct result	*res = &r->res;
	char			 buf[32];
	double			 d = res->duration_s;

	fprintf(f, "target     %s", o->target);
	if (strcmp(o->target, r->target) != 0)
		fprintf(f, " (%s)", r->target);
	fprintf(f, ", %s mode, %u connection%s, %u thread%s\n",
	    mode_name(o->mode), o->connections, o->connections == 1 ? "" : "s",
	    o->threads, o->threads == 1 ? "" : "s");
	fprintf(f, "messages   %zu bytes", o->size);
	if (o->mode == MODE_ECHO)
		fprintf(f, ", %u in flight per connection", o->depth);
	fprintf(f, "%s\n", o->verify ? ", verified" : "");
	fprintf(f, "tag        %s", o->tag);
	if (res->loaded)
		fprintf(f, ", measured from %s", format_rfc3339(buf,
		    sizeof buf, r->measure_wall_ns));
	fprintf(f, "\n");
	if (run_has_phase(r))
		text_connect(f, r, res->loaded, 1);
	if (!res->loaded)
		return;
	fprintf(f, "duration   %.2fs", d);
	if (o->warmup_us > 0)
		fprintf(f, " after a %s warm-up", report_duration(buf,
		    sizeof buf, o->warmup_us));
	fprintf(f, "\nrequests   %llu (%.1f/s)\n",
	    (unsigned long long)res->c.requests,
	    per_second(res->c.requests, d));
	text_errors(f, res);
	fprintf(f, "sent       %.2f MiB (%.2f MiB/s), received %.2f MiB "
	    "(%.2f MiB/s)\n", (double)res->c.bytes_sent / 1048576.0,
	    per_second(res->c.bytes_sent, d) / 1048576.0,
	    (double)res->c.bytes_received / 1048576.0,
	    per_second(res->c.bytes_received, d) / 1048576.0);
	if (run_open_loop(r)) {
		fprintf(f, "rate       target %.1f/s, achieved %.1f/s", r->rate,
		    per_second(res->c.requests, d));
		if (report_rate_reached(r))
			fprintf(f, "\n");
		else
			fprintf(f, ": TARGET NOT REACHED (the server or this "
			    "client could not keep up)\n");
	}
	text_latency(f, r);
	if (res->tls != NULL)
		text_tls(f, r);
}

void
report_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

void
report_json_hist(FILE *f, const struct hist *h)
{
	size_t	i;

	fprintf(f, "{\"count\": %llu, \"min\": %llu, "
	    "\"mean\": %.3f, \"stddev\": %.3f",
	    (unsigned long long)h->total, (unsigned long long)hist_min(h),
	    hist_mean(h), hist_stddev(h));
	for (i = 0; i < NPCT; i++)
		fprintf(f, ", \"%s\": %llu", pct_json[i],
		    (unsigned long long)hist_percentile(h, percentiles[i]));
	fprintf(f, ", \"max\": %llu, \"sum\": %llu, \"underflow\": %llu, "
	    "\"overflow\": %llu}", (unsigned long long)hist_max(h),
	    (unsigned long long)h->sum, (unsigned long long)h->underflow,
	    (unsigned long long)h->overflow);
}

static void
json_latency(FILE *f, const char *name, const struct hist *h)
{
	fprintf(f, "  \"%s\": ", name);
	report_json_hist(f, h);
}

static void
json_opt_string(FILE *f, const char *s)
{
	if (s != NULL)
		report_json_string(f, s);
	else
		fprintf(f, "null");
}

static void
json_tls(FILE *f, const struct run *r)
{
	const struct tls_totals	*t = r->res.tls;

	if (t == NULL) {
		fprintf(f, "  \"tls\": null");
		return;
	}
	fprintf(f, "  \"tls\": {\"version\": ");
	json_opt_string(f, t->version);
	fprintf(f, ", \"cipher\": ");
	json_opt_string(f, t->cipher);
	fprintf(f, ", \"resumption\": %s, \"handshakes\": %llu, "
	    "\"full\": %llu, \"resumed\": %llu, \"failed\": %llu, "
	    "\"handshakes_per_s\": ", r->o->no_resume ? "false" : "true",
	    (unsigned long long)tls_handshakes(t),
	    (unsigned long long)t->full, (unsigned long long)t->resumed,
	    (unsigned long long)t->failed);
	if (has_handshake_rate(r->o))
		fprintf(f, "%.3f", per_second(tls_handshakes(t),
		    r->res.duration_s));
	else
		fprintf(f, "null");
	fprintf(f, ",\n    \"handshake_latency_us\": ");
	report_json_hist(f, &t->hs_all);
	fprintf(f, ",\n    \"full_handshake_latency_us\": ");
	report_json_hist(f, &t->hs_full);
	fprintf(f, ",\n    \"resumed_handshake_latency_us\": ");
	report_json_hist(f, &t->hs_resumed);
	fprintf(f, "}");
}

static void
json_rate(FILE *f, const struct run *r)
{
	double	achieved = per_second(r->res.c.requests, r->res.duration_s);

	if (run_open_loop(r))
		fprintf(f, "  \"rate\": {\"target_per_s\": %.3f, "
		    "\"achieved_per_s\": %.3f, \"reached\": %s}",
		    r->rate, achieved,
		    report_rate_reached(r) ? "true" : "false");
	else
		fprintf(f, "  \"rate\": {\"target_per_s\": null, "
		    "\"achieved_per_s\": %.3f, \"reached\": null}", achieved);
}

void
report_json_connect(FILE *f, const struct run *r)
{
	const struct connect_stats	*st = &r->res.conn;
	const struct reconnect_stats	*rc = &r->res.reconn;
	double				 d = phase_seconds(st);
	int				 i;

	if (!run_has_phase(r)) {
		fprintf(f, "  \"connection_phase\": null,\n");
		fprintf(f, "  \"reconnects\": null");
		return;
	}
	fprintf(f, "  \"connection_phase\": {\"asked\": %llu, "
	    "\"established\": %llu, \"failed\": %llu, \"unfinished\": %llu, "
	    "\"retried\": %llu, \"failed_by_reason\": {",
	    (unsigned long long)st->asked,
	    (unsigned long long)st->established,
	    (unsigned long long)connect_failed_total(st),
	    (unsigned long long)connect_not_tried(st),
	    (unsigned long long)st->retried);
	for (i = 0; i < CF_MAX; i++)
		fprintf(f, "%s\"%s\": %llu", i ? ", " : "",
		    connect_fail_name(i), (unsigned long long)st->failed[i]);
	fprintf(f, "},\n    \"duration_s\": %.6f, \"connects_per_s\": %.3f, "
	    "\"connect_rate_per_s\": ", d,
	    per_second(st->established + connect_failed_total(st), d));
	if (r->o->connect_rate > 0)
		fprintf(f, "%.3f", r->o->connect_rate);
	else
		fprintf(f, "null");
	fprintf(f, ", \"connect_timeout_s\": %.6f, \"require_all\": %s, "
	    "\"source_addresses\": %llu, \"load_ran\": %s,\n"
	    "    \"latency_us\": ", (double)r->o->connect_timeout_us / 1e6,
	    r->o->require_all ? "true" : "false",
	    (unsigned long long)r->src.total, r->res.loaded ? "true" : "false");
	report_json_hist(f, &st->lat);
	fprintf(f, "},\n  \"reconnects\": {\"established\": %llu, "
	    "\"failed\": %llu, \"skipped_requests\": %llu,\n"
	    "    \"latency_us\": ", (unsigned long long)rc->established,
	    (unsigned long long)rc->failed, (unsigned long long)rc->skipped);
	report_json_hist(f, &rc->lat);
	fprintf(f, "}");
}

/* What the run was: the fields every JSON document starts with. */
void
report_json_head(FILE *f, const struct run *r)
{
	const struct opts	*o = r->o;

	fprintf(f, "  \"target\": ");
	report_json_string(f, o->target);
	fprintf(f, ",\n  \"address\": ");
	report_json_string(f, r->target);
	fprintf(f, ",\n  \"mode\": \"%s\",\n", mode_name(o->mode));
	fprintf(f, "  \"connections\": %u,\n  \"threads\": %u,\n",
	    o->connections, o->threads);
	fprintf(f, "  \"message_size\": %zu,\n  \"pipeline\": %u,\n", o->size,
	    o->depth);
	fprintf(f, "  \"verify\": %s,\n", o->verify ? "true" : "false");
	fprintf(f, "  \"tag\": ");
	report_json_string(f, o->tag);
	fprintf(f, ",\n");
}

/* When and under which name: what `echoload merge` lines runs up by. */
static void
json_start(FILE *f, const struct run *r)
{
	char	buf[40];

	fprintf(f, "  \"start_unix_s\": %.6f,\n  \"start_time\": \"%s\",\n",
	    (double)r->measure_wall_ns / 1e9,
	    format_rfc3339(buf, sizeof buf, r->measure_wall_ns));
	fprintf(f, "  \"start_at\": ");
	if (r->o->start_at_ns != 0)
		fprintf(f, "%.6f", (double)r->o->start_at_ns / 1e9);
	else
		fprintf(f, "null");
	fprintf(f, ",\n  \"start_delay_s\": %.6f,\n", r->res.start_delay_s);
	fprintf(f, "  \"connect_start_unix_s\": ");
	if (r->phase_wall_ns != 0)
		fprintf(f, "%.6f,\n", (double)r->phase_wall_ns / 1e9);
	else
		fprintf(f, "null,\n");
}

static const struct hist *
series_hist(const struct run *r, int s)
{
	switch (s) {
	case SERIES_RESPONSE:
		return &r->res.lat;
	case SERIES_SERVICE:
		return &r->res.svc;
	case SERIES_CONNECT:
		return run_has_phase(r) ? &r->res.conn.lat : NULL;
	case SERIES_RECONNECT:
		return run_has_phase(r) && r->res.loaded ? &r->res.reconn.lat :
		    NULL;
	default:
		return NULL;
	}
}

/* Series with a whole-run histogram: those measured interval by interval,
 * and the connection phase's. */
static int
has_series(const struct run *r, int s)
{
	if (SERIES_BIT(s) & SERIES_INTERVALS)
		return (r->series & SERIES_BIT(s)) != 0;
	return series_hist(r, s) != NULL;
}

/* Each series' whole-run histogram, in HdrHistogram's compressed
 * encoding: enough to merge runs exactly. */
static void
json_histograms(FILE *f, const struct run *r)
{
	const struct hist	*h;
	const char		*sep = "";
	char			*text;
	int			 s;

	fprintf(f, "  \"histograms\": {");
	for (s = 0; s < NSERIES; s++) {
		if (!has_series(r, s) || (h = series_hist(r, s)) == NULL)
			continue;
		if ((text = hcodec_encode_text(h)) == NULL)
			continue;
		fprintf(f, "%s\n    \"%s\": \"%s\"", sep, series_name(s), text);
		free(text);
		sep = ",";
	}
	fprintf(f, "%s}", *sep ? "\n  " : "");
}

static void
json_interval(FILE *f, const struct run *r, const struct tl_interval *iv)
{
	const char	*sep = "";
	int		 i, s;

	fprintf(f, "    {\"start_s\": %.3f, \"length_s\": %.6f, "
	    "\"requests\": %llu, \"errors\": %llu, \"error_counts\": {",
	    iv->start_s, iv->length_s, (unsigned long long)iv->c.requests,
	    (unsigned long long)error_total(&iv->c));
	for (i = 0; i < ERR_MAX; i++)
		fprintf(f, "%s\"%s\": %llu", i ? ", " : "", err_name(i),
		    (unsigned long long)iv->c.errors[i]);
	fprintf(f, "}, \"bytes_sent\": %llu, \"bytes_received\": %llu, "
	    "\"max_us\": {", (unsigned long long)iv->c.bytes_sent,
	    (unsigned long long)iv->c.bytes_received);
	for (s = 0; s < NSERIES; s++) {
		if ((r->series & SERIES_BIT(s)) == 0 || iv->hist[s] == NULL)
			continue;
		fprintf(f, "%s\"%s\": %llu", sep, series_name(s),
		    (unsigned long long)iv->max[s]);
		sep = ", ";
	}
	fprintf(f, "}, \"histograms\": {");
	sep = "";
	for (s = 0; s < NSERIES; s++) {
		if ((r->series & SERIES_BIT(s)) == 0 || iv->hist[s] == NULL)
			continue;
		fprintf(f, "%s\"%s\": \"%s\"", sep, series_name(s), iv->hist[s]);
		sep = ", ";
	}
	fprintf(f, "}}");
}

/* Every second of the run (the rows of --csv), histograms and all. */
static void
json_intervals(FILE *f, const struct run *r)
{
	size_t	i;

	fprintf(f, "  \"intervals\": [");
	for (i = 0; r->tl != NULL && i < r->tl->n; i++) {
		fprintf(f, "%s\n", i ? "," : "");
		json_interval(f, r, &r->tl->iv[i]);
	}
	fprintf(f, "%s]", r->tl != NULL && r->tl->n ? "\n  " : "");
}

void
report_json(FILE *f, const struct run *r)
{
	const struct opts	*o = r->o;
	const struct result	*res = &r->res;
	double			 d = res->duration_s;
	int			 i;

	fprintf(f, "{\n");
	report_json_head(f, r);
	json_start(f, r);
	fprintf(f, "  \"duration_s\": %.6f,\n  \"warmup_s\": %.6f,\n", d,
	    (double)o->warmup_us / 1e6);
	fprintf(f, "  \"requests\": %llu,\n  \"errors\": %llu,\n",
	    (unsigned long long)res->c.requests,
	    (unsigned long long)res->errors);
	fprintf(f, "  \"error_counts\": {");
	for (i = 0; i < ERR_MAX; i++)
		fprintf(f, "%s\"%s\": %llu", i ? ", " : "", err_name(i),
		    (unsigned long long)res->c.errors[i]);
	fprintf(f, "},\n");
	fprintf(f, "  \"bytes_sent\": %llu,\n  \"bytes_received\": %llu,\n",
	    (unsigned long long)res->c.bytes_sent,
	    (unsigned long long)res->c.bytes_received);
	fprintf(f, "  \"throughput\": {\"requests_per_s\": %.3f, "
	    "\"bytes_per_s\": %.3f, \"bytes_sent_per_s\": %.3f, "
	    "\"bytes_received_per_s\": %.3f},\n",
	    per_second(res->c.requests, d),
	    per_second(res->c.bytes_sent + res->c.bytes_received, d),
	    per_second(res->c.bytes_sent, d),
	    per_second(res->c.bytes_received, d));
	json_latency(f, "latency_us", &res->lat);
	fprintf(f, ",\n");
	json_latency(f, "service_latency_us", &res->svc);
	fprintf(f, ",\n");
	json_rate(f, r);
	fprintf(f, ",\n");
	json_tls(f, r);
	fprintf(f, ",\n");
	report_json_connect(f, r);
	fprintf(f, ",\n");
	json_histograms(f, r);
	fprintf(f, ",\n");
	json_intervals(f, r);
	fprintf(f, "\n}\n");
}

int
report_hgrm(FILE *f, const struct run *r)
{
	return hist_write_hgrm(&r->res.lat, f, 5, 1000.0);
}

/* A sweep's or search's first lines and the column heads of its table. */
void
report_sweep_head(FILE *f, const struct run *r)
{
	const struct opts	*o = r->o;
	char			 w[32], d[32];

	fprintf(f, "target     %s", o->target);
	if (strcmp(o->target, r->target) != 0)
		fprintf(f, " (%s)", r->target);
	fprintf(f, ", %s mode, %u connection%s, %u thread%s\n",
	    mode_name(o->mode), o->connections, o->connections == 1 ? "" : "s",
	    o->threads, o->threads == 1 ? "" : "s");
	fprintf(f, "messages   %zu bytes, %u in flight per connection%s\n",
	    o->size, o->depth, o->verify ? ", verified" : "");
	if (run_has_phase(r))
		text_connect(f, r, 1, 0);
	fprintf(f, "steps      %s warm-up and %s measured each, on the same "
	    "connections\n", report_duration(w, sizeof w, o->warmup_us),
	    report_duration(d, sizeof d, o->duration_us));
	fprintf(f, "latency    response from the intended send time; service "
	    "from the actual write\n");
	fprintf(f, "%4s %12s %12s %7s %9s %9s %9s %9s %9s  %s\n", "step",
	    "target/s", "achieved/s", "errors", "p50", "p99", "p99.9", "max",
	    "svc p99", "verdict");
	fflush(f);
}

/* After the last step: the reconnects of all steps, if any. */
void
report_sweep_tail(FILE *f, const struct run *r)
{
	const struct reconnect_stats	*rc = &r->res.reconn;

	if (rc->established == 0 && rc->failed == 0 && rc->skipped == 0)
		return;
	fprintf(f, "reconnects %llu over all steps",
	    (unsigned long long)rc->established);
	if (rc->failed > 0)
		fprintf(f, ", %llu failed attempts",
		    (unsigned long long)rc->failed);
	if (rc->skipped > 0)
		fprintf(f, ", %llu requests skipped while down",
		    (unsigned long long)rc->skipped);
	fprintf(f, "\n");
}

void
report_step_row(FILE *f, unsigned step, double target, double achieved,
    uint64_t errors, const struct hist *lat, const struct hist *svc,
    const char *verdict)
{
	char	a[32], b[32], c[32], d[32], e[32];

	fprintf(f, "%4u %12.1f %12.1f %7llu %9s %9s %9s %9s %9s  %s\n", step,
	    target, achieved, (unsigned long long)errors,
	    report_duration(a, sizeof a, hist_percentile(lat, 50)),
	    report_duration(b, sizeof b, hist_percentile(lat, 99)),
	    report_duration(c, sizeof c, hist_percentile(lat, 99.9)),
	    report_duration(d, sizeof d, hist_max(lat)),
	    report_duration(e, sizeof e, hist_percentile(svc, 99)), verdict);
	fflush(f);
}

int
report_hlog_finish(const struct run *r)
{
	struct hlog_totals	t;

	if (r->hlog == NULL)
		return 0;
	t.duration_s = r->res.duration_s;
	t.c = r->res.c;
	return hlog_write_finish(r->hlog, &t);
}
