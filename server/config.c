/*
 * config.c: echod's configuration file. The INI syntax is inih's; this file
 * owns the schema: which sections and keys exist, their value syntax, their
 * defaults, and the checks across keys. Every error names FILE:LINE and the
 * key, and a file is either loaded whole or not at all.
 */
#include <sys/stat.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "parse.h"
#include "util.h"

#define DEFAULT_ADDRESS		"127.0.0.1:7007"
#define DEFAULT_BACKLOG		4096
#define DEFAULT_MAX_CONNS	50000
#define DEFAULT_IDLE_TIMEOUT	(300ull * 1000000)
#define DEFAULT_MAX_BUFFER	(256ull * 1024)
#define DEFAULT_SHUTDOWN	(10ull * 1000000)
#define DEFAULT_HANDSHAKE	(10ull * 1000000)
#define DEFAULT_PROXY_TIMEOUT	(3ull * 1000000)
#define MAX_PROXY_FROM		64
#define DEFAULT_LOG_BUFFER	(4ull * 1024 * 1024)
#define MAX_WORKERS		256
/* A config file is a few KiB; anything this big is the wrong file. */
#define CONFIG_MAX_BYTES	(1024 * 1024)
#define LINE_MAX_CHARS		198	/* inih's buffer, less "\n\0" */

/* A key given in a section, remembered across repeats of its header. */
struct seen_key {
	char	section[128];
	char	key[48];
	int	line;
};

/* What the parser knows while it reads one file. */
struct parse_state {
	struct config	*conf;
	const char	*path;
	char		*text;		/* the whole file, read at once */
	size_t		 textlen;
	size_t		 pos;		/* next byte the reader hands out */
	int		 lineno;	/* of the line inih is handling */
	int		 section_line;	/* of the latest [header] */
	char		 section[128];	/* current section as seen by us */
	struct listen_conf *cur;	/* current [listen NAME] */
	struct seen_key	*seen;		/* keys given so far, all sections */
	size_t		 nseen;
	size_t		 seen_cap;
	int		 failed;
	int		 too_long;
	int		 control;	/* -s: pid_file only, errors tolerated */
	int		 control_error;	/* the file has errors besides */
	char		*err;
	size_t		 errlen;
};

const char *
mode_name(enum listen_mode mode)
{
	switch (mode) {
	case MODE_ECHO:
		return "echo";
	case MODE_DISCARD:
		return "discard";
	case MODE_CHARGEN:
		return "chargen";
	}
	return "?";
}

static int
parse_mode(const char *s, enum listen_mode *out)
{
	if (strcmp(s, "echo") == 0)
		*out = MODE_ECHO;
	else if (strcmp(s, "discard") == 0)
		*out = MODE_DISCARD;
	else if (strcmp(s, "chargen") == 0)
		*out = MODE_CHARGEN;
	else
		return -1;
	return 0;
}

struct config *
config_new(void)
{
	struct config	*conf;

	conf = xcalloc(1, sizeof(*conf));
	conf->workers = 0;
	conf->shutdown_timeout_us = DEFAULT_SHUTDOWN;
	conf->max_connections = DEFAULT_MAX_CONNS;
	conf->idle_timeout_us = DEFAULT_IDLE_TIMEOUT;
	conf->max_buffer = DEFAULT_MAX_BUFFER;
	conf->tls.min_version = TLSV_1_2;
	conf->tls.session_tickets = 1;
	conf->tls.handshake_timeout_us = DEFAULT_HANDSHAKE;
	conf->log.error_log = xstrdup(LOG_STDERR);
	conf->log.level = LOG_LEVEL_INFO;
	conf->log.access_log = xstrdup(LOG_OFF);
	conf->log.access_format = ACCESS_TEXT;
	conf->log.buffer = DEFAULT_LOG_BUFFER;
	return conf;
}

static void
listen_free(struct listen_conf *l)
{
	free(l->name);
	free(l->address);
	free(l->proxy_from);
	free(l);
}

