/*
 * tls_stats.c: the TLS counters. Each worker's set has one writer, the
 * worker (relaxed stores, as in stats.h); the main thread reads every live
 * set and the totals of the sets already freed. The lock guards only the
 * list of sets and those totals: a connection never takes it.
 */
#include <sys/queue.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "stats.h"
#include "tls_stats.h"
#include "util.h"

#define TLS_CIPHER_SLOTS 16

struct cipher_slot {
	_Atomic(const char *)	 name;		/* set once, then published */
	counter_t		 open;
	counter_t		 total;
};

/* One worker's counters, only it writes them. */
struct tls_counters {
	const struct worker_stats *ws;
	counter_t		 conns_open;
	counter_t		 timeouts;
	counter_t		 ver_open[TLS_STATS_VERSIONS];
	counter_t		 ver_total[TLS_STATS_VERSIONS];
	struct cipher_slot	 ciphers[TLS_CIPHER_SLOTS];
	atomic_int		 nciphers;
	LIST_ENTRY(tls_counters) entry;
};

static const char *const version_names[TLS_STATS_VERSIONS] = {
	"TLSv1.2", "TLSv1.3", "other",
};

static pthread_mutex_t		 lock = PTHREAD_MUTEX_INITIALIZER;
static LIST_HEAD(, tls_counters) live = LIST_HEAD_INITIALIZER(live);
static struct tls_stats		 retired;	/* of the sets freed */

static int
version_index(int v)
{
	if (v == TLS1_2_VERSION)
		return 0;
	if (v == TLS1_3_VERSION)
		return 1;
	return 2;
}

/* The worker's slot for a cipher, added on first use; -1 when full. */
static int
cipher_index(struct tls_counters *tw, const char *name)
{
	int	i, n = atomic_load_explicit(&tw->nciphers, memory_order_relaxed);

	for (i = 0; i < n; i++) {
		const char *s = atomic_load_explicit(&tw->ciphers[i].name,
		    memory_order_relaxed);
		if (s == name || strcmp(s, name) == 0)
			return i;
	}
	if (n == TLS_CIPHER_SLOTS)
		return -1;
	atomic_store_explicit(&tw->ciphers[n].name, name,
	    memory_order_relaxed);
	atomic_store_explicit(&tw->nciphers, n + 1, memory_order_release);
	return n;
}

static void
add_item(struct tls_stats_item *items, int *n, int max, const char *name,
    uint64_t open, uint64_t total)
{
	int	i;

	for (i = 0; i < *n; i++) {
		if (strcmp(items[i].name, name) == 0) {
			items[i].open += open;
			items[i].total += total;
			return;
		}
	}
	if (*n == max)
		return;
	items[*n].name = name;
	items[*n].open = open;
	items[*n].total = total;
	(*n)++;
}

static void
add_counters(struct tls_stats *t, struct tls_counters *tw)
{
	const struct worker_stats	*ws = tw->ws;
	int				 i, n;

	t->handshakes += counter_get((counter_t *)&ws->tls_handshakes);
	t->handshake_failed += counter_get(
	    (counter_t *)&ws->tls_handshake_failed);
	t->resumed += counter_get((counter_t *)&ws->tls_resumed);
	t->handshake_timeouts += counter_get(&tw->timeouts);
	t->conns_open += counter_get(&tw->conns_open);
	for (i = 0; i < TLS_STATS_VERSIONS; i++)
		t->versions[i].open += counter_get(&tw->ver_open[i]),
		t->versions[i].total += counter_get(&tw->ver_total[i]);
	n = atomic_load_explicit(&tw->nciphers, memory_order_acquire);
	for (i = 0; i < n; i++)
		add_item(t->ciphers, &t->nciphers, TLS_STATS_CIPHERS,
		    atomic_load_explicit(&tw->ciphers[i].name,
		    memory_order_relaxed), counter_get(&tw->ciphers[i].open),
		    counter_get(&tw->ciphers[i].total));
}

