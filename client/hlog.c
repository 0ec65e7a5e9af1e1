/*
 * hlog.c: HdrHistogram interval logs, format version 1.3, as HdrHistogram's
 * HistogramLogWriter writes them and its readers (Java, C, JS, Go, Rust and
 * the log processors) read them:
 *
 *   #[Histogram log format version 1.3]
 *   #[StartTime: 1764628200.000 (seconds since epoch), Tue Dec 01 ...]
 *   #[BaseTime: 1764628200.000 (seconds since epoch)]
 *   "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
 *   Tag=response,0.000,1.000,0.412,HISTFAAA...
 *
 * Start times are seconds from BaseTime, the start of the measured phase.
 * echoload adds comment lines of its own that other readers skip: the
 * unit, the run's tag and settings, and its totals at the end, so that a
 * log alone is enough for `echoload merge`.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "echoload.h"
#include "hcodec.h"
#include "hlog.h"
#include "util.h"

#define LEGEND	"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\"," \
		"\"Interval_Compressed_Histogram\""
#define NS	1e9

struct hlog_writer {
	FILE		*f;
	uint64_t	 interval_s;
	unsigned	 series;
	int		 failed;
	double		 offset_s;	/* measured start from BaseTime */
	uint64_t	 base_ns;	/* BaseTime */
	/* The interval being filled: its first part, how many parts, and
	 * (from the second part on) the sum of their histograms. */
	const struct tl_interval *first;
	char		*first_hist[NSERIES];
	unsigned	 parts;
	double		 start_s;
	double		 length_s;
	uint64_t	 max[NSERIES];
	struct hist	*acc[NSERIES];
};

struct hlog_writer *
hlog_writer_new(FILE *f, uint64_t interval_s, unsigned series)
{
	struct hlog_writer	*w = xcalloc(1, sizeof *w);

	w->f = f;
	w->interval_s = interval_s;
	w->series = series;
	return w;
}

void
hlog_writer_free(struct hlog_writer *w)
{
	int	s;

	if (w == NULL)
		return;
	for (s = 0; s < NSERIES; s++) {
		free(w->acc[s]);
		free(w->first_hist[s]);
	}
	free(w);
}

static void
check(struct hlog_writer *w, int rv)
{
	if (rv < 0)
		w->failed = 1;
}

int
hlog_write_header(struct hlog_writer *w, const struct hlog_info *in)
{
	struct tm	tm;
	uint64_t	base = in->base_wall_ns ? in->base_wall_ns :
			    in->start_wall_ns;
	time_t		t = (time_t)(base / UINT64_C(1000000000));
	double		start = (double)in->start_wall_ns / NS;
	char		date[64];

	/* Lines are timed to the millisecond from a BaseTime written to the
	 * millisecond: round it there, and keep the offset exact. */
	base = base / 1000000 * 1000000;
	w->base_ns = base;
	w->offset_s = (double)(in->start_wall_ns - base) / NS;
	gmtime_r(&t, &tm);
	strftime(date, sizeof date, "%a %b %d %H:%M:%S UTC %Y", &tm);
	check(w, fprintf(w->f, "#[Logged with echoload %s]\n",
	    ECHOLOAD_VERSION));
	check(w, fprintf(w->f, "#[Histogram log format version 1.3]\n"));
	check(w, fprintf(w->f, "#[StartTime: %.3f (seconds since epoch), "
	    "%s]\n", (double)base / NS, date));
	check(w, fprintf(w->f, "#[BaseTime: %.3f (seconds since epoch)]\n",
	    (double)base / NS));
	check(w, fprintf(w->f, "#[Values are microseconds; Interval_Max is "
	    "milliseconds (max value divisor %.0f)]\n", HLOG_MAX_DIVISOR));
	check(w, fprintf(w->f, "#[echoload tag=%s mode=%s target=%s "
	    "address=%s message_size=%llu connections=%u threads=%u "
	    "pipeline=%u rate=%.3f warmup_s=%.6f start_unix_s=%.6f]\n",
	    in->tag, in->mode, in->target, in->address,
	    (unsigned long long)in->message_size, in->connections,
	    in->threads, in->pipeline, in->rate, in->warmup_s, start));
	check(w, fprintf(w->f, "%s\n", LEGEND));
	check(w, fflush(w->f));
	return w->failed ? -1 : 0;
}

