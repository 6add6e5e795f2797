/* test_io.c — the amtl file format: round trips, every class of malformed
 * input, atomic writes and reads from files and pipes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <msgpack.h>

#include "format/io.h"
#include "base/rng.h"
#include "test.h"

static const amtl_dtype all_dtypes[] = {AMTL_F32, AMTL_I32, AMTL_I64, AMTL_U8, AMTL_F64};
#define N_ALL_DTYPES (int)(sizeof all_dtypes / sizeof all_dtypes[0])

/* Random, non-zero values of the tensor's dtype. */
static void *random_data(amtl_rng *r, amtl_dtype dt, size_t n)
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

static char *path_in_tmp(const char *name)
{
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", test_tmpdir(), name);
    return p;
}

static int write_bytes(const char *path, const void *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return -1;
    size_t n = len ? fwrite(buf, 1, len, fp) : 0;
    return (fclose(fp) == 0 && n == len) ? 0 : -1;
}

/* Reads a whole file with stdio, independently of the code under test. */
static unsigned char *slurp(const char *path, size_t *len)
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

/* Counts entries in dir whose name starts with prefix. */
static int count_entries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

static int file_is_empty(const amtl_file *f)
{
    return f->n_meta == 0 && f->n_tensors == 0 && !f->meta && !f->tensors;
}

/* Writes a reason and returns 0, for checks that explain their failure. */
static int why_not(char *why, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int why_not(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return 0;
}

/* Two files hold the same kind, meta (in order) and tensors (in order, bit-exact). */
static int files_equal(const amtl_file *a, const amtl_file *b, char *why, size_t n)
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
        if (((uintptr_t)y->data % AMTL_ALIGN) || !y->owns)
            return why_not(why, n, "tensor %s not owned and aligned", a->tensors[i].name);
    }
    return 1;
}

/* A small valid file: kind "model", two meta entries, two tensors. */
static int make_sample(amtl_file *f, amtl_rng *r, amtl_status *st)
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

/* ---- hand-made msgpack for malformed files --------------------------- */

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} mp;

static void mp_begin(mp *m)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

static void mp_end(mp *m) { msgpack_sbuffer_destroy(&m->sb); }

static void mp_s(mp *m, const char *s)
{
    msgpack_pack_str_with_body(&m->pk, s, strlen(s));
}

static void mp_raw(mp *m, const void *p, size_t n)
{
    msgpack_sbuffer_write(&m->sb, p, n);
}

/* The envelope up to and including "meta": {"k": "v"}; the caller then adds
 * "tensors" (entries counts it). */
static void mp_head(mp *m, uint32_t entries, const char *format, int64_t version,
                    const char *kind)
{
    msgpack_pack_map(&m->pk, entries);
    mp_s(m, "format");
    mp_s(m, format);
    mp_s(m, "version");
    msgpack_pack_int64(&m->pk, version);
    mp_s(m, "kind");
    mp_s(m, kind);
    mp_s(m, "meta");
    msgpack_pack_map(&m->pk, 1);
    mp_s(m, "k");
    mp_s(m, "v");
}

/* One tensor entry whose data is nbytes of filler. */
static void mp_tensor(mp *m, const char *name, const char *dtype, int ndim,
                      const int64_t *dims, size_t nbytes)
{
    mp_s(m, name);
    msgpack_pack_map(&m->pk, 3);
    mp_s(m, "dtype");
    mp_s(m, dtype);
    mp_s(m, "shape");
    msgpack_pack_array(&m->pk, (size_t)ndim);
    for (int i = 0; i < ndim; i++)
        msgpack_pack_int64(&m->pk, dims[i]);
    mp_s(m, "data");
    msgpack_pack_bin(&m->pk, nbytes);
    unsigned char *fill = malloc(nbytes + 1);
    memset(fill, 0xab, nbytes + 1);
    msgpack_pack_bin_body(&m->pk, fill, nbytes);
    free(fill);
}

/* A valid file with the tensor given, so tests vary one thing at a time. */
static void mp_one_tensor(mp *m, const char *name, const char *dtype, int ndim,
                          const int64_t *dims, size_t nbytes)
{
    mp_begin(m);
    mp_head(m, 5, "amtl", 1, "model");
    mp_s(m, "tensors");
    msgpack_pack_map(&m->pk, 1);
    mp_tensor(m, name, dtype, ndim, dims, nbytes);
}

/* Decoding must fail with code and a message "bad.amtl: ...sub..." that is
 * lower-case and has no full stop, and leave f empty. */
static int decode_fails(const void *buf, size_t len, const char *kind, int code,
                        const char *sub, char *why, size_t wn)
{
    amtl_file f;
    amtl_status st = {0};
    memset(&f, 0x5a, sizeof f);
    int rc = amtl_file_decode(&f, buf, len, "bad.amtl", kind, &st);
    if (rc == 0) {
        snprintf(why, wn, "decode succeeded (expected \"%s\")", sub);
        amtl_file_free(&f);
        return 0;
    }
    size_t ml = strlen(st.msg);
    if (rc != -1 || st.code != code || strncmp(st.msg, "bad.amtl: ", 10) ||
        (sub && !strstr(st.msg, sub)) || ml == 0 || st.msg[ml - 1] == '.' ||
        !(st.msg[10] >= 'a' && st.msg[10] <= 'z')) {
        snprintf(why, wn, "rc %d code %d msg \"%s\" (expected code %d, \"%s\")", rc,
                 st.code, st.msg, code, sub ? sub : "");
        return 0;
    }
    if (!file_is_empty(&f)) {
        snprintf(why, wn, "file not left empty after \"%s\"", st.msg);
        return 0;
    }
    amtl_file_free(&f);
    return 1;
}

#define CHECK_DECODE_FAILS(buf, len, kind, code, sub)                                    \
    do {                                                                                 \
        char why_[1400];                                                                 \
        CHECKF(decode_fails((buf), (len), (kind), (code), (sub), why_, sizeof why_),     \
               "%s", why_);                                                              \
    } while (0)

#define CHECK_MP_FAILS(m, sub)                                                           \
    do {                                                                                 \
        char why_[1400];                                                                 \
        int ok_ = decode_fails((m)->sb.data, (m)->sb.size, NULL, AMTL_EDATA, (sub),      \
                               why_, sizeof why_);                                       \
        mp_end(m);                                                                       \
        CHECKF(ok_, "%s", why_);                                                         \
    } while (0)

/* ---- round trips ----------------------------------------------------- */