void
config_free(struct config *conf)
{
	struct listen_conf	*l, *next;

	if (conf == NULL)
		return;
	for (l = conf->listeners; l != NULL; l = next) {
		next = l->next;
		listen_free(l);
	}
	free(conf->path);
	free(conf->pid_file);
	free(conf->user);
	free(conf->group);
	free(conf->tls.certificate);
	free(conf->tls.key);
	free(conf->tls.ca);
	free(conf->tls.ciphers);
	free(conf->tls.ciphersuites);
	free(conf->log.error_log);
	free(conf->log.access_log);
	free(conf->admin_address);
	free(conf);
}

int
config_workers(const struct config *conf)
{
	long	n;

	if (conf->workers > 0)
		return conf->workers;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > MAX_WORKERS)
		n = MAX_WORKERS;
	return (int)n;
}

static struct listen_conf *
listen_new(const char *name, int line)
{
	struct listen_conf	*l;

	l = xcalloc(1, sizeof(*l));
	l->name = xstrdup(name);
	l->line = line;
	l->mode = MODE_ECHO;
	l->backlog = DEFAULT_BACKLOG;
	l->inherited_fd = -1;
	l->proxy_timeout_us = DEFAULT_PROXY_TIMEOUT;
	return l;
}

static void
listen_append(struct config *conf, struct listen_conf *l)
{
	struct listen_conf	**tail;

	for (tail = &conf->listeners; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = l;
	conf->nlisteners++;
}

/* Record an error once; later ones are consequences of the first. */
static int
fail(struct parse_state *ps, int line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int
fail(struct parse_state *ps, int line, const char *key, const char *fmt, ...)
{
	va_list	ap;
	int	n = 0;

	if (ps->failed)
		return 0;
	ps->failed = 1;
	if (key != NULL)
		n = snprintf(ps->err, ps->errlen, "%s:%d: %s: ", ps->path,
		    line, key);
	else
		n = snprintf(ps->err, ps->errlen, "%s:%d: ", ps->path, line);
	if (n < 0 || (size_t)n >= ps->errlen)
		return 0;
	va_start(ap, fmt);
	vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return 0;
}

static int
get_size(struct parse_state *ps, const char *key, const char *value,
    uint64_t min, uint64_t max, uint64_t *out)
{
	const char	*why;
	uint64_t	 v;

	if (parse_size(value, &v, &why) != 0)
		return fail(ps, ps->lineno, key, "%s: \"%s\"", why, value);
	if (v < min || v > max)
		return fail(ps, ps->lineno, key,
		    "\"%s\" out of range (%llu to %llu bytes)", value,
		    (unsigned long long)min, (unsigned long long)max);
	*out = v;
	return 1;
}

static int
get_duration(struct parse_state *ps, const char *key, const char *value,
    uint64_t max_us, uint64_t *out)
{
	const char	*why;
	uint64_t	 v;

	if (parse_duration(value, &v, &why) != 0)
		return fail(ps, ps->lineno, key, "%s: \"%s\"", why, value);
	/* "0.4us" would round to 0, which means "off" for a timeout. */
	if (v == 0 && strpbrk(value, "123456789") != NULL)
		return fail(ps, ps->lineno, key, "\"%s\" is below 1us and "
		    "would round to 0 (write 0 to mean none)", value);
	if (v > max_us)
		return fail(ps, ps->lineno, key, "\"%s\" is too long", value);
	*out = v;
	return 1;
}

static int
get_uint(struct parse_state *ps, const char *key, const char *value,
    uint64_t min, uint64_t max, uint64_t *out)
{
	const char	*why;

	if (parse_uint(value, min, max, out, &why) != 0)
		return fail(ps, ps->lineno, key,
		    "%s: \"%s\" (use %llu to %llu)", why, value,
		    (unsigned long long)min, (unsigned long long)max);
	return 1;
}

static int
get_bool(struct parse_state *ps, const char *key, const char *value, int *out)
{
	const char	*why;

	if (parse_bool(value, out, &why) != 0)
		return fail(ps, ps->lineno, key, "%s: \"%s\"", why, value);
	return 1;
}

static int
get_string(struct parse_state *ps, const char *key, const char *value,
    char **out)
{
	if (*value == '\0')
		return fail(ps, ps->lineno, key, "empty value");
	free(*out);
	*out = xstrdup(value);
	return 1;
}

static int
get_file(struct parse_state *ps, const char *key, const char *value,
    char **out, int *line)
{
	if (get_string(ps, key, value, out) == 0)
		return 0;
	if (line != NULL)
		*line = ps->lineno;
	return 1;
}

static int
server_key(struct parse_state *ps, const char *key, const char *value)
{
	struct config	*conf = ps->conf;
	uint64_t	 v;

	if (strcmp(key, "workers") == 0) {
		if (strcmp(value, "auto") == 0) {
			conf->workers = 0;
			return 1;
		}
		if (!get_uint(ps, key, value, 1, MAX_WORKERS, &v))
			return 0;
		conf->workers = (int)v;
		return 1;
	}
	if (strcmp(key, "daemon") == 0)
		return get_bool(ps, key, value, &conf->daemon);
	if (strcmp(key, "pid_file") == 0)
		return get_string(ps, key, value, &conf->pid_file);
	if (strcmp(key, "user") == 0)
		return get_string(ps, key, value, &conf->user);
	if (strcmp(key, "group") == 0)
		return get_string(ps, key, value, &conf->group);
	if (strcmp(key, "shutdown_timeout") == 0)
		return get_duration(ps, key, value, 3600ull * 1000000,
		    &conf->shutdown_timeout_us);
	return fail(ps, ps->lineno, key, "unknown key in [server]");
}

static int
limits_key(struct parse_state *ps, const char *key, const char *value)
{
	struct config	*conf = ps->conf;

	if (strcmp(key, "max_connections") == 0)
		return get_uint(ps, key, value, 1, 10000000,
		    &conf->max_connections);
	if (strcmp(key, "idle_timeout") == 0)
		return get_duration(ps, key, value, 30ull * 86400 * 1000000,
		    &conf->idle_timeout_us);
	if (strcmp(key, "max_buffer") == 0)
		return get_size(ps, key, value, 1024, 1ull << 30,
		    &conf->max_buffer);
	return fail(ps, ps->lineno, key, "unknown key in [limits]");
}

/* proxy_from = CIDR[, CIDR...]: the peers allowed to send a header. */
static int
get_proxy_from(struct parse_state *ps, const char *key, const char *value)
{
	struct listen_conf	*l = ps->cur;
	struct proxy_cidr	 c;
	const char		*p = value, *why;
	char			 item[128];
	size_t			 n;

	free(l->proxy_from);
	l->proxy_from = NULL;
	l->nproxy_from = 0;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		n = strcspn(p, ",");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 0)
			return fail(ps, ps->lineno, key, "empty entry in \"%s\"",
			    value);
		if (n >= sizeof(item))
			return fail(ps, ps->lineno, key, "entry too long in "
			    "\"%s\"", value);
		memcpy(item, p, n);
		item[n] = '\0';
		if (proxy_cidr_parse(item, &c, &why) != 0)
			return fail(ps, ps->lineno, key, "%s: \"%s\"", why,
			    item);
		if (l->nproxy_from == MAX_PROXY_FROM)
			return fail(ps, ps->lineno, key, "more than %d entries",
			    MAX_PROXY_FROM);
		l->proxy_from = xrealloc(l->proxy_from,
		    sizeof(*l->proxy_from) * (size_t)(l->nproxy_from + 1));
		l->proxy_from[l->nproxy_from++] = c;
		p += strcspn(p, ",");
		if (*p == '\0')
			break;
		p++;
	}
	l->proxy_from_line = ps->lineno;
	return 1;
}

