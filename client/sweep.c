/*
 * sweep.c: "how much can it take?". A rate sweep runs one open-loop step
 * per rate of -R FROM:TO:STEP (or --steps N, each rate a constant factor
 * above the last) and stops once a step is clearly past saturation. An SLO
 * search (--slo) looks for the highest rate whose coordinated-omission
 * corrected response percentiles meet the SLO with the achieved rate
 * within 1% of the target: it doubles the rate from FROM until a probe
 * fails (or TO holds), then bisects between the last rate that met it and
 * the first that did not until the two are --slo-precision apart.
 *
 * Every step is a full measured step of run.c (warm-up, then -d measured)
 * on the same connections; this file owns the choice of rates, the
 * verdicts, and the table and JSON that report them.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "echoload.h"
#include "hcodec.h"
#include "hist.h"
#include "parse.h"
#include "report.h"
#include "run.h"
#include "sweep.h"
#include "util.h"

/* A step is past saturation below this share of its target. */
#define SATURATED	0.90
/* A step holds (and an SLO probe may pass) at this share or above. */
#define HELD		0.99
/* The search's growth factor before the first failing probe. */
#define GROWTH		2.0
#define MAX_PROBES	64

static int
fail(char *err, size_t len, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- option syntax ---- */

int
sweep_parse_range(struct opts *o, const char *arg, char *err, size_t len)
{
	char		 buf[128], *part[3], *t;
	const char	*names[] = { "FROM", "TO", "STEP" };
	double		 v[3];
	const char	*why = NULL;
	int		 n = 0, i;

	if (strlen(arg) >= sizeof buf)
		return fail(err, len, "-R %s: too long", arg);
	memcpy(buf, arg, strlen(arg) + 1);
	/* strtok would merge "1k::2k" into two parts: split by hand. */
	part[n++] = buf;
	for (t = buf; *t != '\0'; t++) {
		if (*t != ':')
			continue;
		*t = '\0';
		if (n == 3)
			return fail(err, len, "-R %s: too many parts "
			    "(FROM:TO or FROM:TO:STEP)", arg);
		part[n++] = t + 1;
	}
	for (i = 0; i < n; i++) {
		if (*part[i] == '\0')
			return fail(err, len, "-R %s: %s is empty", arg,
			    names[i]);
		if (opts_parse_rate(part[i], &v[i], &why) != 0)
			return fail(err, len, "-R %s: %s %s: %s", arg,
			    names[i], part[i], why);
	}
	if (v[1] <= v[0])
		return fail(err, len, "-R %s: TO must be above FROM", arg);
	o->rate = v[0];
	o->rate_to = v[1];
	o->rate_step = 0;
	o->sweep = SWEEP_GEOMETRIC;	/* refined by sweep_check */
	if (n == 3) {
		if ((v[1] - v[0]) / v[2] + 1 > MAX_STEPS + 1e-9)
			return fail(err, len, "-R %s: more than %d steps", arg,
			    MAX_STEPS);
		o->rate_step = v[2];
		o->sweep = SWEEP_LINEAR;
	}
	return 0;
}

/* A latency limit: a duration that says its unit ("5" alone is refused:
 * seconds are rarely what an SLO means). */
static int
slo_limit(const char *s, uint64_t *us, const char **why)
{
	size_t	n = strlen(s);

	if (n == 0) {
		*why = "no limit after <";
		return -1;
	}
	if (isdigit((unsigned char)s[n - 1]) || s[n - 1] == '.') {
		*why = "the limit needs a unit (us, ms or s)";
		return -1;
	}
	if (parse_duration(s, us, why) != 0)
		return -1;
	if (*us == 0) {
		*why = "the limit must be above 0";
		return -1;
	}
	return 0;
}

static int
slo_percentile(const char *s, double *p, const char **why)
{
	char	*end;

	if (*s != 'p' || !isdigit((unsigned char)s[1])) {
		*why = "unknown term (pNN<TIME or errors<N%)";
		return -1;
	}
	errno = 0;
	*p = strtod(s + 1, &end);
	if (errno != 0 || *end != '\0') {
		*why = "not a percentile (p50, p99, p99.9, ...)";
		return -1;
	}
	if (*p <= 0 || *p >= 100) {
		*why = "the percentile must be above 0 and below 100";
		return -1;
	}
	return 0;
}

/* errors<N%: the share of requests that may fail. */
static int
slo_errors(const char *s, double *frac, const char **why)
{
	char	*end;
	double	 v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno != 0 || strcmp(end, "%") != 0) {
		*why = "the error bound is a percentage (errors<0.1%)";
		return -1;
	}
	if (v <= 0 || v > 100) {
		*why = "the error bound must be above 0% and at most 100%";
		return -1;
	}
	*frac = v / 100.0;
	return 0;
}

