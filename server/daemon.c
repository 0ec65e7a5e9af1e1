/*
 * daemon.c: running echod as a daemon. Owns detaching (and the pipe that
 * tells the waiting parent how the start went), the pid file, the privilege
 * drop, the two halves of the systemd protocol that need no libsystemd
 * (notify datagrams and socket activation), and `echod -s SIGNAL`.
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "parse.h"
#include "server.h"
#include "sock.h"
#include "util.h"

/* The byte that tells the parent the child is serving; text never has it. */
#define READY_BYTE	'\0'

/* Detaching: the write end of the parent's pipe (also our fd 2), or -1. */
static int	 ready_fd = -1;
static int	 detached;
/* The directory echod started in, for relative paths used after chdir. */
static char	*start_dir;

/*
 * The pid file we wrote: removed at exit by the process that wrote it. The
 * lock file beside it (PATH.lock) is held, flock LOCK_EX, for our whole life:
 * it is what makes "check, then write" one step among echods started at once.
 */
static char	*pid_path;
static char	*lock_path;
static pid_t	 pid_owner;
static int	 pid_lock_fd = -1;
static int	 lock_fd = -1;

/* --- small helpers ------------------------------------------------------ */

static int
open_devnull(void)
{
	int	fd;

	if ((fd = open("/dev/null", O_RDWR)) == -1)
		fatal("/dev/null");
	return fd;
}

/* 1 when pid names a process that has not exited (zombies have). */
static int
process_alive(pid_t pid)
{
	char	path[64], buf[512], *p;
	FILE	*fp;
	size_t	 n;

	if (kill(pid, 0) != 0 && errno == ESRCH)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return errno == ENOENT && access("/proc/self/stat", F_OK) == 0 ?
		    0 : 1;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold spaces and parentheses. */
	if ((p = strrchr(buf, ')')) != NULL && p[1] == ' ' &&
	    (p[2] == 'Z' || p[2] == 'X'))
		return 0;
	return 1;
}

/*
 * 1 when pid looks like an echod (its command name starts with "echod"),
 * or when there is no /proc to tell: then every live process counts.
 */
static int
process_is_echod(pid_t pid)
{
	char	path[64], comm[64];
	FILE	*fp;
	size_t	 n;

	snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return 1;
	n = fread(comm, 1, sizeof(comm) - 1, fp);
	fclose(fp);
	comm[n] = '\0';
	return strncmp(comm, "echod", 5) == 0;
}

/* Paths used after chdir("/") are taken as from the starting directory. */
static char *
resolve_path(const char *path)
{
	char	*out;

	if (path[0] == '/' || start_dir == NULL)
		return xstrdup(path);
	xasprintf(&out, "%s/%s", start_dir, path);
	return out;
}

/*
 * Read a pid file. Returns the pid, 0 when the file does not exist, or -1
 * with err set.
 */
static pid_t
pidfile_read(const char *path, char *err, size_t errlen)
{
	char		 buf[32];
	ssize_t		 n;
	long long	 v;
	char		*end;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "pid file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "pid file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	buf[n] = '\0';
	errno = 0;
	v = strtoll(buf, &end, 10);
	while (*end == '\n' || *end == ' ')
		end++;
	if (errno != 0 || end == buf || *end != '\0' || v <= 0 ||
	    v > INT_MAX) {
		snprintf(err, errlen, "pid file %s: no pid in it", path);
		return -1;
	}
	return (pid_t)v;
}

/* --- detaching --------------------------------------------------------- */

void
daemon_stdio_open(void)
{
	int	fd;

	for (;;) {
		if ((fd = open("/dev/null", O_RDWR)) == -1)
			return;		/* nothing better to do this early */
		if (fd > STDERR_FILENO) {
			close(fd);
			return;
		}
	}
}

/*
 * The parent: relay what the child writes on its stderr until the ready
 * byte (exit 0) or the end of the pipe (the child failed: exit non-zero).
 */
