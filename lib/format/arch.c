/* arch.c — the architecture file (amtl-architecture(5)): made from an
 * exported supernet or as a baseline, checked, and applied to a supernet;
 * its views (text, JSON, Graphviz DOT) are arch_view.c.
 *
 * Every reader goes through amtl_arch_load, which checks the whole file once and
 * gives the rest of the code plain arrays with known sizes. */
#include "format/arch.h"
#include "format/arch_impl.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/layers.h"

#ifndef AMTL_VERSION
#define AMTL_VERSION "unknown"
#endif

/* Sizes an architecture may claim, so index arithmetic stays in int. */
#define MAX_DIM 4096
#define MAX_NAMES 65536

/* ---- a '\n'-joined list of names ------------------------------------------------- */


void amtl_arch_names_free(namelist *l)
{
    free(l->buf);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Splits s at '\n'.  "" is the empty list; an empty name is an error. */
static int names_split(namelist *l, const char *s, const char *what, const char *key,
                       amtl_status *st)
{
    memset(l, 0, sizeof *l);
    if (!*s)
        return 0;
    size_t len = strlen(s);
    int n = 1;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\n' && ++n > MAX_NAMES)
            return amtl_error(st, AMTL_EDATA, "%s: meta '%s' lists more than %d names",
                              what, key, MAX_NAMES);
    l->buf = malloc(len + 1);
    l->v = malloc((size_t)n * sizeof *l->v);
    if (!l->buf || !l->v) {
        amtl_arch_names_free(l);
        return amtl_error(st, AMTL_ENOMEM, "out of memory reading %s", what);
    }
    memcpy(l->buf, s, len + 1);
    char *p = l->buf;
    for (;;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        if (!*p) {
            amtl_arch_names_free(l);
            return amtl_error(st, AMTL_EDATA, "%s: meta '%s' has an empty name (item %d)",
                              what, key, l->n + 1);
        }
        l->v[l->n++] = p;
        if (!nl)
            break;
        p = nl + 1;
    }
    return 0;
}

static int set_names_meta(amtl_file *f, const char *key, char *const *names, int n,
                          amtl_status *st)
{
    amtl_strbuf b = {0};
    for (int i = 0; i < n; i++)
        amtl_strbuf_printf(&b, "%s%s", i ? "\n" : "", names[i]);
    if (b.failed) {
        amtl_strbuf_free(&b);
        return amtl_error(st, AMTL_ENOMEM, "out of memory writing meta '%s'", key);
    }
    int rc = amtl_file_set_meta(f, key, b.data ? b.data : "", st);
    amtl_strbuf_free(&b);
    return rc;
}

/* ---- the checked contents of a file ------------------------------------------------ */


void amtl_arch_info_free(arch_info *a)
{
    amtl_arch_names_free(&a->fields);
    amtl_arch_names_free(&a->labels);
    amtl_config_free(&a->cfg);
}

static int check_01(const float *x, int64_t n, const char *what, const char *name,
                    int cols, amtl_status *st)
{
    for (int64_t i = 0; i < n; i++)
        if (x[i] != 0.0f && x[i] != 1.0f)
            return amtl_error(st, AMTL_EDATA, "%s: tensor '%s' [%lld, %lld] is %g, expected 0 or 1",
                              what, name, (long long)(i / cols), (long long)(i % cols),
                              (double)x[i]);
    return 0;
}

static int cfg_agrees(const char *what, const char *key, int cfg_value, const char *tensor,
                      int value, amtl_status *st)
{
    if (cfg_value == value)
        return 0;
    return amtl_error(st, AMTL_EDATA, "%s: meta 'config' has %s %d but tensor '%s' says %d",
                      what, key, cfg_value, tensor, value);
}

int amtl_arch_load(arch_info *a, const amtl_file *f, const char *what, amtl_status *st)
{
    memset(a, 0, sizeof *a);
    a->what = what = what ? what : "architecture";
    if (strcmp(f->kind, AMTL_ARCH_KIND) != 0)
        return amtl_error(st, AMTL_EDATA, "%s: is a %s file, expected an architecture", what,
                          f->kind[0] ? f->kind : "(no kind)");

    static const char *const required[] = {"config", "sparse_fields", "labels"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!amtl_file_meta(f, required[i]))
            return amtl_error(st, AMTL_EDATA, "%s: no meta '%s'", what, required[i]);
    a->baseline = amtl_file_meta(f, "baseline");

    if (amtl_config_defaults(&a->cfg, st))
        return -1;
    const char *yaml = amtl_file_meta(f, "config");
    char source[600];
    snprintf(source, sizeof source, "%s: meta 'config'", what);
    if (amtl_config_load_string(&a->cfg, yaml, strlen(yaml), source, st))
        goto fail;
    if (names_split(&a->fields, amtl_file_meta(f, "sparse_fields"), what, "sparse_fields", st) ||
        names_split(&a->labels, amtl_file_meta(f, "labels"), what, "labels", st))
        goto fail;
    a->N = a->fields.n;
    a->T = a->labels.n;
    if (a->N < 1 || a->T < 1) {
        amtl_error(st, AMTL_EDATA, "%s: meta '%s' lists no name", what,
                   a->N < 1 ? "sparse_fields" : "labels");
        goto fail;
    }
    const char *nd = amtl_file_meta(f, "n_dense");
    if (nd) {
        char *end;
        long v = strtol(nd, &end, 10);
        if (end == nd || *end || v < 0 || v > INT_MAX) {
            amtl_error(st, AMTL_EDATA, "%s: meta 'n_dense' is '%s', expected a count", what, nd);
            goto fail;
        }
        a->D = (int)v;
    }

    const amtl_tensor *t = amtl_file_get(f, what, "arch.ops", AMTL_I32, 3, NULL, st);
    if (!t)
        goto fail;
    for (int i = 0; i < 3; i++)
        if (t->shape[i] < 1 || t->shape[i] > MAX_DIM) {
            amtl_error(st, AMTL_EDATA, "%s: tensor 'arch.ops' dimension %d is %lld (1 to %d allowed)",
                       what, i, (long long)t->shape[i], MAX_DIM);
            goto fail;
        }
    a->L = (int)t->shape[0];
    a->K = (int)t->shape[1];
    a->NL = (int)t->shape[2];
    a->ops = t->data;
    if (cfg_agrees(what, "n_expert_layers", a->cfg.n_expert_layers, "arch.ops", a->L, st) ||
        cfg_agrees(what, "n_experts", a->cfg.n_experts, "arch.ops", a->K, st) ||
        cfg_agrees(what, "expert_n_layers", a->cfg.expert_n_layers, "arch.ops", a->NL, st))
        goto fail;
    a->C = (a->L - 1) * a->K + a->T;

    int64_t kn[2] = {a->K, a->N}, ck[2] = {a->C, a->K};
    if (!(t = amtl_file_get(f, what, "arch.single", AMTL_F32, 2, kn, st)))
        goto fail;
    a->single = t->data;
    if (!(t = amtl_file_get(f, what, "arch.inter", AMTL_F32, 2, kn, st)))
        goto fail;
    a->inter = t->data;
    if (!(t = amtl_file_get(f, what, "arch.experts", AMTL_F32, 2, ck, st)))
        goto fail;
    a->experts = t->data;
    if (check_01(a->single, (int64_t)a->K * a->N, what, "arch.single", a->N, st) ||
        check_01(a->inter, (int64_t)a->K * a->N, what, "arch.inter", a->N, st) ||
        check_01(a->experts, (int64_t)a->C * a->K, what, "arch.experts", a->K, st))
        goto fail;

    a->P = a->cfg.ops.n;
    if (a->P < 1 || a->P > AMTL_MAX_OPS) {
        amtl_error(st, AMTL_EDATA, "%s: meta 'config' lists %d ops (1 to %d allowed)", what,
                   a->P, AMTL_MAX_OPS);
        goto fail;
    }
    for (int k = 0; k < a->P; k++)
        if (amtl_op_parse(a->cfg.ops.items[k], &a->op[k], st)) {
            amtl_error_context(st, "%s: meta 'config': ops", what);
            goto fail;
        }
    for (int l = 0; l < a->L; l++)
        for (int j = 0; j < a->K; j++)
            for (int b = 0; b < a->NL; b++) {
                int32_t v = a->ops[(l * a->K + j) * a->NL + b];
                if (v < 0 || v >= a->P) {
                    amtl_error(st, AMTL_EDATA,
                               "%s: tensor 'arch.ops' [%d, %d, %d] is %d, not an index into "
                               "the %d ops", what, l, j, b, (int)v, a->P);
                    goto fail;
                }
            }

    /* anything else must be an arch param value: f32, one dimension */
    for (int i = 0; i < f->n_tensors; i++) {
        const amtl_named_tensor *nt = &f->tensors[i];
        if (!strncmp(nt->name, "arch.", 5))
            continue;
        if (nt->t.dtype != AMTL_F32 || nt->t.ndim != 1) {
            amtl_error(st, AMTL_EDATA,
                       "%s: tensor '%s' is not an architecture parameter (want f32, one dimension)",
                       what, nt->name);
            goto fail;
        }
        for (int64_t k = 0; k < nt->t.shape[0]; k++)
            if (!isfinite(((const float *)nt->t.data)[k])) {
                amtl_error(st, AMTL_EDATA, "%s: tensor '%s' [%lld] is not finite", what,
                           nt->name, (long long)k);
                goto fail;
            }
    }
    return 0;
fail:
    amtl_arch_info_free(a);
    return -1;
}

int amtl_arch_check(const amtl_file *arch, const char *what, amtl_status *st)
{
    arch_info a;
    if (amtl_arch_load(&a, arch, what, st))
        return -1;
    amtl_arch_info_free(&a);
    return 0;
}

int amtl_arch_read(amtl_file *f, const char *path, amtl_status *st)
{
    if (amtl_file_read(f, path, AMTL_ARCH_KIND, st))
        return -1;
    if (amtl_arch_check(f, strcmp(path, "-") ? path : "<stdin>", st)) {
        amtl_file_free(f);
        return -1;
    }
    return 0;
}

/* Consumer c: the expert layer whose experts it reads (its inputs), and
 * whether it is a task. */
int amtl_arch_consumer_layer(int c, int L, int K)
{
    return c < (L - 1) * K ? c / K : L - 1;
}

/* used[l*K + j]: expert (l, j) reaches a task through selected experts. */
void amtl_arch_experts_used(const arch_info *a, int *used)
{
    int K = a->K, L = a->L;
    for (int l = L - 1; l >= 0; l--)
        for (int j = 0; j < K; j++) {
            int u = 0;
            if (l == L - 1) {
                for (int t = 0; t < a->T; t++)
                    u |= a->experts[(size_t)((L - 1) * K + t) * K + j] != 0.0f;
            } else {
                for (int i = 0; i < K; i++)
                    u |= used[(l + 1) * K + i] &&
                         a->experts[(size_t)(l * K + i) * K + j] != 0.0f;
            }
            used[l * K + j] = u;
        }
}

/* ---- writing ------------------------------------------------------------------------- */

typedef struct {
    const amtl_config *cfg;
    char *const *fields;
    int N;
    char *const *labels;
    int T, D, L, K, NL;
    const int32_t *ops;
    const float *single, *inter, *experts;
    const char *baseline, *baseline_op;
} arch_parts;

static int write_parts(amtl_file *out, const arch_parts *p, amtl_status *st)
{
    amtl_file_init(out, AMTL_ARCH_KIND);
    char *yaml = NULL;
    if (amtl_config_dump_recorded(p->cfg, &yaml, st))
        goto fail;
    int rc = amtl_file_set_meta(out, "config", yaml, st);
    free(yaml);
    if (rc || set_names_meta(out, "sparse_fields", p->fields, p->N, st) ||
        amtl_file_set_metaf(out, st, "n_dense", "%d", p->D) ||
        set_names_meta(out, "labels", p->labels, p->T, st) ||
        amtl_file_set_meta(out, "creator", "amtl " AMTL_VERSION, st))
        goto fail;
    if (p->baseline && (amtl_file_set_meta(out, "baseline", p->baseline, st) ||
                        amtl_file_set_meta(out, "baseline_op", p->baseline_op, st)))
        goto fail;
    int C = (p->L - 1) * p->K + p->T;
    int64_t lkn[3] = {p->L, p->K, p->NL}, kn[2] = {p->K, p->N}, ck[2] = {C, p->K};
    if (!amtl_file_add(out, "arch.ops", AMTL_I32, 3, lkn, p->ops, st) ||
        !amtl_file_add(out, "arch.single", AMTL_F32, 2, kn, p->single, st) ||
        !amtl_file_add(out, "arch.inter", AMTL_F32, 2, kn, p->inter, st) ||
        !amtl_file_add(out, "arch.experts", AMTL_F32, 2, ck, p->experts, st))
        goto fail;
    return 0;
fail:
    amtl_file_free(out);
    return -1;
}

/* The net's shape must be the config's: the file stores the config as the
 * description of the tensors. */
static int net_matches_config(const amtl_supernet *net, const amtl_config *cfg,
                              amtl_status *st)
{
    const struct {
        const char *key;
        int cfg, net;
    } dims[] = {
        {"n_expert_layers", cfg->n_expert_layers, net->L},
        {"n_experts", cfg->n_experts, net->K},
        {"expert_n_layers", cfg->expert_n_layers, net->NL},
        {"embedding_dim", cfg->embedding_dim, net->E},
        {"expert_width", cfg->expert_width, net->H},
        {"tower_layers (count)", cfg->tower_layers.n, net->n_tower},
        {"ops (count)", cfg->ops.n, net->P},
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].cfg != dims[i].net)
            return amtl_error(st, AMTL_EUSAGE,
                              "the configuration has %s %d but the supernet %d", dims[i].key,
                              dims[i].cfg, dims[i].net);
    for (int k = 0; k < net->P; k++)
        if (strcmp(cfg->ops.items[k], net->ops[k].name) != 0)
            return amtl_error(st, AMTL_EUSAGE,
                              "the configuration's op %d is '%s' but the supernet's '%s'", k,
                              cfg->ops.items[k], net->ops[k].name);
    return 0;
}

