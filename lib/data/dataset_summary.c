/* dataset_summary.c — see dataset_summary.h. */
#include "data/dataset_summary.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "format/strbuf.h"

static const char *const split_keys[3] = {"train", "val", "test"};

/* n integers space-separated into meta key */
static int set_counts(amtl_file *f, const char *key, const int64_t *v, int n, int stride,
                      amtl_status *st)
{
    amtl_strbuf b = {0};
    for (int i = 0; i < n; i++)
        amtl_strbuf_printf(&b, "%s%lld", i ? " " : "", (long long)v[(size_t)i * stride]);
    int rc = b.failed ? amtl_error(st, AMTL_ENOMEM, "out of memory")
                      : amtl_file_set_meta(f, key, b.data ? b.data : "", st);
    amtl_strbuf_free(&b);
    return rc;
}

/* n integers of meta key into v[i·stride]; -1 with st when it holds other */
static int get_counts(const amtl_file *f, const char *what, const char *key, int64_t *v, int n,
                      int stride, amtl_status *st)
{
    const char *p = amtl_file_meta(f, key);
    if (!p)
        return amtl_error(st, AMTL_EDATA, "%s: meta '%s' is missing", what, key);
    for (int i = 0; i < n; i++) {
        char *end;
        long long x = strtoll(p, &end, 10);
        if (end == p || x < 0)
            return amtl_error(st, AMTL_EDATA, "%s: meta '%s' must hold %d counts", what, key,
                              n);
        v[(size_t)i * stride] = x;
        p = end;
    }
    if (*p)
        return amtl_error(st, AMTL_EDATA, "%s: meta '%s' must hold %d counts", what, key, n);
    return 0;
}

static int alloc_counts(amtl_dataset_summary *s, amtl_status *st)
{
    s->vocab = calloc((size_t)s->N + 1, sizeof *s->vocab);
    s->positives = calloc(3 * (size_t)s->T + 1, sizeof *s->positives);
    s->id0 = calloc(3 * (size_t)s->N + 1, sizeof *s->id0);
    if (!s->vocab || !s->positives || !s->id0)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    return 0;
}

/* Split sp's counts into s: the positives of each of the T label columns
 * and the ids 0 of each of the N sparse columns, rows values each. */
static void count_split(amtl_dataset_summary *s, int sp, int64_t rows, float *const *labels,
                        int32_t *const *ids)
{
    s->rows[sp] = rows;
    for (int t = 0; t < s->T; t++) {
        int64_t pos = 0;
        for (int64_t r = 0; r < rows; r++)
            pos += labels[t][r] != 0.0f;
        s->positives[t * 3 + sp] = pos;
    }
    for (int k = 0; k < s->N; k++) {
        int64_t z = 0;
        for (int64_t r = 0; r < rows; r++)
            z += ids[k][r] == 0;
        s->id0[k * 3 + sp] = z;
    }
}

/* The counts of a dataset's columns into s */
static void count_columns(amtl_dataset_summary *s, const amtl_dataset *ds)
{
    for (int k = 0; k < ds->N; k++)
        s->vocab[k] = ds->vocab[k];
    for (int sp = 0; sp < 3; sp++)
        count_split(s, sp, ds->split[sp].rows, ds->split[sp].labels, ds->split[sp].sparse);
}

int amtl_dataset_summary_set(amtl_file *f, const amtl_dataset_summary *s, amtl_status *st)
{
    if (set_counts(f, "summary.vocab", s->vocab, s->N, 1, st))
        return -1;
    for (int sp = 0; sp < 3; sp++) {
        char key[64];
        snprintf(key, sizeof key, "summary.positives.%s", split_keys[sp]);
        if (set_counts(f, key, s->positives + sp, s->T, 3, st))
            return -1;
        snprintf(key, sizeof key, "summary.id0.%s", split_keys[sp]);
        if (set_counts(f, key, s->id0 + sp, s->N, 3, st))
            return -1;
    }
    return 0;
}

/* The summary from the header's meta */
static int from_meta(amtl_dataset_summary *s, const char *path, amtl_status *st)
{
    const amtl_file *f = &s->file;
    if (amtl_dataset_parse_names(f, path, "sparse_fields", &s->sparse, &s->N, st) ||
        amtl_dataset_parse_names(f, path, "dense_fields", &s->dense, &s->D, st) ||
        amtl_dataset_parse_names(f, path, "labels", &s->labels, &s->T, st) ||
        alloc_counts(s, st) || get_counts(f, path, "summary.vocab", s->vocab, s->N, 1, st))
        return -1;
    for (int sp = 0; sp < 3; sp++) {
        char key[64];
        snprintf(key, sizeof key, "summary.positives.%s", split_keys[sp]);
        if (get_counts(f, path, key, s->positives + sp, s->T, 3, st))
            return -1;
        snprintf(key, sizeof key, "summary.id0.%s", split_keys[sp]);
        if (get_counts(f, path, key, s->id0 + sp, s->N, 3, st))
            return -1;
        snprintf(key, sizeof key, "rows.%s", split_keys[sp]);
        if (get_counts(f, path, key, &s->rows[sp], 1, 1, st))
            return -1;
    }
    s->from_header = 1;
    return 0;
}

int amtl_dataset_summary_read(amtl_dataset_summary *s, const char *path, amtl_status *st)
{
    memset(s, 0, sizeof *s);
    int head = strcmp(path, "-") != 0;
    if (head && amtl_file_read_head(&s->file, path, "dataset", st))
        return -1;
    /* a version 1 file (no checksum) is read whole: its content hash is then
     * checked against its tensors */
    if (head && s->file.checksum == AMTL_CHECKSUM_VERIFIED &&
        amtl_file_meta(&s->file, "summary.vocab")) {
        if (from_meta(s, path, st)) {
            amtl_dataset_summary_free(s);
            return -1;
        }
        return 0;
    }
    /* a file without its summary (or stdin): read whole, counted here */
    amtl_file_free(&s->file);
    amtl_dataset ds;
    if (amtl_dataset_read(&ds, path, st))
        return -1;
    s->N = ds.N;
    s->D = ds.D;
    s->T = ds.T;
    int rc = alloc_counts(s, st);
    if (rc == 0) {
        count_columns(s, &ds);
        /* the names and the meta move over; the columns go */
        s->sparse = ds.sparse_names;
        s->dense = ds.dense_names;
        s->labels = ds.label_names;
        s->file = ds.file;
        ds.sparse_names = ds.dense_names = ds.label_names = NULL;
        memset(&ds.file, 0, sizeof ds.file);
    }
    amtl_dataset_free(&ds);
    if (rc)
        amtl_dataset_summary_free(s);
    return rc;
}

void amtl_dataset_summary_free(amtl_dataset_summary *s)
{
    amtl_dataset_free_names(s->sparse, s->N);
    amtl_dataset_free_names(s->dense, s->D);
    amtl_dataset_free_names(s->labels, s->T);
    free(s->vocab);
    free(s->positives);
    free(s->id0);
    amtl_file_free(&s->file);
    memset(s, 0, sizeof *s);
}
