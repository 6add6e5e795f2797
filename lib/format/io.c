/* io.c — the amtl MessagePack envelope (encode, validate, decode) and the
 * atomic file writes every tool uses for its outputs (see io.h).
 */
#include "format/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>

/* Files can be large (datasets), but a reader must still refuse absurd ones. */
#define READ_CAP_BYTES ((uint64_t)64 << 30)
/* A msgpack str, bin, array or map holds at most 2^32 - 1 bytes or elements. */
#define MP_MAX_LEN 0xffffffffu
/* The envelope nests four deep (map, tensors, tensor, shape); 16 leaves room. */
#define MP_MAX_DEPTH 16

static int host_is_little_endian(void)
{
    const uint32_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static int check_host(amtl_status *st)
{
    /* Tensor bytes are stored and loaded with memcpy. */
    if (!host_is_little_endian())
        return amtl_error(st, AMTL_EIO,
                          "amtl files are little-endian and this host is not; "
                          "reading and writing them is not supported here");
    return 0;
}

static char *dup_mem(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* A short printable rendering of untrusted bytes for messages. */
static const char *show(char *out, size_t cap, const char *p, size_t n)
{
    size_t limit = cap - 4, j = 0;
    for (size_t i = 0; i < n && j < limit; i++) {
        unsigned char c = (unsigned char)p[i];
        out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (n > limit) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
    return out;
}

/* "[64,64]"; with any_star, a negative entry (a wildcard) prints as "*". */
static void format_shape(char *out, size_t cap, int ndim, const int64_t *shape,
                         int any_star)
{
    size_t n = 0;
    n += (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++) {
        if (any_star && shape[i] < 0)
            n += (size_t)snprintf(out + n, cap - n, "%s*", i ? "," : "");
        else
            n += (size_t)snprintf(out + n, cap - n, "%s%lld", i ? "," : "",
                                  (long long)shape[i]);
    }
    if (n < cap)
        snprintf(out + n, cap - n, "]");
}

/* Byte size of a tensor of this shape, refusing negative dimensions and
 * products that overflow.  Zero-sized dimensions do not hide an overflow of
 * the others: a shape whose non-zero dimensions multiply past SIZE_MAX is
 * refused even though it holds no elements, so strides computed from it are
 * always safe. */
static int shape_bytes(amtl_dtype dt, int ndim, const int64_t *shape, size_t *bytes)
{
    size_t es = amtl_dtype_size(dt);
    if (!es || ndim < 0 || ndim > AMTL_MAX_DIMS)
        return -1;
    size_t nonzero = 1;
    int empty = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return -1;
        if (shape[i] == 0) {
            empty = 1;
            continue;
        }
        if ((uint64_t)shape[i] > SIZE_MAX / es / nonzero)
            return -1;
        nonzero *= (size_t)shape[i];
    }
    if (nonzero > (size_t)INT64_MAX)
        return -1;
    *bytes = empty ? 0 : nonzero * es;
    return 0;
}

/* ---- the file in memory ---------------------------------------------- */

void amtl_file_init(amtl_file *f, const char *kind)
{
    memset(f, 0, sizeof *f);
    snprintf(f->kind, sizeof f->kind, "%s", kind ? kind : "");
    f->version = AMTL_FORMAT_VERSION;
}

void amtl_file_free(amtl_file *f)
{
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    free(f->meta);
    for (int i = 0; i < f->n_tensors; i++) {
        free(f->tensors[i].name);
        amtl_tensor_free(&f->tensors[i].t);
    }
    free(f->tensors);
    memset(f, 0, sizeof *f);
}

static int grow(void **arr, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 0;
    if (*cap > (1 << 29))
        return -1;
    int ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

int amtl_file_set_meta(amtl_file *f, const char *key, const char *value, amtl_status *st)
{
    if (!key || !value)
        return amtl_error(st, AMTL_EDATA, "metadata key and value must not be NULL");
    char *v = dup_mem(value, strlen(value));
    if (!v)
        return amtl_error(st, AMTL_ENOMEM, "out of memory setting metadata '%s'", key);
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0) {
            free(f->meta[i].value);
            f->meta[i].value = v;
            return 0;
        }
    char *k = dup_mem(key, strlen(key));
    if (!k || grow((void **)&f->meta, &f->cap_meta, f->n_meta + 1, sizeof *f->meta)) {
        free(k);
        free(v);
        return amtl_error(st, AMTL_ENOMEM, "out of memory setting metadata '%s'", key);
    }
    f->meta[f->n_meta].key = k;
    f->meta[f->n_meta].value = v;
    f->n_meta++;
    return 0;
}

int amtl_file_set_metaf(amtl_file *f, amtl_status *st, const char *key, const char *fmt,
                        ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return amtl_error(st, AMTL_EDATA, "cannot format metadata '%s'", key);
    char *v = malloc((size_t)n + 1);
    if (!v)
        return amtl_error(st, AMTL_ENOMEM, "out of memory setting metadata '%s'", key);
    va_start(ap, fmt);
    vsnprintf(v, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = amtl_file_set_meta(f, key, v, st);
    free(v);
    return rc;
}

const char *amtl_file_meta(const amtl_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0)
            return f->meta[i].value;
    return NULL;
}

const amtl_tensor *amtl_file_find(const amtl_file *f, const char *name)
{
    for (int i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i].t;
    return NULL;
}

amtl_tensor *amtl_file_add(amtl_file *f, const char *name, amtl_dtype dt, int ndim,
                           const int64_t *shape, const void *data, amtl_status *st)
{
    if (!name || !name[0]) {
        amtl_error(st, AMTL_EDATA, "a tensor name must not be empty");
        return NULL;
    }
    if (amtl_file_find(f, name)) {
        amtl_error(st, AMTL_EDATA, "duplicate tensor '%s'", name);
        return NULL;
    }
    size_t bytes;
    if (!amtl_dtype_size(dt)) {
        amtl_error(st, AMTL_EDATA, "tensor '%s': unknown dtype %d", name, (int)dt);
        return NULL;
    }
    if (ndim < 0 || ndim > AMTL_MAX_DIMS) {
        amtl_error(st, AMTL_EDATA, "tensor '%s': %d dimensions, at most %d are supported",
                   name, ndim, AMTL_MAX_DIMS);
        return NULL;
    }
    if (shape_bytes(dt, ndim, shape, &bytes)) {
        char s[160];
        format_shape(s, sizeof s, ndim, shape, 0);
        amtl_error(st, AMTL_EDATA,
                   "tensor '%s': invalid shape %s (negative or too large)", name, s);
        return NULL;
    }
    char *nm = dup_mem(name, strlen(name));
    if (!nm || grow((void **)&f->tensors, &f->cap_tensors, f->n_tensors + 1,
                    sizeof *f->tensors)) {
        free(nm);
        amtl_error(st, AMTL_ENOMEM, "out of memory adding tensor '%s'", name);
        return NULL;
    }
    amtl_named_tensor *nt = &f->tensors[f->n_tensors];
    if (amtl_tensor_alloc(&nt->t, dt, ndim, shape, st)) {
        free(nm);
        amtl_error_context(st, "tensor '%s'", name);
        return NULL;
    }
    if (data && bytes)
        memcpy(nt->t.data, data, bytes);
    nt->name = nm;
    f->n_tensors++;
    return &nt->t;
}

const amtl_tensor *amtl_file_get(const amtl_file *f, const char *what, const char *name,
                                 amtl_dtype dt, int ndim, const int64_t *shape,
                                 amtl_status *st)
{
    if (!what)
        what = "file";
    const amtl_tensor *t = amtl_file_find(f, name);
    if (!t) {
        amtl_error(st, AMTL_EDATA, "%s: no tensor '%s'", what, name);
        return NULL;
    }
    if (t->dtype != dt) {
        const char *have = amtl_dtype_name(t->dtype), *want = amtl_dtype_name(dt);
        amtl_error(st, AMTL_EDATA, "%s: tensor '%s' is %s, expected %s", what, name,
                   have ? have : "?", want ? want : "?");
        return NULL;
    }
    int bad = ndim >= 0 && t->ndim != ndim;
    for (int i = 0; !bad && ndim >= 0 && shape && i < ndim; i++)
        if (shape[i] >= 0 && t->shape[i] != shape[i])
            bad = 1;
    if (bad) {
        char have[160], want[160];
        format_shape(have, sizeof have, t->ndim, t->shape, 0);
        if (shape)
            format_shape(want, sizeof want, ndim, shape, 1);
        else
            snprintf(want, sizeof want, "%d dimensions", ndim);
        amtl_error(st, AMTL_EDATA, "%s: tensor '%s' has shape %s, expected %s", what,
                   name, have, want);
        return NULL;
    }
    return t;
}

/* ---- encoding -------------------------------------------------------- */

static int add_size(size_t *total, size_t n)
{
    if (n > SIZE_MAX - *total)
        return -1;
    *total += n;
    return 0;
}

static int pack_cstr(msgpack_packer *pk, const char *s)
{
    return msgpack_pack_str_with_body(pk, s, strlen(s));
}

int amtl_file_encode(const amtl_file *f, void **buf, size_t *len, amtl_status *st)
{
    *buf = NULL;
    *len = 0;
    if (check_host(st))
        return -1;
    if (!f->kind[0])
        return amtl_error(st, AMTL_EDATA, "cannot encode a file without a kind");

    /* Checks first, and an upper bound of the encoded size so the buffer is
     * allocated once instead of doubling through gigabytes of tensor data.
     * Bound: every header at most 5 bytes, every integer at most 9. */
    size_t bound = 256;
    int over = 0;
    for (int i = 0; i < f->n_meta; i++) {
        size_t k = strlen(f->meta[i].key), v = strlen(f->meta[i].value);
        if (k > MP_MAX_LEN || v > MP_MAX_LEN)
            return amtl_error(st, AMTL_EDATA, "metadata '%.100s' is longer than 4 GiB",
                              f->meta[i].key);
        over |= add_size(&bound, 10) | add_size(&bound, k) | add_size(&bound, v);
    }
    for (int i = 0; i < f->n_tensors; i++) {
        const amtl_named_tensor *nt = &f->tensors[i];
        size_t bytes;
        if (shape_bytes(nt->t.dtype, nt->t.ndim, nt->t.shape, &bytes))
            return amtl_error(st, AMTL_EDATA, "tensor '%s' has an invalid dtype or shape",
                              nt->name);
        if (bytes > MP_MAX_LEN)
            return amtl_error(st, AMTL_EDATA,
                              "tensor '%s' has %zu bytes, more than the 4 GiB - 1 a "
                              "msgpack bin can hold",
                              nt->name, bytes);
        if (bytes && !nt->t.data)
            return amtl_error(st, AMTL_EDATA, "tensor '%s' has no data", nt->name);
        size_t name_len = strlen(nt->name);
        if (name_len > MP_MAX_LEN)
            return amtl_error(st, AMTL_EDATA, "a tensor name is longer than 4 GiB");
        over |=
            add_size(&bound, 128) | add_size(&bound, name_len) | add_size(&bound, bytes);
    }
    if (over)
        return amtl_error(st, AMTL_ENOMEM, "encoded file would not fit in memory");

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    sb.data = malloc(bound);
    if (!sb.data)
        return amtl_error(st, AMTL_ENOMEM, "out of memory encoding a %zu-byte file",
                          bound);
    sb.alloc = bound;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    /* Every pack call returns 0 or -1 (a failed buffer growth); the calls
     * must run in order, so each is its own statement. */
    int e = 0;
#define PACK(call)                                                                       \
    do {                                                                                 \
        if (!e && (call))                                                                \
            e = -1;                                                                      \
    } while (0)
    PACK(msgpack_pack_map(&pk, 5));
    PACK(pack_cstr(&pk, "format"));
    PACK(pack_cstr(&pk, AMTL_FORMAT_NAME));
    PACK(pack_cstr(&pk, "version"));
    PACK(msgpack_pack_int(&pk, AMTL_FORMAT_VERSION));
    PACK(pack_cstr(&pk, "kind"));
    PACK(pack_cstr(&pk, f->kind));
    PACK(pack_cstr(&pk, "meta"));
    PACK(msgpack_pack_map(&pk, (size_t)f->n_meta));
    for (int i = 0; i < f->n_meta; i++) {
        PACK(pack_cstr(&pk, f->meta[i].key));
        PACK(pack_cstr(&pk, f->meta[i].value));
    }
    PACK(pack_cstr(&pk, "tensors"));
    PACK(msgpack_pack_map(&pk, (size_t)f->n_tensors));
    for (int i = 0; i < f->n_tensors; i++) {
        const amtl_tensor *t = &f->tensors[i].t;
        size_t bytes = amtl_tensor_nbytes(t);
        PACK(pack_cstr(&pk, f->tensors[i].name));
        PACK(msgpack_pack_map(&pk, 3));
        PACK(pack_cstr(&pk, "dtype"));
        PACK(pack_cstr(&pk, amtl_dtype_name(t->dtype)));
        PACK(pack_cstr(&pk, "shape"));
        PACK(msgpack_pack_array(&pk, (size_t)t->ndim));
        for (int d = 0; d < t->ndim; d++)
            PACK(msgpack_pack_int64(&pk, t->shape[d]));
        PACK(pack_cstr(&pk, "data"));
        PACK(msgpack_pack_bin(&pk, bytes));
        if (bytes)
            PACK(msgpack_pack_bin_body(&pk, t->data, bytes));
    }
#undef PACK
    if (e) {
        msgpack_sbuffer_destroy(&sb);
        return amtl_error(st, AMTL_ENOMEM, "out of memory encoding a %zu-byte file",
                          bound);
    }
    *len = sb.size;
    *buf = msgpack_sbuffer_release(&sb);
    return 0;
}

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

static int mp_validate(const unsigned char *p, size_t len, const char *what,
                       amtl_status *st)
{
    static const char *const names[] = {"scalar", "str", "bin", "array", "map"};
    uint64_t owed[MP_MAX_DEPTH + 1]; /* values still due in each open container */
    int depth = 0;
    size_t pos = 0;
    owed[0] = 1; /* the one top-level value */
    while (depth >= 0) {
        if (owed[depth] == 0) {
            depth--;
            continue;
        }
        owed[depth]--;
        if (pos >= len)
            return amtl_error(st, AMTL_EDATA,
                              "%s: truncated or corrupt file: data ends at byte %zu "
                              "before the last value",
                              what, pos);
        unsigned w;
        uint64_t n;
        int cls = mp_classify(p[pos], &w, &n);
        if (cls == MP_EXT)
            return amtl_error(st, AMTL_EDATA,
                              "%s: corrupt file: unsupported msgpack ext type 0x%02x "
                              "at byte %zu",
                              what, p[pos], pos);
        if (cls == MP_INVALID)
            return amtl_error(st, AMTL_EDATA,
                              "%s: corrupt file: invalid msgpack byte 0x%02x at byte %zu",
                              what, p[pos], pos);
        size_t at = pos, rem = len - pos - 1;
        if (w > rem)
            return amtl_error(st, AMTL_EDATA,
                              "%s: truncated or corrupt file: the value at byte %zu "
                              "is cut short",
                              what, at);
        if (cls != MP_SCALAR)
            for (unsigned i = 0; i < w; i++)
                n = n << 8 | p[pos + 1 + i];
        pos += 1 + w;
        rem -= w;
        switch (cls) {
        case MP_SCALAR: break;
        case MP_STR:
        case MP_BIN:
            if (n > rem)
                return amtl_error(st, AMTL_EDATA,
                                  "%s: truncated or corrupt file: %s at byte %zu claims "
                                  "%llu bytes, only %zu remain",
                                  what, names[cls], at, (unsigned long long)n, rem);
            pos += (size_t)n;
            break;
        default: { /* array or map */
            uint64_t items = cls == MP_MAP ? 2 * n : n;
            if (items > rem)
                return amtl_error(st, AMTL_EDATA,
                                  "%s: truncated or corrupt file: %s at byte %zu claims "
                                  "%llu %s, only %zu bytes remain",
                                  what, names[cls], at, (unsigned long long)n,
                                  cls == MP_MAP ? "entries" : "elements", rem);
            if (depth == MP_MAX_DEPTH)
                return amtl_error(st, AMTL_EDATA,
                                  "%s: corrupt file: values nested more than %d deep "
                                  "at byte %zu",
                                  what, MP_MAX_DEPTH, at);
            owed[++depth] = items;
            break;
        }
        }
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
                          show(b, sizeof b, s->ptr, s->size));
    }
    *out = dup_mem(s->ptr, s->size);
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
                          show(b, sizeof b, dup->ptr, dup->size));
    }
    return 0;
}

