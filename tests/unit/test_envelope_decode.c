/* test_envelope_decode.c — every class of malformed input to the decoder:
 * truncations, random corruption, wrong types and values in the envelope,
 * lengths that claim more than the file holds. */
#include <stdint.h>

#include <msgpack.h>

#include "format/envelope.h"
#include "iotest.h"

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

/* The envelope up to the key "meta"; the caller adds its value, then
 * "tensors" (entries counts it). */
static void mp_start(mp *m, uint32_t entries, const char *format, int64_t version,
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
}

/* The envelope up to and including "meta": {"k": "v"}. */
static void mp_head(mp *m, uint32_t entries, const char *format, int64_t version,
                    const char *kind)
{
    mp_start(m, entries, format, version, kind);
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

/* A valid envelope up to a "tensors" map of n entries, which the caller
 * adds. */
static void mp_tensors(mp *m, uint32_t n)
{
    mp_begin(m);
    mp_head(m, 5, "amtl", 1, "model");
    mp_s(m, "tensors");
    msgpack_pack_map(&m->pk, n);
}

/* A valid file with the tensor given, so tests vary one thing at a time. */
static void mp_one_tensor(mp *m, const char *name, const char *dtype, int ndim,
                          const int64_t *dims, size_t nbytes)
{
    mp_tensors(m, 1);
    mp_tensor(m, name, dtype, ndim, dims, nbytes);
}

/* Decoding must fail with code and a message "bad.amtl: ...sub..." that is
 * lower-case and has no full stop, and leave f empty.  sub may list
 * alternatives separated by '|'. */
/* msg contains one of the '|'-separated alternatives of subs. */
static int contains_any(const char *msg, const char *subs)
{
    for (const char *p = subs;;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        for (const char *m = msg; *m; m++)
            if (!strncmp(m, p, n))
                return 1;
        if (!bar)
            return 0;
        p = bar + 1;
    }
}

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
        (sub && !contains_any(st.msg, sub)) || ml == 0 || st.msg[ml - 1] == '.' ||
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
        /* a short prefix is no more than truncated msgpack; a longer one
         * starts as a current-version file and lacks its end */
        if (!decode_fails(p, n, NULL, AMTL_EDATA,
                          n ? "truncated|damaged file" : "empty file", why, sizeof why))
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

/* The head alone: every prefix either asks for more or gives the meta the
 * whole decode gives (never a tensor), and random damage to a prefix gives
 * a head or a message, never a crash. */
static void test_head_of_every_prefix(void)
{
    amtl_rng r;
    amtl_rng_seed(&r, 5);
    amtl_status st = {0};
    amtl_file f, whole;
    CHECK_OK(make_sample(&f, &r, &st), &st);
    void *buf;
    size_t len;
    int rc = amtl_file_encode(&f, &buf, &len, &st);
    amtl_file_free(&f);
    CHECK_OK(rc, &st);
    CHECK_OK(amtl_file_decode(&whole, buf, len, "w", NULL, &st), &st);
    CHECK(whole.n_meta > 0 && whole.n_tensors > 0);
    size_t first = SIZE_MAX, bad = SIZE_MAX;
    for (size_t n = 0; n <= len && bad == SIZE_MAX; n++) {
        unsigned char *p = malloc(n ? n : 1);
        memcpy(p, buf, n);
        amtl_file h;
        size_t need = 0;
        rc = amtl_file_decode_head(&h, p, n, &need, "h", NULL, &st);
        free(p);
        if (rc == 1) {
            if (first != SIZE_MAX || need <= n || !file_is_empty(&h))
                bad = n;  /* a longer prefix must not ask again */
            continue;
        }
        if (rc != 0 || h.n_tensors != 0 || h.n_meta != whole.n_meta ||
            strcmp(h.kind, whole.kind) || h.version != whole.version ||
            h.checksum != AMTL_CHECKSUM_UNREAD)
            bad = n;
        for (int i = 0; bad == SIZE_MAX && i < h.n_meta; i++)
            if (strcmp(h.meta[i].key, whole.meta[i].key) ||
                strcmp(h.meta[i].value, whole.meta[i].value))
                bad = n;
        if (first == SIZE_MAX)
            first = n;
        amtl_file_free(&h);
    }
    CHECKF(bad == SIZE_MAX, "prefix of %zu bytes", bad);
    CHECK(first < len / 2);
    /* damage: a head, "more", or a message naming the input */
    unsigned char *p = malloc(first);
    int odd = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(p, buf, first);
        p[amtl_rng_below(&r, first)] = (unsigned char)amtl_rng_u64(&r);
        amtl_file h;
        size_t need;
        amtl_status s2 = {0};
        rc = amtl_file_decode_head(&h, p, first, &need, "fz", NULL, &s2);
        if (rc == 0)
            amtl_file_free(&h);
        else if (rc < 0 && (strncmp(s2.msg, "fz: ", 4) || !file_is_empty(&h)))
            odd++;
    }
    free(p);
    free(buf);
    amtl_file_free(&whole);
    CHECK(odd == 0);
}

/* From a file: the checksum verified through the file, a head that
 * outgrows the first read, and damage or a version 1 file read whole for
 * their messages. */
