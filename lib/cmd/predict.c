/* predict.c — amtl-eval --predict (see predict.h): raw CSV rows through a
 * model's vocabularies and its network, probabilities out, a batch at a
 * time. */
#include "cmd/predict.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/cross.h"
#include "data/csv.h"
#include "model/supernet.h"
#include "model/supernet_dev.h"
#include "base/pool.h"
#include "base/tensor.h"
#include "train/train.h"
#include "cmd/cli.h"

/* ---- vocabularies -------------------------------------------------------- */

int amtl_vocab_map_init(amtl_vocab_map *v, const uint8_t *blob, size_t len, int32_t vocab,
                        const char *what, amtl_status *st)
{
    memset(v, 0, sizeof *v);
    if (len == 0 || blob[len - 1] != '\n')
        return amtl_error(st, AMTL_EDATA, "%s: the vocabulary does not end with a line break",
                          what);
    int64_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += blob[i] == '\n';
    if (lines != vocab)
        return amtl_error(st, AMTL_EDATA, "%s: %lld tokens for a vocabulary of %d ids", what,
                          (long long)lines, vocab);
    if (blob[0] != '\n')
        return amtl_error(st, AMTL_EDATA, "%s: line 0 (the out-of-vocabulary id) is not empty",
                          what);
    if (amtl_strmap_init(&v->map, st))
        return -1;
    v->id = malloc(sizeof *v->id * (size_t)vocab);
    if (!v->id) {
        amtl_vocab_map_free(v);
        return amtl_error(st, AMTL_ENOMEM, "out of memory (vocabulary of %d ids)", vocab);
    }
    v->vocab = vocab;
    /* line i holds the token of id i; a repeated token (two raw values that
     * differ only in line breaks) keeps its first id */
    size_t p = 0;
    for (int32_t i = 0; i < vocab; i++) {
        const uint8_t *e = memchr(blob + p, '\n', len - p);
        size_t n = (size_t)(e - (blob + p));
        int32_t before = v->map.n;
        int32_t k = amtl_strmap_put(&v->map, blob + p, n, st);
        if (k < 0) {
            amtl_vocab_map_free(v);
            return -1;
        }
        if (v->map.n > before)
            v->id[k] = i;
        p += n + 1;
    }
    return 0;
}

void amtl_vocab_map_free(amtl_vocab_map *v)
{
    amtl_strmap_free(&v->map);
    free(v->id);
    memset(v, 0, sizeof *v);
}

int32_t amtl_vocab_map_id(const amtl_vocab_map *v, const char *tok, size_t len)
{
    if (len == 0)
        return 0;
    int32_t k;
    if (memchr(tok, '\n', len) || memchr(tok, '\r', len)) {
        char *c = malloc(len);
        if (!c)
            return -1;
        for (size_t i = 0; i < len; i++)
            c[i] = tok[i] == '\n' || tok[i] == '\r' ? ' ' : tok[i];
        k = amtl_strmap_find(&v->map, c, len);
        free(c);
    } else {
        k = amtl_strmap_find(&v->map, tok, len);
    }
    return k < 0 ? 0 : v->id[k];
}

/* ---- the scorer ---------------------------------------------------------- */

/* Rows scored at a time, at most: memory then depends neither on the input's
 * rows nor on a large batch_size the model was trained with (the network's
 * activations grow with the batch).  Evaluation uses BatchNorm's running
 * statistics, so a row's probabilities do not depend on the batch it is in. */
#define PREDICT_BATCH 4096

typedef struct {
    amtl_trainer tr;
    int have_tr;
    amtl_dataset shape;    /* the model's fields, without rows */
    amtl_config cfg;
    amtl_vocab_map *maps;  /* [N] */
    amtl_backend *be;      /* the CPU backend, fused MixedOp */
    amtl_dev *dev;         /* the device step, evaluation only */
    float *logits;         /* [T,B] */
    amtl_batch b;
    int B;
    int *tasks, n_tasks;   /* the trained tasks, written in this order */
    int *col_sparse;       /* [N] input column of each sparse field */
    int *col_dense;        /* [D] */
    amtl_crosses crosses;  /* crossed fields, made from the row (no column) */
    int *cross_field;      /* [crosses.n] each one's sparse field */
    const char **tok;      /* [N] a row's raw sparse values */
    size_t *tok_len;       /* [N] */
} scorer;

