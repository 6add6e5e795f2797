/* prep_encode.c — a prep table written out as a dataset file: the split
 * drawn row by row, the train rows' statistics (vocabulary order, rare ids,
 * dense transform), the label encoding, and each column made from the
 * table's chunks as it is written (see prep_table.h and dataset.h).
 *
 * Passes over the chunks: the splits drawn (and written back) with every
 * count the encoding needs gathered; then each column of the file made a
 * chunk at a time, once for the content hash and once as it is written.  What is held: per sparse field, per value its first
 * appearance, its rows per split and its final id; one chunk's buffers.
 */
#include "data/prep_table.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/progress.h"
#include "base/rng.h"
#include "data/dataset.h"
#include "data/dataset_summary.h"
#include "format/strbuf.h"

#ifndef AMTL_VERSION
#define AMTL_VERSION "0"
#endif

static int split_fractions(const amtl_config *cfg, double fr[3], amtl_status *st)
{
    fr[0] = 0.8;
    fr[1] = 0.1;
    fr[2] = 0.1;
    if (cfg->split.n == 0)
        return 0;
    if (cfg->split.n != 3)
        return amtl_error(st, AMTL_EUSAGE,
                          "split needs three fractions (train, val, test), not %d",
                          cfg->split.n);
    double sum = 0;
    for (int i = 0; i < 3; i++) {
        fr[i] = cfg->split.items[i];
        if (!(fr[i] >= 0) || !isfinite(fr[i]))
            return amtl_error(st, AMTL_EUSAGE, "split fraction %g is not >= 0", fr[i]);
        sum += fr[i];
    }
    if (!(sum > 0))
        return amtl_error(st, AMTL_EUSAGE, "split fractions sum to 0");
    for (int i = 0; i < 3; i++)
        fr[i] /= sum;
    return 0;
}

/* ---- the split, row by row ----------------------------------------------- */

/* Sequential sampling of exact split sizes: each row draws its split with
 * probability (rows the split still takes) / (rows left). */
typedef struct {
    amtl_rng rng;
    int64_t left[3];
} sampler;

static void sampler_init(sampler *sm, const amtl_rng *root, uint64_t stream, int64_t m,
                         const double fr[3])
{
    amtl_rng_fork(&sm->rng, root, stream);
    int64_t n_train = llround((double)m * fr[0]);
    int64_t n_val = llround((double)m * fr[1]);
    if (n_train > m)
        n_train = m;
    if (n_val > m - n_train)
        n_val = m - n_train;
    sm->left[0] = n_train;
    sm->left[1] = n_val;
    sm->left[2] = m - n_train - n_val;
}

static uint8_t sampler_draw(sampler *sm)
{
    uint64_t a = (uint64_t)sm->left[0], b = (uint64_t)sm->left[1];
    uint64_t u = amtl_rng_below(&sm->rng, a + b + (uint64_t)sm->left[2]);
    int s = u < a ? AMTL_SPLIT_TRAIN : u < a + b ? AMTL_SPLIT_VAL : AMTL_SPLIT_TEST;
    sm->left[s]--;
    return (uint8_t)s;
}

enum { DENSE_NONE, DENSE_STANDARDIZE, DENSE_LOG_STANDARDIZE };

static int dense_mode(const amtl_config *cfg, int *mode, amtl_status *st)
{
    const char *m = cfg->dense_transform && cfg->dense_transform[0] ? cfg->dense_transform
                                                                    : "none";
    if (!strcmp(m, "none"))
        *mode = DENSE_NONE;
    else if (!strcmp(m, "standardize"))
        *mode = DENSE_STANDARDIZE;
    else if (!strcmp(m, "log-standardize"))
        *mode = DENSE_LOG_STANDARDIZE;
    else
        return amtl_error(st, AMTL_EUSAGE,
                          "dense_transform must be none, standardize or log-standardize, "
                          "not '%s'", m);
    return 0;
}

/* sign(x) log(1 + |x|): heavy tails (money, counts) shrink, 0 stays 0. */
static double signed_log1p(double x)
{
    return x < 0 ? -log1p(-x) : log1p(x);
}

/* ---- what the passes gather ------------------------------------------------ */

#define KEY_NONE INT64_MAX
#define KEY(s, pos) ((int64_t)(s) << 40 | (pos)) /* rows < 2^31 */

