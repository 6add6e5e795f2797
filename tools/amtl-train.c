/* amtl-train — fine-tune or retrain a discrete architecture (baselines too). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "dist/comm.h"
#include "cmd/train_cmd.h"

enum { OPT_INIT = 256, OPT_SCRATCH, OPT_PATIENCE, OPT_METRICS, OPT_QUIET, OPT_THREADS, OPT_DEVICE };

static const amtl_cli_opt opts[] = {
    {"data", 'd', "FILE", "dataset file written by amtl-prep"},
    {"arch", 'a', "FILE", "architecture file (amtl-discretize --export or --baseline)"},
    {"init", OPT_INIT, "CKPT", "inherit the weights of this supernet checkpoint"},
    {"from-scratch", OPT_SCRATCH, NULL, "initialise the weights afresh (the default)"},
    {"config", 'c', "FILE", "YAML config"},
    {"set", 's', "KEY=VALUE", "override one config key (repeatable)"},
    {"epochs", 'e', "N", "at most N epochs (config key epochs)"},
    {"patience", OPT_PATIENCE, "P", "stop after P epochs without improvement"},
    {"seed", 'S', "N", "random seed"},
    {"threads", OPT_THREADS, "N", "compute threads, 0 = every core (config key threads)"},
    {"device", OPT_DEVICE, "DEV", "cpu, cuda, auto or cpu-plain (config key device)"},
    {"metrics", OPT_METRICS, "FILE", "append one JSON line per epoch here (default stdout)"},
    {"quiet", OPT_QUIET, NULL, "no progress line on a terminal"},
    {"output", 'o', "MODEL", "model file to write"},
    {0},
};

int main(int argc, char **argv)
{
    amtl_cli cli = {.tool = "amtl-train",
                    .synopsis = "--data DATA --arch ARCH [--init CKPT | --from-scratch] "
                                "[--epochs N] [--patience P] -o MODEL",
                    .summary = "Train a discrete architecture with early stopping on validation AUC.",
                    .opts = opts};
    amtl_finetune_opts o = {.epochs = -1, .patience = -1};
    const char *arg;
    int k, scratch = 0;
    while ((k = amtl_cli_next(&cli, argc, argv, &arg)) != AMTL_CLI_END) {
        switch (k) {
        case AMTL_CLI_EXIT_OK: return 0;
        case AMTL_CLI_USAGE: return 2;
        case AMTL_CLI_FAIL: return 1;
        case 'd': o.data = arg; break;
        case 'a': o.arch = arg; break;
        case OPT_INIT: o.init = arg; break;
        case OPT_SCRATCH: scratch = 1; break;
        case 'c': cli.config_file = arg; break;
        case 's':
            if (!strchr(arg, '='))
                return amtl_cli_usage_error(&cli, "--set wants KEY=VALUE, got '%s'", arg);
            if (cli.n_overrides >= 250)
                return amtl_cli_usage_error(&cli, "too many --set options");
            cli.overrides[cli.n_overrides++] = arg;
            break;
        case 'e':
            if (amtl_cli_count(arg, 0, 1000000, &o.epochs))
                return amtl_cli_usage_error(&cli, "--epochs wants a count, got '%s'", arg);
            break;
        case OPT_PATIENCE:
            if (amtl_cli_count(arg, 1, 1000000, &o.patience))
                return amtl_cli_usage_error(&cli, "--patience wants a positive count, got '%s'", arg);
            break;
        case 'S':
        case OPT_THREADS:
        case OPT_DEVICE:
            if (amtl_cli_override(&cli, k == 'S' ? "seed" : k == OPT_THREADS ? "threads" : "device",
                                  arg))
                return amtl_cli_usage_error(&cli, "too many or too long options");
            break;
        case OPT_METRICS: o.metrics = arg; break;
        case OPT_QUIET: o.quiet = 1; break;
        case 'o': o.out = arg; break;
        }
    }
    if (optind < argc)
        return amtl_cli_usage_error(&cli, "unexpected argument '%s'", argv[optind]);
    if (!o.data || !o.arch || !o.out)
        return amtl_cli_usage_error(&cli, "--data, --arch and -o are required");
    if (scratch && o.init)
        return amtl_cli_usage_error(&cli, "--init and --from-scratch exclude each other");
    o.stop = amtl_cli_stop_on_signals();
    amtl_status st = {0};
    amtl_comm job;
    if (amtl_comm_init(&job, &st))
        return amtl_cli_finish(&cli, -1, &st);
    o.comm = &job;
    return amtl_cli_finish_job(&cli, &job, amtl_finetune_run(&o, &cli, &st), &st);
}
