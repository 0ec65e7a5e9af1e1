/*
 * test_config.c: echod's config file: every key, the defaults, units, and
 * that every error names FILE:LINE and the key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"

static char	path[64];

static void
write_file(const char *text)
{
	FILE	*fp;

	strcpy(path, "/tmp/echod-test-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd != -1);
	fp = fdopen(fd, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static struct config *
load(const char *text, char *err, size_t errlen)
{
	struct config	*conf;

	write_file(text);
	err[0] = '\0';
	conf = config_load(path, err, errlen);
	unlink(path);
	return conf;
}

/* The error must be "PATH:LINE: KEY: ..." (or "PATH:LINE: ..."). */
static void
expect_error(const char *text, int line, const char *key, const char *what)
{
	struct config	*conf;
	char		 err[CONFIG_ERRLEN], want[256];

	conf = load(text, err, sizeof(err));
	if (conf != NULL)
		fail_msg("loaded, expected an error at line %d:\n%s", line,
		    text);
	if (key != NULL)
		snprintf(want, sizeof(want), "%s:%d: %s: ", path, line, key);
	else
		snprintf(want, sizeof(want), "%s:%d: ", path, line);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("error \"%s\" does not start with \"%s\"", err, want);
	if (what != NULL && strstr(err, what) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, what);
}

static void
test_defaults(void **state)
{
	struct config	*conf;

	(void)state;
	conf = config_new();
	config_finish(conf);
	assert_int_equal(conf->nlisteners, 1);
	assert_string_equal(conf->listeners->address, "127.0.0.1:7007");
	assert_int_equal(conf->listeners->mode, MODE_ECHO);
	assert_int_equal(conf->listeners->backlog, 4096);
	assert_int_equal(conf->workers, 0);
	assert_true(config_workers(conf) >= 1);
	assert_int_equal(conf->max_connections, 50000);
	assert_int_equal(conf->idle_timeout_us, 300000000ull);
	assert_int_equal(conf->max_buffer, 256 * 1024);
	assert_int_equal(conf->shutdown_timeout_us, 10000000ull);
	assert_string_equal(conf->log.error_log, "stderr");
	assert_string_equal(conf->log.access_log, "off");
	assert_int_equal(conf->log.buffer, 4 * 1024 * 1024);
	assert_int_equal(conf->tls.min_version, TLSV_1_2);
	assert_int_equal(conf->tls.session_tickets, 1);
	assert_null(conf->admin_address);
	config_free(conf);
}