static int
listen_key(struct parse_state *ps, const char *key, const char *value)
{
	struct listen_conf	*l = ps->cur;
	const char		*why;
	uint64_t		 v;

	if (strcmp(key, "address") == 0) {
		if (addr_parse(value, NULL, &l->spec, &why) != 0)
			return fail(ps, ps->lineno, key, "%s: \"%s\"", why,
			    value);
		l->address_line = ps->lineno;
		return get_string(ps, key, value, &l->address);
	}
	if (strcmp(key, "mode") == 0) {
		if (parse_mode(value, &l->mode) != 0)
			return fail(ps, ps->lineno, key,
			    "unknown mode \"%s\" (use echo, discard or "
			    "chargen)", value);
		return 1;
	}
	if (strcmp(key, "tls") == 0)
		return get_bool(ps, key, value, &l->tls);
	if (strcmp(key, "backlog") == 0) {
		if (!get_uint(ps, key, value, 1, 65535, &v))
			return 0;
		l->backlog = (int)v;
		return 1;
	}
	if (strcmp(key, "reuseport") == 0)
		return get_bool(ps, key, value, &l->reuseport);
	if (strcmp(key, "proxy_protocol") == 0) {
		if (proxy_mode_parse(value, &l->proxy) != 0)
			return fail(ps, ps->lineno, key,
			    "unknown value \"%s\" (use off, v1, v2 or any)",
			    value);
		return 1;
	}
	if (strcmp(key, "proxy_timeout") == 0) {
		if (!get_duration(ps, key, value, 3600ull * 1000000,
		    &l->proxy_timeout_us))
			return 0;
		if (l->proxy_timeout_us == 0)
			return fail(ps, ps->lineno, key, "must be above 0");
		return 1;
	}
	if (strcmp(key, "proxy_from") == 0)
		return get_proxy_from(ps, key, value);
	return fail(ps, ps->lineno, key, "unknown key in [listen %s]",
	    l->name);
}