static void test_roundtrip_every_dtype_and_shape(void)
{
    static const struct {
        int ndim;
        int64_t shape[AMTL_MAX_DIMS];
    } shapes[] = {
        {0, {0}},       {1, {7}},          {1, {0}},          {2, {3, 5}},
        {3, {2, 0, 3}}, {4, {2, 3, 4, 5}}, {4, {1, 1, 1, 1}}, {2, {1, 33}},
    };
    amtl_rng r;
    amtl_rng_seed(&r, 11);
    amtl_status st = {0};
    amtl_file f;
    amtl_file_init(&f, "checkpoint");
    int n = 0;
    for (int d = 0; d < N_ALL_DTYPES; d++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            char name[64];
            snprintf(name, sizeof name, "t.%s.%zu", amtl_dtype_name(all_dtypes[d]), s);
            amtl_tensor tmp =
                amtl_tensor_view(all_dtypes[d], shapes[s].ndim, shapes[s].shape, NULL);
            size_t numel = (size_t)amtl_tensor_numel(&tmp);
            void *data = random_data(&r, all_dtypes[d], numel);
            amtl_tensor *t = amtl_file_add(&f, name, all_dtypes[d], shapes[s].ndim,
                                           shapes[s].shape, data, &st);
            int same =
                t && (numel == 0 || memcmp(t->data, data, amtl_tensor_nbytes(t)) == 0);
            free(data);
            CHECKF(t, "%s", st.msg);
            CHECK(same);
            n++;
        }
    CHECK(f.n_tensors == n);

    void *buf;
    size_t len;
    CHECK_OK(amtl_file_encode(&f, &buf, &len, &st), &st);
    amtl_file g;
    int rc = amtl_file_decode(&g, buf, len, "mem", "checkpoint", &st);
    free(buf);
    CHECK_OK(rc, &st);
    char why[256];
    int eq = files_equal(&f, &g, why, sizeof why);
    CHECK(g.version == AMTL_FORMAT_VERSION);
    amtl_file_free(&g);
    CHECKF(eq, "%s", why);

    const char *path = path_in_tmp("all.amtl");
    CHECK_OK(amtl_file_write(&f, path, &st), &st);
    CHECK_OK(amtl_file_read(&g, path, "checkpoint", &st), &st);
    eq = files_equal(&f, &g, why, sizeof why);
    amtl_file_free(&g);
    amtl_file_free(&f);
    CHECKF(eq, "%s", why);
}

static void test_roundtrip_is_byte_stable(void)
{
    /* Encoding a decoded file gives the same bytes (no hidden state). */
    amtl_rng r;
    amtl_rng_seed(&r, 5);
    amtl_status st = {0};
    amtl_file f, g;
    CHECK_OK(make_sample(&f, &r, &st), &st);
    void *a, *b;
    size_t la, lb;
    CHECK_OK(amtl_file_encode(&f, &a, &la, &st), &st);
    CHECK_OK(amtl_file_decode(&g, a, la, "mem", NULL, &st), &st);
    CHECK_OK(amtl_file_encode(&g, &b, &lb, &st), &st);
    int same = la == lb && memcmp(a, b, la) == 0;
    free(a);
    free(b);
    amtl_file_free(&f);
    amtl_file_free(&g);
    CHECK(same);
}

static void test_meta_roundtrip_and_order(void)
{
    amtl_status st = {0};
    amtl_file f;
    amtl_file_init(&f, "dataset");
    CHECK_OK(amtl_file_set_meta(&f, "zeta", "1", &st), &st);
    CHECK_OK(amtl_file_set_meta(&f, "alpha", "two\nlines", &st), &st);
    CHECK_OK(amtl_file_set_meta(&f, "mid", "", &st), &st);
    CHECK_OK(amtl_file_set_metaf(&f, &st, "rows.train", "%d", 12345), &st);
    /* replacing keeps the position */
    CHECK_OK(amtl_file_set_meta(&f, "alpha", "replaced", &st), &st);
    CHECK_OK(amtl_file_set_metaf(&f, &st, "zeta", "%s-%.2f", "x", 0.5), &st);
    CHECK(f.n_meta == 4);
    CHECK(amtl_file_meta(&f, "nope") == NULL);
    CHECK(strcmp(amtl_file_meta(&f, "alpha"), "replaced") == 0);

    void *buf;
    size_t len;
    CHECK_OK(amtl_file_encode(&f, &buf, &len, &st), &st);
    amtl_file g;
    int rc = amtl_file_decode(&g, buf, len, "mem", "dataset", &st);
    free(buf);
    amtl_file_free(&f);
    CHECK_OK(rc, &st);
    static const char *keys[] = {"zeta", "alpha", "mid", "rows.train"};
    static const char *vals[] = {"x-0.50", "replaced", "", "12345"};
    int ok = g.n_meta == 4 && g.n_tensors == 0;
    for (int i = 0; ok && i < 4; i++)
        ok = strcmp(g.meta[i].key, keys[i]) == 0 && strcmp(g.meta[i].value, vals[i]) == 0;
    CHECK(strcmp(g.kind, "dataset") == 0);
    amtl_file_free(&g);
    CHECK(ok);
}

static void test_tensor_order_and_find(void)
{
    amtl_status st = {0};
    amtl_file f;
    amtl_file_init(&f, "model");
    static const char *names[] = {"z", "a", "m.1", "m.0", "b"};
    for (int i = 0; i < 5; i++) {
        int64_t s[1] = {i + 1};
        CHECKF(amtl_file_add(&f, names[i], AMTL_I64, 1, s, NULL, &st), "%s", st.msg);
    }
    const amtl_tensor *t = amtl_file_find(&f, "m.1");
    CHECK(t && t->shape[0] == 3);
    CHECK(amtl_file_find(&f, "m") == NULL);
    void *buf;
    size_t len;
    CHECK_OK(amtl_file_encode(&f, &buf, &len, &st), &st);
    amtl_file g;
    int rc = amtl_file_decode(&g, buf, len, "mem", NULL, &st);
    free(buf);
    amtl_file_free(&f);
    CHECK_OK(rc, &st);
    int ok = g.n_tensors == 5;
    for (int i = 0; ok && i < 5; i++)
        ok = strcmp(g.tensors[i].name, names[i]) == 0 && g.tensors[i].t.shape[0] == i + 1;
    amtl_file_free(&g);
    CHECK(ok);
}