static void
add_stats(struct tls_stats *t, const struct tls_stats *s)
{
	int	i;

	t->handshakes += s->handshakes;
	t->handshake_failed += s->handshake_failed;
	t->handshake_timeouts += s->handshake_timeouts;
	t->resumed += s->resumed;
	t->conns_open += s->conns_open;
	for (i = 0; i < TLS_STATS_VERSIONS; i++) {
		t->versions[i].open += s->versions[i].open;
		t->versions[i].total += s->versions[i].total;
	}
	for (i = 0; i < s->nciphers; i++)
		add_item(t->ciphers, &t->nciphers, TLS_STATS_CIPHERS,
		    s->ciphers[i].name, s->ciphers[i].open,
		    s->ciphers[i].total);
}

static void
stats_init(struct tls_stats *t)
{
	int	i;

	memset(t, 0, sizeof(*t));
	t->nversions = TLS_STATS_VERSIONS;
	for (i = 0; i < TLS_STATS_VERSIONS; i++)
		t->versions[i].name = version_names[i];
}

void
tls_stats_sum(struct tls_stats *t)
{
	struct tls_counters	*tw;

	stats_init(t);
	pthread_mutex_lock(&lock);
	add_stats(t, &retired);
	LIST_FOREACH(tw, &live, entry)
		add_counters(t, tw);
	pthread_mutex_unlock(&lock);
}

int
tls_stats_format(const struct tls_stats *t, char *buf, size_t len)
{
	size_t	off;
	int	i, n;

	n = snprintf(buf, len, "handshakes %llu, failed %llu (timed out "
	    "%llu), resumed %llu, open %llu",
	    (unsigned long long)t->handshakes,
	    (unsigned long long)t->handshake_failed,
	    (unsigned long long)t->handshake_timeouts,
	    (unsigned long long)t->resumed,
	    (unsigned long long)t->conns_open);
	if (n < 0)
		return n;
	for (i = 0; i < t->nversions + t->nciphers; i++) {
		const struct tls_stats_item *it = i < t->nversions ?
		    &t->versions[i] : &t->ciphers[i - t->nversions];

		if (it->total == 0)
			continue;
		off = (size_t)n < len ? (size_t)n : len;
		n += snprintf(buf + off, len - off, ", %s %llu", it->name,
		    (unsigned long long)it->total);
	}
	return n;
}

struct tls_counters *
tls_counters_new(const struct worker_stats *ws)
{
	struct tls_counters	*tw;

	tw = xcalloc(1, sizeof(*tw));
	tw->ws = ws;
	pthread_mutex_lock(&lock);
	LIST_INSERT_HEAD(&live, tw, entry);
	pthread_mutex_unlock(&lock);
	return tw;
}

void
tls_counters_free(struct tls_counters *tw)
{
	struct tls_stats	mine;

	if (tw == NULL)
		return;
	/* The worker is gone: its counts become part of the totals. */
	stats_init(&mine);
	add_counters(&mine, tw);
	pthread_mutex_lock(&lock);
	LIST_REMOVE(tw, entry);
	add_stats(&retired, &mine);
	pthread_mutex_unlock(&lock);
	free(tw);
}

void
tls_counters_opened(struct tls_counters *tw)
{
	counter_add(&tw->conns_open, 1);
}

void
tls_counters_timed_out(struct tls_counters *tw)
{
	counter_add(&tw->timeouts, 1);
}

void
tls_counters_established(struct tls_counters *tw, int v, const char *cipher,
    int8_t *version_idx, int8_t *cipher_idx)
{
	*version_idx = (int8_t)version_index(v);
	counter_add(&tw->ver_open[*version_idx], 1);
	counter_add(&tw->ver_total[*version_idx], 1);
	*cipher_idx = (int8_t)cipher_index(tw, cipher);
	if (*cipher_idx >= 0) {
		counter_add(&tw->ciphers[*cipher_idx].open, 1);
		counter_add(&tw->ciphers[*cipher_idx].total, 1);
	}
}

void
tls_counters_closed(struct tls_counters *tw, int established,
    int8_t version_idx, int8_t cipher_idx)
{
	counter_sub(&tw->conns_open, 1);
	if (!established)
		return;
	counter_sub(&tw->ver_open[version_idx], 1);
	if (cipher_idx >= 0)
		counter_sub(&tw->ciphers[cipher_idx].open, 1);
}
