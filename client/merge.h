/*
 * merge.h: `echoload merge FILE...`: the results of several runs (JSON or
 * .hlog) added exactly into one.
 */
#ifndef ECHOLOAD_MERGE_H
#define ECHOLOAD_MERGE_H

/* argv[0] is "merge". Exit status: 0, 1 for a write error, 2 for bad
 * input or usage. */
int	merge_main(int argc, char **argv);

#endif
