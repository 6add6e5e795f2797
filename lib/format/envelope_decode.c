/* envelope_decode.c — untrusted bytes to an amtl file: the checksum at the
 * end verified (checksum.c), a validation walk over the MessagePack
 * structure, then the envelope's fields checked one by one (see envelope.h).
 */
#include "format/envelope.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "format/envelope_internal.h"

/* The envelope nests four deep (map, tensors, tensor, shape); 16 leaves room. */
#define MP_MAX_DEPTH 16

/* ---- validation of untrusted bytes ----------------------------------- */

/* Why this pass exists: msgpack-c's unpacker allocates an array or map's
 * elements (count * sizeof(msgpack_object), 24 bytes each) as soon as it reads
 * the container header, before it knows whether the elements are there.  A
 * corrupt header claiming 4 billion elements would make it try to allocate
 * ~96 GB.  This walk checks every str/bin length and every element count
 * against the bytes that actually remain (each element takes at least one
 * byte), so msgpack-c never allocates more than a small multiple of the file
 * size.  It also bounds nesting (msgpack-c's own limit is a fixed stack),
 * rejects ext types, which the format never uses, and rejects trailing bytes. */

enum { MP_SCALAR, MP_STR, MP_BIN, MP_ARRAY, MP_MAP, MP_EXT, MP_INVALID };

/* Classifies the type byte b: its class, the width w of the length/count field
 * that follows (or, for a scalar, of its payload), and any length/count held
 * in the byte itself. */
static int mp_classify(unsigned b, unsigned *w, uint64_t *n)
{
    *w = 0;
    *n = 0;
    if (b <= 0x7f || b >= 0xe0)
        return MP_SCALAR;
    if (b <= 0x8f) {
        *n = b & 0x0f;
        return MP_MAP;
    }
    if (b <= 0x9f) {
        *n = b & 0x0f;
        return MP_ARRAY;
    }
    if (b <= 0xbf) {
        *n = b & 0x1f;
        return MP_STR;
    }
    switch (b) {
    case 0xc0:
    case 0xc2:
    case 0xc3: return MP_SCALAR;
    case 0xc4: *w = 1; return MP_BIN;
    case 0xc5: *w = 2; return MP_BIN;
    case 0xc6: *w = 4; return MP_BIN;
    case 0xca: *w = 4; return MP_SCALAR;
    case 0xcb: *w = 8; return MP_SCALAR;
    case 0xcc:
    case 0xd0: *w = 1; return MP_SCALAR;
    case 0xcd:
    case 0xd1: *w = 2; return MP_SCALAR;
    case 0xce:
    case 0xd2: *w = 4; return MP_SCALAR;
    case 0xcf:
    case 0xd3: *w = 8; return MP_SCALAR;
    case 0xd9: *w = 1; return MP_STR;
    case 0xda: *w = 2; return MP_STR;
    case 0xdb: *w = 4; return MP_STR;
    case 0xdc: *w = 2; return MP_ARRAY;
    case 0xdd: *w = 4; return MP_ARRAY;
    case 0xde: *w = 2; return MP_MAP;
    case 0xdf: *w = 4; return MP_MAP;
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: return MP_EXT;
    default: return MP_INVALID; /* 0xc1 */
    }
}