static void
line(struct hlog_writer *w, int s, double start_s, double length_s,
    uint64_t max, const char *text)
{
	check(w, fprintf(w->f, "Tag=%s,%.3f,%.3f,%.3f,%s\n", series_name(s),
	    start_s, length_s, (double)max / HLOG_MAX_DIVISOR, text));
}

static void
write_line(struct hlog_writer *w, int s, const char *text)
{
	line(w, s, w->offset_s + w->start_s, w->length_s, w->max[s], text);
}

static char *
encode(const struct hist *h)
{
	char	*text;

	if ((text = hcodec_encode_text(h)) == NULL) {
		fprintf(stderr, "echoload: out of memory encoding a "
		    "histogram\n");
		abort();
	}
	return text;
}

/* One line per series for the interval filled so far. */
static void
flush_interval(struct hlog_writer *w)
{
	char	*text;
	int	 s;

	if (w->parts == 0)
		return;
	for (s = 0; s < NSERIES; s++) {
		if ((w->series & SERIES_BIT(s)) == 0)
			continue;
		if (w->parts == 1 && w->first_hist[s] != NULL) {
			write_line(w, s, w->first_hist[s]);
			continue;
		}
		text = encode(w->acc[s]);
		write_line(w, s, text);
		free(text);
	}
	check(w, fflush(w->f));
	for (s = 0; s < NSERIES; s++) {
		free(w->first_hist[s]);
		w->first_hist[s] = NULL;
	}
	w->parts = 0;
}

static void
add_part(struct hlog_writer *w, const struct tl_interval *iv)
{
	const char	*why;
	int		 s;

	for (s = 0; s < NSERIES; s++) {
		if ((w->series & SERIES_BIT(s)) == 0)
			continue;
		if (w->parts == 0) {
			w->max[s] = 0;
			w->first_hist[s] = iv->hist[s] != NULL ?
			    xstrdup(iv->hist[s]) : NULL;
			if (w->acc[s] == NULL)
				w->acc[s] = xmalloc(sizeof *w->acc[s]);
			hist_init(w->acc[s]);
		}
		if (iv->max[s] > w->max[s])
			w->max[s] = iv->max[s];
		/* Our own encoding: it decodes. */
		if (iv->hist[s] != NULL)
			(void)hcodec_decode_text(w->acc[s], iv->hist[s],
			    strlen(iv->hist[s]), &why);
	}
	if (w->parts == 0) {
		w->start_s = iv->start_s;
		w->length_s = 0;
	}
	w->length_s = iv->start_s + iv->length_s - w->start_s;
	w->parts++;
}

int
hlog_write_once(struct hlog_writer *w, int s, uint64_t start_wall_ns,
    double length_s, const struct hist *h)
{
	char	*text = encode(h);
	double	 start_s = start_wall_ns > w->base_ns ?
		    (double)(start_wall_ns - w->base_ns) / NS : 0;

	line(w, s, start_s, length_s, hist_max(h), text);
	free(text);
	check(w, fflush(w->f));
	return w->failed ? -1 : 0;
}

int
hlog_write_interval(struct hlog_writer *w, const struct tl_interval *iv)
{
	add_part(w, iv);
	if (w->length_s >= (double)w->interval_s - 1e-6)
		flush_interval(w);
	return w->failed ? -1 : 0;
}

int
hlog_write_finish(struct hlog_writer *w, const struct hlog_totals *t)
{
	int	i;

	flush_interval(w);
	check(w, fprintf(w->f, "#[echoload totals: duration_s=%.6f "
	    "requests=%llu bytes_sent=%llu bytes_received=%llu",
	    t->duration_s, (unsigned long long)t->c.requests,
	    (unsigned long long)t->c.bytes_sent,
	    (unsigned long long)t->c.bytes_received));
	for (i = 0; i < ERR_MAX; i++)
		check(w, fprintf(w->f, " errors.%s=%llu", err_name(i),
		    (unsigned long long)t->c.errors[i]));
	check(w, fprintf(w->f, "]\n"));
	check(w, fflush(w->f));
	return w->failed ? -1 : 0;
}

/* ---- reading ---- */

struct reader {
	const char	*path;
	size_t		 line;
	char		*err;
	size_t		 errlen;
	struct hlog_file *f;
	double		 base_s;
	int		 has_base;
	int		 has_first;
	double		 first_abs;
	uint64_t	 max[NSERIES];	/* of each series' lines */
};

