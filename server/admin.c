/*
 * admin.c: the admin HTTP endpoint. (Interim: refused when configured.)
 */
#include <stdio.h>

#include "admin.h"
#include "config.h"

int
admin_bind(const struct config *conf, char *err, size_t errlen)
{
	if (conf->admin_address == NULL)
		return 0;
	snprintf(err, errlen, "admin: not available in this build");
	return -1;
}

int
admin_start(struct event_base *base)
{
	(void)base;
	return 0;
}

void
admin_stop(void)
{
}
