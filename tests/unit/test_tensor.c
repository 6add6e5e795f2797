/* test_tensor.c — tensors, dtypes, aligned allocation and the arena. */
#include <stdint.h>

#include "base/rng.h"
#include "base/tensor.h"
#include "test.h"

static int aligned(const void *p) { return ((uintptr_t)p % AMTL_ALIGN) == 0; }

static void test_alloc_numel_nbytes(void)
{
    amtl_status st = {0};
    amtl_tensor t;
    int64_t s[3] = {2, 3, 5};
    CHECK_OK(amtl_tensor_alloc(&t, AMTL_F64, 3, s, &st), &st);
    CHECK(t.owns && t.ndim == 3 && t.dtype == AMTL_F64);
    CHECK(amtl_tensor_numel(&t) == 30);
    CHECK(amtl_tensor_nbytes(&t) == 240);
    CHECK(aligned(t.data));
    for (int i = 0; i < 30; i++)
        CHECK(((double *)t.data)[i] == 0.0);
    /* the whole block is usable */
    amtl_rng r;
    amtl_rng_seed(&r, 1);
    for (int i = 0; i < 30; i++)
        ((double *)t.data)[i] = amtl_rng_normal(&r, 0, 1) + 10.0;
    amtl_tensor_free(&t);
    CHECK(t.data == NULL && t.owns == 0 && t.ndim == 0);
    amtl_tensor_free(&t); /* safe on a zeroed struct */

    CHECK_OK(amtl_tensor_alloc(&t, AMTL_U8, 0, NULL, &st), &st);
    CHECK(amtl_tensor_numel(&t) == 1 && amtl_tensor_nbytes(&t) == 1 && t.data);
    amtl_tensor_free(&t);

    int64_t e[2] = {4, 0};
    CHECK_OK(amtl_tensor_alloc(&t, AMTL_I32, 2, e, &st), &st);
    CHECK(amtl_tensor_numel(&t) == 0 && amtl_tensor_nbytes(&t) == 0 && t.data);
    amtl_tensor_free(&t);
}

static void test_dtype_names_round_trip(void)
{
    static const amtl_dtype all[] = {AMTL_F32, AMTL_I32, AMTL_I64, AMTL_U8, AMTL_F64};
    static const size_t sizes[] = {4, 4, 8, 1, 8};
    for (int i = 0; i < 5; i++) {
        const char *name = amtl_dtype_name(all[i]);
        CHECK(name);
        amtl_dtype dt = (amtl_dtype)-1;
        CHECK(amtl_dtype_parse(name, strlen(name), &dt) == 0);
        CHECK(dt == all[i]);
        CHECK(amtl_dtype_size(all[i]) == sizes[i]);
    }
    CHECK(strcmp(amtl_dtype_name(AMTL_F32), "f32") == 0);
    CHECK(strcmp(amtl_dtype_name(AMTL_U8), "u8") == 0);
    CHECK(amtl_dtype_name((amtl_dtype)42) == NULL);
    CHECK(amtl_dtype_size((amtl_dtype)42) == 0);
    amtl_dtype dt = AMTL_F64;
    CHECK(amtl_dtype_parse("f16", 3, &dt) == -1);
    CHECK(amtl_dtype_parse("", 0, &dt) == -1);
    CHECK(amtl_dtype_parse("f3", 2, &dt) == -1);
    CHECK(dt == AMTL_F64); /* untouched on failure */
    /* the length bounds the name: not NUL-terminated input */
    CHECK(amtl_dtype_parse("i64xyz", 3, &dt) == 0 && dt == AMTL_I64);
    CHECK(amtl_dtype_parse("u8", 1, &dt) == -1);
}

static void test_alloc_refuses_bad_shapes(void)
{
    amtl_status st = {0};
    amtl_tensor t;
    int64_t huge[2] = {INT64_C(1) << 62, INT64_C(1) << 62};
    CHECK(amtl_tensor_alloc(&t, AMTL_F32, 2, huge, &st) == -1);
    CHECKF(st.code == AMTL_EDATA && strstr(st.msg, "overflows"), "%s", st.msg);
    CHECK(t.data == NULL && !t.owns);

    int64_t just[1] = {INT64_C(1) << 62}; /* 2^62 * 4 bytes overflows 64 bits */
    CHECK(amtl_tensor_alloc(&t, AMTL_F32, 1, just, &st) == -1);
    CHECK(st.code == AMTL_EDATA);

    int64_t neg[2] = {3, -1};
    CHECK(amtl_tensor_alloc(&t, AMTL_F32, 2, neg, &st) == -1);
    CHECKF(strstr(st.msg, "negative dimension -1"), "%s", st.msg);

    int64_t five[5] = {1, 1, 1, 1, 1};
    CHECK(amtl_tensor_alloc(&t, AMTL_F32, 5, five, &st) == -1);
    CHECKF(strstr(st.msg, "5 dimensions"), "%s", st.msg);
    CHECK(amtl_tensor_alloc(&t, AMTL_F32, -1, five, &st) == -1);

    CHECK(amtl_tensor_alloc(&t, (amtl_dtype)9, 1, five, &st) == -1);
    CHECKF(strstr(st.msg, "unknown dtype"), "%s", st.msg);
}

