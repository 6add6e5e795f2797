/* envelope.c — the amtl file in memory (metadata, named tensors), its
 * MessagePack encoding, and reading and writing whole files (see envelope.h).
 * Decoding untrusted bytes is envelope_decode.c.
 */
#include "format/envelope.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>

#include "format/envelope_internal.h"
#include "format/read_all.h"
#include "format/safe_write.h"

/* Files can be large (datasets), but a reader must still refuse absurd ones. */
#define READ_CAP_BYTES ((uint64_t)64 << 30)

static int host_is_little_endian(void)
{
    const uint32_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

int amtl_envelope_check_host(amtl_status *st)
{
    /* Tensor bytes are stored and loaded with memcpy. */
    if (!host_is_little_endian())
        return amtl_error(st, AMTL_EIO,
                          "amtl files are little-endian and this host is not; "
                          "reading and writing them is not supported here");
    return 0;
}

char *amtl_envelope_dup(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* "[64,64]"; with any_star, a negative entry (a wildcard) prints as "*". */
void amtl_envelope_format_shape(char *out, size_t cap, int ndim, const int64_t *shape,
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
int amtl_envelope_shape_bytes(amtl_dtype dt, int ndim, const int64_t *shape,
                              size_t *bytes)
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
    if (f->map)
        munmap(f->map, f->map_len);
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
    char *v = amtl_envelope_dup(value, strlen(value));
    if (!v)
        return amtl_error(st, AMTL_ENOMEM, "out of memory setting metadata '%s'", key);
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0) {
            free(f->meta[i].value);
            f->meta[i].value = v;
            return 0;
        }
    char *k = amtl_envelope_dup(key, strlen(key));
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

/* How add_tensor holds the data: a copy (amtl_file_add), the caller's
 * array (amtl_file_add_view), or none, the fill making the bytes
 * (amtl_file_add_stream). */
typedef enum { ADD_COPY, ADD_VIEW, ADD_STREAM } add_mode;

static amtl_tensor *add_tensor(amtl_file *f, const char *name, amtl_dtype dt, int ndim,
                               const int64_t *shape, const void *data, add_mode mode,
                               amtl_tensor_fill fill, void *fill_ctx, amtl_status *st)
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
    if (amtl_envelope_shape_bytes(dt, ndim, shape, &bytes)) {
        char s[160];
        amtl_envelope_format_shape(s, sizeof s, ndim, shape, 0);
        amtl_error(st, AMTL_EDATA,
                   "tensor '%s': invalid shape %s (negative or too large)", name, s);
        return NULL;
    }
    char *nm = amtl_envelope_dup(name, strlen(name));
    if (!nm || grow((void **)&f->tensors, &f->cap_tensors, f->n_tensors + 1,
                    sizeof *f->tensors)) {
        free(nm);
        amtl_error(st, AMTL_ENOMEM, "out of memory adding tensor '%s'", name);
        return NULL;
    }
    amtl_named_tensor *nt = &f->tensors[f->n_tensors];
    if (mode != ADD_COPY) {
        if (mode == ADD_VIEW && bytes && !data) {
            free(nm);
            amtl_error(st, AMTL_EDATA, "tensor '%s': a view of no data", name);
            return NULL;
        }
        memset(&nt->t, 0, sizeof nt->t);
        nt->t.dtype = dt;
        nt->t.ndim = ndim;
        memcpy(nt->t.shape, shape, (size_t)ndim * sizeof *shape);
        nt->t.data = (void *)data; /* not owned: never written through */
        nt->t.owns = 0;
    } else {
        if (amtl_tensor_alloc(&nt->t, dt, ndim, shape, st)) {
            free(nm);
            amtl_error_context(st, "tensor '%s'", name);
            return NULL;
        }
        if (data && bytes)
            memcpy(nt->t.data, data, bytes);
    }
    nt->name = nm;
    nt->fill = fill;
    nt->fill_ctx = fill_ctx;
    f->n_tensors++;
    return &nt->t;
}

amtl_tensor *amtl_file_add(amtl_file *f, const char *name, amtl_dtype dt, int ndim,
                           const int64_t *shape, const void *data, amtl_status *st)
{
    return add_tensor(f, name, dt, ndim, shape, data, ADD_COPY, NULL, NULL, st);
}

amtl_tensor *amtl_file_add_stream(amtl_file *f, const char *name, amtl_dtype dt, int ndim,
                                  const int64_t *shape, amtl_tensor_fill fill, void *ctx,
                                  amtl_status *st)
{
    return add_tensor(f, name, dt, ndim, shape, NULL, ADD_STREAM, fill, ctx, st);
}

amtl_tensor *amtl_file_add_view(amtl_file *f, const char *name, amtl_dtype dt, int ndim,
                                const int64_t *shape, const void *data, amtl_status *st)
{
    return add_tensor(f, name, dt, ndim, shape, data, ADD_VIEW, NULL, NULL, st);
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
        amtl_envelope_format_shape(have, sizeof have, t->ndim, t->shape, 0);
        if (shape)
            amtl_envelope_format_shape(want, sizeof want, ndim, shape, 1);
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

/* A tensor's name and the head of its map up to its data, the shortest
 * encoding lengthened by pad (0 to AMTL_DATA_ALIGN - 1) bytes: 1 by the key
 * "data" as a str 8, 2 by the shape as an array 16, 4 by the dtype as a
 * str 32.  Any MessagePack reader reads the same values either way. */
static int pack_tensor_head(msgpack_packer *pk, const char *name, const amtl_tensor *t,
                            size_t bytes, unsigned pad)
{
    const char *dt = amtl_dtype_name(t->dtype);
    unsigned char h[8];
    size_t n = strlen(dt);
    if (pack_cstr(pk, name) || msgpack_pack_map(pk, 4) || pack_cstr(pk, "dtype"))
        return -1;
    if (pad & 4) {
        h[0] = 0xdb;
        amtl_envelope_put_be32(h + 1, (uint32_t)n);
        if (pk->callback(pk->data, (const char *)h, 5) ||
            msgpack_pack_str_body(pk, dt, n))
            return -1;
    } else if (pack_cstr(pk, dt)) {
        return -1;
    }
    if (pack_cstr(pk, "shape"))
        return -1;
    if (pad & 2) {
        h[0] = 0xdc;
        h[1] = 0;
        h[2] = (unsigned char)t->ndim;
        if (pk->callback(pk->data, (const char *)h, 3))
            return -1;
    } else if (msgpack_pack_array(pk, (size_t)t->ndim)) {
        return -1;
    }
    for (int d = 0; d < t->ndim; d++)
        if (msgpack_pack_int64(pk, t->shape[d]))
            return -1;
    if (pad & 1) {
        if (pk->callback(pk->data, "\xd9\x04" "data", 6))
            return -1;
    } else if (pack_cstr(pk, "data")) {
        return -1;
    }
    return msgpack_pack_bin(pk, bytes);
}

/* The checks of an encoding, and an upper bound of its size (every header
 * at most 5 bytes, every integer at most 9). */
static int encode_check(const amtl_file *f, size_t *bound_out, amtl_status *st)
{
    if (amtl_envelope_check_host(st))
        return -1;
    if (!f->kind[0])
        return amtl_error(st, AMTL_EDATA, "cannot encode a file without a kind");
    size_t bound = 256;
    int over = 0;
    for (int i = 0; i < f->n_meta; i++) {
        size_t k = strlen(f->meta[i].key), v = strlen(f->meta[i].value);
        if (k > AMTL_MP_MAX_LEN || v > AMTL_MP_MAX_LEN)
            return amtl_error(st, AMTL_EDATA, "metadata '%.100s' is longer than 4 GiB",
                              f->meta[i].key);
        over |= add_size(&bound, 10) | add_size(&bound, k) | add_size(&bound, v);
    }
    for (int i = 0; i < f->n_tensors; i++) {
        const amtl_named_tensor *nt = &f->tensors[i];
        size_t bytes;
        if (amtl_envelope_shape_bytes(nt->t.dtype, nt->t.ndim, nt->t.shape,
                                      &bytes))
            return amtl_error(st, AMTL_EDATA, "tensor '%s' has an invalid dtype or shape",
                              nt->name);
        if (bytes > AMTL_MP_MAX_LEN)
            return amtl_error(st, AMTL_EDATA,
                              "tensor '%s' has %zu bytes, more than the 4 GiB - 1 a "
                              "msgpack bin can hold",
                              nt->name, bytes);
        if (bytes && !nt->t.data && !nt->fill)
            return amtl_error(st, AMTL_EDATA, "tensor '%s' has no data", nt->name);
        size_t name_len = strlen(nt->name);
        if (name_len > AMTL_MP_MAX_LEN)
            return amtl_error(st, AMTL_EDATA, "a tensor name is longer than 4 GiB");
        over |=
            add_size(&bound, 128) | add_size(&bound, name_len) | add_size(&bound, bytes);
    }
    if (over)
        return amtl_error(st, AMTL_ENOMEM, "encoded file would not fit in memory");
    *bound_out = bound;
    return 0;
}

/* A tensor's bytes to put, its CRC computed on the way. */
typedef struct {
    amtl_put_fn put;
    void *ctx;
    uint32_t crc;
} crc_put;

static int put_crc(void *ctx, const void *p, size_t n, amtl_status *st)
{
    crc_put *c = ctx;
    c->crc = amtl_envelope_crc32(c->crc, p, n);
    return c->put(c->ctx, p, n, st);
}

/* The encoding of a checked file, in order, to put: the MessagePack
 * headers gather in a small buffer that goes out before each tensor's data,
 * and the data goes out from the tensor itself, so nothing the size of the
 * file is held. */
static int encode_emit(const amtl_file *f, amtl_put_fn put, void *ctx, amtl_status *st)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    /* Every pack call returns 0 or -1 (a failed buffer growth), and every
     * flush 0 or -1 with st set; the calls must run in order, so each is its
     * own statement.  e: 1 out of memory, 2 the sink failed. */
    int e = 0;
#define PACK(call)                                                                       \
    do {                                                                                 \
        if (!e && (call))                                                                \
            e = 1;                                                                       \
    } while (0)
    /* The checksum runs along: the header bytes as they go out, then each
     * tensor's data through the CRC computed for its own "crc32", combined
     * rather than read twice. */
    uint32_t crc = 0;
    unsigned char sum[4];
    size_t out = 0; /* bytes put so far: where the next byte of the file is */
#define FLUSH()                                                                          \
    do {                                                                                 \
        if (!e && sb.size) { /* (zlib's crc32 of NULL is its start value, not crc) */    \
            crc = amtl_envelope_crc32(crc, sb.data, sb.size);                            \
            if (put(ctx, sb.data, sb.size, st))                                          \
                e = 2;                                                                   \
            out += sb.size;                                                              \
            msgpack_sbuffer_clear(&sb);                                                  \
        }                                                                                \
    } while (0)
    PACK(msgpack_pack_map(&pk, 6));
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
        /* the header in its shortest encoding; where that leaves the data
         * off an AMTL_DATA_ALIGN boundary, again with longer ones */
        size_t mark = sb.size;
        PACK(pack_tensor_head(&pk, f->tensors[i].name, t, bytes, 0));
        unsigned pad = (unsigned)(-(out + sb.size) & (AMTL_DATA_ALIGN - 1));
        if (pad) {
            sb.size = mark;
            PACK(pack_tensor_head(&pk, f->tensors[i].name, t, bytes, pad));
        }
        FLUSH();
        crc_put cp = {put, ctx, 0};
        if (!e && amtl_file_tensor_bytes(f, i, put_crc, &cp, st))
            e = 2;
        uint32_t data_crc = cp.crc;
        out += bytes;
        crc = amtl_envelope_crc32_combine(crc, data_crc, bytes);
        amtl_envelope_put_be32(sum, data_crc);
        PACK(pack_cstr(&pk, "crc32"));
        PACK(msgpack_pack_bin(&pk, 4));
        PACK(msgpack_pack_bin_body(&pk, sum, 4));
    }
    /* last, so that it ends the file: AMTL_SUM_TRAILER and the CRC */
    PACK(pack_cstr(&pk, "crc32"));
    PACK(msgpack_pack_bin(&pk, 4));
    FLUSH();
    amtl_envelope_put_be32(sum, crc);
    if (!e && put(ctx, sum, 4, st))
        e = 2;
#undef FLUSH
#undef PACK
    msgpack_sbuffer_destroy(&sb);
    if (e == 1)
        return amtl_error(st, AMTL_ENOMEM, "out of memory encoding a file");
    return e ? -1 : 0;
}

