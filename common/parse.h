/*
 * parse.h: parsers for the value syntaxes that both the config file and the
 * command lines accept. Each returns 0 on success and -1 with a short reason
 * in *why (a static string) on failure; nothing is written to *out then.
 */
#ifndef ECHOLOAD_PARSE_H
#define ECHOLOAD_PARSE_H

#include <stdint.h>

/* Decimal unsigned integer in [min, max]. */
int	parse_uint(const char *, uint64_t min, uint64_t max, uint64_t *out,
	    const char **why);
/* Size in bytes: a number with an optional suffix b, k, m, g (powers of 1024,
 * case-insensitive, "kb"/"kib" spellings accepted). */
int	parse_size(const char *, uint64_t *out, const char **why);
/* Duration in microseconds: a number (decimals allowed) with an optional
 * suffix us, ms, s, m, h. A bare number is seconds. */
int	parse_duration(const char *, uint64_t *out_us, const char **why);
/* Boolean: yes/no, on/off, true/false, 1/0. */
int	parse_bool(const char *, int *out, const char **why);

#endif
