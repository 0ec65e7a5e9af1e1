/*
 * fuzz_config.c: the config file parser and the value parsers under
 * arbitrary input, raw bytes included (NUL, a byte-order mark, long lines,
 * no final newline). Checked beyond "no crash": every error names the file,
 * and a FILE:LINE error names a line the input has; the lenient reader of
 * `echod -s` (config_load_control) agrees with config_load on good input
 * and never fails on a readable file. Built two ways: with -fsanitize=fuzzer (clang) it is a
 * libFuzzer target; otherwise it has its own main() that replays the files
 * named on the command line, so the seed corpus runs as a regression test
 * in every build (and under ASan/UBSan in the sanitizer pass).
 *
 *   clang -fsanitize=fuzzer,address ... (see tests/fuzz/README)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "parse.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Lines in the input, counted as the parser counts them. */
static long
count_lines(const uint8_t *data, size_t len)
{
	long	n = 0;
	size_t	i;

	for (i = 0; i < len; i++)
		if (data[i] == '\n')
			n++;
	if (len > 0 && data[len - 1] != '\n')
		n++;
	return n;
}

/* "PATH:LINE: ..." must name a line in 1..nlines; "PATH: ..." is fine. */
static void
check_error(const char *err, const char *path, long nlines)
{
	const char	*p;
	char		*end;
	long		 line;

	if (strncmp(err, path, strlen(path)) != 0) {
		fprintf(stderr, "error without FILE: %s\n", err);
		abort();
	}
	p = err + strlen(path);
	if (*p != ':' || p[1] < '0' || p[1] > '9')
		return;
	line = strtol(p + 1, &end, 10);
	if (*end != ':' || line < 1 || line > nlines) {
		fprintf(stderr, "error names line %ld of a %ld-line file: %s\n",
		    line, nlines, err);
		abort();
	}
}

static void
fuzz_control(const char *path, int loaded)
{
	char		 err[CONFIG_ERRLEN];
	struct config	*conf;

	conf = config_load_control(path, err, sizeof(err));
	if (conf == NULL) {
		/* Only a file that cannot be read at all. */
		fprintf(stderr, "control load failed on a readable file: %s\n",
		    err);
		abort();
	}
	if (loaded != (err[0] == '\0')) {
		fprintf(stderr, "config_load and config_load_control disagree: "
		    "\"%s\"\n", err);
		abort();
	}
	config_free(conf);
}

static void
fuzz_values(const char *s)
{
	struct addr_spec	 spec;
	const char		*why;
	uint64_t		 v;
	int			 b;

	(void)parse_size(s, &v, &why);
	(void)parse_duration(s, &v, &why);
	(void)parse_uint(s, 0, UINT64_MAX, &v, &why);
	(void)parse_bool(s, &b, &why);
	(void)addr_parse(s, "127.0.0.1", &spec, &why);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char		 path[] = "/tmp/echod-fuzz-XXXXXX";
	char		 err[CONFIG_ERRLEN], *s;
	struct config	*conf;
	int		 fd;

	s = malloc(len + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, len);
	s[len] = '\0';
	fuzz_values(s);
	free(s);

	if ((fd = mkstemp(path)) == -1)
		return 0;
	if (write(fd, data, len) != (ssize_t)len) {
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	conf = config_load(path, err, sizeof(err));
	if (conf != NULL) {
		config_finish(conf);
		config_free(conf);
	} else
		check_error(err, path, count_lines(data, len));
	/* Over 1 MiB is refused before parsing, by both readers. */
	if (len <= 1024 * 1024)
		fuzz_control(path, conf != NULL);
	unlink(path);
	return 0;
}

#ifndef FUZZING_ENGINE
int
main(int argc, char **argv)
{
	FILE	*fp;
	char	*buf;
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
		LLVMFuzzerTestOneInput((const uint8_t *)buf, (size_t)len);
		free(buf);
	}
	printf("fuzz_config: %d inputs replayed\n", argc - 1);
	return 0;
}
#endif