static void __attribute__((noreturn))
wait_for_child(pid_t child, int rd)
{
	char	buf[4096], *nul;
	ssize_t	n;
	int	status, code;

	for (;;) {
		n = read(rd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if ((nul = memchr(buf, READY_BYTE, (size_t)n)) != NULL) {
			if (nul > buf)
				(void)!write(STDERR_FILENO, buf,
				    (size_t)(nul - buf));
			_exit(0);
		}
		(void)!write(STDERR_FILENO, buf, (size_t)n);
	}
	while (waitpid(child, &status, 0) == -1 && errno == EINTR)
		;
	if (WIFEXITED(status)) {
		code = WEXITSTATUS(status);
		dprintf(STDERR_FILENO, "echod: the daemon exited with status "
		    "%d before it was serving\n", code);
		_exit(code != 0 ? code : 1);
	}
	if (WIFSIGNALED(status))
		dprintf(STDERR_FILENO, "echod: the daemon was killed by "
		    "signal %d (%s) before it was serving\n", WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
	_exit(1);
}

void
daemon_detach(void)
{
	char	cwd[PATH_MAX];
	pid_t	pid;
	int	fds[2], null;

	if (getcwd(cwd, sizeof(cwd)) != NULL)
		start_dir = xstrdup(cwd);
	/* A reload reads the file again, after chdir("/"). */
	if (srv != NULL && srv->conf != NULL && srv->conf->path != NULL &&
	    srv->conf->path[0] != '/') {
		char	*abs = resolve_path(srv->conf->path);

		free(srv->conf->path);
		srv->conf->path = abs;
	}
	if (pipe(fds) != 0)
		fatal("pipe");
	fflush(stdout);
	fflush(stderr);
	switch ((pid = fork())) {
	case -1:
		fatal("fork");
	case 0:
		break;
	default:
		close(fds[1]);
		wait_for_child(pid, fds[0]);
	}
	close(fds[0]);
	if (setsid() == -1)
		fatal("setsid");
	if (chdir("/") != 0)
		fatal("chdir /");
	umask(022);
	/* Our own copy above the standard streams, whatever fds[1] is. */
	if ((ready_fd = fcntl(fds[1], F_DUPFD_CLOEXEC, STDERR_FILENO + 1)) ==
	    -1)
		fatal("fcntl");
	null = open_devnull();
	/* Until daemon_ready, what goes to stderr goes to the parent. */
	if (dup2(null, STDIN_FILENO) == -1 || dup2(null, STDOUT_FILENO) == -1 ||
	    dup2(ready_fd, STDERR_FILENO) == -1)
		fatal("dup2");
	if (null > STDERR_FILENO)
		close(null);
	if (fds[1] > STDERR_FILENO)
		close(fds[1]);
	detached = 1;
}

void
daemon_ready(void)
{
	char	c = READY_BYTE;
	int	null;

	if (ready_fd == -1)
		return;
	fflush(stderr);
	/* The parent may be gone (killed); SIGPIPE is ignored by then. */
	while (write(ready_fd, &c, 1) == -1 && errno == EINTR)
		;
	null = open_devnull();
	dup2(null, STDERR_FILENO);
	if (null != STDERR_FILENO)
		close(null);
	close(ready_fd);
	ready_fd = -1;
	free(start_dir);
	start_dir = NULL;
}

/* --- pid file ------------------------------------------------------------ */

/*
 * Is the pid file held by a live echod? The holder keeps an flock on it for
 * its whole life, which also covers a pid reused by some other program.
 */
static int
pidfile_check(const char *path, char *err, size_t errlen)
{
	char	rerr[256];
	pid_t	pid;
	int	fd, locked = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		if (flock(fd, LOCK_SH | LOCK_NB) == -1 &&
		    errno == EWOULDBLOCK)
			locked = 1;
		close(fd);
	}
	rerr[0] = '\0';
	pid = pidfile_read(path, rerr, sizeof(rerr));
	if (pid == 0)
		return 0;
	if (pid > 0 && pid != getpid() && (locked || (process_alive(pid) &&
	    process_is_echod(pid)))) {
		snprintf(err, errlen, "pid file %s: echod is already running "
		    "as pid %ld", path, (long)pid);
		return -1;
	}
	if (pid < 0 && locked) {
		snprintf(err, errlen, "pid file %s: held by another process",
		    path);
		return -1;
	}
	log_notice("pid file %s: replacing a stale one (%s)", path,
	    pid > 0 ? "that process is gone" : rerr);
	return 0;
}

/* Remove the lock file while still holding it, then let it go. */
static void
pidfile_unlock(void)
{
	if (lock_fd == -1)
		return;
	if (lock_path != NULL)
		unlink(lock_path);
	close(lock_fd);
	lock_fd = -1;
	free(lock_path);
	lock_path = NULL;
}

/*
 * Take PATH.lock, exclusively and without waiting. The file is removed at
 * exit by its holder (while still holding it), so a lock won on a file that
 * is no longer at that path is worth nothing: check after locking that the
 * path still names the inode we locked, else try again.
 */
static int
pidfile_lock(const char *full, char *err, size_t errlen)
{
	struct stat	 fsb, psb;
	char		*path, rerr[256];
	pid_t		 pid;
	int		 fd, tries;

	xasprintf(&path, "%s.lock", full);
	for (tries = 0; tries < 100; tries++) {
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd == -1) {
			snprintf(err, errlen, "pid file lock %s: %s", path,
			    strerror(errno));
			goto fail;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
			int	e = errno;

			close(fd);
			if (e != EWOULDBLOCK) {
				snprintf(err, errlen, "pid file lock %s: %s",
				    path, strerror(e));
				goto fail;
			}
			rerr[0] = '\0';
			pid = pidfile_read(full, rerr, sizeof(rerr));
			if (pid > 0)
				snprintf(err, errlen, "pid file %s: echod is "
				    "already running as pid %ld", full,
				    (long)pid);
			else
				snprintf(err, errlen, "pid file %s: echod is "
				    "already running (another echod holds %s)",
				    full, path);
			goto fail;
		}
		if (fstat(fd, &fsb) == 0 && stat(path, &psb) == 0 &&
		    fsb.st_dev == psb.st_dev && fsb.st_ino == psb.st_ino) {
			free(lock_path);
			lock_path = path;
			if (lock_fd != -1)
				close(lock_fd);
			lock_fd = fd;
			return 0;
		}
		close(fd);	/* its holder removed it as we opened it */
	}
	snprintf(err, errlen, "pid file lock %s: keeps changing", path);
fail:
	free(path);
	return -1;
}

