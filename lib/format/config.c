/* config.c — every setting of every tool (see config.h).
 *
 * One table of keys drives everything here: defaults (given as text and
 * parsed by the same code as user values), YAML files, --set overrides,
 * dumping, --help-config.  Only validation has per-key code, because its
 * rules relate keys to each other.
 */
#include "format/config.h"
#include "model/op.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

typedef enum {
    K_INT,
    K_LONG,
    K_FLOAT,
    K_BOOL,
    K_STRING,
    K_STRLIST, /* list types last: is_list() relies on it */
    K_FLOATLIST,
    K_INTLIST
} key_type;

typedef struct {
    const char *name;
    key_type type;
    size_t offset;
    const char *def;     /* default, in the syntax of --set */
    const char *section; /* model | train | search | data */
    const char *help;
} key_def;

#define KEY(field, type, def, section, help) \
    { #field, type, offsetof(amtl_config, field), def, section, help }

static const key_def keys[] = {
    KEY(embedding_dim, K_INT, "16", "model", "embedding size of every sparse field (E)"),
    KEY(embedding_init_std, K_FLOAT, "1", "model",
        "embeddings start as N(0, s^2): 1 as the reference; 0 starts them at zero"),
    KEY(n_experts, K_INT, "4", "model", "experts per expert layer (K)"),
    KEY(n_expert_layers, K_INT, "1", "model", "expert layers (L)"),
    KEY(expert_n_layers, K_INT, "2", "model", "MixedOps chained in each expert"),
    KEY(expert_width, K_INT, "64", "model", "output width of every MixedOp (H)"),
    KEY(tower_layers, K_INTLIST, "[64]", "model", "hidden widths of each task tower"),
    KEY(dropout, K_FLOAT, "0.2", "model", "dropout probability of ops and towers"),
    KEY(ops, K_STRLIST,
        "[Identity, MLP-16, MLP-32, MLP-64, MLP-128, MLP-256, MLP-512, MLP-1024]",
        "model", "candidate ops of every MixedOp: Identity, Zero, MLP-<h>"),
    KEY(gate_mode, K_STRING, "sample", "model",
        "gates after warm-up: sample (Bernoulli) | reference (always on)"),
    KEY(gate_dense, K_BOOL, "false", "model",
        "feed dense features to the expert gates (the reference does not)"),
    KEY(wide, K_BOOL, "true", "model",
        "a wide part: a per-task linear logit over the one-hot ids and dense values"),
    KEY(wide_init, K_STRING, "linear", "model",
        "start of the wide part: zero | linear (the fitted logistic regression)"),

    KEY(batch_size, K_INT, "1024", "train", "rows per batch (at least 2, for BatchNorm)"),
    KEY(lr, K_FLOAT, "0.003", "train", "Adam learning rate of the weights"),
    KEY(weight_decay, K_FLOAT, "1e-5", "train", "L2 weight decay of the weights"),
    KEY(arch_lr, K_FLOAT, "0.01", "train", "Adam learning rate of the arch params"),
    KEY(arch_weight_decay, K_FLOAT, "1e-6", "train", "L2 weight decay of the arch params"),
    KEY(arch_sparsity, K_FLOAT, "0", "search",
        "prior lambda*sum(sigmoid(beta)) on the feature and expert selections, 0 = off"),
    KEY(arch_data, K_STRING, "train", "search",
        "batches of the arch step: train (one-level, the reference) | val (bi-level)"),
    KEY(no_decay_bn_bias, K_BOOL, "false", "train",
        "exempt BatchNorm and bias parameters from weight decay"),
    KEY(clip_grad_norm, K_FLOAT, "0", "train", "clip the global gradient norm, 0 = off"),
    KEY(sparse_embedding, K_BOOL, "false", "train",
        "lazy Adam: update only the embedding rows a batch uses"),
    KEY(embedding_l2, K_FLOAT, "0", "train",
        "L2 penalty on the embedding rows a batch uses (added to the loss), 0 = off"),
    KEY(linear_l2, K_FLOATLIST, "[]", "train",
        "L2 strengths the linear floor tries, chosen on validation; [] = built-in grid"),
    KEY(seed, K_LONG, "2022", "train", "random seed"),
    KEY(threads, K_INT, "0", "train", "BLAS threads, 0 = all cores"),
    KEY(device, K_STRING, "cpu", "train", "compute device: cpu | cuda | auto | cpu-backend"),
    KEY(task_weights, K_FLOATLIST, "[]", "train", "per-task loss weights, [] = all 1"),
    KEY(task_conditions, K_STRLIST, "[]", "train",
        "task=cond: the task's loss only on rows where label cond is 1"),

    KEY(epochs, K_INT, "30", "search", "total epochs, fine-tuning included"),
    KEY(warmup_epochs, K_INT, "2", "search", "first epochs: weights only"),
    KEY(full_arch_train_epochs, K_INT, "3", "search",
        "then epochs training weights and arch params"),
    KEY(discretize_ops, K_INT, "10", "search", "MixedOps fixed at the end of each search epoch"),
    KEY(select_threshold, K_FLOAT, "0.5", "search",
        "export keeps a feature or expert when sigmoid(beta) > this (0.5: the reference)"),
    KEY(patience, K_INT, "5", "search", "fine-tune epochs without improvement before stopping"),
    KEY(early_stop, K_STRING, "auc", "search",
        "validation signal of early stopping: auc (mean relative gain) | logloss"),
    KEY(min_epochs, K_INT, "0", "search",
        "training epochs before early stopping may stop a run"),
    KEY(finetune_epochs, K_INT, "0", "search",
        "fine-tune epochs of the searched model; 0 = epochs minus the supernet schedule"),

    KEY(format, K_STRING, "processed", "data",
        "processed | csv | userbehavior | ijcai15 | kuairand | qb-video"),
    KEY(sparse, K_STRLIST, "[]", "data", "sparse (categorical) columns of a plain CSV"),
    KEY(dense, K_STRLIST, "[]", "data", "dense (numeric) columns of a plain CSV"),
    KEY(labels, K_STRLIST, "[]", "data",
        "label columns (0/1), one per task, or task=column==value|value (1 on those values)"),
    KEY(delimiter, K_STRING, ",", "data", "field separator of a plain CSV, one character"),
    KEY(trim, K_BOOL, "false", "data",
        "strip spaces and tabs around every unquoted CSV value and header name"),
    KEY(split, K_FLOATLIST, "[0.8, 0.1, 0.1]", "data", "train, validation, test fractions"),
    KEY(vocab, K_STRING, "all", "data",
        "ids from all rows (reference) | train rows only, unseen ids -> 0"),
    KEY(limit, K_LONG, "0", "data", "read at most this many rows, 0 = all"),
    KEY(min_count, K_INT, "10", "data", "frequency filter of the raw-data recipes"),
    KEY(min_id_count, K_INT, "5", "data",
        "ids seen fewer times in the training rows map to the field's row 0; 0 = keep all"),
    KEY(dense_transform, K_STRING, "none", "data",
        "none | standardize | log-standardize dense values, by the training rows' statistics"),
};

#define N_KEYS ((int)(sizeof keys / sizeof keys[0]))

static const char *const sections[] = {"model", "train", "search", "data"};
#define N_SECTIONS ((int)(sizeof sections / sizeof sections[0]))

#define FIELD(c, k, T) ((T *)(void *)((char *)(c) + (k)->offset))
#define CFIELD(c, k, T) ((const T *)(const void *)((const char *)(c) + (k)->offset))

static int is_list(const key_def *k)
{
    return k->type >= K_STRLIST;
}

static const key_def *find_key(const char *name)
{
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static int find_section(const char *name)
{
    for (int i = 0; i < N_SECTIONS; i++)
        if (strcmp(sections[i], name) == 0)
            return i;
    return -1;
}

static const char *type_want(key_type t)
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

/* ---- where a value came from, for messages ---- */

typedef struct {
    const char *file;  /* YAML source name; NULL for --set */
    const char *key;   /* --set: the key and value as given */
    const char *value;
} origin;

static int fail(amtl_status *st, int code, const origin *o, int line,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail(amtl_status *st, int code, const origin *o, int line,
                const char *fmt, ...)
{
    char body[800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (o->file)
        return amtl_error(st, code, "%s:%d: %s", o->file, line, body);
    return amtl_error(st, code, "--set %s=%s: %s", o->key, o->value, body);
}

static int oom(amtl_status *st)
{
    return amtl_error(st, AMTL_ENOMEM, "out of memory reading the configuration");
}

/* Optimal string alignment distance (edits plus adjacent swaps), for the
 * "did you mean" hint; long names are simply not compared. */
static int edit_distance(const char *a, const char *b)
{
    enum { MAXLEN = 64 };
    size_t n = strlen(a), m = strlen(b);
    if (n >= MAXLEN || m >= MAXLEN)
        return INT_MAX;
    int d[MAXLEN + 1][MAXLEN + 1];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[n][m];
}

static int unknown_key(amtl_status *st, const origin *o, int line, const char *name,
                       int with_sections)
{
    const char *best = NULL;
    int best_d = 3; /* hint only within distance 2 */
    for (int i = 0; i < N_KEYS; i++) {
        int d = edit_distance(name, keys[i].name);
        if (d < best_d) {
            best_d = d;
            best = keys[i].name;
        }
    }
    for (int i = 0; with_sections && i < N_SECTIONS; i++) {
        int d = edit_distance(name, sections[i]);
        if (d < best_d) {
            best_d = d;
            best = sections[i];
        }
    }
    if (best)
        return fail(st, AMTL_EUSAGE, o, line, "unknown key '%s'; did you mean '%s'?",
                    name, best);
    return fail(st, AMTL_EUSAGE, o, line, "unknown key '%s'", name);
}

/* ---- scalar parsing: the whole text or nothing ---- */

enum { PARSE_OK = 0, PARSE_BAD = -1, PARSE_RANGE = -2 };

static int parse_long(const char *s, long lo, long hi, long *out)
{
    if (!*s || isspace((unsigned char)*s))
        return PARSE_BAD;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end)
        return PARSE_BAD;
    if (errno == ERANGE || v < lo || v > hi)
        return PARSE_RANGE;
    *out = v;
    return PARSE_OK;
}

/* Through double and then float: dump relies on this exact path when it
 * picks the shortest text that reads back to the same float. */
static int parse_float(const char *s, float *out)
{
    if (!*s || isspace((unsigned char)*s))
        return PARSE_BAD;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end)
        return PARSE_BAD;
    if (errno == ERANGE)
        return PARSE_RANGE;
    if (isnan(v) || isinf(v))
        return PARSE_BAD; /* "nan", "inf": not numbers a setting can use */
    /* from half an ulp above FLT_MAX on, rounding to float gives infinity */
    if (fabs(v) >= ldexp(2.0 - ldexp(1.0, -24), 127) || (v != 0 && (float)v == 0))
        return PARSE_RANGE;
    *out = (float)v;
    return PARSE_OK;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return PARSE_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return PARSE_OK;
        }
    }
    return PARSE_BAD;
}

