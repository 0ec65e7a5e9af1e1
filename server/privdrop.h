/*
 * privdrop.h: dropping root for the configured user and group.
 */
#ifndef ECHOD_PRIVDROP_H
#define ECHOD_PRIVDROP_H

#include <stddef.h>

/* setgroups, setgid, setuid; verified. */
int	privdrop(const char *user, const char *group, char *err,
	    size_t errlen);

#endif
