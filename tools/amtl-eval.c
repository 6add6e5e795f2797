/* amtl-eval — per-task AUC and logloss of a model on a dataset split. */
#include <unistd.h>

#include "cli.h"
#include "finetune.h"

enum { OPT_JSON = 256 };

static const amtl_cli_opt opts[] = {
    {"model", 'm', "FILE", "model written by amtl-train"},
    {"data", 'd', "FILE", "dataset file written by amtl-prep"},
    {"split", OPT_JSON + 1, "SPLIT", "train, val or test (default test)"},
    {"json", OPT_JSON, NULL, "one JSON object instead of a table"},
    {0},
};

int main(int argc, char **argv)
{
    amtl_cli cli = {.tool = "amtl-eval",
                    .synopsis = "--model MODEL --data DATA [--split val|test] [--json]",
                    .summary = "Print per-task AUC and logloss of a model on a dataset split.",
                    .opts = opts};
    const char *arg, *model = NULL, *data = NULL, *split = "test";
    int k, json = 0;
    while ((k = amtl_cli_next(&cli, argc, argv, &arg)) != AMTL_CLI_END) {
        switch (k) {
        case AMTL_CLI_EXIT_OK: return 0;
        case AMTL_CLI_USAGE: return 2;
        case 'm': model = arg; break;
        case 'd': data = arg; break;
        case OPT_JSON + 1: split = arg; break;
        case OPT_JSON: json = 1; break;
        }
    }
    if (optind < argc)
        return amtl_cli_usage_error(&cli, "unexpected argument '%s'", argv[optind]);
    if (!model || !data)
        return amtl_cli_usage_error(&cli, "--model and --data are required");
    amtl_status st = {0};
    if (amtl_eval_run(model, data, split, json, &st))
        return amtl_cli_fail(&cli, &st);
    return 0;
}