/* Decodes one UTF-8 sequence; returns its length, 0 when invalid. */
static int utf8_decode(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    int n;
    uint32_t v, min;
    if ((s[0] & 0xe0) == 0xc0) {
        n = 2, v = s[0] & 0x1f, min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3, v = s[0] & 0x0f, min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4, v = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

static int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp;
        int n = utf8_decode(p, &cp);
        if (!n)
            return 0;
        p += n;
    }
    return 1;
}

/* ---- storing values ---- */

static void free_strlist(amtl_strlist *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* text is one scalar for a non-list key; line is for messages. */
static int set_scalar(amtl_config *c, const key_def *k, const char *text,
                      const origin *o, int line, amtl_status *st)
{
    long lv;
    float fv;
    int bv, r;
    switch (k->type) {
    case K_INT:
        r = parse_long(text, INT_MIN, INT_MAX, &lv);
        if (r == PARSE_OK)
            *FIELD(c, k, int) = (int)lv;
        break;
    case K_LONG:
        r = parse_long(text, LONG_MIN, LONG_MAX, &lv);
        if (r == PARSE_OK)
            *FIELD(c, k, long) = lv;
        break;
    case K_FLOAT:
        r = parse_float(text, &fv);
        if (r == PARSE_OK)
            *FIELD(c, k, float) = fv;
        break;
    case K_BOOL:
        r = parse_bool(text, &bv);
        if (r == PARSE_OK)
            *FIELD(c, k, int) = bv;
        break;
    case K_STRING: {
        if (!utf8_valid(text))
            return fail(st, AMTL_EUSAGE, o, line, "key '%s' wants UTF-8 text", k->name);
        char *dup = strdup(text);
        if (!dup)
            return oom(st);
        free(*FIELD(c, k, char *));
        *FIELD(c, k, char *) = dup;
        return 0;
    }
    default:
        return fail(st, AMTL_EUSAGE, o, line, "key '%s' wants a list", k->name);
    }
    if (r == PARSE_RANGE)
        return fail(st, AMTL_EUSAGE, o, line, "key '%s' wants %s, got '%s' (out of range)",
                    k->name, type_want(k->type), text);
    if (r != PARSE_OK)
        return fail(st, AMTL_EUSAGE, o, line, "key '%s' wants %s, got '%s'", k->name,
                    type_want(k->type), text);
    return 0;
}

/* Replaces a list key by n items; lines[i] (or line when lines is NULL)
 * locates item i.  The old list stays when an item is bad. */
static int set_list(amtl_config *c, const key_def *k, char *const *items,
                    const int *lines, int n, const origin *o, int line,
                    amtl_status *st)
{
    size_t cap = n > 0 ? (size_t)n : 1;
    for (int i = 0; i < n; i++) {
        int ln = lines ? lines[i] : line;
        int r = PARSE_OK;
        long lv;
        float fv;
        if (k->type == K_INTLIST)
            r = parse_long(items[i], INT_MIN, INT_MAX, &lv);
        else if (k->type == K_FLOATLIST)
            r = parse_float(items[i], &fv);
        else if (!items[i][0])
            r = PARSE_BAD;
        else if (!utf8_valid(items[i]))
            return fail(st, AMTL_EUSAGE, o, ln, "key '%s' wants UTF-8 text", k->name);
        if (r == PARSE_RANGE)
            return fail(st, AMTL_EUSAGE, o, ln, "key '%s' wants %s, got '%s' (out of range)",
                        k->name, type_want(k->type), items[i]);
        if (r != PARSE_OK)
            return fail(st, AMTL_EUSAGE, o, ln, "key '%s' wants %s, got '%s'", k->name,
                        type_want(k->type), items[i]);
    }
    /* every item parses: only allocation can fail from here */
    if (k->type == K_STRLIST) {
        char **v = n ? calloc(cap, sizeof *v) : NULL;
        if (n && !v)
            return oom(st);
        for (int i = 0; i < n; i++) {
            if (!(v[i] = strdup(items[i]))) {
                amtl_strlist tmp = {v, i};
                free_strlist(&tmp);
                return oom(st);
            }
        }
        amtl_strlist *l = FIELD(c, k, amtl_strlist);
        free_strlist(l);
        l->items = v;
        l->n = n;
    } else if (k->type == K_FLOATLIST) {
        float *v = n ? malloc(cap * sizeof *v) : NULL;
        if (n && !v)
            return oom(st);
        for (int i = 0; i < n; i++)
            parse_float(items[i], &v[i]);
        amtl_floatlist *l = FIELD(c, k, amtl_floatlist);
        free(l->items);
        l->items = v;
        l->n = n;
    } else {
        int *v = n ? malloc(cap * sizeof *v) : NULL;
        if (n && !v)
            return oom(st);
        for (int i = 0; i < n; i++) {
            long lv = 0;
            parse_long(items[i], INT_MIN, INT_MAX, &lv);
            v[i] = (int)lv;
        }
        amtl_intlist *l = FIELD(c, k, amtl_intlist);
        free(l->items);
        l->items = v;
        l->n = n;
    }
    return 0;
}

/* ---- YAML ---- */

static int count_line(const char *text, size_t len, size_t offset)
{
    int line = 1;
    for (size_t i = 0; i < offset && i < len; i++)
        line += text[i] == '\n';
    return line;
}

static int yaml_fail(amtl_status *st, const origin *o, const yaml_parser_t *p,
                     const char *text, size_t len, const char *what)
{
    if (p->error == YAML_MEMORY_ERROR)
        return oom(st);
    const char *problem = p->problem ? p->problem : "unknown problem";
    int line;
    if (p->error == YAML_READER_ERROR)
        line = count_line(text, len, p->problem_offset);
    else
        line = (int)p->problem_mark.line + 1;
    if (p->context && o->file)
        return fail(st, AMTL_EUSAGE, o, line, "%sYAML syntax error: %s (%s on line %d)",
                    what, problem, p->context, (int)p->context_mark.line + 1);
    return fail(st, AMTL_EUSAGE, o, line, "%sYAML syntax error: %s", what, problem);
}

static int node_line(const yaml_node_t *n)
{
    return (int)n->start_mark.line + 1;
}

static const char *node_kind(const yaml_node_t *n)
{
    return n->type == YAML_MAPPING_NODE ? "mapping" : n->type == YAML_SEQUENCE_NODE
                                                          ? "list"
                                                          : "scalar";
}

/* A plain empty, "~" or "null" scalar: YAML's way of writing nothing. */
static int is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = (const char *)n->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

/* The scalar's text, refused when it hides a NUL (from a "\0" escape). */
static int scalar_text(const yaml_node_t *n, const char *key, const origin *o,
                       const char **out, amtl_status *st)
{
    const char *s = (const char *)n->data.scalar.value;
    if (strlen(s) != n->data.scalar.length) {
        if (!key)
            return fail(st, AMTL_EUSAGE, o, node_line(n), "a key has a NUL character");
        return fail(st, AMTL_EUSAGE, o, node_line(n), "key '%s' has a NUL character", key);
    }
    *out = s;
    return 0;
}

/* Applies a sequence node of scalars to list key k. */
static int set_list_node(amtl_config *c, const key_def *k, yaml_document_t *doc,
                         yaml_node_t *seq, const origin *o, amtl_status *st)
{
    int n = (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    size_t cap = n > 0 ? (size_t)n : 1;
    char **items = malloc(cap * sizeof *items);
    int *lines = malloc(cap * sizeof *lines);
    int rc = -1;
    if (!items || !lines) {
        oom(st);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        yaml_node_t *it = yaml_document_get_node(doc, seq->data.sequence.items.start[i]);
        lines[i] = node_line(it);
        if (it->type != YAML_SCALAR_NODE) {
            fail(st, AMTL_EUSAGE, o, lines[i], "key '%s' wants %s, got a nested %s",
                 k->name, type_want(k->type), node_kind(it));
            goto out;
        }
        const char *s = NULL;
        if (scalar_text(it, k->name, o, &s, st))
            goto out;
        items[i] = (char *)s;
    }
    rc = set_list(c, k, items, lines, n, o, node_line(seq), st);
out:
    free(items);
    free(lines);
    return rc;
}

/* key: value, for a key of the table. */
static int set_node(amtl_config *c, const key_def *k, yaml_document_t *doc,
                    yaml_node_t *v, int key_line, const origin *o, amtl_status *st)
{
    if (v->type == YAML_MAPPING_NODE)
        return fail(st, AMTL_EUSAGE, o, key_line, "key '%s' wants %s, got a mapping",
                    k->name, type_want(k->type));
    if (v->type == YAML_SEQUENCE_NODE) {
        if (!is_list(k))
            return fail(st, AMTL_EUSAGE, o, key_line, "key '%s' wants %s, got a list",
                        k->name, type_want(k->type));
        return set_list_node(c, k, doc, v, o, st);
    }
    const char *s = NULL;
    if (scalar_text(v, k->name, o, &s, st))
        return -1;
    if (!is_list(k))
        return set_scalar(c, k, s, o, node_line(v), st);
    if (is_null(v))
        return set_list(c, k, NULL, NULL, 0, o, node_line(v), st);
    return fail(st, AMTL_EUSAGE, o, node_line(v),
                "key '%s' wants %s, got '%s' (write [%s] for one item)", k->name,
                type_want(k->type), s, s);
}

typedef struct {
    int key_line[N_KEYS];         /* where each key was set, 0 = not yet */
    int section_line[N_SECTIONS];
} seen_lines;

static int apply_mapping(amtl_config *c, yaml_document_t *doc, yaml_node_t *map,
                         const char *section, seen_lines *seen, const origin *o,
                         amtl_status *st)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        int line = node_line(kn);
        if (kn->type != YAML_SCALAR_NODE)
            return fail(st, AMTL_EUSAGE, o, line, "a key must be a name, not a %s",
                        node_kind(kn));
        const char *name = NULL;
        if (scalar_text(kn, NULL, o, &name, st))
            return -1;
        int s = find_section(name);
        if (s >= 0) {
            if (section)
                return fail(st, AMTL_EUSAGE, o, line,
                            "section '%s' cannot be nested in section '%s'", name,
                            section);
            if (seen->section_line[s])
                return fail(st, AMTL_EUSAGE, o, line,
                            "duplicate key '%s' (first on line %d)", name,
                            seen->section_line[s]);
            seen->section_line[s] = line;
            if (is_null(vn))
                continue;
            if (vn->type != YAML_MAPPING_NODE)
                return fail(st, AMTL_EUSAGE, o, line,
                            "section '%s' wants a mapping of key: value, got a %s", name,
                            node_kind(vn));
            if (apply_mapping(c, doc, vn, name, seen, o, st))
                return -1;
            continue;
        }
        const key_def *k = find_key(name);
        if (!k)
            return unknown_key(st, o, line, name, section == NULL);
        int i = (int)(k - keys);
        if (seen->key_line[i])
            return fail(st, AMTL_EUSAGE, o, line, "duplicate key '%s' (first on line %d)",
                        name, seen->key_line[i]);
        seen->key_line[i] = line;
        if (set_node(c, k, doc, vn, line, o, st))
            return -1;
    }
    return 0;
}

