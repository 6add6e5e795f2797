/* dataset.c — reading and validating the dataset file amtl-prep writes, and
 * gathering row-major batches from its field-major columns (see dataset.h).
 *
 * A dataset is trusted by everything downstream (embedding lookups index
 * tables with its ids), so the reader checks every value once here: ids in
 * [0, vocab_f), labels exactly 0 or 1, dense values finite, every split's
 * columns of one length that matches the meta row count.
 */
#include "data/dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/tensor.h"
#include "data/strmap.h"

static const char *const split_names[AMTL_N_SPLITS] = {"train", "val", "test"};

const char *amtl_split_name(int split)
{
    return split >= 0 && split < AMTL_N_SPLITS ? split_names[split] : NULL;
}

int amtl_split_parse(const char *name)
{
    for (int s = 0; s < AMTL_N_SPLITS; s++)
        if (!strcmp(name, split_names[s]))
            return s;
    return -1;
}

static int put_hash(void *ctx, const void *p, size_t n, amtl_status *st)
{
    (void)st;
    uint64_t *h = ctx;
    *h = amtl_hash_bytes(p, n, *h);
    return 0;
}

int amtl_dataset_content_hash(const amtl_file *f, uint64_t *hash, amtl_status *st)
{
    uint64_t h = AMTL_HASH_SEED;
    for (int i = 0; i < f->n_tensors; i++) {
        h = amtl_hash_bytes(f->tensors[i].name, strlen(f->tensors[i].name) + 1, h);
        if (amtl_file_tensor_bytes(f, i, put_hash, &h, st))
            return -1;
    }
    *hash = h;
    return 0;
}

void amtl_dataset_free_names(char **names, int n)
{
    if (!names)
        return;
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

char *amtl_dataset_join_names(char *const *names, int n)
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

/* Splits a '\n'-joined meta list; an empty string is an empty list. */
int amtl_dataset_parse_names(const amtl_file *f, const char *what, const char *key,
                             char ***out, int *n_out, amtl_status *st)
{
    *out = NULL;
    *n_out = 0;
    const char *s = amtl_file_meta(f, key);
    if (!s)
        return amtl_error(st, AMTL_EDATA, "%s: meta '%s' is missing", what, key);
    int n = 0;
    if (s[0]) {
        n = 1;
        for (const char *p = s; *p; p++)
            n += *p == '\n';
    }
    char **names = calloc((size_t)(n > 0 ? n : 1), sizeof *names);
    if (!names)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    const char *p = s;
    for (int i = 0; i < n; i++) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        names[i] = strndup(p, len);
        if (!names[i]) {
            amtl_dataset_free_names(names, i);
            return amtl_error(st, AMTL_ENOMEM, "out of memory");
        }
        if (len == 0) {
            amtl_dataset_free_names(names, i + 1);
            return amtl_error(st, AMTL_EDATA, "%s: meta '%s': name %d is empty", what,
                              key, i + 1);
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(names[j], names[i])) {
                amtl_error(st, AMTL_EDATA, "%s: meta '%s': '%s' appears twice", what,
                           key, names[i]);
                amtl_dataset_free_names(names, i + 1);
                return -1;
            }
        p = e ? e + 1 : p + len;
    }
    *out = names;
    *n_out = n;
    return 0;
}

static int parse_rows(const amtl_file *f, const char *what, int s, int64_t *rows,
                      amtl_status *st)
{
    char key[32];
    snprintf(key, sizeof key, "rows.%s", split_names[s]);
    const char *v = amtl_file_meta(f, key);
    if (!v)
        return amtl_error(st, AMTL_EDATA, "%s: meta '%s' is missing", what, key);
    char *end;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || x < 0 || x > INT32_MAX)
        return amtl_error(st, AMTL_EDATA, "%s: meta '%s' = '%s' is not a row count",
                          what, key, v);
    *rows = x;
    return 0;
}