static int is_map_byte(unsigned b)
{
    return (b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf;
}

/* Why a walk over MessagePack values stopped short. */
typedef enum {
    MPW_ENDS = 1,   /* the bytes end before the last value: truncated */
    MPW_CUT,        /* a value's header is cut short: truncated */
    MPW_CLAIMS,     /* a str, bin, array or map claims more than remains: truncated */
    MPW_EXT,        /* an ext type: not in an amtl file */
    MPW_INVALID,    /* the byte 0xc1 */
    MPW_DEEP        /* nested deeper than MP_MAX_DEPTH */
} mp_why;

typedef struct {
    size_t at;      /* the value's first byte */
    int cls;        /* its class (MP_*) */
    uint64_t n;     /* its claimed length or count */
    size_t rem;     /* bytes after its header */
    int depth;      /* containers open around it (0: the top-level value) */
} mp_where;

/* Walks the one value at p[pos..len): 0 with *end just after it, or why it
 * stopped, with where. */
static int mp_walk(const unsigned char *p, size_t len, size_t pos, size_t *end,
                   mp_where *wh)
{
    uint64_t owed[MP_MAX_DEPTH + 1]; /* values still due in each open container */
    int depth = 0;
    owed[0] = 1; /* the one top-level value */
    while (depth >= 0) {
        if (owed[depth] == 0) {
            depth--;
            continue;
        }
        owed[depth]--;
        wh->at = pos;
        wh->depth = depth;
        if (pos >= len)
            return MPW_ENDS;
        unsigned w;
        uint64_t n;
        int cls = mp_classify(p[pos], &w, &n);
        wh->cls = cls;
        if (cls == MP_EXT)
            return MPW_EXT;
        if (cls == MP_INVALID)
            return MPW_INVALID;
        size_t rem = len - pos - 1;
        if (w > rem)
            return MPW_CUT;
        if (cls != MP_SCALAR)
            for (unsigned i = 0; i < w; i++)
                n = n << 8 | p[pos + 1 + i];
        pos += 1 + w;
        wh->n = n;
        wh->rem = rem -= w;
        if (cls == MP_STR || cls == MP_BIN) {
            if (n > rem)
                return MPW_CLAIMS;
            pos += (size_t)n;
        } else if (cls == MP_ARRAY || cls == MP_MAP) {
            uint64_t items = cls == MP_MAP ? 2 * n : n;
            if (items > rem)
                return MPW_CLAIMS;
            if (depth == MP_MAX_DEPTH)
                return MPW_DEEP;
            owed[++depth] = items;
        }
    }
    *end = pos;
    return 0;
}

int amtl_envelope_mp_ends_early(const unsigned char *p, size_t len)
{
    size_t pos = 0;
    mp_where wh = {0};
    /* inside the tensors map: a damaged top-level count runs out at depth 1 */
    return mp_walk(p, len, 0, &pos, &wh) == MPW_ENDS && wh.depth >= 2;
}

int amtl_envelope_mp_validate(const unsigned char *p, size_t len, const char *what,
                              amtl_status *st)
{
    static const char *const names[] = {"scalar", "str", "bin", "array", "map"};
    size_t pos = 0;
    mp_where wh = {0};
    switch (mp_walk(p, len, 0, &pos, &wh)) {
    case 0: break;
    case MPW_ENDS:
        return amtl_error(st, AMTL_EDATA,
                          "%s: truncated or corrupt file: data ends at byte %zu "
                          "before the last value",
                          what, wh.at);
    case MPW_EXT:
        return amtl_error(st, AMTL_EDATA,
                          "%s: corrupt file: unsupported msgpack ext type 0x%02x "
                          "at byte %zu",
                          what, p[wh.at], wh.at);
    case MPW_INVALID:
        return amtl_error(st, AMTL_EDATA,
                          "%s: corrupt file: invalid msgpack byte 0x%02x at byte %zu",
                          what, p[wh.at], wh.at);
    case MPW_CUT:
        return amtl_error(st, AMTL_EDATA,
                          "%s: truncated or corrupt file: the value at byte %zu "
                          "is cut short",
                          what, wh.at);
    case MPW_CLAIMS:
        if (wh.cls == MP_STR || wh.cls == MP_BIN)
            return amtl_error(st, AMTL_EDATA,
                              "%s: truncated or corrupt file: %s at byte %zu claims "
                              "%llu bytes, only %zu remain",
                              what, names[wh.cls], wh.at, (unsigned long long)wh.n, wh.rem);
        return amtl_error(st, AMTL_EDATA,
                          "%s: truncated or corrupt file: %s at byte %zu claims "
                          "%llu %s, only %zu bytes remain",
                          what, names[wh.cls], wh.at, (unsigned long long)wh.n,
                          wh.cls == MP_MAP ? "entries" : "elements", wh.rem);
    default: /* MPW_DEEP */
        return amtl_error(st, AMTL_EDATA,
                          "%s: corrupt file: values nested more than %d deep "
                          "at byte %zu",
                          what, MP_MAX_DEPTH, wh.at);
    }
    if (pos != len)
        return amtl_error(st, AMTL_EDATA,
                          "%s: corrupt file: %zu trailing bytes after the end of the "
                          "data at byte %zu",
                          what, len - pos, pos);
    return 0;
}

/* ---- decoding -------------------------------------------------------- */

static const char *obj_type_name(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "a boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "an integer";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return "a float";
    case MSGPACK_OBJECT_STR: return "a string";
    case MSGPACK_OBJECT_ARRAY: return "an array";
    case MSGPACK_OBJECT_MAP: return "a map";
    case MSGPACK_OBJECT_BIN: return "bytes";
    default: return "an ext value";
    }
}

