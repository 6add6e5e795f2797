/* prep_table.c — the table every amtl-prep input is gathered into, and its
 * conversion to a dataset file: split assignment, label encoding, vocabulary
 * blobs, column tensors and meta (see prep_table.h and dataset.h); and the
 * helpers every reader uses.
 */
#include "data/prep_table.h"

#include "data/dataset_summary.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "base/rng.h"

#ifndef AMTL_VERSION
#define AMTL_VERSION "0"
#endif

static char **copy_names(int n, const char *const *names)
{
    char **out = calloc((size_t)(n > 0 ? n : 1), sizeof *out);
    if (!out)
        return NULL;
    for (int i = 0; i < n; i++)
        if (!(out[i] = strdup(names[i]))) {
            for (int j = 0; j < i; j++)
                free(out[j]);
            free(out);
            return NULL;
        }
    return out;
}

static void free_names(char **names, int n)
{
    if (!names)
        return;
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int check_names(int N, const char *const *sparse, int D,
                       const char *const *dense, int T, const char *const *labels,
                       amtl_status *st)
{
    const char *const *lists[3] = {sparse, dense, labels};
    int counts[3] = {N, D, T};
    for (int a = 0; a < 3; a++)
        for (int i = 0; i < counts[a]; i++) {
            const char *s = lists[a][i];
            if (!s[0])
                return amtl_error(st, AMTL_EDATA, "empty field name");
            if (strlen(s) > AMTL_PREP_MAX_NAME)
                return amtl_error(st, AMTL_EDATA, "field name '%.40s...' is longer than %d "
                                  "bytes", s, AMTL_PREP_MAX_NAME);
            if (strchr(s, '\n') || strchr(s, '\r'))
                return amtl_error(st, AMTL_EDATA, "field name '%s' contains a line break", s);
            for (int b = a; b < 3; b++)
                for (int j = (b == a ? i + 1 : 0); j < counts[b]; j++)
                    if (!strcmp(s, lists[b][j]))
                        return amtl_error(st, AMTL_EDATA, "duplicate field name '%s'", s);
        }
    return 0;
}

int amtl_prep_table_init(amtl_prep_table *t, int N, const char *const *sparse,
                         int D, const char *const *dense, int T,
                         const char *const *labels, amtl_status *st)
{
    memset(t, 0, sizeof *t);
    if (N < 0 || D < 0 || T < 0)
        return amtl_error(st, AMTL_EDATA, "negative field count");
    if (check_names(N, sparse, D, dense, T, labels, st))
        return -1;
    t->cap = 1024;
    t->sparse_names = copy_names(N, sparse);
    t->dense_names = copy_names(D, dense);
    t->label_names = copy_names(T, labels);
    t->maps = calloc((size_t)(N > 0 ? N : 1), sizeof *t->maps);
    t->raw = calloc((size_t)(N > 0 ? N : 1), sizeof *t->raw);
    t->dense = calloc((size_t)(D > 0 ? D : 1), sizeof *t->dense);
    t->labels = calloc((size_t)(T > 0 ? T : 1), sizeof *t->labels);
    t->split = malloc((size_t)t->cap);
    int ok = t->sparse_names && t->dense_names && t->label_names && t->maps &&
             t->raw && t->dense && t->labels && t->split;
    /* the counts are set as the parts exist, so free releases just those */
    if (ok) {
        t->N = N;
        t->D = D;
        t->T = T;
    }
    for (int f = 0; ok && f < N; f++)
        ok = (t->raw[f] = malloc(sizeof(int32_t) * (size_t)t->cap)) != NULL;
    for (int d = 0; ok && d < D; d++)
        ok = (t->dense[d] = malloc(sizeof(float) * (size_t)t->cap)) != NULL;
    for (int k = 0; ok && k < T; k++)
        ok = (t->labels[k] = malloc((size_t)t->cap)) != NULL;
    if (!ok) {
        if (!t->N) {
            free_names(t->sparse_names, N);
            free_names(t->dense_names, D);
            free_names(t->label_names, T);
            t->sparse_names = t->dense_names = t->label_names = NULL;
        }
        amtl_prep_table_free(t);
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    }
    for (int f = 0; f < N; f++)
        if (amtl_strmap_init(&t->maps[f], st)) {
            amtl_prep_table_free(t);
            return -1;
        }
    return 0;
}

void amtl_prep_table_free(amtl_prep_table *t)
{
    for (int f = 0; f < t->N; f++) {
        if (t->maps)
            amtl_strmap_free(&t->maps[f]);
        if (t->raw)
            free(t->raw[f]);
    }
    for (int d = 0; d < t->D; d++)
        if (t->dense)
            free(t->dense[d]);
    for (int k = 0; k < t->T; k++)
        if (t->labels)
            free(t->labels[k]);
    free_names(t->sparse_names, t->N);
    free_names(t->dense_names, t->D);
    free_names(t->label_names, t->T);
    free(t->maps);
    free(t->raw);
    free(t->dense);
    free(t->labels);
    free(t->split);
    free(t->source);
    for (int i = 0; i < t->n_extra; i++) {
        free(t->extra[i].key);
        free(t->extra[i].value);
    }
    free(t->extra);
    memset(t, 0, sizeof *t);
}

static int grow_rows(amtl_prep_table *t, amtl_status *st)
{
    if (t->cap >= INT32_MAX)
        return amtl_error(st, AMTL_EDATA, "more than %d rows", INT32_MAX);
    int64_t cap = t->cap * 2 < INT32_MAX ? t->cap * 2 : INT32_MAX;
    for (int f = 0; f < t->N; f++) {
        int32_t *p = realloc(t->raw[f], sizeof *p * (size_t)cap);
        if (!p)
            goto nomem;
        t->raw[f] = p;
    }
    for (int d = 0; d < t->D; d++) {
        float *p = realloc(t->dense[d], sizeof *p * (size_t)cap);
        if (!p)
            goto nomem;
        t->dense[d] = p;
    }
    for (int k = 0; k < t->T; k++) {
        uint8_t *p = realloc(t->labels[k], (size_t)cap);
        if (!p)
            goto nomem;
        t->labels[k] = p;
    }
    uint8_t *s = realloc(t->split, (size_t)cap);
    if (!s)
        goto nomem;
    t->split = s;
    t->cap = cap;
    return 0;
nomem:
    return amtl_error(st, AMTL_ENOMEM, "out of memory at %lld rows", (long long)t->rows);
}

int64_t amtl_prep_table_add_row(amtl_prep_table *t, int split, amtl_status *st)
{
    if (t->rows == t->cap && grow_rows(t, st))
        return -1;
    int64_t r = t->rows++;
    for (int f = 0; f < t->N; f++)
        t->raw[f][r] = 0;
    for (int d = 0; d < t->D; d++)
        t->dense[d][r] = 0.0f;
    for (int k = 0; k < t->T; k++)
        t->labels[k][r] = 0;
    t->split[r] = (uint8_t)split;
    return r;
}

int32_t amtl_prep_table_intern(amtl_prep_table *t, int f, const char *tok,
                               size_t len, amtl_status *st)
{
    if (len == 0)
        return 0;
    int32_t k = amtl_strmap_put(&t->maps[f], tok, len, st);
    return k < 0 ? -1 : k + 1;
}

int amtl_prep_table_set_meta(amtl_prep_table *t, const char *key,
                             const char *value, amtl_status *st)
{
    amtl_meta_kv *e = realloc(t->extra, sizeof *e * (size_t)(t->n_extra + 1));
    if (!e)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    t->extra = e;
    e[t->n_extra].key = strdup(key);
    e[t->n_extra].value = strdup(value);
    if (!e[t->n_extra].key || !e[t->n_extra].value) {
        free(e[t->n_extra].key);
        free(e[t->n_extra].value);
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    }
    t->n_extra++;
    return 0;
}

void amtl_prep_table_compact(amtl_prep_table *t, const uint8_t *keep)
{
    int64_t w = 0;
    for (int64_t r = 0; r < t->rows; r++) {
        if (!keep[r])
            continue;
        for (int f = 0; f < t->N; f++)
            t->raw[f][w] = t->raw[f][r];
        for (int d = 0; d < t->D; d++)
            t->dense[d][w] = t->dense[d][r];
        for (int k = 0; k < t->T; k++)
            t->labels[k][w] = t->labels[k][r];
        t->split[w] = t->split[r];
        w++;
    }
    t->rows = w;
}

/* ---- to file -------------------------------------------------------------- */

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

/* Draws the split of every row marked `mark` by a seeded permutation: the
 * first round(m * fr[0]) rows of the permuted order go to train, the next
 * round(m * fr[1]) to val, the rest to test. */
static int assign_splits(amtl_prep_table *t, int mark, const double fr[3],
                         amtl_rng *rng, amtl_status *st)
{
    int64_t m = 0;
    for (int64_t r = 0; r < t->rows; r++)
        m += t->split[r] == mark;
    if (m == 0)
        return 0;
    int32_t *idx = malloc(sizeof *idx * (size_t)m);
    int32_t *perm = malloc(sizeof *perm * (size_t)m);
    if (!idx || !perm) {
        free(idx);
        free(perm);
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    }
    int64_t k = 0;
    for (int64_t r = 0; r < t->rows; r++)
        if (t->split[r] == mark)
            idx[k++] = (int32_t)r;
    amtl_rng_permutation(rng, perm, (size_t)m);
    int64_t n_train = llround((double)m * fr[0]);
    int64_t n_val = llround((double)m * fr[1]);
    if (n_train > m)
        n_train = m;
    if (n_val > m - n_train)
        n_val = m - n_train;
    for (int64_t i = 0; i < m; i++)
        t->split[idx[perm[i]]] = (uint8_t)(i < n_train ? AMTL_SPLIT_TRAIN
                                           : i < n_train + n_val ? AMTL_SPLIT_VAL
                                                                 : AMTL_SPLIT_TEST);
    free(idx);
    free(perm);
    return 0;
}

static char *join_names(char **names, int n)
{
    size_t len = 1;
    for (int i = 0; i < n; i++)
        len += strlen(names[i]) + 1;
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        memcpy(p, names[i], l);
        p += l;
        if (i + 1 < n)
            *p++ = '\n';
    }
    *p = '\0';
    return s;
}