/* The column "<split>.<kind>.<name>": dtype, one dimension, `rows` long. */
static const amtl_tensor *column(const amtl_file *f, const char *what, int s,
                                 const char *kind, const char *name, amtl_dtype dt,
                                 int64_t rows, char *tname, size_t tcap,
                                 amtl_status *st)
{
    snprintf(tname, tcap, "%s.%s.%s", split_names[s], kind, name);
    const amtl_tensor *t = amtl_file_find(f, tname);
    if (!t) {
        amtl_error(st, AMTL_EDATA, "%s: tensor '%s' is missing", what, tname);
        return NULL;
    }
    if (t->dtype != dt) {
        amtl_error(st, AMTL_EDATA, "%s: tensor '%s' is %s, expected %s", what, tname,
                   amtl_dtype_name(t->dtype) ? amtl_dtype_name(t->dtype) : "?",
                   amtl_dtype_name(dt));
        return NULL;
    }
    if (t->ndim != 1) {
        amtl_error(st, AMTL_EDATA, "%s: tensor '%s' has %d dimensions, expected 1",
                   what, tname, t->ndim);
        return NULL;
    }
    if (t->shape[0] != rows) {
        amtl_error(st, AMTL_EDATA,
                   "%s: tensor '%s' has %lld rows, meta 'rows.%s' says %lld", what,
                   tname, (long long)t->shape[0], split_names[s], (long long)rows);
        return NULL;
    }
    return t;
}

/* Whether a tensor name is one of the split columns the meta lists. */
static int listed_column(const amtl_dataset *ds, const char *name)
{
    const char *p = NULL;
    for (int s = 0; s < AMTL_N_SPLITS && !p; s++) {
        size_t l = strlen(split_names[s]);
        if (!strncmp(name, split_names[s], l) && name[l] == '.')
            p = name + l + 1;
    }
    if (!p)
        return -1; /* not a split column at all */
    struct {
        const char *kind;
        char **names;
        int n;
    } kinds[3] = {{"sparse.", ds->sparse_names, ds->N},
                  {"dense.", ds->dense_names, ds->D},
                  {"label.", ds->label_names, ds->T}};
    for (int k = 0; k < 3; k++) {
        size_t l = strlen(kinds[k].kind);
        if (strncmp(p, kinds[k].kind, l))
            continue;
        for (int i = 0; i < kinds[k].n; i++)
            if (!strcmp(p + l, kinds[k].names[i]))
                return 1;
        return 0;
    }
    return -1;
}

static int check_vocab(const amtl_file *f, const char *what, const amtl_dataset *ds,
                       amtl_status *st)
{
    const amtl_tensor *vs = amtl_file_find(f, "vocab_sizes");
    if (!vs)
        return amtl_error(st, AMTL_EDATA, "%s: tensor 'vocab_sizes' is missing", what);
    if (vs->dtype != AMTL_I32 || vs->ndim != 1 || vs->shape[0] != ds->N)
        return amtl_error(st, AMTL_EDATA,
                          "%s: tensor 'vocab_sizes' must be i32 [%d] (one per sparse "
                          "field)", what, ds->N);
    const int32_t *v = vs->data;
    for (int k = 0; k < ds->N; k++) {
        if (v[k] < 1)
            return amtl_error(st, AMTL_EDATA,
                              "%s: tensor 'vocab_sizes': field '%s' has vocab size %d "
                              "(at least 1)", what, ds->sparse_names[k], (int)v[k]);
        ds->vocab[k] = v[k];
        char name[1100];
        snprintf(name, sizeof name, "vocab.%s", ds->sparse_names[k]);
        const amtl_tensor *b = amtl_file_find(f, name);
        if (!b)
            return amtl_error(st, AMTL_EDATA, "%s: tensor '%s' is missing", what, name);
        if (b->dtype != AMTL_U8 || b->ndim != 1)
            return amtl_error(st, AMTL_EDATA, "%s: tensor '%s' must be u8 [bytes]",
                              what, name);
        const unsigned char *p = b->data;
        int64_t lines = 0, len = b->shape[0];
        for (int64_t i = 0; i < len; i++)
            lines += p[i] == '\n';
        if (len == 0 || p[0] != '\n' || p[len - 1] != '\n' || lines != v[k])
            return amtl_error(st, AMTL_EDATA,
                              "%s: tensor '%s' must hold %d '\\n'-terminated tokens, the "
                              "first empty", what, name, (int)v[k]);
    }
    return 0;
}