static void
pidfile_atexit(void)
{
	pidfile_remove();
}

int
pidfile_write(const char *path, char *err, size_t errlen)
{
	static int	 registered;
	char		*full, *tmp, buf[32];
	int		 fd, len;

	full = resolve_path(path);
	if (pidfile_lock(full, err, errlen) != 0) {
		free(full);
		return -1;
	}
	if (pidfile_check(full, err, errlen) != 0) {
		free(full);
		pidfile_unlock();
		return -1;
	}
	xasprintf(&tmp, "%s.%ld.tmp", full, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC,
	    0644);
	if (fd == -1) {
		snprintf(err, errlen, "pid file %s: %s", tmp, strerror(errno));
		goto fail;
	}
	len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (flock(fd, LOCK_EX | LOCK_NB) != 0 ||
	    write(fd, buf, (size_t)len) != len || fsync(fd) != 0) {
		snprintf(err, errlen, "pid file %s: %s", tmp, strerror(errno));
		goto fail_unlink;
	}
	if (rename(tmp, full) != 0) {
		snprintf(err, errlen, "pid file %s: %s", full,
		    strerror(errno));
		goto fail_unlink;
	}
	free(tmp);
	free(pid_path);
	pid_path = full;
	pid_owner = getpid();
	if (pid_lock_fd != -1)
		close(pid_lock_fd);
	pid_lock_fd = fd;	/* the lock lives as long as we do */
	if (!registered) {
		atexit(pidfile_atexit);
		registered = 1;
	}
	return 0;
fail_unlink:
	unlink(tmp);
	close(fd);
fail:
	free(tmp);
	free(full);
	pidfile_unlock();
	return -1;
}

void
pidfile_remove(void)
{
	char	err[256];

	if (pid_path == NULL || pid_owner != getpid())
		return;
	/* Only our own: never a file that a newer echod wrote since. */
	if (pidfile_read(pid_path, err, sizeof(err)) == pid_owner &&
	    unlink(pid_path) != 0)
		log_warn("pid file %s: cannot remove it", pid_path);
	free(pid_path);
	pid_path = NULL;
	if (pid_lock_fd != -1) {
		close(pid_lock_fd);
		pid_lock_fd = -1;
	}
	pidfile_unlock();
}

/* --- privilege drop -------------------------------------------------------- */

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

/* --- systemd ------------------------------------------------------------- */

