/*
 * parse.c: number, size, duration and boolean parsing for config values and
 * command-line options. Strict: trailing garbage, signs, empty strings and
 * overflow are all rejected, so a typo never silently becomes a default.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parse.h"

/* Split "123.5ms" into its number and its unit. */
static int
split_number(const char *s, double *num, uint64_t *whole, int *is_whole,
    const char **unit, const char **why)
{
	const char	*p = s;
	char		*end;
	unsigned long long ull;

	if (s == NULL || *s == '\0') {
		*why = "empty value";
		return -1;
	}
	if (!isdigit((unsigned char)*p) && *p != '.') {
		*why = "not a number";
		return -1;
	}
	errno = 0;
	ull = strtoull(p, &end, 10);
	if (errno == ERANGE) {
		*why = "number too large";
		return -1;
	}
	if (*end == '.') {
		errno = 0;
		*num = strtod(p, &end);
		if (errno == ERANGE || end == p) {
			*why = "not a number";
			return -1;
		}
		*is_whole = 0;
	} else {
		if (end == p) {
			*why = "not a number";
			return -1;
		}
		*whole = ull;
		*num = (double)ull;
		*is_whole = 1;
	}
	*unit = end;
	return 0;
}

int
parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
    const char **why)
{
	double		 num;
	uint64_t	 v = 0;
	int		 whole = 0;
	const char	*unit;

	if (split_number(s, &num, &v, &whole, &unit, why) != 0)
		return -1;
	if (!whole || *unit != '\0') {
		*why = "not a whole number";
		return -1;
	}
	if (v < min || v > max) {
		*why = "out of range";
		return -1;
	}
	*out = v;
	return 0;
}

static int
scale(double num, uint64_t whole, int is_whole, uint64_t mult, uint64_t *out,
    const char **why)
{
	if (is_whole) {
		if (mult != 0 && whole > UINT64_MAX / mult) {
			*why = "value too large";
			return -1;
		}
		*out = whole * mult;
		return 0;
	}
	num *= (double)mult;
	if (num >= 18446744073709551615.0) {
		*why = "value too large";
		return -1;
	}
	*out = (uint64_t)(num + 0.5);
	return 0;
}

struct unit {
	const char	*name;
	uint64_t	 mult;
};

/* A number followed by one of units; case matters where the units say so
 * ("m" is minutes but "M" is not a duration unit at all). */
static int
parse_units(const char *s, const struct unit *units, size_t nunits,
    int nocase, uint64_t *out, const char **why, const char *unknown)
{
	double		 num;
	uint64_t	 whole = 0;
	int		 is_whole = 0;
	const char	*unit;
	size_t		 i;

	if (split_number(s, &num, &whole, &is_whole, &unit, why) != 0)
		return -1;
	for (i = 0; i < nunits; i++) {
		if ((nocase ? strcasecmp(unit, units[i].name) :
		    strcmp(unit, units[i].name)) == 0)
			return scale(num, whole, is_whole, units[i].mult, out,
			    why);
	}
	*why = unknown;
	return -1;
}

int
parse_size(const char *s, uint64_t *out, const char **why)
{
	static const struct unit units[] = {
		{ "", 1 }, { "b", 1 },
		{ "k", 1ull << 10 }, { "kb", 1ull << 10 }, { "kib", 1ull << 10 },
		{ "m", 1ull << 20 }, { "mb", 1ull << 20 }, { "mib", 1ull << 20 },
		{ "g", 1ull << 30 }, { "gb", 1ull << 30 }, { "gib", 1ull << 30 },
	};

	return parse_units(s, units, sizeof(units) / sizeof(units[0]), 1, out,
	    why, "unknown size unit (use b, k, m or g)");
}

int
parse_duration(const char *s, uint64_t *out, const char **why)
{
	static const struct unit units[] = {
		{ "", 1000000 }, { "us", 1 }, { "ms", 1000 }, { "s", 1000000 },
		{ "m", 60000000 }, { "min", 60000000 }, { "h", 3600000000ull },
	};

	return parse_units(s, units, sizeof(units) / sizeof(units[0]), 0, out,
	    why, "unknown duration unit (use us, ms, s, m or h)");
}

int
parse_bool(const char *s, int *out, const char **why)
{
	static const char *yes[] = { "yes", "on", "true", "1" };
	static const char *no[] = { "no", "off", "false", "0" };
	size_t	i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	*why = "not a boolean (use yes or no)";
	return -1;
}