int amtl_arch_from_supernet(amtl_file *out, const amtl_supernet *net,
                            const amtl_config *cfg, amtl_status *st)
{
    memset(out, 0, sizeof *out);
    int mixed = 0;
    for (int i = 0; i < net->n_mops; i++)
        mixed += net->mops[i].chosen < 0;
    if (mixed || !net->selections_fixed)
        return amtl_error(st, AMTL_EDATA,
                          "the supernet is not discrete yet (%d MixedOps still mixed%s); "
                          "export it first", mixed,
                          net->selections_fixed ? "" : ", selections open");
    if (net_matches_config(net, cfg, st))
        return -1;

    int32_t *ops = malloc((size_t)net->n_mops * sizeof *ops);
    if (!ops)
        return amtl_error(st, AMTL_ENOMEM, "out of memory writing the architecture");
    for (int i = 0; i < net->n_mops; i++)
        ops[i] = net->mops[i].chosen;
    arch_parts p = {
        .cfg = cfg, .fields = net->field_names, .N = net->N, .labels = net->label_names,
        .T = net->T, .D = net->D, .L = net->L, .K = net->K, .NL = net->NL, .ops = ops,
        .single = net->fix_single, .inter = net->fix_inter, .experts = net->fix_expert,
    };
    int rc = write_parts(out, &p, st);
    free(ops);
    if (rc)
        return -1;
    for (int i = 0; i < net->n_params; i++) {
        const amtl_param *q = &net->params[i];
        if (q->buf != AMTL_BUF_ARCH)
            continue;
        int64_t n = (int64_t)q->n;
        if (!amtl_file_add(out, q->name, AMTL_F32, 1, &n, amtl_param_ptr(net, q), st)) {
            amtl_file_free(out);
            return -1;
        }
    }
    return 0;
}

