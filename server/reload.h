/*
 * reload.h: applying a changed configuration file on SIGHUP.
 */
#ifndef ECHOD_RELOAD_H
#define ECHOD_RELOAD_H

void	server_reload(void);
/* At exit: what reloads replaced but kept alive until then. */
void	server_reload_free(void);
/* Free what every worker has moved past (main thread, on a wake-up). */
void	server_reload_reap(void);

#endif
