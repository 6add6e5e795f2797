/* test_comm.c — the data-parallel job (lib/dist/comm.h).  Run alone it is
 * rank 0 of 1 and every collective leaves its buffer as it is; run under
 * mpirun (tests/bats/65-distributed.bats: 3 ranks) each collective is
 * checked against what the ranks sent. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dist/comm.h"
#include "test.h"

static amtl_comm job;

static void test_job(void)
{
    CHECK(job.size >= 1 && job.rank >= 0 && job.rank < job.size);
    CHECK(job.node_size >= 1 && job.node_size <= job.size);
    CHECK(amtl_comm_parallel(&job) == (job.size > 1));
    CHECK(amtl_comm_leads(&job) == (job.rank == 0));
    CHECK(amtl_comm_leads(NULL) && !amtl_comm_parallel(NULL));
    /* threads: an explicit count stays; "all cores" is shared out */
    CHECK(amtl_comm_threads(&job, 3) == 3);
    int t = amtl_comm_threads(&job, 0);
    CHECK(job.mpi ? t >= 1 : t == 0);
}

static void test_sums(void)
{
    amtl_status st;
    int n = job.size, r = job.rank;
    /* rank r sends r + 1 + i/8: the sum is n(n+1)/2 + n·i/8, exact in float */
    float f[1000];
    for (int i = 0; i < 1000; i++)
        f[i] = (float)(r + 1) + (float)i / 8;
    CHECK_OK(amtl_comm_sum_f32(&job, f, 1000, &st), &st);
    for (int i = 0; i < 1000; i++)
        CHECKF(f[i] == (float)(n * (n + 1) / 2) + (float)n * (float)i / 8, "f[%d] = %g", i,
               (double)f[i]);
    double d[3] = {r, -2.0 * r, 0.25};
    CHECK_OK(amtl_comm_sum_f64(&job, d, 3, &st), &st);
    CHECK(d[0] == n * (n - 1) / 2.0 && d[1] == -(double)n * (n - 1) && d[2] == 0.25 * n);
    CHECK_OK(amtl_comm_sum_f32(&job, f, 0, &st), &st);
}

static void test_bcast(void)
{
    amtl_status st;
    char buf[64];
    snprintf(buf, sizeof buf, "from rank %d", job.rank);
    CHECK_OK(amtl_comm_bcast(&job, buf, sizeof buf, &st), &st);
    CHECKF(!strcmp(buf, "from rank 0"), "%s", buf);
}

static void test_check_same(void)
{
    amtl_status st;
    CHECK_OK(amtl_comm_check_same(&job, 0x1234abcdULL, "the weights", &st), &st);
    int rc = amtl_comm_check_same(&job, (uint64_t)job.rank, "the weights", &st);
    if (job.size == 1) {
        CHECK(rc == 0);
    } else {
        CHECK(rc == -1 && st.code == AMTL_EDATA);
        CHECKF(strstr(st.msg, "the weights differ between the ranks") != NULL, "%s", st.msg);
    }
}

int main(void)
{
    amtl_status st;
    if (amtl_comm_init(&job, &st)) {
        printf("not ok 1 - amtl_comm_init: %s\n", st.msg);
        return 1;
    }
    /* under mpirun only rank 0 reports; every rank still checks */
    if (job.rank > 0 && !freopen("/dev/null", "w", stdout))
        return 1;
    RUN(test_job);
    RUN(test_sums);
    RUN(test_bcast);
    RUN(test_check_same);
    int failed = test_fail_count_;
    /* a failure on any rank fails rank 0's report */
    double f = failed;
    if (amtl_comm_sum_f64(&job, &f, 1, &st) == 0 && f > failed)
        printf("not ok %d - another rank failed\n", ++test_count_), test_fail_count_++;
    amtl_comm_finish(&job);
    TEST_MAIN_END();
}