int amtl_split_init(amtl_split *sp, int N, int D, int T, int64_t rows, int own,
                    amtl_status *st)
{
    memset(sp, 0, sizeof *sp);
    sp->rows = rows;
    void **tab = calloc((size_t)(N + D + T) + 1, sizeof *tab);
    if (!tab)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    sp->tables = tab;
    sp->sparse = (int32_t **)tab;
    sp->dense = (float **)(tab + N);
    sp->labels = (float **)(tab + N + D);
    if (!own)
        return 0;
    size_t n = (size_t)rows;
    char *b = amtl_alloc_array((size_t)(N + D + T) * n + 1, 4);
    if (!b) {
        amtl_split_free(sp);
        return amtl_error(st, AMTL_ENOMEM, "out of memory for a split of %lld rows",
                          (long long)rows);
    }
    sp->store = b;
    for (int k = 0; k < N; k++)
        sp->sparse[k] = (int32_t *)(b + (size_t)k * n * 4);
    for (int d = 0; d < D; d++)
        sp->dense[d] = (float *)(b + (size_t)(N + d) * n * 4);
    for (int t = 0; t < T; t++)
        sp->labels[t] = (float *)(b + (size_t)(N + D + t) * n * 4);
    return 0;
}

void amtl_split_free(amtl_split *sp)
{
    free(sp->tables);
    amtl_free(sp->store);
    memset(sp, 0, sizeof *sp);
}

/* A split column, checked: found with the dtype and length; every value
 * valid (kind 0 an id below vocab, 1 finite, 2 a label 0 or 1). */
static const amtl_tensor *checked_column(const amtl_file *f, const char *what, int s, int kind,
                                         const char *name, int32_t vocab, int64_t rows,
                                         amtl_status *st)
{
    static const char *const kinds[3] = {"sparse", "dense", "label"};
    char tname[1100];
    const amtl_tensor *t = column(f, what, s, kinds[kind], name, kind ? AMTL_F32 : AMTL_I32,
                                  rows, tname, sizeof tname, st);
    if (!t)
        return NULL;
    if (kind == 0) {
        const int32_t *v = t->data;
        for (int64_t r = 0; r < rows; r++)
            if (v[r] < 0 || v[r] >= vocab) {
                amtl_error(st, AMTL_EDATA, "%s: tensor '%s' row %lld: id %d is outside [0, %d)",
                           what, tname, (long long)r, (int)v[r], (int)vocab);
                return NULL;
            }
        return t;
    }
    const float *v = t->data;
    for (int64_t r = 0; r < rows; r++) {
        if (kind == 1 && !isfinite(v[r])) {
            amtl_error(st, AMTL_EDATA, "%s: tensor '%s' row %lld: value %g is not finite",
                       what, tname, (long long)r, (double)v[r]);
            return NULL;
        }
        if (kind == 2 && v[r] != 0.0f && v[r] != 1.0f) {
            amtl_error(st, AMTL_EDATA, "%s: tensor '%s' row %lld: label %g is not 0 or 1",
                       what, tname, (long long)r, (double)v[r]);
            return NULL;
        }
    }
    return t;
}

/* A split's columns, checked: the file's own tensors, or for a shard of the
 * train split its rows r0, r0 + step, ... copied into the split's store. */
