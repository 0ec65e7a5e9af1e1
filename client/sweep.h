/*
 * sweep.h: rate sweeps and SLO searches: the -R FROM:TO[:STEP], --steps,
 * --slo and --slo-precision syntax, the choice of each next rate, the
 * verdict, and the table and JSON that show them.
 */
#ifndef ECHOLOAD_SWEEP_H
#define ECHOLOAD_SWEEP_H

#include <stddef.h>
#include <stdio.h>

#include "echoload.h"

struct run;

/* Option parsing; each returns 0, or -1 with one line in err naming the
 * option. */
int	sweep_parse_range(struct opts *, const char *arg, char *err,
	    size_t len);
int	slo_parse(struct slo *, const char *arg, char *err, size_t len);
int	sweep_parse_precision(struct opts *, const char *arg, char *err,
	    size_t len);
/* After all options: the combination makes sense, and sweep is set. */
int	sweep_check(struct opts *, char *err, size_t len);

/*
 * Run the sweep or search on r (opened, no step run yet), close r, print
 * the table to out and, when json is not NULL, the whole document to it.
 * Returns the
 * exit status: 0 when it reached an answer, 1 when the SLO was not met
 * even at FROM or the run was stopped before any step.
 */
int	sweep_run(struct run *, FILE *out, FILE *json);

#endif