static int str_is(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           (n == 0 || memcmp(o->via.str.ptr, s, n) == 0);
}

/* A msgpack string as a C string; NUL bytes would silently cut it short. */
static int take_str(char **out, const msgpack_object_str *s, const char *what,
                    const char *role, amtl_status *st)
{
    if (s->size && memchr(s->ptr, '\0', s->size)) {
        char b[64];
        return amtl_error(st, AMTL_EDATA, "%s: %s \"%s\" contains a NUL byte", what, role,
                          amtl_envelope_show(b, sizeof b, s->ptr, s->size));
    }
    *out = amtl_envelope_dup(s->ptr, s->size);
    if (!*out)
        return amtl_error(st, AMTL_ENOMEM, "%s: out of memory", what);
    return 0;
}

static int cmp_str_obj(const void *a, const void *b)
{
    const msgpack_object_str *x = *(const msgpack_object_str *const *)a;
    const msgpack_object_str *y = *(const msgpack_object_str *const *)b;
    size_t n = x->size < y->size ? x->size : y->size;
    int c = n ? memcmp(x->ptr, y->ptr, n) : 0;
    if (c)
        return c;
    return (x->size > y->size) - (x->size < y->size);
}

/* Finds a repeated key among a map's string keys in O(n log n), since the
 * number of entries is bounded only by the file size.  Returns the repeated
 * key or NULL. */
static const msgpack_object_str *find_duplicate(const msgpack_object_map *m, int *nomem)
{
    *nomem = 0;
    if (m->size < 2)
        return NULL;
    const msgpack_object_str **keys = malloc(m->size * sizeof *keys);
    if (!keys) {
        *nomem = 1;
        return NULL;
    }
    for (uint32_t i = 0; i < m->size; i++)
        keys[i] = &m->ptr[i].key.via.str;
    qsort(keys, m->size, sizeof *keys, cmp_str_obj);
    const msgpack_object_str *dup = NULL;
    for (uint32_t i = 1; i < m->size && !dup; i++)
        if (cmp_str_obj(&keys[i - 1], &keys[i]) == 0)
            dup = keys[i];
    free(keys);
    return dup;
}

static int check_str_keys(const msgpack_object_map *m, const char *what,
                          const char *where, const char *role, amtl_status *st)
{
    for (uint32_t i = 0; i < m->size; i++)
        if (m->ptr[i].key.type != MSGPACK_OBJECT_STR)
            return amtl_error(st, AMTL_EDATA, "%s: %s has a key that is %s, not a string",
                              what, where, obj_type_name(&m->ptr[i].key));
    int nomem;
    const msgpack_object_str *dup = find_duplicate(m, &nomem);
    if (nomem)
        return amtl_error(st, AMTL_ENOMEM, "%s: out of memory", what);
    if (dup) {
        char b[200];
        return amtl_error(st, AMTL_EDATA, "%s: duplicate %s '%s'", what, role,
                          amtl_envelope_show(b, sizeof b, dup->ptr, dup->size));
    }
    return 0;
}

/* The map of the top-level field `field`, its keys distinct strings, few
 * enough to count in an int (`many` names them in the message); NULL with st
 * set when it is not one. */
static const msgpack_object_map *field_map(const msgpack_object *o, const char *field,
                                           const char *role, const char *many,
                                           const char *what, amtl_status *st)
{
    char where[32];
    snprintf(where, sizeof where, "field \"%s\"", field);
    if (o->type != MSGPACK_OBJECT_MAP) {
        amtl_error(st, AMTL_EDATA, "%s: %s must be a map, got %s", what, where,
                   obj_type_name(o));
        return NULL;
    }
    const msgpack_object_map *m = &o->via.map;
    if (check_str_keys(m, what, where, role, st))
        return NULL;
    if (m->size > INT32_MAX / 2) {
        amtl_error(st, AMTL_EDATA, "%s: too many %s", what, many);
        return NULL;
    }
    return m;
}