static int
tls_key(struct parse_state *ps, const char *key, const char *value)
{
	struct tls_conf	*tls = &ps->conf->tls;

	if (strcmp(key, "certificate") == 0)
		return get_file(ps, key, value, &tls->certificate,
		    &tls->certificate_line);
	if (strcmp(key, "key") == 0)
		return get_file(ps, key, value, &tls->key, &tls->key_line);
	if (strcmp(key, "ca") == 0)
		return get_file(ps, key, value, &tls->ca, &tls->ca_line);
	if (strcmp(key, "min_version") == 0) {
		if (strcmp(value, "1.2") == 0)
			tls->min_version = TLSV_1_2;
		else if (strcmp(value, "1.3") == 0)
			tls->min_version = TLSV_1_3;
		else
			return fail(ps, ps->lineno, key,
			    "unknown TLS version \"%s\" (use 1.2 or 1.3)",
			    value);
		return 1;
	}
	if (strcmp(key, "ciphers") == 0)
		return get_file(ps, key, value, &tls->ciphers,
		    &tls->ciphers_line);
	if (strcmp(key, "ciphersuites") == 0)
		return get_file(ps, key, value, &tls->ciphersuites,
		    &tls->ciphersuites_line);
	if (strcmp(key, "session_tickets") == 0)
		return get_bool(ps, key, value, &tls->session_tickets);
	if (strcmp(key, "handshake_timeout") == 0) {
		if (!get_duration(ps, key, value, 3600ull * 1000000,
		    &tls->handshake_timeout_us))
			return 0;
		if (tls->handshake_timeout_us == 0)
			return fail(ps, ps->lineno, key, "must be above 0");
		return 1;
	}
	return fail(ps, ps->lineno, key, "unknown key in [tls]");
}

static int
log_key(struct parse_state *ps, const char *key, const char *value)
{
	struct log_conf	*log = &ps->conf->log;

	if (strcmp(key, "error_log") == 0)
		return get_file(ps, key, value, &log->error_log,
		    &log->error_log_line);
	if (strcmp(key, "level") == 0) {
		if (log_parse_level(value, &log->level) != 0)
			return fail(ps, ps->lineno, key,
			    "unknown level \"%s\" (use debug, info, notice, "
			    "warn or error)", value);
		return 1;
	}
	if (strcmp(key, "access_log") == 0) {
		if (strcmp(value, LOG_STDERR) == 0)
			return fail(ps, ps->lineno, key,
			    "the access log takes a file or off");
		return get_file(ps, key, value, &log->access_log,
		    &log->access_log_line);
	}
	if (strcmp(key, "access_format") == 0) {
		if (strcmp(value, "text") == 0)
			log->access_format = ACCESS_TEXT;
		else if (strcmp(value, "json") == 0)
			log->access_format = ACCESS_JSON;
		else
			return fail(ps, ps->lineno, key,
			    "unknown format \"%s\" (use text or json)", value);
		return 1;
	}
	if (strcmp(key, "buffer") == 0)
		return get_size(ps, key, value, 64 * 1024, 1ull << 30,
		    &log->buffer);
	return fail(ps, ps->lineno, key, "unknown key in [log]");
}