static void scorer_free(scorer *s)
{
    if (s->maps)
        for (int f = 0; f < s->shape.N; f++)
            amtl_vocab_map_free(&s->maps[f]);
    free(s->maps);
    amtl_dev_free(s->dev);
    amtl_backend_free(s->be);
    amtl_free(s->logits);
    if (s->have_tr)
        amtl_trainer_free(&s->tr);
    amtl_free(s->b.ids);
    amtl_free(s->b.dense);
    amtl_free(s->b.labels);
    free(s->tasks);
    free(s->col_sparse);
    free(s->col_dense);
    amtl_crosses_free(&s->crosses);
    free(s->cross_field);
    free(s->tok);
    free(s->tok_len);
    amtl_dataset_shape_free(&s->shape);
    amtl_config_free(&s->cfg);
}

static int scorer_open(scorer *s, const char *model, amtl_status *st)
{
    amtl_file f;
    char *yaml = NULL;
    int rc = -1;
    const char *name = strcmp(model, "-") ? model : "<stdin>";
    memset(s, 0, sizeof *s);
    if (amtl_file_read(&f, model, "model", st))
        return -1;
    if (amtl_dataset_shape(&s->shape, &f, name, st) || amtl_file_config_yaml(&f, &yaml, st) ||
        amtl_config_defaults(&s->cfg, st))
        goto out;
    if ((yaml && amtl_config_load_string(&s->cfg, yaml, strlen(yaml), name, st)) ||
        amtl_cli_env_threads(&s->cfg, st))
        goto out;
    int N = s->shape.N, D = s->shape.D, T = s->shape.T;
    s->maps = calloc((size_t)N, sizeof *s->maps);
    if (!s->maps) {
        amtl_error(st, AMTL_ENOMEM, "out of memory");
        goto out;
    }
    if (amtl_crosses_init_meta(&s->crosses, amtl_file_meta(&f, "crosses"),
                               (const char *const *)s->shape.sparse_names, N, name, st))
        goto out;
    s->cross_field = calloc((size_t)s->crosses.n + 1, sizeof *s->cross_field);
    s->tok = calloc((size_t)N + 1, sizeof *s->tok);
    s->tok_len = calloc((size_t)N + 1, sizeof *s->tok_len);
    if (!s->cross_field || !s->tok || !s->tok_len) {
        amtl_error(st, AMTL_ENOMEM, "out of memory");
        goto out;
    }
    for (int x = 0; x < s->crosses.n; x++)
        for (int fi = 0; fi < N; fi++)
            if (!strcmp(s->shape.sparse_names[fi], s->crosses.x[x].name))
                s->cross_field[x] = fi;
    for (int fi = 0; fi < N; fi++) {
        char nm[300], what[1300];
        snprintf(nm, sizeof nm, "vocab.%s", s->shape.sparse_names[fi]);
        snprintf(what, sizeof what, "%s: tensor '%s'", name, nm);
        const amtl_tensor *v = amtl_file_find(&f, nm);
        if (!v) {
            amtl_error(st, AMTL_EDATA,
                       "%s: no vocabulary for field '%s' (tensor '%s'): raw values cannot "
                       "be mapped to ids", name, s->shape.sparse_names[fi], nm);
            goto out;
        }
        if (v->dtype != AMTL_U8 || v->ndim != 1) {
            amtl_error(st, AMTL_EDATA, "%s is not a 1-d u8 tensor", what);
            goto out;
        }
        if (amtl_vocab_map_init(&s->maps[fi], v->data, amtl_tensor_nbytes(v),
                                s->shape.vocab[fi], what, st))
            goto out;
    }
    if (amtl_trainer_load_file(&s->tr, &f, name, &s->shape, &s->cfg, st))
        goto out;
    s->have_tr = 1;
    s->B = s->cfg.batch_size < PREDICT_BATCH ? s->cfg.batch_size : PREDICT_BATCH;
    s->tasks = malloc(sizeof *s->tasks * (size_t)T);
    s->col_sparse = malloc(sizeof *s->col_sparse * (size_t)N);
    s->col_dense = malloc(sizeof *s->col_dense * (size_t)(D ? D : 1));
    s->b.ids = amtl_alloc_array((size_t)s->B * N, sizeof(int32_t));
    s->b.dense = amtl_alloc_array((size_t)s->B * (D ? D : 1), sizeof(float));
    s->b.labels = amtl_alloc_array((size_t)s->B * T, sizeof(float));
    s->logits = amtl_alloc_array((size_t)s->B * T, sizeof(float));
    amtl_pool *pool = amtl_trainer_pool(&s->tr, st);
    if (!pool)
        goto out;
    s->be = amtl_backend_cpu_new(1, pool);
    if (!s->tasks || !s->col_sparse || !s->col_dense || !s->b.ids || !s->b.dense ||
        !s->b.labels || !s->logits || !s->be) {
        amtl_error(st, AMTL_ENOMEM, "out of memory");
        goto out;
    }
    memset(s->b.labels, 0, (size_t)s->B * T * sizeof(float));
    for (int t = 0; t < T; t++)
        if (s->tr.task_w[t] != 0.0f)
            s->tasks[s->n_tasks++] = t;
    if (amtl_dev_init(&s->dev, s->be, &s->tr.net, s->B, 0, st) ||
        amtl_dev_put_params(s->dev, &s->tr.net, st))
        goto out;
    rc = 0;
out:
    amtl_file_free(&f);
    free(yaml);
    return rc;
}

