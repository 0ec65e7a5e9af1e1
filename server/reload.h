/*
 * reload.h: applying a changed configuration file on SIGHUP (main thread).
 */
#ifndef ECHOD_RELOAD_H
#define ECHOD_RELOAD_H

struct server;

void	reload_run(struct server *);
/* At exit: what reloads replaced but kept alive until then. */
void	reload_free(struct server *);

#endif