static int
rfail(struct reader *r, const char *fmt, const char *what)
{
	if (r->line > 0)
		snprintf(r->err, r->errlen, "%s:%zu: ", r->path, r->line);
	else
		snprintf(r->err, r->errlen, "%s: ", r->path);
	snprintf(r->err + strlen(r->err), r->errlen - strlen(r->err), fmt,
	    what);
	return -1;
}

/* A number that is the whole field. */
static int
field_double(const char *s, size_t len, double *out)
{
	char	 buf[64], *end;

	if (len == 0 || len >= sizeof buf)
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	errno = 0;
	*out = strtod(buf, &end);
	return *end != '\0' || errno != 0 || !isfinite(*out) ? -1 : 0;
}

static int
field_u64(const char *s, uint64_t *out)
{
	char	*end;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -1;
	*out = strtoull(s, &end, 10);
	return errno != 0 || (*end != '\0' && *end != ' ' && *end != ']') ?
	    -1 : 0;
}

/* "key=value" from a comment of ours; value up to the next blank or ]. */
static const char *
comment_value(const char *line, const char *key, char *buf, size_t len)
{
	const char	*p = line;
	size_t		 klen = strlen(key), n;

	while ((p = strstr(p, key)) != NULL) {
		if ((p == line || p[-1] == ' ') && p[klen] == '=')
			break;
		p += klen;
	}
	if (p == NULL)
		return NULL;
	p += klen + 1;
	n = strcspn(p, " ]");
	if (n >= len)
		return NULL;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return buf;
}

static int
header_double(struct reader *r, const char *line, const char *key,
    double *out)
{
	char	buf[64];

	if (comment_value(line, key, buf, sizeof buf) == NULL ||
	    field_double(buf, strlen(buf), out) != 0)
		return rfail(r, "bad or missing %s in the echoload header", key);
	return 0;
}

static int
header_u64(struct reader *r, const char *line, const char *key,
    uint64_t *out)
{
	char	buf[64];

	if (comment_value(line, key, buf, sizeof buf) == NULL ||
	    field_u64(buf, out) != 0)
		return rfail(r, "bad or missing %s in the echoload header", key);
	return 0;
}

static int
read_info(struct reader *r, const char *line)
{
	struct hlog_file	*f = r->f;
	struct hlog_info	*in = &f->info;
	uint64_t		 v[4];
	double			 start;

	if (comment_value(line, "tag", f->tag, sizeof f->tag) == NULL ||
	    comment_value(line, "mode", f->mode, sizeof f->mode) == NULL ||
	    comment_value(line, "target", f->target, sizeof f->target) == NULL ||
	    comment_value(line, "address", f->address,
	    sizeof f->address) == NULL)
		return rfail(r, "%s", "the echoload header lacks tag, mode, "
		    "target or address");
	if (header_u64(r, line, "message_size", &v[0]) ||
	    header_u64(r, line, "connections", &v[1]) ||
	    header_u64(r, line, "threads", &v[2]) ||
	    header_u64(r, line, "pipeline", &v[3]) ||
	    header_double(r, line, "rate", &in->rate) ||
	    header_double(r, line, "warmup_s", &in->warmup_s) ||
	    header_double(r, line, "start_unix_s", &start))
		return -1;
	in->tag = f->tag;
	in->mode = f->mode;
	in->target = f->target;
	in->address = f->address;
	in->message_size = v[0];
	in->connections = (unsigned)v[1];
	in->threads = (unsigned)v[2];
	in->pipeline = (unsigned)v[3];
	in->start_wall_ns = (uint64_t)llround(start * NS);
	f->from_echoload = 1;
	return 0;
}

static int
read_totals(struct reader *r, const char *line)
{
	struct hlog_totals	*t = &r->f->totals;
	char			 key[32];
	int			 i;

	if (header_double(r, line, "duration_s", &t->duration_s) ||
	    header_u64(r, line, "requests", &t->c.requests) ||
	    header_u64(r, line, "bytes_sent", &t->c.bytes_sent) ||
	    header_u64(r, line, "bytes_received", &t->c.bytes_received))
		return -1;
	for (i = 0; i < ERR_MAX; i++) {
		snprintf(key, sizeof key, "errors.%s", err_name(i));
		if (header_u64(r, line, key, &t->c.errors[i]))
			return -1;
	}
	r->f->has_totals = 1;
	return 0;
}

