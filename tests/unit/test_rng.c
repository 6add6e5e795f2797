/* test_rng.c — the seeded generator: reproducibility, state save/restore,
 * and loose statistical checks of every distribution. */
#include <stdint.h>

#include "base/rng.h"
#include "test.h"

static void test_same_seed_same_stream(void)
{
    amtl_rng a, b;
    amtl_rng_seed(&a, 12345);
    amtl_rng_seed(&b, 12345);
    for (int i = 0; i < 1000; i++)
        CHECK(amtl_rng_u64(&a) == amtl_rng_u64(&b));
    for (int i = 0; i < 100; i++) {
        CHECK(amtl_rng_uniform(&a) == amtl_rng_uniform(&b));
        CHECK(amtl_rng_normal(&a, 1, 2) == amtl_rng_normal(&b, 1, 2));
    }
}

static void test_different_seeds_differ(void)
{
    amtl_rng a, b, z;
    amtl_rng_seed(&a, 1);
    amtl_rng_seed(&b, 2);
    int same = 0;
    for (int i = 0; i < 1000; i++)
        same += amtl_rng_u64(&a) == amtl_rng_u64(&b);
    CHECK(same == 0);
    /* seed 0 is a valid seed (the state is never all zero) */
    amtl_rng_seed(&z, 0);
    CHECK(z.s[0] | z.s[1] | z.s[2] | z.s[3]);
    uint64_t x = amtl_rng_u64(&z), y = amtl_rng_u64(&z);
    CHECK(x != y);
}

static void test_state_save_restore(void)
{
    amtl_rng a, b;
    amtl_rng_seed(&a, 777);
    for (int i = 0; i < 123; i++)
        amtl_rng_u64(&a);
    int64_t saved[4];
    amtl_rng_get_state(&a, saved);
    uint64_t expect[50];
    for (int i = 0; i < 50; i++)
        expect[i] = amtl_rng_u64(&a);
    amtl_rng_seed(&b, 1); /* some other state, then overwritten */
    amtl_rng_set_state(&b, saved);
    for (int i = 0; i < 50; i++)
        CHECK(amtl_rng_u64(&b) == expect[i]);
    /* normal draws keep no spare, so a restore mid-stream is exact too */
    amtl_rng_get_state(&b, saved);
    double n1 = amtl_rng_normal(&b, 0, 1);
    amtl_rng_set_state(&a, saved);
    CHECK(amtl_rng_normal(&a, 0, 1) == n1);
}

static void test_uniform_range_and_mean(void)
{
    amtl_rng r;
    amtl_rng_seed(&r, 2024);
    const int n = 200000;
    double sum = 0, sumd = 0;
    float lo = 1.0f, hi = 0.0f;
    for (int i = 0; i < n; i++) {
        float u = amtl_rng_uniform(&r);
        double d = amtl_rng_uniform_double(&r);
        CHECK(u >= 0.0f && u < 1.0f);
        CHECK(d >= 0.0 && d < 1.0);
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
        sum += u;
        sumd += d;
    }
    /* std of the mean of n uniforms is 0.289/sqrt(n) ~ 0.00065; allow ~8 sigma */
    CHECK_CLOSE(sum / n, 0.5, 0.005);
    CHECK_CLOSE(sumd / n, 0.5, 0.005);
    CHECK(lo < 0.001f && hi > 0.999f);
    for (int i = 0; i < 10000; i++) {
        float v = amtl_rng_uniform_range(&r, -3.0f, 5.0f);
        CHECK(v >= -3.0f && v < 5.0f);
    }
}

static void test_normal_moments(void)
{
    amtl_rng r;
    amtl_rng_seed(&r, 99);
    const int n = 100000;
    double sum = 0, sq = 0;
    int finite = 1;
    for (int i = 0; i < n; i++) {
        double x = amtl_rng_normal(&r, 2.0, 3.0);
        finite &= isfinite(x);
        sum += x;
        sq += x * x;
    }
    double mean = sum / n, var = sq / n - mean * mean;
    CHECK(finite);
    /* the mean's std is 3/sqrt(1e5) ~ 0.0095: loose bounds, about 5 sigma */
    CHECKF(fabs(mean - 2.0) < 0.05, "mean %g", mean);
    CHECKF(fabs(sqrt(var) - 3.0) < 0.05, "std %g", sqrt(var));
}

