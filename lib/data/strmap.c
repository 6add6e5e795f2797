/* strmap.c — the string -> index hash map amtl-prep uses for
 * vocabularies and for grouping raw rows by their id tuple (see strmap.h).
 *
 * Keys live back to back in one pool and are numbered in insertion order, so
 * a field's vocabulary is the key list itself; the slot table only holds
 * key numbers, which keeps it small (4 bytes a slot) at a load of 1/2.
 */
#include "data/strmap.h"

#include <stdlib.h>
#include <string.h>

uint64_t amtl_hash_bytes(const void *p, size_t n, uint64_t h)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* FNV-1a's low bits are weak for short keys; a finaliser spreads them. */
static uint64_t key_hash(const void *p, size_t n)
{
    uint64_t h = amtl_hash_bytes(p, n, AMTL_HASH_SEED);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

int amtl_strmap_init(amtl_strmap *m, amtl_status *st)
{
    memset(m, 0, sizeof *m);
    m->cap = 64;
    m->slots = calloc(m->cap, sizeof *m->slots);
    m->n_cap = 32;
    m->hash = malloc(sizeof *m->hash * (size_t)m->n_cap);
    m->off = malloc(sizeof *m->off * (size_t)m->n_cap);
    m->len = malloc(sizeof *m->len * (size_t)m->n_cap);
    m->pool_cap = 256;
    m->pool = malloc(m->pool_cap);
    if (!m->slots || !m->hash || !m->off || !m->len || !m->pool) {
        amtl_strmap_free(m);
        return amtl_error(st, AMTL_ENOMEM, "out of memory (hash map)");
    }
    return 0;
}

void amtl_strmap_free(amtl_strmap *m)
{
    free(m->slots);
    free(m->hash);
    free(m->off);
    free(m->len);
    free(m->pool);
    memset(m, 0, sizeof *m);
}

static size_t probe(const amtl_strmap *m, uint64_t h, const void *key, size_t len,
                    int32_t *found)
{
    size_t i = (size_t)h & (m->cap - 1);
    for (;;) {
        int32_t s = m->slots[i];
        if (s == 0) {
            *found = -1;
            return i;
        }
        int32_t k = s - 1;
        if (m->hash[k] == h && m->len[k] == len &&
            memcmp(m->pool + m->off[k], key, len) == 0) {
            *found = k;
            return i;
        }
        i = (i + 1) & (m->cap - 1);
    }
}

int32_t amtl_strmap_find(const amtl_strmap *m, const void *key, size_t len)
{
    if (!m->slots)
        return -1;
    int32_t found;
    probe(m, key_hash(key, len), key, len, &found);
    return found;
}

static int rehash(amtl_strmap *m, amtl_status *st)
{
    size_t cap = m->cap * 2;
    int32_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return amtl_error(st, AMTL_ENOMEM, "out of memory (hash map of %d keys)",
                          (int)m->n);
    for (int32_t k = 0; k < m->n; k++) {
        size_t i = (size_t)m->hash[k] & (cap - 1);
        while (slots[i])
            i = (i + 1) & (cap - 1);
        slots[i] = k + 1;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

static int grow_keys(amtl_strmap *m, amtl_status *st)
{
    if (m->n_cap >= INT32_MAX / 2)
        return amtl_error(st, AMTL_EDATA, "more than %d distinct keys", (int)m->n_cap);
    int32_t cap = m->n_cap * 2;
    uint64_t *h = realloc(m->hash, sizeof *h * (size_t)cap);
    if (h)
        m->hash = h;
    size_t *o = h ? realloc(m->off, sizeof *o * (size_t)cap) : NULL;
    if (o)
        m->off = o;
    uint32_t *l = o ? realloc(m->len, sizeof *l * (size_t)cap) : NULL;
    if (!l)
        return amtl_error(st, AMTL_ENOMEM, "out of memory (hash map of %d keys)",
                          (int)m->n);
    m->len = l;
    m->n_cap = cap;
    return 0;
}

int32_t amtl_strmap_put(amtl_strmap *m, const void *key, size_t len,
                        amtl_status *st)
{
    if (len > UINT32_MAX)
        return amtl_error(st, AMTL_EDATA, "key of %zu bytes is too long", len);
    uint64_t h = key_hash(key, len);
    int32_t found;
    size_t slot = probe(m, h, key, len, &found);
    if (found >= 0)
        return found;
    if (m->n == m->n_cap && grow_keys(m, st))
        return -1;
    if (m->pool_len + len > m->pool_cap) {
        size_t cap = m->pool_cap * 2;
        while (cap < m->pool_len + len)
            cap *= 2;
        char *p = realloc(m->pool, cap);
        if (!p)
            return amtl_error(st, AMTL_ENOMEM, "out of memory (hash map keys)");
        m->pool = p;
        m->pool_cap = cap;
    }
    int32_t k = m->n++;
    memcpy(m->pool + m->pool_len, key, len);
    m->off[k] = m->pool_len;
    m->len[k] = (uint32_t)len;
    m->hash[k] = h;
    m->pool_len += len;
    m->slots[slot] = k + 1;
    if ((size_t)m->n * 2 > m->cap && rehash(m, st))
        return -1;
    return k;
}

const char *amtl_strmap_key(const amtl_strmap *m, int32_t i, size_t *len)
{
    *len = m->len[i];
    return m->pool + m->off[i];
}