/* "#[StartTime: 1764628200.000 (seconds..." and BaseTime alike. */
static int
time_comment(struct reader *r, const char *line, size_t skip, double *out)
{
	const char	*p = line + skip;

	if (field_double(p, strcspn(p, " ]"), out) != 0)
		return rfail(r, "%s", "bad time in a StartTime or BaseTime "
		    "comment");
	return 0;
}

static int
read_comment(struct reader *r, const char *line)
{
	struct hlog_file	*f = r->f;

	if (strncmp(line, "#[StartTime: ", 13) == 0) {
		f->has_start = 1;
		return time_comment(r, line, 13, &f->start_s);
	}
	if (strncmp(line, "#[BaseTime: ", 12) == 0) {
		r->has_base = 1;
		return time_comment(r, line, 12, &r->base_s);
	}
	if (strncmp(line, "#[echoload totals: ", 19) == 0)
		return read_totals(r, line);
	if (strncmp(line, "#[echoload ", 11) == 0)
		return read_info(r, line);
	return 0;
}

/* The interval an interval line belongs to: the last ones, by start. */
static struct tl_interval *
interval_at(struct timeline *tl, double start_s, double length_s)
{
	struct tl_interval	*iv;
	size_t			 i;

	for (i = tl->n; i > 0 && i + 8 > tl->n; i--) {
		iv = &tl->iv[i - 1];
		if (fabs(iv->start_s - start_s) < 5e-4 &&
		    fabs(iv->length_s - length_s) < 5e-4)
			return iv;
	}
	iv = timeline_push(tl);
	iv->start_s = start_s;
	iv->length_s = length_s;
	return iv;
}

/* Where the first interval starts tells whether times are absolute (see
 * HdrHistogram's HistogramLogReader): no BaseTime, and a time more than a
 * year before StartTime, means times are offsets from StartTime. */
static double
absolute_time(struct reader *r, double t)
{
	struct hlog_file	*f = r->f;

	if (!r->has_base) {
		r->has_base = 1;
		r->base_s = f->has_start && t < f->start_s - 365 * 86400.0 ?
		    f->start_s : 0;
	}
	return r->base_s + t;
}

static int
check_max(struct reader *r, const struct hcodec_stats *st, double max_ms,
    uint64_t *max)
{
	uint64_t	exact = (uint64_t)llround(max_ms * HLOG_MAX_DIVISOR);

	/* Only our own logs say the divisor; trust their max if it lies in
	 * the highest count's range, which a damaged line would not. */
	*max = st->total ? st->max_hi : 0;
	if (!r->f->from_echoload)
		return 0;
	if (max_ms < 0 || (st->total == 0 && exact != 0) ||
	    (st->total > 0 && (exact < st->max_lo || exact > st->max_hi)))
		return rfail(r, "%s", "Interval_Max does not match the "
		    "histogram");
	*max = exact;
	return 0;
}

static int
read_interval(struct reader *r, const char *line, size_t len)
{
	struct hlog_file	*f = r->f;
	struct tl_interval	*iv;
	struct hcodec_stats	 st;
	const char		*p = line, *end = line + len, *fld[4], *why;
	size_t			 flen[4], n;
	double			 start, length, max_ms, abs;
	uint64_t		 max;
	int			 s = SERIES_RESPONSE, k;

	if (strncmp(p, "Tag=", 4) == 0) {
		p += 4;
		n = strcspn(p, ",");
		if ((s = series_by_name(p, n)) < 0)
			return rfail(r, "%s", "unknown Tag (not response, "
			    "service or connect)");
		p += n + (p[n] == ',');
	}
	for (k = 0; k < 4; k++) {
		fld[k] = p;
		while (p < end && *p != ',')
			p++;
		flen[k] = (size_t)(p - fld[k]);
		if (k < 3 && p == end)
			return rfail(r, "%s", "an interval line needs start, "
			    "length, max and histogram");
		p++;
	}
	if (p <= end)
		return rfail(r, "%s", "too many fields on an interval line");
	if (field_double(fld[0], flen[0], &start) ||
	    field_double(fld[1], flen[1], &length) ||
	    field_double(fld[2], flen[2], &max_ms) || length < 0)
		return rfail(r, "%s", "start, length or max is not a number");
	if (f->series[s] == NULL) {
		f->series[s] = xmalloc(sizeof *f->series[s]);
		hist_init(f->series[s]);
	}
	if (hcodec_decode_stats(f->series[s], fld[3], flen[3], &st, &why) != 0)
		return rfail(r, "bad histogram: %s", why);
	if (check_max(r, &st, max_ms, &max) != 0)
		return -1;
	if (max > r->max[s])
		r->max[s] = max;
	f->lines++;
	abs = absolute_time(r, start);
	/* Intervals are timed from the measured start, which our header
	 * says; other logs from their StartTime or first line. */
	if (!r->has_first) {
		r->has_first = 1;
		r->first_abs = f->from_echoload ?
		    (double)f->info.start_wall_ns / NS :
		    f->has_start ? f->start_s : abs;
	}
	/* A series measured once a run is not part of the intervals. */
	if ((SERIES_BIT(s) & SERIES_INTERVALS) == 0) {
		if (s == SERIES_CONNECT) {
			f->connect_start_s = abs;
			f->connect_length_s = length;
		}
		return 0;
	}
	iv = interval_at(f->tl, abs - r->first_abs, length);
	if (iv->hist[s] != NULL)
		return rfail(r, "%s", "a second line for one series and "
		    "interval");
	iv->hist[s] = xmalloc(flen[3] + 1);
	memcpy(iv->hist[s], fld[3], flen[3]);
	iv->hist[s][flen[3]] = '\0';
	iv->max[s] = max;
	if (s == SERIES_RESPONSE)
		iv->c.requests = st.total;
	f->tl->series |= SERIES_BIT(s);
	return 0;
}