/* Label-encodes field f in place (provisional values -> final ids, given the
 * split order in `order`) and returns its vocabulary blob.  With
 * min_id_count > 1 a value seen fewer times in the train rows gets id 0
 * wherever it occurs (so a value the train rows lack always does). */
static int encode_field(amtl_prep_table *t, int f, const int32_t *order,
                        const int64_t *count, int train_only, int min_id_count,
                        int32_t *vocab_size, uint8_t **blob, size_t *blob_len,
                        amtl_status *st)
{
    const amtl_strmap *m = &t->maps[f];
    int32_t *remap = malloc(sizeof *remap * ((size_t)m->n + 1));
    int32_t *key_of = malloc(sizeof *key_of * ((size_t)m->n + 1));
    int64_t *seen = min_id_count > 1 ? calloc((size_t)m->n + 1, sizeof *seen) : NULL;
    if (!remap || !key_of || (min_id_count > 1 && !seen)) {
        free(remap);
        free(key_of);
        free(seen);
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    }
    remap[0] = 0;
    for (int32_t i = 1; i <= m->n; i++)
        remap[i] = -1;
    int32_t next = 1;
    int32_t *col = t->raw[f];
    for (int64_t i = 0; seen && i < count[AMTL_SPLIT_TRAIN]; i++)
        seen[col[order[i]]]++; /* train rows come first in order */
    int64_t pos = 0;
    for (int s = 0; s < AMTL_N_SPLITS; s++) {
        int grow = !train_only || s == AMTL_SPLIT_TRAIN;
        for (int64_t i = 0; i < count[s]; i++, pos++) {
            int32_t v = col[order[pos]];
            if (remap[v] < 0) {
                if (grow && (!seen || seen[v] >= min_id_count)) {
                    key_of[next] = v - 1;
                    remap[v] = next++;
                } else {
                    remap[v] = 0;
                }
            }
        }
    }
    for (int64_t r = 0; r < t->rows; r++)
        col[r] = remap[col[r]];
    free(remap);
    free(seen);

    size_t len = 1;
    for (int32_t id = 1; id < next; id++) {
        size_t kl;
        amtl_strmap_key(m, key_of[id], &kl);
        len += kl + 1;
    }
    uint8_t *b = malloc(len);
    if (!b) {
        free(key_of);
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    }
    size_t p = 0;
    b[p++] = '\n';
    for (int32_t id = 1; id < next; id++) {
        size_t kl;
        const char *k = amtl_strmap_key(m, key_of[id], &kl);
        for (size_t j = 0; j < kl; j++) /* one token a line */
            b[p++] = (k[j] == '\n' || k[j] == '\r') ? ' ' : (uint8_t)k[j];
        b[p++] = '\n';
    }
    free(key_of);
    *vocab_size = next;
    *blob = b;
    *blob_len = len;
    return 0;
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

/* Standardises every dense column by the mean and standard deviation of its
 * train rows (after signed_log1p for log-standardize), so that validation
 * and test tell nothing to the statistics; a constant column (or none in
 * train) keeps a deviation of 1.  *stats gets one line "mean std field" per
 * column, for the meta. */
static int transform_dense(amtl_prep_table *t, int mode, char **stats, amtl_status *st)
{
    amtl_strbuf b = {0};
    *stats = NULL;
    for (int d = 0; d < t->D; d++) {
        float *x = t->dense[d];
        double mean = 0, m2 = 0;
        int64_t n = 0;
        for (int64_t r = 0; r < t->rows; r++) {
            if (t->split[r] != AMTL_SPLIT_TRAIN)
                continue;
            double v = mode == DENSE_LOG_STANDARDIZE ? signed_log1p(x[r]) : x[r];
            double delta = v - mean; /* Welford: no cancellation on large values */
            mean += delta / (double)++n;
            m2 += delta * (v - mean);
        }
        double sd = n > 0 ? sqrt(m2 / (double)n) : 0;
        if (!(sd > 1e-12 * fmax(1.0, fabs(mean))) || !isfinite(sd))
            sd = 1;
        for (int64_t r = 0; r < t->rows; r++) {
            double v = mode == DENSE_LOG_STANDARDIZE ? signed_log1p(x[r]) : x[r];
            x[r] = (float)((v - mean) / sd);
        }
        amtl_strbuf_printf(&b, "%.9g %.9g %s\n", mean, sd, t->dense_names[d]);
    }
    if (b.failed) {
        amtl_strbuf_free(&b);
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    }
    if (!b.data && !(b.data = calloc(1, 1)))
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    *stats = b.data;
    return 0;
}

/* Adds a zeroed column <split>.<kind>.<name> of rows values; the tensor,
 * or NULL with st set. */
static amtl_tensor *add_column(amtl_file *f, const char *split, const char *kind,
                               const char *name, amtl_dtype dt, int64_t rows, amtl_status *st)
{
    size_t n = strlen(split) + strlen(kind) + strlen(name) + 3;
    char *tname = malloc(n);
    if (!tname) {
        amtl_error(st, AMTL_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(tname, n, "%s.%s.%s", split, kind, name);
    int64_t shape[1] = {rows};
    amtl_tensor *tt = amtl_file_add(f, tname, dt, 1, shape, NULL, st);
    free(tname);
    return tt;
}

/* Column c of the table (sparse fields, dense fields, labels) into its three
 * split columns of f, rows in `order`; then the table's column is freed, so
 * that the table and the file together hold one copy of the data. */
static int lay_out_column(amtl_prep_table *t, int c, const int32_t *order,
                          const int64_t *count, amtl_file *f, amtl_status *st)
{
    static const char *const kinds[3] = {"sparse", "dense", "label"};
    int kind = c < t->N ? 0 : c < t->N + t->D ? 1 : 2;
    int i = kind == 0 ? c : kind == 1 ? c - t->N : c - t->N - t->D;
    const char *name = kind == 0   ? t->sparse_names[i]
                       : kind == 1 ? t->dense_names[i]
                                   : t->label_names[i];
    const int32_t *rows = order;
    for (int s = 0; s < AMTL_N_SPLITS; s++) {
        amtl_tensor *tt = add_column(f, amtl_split_name(s), kinds[kind], name,
                                     kind == 0 ? AMTL_I32 : AMTL_F32, count[s], st);
        if (!tt)
            return -1;
        void *dst = tt->data;
        if (kind == 0)
            for (int64_t r = 0; r < count[s]; r++)
                ((int32_t *)dst)[r] = t->raw[i][rows[r]];
        else if (kind == 1)
            for (int64_t r = 0; r < count[s]; r++)
                ((float *)dst)[r] = t->dense[i][rows[r]];
        else
            for (int64_t r = 0; r < count[s]; r++)
                ((float *)dst)[r] = (float)t->labels[i][rows[r]];
        rows += count[s];
    }
    void **col = kind == 0   ? (void **)&t->raw[i]
                 : kind == 1 ? (void **)&t->dense[i]
                             : (void **)&t->labels[i];
    free(*col);
    *col = NULL;
    return 0;
}

/* The columns, added column by column (three splits each), in the order of
 * amtl-dataset(5): split by split, sparse, dense, labels. */
static int order_columns(amtl_file *f, int first, int C, amtl_status *st)
{
    amtl_named_tensor *tmp = malloc(sizeof *tmp * (size_t)(3 * C + 1));
    if (!tmp)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    for (int c = 0; c < C; c++)
        for (int s = 0; s < AMTL_N_SPLITS; s++)
            tmp[s * C + c] = f->tensors[first + c * 3 + s];
    memcpy(f->tensors + first, tmp, sizeof *tmp * (size_t)(3 * C));
    free(tmp);
    return 0;
}

int amtl_prep_table_to_file(amtl_prep_table *t, const amtl_config *cfg,
                            amtl_file *f, amtl_status *st)
{
    double fr[3];
    amtl_file_init(f, "dataset");
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

    amtl_rng rng, sub;
    amtl_rng_seed(&rng, (uint64_t)cfg->seed);
    amtl_rng_fork(&sub, &rng, 1);
    if (assign_splits(t, AMTL_PREP_AUTO, fr, &sub, st))
        return -1;
    /* a train file beside a test file: train and val in the ratio fr0 : fr1 */
    double tv[3] = {1, 0, 0};
    if (fr[0] + fr[1] > 0) {
        tv[0] = fr[0] / (fr[0] + fr[1]);
        tv[1] = fr[1] / (fr[0] + fr[1]);
    }
    amtl_rng_fork(&sub, &rng, 2);
    if (assign_splits(t, AMTL_PREP_AUTO_TRAINVAL, tv, &sub, st))
        return -1;

    /* rows grouped by split, each in input order */
    int64_t count[AMTL_N_SPLITS] = {0, 0, 0}, start[AMTL_N_SPLITS];
    for (int64_t r = 0; r < t->rows; r++)
        count[t->split[r]]++;
    start[0] = 0;
    start[1] = count[0];
    start[2] = count[0] + count[1];
    int32_t *order = malloc(sizeof *order * (size_t)(t->rows > 0 ? t->rows : 1));
    int32_t *vocab = calloc((size_t)(t->N > 0 ? t->N : 1), sizeof *vocab);
    uint8_t **blobs = calloc((size_t)(t->N > 0 ? t->N : 1), sizeof *blobs);
    size_t *blob_len = calloc((size_t)(t->N > 0 ? t->N : 1), sizeof *blob_len);
    char *names[3] = {NULL, NULL, NULL}, *yaml = NULL, *stats = NULL;
    int rc = -1;
    if (!order || !vocab || !blobs || !blob_len) {
        amtl_error(st, AMTL_ENOMEM, "out of memory");
        goto out;
    }
    if (dmode != DENSE_NONE && transform_dense(t, dmode, &stats, st))
        goto out;
    {
        int64_t fill[AMTL_N_SPLITS] = {start[0], start[1], start[2]};
        for (int64_t r = 0; r < t->rows; r++)
            order[fill[t->split[r]]++] = (int32_t)r;
    }
    for (int k = 0; k < t->N; k++) {
        if (encode_field(t, k, order, count, train_only, cfg->min_id_count, &vocab[k],
                         &blobs[k], &blob_len[k], st))
            goto out;
        amtl_strmap_free(&t->maps[k]); /* the tokens are in blobs[k] now */
    }
    {
        int first = f->n_tensors, C = t->N + t->D + t->T;
        for (int c = 0; c < C; c++)
            if (lay_out_column(t, c, order, count, f, st))
                goto out;
        if (order_columns(f, first, C, st))
            goto out;
    }
    {
        int64_t shape[1] = {t->N};
        if (!amtl_file_add(f, "vocab_sizes", AMTL_I32, 1, shape, vocab, st))
            goto out;
    }
    for (int k = 0; k < t->N; k++) {
        char name[1100];
        snprintf(name, sizeof name, "vocab.%s", t->sparse_names[k]);
        int64_t shape[1] = {(int64_t)blob_len[k]};
        if (!amtl_file_add(f, name, AMTL_U8, 1, shape, blobs[k], st))
            goto out;
    }

    names[0] = join_names(t->sparse_names, t->N);
    names[1] = join_names(t->dense_names, t->D);
    names[2] = join_names(t->label_names, t->T);
    if (!names[0] || !names[1] || !names[2]) {
        amtl_error(st, AMTL_ENOMEM, "out of memory");
        goto out;
    }
    if (amtl_config_dump(cfg, &yaml, st))
        goto out;
    if (amtl_file_set_meta(f, "sparse_fields", names[0], st) ||
        amtl_file_set_meta(f, "dense_fields", names[1], st) ||
        amtl_file_set_meta(f, "labels", names[2], st) ||
        amtl_file_set_metaf(f, st, "rows.train", "%lld", (long long)count[0]) ||
        amtl_file_set_metaf(f, st, "rows.val", "%lld", (long long)count[1]) ||
        amtl_file_set_metaf(f, st, "rows.test", "%lld", (long long)count[2]) ||
        amtl_file_set_meta(f, "source", t->source ? t->source : "", st) ||
        amtl_file_set_metaf(f, st, "content_hash", "%016llx",
                            (unsigned long long)amtl_dataset_content_hash(f)) ||
        amtl_file_set_meta(f, "vocab_mode", vocab_mode, st) ||
        amtl_file_set_metaf(f, st, "min_id_count", "%d", cfg->min_id_count) ||
        amtl_file_set_meta(f, "dense_transform",
                           dmode == DENSE_NONE ? "none" : cfg->dense_transform, st) ||
        (stats && amtl_file_set_meta(f, "dense_stats", stats, st)) ||
        amtl_file_set_meta(f, "creator", "amtl-prep " AMTL_VERSION, st) ||
        amtl_file_set_meta(f, "config", yaml, st))
        goto out;
    for (int i = 0; i < t->n_extra; i++)
        if (amtl_file_set_meta(f, t->extra[i].key, t->extra[i].value, st))
            goto out;
    /* what --info shows, readable from the header alone */
    if (amtl_dataset_summary_write(f, st))
        goto out;
    rc = 0;
out:
    if (rc)
        amtl_file_free(f);
    for (int k = 0; blobs && k < t->N; k++)
        free(blobs[k]);
    free(blobs);
    free(blob_len);
    free(vocab);
    free(order);
    for (int i = 0; i < 3; i++)
        free(names[i]);
    free(yaml);
    free(stats);
    return rc;
}

/* ---- helpers the readers share ------------------------------------------ */

const char *amtl_prep_basename(const char *path)
{
    const char *s = strrchr(path, '/');
    return s && s[1] ? s + 1 : path;
}

int amtl_prep_delimiter(const amtl_config *cfg, char *out, amtl_status *st)
{
    const char *d = cfg->delimiter;
    if (!d || !d[0] || !strcmp(d, ","))
        *out = ',';
    else if (!strcmp(d, "\\t") || !strcmp(d, "tab") || !strcmp(d, "\t"))
        *out = '\t';
    else if (strlen(d) == 1 && d[0] != '"' && d[0] != '\n' && d[0] != '\r')
        *out = d[0];
    else
        return amtl_error(st, AMTL_EUSAGE,
                          "delimiter must be one character (or \"tab\"), not '%s'", d);
    return 0;
}

/* meta "source": the format and the inputs' base names, so the dataset does
 * not depend on where the inputs happened to lie. */
int amtl_prep_set_source(amtl_prep_table *t, const char *format,
                         const char *const *inputs, int n, amtl_status *st)
{
    size_t len = strlen(format) + 1;
    for (int i = 0; i < n; i++)
        len += strlen(amtl_prep_basename(inputs[i])) + 1;
    free(t->source);
    t->source = malloc(len);
    if (!t->source)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    char *p = t->source;
    p += sprintf(p, "%s", format);
    for (int i = 0; i < n; i++)
        p += sprintf(p, " %s", amtl_prep_basename(inputs[i]));
    return 0;
}
