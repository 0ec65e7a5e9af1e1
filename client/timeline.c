/*
 * timeline.c: the run's interval record. The main thread adds one interval
 * a second (the workers' figures, summed); each histogram is encoded as it
 * comes, a few hundred bytes a series, so an hour of run stays small.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hcodec.h"
#include "timeline.h"
#include "util.h"

static const char *series_names[NSERIES] = {
	[SERIES_RESPONSE] = "response",
	[SERIES_SERVICE] = "service",
	[SERIES_CONNECT] = "connect",
	[SERIES_RECONNECT] = "reconnect",
};

const char *
series_name(enum series s)
{
	return series_names[s];
}

int
series_by_name(const char *name, size_t len)
{
	int	s;

	for (s = 0; s < NSERIES; s++)
		if (strlen(series_names[s]) == len &&
		    memcmp(series_names[s], name, len) == 0)
			return s;
	return -1;
}

struct timeline *
timeline_new(unsigned series)
{
	struct timeline	*tl = xcalloc(1, sizeof *tl);

	tl->series = series;
	return tl;
}

void
timeline_free(struct timeline *tl)
{
	size_t	i;
	int	s;

	if (tl == NULL)
		return;
	for (i = 0; i < tl->n; i++)
		for (s = 0; s < NSERIES; s++)
			free(tl->iv[i].hist[s]);
	free(tl->iv);
	free(tl);
}

struct tl_interval *
timeline_push(struct timeline *tl)
{
	if (tl->n == tl->cap) {
		tl->cap = tl->cap ? tl->cap * 2 : 64;
		tl->iv = xrealloc(tl->iv, tl->cap * sizeof *tl->iv);
	}
	memset(&tl->iv[tl->n], 0, sizeof tl->iv[tl->n]);
	return &tl->iv[tl->n++];
}

static char *
encode(const struct hist *h)
{
	char	*text;

	/* zlib fails only for want of memory: fatal, as elsewhere. */
	if ((text = hcodec_encode_text(h)) == NULL) {
		fprintf(stderr, "echoload: out of memory encoding a "
		    "histogram\n");
		abort();
	}
	return text;
}

void
timeline_add(struct timeline *tl, double start_s, double length_s,
    const struct counters *c, struct hist *const h[NSERIES])
{
	struct tl_interval	*iv = timeline_push(tl);
	int			 s;

	iv->start_s = start_s;
	iv->length_s = length_s;
	iv->c = *c;
	for (s = 0; s < NSERIES; s++) {
		if ((tl->series & SERIES_BIT(s)) == 0 || h[s] == NULL)
			continue;
		iv->max[s] = hist_max(h[s]);
		iv->hist[s] = encode(h[s]);
	}
}
