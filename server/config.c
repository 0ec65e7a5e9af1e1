/*
 * config.c: echod's configuration file. The INI syntax is inih's; this file
 * owns the schema: which sections and keys exist, their value syntax, their
 * defaults, and the checks across keys. Every error names FILE:LINE and the
 * key, and a file is either loaded whole or not at all.
 */
#include <ctype.h>
#include <errno.h>
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
#define DEFAULT_BACKLOG		511
#define DEFAULT_MAX_CONNS	10000
#define DEFAULT_IDLE_TIMEOUT	(300ull * 1000000)
#define DEFAULT_MAX_BUFFER	(256ull * 1024)
#define DEFAULT_SHUTDOWN	(10ull * 1000000)
#define DEFAULT_HANDSHAKE	(10ull * 1000000)
#define DEFAULT_PROXY_TIMEOUT	(3ull * 1000000)
#define MAX_PROXY_FROM		64
#define DEFAULT_LOG_BUFFER	(4ull * 1024 * 1024)
#define MAX_WORKERS		256

/* What the parser knows while it reads one file. */
struct parse_state {
	struct config	*conf;
	const char	*path;
	FILE		*fp;
	int		 lineno;	/* of the line inih is handling */
	int		 section_line;	/* of the latest [header] */
	char		 section[128];	/* current section as seen by us */
	struct listen_conf *cur;	/* current [listen NAME] */
	char		 seen[64][48];	/* keys given in this section */
	int		 nseen;
	int		 failed;
	int		 too_long;
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

/* A key given twice in one section is a mistake, not an override. */
static int
check_duplicate_key(struct parse_state *ps, const char *key)
{
	int	i;

	for (i = 0; i < ps->nseen; i++) {
		if (strcmp(ps->seen[i], key) == 0)
			return fail(ps, ps->lineno, key,
			    "given twice in [%s]", ps->section);
	}
	if (ps->nseen < (int)nitems(ps->seen) &&
	    strlen(key) < sizeof(ps->seen[0]))
		snprintf(ps->seen[ps->nseen++], sizeof(ps->seen[0]), "%s",
		    key);
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
	ps->nseen = 0;
	ps->cur = NULL;
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

/* inih handler: one key at a time, in file order. */
static int
handler(void *user, const char *section, const char *key, const char *value)
{
	struct parse_state	*ps = user;

	(void)section;	/* tracked by the reader, which also sees empty ones */
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
 * inih's reader: one physical line per call, so that we know the line number
 * of every key (the packaged inih is built without INI_HANDLER_LINENO) and
 * see section headers even when the section is empty.
 */
static char *
reader(char *buf, int size, void *stream)
{
	struct parse_state	*ps = stream;
	char			*p, *end;
	size_t			 len;

	if (fgets(buf, size, ps->fp) == NULL)
		return NULL;
	ps->lineno++;
	len = strlen(buf);
	if (len == (size_t)size - 1 && buf[len - 1] != '\n' && !feof(ps->fp)) {
		ps->too_long = 1;
		return NULL;
	}
	for (p = buf; *p == ' ' || *p == '\t'; p++)
		;
	if (*p == '[' && !ps->failed) {
		if ((end = strchr(p, ']')) == NULL) {
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

struct config *
config_load(const char *path, char *err, size_t errlen)
{
	struct parse_state	 ps;
	int			 rv;

	memset(&ps, 0, sizeof(ps));
	ps.conf = config_new();
	ps.conf->path = xstrdup(path);
	ps.path = path;
	ps.err = err;
	ps.errlen = errlen;
	if ((ps.fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		config_free(ps.conf);
		return NULL;
	}
	rv = ini_parse_stream(reader, &ps, handler, &ps);
	if (ferror(ps.fp) && !ps.failed)
		fail(&ps, ps.lineno, NULL, "read error: %s", strerror(errno));
	fclose(ps.fp);
	if (ps.too_long)
		fail(&ps, ps.lineno, NULL, "line too long (at most %d "
		    "characters)", 198);
	if (rv > 0 && !ps.failed)
		fail(&ps, rv, NULL, "syntax error (expected [section] or "
		    "key = value)");
	if (!ps.failed)
		check_listeners(&ps);
	if (ps.failed) {
		config_free(ps.conf);
		return NULL;
	}
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
