/* amtl-supernet — train the DESAN supernet for some epochs of one phase.
 *
 * Exit status: 0 done, 1 runtime or data error (including a non-finite loss),
 * 2 usage error, 130 stopped by SIGINT and 143 by SIGTERM after writing the
 * part-done epoch into the output checkpoint (rerun with --resume). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "dist/comm.h"
#include "cmd/supernet_cmd.h"

enum { OPT_RESUME = 256, OPT_METRICS, OPT_INIT, OPT_QUIET, OPT_THREADS, OPT_DEVICE };

static const amtl_cli_opt opts[] = {
    {"data", 'd', "FILE", "dataset file written by amtl-prep"},
    {"config", 'c', "FILE", "YAML config (after the built-in defaults)"},
    {"set", 's', "KEY=VALUE", "override one config key (repeatable)"},
    {"init", OPT_INIT, "CKPT", "start from this checkpoint instead of a fresh supernet"},
    {"resume", OPT_RESUME, NULL, "continue from the output checkpoint when it exists, up to "
                                 "the epochs its run set out to train"},
    {"phase", 'p', "PHASE", "warmup, search or finetune"},
    {"epochs", 'e', "N", "epochs to train, counted from the start epoch (with --resume: "
                         "of the run that wrote the checkpoint)"},
    {"seed", 'S', "N", "random seed (config key seed)"},
    {"threads", OPT_THREADS, "N", "compute threads, 0 = every core (config key threads)"},
    {"device", OPT_DEVICE, "DEV", "cpu, cuda, auto or cpu-plain (config key device)"},
    {"metrics", OPT_METRICS, "FILE", "append one JSON line per epoch here (default stdout)"},
    {"quiet", OPT_QUIET, NULL, "no progress line on a terminal"},
    {"output", 'o', "CKPT", "checkpoint to write after every epoch"},
    {0},
};

int main(int argc, char **argv)
{
    amtl_cli cli = {.tool = "amtl-supernet",
                    .synopsis = "--data DATA --phase warmup|search|finetune --epochs N "
                                "[--init CKPT] [options] -o CKPT",
                    .summary = "Train the DESAN supernet for N epochs of one PD-DARTS phase.",
                    .opts = opts};
    amtl_search_opts o = {.epochs = -1, .phase = -1};
    const char *arg, *phase = NULL;
    int k;
    while ((k = amtl_cli_next(&cli, argc, argv, &arg)) != AMTL_CLI_END) {
        switch (k) {
        case AMTL_CLI_EXIT_OK: return 0;
        case AMTL_CLI_USAGE: return 2;
        case AMTL_CLI_FAIL: return 1;
        case 'd': o.data = arg; break;
        case 'c': cli.config_file = arg; break;
        case 's':
            if (!strchr(arg, '='))
                return amtl_cli_usage_error(&cli, "--set wants KEY=VALUE, got '%s'", arg);
            if (cli.n_overrides >= 250)
                return amtl_cli_usage_error(&cli, "too many --set options");
            cli.overrides[cli.n_overrides++] = arg;
            break;
        case OPT_INIT: o.init = arg; break;
        case OPT_RESUME: o.resume = 1; break;
        case 'p': phase = arg; break;
        case 'e':
            if (amtl_cli_count(arg, 0, 1000000, &o.epochs))
                return amtl_cli_usage_error(&cli, "--epochs wants a count, got '%s'", arg);
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
        if (cli.n_overrides >= 250)
            return amtl_cli_usage_error(&cli, "too many overrides");
    }
    if (optind < argc)
        return amtl_cli_usage_error(&cli, "unexpected argument '%s'", argv[optind]);
    if (!o.data || !o.out || !phase || o.epochs < 0)
        return amtl_cli_usage_error(&cli, "--data, --phase, --epochs and -o are required");
    if (amtl_phase_parse(phase, &o.phase))
        return amtl_cli_usage_error(&cli, "unknown phase '%s' (warmup, search or finetune)", phase);
    o.stop = amtl_cli_stop_on_signals();
    amtl_status st = {0};
    amtl_comm job;
    if (amtl_comm_init(&job, &st))
        return amtl_cli_finish(&cli, -1, &st);
    o.comm = &job;
    return amtl_cli_finish_job(&cli, &job, amtl_search_run(&o, &cli, &st), &st);
}
