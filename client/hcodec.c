/*
 * hcodec.c: HdrHistogram's V2 compressed encoding, both ways. echoload's
 * histogram has HdrHistogram's layout for lowest value 1, highest 2^32-1 and
 * 3 significant digits, so the counts array goes out index for index and
 * comes back the same way. Decoding is strict: any header, length, zlib or
 * count that does not fit is refused with a reason, never half applied.
 */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "base64.h"
#include "hcodec.h"

/* Compression header: cookie and the zlib stream's length. */
#define COMP_HEADER_LEN		8

int
zz_encode(uint8_t *buf, int64_t v)
{
	uint64_t	u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
	int		n = 0;

	while (n < 8 && u >= 0x80) {
		buf[n++] = (uint8_t)(u | 0x80);
		u >>= 7;
	}
	/* Eight groups of 7 bits leave 8 for the ninth byte, all of it. */
	buf[n++] = (uint8_t)u;
	return n;
}

int
zz_decode(const uint8_t *buf, size_t len, int64_t *v)
{
	uint64_t	u = 0;
	size_t		n;

	for (n = 0; n < 9; n++) {
		if (n == len)
			return -1;
		if (n == 8) {
			u |= (uint64_t)buf[n] << 56;
			break;
		}
		u |= (uint64_t)(buf[n] & 0x7f) << (7 * n);
		if ((buf[n] & 0x80) == 0)
			break;
	}
	*v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
	return (int)n + 1;
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void
put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static uint64_t
double_bits(double d)
{
	uint64_t	u;

	memcpy(&u, &d, sizeof u);
	return u;
}

/* Counts up to the one holding the maximum; a run of zeros is one
 * negative number (a lone zero stays 0, as the Java writer has it). */
static size_t
encode_counts(const struct hist *h, uint8_t *out)
{
	uint32_t	i, limit, zeros;
	size_t		n = 0;

	limit = h->total == 0 ? 0 : hist_index_of(h->max) + 1;
	for (i = 0; i < limit;) {
		if (h->counts[i] != 0) {
			n += zz_encode(out + n, (int64_t)h->counts[i++]);
			continue;
		}
		for (zeros = 0; i < limit && h->counts[i] == 0; i++)
			zeros++;
		n += zz_encode(out + n, zeros > 1 ? -(int64_t)zeros : 0);
	}
	return n;
}

static void
encode_header(uint8_t *p, size_t payload)
{
	put32(p, HCODEC_ENCODING_COOKIE);
	put32(p + 4, (uint32_t)payload);
	put32(p + 8, 0);			/* normalizing index offset */
	put32(p + 12, HIST_SIGFIGS);
	put64(p + 16, HIST_LOWEST);
	put64(p + 24, HIST_HIGHEST);
	put64(p + 32, double_bits(1.0));	/* integer to double ratio */
}

uint8_t *
hcodec_encode(const struct hist *h, size_t *len)
{
	uint8_t		*raw, *out;
	size_t		 payload;
	uLongf		 zlen;

	raw = malloc(HCODEC_HEADER_LEN + (size_t)HCODEC_ZZ_MAX * HIST_COUNTS);
	if (raw == NULL)
		return NULL;
	payload = encode_counts(h, raw + HCODEC_HEADER_LEN);
	encode_header(raw, payload);
	zlen = compressBound(HCODEC_HEADER_LEN + payload);
	if ((out = malloc(COMP_HEADER_LEN + zlen)) == NULL ||
	    compress(out + COMP_HEADER_LEN, &zlen, raw,
	    HCODEC_HEADER_LEN + payload) != Z_OK) {
		free(raw);
		free(out);
		return NULL;
	}
	free(raw);
	put32(out, HCODEC_COMPRESSION_COOKIE);
	put32(out + 4, (uint32_t)zlen);
	*len = COMP_HEADER_LEN + zlen;
	return out;
}

char *
hcodec_encode_text(const struct hist *h)
{
	uint8_t	*bin;
	char	*text;
	size_t	 len;

	if ((bin = hcodec_encode(h, &len)) == NULL)
		return NULL;
	if ((text = malloc(base64_encoded_len(len) + 1)) != NULL)
		base64_encode(bin, len, text);
	free(bin);
	return text;
}

/* Inflate exactly want bytes, and the stream must end there. */
static int
inflate_all(const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen,
    const char **why)
{
	/* One stream, reset for each histogram: a merge decodes thousands,
	 * and setting zlib up is most of a small one's cost. Histograms are
	 * decoded on the main thread only. */
	static z_stream	 zs;
	static int	 zs_ready;
	uint8_t		 hdr[HCODEC_HEADER_LEN];
	uint32_t	 payload;
	uint8_t		*buf = NULL;
	int		 rc;

	if (zs_ready)
		rc = inflateReset(&zs);
	else if ((rc = inflateInit(&zs)) == Z_OK)
		zs_ready = 1;
	if (rc != Z_OK) {
		*why = "zlib cannot start";
		return -1;
	}
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)inlen;
	zs.next_out = hdr;
	zs.avail_out = sizeof hdr;
	rc = inflate(&zs, Z_SYNC_FLUSH);
	if ((rc != Z_OK && rc != Z_STREAM_END) || zs.avail_out != 0) {
		*why = "the compressed data is damaged or cut short";
		goto fail;
	}
	if (HCODEC_COOKIE_BASE(get32(hdr)) !=
	    HCODEC_COOKIE_BASE(HCODEC_ENCODING_COOKIE)) {
		*why = "not a V2 histogram encoding (wrong cookie)";
		goto fail;
	}
	payload = get32(hdr + 4);
	if (payload > (uint32_t)HCODEC_ZZ_MAX * HIST_COUNTS) {
		*why = "payload length out of range";
		goto fail;
	}
	buf = malloc(HCODEC_HEADER_LEN + (size_t)payload + 1);
	if (buf == NULL) {
		*why = "out of memory";
		goto fail;
	}
	memcpy(buf, hdr, sizeof hdr);
	zs.next_out = buf + HCODEC_HEADER_LEN;
	/* One byte more than the payload: a longer stream shows. */
	zs.avail_out = payload + 1;
	rc = rc == Z_STREAM_END ? rc : inflate(&zs, Z_FINISH);
	if (rc != Z_STREAM_END || zs.avail_out != 1) {
		*why = "the compressed data is damaged, cut short or longer "
		    "than its payload length";
		goto fail;
	}
	*out = buf;
	*outlen = HCODEC_HEADER_LEN + payload;
	return 0;
fail:
	free(buf);
	return -1;
}

