/* cli.c — see cli.h. */
#include "cmd/cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "dist/comm.h"

#ifndef AMTL_VERSION
#define AMTL_VERSION "0"
#endif

enum {
    KEY_HELP = 1000,
    KEY_VERSION,
    KEY_HELP_CONFIG,
    KEY_PROFILE,
    KEY_DUMP_CONFIG, /* the queries, KEY_DUMP_CONFIG .. KEY_DUMP_OVERRIDES */
    KEY_DUMP_STAGE,
    KEY_DUMP_SCHEDULE,
    KEY_DUMP_OVERRIDES
};

static int build_tables(const amtl_cli *c, struct option *lo, char *so, int max)
{
    int n = 0, k = 0;
    so[k++] = ':'; /* report a missing argument as ':' */
    for (const amtl_cli_opt *o = c->opts; o && o->name && n < max - 9; o++) {
        if (!strcmp(o->name, "help") || !strcmp(o->name, "version"))
            continue;
        lo[n].name = o->name;
        lo[n].has_arg = o->arg ? required_argument : no_argument;
        lo[n].flag = NULL;
        lo[n].val = o->key;
        n++;
        if (o->key > 0 && o->key < 128 && k < 120) {
            so[k++] = (char)o->key;
            if (o->arg)
                so[k++] = ':';
        }
    }
    lo[n++] = (struct option){"help", no_argument, NULL, KEY_HELP};
    lo[n++] = (struct option){"version", no_argument, NULL, KEY_VERSION};
    lo[n++] = (struct option){"help-config", no_argument, NULL, KEY_HELP_CONFIG};
    lo[n++] = (struct option){"profile", required_argument, NULL, KEY_PROFILE};
    lo[n++] = (struct option){"dump-config", no_argument, NULL, KEY_DUMP_CONFIG};
    lo[n++] = (struct option){"dump-stage", required_argument, NULL, KEY_DUMP_STAGE};
    lo[n++] = (struct option){"dump-schedule", no_argument, NULL, KEY_DUMP_SCHEDULE};
    lo[n++] = (struct option){"dump-overrides", no_argument, NULL, KEY_DUMP_OVERRIDES};
    lo[n] = (struct option){0, 0, 0, 0};
    so[k] = '\0';
    return n;
}

