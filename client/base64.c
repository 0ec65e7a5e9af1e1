/*
 * base64.c: RFC 4648 base64 (the standard alphabet, with padding), strict
 * on decode: a wrong character, a length that is not a multiple of four or
 * padding anywhere but at the end is refused rather than skipped, so that a
 * damaged log line is reported, not half read.
 */
#include <string.h>

#include "base64.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
base64_encoded_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

void
base64_encode(const uint8_t *in, size_t n, char *out)
{
	uint32_t	v;
	size_t		i;

	for (i = 0; i + 3 <= n; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*out++ = alphabet[v >> 18];
		*out++ = alphabet[(v >> 12) & 63];
		*out++ = alphabet[(v >> 6) & 63];
		*out++ = alphabet[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)in[i] << 16;
		*out++ = alphabet[v >> 18];
		*out++ = alphabet[(v >> 12) & 63];
		*out++ = '=';
		*out++ = '=';
	} else if (n - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*out++ = alphabet[v >> 18];
		*out++ = alphabet[(v >> 12) & 63];
		*out++ = alphabet[(v >> 6) & 63];
		*out++ = '=';
	}
	*out = '\0';
}

size_t
base64_decoded_max(size_t len)
{
	return len / 4 * 3;
}

/* Each character's six bits; 64 for a character that is none. */
static uint8_t	sextets[256];

static void
sextets_init(void)
{
	int	i;

	memset(sextets, 64, sizeof sextets);
	for (i = 0; i < 64; i++)
		sextets[(unsigned char)alphabet[i]] = (uint8_t)i;
}

static int
sextet(char c)
{
	/* Filled on first use; the same bytes from any thread. */
	if (sextets['A'] != 0 || sextets['B'] != 1)
		sextets_init();
	return sextets[(unsigned char)c] == 64 ? -1 : sextets[(unsigned char)c];
}

long
base64_decode(const char *in, size_t len, uint8_t *out)
{
	size_t	i, o = 0, pad = 0;
	int	s[4], k;
	uint32_t v;

	if (len % 4 != 0)
		return -1;
	if (len > 0 && in[len - 1] == '=')
		pad = in[len - 2] == '=' ? 2 : 1;
	for (i = 0; i < len; i += 4) {
		for (k = 0; k < 4; k++) {
			if (i + 4 == len && k >= 4 - (int)pad) {
				s[k] = 0;
				continue;
			}
			if ((s[k] = sextet(in[i + k])) < 0)
				return -1;
		}
		v = (uint32_t)s[0] << 18 | (uint32_t)s[1] << 12 |
		    (uint32_t)s[2] << 6 | (uint32_t)s[3];
		out[o++] = (uint8_t)(v >> 16);
		if (i + 4 < len || pad < 2)
			out[o++] = (uint8_t)(v >> 8);
		if (i + 4 < len || pad < 1)
			out[o++] = (uint8_t)v;
	}
	return (long)o;
}