static void test_add_rules(void)
{
    amtl_status st = {0};
    amtl_file f;
    amtl_file_init(&f, "model");
    int64_t s[2] = {3, 4};
    amtl_tensor *t = amtl_file_add(&f, "w", AMTL_F32, 2, s, NULL, &st);
    CHECKF(t, "%s", st.msg);
    /* NULL data means zeros */
    for (int i = 0; i < 12; i++)
        CHECK(((float *)t->data)[i] == 0.0f);
    CHECK(((uintptr_t)t->data % AMTL_ALIGN) == 0);
    /* the data is copied */
    float src[12];
    for (int i = 0; i < 12; i++)
        src[i] = (float)i + 0.5f;
    t = amtl_file_add(&f, "v", AMTL_F32, 2, s, src, &st);
    CHECKF(t, "%s", st.msg);
    src[0] = -1.0f;
    CHECK(((float *)t->data)[0] == 0.5f);

    CHECK(amtl_file_add(&f, "w", AMTL_F32, 2, s, NULL, &st) == NULL);
    CHECK(st.code == AMTL_EDATA && strstr(st.msg, "duplicate tensor 'w'"));
    int64_t neg[1] = {-1};
    CHECK(amtl_file_add(&f, "neg", AMTL_F32, 1, neg, NULL, &st) == NULL);
    CHECKF(strcmp(st.msg, "tensor 'neg': invalid shape [-1] (negative or too large)") ==
               0,
           "%s", st.msg);
    int64_t huge[2] = {INT64_C(1) << 40, INT64_C(1) << 40};
    CHECK(amtl_file_add(&f, "huge", AMTL_F32, 2, huge, NULL, &st) == NULL);
    CHECK(strstr(st.msg, "tensor 'huge'"));
    int64_t five[5] = {1, 1, 1, 1, 1};
    CHECK(amtl_file_add(&f, "five", AMTL_F32, 5, five, NULL, &st) == NULL);
    CHECK(strstr(st.msg, "at most 4"));
    CHECK(amtl_file_add(&f, "", AMTL_F32, 0, NULL, NULL, &st) == NULL);
    CHECK(amtl_file_add(&f, "bad", (amtl_dtype)99, 0, NULL, NULL, &st) == NULL);
    CHECK(strstr(st.msg, "unknown dtype"));
    CHECK(f.n_tensors == 2);
    amtl_file_free(&f);
    CHECK(file_is_empty(&f));
    amtl_file_free(&f); /* safe twice / on a zeroed struct */
}

static void test_get_checks(void)
{
    amtl_status st = {0};
    amtl_file f;
    amtl_file_init(&f, "model");
    int64_t s[2] = {64, 8};
    CHECKF(amtl_file_add(&f, "towers.0.w", AMTL_F32, 2, s, NULL, &st), "%s", st.msg);
    int64_t want[2] = {64, 8}, any[2] = {-1, 8}, wrong[2] = {64, 9};
    CHECK(amtl_file_get(&f, "m.bin", "towers.0.w", AMTL_F32, 2, want, &st) != NULL);
    CHECK(amtl_file_get(&f, "m.bin", "towers.0.w", AMTL_F32, 2, any, &st) != NULL);

    CHECK(amtl_file_get(&f, "m.bin", "towers.0.w", AMTL_F32, 2, wrong, &st) == NULL);
    CHECKF(st.code == AMTL_EDATA &&
               strcmp(st.msg,
                      "m.bin: tensor 'towers.0.w' has shape [64,8], expected [64,9]") ==
                   0,
           "%s", st.msg);
    int64_t any1[1] = {-1};
    CHECK(amtl_file_get(&f, "m.bin", "towers.0.w", AMTL_F32, 1, any1, &st) == NULL);
    CHECKF(strcmp(st.msg, "m.bin: tensor 'towers.0.w' has shape [64,8], expected [*]") ==
               0,
           "%s", st.msg);
    CHECK(amtl_file_get(&f, "m.bin", "towers.0.w", AMTL_I32, 2, want, &st) == NULL);
    CHECKF(strcmp(st.msg, "m.bin: tensor 'towers.0.w' is f32, expected i32") == 0, "%s",
           st.msg);
    CHECK(amtl_file_get(&f, "m.bin", "gates", AMTL_F32, 2, want, &st) == NULL);
    CHECKF(strcmp(st.msg, "m.bin: no tensor 'gates'") == 0, "%s", st.msg);
    amtl_file_free(&f);
}

/* ---- malformed input ------------------------------------------------- */

static void test_every_truncation_fails_cleanly(void)
{
    amtl_rng r;
    amtl_rng_seed(&r, 3);
    amtl_status st = {0};
    amtl_file f;
    CHECK_OK(make_sample(&f, &r, &st), &st);
    void *buf;
    size_t len;
    int rc = amtl_file_encode(&f, &buf, &len, &st);
    amtl_file_free(&f);
    CHECK_OK(rc, &st);
    CHECK(len > 50);
    size_t bad = SIZE_MAX;
    char why[1400];
    for (size_t n = 0; n < len && bad == SIZE_MAX; n++) {
        /* a private copy so ASan catches any read past the prefix */
        unsigned char *p = malloc(n ? n : 1);
        memcpy(p, buf, n);
        if (!decode_fails(p, n, NULL, AMTL_EDATA, n ? "truncated" : "empty file", why,
                          sizeof why))
            bad = n;
        free(p);
    }
    free(buf);
    CHECKF(bad == SIZE_MAX, "prefix of %zu bytes: %s", bad, why);
}

static void test_random_corruption_never_crashes(void)
{
    amtl_rng r;
    amtl_rng_seed(&r, 99);
    amtl_status st = {0};
    amtl_file f;
    CHECK_OK(make_sample(&f, &r, &st), &st);
    void *buf;
    size_t len;
    int rc = amtl_file_encode(&f, &buf, &len, &st);
    amtl_file_free(&f);
    CHECK_OK(rc, &st);
    unsigned char *p = malloc(len);
    int failures = 0, bad_msg = 0;
    for (int iter = 0; iter < 5000; iter++) {
        memcpy(p, buf, len);
        int flips = 1 + (int)amtl_rng_below(&r, 4);
        for (int k = 0; k < flips; k++)
            p[amtl_rng_below(&r, len)] = (unsigned char)amtl_rng_u64(&r);
        size_t n = amtl_rng_bernoulli(&r, 0.2) ? (size_t)amtl_rng_below(&r, len) : len;
        amtl_file g;
        amtl_status s2 = {0};
        if (amtl_file_decode(&g, p, n, "fz", NULL, &s2) == 0) {
            amtl_file_free(&g);
        } else {
            failures++;
            if (strncmp(s2.msg, "fz: ", 4) || !file_is_empty(&g))
                bad_msg++;
        }
    }
    free(p);
    free(buf);
    CHECK(failures > 1000);
    CHECK(bad_msg == 0);
}

static void test_wrong_top_level_type(void)
{
    static const unsigned char arr[] = {0x92, 0x01, 0x02};
    CHECK_DECODE_FAILS(arr, sizeof arr, NULL, AMTL_EDATA,
                       "not an amtl file (it does not start with a msgpack map)");
    static const unsigned char num[] = {0x05};
    CHECK_DECODE_FAILS(num, sizeof num, NULL, AMTL_EDATA, "not an amtl file");
    static const unsigned char str[] = {0xa4, 'a', 'm', 't', 'l'};
    CHECK_DECODE_FAILS(str, sizeof str, NULL, AMTL_EDATA, "not an amtl file");
    mp m;
    mp_begin(&m);
    msgpack_pack_map(&m.pk, 1);
    mp_s(&m, "name");
    mp_s(&m, "x");
    CHECK_MP_FAILS(&m, "not an amtl file (no \"format\" field)");
}