/* Parses text that must hold at most one YAML document; what prefixes
 * syntax errors.  On success the caller deletes doc. */
static int parse_one(const char *text, size_t len, yaml_document_t *doc,
                     const origin *o, const char *what, amtl_status *st)
{
    yaml_parser_t p;
    yaml_document_t next;
    if (!yaml_parser_initialize(&p))
        return oom(st);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, doc)) {
        yaml_fail(st, o, &p, text, len, what);
        yaml_parser_delete(&p);
        return -1;
    }
    if (!yaml_parser_load(&p, &next)) {
        yaml_fail(st, o, &p, text, len, what);
        yaml_document_delete(doc);
        yaml_parser_delete(&p);
        return -1;
    }
    yaml_parser_delete(&p);
    yaml_node_t *extra = yaml_document_get_root_node(&next);
    int line = extra ? node_line(extra) : 0;
    yaml_document_delete(&next);
    if (extra) {
        yaml_document_delete(doc);
        return fail(st, AMTL_EUSAGE, o, line, "%sa second YAML document", what);
    }
    return 0;
}

static int apply_yaml(amtl_config *c, const char *yaml, size_t len, const origin *o,
                      amtl_status *st)
{
    yaml_document_t doc;
    if (parse_one(yaml, len, &doc, o, "", st))
        return -1;
    int rc = 0;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && !is_null(root)) {
        if (root->type != YAML_MAPPING_NODE) {
            rc = fail(st, AMTL_EUSAGE, o, node_line(root),
                      "the top level wants a mapping of key: value, got a %s",
                      node_kind(root));
        } else {
            seen_lines seen;
            memset(&seen, 0, sizeof seen);
            rc = apply_mapping(c, &doc, root, NULL, &seen, o, st);
        }
    }
    yaml_document_delete(&doc);
    return rc;
}