/* ---- applying ------------------------------------------------------------------------- */

static int names_agree(const char *what, const char *kind, char *const *file, int nf,
                       char *const *net, int nn, amtl_status *st)
{
    for (int i = 0; i < nf && i < nn; i++)
        if (strcmp(file[i], net[i]) != 0)
            return amtl_error(st, AMTL_EDATA,
                              "%s: %s %d is '%s' in the architecture but '%s' in the data",
                              what, kind, i + 1, file[i], net[i]);
    if (nf != nn)
        return amtl_error(st, AMTL_EDATA,
                          "%s: the architecture has %d %ss but the data %d (%s '%s' %s)",
                          what, nf, kind, nn, kind, nf > nn ? file[nn] : net[nf],
                          nf > nn ? "is not in the data" : "is not in the architecture");
    return 0;
}

int amtl_arch_apply(amtl_supernet *net, const amtl_file *arch, const char *what,
                    amtl_status *st)
{
    arch_info a;
    if (amtl_arch_load(&a, arch, what, st))
        return -1;
    what = a.what;
    int rc = -1;
    if (names_agree(what, "sparse field", a.fields.v, a.N, net->field_names, net->N, st) ||
        names_agree(what, "label", a.labels.v, a.T, net->label_names, net->T, st))
        goto out;
    if (a.L != net->L || a.K != net->K || a.NL != net->NL) {
        amtl_error(st, AMTL_EDATA,
                   "%s: the architecture has %d expert layers x %d experts x %d blocks, "
                   "the network %d x %d x %d", what, a.L, a.K, a.NL, net->L, net->K, net->NL);
        goto out;
    }
    if (a.P != net->P) {
        amtl_error(st, AMTL_EDATA, "%s: the architecture has %d candidate ops, the network %d",
                   what, a.P, net->P);
        goto out;
    }
    for (int k = 0; k < a.P; k++)
        if (strcmp(a.op[k].name, net->ops[k].name) != 0) {
            amtl_error(st, AMTL_EDATA,
                       "%s: op %d is '%s' in the architecture but '%s' in the network", what,
                       k, a.op[k].name, net->ops[k].name);
            goto out;
        }
    /* check every stored arch value before changing anything */
    for (int i = 0; i < arch->n_tensors; i++) {
        const amtl_named_tensor *nt = &arch->tensors[i];
        if (!strncmp(nt->name, "arch.", 5))
            continue;
        const amtl_param *q = amtl_supernet_find(net, nt->name);
        if (!q || q->buf != AMTL_BUF_ARCH) {
            amtl_error(st, AMTL_EDATA,
                       "%s: tensor '%s' is not an architecture parameter of this network",
                       what, nt->name);
            goto out;
        }
        if ((size_t)nt->t.shape[0] != q->n) {
            amtl_error(st, AMTL_EDATA, "%s: tensor '%s' has %lld values, the network %zu",
                       what, nt->name, (long long)nt->t.shape[0], q->n);
            goto out;
        }
    }

    for (int i = 0; i < net->n_mops; i++)
        net->mops[i].chosen = a.ops[i];
    memcpy(net->fix_single, a.single, (size_t)a.K * a.N * sizeof(float));
    memcpy(net->fix_inter, a.inter, (size_t)a.K * a.N * sizeof(float));
    memcpy(net->fix_expert, a.experts, (size_t)a.C * a.K * sizeof(float));
    for (int i = 0; i < arch->n_tensors; i++) {
        const amtl_named_tensor *nt = &arch->tensors[i];
        if (strncmp(nt->name, "arch.", 5) != 0) {
            const amtl_param *q = amtl_supernet_find(net, nt->name);
            memcpy(amtl_param_ptr(net, q), nt->t.data, q->n * sizeof(float));
        }
    }
    net->selections_fixed = 1;
    net->warmup = 0;
    amtl_supernet_update_liveness(net);
    rc = 0;
out:
    amtl_arch_info_free(&a);
    return rc;
}