static int
admin_key(struct parse_state *ps, const char *key, const char *value)
{
	struct config	*conf = ps->conf;
	const char	*why;

	if (strcmp(key, "address") == 0) {
		if (strcmp(value, "off") == 0) {
			free(conf->admin_address);
			conf->admin_address = NULL;
			return 1;
		}
		if (addr_parse(value, "127.0.0.1", &conf->admin_spec,
		    &why) != 0)
			return fail(ps, ps->lineno, key, "%s: \"%s\"", why,
			    value);
		return get_string(ps, key, value, &conf->admin_address);
	}
	return fail(ps, ps->lineno, key, "unknown key in [admin]");
}

/*
 * A key given twice in one section is a mistake, not an override, also when
 * the section's header is repeated further down: both places were meant.
 */
static int
check_duplicate_key(struct parse_state *ps, const char *key)
{
	struct seen_key	*k;
	size_t		 i;

	for (i = 0; i < ps->nseen; i++) {
		k = &ps->seen[i];
		if (strcmp(k->section, ps->section) == 0 &&
		    strcmp(k->key, key) == 0)
			return fail(ps, ps->lineno, key,
			    "given twice in [%s] (first at line %d)",
			    ps->section, k->line);
	}
	if (strlen(key) >= sizeof(k->key))
		return 1;	/* no such key: the section's handler says so */
	if (ps->nseen == ps->seen_cap) {
		ps->seen_cap = ps->seen_cap == 0 ? 32 : ps->seen_cap * 2;
		ps->seen = xrealloc(ps->seen, ps->seen_cap * sizeof(*ps->seen));
	}
	k = &ps->seen[ps->nseen++];
	snprintf(k->section, sizeof(k->section), "%s", ps->section);
	snprintf(k->key, sizeof(k->key), "%s", key);
	k->line = ps->lineno;
	return 1;
}

static int
valid_listen_name(const char *name)
{
	const char	*p;

	if (*name == '\0')
		return 0;
	for (p = name; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' &&
		    *p != '.')
			return 0;
	}
	return 1;
}

/* Entering a section: called from the reader, which sees every header. */
static void
begin_section(struct parse_state *ps, const char *section, int line)
{
	struct listen_conf	*l;
	const char		*name;

	snprintf(ps->section, sizeof(ps->section), "%s", section);
	ps->section_line = line;
	ps->cur = NULL;
	if (ps->control)
		return;		/* only [server] pid_file matters */
	if (strcmp(section, "server") == 0 || strcmp(section, "limits") == 0 ||
	    strcmp(section, "tls") == 0 || strcmp(section, "log") == 0 ||
	    strcmp(section, "admin") == 0)
		return;
	if (strncmp(section, "listen", 6) != 0 ||
	    (section[6] != ' ' && section[6] != '\t' && section[6] != '\0')) {
		fail(ps, line, NULL, "unknown section [%s]", section);
		return;
	}
	name = section + 6;
	while (*name == ' ' || *name == '\t')
		name++;
	if (!valid_listen_name(name)) {
		fail(ps, line, NULL, "[listen NAME] needs a name of letters, "
		    "digits, '-', '_' or '.'");
		return;
	}
	for (l = ps->conf->listeners; l != NULL; l = l->next) {
		if (strcmp(l->name, name) == 0) {
			fail(ps, line, NULL, "duplicate listener \"%s\" (first "
			    "at line %d)", name, l->line);
			return;
		}
	}
	l = listen_new(name, line);
	listen_append(ps->conf, l);
	ps->cur = l;
}

