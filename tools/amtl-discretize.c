/* amtl-discretize — PD-DARTS steps, architecture export and views, baselines. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "cmd/discretize_cmd.h"

enum { OPT_EXPORT = 256, OPT_THRESHOLD, OPT_SHOW, OPT_FORMAT, OPT_BASELINE, OPT_OP };

static const amtl_cli_opt opts[] = {
    {"ops", 'k', "K", "fix the K lowest-entropy mixed ops (a PD-DARTS step)"},
    {"export", OPT_EXPORT, NULL, "fix everything and write the architecture file"},
    {"threshold", OPT_THRESHOLD, "P", "export keeps sigmoid(beta) > P (default: the checkpoint's)"},
    {"show", OPT_SHOW, NULL, "print the architecture file given as argument"},
    {"format", OPT_FORMAT, "FMT", "view of --show: text (default), json or dot"},
    {"baseline", OPT_BASELINE, "KIND", "write a baseline: shared-bottom, mmoe, ple, single-task:T, linear"},
    {"op", OPT_OP, "OP", "expert op of a baseline (default MLP-64)"},
    {"data", 'd', "FILE", "dataset (for --baseline)"},
    {"config", 'c', "FILE", "YAML config (for --baseline)"},
    {"set", 's', "KEY=VALUE", "override one config key (for --baseline)"},
    {"output", 'o', "FILE", "file to write"},
    {0},
};

int main(int argc, char **argv)
{
    amtl_cli_ignore_sigxfsz();
    amtl_cli cli = {.tool = "amtl-discretize",
                    .synopsis = "-k K -o OUT CKPT | --export [--threshold P] -o ARCH CKPT | --show [--format "
                                "text|json|dot] ARCH | --baseline KIND [--op OP] --data DATA -o ARCH",
                    .summary = "Discretise a supernet checkpoint, export and show its architecture.",
                    .opts = opts};
    double threshold = 0;
    const char *arg, *out = NULL, *format = "text", *baseline = NULL, *op = NULL, *data = NULL;
    int k = -1, export = 0, show = 0, key;
    while ((key = amtl_cli_next(&cli, argc, argv, &arg)) != AMTL_CLI_END) {
        switch (key) {
        case AMTL_CLI_EXIT_OK: return 0;
        case AMTL_CLI_USAGE: return 2;
        case AMTL_CLI_FAIL: return 1;
        case 'k':
            if (amtl_cli_count(arg, 0, 1000000, &k))
                return amtl_cli_usage_error(&cli, "-k wants a count, got '%s'", arg);
            break;
        case OPT_EXPORT: export = 1; break;
        case OPT_THRESHOLD: {
            char *end;
            threshold = strtod(arg, &end);
            if (end == arg || *end || !(threshold > 0 && threshold < 1))
                return amtl_cli_usage_error(&cli, "--threshold wants a number in (0, 1), got '%s'",
                                            arg);
            break;
        }
        case OPT_SHOW: show = 1; break;
        case OPT_FORMAT: format = arg; break;
        case OPT_BASELINE: baseline = arg; break;
        case OPT_OP: op = arg; break;
        case 'd': data = arg; break;
        case 'c': cli.config_file = arg; break;
        case 's':
            if (!strchr(arg, '='))
                return amtl_cli_usage_error(&cli, "--set wants KEY=VALUE, got '%s'", arg);
            if (cli.n_overrides >= 250)
                return amtl_cli_usage_error(&cli, "too many --set options");
            cli.overrides[cli.n_overrides++] = arg;
            break;
        case 'o': out = arg; break;
        }
    }
    int modes = (k >= 0) + export + show + (baseline != NULL);
    if (modes != 1)
        return amtl_cli_usage_error(&cli, "give exactly one of -k, --export, --show, --baseline");
    if (threshold > 0 && !export)
        return amtl_cli_usage_error(&cli, "--threshold goes with --export");
    if ((cli.config_file || cli.n_overrides || cli.profile) && !baseline)
        return amtl_cli_usage_error(&cli, "--config, --set and --profile go with --baseline (a "
                                          "checkpoint carries its configuration)");
    amtl_status st = {0};
    int rc;
    if (baseline) {
        if (!data || !out || optind != argc)
            return amtl_cli_usage_error(&cli, "--baseline needs --data and -o, and no argument");
        rc = amtl_discretize_baseline(baseline, op, data, &cli, out, &st);
    } else {
        if (optind != argc - 1)
            return amtl_cli_usage_error(&cli, "expected one input file");
        const char *in = argv[optind];
        if (show)
            rc = amtl_discretize_show(in, format, &st);
        else if (!out)
            return amtl_cli_usage_error(&cli, "-o is required");
        else if (export)
            rc = amtl_discretize_export(in, threshold, out, &st);
        else
            rc = amtl_discretize_step(in, k, out, &st);
    }
    return rc ? amtl_cli_fail(&cli, &st) : 0;
}
