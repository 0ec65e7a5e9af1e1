/*
 * report.h: how a run's figures are shown: the human summary, the progress
 * line, JSON, CSV (one row a second) and HdrHistogram's .hgrm text.
 */
#ifndef ECHOLOAD_REPORT_H
#define ECHOLOAD_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "hist.h"
#include "run.h"

/* One second (or the last part of one) of the run. */
struct interval {
	uint64_t	 second;
	double		 length_s;
	struct counters	 c;
	struct hist	*lat;
	struct hist	*svc;
	const char	*tag;
};

/* "85us", "1.23ms", "2.50s" into buf. */
const char	*report_duration(char *buf, size_t len, uint64_t us);

void	report_warmup(FILE *, uint64_t warmup_us);
/* The progress line of the connection phase. */
void	report_connecting(FILE *, unsigned up, unsigned failed, unsigned asked);
/* "timed out 2990, refused 10" into buf: the phase's failures by reason. */
const char *report_connect_reasons(char *buf, size_t len,
	    const struct connect_stats *);
void	report_progress(FILE *, const struct interval *);
void	report_progress_clear(FILE *);
void	report_csv_header(FILE *);
void	report_csv_row(FILE *, const struct interval *);

/* Did the open loop reach its target (achieved within 1%)? */
int	report_rate_reached(const struct run *);
void	report_text(FILE *, const struct run *);
void	report_json(FILE *, const struct run *);
int	report_hgrm(FILE *, const struct run *);
/* The .hlog's closing totals; 0, or -1 on a write error. */
int	report_hlog_finish(const struct run *);

/* JSON pieces other documents (sweeps) are made of. */
void	report_json_string(FILE *, const char *);
void	report_json_hist(FILE *, const struct hist *);
void	report_json_head(FILE *, const struct run *);
/* "connection_phase" and "reconnects", without a trailing comma. */
void	report_json_connect(FILE *, const struct run *);

/* A sweep's or search's table: its head, then one row per step. */
void	report_sweep_head(FILE *, const struct run *);
void	report_sweep_tail(FILE *, const struct run *);
void	report_step_row(FILE *, unsigned step, double target,
	    double achieved, uint64_t errors, const struct hist *lat,
	    const struct hist *svc, const char *verdict);

#endif