static int
slo_term(struct slo *slo, char *term, const char **why)
{
	char	*lt, *name, *value;
	double	 p;

	while (isspace((unsigned char)*term))
		term++;
	for (lt = term + strlen(term); lt > term &&
	    isspace((unsigned char)lt[-1]); lt--)
		lt[-1] = '\0';
	if ((lt = strchr(term, '<')) == NULL) {
		*why = "no '<' (pNN<TIME or errors<N%)";
		return -1;
	}
	*lt = '\0';
	name = term;
	value = lt + 1;
	if (*value == '=')
		value++;	/* "<=" reads as "<": 3 digits cannot tell */
	if (strcmp(name, "errors") == 0) {
		if (slo->has_error_bound) {
			*why = "errors given twice";
			return -1;
		}
		slo->has_error_bound = 1;
		return slo_errors(value, &slo->max_error_rate, why);
	}
	if (slo_percentile(name, &p, why) != 0)
		return -1;
	if (slo->nterms == SLO_MAX_TERMS) {
		*why = "at most 4 percentile bounds";
		return -1;
	}
	slo->terms[slo->nterms].percentile = p;
	if (slo_limit(value, &slo->terms[slo->nterms].limit_us, why) != 0)
		return -1;
	slo->nterms++;
	return 0;
}

int
slo_parse(struct slo *slo, const char *arg, char *err, size_t len)
{
	char		 buf[256], *term, *next;
	const char	*why = NULL;

	memset(slo, 0, sizeof *slo);
	if (*arg == '\0')
		return fail(err, len, "--slo needs a value (e.g. 'p99<5ms')");
	if (strlen(arg) >= sizeof buf)
		return fail(err, len, "--slo %s: too long", arg);
	memcpy(buf, arg, strlen(arg) + 1);
	for (term = buf; term != NULL; term = next) {
		if ((next = strchr(term, ',')) != NULL)
			*next++ = '\0';
		if (slo_term(slo, term, &why) != 0)
			return fail(err, len, "--slo %s: %s", arg, why);
	}
	if (slo->nterms == 0)
		return fail(err, len, "--slo %s: needs a percentile bound "
		    "(e.g. p99<5ms)", arg);
	slo->text = arg;
	return 0;
}

int
sweep_parse_precision(struct opts *o, const char *arg, char *err, size_t len)
{
	char	*end;
	double	 v;

	errno = 0;
	v = strtod(arg, &end);
	if (end == arg || errno != 0 || (*end != '\0' &&
	    strcmp(end, "%") != 0))
		return fail(err, len, "--slo-precision %s: not a percentage "
		    "(e.g. 5%%)", arg);
	if (!(v >= 0.1 && v <= 50))
		return fail(err, len, "--slo-precision %s: out of range "
		    "(0.1%% to 50%%)", arg);
	o->slo_precision = v / 100.0;
	return 0;
}

int
sweep_check(struct opts *o, char *err, size_t len)
{
	int	ranged = o->rate_to > 0 && o->sweep != SWEEP_NONE;

	if (!ranged) {
		o->rate_to = 0;
		if (o->steps > 0)
			return fail(err, len, "--steps needs -R FROM:TO");
		if (o->slo.text != NULL)
			return fail(err, len, "--slo needs -R FROM:TO");
		o->sweep = SWEEP_NONE;
		return 0;
	}
	if (o->slo.text != NULL) {
		if (o->sweep == SWEEP_LINEAR)
			return fail(err, len, "--slo takes -R FROM:TO, "
			    "without a STEP");
		if (o->steps > 0)
			return fail(err, len, "--slo and --steps exclude each "
			    "other");
		o->sweep = SWEEP_SLO;
	} else if (o->sweep == SWEEP_LINEAR) {
		if (o->steps > 0)
			return fail(err, len, "--steps and -R FROM:TO:STEP "
			    "exclude each other");
	} else if (o->steps == 0)
		return fail(err, len, "-R FROM:TO needs a STEP "
		    "(-R FROM:TO:STEP), --steps N or --slo");
	if (o->mode != MODE_ECHO)
		return fail(err, len, "-R FROM:TO needs echo mode");
	if (o->requests != 0)
		return fail(err, len, "-n cannot bound a sweep: each step "
		    "lasts -d");
	if (o->duration_us == 0)
		return fail(err, len, "-R FROM:TO needs -d");
	if (o->hgrm_path != NULL)
		return fail(err, len, "--hgrm holds one distribution and a "
		    "sweep has one per step: use --json");
	return 0;
}

