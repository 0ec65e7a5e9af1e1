/*
 * merge.c: `echoload merge FILE...`. Reads the results of several runs, JSON
 * or HdrHistogram interval logs in any mix, checks that they measured the
 * same thing (mode and message size must agree; other differences are
 * warned about), adds their histograms count for count and their counters,
 * and reports the sum as one run in every format a run has. Because the
 * histograms add exactly and each file carries its exact maximum, merged
 * percentiles are those of one histogram fed every sample.
 *
 * Everything is read, checked and computed before any output is opened;
 * each output file is written beside its name and renamed into place, so
 * bad input or a failed write leaves nothing half-written.
 */
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "connect.h"
#include "echoload.h"
#include "hcodec.h"
#include "hlog.h"
#include "merge.h"
#include "report.h"
#include "run.h"
#include "startat.h"
#include "timeline.h"
#include "util.h"

#define NS		1e9
/* Starts or durations further apart than this are worth a warning. */
#define APART_S		0.1

/* One run as read from its file. */
struct input {
	const char	*path;
	char		*tag;
	char		*mode;
	char		*target;
	char		*address;	/* the target resolved */
	uint64_t	 message_size;
	unsigned	 connections;
	unsigned	 threads;
	unsigned	 pipeline;
	int		 verify;
	int		 known;		/* settings known (JSON, our .hlog) */
	double		 rate;
	double		 warmup_s;
	double		 start_s;	/* measured phase, since the epoch */
	double		 start_at_s;	/* --start-at, 0 if none */
	double		 duration_s;
	double		 start_delay_s;
	double		 connect_start_s; /* the phase's start, 0 if none */
	struct counters	 c;
	struct hist	*series[NSERIES];	/* from an .hlog */
	char		*text[NSERIES];		/* from JSON, encoded */
	struct exact {
		int		summary;	/* the fields below are known */
		uint64_t	count, min, max, sum, underflow, overflow;
	}		 ex[NSERIES];
	struct timeline	*tl;
	/* The connection phase and the reconnects (their latencies are
	 * series[SERIES_CONNECT] and series[SERIES_RECONNECT]). */
	int		 has_phase;
	int		 loaded;	/* the load ran after the phase */
	uint64_t	 asked;
	uint64_t	 established;
	uint64_t	 failed[CF_MAX];
	uint64_t	 retried;
	double		 phase_s;
	double		 connect_rate;
	double		 connect_timeout_s;
	int		 require_all;
	uint64_t	 sources;
	uint64_t	 re_established;
	uint64_t	 re_failed;
	uint64_t	 re_skipped;
};

struct merge {
	struct input	*in;
	size_t		 n;
	struct opts	 o;		/* the merged run's settings */
	char		 tag[MAX_TAG_LEN + 1];
	char		*target;
	char		*address;
	struct run	 run;
	int		 quiet;
	const char	*json_path;
	const char	*csv_path;
	const char	*hgrm_path;
	const char	*hlog_path;
};