static int check_split(amtl_dataset *ds, const amtl_file *f, const char *what, int s,
                       amtl_status *st)
{
    amtl_split *sp = &ds->split[s];
    int64_t rows = sp->rows;
    int sharded = s == AMTL_SPLIT_TRAIN && ds->shard_size > 1;
    int step = sharded ? ds->shard_size : 1;
    int64_t r0 = sharded ? ds->shard_rank : 0;
    size_t n = (size_t)(rows > r0 ? (rows - r0 + step - 1) / step : 0);
    if (s == AMTL_SPLIT_TRAIN)
        ds->train_rows_all = rows;
    if (amtl_split_init(sp, ds->N, ds->D, ds->T, (int64_t)n, sharded, st))
        return amtl_error_context(st, "%s: the %s split", what, split_names[s]);
    int C = ds->N + ds->D + ds->T;
    for (int c = 0; c < C; c++) {
        int kind = c < ds->N ? 0 : c < ds->N + ds->D ? 1 : 2;
        const char *name = kind == 0   ? ds->sparse_names[c]
                           : kind == 1 ? ds->dense_names[c - ds->N]
                                       : ds->label_names[c - ds->N - ds->D];
        const amtl_tensor *t = checked_column(f, what, s, kind, name,
                                              kind == 0 ? ds->vocab[c] : 0, rows, st);
        if (!t)
            return -1;
        void **col = amtl_split_column(sp, ds->N, ds->D, c);
        if (!sharded) {
            *col = t->data;
        } else {
            for (size_t i = 0; i < n; i++)
                memcpy((char *)*col + i * 4, (const char *)t->data + ((size_t)r0 + i * step) * 4,
                       4);
        }
        /* read once: its pages leave resident memory until training or
         * scoring reads them again (a mapped file's) */
        amtl_file_release(f, t->data, (size_t)rows * 4);
    }
    return 0;
}

/* A shard's columns now live in its store; drop the file's copies. */
static void drop_columns(amtl_dataset *ds)
{
    amtl_file *f = &ds->file;
    int w = 0;
    for (int i = 0; i < f->n_tensors; i++) {
        if (listed_column(ds, f->tensors[i].name) == 1 &&
            !strncmp(f->tensors[i].name, "train.", 6)) {
            amtl_tensor_free(&f->tensors[i].t);
            free(f->tensors[i].name);
            continue;
        }
        f->tensors[w++] = f->tensors[i];
    }
    f->n_tensors = w;
}

/* from_file for share rank of size */
static int from_file_shard(amtl_dataset *ds, amtl_file *f, const char *what, int rank, int size,
                           amtl_status *st);

int amtl_dataset_from_file(amtl_dataset *ds, amtl_file *f, const char *what,
                           amtl_status *st)
{
    return from_file_shard(ds, f, what, 0, 1, st);
}

static int from_file_shard(amtl_dataset *ds, amtl_file *f, const char *what, int rank, int size,
                           amtl_status *st)
{
    memset(ds, 0, sizeof *ds);
    ds->shard_rank = rank;
    ds->shard_size = size;
    if (strcmp(f->kind, "dataset"))
        return amtl_error(st, AMTL_EDATA, "%s: kind '%s', expected 'dataset'", what,
                          f->kind);
    if (amtl_dataset_parse_names(f, what, "sparse_fields", &ds->sparse_names, &ds->N, st) ||
        amtl_dataset_parse_names(f, what, "dense_fields", &ds->dense_names, &ds->D, st) ||
        amtl_dataset_parse_names(f, what, "labels", &ds->label_names, &ds->T, st))
        goto fail;
    if (ds->T < 1) {
        amtl_error(st, AMTL_EDATA, "%s: meta 'labels' names no label", what);
        goto fail;
    }
    if (ds->N + ds->D < 1) {
        amtl_error(st, AMTL_EDATA, "%s: no sparse or dense field", what);
        goto fail;
    }
    /* a name in two kinds would make the meta ambiguous */
    for (int i = 0; i < ds->N + ds->D + ds->T; i++)
        for (int j = 0; j < i; j++) {
            const char *a = i < ds->N ? ds->sparse_names[i]
                            : i < ds->N + ds->D ? ds->dense_names[i - ds->N]
                                                : ds->label_names[i - ds->N - ds->D];
            const char *b = j < ds->N ? ds->sparse_names[j]
                            : j < ds->N + ds->D ? ds->dense_names[j - ds->N]
                                                : ds->label_names[j - ds->N - ds->D];
            if (!strcmp(a, b)) {
                amtl_error(st, AMTL_EDATA, "%s: field name '%s' is listed twice", what, a);
                goto fail;
            }
        }
    /* The content hash names the data (checkpoints record it); as a check
     * it only matters for a version 1 file, one without a checksum: a
     * verified checksum already covers the tensors and the hash itself. */
    const char *hash = amtl_file_meta(f, "content_hash");
    if (hash && f->checksum != AMTL_CHECKSUM_VERIFIED) {
        char want[32];
        uint64_t h;
        if (amtl_dataset_content_hash(f, &h, st))
            goto fail;
        snprintf(want, sizeof want, "%016llx", (unsigned long long)h);
        if (strcmp(hash, want)) {
            amtl_error(st, AMTL_EDATA,
                       "%s: content hash %s does not match the tensors (%s): the file "
                       "is damaged", what, hash, want);
            goto fail;
        }
    }
    ds->vocab = calloc((size_t)(ds->N > 0 ? ds->N : 1), sizeof *ds->vocab);
    if (!ds->vocab) {
        amtl_error(st, AMTL_ENOMEM, "out of memory");
        goto fail;
    }
    if (check_vocab(f, what, ds, st))
        goto fail;
    for (int s = 0; s < AMTL_N_SPLITS; s++)
        if (parse_rows(f, what, s, &ds->split[s].rows, st) ||
            check_split(ds, f, what, s, st))
            goto fail;
    for (int i = 0; i < f->n_tensors; i++)
        if (listed_column(ds, f->tensors[i].name) == 0) {
            amtl_error(st, AMTL_EDATA,
                       "%s: tensor '%s' is not a field the meta lists", what,
                       f->tensors[i].name);
            goto fail;
        }
    ds->file = *f;
    memset(f, 0, sizeof *f);
    if (ds->shard_size > 1)
        drop_columns(ds);
    return 0;
fail:
    amtl_dataset_free(ds);
    return -1;
}