typedef struct {
    int64_t *key;     /* [n+1] first appearance in output order: KEY(split, row in split) */
    uint32_t *occ;    /* [n+1][3] rows holding the value, per split */
    int32_t *remap;   /* [n+1] provisional value -> final id */
    int64_t empty[3]; /* rows with the empty token, per split */
} field_stats;

typedef struct prep_state prep_state;

typedef struct {
    prep_state *ps;
    int split, c;
} column_fill;

struct prep_state {
    amtl_prep_table *t;
    int C;              /* N + D + T */
    int dmode;
    int64_t count[3];   /* rows per split */
    field_stats *fs;    /* [N] */
    double *mean, *sd;  /* [D] */
    int64_t *vocab, *positives, *id0; /* [N], [T][3], [N][3] */
    uint8_t *tags;      /* a chunk's split column */
    int64_t *pos;       /* a chunk's rows' positions in their splits */
    void *col, *out;    /* a chunk's column as read, and as made */
    column_fill *fills; /* [3][C] */
    amtl_progress prog; /* chunk passes done, of 1 + 2·3·C (writing to a file) */
    int64_t passes;
};

/* One chunk of a pass done. */
static void tick(prep_state *ps)
{
    if (ps->prog.enabled)
        amtl_progress_update(&ps->prog, ++ps->passes, NULL);
}

static void state_free(prep_state *ps)
{
    for (int f = 0; ps->fs && f < ps->t->N; f++) {
        free(ps->fs[f].key);
        free(ps->fs[f].occ);
        free(ps->fs[f].remap);
    }
    free(ps->fs);
    free(ps->mean);
    free(ps->sd);
    free(ps->vocab);
    free(ps->positives);
    free(ps->id0);
    free(ps->tags);
    free(ps->pos);
    free(ps->col);
    free(ps->out);
    free(ps->fills);
    memset(ps, 0, sizeof *ps);
}

static int state_init(prep_state *ps, amtl_prep_table *t, int dmode, amtl_status *st)
{
    memset(ps, 0, sizeof *ps);
    ps->t = t;
    ps->C = t->N + t->D + t->T;
    ps->dmode = dmode;
    size_t R = (size_t)t->chunk, N = (size_t)t->N + 1, D = (size_t)t->D + 1;
    ps->fs = calloc(N, sizeof *ps->fs);
    ps->mean = calloc(D, sizeof *ps->mean);
    ps->sd = calloc(D, sizeof *ps->sd);
    ps->vocab = calloc(N, sizeof *ps->vocab);
    ps->positives = calloc(3 * (size_t)t->T + 1, sizeof *ps->positives);
    ps->id0 = calloc(3 * N, sizeof *ps->id0);
    ps->tags = malloc(R);
    ps->pos = malloc(R * sizeof *ps->pos);
    ps->col = malloc(R * 4);
    ps->out = malloc(R * 4);
    ps->fills = calloc(3 * (size_t)ps->C + 1, sizeof *ps->fills);
    int ok = ps->fs && ps->mean && ps->sd && ps->vocab && ps->positives && ps->id0 &&
             ps->tags && ps->pos && ps->col && ps->out && ps->fills;
    for (int f = 0; ok && f < t->N; f++) {
        size_t n = (size_t)t->maps[f].n + 1;
        field_stats *fs = &ps->fs[f];
        ok = (fs->key = malloc(n * sizeof *fs->key)) && (fs->occ = calloc(3 * n, sizeof *fs->occ)) &&
             (fs->remap = calloc(n, sizeof *fs->remap));
        for (size_t v = 0; ok && v < n; v++)
            fs->key[v] = KEY_NONE;
    }
    if (!ok) {
        state_free(ps);
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    }
    return 0;
}

/* ---- the passes ----------------------------------------------------------- */

/* Chunk i's splits drawn and written back; then what the encoding needs of
 * its rows: each value's first appearance and rows per split, the empty
 * tokens, the train rows' dense moments, the positives. */
