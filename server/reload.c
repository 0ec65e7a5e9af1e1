/*
 * reload.c: SIGHUP. The new file is parsed and validated completely, and
 * every new socket bound, before anything running is touched; any error
 * leaves the old configuration serving and is logged with FILE:LINE. Then
 * the change is committed on the main thread: listeners whose socket stays
 * (same address) keep it, new ones start, removed ones stop accepting while
 * their connections finish normally; limits reach the workers as messages
 * and apply to new connections; the TLS context is swapped for new
 * handshakes. What cannot change live is reported as needing a restart.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "listener.h"
#include "log.h"
#include "msgq.h"
#include "reload.h"
#include "sd.h"
#include "server.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

/* The server this works for, handed to each entry point. */
static struct server	*srv;

/* One new [listen] and where its socket comes from. */
struct plan {
	struct listen_conf	*lc;
	struct listener		*old;	/* same socket: adopt or keep */
	struct listener		*fresh;	/* bound now, or made to adopt */
	int			 unchanged;
};

/* Main thread, from its queue: free what every worker has moved past. */
static void
reap_cb(void *arg)
{
	struct listener	*l, *next;
	uint64_t	 done = UINT64_MAX, seen;
	int		 i, kept;

	srv = arg;
	if (TAILQ_EMPTY(&srv->retired) && srv->nretired_tls == 0)
		return;
	for (i = 0; i < worker_count(); i++) {
		seen = atomic_load(&worker_at(i)->seen_gen);
		if (seen < done)
			done = seen;
	}
	for (l = TAILQ_FIRST(&srv->retired); l != NULL; l = next) {
		next = TAILQ_NEXT(l, entry);
		if (l->retired_gen > done)
			continue;
		TAILQ_REMOVE(&srv->retired, l, entry);
		listener_unref(l);
	}
	for (kept = 0, i = 0; i < srv->nretired_tls; i++) {
		if (srv->retired_tls[i].gen <= done)
			tls_ctx_unref(srv->retired_tls[i].ctx);
		else
			srv->retired_tls[kept++] = srv->retired_tls[i];
	}
	srv->nretired_tls = kept;
}

/* Worker thread: past every message of the reload; the main thread may
 * free what the reload replaced once all workers are. */
static void
barrier_cb(struct worker *w, void *arg)
{
	atomic_store(&w->seen_gen, (uint64_t)(uintptr_t)arg);
	if (msgq_call(&srv->mainq, reap_cb, srv) != 0)
		log_debug("worker %d: reload barrier after the stop", w->id);
}

static struct config *
reload_parse(char *err, size_t errlen)
{
	struct config	*conf;
	int		 i;

	if ((conf = config_load(srv->conf->path, err, errlen)) == NULL)
		return NULL;
	for (i = 0; i < srv->ncmdline; i++) {
		if (config_add_listener(conf, srv->cmdline[i], err,
		    errlen) != 0) {
			config_free(conf);
			return NULL;
		}
	}
	config_finish(conf);
	return conf;
}

static struct listener *
find_socket(const struct listen_conf *lc, struct plan *plans, int nplans)
{
	struct listener	*l;
	int		 i, taken;

	TAILQ_FOREACH(l, &srv->listeners, entry) {
		if (!listener_same_socket(l, lc))
			continue;
		for (taken = 0, i = 0; i < nplans; i++)
			taken |= plans[i].old == l;
		if (!taken)
			return l;
	}
	return NULL;
}

static int
same_settings(const struct listener *l, const struct listen_conf *lc)
{
	return strcmp(l->name, lc->name) == 0 && l->mode == lc->mode &&
	    l->tls == lc->tls && strcmp(l->address, lc->address) == 0 &&
	    l->proxy == lc->proxy &&
	    l->proxy_timeout_us == lc->proxy_timeout_us &&
	    l->nproxy_from == lc->nproxy_from && (l->nproxy_from == 0 ||
	    memcmp(l->proxy_from, lc->proxy_from, sizeof(*l->proxy_from) *
	    (size_t)l->nproxy_from) == 0);
}

/*
 * A socket kept takes the new backlog at once (listen(2) again). Whether
 * it is one shared socket or one per worker (reuseport) cannot change
 * under connections being accepted: that waits for a restart.
 */
