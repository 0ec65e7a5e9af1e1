/*
 * test_hcodec.c: base64, ZigZag LEB128 and HdrHistogram's V2 compressed
 * encoding: known vectors (RFC 4648, HdrHistogram's byte layout, a
 * histogram written by HdrHistogram.js), round trips, and damaged input
 * refused without touching the histogram.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "base64.h"
#include "hcodec.h"
#include "hist.h"

static struct hist *
new_hist(void)
{
	struct hist	*h = malloc(sizeof *h);

	assert_non_null(h);
	hist_init(h);
	return h;
}

static uint64_t
rng(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void
test_base64_rfc4648(void **state)
{
	static const char	*plain[] = { "", "f", "fo", "foo", "foob",
				    "fooba", "foobar" };
	static const char	*coded[] = { "", "Zg==", "Zm8=", "Zm9v",
				    "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	char			 out[16];
	uint8_t			 back[16];
	size_t			 i;
	long			 n;

	(void)state;
	for (i = 0; i < 7; i++) {
		assert_int_equal(base64_encoded_len(strlen(plain[i])),
		    strlen(coded[i]));
		base64_encode((const uint8_t *)plain[i], strlen(plain[i]), out);
		assert_string_equal(out, coded[i]);
		n = base64_decode(coded[i], strlen(coded[i]), back);
		assert_int_equal(n, strlen(plain[i]));
		assert_memory_equal(back, plain[i], (size_t)n);
	}
}

static void
test_base64_round_trip(void **state)
{
	uint8_t		in[300], back[300];
	char		text[401];
	uint64_t	x = 12345;
	size_t		len, i;

	(void)state;
	for (len = 0; len < sizeof in; len++) {
		for (i = 0; i < len; i++)
			in[i] = (uint8_t)rng(&x);
		base64_encode(in, len, text);
		assert_int_equal(base64_decode(text, strlen(text), back), len);
		assert_memory_equal(back, in, len);
	}
}

static void
test_base64_rejects(void **state)
{
	uint8_t	out[16];

	(void)state;
	assert_int_equal(base64_decode("Zm9", 3, out), -1);	/* length */
	assert_int_equal(base64_decode("Zm9v!A==", 8, out), -1);
	assert_int_equal(base64_decode("Zg==Zm8=", 8, out), -1); /* pad */
	assert_int_equal(base64_decode("Z===", 4, out), -1);
	assert_int_equal(base64_decode("Zm 9", 4, out), -1);
}

static void
test_zigzag_vectors(void **state)
{
	static const struct {
		int64_t		v;
		int		n;
		uint8_t		b[9];
	} vec[] = {
		{ 0, 1, { 0x00 } },
		{ -1, 1, { 0x01 } },
		{ 1, 1, { 0x02 } },
		{ 63, 1, { 0x7e } },
		{ -64, 1, { 0x7f } },
		{ 64, 2, { 0x80, 0x01 } },
		{ 300, 2, { 0xd8, 0x04 } },
		{ -2048, 2, { 0xff, 0x1f } },
		{ INT64_MAX, 9, { 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		    0xff, 0xff } },
		{ INT64_MIN, 9, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		    0xff, 0xff } },
	};
	uint8_t		buf[9];
	int64_t		v;
	size_t		i;

	(void)state;
	for (i = 0; i < sizeof vec / sizeof vec[0]; i++) {
		assert_int_equal(zz_encode(buf, vec[i].v), vec[i].n);
		assert_memory_equal(buf, vec[i].b, (size_t)vec[i].n);
		assert_int_equal(zz_decode(vec[i].b, (size_t)vec[i].n, &v),
		    vec[i].n);
		assert_true(v == vec[i].v);
		/* One byte short is a truncated number. */
		assert_int_equal(zz_decode(vec[i].b, (size_t)vec[i].n - 1,
		    &v), -1);
	}
}

static void
test_zigzag_round_trip(void **state)
{
	uint64_t	x = 99;
	uint8_t		buf[9];
	int64_t		v, back;
	int		i, n, bits;

	(void)state;
	for (i = 0; i < 100000; i++) {
		bits = (int)(rng(&x) % 64);
		v = (int64_t)(rng(&x) >> (63 - bits)) * (i & 1 ? -1 : 1);
		n = zz_encode(buf, v);
		assert_true(n >= 1 && n <= 9);
		assert_int_equal(zz_decode(buf, 9, &back), n);
		assert_true(back == v);
	}
}

/* The bytes as HdrHistogram lays them out: compression header, then the
 * zlib stream of the V2 header and counts. */
