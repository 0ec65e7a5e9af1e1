/*
 * logfmt.c: how echod's log lines look: the timestamp every line starts
 * with, the access-log line of a closed connection in the text and JSON
 * formats (escaped so that a listener name or a TLS string cannot break a
 * line), and the "N lines dropped" notices of both logs. Pure formatting:
 * where lines go is log.c's.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "logfmt.h"

/* The formatted seconds of the last timestamp, per thread. */
static __thread time_t	tc_sec = -1;
static __thread char	tc_buf[32];

/* "2025-06-01T12:00:00.123456Z", the seconds cached per thread. */
size_t
logfmt_time(char *buf, size_t len, uint64_t wall)
{
	time_t		sec = (time_t)(wall / 1000000);
	struct tm	tm;
	int		n;

	if (sec != tc_sec) {
		gmtime_r(&sec, &tm);
		strftime(tc_buf, sizeof(tc_buf), "%Y-%m-%dT%H:%M:%S", &tm);
		tc_sec = sec;
	}
	n = snprintf(buf, len, "%s.%06uZ", tc_buf,
	    (unsigned)(wall % 1000000));
	return n < 0 ? 0 : (size_t)n >= len ? len - 1 : (size_t)n;
}

size_t
logfmt_event_drop(char *buf, size_t len, uint64_t wall, uint64_t n)
{
	size_t	t = logfmt_time(buf, len, wall);
	int	r;

	r = snprintf(buf + t, len - t, " warn: %llu lines dropped\n",
	    (unsigned long long)n);
	return r < 0 || (size_t)r >= len - t ? 0 : t + (size_t)r;
}

size_t
logfmt_access_drop(char *buf, size_t len, uint64_t wall, uint64_t n,
    int json)
{
	char	ts[40];
	int	r;

	logfmt_time(ts, sizeof(ts), wall);
	if (json)
		r = snprintf(buf, len, "{\"time\":\"%s\",\"event\":\"dropped\","
		    "\"lines\":%llu,\"message\":\"%llu lines dropped\"}\n", ts,
		    (unsigned long long)n, (unsigned long long)n);
	else
		r = snprintf(buf, len, "%s %llu lines dropped\n", ts,
		    (unsigned long long)n);
	return r < 0 || (size_t)r >= len ? 0 : (size_t)r;
}

static void
fmt_peer(const struct sockaddr *sa, char *host, size_t hlen,
    unsigned *port)
{
	*port = 0;
	if (sa == NULL) {
		snprintf(host, hlen, "-");
		return;
	}
	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *sin = (const void *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, host, (socklen_t)hlen);
		*port = ntohs(sin->sin_port);
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, (socklen_t)hlen);
		*port = ntohs(sin6->sin6_port);
		break;
	}
	case AF_UNIX:
		snprintf(host, hlen, "unix");
		break;
	default:
		snprintf(host, hlen, "-");
		break;
	}
}

/* Append s to buf as a JSON string body (escaped), bounded. */
static size_t
json_str(char *buf, size_t len, const char *s)
{
	size_t			 o = 0;
	const unsigned char	*p;

	for (p = (const unsigned char *)s; *p != '\0' && o + 7 < len; p++) {
		if (*p == '"' || *p == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)*p;
		} else if (*p < 0x20 || *p == 0x7f)
			o += (size_t)snprintf(buf + o, len - o, "\\u%04x", *p);
		else
			buf[o++] = (char)*p;
	}
	buf[o] = '\0';
	return o;
}

/* A token for the text format: no spaces, quotes or control bytes. */
static void
text_token(char *buf, size_t len, const char *s)
{
	size_t	o;

	for (o = 0; s[o] != '\0' && o + 1 < len; o++)
		buf[o] = (unsigned char)s[o] <= 0x20 || s[o] == '"' ||
		    s[o] == 0x7f ? '_' : s[o];
	buf[o] = '\0';
}

size_t
logfmt_access(const struct access_rec *r, int json, char *line, size_t len)
{
	char		ts[40], host[INET6_ADDRSTRLEN + 8], name[256];
	char		vhost[INET6_ADDRSTRLEN + 8], via[INET6_ADDRSTRLEN + 40];
	char		reason[128], tv[64], tc[256];
	unsigned	port, vport;
	int		n;

	logfmt_time(ts, sizeof(ts), r->start_wall_us);
	fmt_peer(r->peer, host, sizeof(host), &port);
	/* The balancer that sent a PROXY header, beside the client. */
	via[0] = '\0';
	if (r->via != NULL) {
		fmt_peer(r->via, vhost, sizeof(vhost), &vport);
		if (json)
			snprintf(via, sizeof(via), ",\"via\":\"%s\","
			    "\"via_port\":%u", vhost, vport);
		else
			snprintf(via, sizeof(via), " via=%s%s%s:%u",
			    r->via->sa_family == AF_INET6 ? "[" : "", vhost,
			    r->via->sa_family == AF_INET6 ? "]" : "", vport);
	}
	if (json) {
		json_str(name, sizeof(name), r->listener != NULL ?
		    r->listener : "");
		json_str(reason, sizeof(reason), r->reason != NULL ?
		    r->reason : "");
		n = snprintf(line, len, "{\"time\":\"%s\",\"listener\":\"%s\","
		    "\"peer\":\"%s\",\"port\":%u%s,\"duration_us\":%llu,"
		    "\"bytes_in\":%llu,\"bytes_out\":%llu,\"reason\":\"%s\"",
		    ts, name, host, port, via,
		    (unsigned long long)r->duration_us,
		    (unsigned long long)r->bytes_in,
		    (unsigned long long)r->bytes_out, reason);
		if (n > 0 && (size_t)n < len && r->tls_version != NULL) {
			json_str(tv, sizeof(tv), r->tls_version);
			json_str(tc, sizeof(tc), r->tls_cipher != NULL ?
			    r->tls_cipher : "");
			n += snprintf(line + n, len - (size_t)n,
			    ",\"tls_version\":\"%s\",\"tls_cipher\":\"%s\"",
			    tv, tc);
		}
		if (n > 0 && (size_t)n < len)
			n += snprintf(line + n, len - (size_t)n, "}\n");
	} else {
		text_token(name, sizeof(name), r->listener != NULL ?
		    r->listener : "-");
		n = snprintf(line, len, "%s listener=%s peer=%s%s%s:%u%s "
		    "duration=%llu.%06llu bytes_in=%llu bytes_out=%llu "
		    "reason=\"%s\"", ts, name,
		    r->peer != NULL && r->peer->sa_family == AF_INET6 ? "[" :
		    "", host,
		    r->peer != NULL && r->peer->sa_family == AF_INET6 ? "]" :
		    "", port, via,
		    (unsigned long long)(r->duration_us / 1000000),
		    (unsigned long long)(r->duration_us % 1000000),
		    (unsigned long long)r->bytes_in,
		    (unsigned long long)r->bytes_out,
		    r->reason != NULL ? r->reason : "-");
		if (n > 0 && (size_t)n < len && r->tls_version != NULL) {
			text_token(tv, sizeof(tv), r->tls_version);
			text_token(tc, sizeof(tc), r->tls_cipher != NULL ?
			    r->tls_cipher : "-");
			n += snprintf(line + n, len - (size_t)n,
			    " tls=%s cipher=%s", tv, tc);
		}
		if (n > 0 && (size_t)n < len)
			n += snprintf(line + n, len - (size_t)n, "\n");
	}
	if (n <= 0)
		return 0;
	if ((size_t)n >= len) {
		n = (int)len - 1;
		line[n - 1] = '\n';
	}
	return (size_t)n;
}
