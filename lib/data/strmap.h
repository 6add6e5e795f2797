/* strmap.h — a string -> index hash map (open addressing, linear probing):
 * the per-field vocabularies amtl-prep interns raw tokens into, and the
 * token -> id maps of amtl-eval --predict.  Keys are byte strings of any
 * content (an empty one too), numbered 0, 1, ... in insertion order.
 */
#ifndef AMTL_STRMAP_H
#define AMTL_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct {
    int32_t *slots;      /* [cap] key index + 1; 0 = empty */
    size_t cap;          /* power of two */
    uint64_t *hash;      /* [n] */
    size_t *off;         /* [n] start of key i in pool */
    uint32_t *len;       /* [n] */
    int32_t n, n_cap;
    char *pool;          /* keys, back to back */
    size_t pool_len, pool_cap;
} amtl_strmap;

int amtl_strmap_init(amtl_strmap *m, amtl_status *st);
void amtl_strmap_free(amtl_strmap *m);  /* safe on a zeroed struct */
/* Index of key, or -1. */
int32_t amtl_strmap_find(const amtl_strmap *m, const void *key, size_t len);
/* Index of key, inserting it when absent; -1 with st set when out of memory
 * or past INT32_MAX - 1 keys. */
int32_t amtl_strmap_put(amtl_strmap *m, const void *key, size_t len,
                        amtl_status *st);
/* Key i (not NUL-terminated). */
const char *amtl_strmap_key(const amtl_strmap *m, int32_t i, size_t *len);

uint64_t amtl_hash_bytes(const void *p, size_t n, uint64_t h);
#define AMTL_HASH_SEED 0xcbf29ce484222325ULL  /* FNV-1a 64 offset basis */

#endif