static void
test_encoding_layout(void **state)
{
	struct hist	*h = new_hist();
	uint8_t		*bin, raw[256];
	uLongf		 rawlen = sizeof raw;
	size_t		 len;
	double		 ratio;
	uint64_t	 bits;

	(void)state;
	hist_record(h, 3);
	hist_record(h, 3);
	hist_record(h, 7);
	bin = hcodec_encode(h, &len);
	assert_non_null(bin);
	assert_memory_equal(bin, "\x1c\x84\x93\x14", 4);
	assert_int_equal((size_t)bin[4] << 24 | (size_t)bin[5] << 16 |
	    (size_t)bin[6] << 8 | bin[7], len - 8);
	assert_int_equal(uncompress(raw, &rawlen, bin + 8, len - 8), Z_OK);
	/* Counts 0,0,0,2,0,0,0,1: -3, 2, -3, 1 in ZigZag. */
	assert_int_equal(rawlen, 40 + 4);
	assert_memory_equal(raw, "\x1c\x84\x93\x13" "\0\0\0\x04" "\0\0\0\0"
	    "\0\0\0\x03" "\0\0\0\0\0\0\0\x01" "\0\0\0\0\xff\xff\xff\xff", 32);
	memcpy(&ratio, &(double){ 1.0 }, sizeof ratio);
	bits = 0;
	for (len = 0; len < 8; len++)
		bits = bits << 8 | raw[32 + len];
	memcpy(&ratio, &bits, sizeof ratio);
	assert_true(ratio == 1.0);
	assert_memory_equal(raw + 40, "\x05\x04\x05\x02", 4);
	free(bin);
	free(h);
}

static void
check_same_counts(const struct hist *a, const struct hist *b)
{
	assert_int_equal(a->total, b->total);
	assert_memory_equal(a->counts, b->counts, sizeof a->counts);
}

static void
test_round_trip(void **state)
{
	struct hist	*h = new_hist(), *back = new_hist();
	uint64_t	 x = 7;
	const char	*why = NULL;
	char		*text;
	int		 i;

	(void)state;
	for (i = 0; i < 100000; i++)
		hist_record(h, 1 + rng(&x) % (UINT64_C(1) << (1 + rng(&x) % 32)));
	hist_record(h, HIST_HIGHEST);
	text = hcodec_encode_text(h);
	assert_non_null(text);
	assert_int_equal(hcodec_decode_text(back, text, strlen(text), &why), 0);
	check_same_counts(h, back);
	/* min and max come back as the edges of their ranges. */
	assert_int_equal(back->min, hist_lowest_equivalent(h->min));
	assert_int_equal(back->max, HIST_HIGHEST);
	back->max = h->max;
	assert_int_equal(hist_percentile(back, 99.9), hist_percentile(h, 99.9));
	free(text);
	free(h);
	free(back);
}

static void
test_empty(void **state)
{
	struct hist	*h = new_hist(), *back = new_hist();
	const char	*why = NULL;
	char		*text;

	(void)state;
	text = hcodec_encode_text(h);
	assert_non_null(text);
	assert_int_equal(hcodec_decode_text(back, text, strlen(text), &why), 0);
	assert_int_equal(back->total, 0);
	assert_int_equal(hist_max(back), 0);
	free(text);
	free(h);
	free(back);
}

/* Decoding adds: two encodings decoded into one histogram equal both sets
 * of samples recorded into one. */
static void
test_decode_adds(void **state)
{
	struct hist	*a = new_hist(), *b = new_hist(), *all = new_hist();
	struct hist	*sum = new_hist();
	uint64_t	 x = 3, v;
	const char	*why = NULL;
	char		*ta, *tb;
	int		 i;

	(void)state;
	for (i = 0; i < 50000; i++) {
		v = 1 + rng(&x) % 100000;
		hist_record(i & 1 ? a : b, v);
		hist_record(all, v);
	}
	ta = hcodec_encode_text(a);
	tb = hcodec_encode_text(b);
	assert_int_equal(hcodec_decode_text(sum, ta, strlen(ta), &why), 0);
	assert_int_equal(hcodec_decode_text(sum, tb, strlen(tb), &why), 0);
	check_same_counts(all, sum);
	free(ta);
	free(tb);
	free(a);
	free(b);
	free(all);
	free(sum);
}

/* Written by HdrHistogram.js 3.0.1 (1 to 2^32-1, 3 digits) after
 * recording 1, 2, 2, 100, 1000, 2047, 2048, 123456 (3 times), 5000000. */
static const char js_vector[] =
    "HISTFAAAADN4nJNpmSzMwMAAwowMDAzMDBAAYjP8////P5zPxHKQkamVj2m1ABNTfxzb5xAm"
    "AOgVCbY=";

