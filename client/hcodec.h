/*
 * hcodec.h: HdrHistogram's V2 compressed encoding of a histogram, the form
 * interval logs (.hlog) and echoload's JSON carry: a compression header
 * (cookie 0x1c849314, length) around a zlib stream of a V2 encoding (cookie
 * 0x1c849313: base 0x1c849303 with the ZigZag LEB128 word-size flag) whose
 * payload is the counts array as ZigZag LEB128 numbers, runs of zeros as
 * negative numbers. Readers in Java, C, JS, Go and Rust decode it.
 */
#ifndef ECHOLOAD_HCODEC_H
#define ECHOLOAD_HCODEC_H

#include <stddef.h>
#include <stdint.h>

#include "hist.h"

#define HCODEC_ENCODING_COOKIE		UINT32_C(0x1c849313)
#define HCODEC_COMPRESSION_COOKIE	UINT32_C(0x1c849314)
#define HCODEC_COOKIE_BASE(c)		((c) & ~UINT32_C(0xf0))
/* cookie, payload length, normalizing index offset, significant figures,
 * lowest discernible value, highest trackable value, integer to double
 * conversion ratio: the V2 encoding's header, big-endian. */
#define HCODEC_HEADER_LEN		40
#define HCODEC_ZZ_MAX			9

/* ZigZag LEB128 as HdrHistogram writes it: up to 9 bytes, the ninth
 * carrying 8 bits. Returns the bytes written (1..9). */
int	zz_encode(uint8_t *buf, int64_t v);
/* Returns the bytes read, or -1 when len ends inside the number. */
int	zz_decode(const uint8_t *buf, size_t len, int64_t *v);

/* The compressed bytes of h (malloc'd, *len set), NULL if zlib fails. */
uint8_t	*hcodec_encode(const struct hist *h, size_t *len);
/* The same as base64 text (malloc'd, NUL-terminated). */
char	*hcodec_encode_text(const struct hist *h);

/*
 * Add an encoded histogram's counts to h. The encoding carries counts only:
 * h's total grows by their sum, min and max widen to the equivalence range
 * of the lowest and highest count, and sum grows by each count times the
 * middle of its range. Callers that know the exact min, max or sum (JSON
 * carries them, .hlog lines carry the max) set them afterwards. Returns 0,
 * or -1 with *why saying what is wrong; h is then unchanged.
 */
int	hcodec_decode(struct hist *h, const uint8_t *buf, size_t len,
	    const char **why);
int	hcodec_decode_text(struct hist *h, const char *text, size_t len,
	    const char **why);

/* What one encoding held, apart from what h held before. */
struct hcodec_stats {
	uint64_t	total;
	uint64_t	min;	/* lowest value equivalent to the lowest count */
	uint64_t	max_lo;	/* range of the highest count: the exact */
	uint64_t	max_hi;	/* maximum lies within it */
};
/* h may be NULL: the encoding is only checked and described. */
int	hcodec_decode_stats(struct hist *h, const char *text, size_t len,
	    struct hcodec_stats *, const char **why);

#endif
