/*
 * admin.h: the admin HTTP endpoint ([admin] address) on the main thread:
 * /metrics (Prometheus text format), /stats (JSON) and /healthz.
 */
#ifndef ECHOD_ADMIN_H
#define ECHOD_ADMIN_H

#include <stddef.h>

struct event_base;
struct config;
struct server;

/* Bind the endpoint (before privileges are dropped); 0 when off. */
int	admin_bind(const struct config *, char *err, size_t errlen);
/* Serve it on the main base, reporting on s. */
int	admin_start(struct event_base *, struct server *s);
void	admin_stop(void);

#endif