/* ---- the steps ---- */

struct step {
	unsigned	 index;		/* 1, 2, ... in the order run */
	double		 target;
	double		 achieved;
	double		 duration_s;
	struct counters	 c;
	uint64_t	 errors;
	struct hist	*lat;
	struct hist	*svc;
	int		 held;		/* achieved within 1%, no errors */
	int		 saturated;	/* below 90%, or errors: stop */
	int		 meets;		/* SLO search: the probe passed */
	char		 why[160];	/* SLO search: why it failed */
};

struct sweep {
	struct run	*r;
	const struct opts *o;
	struct step	*steps;
	unsigned	 nsteps;
	unsigned	 cap;
	int		 stopped;	/* ^C before the end */
	/* A sweep's outcome. */
	struct step	*last_held;
	struct step	*first_saturated;
	/* A search's outcome: lo met the SLO, hi did not. */
	struct step	*lo;
	struct step	*hi;
};

static double
per_second(uint64_t n, double s)
{
	return s > 0 ? (double)n / s : 0.0;
}

static double
error_rate(const struct step *st)
{
	uint64_t	tried = st->c.requests + st->errors;

	return tried > 0 ? (double)st->errors / (double)tried : 0.0;
}

/*
 * The rate the server kept up: the rate at which the step's replies came
 * in, from the middle of the first few to the middle of the last few, but
 * never more than the requests over the window. Requests over the window
 * alone count the replies owed at its end, which come in after it, and
 * show a saturated server up to -c * -P / -d faster than it is; the reply
 * rate alone shows a server catching up after a stall faster than it was
 * asked to go.
 */
static double
achieved_rate(const struct result *res)
{
	double	asked = per_second(res->c.requests, res->duration_s);

	if (res->delivered_per_s > 0 && res->delivered_per_s < asked)
		return res->delivered_per_s;
	return asked;
}

static struct step *
take_step(struct sweep *sw, double rate)
{
	struct result	*res = &sw->r->res;
	struct step	*st;

	if (run_step(sw->r, rate) != 0)
		return NULL;
	if (sw->nsteps == sw->cap) {
		sw->cap = sw->cap ? sw->cap * 2 : 16;
		sw->steps = xrealloc(sw->steps, sw->cap * sizeof *sw->steps);
	}
	st = &sw->steps[sw->nsteps];
	memset(st, 0, sizeof *st);
	st->index = ++sw->nsteps;
	st->target = rate;
	st->duration_s = res->duration_s;
	st->c = res->c;
	st->errors = res->errors;
	st->achieved = achieved_rate(res);
	st->lat = xmalloc(sizeof *st->lat);
	st->svc = xmalloc(sizeof *st->svc);
	memcpy(st->lat, &res->lat, sizeof *st->lat);
	memcpy(st->svc, &res->svc, sizeof *st->svc);
	st->held = st->achieved >= rate * HELD && st->errors == 0;
	st->saturated = st->achieved < rate * SATURATED || st->errors > 0;
	if (run_stop_requested()) {
		/* Cut short: its figures are shown, but it proves nothing. */
		sw->stopped = 1;
		st->held = st->saturated = 0;
	}
	return st;
}

/* The n-th rate of a sweep (0-based); 0 when past TO. */
static double
sweep_rate(const struct opts *o, unsigned n)
{
	double	rate;

	if (o->sweep == SWEEP_LINEAR) {
		rate = o->rate + o->rate_step * n;
		/* 10k:200k:10k ends on 200k despite rounding. */
		if (rate > o->rate_to * (1 + 1e-9))
			return 0;
		return rate;
	}
	if (n >= o->steps)
		return 0;
	if (n == o->steps - 1)
		return o->rate_to;
	return o->rate * pow(o->rate_to / o->rate, (double)n /
	    (double)(o->steps - 1));
}

static void
run_sweep(struct sweep *sw, FILE *out)
{
	struct step	*st;
	double		 rate;
	unsigned	 n;

	for (n = 0; (rate = sweep_rate(sw->o, n)) > 0; n++) {
		if ((st = take_step(sw, rate)) == NULL)
			return;
		report_step_row(out, st->index, st->target, st->achieved,
		    st->errors, st->lat, st->svc, sw->stopped ? "cut short" :
		    st->held ? "held" : st->saturated ? "saturated" : "missed");
		if (st->held)
			sw->last_held = st;
		if (st->saturated || sw->stopped) {
			if (st->saturated)
				sw->first_saturated = st;
			return;
		}
	}
}