static void
test_every_key(void **state)
{
	struct config		*conf;
	struct listen_conf	*l;
	char			 err[CONFIG_ERRLEN];

	(void)state;
	conf = load(
	    "; a comment\n"
	    "[server]\n"
	    "workers = 3\n"
	    "daemon = yes\n"
	    "pid_file = /run/echod.pid\n"
	    "user = nobody\n"
	    "group = nogroup\n"
	    "shutdown_timeout = 1500ms\n"
	    "[limits]\n"
	    "max_connections = 42\n"
	    "idle_timeout = 2m\n"
	    "max_buffer = 1m\n"
	    "[listen a]\n"
	    "address = 127.0.0.1:9000\n"
	    "mode = discard\n"
	    "backlog = 16\n"
	    "reuseport = yes\n"
	    "tls = no\n"
	    "[listen b-2]\n"
	    "address = [::1]:9001\n"
	    "mode = chargen\n"
	    "[listen c]\n"
	    "address = *:9002  ; inline comment\n"
	    "[tls]\n"
	    "certificate = /etc/cert.pem\n"
	    "key = /etc/key.pem\n"
	    "ca = /etc/ca.pem\n"
	    "min_version = 1.3\n"
	    "ciphers = ECDHE+AESGCM\n"
	    "ciphersuites = TLS_AES_128_GCM_SHA256\n"
	    "session_tickets = no\n"
	    "handshake_timeout = 3s\n"
	    "[log]\n"
	    "error_log = /var/log/echod/error.log\n"
	    "level = debug\n"
	    "access_log = /var/log/echod/access.log\n"
	    "access_format = json\n"
	    "buffer = 8m\n"
	    "[admin]\n"
	    "address = 9100\n", err, sizeof(err));
	if (conf == NULL)
		fail_msg("%s", err);
	assert_int_equal(conf->workers, 3);
	assert_int_equal(config_workers(conf), 3);
	assert_int_equal(conf->daemon, 1);
	assert_string_equal(conf->pid_file, "/run/echod.pid");
	assert_string_equal(conf->user, "nobody");
	assert_string_equal(conf->group, "nogroup");
	assert_int_equal(conf->shutdown_timeout_us, 1500000);
	assert_int_equal(conf->max_connections, 42);
	assert_int_equal(conf->idle_timeout_us, 120000000ull);
	assert_int_equal(conf->max_buffer, 1048576);
	assert_int_equal(conf->nlisteners, 3);
	l = conf->listeners;
	assert_string_equal(l->name, "a");
	assert_int_equal(l->line, 13);
	assert_string_equal(l->spec.host, "127.0.0.1");
	assert_int_equal(l->spec.port, 9000);
	assert_int_equal(l->mode, MODE_DISCARD);
	assert_int_equal(l->backlog, 16);
	assert_int_equal(l->reuseport, 1);
	assert_int_equal(l->tls, 0);
	l = l->next;
	assert_string_equal(l->name, "b-2");
	assert_string_equal(l->spec.host, "::1");
	assert_int_equal(l->mode, MODE_CHARGEN);
	l = l->next;
	assert_string_equal(l->name, "c");
	assert_int_equal(l->spec.wildcard, 1);
	assert_string_equal(conf->tls.certificate, "/etc/cert.pem");
	assert_int_equal(conf->tls.certificate_line, 25);
	assert_string_equal(conf->tls.key, "/etc/key.pem");
	assert_int_equal(conf->tls.key_line, 26);
	assert_string_equal(conf->tls.ca, "/etc/ca.pem");
	assert_int_equal(conf->tls.min_version, TLSV_1_3);
	assert_string_equal(conf->tls.ciphers, "ECDHE+AESGCM");
	assert_string_equal(conf->tls.ciphersuites, "TLS_AES_128_GCM_SHA256");
	assert_int_equal(conf->tls.session_tickets, 0);
	assert_int_equal(conf->tls.handshake_timeout_us, 3000000);
	assert_string_equal(conf->log.error_log, "/var/log/echod/error.log");
	assert_int_equal(conf->log.level, LOG_LEVEL_DEBUG);
	assert_string_equal(conf->log.access_log, "/var/log/echod/access.log");
	assert_int_equal(conf->log.access_format, ACCESS_JSON);
	assert_int_equal(conf->log.buffer, 8 * 1024 * 1024);
	assert_string_equal(conf->admin_address, "9100");
	assert_string_equal(conf->admin_spec.host, "127.0.0.1");
	assert_int_equal(conf->admin_spec.port, 9100);
	config_free(conf);
}

static void
test_workers_auto_and_empty_file(void **state)
{
	struct config	*conf;
	char		 err[CONFIG_ERRLEN];

	(void)state;
	conf = load("[server]\nworkers = auto\n", err, sizeof(err));
	assert_non_null(conf);
	assert_int_equal(conf->workers, 0);
	assert_int_equal(conf->nlisteners, 0);
	config_finish(conf);
	assert_int_equal(conf->nlisteners, 1);
	config_free(conf);

	conf = load("", err, sizeof(err));
	assert_non_null(conf);
	config_free(conf);
}