static void test_wrong_format_name(void)
{
    mp m;
    mp_begin(&m);
    mp_head(&m, 5, "zip", 1, "model");
    mp_s(&m, "tensors");
    msgpack_pack_map(&m.pk, 0);
    CHECK_MP_FAILS(&m, "not an amtl file: expected format \"amtl\", got \"zip\"");
    mp_begin(&m);
    msgpack_pack_map(&m.pk, 1);
    mp_s(&m, "format");
    msgpack_pack_int(&m.pk, 1);
    CHECK_MP_FAILS(&m, "expected format \"amtl\", got an integer");
}

static void test_wrong_version(void)
{
    mp m;
    mp_begin(&m);
    mp_head(&m, 5, "amtl", 2, "model");
    mp_s(&m, "tensors");
    msgpack_pack_map(&m.pk, 0);
    CHECK_MP_FAILS(&m, "unsupported format version 2 (this build reads version 1)");
    mp_begin(&m);
    mp_head(&m, 5, "amtl", -1, "model");
    mp_s(&m, "tensors");
    msgpack_pack_map(&m.pk, 0);
    CHECK_MP_FAILS(&m, "unsupported format version -1");
    mp_begin(&m);
    msgpack_pack_map(&m.pk, 2);
    mp_s(&m, "format");
    mp_s(&m, "amtl");
    mp_s(&m, "version");
    mp_s(&m, "1");
    CHECK_MP_FAILS(&m, "field \"version\" must be an integer, got a string");
}

static void test_wrong_kind(void)
{
    mp m;
    mp_begin(&m);
    mp_head(&m, 5, "amtl", 1, "model");
    mp_s(&m, "tensors");
    msgpack_pack_map(&m.pk, 0);
    CHECK_DECODE_FAILS(m.sb.data, m.sb.size, "dataset", AMTL_EDATA,
                       "expected a file of kind \"dataset\", got \"model\"");
    /* the same bytes are fine when any kind, or the right one, is expected */
    amtl_file f;
    amtl_status st = {0};
    int rc = amtl_file_decode(&f, m.sb.data, m.sb.size, "ok", "model", &st);
    int ok = rc == 0 && strcmp(f.kind, "model") == 0 && f.n_meta == 1;
    amtl_file_free(&f);
    mp_end(&m);
    CHECKF(ok, "%s", st.msg);
}

static void test_bin_length_disagrees_with_shape(void)
{
    mp m;
    int64_t s[2] = {64, 64};
    mp_one_tensor(&m, "towers.0.mlp_layers.0.weight", "f32", 2, s, 100);
    amtl_file f;
    amtl_status st = {0};
    int rc = amtl_file_decode(&f, m.sb.data, m.sb.size, "model.bin", NULL, &st);
    mp_end(&m);
    CHECK(rc == -1 && st.code == AMTL_EDATA && file_is_empty(&f));
    CHECKF(strcmp(st.msg,
                  "model.bin: tensor 'towers.0.mlp_layers.0.weight': shape [64,64] "
                  "needs 16384 bytes, data has 100") == 0,
           "%s", st.msg);

    int64_t z[2] = {3, 0};
    mp_one_tensor(&m, "e", "i64", 2, z, 8);
    CHECK_MP_FAILS(&m, "tensor 'e': shape [3,0] needs 0 bytes, data has 8");
    mp_one_tensor(&m, "s", "f64", 0, NULL, 4);
    CHECK_MP_FAILS(&m, "tensor 's': shape [] needs 8 bytes, data has 4");
}

/* Each length or count header claims 2^32 - 1 in a file of a few dozen bytes:
 * refused before msgpack-c sees it (else it would allocate ~96 GB). */
static void test_huge_length_headers(void)
{
    static const unsigned char claims[] = {0xff, 0xff, 0xff, 0xff};
    static const unsigned char top_map32[] = {0xdf, 0xff, 0xff, 0xff,
                                              0xff, 0xa1, 'a',  0x01};
    CHECK_DECODE_FAILS(top_map32, sizeof top_map32, NULL, AMTL_EDATA,
                       "map at byte 0 claims 4294967295 entries, only 3 bytes remain");

    static const unsigned char kinds[] = {0xdb /* str32 */, 0xc6 /* bin32 */,
                                          0xdd /* array32 */, 0xdf /* map32 */};
    static const char *names[] = {"str", "bin", "array", "map"};
    for (int i = 0; i < 4; i++) {
        mp m;
        mp_begin(&m);
        mp_head(&m, 5, "amtl", 1, "model");
        mp_s(&m, "tensors");
        msgpack_pack_map(&m.pk, 1);
        mp_s(&m, "x");
        mp_raw(&m, &kinds[i], 1);
        mp_raw(&m, claims, 4);
        mp_raw(&m, "abcdef", 6);
        char want[64];
        snprintf(want, sizeof want, "%s at byte", names[i]);
        char why[1400];
        int ok =
            decode_fails(m.sb.data, m.sb.size, NULL, AMTL_EDATA, "claims 4294967295", why,
                         sizeof why) &&
            decode_fails(m.sb.data, m.sb.size, NULL, AMTL_EDATA, want, why, sizeof why);
        mp_end(&m);
        CHECKF(ok, "%s: %s", names[i], why);
    }
    /* a 16-bit count beyond the data, too */
    static const unsigned char arr16[] = {0x81, 0xa1, 'a', 0xdc, 0x10, 0x00, 0x01};
    CHECK_DECODE_FAILS(arr16, sizeof arr16, NULL, AMTL_EDATA,
                       "array at byte 3 claims 4096 elements, only 1 bytes remain");
}

