/* arch_view.c — the views of an architecture file (amtl_arch_view,
 * amtl-discretize --show): text with the selection margins, JSON and
 * Graphviz dot. */
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

/* ---- views ------------------------------------------------------------------------------- */

/* The stored arch values, when present with the expected length. */
static const float *arch_values(const amtl_file *f, int64_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static const float *arch_values(const amtl_file *f, int64_t n, const char *fmt, ...)
{
    char name[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const amtl_tensor *t = amtl_file_find(f, name);
    if (!t || t->dtype != AMTL_F32 || t->ndim != 1 || t->shape[0] != n)
        return NULL;
    return t->data;
}

/* softmax(alpha)[k] of MixedOp (l, j, b), or NAN when not stored. */
static double alpha_weight(const amtl_file *f, const arch_info *a, int l, int j, int b, int k)
{
    const float *al = arch_values(f, a->P, "experts.%d.%d.blocks.%d.alpha", l, j, b);
    if (!al)
        return NAN;
    double mx = al[0], s = 0;
    for (int i = 1; i < a->P; i++)
        mx = fmax(mx, al[i]);
    for (int i = 0; i < a->P; i++)
        s += exp(al[i] - mx);
    return exp(al[k] - mx) / s;
}

static double beta_weight(const float *beta, int i)
{
    return beta ? (double)amtl_sigmoid(beta[i]) : NAN;
}

static const float *feature_beta(const amtl_file *f, const arch_info *a, int j, int inter)
{
    return arch_values(f, a->N, "feature_modules.%d.%s", j, inter ? "inter_beta" : "single_beta");
}

static const float *consumer_beta(const amtl_file *f, const arch_info *a, int c)
{
    int l = amtl_arch_consumer_layer(c, a->L, a->K);
    int i = c < (a->L - 1) * a->K ? c % a->K : c - (a->L - 1) * a->K;
    return arch_values(f, a->K, "mixed_experts.%d.%d.beta", l, i);
}

/* The layer a consumer's inputs come from: consumers of layer l read layer l. */
static void consumer_name(amtl_strbuf *o, const arch_info *a, int c)
{
    if (c < (a->L - 1) * a->K)
        amtl_strbuf_printf(o, "layer %d expert %d", c / a->K + 1, c % a->K);
    else
        amtl_strbuf_printf(o, "task %s", a->labels.v[c - (a->L - 1) * a->K]);
}

static void text_weight(amtl_strbuf *o, double w)
{
    if (!isnan(w))
        amtl_strbuf_printf(o, " (%.3f)", w);
}

/* A selection kept although sigmoid(beta) <= the export's threshold: its fallback for
 * an expert or task that would have had no input (amtl_supernet_export). */
static void text_selection(amtl_strbuf *o, double w, double threshold)
{
    text_weight(o, w);
    if (!isnan(w) && w <= threshold)
        amtl_strbuf_printf(o, " [fallback]");
}

/* The export's threshold (meta select_threshold; 0.5 before it was stored). */
static double select_threshold(const amtl_file *f)
{
    const char *s = amtl_file_meta(f, "select_threshold");
    return s ? atof(s) : 0.5;
}

/* How decided the search was: for the feature and expert selections the
 * distance |sigmoid(beta) - 0.5| of every decision, for the ops the gap
 * between the two largest softmax(alpha) weights.  n counts the decisions,
 * close those within 0.05 (a guess rather than a decision). */
typedef struct {
    double min;
    int n, close;
} margin;

static void margin_add(margin *m, double v)
{
    if (isnan(v))
        return;
    if (!m->n || v < m->min)
        m->min = v;
    m->n++;
    m->close += v < 0.05;
}

static void margins(const amtl_file *f, const arch_info *a, margin *feat, margin *exp_,
                    margin *ops)
{
    memset(feat, 0, sizeof *feat);
    memset(exp_, 0, sizeof *exp_);
    memset(ops, 0, sizeof *ops);
    for (int j = 0; j < a->K; j++)
        for (int inter = 0; inter < 2; inter++) {
            const float *beta = feature_beta(f, a, j, inter);
            for (int i = 0; beta && i < a->N; i++)
                margin_add(feat, fabs(beta_weight(beta, i) - 0.5));
        }
    for (int c = 0; c < a->C; c++) {
        const float *beta = consumer_beta(f, a, c);
        for (int i = 0; beta && i < a->K; i++)
            margin_add(exp_, fabs(beta_weight(beta, i) - 0.5));
    }
    if (a->P < 2)
        return;
    for (int l = 0; l < a->L; l++)
        for (int j = 0; j < a->K; j++)
            for (int b = 0; b < a->NL; b++) {
                double w1 = -1, w2 = -1;
                for (int k = 0; k < a->P; k++) {
                    double w = alpha_weight(f, a, l, j, b, k);
                    if (isnan(w))
                        break;
                    if (w > w1) {
                        w2 = w1;
                        w1 = w;
                    } else if (w > w2) {
                        w2 = w;
                    }
                }
                if (w2 >= 0)
                    margin_add(ops, w1 - w2);
            }
}

static void text_margin(amtl_strbuf *o, const char *what, const margin *m)
{
    if (m->n)
        amtl_strbuf_printf(o, "  %-18s smallest %.3f; %d of %d within 0.05\n", what, m->min,
                           m->close, m->n);
}

static void view_text(amtl_strbuf *o, const amtl_file *f, const arch_info *a, const int *used)
{
    const amtl_config *c = &a->cfg;
    double threshold = select_threshold(f);
    amtl_strbuf_printf(o, "architecture: %d expert layer%s x %d expert%s x %d block%s, "
                          "%d task%s, %d sparse field%s, %d dense\n",
                       a->L, a->L == 1 ? "" : "s", a->K, a->K == 1 ? "" : "s", a->NL,
                       a->NL == 1 ? "" : "s", a->T, a->T == 1 ? "" : "s", a->N,
                       a->N == 1 ? "" : "s", a->D);
    if (a->baseline)
        amtl_strbuf_printf(o, "baseline: %s\n", a->baseline);
    amtl_strbuf_printf(o, "model: embedding_dim %d, expert_width %d, tower_layers [",
                       c->embedding_dim, c->expert_width);
    for (int i = 0; i < c->tower_layers.n; i++)
        amtl_strbuf_printf(o, "%s%d", i ? ", " : "", c->tower_layers.items[i]);
    amtl_strbuf_printf(o, "], dropout %g\nops:", (double)c->dropout);
    for (int k = 0; k < a->P; k++)
        amtl_strbuf_printf(o, "%s %s", k ? "," : "", a->op[k].name);
    amtl_strbuf_printf(o, "\ntasks:");
    for (int t = 0; t < a->T; t++) {
        amtl_strbuf_printf(o, "%s %s", t ? "," : "", a->labels.v[t]);
        if (c->task_weights.n == a->T)
            amtl_strbuf_printf(o, " (weight %g)", (double)c->task_weights.items[t]);
    }

    /* baselines carry no arch values: no numbers to explain */
    int vals = 0;
    for (int i = 0; i < f->n_tensors; i++)
        vals |= strncmp(f->tensors[i].name, "arch.", 5) != 0;
    amtl_strbuf_printf(o, "\n\nexperts (op of each block%s):\n",
                       vals ? ", softmax(alpha) of the choice" : "");
    for (int l = 0; l < a->L; l++)
        for (int j = 0; j < a->K; j++) {
            amtl_strbuf_printf(o, "  layer %d expert %d:", l, j);
            for (int b = 0; b < a->NL; b++) {
                int k = a->ops[(l * a->K + j) * a->NL + b];
                amtl_strbuf_printf(o, "%s%s", b ? " -> " : " ", a->op[k].name);
                text_weight(o, alpha_weight(f, a, l, j, b, k));
            }
            amtl_strbuf_printf(o, "%s\n", used[l * a->K + j] ? "" : "  [unused]");
        }

    /* the threshold is named when the export used another than the paper's */
    char kept[64] = "";
    if (vals && threshold != 0.5)
        snprintf(kept, sizeof kept, ", kept above %g", threshold);
    amtl_strbuf_printf(o, "\nfeatures of the layer-0 experts%s%s%s:\n",
                       vals ? " (sigmoid(beta) of the choice" : "", kept, vals ? ")" : "");
    for (int j = 0; j < a->K; j++) {
        amtl_strbuf_printf(o, "  expert %d:", j);
        for (int inter = 0; inter < 2; inter++) {
            const float *sel = (inter ? a->inter : a->single) + (size_t)j * a->N;
            const float *beta = feature_beta(f, a, j, inter);
            int n = 0;
            amtl_strbuf_printf(o, "%s", inter ? "; interaction" : " single");
            for (int i = 0; i < a->N; i++)
                if (sel[i] != 0.0f) {
                    amtl_strbuf_printf(o, "%s %s", n++ ? "," : "", a->fields.v[i]);
                    text_selection(o, beta_weight(beta, i), threshold);
                }
            if (!n)
                amtl_strbuf_printf(o, " (none)");
        }
        amtl_strbuf_printf(o, "\n");
    }

    amtl_strbuf_printf(o, "\nexpert selection%s%s%s:\n",
                       vals ? " (sigmoid(beta) of the choice" : "", kept, vals ? ")" : "");
    for (int cidx = 0; cidx < a->C; cidx++) {
        int l = amtl_arch_consumer_layer(cidx, a->L, a->K);
        const float *beta = consumer_beta(f, a, cidx);
        amtl_strbuf_printf(o, "  ");
        consumer_name(o, a, cidx);
        amtl_strbuf_printf(o, " <- layer %d experts", l);
        int n = 0;
        for (int i = 0; i < a->K; i++)
            if (a->experts[(size_t)cidx * a->K + i] != 0.0f) {
                amtl_strbuf_printf(o, "%s %d", n++ ? "," : "", i);
                text_selection(o, beta_weight(beta, i), threshold);
            }
        if (!n)
            amtl_strbuf_printf(o, " (none)");
        amtl_strbuf_printf(o, "\n");
    }
    margin mf, me, mo;
    margins(f, a, &mf, &me, &mo);
    if (mf.n || me.n || mo.n) {
        amtl_strbuf_printf(o, "\ndecision margins (|sigmoid(beta) - 0.5|; ops: top-two "
                              "softmax gap):\n");
        text_margin(o, "feature selection", &mf);
        text_margin(o, "expert selection", &me);
        text_margin(o, "op choice", &mo);
    }
    const char *fb = amtl_file_meta(f, "fallbacks");
    if (fb && strcmp(fb, "0"))
        amtl_strbuf_printf(o, "fallbacks: %s (an expert or task with no selection kept "
                              "its strongest one)\n", fb);
    amtl_strbuf_printf(o, "\nchecksum: %s\n", amtl_file_checksum_text(f));
}

/* Length of the valid UTF-8 sequence at p, or 0 (overlong forms, surrogates
 * and code points past U+10FFFF are invalid). */
static void json_weight(amtl_strbuf *o, double w)
{
    if (isnan(w))
        amtl_strbuf_printf(o, "null");
    else
        amtl_strbuf_printf(o, "%.3f", w);
}

static void json_names(amtl_strbuf *o, const namelist *l)
{
    amtl_strbuf_printf(o, "[");
    for (int i = 0; i < l->n; i++) {
        amtl_strbuf_printf(o, "%s", i ? ", " : "");
        amtl_strbuf_json_str(o, l->v[i]);
    }
    amtl_strbuf_printf(o, "]");
}

static void view_json(amtl_strbuf *o, const amtl_file *f, const arch_info *a, const int *used)
{
    const amtl_config *c = &a->cfg;
    amtl_strbuf_printf(o, "{\n  \"kind\": \"architecture\",\n  \"checksum\": \"%s\",\n"
                          "  \"baseline\": ",
                       f->checksum == AMTL_CHECKSUM_VERIFIED ? "verified" : "none");
    if (a->baseline)
        amtl_strbuf_json_str(o, a->baseline);
    else
        amtl_strbuf_printf(o, "null");
    amtl_strbuf_printf(o, ",\n  \"n_expert_layers\": %d,\n  \"n_experts\": %d,\n"
                          "  \"expert_n_layers\": %d,\n  \"embedding_dim\": %d,\n"
                          "  \"expert_width\": %d,\n  \"tower_layers\": [",
                       a->L, a->K, a->NL, c->embedding_dim, c->expert_width);
    for (int i = 0; i < c->tower_layers.n; i++)
        amtl_strbuf_printf(o, "%s%d", i ? ", " : "", c->tower_layers.items[i]);
    amtl_strbuf_printf(o, "],\n  \"dropout\": %g,\n  \"ops\": [", (double)c->dropout);
    for (int k = 0; k < a->P; k++) {
        amtl_strbuf_printf(o, "%s", k ? ", " : "");
        amtl_strbuf_json_str(o, a->op[k].name);
    }
    amtl_strbuf_printf(o, "],\n  \"sparse_fields\": ");
    json_names(o, &a->fields);
    amtl_strbuf_printf(o, ",\n  \"n_dense\": %d,\n  \"labels\": ", a->D);
    json_names(o, &a->labels);
    amtl_strbuf_printf(o, ",\n  \"task_weights\": [");
    for (int t = 0; t < c->task_weights.n; t++)
        amtl_strbuf_printf(o, "%s%g", t ? ", " : "", (double)c->task_weights.items[t]);

    amtl_strbuf_printf(o, "],\n  \"experts\": [");
    for (int l = 0; l < a->L; l++)
        for (int j = 0; j < a->K; j++) {
            amtl_strbuf_printf(o, "%s\n    {\"layer\": %d, \"expert\": %d, \"used\": %s, \"blocks\": [",
                               l + j ? "," : "", l, j, used[l * a->K + j] ? "true" : "false");
            for (int b = 0; b < a->NL; b++) {
                int k = a->ops[(l * a->K + j) * a->NL + b];
                amtl_strbuf_printf(o, "%s{\"op\": ", b ? ", " : "");
                amtl_strbuf_json_str(o, a->op[k].name);
                amtl_strbuf_printf(o, ", \"index\": %d, \"weight\": ", k);
                json_weight(o, alpha_weight(f, a, l, j, b, k));
                amtl_strbuf_printf(o, "}");
            }
            amtl_strbuf_printf(o, "]");
            for (int inter = 0; l == 0 && inter < 2; inter++) {
                const float *sel = (inter ? a->inter : a->single) + (size_t)j * a->N;
                const float *beta = feature_beta(f, a, j, inter);
                int n = 0;
                amtl_strbuf_printf(o, ",\n     \"%s\": [", inter ? "interaction" : "single");
                for (int i = 0; i < a->N; i++)
                    if (sel[i] != 0.0f) {
                        amtl_strbuf_printf(o, "%s{\"field\": ", n++ ? ", " : "");
                        amtl_strbuf_json_str(o, a->fields.v[i]);
                        amtl_strbuf_printf(o, ", \"weight\": ");
                        json_weight(o, beta_weight(beta, i));
                        amtl_strbuf_printf(o, "}");
                    }
                amtl_strbuf_printf(o, "]");
            }
            amtl_strbuf_printf(o, "}");
        }

    amtl_strbuf_printf(o, "\n  ],\n  \"consumers\": [");
    for (int cidx = 0; cidx < a->C; cidx++) {
        int l = amtl_arch_consumer_layer(cidx, a->L, a->K);
        const float *beta = consumer_beta(f, a, cidx);
        amtl_strbuf_printf(o, "%s\n    {", cidx ? "," : "");
        if (cidx < (a->L - 1) * a->K) {
            amtl_strbuf_printf(o, "\"kind\": \"expert\", \"layer\": %d, \"expert\": %d",
                               l + 1, cidx % a->K);
        } else {
            int t = cidx - (a->L - 1) * a->K;
            amtl_strbuf_printf(o, "\"kind\": \"task\", \"task\": %d, \"label\": ", t);
            amtl_strbuf_json_str(o, a->labels.v[t]);
        }
        amtl_strbuf_printf(o, ", \"inputs\": [");
        int n = 0;
        for (int i = 0; i < a->K; i++)
            if (a->experts[(size_t)cidx * a->K + i] != 0.0f) {
                amtl_strbuf_printf(o, "%s{\"layer\": %d, \"expert\": %d, \"weight\": ",
                                   n++ ? ", " : "", l, i);
                json_weight(o, beta_weight(beta, i));
                amtl_strbuf_printf(o, "}");
            }
        amtl_strbuf_printf(o, "]}");
    }
    margin m[3];
    margins(f, a, &m[0], &m[1], &m[2]);
    static const char *const mk[3] = {"features", "experts", "ops"};
    amtl_strbuf_printf(o, "\n  ],\n  \"margins\": {");
    for (int i = 0; i < 3; i++) {
        amtl_strbuf_printf(o, "%s\"%s\": {\"decisions\": %d, \"smallest\": ", i ? ", " : "",
                           mk[i], m[i].n);
        json_weight(o, m[i].n ? m[i].min : NAN);
        amtl_strbuf_printf(o, ", \"within_0.05\": %d}", m[i].close);
    }
    const char *fb = amtl_file_meta(f, "fallbacks");
    amtl_strbuf_printf(o, "},\n  \"fallbacks\": %d,\n  \"select_threshold\": %g\n}\n",
                       fb ? atoi(fb) : 0, select_threshold(f));
}

/* A DOT quoted string's contents: Graphviz reads UTF-8, so other bytes
 * become U+FFFD. */
static void dot_str(amtl_strbuf *o, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int len = amtl_utf8_len(p);
        if (*p == '"' || *p == '\\')
            amtl_strbuf_printf(o, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            amtl_strbuf_printf(o, " ");
        else if (len)
            amtl_strbuf_printf(o, "%.*s", len, (const char *)p);
        else
            amtl_strbuf_printf(o, "\xef\xbf\xbd");
        p += len ? len : 1;
    }
}

static void view_dot(amtl_strbuf *o, const amtl_file *f, const arch_info *a, const int *used)
{
    static const char *const unused_style = ", style=dashed, color=gray60, fontcolor=gray60";
    amtl_strbuf_printf(o, "digraph architecture {\n  rankdir=LR;\n"
                          "  node [shape=box, fontname=\"Helvetica\"];\n"
                          "  edge [color=gray30];\n");
    amtl_strbuf_printf(o, "  // checksum: %s\n", amtl_file_checksum_text(f));
    amtl_strbuf_printf(o, "  subgraph cluster_inputs {\n    label=\"input features\";\n"
                          "    style=dashed;\n");
    for (int i = 0; i < a->N; i++) {
        amtl_strbuf_printf(o, "    f%d [shape=ellipse, label=\"", i);
        dot_str(o, a->fields.v[i]);
        amtl_strbuf_printf(o, "\"];\n");
    }
    if (a->D > 0)
        amtl_strbuf_printf(o, "    dense [shape=ellipse, label=\"dense fields (%d)\"];\n", a->D);
    amtl_strbuf_printf(o, "  }\n");

    for (int l = 0; l < a->L; l++) {
        amtl_strbuf_printf(o, "  subgraph cluster_layer%d {\n    label=\"expert layer %d\";\n"
                              "    style=rounded;\n", l, l);
        for (int j = 0; j < a->K; j++) {
            amtl_strbuf_printf(o, "    e%d_%d [label=\"expert %d\\n", l, j, j);
            for (int b = 0; b < a->NL; b++) {
                int k = a->ops[(l * a->K + j) * a->NL + b];
                dot_str(o, a->op[k].name);
                double w = alpha_weight(f, a, l, j, b, k);
                if (!isnan(w))
                    amtl_strbuf_printf(o, " (%.3f)", w);
                amtl_strbuf_printf(o, "%s", b + 1 < a->NL ? "\\n" : "");
            }
            amtl_strbuf_printf(o, "\"%s];\n", used[l * a->K + j] ? "" : unused_style);
        }
        amtl_strbuf_printf(o, "  }\n");
    }
    amtl_strbuf_printf(o, "  subgraph cluster_towers {\n    label=\"task towers\";\n"
                          "    style=dashed;\n");
    for (int t = 0; t < a->T; t++) {
        amtl_strbuf_printf(o, "    t%d [shape=doubleoctagon, label=\"", t);
        dot_str(o, a->labels.v[t]);
        amtl_strbuf_printf(o, "\"];\n");
    }
    amtl_strbuf_printf(o, "  }\n");

    /* features: solid for the embedding itself, dashed for the FM interaction */
    for (int j = 0; j < a->K; j++) {
        const char *grey = used[j] ? "" : "color=gray60";
        for (int i = 0; i < a->N; i++) {
            if (a->single[(size_t)j * a->N + i] != 0.0f)
                amtl_strbuf_printf(o, "  f%d -> e0_%d [%s];\n", i, j, grey);
            if (a->inter[(size_t)j * a->N + i] != 0.0f)
                amtl_strbuf_printf(o, "  f%d -> e0_%d [style=dashed, arrowhead=odot%s%s];\n",
                                   i, j, *grey ? ", " : "", grey);
        }
        if (a->D > 0)
            amtl_strbuf_printf(o, "  dense -> e0_%d [color=gray60];\n", j);
    }
    for (int c = 0; c < a->C; c++) {
        int l = amtl_arch_consumer_layer(c, a->L, a->K);
        int task = c >= (a->L - 1) * a->K;
        const float *beta = consumer_beta(f, a, c);
        for (int i = 0; i < a->K; i++) {
            if (a->experts[(size_t)c * a->K + i] == 0.0f)
                continue;
            if (task)
                amtl_strbuf_printf(o, "  e%d_%d -> t%d", l, i, c - (a->L - 1) * a->K);
            else
                amtl_strbuf_printf(o, "  e%d_%d -> e%d_%d", l, i, l + 1, c % a->K);
            double w = beta_weight(beta, i);
            int live = task || used[(l + 1) * a->K + c % a->K];
            amtl_strbuf_printf(o, " [");
            if (!isnan(w))
                amtl_strbuf_printf(o, "label=\"%.3f\"%s", w, live ? "" : ", ");
            amtl_strbuf_printf(o, "%s];\n", live ? "" : "color=gray60");
        }
    }
    amtl_strbuf_printf(o, "  label=\"dashed arrow: FM interaction; grey: unused\";\n}\n");
}

int amtl_arch_view(const amtl_file *arch, const char *format, amtl_strbuf *out,
                   amtl_status *st)
{
    void (*view)(amtl_strbuf *, const amtl_file *, const arch_info *, const int *);
    if (!format || !strcmp(format, "text"))
        view = view_text;
    else if (!strcmp(format, "json"))
        view = view_json;
    else if (!strcmp(format, "dot"))
        view = view_dot;
    else
        return amtl_error(st, AMTL_EUSAGE, "unknown view '%s' (expected text, json or dot)",
                          format);
    arch_info a;
    if (amtl_arch_load(&a, arch, NULL, st))
        return -1;
    int *used = malloc((size_t)a.L * a.K * sizeof *used);
    if (!used) {
        amtl_arch_info_free(&a);
        return amtl_error(st, AMTL_ENOMEM, "out of memory viewing the architecture");
    }
    amtl_arch_experts_used(&a, used);
    view(out, arch, &a, used);
    free(used);
    amtl_arch_info_free(&a);
    if (out->failed)
        return amtl_error(st, AMTL_ENOMEM, "out of memory viewing the architecture");
    return 0;
}