/* The header must describe echoload's own layout. */
static int
check_header(const uint8_t *p, const char **why)
{
	/* The normalizing index offset (p + 8) is left alone, as
	 * HdrHistogram.js's reader does: its writer puts 1 there for an
	 * unshifted histogram. The conversion ratio (p + 32) is 1 for
	 * integer histograms and does not change the counts. */
	if (get32(p + 12) != HIST_SIGFIGS) {
		*why = "significant digits differ from echoload's 3";
		return -1;
	}
	if (get64(p + 16) != HIST_LOWEST) {
		*why = "lowest discernible value differs from echoload's 1";
		return -1;
	}
	if (get64(p + 24) < 2) {
		*why = "highest trackable value out of range";
		return -1;
	}
	return 0;
}

/* The range of the values counted at index i: lowest, and its width. */
static inline uint64_t
index_lowest(uint32_t i)
{
	return i < HIST_SUB_COUNT ? i :
	    (uint64_t)((i & (HIST_HALF_COUNT - 1)) + HIST_HALF_COUNT) <<
	    ((i >> HIST_HALF_BITS) - 1);
}

static inline uint64_t
index_width(uint32_t i)
{
	return i < HIST_SUB_COUNT ? 1 : UINT64_C(1) << ((i >> HIST_HALF_BITS) - 1);
}

static inline uint64_t
index_highest(uint32_t i)
{
	uint64_t	hi = index_lowest(i) + index_width(i) - 1;

	return hi > HIST_HIGHEST ? HIST_HIGHEST : hi;
}

/* A count the payload holds: at most one per payload byte. */
struct count_at {
	uint32_t	index;
	uint64_t	count;
};

/* One pass over the counts: check them all, say what they hold (st), and
 * list the ones that are not zero, to be added only when all are good. */
static int
walk_counts(const uint8_t *p, size_t len, struct hcodec_stats *st,
    struct count_at *out, size_t *nout, const char **why)
{
	uint64_t	total = 0;
	uint32_t	i = 0, first = 0, last = 0;
	int64_t		v;
	size_t		off = 0, n = 0;
	int		k;

