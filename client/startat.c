/*
 * startat.c: --start-at and the clocks behind it. The run keeps time in
 * CLOCK_MONOTONIC (immune to clock steps while it runs); the start moment is
 * given by the wall clock, which NTP or PTP keeps in step across hosts. The
 * two are tied by reading both back to back, once, when a time is converted.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "echoload.h"
#include "startat.h"
#include "util.h"

#define NS	UINT64_C(1000000000)
/* Later than any run: 9999-12-31T23:59:59Z. */
#define LATEST_S	UINT64_C(253402300799)

uint64_t
wall_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

uint64_t
mono_to_wall(uint64_t mono)
{
	uint64_t	m = now_ns(), w = wall_ns();

	return mono >= m ? w + (mono - m) : w - (m - mono);
}

uint64_t
wall_to_mono(uint64_t wall)
{
	uint64_t	m = now_ns(), w = wall_ns();

	return wall > w ? m + (wall - w) : 0;
}

const char *
format_rfc3339(char *buf, size_t len, uint64_t wall)
{
	struct tm	tm;
	time_t		s = (time_t)(wall / NS);
	char		day[32];

	gmtime_r(&s, &tm);
	strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03uZ", day,
	    (unsigned)(wall % NS / UINT64_C(1000000)));
	return buf;
}

/* Digits after a decimal point, as nanoseconds (beyond 9 are dropped). */
static const char *
fraction(const char *p, uint64_t *ns)
{
	uint64_t	scale = NS / 10;

	*ns = 0;
	if (!isdigit((unsigned char)*p))
		return NULL;
	for (; isdigit((unsigned char)*p); p++, scale /= 10)
		*ns += (uint64_t)(*p - '0') * scale;
	return p;
}

static int
unix_time(const char *s, uint64_t *out)
{
	uint64_t	sec = 0, frac = 0;
	const char	*p = s;

	for (; isdigit((unsigned char)*p); p++) {
		sec = sec * 10 + (uint64_t)(*p - '0');
		if (sec > LATEST_S)
			return -1;
	}
	if (p == s)
		return -1;
	if (*p == '.' && (p = fraction(p + 1, &frac)) == NULL)
		return -1;
	if (*p != '\0')
		return -1;
	*out = sec * NS + frac;
	return 0;
}

static int
digits(const char **pp, int n, int *out)
{
	const char	*p = *pp;
	int		 v = 0, i;

	for (i = 0; i < n; i++, p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		v = v * 10 + (*p - '0');
	}
	*pp = p;
	*out = v;
	return 0;
}

static int
expect(const char **pp, const char *any)
{
	if (**pp == '\0' || strchr(any, **pp) == NULL)
		return -1;
	(*pp)++;
	return 0;
}

/* RFC 3339 section 5.6: full-date "T" full-time, with Z or +hh:mm. */
static int
rfc3339_time(const char *s, uint64_t *out)
{
	const char	*p = s;
	struct tm	 tm;
	uint64_t	 frac = 0;
	int		 y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	time_t		 t;

	if (digits(&p, 4, &y) || expect(&p, "-") || digits(&p, 2, &mo) ||
	    expect(&p, "-") || digits(&p, 2, &d) || expect(&p, "Tt ") ||
	    digits(&p, 2, &h) || expect(&p, ":") || digits(&p, 2, &mi) ||
	    expect(&p, ":") || digits(&p, 2, &sec))
		return -1;
	if (*p == '.' && (p = fraction(p + 1, &frac)) == NULL)
		return -1;
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (digits(&p, 2, &oh) || expect(&p, ":") || digits(&p, 2, &om))
			return -1;
	} else
		return -1;
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || sec > 60 || oh > 23 || om > 59 || y < 1970)
		return -1;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	/* timegm normalizes 31 February into March: refuse it. */
	if (tm.tm_mday != d || tm.tm_mon != mo - 1)
		return -1;
	t -= (time_t)sign * (oh * 3600 + om * 60);
	if (t < 0)
		return -1;
	*out = (uint64_t)t * NS + frac;
	return 0;
}

int
parse_start_time(const char *s, uint64_t *ns, const char **why)
{
	if (unix_time(s, ns) == 0 || rfc3339_time(s, ns) == 0) {
		if (*ns == 0) {
			*why = "not a time after the epoch";
			return -1;
		}
		return 0;
	}
	*why = "not Unix seconds (1764628200.5) or an RFC 3339 time "
	    "(2026-12-01T22:30:00Z)";
	return -1;
}

int
tag_valid(const char *s)
{
	size_t	n = 0;

	/* A tag goes into .hlog comments, CSV fields and file names:
	 * letters, digits and . _ - only. */
	for (; s[n] != '\0'; n++)
		if (!isalnum((unsigned char)s[n]) && strchr("._-", s[n]) == NULL)
			return 0;
	return n > 0 && n <= MAX_TAG_LEN;
}
