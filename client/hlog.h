/*
 * hlog.h: HdrHistogram interval logs (.hlog, format version 1.3), written as
 * a run goes and read back by `echoload merge`. Values are microseconds;
 * Interval_Max is in milliseconds (the max value divisor is 1000), as a
 * header comment says for readers that scale.
 */
#ifndef ECHOLOAD_HLOG_H
#define ECHOLOAD_HLOG_H

#include <stdint.h>
#include <stdio.h>

#include "hist.h"
#include "run.h"
#include "timeline.h"

#define HLOG_MAX_DIVISOR	1000.0

/* What a run says about itself in the log's header comment. */
struct hlog_info {
	const char	*tag;
	uint64_t	 start_wall_ns;	/* the measured phase's start */
	/* StartTime and BaseTime: the connection phase's start where there
	 * is one (its connect line comes first), else start_wall_ns. */
	uint64_t	 base_wall_ns;
	const char	*mode;
	const char	*target;	/* as given */
	const char	*address;	/* as resolved */
	uint64_t	 message_size;
	unsigned	 connections;
	unsigned	 threads;
	unsigned	 pipeline;
	double		 rate;		/* 0: closed loop */
	double		 warmup_s;
};

/* The closing comment: what the histograms alone do not say. */
struct hlog_totals {
	double		 duration_s;
	struct counters	 c;
};

struct hlog_writer;

struct hlog_writer *hlog_writer_new(FILE *, uint64_t interval_s,
		    unsigned series);
int		 hlog_write_header(struct hlog_writer *,
		    const struct hlog_info *);
/* A series measured once a run (the connection phase's connect times):
 * one line from start_wall_ns (since the epoch) for length_s. */
int		 hlog_write_once(struct hlog_writer *, int series,
		    uint64_t start_wall_ns, double length_s, const struct hist *);
/* One interval of the run; a line per series once --hlog-interval is full. */
int		 hlog_write_interval(struct hlog_writer *,
		    const struct tl_interval *);
/* The last, partial interval and the totals. Returns 0, or -1 when any
 * write failed. */
int		 hlog_write_finish(struct hlog_writer *,
		    const struct hlog_totals *);
void		 hlog_writer_free(struct hlog_writer *);

/* An interval log as read: its header (when echoload wrote it), totals,
 * the whole-log histogram of each series and the intervals. */
struct hlog_file {
	int		 from_echoload;	/* our header comment was there */
	struct hlog_info info;		/* strings point into the buffers */
	char		 tag[160];
	char		 mode[32];
	char		 target[300];
	char		 address[300];
	int		 has_totals;
	struct hlog_totals totals;
	int		 has_start;
	double		 start_s;	/* StartTime, seconds since the epoch */
	double		 connect_start_s; /* the connect line's, or 0 */
	double		 connect_length_s;
	struct hist	*series[NSERIES];	/* NULL where absent */
	struct timeline	*tl;
	size_t		 lines;		/* interval lines */
};

/* Read path; -1 with err saying "PATH:LINE: what" for anything that is not
 * a valid log. hlog_file_free() in every case. */
int		 hlog_read(const char *path, struct hlog_file *, char *err,
		    size_t errlen);
void		 hlog_file_free(struct hlog_file *);

#endif