static void test_bernoulli_rate(void)
{
    amtl_rng r;
    amtl_rng_seed(&r, 5);
    const int n = 100000;
    int ones = 0;
    for (int i = 0; i < n; i++) {
        int b = amtl_rng_bernoulli(&r, 0.3);
        CHECK(b == 0 || b == 1);
        ones += b;
    }
    /* std of the rate is sqrt(0.21/1e5) ~ 0.0015 */
    CHECKF(fabs((double)ones / n - 0.3) < 0.01, "rate %g", (double)ones / n);
    int never = 0, always = 0;
    for (int i = 0; i < 1000; i++) {
        never += amtl_rng_bernoulli(&r, 0.0);
        always += amtl_rng_bernoulli(&r, 1.0);
    }
    CHECK(never == 0 && always == 1000);
}

static void test_permutation(void)
{
    amtl_rng a, b;
    amtl_rng_seed(&a, 31);
    amtl_rng_seed(&b, 31);
    enum { N = 1000 };
    int32_t p[N], q[N];
    amtl_rng_permutation(&a, p, N);
    amtl_rng_permutation(&b, q, N);
    char seen[N] = {0};
    int moved = 0;
    for (int i = 0; i < N; i++) {
        CHECK(p[i] >= 0 && p[i] < N);
        CHECK(!seen[p[i]]);
        seen[p[i]] = 1;
        CHECK(p[i] == q[i]);
        moved += p[i] != i;
    }
    CHECK(moved > N / 2);
    /* the next permutation from the same generator differs */
    amtl_rng_permutation(&a, q, N);
    CHECK(memcmp(p, q, sizeof p) != 0);
    /* small sizes */
    int32_t one[1] = {-5};
    amtl_rng_permutation(&a, one, 1);
    CHECK(one[0] == 0);
    amtl_rng_permutation(&a, NULL, 0);
    /* every ordering of 3 elements occurs, roughly equally (6 x ~1000) */
    int counts[6] = {0};
    for (int i = 0; i < 6000; i++) {
        int32_t t[3];
        amtl_rng_permutation(&a, t, 3);
        counts[t[0] * 2 + (t[1] > t[2])]++;
    }
    for (int i = 0; i < 6; i++)
        CHECKF(counts[i] > 850 && counts[i] < 1150, "ordering %d seen %d times", i,
               counts[i]);
}

/* The windowed order: a permutation; window 0 or >= n the plain one, draw
 * for draw; otherwise every run of a window's values lies in window/block
 * blocks, and the blocks of a window come from all over 0..n-1. */
