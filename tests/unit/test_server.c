/*
 * test_server.c: the rooms above the listener, linked without main.c:
 * a server that binds and is freed without running, stats of a server with
 * no workers, a reload with nothing to read, and the daemon's pieces (pid
 * file, systemd notify, echod -s, the privilege drop in a child).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "control.h"
#include "daemon.h"
#include "pidfile.h"
#include "privdrop.h"
#include "reload.h"
#include "sd.h"
#include "server.h"
#include "stats.h"
#include "util.h"

static struct config *
conf_with(const char *spec)
{
	struct config	*conf = config_new();
	char		 err[256];

	assert_int_equal(config_add_listener(conf, spec, err, sizeof(err)),
	    0);
	config_finish(conf);
	return conf;
}

static void
test_bind_and_free_unstarted(void **state)
{
	struct stats_total	 t;
	struct server		*s;
	struct listener		*l;
	char			 err[512];

	(void)state;
	s = server_new(conf_with("127.0.0.1:0"), NULL, 0, NULL);
	assert_int_equal(server_bind(s, err, sizeof(err)), 0);
	l = TAILQ_FIRST(&s->listeners);
	assert_non_null(l);
	assert_int_equal(l->nsocks, 1);
	assert_true(l->socks[0].fd >= 0);
	/* No workers yet: everything counts zero. */
	stats_sum(s, &t);
	assert_int_equal(t.conns_total, 0);
	assert_int_equal(t.refused, 0);
	/* Built-in defaults: a reload has nothing to read and changes
	 * nothing. */
	reload_run(s);
	assert_int_equal(s->reloads_ok, 0);
	assert_int_equal(s->reloads_failed, 0);
	server_free(s);
}

static void
test_bind_error_names_the_listener(void **state)
{
	struct server	*a, *b;
	struct listener	*l;
	char		 spec[64], err[512];

	(void)state;
	a = server_new(conf_with("127.0.0.1:0"), NULL, 0, NULL);
	assert_int_equal(server_bind(a, err, sizeof(err)), 0);
	l = TAILQ_FIRST(&a->listeners);
	snprintf(spec, sizeof(spec), "127.0.0.1:%u",
	    ntohs(((struct sockaddr_in *)&l->bound)->sin_port));
	b = server_new(conf_with(spec), NULL, 0, NULL);
	assert_int_equal(server_bind(b, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "listen cmdline1"));
	assert_non_null(strstr(err, "in use"));
	server_free(b);
	server_free(a);
}

static void
test_pidfile(void **state)
{
	char	dir[] = "/tmp/echod-test-XXXXXX", path[128], err[256];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/echod.pid", dir);
	assert_int_equal(pidfile_read(path, err, sizeof(err)), 0);
	assert_int_equal(pidfile_write(path, err, sizeof(err)), 0);
	assert_int_equal(pidfile_read(path, err, sizeof(err)), getpid());
	assert_true(process_alive(getpid()));
	pidfile_remove();
	assert_int_equal(access(path, F_OK), -1);
	rmdir(dir);
}

static void
test_control_without_pid_file(void **state)
{
	struct config	*conf = config_new();

	(void)state;
	config_finish(conf);
	assert_int_equal(control_signal(conf, "reload"), 1);
	assert_int_equal(control_signal(conf, "dance"), 2);
	config_free(conf);
}

static void
test_sd_notify(void **state)
{
	struct sockaddr_un	sun;
	struct pollfd		pfd;
	char			buf[256];
	ssize_t			n;
	int			fd;

	(void)state;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "/tmp/echod-notify-%ld",
	    (long)getpid());
	unlink(sun.sun_path);
	assert_true((fd = socket(AF_UNIX, SOCK_DGRAM, 0)) >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	setenv("NOTIFY_SOCKET", sun.sun_path, 1);
	sd_notify_send("READY=1");
	unsetenv("NOTIFY_SOCKET");
	pfd.fd = fd;
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	/* Not detached: no MAINPID. */
	assert_false(daemon_detached());
	assert_string_equal(buf, "READY=1");
	close(fd);
	unlink(sun.sun_path);
}

static void
test_privdrop_in_a_child(void **state)
{
	struct passwd	*pw;
	char		 err[256];
	pid_t		 pid;
	int		 status;

	(void)state;
	if (geteuid() != 0 || (pw = getpwnam("nobody")) == NULL) {
		skip();
		return;
	}
	if ((pid = fork()) == 0) {
		if (privdrop("nobody", NULL, err, sizeof(err)) != 0)
			_exit(2);
		_exit(getuid() == pw->pw_uid && geteuid() == pw->pw_uid &&
		    setuid(0) == -1 ? 0 : 3);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bind_and_free_unstarted),
		cmocka_unit_test(test_bind_error_names_the_listener),
		cmocka_unit_test(test_pidfile),
		cmocka_unit_test(test_control_without_pid_file),
		cmocka_unit_test(test_sd_notify),
		cmocka_unit_test(test_privdrop_in_a_child),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