static int gather_chunk(prep_state *ps, int64_t i, sampler *draw, double *m2, int64_t *n_train,
                        amtl_status *st)
{
    amtl_prep_table *t = ps->t;
    int64_t n = amtl_prep_table_chunk_rows(t, i);
    const uint8_t *mark = amtl_prep_table_column(t, i, ps->C, ps->tags, st);
    if (!mark)
        return -1;
    uint8_t *tag = ps->tags;
    for (int64_t r = 0; r < n; r++) {
        uint8_t s = mark[r];
        if (s == AMTL_PREP_AUTO)
            s = sampler_draw(&draw[0]);
        else if (s == AMTL_PREP_AUTO_TRAINVAL)
            s = sampler_draw(&draw[1]);
        tag[r] = s;
        ps->pos[r] = ps->count[s]++;
    }
    if (amtl_prep_table_put_split(t, i, tag, st))
        return -1;
    tick(ps);
    for (int f = 0; f < t->N; f++) {
        const int32_t *v = amtl_prep_table_column(t, i, f, ps->col, st);
        if (!v)
            return -1;
        field_stats *fs = &ps->fs[f];
        for (int64_t r = 0; r < n; r++) {
            if (!v[r]) {
                fs->empty[tag[r]]++;
                continue;
            }
            fs->occ[(size_t)v[r] * 3 + tag[r]]++;
            int64_t k = KEY(tag[r], ps->pos[r]);
            if (k < fs->key[v[r]])
                fs->key[v[r]] = k;
        }
    }
    for (int d = 0; ps->dmode != DENSE_NONE && d < t->D; d++) {
        const float *x = amtl_prep_table_column(t, i, t->N + d, ps->col, st);
        if (!x)
            return -1;
        for (int64_t r = 0; r < n; r++) {
            if (tag[r] != AMTL_SPLIT_TRAIN)
                continue;
            double v = ps->dmode == DENSE_LOG_STANDARDIZE ? signed_log1p(x[r]) : x[r];
            double delta = v - ps->mean[d]; /* Welford: no cancellation on large values */
            ps->mean[d] += delta / (double)++n_train[d];
            m2[d] += delta * (v - ps->mean[d]);
        }
    }
    for (int k = 0; k < t->T; k++) {
        const uint8_t *y = amtl_prep_table_column(t, i, t->N + t->D + k, ps->col, st);
        if (!y)
            return -1;
        for (int64_t r = 0; r < n; r++)
            ps->positives[k * 3 + tag[r]] += y[r] != 0;
    }
    return 0;
}

/* Every chunk through gather_chunk, then the dense statistics: the mean and
 * standard deviation of each column's train rows (after signed_log1p for
 * log-standardize), a constant column (or none in train) keeping a deviation
 * of 1; *stats gets one line "mean std field" per column, for the meta. */
static int gather(prep_state *ps, sampler *draw, char **stats, amtl_status *st)
{
    amtl_prep_table *t = ps->t;
    double *m2 = calloc((size_t)t->D + 1, sizeof *m2);
    int64_t *n_train = calloc((size_t)t->D + 1, sizeof *n_train);
    int rc = -1;
    *stats = NULL;
    if (!m2 || !n_train) {
        amtl_error(st, AMTL_ENOMEM, "out of memory");
        goto out;
    }
    for (int64_t i = 0, nc = amtl_prep_table_chunks(t); i < nc; i++)
        if (gather_chunk(ps, i, draw, m2, n_train, st))
            goto out;
    if (ps->dmode == DENSE_NONE) {
        rc = 0;
        goto out;
    }
    amtl_strbuf b = {0};
    for (int d = 0; d < t->D; d++) {
        double sd = n_train[d] > 0 ? sqrt(m2[d] / (double)n_train[d]) : 0;
        if (!(sd > 1e-12 * fmax(1.0, fabs(ps->mean[d]))) || !isfinite(sd))
            sd = 1;
        ps->sd[d] = sd;
        amtl_strbuf_printf(&b, "%.9g %.9g %s\n", ps->mean[d], sd, t->dense_names[d]);
    }
    if (b.failed || (!b.data && !(b.data = calloc(1, 1)))) {
        amtl_strbuf_free(&b);
        amtl_error(st, AMTL_ENOMEM, "out of memory");
        goto out;
    }
    *stats = b.data;
    rc = 0;
out:
    free(m2);
    free(n_train);
    return rc;
}

typedef struct {
    int64_t key;
    int32_t v;
} first_seen;

static int cmp_first_seen(const void *a, const void *b)
{
    int64_t x = ((const first_seen *)a)->key, y = ((const first_seen *)b)->key;
    return (x > y) - (x < y);
}

/* Field f's final ids: the values that get one (with vocab train only those
 * in train rows, with min_id_count > 1 only those in at least that many
 * train rows, otherwise all) numbered 1.. in order of first appearance in
 * the output, every other value 0; its rows with id 0 per split; and its
 * vocabulary blob (one token a line, after a first empty line for id 0). */