/* ---- the config ------------------------------------------------------------------------- */

int amtl_arch_config(const amtl_file *arch, amtl_config *cfg, const char *what,
                     amtl_status *st)
{
    arch_info a;
    if (amtl_arch_load(&a, arch, what, st))
        return -1;
    const amtl_config *c = &a.cfg;
    amtl_strbuf y = {0};
    char *model = NULL;
    if (amtl_config_dump_section(c, "model", &model, st)) {
        amtl_arch_info_free(&a);
        return -1;
    }
    amtl_strbuf_printf(&y, "%s", model);
    free(model);
    if (c->task_weights.n > 0) {
        amtl_strbuf_printf(&y, "task_weights: [");
        for (int t = 0; t < c->task_weights.n; t++)
            amtl_strbuf_printf(&y, "%s%.9g", t ? ", " : "", (double)c->task_weights.items[t]);
        amtl_strbuf_printf(&y, "]\n");
    }
    int rc;
    if (y.failed) {
        rc = amtl_error(st, AMTL_ENOMEM, "out of memory reading %s", a.what);
    } else {
        char source[600];
        snprintf(source, sizeof source, "%s: model keys", a.what);
        rc = amtl_config_load_string(cfg, y.data, y.len, source, st);
    }
    amtl_strbuf_free(&y);
    amtl_arch_info_free(&a);
    return rc;
}