void
sd_notify_send(const char *msg)
{
	struct sockaddr_un	 sun;
	const char		*path;
	char			 buf[256];
	socklen_t		 len;
	size_t			 plen;
	int			 fd, n;

	if ((path = getenv("NOTIFY_SOCKET")) == NULL || *path == '\0')
		return;
	if (path[0] != '/' && path[0] != '@')
		return;		/* vsock and friends: not supported */
	plen = strlen(path);
	if (plen >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, plen);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';	/* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen +
	    (path[0] == '/'));
	/* A daemon that forked tells systemd which process is the main one. */
	if (detached && strcmp(msg, "READY=1") == 0)
		n = snprintf(buf, sizeof(buf), "%s\nMAINPID=%ld", msg,
		    (long)getpid());
	else
		n = snprintf(buf, sizeof(buf), "%s", msg);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return;
	if ((fd = sock_open(AF_UNIX, SOCK_DGRAM, 0, 0)) == -1) {
		log_warn("NOTIFY_SOCKET");
		return;
	}
	if (sock_sendto(fd, buf, (size_t)n, (struct sockaddr *)&sun, len) == -1)
		log_warn("NOTIFY_SOCKET %s", path);
	close(fd);
}

#define SD_LISTEN_FDS_START	3

static struct listen_conf *
listener_named(struct config *conf, const char *name)
{
	struct listen_conf	*lc;

	for (lc = conf->listeners; lc != NULL; lc = lc->next)
		if (strcmp(lc->name, name) == 0)
			return lc;
	return NULL;
}

static int
check_listening(int fd, char *err, size_t errlen)
{
	int		v;
	socklen_t	len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) != 0) {
		snprintf(err, errlen, "socket activation: fd %d: %s", fd,
		    strerror(errno));
		return -1;
	}
	if (v != SOCK_STREAM) {
		snprintf(err, errlen, "socket activation: fd %d is not a "
		    "stream socket", fd);
		return -1;
	}
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) != 0 || !v) {
		snprintf(err, errlen, "socket activation: fd %d is not "
		    "listening", fd);
		return -1;
	}
	return 0;
}

/* Split LISTEN_FDNAMES into n names (missing ones are ""). */
static char **
split_names(const char *s, int n)
{
	char		**names;
	const char	*p, *colon;
	int		  i;

	names = xcalloc((size_t)n, sizeof(*names));
	p = s;
	for (i = 0; i < n; i++) {
		if (p == NULL) {
			names[i] = xstrdup("");
			continue;
		}
		colon = strchr(p, ':');
		if (colon == NULL) {
			names[i] = xstrdup(p);
			p = NULL;
		} else {
			names[i] = xstrdup(p);
			names[i][colon - p] = '\0';
			p = colon + 1;
		}
	}
	return names;
}

/*
 * With LISTEN_FDNAMES, each fd goes to the [listen NAME] of its name. When
 * no name matches any listener (systemd names fds after the .socket unit
 * unless FileDescriptorName= says otherwise), fds go to listeners in file
 * order.
 */
static int
assign_fds(struct config *conf, int n, char **names, char *err,
    size_t errlen)
{
	struct listen_conf	*lc;
	int			 i, fd, matched = 0;

	for (i = 0; i < n && names != NULL; i++)
		if (listener_named(conf, names[i]) != NULL)
			matched++;
	for (i = 0, lc = conf->listeners; i < n; i++) {
		fd = SD_LISTEN_FDS_START + i;
		if (check_listening(fd, err, errlen) != 0)
			return -1;
		if (matched > 0) {
			if ((lc = listener_named(conf, names[i])) == NULL) {
				snprintf(err, errlen, "socket activation: fd "
				    "%d is named \"%s\" but there is no "
				    "[listen %s]", fd, names[i], names[i]);
				return -1;
			}
		} else if (lc == NULL) {
			snprintf(err, errlen, "socket activation: %d sockets "
			    "passed but only %d listeners configured", n,
			    conf->nlisteners);
			return -1;
		}
		if (lc->inherited_fd != -1) {
			snprintf(err, errlen, "socket activation: two sockets "
			    "for [listen %s]", lc->name);
			return -1;
		}
		lc->inherited_fd = fd;
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		log_info("listen %s: socket fd %d from the service manager",
		    lc->name, fd);
		if (matched == 0)
			lc = lc->next;
	}
	return 0;
}