/* A list key's value as given to --set: "[a, b]" (YAML flow sequence),
 * "a,b", one item, or "" for none. */
static int set_list_text(amtl_config *c, const key_def *k, const char *value,
                         const origin *o, amtl_status *st)
{
    size_t len = strlen(value);
    size_t b = 0, e = len;
    while (b < e && isspace((unsigned char)value[b]))
        b++;
    while (e > b && isspace((unsigned char)value[e - 1]))
        e--;
    if (b == e)
        return set_list(c, k, NULL, NULL, 0, o, 0, st);

    if (value[b] == '[') {
        char what[200];
        yaml_document_t doc;
        snprintf(what, sizeof what, "key '%s' wants a list like [a, b]: ", k->name);
        if (parse_one(value, len, &doc, o, what, st))
            return -1;
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        int rc;
        if (!root || root->type != YAML_SEQUENCE_NODE)
            rc = fail(st, AMTL_EUSAGE, o, 0, "key '%s' wants a list like [a, b]", k->name);
        else
            rc = set_list_node(c, k, &doc, root, o, st);
        yaml_document_delete(&doc);
        return rc;
    }

    /* comma-separated: copy once, cut in place */
    char *buf = malloc(e - b + 1);
    int n = 1;
    for (size_t i = b; i < e; i++)
        n += value[i] == ',';
    char **items = malloc((size_t)n * sizeof *items);
    int rc = -1;
    if (!buf || !items) {
        oom(st);
        goto out;
    }
    memcpy(buf, value + b, e - b);
    buf[e - b] = '\0';
    char *s = buf;
    for (int i = 0; i < n; i++) {
        char *comma = strchr(s, ',');
        if (comma)
            *comma = '\0';
        while (isspace((unsigned char)*s))
            s++;
        char *t = s + strlen(s);
        while (t > s && isspace((unsigned char)t[-1]))
            *--t = '\0';
        if (!*s) {
            fail(st, AMTL_EUSAGE, o, 0, "key '%s' has an empty item", k->name);
            goto out;
        }
        items[i] = s;
        s = comma ? comma + 1 : t;
    }
    rc = set_list(c, k, items, NULL, n, o, 0, st);
out:
    free(buf);
    free(items);
    return rc;
}

