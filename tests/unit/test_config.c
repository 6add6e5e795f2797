/* test_config.c — configuration: defaults, YAML files, --set, errors, dump
 * and read-back (validation: test_config_check.c). */
#include <float.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/config.h"
#include "test.h"

/* Expects expr to fail with code and a message containing text. */
#define CHECK_FAIL(expr, st, code_, text)                                     \
    do {                                                                      \
        int rc_ = (expr);                                                     \
        CHECKF(rc_ < 0, "succeeded, expected '%s'", text);                    \
        CHECKF((st)->code == (code_), "code %d, want %d: %s", (st)->code,     \
               code_, (st)->msg);                                             \
        CHECKF(strstr((st)->msg, text) != NULL, "message '%s' lacks '%s'",    \
               (st)->msg, text);                                              \
    } while (0)

static int load(amtl_config *c, const char *yaml, amtl_status *st)
{
    return amtl_config_load_string(c, yaml, strlen(yaml), "cfg.yaml", st);
}

/* Writes text to a file in the test's temp dir; path gets its name. */
static int write_tmp(char *path, size_t cap, const char *name, const char *text)
{
    snprintf(path, cap, "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static int strlist_eq(const amtl_strlist *a, const amtl_strlist *b)
{
    if (a->n != b->n)
        return 0;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->items[i], b->items[i]) != 0)
            return 0;
    return 1;
}

static int floatlist_eq(const amtl_floatlist *a, const amtl_floatlist *b)
{
    if (a->n != b->n)
        return 0;
    for (int i = 0; i < a->n; i++)
        if (memcmp(&a->items[i], &b->items[i], sizeof(float)) != 0)
            return 0;
    return 1;
}

static int intlist_eq(const amtl_intlist *a, const amtl_intlist *b)
{
    return a->n == b->n &&
           (a->n == 0 || !memcmp(a->items, b->items, (size_t)a->n * sizeof(int)));
}

static int str_eq(const char *a, const char *b)
{
    return a && b ? strcmp(a, b) == 0 : a == b;
}