static int decode_meta(amtl_file *f, const msgpack_object *o, const char *what,
                       amtl_status *st)
{
    const msgpack_object_map *m =
        field_map(o, "meta", "metadata key", "metadata entries", what, st);
    if (!m)
        return -1;
    if (m->size) {
        f->meta = calloc(m->size, sizeof *f->meta);
        if (!f->meta)
            return amtl_error(st, AMTL_ENOMEM, "%s: out of memory", what);
        f->cap_meta = (int)m->size;
    }
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
        char b[200];
        if (v->type != MSGPACK_OBJECT_STR)
            return amtl_error(st, AMTL_EDATA, "%s: meta '%s' must be a string, got %s",
                              what,
                              amtl_envelope_show(b, sizeof b, k->via.str.ptr, k->via.str.size),
                              obj_type_name(v));
        amtl_meta_kv *kv = &f->meta[f->n_meta];
        if (take_str(&kv->key, &k->via.str, what, "metadata key", st))
            return -1;
        f->n_meta++; /* from here on amtl_file_free releases the key */
        if (take_str(&kv->value, &v->via.str, what, "metadata value", st))
            return -1;
    }
    return 0;
}

/* A checksum: 4 bytes. */
static int is_sum(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_BIN && o->via.bin.size == 4;
}

/* A tensor; from version 2 on with its "crc32", whose value the file's
 * checksum has vouched for (checksum.c reads it to name damage). */