static void
keep_socket_settings(struct listener *l, const struct listener *old,
    const struct listen_conf *lc)
{
	int	reuseport = lc->reuseport && HAVE_REUSEPORT;

	l->reuseport = old->reuseport;
	if (reuseport != old->reuseport)
		log_warnx("reload: listener %s: reuseport changed: needs a "
		    "restart; the socket%s kept", l->name,
		    old->reuseport ? "s are" : " is");
	if (old->backlog != lc->backlog) {
		listener_set_backlog(l, lc->backlog);
		log_info("listener %s: backlog now %d", l->name, lc->backlog);
	}
}

/* Bind what is new. Nothing running changes here. */
static struct plan *
reload_prepare(struct config *conf, char *err, size_t errlen)
{
	struct listen_conf	*lc;
	struct plan		*plans;
	char			 why[CONFIG_ERRLEN / 2];
	int			 n = 0, i;

	plans = xcalloc((size_t)conf->nlisteners + 1, sizeof(*plans));
	for (lc = conf->listeners; lc != NULL; lc = lc->next, n++) {
		plans[n].lc = lc;
		plans[n].old = find_socket(lc, plans, n);
		if (plans[n].old != NULL) {
			plans[n].unchanged = same_settings(plans[n].old, lc);
			if (!plans[n].unchanged)
				plans[n].fresh = listener_new(lc);
			continue;
		}
		plans[n].fresh = listener_bind(lc, srv->nworkers, why,
		    sizeof(why));
		if (plans[n].fresh == NULL) {
			snprintf(err, errlen, "%s:%d: address: %.512s",
			    conf->path, lc->address_line, why);
			for (i = 0; i < n; i++) {
				if (plans[i].fresh == NULL)
					continue;
				if (plans[i].old == NULL)
					listener_discard(plans[i].fresh);
				else
					listener_unref(plans[i].fresh);
			}
			free(plans);
			return NULL;
		}
	}
	return plans;
}

static void
retire_tls(void *ctx)
{
	/* A worker may be starting a handshake with the old context this
	 * very moment: it goes once every worker has passed the barrier. */
	srv->retired_tls = xrealloc(srv->retired_tls,
	    sizeof(*srv->retired_tls) * (size_t)(srv->nretired_tls + 1));
	srv->retired_tls[srv->nretired_tls].ctx = ctx;
	srv->retired_tls[srv->nretired_tls].gen = srv->reload_gen;
	srv->nretired_tls++;
}

static void
set_tls(struct listener *l, void *ctx)
{
	if (!l->tls || l->tls_ctx == ctx)
		return;
	if (ctx != NULL)
		tls_ctx_ref(ctx);
	if (l->tls_ctx != NULL)
		retire_tls(l->tls_ctx);
	atomic_store_explicit(&l->tls_ctx, ctx, memory_order_release);
}

static void
retire_listener(struct listener *l)
{
	TAILQ_REMOVE(&srv->listeners, l, entry);
	/* Reuseport workers may still read it through their socket until
	 * they handle the stop message: kept until the barrier. */
	l->retired_gen = srv->reload_gen;
	TAILQ_INSERT_TAIL(&srv->retired, l, entry);
}

static void
warn_restart(const struct config *old, const struct config *new)
{
#define STR_CHANGED(a, b) \
	(((a) == NULL) != ((b) == NULL) || ((a) != NULL && strcmp(a, b) != 0))
	if (config_workers(old) != config_workers(new))
		log_warnx("reload: workers changed: needs a restart");
	if (STR_CHANGED(old->user, new->user) ||
	    STR_CHANGED(old->group, new->group))
		log_warnx("reload: user or group changed: needs a restart");
	if (STR_CHANGED(old->pid_file, new->pid_file))
		log_warnx("reload: pid_file changed: needs a restart");
	if (STR_CHANGED(old->admin_address, new->admin_address))
		log_warnx("reload: [admin] address changed: needs a restart");
#undef STR_CHANGED
}