static int float_eq(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* Every field, written out so that this does not depend on config.c's
 * table; returns the name of the first differing field or NULL. */
static const char *config_diff(const amtl_config *a, const amtl_config *b)
{
#define SAME(f, eq) \
    if (!(eq))      \
        return #f;
    SAME(embedding_dim, a->embedding_dim == b->embedding_dim)
    SAME(n_experts, a->n_experts == b->n_experts)
    SAME(n_expert_layers, a->n_expert_layers == b->n_expert_layers)
    SAME(expert_n_layers, a->expert_n_layers == b->expert_n_layers)
    SAME(expert_width, a->expert_width == b->expert_width)
    SAME(tower_layers, intlist_eq(&a->tower_layers, &b->tower_layers))
    SAME(dropout, float_eq(a->dropout, b->dropout))
    SAME(ops, strlist_eq(&a->ops, &b->ops))
    SAME(gate_mode, str_eq(a->gate_mode, b->gate_mode))
    SAME(gate_dense, a->gate_dense == b->gate_dense)
    SAME(batch_size, a->batch_size == b->batch_size)
    SAME(epoch_batches, a->epoch_batches == b->epoch_batches)
    SAME(shuffle_window, a->shuffle_window == b->shuffle_window)
    SAME(lr, float_eq(a->lr, b->lr))
    SAME(weight_decay, float_eq(a->weight_decay, b->weight_decay))
    SAME(arch_lr, float_eq(a->arch_lr, b->arch_lr))
    SAME(arch_weight_decay, float_eq(a->arch_weight_decay, b->arch_weight_decay))
    SAME(no_decay_bn_bias, a->no_decay_bn_bias == b->no_decay_bn_bias)
    SAME(clip_grad_norm, float_eq(a->clip_grad_norm, b->clip_grad_norm))
    SAME(sparse_embedding, a->sparse_embedding == b->sparse_embedding)
    SAME(seed, a->seed == b->seed)
    SAME(threads, a->threads == b->threads)
    SAME(device, str_eq(a->device, b->device))
    SAME(task_weights, floatlist_eq(&a->task_weights, &b->task_weights))
    SAME(task_conditions, strlist_eq(&a->task_conditions, &b->task_conditions))
    SAME(epochs, a->epochs == b->epochs)
    SAME(warmup_epochs, a->warmup_epochs == b->warmup_epochs)
    SAME(full_arch_train_epochs, a->full_arch_train_epochs == b->full_arch_train_epochs)
    SAME(discretize_ops, a->discretize_ops == b->discretize_ops)
    SAME(patience, a->patience == b->patience)
    SAME(format, str_eq(a->format, b->format))
    SAME(sparse, strlist_eq(&a->sparse, &b->sparse))
    SAME(dense, strlist_eq(&a->dense, &b->dense))
    SAME(labels, strlist_eq(&a->labels, &b->labels))
    SAME(delimiter, str_eq(a->delimiter, b->delimiter))
    SAME(split, floatlist_eq(&a->split, &b->split))
    SAME(vocab, str_eq(a->vocab, b->vocab))
    SAME(limit, a->limit == b->limit)
    SAME(min_count, a->min_count == b->min_count)
#undef SAME
    return NULL;
}

static void test_defaults(void)
{
    amtl_config c;
    amtl_status st = {0};
    static const char *const ops[] = {"Identity", "MLP-16",  "MLP-32",  "MLP-64",
                                      "MLP-128",  "MLP-256", "MLP-512", "MLP-1024"};
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK(c.embedding_dim == 16 && c.n_experts == 4 && c.n_expert_layers == 1);
    CHECK(c.expert_n_layers == 2 && c.expert_width == 64);
    CHECK(c.tower_layers.n == 1 && c.tower_layers.items[0] == 64);
    CHECK(c.dropout == 0.2f);
    CHECK(c.ops.n == 8);
    for (int i = 0; i < 8; i++)
        CHECKF(strcmp(c.ops.items[i], ops[i]) == 0, "op %d is %s", i, c.ops.items[i]);
    CHECK(!strcmp(c.gate_mode, "sample") && c.gate_dense == 0);
    CHECK(c.batch_size == 1024 && c.lr == 0.003f && c.weight_decay == 1e-5f);
    CHECK(c.arch_lr == 0.01f && c.arch_weight_decay == 1e-6f);
    CHECK(c.no_decay_bn_bias == 0 && c.clip_grad_norm == 0 && c.sparse_embedding == 0);
    CHECK(c.seed == 2022 && c.threads == 0 && !strcmp(c.device, "cpu"));
    CHECK(c.task_weights.n == 0 && c.task_conditions.n == 0);
    CHECK(c.epochs == 30 && c.warmup_epochs == 2 && c.full_arch_train_epochs == 3);
    CHECK(c.discretize_ops == 10 && c.patience == 5);
    CHECK(!strcmp(c.format, "processed"));
    CHECK(c.sparse.n == 0 && c.dense.n == 0 && c.labels.n == 0);
    CHECK(!strcmp(c.delimiter, ","));
    CHECK(c.split.n == 3 && c.split.items[0] == 0.8f && c.split.items[1] == 0.1f &&
          c.split.items[2] == 0.1f);
    CHECK(!strcmp(c.vocab, "all") && c.limit == 0 && c.min_count == 10);
    CHECK_OK(amtl_config_validate(&c, &st), &st);
    amtl_config_free(&c);
}

static void test_file_overrides_defaults(void)
{
    amtl_config c, d;
    amtl_status st = {0};
    char path[512];
    CHECK(write_tmp(path, sizeof path, "over.yaml",
                    "# a comment\n"
                    "embedding_dim: 8\n"
                    "lr: 1e-2\n"
                    "ops: [Identity, MLP-8]\n"
                    "device: cuda\n"
                    "gate_dense: TRUE\n"
                    "labels:\n  - click\n  - 'buy'\n") == 0);
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK_OK(amtl_config_defaults(&d, &st), &st);
    CHECK_OK(amtl_config_load_file(&c, path, &st), &st);
    CHECK(c.embedding_dim == 8 && c.lr == 0.01f && !strcmp(c.device, "cuda"));
    CHECK(c.gate_dense == 1);
    CHECK(c.ops.n == 2 && !strcmp(c.ops.items[1], "MLP-8"));
    CHECK(c.labels.n == 2 && !strcmp(c.labels.items[0], "click") &&
          !strcmp(c.labels.items[1], "buy"));
    /* everything else untouched */
    c.embedding_dim = d.embedding_dim, c.lr = d.lr, c.gate_dense = d.gate_dense;
    CHECK_OK(amtl_config_set(&c, "ops", "[Identity, MLP-16, MLP-32, MLP-64, MLP-128, "
                                        "MLP-256, MLP-512, MLP-1024]", &st), &st);
    CHECK_OK(amtl_config_set(&c, "device", "cpu", &st), &st);
    CHECK_OK(amtl_config_set(&c, "labels", "", &st), &st);
    const char *diff = config_diff(&c, &d);
    CHECKF(diff == NULL, "field %s changed", diff);
    amtl_config_free(&c);
    amtl_config_free(&d);
    unlink(path);
}

static void test_precedence(void)
{
    amtl_config c;
    amtl_status st = {0};
    char path[512];
    CHECK(write_tmp(path, sizeof path, "prec.yaml",
                    "batch_size: 512\nlr: 0.01\nsparse: [a, b]\n") == 0);
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK_OK(amtl_config_load_file(&c, path, &st), &st);
    CHECK_OK(amtl_config_set_kv(&c, "batch_size=64", &st), &st);
    CHECK_OK(amtl_config_set_kv(&c, "sparse=c", &st), &st);
    CHECK(c.batch_size == 64);                      /* set beats file */
    CHECK(c.lr == 0.01f);                           /* file beats default */
    CHECK(c.epochs == 30);                          /* default stays */
    CHECK(c.sparse.n == 1 && !strcmp(c.sparse.items[0], "c")); /* replaced */
    amtl_config_free(&c);
    unlink(path);
}

static void test_sections(void)
{
    amtl_config c;
    amtl_status st = {0};
    char path[1024];
    /* the fixture sits next to this file's directory */
    const char *src = __FILE__, *slash = strrchr(src, '/');
    int dirlen = slash ? (int)(slash - src) : 1;
    snprintf(path, sizeof path, "%.*s/../fixtures/config/sections.yaml", dirlen,
             slash ? src : ".");
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK_OK(amtl_config_load_file(&c, path, &st), &st);
    CHECK(c.embedding_dim == 8);
    CHECK(c.tower_layers.n == 2 && c.tower_layers.items[0] == 32 &&
          c.tower_layers.items[1] == 16);
    CHECK(c.ops.n == 3 && !strcmp(c.ops.items[2], "Zero"));
    CHECK(!strcmp(c.gate_mode, "reference") && c.gate_dense == 1);
    CHECK(c.batch_size == 512 && c.lr == 3e-4f && !strcmp(c.device, "auto"));
    CHECK(c.epochs == 4 && c.patience == 2 && c.warmup_epochs == 2);
    CHECK(!strcmp(c.format, "csv") && c.sparse.n == 2 && c.dense.n == 1 &&
          c.labels.n == 2);
    CHECK(!strcmp(c.delimiter, "\t"));
    CHECK(c.split.n == 3 && c.split.items[0] == 0.7f);
    CHECK(c.seed == 7);
    CHECK_OK(amtl_config_validate(&c, &st), &st);

    /* an empty section is no change */
    CHECK_OK(load(&c, "model:\ntrain: ~\nsearch: {}\n", &st), &st);
    CHECK(c.embedding_dim == 8);
    amtl_config_free(&c);
}

static void test_empty_documents(void)
{
    static const char *const texts[] = {"", "\n\n", "# only a comment\n", "---\n",
                                        "--- \n...\n", "~\n", "{}\n"};
    amtl_config c, d;
    amtl_status st = {0};
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK_OK(amtl_config_defaults(&d, &st), &st);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        CHECKF(load(&c, texts[i], &st) == 0, "'%s': %s", texts[i], st.msg);
        const char *diff = config_diff(&c, &d);
        CHECKF(diff == NULL, "'%s' changed %s", texts[i], diff);
    }
    char path[512];
    CHECK(write_tmp(path, sizeof path, "empty.yaml", "") == 0);
    CHECK_OK(amtl_config_load_file(&c, path, &st), &st);
    CHECK(config_diff(&c, &d) == NULL);
    amtl_config_free(&c);
    amtl_config_free(&d);
    unlink(path);
}