static int decode_tensor(amtl_named_tensor *nt, const msgpack_object_str *name,
                         const msgpack_object *o, int version, int borrow, const char *what,
                         amtl_status *st)
{
    char tn[256], b[64];
    amtl_envelope_show(tn, sizeof tn, name->ptr, name->size);
    if (o->type != MSGPACK_OBJECT_MAP)
        return amtl_error(st, AMTL_EDATA, "%s: tensor '%s' must be a map, got %s", what,
                          tn, obj_type_name(o));
    const msgpack_object_map *m = &o->via.map;
    const msgpack_object *dtype = NULL, *shape = NULL, *data = NULL, *sum = NULL;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
        const msgpack_object **slot = str_is(k, "dtype")   ? &dtype
                                      : str_is(k, "shape") ? &shape
                                      : str_is(k, "data")  ? &data
                                      : version >= 2 && str_is(k, "crc32") ? &sum
                                                                           : NULL;
        if (!slot) {
            if (k->type != MSGPACK_OBJECT_STR)
                return amtl_error(st, AMTL_EDATA,
                                  "%s: tensor '%s': a key is %s, not a string", what, tn,
                                  obj_type_name(k));
            return amtl_error(st, AMTL_EDATA, "%s: tensor '%s': unknown field \"%s\"",
                              what, tn,
                              amtl_envelope_show(b, sizeof b, k->via.str.ptr,
                                                 k->via.str.size));
        }
        if (*slot)
            return amtl_error(st, AMTL_EDATA, "%s: tensor '%s': duplicate field \"%.*s\"",
                              what, tn, (int)k->via.str.size, k->via.str.ptr);
        *slot = v;
    }
    const char *missing = !dtype                  ? "dtype"
                          : !shape                ? "shape"
                          : !data                 ? "data"
                          : version >= 2 && !sum ? "crc32"
                                                  : NULL;
    if (missing)
        return amtl_error(st, AMTL_EDATA, "%s: tensor '%s': missing field \"%s\"", what,
                          tn, missing);

    amtl_dtype dt;
    if (dtype->type != MSGPACK_OBJECT_STR)
        return amtl_error(st, AMTL_EDATA,
                          "%s: tensor '%s': dtype must be a string, got %s", what, tn,
                          obj_type_name(dtype));
    if (amtl_dtype_parse(dtype->via.str.ptr, dtype->via.str.size, &dt))
        return amtl_error(st, AMTL_EDATA,
                          "%s: tensor '%s': unknown dtype \"%s\" (known: f32, i32, i64, "
                          "u8, f64)",
                          what, tn,
                          amtl_envelope_show(b, sizeof b, dtype->via.str.ptr,
                                             dtype->via.str.size));

    if (shape->type != MSGPACK_OBJECT_ARRAY)
        return amtl_error(st, AMTL_EDATA,
                          "%s: tensor '%s': shape must be an array, got %s", what, tn,
                          obj_type_name(shape));
    if (shape->via.array.size > AMTL_MAX_DIMS)
        return amtl_error(st, AMTL_EDATA,
                          "%s: tensor '%s': shape has %u dimensions, at most %d are "
                          "supported",
                          what, tn, shape->via.array.size, AMTL_MAX_DIMS);
    int ndim = (int)shape->via.array.size;
    int64_t dims[AMTL_MAX_DIMS];
    for (int i = 0; i < ndim; i++) {
        const msgpack_object *d = &shape->via.array.ptr[i];
        if (d->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            return amtl_error(st, AMTL_EDATA,
                              "%s: tensor '%s': negative dimension %lld in shape", what,
                              tn, (long long)d->via.i64);
        if (d->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return amtl_error(st, AMTL_EDATA,
                              "%s: tensor '%s': shape[%d] must be an integer, got %s",
                              what, tn, i, obj_type_name(d));
        if (d->via.u64 > (uint64_t)INT64_MAX)
            return amtl_error(st, AMTL_EDATA,
                              "%s: tensor '%s': dimension %llu is too large", what, tn,
                              (unsigned long long)d->via.u64);
        dims[i] = (int64_t)d->via.u64;
    }
    char sh[160];
    amtl_envelope_format_shape(sh, sizeof sh, ndim, dims, 0);
    size_t need;
    if (amtl_envelope_shape_bytes(dt, ndim, dims, &need))
        return amtl_error(st, AMTL_EDATA, "%s: tensor '%s': shape %s is too large", what,
                          tn, sh);

    if (data->type != MSGPACK_OBJECT_BIN)
        return amtl_error(st, AMTL_EDATA,
                          "%s: tensor '%s': data must be bytes (bin), got %s", what, tn,
                          obj_type_name(data));
    if (data->via.bin.size != need)
        return amtl_error(st, AMTL_EDATA,
                          "%s: tensor '%s': shape %s needs %zu bytes, data has %u", what,
                          tn, sh, need, data->via.bin.size);
    if (sum && !is_sum(sum))
        return amtl_error(st, AMTL_EDATA,
                          "%s: tensor '%s': crc32 must be 4 bytes (bin), got %s", what, tn,
                          sum->type == MSGPACK_OBJECT_BIN ? "another length"
                                                          : obj_type_name(sum));

    if (take_str(&nt->name, name, what, "tensor name", st))
        return -1;
    if (borrow && need && (uintptr_t)data->via.bin.ptr % amtl_dtype_size(dt) == 0) {
        nt->t = amtl_tensor_view(dt, ndim, dims, (void *)data->via.bin.ptr);
        return 0;
    }
    if (amtl_tensor_alloc(&nt->t, dt, ndim, dims, st))
        return amtl_error_context(st, "%s: tensor '%s'", what, tn);
    if (need)
        memcpy(nt->t.data, data->via.bin.ptr, need);
    return 0;
}

static int decode_tensors(amtl_file *f, const msgpack_object *o, int borrow,
                          const char *what, amtl_status *st)
{
    const msgpack_object_map *m = field_map(o, "tensors", "tensor", "tensors", what, st);
    if (!m)
        return -1;
    for (uint32_t i = 0; i < m->size; i++)
        if (m->ptr[i].key.via.str.size == 0)
            return amtl_error(st, AMTL_EDATA, "%s: a tensor has an empty name", what);
    if (m->size) {
        f->tensors = calloc(m->size, sizeof *f->tensors);
        if (!f->tensors)
            return amtl_error(st, AMTL_ENOMEM, "%s: out of memory", what);
        f->cap_tensors = (int)m->size;
    }
    for (uint32_t i = 0; i < m->size; i++) {
        /* Counted before it can fail, so amtl_file_free releases a partial one. */
        f->n_tensors++;
        if (decode_tensor(&f->tensors[i], &m->ptr[i].key.via.str, &m->ptr[i].val,
                          f->version, borrow, what, st))
            return -1;
    }
    return 0;
}

/* How much of a file decode_root takes: all of it, copying the tensors'
 * data; all of it, the aligned data as views of the caller's bytes; or the
 * head alone (no tensor, no checksum). */
enum { DECODE_COPY, DECODE_BORROW, DECODE_HEAD };

/* sealed: the file ended with a checksum that matched (checksum.c). */
static int decode_root(amtl_file *f, const msgpack_object *root, const char *what,
                       const char *expected_kind, int sealed, int mode, amtl_status *st)
{
    enum { K_FORMAT, K_VERSION, K_KIND, K_META, K_TENSORS, K_CRC, N_KEYS };
    static const char *const keys[N_KEYS] = {"format", "version", "kind", "meta",
                                             "tensors", "crc32"};
    const msgpack_object *field[N_KEYS] = {0};
    const msgpack_object *unknown = NULL, *repeated = NULL;
    char b[64], b2[64];

    const msgpack_object_map *m = &root->via.map;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        int j = 0;
        while (j < N_KEYS && !str_is(k, keys[j]))
            j++;
        if (j == N_KEYS) {
            if (!unknown)
                unknown = k;
        } else if (field[j]) {
            if (!repeated)
                repeated = k;
        } else {
            field[j] = &m->ptr[i].val;
        }
    }

    /* Name, version and kind come first, so a foreign file is called that
     * rather than blamed for its details. */
    const msgpack_object *o = field[K_FORMAT];
    if (!o)
        return amtl_error(st, AMTL_EDATA, "%s: not an amtl file (no \"format\" field)",
                          what);
    if (o->type != MSGPACK_OBJECT_STR)
        return amtl_error(st, AMTL_EDATA,
                          "%s: not an amtl file: expected format \"%s\", got %s", what,
                          AMTL_FORMAT_NAME, obj_type_name(o));
    if (!str_is(o, AMTL_FORMAT_NAME))
        return amtl_error(
            st, AMTL_EDATA, "%s: not an amtl file: expected format \"%s\", got \"%s\"",
            what, AMTL_FORMAT_NAME,
            amtl_envelope_show(b, sizeof b, o->via.str.ptr, o->via.str.size));

    o = field[K_VERSION];
    if (!o)
        return amtl_error(st, AMTL_EDATA, "%s: no \"version\" field", what);
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return amtl_error(
            st, AMTL_EDATA,
            "%s: unsupported format version %lld (this build reads versions %d to %d)",
            what, (long long)o->via.i64, AMTL_FORMAT_VERSION_OLDEST, AMTL_FORMAT_VERSION);
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return amtl_error(st, AMTL_EDATA,
                          "%s: field \"version\" must be an integer, got %s", what,
                          obj_type_name(o));
    if (o->via.u64 < AMTL_FORMAT_VERSION_OLDEST || o->via.u64 > AMTL_FORMAT_VERSION)
        return amtl_error(
            st, AMTL_EDATA,
            "%s: unsupported format version %llu (this build reads versions %d to %d)",
            what, (unsigned long long)o->via.u64, AMTL_FORMAT_VERSION_OLDEST,
            AMTL_FORMAT_VERSION);
    f->version = (int)o->via.u64;

    o = field[K_KIND];
    if (!o)
        return amtl_error(st, AMTL_EDATA, "%s: no \"kind\" field", what);
    if (o->type != MSGPACK_OBJECT_STR)
        return amtl_error(st, AMTL_EDATA, "%s: field \"kind\" must be a string, got %s",
                          what, obj_type_name(o));
    if (expected_kind && !str_is(o, expected_kind))
        return amtl_error(
            st, AMTL_EDATA, "%s: expected a file of kind \"%s\", got \"%s\"", what,
            expected_kind,
            amtl_envelope_show(b, sizeof b, o->via.str.ptr, o->via.str.size));
    if (o->via.str.size == 0 || o->via.str.size >= sizeof f->kind ||
        memchr(o->via.str.ptr, '\0', o->via.str.size))
        return amtl_error(st, AMTL_EDATA, "%s: invalid kind \"%s\"", what,
                          amtl_envelope_show(b, sizeof b, o->via.str.ptr, o->via.str.size));
    memcpy(f->kind, o->via.str.ptr, o->via.str.size);
    f->kind[o->via.str.size] = '\0';

    /* From version 2 on a file ends with the checksum verified before the
     * decoder ran; a version 1 file has none; a head stops before it. */
    int head = mode == DECODE_HEAD;
    if (head)
        field[K_CRC] = NULL;
    if (f->version >= 2 && !head && (!sealed || !field[K_CRC] || !is_sum(field[K_CRC])))
        return amtl_error(st, AMTL_EDATA, "%s: %s", what, amtl_envelope_unsealed);
    if (f->version < 2 && field[K_CRC])
        return amtl_error(st, AMTL_EDATA,
                          "%s: unknown top-level field \"crc32\" (a version %d file has "
                          "no checksum)",
                          what, f->version);
    f->checksum = head ? AMTL_CHECKSUM_UNREAD : sealed ? AMTL_CHECKSUM_VERIFIED : AMTL_CHECKSUM_NONE;

    if (repeated)
        return amtl_error(
            st, AMTL_EDATA, "%s: duplicate field \"%s\"", what,
            amtl_envelope_show(b, sizeof b, repeated->via.str.ptr,
                               repeated->via.str.size));
    if (unknown) {
        if (unknown->type != MSGPACK_OBJECT_STR)
            return amtl_error(st, AMTL_EDATA, "%s: a top-level key is %s, not a string",
                              what, obj_type_name(unknown));
        return amtl_error(
            st, AMTL_EDATA, "%s: unknown top-level field \"%s\"", what,
            amtl_envelope_show(b2, sizeof b2, unknown->via.str.ptr,
                               unknown->via.str.size));
    }
    if (!field[K_META])
        return amtl_error(st, AMTL_EDATA, "%s: no \"meta\" field", what);
    if (!field[K_TENSORS])
        return amtl_error(st, AMTL_EDATA, "%s: no \"tensors\" field", what);
    if (decode_meta(f, field[K_META], what, st))
        return -1;
    return decode_tensors(f, field[K_TENSORS], mode == DECODE_BORROW, what, st);
}