static void
test_errors(void **state)
{
	(void)state;
	expect_error("[server]\nwrokers = 2\n", 2, "wrokers", "unknown key");
	expect_error("[srever]\nworkers = 2\n", 1, NULL, "unknown section");
	expect_error("workers = 2\n", 1, "workers", "outside");
	expect_error("[server]\nworkers = 0\n", 2, "workers", NULL);
	expect_error("[server]\nworkers = many\n", 2, "workers", NULL);
	expect_error("[server]\nworkers = 100000\n", 2, "workers", NULL);
	expect_error("[server]\ndaemon = perhaps\n", 2, "daemon", "boolean");
	expect_error("[server]\nshutdown_timeout = 5 parsecs\n", 2,
	    "shutdown_timeout", "unit");
	expect_error("[server]\npid_file =\n", 2, "pid_file", "empty");
	expect_error("[limits]\nmax_connections = -1\n", 2,
	    "max_connections", NULL);
	expect_error("[limits]\nmax_connections = 0\n", 2, "max_connections",
	    NULL);
	expect_error("[limits]\nidle_timeout = 10y\n", 2, "idle_timeout",
	    "unit");
	expect_error("[limits]\nmax_buffer = 12q\n", 2, "max_buffer",
	    "unit");
	expect_error("[limits]\nmax_buffer = 10\n", 2, "max_buffer",
	    "range");
	expect_error("[limits]\nmax_buffer = 5g\n", 2, "max_buffer",
	    "range");
	expect_error("[limits]\nbogus = 1\n", 2, "bogus", "unknown key");
	expect_error("[listen a]\naddress = 127.0.0.1\n", 2, "address",
	    "PORT");
	expect_error("[listen a]\naddress = 127.0.0.1:99999\n", 2, "address",
	    "port");
	expect_error("[listen a]\naddress = ::1:80\n", 2, "address",
	    "brackets");
	expect_error("[listen a]\naddress = 127.0.0.1:1\nmode = ping\n", 3,
	    "mode", "unknown mode");
	expect_error("[listen a]\naddress = 127.0.0.1:1\nbacklog = 0\n", 3,
	    "backlog", NULL);
	expect_error("[listen a]\naddress = 127.0.0.1:1\nreuseport = 2\n", 3,
	    "reuseport", NULL);
	expect_error("[listen a]\naddress = 127.0.0.1:1\ncolour = red\n", 3,
	    "colour", "unknown key");
	expect_error("[listen a]\nmode = echo\n", 1, "address",
	    "no address");
	expect_error("[listen a]\n", 1, "address", "no address");
	expect_error("[listen]\naddress = 127.0.0.1:1\n", 1, NULL, "name");
	expect_error("[listen a b]\naddress = 127.0.0.1:1\n", 1, NULL,
	    "name");
	expect_error("[listen a]\naddress = 127.0.0.1:1\n"
	    "[listen a]\naddress = 127.0.0.1:2\n", 3, NULL,
	    "duplicate listener");
	expect_error("[listen a]\naddress = 127.0.0.1:1\n"
	    "[listen b]\naddress = 127.0.0.1:1\n", 4, "address",
	    "same address");
	expect_error("[listen a]\naddress = 127.0.0.1:1\n"
	    "address = 127.0.0.1:2\n", 3, "address", "twice");
	expect_error("[listen a]\naddress = 127.0.0.1:1\ntls = yes\n", 1,
	    "tls", "certificate");
	expect_error("[tls]\nmin_version = 1.1\n", 2, "min_version",
	    "version");
	expect_error("[tls]\nhandshake_timeout = 0\n", 2,
	    "handshake_timeout", NULL);
	expect_error("[tls]\nsession_tickets = sometimes\n", 2,
	    "session_tickets", NULL);
	expect_error("[tls]\npassword = x\n", 2, "password", "unknown key");
	expect_error("[log]\nlevel = loud\n", 2, "level", "unknown level");
	expect_error("[log]\naccess_format = xml\n", 2, "access_format",
	    "format");
	expect_error("[log]\naccess_log = stderr\n", 2, "access_log", NULL);
	expect_error("[log]\nbuffer = 1k\n", 2, "buffer", "range");
	expect_error("[admin]\naddress = nowhere:\n", 2, "address", NULL);
	expect_error("[admin]\nport = 1\n", 2, "port", "unknown key");
	expect_error("[server]\nworkers = 1\n\n[limits\n", 4, NULL, "']'");
	expect_error("[server]\njust some words\n", 2, NULL, "syntax");
}

