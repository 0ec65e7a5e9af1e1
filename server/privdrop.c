/*
 * privdrop.c: becoming the configured user and group (setgroups, setgid,
 * setuid, in that order), verified afterwards, after everything that needs
 * root is done (doc/ARCHITECTURE.md, "Startup order").
 */
#include <sys/types.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "parse.h"
#include "privdrop.h"
#include "util.h"

static int
numeric_id(const char *s, unsigned long *out)
{
	const char	*why;
	uint64_t	 v;

	if (!isdigit((unsigned char)*s))
		return -1;
	if (parse_uint(s, 0, 0xfffffffeULL, &v, &why) != 0)
		return -1;
	*out = (unsigned long)v;
	return 0;
}

int
privdrop(const char *user, const char *group, char *err, size_t errlen)
{
	struct passwd	*pw = NULL;
	struct group	*gr;
	unsigned long	 id;
	uid_t		 uid, ruid, euid, suid;
	gid_t		 gid, rgid, egid, sgid;
	char		*uname = NULL;
	int		 rv;

	uid = geteuid();
	gid = getegid();
	if (user != NULL) {
		if ((pw = getpwnam(user)) == NULL && numeric_id(user, &id) == 0)
			pw = getpwuid((uid_t)id);
		if (pw != NULL) {
			uid = pw->pw_uid;
			gid = pw->pw_gid;
			uname = xstrdup(pw->pw_name);
		} else if (numeric_id(user, &id) == 0) {
			uid = (uid_t)id;
			if (group == NULL) {
				snprintf(err, errlen, "user %s: no such user "
				    "in the passwd database; set group too",
				    user);
				return -1;
			}
		} else {
			snprintf(err, errlen, "user %s: no such user", user);
			return -1;
		}
	}
	if (group != NULL) {
		if ((gr = getgrnam(group)) != NULL)
			gid = gr->gr_gid;
		else if (numeric_id(group, &id) == 0)
			gid = (gid_t)id;
		else {
			snprintf(err, errlen, "group %s: no such group", group);
			free(uname);
			return -1;
		}
	}
	if (geteuid() != 0) {
		free(uname);
		if (uid == geteuid() && uid == getuid() && gid == getegid() &&
		    gid == getgid())
			return 0;	/* already that user: nothing to drop */
		snprintf(err, errlen, "cannot switch to %s%s%s%s%s: echod is "
		    "not running as root", user ? "user " : "",
		    user ? user : "", user && group ? ", " : "",
		    group ? "group " : "", group ? group : "");
		return -1;
	}
	log_chown((unsigned int)uid, (unsigned int)gid);
	/* Supplementary groups first, while we may still change them. */
	if (uname != NULL && uid != 0)
		rv = initgroups(uname, gid);
	else
		rv = setgroups(1, &gid);
	free(uname);
	if (rv != 0) {
		snprintf(err, errlen, "setgroups: %s", strerror(errno));
		return -1;
	}
	if (setresgid(gid, gid, gid) != 0) {
		snprintf(err, errlen, "setgid %lu: %s", (unsigned long)gid,
		    strerror(errno));
		return -1;
	}
	if (setresuid(uid, uid, uid) != 0) {
		snprintf(err, errlen, "setuid %lu: %s", (unsigned long)uid,
		    strerror(errno));
		return -1;
	}
	/* Verify: every id changed, and there is no way back. */
	if (getresgid(&rgid, &egid, &sgid) != 0 || rgid != gid ||
	    egid != gid || sgid != gid || getresuid(&ruid, &euid, &suid) != 0 ||
	    ruid != uid || euid != uid || suid != uid) {
		snprintf(err, errlen, "privilege drop did not take effect");
		return -1;
	}
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		snprintf(err, errlen, "privilege drop can be undone: refusing "
		    "to run");
		return -1;
	}
	log_info("running as uid %lu, gid %lu", (unsigned long)uid,
	    (unsigned long)gid);
	return 0;
}