static void test_wrong_field_types(void)
{
    mp m;
    int64_t s1[1] = {4};
    mp_one_tensor(&m, "w", "f16", 1, s1, 8);
    CHECK_MP_FAILS(&m, "tensor 'w': unknown dtype \"f16\"");

    int64_t neg[2] = {3, -2};
    mp_one_tensor(&m, "w", "f32", 2, neg, 0);
    CHECK_MP_FAILS(&m, "tensor 'w': negative dimension -2 in shape");

    int64_t five[5] = {1, 1, 1, 1, 1};
    mp_one_tensor(&m, "w", "u8", 5, five, 1);
    CHECK_MP_FAILS(&m, "tensor 'w': shape has 5 dimensions, at most 4 are supported");

    int64_t big[3] = {0, INT64_C(1) << 40, INT64_C(1) << 40};
    mp_one_tensor(&m, "w", "f32", 3, big, 0);
    CHECK_MP_FAILS(&m, "tensor 'w': shape [0,1099511627776,1099511627776] is too large");

    /* shape not an array, a float dimension, data not bin */
    const char *cases[] = {"shape-str",    "shape-float", "data-str",      "dtype-int",
                           "missing-data", "extra-field", "tensor-not-map"};
    const char *want[] = {"tensor 'w': shape must be an array, got a string",
                          "tensor 'w': shape[0] must be an integer, got a float",
                          "tensor 'w': data must be bytes (bin), got a string",
                          "tensor 'w': dtype must be a string, got an integer",
                          "tensor 'w': missing field \"data\"",
                          "tensor 'w': unknown field \"strides\"",
                          "tensor 'w' must be a map, got an array"};
    for (int c = 0; c < 7; c++) {
        mp_begin(&m);
        mp_head(&m, 5, "amtl", 1, "model");
        mp_s(&m, "tensors");
        msgpack_pack_map(&m.pk, 1);
        mp_s(&m, "w");
        if (c == 6) {
            msgpack_pack_array(&m.pk, 0);
        } else {
            msgpack_pack_map(&m.pk, c == 4 ? 2 : c == 5 ? 4 : 3);
            mp_s(&m, "dtype");
            if (c == 3)
                msgpack_pack_int(&m.pk, 0);
            else
                mp_s(&m, "u8");
            mp_s(&m, "shape");
            if (c == 0) {
                mp_s(&m, "[2]");
            } else {
                msgpack_pack_array(&m.pk, 1);
                if (c == 1)
                    msgpack_pack_double(&m.pk, 2.0);
                else
                    msgpack_pack_int(&m.pk, 2);
            }
            if (c != 4) {
                mp_s(&m, "data");
                if (c == 2)
                    mp_s(&m, "ab");
                else
                    msgpack_pack_bin_with_body(&m.pk, "ab", 2);
            }
            if (c == 5) {
                mp_s(&m, "strides");
                msgpack_pack_array(&m.pk, 0);
            }
        }
        char why[1400];
        int ok = decode_fails(m.sb.data, m.sb.size, NULL, AMTL_EDATA, want[c], why,
                              sizeof why);
        mp_end(&m);
        CHECKF(ok, "%s: %s", cases[c], why);
    }

    /* meta value not a string; meta and tensors not maps; unknown top-level key */
    mp_begin(&m);
    msgpack_pack_map(&m.pk, 5);
    mp_s(&m, "format");
    mp_s(&m, "amtl");
    mp_s(&m, "version");
    msgpack_pack_int(&m.pk, 1);
    mp_s(&m, "kind");
    mp_s(&m, "model");
    mp_s(&m, "meta");
    msgpack_pack_map(&m.pk, 1);
    mp_s(&m, "seed");
    msgpack_pack_int(&m.pk, 7);
    mp_s(&m, "tensors");
    msgpack_pack_map(&m.pk, 0);
    CHECK_MP_FAILS(&m, "meta 'seed' must be a string, got an integer");

    mp_begin(&m);
    mp_head(&m, 5, "amtl", 1, "model");
    mp_s(&m, "tensors");
    msgpack_pack_array(&m.pk, 0);
    CHECK_MP_FAILS(&m, "field \"tensors\" must be a map, got an array");

    mp_begin(&m);
    mp_head(&m, 4, "amtl", 1, "model");
    CHECK_MP_FAILS(&m, "no \"tensors\" field");

    mp_begin(&m);
    mp_head(&m, 6, "amtl", 1, "model");
    mp_s(&m, "tensors");
    msgpack_pack_map(&m.pk, 0);
    mp_s(&m, "extra");
    msgpack_pack_nil(&m.pk);
    CHECK_MP_FAILS(&m, "unknown top-level field \"extra\"");

    /* a NUL inside a name would cut it short silently */
    mp_begin(&m);
    mp_head(&m, 5, "amtl", 1, "model");
    mp_s(&m, "tensors");
    msgpack_pack_map(&m.pk, 1);
    msgpack_pack_str_with_body(&m.pk, "a\0b", 3);
    msgpack_pack_map(&m.pk, 3);
    mp_s(&m, "dtype");
    mp_s(&m, "u8");
    mp_s(&m, "shape");
    msgpack_pack_array(&m.pk, 0);
    mp_s(&m, "data");
    msgpack_pack_bin_with_body(&m.pk, "x", 1);
    CHECK_MP_FAILS(&m, "contains a NUL byte");
}

static void test_duplicate_names(void)
{
    mp m;
    int64_t s[1] = {2};
    mp_begin(&m);
    mp_head(&m, 5, "amtl", 1, "model");
    mp_s(&m, "tensors");
    msgpack_pack_map(&m.pk, 3);
    mp_tensor(&m, "w", "u8", 1, s, 2);
    mp_tensor(&m, "b", "u8", 1, s, 2);
    mp_tensor(&m, "w", "u8", 1, s, 2);
    CHECK_MP_FAILS(&m, "duplicate tensor 'w'");

    mp_begin(&m);
    msgpack_pack_map(&m.pk, 5);
    mp_s(&m, "format");
    mp_s(&m, "amtl");
    mp_s(&m, "version");
    msgpack_pack_int(&m.pk, 1);
    mp_s(&m, "kind");
    mp_s(&m, "model");
    mp_s(&m, "meta");
    msgpack_pack_map(&m.pk, 2);
    mp_s(&m, "seed");
    mp_s(&m, "1");
    mp_s(&m, "seed");
    mp_s(&m, "2");
    mp_s(&m, "tensors");
    msgpack_pack_map(&m.pk, 0);
    CHECK_MP_FAILS(&m, "duplicate metadata key 'seed'");

    mp_begin(&m);
    mp_head(&m, 6, "amtl", 1, "model");
    mp_s(&m, "tensors");
    msgpack_pack_map(&m.pk, 0);
    mp_s(&m, "kind");
    mp_s(&m, "model");
    CHECK_MP_FAILS(&m, "duplicate field \"kind\"");
}

static void test_later_tensor_failure_frees_everything(void)
{
    /* The first tensors decode (and allocate) before the last one fails. */
    mp m;
    int64_t s[1] = {1000}, bad[1] = {10};
    mp_begin(&m);
    mp_head(&m, 5, "amtl", 1, "model");
    mp_s(&m, "tensors");
    msgpack_pack_map(&m.pk, 3);
    mp_tensor(&m, "a", "f32", 1, s, 4000);
    mp_tensor(&m, "b", "f64", 1, s, 8000);
    mp_tensor(&m, "c", "i32", 1, bad, 39);
    CHECK_MP_FAILS(&m, "tensor 'c': shape [10] needs 40 bytes, data has 39");
}

static void test_trailing_garbage(void)
{
    amtl_rng r;
    amtl_rng_seed(&r, 8);
    amtl_status st = {0};
    amtl_file f;
    CHECK_OK(make_sample(&f, &r, &st), &st);
    void *buf;
    size_t len;
    int rc = amtl_file_encode(&f, &buf, &len, &st);
    amtl_file_free(&f);
    CHECK_OK(rc, &st);
    unsigned char *p = malloc(len + 3);
    memcpy(p, buf, len);
    memcpy(p + len, "xyz", 3);
    char want[128];
    snprintf(want, sizeof want, "3 trailing bytes after the end of the data at byte %zu",
             len);
    char why[1400];
    int ok = decode_fails(p, len + 3, NULL, AMTL_EDATA, want, why, sizeof why);
    /* two files concatenated */
    memcpy(p, buf, len);
    unsigned char *q = malloc(2 * len);
    memcpy(q, buf, len);
    memcpy(q + len, buf, len);
    int ok2 = ok && decode_fails(q, 2 * len, NULL, AMTL_EDATA, "trailing bytes", why,
                                 sizeof why);
    free(p);
    free(q);
    free(buf);
    CHECKF(ok && ok2, "%s", why);
}

