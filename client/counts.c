/*
 * counts.c: the plain data of what echoload counts, which every room reads:
 * the names of the error kinds and of the connection-failure reasons (in
 * text, CSV, JSON and .hlog output), the arithmetic of the connection
 * counters (struct connect_stats, struct reconnect_stats) and the map from
 * a connect's errno to its reason. It calls nothing in echoload above
 * hist.c (doc/ARCHITECTURE.md, "echoload: the rooms").
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "connect.h"
#include "echoload.h"

static const char *err_names[] = {
	[ERR_CONNECT] = "connect",
	[ERR_RESET] = "reset",
	[ERR_CLOSED] = "closed",
	[ERR_TIMEOUT] = "timeout",
	[ERR_MISMATCH] = "mismatch",
	[ERR_UNEXPECTED] = "unexpected",
	[ERR_TLS] = "tls",
};

const char *
err_name(enum err_kind k)
{
	return err_names[k];
}

static const char *fail_names[] = {
	[CF_REFUSED] = "refused",
	[CF_TIMEOUT] = "timed_out",
	[CF_ADDRNOTAVAIL] = "address_not_available",
	[CF_NOFILE] = "too_many_open_files",
	[CF_RESET] = "reset",
	[CF_TLS] = "tls",
	[CF_OTHER] = "other",
};

static const char *fail_texts[] = {
	[CF_REFUSED] = "refused",
	[CF_TIMEOUT] = "timed out",
	[CF_ADDRNOTAVAIL] = "address not available",
	[CF_NOFILE] = "too many open files",
	[CF_RESET] = "reset",
	[CF_TLS] = "TLS handshake",
	[CF_OTHER] = "other",
};

const char *
connect_fail_name(enum conn_fail f)
{
	return fail_names[f];
}

const char *
connect_fail_text(enum conn_fail f)
{
	return fail_texts[f];
}

uint64_t
connect_failed_total(const struct connect_stats *st)
{
	uint64_t	n = 0;
	int		i;

	for (i = 0; i < CF_MAX; i++)
		n += st->failed[i];
	return n;
}

uint64_t
connect_not_tried(const struct connect_stats *st)
{
	uint64_t	done = st->established + connect_failed_total(st);

	return st->asked > done ? st->asked - done : 0;
}

void
connect_stats_init(struct connect_stats *st)
{
	memset(st, 0, offsetof(struct connect_stats, lat));
	hist_init(&st->lat);
}

void
connect_stats_add(struct connect_stats *dst, const struct connect_stats *src)
{
	int	i;

	if (src->asked == 0)
		return;
	if (dst->asked == 0 || src->start_ns < dst->start_ns)
		dst->start_ns = src->start_ns;
	if (src->end_ns > dst->end_ns)
		dst->end_ns = src->end_ns;
	dst->asked += src->asked;
	dst->established += src->established;
	dst->retried += src->retried;
	for (i = 0; i < CF_MAX; i++)
		dst->failed[i] += src->failed[i];
	hist_merge(&dst->lat, &src->lat);
}

void
reconnect_stats_add(struct reconnect_stats *dst,
    const struct reconnect_stats *src)
{
	dst->established += src->established;
	dst->failed += src->failed;
	dst->skipped += src->skipped;
	hist_merge(&dst->lat, &src->lat);
}

enum conn_fail
connect_fail_of(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return CF_REFUSED;
	case ETIMEDOUT:
		return CF_TIMEOUT;
	case EADDRNOTAVAIL:
	case EADDRINUSE:
		return CF_ADDRNOTAVAIL;
	case EMFILE:
	case ENFILE:
		return CF_NOFILE;
	case ECONNRESET:
	case EPIPE:
	case ECONNABORTED:
		return CF_RESET;
	default:
		return CF_OTHER;
	}
}