/* Add one reason to a failed probe's why. */
static void
why_add(struct step *st, const char *fmt, ...)
{
	size_t	n = strlen(st->why);
	va_list	ap;

	if (n > 0 && n + 2 < sizeof st->why) {
		memcpy(st->why + n, "; ", 3);
		n += 2;
	}
	va_start(ap, fmt);
	vsnprintf(st->why + n, sizeof st->why - n, fmt, ap);
	va_end(ap);
}

/* Does the probe meet the SLO? If not, why gives every reason. */
static int
slo_judge(const struct slo *slo, struct step *st)
{
	char		 a[32], b[32];
	uint64_t	 v;
	unsigned	 i;

	st->why[0] = '\0';
	if (st->achieved < st->target * HELD)
		why_add(st, "achieved %.1f%% of the target",
		    100.0 * st->achieved / st->target);
	if (slo->has_error_bound ? error_rate(st) >= slo->max_error_rate :
	    st->errors > 0)
		why_add(st, "errors %.3g%% (%llu)", 100.0 * error_rate(st),
		    (unsigned long long)st->errors);
	if (st->lat->total == 0)
		why_add(st, "no replies");
	for (i = 0; i < slo->nterms && st->lat->total > 0; i++) {
		v = hist_percentile(st->lat, slo->terms[i].percentile);
		if (v >= slo->terms[i].limit_us)
			why_add(st, "p%g %s, not below %s",
			    slo->terms[i].percentile,
			    report_duration(a, sizeof a, v),
			    report_duration(b, sizeof b,
			    slo->terms[i].limit_us));
	}
	return st->why[0] == '\0';
}

static struct step *
probe(struct sweep *sw, double rate, FILE *out)
{
	struct step	*st;

	if ((st = take_step(sw, rate)) == NULL)
		return NULL;
	st->meets = slo_judge(&sw->o->slo, st);
	if (sw->stopped) {
		st->meets = 0;
		snprintf(st->why, sizeof st->why, "cut short by a signal");
	}
	report_step_row(out, st->index, st->target, st->achieved, st->errors,
	    st->lat, st->svc, st->meets ? "meets" : st->why);
	return st;
}

/* Are lo and hi close enough to stop? */
static int
precise(const struct sweep *sw, double lo, double hi)
{
	return (hi - lo) / lo <= sw->o->slo_precision;
}

static void
run_search(struct sweep *sw, FILE *out)
{
	const struct opts	*o = sw->o;
	struct step		*st;
	double			 rate = o->rate, next;

	/* Grow until a probe fails or TO holds. */
	for (;;) {
		if ((st = probe(sw, rate, out)) == NULL || sw->stopped)
			return;
		if (!st->meets) {
			sw->hi = st;
			break;
		}
		sw->lo = st;
		if (rate >= o->rate_to)
			return;
		next = rate * GROWTH;
		rate = next > o->rate_to ? o->rate_to : next;
	}
	if (sw->lo == NULL)
		return;		/* not met even at FROM */
	/* Bisect [lo, hi). */
	while (!precise(sw, sw->lo->target, sw->hi->target) &&
	    sw->nsteps < MAX_PROBES) {
		rate = (sw->lo->target + sw->hi->target) / 2;
		if ((st = probe(sw, rate, out)) == NULL || sw->stopped)
			return;
		if (st->meets)
			sw->lo = st;
		else
			sw->hi = st;
	}
}

/* ---- what it found ---- */

static void
rate_text(char *buf, size_t len, double rate)
{
	snprintf(buf, len, "%.1f/s", rate);
}

static void
sweep_verdict_text(FILE *f, const struct sweep *sw)
{
	char	a[32], b[32];

	if (sw->last_held != NULL) {
		rate_text(a, sizeof a, sw->last_held->target);
		fprintf(f, "last step that held: %u (%s)", sw->last_held->index,
		    a);
	} else
		fprintf(f, "no step held (achieved within 1%% of its target, "
		    "no errors)");
	if (sw->first_saturated != NULL) {
		rate_text(b, sizeof b, sw->first_saturated->target);
		fprintf(f, "; stopped at step %u (%s): past saturation, "
		    "achieved %.1f%%%s", sw->first_saturated->index, b,
		    100.0 * sw->first_saturated->achieved /
		    sw->first_saturated->target,
		    sw->first_saturated->errors > 0 ? " with errors" : "");
	} else if (sw->stopped)
		fprintf(f, "; stopped by a signal");
	fprintf(f, "\n");
}