static int encode_field(prep_state *ps, int f, int train_only, int min_id_count,
                        uint8_t **blob, size_t *blob_len, amtl_status *st)
{
    const amtl_strmap *m = &ps->t->maps[f];
    field_stats *fs = &ps->fs[f];
    first_seen *order = malloc(sizeof *order * ((size_t)m->n + 1));
    if (!order)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    int32_t next = 0;
    for (int32_t v = 1; v <= m->n; v++) {
        const uint32_t *o = fs->occ + (size_t)v * 3;
        int keep = o[0] + o[1] + o[2] > 0 && (!train_only || o[AMTL_SPLIT_TRAIN] > 0) &&
                   (min_id_count <= 1 || o[AMTL_SPLIT_TRAIN] >= (uint32_t)min_id_count);
        if (keep)
            order[next++] = (first_seen){fs->key[v], v};
    }
    qsort(order, (size_t)next, sizeof *order, cmp_first_seen);
    for (int s = 0; s < 3; s++)
        ps->id0[f * 3 + s] = fs->empty[s];
    for (int32_t id = 0; id < next; id++)
        fs->remap[order[id].v] = id + 1;
    for (int32_t v = 1; v <= m->n; v++)
        for (int s = 0; !fs->remap[v] && s < 3; s++)
            ps->id0[f * 3 + s] += fs->occ[(size_t)v * 3 + s];
    ps->vocab[f] = next + 1;

    size_t len = 1;
    for (int32_t id = 0; id < next; id++) {
        size_t kl;
        amtl_strmap_key(m, order[id].v - 1, &kl);
        len += kl + 1;
    }
    uint8_t *b = malloc(len);
    if (!b) {
        free(order);
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    }
    size_t p = 0;
    b[p++] = '\n';
    for (int32_t id = 0; id < next; id++) {
        size_t kl;
        const char *k = amtl_strmap_key(m, order[id].v - 1, &kl);
        for (size_t j = 0; j < kl; j++) /* one token a line */
            b[p++] = (k[j] == '\n' || k[j] == '\r') ? ' ' : (uint8_t)k[j];
        b[p++] = '\n';
    }
    free(order);
    free(fs->key);
    free(fs->occ);
    fs->key = NULL;
    fs->occ = NULL;
    *blob = b;
    *blob_len = len;
    return 0;
}

/* The bytes of column c of one split, made from the chunks: final ids,
 * transformed dense values, labels as 0.0 and 1.0. */
static int fill_column(void *ctx, amtl_put_fn put, void *put_ctx, amtl_status *st)
{
    const column_fill *cf = ctx;
    prep_state *ps = cf->ps;
    const amtl_prep_table *t = ps->t;
    int c = cf->c;
    uint8_t s = (uint8_t)cf->split;
    for (int64_t i = 0, nc = amtl_prep_table_chunks(t); i < nc; i++) {
        int64_t n = amtl_prep_table_chunk_rows(t, i), m = 0;
        const uint8_t *tag = amtl_prep_table_column(t, i, ps->C, ps->tags, st);
        const void *in = tag ? amtl_prep_table_column(t, i, c, ps->col, st) : NULL;
        if (!in)
            return -1;
        if (c < t->N) {
            const int32_t *v = in, *remap = ps->fs[c].remap;
            int32_t *o = ps->out;
            for (int64_t r = 0; r < n; r++)
                if (tag[r] == s)
                    o[m++] = remap[v[r]];
        } else if (c < t->N + t->D) {
            const float *x = in;
            float *o = ps->out;
            int d = c - t->N, mode = ps->dmode;
            for (int64_t r = 0; r < n; r++) {
                if (tag[r] != s)
                    continue;
                if (mode == DENSE_NONE) {
                    o[m++] = x[r];
                    continue;
                }
                double v = mode == DENSE_LOG_STANDARDIZE ? signed_log1p(x[r]) : x[r];
                o[m++] = (float)((v - ps->mean[d]) / ps->sd[d]);
            }
        } else {
            const uint8_t *y = in;
            float *o = ps->out;
            for (int64_t r = 0; r < n; r++)
                if (tag[r] == s)
                    o[m++] = (float)y[r];
        }
        if (m && put(put_ctx, ps->out, (size_t)m * 4, st))
            return -1;
        tick(ps);
    }
    return 0;
}

