/* config_keys.c — the table of every key (name, type, default, section,
 * help), looked up by name; defaults, profiles, copying and freeing of whole
 * configurations.  One table drives everything in config_*.c: defaults
 * (given as text and parsed by the same code as user values), YAML files,
 * --set overrides, dumping, --help-config.  Only validation has per-key
 * code, because its rules relate keys to each other.
 */
#include "format/config_table.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define KEY(field, type, def, section, stages, help) \
    { #field, type, offsetof(amtl_config, field), def, section, stages, help }

/* The stages whose output a key changes (config.h, amtl_stage), by what
 * reads it: the network is built by the baselines and the supernet (amtl-train
 * takes it from the architecture file); every training run reads the
 * optimiser's keys; the search epochs the arch step's; amtl-train its early
 * stopping.  finetune_epochs stands for the fine-tune epochs of the
 * schedule, so epochs, warmup_epochs and full_arch_train_epochs change the
 * finetune stage through it (amtl_config_dump_stage). */
#define ST_MODEL (AMTL_STAGE_BASELINE | AMTL_STAGE_WARMUP | AMTL_STAGE_SEARCH | AMTL_STAGE_FROZEN)
#define ST_TRAINING                                                                   \
    (AMTL_STAGE_WARMUP | AMTL_STAGE_SEARCH | AMTL_STAGE_FROZEN | AMTL_STAGE_FINETUNE | \
     AMTL_STAGE_TRAIN)
#define ST_ARCH (AMTL_STAGE_SEARCH | AMTL_STAGE_FROZEN)
#define ST_STOP (AMTL_STAGE_FINETUNE | AMTL_STAGE_TRAIN)
#define ST_NONE 0 /* how fast, not what: no stage */

const key_def amtl_cfg_keys[] = {
    KEY(embedding_dim, K_INT, "16", "model", ST_MODEL,
        "embedding size of every sparse field (E)"),
    KEY(embedding_init_std, K_FLOAT, "1", "model", ST_MODEL,
        "embeddings start as N(0, s^2): 1 as the reference; 0 starts them at zero"),
    KEY(n_experts, K_INT, "4", "model", ST_MODEL, "experts per expert layer (K)"),
    KEY(n_expert_layers, K_INT, "1", "model", ST_MODEL, "expert layers (L)"),
    KEY(expert_n_layers, K_INT, "2", "model", ST_MODEL, "MixedOps chained in each expert"),
    KEY(expert_width, K_INT, "64", "model", ST_MODEL, "output width of every MixedOp (H)"),
    KEY(tower_layers, K_INTLIST, "[64]", "model", ST_MODEL, "hidden widths of each task tower"),
    KEY(dropout, K_FLOAT, "0.2", "model", ST_MODEL, "dropout probability of ops and towers"),
    KEY(ops, K_STRLIST,
        "[Identity, MLP-16, MLP-32, MLP-64, MLP-128, MLP-256, MLP-512, MLP-1024]",
        "model", ST_MODEL, "candidate ops of every MixedOp: Identity, Zero, MLP-<h>"),
    KEY(gate_mode, K_STRING, "sample", "model", ST_MODEL,
        "gates after warm-up: sample (Bernoulli) | reference (always on)"),
    KEY(gate_dense, K_BOOL, "false", "model", ST_MODEL,
        "feed dense features to the expert gates (the reference does not)"),
    KEY(wide, K_BOOL, "true", "model", ST_MODEL,
        "a wide part: a per-task linear logit over the one-hot ids and dense values"),
    KEY(wide_init, K_STRING, "linear", "model", ST_MODEL,
        "start of the wide part: zero | linear (the fitted logistic regression)"),

    KEY(batch_size, K_INT, "1024", "train", ST_TRAINING,
        "rows per batch (at least 2, for BatchNorm)"),
    KEY(epoch_batches, K_INT, "0", "train", ST_TRAINING,
        "at most this many batches an epoch (each its own random rows), 0 = every row"),
    KEY(shuffle_window, K_INT, "0", "train", ST_TRAINING,
        "rows the shuffled order visits at a time (data larger than memory), 0 = all"),
    KEY(lr, K_FLOAT, "0.003", "train", ST_TRAINING, "Adam learning rate of the weights"),
    KEY(weight_decay, K_FLOAT, "1e-5", "train", ST_TRAINING, "L2 weight decay of the weights"),
    KEY(arch_lr, K_FLOAT, "0.01", "train", ST_TRAINING,
        "Adam learning rate of the arch params"),
    KEY(arch_weight_decay, K_FLOAT, "1e-6", "train", ST_TRAINING,
        "L2 weight decay of the arch params"),
    KEY(arch_sparsity, K_FLOAT, "0", "search", ST_ARCH,
        "prior lambda*sum(sigmoid(beta)) on the feature and expert selections, 0 = off"),
    KEY(arch_data, K_STRING, "train", "search", ST_ARCH,
        "batches of the arch step: train (one-level, the reference) | val (bi-level)"),
    KEY(no_decay_bn_bias, K_BOOL, "false", "train", ST_TRAINING,
        "exempt BatchNorm and bias parameters from weight decay"),
    KEY(clip_grad_norm, K_FLOAT, "0", "train", ST_TRAINING,
        "clip the global gradient norm, 0 = off"),
    KEY(sparse_embedding, K_BOOL, "false", "train", ST_TRAINING,
        "lazy Adam: update only the embedding rows a batch uses"),
    KEY(embedding_l2, K_FLOAT, "0", "train", ST_TRAINING,
        "L2 penalty on the embedding rows a batch uses (added to the loss), 0 = off"),
    KEY(wide_train, K_STRING, "frozen", "train", ST_TRAINING,
        "the wide part: joint (trained with the rest) | frozen (kept at its start)"),
    KEY(linear_l2, K_FLOATLIST, "[]", "train", AMTL_STAGE_TRAIN,
        "L2 strengths the linear floor tries, chosen on validation; [] = built-in grid"),
    KEY(recompute_hidden, K_BOOL, "false", "train", ST_NONE,
        "recompute the MixedOps' hidden layer in the backward: less memory, same result"),
    KEY(deterministic, K_BOOL, "false", "train", ST_NONE,
        "the same result bit for bit at any thread count (CPU; a few % slower)"),
    KEY(seed, K_LONG, "2022", "train", ST_TRAINING | AMTL_STAGE_PREP, "random seed"),
    KEY(threads, K_INT, "0", "train", ST_NONE,
        "compute threads (the trainer's pool), 0 = every core"),
    KEY(device, K_STRING, "cpu", "train", ST_NONE,
        "compute device: cpu | cuda | auto | cpu-backend (= cpu) | cpu-plain"),
    KEY(task_weights, K_FLOATLIST, "[]", "train", ST_TRAINING | AMTL_STAGE_BASELINE,
        "per-task loss weights, [] = all 1"),
    KEY(task_conditions, K_STRLIST, "[]", "train", ST_TRAINING,
        "task=cond: the task's loss only on rows where label cond is 1"),

    KEY(epochs, K_INT, "30", "search", AMTL_STAGE_TRAIN, "total epochs, fine-tuning included"),
    KEY(warmup_epochs, K_INT, "2", "search", ST_ARCH, "first epochs: weights only"),
    KEY(full_arch_train_epochs, K_INT, "3", "search", AMTL_STAGE_FROZEN,
        "then epochs training weights and arch params"),
    KEY(discretize_ops, K_INT, "10", "search", ST_ARCH,
        "MixedOps fixed at the end of each search epoch"),
    KEY(select_threshold, K_FLOAT, "0.5", "search", AMTL_STAGE_FROZEN,
        "export keeps a feature or expert when sigmoid(beta) > this (0.5: the reference)"),
    KEY(export_candidates, K_FLOATLIST, "[0.5, 0.45, 0.55]", "search", AMTL_STAGE_FROZEN,
        "thresholds the pipelines export and fine-tune; best on val wins; [] = select_threshold"),
    KEY(retrain_candidates, K_BOOL, "false", "search", AMTL_STAGE_CHOOSE,
        "the pipelines also train each exported architecture from scratch, as a candidate"),
    KEY(linear_candidate, K_BOOL, "true", "search", AMTL_STAGE_FROZEN,
        "the pipelines' searched model may be the linear fit when it wins on val"),
    KEY(linear_margin, K_FLOAT, "0", "search", AMTL_STAGE_CHOOSE,
        "a deep candidate beats the linear fit only by this many paired val standard errors (0: best val)"),
    KEY(patience, K_INT, "5", "search", ST_STOP,
        "fine-tune epochs without improvement before stopping"),
    KEY(early_stop, K_STRING, "auc", "search", ST_STOP,
        "validation signal of early stopping: auc (mean relative gain) | logloss"),
    KEY(min_epochs, K_INT, "0", "search", ST_STOP,
        "training epochs before early stopping may stop a run"),
    KEY(finetune_epochs, K_INT, "0", "search", AMTL_STAGE_FINETUNE,
        "fine-tune epochs of the searched model; 0 = epochs minus the supernet schedule"),

    KEY(format, K_STRING, "processed", "data", AMTL_STAGE_PREP,
        "processed | csv | userbehavior | ijcai15 | kuairand | qb-video"),
    KEY(sparse, K_STRLIST, "[]", "data", AMTL_STAGE_PREP,
        "sparse (categorical) columns of a plain CSV"),
    KEY(dense, K_STRLIST, "[]", "data", AMTL_STAGE_PREP,
        "dense (numeric) columns of a plain CSV"),
    KEY(labels, K_STRLIST, "[]", "data", AMTL_STAGE_PREP,
        "label columns (0/1), one per task, or task=column==value|value (1 on those values)"),
    KEY(crosses, K_STRLIST, "[]", "data", AMTL_STAGE_PREP,
        "crossed sparse fields a*b[*c]: one field whose value is the tuple of theirs"),
    KEY(delimiter, K_STRING, ",", "data", AMTL_STAGE_PREP,
        "field separator of a plain CSV, one character"),
    KEY(trim, K_BOOL, "false", "data", AMTL_STAGE_PREP,
        "strip spaces and tabs around every unquoted CSV value and header name"),
    KEY(split, K_FLOATLIST, "[0.8, 0.1, 0.1]", "data", AMTL_STAGE_PREP,
        "train, validation, test fractions"),
    KEY(vocab, K_STRING, "all", "data", AMTL_STAGE_PREP,
        "ids from all rows (reference) | train rows only, unseen ids -> 0"),
    KEY(limit, K_LONG, "0", "data", AMTL_STAGE_PREP, "read at most this many rows, 0 = all"),
    KEY(min_count, K_INT, "10", "data", AMTL_STAGE_PREP,
        "frequency filter of the raw-data recipes"),
    KEY(min_id_count, K_INT, "5", "data", AMTL_STAGE_PREP,
        "ids seen fewer times in the training rows map to the field's row 0; 0 = keep all"),
    KEY(dense_transform, K_STRING, "none", "data", AMTL_STAGE_PREP,
        "none | standardize | log-standardize dense values, by the training rows' statistics"),
};

const int amtl_cfg_n_keys = (int)(sizeof amtl_cfg_keys / sizeof amtl_cfg_keys[0]);
_Static_assert(sizeof amtl_cfg_keys / sizeof amtl_cfg_keys[0] <= AMTL_CFG_MAX_KEYS,
               "raise AMTL_CFG_MAX_KEYS");

const char *const amtl_cfg_sections[] = {"model", "train", "search", "data"};
const int amtl_cfg_n_sections =
    (int)(sizeof amtl_cfg_sections / sizeof amtl_cfg_sections[0]);
_Static_assert(sizeof amtl_cfg_sections / sizeof amtl_cfg_sections[0] <= AMTL_CFG_MAX_SECTIONS,
               "raise AMTL_CFG_MAX_SECTIONS");

/* the names of the amtl_stage bits, lowest first */
static const char *const stage_names[] = {"prep",   "baseline", "warmup", "search",
                                          "frozen", "finetune", "train",  "choose"};
#define N_STAGES ((int)(sizeof stage_names / sizeof stage_names[0]))

int amtl_config_stage_parse(const char *name, amtl_stage *stage, amtl_status *st)
{
    for (int i = 0; i < N_STAGES; i++) {
        if (!strcmp(name, stage_names[i])) {
            *stage = (amtl_stage)(1 << i);
            return 0;
        }
    }
    return amtl_error(st, AMTL_EUSAGE,
                      "unknown stage '%s' (expected prep, baseline, warmup, search, frozen, "
                      "finetune, train or choose)", name);
}

const char *amtl_config_stage_name(amtl_stage stage)
{
    for (int i = 0; i < N_STAGES; i++)
        if ((unsigned)stage == 1u << i)
            return stage_names[i];
    return NULL;
}

int amtl_cfg_is_list(const key_def *k)
{
    return k->type >= K_STRLIST;
}

const key_def *amtl_cfg_find_key(const char *name)
{
    for (int i = 0; i < amtl_cfg_n_keys; i++)
        if (strcmp(amtl_cfg_keys[i].name, name) == 0)
            return &amtl_cfg_keys[i];
    return NULL;
}

int amtl_cfg_find_section(const char *name)
{
    for (int i = 0; i < amtl_cfg_n_sections; i++)
        if (strcmp(amtl_cfg_sections[i], name) == 0)
            return i;
    return -1;
}

const char *amtl_cfg_type_want(key_type t)
{
    switch (t) {
    case K_INT:
    case K_LONG:
        return "an integer";
    case K_FLOAT:
        return "a number";
    case K_BOOL:
        return "a boolean (true/false)";
    case K_STRING:
        return "a string";
    case K_STRLIST:
        return "a list of non-empty strings";
    case K_FLOATLIST:
        return "a list of numbers";
    case K_INTLIST:
        return "a list of integers";
    }
    return "a value";
}

/* ---- whole configurations ---- */

void amtl_config_free(amtl_config *c)
{
    if (!c)
        return;
    for (int i = 0; i < amtl_cfg_n_keys; i++) {
        const key_def *k = &amtl_cfg_keys[i];
        switch (k->type) {
        case K_STRING:
            free(*FIELD(c, k, char *));
            break;
        case K_STRLIST:
            amtl_cfg_free_strlist(FIELD(c, k, amtl_strlist));
            break;
        case K_FLOATLIST:
            free(FIELD(c, k, amtl_floatlist)->items);
            break;
        case K_INTLIST:
            free(FIELD(c, k, amtl_intlist)->items);
            break;
        default:
            break;
        }
    }
    memset(c, 0, sizeof *c);
}

int amtl_config_defaults(amtl_config *c, amtl_status *st)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < amtl_cfg_n_keys; i++) {
        origin o = {NULL, amtl_cfg_keys[i].name, amtl_cfg_keys[i].def};
        if (amtl_cfg_set_text(c, &amtl_cfg_keys[i], amtl_cfg_keys[i].def, &o, st)) {
            amtl_config_free(c);
            return -1;
        }
    }
    memset(c->given, 0, sizeof c->given); /* a default is not a setting given */
    return 0;
}

