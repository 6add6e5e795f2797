/* amtl-prep — CSV data or the embedded synthetic generator into a dataset
 * file; --info describes one.  See amtl-prep(1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "cmd/prep_cmd.h"
#include "data/synthetic.h"

enum { OPT_SET = 256, OPT_SEED, OPT_LIMIT, OPT_SPLIT, OPT_VOCAB, OPT_SYNTHETIC,
       OPT_ROWS, OPT_TASKS, OPT_INFO, OPT_KIND };

static const amtl_cli_opt opts[] = {
    {"config", 'c', "FILE", "read settings from a YAML config"},
    {"set", OPT_SET, "KEY=VALUE", "override a config key (repeatable)"},
    {"format", 'f', "FORMAT", "processed, csv, userbehavior, ijcai15, kuairand, qb-video"},
    {"seed", OPT_SEED, "N", "seed of the split and of --synthetic"},
    {"limit", OPT_LIMIT, "N", "read at most N rows of each input (0 = all)"},
    {"split", OPT_SPLIT, "A,B,C", "train, val, test fractions (0.8,0.1,0.1)"},
    {"vocab", OPT_VOCAB, "MODE", "all (ids from every split) or train"},
    {"output", 'o', "FILE", "the dataset file to write (\"-\" = stdout)"},
    {"synthetic", OPT_SYNTHETIC, NULL, "generate the embedded synthetic data"},
    {"rows", OPT_ROWS, "N", "rows of --synthetic (100000)"},
    {"tasks", OPT_TASKS, "T", "tasks of --synthetic (4; 3 for kind zipf, 2 for aliccp)"},
    {"synthetic-kind", OPT_KIND, "KIND", "latent (default), zipf (long-tailed per-id effects) or aliccp (Ali-CCP's shape)"},
    {"info", OPT_INFO, "FILE", "print a dataset's splits, fields and label rates"},
    {0}};

static int positive(const char *s, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || v < 1)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    amtl_cli_ignore_sigxfsz();
    amtl_cli cli = {
        .tool = "amtl-prep",
        .synopsis = "[options] -o OUT INPUT...\n"
                    "       amtl-prep --synthetic [--synthetic-kind KIND] [--rows N] [--tasks T] [--seed N] -o OUT\n"
                    "       amtl-prep --info FILE",
        .summary = "Turn CSV data (or synthetic data) into an amtl dataset file.",
        .opts = opts};
    amtl_prep_args a = {0};
    const char *info = NULL, *arg;
    long long n;
    int key, rc = 2, kind_given = 0;
    while ((key = amtl_cli_next(&cli, argc, argv, &arg)) != AMTL_CLI_END) {
        const char *cfg_key = NULL;
        switch (key) {
        case AMTL_CLI_EXIT_OK:
            rc = 0;
            goto out;
        case AMTL_CLI_USAGE:
            goto out;
        case AMTL_CLI_FAIL:
            rc = 1;
            goto out;
        case 'c':
            cli.config_file = arg;
            break;
        case OPT_SET: {
            const char *eq = strchr(arg, '=');
            if (!eq || eq == arg) {
                rc = amtl_cli_usage_error(&cli, "--set needs KEY=VALUE, not '%s'", arg);
                goto out;
            }
            char k[128];
            snprintf(k, sizeof k, "%.*s", (int)(eq - arg), arg);
            if (amtl_cli_override(&cli, k, eq + 1)) {
                rc = amtl_cli_usage_error(&cli, "too many --set options");
                goto out;
            }
            break;
        }
        case 'f': cfg_key = "format"; break;
        case OPT_SEED: cfg_key = "seed"; break;
        case OPT_LIMIT: cfg_key = "limit"; break;
        case OPT_SPLIT: cfg_key = "split"; break;
        case OPT_VOCAB: cfg_key = "vocab"; break;
        case 'o':
            a.output = arg;
            break;
        case OPT_SYNTHETIC:
            a.synthetic = 1;
            break;
        case OPT_ROWS:
        case OPT_TASKS:
            if (positive(arg, &n) || (key == OPT_TASKS && n > AMTL_SYNTH_MAX_TASKS)) {
                rc = amtl_cli_usage_error(&cli, "--%s needs a number from 1 to %lld, not '%s'",
                                          key == OPT_ROWS ? "rows" : "tasks",
                                          key == OPT_ROWS ? 2147483647LL
                                                          : (long long)AMTL_SYNTH_MAX_TASKS,
                                          arg);
                goto out;
            }
            if (key == OPT_ROWS)
                a.rows = n;
            else
                a.tasks = (int)n;
            break;
        case OPT_INFO:
            info = arg;
            break;
        case OPT_KIND:
            if (!strcmp(arg, "latent"))
                a.synthetic_kind = AMTL_SYNTH_LATENT;
            else if (!strcmp(arg, "zipf"))
                a.synthetic_kind = AMTL_SYNTH_ZIPF;
            else if (!strcmp(arg, "aliccp"))
                a.synthetic_kind = AMTL_SYNTH_ALICCP;
            else {
                rc = amtl_cli_usage_error(&cli, "--synthetic-kind is latent, zipf or aliccp, not '%s'", arg);
                goto out;
            }
            kind_given = 1;
            break;
        }
        if (cfg_key && amtl_cli_override(&cli, cfg_key, arg)) {
            rc = amtl_cli_usage_error(&cli, "too many options");
            goto out;
        }
    }
    a.inputs = (const char *const *)argv + optind;
    a.n_inputs = argc - optind;
    amtl_status st = {0};
    if (info) {
        if (a.output || a.n_inputs || a.synthetic) {
            rc = amtl_cli_usage_error(&cli, "--info takes one file and no other arguments");
            goto out;
        }
        rc = amtl_prep_info(info, stdout, &st) ? amtl_cli_fail(&cli, &st) : 0;
        goto out;
    }
    if (!a.synthetic && kind_given) {
        rc = amtl_cli_usage_error(&cli, "--synthetic-kind goes with --synthetic");
        goto out;
    }
    if (!a.output) {
        rc = amtl_cli_usage_error(&cli, "no output file (-o OUT)");
        goto out;
    }
    if (a.synthetic && a.n_inputs) {
        rc = amtl_cli_usage_error(&cli, "--synthetic takes no input files");
        goto out;
    }
    if (!a.synthetic && !a.n_inputs) {
        rc = amtl_cli_usage_error(&cli, "no input files (or --synthetic)");
        goto out;
    }
    if (!a.synthetic && (a.rows || a.tasks)) {
        rc = amtl_cli_usage_error(&cli, "--rows and --tasks go with --synthetic");
        goto out;
    }
    amtl_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (amtl_cli_config(&cli, &cfg, &st) ||
        amtl_prep_run(&a, &cfg, &st))
        rc = amtl_cli_fail(&cli, &st);
    else
        rc = 0;
    amtl_config_free(&cfg);
out:
    return rc;
}