static char *
slurp(struct reader *r, size_t *len)
{
	FILE	*fp;
	char	*buf = NULL;
	size_t	 cap = 0, n = 0, got;

	if ((fp = fopen(r->path, "r")) == NULL) {
		rfail(r, "%s", strerror(errno));
		return NULL;
	}
	do {
		if (cap - n < 65536) {
			cap = cap ? cap * 2 : 65536;
			buf = xrealloc(buf, cap + 1);
		}
		got = fread(buf + n, 1, cap - n, fp);
		n += got;
	} while (got > 0);
	if (ferror(fp)) {
		rfail(r, "%s", "read error");
		fclose(fp);
		free(buf);
		return NULL;
	}
	fclose(fp);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static int
read_lines(struct reader *r, char *buf, size_t len)
{
	char	*line = buf, *nl;
	size_t	 n;

	while (line < buf + len) {
		r->line++;
		if ((nl = memchr(line, '\n', (size_t)(buf + len - line))) == NULL)
			return rfail(r, "%s", "the last line is cut short (no "
			    "newline)");
		*nl = '\0';
		n = (size_t)(nl - line);
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		if (n == 0 || line[0] == '"')
			;	/* blank, or the legend */
		else if (line[0] == '#') {
			if (read_comment(r, line) != 0)
				return -1;
		} else if (read_interval(r, line, n) != 0)
			return -1;
		line = nl + 1;
	}
	return 0;
}

/* Our logs carry each line's exact max: the whole log's is theirs. */
static void
exact_max(struct hlog_file *f, const struct reader *r)
{
	int	s;

	if (!f->from_echoload)
		return;
	for (s = 0; s < NSERIES; s++)
		if (f->series[s] != NULL)
			f->series[s]->max = r->max[s];
}

int
hlog_read(const char *path, struct hlog_file *f, char *err, size_t errlen)
{
	struct reader	 r;
	char		*buf;
	size_t		 len;
	int		 rv;

	memset(f, 0, sizeof *f);
	memset(&r, 0, sizeof r);
	r.path = path;
	r.err = err;
	r.errlen = errlen;
	r.f = f;
	f->tl = timeline_new(0);
	if ((buf = slurp(&r, &len)) == NULL)
		return -1;
	if (len == 0) {
		free(buf);
		return rfail(&r, "%s", "empty file");
	}
	rv = read_lines(&r, buf, len);
	free(buf);
	if (rv != 0)
		return -1;
	r.line = 0;
	if (f->lines == 0 && !f->from_echoload)
		return rfail(&r, "%s", "no interval lines: not an interval "
		    "log");
	if (!f->has_start && f->from_echoload)
		return rfail(&r, "%s", "no StartTime comment");
	if (!f->has_start)
		f->start_s = r.first_abs;
	exact_max(f, &r);
	return 0;
}

void
hlog_file_free(struct hlog_file *f)
{
	int	s;

	for (s = 0; s < NSERIES; s++) {
		free(f->series[s]);
		f->series[s] = NULL;
	}
	timeline_free(f->tl);
	f->tl = NULL;
}
