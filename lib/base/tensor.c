/* tensor.c — tensors, aligned allocation and the arena (see tensor.h). */
#include "base/tensor.h"

#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [AMTL_F32] = {"f32", 4}, [AMTL_I32] = {"i32", 4}, [AMTL_I64] = {"i64", 8},
    [AMTL_U8] = {"u8", 1},   [AMTL_F64] = {"f64", 8},
};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

size_t amtl_dtype_size(amtl_dtype dt)
{
    return (unsigned)dt < N_DTYPES ? dtypes[dt].size : 0;
}

const char *amtl_dtype_name(amtl_dtype dt)
{
    return (unsigned)dt < N_DTYPES ? dtypes[dt].name : NULL;
}

int amtl_dtype_parse(const char *name, size_t len, amtl_dtype *dt)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (strlen(dtypes[i].name) == len && memcmp(dtypes[i].name, name, len) == 0) {
            *dt = (amtl_dtype)i;
            return 0;
        }
    return -1;
}

int64_t amtl_tensor_numel(const amtl_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

size_t amtl_tensor_nbytes(const amtl_tensor *t)
{
    return (size_t)amtl_tensor_numel(t) * amtl_dtype_size(t->dtype);
}

void *amtl_alloc(size_t bytes)
{
    if (bytes == 0)
        bytes = 1;
    if (bytes > SIZE_MAX - AMTL_ALIGN)
        return NULL;
    size_t rounded = (bytes + AMTL_ALIGN - 1) / AMTL_ALIGN * AMTL_ALIGN;
    void *p = aligned_alloc(AMTL_ALIGN, rounded);
    if (p)
        memset(p, 0, rounded);
    return p;
}

void *amtl_alloc_array(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    return amtl_alloc(n * size);
}

void amtl_free(void *p) { free(p); }

int amtl_tensor_alloc(amtl_tensor *t, amtl_dtype dt, int ndim,
                      const int64_t *shape, amtl_status *st)
{
    memset(t, 0, sizeof *t);
    if (ndim < 0 || ndim > AMTL_MAX_DIMS)
        return amtl_error(st, AMTL_EDATA, "tensor has %d dimensions (at most %d)",
                          ndim, AMTL_MAX_DIMS);
    size_t es = amtl_dtype_size(dt);
    if (!es)
        return amtl_error(st, AMTL_EDATA, "unknown dtype %d", (int)dt);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return amtl_error(st, AMTL_EDATA, "negative dimension %lld",
                              (long long)shape[i]);
        if (shape[i] && n > SIZE_MAX / es / (size_t)shape[i])
            return amtl_error(st, AMTL_EDATA, "tensor size overflows");
        n *= (size_t)shape[i];
    }
    void *p = amtl_alloc(n * es);
    if (!p)
        return amtl_error(st, AMTL_ENOMEM, "out of memory allocating %zu bytes", n * es);
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->data = p;
    t->owns = 1;
    return 0;
}

amtl_tensor amtl_tensor_view(amtl_dtype dt, int ndim, const int64_t *shape,
                             void *data)
{
    amtl_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.ndim = ndim;
    for (int i = 0; i < ndim && i < AMTL_MAX_DIMS; i++)
        t.shape[i] = shape[i];
    t.data = data;
    return t;
}

void amtl_tensor_free(amtl_tensor *t)
{
    if (t->owns)
        amtl_free(t->data);
    memset(t, 0, sizeof *t);
}

int amtl_arena_init(amtl_arena *a, size_t cap, amtl_status *st)
{
    memset(a, 0, sizeof *a);
    a->base = amtl_alloc(cap);
    if (!a->base)
        return amtl_error(st, AMTL_ENOMEM, "out of memory allocating a %zu-byte arena", cap);
    a->cap = cap;
    return 0;
}

void *amtl_arena_alloc(amtl_arena *a, size_t bytes)
{
    size_t start = (a->used + AMTL_ALIGN - 1) / AMTL_ALIGN * AMTL_ALIGN;
    if (start > a->cap || bytes > a->cap - start)
        return NULL;
    a->used = start + bytes;
    if (a->used > a->peak)
        a->peak = a->used;
    return a->base + start;
}

float *amtl_arena_floats(amtl_arena *a, size_t n)
{
    if (n > SIZE_MAX / sizeof(float))
        return NULL;
    return amtl_arena_alloc(a, n * sizeof(float));
}

size_t amtl_arena_mark(const amtl_arena *a) { return a->used; }

void amtl_arena_rewind(amtl_arena *a, size_t mark)
{
    if (mark <= a->used)
        a->used = mark;
}

void amtl_arena_reset(amtl_arena *a) { a->used = 0; }

void amtl_arena_free(amtl_arena *a)
{
    amtl_free(a->base);
    memset(a, 0, sizeof *a);
}