/* h names the field: "name", or "name:<type>" as in a processed CSV. */
static int names_field(const char *h, const char *name, const char *type)
{
    size_t n = strlen(name);
    if (strncmp(h, name, n))
        return 0;
    return h[n] == '\0' || (h[n] == ':' && !strcmp(h + n + 1, type));
}

static int map_header(scorer *s, const amtl_csv *r, amtl_status *st)
{
    const amtl_dataset *m = &s->shape;
    for (int f = 0; f < m->N; f++)
        s->col_sparse[f] = -1;
    for (int d = 0; d < m->D; d++)
        s->col_dense[d] = -1;
    for (int c = 0; c < r->n_fields; c++) {
        const char *h = amtl_csv_field(r, c);
        for (int k = 0; k < m->N + m->D; k++) {
            int sparse = k < m->N;
            const char *name = sparse ? m->sparse_names[k] : m->dense_names[k - m->N];
            int *col = sparse ? &s->col_sparse[k] : &s->col_dense[k - m->N];
            if (sparse && amtl_crosses_has(&s->crosses, name))
                continue;  /* made from its fields' columns */
            if (!names_field(h, name, sparse ? "token" : "float"))
                continue;
            if (*col >= 0)
                return amtl_csv_error(r, st, c + 1, "column '%s' repeats field '%s' of "
                                      "column %d", h, name, *col + 1);
            *col = c;
        }
    }
    for (int k = 0; k < m->N + m->D; k++) {
        int sparse = k < m->N;
        if (sparse && amtl_crosses_has(&s->crosses, m->sparse_names[k]))
            continue;
        if ((sparse ? s->col_sparse[k] : s->col_dense[k - m->N]) < 0)
            return amtl_error(st, AMTL_EDATA, "%s:%ld: no column for the model's %s field '%s'",
                              r->name, r->line, sparse ? "sparse" : "dense",
                              sparse ? m->sparse_names[k] : m->dense_names[k - m->N]);
    }
    return 0;
}

double amtl_probability(float x)
{
    if (x >= 0)
        return 1.0 / (1.0 + exp(-(double)x));
    double e = exp((double)x);
    return e / (1.0 + e);
}

