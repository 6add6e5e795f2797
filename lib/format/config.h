/* config.h — every setting of every tool, with defaults, YAML files and overrides.
 *
 * Precedence, later winning: built-in defaults (amtl_config_defaults), then a
 * YAML file (amtl_config_load_file), then command-line overrides
 * (amtl_config_set, used for `--set key=value` and for dedicated flags).
 *
 * YAML files hold one flat mapping of key: value (scalars or sequences of
 * scalars).  For readability a file may also group keys under the section
 * names "model", "train", "search" and "data"; the section name is not part
 * of the key.  An unknown key or a value of the wrong type is an error naming
 * the key, the file and its line.
 */
#ifndef AMTL_CONFIG_H
#define AMTL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* the most keys the table may hold (it holds about 50) */
enum { AMTL_CONFIG_MAX_KEYS = 128 };

typedef struct {
    char **items;
    int n;
} amtl_strlist;

typedef struct {
    float *items;
    int n;
} amtl_floatlist;

typedef struct {
    int *items;
    int n;
} amtl_intlist;

typedef struct {
    /* model (DESIGN.md section 3) */
    int embedding_dim;        /* E, 16 */
    float embedding_init_std; /* embeddings ~ N(0, s^2), 1 (the reference) */
    int n_experts;            /* K, 4 */
    int n_expert_layers;      /* L, 2 */
    int expert_n_layers;      /* MixedOps per expert, 3 */
    int expert_width;         /* H, 64 */
    amtl_intlist tower_layers;/* [64] */
    float dropout;            /* 0.2 */
    amtl_strlist ops;         /* candidate ops: Identity, MLP-16 .. MLP-1024, Zero */
    char *gate_mode;          /* "sample" | "reference" */
    int gate_dense;           /* feed dense features to the expert gates (0 = reference) */
    int wide;                 /* per-task linear logit beside the deep part (0 = off) */
    char *wide_init;          /* "zero" | "linear": the wide part's start */
    char *wide_train;         /* "joint" | "frozen": the wide part trained or kept */

    /* training */
    int batch_size;           /* 2048 */
    int epoch_batches;        /* at most this many batches an epoch, 0 = every row */
    int shuffle_window;       /* rows the batch order visits at a time, 0 = all */
    float lr;                 /* 1e-3 */
    float weight_decay;       /* 1e-5 */
    float arch_lr;            /* 1e-3 */
    float arch_weight_decay;  /* 1e-6 */
    float arch_sparsity;      /* 0 = off (the reference); see amtl-config(5) */
    char *arch_data;          /* "train" (one-level, the reference) | "val" (bi-level) */
    int no_decay_bn_bias;     /* exempt BatchNorm and bias parameters from decay */
    float clip_grad_norm;     /* 0 = off (the reference never clips) */
    int sparse_embedding;     /* lazy Adam rows for embedding tables */
    float embedding_l2;       /* L2 on the embedding rows a batch uses, 0 = off */
    amtl_floatlist linear_l2; /* L2 grid of the linear floor, empty = built-in */
    long seed;                /* 2022 */
    int threads;              /* compute threads (the trainer's pool), 0 = every core */
    char *device;             /* "cpu" | "cuda" | "auto" */
    amtl_floatlist task_weights;  /* per-task loss weights, empty = all 1 */
    amtl_strlist task_conditions; /* "task=cond": task's loss only where cond == 1 */

    /* search schedule (DESIGN.md section 4) */
    int epochs;               /* 15 */
    int warmup_epochs;        /* 2 */
    int full_arch_train_epochs; /* 3 */
    int discretize_ops;       /* 10 */
    float select_threshold;   /* export keeps sigmoid(beta) > this, 0.5 */
    amtl_floatlist export_candidates; /* thresholds the pipelines try, [] = the one above */
    int retrain_candidates;   /* each export is also trained from scratch, a candidate */
    int linear_candidate;     /* the linear fit competes with them on validation */
    float linear_margin;      /* ...and is kept unless beaten by this many paired SEs */
    int recompute_hidden;     /* the fused MixedOps recompute their hidden layer */
    int deterministic;        /* the same bits at any thread count */
    int patience;             /* 3 */
    char *early_stop;         /* "auc" (the reference) | "logloss" */
    int min_epochs;           /* epochs before early stopping may stop, 0 */
    int finetune_epochs;      /* searched model's fine-tune epochs, 0 = what epochs leaves */

    /* data (amtl-prep) */
    char *format;             /* processed | csv | userbehavior | ijcai15 | kuairand | qb-video */
    amtl_strlist sparse;      /* sparse columns of a plain CSV */
    amtl_strlist dense;       /* dense columns */
    amtl_strlist labels;      /* label columns, or "task=column==v|v" (label.h) */
    amtl_strlist crosses;     /* crossed sparse fields "a*b" (data/cross.h) */
    char *delimiter;          /* "," */
    int trim;                 /* strip spaces around CSV values (0 = keep) */
    amtl_floatlist split;     /* [0.8, 0.1, 0.1] */
    char *vocab;              /* "all" (reference) | "train" (unseen ids -> 0) */
    long limit;               /* 0 = all rows */
    int min_count;            /* frequency filter of the raw recipes, 10 */
    int min_id_count;         /* rarer ids (train rows) -> row 0, 0 = keep all */
    char *dense_transform;    /* "none" | "standardize" | "log-standardize" */

    /* the keys that a profile, a file or an override set, bit i for key i
     * of the table; the defaults set none (amtl_config_dump_overrides) */
    uint64_t given[AMTL_CONFIG_MAX_KEYS / 64];
} amtl_config;

