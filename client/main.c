/*
 * main.c: echoload's entry point: parse the command line, open the output
 * files, run the load and print the results. Exit status: 0 for a clean
 * run, 1 when any request failed or the run could not start, 2 for a usage
 * error.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "echoload.h"
#include "hlog.h"
#include "merge.h"
#include "report.h"
#include "run.h"
#include "sweep.h"

struct outputs {
	FILE	*json;
	FILE	*csv;
	FILE	*hgrm;
	FILE	*hlog;
	FILE	*summary;	/* stdout, unless a file option took it */
};

static void
on_signal(int sig)
{
	(void)sig;
	run_request_stop();
}

static void
setup_signals(void)
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	/* The first ^C ends the run and reports; a second one kills. */
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESETHAND;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static int
open_output(const char *opt, const char *path, FILE **f, struct outputs *out)
{
	if (path == NULL)
		return 0;
	if (strcmp(path, "-") == 0) {
		*f = stdout;
		out->summary = stderr;
		return 0;
	}
	if ((*f = fopen(path, "w")) == NULL) {
		fprintf(stderr, "echoload: %s %s: %s\n", opt, path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

static int
close_output(const char *path, FILE *f)
{
	int	rv;

	if (f == NULL)
		return 0;
	rv = f == stdout ? fflush(f) : fclose(f);
	if (rv != 0 || (f == stdout && ferror(f))) {
		fprintf(stderr, "echoload: writing %s failed\n", path);
		return -1;
	}
	return 0;
}

static int
open_outputs(const struct opts *o, struct outputs *out)
{
	memset(out, 0, sizeof *out);
	out->summary = stdout;
	if (open_output("--json", o->json_path, &out->json, out) != 0 ||
	    open_output("--csv", o->csv_path, &out->csv, out) != 0 ||
	    open_output("--hgrm", o->hgrm_path, &out->hgrm, out) != 0 ||
	    open_output("--hlog", o->hlog_path, &out->hlog, out) != 0)
		return -1;
	if (out->csv != NULL)
		report_csv_header(out->csv);
	return 0;
}

static int
write_results(const struct opts *o, struct run *r, struct outputs *out)
{
	int	rv = 0;

	report_text(out->summary, r);
	fflush(out->summary);
	if (out->json != NULL)
		report_json(out->json, r);
	if (out->hgrm != NULL && report_hgrm(out->hgrm, r) != 0)
		rv = -1;
	if (out->hlog != NULL && (report_hlog_finish(r) != 0 ||
	    r->hlog_failed))
		rv = -1;
	if (close_output(o->json_path, out->json) != 0 ||
	    close_output(o->csv_path, out->csv) != 0 ||
	    close_output(o->hgrm_path, out->hgrm) != 0 ||
	    close_output(o->hlog_path, out->hlog) != 0)
		rv = -1;
	out->json = out->csv = out->hgrm = out->hlog = NULL;
	return rv;
}

static void
close_outputs(struct outputs *out)
{
	if (out->json != NULL && out->json != stdout)
		fclose(out->json);
	if (out->csv != NULL && out->csv != stdout)
		fclose(out->csv);
	if (out->hgrm != NULL && out->hgrm != stdout)
		fclose(out->hgrm);
	if (out->hlog != NULL && out->hlog != stdout)
		fclose(out->hlog);
}

/* -R FROM:TO...: steps on the same connections, one table. */
static int
main_sweep(const struct opts *o, struct outputs *out)
{
	struct run	*r = NULL;
	int		 status;

	switch (run_open(o, out->csv, 1, &r)) {
	case 0:
		break;
	case 1:
		/* The connection phase ended it: what it found. */
		run_close(r);
		report_text(out->summary, r);
		close_outputs(out);
		run_free(r);
		return 1;
	case -2:	/* not on this event back end: like a usage error */
		close_outputs(out);
		run_free(r);
		return 2;
	default:
		close_outputs(out);
		run_free(r);
		return 1;
	}
	status = sweep_run(r, out->summary, out->json);
	if (close_output(o->json_path, out->json) != 0 ||
	    close_output(o->csv_path, out->csv) != 0)
		status = 1;
	run_free(r);
	return status;
}

int
main(int argc, char **argv)
{
	struct opts	 o;
	struct outputs	 out;
	struct run	*r = NULL;
	char		 err[512];
	int		 status;

	if (argc > 1 && strcmp(argv[1], "merge") == 0)
		return merge_main(argc - 1, argv + 1);
	switch (opts_parse(&o, argc, argv, err, sizeof err)) {
	case OPTS_HELP:
		opts_usage(stdout);
		return 0;
	case OPTS_VERSION:
		printf("echoload %s\n", ECHOLOAD_VERSION);
		return 0;
	case OPTS_ERROR:
		fprintf(stderr, "echoload: %s\n", err);
		opts_usage(stderr);
		return 2;
	case OPTS_RUN:
		break;
	}
	if (open_outputs(&o, &out) != 0) {
		close_outputs(&out);
		return 1;
	}
	setup_signals();
	if (o.sweep != SWEEP_NONE)
		return main_sweep(&o, &out);
	if ((status = run_load(&o, out.csv, out.hlog, &r)) != 0) {
		close_outputs(&out);
		run_free(r);
		return status == -2 ? 2 : 1;
	}
	/* A connection that did not come up is an error like a request that
	 * failed; a load that did not run at all is one too. */
	status = r->res.errors > 0 || !r->res.loaded ||
	    connect_failed_total(&r->res.conn) > 0 ? 1 : 0;
	if (write_results(&o, r, &out) != 0)
		status = 1;
	run_free(r);
	return status;
}