int
sd_listen_fds_apply(struct config *conf, char *err, size_t errlen)
{
	const char	*s, *why;
	char		*names_env = NULL, **names = NULL;
	uint64_t	 v;
	pid_t		 pid;
	int		 i, n, rv = 0;

	if ((s = getenv("LISTEN_PID")) == NULL)
		return 0;
	if (parse_uint(s, 1, INT_MAX, &v, &why) != 0)
		pid = 0;
	else
		pid = (pid_t)v;
	if (pid != getpid())
		goto out;	/* meant for another process */
	if ((s = getenv("LISTEN_FDS")) == NULL)
		goto out;
	if (parse_uint(s, 0, 1024, &v, &why) != 0) {
		snprintf(err, errlen, "LISTEN_FDS=%s: %s", s, why);
		rv = -1;
		goto out;
	}
	n = (int)v;
	if (n == 0)
		goto out;
	if ((s = getenv("LISTEN_FDNAMES")) != NULL) {
		names_env = xstrdup(s);
		names = split_names(names_env, n);
	}
	rv = assign_fds(conf, n, names, err, errlen);
	for (i = 0; names != NULL && i < n; i++)
		free(names[i]);
	free(names);
	free(names_env);
out:
	/* Not for our children, and not for a second look after a reload. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return rv;
}

/* --- echod -s ---------------------------------------------------------- */

static const struct {
	const char	*name;
	int		 sig;
	int		 stops;
} control_signals[] = {
	{ "reload", SIGHUP, 0 },
	{ "reopen", SIGUSR1, 0 },
	{ "stop", SIGTERM, 1 },
	{ "quit", SIGQUIT, 1 },
};

/* Sleep a little, in a way that survives signals. */
static void
nap_ms(long ms)
{
	struct timespec	ts = { 0, ms * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

int
daemon_signal(const struct config *conf, const char *name)
{
	char		 err[512];
	uint64_t	 deadline, bound_us;
	size_t		 i;
	pid_t		 pid;

	for (i = 0; i < nitems(control_signals); i++)
		if (strcmp(name, control_signals[i].name) == 0)
			break;
	if (i == nitems(control_signals)) {
		fprintf(stderr, "echod: -s %s: unknown signal (use reload, "
		    "reopen, stop or quit)\n", name);
		return 2;
	}
	if (conf->pid_file == NULL) {
		fprintf(stderr, "echod: -s %s: no pid_file in %s: set it in "
		    "[server] or give -p PIDFILE to control a running echod\n", name,
		    conf->path != NULL ? conf->path : "the built-in defaults");
		return 1;
	}
	err[0] = '\0';
	if ((pid = pidfile_read(conf->pid_file, err, sizeof(err))) <= 0) {
		if (pid == 0)
			fprintf(stderr, "echod: -s %s: pid file %s does not "
			    "exist: is echod running?\n", name,
			    conf->pid_file);
		else
			fprintf(stderr, "echod: -s %s: %s\n", name, err);
		return 1;
	}
	if (!process_alive(pid)) {
		fprintf(stderr, "echod: -s %s: no process %ld (stale pid "
		    "file %s): is echod running?\n", name, (long)pid,
		    conf->pid_file);
		return 1;
	}
	if (!process_is_echod(pid)) {
		fprintf(stderr, "echod: -s %s: process %ld from %s is not "
		    "echod: not signalled\n", name, (long)pid, conf->pid_file);
		return 1;
	}
	if (kill(pid, control_signals[i].sig) != 0) {
		fprintf(stderr, "echod: -s %s: pid %ld: %s\n", name, (long)pid,
		    strerror(errno));
		return 1;
	}
	if (!control_signals[i].stops) {
		printf("echod: %s sent to pid %ld\n", name, (long)pid);
		return 0;
	}
	/* stop and quit: report whether it is gone, within a bound. */
	bound_us = 10ull * 1000000;
	if (control_signals[i].sig == SIGQUIT)
		bound_us += conf->shutdown_timeout_us;
	deadline = now_us() + bound_us;
	while (process_alive(pid)) {
		if (now_us() > deadline) {
			fprintf(stderr, "echod: -s %s: pid %ld is still "
			    "running after %.0f s\n", name, (long)pid,
			    (double)bound_us / 1e6);
			return 1;
		}
		nap_ms(20);
	}
	printf("echod: pid %ld stopped\n", (long)pid);
	return 0;
}