void amtl_cli_usage(const amtl_cli *c, FILE *out)
{
    fprintf(out, "Usage: %s %s\n", c->tool, c->synopsis);
    if (c->summary)
        fprintf(out, "%s\n", c->summary);
    fprintf(out, "\nOptions:\n");
    for (const amtl_cli_opt *o = c->opts; o && o->name; o++) {
        char left[96];
        if (o->key > 0 && o->key < 128)
            snprintf(left, sizeof left, "-%c, --%s%s%s", o->key, o->name,
                     o->arg ? " " : "", o->arg ? o->arg : "");
        else
            snprintf(left, sizeof left, "    --%s%s%s", o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        fprintf(out, "  %-30s %s\n", left, o->help ? o->help : "");
    }
    fprintf(out, "  %-30s %s\n", "-h, --help", "show this help and exit");
    fprintf(out, "  %-30s %s\n", "    --version", "show the version and exit");
    fprintf(out, "  %-30s %s\n", "    --profile NAME",
            "settings under the config: default, or reference (the released code's)");
    fprintf(out, "  %-30s %s\n", "    --help-config", "list every config key with its default and exit");
    fprintf(out, "  %-30s %s\n", "    --dump-config",
            "print the configuration the options give (YAML) and exit");
    fprintf(out, "  %-30s %s\n", "    --dump-stage STAGE",
            "print the keys a stage of a search reads (amtl-config(5)) and exit");
    fprintf(out, "  %-30s %s\n", "    --dump-schedule",
            "print the epochs of a search as make variables and exit");
    fprintf(out, "  %-30s %s\n", "    --dump-overrides",
            "print the keys the profile, config and --set give, as KEY=VALUE, and exit");
    fprintf(out, "\nSee %s(1).\n", c->tool);
}

/* Prints what a --dump-* option asks for, from the configuration the other
 * options give; returns what amtl_cli_next returns. */
static int run_query(amtl_cli *c)
{
    amtl_config cfg;
    amtl_status st = {0};
    char *text = NULL;
    memset(&cfg, 0, sizeof cfg);
    int rc = amtl_cli_config(c, &cfg, &st);
    if (!rc) {
        switch (c->query) {
        case KEY_DUMP_CONFIG: rc = amtl_config_dump(&cfg, &text, &st); break;
        case KEY_DUMP_STAGE: rc = amtl_config_dump_stage(&cfg, c->query_stage, &text, &st); break;
        case KEY_DUMP_SCHEDULE: rc = amtl_config_dump_schedule(&cfg, &text, &st); break;
        default: rc = amtl_config_dump_overrides(&cfg, &text, &st); break;
        }
    }
    if (!rc && c->query == KEY_DUMP_SCHEDULE) {
        amtl_schedule s;
        amtl_config_schedule(&cfg, &s);
        if (s.no_finetune)
            fprintf(stderr, "%s: warning: epochs %d leave no fine-tuning after %d warm-up, "
                    "%d search and 1 frozen epochs\n", c->tool, s.epochs, s.warmup, s.search);
    }
    if (!rc && (fputs(text, stdout) == EOF || fflush(stdout) == EOF))
        rc = amtl_error(&st, AMTL_EIO, "cannot write to stdout: %s", strerror(errno));
    free(text);
    amtl_config_free(&cfg);
    if (!rc)
        return AMTL_CLI_EXIT_OK;
    return amtl_cli_fail(c, &st) == 2 ? AMTL_CLI_USAGE : AMTL_CLI_FAIL;
}

/* Records a --dump-* option; one of them at most. */
static int note_query(amtl_cli *c, int key, const char *arg)
{
    if (c->query && c->query != key)
        return amtl_cli_usage_error(c, "--dump-config, --dump-stage, --dump-schedule and "
                                       "--dump-overrides exclude each other");
    c->query = key;
    amtl_status st = {0};
    if (key == KEY_DUMP_STAGE && amtl_config_stage_parse(arg, &c->query_stage, &st))
        return amtl_cli_usage_error(c, "--dump-stage: %s", st.msg);
    return 0;
}

int amtl_cli_next(amtl_cli *c, int argc, char **argv, const char **optarg_out)
{
    struct option lo[128];
    char so[256];
    build_tables(c, lo, so, 128);
    /* -h as a short alias of --help unless the tool uses it */
    if (!strchr(so + 1, 'h')) {
        size_t k = strlen(so);
        so[k] = 'h';
        so[k + 1] = '\0';
    }
    opterr = 0;
    int key;
    /* handled here for every tool: --profile goes to amtl_cli_config, a
     * query runs once the tool has taken every other option */
    for (;;) {
        key = getopt_long(argc, argv, so, lo, NULL);
        if (key == KEY_PROFILE)
            c->profile = optarg;
        else if (key < KEY_DUMP_CONFIG || key > KEY_DUMP_OVERRIDES)
            break;
        else if (note_query(c, key, optarg))
            return AMTL_CLI_USAGE;
    }
    *optarg_out = optarg;
    switch (key) {
    case -1:
        return c->query ? run_query(c) : AMTL_CLI_END;
    case 'h':
    case KEY_HELP:
        amtl_cli_usage(c, stdout);
        return AMTL_CLI_EXIT_OK;
    case KEY_VERSION:
        printf("%s %s\n", c->tool, AMTL_VERSION);
        return AMTL_CLI_EXIT_OK;
    case KEY_HELP_CONFIG:
        amtl_config_describe(stdout);
        return AMTL_CLI_EXIT_OK;
    case ':':
        fprintf(stderr, "%s: error: option '%s' needs an argument\n", c->tool,
                argv[optind - 1]);
        amtl_cli_usage(c, stderr);
        return AMTL_CLI_USAGE;
    case '?':
        if (optopt)
            fprintf(stderr, "%s: error: unknown option '-%c'\n", c->tool, optopt);
        else
            fprintf(stderr, "%s: error: unknown option '%s'\n", c->tool,
                    argv[optind - 1]);
        amtl_cli_usage(c, stderr);
        return AMTL_CLI_USAGE;
    default:
        return key;
    }
}

int amtl_cli_override(amtl_cli *c, const char *key, const char *value)
{
    if (c->n_overrides >= (int)(sizeof c->overrides / sizeof c->overrides[0]))
        return -1;
    size_t n = strlen(key) + strlen(value) + 2;
    if (n > sizeof c->store - c->store_used)
        return -1;
    char *kv = c->store + c->store_used;
    snprintf(kv, n, "%s=%s", key, value);
    c->store_used += n;
    c->overrides[c->n_overrides++] = kv;
    return 0;
}

int amtl_cli_config(amtl_cli *c, amtl_config *cfg, amtl_status *st)
{
    if (amtl_config_defaults(cfg, st))
        return -1;
    if (c->profile && amtl_config_profile(cfg, c->profile, st))
        return -1;
    if (c->base_yaml &&
        amtl_config_load_string(cfg, c->base_yaml, strlen(c->base_yaml), "checkpoint config", st))
        return -1;
    if (c->config_file && amtl_config_load_file(cfg, c->config_file, st))
        return -1;
    for (int i = 0; i < c->n_overrides; i++)
        if (amtl_config_set_kv(cfg, c->overrides[i], st))
            return -1;
    return amtl_config_validate(cfg, st);
}

int amtl_cli_fail(const amtl_cli *c, const amtl_status *st)
{
    fprintf(stderr, "%s: error: %s\n", c->tool, st->msg[0] ? st->msg : "failed");
    return amtl_exit_code(st->code ? st->code : AMTL_EIO);
}

int amtl_cli_usage_error(const amtl_cli *c, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: error: ", c->tool);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", c->tool);
    return 2;
}

int amtl_cli_env_threads(amtl_config *cfg, amtl_status *st)
{
    const char *env = getenv("AMTL_THREADS");
    if (amtl_config_set(cfg, "threads", env && *env ? env : "1", st))
        return amtl_error_context(st, "environment variable AMTL_THREADS");
    return 0;
}

int amtl_cli_count(const char *s, long min, long max, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || end == s || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

/* The signal that asked for a stop (0: none).  The first SIGINT or SIGTERM
 * is recorded; a second one takes its default action and ends the process. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    if (stop_signal) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_signal = sig;
}

volatile sig_atomic_t *amtl_cli_stop_on_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGXFSZ, SIG_IGN);
    return &stop_signal;
}

int amtl_cli_finish(const amtl_cli *c, int rc, const amtl_status *st)
{
    if (!rc)
        return 0;
    if (st->code == AMTL_EINTR && stop_signal) {
        fprintf(stderr, "%s: %s: %s\n", c->tool, stop_signal == SIGINT ? "SIGINT" : "SIGTERM",
                st->msg);
        return 128 + stop_signal;
    }
    return amtl_cli_fail(c, st);
}

void amtl_cli_ignore_sigxfsz(void)
{
    signal(SIGXFSZ, SIG_IGN);
}

int amtl_cli_finish_job(const amtl_cli *c, amtl_comm *job, int rc, const amtl_status *st)
{
    int code = amtl_cli_finish(c, rc, st);
    if (code == 1 || code == 2)
        amtl_comm_abort(job, code);
    amtl_comm_finish(job);
    return code;
}