static int decode_meta(amtl_file *f, const msgpack_object *o, const char *what,
                       amtl_status *st)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return amtl_error(st, AMTL_EDATA, "%s: field \"meta\" must be a map, got %s",
                          what, obj_type_name(o));
    const msgpack_object_map *m = &o->via.map;
    if (check_str_keys(m, what, "field \"meta\"", "metadata key", st))
        return -1;
    if (m->size > INT32_MAX / 2)
        return amtl_error(st, AMTL_EDATA, "%s: too many metadata entries", what);
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
                              what, show(b, sizeof b, k->via.str.ptr, k->via.str.size),
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

static int decode_tensor(amtl_named_tensor *nt, const msgpack_object_str *name,
                         const msgpack_object *o, const char *what, amtl_status *st)
{
    char tn[256], b[64];
    show(tn, sizeof tn, name->ptr, name->size);
    if (o->type != MSGPACK_OBJECT_MAP)
        return amtl_error(st, AMTL_EDATA, "%s: tensor '%s' must be a map, got %s", what,
                          tn, obj_type_name(o));
    const msgpack_object_map *m = &o->via.map;
    const msgpack_object *dtype = NULL, *shape = NULL, *data = NULL;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
        const msgpack_object **slot = str_is(k, "dtype")   ? &dtype
                                      : str_is(k, "shape") ? &shape
                                      : str_is(k, "data")  ? &data
                                                           : NULL;
        if (!slot) {
            if (k->type != MSGPACK_OBJECT_STR)
                return amtl_error(st, AMTL_EDATA,
                                  "%s: tensor '%s': a key is %s, not a string", what, tn,
                                  obj_type_name(k));
            return amtl_error(st, AMTL_EDATA, "%s: tensor '%s': unknown field \"%s\"",
                              what, tn,
                              show(b, sizeof b, k->via.str.ptr, k->via.str.size));
        }
        if (*slot)
            return amtl_error(st, AMTL_EDATA, "%s: tensor '%s': duplicate field \"%.*s\"",
                              what, tn, (int)k->via.str.size, k->via.str.ptr);
        *slot = v;
    }
    const char *missing = !dtype ? "dtype" : !shape ? "shape" : !data ? "data" : NULL;
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
                          show(b, sizeof b, dtype->via.str.ptr, dtype->via.str.size));

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
    format_shape(sh, sizeof sh, ndim, dims, 0);
    size_t need;
    if (shape_bytes(dt, ndim, dims, &need))
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

    if (take_str(&nt->name, name, what, "tensor name", st))
        return -1;
    if (amtl_tensor_alloc(&nt->t, dt, ndim, dims, st))
        return amtl_error_context(st, "%s: tensor '%s'", what, tn);
    if (need)
        memcpy(nt->t.data, data->via.bin.ptr, need);
    return 0;
}