/* amtl_file_decode; with mode DECODE_BORROW, of bytes whose checksum
 * matched already. */
static int decode_file(amtl_file *f, const void *buf, size_t len, const char *what,
                       const char *expected_kind, int mode, amtl_status *st)
{
    memset(f, 0, sizeof *f);
    if (!what)
        what = "input";
    if (amtl_envelope_check_host(st))
        return -1;
    const unsigned char *p = buf;
    if (len == 0)
        return amtl_error(st, AMTL_EDATA, "%s: empty file, not an amtl file", what);
    int sealed = 1;
    if (mode != DECODE_BORROW && amtl_envelope_verify(p, len, what, &sealed, st))
        return -1;
    if (!is_map_byte(p[0]))
        return amtl_error(st, AMTL_EDATA,
                          "%s: not an amtl file (it does not start with a msgpack map)",
                          what);
    if (amtl_envelope_mp_validate(p, len, what, st))
        return -1;

    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack_next(&u, buf, len, &off);
    int rc;
    if (r == MSGPACK_UNPACK_NOMEM_ERROR)
        rc = amtl_error(st, AMTL_ENOMEM, "%s: out of memory parsing the file", what);
    else if (r != MSGPACK_UNPACK_SUCCESS || off != len ||
             u.data.type != MSGPACK_OBJECT_MAP)
        rc = amtl_error(st, AMTL_EDATA, "%s: corrupt file: msgpack parse error", what);
    else
        rc = decode_root(f, &u.data, what, expected_kind, sealed, mode, st);
    msgpack_unpacked_destroy(&u);
    if (rc)
        amtl_file_free(f);
    return rc;
}