int amtl_dataset_read(amtl_dataset *ds, const char *path, amtl_status *st)
{
    return amtl_dataset_read_shard(ds, path, 0, 1, st);
}

int amtl_dataset_read_shard(amtl_dataset *ds, const char *path, int rank, int size,
                            amtl_status *st)
{
    amtl_file f;
    memset(&f, 0, sizeof f);
    memset(ds, 0, sizeof *ds);
    if (size < 1 || rank < 0 || rank >= size)
        return amtl_error(st, AMTL_EUSAGE, "%s: rank %d of %d", path, rank, size);
    if (amtl_file_map(&f, path, "dataset", st))
        return -1;
    if (from_file_shard(ds, &f, path, rank, size, st)) {
        amtl_file_free(&f);
        return -1;
    }
    return 0;
}

int64_t amtl_dataset_train_rows(const amtl_dataset *ds)
{
    return ds->shard_size > 1 ? ds->train_rows_all : ds->split[AMTL_SPLIT_TRAIN].rows;
}

void amtl_dataset_free(amtl_dataset *ds)
{
    amtl_dataset_free_names(ds->sparse_names, ds->N);
    amtl_dataset_free_names(ds->dense_names, ds->D);
    amtl_dataset_free_names(ds->label_names, ds->T);
    free(ds->vocab);
    for (int s = 0; s < AMTL_N_SPLITS; s++)
        amtl_split_free(&ds->split[s]);
    amtl_file_free(&ds->file);
    memset(ds, 0, sizeof *ds);
}

void amtl_dataset_gather(const amtl_dataset *ds, int split, const int32_t *rows,
                         int B, amtl_batch *b)
{
    const amtl_split *sp = &ds->split[split];
    int N = ds->N, D = ds->D, T = ds->T;
    b->B = B;
    for (int i = 0; i < B; i++) {
        size_t r = (size_t)rows[i];
        for (int k = 0; k < N; k++)
            b->ids[(size_t)i * N + k] = sp->sparse[k][r];
        for (int d = 0; d < D; d++)
            b->dense[(size_t)i * D + d] = sp->dense[d][r];
        for (int k = 0; k < T; k++)
            b->labels[(size_t)i * T + k] = sp->labels[k][r];
    }
}

int amtl_dataset_sparse_index(const amtl_dataset *ds, const char *name)
{
    for (int k = 0; k < ds->N; k++)
        if (!strcmp(ds->sparse_names[k], name))
            return k;
    return -1;
}

int amtl_dataset_label_index(const amtl_dataset *ds, const char *name)
{
    for (int k = 0; k < ds->T; k++)
        if (!strcmp(ds->label_names[k], name))
            return k;
    return -1;
}