static int set_text(amtl_config *c, const key_def *k, const char *value, const origin *o,
                    amtl_status *st)
{
    if (is_list(k))
        return set_list_text(c, k, value, o, st);
    return set_scalar(c, k, value, o, 0, st);
}

/* ---- whole configurations ---- */

void amtl_config_free(amtl_config *c)
{
    if (!c)
        return;
    for (int i = 0; i < N_KEYS; i++) {
        const key_def *k = &keys[i];
        switch (k->type) {
        case K_STRING:
            free(*FIELD(c, k, char *));
            break;
        case K_STRLIST:
            free_strlist(FIELD(c, k, amtl_strlist));
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
    for (int i = 0; i < N_KEYS; i++) {
        origin o = {NULL, keys[i].name, keys[i].def};
        if (set_text(c, &keys[i], keys[i].def, &o, st)) {
            amtl_config_free(c);
            return -1;
        }
    }
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
      {"batch_size", "2048"},
      {"lr", "0.001"},
      {"arch_lr", "0.001"},
      {"epochs", "15"},
      {"patience", "3"},
      {"min_id_count", "0"},
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

/* Deep copy, so that a file either applies whole or not at all. */
static int config_copy(amtl_config *dst, const amtl_config *src, amtl_status *st)
{
    *dst = *src;
    for (int i = 0; i < N_KEYS; i++) {
        const key_def *k = &keys[i];
        if (k->type == K_STRING)
            *FIELD(dst, k, char *) = NULL;
        else if (k->type == K_STRLIST)
            *FIELD(dst, k, amtl_strlist) = (amtl_strlist){0};
        else if (k->type == K_FLOATLIST)
            *FIELD(dst, k, amtl_floatlist) = (amtl_floatlist){0};
        else if (k->type == K_INTLIST)
            *FIELD(dst, k, amtl_intlist) = (amtl_intlist){0};
    }
    for (int i = 0; i < N_KEYS; i++) {
        const key_def *k = &keys[i];
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
    return oom(st);
}

int amtl_config_load_string(amtl_config *c, const char *yaml, size_t len,
                            const char *source, amtl_status *st)
{
    origin o = {source ? source : "<string>", NULL, NULL};
    amtl_config tmp;
    if (config_copy(&tmp, c, st))
        return -1;
    if (apply_yaml(&tmp, yaml, len, &o, st)) {
        amtl_config_free(&tmp);
        return -1;
    }
    amtl_config_free(c);
    *c = tmp;
    return 0;
}

int amtl_config_load_file(amtl_config *c, const char *path, amtl_status *st)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return amtl_error(st, AMTL_EIO, "cannot open '%s': %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                fclose(f);
                return oom(st);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        int e = errno;
        free(buf);
        fclose(f);
        return amtl_error(st, AMTL_EIO, "cannot read '%s': %s", path, strerror(e));
    }
    fclose(f);
    int rc = amtl_config_load_string(c, buf, len, path, st);
    free(buf);
    return rc;
}

int amtl_config_set(amtl_config *c, const char *key, const char *value,
                    amtl_status *st)
{
    if (!key || !value)
        return amtl_error(st, AMTL_EUSAGE, "--set: missing key or value");
    origin o = {NULL, key, value};
    const key_def *k = find_key(key);
    if (!k)
        return unknown_key(st, &o, 0, key, 0);
    return set_text(c, k, value, &o, st);
}

int amtl_config_set_kv(amtl_config *c, const char *kv, amtl_status *st)
{
    const char *eq = kv ? strchr(kv, '=') : NULL;
    if (!eq)
        return amtl_error(st, AMTL_EUSAGE, "--set '%s': missing '=' (want key=value)",
                          kv ? kv : "");
    size_t n = (size_t)(eq - kv);
    char *key = malloc(n + 1);
    if (!key)
        return oom(st);
    memcpy(key, kv, n);
    key[n] = '\0';
    int rc = amtl_config_set(c, key, eq + 1, st);
    free(key);
    return rc;
}

/* ---- dump ---- */

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0) {
        b->oom = 1;
        return;
    }
    if (b->n + (size_t)need + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 1024;
        while (ncap < b->n + (size_t)need + 1)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    b->n += (size_t)need;
}

/* Plain when every YAML reader takes it as this very string; otherwise
 * double-quoted, also for words other readers would turn into a boolean,
 * null or number. */
static int needs_quotes(const char *s)
{
    static const char *const words[] = {"true", "false", "yes", "no", "on", "off",
                                        "y", "n", "null", "~"};
    if (!*s || strchr("-.+=", *s))
        return 1;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_./+=-", *p))
            return 1;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasecmp(s, words[i]) == 0)
            return 1;
    char *end;
    strtod(s, &end);
    return *end == '\0';
}

/* YAML's printable set; the rest, and the Unicode line breaks YAML would
 * fold, are escaped. */
static int yaml_printable(uint32_t cp)
{
    if (cp == 0x85 || cp == 0x2028 || cp == 0x2029)
        return 0;
    return (cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xd7ff) ||
           (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

static void sb_scalar(sbuf *b, const char *s)
{
    if (!needs_quotes(s)) {
        sb_printf(b, "%s", s);
        return;
    }
    sb_printf(b, "\"");
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp;
        int n = utf8_decode(p, &cp);
        if (!n) { /* unreachable for stored values; keep the dump valid YAML */
            cp = 0xfffd;
            n = 1;
        }
        if (cp == '"' || cp == '\\')
            sb_printf(b, "\\%c", (char)cp);
        else if (cp == '\n')
            sb_printf(b, "\\n");
        else if (cp == '\t')
            sb_printf(b, "\\t");
        else if (cp == '\r')
            sb_printf(b, "\\r");
        else if (yaml_printable(cp))
            sb_printf(b, "%.*s", n, (const char *)p);
        else if (cp < 0x100)
            sb_printf(b, "\\x%02x", (unsigned)cp);
        else if (cp < 0x10000)
            sb_printf(b, "\\u%04x", (unsigned)cp);
        else
            sb_printf(b, "\\U%08x", (unsigned)cp);
        p += n;
    }
    sb_printf(b, "\"");
}

/* The shortest text that reads back to exactly v (9 digits always do). */
static void sb_float(sbuf *b, float v)
{
    char buf[64];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)v);
        float back;
        if (parse_float(buf, &back) == PARSE_OK && back == v)
            break;
    }
    sb_printf(b, "%s", buf);
}

