/*
 * daemon.c: detaching. Owns the fork, the new session and the standard
 * streams, and the pipe that tells the waiting parent how the start went,
 * so that `echod -d && next` is reliable; and the starting directory, for
 * relative paths used after chdir("/"). The pid file, the privilege drop,
 * systemd and `echod -s` have their own files (doc/ARCHITECTURE.md).
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "util.h"

/* The byte that tells the parent the child is serving; text never has it. */
#define READY_BYTE	'\0'

/* Detaching: the write end of the parent's pipe (also our fd 2), or -1. */
static int	 ready_fd = -1;
static int	 detached;
/* The directory echod started in, for relative paths used after chdir. */
static char	*start_dir;

static int
open_devnull(void)
{
	int	fd;

	if ((fd = open("/dev/null", O_RDWR)) == -1)
		fatal("/dev/null");
	return fd;
}

/* Paths used after chdir("/") are taken as from the starting directory. */
char *
daemon_path(const char *path)
{
	char	*out;

	if (path[0] == '/' || start_dir == NULL)
		return xstrdup(path);
	xasprintf(&out, "%s/%s", start_dir, path);
	return out;
}

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
daemon_detach(struct config *conf)
{
	char	cwd[PATH_MAX];
	pid_t	pid;
	int	fds[2], null;

	if (getcwd(cwd, sizeof(cwd)) != NULL)
		start_dir = xstrdup(cwd);
	/* A reload reads the file again, after chdir("/"). */
	if (conf != NULL && conf->path != NULL && conf->path[0] != '/') {
		char	*abs = daemon_path(conf->path);

		free(conf->path);
		conf->path = abs;
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

int
daemon_detached(void)
{
	return detached;
}
