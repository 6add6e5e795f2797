/* amtl-eval — per-task AUC and logloss of a model on a dataset split, or
 * per-row probabilities of raw CSV rows (--predict). */
#include <string.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "cmd/eval_cmd.h"
#include "cmd/predict.h"

enum { OPT_JSON = 256, OPT_SPLIT, OPT_PREDICT, OPT_HEADER, OPT_DELIM, OPT_DEVICE, OPT_AGAINST,
       OPT_SCORES };

static const amtl_cli_opt opts[] = {
    {"model", 'm', "FILE", "model written by amtl-train"},
    {"data", 'd', "FILE", "dataset file written by amtl-prep"},
    {"split", OPT_SPLIT, "SPLIT", "train, val or test (default test)"},
    {"json", OPT_JSON, NULL, "one JSON object instead of a table"},
    {"device", OPT_DEVICE, "DEV", "cpu (default), cuda, auto or cpu-plain: where --data is scored"},
    {"against", OPT_AGAINST, "FILE", "also compare with model FILE on the same rows (paired)"},
    {"scores", OPT_SCORES, NULL, "each row's labels and probabilities instead of metrics"},
    {"predict", OPT_PREDICT, NULL, "score the CSV rows of FILE (default -, stdin)"},
    {"header", OPT_HEADER, NULL, "with --predict: first a line of task names"},
    {"delimiter", OPT_DELIM, "C", "with --predict: field delimiter (default ',', or tab)"},
    {0},
};

int main(int argc, char **argv)
{
    amtl_cli_ignore_sigxfsz();
    amtl_cli cli = {.tool = "amtl-eval",
                    .synopsis = "--model MODEL --data DATA [--split SPLIT] [--json] [--against MODEL]\n"
                                "       amtl-eval --model MODEL --data DATA [--split SPLIT] --scores\n"
                                "       amtl-eval --model MODEL --predict [--header] "
                                "[--delimiter C] [FILE|-]",
                    .summary = "Score a model: per-task AUC and logloss on a dataset split, "
                               "or probabilities per CSV row.",
                    .opts = opts};
    const char *arg, *data = NULL, *split = NULL, *device = NULL, *against = NULL;
    amtl_predict_opts p = {.input = "-", .delim = ','};
    int k, json = 0, scores = 0, predict = 0, pflags = 0;
    while ((k = amtl_cli_next(&cli, argc, argv, &arg)) != AMTL_CLI_END) {
        switch (k) {
        case AMTL_CLI_EXIT_OK: return 0;
        case AMTL_CLI_USAGE: return 2;
        case AMTL_CLI_FAIL: return 1;
        case 'm': p.model = arg; break;
        case 'd': data = arg; break;
        case OPT_SPLIT: split = arg; break;
        case OPT_JSON: json = 1; break;
        case OPT_DEVICE: device = arg; break;
        case OPT_AGAINST: against = arg; break;
        case OPT_SCORES: scores = 1; break;
        case OPT_PREDICT: predict = 1; break;
        case OPT_HEADER: p.header = 1; pflags = 1; break;
        case OPT_DELIM:
            if (!strcmp(arg, "tab") || !strcmp(arg, "\\t"))
                arg = "\t";
            if (strlen(arg) != 1 || arg[0] == '"' || arg[0] == '\n' || arg[0] == '\r')
                return amtl_cli_usage_error(&cli, "--delimiter wants one character or 'tab', "
                                            "got '%s'", arg);
            p.delim = arg[0];
            pflags = 1;
            break;
        }
    }
    if (!p.model)
        return amtl_cli_usage_error(&cli, "--model is required");
    amtl_status st = {0};
    if (predict) {
        if (data || split || json || scores || device || against)
            return amtl_cli_usage_error(&cli, "--predict excludes --data, --split, --json, "
                                        "--scores, --device and --against (it scores on the "
                                        "CPU)");
        if (argc - optind > 1)
            return amtl_cli_usage_error(&cli, "unexpected argument '%s'", argv[optind + 1]);
        if (optind < argc)
            p.input = argv[optind];
        if (!strcmp(p.model, "-") && !strcmp(p.input, "-"))
            return amtl_cli_usage_error(&cli, "the model and the rows cannot both come "
                                        "from stdin");
        if (amtl_predict_run(&p, stdout, &st))
            return amtl_cli_fail(&cli, &st);
        return 0;
    }
    if (optind < argc)
        return amtl_cli_usage_error(&cli, "unexpected argument '%s'", argv[optind]);
    if (pflags)
        return amtl_cli_usage_error(&cli, "--header and --delimiter go with --predict");
    if (!data)
        return amtl_cli_usage_error(&cli, "--data or --predict is required");
    if (against && !strcmp(p.model, "-") && !strcmp(against, "-"))
        return amtl_cli_usage_error(&cli, "the model and --against cannot both come from "
                                    "stdin");
    if (scores && (json || against))
        return amtl_cli_usage_error(&cli, "--scores excludes --json and --against");
    amtl_eval_opts o = {.model = p.model, .data = data, .split = split ? split : "test",
                        .json = json, .scores = scores, .device = device, .against = against};
    if (amtl_eval_run(&o, &st))
        return amtl_cli_fail(&cli, &st);
    return 0;
}
