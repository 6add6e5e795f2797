/* cli.h — what every tool's main shares: one option table that drives
 * getopt_long and prints --help, the error line, and config assembly.
 */
#ifndef AMTL_CLI_H
#define AMTL_CLI_H

#include <signal.h>
#include <stdio.h>

#include "format/config.h"
#include "base/error.h"

typedef struct {
    const char *name;  /* long option name */
    int key;           /* short letter, or a value >= 256 for long-only */
    const char *arg;   /* metavar when the option takes an argument, else NULL */
    const char *help;
} amtl_cli_opt;

enum { AMTL_CLI_END = -1, AMTL_CLI_EXIT_OK = -2, AMTL_CLI_USAGE = -3, AMTL_CLI_FAIL = -4 };

typedef struct {
    const char *tool;      /* "amtl-prep" */
    const char *synopsis;  /* "--data FILE [options] -o OUT" */
    const char *summary;   /* one line */
    const amtl_cli_opt *opts;  /* ends with {0} */
    /* config assembly: defaults, base_yaml (e.g. a checkpoint's config),
     * --config FILE, then --set KEY=VALUE in order */
    const char *profile;   /* --profile NAME, applied over the defaults */
    int query;             /* a --dump-* option, run after the others */
    amtl_stage query_stage;
    const char *base_yaml;
    const char *config_file;
    const char *overrides[256];
    int n_overrides;
    char store[16384];     /* amtl_cli_override's "key=value" copies */
    size_t store_used;
} amtl_cli;

/* Returns the next option's key, AMTL_CLI_END when done, AMTL_CLI_EXIT_OK
 * after printing --help, --version or --help-config to stdout, or AMTL_CLI_USAGE after
 * printing the problem and the usage to stderr.  --help, --version and
 * --help-config are always understood; add them to opts only to list them.
 *
 * --profile and the queries --dump-config, --dump-stage STAGE, --dump-schedule
 * and --dump-overrides are understood too and never returned.  A query runs
 * after the last option, over the configuration that --profile, the tool's
 * config_file and overrides give (amtl_cli_config: no base_yaml yet); its
 * text goes to stdout and amtl_cli_next returns AMTL_CLI_EXIT_OK, or after a
 * message on stderr AMTL_CLI_USAGE (a bad value: exit 2) or AMTL_CLI_FAIL
 * (exit 1). */
int amtl_cli_next(amtl_cli *c, int argc, char **argv, const char **optarg_out);

void amtl_cli_usage(const amtl_cli *c, FILE *out);

/* Records an override "key=value" (for --set or a dedicated flag), copied
 * into c->store (nothing to free); -1 when there are too many or they are
 * too long. */
int amtl_cli_override(amtl_cli *c, const char *key, const char *value);

/* defaults, --profile, base_yaml, config_file, overrides in order, then
 * validation. */
int amtl_cli_config(amtl_cli *c, amtl_config *cfg, amtl_status *st);

/* Parses a decimal count in [min, max]; -1 for anything else. */
int amtl_cli_count(const char *s, long min, long max, int *out);
/* The scoring tools' thread count into cfg (key threads): AMTL_THREADS
 * from the environment, 1 when it is not set. */
int amtl_cli_env_threads(amtl_config *cfg, amtl_status *st);

/* The one signal design of the training tools: the first SIGINT or SIGTERM
 * sets the returned flag to the signal's number (training stops at the next
 * batch boundary, the library returns AMTL_EINTR); a second one ends the
 * process at once.  SIGXFSZ is ignored (a write over the file-size limit then
 * fails with EFBIG, reported like any other write error). */
volatile sig_atomic_t *amtl_cli_stop_on_signals(void);
/* A tool's exit status for a library call's rc and st: 0 when rc is 0; a
 * stop by a signal prints "<tool>: SIGINT: <msg>" and gives 128 + the
 * signal's number (130, 143); anything else is amtl_cli_fail. */
int amtl_cli_finish(const amtl_cli *c, int rc, const amtl_status *st);
/* The same for a rank of a data-parallel job (lib/dist/comm.h): after the
 * exit status is known, a failed rank ends the whole job (the others may
 * wait for it in a collective), anything else leaves the job in order. */
struct amtl_comm;
int amtl_cli_finish_job(const amtl_cli *c, struct amtl_comm *job, int rc,
                        const amtl_status *st);

/* Ignores SIGXFSZ only, for tools without a training loop: a write over the
 * file-size limit fails with EFBIG and the temp file is removed. */
void amtl_cli_ignore_sigxfsz(void);

/* Prints "<tool>: error: <msg>" and returns the exit code for st->code. */
int amtl_cli_fail(const amtl_cli *c, const amtl_status *st);
/* A usage error: prints the message and a hint, returns 2. */
int amtl_cli_usage_error(const amtl_cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