static int decode_tensors(amtl_file *f, const msgpack_object *o, const char *what,
                          amtl_status *st)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return amtl_error(st, AMTL_EDATA, "%s: field \"tensors\" must be a map, got %s",
                          what, obj_type_name(o));
    const msgpack_object_map *m = &o->via.map;
    if (check_str_keys(m, what, "field \"tensors\"", "tensor", st))
        return -1;
    if (m->size > INT32_MAX / 2)
        return amtl_error(st, AMTL_EDATA, "%s: too many tensors", what);
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
        if (decode_tensor(&f->tensors[i], &m->ptr[i].key.via.str, &m->ptr[i].val, what,
                          st))
            return -1;
    }
    return 0;
}

static int decode_root(amtl_file *f, const msgpack_object *root, const char *what,
                       const char *expected_kind, amtl_status *st)
{
    enum { K_FORMAT, K_VERSION, K_KIND, K_META, K_TENSORS, N_KEYS };
    static const char *const keys[N_KEYS] = {"format", "version", "kind", "meta",
                                             "tensors"};
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
            what, AMTL_FORMAT_NAME, show(b, sizeof b, o->via.str.ptr, o->via.str.size));

    o = field[K_VERSION];
    if (!o)
        return amtl_error(st, AMTL_EDATA, "%s: no \"version\" field", what);
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return amtl_error(
            st, AMTL_EDATA,
            "%s: unsupported format version %lld (this build reads version %d)", what,
            (long long)o->via.i64, AMTL_FORMAT_VERSION);
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return amtl_error(st, AMTL_EDATA,
                          "%s: field \"version\" must be an integer, got %s", what,
                          obj_type_name(o));
    if (o->via.u64 != AMTL_FORMAT_VERSION)
        return amtl_error(
            st, AMTL_EDATA,
            "%s: unsupported format version %llu (this build reads version %d)", what,
            (unsigned long long)o->via.u64, AMTL_FORMAT_VERSION);

    o = field[K_KIND];
    if (!o)
        return amtl_error(st, AMTL_EDATA, "%s: no \"kind\" field", what);
    if (o->type != MSGPACK_OBJECT_STR)
        return amtl_error(st, AMTL_EDATA, "%s: field \"kind\" must be a string, got %s",
                          what, obj_type_name(o));
    if (expected_kind && !str_is(o, expected_kind))
        return amtl_error(
            st, AMTL_EDATA, "%s: expected a file of kind \"%s\", got \"%s\"", what,
            expected_kind, show(b, sizeof b, o->via.str.ptr, o->via.str.size));
    if (o->via.str.size == 0 || o->via.str.size >= sizeof f->kind ||
        memchr(o->via.str.ptr, '\0', o->via.str.size))
        return amtl_error(st, AMTL_EDATA, "%s: invalid kind \"%s\"", what,
                          show(b, sizeof b, o->via.str.ptr, o->via.str.size));
    memcpy(f->kind, o->via.str.ptr, o->via.str.size);
    f->kind[o->via.str.size] = '\0';
    f->version = AMTL_FORMAT_VERSION;

    if (repeated)
        return amtl_error(
            st, AMTL_EDATA, "%s: duplicate field \"%s\"", what,
            show(b, sizeof b, repeated->via.str.ptr, repeated->via.str.size));
    if (unknown) {
        if (unknown->type != MSGPACK_OBJECT_STR)
            return amtl_error(st, AMTL_EDATA, "%s: a top-level key is %s, not a string",
                              what, obj_type_name(unknown));
        return amtl_error(
            st, AMTL_EDATA, "%s: unknown top-level field \"%s\"", what,
            show(b2, sizeof b2, unknown->via.str.ptr, unknown->via.str.size));
    }
    if (!field[K_META])
        return amtl_error(st, AMTL_EDATA, "%s: no \"meta\" field", what);
    if (!field[K_TENSORS])
        return amtl_error(st, AMTL_EDATA, "%s: no \"tensors\" field", what);
    if (decode_meta(f, field[K_META], what, st))
        return -1;
    return decode_tensors(f, field[K_TENSORS], what, st);
}

