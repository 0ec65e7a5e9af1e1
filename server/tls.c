/*
 * tls.c: TLS listeners. (Interim: TLS listeners are refused at load.)
 */
#include <stdio.h>
#include <unistd.h>

#include "config.h"
#include "server.h"
#include "tls.h"

void *
tls_ctx_load(const struct config *conf, char *err, size_t errlen)
{
	struct listen_conf	*l;

	err[0] = '\0';
	for (l = conf->listeners; l != NULL; l = l->next) {
		if (l->tls) {
			snprintf(err, errlen, "%s:%d: tls: TLS is not "
			    "available in this build", conf->path, l->line);
			return NULL;
		}
	}
	return NULL;
}

void
tls_ctx_ref(void *ctx)
{
	(void)ctx;
}

void
tls_ctx_unref(void *ctx)
{
	(void)ctx;
}

void
tls_conn_start(struct worker *w, int fd, struct listener *l,
    const struct sockaddr *sa, socklen_t len)
{
	(void)w;
	(void)l;
	(void)sa;
	(void)len;
	close(fd);
	server_conn_closed();
}

void
tls_drain_all(struct worker *w)
{
	(void)w;
}

void
tls_close_all(struct worker *w)
{
	(void)w;
}

void
tls_worker_init(struct worker *w)
{
	(void)w;
}

void
tls_worker_free(struct worker *w)
{
	(void)w;
}
