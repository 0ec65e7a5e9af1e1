/*
 * logsink_bench.c: how many access-log lines per second one aio log sink
 * writes to a file. The producer runs on the sink's own thread and event
 * loop, as echod's main thread does, and hands lines over in batches the
 * size of a worker's hand-off (32 KiB).
 *
 *   max:  append whenever the buffer has room (the sink's ceiling).
 *   rate: append at RATE lines/s for SECONDS and count dropped lines,
 *         which must stay 0.
 *
 * usage: logsink_bench FILE max SECONDS
 *        logsink_bench FILE rate RATE SECONDS
 * Build: bench/logsink_bench.sh compiles it against server/logsink.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "logsink.h"
#include "util.h"

#define BUFFER		(4 * 1024 * 1024)	/* echod's default */
#define BATCH_BYTES	(32 * 1024)

static size_t
fill_batch(char *buf, size_t cap, uint64_t *seq, size_t max_lines,
    size_t *nlines)
{
	size_t	len = 0;
	int	n;

	*nlines = 0;
	while (*nlines < max_lines && cap - len > 256) {
		n = snprintf(buf + len, cap - len,
		    "2025-06-01T12:00:00.%06lluZ listener=main "
		    "peer=127.0.0.1:%llu duration=0.000123 bytes_in=64 "
		    "bytes_out=64 reason=\"client closed\"\n",
		    (unsigned long long)(*seq % 1000000),
		    (unsigned long long)(1024 + *seq % 60000));
		len += (size_t)n;
		(*seq)++;
		(*nlines)++;
	}
	return len;
}

int
main(int argc, char **argv)
{
	struct event_base	*base;
	struct logsink		*s;
	struct logsink_stats	 st;
	char			 err[256], *batch;
	uint64_t		 seq = 0, start, end, now, due;
	double			 rate = 0, secs;
	size_t			 len, nlines;
	int			 max_mode;
	struct timespec		 ts = { 0, 100000 };

	if (argc < 4 || (strcmp(argv[2], "rate") == 0 && argc < 5)) {
		fprintf(stderr, "usage: %s FILE max SECONDS | FILE rate RATE "
		    "SECONDS\n", argv[0]);
		return 2;
	}
	max_mode = strcmp(argv[2], "max") == 0;
	if (max_mode)
		secs = atof(argv[3]);
	else {
		rate = atof(argv[3]);
		secs = atof(argv[4]);
	}
	base = event_base_new();
	unlink(argv[1]);
	if ((s = logsink_open(argv[1], BUFFER, NULL, err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	logsink_start(s, base);
	batch = xmalloc(BATCH_BYTES);
	start = now_us();
	end = start + (uint64_t)(secs * 1e6);
	while ((now = now_us()) < end) {
		if (max_mode) {
			logsink_stats(s, &st);
			if (st.bytes_queued + BATCH_BYTES <= BUFFER) {
				len = fill_batch(batch, BATCH_BYTES, &seq,
				    SIZE_MAX, &nlines);
				logsink_append(s, batch, len, nlines);
			}
		} else {
			due = (uint64_t)((double)(now - start) * rate / 1e6);
			while (seq < due) {
				len = fill_batch(batch, BATCH_BYTES, &seq,
				    due - seq, &nlines);
				logsink_append(s, batch, len, nlines);
			}
		}
		event_base_loop(base, EVLOOP_NONBLOCK);
		logsink_stats(s, &st);
		if (!max_mode || st.bytes_queued + BATCH_BYTES > BUFFER)
			nanosleep(&ts, NULL);
	}
	now = now_us();
	while (!logsink_idle(s))
		event_base_loop(base, EVLOOP_ONCE);
	logsink_stats(s, &st);
	printf("mode=%s seconds=%.2f lines=%llu written=%llu dropped=%llu "
	    "writes=%llu mean_write_kib=%.0f lines_per_s=%.0f "
	    "drain_ms=%.1f\n", max_mode ? "max" : "rate",
	    (double)(now - start) / 1e6, (unsigned long long)seq,
	    (unsigned long long)st.lines_written,
	    (unsigned long long)st.lines_dropped,
	    (unsigned long long)st.writes,
	    st.writes ? (double)st.bytes_written / st.writes / 1024 : 0,
	    (double)st.lines_written / ((double)(now_us() - start) / 1e6),
	    (double)(now_us() - now) / 1e3);
	logsink_free(s);
	free(batch);
	event_base_free(base);
	unlink(argv[1]);
	return st.lines_dropped == 0 ? 0 : 1;
}