int amtl_file_decode(amtl_file *f, const void *buf, size_t len, const char *what,
                     const char *expected_kind, amtl_status *st)
{
    memset(f, 0, sizeof *f);
    if (!what)
        what = "input";
    if (check_host(st))
        return -1;
    const unsigned char *p = buf;
    if (len == 0)
        return amtl_error(st, AMTL_EDATA, "%s: empty file, not an amtl file", what);
    if (!is_map_byte(p[0]))
        return amtl_error(st, AMTL_EDATA,
                          "%s: not an amtl file (it does not start with a msgpack map)",
                          what);
    if (mp_validate(p, len, what, st))
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
        rc = decode_root(f, &u.data, what, expected_kind, st);
    msgpack_unpacked_destroy(&u);
    if (rc)
        amtl_file_free(f);
    return rc;
}

/* ---- files ----------------------------------------------------------- */

int amtl_file_write(const amtl_file *f, const char *path, amtl_status *st)
{
    void *buf;
    size_t len;
    /* MessagePack is binary: on a terminal it would be noise, not output */
    if (strcmp(path, "-") == 0 && isatty(STDOUT_FILENO))
        return amtl_error(st, AMTL_EUSAGE,
                          "standard output is a terminal: not writing a binary %s file there "
                          "(redirect it, or give a file name)",
                          f->kind[0] ? f->kind : "amtl");
    if (amtl_file_encode(f, &buf, &len, st))
        return amtl_error_context(st, "cannot write '%s'", path);
    int rc = amtl_io_write_atomic(path, buf, len, st);
    free(buf);
    return rc;
}