	while (off < len) {
		if (p[off] < 0x80) {	/* one byte: most counts */
			v = (int64_t)(p[off] >> 1) ^ -(int64_t)(p[off] & 1);
			off++;
		} else if ((k = zz_decode(p + off, len - off, &v)) < 0) {
			*why = "a count is cut short";
			return -1;
		} else
			off += (size_t)k;
		if (v < 0) {
			if (v < -(int64_t)HIST_COUNTS ||
			    (uint64_t)i + (uint64_t)-v > HIST_COUNTS) {
				*why = "a run of zeros goes past the last count";
				return -1;
			}
			i += (uint32_t)-v;
			continue;
		}
		if (i >= HIST_COUNTS) {
			*why = "counts go past echoload's highest value";
			return -1;
		}
		if (v > 0) {
			if (n == 0)
				first = i;
			last = i;
			total += (uint64_t)v;
			out[n].index = i;
			out[n++].count = (uint64_t)v;
		}
		i++;
	}
	*nout = n;
	memset(st, 0, sizeof *st);
	if (total > 0) {
		st->total = total;
		st->min = index_lowest(first);
		st->max_lo = index_lowest(last);
		st->max_hi = index_highest(last);
	}
	return 0;
}

static void
add_counts(struct hist *h, const struct count_at *c, size_t n,
    const struct hcodec_stats *st)
{
	size_t	k;

	if (st->total == 0)
		return;
	for (k = 0; k < n; k++) {
		h->counts[c[k].index] += c[k].count;
		h->sum += c[k].count * (index_lowest(c[k].index) +
		    index_width(c[k].index) / 2);
	}
	h->total += st->total;
	if (st->min < h->min)
		h->min = st->min;
	if (st->max_hi > h->max)
		h->max = st->max_hi;
}

static int
decode(struct hist *h, const uint8_t *buf, size_t len,
    struct hcodec_stats *st, const char **why)
{
	struct count_at	*counts;
	uint8_t		*raw;
	size_t		 rawlen, zlen, payload, n = 0;
	int		 rv;

	if (len < COMP_HEADER_LEN) {
		*why = "too short for a compressed histogram";
		return -1;
	}
	if (HCODEC_COOKIE_BASE(get32(buf)) !=
	    HCODEC_COOKIE_BASE(HCODEC_COMPRESSION_COOKIE)) {
		*why = "not a V2 compressed histogram (wrong cookie)";
		return -1;
	}
	zlen = get32(buf + 4);
	if (zlen != len - COMP_HEADER_LEN) {
		*why = "compressed length does not match the data";
		return -1;
	}
	if (inflate_all(buf + COMP_HEADER_LEN, zlen, &raw, &rawlen, why) != 0)
		return -1;
	/* Check everything (and count) first: a bad count half way must
	 * not leave half the counts added. */
	payload = rawlen - HCODEC_HEADER_LEN;
	counts = malloc((payload + 1) * sizeof *counts);
	if (counts == NULL) {
		free(raw);
		*why = "out of memory";
		return -1;
	}
	rv = check_header(raw, why) == 0 && walk_counts(raw +
	    HCODEC_HEADER_LEN, payload, st, counts, &n, why) == 0 ? 0 : -1;
	if (rv == 0 && h != NULL)
		add_counts(h, counts, n, st);
	free(counts);
	free(raw);
	return rv;
}

int
hcodec_decode(struct hist *h, const uint8_t *buf, size_t len,
    const char **why)
{
	struct hcodec_stats	st;

	return decode(h, buf, len, &st, why);
}

int
hcodec_decode_text(struct hist *h, const char *text, size_t len,
    const char **why)
{
	struct hcodec_stats	st;

	return hcodec_decode_stats(h, text, len, &st, why);
}

int
hcodec_decode_stats(struct hist *h, const char *text, size_t len,
    struct hcodec_stats *st, const char **why)
{
	uint8_t	*bin;
	long	 n;
	int	 rv;

	if ((bin = malloc(base64_decoded_max(len) + 1)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	if ((n = base64_decode(text, len, bin)) < 0) {
		free(bin);
		*why = "not base64";
		return -1;
	}
	rv = decode(h, bin, (size_t)n, st, why);
	free(bin);
	return rv;
}