/* The sink of a buffer allocated to the bound. */
typedef struct {
    char *buf;
    size_t len, cap;
} mem_sink;

static int put_mem(void *ctx, const void *p, size_t n, amtl_status *st)
{
    mem_sink *m = ctx;
    if (n > m->cap - m->len) /* the bound is an upper bound: never */
        return amtl_error(st, AMTL_EDATA, "encoding overran its size bound");
    memcpy(m->buf + m->len, p, n);
    m->len += n;
    return 0;
}

int amtl_file_encode(const amtl_file *f, void **buf, size_t *len, amtl_status *st)
{
    *buf = NULL;
    *len = 0;
    size_t bound;
    if (encode_check(f, &bound, st))
        return -1;
    /* allocated once instead of doubling through gigabytes of tensor data */
    mem_sink m = {malloc(bound), 0, bound};
    if (!m.buf)
        return amtl_error(st, AMTL_ENOMEM, "out of memory encoding a %zu-byte file", bound);
    if (encode_emit(f, put_mem, &m, st)) {
        free(m.buf);
        return -1;
    }
    *buf = m.buf;
    *len = m.len;
    return 0;
}
/* ---- files ----------------------------------------------------------- */

/* The sink of an open file. */
static int put_fd(void *ctx, const void *p, size_t n, amtl_status *st)
{
    return amtl_io_write_fd(*(const int *)ctx, p, n, st);
}