int amtl_config_dump(const amtl_config *c, char **out, amtl_status *st)
{
    sbuf b = {0};
    const char *section = NULL;
    *out = NULL;
    sb_printf(&b, "# amtl configuration\n");
    for (int i = 0; i < N_KEYS; i++) {
        const key_def *k = &keys[i];
        if (!section || strcmp(section, k->section) != 0) {
            section = k->section;
            sb_printf(&b, "\n# %s\n", section);
        }
        sb_printf(&b, "%s: ", k->name);
        switch (k->type) {
        case K_INT:
            sb_printf(&b, "%d", *CFIELD(c, k, int));
            break;
        case K_LONG:
            sb_printf(&b, "%ld", *CFIELD(c, k, long));
            break;
        case K_BOOL:
            sb_printf(&b, "%s", *CFIELD(c, k, int) ? "true" : "false");
            break;
        case K_FLOAT: {
            float v = *CFIELD(c, k, float);
            if (!isfinite(v))
                goto not_finite;
            sb_float(&b, v);
            break;
        }
        case K_STRING: {
            const char *s = *CFIELD(c, k, char *);
            sb_scalar(&b, s ? s : "");
            break;
        }
        case K_STRLIST: {
            const amtl_strlist *l = CFIELD(c, k, amtl_strlist);
            sb_printf(&b, "[");
            for (int j = 0; j < l->n; j++) {
                sb_printf(&b, "%s", j ? ", " : "");
                sb_scalar(&b, l->items[j]);
            }
            sb_printf(&b, "]");
            break;
        }
        case K_FLOATLIST: {
            const amtl_floatlist *l = CFIELD(c, k, amtl_floatlist);
            sb_printf(&b, "[");
            for (int j = 0; j < l->n; j++) {
                if (!isfinite(l->items[j]))
                    goto not_finite;
                sb_printf(&b, "%s", j ? ", " : "");
                sb_float(&b, l->items[j]);
            }
            sb_printf(&b, "]");
            break;
        }
        case K_INTLIST: {
            const amtl_intlist *l = CFIELD(c, k, amtl_intlist);
            sb_printf(&b, "[");
            for (int j = 0; j < l->n; j++)
                sb_printf(&b, "%s%d", j ? ", " : "", l->items[j]);
            sb_printf(&b, "]");
            break;
        }
        }
        sb_printf(&b, "\n");
        continue;
    not_finite:
        free(b.p);
        return amtl_error(st, AMTL_EUSAGE, "key '%s' holds a value that is not finite",
                          k->name);
    }
    if (b.oom) {
        free(b.p);
        return amtl_error(st, AMTL_ENOMEM, "out of memory writing the configuration");
    }
    *out = b.p;
    return 0;
}