int amtl_file_decode(amtl_file *f, const void *buf, size_t len, const char *what,
                     const char *expected_kind, amtl_status *st)
{
    return decode_file(f, buf, len, what, expected_kind, DECODE_COPY, st);
}

int amtl_envelope_decode_borrowed(amtl_file *f, const void *buf, size_t len,
                                  const char *what, const char *expected_kind,
                                  amtl_status *st)
{
    return decode_file(f, buf, len, what, expected_kind, DECODE_BORROW, st);
}

/* ---- the head alone --------------------------------------------------- */

/* The end of the one value at p[pos..]: 0 with *end, 1 when the bytes end
 * before the value does, -1 at a byte no amtl file holds. */
static int value_end(const unsigned char *p, size_t len, size_t pos, size_t *end)
{
    mp_where wh;
    int why = mp_walk(p, len, pos, end, &wh);
    return why == 0 ? 0 : why == MPW_ENDS || why == MPW_CUT || why == MPW_CLAIMS ? 1 : -1;
}

int amtl_file_decode_head(amtl_file *f, const void *buf, size_t len, size_t *need,
                          const char *what, const char *expected_kind, amtl_status *st)
{
    memset(f, 0, sizeof *f);
    *need = len * 2 > 4096 ? len * 2 : 4096;
    if (!what)
        what = "input";
    if (amtl_envelope_check_host(st))
        return -1;
    const unsigned char *p = buf;
    if (len == 0)
        return 1;
    if (!is_map_byte(p[0]))
        return amtl_error(st, AMTL_EDATA,
                          "%s: not an amtl file (it does not start with a msgpack map)",
                          what);
    unsigned w;
    uint64_t n;
    mp_classify(p[0], &w, &n);
    if (len < 1 + (size_t)w)
        return 1;
    for (unsigned i = 0; i < w; i++)
        n = n << 8 | p[1 + i];
    /* the root's entries before "tensors", copied into a map of their own
     * that ends with an empty "tensors" */
    size_t pos = 1 + w, begin = pos;
    uint64_t kept = 0;
    for (; kept < n; kept++) {
        size_t kend, vend;
        int r = value_end(p, len, pos, &kend);
        if (r)
            return r > 0 ? 1
                         : amtl_error(st, AMTL_EDATA, "%s: corrupt file at byte %zu", what, pos);
        static const char tensors[] = "\xa7tensors";
        if (kend - pos == sizeof tensors - 1 && !memcmp(p + pos, tensors, kend - pos))
            break;
        r = value_end(p, len, kend, &vend);
        if (r)
            return r > 0 ? 1
                         : amtl_error(st, AMTL_EDATA, "%s: corrupt file at byte %zu", what, kend);
        pos = vend;
    }
    if (kept == n)
        return amtl_error(st, AMTL_EDATA, "%s: no \"tensors\" field", what);
    size_t body = pos - begin, cap = 5 + body + 9;
    unsigned char *h = malloc(cap);
    if (!h)
        return amtl_error(st, AMTL_ENOMEM, "%s: out of memory", what);
    size_t o = 0;
    h[o++] = 0xdf;
    for (int i = 3; i >= 0; i--)
        h[o++] = (unsigned char)((kept + 1) >> (8 * i));
    memcpy(h + o, p + begin, body);
    o += body;
    memcpy(h + o, "\xa7tensors\x80", 9);
    o += 9;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rc;
    if (amtl_envelope_mp_validate(h, o, what, st)) {
        rc = -1;
    } else {
        msgpack_unpack_return r = msgpack_unpack_next(&u, (const char *)h, o, &off);
        if (r == MSGPACK_UNPACK_NOMEM_ERROR)
            rc = amtl_error(st, AMTL_ENOMEM, "%s: out of memory parsing the file", what);
        else if (r != MSGPACK_UNPACK_SUCCESS || off != o || u.data.type != MSGPACK_OBJECT_MAP)
            rc = amtl_error(st, AMTL_EDATA, "%s: corrupt file: msgpack parse error", what);
        else
            rc = decode_root(f, &u.data, what, expected_kind, 0, DECODE_HEAD, st);
    }
    msgpack_unpacked_destroy(&u);
    free(h);
    if (rc)
        amtl_file_free(f);
    return rc;
}