/* Profiles: named bundles of settings over the built-in defaults.  The
 * defaults are what measured best on real data (amtl-config(5), DEFAULTS);
 * "reference" restores the released AutoMTL code's settings for every key
 * where the defaults differ from it. */
typedef struct {
    const char *name;
    const char *kv[16][2];
} profile_def;

static const profile_def profiles[] = {
    {"default", {{NULL, NULL}}},
    {"reference",
     {{"n_expert_layers", "2"},
      {"expert_n_layers", "3"},
      {"wide", "false"},
      {"wide_init", "zero"},
      {"wide_train", "joint"},
      {"batch_size", "2048"},
      {"lr", "0.001"},
      {"arch_lr", "0.001"},
      {"epochs", "15"},
      {"patience", "3"},
      {"min_id_count", "0"},
      {"export_candidates", "[]"},
      {"linear_candidate", "false"},
      {NULL, NULL}}},
};

int amtl_config_profile(amtl_config *c, const char *name, amtl_status *st)
{
    for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++) {
        if (strcmp(profiles[i].name, name))
            continue;
        for (int k = 0; profiles[i].kv[k][0]; k++)
            if (amtl_config_set(c, profiles[i].kv[k][0], profiles[i].kv[k][1], st))
                return amtl_error_context(st, "profile %s", name);
        return 0;
    }
    return amtl_error(st, AMTL_EUSAGE, "unknown profile '%s' (expected default or reference)",
                      name);
}