static void
test_decode_js_vector(void **state)
{
	static const uint64_t	 vals[] = { 1, 2, 2, 100, 1000, 2047, 2048,
				    123456, 123456, 123456, 5000000 };
	struct hist		*h = new_hist(), *want = new_hist();
	const char		*why = NULL;
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof vals / sizeof vals[0]; i++)
		hist_record(want, vals[i]);
	assert_int_equal(hcodec_decode_text(h, js_vector, strlen(js_vector),
	    &why), 0);
	check_same_counts(want, h);
	/* The same percentiles HdrHistogram.js gave: 2047 and 123519. */
	assert_int_equal(hist_percentile(h, 50), 2047);
	assert_int_equal(hist_percentile(h, 90), 123519);
	free(h);
	free(want);
}

static void
expect_refused(const char *text, const char *reason_part)
{
	struct hist	*h = new_hist(), *before = new_hist();
	const char	*why = NULL;

	hist_record(h, 42);
	memcpy(before, h, sizeof *h);
	assert_int_equal(hcodec_decode_text(h, text, strlen(text), &why), -1);
	assert_non_null(why);
	if (strstr(why, reason_part) == NULL)
		fail_msg("reason \"%s\" lacks \"%s\"", why, reason_part);
	assert_memory_equal(h, before, sizeof *h);
	free(h);
	free(before);
}

/* Build a compressed histogram from a raw V2 encoding. */
static char *
pack(const uint8_t *raw, size_t rawlen, int cut)
{
	uint8_t		 z[512];
	uLongf		 zlen = sizeof z - 8;
	char		*text;

	assert_int_equal(compress(z + 8, &zlen, raw, rawlen), Z_OK);
	zlen -= (uLongf)cut;
	memcpy(z, "\x1c\x84\x93\x14", 4);
	z[4] = 0;
	z[5] = 0;
	z[6] = (uint8_t)(zlen >> 8);
	z[7] = (uint8_t)zlen;
	text = malloc(base64_encoded_len(zlen + 8) + 1);
	base64_encode(z, zlen + 8, text);
	return text;
}

static void
test_decode_rejects(void **state)
{
	uint8_t	 raw[64];
	char	*t, *good;
	size_t	 len;

	(void)state;
	good = strdup(js_vector);
	expect_refused("", "too short");
	expect_refused("not base64!", "base64");
	/* Truncated text: no longer a multiple of 4, or shorter than its
	 * length field. */
	len = strlen(good);
	good[len - 4] = '\0';
	expect_refused(good, "length");
	strcpy(good, js_vector);
	good[2] = 'U';		/* the cookie's third byte */
	expect_refused(good, "cookie");
	free(good);

	memcpy(raw, "\x1c\x84\x93\x13" "\0\0\0\x02" "\0\0\0\0"
	    "\0\0\0\x03" "\0\0\0\0\0\0\0\x01" "\0\0\0\0\xff\xff\xff\xff"
	    "\x3f\xf0\0\0\0\0\0\0" "\x04\x80", 42);
	/* A count cut inside its LEB128 bytes. */
	t = pack(raw, 42, 0);
	expect_refused(t, "cut short");
	free(t);
	/* A stream cut short. */
	raw[41] = 0x02;
	t = pack(raw, 42, 3);
	expect_refused(t, "damaged");
	free(t);
	/* Payload length longer than the stream. */
	raw[7] = 0x05;
	t = pack(raw, 42, 0);
	expect_refused(t, "damaged");
	free(t);
	raw[7] = 0x02;
	/* Another significant-digit count. */
	raw[15] = 2;
	t = pack(raw, 42, 0);
	expect_refused(t, "significant");
	free(t);
	raw[15] = 3;
	/* Another lowest value (a unit other than 1). */
	raw[23] = 1000 & 0xff;
	raw[22] = 1000 >> 8;
	t = pack(raw, 42, 0);
	expect_refused(t, "lowest");
	free(t);
	raw[22] = 0;
	raw[23] = 1;
	/* A run of zeros past the last count. */
	len = 40 + (size_t)zz_encode(raw + 40, -(int64_t)HIST_COUNTS - 1);
	raw[7] = (uint8_t)(len - 40);
	t = pack(raw, len, 0);
	expect_refused(t, "zeros");
	free(t);
	/* Counts beyond the highest value. */
	len = 40 + (size_t)zz_encode(raw + 40, -(int64_t)HIST_COUNTS);
	len += (size_t)zz_encode(raw + len, 1);
	raw[7] = (uint8_t)(len - 40);
	t = pack(raw, len, 0);
	expect_refused(t, "highest");
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_rfc4648),
		cmocka_unit_test(test_base64_round_trip),
		cmocka_unit_test(test_base64_rejects),
		cmocka_unit_test(test_zigzag_vectors),
		cmocka_unit_test(test_zigzag_round_trip),
		cmocka_unit_test(test_encoding_layout),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_decode_adds),
		cmocka_unit_test(test_decode_js_vector),
		cmocka_unit_test(test_decode_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
