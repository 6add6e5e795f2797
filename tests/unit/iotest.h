/* iotest.h — helpers the tests of lib/format's envelope and file I/O share:
 * random tensor data, a sample file, file comparison, files in a temp dir
 * that iotest_end removes. */
#ifndef AMTL_IOTEST_H
#define AMTL_IOTEST_H

#include <ftw.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/rng.h"
#include "format/envelope.h"
#include "test.h"

/* Random, non-zero values of the tensor's dtype. */
static inline void *random_data(amtl_rng *r, amtl_dtype dt, size_t n)
{
    void *p = malloc(n * amtl_dtype_size(dt) + 1);
    for (size_t i = 0; i < n; i++) {
        switch (dt) {
        case AMTL_F32: {
            float v = (float)amtl_rng_normal(r, 0.0, 3.0);
            ((float *)p)[i] = v != 0.0f ? v : 1.0f;
            break;
        }
        case AMTL_F64: {
            double v = amtl_rng_normal(r, 0.0, 3.0);
            ((double *)p)[i] = v != 0.0 ? v : 1.0;
            break;
        }
        case AMTL_I32: ((int32_t *)p)[i] = (int32_t)(amtl_rng_u64(r) | 1); break;
        case AMTL_I64: ((int64_t *)p)[i] = (int64_t)(amtl_rng_u64(r) | 1); break;
        case AMTL_U8: ((uint8_t *)p)[i] = (uint8_t)(1 + amtl_rng_below(r, 255)); break;
        }
    }
    return p;
}

static inline char *path_in_tmp(const char *name)
{
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", test_tmpdir(), name);
    return p;
}

static inline int write_bytes(const char *path, const void *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return -1;
    size_t n = len ? fwrite(buf, 1, len, fp) : 0;
    return (fclose(fp) == 0 && n == len) ? 0 : -1;
}

/* Reads a whole file with stdio, independently of the code under test. */
static inline unsigned char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    unsigned char *p = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            unsigned char *q = realloc(p, cap);
            if (!q) {
                free(p);
                fclose(fp);
                return NULL;
            }
            p = q;
        }
        size_t r = fread(p + n, 1, cap - n, fp);
        if (!r)
            break;
        n += r;
    }
    fclose(fp);
    *len = n;
    return p;
}

static inline int file_is_empty(const amtl_file *f)
{
    return f->n_meta == 0 && f->n_tensors == 0 && !f->meta && !f->tensors;
}

/* Writes a reason and returns 0, for checks that explain their failure. */
static inline int why_not(char *why, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int why_not(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return 0;
}

/* Two files hold the same kind, meta (in order) and tensors (in order,
 * bit-exact); b's tensors owned and AMTL_ALIGN-aligned, or with `mapped`
 * (amtl_file_map) views aligned to their element size or owned. */
static inline int files_equal_as(const amtl_file *a, const amtl_file *b, char *why, size_t n,
                                 int mapped)
{
    if (strcmp(a->kind, b->kind))
        return why_not(why, n, "kind %s vs %s", a->kind, b->kind);
    if (a->n_meta != b->n_meta || a->n_tensors != b->n_tensors)
        return why_not(why, n, "counts differ");
    for (int i = 0; i < a->n_meta; i++)
        if (strcmp(a->meta[i].key, b->meta[i].key) ||
            strcmp(a->meta[i].value, b->meta[i].value))
            return why_not(why, n, "meta %d differs", i);
    for (int i = 0; i < a->n_tensors; i++) {
        const amtl_tensor *x = &a->tensors[i].t, *y = &b->tensors[i].t;
        if (strcmp(a->tensors[i].name, b->tensors[i].name))
            return why_not(why, n, "tensor %d name differs", i);
        if (x->dtype != y->dtype || x->ndim != y->ndim)
            return why_not(why, n, "tensor %s dtype/ndim differ", a->tensors[i].name);
        for (int d = 0; d < x->ndim; d++)
            if (x->shape[d] != y->shape[d])
                return why_not(why, n, "tensor %s shape differs", a->tensors[i].name);
        size_t nb = amtl_tensor_nbytes(x);
        if (nb && memcmp(x->data, y->data, nb))
            return why_not(why, n, "tensor %s data differs", a->tensors[i].name);
        if (nb && (y->owns ? (uintptr_t)y->data % AMTL_ALIGN != 0
                           : !mapped || (uintptr_t)y->data % amtl_dtype_size(y->dtype) != 0))
            return why_not(why, n, "tensor %s not owned and aligned", a->tensors[i].name);
    }
    return 1;
}

static inline int files_equal(const amtl_file *a, const amtl_file *b, char *why, size_t n)
{
    return files_equal_as(a, b, why, n, 0);
}

/* A small valid file: kind "model", two meta entries, two tensors. */
static inline int make_sample(amtl_file *f, amtl_rng *r, amtl_status *st)
{
    amtl_file_init(f, "model");
    if (amtl_file_set_meta(f, "creator", "test_io", st) ||
        amtl_file_set_meta(f, "seed", "7", st))
        return -1;
    int64_t s1[2] = {2, 3}, s2[1] = {4};
    void *d1 = random_data(r, AMTL_F32, 6), *d2 = random_data(r, AMTL_I32, 4);
    int ok = amtl_file_add(f, "w", AMTL_F32, 2, s1, d1, st) &&
             amtl_file_add(f, "ids", AMTL_I32, 1, s2, d2, st);
    free(d1);
    free(d2);
    return ok ? 0 : -1;
}

static inline int remove_entry(const char *path, const struct stat *sb, int flag,
                        struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* 0, or -1 after the TAP line that bails out. */
static inline int iotest_begin(void)
{
    if (test_tmpdir()[0])
        return 0;
    printf("Bail out! cannot create a temp dir\n");
    return -1;
}

static inline void iotest_end(void)
{
    nftw(test_tmpdir(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
