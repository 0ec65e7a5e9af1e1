/*
 * test_merge.c: `echoload merge` is exact. k runs' samples are recorded
 * into k results written by the real JSON writer, merged by merge_main,
 * and the merged percentiles, counts and interval histograms must equal
 * those of one histogram fed every sample. Merging one result gives it
 * back byte for byte; damaged input is refused with nothing written.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "connect.h"
#include "echoload.h"
#include "hcodec.h"
#include "hist.h"
#include "merge.h"
#include "report.h"
#include "run.h"
#include "timeline.h"

#define K		4	/* runs */
#define SECONDS		3
#define PER_SECOND	5000

static char	dir[] = "/tmp/test_merge.XXXXXX";

static uint64_t
rng(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static struct hist *
new_hist(void)
{
	struct hist	*h = malloc(sizeof *h);

	assert_non_null(h);
	hist_init(h);
	return h;
}

/* A run as the real writer reports it: its seconds, its totals. */
struct fake {
	struct opts	 o;
	struct run	 r;
	char		 tag[32];
	char		 path[128];
};

/* Every run's connect times, recorded into one histogram too. */
static struct hist	*all_connect;

static void
fake_init(struct fake *f, int k)
{
	uint64_t	 x = 1000 + (uint64_t)k, v;
	int		 i;

	char	 err[256], tagopt[32];
	char	*argv[] = { "echoload", "-c", "4", "-t", "2", "--tag", tagopt,
		    "127.0.0.1:7007", NULL };

	snprintf(tagopt, sizeof tagopt, "host%d", k);
	assert_int_equal(opts_parse(&f->o, 8, argv, err, sizeof err),
	    OPTS_RUN);
	/* argv is gone when this returns: keep the tag. */
	snprintf(f->tag, sizeof f->tag, "%s", tagopt);
	f->o.tag = f->tag;
	memset(&f->r, 0, sizeof f->r);
	f->r.o = &f->o;
	strcpy(f->r.target, "127.0.0.1:7007");
	hist_init(&f->r.res.lat);
	hist_init(&f->r.res.svc);
	connect_stats_init(&f->r.res.conn);
	hist_init(&f->r.res.reconn.lat);
	f->r.res.loaded = 1;
	for (i = 0; i < 4; i++) {
		v = 20 + rng(&x) % 5000;
		hist_record(&f->r.res.conn.lat, v);
		if (all_connect != NULL)
			hist_record(all_connect, v);
	}
	f->r.res.conn.asked = 5;
	f->r.res.conn.established = 4;
	f->r.res.conn.failed[CF_REFUSED] = 1;
	f->r.res.conn.start_ns = 1;
	f->r.res.conn.end_ns = 1 + (uint64_t)(k + 1) * 1000000;
	f->r.series = SERIES_BIT(SERIES_RESPONSE);
	f->r.tl = timeline_new(f->r.series);
	f->r.measure_wall_ns = UINT64_C(1764628200000000000) +
	    (uint64_t)k * 1000000;	/* 1 ms apart */
	f->r.res.duration_s = SECONDS;
	snprintf(f->path, sizeof f->path, "%s/run%d.json", dir, k);
}

/* Log-spread latencies, different for each run. */
static void
fake_second(struct fake *f, uint64_t *x, int sec, struct hist *all,
    struct hist *all_sec)
{
	struct hist	*h = new_hist();
	struct hist	*hs[NSERIES] = { h, NULL, NULL };
	struct counters	 c;
	uint64_t	 v;
	int		 i;

	memset(&c, 0, sizeof c);
	for (i = 0; i < PER_SECOND; i++) {
		v = 1 + rng(x) % (UINT64_C(1) << (1 + rng(x) % 24));
		hist_record(h, v);
		hist_record(all, v);
		hist_record(all_sec, v);
	}
	c.requests = PER_SECOND;
	c.bytes_sent = c.bytes_received = PER_SECOND * 64;
	c.errors[ERR_TIMEOUT] = (uint64_t)sec;
	timeline_add(f->r.tl, sec, 1.0, &c, hs);
	hist_merge(&f->r.res.lat, h);
	hist_merge(&f->r.res.svc, h);
	f->r.res.c.requests += c.requests;
	f->r.res.c.bytes_sent += c.bytes_sent;
	f->r.res.c.bytes_received += c.bytes_received;
	f->r.res.c.errors[ERR_TIMEOUT] += c.errors[ERR_TIMEOUT];
	f->r.res.errors += c.errors[ERR_TIMEOUT];
	free(h);
}

static void
fake_write(struct fake *f)
{
	FILE	*fp = fopen(f->path, "w");

	assert_non_null(fp);
	report_json(fp, &f->r);
	assert_int_equal(fclose(fp), 0);
}

static int
merge(int nfiles, char **files, const char *out)
{
	char	*argv[16];
	int	 argc = 0, i;

	argv[argc++] = "merge";
	argv[argc++] = "-q";
	argv[argc++] = "--json";
	argv[argc++] = (char *)out;
	for (i = 0; i < nfiles; i++)
		argv[argc++] = files[i];
	argv[argc] = NULL;
	return merge_main(argc, argv);
}

static json_t *
load(const char *path)
{
	json_error_t	 err;
	json_t		*j = json_load_file(path, 0, &err);

	if (j == NULL)
		fail_msg("%s:%d: %s", path, err.line, err.text);
	return j;
}

static uint64_t
jint(json_t *o, const char *k)
{
	json_t	*v = json_object_get(o, k);

	assert_true(json_is_integer(v));
	return (uint64_t)json_integer_value(v);
}

static void
decode_into(struct hist *h, json_t *s)
{
	const char	*why = NULL;

	assert_true(json_is_string(s));
	assert_int_equal(hcodec_decode_text(h, json_string_value(s),
	    strlen(json_string_value(s)), &why), 0);
}

static void
test_merge_equals_one_histogram(void **state)
{
	static const double	 ps[] = { 50, 90, 99, 99.9, 99.99 };
	static const char	*keys[] = { "p50", "p90", "p99", "p99_9",
				    "p99_99" };
	struct fake		*f = calloc(K, sizeof *f);
	struct hist		*all = new_hist(), *sec[SECONDS], *got;
	char			*files[K], out[160];
	uint64_t		 x = 42;
	json_t			*j, *lat, *ivs, *iv;
	size_t			 i;
	int			 k, s;

	(void)state;
	all_connect = new_hist();
	for (s = 0; s < SECONDS; s++)
		sec[s] = new_hist();
	for (k = 0; k < K; k++) {
		fake_init(&f[k], k);
		for (s = 0; s < SECONDS; s++)
			fake_second(&f[k], &x, s, all, sec[s]);
		fake_write(&f[k]);
		files[k] = f[k].path;
	}
	snprintf(out, sizeof out, "%s/merged.json", dir);
	assert_int_equal(merge(K, files, out), 0);

	j = load(out);
	assert_int_equal(jint(j, "requests"), (uint64_t)K * SECONDS *
	    PER_SECOND);
	assert_int_equal(jint(j, "errors"), K * (0 + 1 + 2));
	assert_int_equal(jint(j, "connections"), K * 4);
	assert_string_equal(json_string_value(json_object_get(j, "tag")),
	    "host0+host1+host2+host3");
	lat = json_object_get(j, "latency_us");
	assert_int_equal(jint(lat, "count"), all->total);
	assert_int_equal(jint(lat, "min"), hist_min(all));
	assert_int_equal(jint(lat, "max"), hist_max(all));
	assert_int_equal(jint(lat, "sum"), all->sum);
	for (i = 0; i < sizeof ps / sizeof ps[0]; i++)
		assert_int_equal(jint(lat, keys[i]), hist_percentile(all,
		    ps[i]));
	/* The merged histogram is the one of every sample, count for count. */
	got = new_hist();
	decode_into(got, json_object_get(json_object_get(j, "histograms"),
	    "response"));
	assert_memory_equal(got->counts, all->counts, sizeof all->counts);
	/* And so is each second's. */
	ivs = json_object_get(j, "intervals");
	assert_int_equal(json_array_size(ivs), SECONDS);
	json_array_foreach(ivs, i, iv) {
		hist_init(got);
		decode_into(got, json_object_get(json_object_get(iv,
		    "histograms"), "response"));
		assert_memory_equal(got->counts, sec[i]->counts,
		    sizeof got->counts);
		assert_int_equal(jint(json_object_get(iv, "max_us"),
		    "response"), hist_max(sec[i]));
		assert_int_equal(jint(iv, "requests"), K * PER_SECOND);
	}
	/* The connection phases add up too. */
	lat = json_object_get(j, "connection_phase");
	assert_int_equal(jint(lat, "asked"), K * 5);
	assert_int_equal(jint(lat, "established"), K * 4);
	assert_int_equal(jint(json_object_get(lat, "failed_by_reason"),
	    "refused"), K);
	lat = json_object_get(lat, "latency_us");
	assert_int_equal(jint(lat, "count"), all_connect->total);
	assert_int_equal(jint(lat, "max"), hist_max(all_connect));
	for (i = 0; i < sizeof ps / sizeof ps[0]; i++)
		assert_int_equal(jint(lat, keys[i]), hist_percentile(
		    all_connect, ps[i]));
	json_decref(j);
	free(all_connect);
	all_connect = NULL;
	for (k = 0; k < K; k++) {
		timeline_free(f[k].r.tl);
		unlink(f[k].path);
	}
	unlink(out);
	for (s = 0; s < SECONDS; s++)
		free(sec[s]);
	free(got);
	free(all);
	free(f);
}

static char *
slurp(const char *path)
{
	FILE	*fp = fopen(path, "r");
	char	*buf;
	long	 n;

	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	return buf;
}

static void
test_merge_one_gives_it_back(void **state)
{
	struct fake	*f = calloc(1, sizeof *f);
	struct hist	*all = new_hist(), *sec = new_hist();
	char		*files[1], out[160], *a, *b;
	uint64_t	 x = 7;
	int		 s;

	(void)state;
	fake_init(f, 0);
	for (s = 0; s < SECONDS; s++)
		fake_second(f, &x, s, all, sec);
	fake_write(f);
	files[0] = f->path;
	snprintf(out, sizeof out, "%s/one.json", dir);
	assert_int_equal(merge(1, files, out), 0);
	a = slurp(f->path);
	b = slurp(out);
	assert_string_equal(a, b);
	free(a);
	free(b);
	unlink(out);
	unlink(f->path);
	timeline_free(f->r.tl);
	free(f);
	free(all);
	free(sec);
}

static void
write_file(const char *path, const char *text)
{
	FILE	*fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* Bad input: exit status 2 and no output file. */
static void
expect_refused(char *file)
{
	char	 out[160], *files[1] = { file };

	snprintf(out, sizeof out, "%s/never.json", dir);
	assert_int_equal(merge(1, files, out), 2);
	assert_int_equal(access(out, F_OK), -1);
}

static void
test_merge_refuses_bad_input(void **state)
{
	struct fake	*f = calloc(2, sizeof *f);
	struct hist	*all = new_hist(), *sec = new_hist();
	char		 path[160], *files[2], out[160], *text, *p;
	uint64_t	 x = 9;

	(void)state;
	snprintf(path, sizeof path, "%s/empty", dir);
	write_file(path, "");
	expect_refused(path);
	write_file(path, "{\"mode\": \"echo\"");
	expect_refused(path);
	write_file(path, "{\"mode\": \"echo\"}");
	expect_refused(path);
	write_file(path, "not a log\n");
	expect_refused(path);

	/* Another mode: refused when merged with an echo run. */
	fake_init(&f[0], 0);
	fake_second(&f[0], &x, 0, all, sec);
	fake_write(&f[0]);
	fake_init(&f[1], 1);
	f[1].o.mode = MODE_CONNECT;
	fake_second(&f[1], &x, 0, all, sec);
	fake_write(&f[1]);
	files[0] = f[0].path;
	files[1] = f[1].path;
	snprintf(out, sizeof out, "%s/never.json", dir);
	assert_int_equal(merge(2, files, out), 2);
	assert_int_equal(access(out, F_OK), -1);

	/* A damaged histogram inside an otherwise good result. */
	text = slurp(f[0].path);
	p = strstr(text, "HISTFAAA");
	assert_non_null(p);
	p[12] = p[12] == 'A' ? 'B' : 'A';
	write_file(path, text);
	free(text);
	expect_refused(path);

	unlink(path);
	unlink(f[0].path);
	unlink(f[1].path);
	timeline_free(f[0].r.tl);
	timeline_free(f[1].r.tl);
	free(f);
	free(all);
	free(sec);
}

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	return rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_equals_one_histogram),
		cmocka_unit_test(test_merge_one_gives_it_back),
		cmocka_unit_test(test_merge_refuses_bad_input),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