static void test_view_does_not_own(void)
{
    float buf[6] = {1, 2, 3, 4, 5, 6};
    int64_t s[2] = {2, 3};
    amtl_tensor v = amtl_tensor_view(AMTL_F32, 2, s, buf);
    CHECK(v.data == buf && !v.owns && v.ndim == 2 && v.shape[1] == 3);
    CHECK(amtl_tensor_numel(&v) == 6 && amtl_tensor_nbytes(&v) == 24);
    amtl_tensor_free(&v); /* must not free buf */
    CHECK(v.data == NULL);
    CHECK(buf[5] == 6.0f);
}

static void test_aligned_alloc_helpers(void)
{
    for (size_t n = 0; n < 300; n += 37) {
        unsigned char *p = amtl_alloc(n);
        CHECK(p && aligned(p));
        for (size_t i = 0; i < n; i++)
            CHECK(p[i] == 0);
        amtl_free(p);
    }
    CHECK(amtl_alloc(SIZE_MAX) == NULL);
    CHECK(amtl_alloc(SIZE_MAX - 10) == NULL);
    CHECK(amtl_alloc_array(SIZE_MAX / 2, 3) == NULL);
    float *f = amtl_alloc_array(17, sizeof(float));
    CHECK(f && aligned(f));
    amtl_free(f);
    amtl_free(NULL);
}

static void test_arena_alignment_and_exhaustion(void)
{
    amtl_status st = {0};
    amtl_arena a;
    CHECK_OK(amtl_arena_init(&a, 1024, &st), &st);
    CHECK(aligned(a.base) && a.cap == 1024 && a.used == 0);
    unsigned char *p1 = amtl_arena_alloc(&a, 10);
    unsigned char *p2 = amtl_arena_alloc(&a, 1);
    float *p3 = amtl_arena_floats(&a, 5);
    CHECK(p1 && p2 && p3);
    CHECK(aligned(p1) && aligned(p2) && aligned(p3));
    CHECK(p2 >= p1 + 10 && (unsigned char *)p3 >= p2 + 1);
    /* blocks do not overlap */
    memset(p1, 1, 10);
    memset(p2, 2, 1);
    for (int i = 0; i < 5; i++)
        p3[i] = 3.0f;
    CHECK(p1[9] == 1 && p2[0] == 2);

    size_t used = a.used;
    CHECK(amtl_arena_alloc(&a, 2000) == NULL);
    CHECK(a.used == used); /* a failed request takes nothing */
    CHECK(amtl_arena_floats(&a, SIZE_MAX / 2) == NULL);
    CHECK(amtl_arena_alloc(&a, SIZE_MAX) == NULL);
    /* the rest can still be had, exactly */
    size_t start = (a.used + AMTL_ALIGN - 1) / AMTL_ALIGN * AMTL_ALIGN;
    CHECK(amtl_arena_alloc(&a, a.cap - start) != NULL);
    CHECK(a.used == a.cap);
    CHECK(amtl_arena_alloc(&a, 1) == NULL);
    amtl_arena_free(&a);
    CHECK(a.base == NULL && a.cap == 0);
    amtl_arena_free(&a); /* safe on a zeroed struct */
}

static void test_arena_mark_rewind_peak(void)
{
    amtl_status st = {0};
    amtl_arena a;
    CHECK_OK(amtl_arena_init(&a, 4096, &st), &st);
    void *keep = amtl_arena_alloc(&a, 100);
    CHECK(keep);
    size_t m = amtl_arena_mark(&a);
    void *x = amtl_arena_alloc(&a, 1000);
    void *y = amtl_arena_alloc(&a, 500);
    CHECK(x && y);
    size_t peak = a.peak;
    CHECK(peak >= 1600);
    amtl_arena_rewind(&a, m);
    CHECK(amtl_arena_mark(&a) == m);
    CHECK(a.peak == peak); /* the peak remembers */
    void *x2 = amtl_arena_alloc(&a, 1000);
    CHECK(x2 == x); /* rewinding hands the same memory out again */
    /* rewinding forward is ignored */
    amtl_arena_rewind(&a, 4000);
    CHECK(amtl_arena_mark(&a) < 4000);
    amtl_arena_reset(&a);
    CHECK(a.used == 0 && a.peak == peak);
    CHECK(amtl_arena_alloc(&a, 1) == a.base);
    amtl_arena_free(&a);
}

int main(void)
{
    RUN(test_alloc_numel_nbytes);
    RUN(test_dtype_names_round_trip);
    RUN(test_alloc_refuses_bad_shapes);
    RUN(test_view_does_not_own);
    RUN(test_aligned_alloc_helpers);
    RUN(test_arena_alignment_and_exhaustion);
    RUN(test_arena_mark_rewind_peak);
    TEST_MAIN_END();
}