static void test_read_head(void)
{
    amtl_status st = {0};
    amtl_file f, h;
    amtl_file_init(&f, "dataset");
    char *big = malloc(300001);
    memset(big, 'x', 300000);
    big[300000] = '\0';
    int64_t shape[1] = {4};
    float v[4] = {1, 2, 3, 4};
    CHECK_OK(amtl_file_set_meta(&f, "a", "1", &st) || amtl_file_set_meta(&f, "big", big, &st),
             &st);
    CHECK(amtl_file_add(&f, "t", AMTL_F32, 1, shape, v, &st) != NULL);
    free(big);
    char path[600];
    snprintf(path, sizeof path, "%s/head.amtl", test_tmpdir());
    CHECK_OK(amtl_file_write(&f, path, &st), &st);
    amtl_file_free(&f);
    CHECK_OK(amtl_file_read_head(&h, path, "dataset", &st), &st);
    CHECK(h.n_tensors == 0 && h.checksum == AMTL_CHECKSUM_VERIFIED);
    CHECK(amtl_file_meta(&h, "big") && strlen(amtl_file_meta(&h, "big")) == 300000);
    amtl_file_free(&h);
    CHECK(amtl_file_read_head(&h, path, "checkpoint", &st) == -1);
    CHECKF(strstr(st.msg, "expected a file of kind \"checkpoint\"") != NULL, "%s", st.msg);
    /* one flipped byte in the tensor: the whole reader's message */
    FILE *fp = fopen(path, "r+b");
    CHECK(fp != NULL);
    fseek(fp, -20, SEEK_END);
    int c = fgetc(fp);
    fseek(fp, -20, SEEK_END);
    fputc(c ^ 0x5a, fp);
    fclose(fp);
    CHECK(amtl_file_read_head(&h, path, NULL, &st) == -1);
    CHECKF(strstr(st.msg, "damaged file") != NULL, "%s", st.msg);
    CHECK(amtl_file_read_head(&h, "-", NULL, &st) == -1 && st.code == AMTL_EUSAGE);
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
    static const struct {
        int64_t version;
        const char *msg;
    } bad[] = {
        {3, "unsupported format version 3 (this build reads versions 1 to 2)"},
        {0, "unsupported format version 0 (this build reads versions 1 to 2)"},
        {-1, "unsupported format version -1"},
        /* version 2 without its checksum */
        {2, "bad.amtl: damaged file: it does not end with its checksum"},
    };
    mp m;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mp_begin(&m);
        mp_head(&m, 5, "amtl", bad[i].version, "model");
        mp_s(&m, "tensors");
        msgpack_pack_map(&m.pk, 0);
        CHECK_MP_FAILS(&m, bad[i].msg);
    }
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
    mp_tensors(&m, 0);
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
        mp_tensors(&m, 1);
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
        mp_tensors(&m, 1);
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
    mp_start(&m, 5, "amtl", 1, "model");
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
    mp_tensors(&m, 1);
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
    mp_tensors(&m, 3);
    mp_tensor(&m, "w", "u8", 1, s, 2);
    mp_tensor(&m, "b", "u8", 1, s, 2);
    mp_tensor(&m, "w", "u8", 1, s, 2);
    CHECK_MP_FAILS(&m, "duplicate tensor 'w'");

    mp_begin(&m);
    mp_start(&m, 5, "amtl", 1, "model");
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
    mp_tensors(&m, 3);
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
    /* after a current-version file, bytes hide its checksum */
    unsigned char *p = malloc(len + 3);
    memcpy(p, buf, len);
    memcpy(p + len, "xyz", 3);
    char why[1400];
    int ok = decode_fails(p, len + 3, NULL, AMTL_EDATA,
                          "damaged file: it does not end with its checksum", why,
                          sizeof why);
    /* two files concatenated */
    unsigned char *q = malloc(2 * len);
    memcpy(q, buf, len);
    memcpy(q + len, buf, len);
    int ok2 = ok && decode_fails(q, 2 * len, NULL, AMTL_EDATA,
                                 "damaged file: the checksum does not match", why,
                                 sizeof why);
    free(p);
    free(q);
    free(buf);
    CHECKF(ok && ok2, "%s", why);

    /* after a version 1 file, the walk finds them */
    mp m;
    mp_one_tensor(&m, "w", "u8", 1, (int64_t[]){4}, 4);
    size_t n = m.sb.size;
    mp_raw(&m, "xyz", 3);
    char want[128];
    snprintf(want, sizeof want, "3 trailing bytes after the end of the data at byte %zu", n);
    CHECK_MP_FAILS(&m, want);
}

static void test_invalid_and_ext_types(void)
{
    mp m;
    static const unsigned char fixext1[] = {0xd4, 0x01, 0x00};
    mp_tensors(&m, 1);
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

int main(void)
{
    if (iotest_begin())
        return 1;
    RUN(test_every_truncation_fails_cleanly);
    RUN(test_random_corruption_never_crashes);
    RUN(test_head_of_every_prefix);
    RUN(test_read_head);
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
    iotest_end();
    TEST_MAIN_END();
}