/* ---- baselines ---------------------------------------------------------------------------- */

/* A deep copy of a config through its YAML form. */
static int config_clone(amtl_config *dst, const amtl_config *src, amtl_status *st)
{
    char *yaml = NULL;
    if (amtl_config_defaults(dst, st))
        return -1;
    if (amtl_config_dump(src, &yaml, st) ||
        amtl_config_load_string(dst, yaml, strlen(yaml), "the base configuration", st)) {
        free(yaml);
        amtl_config_free(dst);
        return -1;
    }
    free(yaml);
    return 0;
}

static int set_int(amtl_config *c, const char *key, int v, amtl_status *st)
{
    char s[32];
    snprintf(s, sizeof s, "%d", v);
    return amtl_config_set(c, key, s, st);
}

/* The task of "single-task:<t>": a label name, else an index from 0. */
static int parse_task(const char *s, const amtl_dataset *ds, amtl_status *st)
{
    int t = amtl_dataset_label_index(ds, s);
    if (t >= 0)
        return t;
    char *end;
    long v = strtol(s, &end, 10);
    if (*s && !*end && v >= 0 && v < ds->T)
        return (int)v;
    amtl_strbuf b = {0};
    for (int i = 0; i < ds->T; i++)
        amtl_strbuf_printf(&b, "%s%s", i ? ", " : "", ds->label_names[i]);
    amtl_error(st, AMTL_EUSAGE,
               "single-task:%s: no such task (labels: %s; or an index 0 to %d)", s,
               b.data && !b.failed ? b.data : "?", ds->T - 1);
    amtl_strbuf_free(&b);
    return -1;
}