int amtl_file_read(amtl_file *f, const char *path, const char *expected_kind,
                   amtl_status *st)
{
    memset(f, 0, sizeof *f);
    size_t cap = READ_CAP_BYTES > SIZE_MAX ? SIZE_MAX : (size_t)READ_CAP_BYTES;
    void *buf;
    size_t len;
    if (amtl_io_read_all(path, cap, &buf, &len, st))
        return -1;
    int rc = amtl_file_decode(f, buf, len, strcmp(path, "-") == 0 ? "<stdin>" : path,
                              expected_kind, st);
    free(buf);
    return rc;
}

/* Writes all of buf, retrying short writes and EINTR.  Returns 0, or -1 with
 * errno set (ENOSPC, EFBIG under RLIMIT_FSIZE, EIO, ...). */
static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        size_t chunk = len > ((size_t)1 << 30) ? (size_t)1 << 30 : len;
        ssize_t n = write(fd, p, chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = ENOSPC; /* a regular file that accepts nothing is full */
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    /* Some file systems cannot sync a directory; the rename still stands. */
    if (rc && (errno == EINVAL || errno == ENOTSUP))
        rc = 0;
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int amtl_io_write_atomic(const char *path, const void *buf, size_t len, amtl_status *st)
{
    if (strcmp(path, "-") == 0) {
        if (write_all(STDOUT_FILENO, buf, len))
            return amtl_error(st, AMTL_EIO, "cannot write to standard output: %s",
                              strerror(errno));
        return 0;
    }
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base)
        return amtl_error(st, AMTL_EIO, "cannot write '%s': not a file name", path);
    size_t dir_len = slash ? (size_t)(slash - path) : 1;
    char *dir = slash ? dup_mem(path, dir_len ? dir_len : 1) : dup_mem(".", 1);
    size_t tl = (dir ? strlen(dir) : 0) + strlen(base) + 16;
    char *tmp = dir ? malloc(tl) : NULL;
    if (!tmp) {
        free(dir);
        free(tmp);
        return amtl_error(st, AMTL_ENOMEM, "cannot write '%s': out of memory", path);
    }
    snprintf(tmp, tl, "%s%s.%s.tmpXXXXXX", dir, strcmp(dir, "/") ? "/" : "", base);

    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        amtl_error(st, AMTL_EIO,
                   "cannot write '%s': cannot create a temp file in '%s': %s", path, dir,
                   strerror(e));
        free(dir);
        free(tmp);
        return -1;
    }
    /* mkstemp creates mode 0600; give the file the mode a plain create would.
     * Reading the umask means setting it, so it is put straight back. */
    mode_t mask = umask(0);
    umask(mask);
    const char *step = "cannot write";
    int e = 0;
    if (fchmod(fd, 0666 & ~mask) || write_all(fd, buf, len)) {
        e = errno;
    } else if (fsync(fd)) {
        e = errno;
        step = "cannot sync";
    }
    if (close(fd) && !e) {
        e = errno;
        step = "cannot write";
    }
    if (!e && rename(tmp, path)) {
        e = errno;
        step = "cannot replace";
    }
    if (e) {
        unlink(tmp);
        amtl_error(st, AMTL_EIO, "%s '%s': %s", step, path, strerror(e));
        free(dir);
        free(tmp);
        return -1;
    }
    int rc = 0;
    if (fsync_dir(dir))
        rc = amtl_error(st, AMTL_EIO, "cannot sync directory '%s' after writing '%s': %s",
                        dir, path, strerror(errno));
    free(dir);
    free(tmp);
    return rc;
}