static void test_invalid_and_ext_types(void)
{
    mp m;
    static const unsigned char fixext1[] = {0xd4, 0x01, 0x00};
    mp_begin(&m);
    mp_head(&m, 5, "amtl", 1, "model");
    mp_s(&m, "tensors");
    msgpack_pack_map(&m.pk, 1);
    mp_s(&m, "x");
    mp_raw(&m, fixext1, sizeof fixext1);
    CHECK_MP_FAILS(&m, "unsupported msgpack ext type 0xd4");

    static const unsigned char ext32[] = {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01};
    mp_begin(&m);
    msgpack_pack_map(&m.pk, 1);
    mp_s(&m, "format");
    mp_raw(&m, ext32, sizeof ext32);
    CHECK_MP_FAILS(&m, "unsupported msgpack ext type 0xc9");

    static const unsigned char never[] = {0x81, 0xa1, 'a', 0xc1};
    CHECK_DECODE_FAILS(never, sizeof never, NULL, AMTL_EDATA,
                       "invalid msgpack byte 0xc1 at byte 3");
}

static void test_deep_nesting(void)
{
    mp m;
    mp_begin(&m);
    msgpack_pack_map(&m.pk, 1);
    mp_s(&m, "format");
    for (int i = 0; i < 40; i++)
        msgpack_pack_array(&m.pk, 1);
    msgpack_pack_nil(&m.pk);
    CHECK_MP_FAILS(&m, "values nested more than 16 deep");

    /* 16 levels (the top map and 15 arrays) are still parsed, then refused by
     * the schema */
    mp_begin(&m);
    msgpack_pack_map(&m.pk, 1);
    mp_s(&m, "format");
    for (int i = 0; i < 15; i++)
        msgpack_pack_array(&m.pk, 1);
    msgpack_pack_nil(&m.pk);
    CHECK_MP_FAILS(&m, "expected format \"amtl\", got an array");
}

static void test_empty_and_csv_files(void)
{
    const char *empty = path_in_tmp("empty.amtl");
    CHECK(write_bytes(empty, "", 0) == 0);
    amtl_file f;
    amtl_status st = {0};
    CHECK(amtl_file_read(&f, empty, NULL, &st) == -1);
    char want[600];
    snprintf(want, sizeof want, "%s: empty file, not an amtl file", empty);
    CHECKF(st.code == AMTL_EDATA && strcmp(st.msg, want) == 0, "%s", st.msg);
    CHECK(file_is_empty(&f));

    const char *csv = path_in_tmp("data.csv");
    const char text[] = "user,item,click\n1,2,0\n3,4,1\n";
    CHECK(write_bytes(csv, text, sizeof text - 1) == 0);
    CHECK(amtl_file_read(&f, csv, "dataset", &st) == -1);
    snprintf(want, sizeof want,
             "%s: not an amtl file (it does not start with a msgpack map)", csv);
    CHECKF(st.code == AMTL_EDATA && strcmp(st.msg, want) == 0, "%s", st.msg);
    CHECK(file_is_empty(&f));
}

/* ---- reading --------------------------------------------------------- */

static void test_read_errors(void)
{
    amtl_file f;
    amtl_status st = {0};
    const char *missing = path_in_tmp("no-such.amtl");
    CHECK(amtl_file_read(&f, missing, NULL, &st) == -1);
    char want[600];
    snprintf(want, sizeof want, "cannot open '%s': No such file or directory", missing);
    CHECKF(st.code == AMTL_EIO && strcmp(st.msg, want) == 0, "%s", st.msg);
    CHECK(file_is_empty(&f));

    CHECK(amtl_file_read(&f, test_tmpdir(), NULL, &st) == -1);
    CHECKF(st.code == AMTL_EIO && strstr(st.msg, "Is a directory"), "%s", st.msg);

    const char *small = path_in_tmp("hundred.bin");
    char bytes[100];
    memset(bytes, 'x', sizeof bytes);
    CHECK(write_bytes(small, bytes, sizeof bytes) == 0);
    void *buf = NULL;
    size_t len = 0;
    CHECK(amtl_io_read_all(small, 10, &buf, &len, &st) == -1);
    CHECKF(strstr(st.msg, "more than the limit of 10"), "%s", st.msg);
    CHECK(buf == NULL);
    CHECK_OK(amtl_io_read_all(small, 100, &buf, &len, &st), &st);
    CHECK(len == 100 && memcmp(buf, bytes, 100) == 0);
    free(buf);
}

/* A child writes a file bigger than a pipe's buffer into stdin. */
static void test_read_stdin_pipe(void)
{
    amtl_rng r;
    amtl_rng_seed(&r, 21);
    amtl_status st = {0};
    amtl_file f;
    amtl_file_init(&f, "dataset");
    int64_t s[1] = {100000};
    void *d = random_data(&r, AMTL_F32, 100000);
    amtl_tensor *t = amtl_file_add(&f, "train.dense.x", AMTL_F32, 1, s, d, &st);
    free(d);
    CHECKF(t, "%s", st.msg);
    void *buf;
    size_t len;
    CHECK_OK(amtl_file_encode(&f, &buf, &len, &st), &st);

    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        const char *p = buf;
        size_t left = len;
        while (left) {
            ssize_t n = write(fds[1], p, left);
            if (n <= 0)
                _exit(1);
            p += n;
            left -= (size_t)n;
        }
        _exit(0);
    }
    close(fds[1]);
    int saved = dup(STDIN_FILENO);
    dup2(fds[0], STDIN_FILENO);
    close(fds[0]);
    amtl_file g;
    int rc = amtl_file_read(&g, "-", "dataset", &st);
    dup2(saved, STDIN_FILENO);
    close(saved);
    int status = 0;
    waitpid(pid, &status, 0);
    free(buf);
    char why[256] = "";
    int eq = rc == 0 && files_equal(&f, &g, why, sizeof why);
    amtl_file_free(&f);
    amtl_file_free(&g);
    CHECKF(rc == 0, "%s", st.msg);
    CHECKF(eq, "%s", why);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_stdin_messages_name_stdin(void)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    CHECK(write(fds[1], "a,b\n", 4) == 4);
    close(fds[1]);
    int saved = dup(STDIN_FILENO);
    dup2(fds[0], STDIN_FILENO);
    close(fds[0]);
    amtl_file f;
    amtl_status st = {0};
    int rc = amtl_file_read(&f, "-", NULL, &st);
    dup2(saved, STDIN_FILENO);
    close(saved);
    CHECK(rc == -1);
    CHECKF(strcmp(st.msg,
                  "<stdin>: not an amtl file (it does not start with a msgpack map)") ==
               0,
           "%s", st.msg);
}

/* ---- writing --------------------------------------------------------- */