static void
reload_commit(struct config *conf, struct plan *plans, void *tls_ctx)
{
	struct listener_list	 next;
	struct listener		*l;
	struct worker_limits	 lim = {
		.max_buffer = conf->max_buffer,
		.idle_timeout_us = conf->idle_timeout_us,
	};
	int			 i, kept;

	TAILQ_INIT(&next);
	srv->reload_gen++;
	for (i = 0; plans[i].lc != NULL; i++) {
		if (plans[i].unchanged) {
			l = plans[i].old;
			TAILQ_REMOVE(&srv->listeners, l, entry);
			set_tls(l, tls_ctx);
			keep_socket_settings(l, l, plans[i].lc);
		} else if (plans[i].old != NULL) {
			l = plans[i].fresh;
			set_tls(l, tls_ctx);
			listener_adopt(l, plans[i].old);
			keep_socket_settings(l, plans[i].old, plans[i].lc);
			log_info("listener %s: now %s%s", l->name,
			    mode_name(l->mode), l->tls ? ", tls" : "");
		} else {
			l = plans[i].fresh;
			set_tls(l, tls_ctx);
			listener_enable(l, 1);
		}
		TAILQ_INSERT_TAIL(&next, l, entry);
	}
	/* What is left in the old list is gone, or was adopted. */
	while ((l = TAILQ_FIRST(&srv->listeners)) != NULL) {
		for (kept = 0, i = 0; plans[i].lc != NULL; i++)
			kept |= plans[i].old == l;
		if (!kept)
			listener_remove(l);
		retire_listener(l);
	}
	TAILQ_CONCAT(&srv->listeners, &next, entry);

	worker_set_limits_all(&lim);
	if (log_reconfigure(&conf->log) != 0)
		log_warnx("reload: a log file could not be opened; the old "
		    "one is kept");
	warn_restart(srv->conf, conf);
	if (srv->tls_ctx != NULL)
		retire_tls(srv->tls_ctx);
	srv->tls_ctx = tls_ctx;
	config_free(srv->conf);
	srv->conf = conf;
	listener_set_max_connections(conf->max_connections);
	/* Queued after every message of this reload: once a worker has run
	 * it, it holds no pointer to what the reload replaced. */
	for (i = 0; i < worker_count(); i++)
		worker_call(worker_at(i), barrier_cb,
		    (void *)(uintptr_t)srv->reload_gen);
}

void
reload_run(struct server *s)
{
	struct config	*conf;
	struct plan	*plans;
	void		*tls_ctx;
	char		 err[CONFIG_ERRLEN];

	srv = s;
	if (srv->stopping)
		return;
	if (srv->conf->path == NULL) {
		log_warnx("reload: running on built-in defaults, nothing to "
		    "read");
		return;
	}
	sd_notify_send("RELOADING=1");
	log_notice("reloading %s", srv->conf->path);
	if ((conf = reload_parse(err, sizeof(err))) == NULL)
		goto fail;
	tls_ctx = tls_ctx_load(conf, err, sizeof(err));
	if (tls_ctx == NULL && err[0] != '\0') {
		config_free(conf);
		goto fail;
	}
	/* Tickets issued under the old keys still resume. */
	if (tls_ctx != NULL && srv->tls_ctx != NULL)
		tls_ctx_inherit_tickets(tls_ctx, srv->tls_ctx);
	if ((plans = reload_prepare(conf, err, sizeof(err))) == NULL) {
		if (tls_ctx != NULL)
			tls_ctx_unref(tls_ctx);
		config_free(conf);
		goto fail;
	}
	reload_commit(conf, plans, tls_ctx);
	free(plans);
	srv->reloads_ok++;
	log_notice("reload done: %d listener%s", conf->nlisteners,
	    conf->nlisteners == 1 ? "" : "s");
	sd_notify_send("READY=1");
	return;
fail:
	srv->reloads_failed++;
	log_errorx("reload failed, still serving the old configuration: %s",
	    err);
	sd_notify_send("READY=1");
}

void
reload_free(struct server *s)
{
	struct listener	*l;
	int		 i;

	srv = s;
	while ((l = TAILQ_FIRST(&srv->retired)) != NULL) {
		TAILQ_REMOVE(&srv->retired, l, entry);
		listener_unref(l);
	}
	for (i = 0; i < srv->nretired_tls; i++)
		tls_ctx_unref(srv->retired_tls[i].ctx);
	free(srv->retired_tls);
	srv->retired_tls = NULL;
	srv->nretired_tls = 0;
}