/* Fills every field with its default.  Returns -1 only when out of memory. */
int amtl_config_defaults(amtl_config *c, amtl_status *st);
void amtl_config_free(amtl_config *c);  /* safe on a zeroed struct */

/* Applies a named profile on top of c: "default" (nothing) or "reference"
 * (the released code's settings where the defaults differ). */
int amtl_config_profile(amtl_config *c, const char *name, amtl_status *st);

/* Applies a YAML file on top of c. */
int amtl_config_load_file(amtl_config *c, const char *path, amtl_status *st);
/* Applies YAML text (source names it in messages). */
int amtl_config_load_string(amtl_config *c, const char *yaml, size_t len,
                            const char *source, amtl_status *st);
/* key=value with a scalar, or a list "[a, b]" / "a,b" for list keys. */
int amtl_config_set(amtl_config *c, const char *key, const char *value,
                    amtl_status *st);
/* "key=value" as given to --set. */
int amtl_config_set_kv(amtl_config *c, const char *kv, amtl_status *st);

/* Writes every key as YAML (the file format amtl_config_load_string reads),
 * into a malloc'd NUL-terminated string. */
int amtl_config_dump(const amtl_config *c, char **out, amtl_status *st);

/* As amtl_config_dump, without the run settings (threads, device,
 * recompute_hidden: the keys of no stage, which decide how fast a result is
 * computed, not the result): the configuration a checkpoint, model or
 * architecture file records, so that the same run on another device or
 * thread count writes the same file, and a run from it takes its run
 * settings from its own options. */
int amtl_config_dump_recorded(const amtl_config *c, char **out, amtl_status *st);

/* The keys of one section ("model", "train", "search" or "data") as
 * "key: value" lines, in the order and syntax of amtl_config_dump. */
int amtl_config_dump_section(const amtl_config *c, const char *section, char **out,
                             amtl_status *st);

/* The keys that a profile, a file or an override set (not those left at
 * their defaults) as KEY=VALUE lines, in the syntax of --set: applied with
 * amtl_config_set_kv over the defaults they give the same configuration. */
int amtl_config_dump_overrides(const amtl_config *c, char **out, amtl_status *st);

/* ---- the stages and the schedule of a search (pipelines/search.mk) ---- */

/* A stage is one run of a tool.  Every key of the table names the stages
 * whose output it changes, so that a pipeline redoes a stage only when one
 * of its keys changed.  threads and device change speed, not results: they
 * are in no stage. */
typedef enum {
    AMTL_STAGE_PREP = 1 << 0,     /* amtl-prep */
    AMTL_STAGE_BASELINE = 1 << 1, /* amtl-discretize --baseline */
    AMTL_STAGE_WARMUP = 1 << 2,   /* amtl-supernet --phase warmup */
    AMTL_STAGE_SEARCH = 1 << 3,   /* amtl-supernet --phase search */
    AMTL_STAGE_FROZEN = 1 << 4,   /* amtl-supernet --phase finetune, then the export */
    AMTL_STAGE_FINETUNE = 1 << 5, /* amtl-train --init: the searched model */
    AMTL_STAGE_TRAIN = 1 << 6,    /* amtl-train --from-scratch: the baselines */
    AMTL_STAGE_CHOOSE = 1 << 7    /* pipelines/pick-candidate: the searched model */
} amtl_stage;

/* "prep", "baseline", "warmup", "search", "frozen", "finetune", "train",
 * "choose". */
int amtl_config_stage_parse(const char *name, amtl_stage *stage, amtl_status *st);
const char *amtl_config_stage_name(amtl_stage stage);  /* NULL for no one stage */

/* The keys one stage reads as "key: value" lines under a comment naming the
 * stage, in the order and syntax of amtl_config_dump; finetune_epochs is the
 * schedule's (amtl_config_schedule), so that it changes when epochs does. */
int amtl_config_dump_stage(const amtl_config *c, amtl_stage stage, char **out,
                           amtl_status *st);

/* The epochs of a search (DESIGN.md section 4): warm-up, search, one frozen
 * epoch, then fine-tuning, all counted in epochs unless finetune_epochs
 * sets the fine-tuning apart; the baselines train for up to epochs. */
typedef struct {
    int warmup;      /* warmup_epochs */
    int search;      /* full_arch_train_epochs */
    int finetune;    /* finetune_epochs, or what epochs leaves (at least 0) */
    int epochs;      /* epochs */
    int no_finetune; /* epochs is short of the supernet's epochs: no fine-tuning */
} amtl_schedule;
void amtl_config_schedule(const amtl_config *c, amtl_schedule *s);

/* The schedule and the number of labels as make variables:
 * WARMUP_EPOCHS, SEARCH_EPOCHS, FINETUNE_EPOCHS, EPOCHS, N_LABELS,
 * EXPORT_THRESHOLDS (export_candidates, else select_threshold),
 * RETRAIN_CANDIDATES and LINEAR_CANDIDATE (1 or 0), LINEAR_MARGIN. */
int amtl_config_dump_schedule(const amtl_config *c, char **out, amtl_status *st);

/* Checks values against each other and their ranges (batch_size > 0, known
 * gate_mode, known ops, ...); the message names the key. */
int amtl_config_validate(const amtl_config *c, amtl_status *st);

/* Prints "key  default  description" lines for --help-config. */
void amtl_config_describe(void *file /* FILE* */);

#endif
