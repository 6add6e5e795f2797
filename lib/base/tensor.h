/* tensor.h — typed n-d arrays and the per-step activation arena.
 *
 * A tensor is a dtype, up to AMTL_MAX_DIMS dimensions and a pointer.  Owned
 * tensors come from amtl_tensor_alloc (64-byte aligned, zeroed); views point
 * into someone else's buffer and are never freed.
 *
 * The arena hands out aligned blocks from one allocation; the training loop
 * resets it once per step instead of calling malloc.
 */
#ifndef AMTL_TENSOR_H
#define AMTL_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define AMTL_MAX_DIMS 4
#define AMTL_ALIGN 64

typedef enum {
    AMTL_F32 = 0,  /* float, little-endian IEEE 754 binary32 */
    AMTL_I32 = 1,  /* int32_t (ids, counts) */
    AMTL_I64 = 2,  /* int64_t (RNG state, step counters) */
    AMTL_U8 = 3,   /* uint8_t (masks, flags) */
    AMTL_F64 = 4   /* double (metrics history) */
} amtl_dtype;

typedef struct {
    amtl_dtype dtype;
    int ndim;
    int64_t shape[AMTL_MAX_DIMS];
    void *data;
    int owns;      /* 1 when data was allocated by amtl_tensor_alloc */
} amtl_tensor;

size_t amtl_dtype_size(amtl_dtype dt);
/* "f32", "i32", "i64", "u8", "f64"; NULL for an unknown value. */
const char *amtl_dtype_name(amtl_dtype dt);
/* Returns 0 and sets *dt, or -1 for an unknown name. */
int amtl_dtype_parse(const char *name, size_t len, amtl_dtype *dt);

int64_t amtl_tensor_numel(const amtl_tensor *t);
size_t amtl_tensor_nbytes(const amtl_tensor *t);

/* Allocates a zeroed tensor.  Refuses negative dims and sizes that overflow. */
int amtl_tensor_alloc(amtl_tensor *t, amtl_dtype dt, int ndim,
                      const int64_t *shape, amtl_status *st);
/* A non-owning view of data. */
amtl_tensor amtl_tensor_view(amtl_dtype dt, int ndim, const int64_t *shape,
                             void *data);
void amtl_tensor_free(amtl_tensor *t);  /* safe on a zeroed struct */

/* Aligned zeroed allocation helpers used across the library. */
void *amtl_alloc(size_t bytes);          /* NULL on failure or overflow */
void *amtl_alloc_array(size_t n, size_t size);
void amtl_free(void *p);

/* Lays many arrays out in one block: a first pass with base NULL adds up
 * the bytes in off; after the block is allocated, a second pass with base
 * set and off 0 hands out the same arrays in the same order, each starting
 * on an `align`-byte boundary (a power of two). */
typedef struct {
    char *base;
    size_t off, align;
} amtl_carver;

static inline void *amtl_carve(amtl_carver *cv, size_t n, size_t size)
{
    size_t off = cv->off;
    cv->off += (n * size + cv->align - 1) / cv->align * cv->align;
    return cv->base ? cv->base + off : NULL;
}

typedef struct {
    unsigned char *base;
    size_t cap;
    size_t used;
    size_t peak;
} amtl_arena;

int amtl_arena_init(amtl_arena *a, size_t cap, amtl_status *st);
/* 64-byte aligned block, or NULL when the arena is full. Not zeroed. */
void *amtl_arena_alloc(amtl_arena *a, size_t bytes);
float *amtl_arena_floats(amtl_arena *a, size_t n);
size_t amtl_arena_mark(const amtl_arena *a);
void amtl_arena_rewind(amtl_arena *a, size_t mark);
void amtl_arena_reset(amtl_arena *a);
void amtl_arena_free(amtl_arena *a);

#endif