static void test_write_stdout(void)
{
    amtl_rng r;
    amtl_rng_seed(&r, 4);
    amtl_status st = {0};
    amtl_file f;
    CHECK_OK(make_sample(&f, &r, &st), &st);
    const char *out = path_in_tmp("stdout.amtl");
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    int rc = amtl_file_write(&f, "-", &st);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    CHECK_OK(rc, &st);
    amtl_file g;
    CHECK_OK(amtl_file_read(&g, out, "model", &st), &st);
    char why[256];
    int eq = files_equal(&f, &g, why, sizeof why);
    amtl_file_free(&f);
    amtl_file_free(&g);
    CHECKF(eq, "%s", why);
}

static void test_write_missing_directory(void)
{
    amtl_status st = {0};
    const char *path = path_in_tmp("no-such-dir/out.amtl");
    CHECK(amtl_io_write_atomic(path, "abc", 3, &st) == -1);
    CHECK(st.code == AMTL_EIO);
    CHECKF(strstr(st.msg, path) && strstr(st.msg, "No such file or directory"), "%s",
           st.msg);
    struct stat sb;
    CHECK(stat(path, &sb) == -1);
}

static void test_write_directory_is_a_file(void)
{
    amtl_status st = {0};
    const char *file = path_in_tmp("plain-file");
    CHECK(write_bytes(file, "x", 1) == 0);
    char path[600];
    snprintf(path, sizeof path, "%s/out.amtl", file);
    CHECK(amtl_io_write_atomic(path, "abc", 3, &st) == -1);
    CHECKF(st.code == AMTL_EIO && strstr(st.msg, path) &&
               strstr(st.msg, "Not a directory"),
           "%s", st.msg);
}

static void test_write_over_a_directory_fails_cleanly(void)
{
    amtl_status st = {0};
    char dir[600];
    snprintf(dir, sizeof dir, "%s/over", test_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    char target[700];
    snprintf(target, sizeof target, "%s/target", dir);
    CHECK(mkdir(target, 0755) == 0);
    CHECK(amtl_io_write_atomic(target, "abc", 3, &st) == -1);
    CHECKF(st.code == AMTL_EIO && strstr(st.msg, "cannot replace") &&
               strstr(st.msg, target),
           "%s", st.msg);
    CHECK(count_entries(dir, ".target.tmp") == 0);
}

static void test_rewrite_replaces_content(void)
{
    amtl_status st = {0};
    char dir[600];
    snprintf(dir, sizeof dir, "%s/rewrite", test_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    char path[700];
    snprintf(path, sizeof path, "%s/out.bin", dir);
    CHECK_OK(amtl_io_write_atomic(path, "first version", 13, &st), &st);
    CHECK_OK(amtl_io_write_atomic(path, "second", 6, &st), &st);
    size_t len;
    unsigned char *p = slurp(path, &len);
    CHECK(p);
    int same = len == 6 && memcmp(p, "second", 6) == 0;
    free(p);
    CHECK(same);
    CHECK(count_entries(dir, ".out.bin.tmp") == 0);
    CHECK(count_entries(dir, "") == 3); /* ".", "..", out.bin */
    /* the mode a plain create would give, not mkstemp's 0600 */
    mode_t mask = umask(0);
    umask(mask);
    struct stat sb;
    CHECK(stat(path, &sb) == 0);
    CHECKF((sb.st_mode & 0777) == (0666 & ~mask), "mode %o",
           (unsigned)(sb.st_mode & 0777));
    /* an empty write is a valid empty file */
    CHECK_OK(amtl_io_write_atomic(path, "", 0, &st), &st);
    CHECK(stat(path, &sb) == 0 && sb.st_size == 0);
    /* a relative path (no directory part) */
    char cwd[600];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(dir) == 0);
    int rc = amtl_io_write_atomic("rel.bin", "r", 1, &st);
    CHECK(chdir(cwd) == 0);
    CHECK_OK(rc, &st);
    snprintf(path, sizeof path, "%s/rel.bin", dir);
    CHECK(stat(path, &sb) == 0 && sb.st_size == 1);
}

/* A write that hits RLIMIT_FSIZE (EFBIG, with SIGXFSZ ignored as the tools do)
 * leaves the previous file intact and no temp file behind. */
static void test_failed_write_keeps_old_file(void)
{
    amtl_status st = {0};
    char dir[600];
    snprintf(dir, sizeof dir, "%s/efbig", test_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    char path[700];
    snprintf(path, sizeof path, "%s/out.bin", dir);
    amtl_rng r;
    amtl_rng_seed(&r, 77);
    unsigned char *old = random_data(&r, AMTL_U8, 1000);
    unsigned char *big = random_data(&r, AMTL_U8, 200000);
    CHECK_OK(amtl_io_write_atomic(path, old, 1000, &st), &st);

    struct rlimit saved, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &saved) == 0);
    lim = saved;
    lim.rlim_cur = 65536;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    int rc = amtl_io_write_atomic(path, big, 200000, &st);
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, prev);
    free(big);

    size_t len = 0;
    unsigned char *now = slurp(path, &len);
    int intact = now && len == 1000 && memcmp(now, old, 1000) == 0;
    free(now);
    free(old);
    CHECK(rc == -1);
    CHECKF(st.code == AMTL_EIO && strstr(st.msg, path) &&
               strstr(st.msg, "File too large"),
           "%s", st.msg);
    CHECK(intact);
    CHECK(count_entries(dir, ".out.bin.tmp") == 0);
}

/* A pid that no process has now: a child's, after it is reaped. */
static pid_t dead_pid(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0);
    return pid;
}

static int touch_in(const char *dir, const char *name)
{
    char path[900];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return write_bytes(path, "part", 4);
}

static int exists_in(const char *dir, const char *name)
{
    char path[900];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return lstat(path, &sb) == 0;
}

/* What a killed writer left (a temp file named for the target and a pid that
 * is gone) goes at the next write to that target; a live writer's, another
 * target's, a locked one and anything not named like a temp file stay. */