static void
warn(const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, "echoload merge: warning: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int
bad(const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, "echoload merge: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

static struct hist *
new_hist(void)
{
	struct hist	*h = xmalloc(sizeof *h);

	hist_init(h);
	return h;
}

/* ---- JSON results (read with jansson) ---- */

static int
get_number(const char *path, json_t *obj, const char *key, double *out)
{
	json_t	*v = json_object_get(obj, key);

	if (!json_is_number(v))
		return bad("%s: field \"%s\" missing or not a number", path,
		    key);
	*out = json_number_value(v);
	return 0;
}

static int
get_u64(const char *path, json_t *obj, const char *key, uint64_t *out)
{
	json_t	*v = json_object_get(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return bad("%s: field \"%s\" missing or not a count", path, key);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int
get_unsigned(const char *path, json_t *obj, const char *key, unsigned *out)
{
	uint64_t	v = 0;

	if (get_u64(path, obj, key, &v) != 0)
		return -1;
	if (v > UINT32_MAX)
		return bad("%s: field \"%s\" out of range", path, key);
	*out = (unsigned)v;
	return 0;
}

static int
get_string(const char *path, json_t *obj, const char *key, char **out)
{
	json_t	*v = json_object_get(obj, key);

	if (!json_is_string(v))
		return bad("%s: field \"%s\" missing or not a string", path,
		    key);
	*out = xstrdup(json_string_value(v));
	return 0;
}

static int
get_counters(const char *path, json_t *obj, struct counters *c)
{
	json_t	*ec = json_object_get(obj, "error_counts");
	int	 i;

	if (!json_is_object(ec))
		return bad("%s: field \"error_counts\" missing", path);
	if (get_u64(path, obj, "requests", &c->requests) != 0 ||
	    get_u64(path, obj, "bytes_sent", &c->bytes_sent) != 0 ||
	    get_u64(path, obj, "bytes_received", &c->bytes_received) != 0)
		return -1;
	for (i = 0; i < ERR_MAX; i++)
		if (get_u64(path, ec, err_name(i), &c->errors[i]) != 0)
			return -1;
	return 0;
}

/* The summary object of a series: where the exact min, max and sum are. */
static const char *
summary_key(int s)
{
	switch (s) {
	case SERIES_RESPONSE:
		return "latency_us";
	case SERIES_SERVICE:
		return "service_latency_us";
	case SERIES_CONNECT:
		return "connection_phase.latency_us";
	case SERIES_RECONNECT:
		return "reconnects.latency_us";
	default:
		return NULL;
	}
}

/* "a.b" in root. */
static json_t *
json_path(json_t *root, const char *key)
{
	const char	*dot = strchr(key, '.');
	char		 first[64];

	if (dot == NULL)
		return json_object_get(root, key);
	snprintf(first, sizeof first, "%.*s", (int)(dot - key), key);
	return json_object_get(json_object_get(root, first), dot + 1);
}

/* A whole-run histogram, kept encoded (it is decoded once, straight into
 * the sum), with the exact figures its summary has. */
static int
json_series(struct input *in, json_t *root, int s, const char *text)
{
	const char	*key = summary_key(s);
	struct exact	*ex;
	json_t		*sum;

	if (s < 0 || s >= NSERIES)
		return -1;
	in->text[s] = xstrdup(text);
	ex = &in->ex[s];
	if (key == NULL || !json_is_object(sum = json_path(root, key)))
		return 0;
	if (get_u64(in->path, sum, "count", &ex->count) != 0 ||
	    get_u64(in->path, sum, "min", &ex->min) != 0 ||
	    get_u64(in->path, sum, "max", &ex->max) != 0 ||
	    get_u64(in->path, sum, "sum", &ex->sum) != 0 ||
	    get_u64(in->path, sum, "underflow", &ex->underflow) != 0 ||
	    get_u64(in->path, sum, "overflow", &ex->overflow) != 0)
		return -1;
	ex->summary = 1;
	return 0;
}

static int
json_histograms(struct input *in, json_t *root)
{
	json_t		*hs = json_object_get(root, "histograms"), *v;
	const char	*name;
	int		 s;

	if (!json_is_object(hs))
		return bad("%s: no \"histograms\" (written by an echoload "
		    "that did not carry them?)", in->path);
	json_object_foreach(hs, name, v) {
		if ((s = series_by_name(name, strlen(name))) < 0)
			return bad("%s: histograms.%s: not a series", in->path,
			    name);
		if (!json_is_string(v))
			return bad("%s: histograms.%s: not a string", in->path,
			    name);
		if (json_series(in, root, s, json_string_value(v)) != 0)
			return -1;
		in->tl->series |= SERIES_BIT(s) & SERIES_INTERVALS;
	}
	return 0;
}

static int
json_interval(struct input *in, json_t *o, size_t k)
{
	struct tl_interval	*iv = timeline_push(in->tl);
	json_t			*hs, *mx, *v;
	const char		*name;
	char			 where[64];
	int			 s;

	snprintf(where, sizeof where, "%s: intervals[%zu]", in->path, k);
	if (!json_is_object(o))
		return bad("%s: not an object", where);
	if (get_number(where, o, "start_s", &iv->start_s) != 0 ||
	    get_number(where, o, "length_s", &iv->length_s) != 0 ||
	    get_counters(where, o, &iv->c) != 0)
		return -1;
	hs = json_object_get(o, "histograms");
	mx = json_object_get(o, "max_us");
	if (!json_is_object(hs) || !json_is_object(mx))
		return bad("%s: \"histograms\" or \"max_us\" missing", where);
	json_object_foreach(hs, name, v) {
		if ((s = series_by_name(name, strlen(name))) < 0 ||
		    !json_is_string(v))
			return bad("%s: histograms.%s: not a series histogram",
			    where, name);
		if (get_u64(where, mx, name, &iv->max[s]) != 0)
			return -1;
		/* Decoded (and so checked) when the intervals are added,
		 * before any output is opened. */
		iv->hist[s] = xstrdup(json_string_value(v));
	}
	return 0;
}

static int
json_intervals(struct input *in, json_t *root)
{
	json_t	*ivs = json_object_get(root, "intervals"), *o;
	size_t	 k;

	if (!json_is_array(ivs))
		return bad("%s: no \"intervals\"", in->path);
	json_array_foreach(ivs, k, o)
		if (json_interval(in, o, k) != 0)
			return -1;
	return 0;
}

/* connection_phase: null in connect mode, else its counts. */
static int
json_phase(struct input *in, json_t *root)
{
	json_t		*ph = json_object_get(root, "connection_phase"), *fb, *v;
	const char	*p = in->path;
	int		 i;

	in->loaded = 1;
	if (json_is_null(ph) || ph == NULL)
		return 0;
	if (!json_is_object(ph) ||
	    !json_is_object(fb = json_object_get(ph, "failed_by_reason")))
		return bad("%s: connection_phase: not an object with "
		    "failed_by_reason", p);
	if (get_u64(p, ph, "asked", &in->asked) != 0 ||
	    get_u64(p, ph, "established", &in->established) != 0 ||
	    get_u64(p, ph, "retried", &in->retried) != 0 ||
	    get_number(p, ph, "duration_s", &in->phase_s) != 0 ||
	    get_number(p, ph, "connect_timeout_s",
	    &in->connect_timeout_s) != 0 ||
	    get_u64(p, ph, "source_addresses", &in->sources) != 0)
		return -1;
	for (i = 0; i < CF_MAX; i++)
		if (get_u64(p, fb, connect_fail_name(i), &in->failed[i]) != 0)
			return -1;
	if (json_is_number(v = json_object_get(ph, "connect_rate_per_s")))
		in->connect_rate = json_number_value(v);
	in->require_all = json_is_true(json_object_get(ph, "require_all"));
	in->loaded = !json_is_false(json_object_get(ph, "load_ran"));
	in->has_phase = 1;
	return 0;
}

static int
json_reconnects(struct input *in, json_t *root)
{
	json_t	*rc = json_object_get(root, "reconnects");

	if (rc == NULL || json_is_null(rc))
		return 0;
	if (get_u64(in->path, rc, "established", &in->re_established) != 0 ||
	    get_u64(in->path, rc, "failed", &in->re_failed) != 0 ||
	    get_u64(in->path, rc, "skipped_requests", &in->re_skipped) != 0)
		return -1;
	return 0;
}

static int
json_settings(struct input *in, json_t *root)
{
	json_t	*rate, *v;

	if (get_string(in->path, root, "mode", &in->mode) != 0 ||
	    get_string(in->path, root, "tag", &in->tag) != 0 ||
	    get_string(in->path, root, "target", &in->target) != 0 ||
	    get_string(in->path, root, "address", &in->address) != 0 ||
	    get_u64(in->path, root, "message_size", &in->message_size) != 0 ||
	    get_unsigned(in->path, root, "connections", &in->connections) ||
	    get_unsigned(in->path, root, "threads", &in->threads) != 0 ||
	    get_unsigned(in->path, root, "pipeline", &in->pipeline) != 0 ||
	    get_number(in->path, root, "duration_s", &in->duration_s) != 0 ||
	    get_number(in->path, root, "warmup_s", &in->warmup_s) != 0 ||
	    get_number(in->path, root, "start_unix_s", &in->start_s) != 0 ||
	    get_number(in->path, root, "start_delay_s",
	    &in->start_delay_s) != 0 ||
	    get_counters(in->path, root, &in->c) != 0)
		return -1;
	if (json_phase(in, root) != 0 || json_reconnects(in, root) != 0)
		return -1;
	in->verify = json_is_true(json_object_get(root, "verify"));
	if (json_is_number(v = json_object_get(root, "start_at")))
		in->start_at_s = json_number_value(v);
	if (json_is_number(v = json_object_get(root, "connect_start_unix_s")))
		in->connect_start_s = json_number_value(v);
	rate = json_object_get(root, "rate");
	if (json_is_object(rate) &&
	    json_is_number(v = json_object_get(rate, "target_per_s")))
		in->rate = json_number_value(v);
	in->known = 1;
	return 0;
}

/* The whole file, read in one go (jansson's own file reader takes a
 * character at a time). */
static char *
slurp(const char *path, size_t *len)
{
	struct stat	 st;
	FILE		*f;
	char		*buf;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	if (fstat(fileno(f), &st) != 0) {
		fclose(f);
		return NULL;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	*len = fread(buf, 1, (size_t)st.st_size, f);
	if (ferror(f)) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static int
read_json(struct input *in)
{
	json_error_t	 err;
	json_t		*root;
	char		*text;
	size_t		 len;
	int		 rv;

	if ((text = slurp(in->path, &len)) == NULL)
		return bad("%s: %s", in->path, strerror(errno));
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
	free(text);
	if (root == NULL)
		return bad("%s:%d: %s", in->path, err.line, err.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return bad("%s: not an echoload result (not an object)",
		    in->path);
	}
	in->tl = timeline_new(0);
	rv = json_settings(in, root) == 0 && json_histograms(in, root) == 0 &&
	    json_intervals(in, root) == 0 ? 0 : -1;
	json_decref(root);
	return rv;
}

/* ---- interval logs ---- */

static int
read_hlog(struct input *in)
{
	struct hlog_file	 f;
	char			 err[512];
	int			 s;

	if (hlog_read(in->path, &f, err, sizeof err) != 0) {
		hlog_file_free(&f);
		return bad("%s", err);
	}
	for (s = 0; s < NSERIES; s++) {
		in->series[s] = f.series[s];
		f.series[s] = NULL;
	}
	in->tl = f.tl;
	f.tl = NULL;
	in->start_s = f.start_s;
	/* A log has the phase's connect times; its counts are those. */
	in->loaded = 1;
	if (in->series[SERIES_CONNECT] != NULL) {
		in->has_phase = 1;
		in->connect_start_s = f.connect_start_s;
		in->phase_s = f.connect_length_s;
		in->asked = in->established = in->series[SERIES_CONNECT]->total;
	}
	if (f.from_echoload) {
		in->known = 1;
		in->tag = xstrdup(f.info.tag);
		in->mode = xstrdup(f.info.mode);
		in->target = xstrdup(f.info.target);
		in->address = xstrdup(f.info.address);
		in->message_size = f.info.message_size;
		in->connections = f.info.connections;
		in->threads = f.info.threads;
		in->pipeline = f.info.pipeline;
		in->rate = f.info.rate;
		in->warmup_s = f.info.warmup_s;
		in->start_s = (double)f.info.start_wall_ns / NS;
	} else {
		warn("%s: not written by echoload: mode and message size "
		    "cannot be checked", in->path);
		in->tag = xstrdup("hlog");
	}
	if (f.has_totals) {
		in->c = f.totals.c;
		in->duration_s = f.totals.duration_s;
	} else {
		warn("%s: no totals line (did the run finish?): requests "
		    "are its response count, bytes and errors unknown",
		    in->path);
		in->c.requests = in->series[SERIES_RESPONSE] != NULL ?
		    in->series[SERIES_RESPONSE]->total : 0;
		if (in->tl->n > 0)
			in->duration_s = in->tl->iv[in->tl->n - 1].start_s +
			    in->tl->iv[in->tl->n - 1].length_s;
	}
	hlog_file_free(&f);
	return 0;
}

/* JSON starts with '{'; anything else is read as an interval log. */
static int
read_input(struct input *in)
{
	struct stat	 st;
	FILE		*f;
	int		 c;

	if (stat(in->path, &st) != 0)
		return bad("%s: %s", in->path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return bad("%s: not a regular file", in->path);
	if (st.st_size == 0)
		return bad("%s: empty file", in->path);
	if ((f = fopen(in->path, "r")) == NULL)
		return bad("%s: %s", in->path, strerror(errno));
	while ((c = getc(f)) == ' ' || c == '\t' || c == '\n' || c == '\r')
		;
	fclose(f);
	if (c == EOF)
		return bad("%s: empty file (only blanks)", in->path);
	return c == '{' ? read_json(in) : read_hlog(in);
}

static void
input_free(struct input *in)
{
	int	s;

	free(in->tag);
	free(in->mode);
	free(in->target);
	free(in->address);
	for (s = 0; s < NSERIES; s++) {
		free(in->series[s]);
		free(in->text[s]);
	}
	timeline_free(in->tl);
}

/* ---- checks ---- */

static int
mode_of(const char *name, enum mode *m)
{
	static const enum mode	modes[] = { MODE_ECHO, MODE_CONNECT,
				    MODE_UPLOAD, MODE_DOWNLOAD };
	size_t			i;

	for (i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		if (strcmp(mode_name(modes[i]), name) == 0) {
			*m = modes[i];
			return 0;
		}
	}
	return -1;
}

/* The first run with known settings is the reference. */
static const struct input *
reference(const struct merge *m)
{
	size_t	i;

	for (i = 0; i < m->n; i++)
		if (m->in[i].known)
			return &m->in[i];
	return NULL;
}

static int
check_compatible(const struct merge *m)
{
	const struct input	*ref = reference(m), *in;
	size_t			 i, j;

	for (i = 0; ref != NULL && i < m->n; i++) {
		in = &m->in[i];
		if (!in->known || in == ref)
			continue;
		if (strcmp(in->mode, ref->mode) != 0)
			return bad("%s: %s mode, but %s is %s mode: runs of "
			    "different modes do not add up", in->path,
			    in->mode, ref->path, ref->mode);
		if (in->message_size != ref->message_size)
			return bad("%s: %llu-byte messages, but %s has %llu: "
			    "runs of different message sizes do not add up",
			    in->path, (unsigned long long)in->message_size,
			    ref->path, (unsigned long long)ref->message_size);
		if ((in->rate > 0) != (ref->rate > 0))
			warn("%s and %s: open and closed loop mixed", ref->path,
			    in->path);
		if (fabs(in->duration_s - ref->duration_s) > APART_S)
			warn("%s: measured %.3fs, %s %.3fs", in->path,
			    in->duration_s, ref->path, ref->duration_s);
		if (fabs(in->start_s - ref->start_s) > APART_S)
			warn("%s: started %.3fs %s %s", in->path,
			    fabs(in->start_s - ref->start_s), in->start_s >
			    ref->start_s ? "after" : "before", ref->path);
	}
	/* The same run given twice (its JSON and its .hlog) counts twice. */
	for (i = 0; i < m->n; i++)
		for (j = i + 1; j < m->n; j++)
			if (m->in[i].known && m->in[j].known &&
			    strcmp(m->in[i].tag, m->in[j].tag) == 0 &&
			    fabs(m->in[i].start_s - m->in[j].start_s) < 1e-3)
				warn("%s and %s look like the same run (tag %s):"
				    " it is counted twice", m->in[i].path,
				    m->in[j].path, m->in[i].tag);
	return 0;
}

/* ---- adding up ---- */

static void
counters_add(struct counters *dst, const struct counters *src)
{
	int	i;

	dst->requests += src->requests;
	dst->bytes_sent += src->bytes_sent;
	dst->bytes_received += src->bytes_received;
	for (i = 0; i < ERR_MAX; i++)
		dst->errors[i] += src->errors[i];
}

/* The window every run measured: latest start to earliest end. Runs that
 * do not overlap at all get the span from the first start to the last
 * end instead, with a warning. */
static void
common_window(const struct merge *m, double *start, double *length)
{
	double	lo = m->in[0].start_s, hi = lo + m->in[0].duration_s;
	double	first = lo, last = hi, end;
	size_t	i;

	for (i = 1; i < m->n; i++) {
		end = m->in[i].start_s + m->in[i].duration_s;
		if (m->in[i].start_s > lo)
			lo = m->in[i].start_s;
		if (end < hi)
			hi = end;
		if (m->in[i].start_s < first)
			first = m->in[i].start_s;
		if (end > last)
			last = end;
	}
	if (hi > lo) {
		*start = lo;
		*length = hi - lo;
		return;
	}
	if (m->n > 1)
		warn("the runs' measured windows do not overlap: rates are "
		    "over the whole span");
	*start = first;
	*length = last - first;
}

static struct hist *
result_hist(struct result *res, int s)
{
	switch (s) {
	case SERIES_RESPONSE:
		return &res->lat;
	case SERIES_SERVICE:
		return &res->svc;
	case SERIES_CONNECT:
		return &res->conn.lat;
	default:
		return &res->reconn.lat;
	}
}

/* The exact figures of the sum, kept apart while the counts add. */
struct totals {
	int		any;
	uint64_t	min, max, sum, underflow, overflow;
};

static void
totals_add(struct totals *t, uint64_t count, uint64_t min, uint64_t max,
    uint64_t sum, uint64_t underflow, uint64_t overflow)
{
	if (count == 0)
		return;
	if (!t->any || min < t->min)
		t->min = min;
	if (!t->any || max > t->max)
		t->max = max;
	t->any = 1;
	t->sum += sum;
	t->underflow += underflow;
	t->overflow += overflow;
}

/* One run's histograms into the sum: a log's as read, a JSON result's
 * decoded straight into it, checked against its summary. */
static int
add_series(struct result *res, const struct input *in, unsigned *mask,
    struct totals tot[NSERIES])
{
	const struct exact	*ex;
	struct hcodec_stats	 st;
	const struct hist	*h;
	const char		*why;
	int			 s;

	for (s = 0; s < NSERIES; s++) {
		ex = &in->ex[s];
		if ((h = in->series[s]) != NULL) {
			hist_merge(result_hist(res, s), h);
			totals_add(&tot[s], h->total, h->min, h->max, h->sum,
			    h->underflow, h->overflow);
		} else if (in->text[s] != NULL) {
			if (hcodec_decode_stats(result_hist(res, s),
			    in->text[s], strlen(in->text[s]), &st, &why) != 0)
				return bad("%s: histograms.%s: %s", in->path,
				    series_name(s), why);
			if (ex->summary && ex->count != st.total)
				return bad("%s: histograms.%s holds %llu values, "
				    "its summary says %llu", in->path,
				    series_name(s),
				    (unsigned long long)st.total,
				    (unsigned long long)ex->count);
			if (ex->summary)
				totals_add(&tot[s], st.total, ex->min, ex->max,
				    ex->sum, ex->underflow, ex->overflow);
			else
				totals_add(&tot[s], st.total, st.min,
				    st.max_hi, st.total * ((st.min +
				    st.max_hi) / 2), 0, 0);
		} else
			continue;
		*mask |= SERIES_BIT(s) & SERIES_INTERVALS;
	}
	return 0;
}

static void
set_totals(struct result *res, const struct totals tot[NSERIES])
{
	struct hist	*h;
	int		 s;

	for (s = 0; s < NSERIES; s++) {
		if (!tot[s].any)
			continue;
		h = result_hist(res, s);
		h->min = tot[s].min;
		h->max = tot[s].max;
		h->sum = tot[s].sum;
		h->underflow = tot[s].underflow;
		h->overflow = tot[s].overflow;
	}
}

/* The connection phases side by side: counts add, the phase lasted as
 * long as the longest. */
static void
add_phase(struct run *r, const struct input *in)
{
	struct connect_stats	*st = &r->res.conn;
	struct reconnect_stats	*rc = &r->res.reconn;
	uint64_t		 ns = (uint64_t)llround(in->phase_s * NS);
	int			 i;

	if (!in->has_phase)
		return;
	st->asked += in->asked;
	st->established += in->established;
	st->retried += in->retried;
	for (i = 0; i < CF_MAX; i++)
		st->failed[i] += in->failed[i];
	if (ns > st->end_ns - st->start_ns)
		st->end_ns = st->start_ns + ns;
	rc->established += in->re_established;
	rc->failed += in->re_failed;
	rc->skipped += in->re_skipped;
	r->src.total += in->sources;
}

static int
cmp_start(const void *a, const void *b)
{
	const struct tl_interval	*x = a, *y = b;

	return (x->start_s > y->start_s) - (x->start_s < y->start_s);
}

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The merged interval at start key: every run's interval that starts
 * there (a millisecond either way), added. */
static int
merge_interval(struct merge *m, struct timeline *out, double key,
    size_t *cursor, struct hist *acc[NSERIES])
{
	struct tl_interval	*iv = timeline_push(out), *src;
	struct hcodec_stats	 st;
	const char		*why;
	size_t			 i;
	int			 s, any[NSERIES] = { 0 };

	iv->start_s = key;
	for (s = 0; s < NSERIES; s++)
		hist_init(acc[s]);
	for (i = 0; i < m->n; i++) {
		while (cursor[i] < m->in[i].tl->n &&
		    m->in[i].tl->iv[cursor[i]].start_s < key - 5e-4)
			cursor[i]++;
		if (cursor[i] == m->in[i].tl->n ||
		    m->in[i].tl->iv[cursor[i]].start_s > key + 5e-4)
			continue;
		src = &m->in[i].tl->iv[cursor[i]++];
		counters_add(&iv->c, &src->c);
		if (src->length_s > iv->length_s)
			iv->length_s = src->length_s;
		for (s = 0; s < NSERIES; s++) {
			if (src->hist[s] == NULL)
				continue;
			if (hcodec_decode_stats(acc[s], src->hist[s],
			    strlen(src->hist[s]), &st, &why) != 0)
				return bad("%s: the interval at %.3fs: %s: %s",
				    m->in[i].path, src->start_s, series_name(s),
				    why);
			if (st.total > 0 && (src->max[s] < st.max_lo ||
			    src->max[s] > st.max_hi))
				return bad("%s: the interval at %.3fs: the %s "
				    "max does not match its histogram",
				    m->in[i].path, src->start_s, series_name(s));
			if (src->max[s] > iv->max[s])
				iv->max[s] = src->max[s];
			any[s] = 1;
		}
	}
	for (s = 0; s < NSERIES; s++) {
		if (!any[s])
			continue;
		acc[s]->max = iv->max[s];
		if ((iv->hist[s] = hcodec_encode_text(acc[s])) == NULL)
			return bad("out of memory");
	}
	return 0;
}

/* Intervals line up by their start from each run's own start: with one
 * --start-at that is the same moment on every host. */
static int
merge_timelines(struct merge *m, unsigned mask)
{
	struct hist	*acc[NSERIES];
	double		*keys, len0 = -1;
	size_t		 nkeys = 0, i, j, *cursor;
	int		 s, rv = 0, warned = 0;

	for (i = 0, j = 0; i < m->n; i++)
		j += m->in[i].tl->n;
	keys = xcalloc(j + 1, sizeof *keys);
	cursor = xcalloc(m->n, sizeof *cursor);
	for (i = 0; i < m->n; i++) {
		qsort(m->in[i].tl->iv, m->in[i].tl->n,
		    sizeof m->in[i].tl->iv[0], cmp_start);
		for (j = 0; j < m->in[i].tl->n; j++) {
			keys[nkeys++] = m->in[i].tl->iv[j].start_s;
			if (len0 < 0 && j + 1 < m->in[i].tl->n)
				len0 = m->in[i].tl->iv[j].length_s;
			else if (!warned && j + 1 < m->in[i].tl->n &&
			    fabs(m->in[i].tl->iv[j].length_s - len0) > 1e-3) {
				warn("%s: intervals of %.3fs, others of %.3fs",
				    m->in[i].path, m->in[i].tl->iv[j].length_s,
				    len0);
				warned = 1;
			}
		}
	}
	qsort(keys, nkeys, sizeof *keys, cmp_double);
	for (s = 0; s < NSERIES; s++)
		acc[s] = xmalloc(sizeof *acc[s]);
	m->run.tl = timeline_new(mask);
	for (i = 0; i < nkeys && rv == 0; i++) {
		if (i > 0 && keys[i] - keys[i - 1] < 5e-4)
			continue;
		rv = merge_interval(m, m->run.tl, keys[i], cursor, acc);
	}
	for (s = 0; s < NSERIES; s++)
		free(acc[s]);
	free(keys);
	free(cursor);
	return rv;
}

/* A tag for the sum: the runs' tags joined with '+' while that is short. */
static void
merged_tag(struct merge *m)
{
	size_t	i, len = 0;

	m->tag[0] = '\0';
	for (i = 0; i < m->n; i++)
		len += strlen(m->in[i].tag) + 1;
	if (len > sizeof m->tag) {
		snprintf(m->tag, sizeof m->tag, "merged-%zu", m->n);
		return;
	}
	for (i = 0; i < m->n; i++) {
		if (i > 0)
			strcat(m->tag, "+");
		strcat(m->tag, m->in[i].tag);
	}
}

static void
merged_settings(struct merge *m)
{
	const struct input	*ref = reference(m);
	struct opts		*o = &m->o;
	size_t			 i;

	memset(o, 0, sizeof *o);
	merged_tag(m);
	o->tag = m->tag;
	o->mode = MODE_ECHO;
	if (ref != NULL)
		(void)mode_of(ref->mode, &o->mode);
	m->target = xstrdup(ref != NULL ? ref->target : "unknown");
	m->address = xstrdup(ref != NULL ? ref->address : "unknown");
	o->size = ref != NULL ? (size_t)ref->message_size : 0;
	o->depth = ref != NULL ? ref->pipeline : 1;
	o->verify = 1;
	o->start_at_ns = (uint64_t)llround(m->in[0].start_at_s * NS);
	o->hlog_interval_us = 1000000;
	if (ref != NULL) {
		o->connect_timeout_us = (uint64_t)llround(
		    ref->connect_timeout_s * 1e6);
		o->require_all = ref->require_all;
	}
	for (i = 0; i < m->n; i++) {
		const struct input *in = &m->in[i];

		if (in->known && strcmp(in->target, m->target) != 0) {
			free(m->target);
			m->target = xstrdup("several");
		}
		if (in->known && strcmp(in->address, m->address) != 0) {
			free(m->address);
			m->address = xstrdup("several");
		}
		o->connections += in->connections;
		o->threads += in->threads;
		o->rate += in->rate;
		o->connect_rate += in->connect_rate;
		o->verify &= in->verify;
		if ((uint64_t)llround(in->start_at_s * NS) != o->start_at_ns)
			o->start_at_ns = 0;
		if ((uint64_t)(in->warmup_s * 1e6) > o->warmup_us)
			o->warmup_us = (uint64_t)llround(in->warmup_s * 1e6);
	}
	o->target = m->target;
}

static int
add_up(struct merge *m)
{
	struct run	*r = &m->run;
	struct result	*res = &r->res;
	struct totals	 tot[NSERIES];
	double		 start, length;
	size_t		 i;
	int		 k;

	memset(tot, 0, sizeof tot);
	merged_settings(m);
	r->o = &m->o;
	r->rate = m->o.rate;
	snprintf(r->target, sizeof r->target, "%s", m->address);
	hist_init(&res->lat);
	hist_init(&res->svc);
	connect_stats_init(&res->conn);
	/* A phase of no length still has a start: 0 means none. */
	res->conn.start_ns = res->conn.end_ns = 1;
	hist_init(&res->reconn.lat);
	for (i = 0; i < m->n; i++) {
		counters_add(&res->c, &m->in[i].c);
		if (add_series(res, &m->in[i], &r->series, tot) != 0)
			return -1;
		add_phase(r, &m->in[i]);
		res->loaded |= m->in[i].loaded;
		if (m->in[i].start_delay_s > res->start_delay_s)
			res->start_delay_s = m->in[i].start_delay_s;
		if (m->in[i].connect_start_s > 0 && (r->phase_wall_ns == 0 ||
		    (uint64_t)llround(m->in[i].connect_start_s * NS) <
		    r->phase_wall_ns))
			r->phase_wall_ns = (uint64_t)llround(
			    m->in[i].connect_start_s * NS);
	}
	set_totals(res, tot);
	for (k = 0; k < ERR_MAX; k++)
		res->errors += res->c.errors[k];
	/* Closed-loop runs carry no service series: there the service time
	 * is the response time (a request goes when it is due). */
	if ((r->series & SERIES_BIT(SERIES_SERVICE)) == 0)
		memcpy(&res->svc, &res->lat, sizeof res->svc);
	common_window(m, &start, &length);
	res->duration_s = length;
	r->measure_wall_ns = (uint64_t)llround(start * NS);
	return merge_timelines(m, r->series);
}

/* ---- output ---- */

/* Outputs go to PATH.tmp first and are renamed when complete. */
struct out {
	const char	*path;
	char		*tmp;
	FILE		*f;
};

static int
out_open(struct out *o, const char *path)
{
	memset(o, 0, sizeof *o);
	o->path = path;
	if (path == NULL)
		return 0;
	if (strcmp(path, "-") == 0) {
		o->f = stdout;
		return 0;
	}
	xasprintf(&o->tmp, "%s.tmp.%ld", path, (long)getpid());
	if ((o->f = fopen(o->tmp, "w")) == NULL) {
		bad("%s: %s", o->tmp, strerror(errno));
		free(o->tmp);
		o->tmp = NULL;
		return -1;
	}
	return 0;
}

/* ok: all writes succeeded. Renames into place, or removes. */
static int
out_close(struct out *o, int ok)
{
	int	rv = 0;

	if (o->f == NULL)
		return 0;
	if (o->f == stdout) {
		if (fflush(stdout) != 0 || ferror(stdout))
			rv = bad("writing the merged result to stdout failed");
		return ok ? rv : -1;
	}
	if (ferror(o->f) || fclose(o->f) != 0 || !ok) {
		if (ok)
			bad("writing %s failed", o->path);
		unlink(o->tmp);
		rv = -1;
	} else if (rename(o->tmp, o->path) != 0) {
		bad("%s: %s", o->path, strerror(errno));
		unlink(o->tmp);
		rv = -1;
	}
	free(o->tmp);
	o->f = NULL;
	return rv;
}

static int
write_csv(FILE *f, const struct merge *m)
{
	const struct timeline	*tl = m->run.tl;
	struct interval		 iv;
	const char		*why;
	size_t			 i;

	iv.lat = new_hist();
	iv.svc = NULL;
	iv.tag = m->tag;
	report_csv_header(f);
	for (i = 0; i < tl->n; i++) {
		hist_init(iv.lat);
		if (tl->iv[i].hist[SERIES_RESPONSE] != NULL) {
			(void)hcodec_decode_text(iv.lat,
			    tl->iv[i].hist[SERIES_RESPONSE],
			    strlen(tl->iv[i].hist[SERIES_RESPONSE]), &why);
			iv.lat->max = tl->iv[i].max[SERIES_RESPONSE];
		}
		iv.second = i + 1;
		iv.length_s = tl->iv[i].length_s;
		iv.c = tl->iv[i].c;
		report_csv_row(f, &iv);
	}
	free(iv.lat);
	return ferror(f) ? -1 : 0;
}

static int
write_hlog(FILE *f, struct merge *m)
{
	struct run		*r = &m->run;
	struct hlog_info	 in;
	struct hlog_totals	 t;
	size_t			 i;
	int			 rv;

	r->hlog = hlog_writer_new(f, 1, r->series);
	memset(&in, 0, sizeof in);
	in.tag = m->tag;
	in.start_wall_ns = r->measure_wall_ns;
	in.mode = mode_name(m->o.mode);
	in.target = m->target;
	in.address = m->address;
	in.message_size = m->o.size;
	in.connections = m->o.connections;
	in.threads = m->o.threads;
	in.pipeline = m->o.depth;
	in.rate = m->o.rate;
	in.warmup_s = (double)m->o.warmup_us / 1e6;
	in.base_wall_ns = r->phase_wall_ns;
	rv = hlog_write_header(r->hlog, &in);
	if (rv == 0 && r->phase_wall_ns != 0 && r->res.conn.lat.total > 0)
		rv = hlog_write_once(r->hlog, SERIES_CONNECT, r->phase_wall_ns,
		    (double)(r->res.conn.end_ns - r->res.conn.start_ns) / NS,
		    &r->res.conn.lat);
	for (i = 0; rv == 0 && i < r->tl->n; i++)
		rv = hlog_write_interval(r->hlog, &r->tl->iv[i]);
	t.duration_s = r->res.duration_s;
	t.c = r->res.c;
	if (hlog_write_finish(r->hlog, &t) != 0)
		rv = -1;
	hlog_writer_free(r->hlog);
	r->hlog = NULL;
	return rv;
}

static int
write_outputs(struct merge *m)
{
	struct out	json, csv, hgrm, hlog;
	FILE		*summary = stdout;
	int		 ok = 1, rv = 0;

	if (out_open(&json, m->json_path) || out_open(&csv, m->csv_path) ||
	    out_open(&hgrm, m->hgrm_path) || out_open(&hlog, m->hlog_path)) {
		out_close(&json, 0);
		out_close(&csv, 0);
		out_close(&hgrm, 0);
		out_close(&hlog, 0);
		return -1;
	}
	if (json.f == stdout || csv.f == stdout || hgrm.f == stdout ||
	    hlog.f == stdout)
		summary = stderr;
	if (!m->quiet) {
		report_text(summary, &m->run);
		fflush(summary);
	}
	if (json.f != NULL)
		report_json(json.f, &m->run);
	if (csv.f != NULL && write_csv(csv.f, m) != 0)
		ok = 0;
	if (hgrm.f != NULL && report_hgrm(hgrm.f, &m->run) != 0)
		ok = 0;
	if (hlog.f != NULL && write_hlog(hlog.f, m) != 0)
		ok = 0;
	if (out_close(&json, ok) || out_close(&csv, ok) ||
	    out_close(&hgrm, ok) || out_close(&hlog, ok))
		rv = -1;
	return rv;
}

/* ---- command line ---- */

enum {
	MOPT_JSON = 256,
	MOPT_CSV,
	MOPT_HGRM,
	MOPT_HLOG,
};

static const struct option merge_longopts[] = {
	{ "json",	required_argument, NULL, MOPT_JSON },
	{ "csv",	required_argument, NULL, MOPT_CSV },
	{ "hgrm",	required_argument, NULL, MOPT_HGRM },
	{ "hlog",	required_argument, NULL, MOPT_HLOG },
	{ "quiet",	no_argument,	   NULL, 'q' },
	{ "help",	no_argument,	   NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

static void
merge_usage(FILE *f)
{
	fprintf(f,
"usage: echoload merge [-q] [--json file] [--csv file] [--hgrm file]\n"
"                [--hlog file] file...\n"
"  Adds the results of runs (echoload --json results or --hlog interval\n"
"  logs, in any mix) exactly and reports the sum as one run. -q: no\n"
"  summary. Outputs as for a run; - is standard output.\n");
}

static int
is_stdout(const char *p)
{
	return p != NULL && strcmp(p, "-") == 0;
}

static int
parse(struct merge *m, int argc, char **argv)
{
	int	ch;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":hq", merge_longopts,
	    NULL)) != -1) {
		switch (ch) {
		case MOPT_JSON:
			m->json_path = optarg;
			break;
		case MOPT_CSV:
			m->csv_path = optarg;
			break;
		case MOPT_HGRM:
			m->hgrm_path = optarg;
			break;
		case MOPT_HLOG:
			m->hlog_path = optarg;
			break;
		case 'q':
			m->quiet = 1;
			break;
		case 'h':
			merge_usage(stdout);
			return 1;
		case ':':
			return bad("option %s needs a value", argv[optind - 1]);
		default:
			return bad("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind == argc)
		return bad("no files to merge");
	if (is_stdout(m->json_path) + is_stdout(m->csv_path) +
	    is_stdout(m->hgrm_path) + is_stdout(m->hlog_path) > 1)
		return bad("only one of --json, --csv, --hgrm and --hlog can "
		    "write to -");
	return 0;
}

int
merge_main(int argc, char **argv)
{
	struct merge	*m;
	size_t		 i;
	int		 rv, status = 2;

	/* The run's per-second slots make it megabytes: not on the stack. */
	m = xcalloc(1, sizeof *m);
	if ((rv = parse(m, argc, argv)) != 0) {
		if (rv < 0)
			merge_usage(stderr);
		free(m);
		return rv < 0 ? 2 : 0;
	}
	m->n = (size_t)(argc - optind);
	m->in = xcalloc(m->n, sizeof *m->in);
	for (i = 0; i < m->n; i++) {
		m->in[i].path = argv[optind + (int)i];
		if (read_input(&m->in[i]) != 0)
			goto done;
	}
	if (check_compatible(m) != 0 || add_up(m) != 0)
		goto done;
	status = write_outputs(m) == 0 ? 0 : 1;
done:
	for (i = 0; i < m->n; i++)
		input_free(&m->in[i]);
	free(m->in);
	free(m->target);
	free(m->address);
	timeline_free(m->run.tl);
	free(m);
	return status;
}