static void
search_verdict_text(FILE *f, const struct sweep *sw)
{
	const struct opts	*o = sw->o;
	char			 a[32], b[32];

	fprintf(f, "SLO %s: ", o->slo.text);
	if (sw->lo == NULL && sw->hi != NULL) {
		rate_text(a, sizeof a, o->rate);
		fprintf(f, "not met even at FROM %s (%s)\n", a, sw->hi->why);
		return;
	}
	if (sw->lo == NULL) {
		fprintf(f, "no answer: stopped before the first probe ended\n");
		return;
	}
	rate_text(a, sizeof a, sw->lo->target);
	if (sw->hi == NULL && sw->stopped) {
		fprintf(f, "met up to %s; stopped by a signal before a probe "
		    "failed\n", a);
		return;
	}
	if (sw->hi == NULL) {
		fprintf(f, "met at %s, the top of the range (TO): the "
		    "capacity may be higher\n", a);
		return;
	}
	rate_text(b, sizeof b, sw->hi->target);
	fprintf(f, "met up to %s; %s fails (%s); known to %.1f%%%s\n", a, b,
	    sw->hi->why, 100.0 * (sw->hi->target - sw->lo->target) /
	    sw->lo->target, sw->stopped ? ", stopped by a signal" :
	    !precise(sw, sw->lo->target, sw->hi->target) ?
	    ", probe limit reached" : "");
}

/* The step's whole distributions, in HdrHistogram's compressed V2
 * encoding (base64), as a run's JSON carries them. */
static void
json_step_histograms(FILE *f, const struct step *st)
{
	char	*lat, *svc;

	lat = hcodec_encode_text(st->lat);
	svc = hcodec_encode_text(st->svc);
	fprintf(f, ",\n     \"histograms\": {");
	if (lat != NULL)
		fprintf(f, "\"response\": \"%s\"", lat);
	if (svc != NULL)
		fprintf(f, "%s\"service\": \"%s\"", lat != NULL ? ", " : "",
		    svc);
	fprintf(f, "}");
	free(lat);
	free(svc);
}

static void
json_step(FILE *f, const struct sweep *sw, const struct step *st)
{
	int	i;

	fprintf(f, "    {\"step\": %u, \"target_per_s\": %.3f, "
	    "\"achieved_per_s\": %.3f, \"duration_s\": %.6f, "
	    "\"requests\": %llu, \"errors\": %llu, \"error_counts\": {",
	    st->index, st->target, st->achieved, st->duration_s,
	    (unsigned long long)st->c.requests,
	    (unsigned long long)st->errors);
	for (i = 0; i < ERR_MAX; i++)
		fprintf(f, "%s\"%s\": %llu", i ? ", " : "", err_name(i),
		    (unsigned long long)st->c.errors[i]);
	fprintf(f, "},\n     \"held\": %s, \"saturated\": %s",
	    st->held ? "true" : "false", st->saturated ? "true" : "false");
	if (sw->o->sweep == SWEEP_SLO) {
		fprintf(f, ", \"meets_slo\": %s, \"why\": ",
		    st->meets ? "true" : "false");
		if (st->meets)
			fprintf(f, "null");
		else
			report_json_string(f, st->why);
	}
	fprintf(f, ",\n     \"latency_us\": ");
	report_json_hist(f, st->lat);
	fprintf(f, ",\n     \"service_latency_us\": ");
	report_json_hist(f, st->svc);
	json_step_histograms(f, st);
	fprintf(f, "}");
}

static void
json_rate_or_null(FILE *f, const struct step *st)
{
	if (st != NULL)
		fprintf(f, "%.3f", st->target);
	else
		fprintf(f, "null");
}