/* Scores the bs rows gathered so far and writes their lines. */
static int flush_batch(scorer *s, int bs, FILE *out, amtl_status *st)
{
    if (bs == 0)
        return 0;
    s->b.B = bs;
    if (amtl_dev_batch_host(s->dev, &s->b, st) ||
        amtl_dev_forward(s->dev, &s->tr.net, 0, &s->tr.rng, s->logits, st))
        return -1;
    const float *lg = s->logits;
    for (int i = 0; i < bs; i++) {
        for (int j = 0; j < s->n_tasks; j++)
            fprintf(out, "%s%.6f", j ? "\t" : "", amtl_probability(lg[(size_t)s->tasks[j] * bs + i]));
        fputc('\n', out);
    }
    if (fflush(out) || ferror(out))
        return amtl_error(st, AMTL_EIO, "cannot write the predictions: %s",
                          strerror(errno ? errno : EIO));
    return 0;
}

int amtl_predict_run(const amtl_predict_opts *o, FILE *out, amtl_status *st)
{
    scorer s;
    amtl_csv r;
    int rc = -1;
    memset(&r, 0, sizeof r);
    if (scorer_open(&s, o->model, st))
        goto out;
    int is_stdin = !strcmp(o->input, "-");
    if (is_stdin ? amtl_csv_open_stream(&r, stdin, "<stdin>", o->delim, st)
                 : amtl_csv_open(&r, o->input, o->delim, st))
        goto out;
    int k = amtl_csv_next(&r, st);
    if (k < 0)
        goto out;
    if (k == 0) {
        amtl_error(st, AMTL_EDATA, "%s: no header line (the columns must be named)", r.name);
        goto out;
    }
    if (map_header(&s, &r, st))
        goto out;
    int ncols = r.n_fields, N = s.shape.N, D = s.shape.D, bs = 0;
    if (o->header) {
        for (int j = 0; j < s.n_tasks; j++)
            fprintf(out, "%s%s", j ? "\t" : "", s.shape.label_names[s.tasks[j]]);
        fputc('\n', out);
    }
    while ((k = amtl_csv_next(&r, st)) > 0) {
        if (r.n_fields != ncols) {
            int col = (r.n_fields < ncols ? r.n_fields : ncols) + 1;
            amtl_csv_error(&r, st, col, "expected %d fields (as the header), found %d", ncols,
                           r.n_fields);
            goto out;
        }
        for (int f = 0; f < N; f++) {
            int c = s.col_sparse[f];
            if (c < 0)
                continue;  /* a cross, below */
            s.tok[f] = amtl_csv_field(&r, c);
            s.tok_len[f] = amtl_csv_field_len(&r, c);
            int32_t id = amtl_vocab_map_id(&s.maps[f], s.tok[f], s.tok_len[f]);
            if (id < 0) {
                amtl_error(st, AMTL_ENOMEM, "out of memory");
                goto out;
            }
            s.b.ids[(size_t)bs * N + f] = id;
        }
        for (int x = 0; x < s.crosses.n; x++) {
            int f = s.cross_field[x];
            const char *v;
            size_t vlen;
            int32_t id = -1;
            if (amtl_cross_value(&s.crosses, x, s.tok, s.tok_len, &v, &vlen) == 0)
                id = amtl_vocab_map_id(&s.maps[f], v, vlen);
            if (id < 0) {
                amtl_error(st, AMTL_ENOMEM, "out of memory");
                goto out;
            }
            s.b.ids[(size_t)bs * N + f] = id;
        }
        for (int d = 0; d < D; d++) {
            int c = s.col_dense[d];
            double x;
            if (amtl_csv_parse_double(amtl_csv_field(&r, c), &x) || !isfinite((float)x)) {
                amtl_csv_error(&r, st, c + 1, "'%s' is not a number (column '%s')",
                               amtl_csv_field(&r, c), s.shape.dense_names[d]);
                goto out;
            }
            s.b.dense[(size_t)bs * D + d] = (float)x;
        }
        if (++bs == s.B) {
            if (flush_batch(&s, bs, out, st))
                goto out;
            bs = 0;
        }
    }
    if (k < 0 || flush_batch(&s, bs, out, st))
        goto out;
    if (fflush(out) || ferror(out)) {
        amtl_error(st, AMTL_EIO, "cannot write the predictions: %s",
                   strerror(errno ? errno : EIO));
        goto out;
    }
    rc = 0;
out:
    amtl_csv_close(&r);
    scorer_free(&s);
    return rc;
}
