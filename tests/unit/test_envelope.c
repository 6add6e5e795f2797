/* test_envelope.c — the amtl file in memory: adding, finding and checking
 * tensors and metadata, and round trips through encode and decode. */
#include <stdint.h>

#include "format/envelope.h"
#include "iotest.h"

static const amtl_dtype all_dtypes[] = {AMTL_F32, AMTL_I32, AMTL_I64, AMTL_U8, AMTL_F64};
#define N_ALL_DTYPES (int)(sizeof all_dtypes / sizeof all_dtypes[0])

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
    /* a view: the caller's array itself, encoded as a copy would be, and
     * left alone by amtl_file_free (ASan runs would see a free of src) */
    amtl_file g;
    src[0] = 0.5f;
    amtl_tensor *vt = amtl_file_add_view(&f, "view", AMTL_F32, 2, s, src, &st);
    CHECKF(vt && vt->data == (void *)src && !vt->owns, "%s", st.msg);
    amtl_file_init(&g, "model");
    CHECK(amtl_file_add_view(&g, "v", AMTL_F32, 2, s, src, &st) != NULL);
    amtl_file h;
    amtl_file_init(&h, "model");
    CHECK(amtl_file_add(&h, "v", AMTL_F32, 2, s, src, &st) != NULL);
    void *bg, *bh;
    size_t lg, lh;
    CHECK_OK(amtl_file_encode(&g, &bg, &lg, &st), &st);
    CHECK_OK(amtl_file_encode(&h, &bh, &lh, &st), &st);
    CHECK(lg == lh && memcmp(bg, bh, lg) == 0);
    free(bg);
    free(bh);
    amtl_file_free(&g);
    amtl_file_free(&h);
    CHECK(src[5] == 5.5f);
    CHECK(amtl_file_add_view(&f, "none", AMTL_F32, 2, s, NULL, &st) == NULL);
    CHECK(strstr(st.msg, "a view of no data"));
    int64_t zero[1] = {0};
    CHECK(amtl_file_add_view(&f, "empty", AMTL_F32, 1, zero, NULL, &st) != NULL);
    CHECK(amtl_file_add_view(&f, "view", AMTL_F32, 2, s, src, &st) == NULL);
    CHECK(strstr(st.msg, "duplicate tensor 'view'"));
    CHECK(f.n_tensors == 4);
    amtl_file_free(&f);
    CHECK(file_is_empty(&f));
    amtl_file_free(&f); /* safe twice / on a zeroed struct */
}

/* A streamed tensor's fill: values i * 0.5 for i in [0, n), put `piece`
 * floats at a time; `extra` floats more or fewer than the shape holds. */
typedef struct {
    int64_t n, piece, extra;
    int calls;
} ramp;

static int fill_ramp(void *ctx, amtl_put_fn put, void *put_ctx, amtl_status *st)
{
    ramp *r = ctx;
    r->calls++;
    float buf[7];
    for (int64_t i = 0, total = r->n + r->extra; i < total;) {
        int64_t k = total - i < r->piece ? total - i : r->piece;
        for (int64_t j = 0; j < k; j++)
            buf[j] = (float)(i + j) * 0.5f;
        if (put(put_ctx, buf, (size_t)k * sizeof *buf, st))
            return -1;
        i += k;
    }
    return 0;
}

/* A streamed tensor encodes as the same tensor held in memory would (bytes,
 * checksums), made into memory the same; a fill that makes more or fewer
 * bytes than the shape is an error naming the tensor. */
static void test_streamed_tensor(void)
{
    amtl_status st = {0};
    enum { N = 40 };
    float held[N];
    for (int i = 0; i < N; i++)
        held[i] = (float)i * 0.5f;
    int64_t shape[2] = {8, 5};
    amtl_file a, b;
    amtl_file_init(&a, "dataset");
    amtl_file_init(&b, "dataset");
    ramp r = {N, 7, 0, 0};
    CHECK(amtl_file_add(&a, "first", AMTL_F32, 2, shape, held, &st));
    CHECK(amtl_file_add(&a, "second", AMTL_F32, 2, shape, held, &st));
    CHECK(amtl_file_add(&b, "first", AMTL_F32, 2, shape, held, &st));
    CHECKF(amtl_file_add_stream(&b, "second", AMTL_F32, 2, shape, fill_ramp, &r, &st), "%s",
           st.msg);
    void *ba, *bb;
    size_t la, lb;
    CHECK_OK(amtl_file_encode(&a, &ba, &la, &st), &st);
    CHECK_OK(amtl_file_encode(&b, &bb, &lb, &st), &st);
    int same = la == lb && !memcmp(ba, bb, la);
    free(ba);
    free(bb);
    CHECK(same && r.calls == 1);
    CHECK_OK(amtl_file_materialize(&b, &st), &st);
    const amtl_tensor *t = amtl_file_find(&b, "second");
    CHECK(r.calls == 2 && t->data && t->owns && !memcmp(t->data, held, sizeof held));
    amtl_file_free(&a);
    amtl_file_free(&b);

    for (int extra = -1; extra <= 1; extra += 2) {
        amtl_file c;
        amtl_file_init(&c, "dataset");
        ramp bad = {N, 3, extra, 0};
        CHECK(amtl_file_add_stream(&c, "odd", AMTL_F32, 2, shape, fill_ramp, &bad, &st));
        void *buf = NULL;
        size_t len;
        int rc = amtl_file_encode(&c, &buf, &len, &st);
        free(buf);
        amtl_file_free(&c);
        CHECK(rc == -1);
        CHECKF(strstr(st.msg, "tensor 'odd'") &&
                   strstr(st.msg, extra > 0 ? "more than 160 bytes" : "156 of 160 bytes"),
               "%s", st.msg);
    }
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

int main(void)
{
    if (iotest_begin())
        return 1;
    RUN(test_roundtrip_every_dtype_and_shape);
    RUN(test_roundtrip_is_byte_stable);
    RUN(test_meta_roundtrip_and_order);
    RUN(test_tensor_order_and_find);
    RUN(test_add_rules);
    RUN(test_get_checks);
    RUN(test_streamed_tensor);
    iotest_end();
    TEST_MAIN_END();
}