static int fill_file(void *ctx, int fd, amtl_status *st)
{
    return encode_emit(ctx, put_fd, &fd, st);
}

int amtl_file_write(const amtl_file *f, const char *path, amtl_status *st)
{
    /* MessagePack is binary: on a terminal it would be noise, not output */
    if (strcmp(path, "-") == 0 && isatty(STDOUT_FILENO))
        return amtl_error(st, AMTL_EUSAGE,
                          "standard output is a terminal: not writing a binary %s file there "
                          "(redirect it, or give a file name)",
                          f->kind[0] ? f->kind : "amtl");
    size_t bound;
    if (encode_check(f, &bound, st))
        return amtl_error_context(st, "cannot write '%s'", path);
    /* streamed: the tensors go from memory to the file without a copy */
    return amtl_io_write_atomic_fill(path, fill_file, (void *)f, st);
}

/* One line on stderr for a file without a checksum, once per file: a tool
 * may read the same file twice (the config first, then the weights). */
static void old_file_notice(const char *what, int version)
{
    static char last[256];
    if (!strncmp(last, what, sizeof last - 1))
        return;
    snprintf(last, sizeof last, "%s", what);
    fprintf(stderr,
            "%s: notice: %s has no checksum (format version %d, written before files "
            "carried one); it is read without that check\n",
            program_invocation_short_name, what, version);
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
    const char *what = strcmp(path, "-") == 0 ? "<stdin>" : path;
    int rc = amtl_file_decode(f, buf, len, what, expected_kind, st);
    free(buf);
    if (rc == 0 && f->checksum == AMTL_CHECKSUM_NONE)
        old_file_notice(what, f->version);
    return rc;
}