int amtl_arch_baseline(amtl_file *out, const char *kind, const char *op,
                       const amtl_dataset *ds, const amtl_config *base_cfg,
                       amtl_status *st)
{
    memset(out, 0, sizeof *out);
    if (!kind)
        kind = "";
    int linear = !strcmp(kind, "linear");
    int task = -1;
    if (!strncmp(kind, "single-task:", 12)) {
        if ((task = parse_task(kind + 12, ds, st)) < 0)
            return -1;
    } else if (!linear && strcmp(kind, "shared-bottom") && strcmp(kind, "mmoe") &&
               strcmp(kind, "ple")) {
        return amtl_error(st, AMTL_EUSAGE,
                          "unknown baseline '%s' (expected shared-bottom, mmoe, ple, "
                          "single-task:<task> or linear)", kind);
    }
    if (ds->N < 1 || ds->T < 1)
        return amtl_error(st, AMTL_EDATA, "the dataset has no %s",
                          ds->N < 1 ? "sparse field" : "label");

    if (!op || !*op)
        op = linear ? "Identity" : AMTL_ARCH_DEFAULT_OP;
    amtl_op_spec spec;
    if (amtl_op_parse(op, &spec, st))
        return amtl_error_context(st, "baseline %s", kind);
    if (linear && spec.kind != AMTL_OP_IDENTITY)
        return amtl_error(st, AMTL_EUSAGE, "baseline linear: the op is Identity, not '%s'", op);
    if (spec.kind == AMTL_OP_ZERO)
        return amtl_error(st, AMTL_EUSAGE, "baseline %s: the op Zero computes nothing", kind);

    int T = ds->T, N = ds->N;
    int K = 1;
    if (!strcmp(kind, "mmoe"))
        K = base_cfg->n_experts;
    else if (!strcmp(kind, "ple"))
        K = T + 1;
    if (K < 1 || K > 64)
        return amtl_error(st, AMTL_EUSAGE, "baseline %s: %d experts (1 to 64 allowed)", kind, K);

    amtl_config cfg;
    if (config_clone(&cfg, base_cfg, st))
        return -1;
    char ops[64];
    snprintf(ops, sizeof ops, "[%s]", spec.name);
    int rc = set_int(&cfg, "n_experts", K, st) || set_int(&cfg, "n_expert_layers", 1, st) ||
             amtl_config_set(&cfg, "ops", ops, st);
    /* the linear floor: per-task logistic regression on the one-hot ids and the
     * dense values.  Each id gets T weights (E = T), the expert is the exact
     * identity (H = input_dim, so the Identity op has no projection), the gate
     * of a single expert is 1, and each task's tower is one Linear(H, 1) with
     * a bias: logit_t = Σ_f <w_t,f, e_f(id)> + <v_t, dense> + b_t.  The
     * embeddings start at zero as a regression's weights do; random N(0,1)
     * rows would leave rare ids with pure noise at test time.  It is the
     * regression itself, so it has no wide part beside it. */
    if (!rc && linear)
        rc = set_int(&cfg, "embedding_dim", T, st) || set_int(&cfg, "expert_n_layers", 1, st) ||
             set_int(&cfg, "expert_width", T * (N + 1) + ds->D, st) ||
             amtl_config_set(&cfg, "embedding_init_std", "0", st) ||
             amtl_config_set(&cfg, "tower_layers", "[]", st) ||
             amtl_config_set(&cfg, "dropout", "0", st) ||
             amtl_config_set(&cfg, "wide", "false", st);
    if (!rc && task >= 0) {
        amtl_strbuf w = {0};
        amtl_strbuf_printf(&w, "[");
        for (int t = 0; t < T; t++)
            amtl_strbuf_printf(&w, "%s%d", t ? ", " : "", t == task);
        amtl_strbuf_printf(&w, "]");
        rc = w.failed ? amtl_error(st, AMTL_ENOMEM, "out of memory making a baseline")
                      : amtl_config_set(&cfg, "task_weights", w.data, st);
        amtl_strbuf_free(&w);
    }
    if (rc) {
        amtl_config_free(&cfg);
        return amtl_error_context(st, "baseline %s", kind);
    }

    int NL = cfg.expert_n_layers, C = T;
    int32_t *opsel = calloc((size_t)K * NL, sizeof *opsel);
    float *single = malloc((size_t)K * N * sizeof *single);
    float *inter = calloc((size_t)K * N, sizeof *inter);
    float *experts = calloc((size_t)C * K, sizeof *experts);
    if (!opsel || !single || !inter || !experts) {
        rc = amtl_error(st, AMTL_ENOMEM, "out of memory making a baseline");
        goto out;
    }
    for (size_t i = 0; i < (size_t)K * N; i++)
        single[i] = 1.0f;
    for (int c = 0; c < C; c++)
        for (int i = 0; i < K; i++)
            experts[c * K + i] = strcmp(kind, "ple") ? 1.0f : (float)(i == c || i == T);

    char name[300];
    if (task >= 0)
        snprintf(name, sizeof name, "single-task:%s", ds->label_names[task]);
    else
        snprintf(name, sizeof name, "%s", kind);
    arch_parts p = {
        .cfg = &cfg, .fields = ds->sparse_names, .N = N, .labels = ds->label_names, .T = T,
        .D = ds->D, .L = 1, .K = K, .NL = NL, .ops = opsel, .single = single,
        .inter = inter, .experts = experts, .baseline = name, .baseline_op = spec.name,
    };
    rc = write_parts(out, &p, st);
out:
    free(opsel);
    free(single);
    free(inter);
    free(experts);
    amtl_config_free(&cfg);
    return rc ? -1 : 0;
}