static void
json_verdict(FILE *f, const struct sweep *sw)
{
	const struct slo	*slo = &sw->o->slo;
	unsigned		 i;

	fprintf(f, "  \"verdict\": {");
	if (sw->o->sweep != SWEEP_SLO) {
		fprintf(f, "\"last_held_step\": ");
		if (sw->last_held != NULL)
			fprintf(f, "%u", sw->last_held->index);
		else
			fprintf(f, "null");
		fprintf(f, ", \"last_held_per_s\": ");
		json_rate_or_null(f, sw->last_held);
		fprintf(f, ", \"saturated_step\": ");
		if (sw->first_saturated != NULL)
			fprintf(f, "%u", sw->first_saturated->index);
		else
			fprintf(f, "null");
		fprintf(f, ", \"saturated_per_s\": ");
		json_rate_or_null(f, sw->first_saturated);
	} else {
		fprintf(f, "\"slo\": ");
		report_json_string(f, slo->text);
		fprintf(f, ", \"bounds\": [");
		for (i = 0; i < slo->nterms; i++)
			fprintf(f, "%s{\"percentile\": %g, \"limit_us\": %llu}",
			    i ? ", " : "", slo->terms[i].percentile,
			    (unsigned long long)slo->terms[i].limit_us);
		fprintf(f, "], \"max_error_rate\": ");
		if (slo->has_error_bound)
			fprintf(f, "%g", slo->max_error_rate);
		else
			fprintf(f, "0");
		fprintf(f, ", \"precision\": %g, \"met\": %s, "
		    "\"met_at_from\": %s, \"answer_per_s\": ",
		    sw->o->slo_precision, sw->lo != NULL ? "true" : "false",
		    sw->lo != NULL ? "true" : sw->hi != NULL ? "false" :
		    "null");
		json_rate_or_null(f, sw->lo);
		fprintf(f, ", \"bracket_low_per_s\": ");
		json_rate_or_null(f, sw->lo);
		fprintf(f, ", \"bracket_high_per_s\": ");
		json_rate_or_null(f, sw->hi);
		fprintf(f, ", \"top_of_range\": %s",
		    sw->lo != NULL && sw->hi == NULL && !sw->stopped ? "true" :
		    "false");
	}
	fprintf(f, ", \"stopped\": %s}", sw->stopped ? "true" : "false");
}

static const char *
kind_name(enum sweep_kind k)
{
	switch (k) {
	case SWEEP_LINEAR:
		return "linear";
	case SWEEP_GEOMETRIC:
		return "geometric";
	case SWEEP_SLO:
		return "slo";
	default:
		return "none";
	}
}

static void
sweep_json(FILE *f, const struct sweep *sw)
{
	const struct opts	*o = sw->o;
	unsigned		 i;

	fprintf(f, "{\n");
	report_json_head(f, sw->r);
	fprintf(f, "  \"sweep\": {\"kind\": \"%s\", \"from_per_s\": %.3f, "
	    "\"to_per_s\": %.3f, ", kind_name(o->sweep), o->rate, o->rate_to);
	if (o->sweep == SWEEP_LINEAR)
		fprintf(f, "\"step_per_s\": %.3f, ", o->rate_step);
	if (o->sweep == SWEEP_GEOMETRIC)
		fprintf(f, "\"steps\": %u, ", o->steps);
	fprintf(f, "\"warmup_s\": %.6f, \"step_duration_s\": %.6f},\n",
	    (double)o->warmup_us / 1e6, (double)o->duration_us / 1e6);
	report_json_connect(f, sw->r);
	fprintf(f, ",\n");
	fprintf(f, "  \"steps\": [\n");
	for (i = 0; i < sw->nsteps; i++) {
		json_step(f, sw, &sw->steps[i]);
		fprintf(f, "%s\n", i + 1 < sw->nsteps ? "," : "");
	}
	fprintf(f, "  ],\n");
	json_verdict(f, sw);
	fprintf(f, "\n}\n");
}

static void
sweep_free(struct sweep *sw)
{
	unsigned	i;

	for (i = 0; i < sw->nsteps; i++) {
		free(sw->steps[i].lat);
		free(sw->steps[i].svc);
	}
	free(sw->steps);
}

int
sweep_run(struct run *r, FILE *out, FILE *json)
{
	struct sweep	sw;
	int		status = 0;

	memset(&sw, 0, sizeof sw);
	sw.r = r;
	sw.o = r->o;
	report_sweep_head(out, r);
	/* The steps hand back at every step's end; what counts over all of
	 * them (reconnects) comes once the workers are done. */
	if (sw.o->sweep == SWEEP_SLO) {
		run_search(&sw, out);
		search_verdict_text(out, &sw);
		if (sw.lo == NULL)
			status = 1;
	} else {
		run_sweep(&sw, out);
		sweep_verdict_text(out, &sw);
		if (sw.nsteps == 0)
			status = 1;
	}
	run_close(r);
	report_sweep_tail(out, r);
	fflush(out);
	if (json != NULL)
		sweep_json(json, &sw);
	sweep_free(&sw);
	return status;
}