int amtl_cfg_copy(amtl_config *dst, const amtl_config *src, amtl_status *st)
{
    *dst = *src;
    for (int i = 0; i < amtl_cfg_n_keys; i++) {
        const key_def *k = &amtl_cfg_keys[i];
        if (k->type == K_STRING)
            *FIELD(dst, k, char *) = NULL;
        else if (k->type == K_STRLIST)
            *FIELD(dst, k, amtl_strlist) = (amtl_strlist){0};
        else if (k->type == K_FLOATLIST)
            *FIELD(dst, k, amtl_floatlist) = (amtl_floatlist){0};
        else if (k->type == K_INTLIST)
            *FIELD(dst, k, amtl_intlist) = (amtl_intlist){0};
    }
    for (int i = 0; i < amtl_cfg_n_keys; i++) {
        const key_def *k = &amtl_cfg_keys[i];
        if (k->type == K_STRING) {
            const char *s = *CFIELD(src, k, char *);
            if (s && !(*FIELD(dst, k, char *) = strdup(s)))
                goto nomem;
        } else if (k->type == K_STRLIST) {
            const amtl_strlist *a = CFIELD(src, k, amtl_strlist);
            amtl_strlist *b = FIELD(dst, k, amtl_strlist);
            if (a->n <= 0)
                continue;
            if (!(b->items = calloc((size_t)a->n, sizeof *b->items)))
                goto nomem;
            for (; b->n < a->n; b->n++)
                if (!(b->items[b->n] = strdup(a->items[b->n])))
                    goto nomem;
        } else if (k->type == K_FLOATLIST) {
            const amtl_floatlist *a = CFIELD(src, k, amtl_floatlist);
            amtl_floatlist *b = FIELD(dst, k, amtl_floatlist);
            if (a->n <= 0)
                continue;
            if (!(b->items = malloc((size_t)a->n * sizeof *b->items)))
                goto nomem;
            memcpy(b->items, a->items, (size_t)a->n * sizeof *b->items);
            b->n = a->n;
        } else if (k->type == K_INTLIST) {
            const amtl_intlist *a = CFIELD(src, k, amtl_intlist);
            amtl_intlist *b = FIELD(dst, k, amtl_intlist);
            if (a->n <= 0)
                continue;
            if (!(b->items = malloc((size_t)a->n * sizeof *b->items)))
                goto nomem;
            memcpy(b->items, a->items, (size_t)a->n * sizeof *b->items);
            b->n = a->n;
        }
    }
    return 0;
nomem:
    amtl_config_free(dst);
    return amtl_cfg_oom(st);
}
