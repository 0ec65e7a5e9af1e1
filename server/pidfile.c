/*
 * pidfile.c: the pid file. Written atomically (a temporary file renamed)
 * and held with an flock for echod's whole life, so that a second echod,
 * or `echod -s`, can tell a live holder from a stale file even when the
 * pid was reused; removed at exit only by the process that wrote it.
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "pidfile.h"
#include "util.h"

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

/* 1 when pid names a process that has not exited (zombies have). */
int
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
int
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

/*
 * Read a pid file. Returns the pid, 0 when the file does not exist, or -1
 * with err set.
 */
pid_t
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

	full = daemon_path(path);
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
