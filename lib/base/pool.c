/* pool.c — the fork-join thread pool of pool.h.
 *
 * One process-wide pool: the training step has no handle to pass one
 * around, and the thread count is a process setting (config key `threads`)
 * like OpenBLAS's own.  A run bumps a generation counter; workers notice it
 * by a bounded spin on the counter and otherwise sleep on `wake`; the last
 * worker to finish signals `done`.  Runs are serialised by `run_mu`, so two
 * threads of a program may both use the pool (one after the other).
 */
#include "base/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>


/* Loads of the generation counter before a worker sleeps (and of the pending
 * count before the caller sleeps): a few to a few tens of microseconds, the
 * gap between two phases of a MixedOp, never long enough to matter when the
 * other core has other work. */
#define POOL_SPIN 4000

static struct {
    pthread_mutex_t mu, run_mu;
    pthread_cond_t wake, done;
    pthread_t *tid;
    int nworkers;
    int configured;
    int explicit_count;        /* the count was set (amtl_pool_set_threads or AMTL_THREADS) */
    int stop;
    uint64_t start_job;
    /* The run in progress: its generation (a count of runs) << 16 | its task
     * count, in one word, so that a worker reads the two together.  A worker
     * that wakes late, after the run it was woken for has ended and another
     * begun, then sees the new run's count with the new generation (fn and
     * arg of a run stay put until every task below its count is done). */
    _Atomic uint64_t job;
    atomic_int pending;
    amtl_pool_task fn;
    void *arg;
} P = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .run_mu = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
};

static _Thread_local int in_task;

static void *worker(void *arg)
{
    int self = (int)(intptr_t)arg;
    uint64_t seen = P.start_job;
    for (;;) {
        uint64_t g = seen;
        for (int i = 0; i < POOL_SPIN; i++)
            if ((g = atomic_load_explicit(&P.job, memory_order_acquire)) != seen)
                break;
        if (g == seen) {
            pthread_mutex_lock(&P.mu);
            while ((g = atomic_load_explicit(&P.job, memory_order_acquire)) == seen)
                pthread_cond_wait(&P.wake, &P.mu);
            pthread_mutex_unlock(&P.mu);
        }
        seen = g;
        if (P.stop)
            break;
        int njob = (int)(g & 0xffff);
        if (self >= njob)
            continue;
        in_task = 1;
        P.fn(P.arg, self, njob);
        in_task = 0;
        if (atomic_fetch_sub_explicit(&P.pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&P.mu);
            pthread_cond_signal(&P.done);
            pthread_mutex_unlock(&P.mu);
        }
    }
    return NULL;
}

/* The job word of the next run, with n tasks. */
static uint64_t next_job(int n)
{
    uint64_t gen = atomic_load_explicit(&P.job, memory_order_relaxed) >> 16;
    return (gen + 1) << 16 | (uint64_t)n;
}

static void stop_workers(void)
{
    if (!P.nworkers)
        return;
    pthread_mutex_lock(&P.mu);
    P.stop = 1;
    atomic_store_explicit(&P.job, next_job(0), memory_order_release);
    pthread_cond_broadcast(&P.wake);
    pthread_mutex_unlock(&P.mu);
    for (int i = 0; i < P.nworkers; i++)
        pthread_join(P.tid[i], NULL);
    free(P.tid);
    P.tid = NULL;
    P.nworkers = 0;
    P.stop = 0;
}

int amtl_pool_set_threads(int n)
{
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)(c < AMTL_POOL_MAX ? c : AMTL_POOL_MAX) : 1;
    }
    if (n > AMTL_POOL_MAX)
        n = AMTL_POOL_MAX;
    if (in_task)  /* the run in progress holds run_mu: keep the pool as it is */
        return P.nworkers + 1;
    pthread_mutex_lock(&P.run_mu);
    P.configured = 1;
    P.explicit_count = 1;
    if (n != P.nworkers + 1) {
        stop_workers();
        if (n > 1 && (P.tid = calloc((size_t)n - 1, sizeof *P.tid))) {
            P.start_job = atomic_load(&P.job);
            int made = 0;
            while (made < n - 1 &&
                   pthread_create(&P.tid[made], NULL, worker, (void *)(intptr_t)(made + 1)) == 0)
                made++;
            P.nworkers = made;
            if (!made) {
                free(P.tid);
                P.tid = NULL;
            }
        }
    }
    int got = P.nworkers + 1;
    pthread_mutex_unlock(&P.run_mu);
    return got;
}

int amtl_pool_size(void)
{
    if (!P.configured) {
        const char *env = getenv("AMTL_THREADS");
        if (env && *env)
            amtl_pool_set_threads(atoi(env));
        else
            P.configured = 1;
    }
    return P.nworkers + 1;
}

int amtl_pool_explicit(void)
{
    (void)amtl_pool_size();
    return P.explicit_count;
}

int amtl_pool_in_task(void)
{
    return in_task;
}

void amtl_pool_run(int n, amtl_pool_task fn, void *arg)
{
    if (n < 1)
        n = 1;
    if (in_task) {
        for (int t = 0; t < n; t++)
            fn(arg, t, n);
        return;
    }
    int size = amtl_pool_size();
    if (n > size)
        n = size;
    if (n == 1) {
        in_task = 1;
        fn(arg, 0, 1);
        in_task = 0;
        return;
    }
    pthread_mutex_lock(&P.run_mu);
    P.fn = fn;
    P.arg = arg;
    atomic_store_explicit(&P.pending, n - 1, memory_order_relaxed);
    pthread_mutex_lock(&P.mu);
    atomic_store_explicit(&P.job, next_job(n), memory_order_release);
    pthread_cond_broadcast(&P.wake);
    pthread_mutex_unlock(&P.mu);
    in_task = 1;
    fn(arg, 0, n);
    in_task = 0;
    int left = 1;
    for (int i = 0; i < POOL_SPIN; i++)
        if (!(left = atomic_load_explicit(&P.pending, memory_order_acquire)))
            break;
    if (left) {
        pthread_mutex_lock(&P.mu);
        while (atomic_load_explicit(&P.pending, memory_order_acquire))
            pthread_cond_wait(&P.done, &P.mu);
        pthread_mutex_unlock(&P.mu);
    }
    pthread_mutex_unlock(&P.run_mu);
}

void amtl_pool_shutdown(void)
{
    if (in_task)
        return;
    pthread_mutex_lock(&P.run_mu);
    stop_workers();
    pthread_mutex_unlock(&P.run_mu);
}
