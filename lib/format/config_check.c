/* config_check.c — validation: every value against its range and the
 * values against each other; the message names the key.
 */
#include "format/config_table.h"
#include "model/op.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

/* v strictly between 0 and 1 (a threshold on sigmoid(beta)); item > 0: the
 * key's list item of that number. */
static int open_unit(amtl_status *st, const char *key, int item, float v)
{
    if (v > 0 && v < 1)
        return 0;
    if (item > 0)
        return bad(st, key, "item %d must be in (0, 1), got %g", item, (double)v);
    return bad(st, key, "must be in (0, 1), got %g", (double)v);
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
    static const char *const devices[] = {"cpu", "cuda", "auto", "cpu-backend", "cpu-plain", NULL};
    static const char *const vocabs[] = {"all", "train", NULL};
    static const char *const dense_transforms[] = {"none", "standardize", "log-standardize",
                                                   NULL};
    static const char *const early_stops[] = {"auc", "logloss", NULL};
    static const char *const wide_inits[] = {"zero", "linear", NULL};
    static const char *const wide_trains[] = {"joint", "frozen", NULL};
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
        one_of(st, "wide_init", c->wide_init, wide_inits) ||
        one_of(st, "wide_train", c->wide_train, wide_trains))
        return -1;
    if (c->wide && !strcmp(c->wide_train, "frozen") && !strcmp(c->wide_init, "zero"))
        return bad(st, "wide_train",
                   "frozen keeps the wide part at its start, and wide_init zero starts it "
                   "at zero: set wide_init linear, or wide false");

    if (c->batch_size < 2)
        return bad(st, "batch_size", "must be at least 2 (BatchNorm needs 2 rows), got %d",
                   c->batch_size);
    if (c->epoch_batches < 0)
        return bad(st, "epoch_batches", "must be >= 0, got %d", c->epoch_batches);
    if (c->shuffle_window < 0)
        return bad(st, "shuffle_window", "must be >= 0, got %d", c->shuffle_window);
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
        {"linear_margin", c->linear_margin, 0},
    };
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        float v = reals[i].v;
        if (reals[i].positive && !(v > 0 && isfinite(v)))
            return bad(st, reals[i].key, "must be > 0, got %g", (double)v);
        if (!reals[i].positive && !(v >= 0 && isfinite(v)))
            return bad(st, reals[i].key, "must be >= 0, got %g", (double)v);
    }
    if (open_unit(st, "select_threshold", 0, c->select_threshold))
        return -1;
    for (int i = 0; i < c->export_candidates.n; i++) {
        float t = c->export_candidates.items[i];
        if (open_unit(st, "export_candidates", i + 1, t))
            return -1;
        for (int j = 0; j < i; j++)
            if (c->export_candidates.items[j] == t)
                return bad(st, "export_candidates", "item %d repeats %g", i + 1, (double)t);
    }
    if (at_least(st, "threads", c->threads, 0) ||
        one_of(st, "device", c->device, devices) || validate_tasks(c, st) ||
        one_of(st, "early_stop", c->early_stop, early_stops))
        return -1;
    /* the device step keeps its own activations: the key would do nothing there */
    if (c->recompute_hidden && (!strcmp(c->device, "cuda") || !strcmp(c->device, "cpu-plain")))
        return bad(st, "recompute_hidden", "applies to the CPU device only, not device %s",
                   c->device);

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