/*
 * echod -s: only [server] pid_file (and shutdown_timeout, for how long to
 * wait) are read; any other error is noted and passed over.
 */
static int
control_key(struct parse_state *ps, const char *key, const char *value)
{
	struct config	*conf = ps->conf;
	const char	*why;
	uint64_t	 v;

	if (strcmp(ps->section, "server") != 0)
		return 1;
	if (strcmp(key, "pid_file") == 0 && *value != '\0') {
		free(conf->pid_file);
		conf->pid_file = xstrdup(value);
	} else if (strcmp(key, "shutdown_timeout") == 0 &&
	    parse_duration(value, &v, &why) == 0)
		conf->shutdown_timeout_us = v;
	return 1;
}

/* inih handler: one key at a time, in file order. */
static int
handler(void *user, const char *section, const char *key, const char *value)
{
	struct parse_state	*ps = user;

	(void)section;	/* tracked by the reader, which also sees empty ones */
	if (ps->control)
		return control_key(ps, key, value);
	if (ps->failed)
		return 1;
	if (ps->section[0] == '\0')
		return fail(ps, ps->lineno, key, "key outside any section");
	if (!check_duplicate_key(ps, key))
		return 1;
	if (strcmp(ps->section, "server") == 0)
		server_key(ps, key, value);
	else if (strcmp(ps->section, "limits") == 0)
		limits_key(ps, key, value);
	else if (strcmp(ps->section, "tls") == 0)
		tls_key(ps, key, value);
	else if (strcmp(ps->section, "log") == 0)
		log_key(ps, key, value);
	else if (strcmp(ps->section, "admin") == 0)
		admin_key(ps, key, value);
	else if (ps->cur != NULL)
		listen_key(ps, key, value);
	/* Returning 1 always: our own error text is better than inih's. */
	return 1;
}

/*
 * The key of a line, for errors found before inih sees it: the text before
 * '=' or ':', trimmed; "" when there is none.
 */
static void
line_key(const char *line, size_t len, char *key, size_t keylen)
{
	const char	*end = line + len, *p, *q;
	size_t		 n;

	key[0] = '\0';
	for (p = line; p < end && (*p == ' ' || *p == '\t'); p++)
		;
	for (q = p; q < end && *q != '=' && *q != ':' && *q != '\0' &&
	    *q != '\n'; q++)
		;
	if (q == end || (*q != '=' && *q != ':'))
		return;
	while (q > p && (q[-1] == ' ' || q[-1] == '\t'))
		q--;
	n = (size_t)(q - p);
	if (n == 0 || n >= keylen)
		return;
	memcpy(key, p, n);
	key[n] = '\0';
}

/*
 * inih's reader: one physical line per call from the file read into memory,
 * so that we know the line number of every key (the packaged inih is built
 * without INI_HANDLER_LINENO), see section headers even when the section is
 * empty, and catch what fgets would hide: a NUL byte would cut the line
 * short (a value "5\0junk" read as 5) and restart line counting mid-line.
 */
static char *
reader(char *buf, int size, void *stream)
{
	struct parse_state	*ps = stream;
	const char		*line, *nl;
	char			*p, *end, key[64];
	size_t			 len, room;

	if (ps->pos >= ps->textlen || ps->too_long)
		return NULL;
	line = ps->text + ps->pos;
	nl = memchr(line, '\n', ps->textlen - ps->pos);
	len = nl != NULL ? (size_t)(nl - line) + 1 : ps->textlen - ps->pos;
	ps->pos += len;
	ps->lineno++;
	/* A UTF-8 byte-order mark is not part of the first line. */
	if (ps->lineno == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
		line += 3;
		len -= 3;
	}
	if (memchr(line, '\0', len) != NULL) {
		if (ps->control) {
			ps->control_error = 1;
			buf[0] = '\n';
			buf[1] = '\0';
			return buf;
		}
		line_key(line, len, key, sizeof(key));
		fail(ps, ps->lineno, key[0] != '\0' ? key : NULL,
		    "a NUL byte in the line");
		ps->pos = ps->textlen;
		return NULL;
	}
	room = (size_t)size - 1;
	if (len - (nl != NULL) > LINE_MAX_CHARS || len > room) {
		if (ps->control) {
			ps->control_error = 1;
			buf[0] = '\n';
			buf[1] = '\0';
			return buf;
		}
		ps->too_long = 1;
		return NULL;
	}
	memcpy(buf, line, len);
	buf[len] = '\0';
	for (p = buf; *p == ' ' || *p == '\t'; p++)
		;
	if (*p == '[' && !ps->failed) {
		if ((end = strchr(p, ']')) == NULL) {
			if (ps->control) {
				ps->control_error = 1;
				return buf;
			}
			fail(ps, ps->lineno, NULL, "missing ']' in section "
			    "header");
			return buf;
		}
		*end = '\0';
		begin_section(ps, p + 1, ps->lineno);
		*end = ']';
	}
	return buf;
}