static void test_window_permutation(void)
{
    enum { N = 10007, BLOCK = 64, WINDOW = 1000 };
    static int32_t p[N], q[N];
    amtl_rng a, b;
    for (size_t w = 0; w <= N; w += N) {
        amtl_rng_seed(&a, 5);
        amtl_rng_seed(&b, 5);
        CHECK(amtl_rng_window_permutation(&a, p, N, BLOCK, w) == 0);
        amtl_rng_permutation(&b, q, N);
        CHECK(memcmp(p, q, sizeof p) == 0);
        CHECK(amtl_rng_u64(&a) == amtl_rng_u64(&b));
    }
    amtl_rng_seed(&a, 6);
    amtl_rng_seed(&b, 6);
    CHECK(amtl_rng_window_permutation(&a, p, N, BLOCK, WINDOW) == 0);
    CHECK(amtl_rng_window_permutation(&b, q, N, BLOCK, WINDOW) == 0);
    CHECK(memcmp(p, q, sizeof p) == 0); /* the same state, the same order */
    static char seen[N];
    memset(seen, 0, sizeof seen);
    int per = WINDOW / BLOCK, far = 0;
    /* windows hold per blocks of BLOCK values, bar the short last block */
    for (int i = 0; i < N; i++) {
        CHECK(p[i] >= 0 && p[i] < N && !seen[p[i]]);
        seen[p[i]] = 1;
    }
    int i = 0;
    while (i < N) {
        int blocks[64], nb = 0, len = 0;
        while (i + len < N && nb <= per) {
            int blk = p[i + len] / BLOCK, known = 0;
            for (int k = 0; k < nb; k++)
                known |= blocks[k] == blk;
            if (!known) {
                if (nb == per)
                    break;
                blocks[nb++] = blk;
            }
            len++;
        }
        CHECK(nb <= per);
        /* the window holds its blocks whole: per·BLOCK values, or fewer at
         * the end */
        CHECK(len == per * BLOCK || i + len == N || len == (per - 1) * BLOCK + N % BLOCK);
        int lo = blocks[0], hi = blocks[0];
        for (int k = 1; k < nb; k++) {
            lo = blocks[k] < lo ? blocks[k] : lo;
            hi = blocks[k] > hi ? blocks[k] : hi;
        }
        far += hi - lo > per;  /* not one run of adjacent blocks */
        /* shuffled inside: the window's values are not in block order */
        int sorted = 1;
        for (int k = 1; k < len; k++)
            sorted &= p[i + k] / BLOCK == p[i + k - 1] / BLOCK;
        CHECK(!sorted || nb == 1);
        i += len;
    }
    CHECK(far > 0);
}

static void test_below_in_range(void)
{
    amtl_rng r;
    amtl_rng_seed(&r, 8);
    for (int i = 0; i < 1000; i++)
        CHECK(amtl_rng_below(&r, 1) == 0);
    int hist[7] = {0};
    for (int i = 0; i < 70000; i++) {
        uint64_t v = amtl_rng_below(&r, 7);
        CHECK(v < 7);
        hist[v]++;
    }
    /* each bin expects 10000 with std ~93 */
    for (int i = 0; i < 7; i++)
        CHECKF(hist[i] > 9500 && hist[i] < 10500, "bin %d: %d", i, hist[i]);
    uint64_t big = (UINT64_C(1) << 63) + 12345;
    for (int i = 0; i < 1000; i++)
        CHECK(amtl_rng_below(&r, big) < big);
}

static void test_fork_streams(void)
{
    amtl_rng parent, c1, c2, c1b;
    amtl_rng_seed(&parent, 42);
    amtl_rng_fork(&c1, &parent, 1);
    amtl_rng_fork(&c2, &parent, 2);
    amtl_rng_fork(&c1b, &parent, 1);
    int same12 = 0, samep = 0;
    amtl_rng p2 = parent;
    for (int i = 0; i < 1000; i++) {
        uint64_t a = amtl_rng_u64(&c1), b = amtl_rng_u64(&c2), c = amtl_rng_u64(&c1b);
        uint64_t p = amtl_rng_u64(&p2);
        CHECK(a == c); /* the same label gives the same stream */
        same12 += a == b;
        samep += a == p;
    }
    CHECK(same12 == 0);
    CHECK(samep == 0);
    /* forking does not advance the parent */
    amtl_rng fresh;
    amtl_rng_seed(&fresh, 42);
    CHECK(amtl_rng_u64(&parent) == amtl_rng_u64(&fresh));
}

int main(void)
{
    RUN(test_same_seed_same_stream);
    RUN(test_different_seeds_differ);
    RUN(test_state_save_restore);
    RUN(test_uniform_range_and_mean);
    RUN(test_normal_moments);
    RUN(test_bernoulli_rate);
    RUN(test_permutation);
    RUN(test_window_permutation);
    RUN(test_below_in_range);
    RUN(test_fork_streams);
    TEST_MAIN_END();
}