static void
test_long_line(void **state)
{
	char	text[600];

	(void)state;
	memset(text, 0, sizeof(text));
	strcpy(text, "[server]\npid_file = /");
	memset(text + strlen(text), 'x', 400);
	strcat(text, "\n");
	expect_error(text, 2, NULL, "too long");
}

/* Like expect_error, for text that holds NUL bytes (len bytes of it). */
static void
expect_error_bytes(const char *text, size_t len, int line, const char *key,
    const char *what)
{
	struct config	*conf;
	char		 err[CONFIG_ERRLEN], want[256];
	int		 fd;

	strcpy(path, "/tmp/echod-test-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	conf = config_load(path, err, sizeof(err));
	unlink(path);
	if (conf != NULL)
		fail_msg("loaded, expected an error at line %d", line);
	if (key != NULL)
		snprintf(want, sizeof(want), "%s:%d: %s: ", path, line, key);
	else
		snprintf(want, sizeof(want), "%s:%d: ", path, line);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("error \"%s\" does not start with \"%s\"", err, want);
	if (what != NULL && strstr(err, what) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, what);
}

/* A UTF-8 byte-order mark (Windows editors write one) is not a key. */
static void
test_bom_accepted(void **state)
{
	struct config	*conf;
	char		 err[CONFIG_ERRLEN];

	(void)state;
	conf = load("\xef\xbb\xbf[server]\nworkers = 3\n", err, sizeof(err));
	if (conf == NULL)
		fail_msg("%s", err);
	assert_int_equal(conf->workers, 3);
	config_free(conf);
	conf = load("\xef\xbb\xbf\n[limits]\nmax_connections = 7\n", err,
	    sizeof(err));
	if (conf == NULL)
		fail_msg("%s", err);
	assert_int_equal(conf->max_connections, 7);
	config_free(conf);
	/* Only at the very start: elsewhere it is just bytes. */
	expect_error("[server]\n\xef\xbb\xbfworkers = 3\n", 2, NULL,
	    "unknown key");
}

/* A NUL byte neither cuts a value short nor shifts the line numbers. */
static void
test_nul_byte(void **state)
{
	static const char	value[] = "[limits]\nmax_connections = 5\0junk\n";
	static const char	split[] = "[server]\nworkers = 1\n\0\n"
				    "[limits]\nmax_connections = lots\n";
	static const char	header[] = "[ser\0ver]\nworkers = 1\n";

	(void)state;
	expect_error_bytes(value, sizeof(value) - 1, 2, "max_connections",
	    "NUL");
	/* Without the NUL check, this said line 6 of a 5-line file. */
	expect_error_bytes(split, sizeof(split) - 1, 3, NULL, "NUL");
	expect_error_bytes(header, sizeof(header) - 1, 1, NULL, "NUL");
}

/* Not a regular file: refused at once, named, never read forever. */
static void
test_not_a_regular_file(void **state)
{
	char	err[CONFIG_ERRLEN], dir[] = "/tmp/echod-test-dir-XXXXXX";
	char	big[] = "/tmp/echod-test-big-XXXXXX";
	int	fd;

	(void)state;
	assert_null(config_load("/dev/zero", err, sizeof(err)));
	assert_non_null(strstr(err, "/dev/zero: not a regular file"));
	assert_non_null(mkdtemp(dir));
	assert_null(config_load(dir, err, sizeof(err)));
	rmdir(dir);
	assert_non_null(strstr(err, dir));
	assert_non_null(strstr(err, "is a directory"));
	assert_null(strstr(err, ":0:"));
	/* Bigger than any config file: refused by size, not parsed. */
	fd = mkstemp(big);
	assert_true(fd != -1);
	assert_int_equal(ftruncate(fd, 2 * 1024 * 1024), 0);
	close(fd);
	assert_null(config_load(big, err, sizeof(err)));
	unlink(big);
	assert_non_null(strstr(err, "too large"));
}

/* A repeated section header continues the section: a key is still once. */
static void
test_repeated_section(void **state)
{
	struct config	*conf;
	char		 err[CONFIG_ERRLEN];

	(void)state;
	expect_error("[limits]\nmax_connections = 5\n[server]\nworkers = 1\n"
	    "[limits]\nmax_connections = 9\n", 6, "max_connections",
	    "first at line 2");
	expect_error("[log]\nlevel = info\n\n[log]\nlevel = debug\n", 5,
	    "level", "given twice");
	conf = load("[limits]\nmax_connections = 5\n[server]\nworkers = 1\n"
	    "[limits]\nidle_timeout = 1s\n", err, sizeof(err));
	if (conf == NULL)
		fail_msg("%s", err);
	assert_int_equal(conf->max_connections, 5);
	assert_int_equal(conf->idle_timeout_us, 1000000);
	config_free(conf);
}

/* A duration that rounds to 0 would turn a timeout off. */
static void
test_duration_below_1us(void **state)
{
	struct config	*conf;
	char		 err[CONFIG_ERRLEN];

	(void)state;
	expect_error("[limits]\nidle_timeout = 0.4us\n", 2, "idle_timeout",
	    "below 1us");
	expect_error("[server]\nshutdown_timeout = 0.0004ms\n", 2,
	    "shutdown_timeout", "below 1us");
	conf = load("[limits]\nidle_timeout = 0\n", err, sizeof(err));
	if (conf == NULL)
		fail_msg("%s", err);
	assert_int_equal(conf->idle_timeout_us, 0);
	config_free(conf);
}

/* echod -s reads pid_file even from a file with errors elsewhere. */
static void
test_load_control(void **state)
{
	static const char	text[] = "[limits]\nmax_connections = lots\n"
				    "[bogus]\nx = 1\n[server]\nworkers = many\n"
				    "pid_file = /run/e.pid\n\0\nshutdown_timeout = 3s\n";
	struct config		*conf;
	char			 err[CONFIG_ERRLEN];
	int			 fd;

	(void)state;
	strcpy(path, "/tmp/echod-test-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, sizeof(text) - 1),
	    (ssize_t)sizeof(text) - 1);
	close(fd);
	conf = config_load_control(path, err, sizeof(err));
	unlink(path);
	assert_non_null(conf);
	assert_non_null(strstr(err, ":2: max_connections: "));
	assert_string_equal(conf->pid_file, "/run/e.pid");
	assert_int_equal(conf->shutdown_timeout_us, 3000000);
	config_free(conf);
	/* A good file: no error. */
	write_file("[server]\npid_file = /run/f.pid\n");
	conf = config_load_control(path, err, sizeof(err));
	unlink(path);
	assert_non_null(conf);
	assert_string_equal(err, "");
	assert_string_equal(conf->pid_file, "/run/f.pid");
	config_free(conf);
	assert_null(config_load_control("/dev/zero", err, sizeof(err)));
}

static void
test_missing_file(void **state)
{
	char	err[CONFIG_ERRLEN];

	(void)state;
	assert_null(config_load("/nonexistent/echod.conf", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/echod.conf"));
}

static void
test_cmdline_listener(void **state)
{
	struct config	*conf;
	char		 err[CONFIG_ERRLEN];

	(void)state;
	conf = config_new();
	assert_int_equal(config_add_listener(conf, "discard@[::1]:9",
	    err, sizeof(err)), 0);
	assert_int_equal(config_add_listener(conf, "7007", err,
	    sizeof(err)), 0);
	assert_int_equal(config_add_listener(conf, "ping@1.2.3.4:5", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown mode"));
	/* A bare word is a port for 127.0.0.1, so a lone host is refused. */
	assert_int_equal(config_add_listener(conf, "1.2.3.4", err,
	    sizeof(err)), -1);
	assert_int_equal(conf->nlisteners, 2);
	assert_string_equal(conf->listeners->next->spec.host, "127.0.0.1");
	assert_int_equal(conf->listeners->next->spec.port, 7007);
	config_free(conf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_workers_auto_and_empty_file),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_bom_accepted),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_not_a_regular_file),
		cmocka_unit_test(test_repeated_section),
		cmocka_unit_test(test_duration_below_1us),
		cmocka_unit_test(test_load_control),
		cmocka_unit_test(test_cmdline_listener),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