/* Opens path and verifies its checksum a piece at a time, as amtl_file_read
 * checks it before anything else: 1 with *fd open and *len its size when
 * the regular file ends with a checksum that matches; 0 when it does not (a
 * damaged or version 1 file, or not a regular file: amtl_file_read says
 * which, with its message naming the damage or its notice); -1 with st
 * when it cannot be opened. */
static int open_verified(const char *path, int *fd, size_t *len, amtl_status *st)
{
    /* O_NONBLOCK: a FIFO is not waited for here, only refused */
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (*fd < 0)
        return amtl_error(st, AMTL_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    int sealed = 0;
    amtl_status ignored;
    if (fstat(*fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0 &&
        (uint64_t)sb.st_size <= SIZE_MAX &&
        !amtl_envelope_verify_fd(*fd, (size_t)sb.st_size, path, &sealed, &ignored) && sealed) {
        *len = (size_t)sb.st_size;
        return 1;
    }
    close(*fd);
    *fd = -1;
    return 0;
}

int amtl_file_map(amtl_file *f, const char *path, const char *expected_kind,
                  amtl_status *st)
{
    memset(f, 0, sizeof *f);
    if (!strcmp(path, "-"))
        return amtl_file_read(f, path, expected_kind, st);
    int fd;
    size_t len;
    int ok = open_verified(path, &fd, &len, st);
    if (ok < 0)
        return -1;
    if (!ok)
        return amtl_file_read(f, path, expected_kind, st);
    void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return amtl_file_read(f, path, expected_kind, st);
    if (amtl_envelope_decode_borrowed(f, map, len, path, expected_kind, st)) {
        munmap(map, len);
        return -1;
    }
    f->map = map;
    f->map_len = len;
    return 0;
}

void amtl_file_release(const amtl_file *f, const void *p, size_t n)
{
    const char *m = f->map, *a = p;
    if (!m || !a || a < m || n > f->map_len || (size_t)(a - m) > f->map_len - n)
        return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)a + page - 1) / page * page, hi = ((uintptr_t)a + n) / page * page;
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

int amtl_file_read_head(amtl_file *f, const char *path, const char *expected_kind,
                        amtl_status *st)
{
    memset(f, 0, sizeof *f);
    if (!strcmp(path, "-"))
        return amtl_error(st, AMTL_EUSAGE, "the header alone cannot be read from stdin");
    int fd;
    size_t flen;
    int ok = open_verified(path, &fd, &flen, st);
    if (ok < 0)
        return -1;
    if (!ok) {
        /* damaged, or without a checksum (version 1): the whole reader says
         * which part is damaged, or reads the old file with its notice */
        if (amtl_file_read(f, path, expected_kind, st))
            return -1;
        for (int i = 0; i < f->n_tensors; i++) {
            amtl_tensor_free(&f->tensors[i].t);
            free(f->tensors[i].name);
        }
        f->n_tensors = 0;
        return 0;
    }
    size_t cap = 64 << 10, len = 0;
    unsigned char *buf = NULL;
    int rc = -1;
    for (;;) {
        unsigned char *nb = realloc(buf, cap);
        if (!nb) {
            amtl_error(st, AMTL_ENOMEM, "%s: out of memory", path);
            break;
        }
        buf = nb;
        /* the prefix grows to cap bytes, or to the end of the file */
        while (len < cap) {
            ssize_t r = pread(fd, buf + len, cap - len, (off_t)len);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                amtl_error(st, AMTL_EIO, "cannot read '%s': %s", path, strerror(errno));
                goto out;
            }
            if (r == 0)
                break;
            len += (size_t)r;
        }
        size_t need;
        rc = amtl_file_decode_head(f, buf, len, &need, path, expected_kind, st);
        if (rc <= 0)
            break;
        rc = -1;
        if (len < cap) {
            amtl_error(st, AMTL_EDATA, "%s: corrupt file: it ends at byte %zu before its "
                                       "tensors", path, len);
            break;
        }
        if (cap >= AMTL_HEAD_MAX) {
            amtl_error(st, AMTL_EDATA, "%s: the header (before the tensors) is larger than "
                                       "%zu MiB", path, AMTL_HEAD_MAX >> 20);
            break;
        }
        cap = need > 2 * cap ? need : 2 * cap;
        if (cap > AMTL_HEAD_MAX)
            cap = AMTL_HEAD_MAX;
    }
    if (rc == 0)
        f->checksum = AMTL_CHECKSUM_VERIFIED;
out:
    free(buf);
    close(fd);
    return rc;
}