/* ---- the file ------------------------------------------------------------- */

/* The columns of f, split by split (sparse, dense, labels: amtl-dataset(5)'s
 * order), as streamed tensors over ps. */
static int add_columns(prep_state *ps, amtl_file *f, amtl_status *st)
{
    static const char *const kinds[3] = {"sparse", "dense", "label"};
    const amtl_prep_table *t = ps->t;
    for (int s = 0; s < AMTL_N_SPLITS; s++)
        for (int c = 0; c < ps->C; c++) {
            int kind = c < t->N ? 0 : c < t->N + t->D ? 1 : 2;
            const char *name = kind == 0   ? t->sparse_names[c]
                               : kind == 1 ? t->dense_names[c - t->N]
                                           : t->label_names[c - t->N - t->D];
            char tname[1100];
            snprintf(tname, sizeof tname, "%s.%s.%s", amtl_split_name(s), kinds[kind], name);
            column_fill *cf = &ps->fills[s * ps->C + c];
            *cf = (column_fill){ps, s, c};
            int64_t shape[1] = {ps->count[s]};
            if (!amtl_file_add_stream(f, tname, kind == 0 ? AMTL_I32 : AMTL_F32, 1, shape,
                                      fill_column, cf, st))
                return -1;
        }
    return 0;
}

/* The meta of amtl-dataset(5), the summary --info shows among it. */
static int add_meta(prep_state *ps, const amtl_config *cfg, const char *vocab_mode,
                    const char *stats, amtl_file *f, amtl_status *st)
{
    const amtl_prep_table *t = ps->t;
    char *names[3] = {amtl_dataset_join_names(t->sparse_names, t->N),
                      amtl_dataset_join_names(t->dense_names, t->D),
                      amtl_dataset_join_names(t->label_names, t->T)};
    char *yaml = NULL;
    uint64_t hash;
    int rc = -1;
    if (!names[0] || !names[1] || !names[2]) {
        amtl_error(st, AMTL_ENOMEM, "out of memory");
        goto out;
    }
    if (amtl_config_dump(cfg, &yaml, st) || amtl_dataset_content_hash(f, &hash, st))
        goto out;
    if (amtl_file_set_meta(f, "sparse_fields", names[0], st) ||
        amtl_file_set_meta(f, "dense_fields", names[1], st) ||
        amtl_file_set_meta(f, "labels", names[2], st) ||
        amtl_file_set_metaf(f, st, "rows.train", "%lld", (long long)ps->count[0]) ||
        amtl_file_set_metaf(f, st, "rows.val", "%lld", (long long)ps->count[1]) ||
        amtl_file_set_metaf(f, st, "rows.test", "%lld", (long long)ps->count[2]) ||
        amtl_file_set_meta(f, "source", t->source ? t->source : "", st) ||
        amtl_file_set_metaf(f, st, "content_hash", "%016llx", (unsigned long long)hash) ||
        amtl_file_set_meta(f, "vocab_mode", vocab_mode, st) ||
        amtl_file_set_metaf(f, st, "min_id_count", "%d", cfg->min_id_count) ||
        amtl_file_set_meta(f, "dense_transform",
                           ps->dmode == DENSE_NONE ? "none" : cfg->dense_transform, st) ||
        (stats && amtl_file_set_meta(f, "dense_stats", stats, st)) ||
        amtl_file_set_meta(f, "creator", "amtl-prep " AMTL_VERSION, st) ||
        amtl_file_set_meta(f, "config", yaml, st))
        goto out;
    for (int i = 0; i < t->n_extra; i++)
        if (amtl_file_set_meta(f, t->extra[i].key, t->extra[i].value, st))
            goto out;
    /* what --info shows, readable from the header alone */
    amtl_dataset_summary sum = {.N = t->N, .T = t->T, .vocab = ps->vocab,
                                .positives = ps->positives, .id0 = ps->id0};
    rc = amtl_dataset_summary_set(f, &sum, st);
out:
    for (int i = 0; i < 3; i++)
        free(names[i]);
    free(yaml);
    return rc;
}

/* The dataset file of t into f: its columns streamed over ps (made into
 * memory with in_memory), everything else held. */