int amtl_io_read_all(const char *path, size_t max_bytes, void **buf, size_t *len,
                     amtl_status *st)
{
    *buf = NULL;
    *len = 0;
    int is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : path;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return amtl_error(st, AMTL_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb)) {
        int e = errno;
        if (!is_stdin)
            close(fd);
        return amtl_error(st, AMTL_EIO, "cannot read '%s': %s", name, strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) {
        if (!is_stdin)
            close(fd);
        return amtl_error(st, AMTL_EIO, "cannot read '%s': %s", name, strerror(EISDIR));
    }
    /* A regular file is read into one buffer of its size; a pipe or device
     * (or a file claiming size 0, as some pseudo-files do) into a buffer that
     * doubles. */
    int regular = S_ISREG(sb.st_mode) && sb.st_size > 0;
    if (regular && (uint64_t)sb.st_size > max_bytes) {
        if (!is_stdin)
            close(fd);
        return amtl_error(st, AMTL_EDATA,
                          "%s: file is %lld bytes, more than the limit of %zu", name,
                          (long long)sb.st_size, max_bytes);
    }
    size_t cap = regular ? (size_t)sb.st_size : (size_t)1 << 16;
    size_t n = 0;
    char *p = malloc(cap ? cap : 1);
    int err = 0, too_big = 0;
    if (!p)
        err = ENOMEM;
    while (!err) {
        if (n == cap) {
            if (regular)
                break; /* the size fstat reported has been read */
            if (cap > max_bytes) {
                too_big = 1;
                break;
            }
            size_t ncap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
            if (ncap > max_bytes)
                ncap = max_bytes + (max_bytes < SIZE_MAX);
            char *q = realloc(p, ncap);
            if (!q) {
                err = ENOMEM;
                break;
            }
            p = q;
            cap = ncap;
        }
        size_t want = cap - n;
        if (want > ((size_t)1 << 30))
            want = (size_t)1 << 30;
        ssize_t r = read(fd, p + n, want);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            err = errno;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (!is_stdin)
        close(fd);
    if (!err && !too_big && n > max_bytes)
        too_big = 1;
    if (err || too_big) {
        free(p);
        if (too_big)
            return amtl_error(st, AMTL_EDATA,
                              "%s: input is more than the limit of %zu bytes", name,
                              max_bytes);
        if (err == ENOMEM)
            return amtl_error(st, AMTL_ENOMEM, "cannot read '%s': out of memory", name);
        return amtl_error(st, AMTL_EIO, "cannot read '%s': %s", name, strerror(err));
    }
    *buf = p;
    *len = n;
    return 0;
}

/* ---- text buffer ----------------------------------------------------- */

void amtl_strbuf_printf(amtl_strbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    size_t room = b->cap - b->len;
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n >= room) {
        size_t need = b->len + (size_t)n + 1, cap = b->cap ? b->cap : 256;
        while (cap < need && cap <= SIZE_MAX / 2)
            cap *= 2;
        char *p = cap >= need ? realloc(b->data, cap) : NULL;
        if (p) {
            b->data = p;
            b->cap = cap;
            vsnprintf(b->data + b->len, cap - b->len, fmt, again);
        } else {
            n = -1;
        }
    }
    va_end(again);
    if (n < 0) {
        b->failed = 1;
        if (b->data)
            b->data[b->len] = '\0'; /* undo a partial write past the old end */
        return;
    }
    b->len += (size_t)n;
}

