/*
 * config.h: echod's configuration, as parsed from the INI file (inih) or
 * built from defaults and the command line. A struct config is immutable once
 * loaded; reload builds a new one and swaps it in only when it is valid.
 */
#ifndef ECHOD_CONFIG_H
#define ECHOD_CONFIG_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "log.h"
#include "proxy.h"

enum listen_mode {
	MODE_ECHO,
	MODE_DISCARD,
	MODE_CHARGEN,
};

enum tls_version {
	TLSV_1_2,
	TLSV_1_3,
};

enum access_format {
	ACCESS_TEXT,
	ACCESS_JSON,
};

struct listen_conf {
	char			*name;
	int			 line;		/* of the [listen NAME] header */
	char			*address;	/* as written */
	int			 address_line;
	struct addr_spec	 spec;
	enum listen_mode	 mode;
	int			 tls;
	int			 backlog;
	int			 reuseport;
	int			 inherited_fd;	/* socket activation, or -1 */
	enum proxy_mode		 proxy;		/* proxy_protocol */
	uint64_t		 proxy_timeout_us;
	struct proxy_cidr	*proxy_from;	/* NULL: any peer */
	int			 nproxy_from;
	int			 proxy_from_line;
	struct listen_conf	*next;
};

struct tls_conf {
	char		*certificate;
	int		 certificate_line;
	char		*key;
	int		 key_line;
	char		*ca;
	int		 ca_line;
	enum tls_version min_version;
	char		*ciphers;
	int		 ciphers_line;
	char		*ciphersuites;
	int		 ciphersuites_line;
	int		 session_tickets;
	uint64_t	 handshake_timeout_us;
};

/* A sink path: a file name, or one of these. */
#define LOG_OFF		"off"
#define LOG_STDERR	"stderr"

struct log_conf {
	char		*error_log;	/* path, "off" or "stderr" */
	int		 error_log_line;
	enum log_level	 level;
	char		*access_log;	/* path or "off" */
	int		 access_log_line;
	enum access_format access_format;
	uint64_t	 buffer;	/* bytes queued per sink at most */
};

struct config {
	char		*path;		/* NULL when built in */

	/* [server] */
	int		 workers;	/* 0: one per CPU */
	int		 daemon;
	char		*pid_file;
	char		*user;
	char		*group;
	uint64_t	 shutdown_timeout_us;

	/* [limits] */
	uint64_t	 max_connections;
	uint64_t	 idle_timeout_us;	/* 0: never */
	uint64_t	 max_buffer;

	struct listen_conf *listeners;	/* in file order */
	int		 nlisteners;

	struct tls_conf	 tls;
	struct log_conf	 log;

	/* [admin] */
	char		*admin_address;	/* NULL: off */
	struct addr_spec admin_spec;
};

#define CONFIG_ERRLEN	1024

/* Built-in defaults without any listener. */
struct config	*config_new(void);
/*
 * Parse path into a new config. On error returns NULL and writes
 * "FILE:LINE: key: message" into err.
 */
struct config	*config_load(const char *path, char *err, size_t errlen);
/*
 * For echod -s: load path, or when it has errors, read just [server]
 * pid_file and shutdown_timeout from it. Returns NULL only when the file
 * cannot be read at all; err is "" when the file is fine, else the error
 * that config_load found.
 */
struct config	*config_load_control(const char *path, char *err,
		    size_t errlen);
/* Add a listener from the command line: "[MODE@]ADDRESS". */
int		 config_add_listener(struct config *, const char *spec,
		    char *err, size_t errlen);
/* Fill in what the file did not say (the default listener). */
void		 config_finish(struct config *);
void		 config_free(struct config *);
int		 config_workers(const struct config *);
const char	*mode_name(enum listen_mode);

#endif