static int build(amtl_prep_table *t, const amtl_config *cfg, amtl_file *f, prep_state *ps,
                 int in_memory, amtl_status *st)
{
    double fr[3];
    amtl_file_init(f, "dataset");
    memset(ps, 0, sizeof *ps);
    const char *vocab_mode = cfg->vocab && cfg->vocab[0] ? cfg->vocab : "all";
    int train_only;
    if (!strcmp(vocab_mode, "all"))
        train_only = 0;
    else if (!strcmp(vocab_mode, "train"))
        train_only = 1;
    else
        return amtl_error(st, AMTL_EUSAGE, "vocab must be all or train, not '%s'",
                          vocab_mode);
    int dmode = DENSE_NONE;
    if (split_fractions(cfg, fr, st) || dense_mode(cfg, &dmode, st))
        return -1;
    if (t->rows == 0)
        return amtl_error(st, AMTL_EDATA, "%s: no data rows",
                          t->source ? t->source : "input");
    if (state_init(ps, t, dmode, st))
        return -1;
    /* a line on a terminal: the gather pass, then each column made twice
     * (the content hash, the file) */
    if (!in_memory)
        amtl_progress_start(&ps->prog, "encoding",
                            amtl_prep_table_chunks(t) * (1 + 6 * (int64_t)ps->C));

    /* a train file beside a test file: train and val in the ratio fr0 : fr1 */
    double tv[3] = {1, 0, 0};
    if (fr[0] + fr[1] > 0) {
        tv[0] = fr[0] / (fr[0] + fr[1]);
        tv[1] = fr[1] / (fr[0] + fr[1]);
    }
    amtl_rng rng;
    amtl_rng_seed(&rng, (uint64_t)cfg->seed);
    sampler draw[2];
    sampler_init(&draw[0], &rng, 1, t->marks[AMTL_PREP_AUTO], fr);
    sampler_init(&draw[1], &rng, 2, t->marks[AMTL_PREP_AUTO_TRAINVAL], tv);

    char *stats = NULL;
    uint8_t **blobs = calloc((size_t)t->N + 1, sizeof *blobs);
    size_t *blob_len = calloc((size_t)t->N + 1, sizeof *blob_len);
    int32_t *vocab = calloc((size_t)t->N + 1, sizeof *vocab);
    int rc = -1;
    if (!blobs || !blob_len || !vocab) {
        amtl_error(st, AMTL_ENOMEM, "out of memory");
        goto out;
    }
    if (gather(ps, draw, &stats, st))
        goto out;
    for (int k = 0; k < t->N; k++) {
        if (encode_field(ps, k, train_only, cfg->min_id_count, &blobs[k], &blob_len[k], st))
            goto out;
        vocab[k] = (int32_t)ps->vocab[k];
        amtl_strmap_free(&t->maps[k]); /* the tokens are in blobs[k] now */
    }
    if (add_columns(ps, f, st) || (in_memory && amtl_file_materialize(f, st)))
        goto out;
    int64_t shape[1] = {t->N};
    if (!amtl_file_add(f, "vocab_sizes", AMTL_I32, 1, shape, vocab, st))
        goto out;
    for (int k = 0; k < t->N; k++) {
        char name[1100];
        snprintf(name, sizeof name, "vocab.%s", t->sparse_names[k]);
        shape[0] = (int64_t)blob_len[k];
        if (!amtl_file_add(f, name, AMTL_U8, 1, shape, blobs[k], st))
            goto out;
    }
    rc = add_meta(ps, cfg, vocab_mode, stats, f, st);
out:
    for (int k = 0; blobs && k < t->N; k++)
        free(blobs[k]);
    free(blobs);
    free(blob_len);
    free(vocab);
    free(stats);
    return rc;
}

int amtl_prep_table_write(amtl_prep_table *t, const amtl_config *cfg, const char *path,
                          amtl_status *st)
{
    amtl_file f;
    prep_state ps;
    int rc = build(t, cfg, &f, &ps, 0, st);
    if (rc == 0)
        rc = amtl_file_write(&f, path, st);
    amtl_progress_finish(&ps.prog);
    amtl_file_free(&f);
    state_free(&ps);
    return rc;
}

int amtl_prep_table_to_file(amtl_prep_table *t, const amtl_config *cfg, amtl_file *f,
                            amtl_status *st)
{
    prep_state ps;
    int rc = build(t, cfg, f, &ps, 1, st);
    if (rc)
        amtl_file_free(f);
    state_free(&ps);
    return rc;
}