void amtl_strbuf_free(amtl_strbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

int amtl_utf8_len(const unsigned char *p)
{
    unsigned char ch = p[0];
    int len = ch < 0x80 ? 1 : ch >= 0xf0 ? (ch <= 0xf4 ? 4 : 0) : ch >= 0xe0 ? 3 : ch >= 0xc2 ? 2 : 0;
    for (int i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (len == 3 && ((ch == 0xe0 && p[1] < 0xa0) || (ch == 0xed && p[1] >= 0xa0)))
        return 0;
    if (len == 4 && ((ch == 0xf0 && p[1] < 0x90) || (ch == 0xf4 && p[1] >= 0x90)))
        return 0;
    return len;
}

void amtl_strbuf_json_str(amtl_strbuf *o, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    amtl_strbuf_printf(o, "\"");
    while (*p) {
        int len = amtl_utf8_len(p);
        if (*p == '"' || *p == '\\')
            amtl_strbuf_printf(o, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            amtl_strbuf_printf(o, "\\u%04x", *p);
        else if (len)
            amtl_strbuf_printf(o, "%.*s", len, (const char *)p);
        else
            amtl_strbuf_printf(o, "\\ufffd");
        p += len ? len : 1;
    }
    amtl_strbuf_printf(o, "\"");
}

void amtl_strbuf_json_num(amtl_strbuf *o, double v, int decimals)
{
    if (isfinite(v))
        amtl_strbuf_printf(o, "%.*f", decimals, v);
    else
        amtl_strbuf_printf(o, "null");
}

void amtl_json_str(FILE *f, const char *s)
{
    amtl_strbuf b = {0};
    amtl_strbuf_json_str(&b, s);
    if (!b.failed && b.data)
        fputs(b.data, f);
    amtl_strbuf_free(&b);
}

void amtl_json_num(FILE *f, double v, int decimals)
{
    if (isfinite(v))
        fprintf(f, "%.*f", decimals, v);
    else
        fputs("null", f);
}