/*
 * Read the whole file: a regular file of at most CONFIG_MAX_BYTES. Anything
 * else (a directory, /dev/zero, a FIFO that never ends) is refused here with
 * its name, rather than read forever or reported as "line 0".
 */
static int
read_file(struct parse_state *ps)
{
	struct stat	 sb;
	ssize_t		 n;
	size_t		 cap;
	int		 fd;

	fd = open(ps->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd == -1) {
		snprintf(ps->err, ps->errlen, "%s: %s", ps->path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1) {
		snprintf(ps->err, ps->errlen, "%s: %s", ps->path,
		    strerror(errno));
		goto fail;
	}
	if (S_ISDIR(sb.st_mode)) {
		snprintf(ps->err, ps->errlen, "%s: is a directory, not a "
		    "config file", ps->path);
		goto fail;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(ps->err, ps->errlen, "%s: not a regular file",
		    ps->path);
		goto fail;
	}
	if (sb.st_size > CONFIG_MAX_BYTES)
		goto too_big;
	/*
	 * Sized by fstat, grown if the file grows while we read it, up to one
	 * byte more than allowed so that growth past the bound is caught.
	 */
	cap = (size_t)sb.st_size + 1;
	ps->text = xmalloc(cap);
	ps->textlen = 0;
	for (;;) {
		if (ps->textlen == cap) {
			if (cap > CONFIG_MAX_BYTES)
				break;
			cap = cap * 2 > CONFIG_MAX_BYTES + 1 ?
			    CONFIG_MAX_BYTES + 1 : cap * 2;
			ps->text = xrealloc(ps->text, cap);
		}
		n = read(fd, ps->text + ps->textlen, cap - ps->textlen);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(ps->err, ps->errlen, "%s: read error: %s",
			    ps->path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		ps->textlen += (size_t)n;
	}
	if (ps->textlen > CONFIG_MAX_BYTES)
		goto too_big;
	close(fd);
	return 0;
too_big:
	snprintf(ps->err, ps->errlen, "%s: too large for a config file (at "
	    "most %d KiB)", ps->path, CONFIG_MAX_BYTES / 1024);
fail:
	close(fd);
	return -1;
}

static int
check_listeners(struct parse_state *ps)
{
	struct listen_conf	*l, *m;

	for (l = ps->conf->listeners; l != NULL; l = l->next) {
		if (l->address == NULL)
			return fail(ps, l->line, "address",
			    "[listen %s] has no address", l->name);
		for (m = ps->conf->listeners; m != l; m = m->next) {
			if (strcmp(m->spec.host, l->spec.host) == 0 &&
			    m->spec.port == l->spec.port &&
			    m->spec.wildcard == l->spec.wildcard &&
			    l->spec.port != 0)
				return fail(ps, l->address_line, "address",
				    "[listen %s] has the same address as "
				    "[listen %s] (line %d)", l->name, m->name,
				    m->address_line);
		}
		if (l->proxy_from != NULL && l->proxy == PROXY_OFF)
			return fail(ps, l->proxy_from_line, "proxy_from",
			    "[listen %s] has proxy_from but proxy_protocol is "
			    "off", l->name);
		if (l->tls && (ps->conf->tls.certificate == NULL ||
		    ps->conf->tls.key == NULL))
			return fail(ps, l->line, "tls", "[listen %s] uses TLS "
			    "but [tls] has no certificate and key", l->name);
	}
	return 1;
}

static void
parse_state_init(struct parse_state *ps, const char *path, char *err,
    size_t errlen)
{
	memset(ps, 0, sizeof(*ps));
	ps->conf = config_new();
	ps->conf->path = xstrdup(path);
	ps->path = path;
	ps->err = err;
	ps->errlen = errlen;
	err[0] = '\0';
}

static void
parse_state_free(struct parse_state *ps)
{
	free(ps->text);
	free(ps->seen);
}

struct config *
config_load(const char *path, char *err, size_t errlen)
{
	struct parse_state	 ps;
	int			 rv;

	parse_state_init(&ps, path, err, errlen);
	if (read_file(&ps) != 0) {
		parse_state_free(&ps);
		config_free(ps.conf);
		return NULL;
	}
	rv = ini_parse_stream(reader, &ps, handler, &ps);
	if (ps.too_long)
		fail(&ps, ps.lineno, NULL, "line too long (at most %d "
		    "characters)", LINE_MAX_CHARS);
	if (rv > 0 && !ps.failed)
		fail(&ps, rv, NULL, "syntax error (expected [section] or "
		    "key = value)");
	if (!ps.failed)
		check_listeners(&ps);
	parse_state_free(&ps);
	if (ps.failed) {
		config_free(ps.conf);
		return NULL;
	}
	return ps.conf;
}

struct config *
config_load_control(const char *path, char *err, size_t errlen)
{
	struct parse_state	 ps;
	char			 full[CONFIG_ERRLEN];
	struct config		*conf;
	int			 rv;

	if ((conf = config_load(path, full, sizeof(full))) != NULL) {
		err[0] = '\0';
		return conf;
	}
	parse_state_init(&ps, path, err, errlen);
	if (read_file(&ps) != 0) {
		parse_state_free(&ps);
		config_free(ps.conf);
		return NULL;
	}
	ps.control = 1;
	rv = ini_parse_stream(reader, &ps, handler, &ps);
	(void)rv;	/* syntax errors elsewhere do not matter here */
	parse_state_free(&ps);
	/* The file is not fine: say what the full check found. */
	snprintf(err, errlen, "%s", full);
	return ps.conf;
}

int
config_add_listener(struct config *conf, const char *spec, char *err,
    size_t errlen)
{
	struct listen_conf	*l;
	enum listen_mode	 mode = MODE_ECHO;
	const char		*at, *addr = spec, *why;
	char			 modestr[16], name[32];

	if ((at = strchr(spec, '@')) != NULL) {
		if ((size_t)(at - spec) >= sizeof(modestr)) {
			snprintf(err, errlen, "-l %s: unknown mode", spec);
			return -1;
		}
		memcpy(modestr, spec, (size_t)(at - spec));
		modestr[at - spec] = '\0';
		if (parse_mode(modestr, &mode) != 0) {
			snprintf(err, errlen, "-l %s: unknown mode \"%s\" (use "
			    "echo, discard or chargen)", spec, modestr);
			return -1;
		}
		addr = at + 1;
	}
	snprintf(name, sizeof(name), "cmdline%d", conf->nlisteners + 1);
	l = listen_new(name, 0);
	if (addr_parse(addr, "127.0.0.1", &l->spec, &why) != 0) {
		snprintf(err, errlen, "-l %s: %s", spec, why);
		listen_free(l);
		return -1;
	}
	l->address = xstrdup(addr);
	l->mode = mode;
	listen_append(conf, l);
	return 0;
}

void
config_finish(struct config *conf)
{
	struct listen_conf	*l;
	const char		*why;

	if (conf->listeners != NULL)
		return;
	l = listen_new("default", 0);
	if (addr_parse(DEFAULT_ADDRESS, NULL, &l->spec, &why) != 0)
		abort();
	l->address = xstrdup(DEFAULT_ADDRESS);
	listen_append(conf, l);
}