static void test_lists(void)
{
    amtl_config c;
    amtl_status st = {0};
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK_OK(load(&c,
                  "tower_layers:\n  - 128\n  - 32\n"
                  "task_weights: [1, 0.5]\n"
                  "task_conditions: [\"buy=click\"]\n"
                  "sparse: [\"a,b\", 'c d']\n"
                  "split: []\n"
                  "dense:\n"
                  "ops: [MLP-16]\n",
                  &st),
             &st);
    CHECK(c.tower_layers.n == 2 && c.tower_layers.items[1] == 32);
    CHECK(c.task_weights.n == 2 && c.task_weights.items[1] == 0.5f);
    CHECK(c.task_conditions.n == 1 && !strcmp(c.task_conditions.items[0], "buy=click"));
    CHECK(c.sparse.n == 2 && !strcmp(c.sparse.items[0], "a,b") &&
          !strcmp(c.sparse.items[1], "c d"));
    CHECK(c.split.n == 0 && c.split.items == NULL);
    CHECK(c.dense.n == 0);  /* "dense:" with nothing is an empty list */
    CHECK(c.ops.n == 1);
    amtl_config_free(&c);
}

static void test_unknown_key(void)
{
    amtl_config c;
    amtl_status st = {0};
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK_FAIL(load(&c, "embedding_dim: 8\nn_experts: 2\nembeding_dim: 4\n", &st), &st,
               AMTL_EUSAGE,
               "cfg.yaml:3: unknown key 'embeding_dim'; did you mean 'embedding_dim'?");
    CHECK_FAIL(load(&c, "frobnicate: 1\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:1: unknown key 'frobnicate'");
    CHECK(strstr(st.msg, "did you mean") == NULL);
    CHECK_FAIL(load(&c, "model:\n  lr: 0.1\n  bacth_size: 3\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:3: unknown key 'bacth_size'; did you mean 'batch_size'?");
    CHECK_FAIL(load(&c, "modle:\n  embedding_dim: 3\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:1: unknown key 'modle'; did you mean 'model'?");
    CHECK_FAIL(amtl_config_set(&c, "Seed", "1", &st), &st, AMTL_EUSAGE,
               "--set Seed=1: unknown key 'Seed'; did you mean 'seed'?");
    CHECK(c.embedding_dim == 16); /* a failed file changes nothing */
    amtl_config_free(&c);
}

static void test_wrong_type(void)
{
    amtl_config c;
    amtl_status st = {0};
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK_FAIL(load(&c, "seed: 1\nlr: 0.1\n\nbatch_size: big\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:4: key 'batch_size' wants an integer, got 'big'");
    CHECK_FAIL(load(&c, "batch_size: 1.5\n", &st), &st, AMTL_EUSAGE,
               "key 'batch_size' wants an integer, got '1.5'");
    CHECK_FAIL(load(&c, "epochs: 0x10\n", &st), &st, AMTL_EUSAGE,
               "key 'epochs' wants an integer, got '0x10'");
    CHECK_FAIL(load(&c, "epochs: 12abc\n", &st), &st, AMTL_EUSAGE, "got '12abc'");
    CHECK_FAIL(load(&c, "epochs: ''\n", &st), &st, AMTL_EUSAGE,
               "key 'epochs' wants an integer, got ''");
    CHECK_FAIL(load(&c, "lr: fast\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:1: key 'lr' wants a number, got 'fast'");
    CHECK_FAIL(load(&c, "lr: nan\n", &st), &st, AMTL_EUSAGE,
               "key 'lr' wants a number, got 'nan'");
    CHECK_FAIL(load(&c, "lr: .inf\n", &st), &st, AMTL_EUSAGE, "got '.inf'");
    CHECK_FAIL(load(&c, "tower_layers:\n  - 64\n  - wide\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:3: key 'tower_layers' wants a list of integers, got 'wide'");
    CHECK_FAIL(load(&c, "split: [0.5, half]\n", &st), &st, AMTL_EUSAGE,
               "key 'split' wants a list of numbers, got 'half'");
    CHECK_FAIL(load(&c, "sparse: [a, '']\n", &st), &st, AMTL_EUSAGE,
               "key 'sparse' wants a list of non-empty strings, got ''");
    CHECK_FAIL(load(&c, "device: \"c\\0pu\"\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:1: key 'device' has a NUL character");
    CHECK(c.batch_size == 1024 && c.lr == 0.003f);
    amtl_config_free(&c);
}

static void test_overflow(void)
{
    amtl_config c;
    amtl_status st = {0};
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK_FAIL(load(&c, "batch_size: 2147483648\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:1: key 'batch_size' wants an integer, got '2147483648' "
               "(out of range)");
    CHECK_FAIL(load(&c, "threads: -2147483649\n", &st), &st, AMTL_EUSAGE, "out of range");
    CHECK_FAIL(load(&c, "seed: 9223372036854775808\n", &st), &st, AMTL_EUSAGE,
               "key 'seed' wants an integer, got '9223372036854775808' (out of range)");
    CHECK_FAIL(load(&c, "tower_layers: [64, 99999999999]\n", &st), &st, AMTL_EUSAGE,
               "got '99999999999' (out of range)");
    CHECK_FAIL(load(&c, "lr: 1e39\n", &st), &st, AMTL_EUSAGE,
               "key 'lr' wants a number, got '1e39' (out of range)");
    CHECK_FAIL(load(&c, "lr: 1e999\n", &st), &st, AMTL_EUSAGE, "(out of range)");
    CHECK_FAIL(load(&c, "lr: 1e-50\n", &st), &st, AMTL_EUSAGE, "(out of range)");
    CHECK_FAIL(amtl_config_set(&c, "epochs", "99999999999", &st), &st, AMTL_EUSAGE,
               "--set epochs=99999999999: key 'epochs' wants an integer");
    /* the extremes themselves are fine */
    CHECK_OK(load(&c, "batch_size: 2147483647\nthreads: -2147483648\n"
                      "seed: -9223372036854775808\nlr: 3.40282347e+38\n", &st), &st);
    CHECK(c.batch_size == INT_MAX && c.threads == INT_MIN && c.seed == LONG_MIN);
    CHECK(c.lr == FLT_MAX);
    amtl_config_free(&c);
}

static void test_bools(void)
{
    static const char *const yes[] = {"true", "True", "YES", "on", "On", "1"};
    static const char *const no[] = {"false", "FALSE", "no", "Off", "0"};
    amtl_config c;
    amtl_status st = {0};
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        c.gate_dense = 0;
        CHECK_OK(amtl_config_set(&c, "gate_dense", yes[i], &st), &st);
        CHECKF(c.gate_dense == 1, "%s", yes[i]);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        c.sparse_embedding = 1;
        CHECK_OK(amtl_config_set(&c, "sparse_embedding", no[i], &st), &st);
        CHECKF(c.sparse_embedding == 0, "%s", no[i]);
    }
    CHECK_FAIL(load(&c, "gate_dense: maybe\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:1: key 'gate_dense' wants a boolean (true/false), got 'maybe'");
    CHECK_FAIL(amtl_config_set(&c, "no_decay_bn_bias", "2", &st), &st, AMTL_EUSAGE,
               "--set no_decay_bn_bias=2: key 'no_decay_bn_bias' wants a boolean");
    CHECK_FAIL(amtl_config_set(&c, "no_decay_bn_bias", "", &st), &st, AMTL_EUSAGE,
               "got ''");
    amtl_config_free(&c);
}

static void test_shape_errors(void)
{
    amtl_config c;
    amtl_status st = {0};
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK_FAIL(load(&c, "lr: 0.1\nbatch_size: [1, 2]\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:2: key 'batch_size' wants an integer, got a list");
    CHECK_FAIL(load(&c, "device:\n  - cpu\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:1: key 'device' wants a string, got a list");
    CHECK_FAIL(load(&c, "ops: Identity\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:1: key 'ops' wants a list of non-empty strings, got 'Identity' "
               "(write [Identity] for one item)");
    CHECK_FAIL(load(&c, "split: 0.5\n", &st), &st, AMTL_EUSAGE,
               "key 'split' wants a list of numbers, got '0.5'");
    CHECK_FAIL(load(&c, "lr: {a: 1}\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:1: key 'lr' wants a number, got a mapping");
    CHECK_FAIL(load(&c, "ops:\n  - Identity\n  - [MLP-16]\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:3: key 'ops' wants a list of non-empty strings, got a nested list");
    CHECK_FAIL(load(&c, "ops: [{a: 1}]\n", &st), &st, AMTL_EUSAGE, "got a nested mapping");
    CHECK_FAIL(load(&c, "seed: 1\nmodel: 3\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:2: section 'model' wants a mapping of key: value, got a scalar");
    CHECK_FAIL(load(&c, "model:\n  train:\n    lr: 1\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:2: section 'train' cannot be nested in section 'model'");
    CHECK_FAIL(load(&c, "- lr\n- seed\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:1: the top level wants a mapping of key: value, got a list");
    CHECK_FAIL(load(&c, "just text\n", &st), &st, AMTL_EUSAGE,
               "the top level wants a mapping of key: value, got a scalar");
    CHECK_FAIL(load(&c, "? [a]\n: 1\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:1: a key must be a name, not a list");
    CHECK(c.ops.n == 8);
    amtl_config_free(&c);
}

static void test_syntax_error(void)
{
    amtl_config c;
    amtl_status st = {0};
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK_FAIL(load(&c, "lr: 0.1\nseed: 3\nbatch_size: [1, 2\n", &st), &st, AMTL_EUSAGE,
               "YAML syntax error: did not find expected ',' or ']'");
    CHECK(strstr(st.msg, "cfg.yaml:4:") != NULL);
    CHECK(strstr(st.msg, "line 3") != NULL);
    CHECK_FAIL(load(&c, "lr: 0.1\nseed: 3: 4\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:2: YAML syntax error: mapping values are not allowed");
    CHECK_FAIL(load(&c, "lr: 0.1\n  seed: 3\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:2: YAML syntax error");
    CHECK_FAIL(load(&c, "lr: *nowhere\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:1: YAML syntax error: found undefined alias");
    const char bad_utf8[] = "lr: 0.1\nseed: \xff\n";
    CHECK_FAIL(amtl_config_load_string(&c, bad_utf8, sizeof bad_utf8 - 1, "cfg.yaml",
                                       &st),
               &st, AMTL_EUSAGE, "cfg.yaml:2: YAML syntax error");
    CHECK(c.lr == 0.003f && c.seed == 2022);
    amtl_config_free(&c);
}

static void test_duplicate_key(void)
{
    amtl_config c;
    amtl_status st = {0};
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK_FAIL(load(&c, "lr: 0.1\nseed: 1\nlr: 0.2\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:3: duplicate key 'lr' (first on line 1)");
    CHECK_FAIL(load(&c, "lr: 0.1\ntrain:\n  lr: 0.2\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:3: duplicate key 'lr' (first on line 1)");
    CHECK_FAIL(load(&c, "model: {}\ndata: {}\nmodel: {}\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:3: duplicate key 'model' (first on line 1)");
    CHECK_FAIL(load(&c, "lr: 0.1\n---\nlr: 0.2\n", &st), &st, AMTL_EUSAGE,
               "cfg.yaml:3: a second YAML document");
    CHECK(c.lr == 0.003f);
    amtl_config_free(&c);
}

static void test_set_values(void)
{
    amtl_config c;
    amtl_status st = {0};
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK_OK(amtl_config_set(&c, "batch_size", "64", &st), &st);
    CHECK_OK(amtl_config_set(&c, "lr", "1e-2", &st), &st);
    CHECK_OK(amtl_config_set(&c, "device", "cuda", &st), &st);
    CHECK_OK(amtl_config_set_kv(&c, "seed=-5", &st), &st);
    CHECK_OK(amtl_config_set_kv(&c, "delimiter=;", &st), &st);
    CHECK_OK(amtl_config_set_kv(&c, "format=", &st), &st);
    CHECK(c.batch_size == 64 && c.lr == 0.01f && !strcmp(c.device, "cuda"));
    CHECK(c.seed == -5 && !strcmp(c.delimiter, ";") && !strcmp(c.format, ""));

    /* list syntaxes */
    CHECK_OK(amtl_config_set(&c, "sparse", "[a, \"b,c\", 'd']", &st), &st);
    CHECK(c.sparse.n == 3 && !strcmp(c.sparse.items[1], "b,c"));
    CHECK_OK(amtl_config_set(&c, "sparse", " x , y ", &st), &st);
    CHECK(c.sparse.n == 2 && !strcmp(c.sparse.items[0], "x") &&
          !strcmp(c.sparse.items[1], "y"));
    CHECK_OK(amtl_config_set(&c, "sparse", "one", &st), &st);
    CHECK(c.sparse.n == 1 && !strcmp(c.sparse.items[0], "one"));
    CHECK_OK(amtl_config_set(&c, "sparse", "", &st), &st);
    CHECK(c.sparse.n == 0);
    CHECK_OK(amtl_config_set(&c, "tower_layers", "[]", &st), &st);
    CHECK(c.tower_layers.n == 0);
    CHECK_OK(amtl_config_set(&c, "tower_layers", "128,64", &st), &st);
    CHECK(c.tower_layers.n == 2 && c.tower_layers.items[0] == 128);
    CHECK_OK(amtl_config_set(&c, "split", "0.5,0.25,0.25", &st), &st);
    CHECK(c.split.n == 3 && c.split.items[1] == 0.25f);
    CHECK_OK(amtl_config_set(&c, "task_weights", "[2]", &st), &st);
    CHECK(c.task_weights.n == 1 && c.task_weights.items[0] == 2.0f);
    /* '=' in the value belongs to the value */
    CHECK_OK(amtl_config_set_kv(&c, "task_conditions=buy=click,ctr=view", &st), &st);
    CHECK(c.task_conditions.n == 2 && !strcmp(c.task_conditions.items[0], "buy=click") &&
          !strcmp(c.task_conditions.items[1], "ctr=view"));
    amtl_config_free(&c);
}

static void test_set_errors(void)
{
    amtl_config c;
    amtl_status st = {0};
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK_FAIL(amtl_config_set_kv(&c, "batch_size", &st), &st, AMTL_EUSAGE,
               "--set 'batch_size': missing '='");
    CHECK_FAIL(amtl_config_set_kv(&c, "batch_size=abc", &st), &st, AMTL_EUSAGE,
               "--set batch_size=abc: key 'batch_size' wants an integer, got 'abc'");
    CHECK_FAIL(amtl_config_set_kv(&c, "embeding_dim=8", &st), &st, AMTL_EUSAGE,
               "--set embeding_dim=8: unknown key 'embeding_dim'; "
               "did you mean 'embedding_dim'?");
    CHECK_FAIL(amtl_config_set_kv(&c, "=8", &st), &st, AMTL_EUSAGE, "unknown key ''");
    CHECK_FAIL(amtl_config_set(&c, "batch_size", " 5", &st), &st, AMTL_EUSAGE,
               "wants an integer, got ' 5'");
    CHECK_FAIL(amtl_config_set(&c, "ops", "[a, ", &st), &st, AMTL_EUSAGE,
               "--set ops=[a, : key 'ops' wants a list like [a, b]: YAML syntax error");
    CHECK_FAIL(amtl_config_set(&c, "ops", "[a] [b]", &st), &st, AMTL_EUSAGE,
               "YAML syntax error");
    CHECK_FAIL(amtl_config_set(&c, "sparse", "a,,b", &st), &st, AMTL_EUSAGE,
               "--set sparse=a,,b: key 'sparse' has an empty item");
    CHECK_FAIL(amtl_config_set(&c, "tower_layers", "[64, x]", &st), &st, AMTL_EUSAGE,
               "--set tower_layers=[64, x]: key 'tower_layers' wants a list of "
               "integers, got 'x'");
    CHECK_FAIL(amtl_config_set(&c, "tower_layers", "[[1]]", &st), &st, AMTL_EUSAGE,
               "got a nested list");
    CHECK_FAIL(amtl_config_set(&c, "device", "\xc3(", &st), &st, AMTL_EUSAGE,
               "key 'device' wants UTF-8 text");
    /* a failed set keeps the old value */
    CHECK(c.batch_size == 1024 && c.tower_layers.n == 1 && c.tower_layers.items[0] == 64);
    CHECK(c.ops.n == 8 && c.sparse.n == 0 && !strcmp(c.device, "cpu"));
    amtl_config_free(&c);
}

static void test_missing_file(void)
{
    amtl_config c;
    amtl_status st = {0};
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK_FAIL(amtl_config_load_file(&c, "/nonexistent/amtl/cfg.yaml", &st), &st,
               AMTL_EIO, "cannot open '/nonexistent/amtl/cfg.yaml': ");
    CHECK_FAIL(amtl_config_load_file(&c, test_tmpdir(), &st), &st, AMTL_EIO,
               "cannot read '");
    char path[512];
    CHECK(write_tmp(path, sizeof path, "named.yaml", "lr: 0.1\nlr: 0.2\n") == 0);
    /* file errors carry the path as given */
    char want[600];
    snprintf(want, sizeof want, "%s:2: duplicate key 'lr'", path);
    CHECK_FAIL(amtl_config_load_file(&c, path, &st), &st, AMTL_EUSAGE, want);
    amtl_config_free(&c);
    unlink(path);
}

/* A config unlike the defaults in every field, with awkward strings. */
static int make_unusual(amtl_config *c, amtl_status *st)
{
    static const char *const kv[] = {
        "embedding_dim=7", "n_experts=3", "n_expert_layers=5", "expert_n_layers=1",
        "expert_width=33", "tower_layers=[128, 2147483647, -3]", "ops=[Zero, MLP-7]",
        "gate_mode=", "gate_dense=yes", "batch_size=-1", "no_decay_bn_bias=on",
        "sparse_embedding=1", "seed=-9223372036854775808", "threads=-2147483648",
        "task_weights=[0.333333343, 1e-7, 12345.678, 0]", "epochs=0",
        "warmup_epochs=1", "full_arch_train_epochs=9", "discretize_ops=0",
        "patience=-4", "sparse=[true, \"123\", a b, \"#x\", \"- y\", null, \"k: v\", "
        "\"q\\\"uote\", \"back\\\\slash\", \"\\u00fcn\\u00efc\\u00f6de\"]",
        "dense=[\"1e5\", '~', ' lead', 'trail ', '[x]', 'a,b']", "labels=[]",
        "split=[0.1]", "limit=9223372036854775807", "min_count=-7",
        "task_conditions=[\"t=c\", \"x=y: z\"]"};
    if (amtl_config_defaults(c, st))
        return -1;
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (amtl_config_set_kv(c, kv[i], st))
            return -1;
    /* strings no YAML plain scalar can hold */
    if (amtl_config_set(c, "device", "tab\there\nnew \"line\" \\ \x01\x7f", st) ||
        amtl_config_set(c, "delimiter", "\t", st) ||
        amtl_config_set(c, "format", "\xc2\x85 nel \xe2\x80\xa8 ls \xf0\x9f\x99\x82", st) ||
        amtl_config_set(c, "vocab", "yes", st))
        return -1;
    /* floats that print badly with few digits */
    c->dropout = nextafterf(0.1f, 1.0f);
    c->lr = 3e-4f;
    c->weight_decay = FLT_MIN;
    c->arch_lr = FLT_MAX;
    c->arch_weight_decay = FLT_TRUE_MIN;
    c->clip_grad_norm = -0.0f;
    return 0;
}

static void test_dump_roundtrip(void)
{
    amtl_config a, b, z;
    amtl_status st = {0};
    char *text = NULL, *text2 = NULL;
    CHECK_OK(make_unusual(&a, &st), &st);
    CHECK_OK(amtl_config_dump(&a, &text, &st), &st);

    /* into defaults */
    CHECK_OK(amtl_config_defaults(&b, &st), &st);
    CHECKF(load(&b, text, &st) == 0, "%s\n%s", st.msg, text);
    const char *diff = config_diff(&a, &b);
    CHECKF(diff == NULL, "field %s differs after read-back of:\n%s", diff, text);

    /* into a zeroed struct: the dump holds every key */
    memset(&z, 0, sizeof z);
    CHECK_OK(load(&z, text, &st), &st);
    diff = config_diff(&a, &z);
    CHECKF(diff == NULL, "field %s differs from a zeroed start", diff);

    /* and dumps the same text again */
    CHECK_OK(amtl_config_dump(&z, &text2, &st), &st);
    CHECK(strcmp(text, text2) == 0);

    /* defaults round-trip too, and read as people would write them */
    free(text);
    amtl_config_free(&b);
    CHECK_OK(amtl_config_defaults(&b, &st), &st);
    CHECK_OK(amtl_config_dump(&b, &text, &st), &st);
    CHECK(strstr(text, "\nembedding_dim: 16\n") != NULL);
    CHECK(strstr(text, "\ndropout: 0.2\n") != NULL);
    CHECK(strstr(text, "\nlr: 0.003\n") != NULL);
    CHECK(strstr(text, "\nweight_decay: 1e-05\n") != NULL);
    CHECK(strstr(text, "\nops: [Identity, MLP-16, MLP-32, MLP-64, MLP-128, MLP-256, "
                       "MLP-512, MLP-1024]\n") != NULL);
    CHECK(strstr(text, "\ngate_dense: false\n") != NULL);
    CHECK(strstr(text, "\ntask_weights: []\n") != NULL);
    CHECK(strstr(text, "\ndelimiter: \",\"\n") != NULL);
    CHECK(strstr(text, "\nsplit: [0.8, 0.1, 0.1]\n") != NULL);
    CHECK(strstr(text, "\nseed: 2022\n") != NULL);
    amtl_config_free(&z);
    CHECK_OK(load(&z, text, &st), &st);
    CHECK(config_diff(&b, &z) == NULL);

    free(text);
    free(text2);
    amtl_config_free(&a);
    amtl_config_free(&b);
    amtl_config_free(&z);
}

/* Random finite float bit patterns survive dump and read-back exactly. */
static void test_dump_floats(void)
{
    amtl_config a, b;
    amtl_status st = {0};
    uint32_t x = 12345;
    CHECK_OK(amtl_config_defaults(&a, &st), &st);
    CHECK_OK(amtl_config_defaults(&b, &st), &st);
    for (int i = 0; i < 2000; i++) {
        float v;
        do {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            memcpy(&v, &x, sizeof v);
        } while (!isfinite(v));
        a.lr = v;
        char *text;
        CHECK_OK(amtl_config_dump(&a, &text, &st), &st);
        int rc = load(&b, text, &st);
        free(text);
        CHECKF(rc == 0, "%.9g: %s", (double)v, st.msg);
        CHECKF(float_eq(a.lr, b.lr), "%.9g read back as %.9g", (double)v, (double)b.lr);
    }
    a.lr = NAN;
    char *text = NULL;
    CHECK_FAIL(amtl_config_dump(&a, &text, &st), &st, AMTL_EUSAGE, "key 'lr'");
    CHECK(text == NULL);
    amtl_config_free(&a);
    amtl_config_free(&b);
}

/* Run under ASan: replacing lists and strings, again and again, leaks
 * nothing, and free is safe on zeroed and freed structs. */
static void test_no_leaks(void)
{
    amtl_config c;
    amtl_status st = {0};
    memset(&c, 0, sizeof c);
    amtl_config_free(&c);
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    for (int i = 0; i < 50; i++) {
        CHECK_OK(amtl_config_set(&c, "ops", i % 2 ? "[Identity]" : "MLP-1,MLP-2,MLP-3", &st),
                 &st);
        CHECK_OK(amtl_config_set(&c, "tower_layers", i % 3 ? "[1, 2, 3]" : "", &st), &st);
        CHECK_OK(amtl_config_set(&c, "task_weights", "[1, 2]", &st), &st);
        CHECK_OK(amtl_config_set(&c, "device", i % 2 ? "cuda" : "cpu", &st), &st);
        CHECK_OK(load(&c, "sparse: [a, b]\nsplit: [1, 0, 0]\nvocab: train\n", &st), &st);
        CHECK(load(&c, "sparse: [c]\nlr: x\n", &st) < 0);
        CHECK(amtl_config_set(&c, "tower_layers", "[1, x]", &st) < 0);
    }
    CHECK(c.sparse.n == 2 && c.tower_layers.n == 3);
    amtl_config_free(&c);
    amtl_config_free(&c); /* free leaves the struct zeroed */
    memset(&c, 0, sizeof c);
    amtl_config_free(&c);
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    amtl_config_free(&c);
    CHECK(c.ops.items == NULL && c.device == NULL);
}

static void test_describe(void)
{
    amtl_config c;
    amtl_status st = {0};
    char *dump = NULL;
    FILE *f = tmpfile();
    CHECK(f != NULL);
    amtl_config_describe(f);
    long n = ftell(f);
    CHECK(n > 0);
    char *text = calloc((size_t)n + 1, 1);
    rewind(f);
    CHECK(fread(text, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    CHECK(strstr(text, "description") != NULL);
    CHECK(strstr(text, "model:\n") && strstr(text, "train:\n") &&
          strstr(text, "search:\n") && strstr(text, "data:\n"));
    CHECK(strstr(text, "\n  embedding_dim ") != NULL);
    CHECK(strstr(text, "MLP-1024]") != NULL);
    /* every key the dump writes is described, as a row of its own */
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK_OK(amtl_config_dump(&c, &dump, &st), &st);
    int keys = 0;
    for (char *line = strtok(dump, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#')
            continue;
        char want[128];
        snprintf(want, sizeof want, "\n  %.*s ", (int)strcspn(line, ":"), line);
        CHECKF(strstr(text, want) != NULL, "'%s' not described", want + 3);
        keys++;
    }
    CHECK(keys == 61);
    free(dump);
    free(text);
    amtl_config_free(&c);
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_file_overrides_defaults);
    RUN(test_precedence);
    RUN(test_sections);
    RUN(test_empty_documents);
    RUN(test_lists);
    RUN(test_unknown_key);
    RUN(test_wrong_type);
    RUN(test_overflow);
    RUN(test_bools);
    RUN(test_shape_errors);
    RUN(test_syntax_error);
    RUN(test_duplicate_key);
    RUN(test_set_values);
    RUN(test_set_errors);
    RUN(test_missing_file);
    RUN(test_dump_roundtrip);
    RUN(test_dump_floats);
    RUN(test_no_leaks);
    RUN(test_describe);
    rmdir(test_tmpdir());
    TEST_MAIN_END();
}