/* ---- validation ---- */

static int bad(amtl_status *st, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(amtl_status *st, const char *key, const char *fmt, ...)
{
    char body[800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    return amtl_error(st, AMTL_EUSAGE, "key '%s' %s", key, body);
}

static int at_least(amtl_status *st, const char *key, long v, long min)
{
    if (v < min)
        return bad(st, key, "must be at least %ld, got %ld", min, v);
    return 0;
}

static int one_of(amtl_status *st, const char *key, const char *v, const char *const *ok)
{
    char list[256] = "";
    v = v ? v : "";
    for (int i = 0; ok[i]; i++) {
        if (strcmp(v, ok[i]) == 0)
            return 0;
        size_t n = strlen(list);
        snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", ok[i]);
    }
    return bad(st, key, "must be one of %s; got '%s'", list, v);
}

static int no_duplicates(amtl_status *st, const char *key, const amtl_strlist *l)
{
    for (int i = 0; i < l->n; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(l->items[i], l->items[j]) == 0)
                return bad(st, key, "lists '%s' twice", l->items[i]);
    return 0;
}

static int validate_ops(const amtl_config *c, amtl_status *st)
{
    if (c->ops.n < 1)
        return bad(st, "ops", "needs at least one op");
    int non_zero = 0;
    for (int i = 0; i < c->ops.n; i++) {
        amtl_status why;
        if (amtl_op_parse(c->ops.items[i], NULL, &why))
            return bad(st, "ops", "has %s", why.msg);
        non_zero += strcmp(c->ops.items[i], "Zero") != 0;
    }
    if (!non_zero)
        return bad(st, "ops", "needs an op other than Zero");
    return no_duplicates(st, "ops", &c->ops);
}

static int validate_columns(const amtl_config *c, amtl_status *st)
{
    const struct {
        const char *key;
        const amtl_strlist *l;
    } cols[] = {{"sparse", &c->sparse}, {"dense", &c->dense}, {"labels", &c->labels}};
    for (int a = 0; a < 3; a++) {
        if (no_duplicates(st, cols[a].key, cols[a].l))
            return -1;
        for (int b = 0; b < a; b++)
            for (int i = 0; i < cols[a].l->n; i++)
                for (int j = 0; j < cols[b].l->n; j++)
                    if (!strcmp(cols[a].l->items[i], cols[b].l->items[j]))
                        return bad(st, cols[a].key, "lists column '%s', which is in '%s' too",
                                   cols[a].l->items[i], cols[b].key);
    }
    return 0;
}

static int validate_tasks(const amtl_config *c, amtl_status *st)
{
    for (int i = 0; i < c->task_weights.n; i++) {
        float w = c->task_weights.items[i];
        if (!(w >= 0 && isfinite(w)))
            return bad(st, "task_weights", "item %d must be >= 0, got %g", i + 1, (double)w);
    }
    const amtl_strlist *tc = &c->task_conditions;
    for (int i = 0; i < tc->n; i++) {
        const char *s = tc->items[i], *eq = strchr(s, '=');
        if (!eq || eq == s || !eq[1] || strchr(eq + 1, '='))
            return bad(st, "task_conditions", "wants entries task=cond, got '%s'", s);
        for (int j = 0; j < i; j++) {
            const char *t = tc->items[j], *teq = strchr(t, '=');
            if (teq - t == eq - s && !strncmp(s, t, (size_t)(eq - s)))
                return bad(st, "task_conditions", "has two conditions for task '%.*s'",
                           (int)(eq - s), s);
        }
    }
    return 0;
}

static int validate_split(const amtl_config *c, amtl_status *st)
{
    if (c->split.n != 3)
        return bad(st, "split", "wants 3 fractions (train, validation, test), got %d",
                   c->split.n);
    double sum = 0;
    for (int i = 0; i < 3; i++) {
        float f = c->split.items[i];
        if (!(f >= 0 && isfinite(f)))
            return bad(st, "split", "item %d must be >= 0, got %g", i + 1, (double)f);
        sum += f;
    }
    if (!(fabs(sum - 1.0) <= 1e-6))
        return bad(st, "split", "must sum to 1, got %.9g", sum);
    return 0;
}

int amtl_config_validate(const amtl_config *c, amtl_status *st)
{
    static const char *const gate_modes[] = {"sample", "reference", NULL};
    static const char *const arch_datas[] = {"train", "val", NULL};
    static const char *const devices[] = {"cpu", "cuda", "auto", "cpu-backend", NULL};
    static const char *const vocabs[] = {"all", "train", NULL};
    static const char *const dense_transforms[] = {"none", "standardize", "log-standardize",
                                                   NULL};
    static const char *const early_stops[] = {"auc", "logloss", NULL};
    static const char *const wide_inits[] = {"zero", "linear", NULL};
    static const char *const formats[] = {"processed", "csv",      "userbehavior",
                                          "ijcai15",   "kuairand", "qb-video",
                                          NULL};

    if (at_least(st, "embedding_dim", c->embedding_dim, 1) ||
        at_least(st, "n_experts", c->n_experts, 1) ||
        at_least(st, "n_expert_layers", c->n_expert_layers, 1) ||
        at_least(st, "expert_n_layers", c->expert_n_layers, 1) ||
        at_least(st, "expert_width", c->expert_width, 1))
        return -1;
    for (int i = 0; i < c->tower_layers.n; i++)
        if (c->tower_layers.items[i] < 1)
            return bad(st, "tower_layers", "item %d must be at least 1, got %d", i + 1,
                       c->tower_layers.items[i]);
    if (!(c->dropout >= 0 && c->dropout < 1))
        return bad(st, "dropout", "must be in [0, 1), got %g", (double)c->dropout);
    if (!(c->embedding_init_std >= 0 && c->embedding_init_std <= 100))
        return bad(st, "embedding_init_std", "must be in [0, 100], got %g",
                   (double)c->embedding_init_std);
    if (validate_ops(c, st) || one_of(st, "gate_mode", c->gate_mode, gate_modes) ||
        one_of(st, "arch_data", c->arch_data, arch_datas) ||
        one_of(st, "wide_init", c->wide_init, wide_inits))
        return -1;

    if (c->batch_size < 2)
        return bad(st, "batch_size", "must be at least 2 (BatchNorm needs 2 rows), got %d",
                   c->batch_size);
    const struct {
        const char *key;
        float v;
        int positive;
    } reals[] = {
        {"lr", c->lr, 1},
        {"weight_decay", c->weight_decay, 0},
        {"arch_lr", c->arch_lr, 1},
        {"arch_weight_decay", c->arch_weight_decay, 0},
        {"arch_sparsity", c->arch_sparsity, 0},
        {"clip_grad_norm", c->clip_grad_norm, 0},
        {"embedding_l2", c->embedding_l2, 0},
    };
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        float v = reals[i].v;
        if (reals[i].positive && !(v > 0 && isfinite(v)))
            return bad(st, reals[i].key, "must be > 0, got %g", (double)v);
        if (!reals[i].positive && !(v >= 0 && isfinite(v)))
            return bad(st, reals[i].key, "must be >= 0, got %g", (double)v);
    }
    if (!(c->select_threshold > 0 && c->select_threshold < 1))
        return bad(st, "select_threshold", "must be in (0, 1), got %g", (double)c->select_threshold);
    if (at_least(st, "threads", c->threads, 0) ||
        one_of(st, "device", c->device, devices) || validate_tasks(c, st) ||
        one_of(st, "early_stop", c->early_stop, early_stops))
        return -1;

    if (at_least(st, "epochs", c->epochs, 0) ||
        at_least(st, "warmup_epochs", c->warmup_epochs, 0) ||
        at_least(st, "full_arch_train_epochs", c->full_arch_train_epochs, 0) ||
        at_least(st, "discretize_ops", c->discretize_ops, 0) ||
        at_least(st, "patience", c->patience, 1) ||
        at_least(st, "min_epochs", c->min_epochs, 0) ||
        at_least(st, "finetune_epochs", c->finetune_epochs, 0))
        return -1;

    if (one_of(st, "format", c->format, formats) || validate_columns(c, st))
        return -1;
    const char *d = c->delimiter ? c->delimiter : "";
    if (strlen(d) != 1 || strchr("\n\r\"", d[0]))
        return bad(st, "delimiter",
                   "must be one character other than a newline or '\"', got '%s'", d);
    if (validate_split(c, st) || one_of(st, "vocab", c->vocab, vocabs) ||
        at_least(st, "limit", c->limit, 0) || at_least(st, "min_count", c->min_count, 0) ||
        at_least(st, "min_id_count", c->min_id_count, 0) ||
        one_of(st, "dense_transform", c->dense_transform, dense_transforms))
        return -1;
    return 0;
}

/* ---- --help-config ---- */

void amtl_config_describe(void *file)
{
    FILE *f = file;
    enum { DEF_WIDTH = 16 };
    int kw = 0;
    for (int i = 0; i < N_KEYS; i++) {
        int n = (int)strlen(keys[i].name);
        kw = n > kw ? n : kw;
    }
    fprintf(f, "  %-*s  %-*s  %s\n", kw, "key", DEF_WIDTH, "default", "description");
    const char *section = NULL;
    for (int i = 0; i < N_KEYS; i++) {
        const key_def *k = &keys[i];
        if (!section || strcmp(section, k->section) != 0) {
            section = k->section;
            fprintf(f, "%s:\n", section);
        }
        sbuf b = {0};
        if (k->type == K_STRING)
            sb_scalar(&b, k->def);
        const char *def = b.p && !b.oom ? b.p : k->def;
        if ((int)strlen(def) <= DEF_WIDTH)
            fprintf(f, "  %-*s  %-*s  %s\n", kw, k->name, DEF_WIDTH, def, k->help);
        else /* too long for the column: the description goes below it */
            fprintf(f, "  %-*s  %s\n  %-*s  %-*s  %s\n", kw, k->name, def, kw, "",
                    DEF_WIDTH, "", k->help);
        free(b.p);
    }
}