static void test_stale_temps_removed(void)
{
    amtl_status st = {0};
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/stale", test_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    snprintf(path, sizeof path, "%s/t.bin", dir);
    long dead = (long)dead_pid();
    char stale[100], live[100], self[100], other[100], short_[100], link[100], held[100];
    snprintf(stale, sizeof stale, ".t.bin.tmp.%ld.Ab3xZ9", dead);
    snprintf(live, sizeof live, ".t.bin.tmp.1.Ab3xZ9");
    snprintf(self, sizeof self, ".t.bin.tmp.%ld.Ab3xZ9", (long)getpid());
    snprintf(other, sizeof other, ".u.bin.tmp.%ld.Ab3xZ9", dead);
    snprintf(short_, sizeof short_, ".t.bin.tmp.%ld.Ab3xZ", dead);
    snprintf(link, sizeof link, ".t.bin.tmp.%ld.LinkXX", dead);
    snprintf(held, sizeof held, ".t.bin.tmp.%ld.HeldXX", dead);
    CHECK(touch_in(dir, stale) == 0 && touch_in(dir, live) == 0 &&
          touch_in(dir, self) == 0 && touch_in(dir, other) == 0 &&
          touch_in(dir, short_) == 0 && touch_in(dir, held) == 0);
    char target[900], lpath[900];
    snprintf(target, sizeof target, "%s/%s", dir, other);
    snprintf(lpath, sizeof lpath, "%s/%s", dir, link);
    CHECK(symlink(target, lpath) == 0);

    /* a writer this process cannot see as a pid (another pid namespace or
     * host) still holds the lock on its temp file */
    int go[2], ready[2];
    CHECK(pipe(go) == 0 && pipe(ready) == 0);
    pid_t holder = fork();
    if (holder == 0) {
        /* with the parent's end of `go` closed here, a parent that stops early
         * ends this child too */
        close(go[1]);
        char hp[900], c;
        snprintf(hp, sizeof hp, "%s/%s", dir, held);
        int fd = open(hp, O_RDWR);
        int ok = fd >= 0 && flock(fd, LOCK_EX) == 0;
        if (write(ready[1], ok ? "y" : "n", 1) != 1 || read(go[0], &c, 1) < 0)
            _exit(1);
        _exit(0);
    }
    char c = 0;
    CHECK(read(ready[0], &c, 1) == 1 && c == 'y');
    CHECK_OK(amtl_io_write_atomic(path, "new", 3, &st), &st);
    CHECK(!exists_in(dir, stale));
    CHECK(exists_in(dir, live) && exists_in(dir, self) && exists_in(dir, other) &&
          exists_in(dir, short_) && exists_in(dir, link) && exists_in(dir, held));
    CHECK(exists_in(dir, "t.bin"));
    /* the lock goes with its process, and the file with the next write */
    CHECK(write(go[1], "x", 1) == 1);
    waitpid(holder, NULL, 0);
    close(go[0]);
    close(go[1]);
    close(ready[0]);
    close(ready[1]);
    CHECK_OK(amtl_io_write_atomic(path, "newer", 5, &st), &st);
    CHECK(!exists_in(dir, held));
    CHECK(exists_in(dir, live) && exists_in(dir, link));
    /* the only temp-like names left are the ones that must stay */
    CHECK(count_entries(dir, ".t.bin.tmp.") == 4);
}

static void test_write_encode_error_names_path(void)
{
    amtl_status st = {0};
    amtl_file f;
    amtl_file_init(&f, NULL);
    const char *path = path_in_tmp("kindless.amtl");
    CHECK(amtl_file_write(&f, path, &st) == -1);
    char want[700];
    snprintf(want, sizeof want, "cannot write '%s': cannot encode a file without a kind",
             path);
    CHECKF(strcmp(st.msg, want) == 0, "%s", st.msg);
    struct stat sb;
    CHECK(stat(path, &sb) == -1);
    amtl_file_free(&f);
}

/* ---- text buffer ----------------------------------------------------- */

static void test_strbuf(void)
{
    amtl_strbuf b = {0};
    char *expect = malloc(100000);
    size_t n = 0;
    for (int i = 0; i < 3000; i++) {
        amtl_strbuf_printf(&b, "line %d: %s\n", i,
                           i % 7 ? "x" : "a longer piece of text");
        n += (size_t)sprintf(expect + n, "line %d: %s\n", i,
                             i % 7 ? "x" : "a longer piece of text");
    }
    amtl_strbuf_printf(&b, "%s", "");
    int ok =
        !b.failed && b.len == n && strlen(b.data) == n && memcmp(b.data, expect, n) == 0;
    free(expect);
    amtl_strbuf_free(&b);
    CHECK(ok);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
    /* one append larger than any doubling step */
    char big[5000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    amtl_strbuf_printf(&b, "<%s>", big);
    CHECK(!b.failed && b.len == sizeof big + 1 && b.data[0] == '<' &&
          b.data[b.len - 1] == '>');
    amtl_strbuf_free(&b);
}

static int remove_entry(const char *path, const struct stat *sb, int flag,
                        struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* JSON strings and numbers: escapes, invalid UTF-8, non-finite values. */
static void test_json_writers(void)
{
    amtl_strbuf b = {0};
    amtl_strbuf_json_str(&b, "a\"b\\c\n\x01\xc3\xa9\xff\xed\xa0\x80z");
    amtl_strbuf_printf(&b, " ");
    amtl_strbuf_json_num(&b, 0.25, 3);
    amtl_strbuf_printf(&b, " ");
    amtl_strbuf_json_num(&b, NAN, 3);
    amtl_strbuf_printf(&b, " ");
    amtl_strbuf_json_num(&b, -INFINITY, 3);
    int ok = !b.failed && b.data &&
             !strcmp(b.data, "\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\\ufffd\\ufffd\\ufffd\\ufffdz\" "
                             "0.250 null null");
    if (!ok)
        printf("# got: %s\n", b.data ? b.data : "(null)");
    amtl_strbuf_free(&b);
    CHECK(ok);
    CHECK(amtl_utf8_len((const unsigned char *)"\xf0\x9f\x98\x80") == 4);
    CHECK(amtl_utf8_len((const unsigned char *)"\xc0\xaf") == 0);  /* overlong */
}

int main(void)
{
    if (!test_tmpdir()[0]) {
        printf("Bail out! cannot create a temp dir\n");
        return 1;
    }
    RUN(test_roundtrip_every_dtype_and_shape);
    RUN(test_roundtrip_is_byte_stable);
    RUN(test_meta_roundtrip_and_order);
    RUN(test_tensor_order_and_find);
    RUN(test_add_rules);
    RUN(test_get_checks);
    RUN(test_every_truncation_fails_cleanly);
    RUN(test_random_corruption_never_crashes);
    RUN(test_wrong_top_level_type);
    RUN(test_wrong_format_name);
    RUN(test_wrong_version);
    RUN(test_wrong_kind);
    RUN(test_bin_length_disagrees_with_shape);
    RUN(test_huge_length_headers);
    RUN(test_wrong_field_types);
    RUN(test_duplicate_names);
    RUN(test_later_tensor_failure_frees_everything);
    RUN(test_trailing_garbage);
    RUN(test_invalid_and_ext_types);
    RUN(test_deep_nesting);
    RUN(test_empty_and_csv_files);
    RUN(test_read_errors);
    RUN(test_read_stdin_pipe);
    RUN(test_stdin_messages_name_stdin);
    RUN(test_write_stdout);
    RUN(test_write_missing_directory);
    RUN(test_write_directory_is_a_file);
    RUN(test_write_over_a_directory_fails_cleanly);
    RUN(test_rewrite_replaces_content);
    RUN(test_failed_write_keeps_old_file);
    RUN(test_stale_temps_removed);
    RUN(test_write_encode_error_names_path);
    RUN(test_strbuf);
    RUN(test_json_writers);
    nftw(test_tmpdir(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    TEST_MAIN_END();
}
