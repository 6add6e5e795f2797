/* test_config_query.c — what the configuration tells about itself: the keys
 * of a section and of a stage of a search, the schedule, and the keys given
 * as overrides (the --dump-* options of every tool); and the profiles. */
#include <limits.h>
#include <string.h>

#include "format/config.h"
#include "test.h"

static const char *const all_stages[] = {"prep",   "baseline", "warmup", "search",
                                         "frozen", "finetune", "train", "choose"};
#define N_STAGES ((int)(sizeof all_stages / sizeof all_stages[0]))

/* Whether text holds line as one whole line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

/* Whether text has a line "key: ..." (or "key=..." when sep is '='). */
static int has_key(const char *text, const char *key, char sep)
{
    size_t n = strlen(key);
    for (const char *p = text; (p = strstr(p, key)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == sep)
            return 1;
    return 0;
}

static int stage_dump(const amtl_config *c, const char *name, char **out, amtl_status *st)
{
    amtl_stage s;
    if (amtl_config_stage_parse(name, &s, st))
        return -1;
    return amtl_config_dump_stage(c, s, out, st);
}

static void test_stage_names(void)
{
    amtl_status st = {0};
    for (int i = 0; i < N_STAGES; i++) {
        amtl_stage s = 0;
        CHECK_OK(amtl_config_stage_parse(all_stages[i], &s, &st), &st);
        CHECK(s == (amtl_stage)(1 << i));
        CHECK(!strcmp(amtl_config_stage_name(s), all_stages[i]));
    }
    amtl_stage s;
    CHECK(amtl_config_stage_parse("Prep", &s, &st) < 0 && st.code == AMTL_EUSAGE);
    CHECKF(!strcmp(st.msg, "unknown stage 'Prep' (expected prep, baseline, warmup, search, "
                           "frozen, finetune, train or choose)"), "%s", st.msg);
    CHECK(amtl_config_stage_name(0) == NULL);
    CHECK(amtl_config_stage_name(AMTL_STAGE_PREP | AMTL_STAGE_TRAIN) == NULL);
}

/* What each stage reads (pipelines/search.mk redoes a stage when they
 * change): the data keys amtl-prep; the model keys the baselines and the
 * supernet; the optimiser every training run; the arch step's keys the
 * search epochs; early stopping amtl-train; threads and device nothing. */
static void test_stage_keys(void)
{
    amtl_status st = {0};
    amtl_config c;
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    char *d[N_STAGES];
    for (int i = 0; i < N_STAGES; i++)
        CHECK_OK(stage_dump(&c, all_stages[i], &d[i], &st), &st);
    char *prep = d[0], *baseline = d[1], *warmup = d[2], *search = d[3], *frozen = d[4],
         *finetune = d[5], *train = d[6];
    for (int i = 0; i < N_STAGES; i++) {
        char head[64];
        snprintf(head, sizeof head, "# keys of the %s stage\n", all_stages[i]);
        CHECKF(!strncmp(d[i], head, strlen(head)), "%s", d[i]);
        CHECK(!has_key(d[i], "threads", ':') && !has_key(d[i], "device", ':'));
    }
    CHECK(has_line(prep, "format: processed") && has_line(prep, "split: [0.8, 0.1, 0.1]"));
    CHECK(has_line(prep, "seed: 2022") && !has_key(prep, "lr", ':'));
    CHECK(!has_key(prep, "embedding_dim", ':'));
    CHECK(has_line(baseline, "embedding_dim: 16") && has_line(baseline, "task_weights: []"));
    CHECK(!has_key(baseline, "lr", ':') && !has_key(baseline, "seed", ':'));
    CHECK(has_line(warmup, "gate_mode: sample") && has_line(warmup, "lr: 0.003"));
    CHECK(has_line(warmup, "seed: 2022") && has_line(warmup, "task_conditions: []"));
    CHECK(!has_key(warmup, "discretize_ops", ':') && !has_key(warmup, "patience", ':'));
    CHECK(!has_key(warmup, "warmup_epochs", ':') && !has_key(warmup, "linear_l2", ':'));
    CHECK(has_line(search, "warmup_epochs: 2") && has_line(search, "discretize_ops: 10"));
    CHECK(has_line(search, "arch_data: train") && has_line(search, "arch_sparsity: 0"));
    CHECK(!has_key(search, "full_arch_train_epochs", ':'));
    CHECK(has_line(frozen, "full_arch_train_epochs: 3") && has_line(frozen, "warmup_epochs: 2"));
    CHECK(has_line(frozen, "select_threshold: 0.5") && has_line(frozen, "wide: true"));
    /* the searched model: its network comes from the architecture, its
     * budget from the schedule: 30 - 2 - 3 - 1 */
    CHECK(has_line(finetune, "finetune_epochs: 24") && has_line(finetune, "patience: 5"));
    CHECK(has_line(finetune, "early_stop: auc") && has_line(finetune, "batch_size: 1024"));
    CHECK(!has_key(finetune, "epochs", ':') && !has_key(finetune, "embedding_dim", ':'));
    CHECK(!has_key(finetune, "linear_l2", ':'));
    CHECK(has_line(train, "epochs: 30") && has_line(train, "linear_l2: []"));
    CHECK(has_line(train, "min_epochs: 0") && !has_key(train, "finetune_epochs", ':'));
    CHECK(!has_key(train, "ops", ':'));
    for (int i = 0; i < N_STAGES; i++)
        free(d[i]);
    amtl_config_free(&c);
}

/* Every key of the dump is in some stage, threads and device excepted: a
 * key added to the table without stages would be in none. */
static void test_every_key_has_a_stage(void)
{
    amtl_status st = {0};
    amtl_config c;
    char *all = NULL, *d[N_STAGES];
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK_OK(amtl_config_dump(&c, &all, &st), &st);
    for (int i = 0; i < N_STAGES; i++)
        CHECK_OK(stage_dump(&c, all_stages[i], &d[i], &st), &st);
    int keys = 0;
    for (char *line = all; *line; line = strchr(line, '\n') + 1) {
        const char *colon = strchr(line, ':');
        if (*line != '#' && *line != '\n' && colon) {
            char key[64];
            snprintf(key, sizeof key, "%.*s", (int)(colon - line), line);
            int in = 0;
            for (int i = 0; i < N_STAGES; i++)
                in += has_key(d[i], key, ':');
            /* keys that change how fast or how much memory, not what
             * (deterministic: the rounding between thread counts) */
            int speed = !strcmp(key, "threads") || !strcmp(key, "device") ||
                        !strcmp(key, "recompute_hidden") || !strcmp(key, "deterministic");
            CHECKF(speed ? in == 0 : in > 0, "key %s is in %d stages", key, in);
            keys++;
        }
    }
    CHECK(keys > 40);
    for (int i = 0; i < N_STAGES; i++)
        free(d[i]);
    free(all);
    amtl_config_free(&c);
}

static void test_schedule(void)
{
    amtl_status st = {0};
    amtl_config c;
    amtl_schedule s;
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    amtl_config_schedule(&c, &s);
    CHECK(s.warmup == 2 && s.search == 3 && s.finetune == 24 && s.epochs == 30);
    CHECK(!s.no_finetune);
    char *text = NULL;
    CHECK_OK(amtl_config_dump_schedule(&c, &text, &st), &st);
    CHECKF(!strcmp(text, "# the schedule of a search and the labels the configuration names\n"
                         "WARMUP_EPOCHS := 2\nSEARCH_EPOCHS := 3\nFINETUNE_EPOCHS := 24\n"
                         "EPOCHS := 30\nN_LABELS := 0\n"
                         "EXPORT_THRESHOLDS := 0.5 0.45 0.55\nRETRAIN_CANDIDATES := 0\n"
                         "LINEAR_CANDIDATE := 1\n"
                   "LINEAR_MARGIN := 0\n"),
           "%s", text);
    free(text);
    /* the export thresholds as %g (0.45, never 0.449999988); [] = select_threshold */
    CHECK_OK(amtl_config_set(&c, "export_candidates", "[0.35, 0.6]", &st), &st);
    CHECK_OK(amtl_config_set(&c, "linear_candidate", "false", &st), &st);
    CHECK_OK(amtl_config_set(&c, "retrain_candidates", "true", &st), &st);
    CHECK_OK(amtl_config_dump_schedule(&c, &text, &st), &st);
    CHECK(has_line(text, "EXPORT_THRESHOLDS := 0.35 0.6") && has_line(text, "LINEAR_CANDIDATE := 0") &&
          has_line(text, "RETRAIN_CANDIDATES := 1"));
    free(text);
    CHECK_OK(amtl_config_set(&c, "export_candidates", "", &st), &st);
    CHECK_OK(amtl_config_set(&c, "select_threshold", "0.45", &st), &st);
    CHECK_OK(amtl_config_dump_schedule(&c, &text, &st), &st);
    CHECK(has_line(text, "EXPORT_THRESHOLDS := 0.45"));
    free(text);
    /* finetune_epochs sets the fine-tuning apart from epochs */
    CHECK_OK(amtl_config_set(&c, "finetune_epochs", "7", &st), &st);
    CHECK_OK(amtl_config_set(&c, "labels", "a,b,c", &st), &st);
    amtl_config_schedule(&c, &s);
    CHECK(s.finetune == 7 && s.epochs == 30 && !s.no_finetune);
    CHECK_OK(amtl_config_dump_schedule(&c, &text, &st), &st);
    CHECK(has_line(text, "FINETUNE_EPOCHS := 7") && has_line(text, "N_LABELS := 3"));
    free(text);
    /* exactly the supernet's epochs: none left, and none missing */
    CHECK_OK(amtl_config_set(&c, "finetune_epochs", "0", &st), &st);
    CHECK_OK(amtl_config_set(&c, "epochs", "6", &st), &st);
    amtl_config_schedule(&c, &s);
    CHECK(s.finetune == 0 && !s.no_finetune);
    CHECK_OK(amtl_config_set(&c, "epochs", "4", &st), &st);
    amtl_config_schedule(&c, &s);
    CHECK(s.finetune == 0 && s.no_finetune);
    /* no overflow at the ends of the range */
    CHECK_OK(amtl_config_set(&c, "epochs", "2147483647", &st), &st);
    CHECK_OK(amtl_config_set(&c, "warmup_epochs", "0", &st), &st);
    CHECK_OK(amtl_config_set(&c, "full_arch_train_epochs", "0", &st), &st);
    amtl_config_schedule(&c, &s);
    CHECK(s.finetune == INT_MAX - 1 && !s.no_finetune);
    CHECK_OK(amtl_config_set(&c, "epochs", "0", &st), &st);
    CHECK_OK(amtl_config_set(&c, "warmup_epochs", "2147483647", &st), &st);
    CHECK_OK(amtl_config_set(&c, "full_arch_train_epochs", "2147483647", &st), &st);
    amtl_config_schedule(&c, &s);
    CHECK(s.finetune == 0 && s.no_finetune);
    /* the finetune stage follows the schedule, not the key as written */
    CHECK_OK(amtl_config_set(&c, "epochs", "10", &st), &st);
    CHECK_OK(amtl_config_set(&c, "warmup_epochs", "1", &st), &st);
    CHECK_OK(amtl_config_set(&c, "full_arch_train_epochs", "2", &st), &st);
    CHECK_OK(stage_dump(&c, "finetune", &text, &st), &st);
    CHECK(has_line(text, "finetune_epochs: 6"));
    free(text);
    CHECK(c.finetune_epochs == 0);
    amtl_config_free(&c);
}

/* The model section is what an architecture file carries (lib/format/arch.c):
 * every model key, read back to the same values. */
static void test_dump_section(void)
{
    amtl_status st = {0};
    amtl_config c, d;
    char *text = NULL;
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK_OK(amtl_config_defaults(&d, &st), &st);
    CHECK_OK(amtl_config_set(&c, "ops", "[Identity, MLP-8]", &st), &st);
    CHECK_OK(amtl_config_set(&c, "dropout", "0.1", &st), &st);
    CHECK_OK(amtl_config_set(&c, "gate_mode", "reference", &st), &st);
    CHECK_OK(amtl_config_set(&c, "lr", "0.5", &st), &st);
    CHECK_OK(amtl_config_dump_section(&c, "model", &text, &st), &st);
    CHECKF(!strcmp(text, "embedding_dim: 16\nembedding_init_std: 1\nn_experts: 4\n"
                         "n_expert_layers: 1\nexpert_n_layers: 2\nexpert_width: 64\n"
                         "tower_layers: [64]\ndropout: 0.1\nops: [Identity, MLP-8]\n"
                         "gate_mode: reference\ngate_dense: false\nwide: true\n"
                         "wide_init: linear\n"), "%s", text);
    CHECK_OK(amtl_config_load_string(&d, text, strlen(text), "model keys", &st), &st);
    CHECK(d.ops.n == 2 && d.dropout == 0.1f && !strcmp(d.gate_mode, "reference"));
    CHECK(d.lr == 0.003f); /* not a model key */
    free(text);
    CHECK_OK(amtl_config_dump_section(&c, "data", &text, &st), &st);
    CHECK(has_line(text, "format: processed") && !has_key(text, "lr", ':'));
    free(text);
    text = NULL;
    CHECK(amtl_config_dump_section(&c, "optim", &text, &st) < 0 && st.code == AMTL_EUSAGE);
    CHECKF(strstr(st.msg, "no section 'optim'") != NULL, "%s", st.msg);
    CHECK(text == NULL);
    amtl_config_free(&c);
    amtl_config_free(&d);
}

/* Applies KEY=VALUE lines with amtl_config_set_kv. */
static int apply_lines(amtl_config *c, char *text, amtl_status *st)
{
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (amtl_config_set_kv(c, line, st))
            return -1;
    return 0;
}

/* The keys given, whatever their value, as --set would take them back. */
static void test_dump_overrides(void)
{
    amtl_status st = {0};
    amtl_config c, d;
    char *text = NULL, *a = NULL, *b = NULL;
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK_OK(amtl_config_dump_overrides(&c, &text, &st), &st);
    CHECKF(text && !strcmp(text, ""), "%s", text ? text : "(null)");
    free(text);
    const char *yaml = "train: {lr: 1e-3, batch_size: 1024}\n"
                       "model:\n  ops: [Identity, \"MLP-8\"]\n"
                       "data:\n  labels: [\"a, b\", c]\n  delimiter: \";\"\n";
    CHECK_OK(amtl_config_load_string(&c, yaml, strlen(yaml), "cfg.yaml", &st), &st);
    CHECK_OK(amtl_config_set_kv(&c, "seed=7", &st), &st);
    CHECK_OK(amtl_config_set_kv(&c, "task_weights=", &st), &st);
    CHECK_OK(amtl_config_dump_overrides(&c, &text, &st), &st);
    /* table order; batch_size is at its default but was given */
    CHECKF(!strcmp(text, "ops=[Identity, MLP-8]\nbatch_size=1024\nlr=0.001\nseed=7\n"
                         "task_weights=[]\nlabels=[\"a, b\", c]\ndelimiter=;\n"), "%s", text);
    CHECK_OK(amtl_config_defaults(&d, &st), &st);
    CHECK_OK(apply_lines(&d, text, &st), &st);
    CHECK_OK(amtl_config_dump(&c, &a, &st), &st);
    CHECK_OK(amtl_config_dump(&d, &b, &st), &st);
    CHECKF(!strcmp(a, b), "%s\n----\n%s", a, b);
    free(text);
    free(a);
    free(b);
    amtl_config_free(&d);
    /* a profile gives keys too; a file that fails gives none */
    CHECK_OK(amtl_config_defaults(&d, &st), &st);
    CHECK_OK(amtl_config_profile(&d, "reference", &st), &st);
    const char *bad = "dropout: 0.5\nbatch_size: x\n";
    CHECK(amtl_config_load_string(&d, bad, strlen(bad), "bad.yaml", &st) < 0);
    CHECK_OK(amtl_config_dump_overrides(&d, &text, &st), &st);
    CHECK(has_line(text, "batch_size=2048") && has_line(text, "patience=3"));
    CHECK(!has_key(text, "dropout", '=') && !has_key(text, "seed", '='));
    free(text);
    /* a line break cannot be one line */
    CHECK_OK(amtl_config_set(&d, "gate_mode", "a\nb", &st), &st);
    text = NULL;
    CHECK(amtl_config_dump_overrides(&d, &text, &st) < 0 && st.code == AMTL_EUSAGE);
    CHECKF(strstr(st.msg, "key 'gate_mode' holds a line break") != NULL, "%s", st.msg);
    CHECK(text == NULL);
    amtl_config_free(&d);
    amtl_config_free(&c);
}

/* Profiles: default changes nothing; reference restores the released
 * code's settings where the defaults differ, under a file and --set; an
 * unknown name is a usage error naming it. */
static void test_profiles(void)
{
    amtl_config c, d;
    amtl_status st;
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK_OK(amtl_config_defaults(&d, &st), &st);
    CHECK_OK(amtl_config_profile(&d, "default", &st), &st);
    char *a = NULL, *b = NULL;
    CHECK_OK(amtl_config_dump(&c, &a, &st), &st);
    CHECK_OK(amtl_config_dump(&d, &b, &st), &st);
    CHECK(!strcmp(a, b));
    free(a);
    free(b);
    CHECK(c.n_expert_layers == 1 && c.expert_n_layers == 2 && c.select_threshold == 0.5f);
    CHECK(c.export_candidates.n == 3 && c.export_candidates.items[0] == 0.5f &&
          c.export_candidates.items[1] == 0.45f && c.export_candidates.items[2] == 0.55f);
    CHECK(!strcmp(c.wide_train, "frozen") && c.embedding_init_std == 1.0f);
    CHECK(c.wide == 1 && !strcmp(c.wide_init, "linear") && c.min_id_count == 5 &&
          c.finetune_epochs == 0 && c.patience == 5);
    CHECK_OK(amtl_config_profile(&c, "reference", &st), &st);
    CHECK(c.wide == 0 && !strcmp(c.wide_init, "zero") && c.batch_size == 2048 &&
          c.lr == 0.001f && c.arch_lr == 0.001f && c.epochs == 15 && c.patience == 3 &&
          c.finetune_epochs == 0 && c.min_id_count == 0 && c.export_candidates.n == 0);
    CHECK(c.n_expert_layers == 2 && c.expert_n_layers == 3);
    CHECK(c.dropout == 0.2f && c.embedding_init_std == 1.0f && c.ops.n == 8 &&
          !strcmp(c.wide_train, "joint") && !c.retrain_candidates);
    CHECK_OK(amtl_config_set(&c, "lr", "0.05", &st), &st);  /* later settings win */
    CHECK(c.lr == 0.05f);
    CHECK(amtl_config_profile(&c, "fast", &st) < 0 && st.code == AMTL_EUSAGE);
    CHECKF(!strcmp(st.msg, "unknown profile 'fast' (expected default or reference)"), "%s",
           st.msg);
    amtl_config_free(&c);
    amtl_config_free(&d);
}

/* The recorded configuration (checkpoints, models, architectures): every
 * key but the run settings, which a load over other values leaves alone. */
static void test_dump_recorded(void)
{
    amtl_config a, b;
    amtl_status st = {0};
    char *text = NULL;
    CHECK_OK(amtl_config_defaults(&a, &st), &st);
    const char *kv[][2] = {{"threads", "3"}, {"device", "cpu-backend"},
                           {"recompute_hidden", "true"}, {"deterministic", "true"},
                           {"lr", "0.0123"}, {"ops", "[Identity, MLP-7]"}, {"seed", "99"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        CHECK_OK(amtl_config_set(&a, kv[i][0], kv[i][1], &st), &st);
    CHECK_OK(amtl_config_dump_recorded(&a, &text, &st), &st);
    CHECK(strncmp(text, "# amtl configuration\n", 21) == 0);
    CHECK(!strstr(text, "\nthreads:") && !strstr(text, "\ndevice:"));
    CHECK(!strstr(text, "\nrecompute_hidden:") && !strstr(text, "\ndeterministic:"));
    CHECK(strstr(text, "\nlr: 0.0123\n") && strstr(text, "\nseed: 99\n"));
    CHECK(strstr(text, "\nops: [Identity, MLP-7]\n"));
    CHECK_OK(amtl_config_defaults(&b, &st), &st);
    CHECK_OK(amtl_config_set(&b, "threads", "5", &st), &st);
    CHECK_OK(amtl_config_load_string(&b, text, strlen(text), "recorded", &st), &st);
    CHECK(b.threads == 5 && !strcmp(b.device, "cpu") && !b.recompute_hidden &&
          !b.deterministic);
    CHECK(b.lr == a.lr && b.seed == a.seed && b.ops.n == 2);
    free(text);
    amtl_config_free(&a);
    amtl_config_free(&b);
}

int main(void)
{
    RUN(test_dump_recorded);
    RUN(test_stage_names);
    RUN(test_stage_keys);
    RUN(test_every_key_has_a_stage);
    RUN(test_schedule);
    RUN(test_dump_section);
    RUN(test_dump_overrides);
    RUN(test_profiles);
    TEST_MAIN_END();
}
