/*
 * fuzz_proxy.c: the PROXY protocol parser and the proxy_from address
 * parser under arbitrary input. Built two ways, like fuzz_config.c: with
 * -fsanitize=fuzzer (clang) it is a libFuzzer target; otherwise its main()
 * replays the files named on the command line, so that the corpus runs as
 * a unit test in every build.
 *
 * Beyond not crashing, every answer must keep the promise a reader relies
 * on to take exactly the header and not a byte more: a header found is no
 * longer than the input and every shorter prefix of it is MORE (never a
 * failure, never another length), and MORE asks for more than it has.
 */
#include <sys/socket.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check(enum proxy_mode mode, const uint8_t *data, size_t len)
{
	struct proxy_result	r, p;
	enum proxy_status	st;
	size_t			k;

	st = proxy_parse(mode, data, len, &r);
	switch (st) {
	case PROXY_DONE:
		if (r.len == 0 || r.len > len || r.len > PROXY_MAX ||
		    (r.version != 1 && r.version != 2))
			abort();
		if (!r.local && r.src.ss_family != AF_INET &&
		    r.src.ss_family != AF_INET6)
			abort();
		if (!r.local && r.src.ss_family != r.dst.ss_family)
			abort();
		for (k = 0; k < r.len; k++) {
			if (proxy_parse(mode, data, k, &p) != PROXY_MORE)
				abort();
			if (p.need <= k || p.need > PROXY_MAX)
				abort();
		}
		if (proxy_parse(mode, data, r.len, &p) != PROXY_DONE ||
		    p.len != r.len)
			abort();
		break;
	case PROXY_MORE:
		if (r.need <= len || r.need > PROXY_MAX)
			abort();
		break;
	case PROXY_FAIL:
		if ((unsigned)r.error >= PROXY_ERR_TRUNCATED)
			abort();	/* the parser's own reasons only */
		break;
	default:
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct proxy_cidr	 c;
	struct sockaddr_storage	 ss;
	const char		*why;
	char			*s;

	check(PROXY_V1, data, len);
	check(PROXY_V2, data, len);
	check(PROXY_ANY, data, len);
	(void)proxy_crc32c(data, len);

	s = malloc(len + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, len);
	s[len] = '\0';
	if (proxy_cidr_parse(s, &c, &why) == 0) {
		if (c.prefix < 0 || c.prefix > (c.family == AF_INET ? 32 : 128))
			abort();
		memset(&ss, 0, sizeof(ss));
		ss.ss_family = (sa_family_t)c.family;
		(void)proxy_cidr_match(&c, 1, (struct sockaddr *)&ss);
	}
	free(s);
	return 0;
}

#ifndef FUZZING_ENGINE
int
main(int argc, char **argv)
{
	FILE	*fp;
	uint8_t	*buf;
	long	 len;
	int	 i;

	for (i = 1; i < argc; i++) {
		if ((fp = fopen(argv[i], "rb")) == NULL) {
			perror(argv[i]);
			return 1;
		}
		fseek(fp, 0, SEEK_END);
		len = ftell(fp);
		rewind(fp);
		buf = malloc((size_t)len + 1);
		if (buf == NULL || fread(buf, 1, (size_t)len, fp) !=
		    (size_t)len) {
			fclose(fp);
			free(buf);
			return 1;
		}
		fclose(fp);
		LLVMFuzzerTestOneInput(buf, (size_t)len);
		free(buf);
	}
	printf("fuzz_proxy: %d inputs replayed\n", argc - 1);
	return 0;
}
#endif
