/*
 * rate.c: the one option value that opts.c and sweep.c both parse, a rate
 * ("20k"), so that the sweep's range parser sits below opts.c without
 * calling back into it (doc/ARCHITECTURE.md, "echoload: the rooms").
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "echoload.h"

/* A rate: a positive decimal with an optional k or m (powers of 1000). */
int
opts_parse_rate(const char *s, double *out, const char **why)
{
	char	*end;
	double	 v;

	if (*s == '\0' || *s == '-' || *s == '+') {
		*why = "not a positive number";
		return -1;
	}
	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno != 0 || !isfinite(v)) {
		*why = "not a number";
		return -1;
	}
	if (*end == 'k' || *end == 'K') {
		v *= 1e3;
		end++;
	} else if (*end == 'm' || *end == 'M') {
		v *= 1e6;
		end++;
	}
	if (*end != '\0') {
		*why = "trailing characters";
		return -1;
	}
	if (v <= 0 || v > 1e9) {
		*why = "out of range (above 0, at most 1000000000)";
		return -1;
	}
	*out = v;
	return 0;
}
