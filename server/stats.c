/*
 * stats.c: adding up the per-worker and per-listener counters, for the
 * summary printed at exit and for the admin endpoint.
 */
#include <stdio.h>
#include <string.h>

#include "server.h"
#include "stats.h"
#include "tls_stats.h"
#include "worker.h"

void
stats_sum(struct server *s, struct stats_total *t)
{
	struct listener	*l;
	int		 i, j;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < worker_count(); i++) {
		struct worker_stats *ws = &worker_at(i)->stats;

		t->conns_open += counter_get(&ws->conns_open);
		t->conns_total += counter_get(&ws->conns_total);
		t->bytes_in += counter_get(&ws->bytes_in);
		t->bytes_out += counter_get(&ws->bytes_out);
		t->timed_out += counter_get(&ws->timed_out);
		t->errors += counter_get(&ws->errors);
		t->tls_handshakes += counter_get(&ws->tls_handshakes);
		t->tls_handshake_failed +=
		    counter_get(&ws->tls_handshake_failed);
		t->tls_resumed += counter_get(&ws->tls_resumed);
		t->proxy_v1 += counter_get(&ws->proxy_v1);
		t->proxy_v2 += counter_get(&ws->proxy_v2);
		t->proxy_local += counter_get(&ws->proxy_local);
		for (j = 0; j < PROXY_ERR_COUNT; j++)
			t->proxy_rejected[j] +=
			    counter_get(&ws->proxy_rejected[j]);
	}
	TAILQ_FOREACH(l, &s->listeners, entry) {
		t->refused += atomic_load(&l->stats.refused);
		t->accept_errors += atomic_load(&l->stats.accept_errors);
	}
}

static uint64_t
proxy_rejected(const struct stats_total *t)
{
	uint64_t	n = 0;
	int		i;

	for (i = 0; i < PROXY_ERR_COUNT; i++)
		n += t->proxy_rejected[i];
	return n;
}

void
stats_print_summary(struct server *s)
{
	struct stats_total	t;

	stats_sum(s, &t);
	fprintf(stderr, "echod: stats: connections %llu, bytes in %llu, "
	    "bytes out %llu, timed out %llu, errors %llu, refused %llu, "
	    "accept errors %llu\n",
	    (unsigned long long)t.conns_total,
	    (unsigned long long)t.bytes_in, (unsigned long long)t.bytes_out,
	    (unsigned long long)t.timed_out, (unsigned long long)t.errors,
	    (unsigned long long)t.refused,
	    (unsigned long long)t.accept_errors);
	if (t.proxy_v1 + t.proxy_v2 > 0 || proxy_rejected(&t) > 0) {
		char	line[512];
		size_t	n = 0;
		int	i;

		for (i = 0; i < PROXY_ERR_COUNT && n < sizeof(line); i++)
			n += (size_t)snprintf(line + n, sizeof(line) - n,
			    "%s%s %llu", i ? ", " : "",
			    proxy_error_name((enum proxy_error)i),
			    (unsigned long long)t.proxy_rejected[i]);
		fprintf(stderr, "echod: proxy stats: headers v1 %llu, v2 %llu "
		    "(local %llu), rejected %llu (%s)\n",
		    (unsigned long long)t.proxy_v1,
		    (unsigned long long)t.proxy_v2,
		    (unsigned long long)t.proxy_local,
		    (unsigned long long)proxy_rejected(&t), line);
	}
	if (s->tls_ctx != NULL) {
		struct tls_stats	ts;
		char			line[1024];

		tls_stats_sum(&ts);
		tls_stats_format(&ts, line, sizeof(line));
		fprintf(stderr, "echod: tls stats: %s\n", line);
	}
}
