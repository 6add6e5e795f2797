/* pool.c — the fork-join thread pool of pool.h.
 *
 * A run bumps the pool's generation counter; workers notice it by a bounded
 * spin on the counter and otherwise sleep on `wake`; the last worker to
 * finish signals `done`.  Runs on one pool are serialised by `run_mu`, so
 * two threads of a program may both use it (one after the other).
 */
#include "base/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

/* Loads of the generation counter before a worker sleeps (and of the pending
 * count before the caller sleeps): a few to a few tens of microseconds, the
 * gap between two phases of a MixedOp, never long enough to matter when the
 * other core has other work. */
#define POOL_SPIN 4000

struct amtl_pool {
    pthread_mutex_t mu, run_mu;
    pthread_cond_t wake, done;
    pthread_t *tid;
    int nworkers;
    int stop;
    /* The run in progress: its generation (a count of runs) << 16 | its task
     * count, in one word, so that a worker reads the two together.  A worker
     * that wakes late, after the run it was woken for has ended and another
     * begun, then sees the new run's count with the new generation (fn and
     * arg of a run stay put until every task below its count is done). */
    _Atomic uint64_t job;
    atomic_int pending;
    amtl_pool_task fn;
    void *arg;
};

/* A worker's pool and its index (1..nworkers). */
typedef struct {
    amtl_pool *p;
    int self;
} worker_arg;

/* The thread is running a task of some pool: a property of the thread. */
static _Thread_local int in_task;

static void *worker(void *arg)
{
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    amtl_pool *P = wa.p;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = seen;
        for (int i = 0; i < POOL_SPIN; i++)
            if ((g = atomic_load_explicit(&P->job, memory_order_acquire)) != seen)
                break;
        if (g == seen) {
            pthread_mutex_lock(&P->mu);
            while ((g = atomic_load_explicit(&P->job, memory_order_acquire)) == seen)
                pthread_cond_wait(&P->wake, &P->mu);
            pthread_mutex_unlock(&P->mu);
        }
        seen = g;
        if (P->stop)
            break;
        int njob = (int)(g & 0xffff);
        if (wa.self >= njob)
            continue;
        in_task = 1;
        P->fn(P->arg, wa.self, njob);
        in_task = 0;
        if (atomic_fetch_sub_explicit(&P->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&P->mu);
            pthread_cond_signal(&P->done);
            pthread_mutex_unlock(&P->mu);
        }
    }
    return NULL;
}

/* The job word of the next run, with n tasks. */
static uint64_t next_job(amtl_pool *P, int n)
{
    uint64_t gen = atomic_load_explicit(&P->job, memory_order_relaxed) >> 16;
    return (gen + 1) << 16 | (uint64_t)n;
}

int amtl_pool_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 0 ? (int)(c < AMTL_POOL_MAX ? c : AMTL_POOL_MAX) : 1;
}

amtl_pool *amtl_pool_new(int n)
{
    if (n <= 0)
        n = amtl_pool_cores();
    if (n > AMTL_POOL_MAX)
        n = AMTL_POOL_MAX;
    amtl_pool *P = calloc(1, sizeof *P);
    if (!P)
        return NULL;
    pthread_mutex_init(&P->mu, NULL);
    pthread_mutex_init(&P->run_mu, NULL);
    pthread_cond_init(&P->wake, NULL);
    pthread_cond_init(&P->done, NULL);
    atomic_init(&P->job, 0);
    atomic_init(&P->pending, 0);
    if (n > 1 && (P->tid = calloc((size_t)n - 1, sizeof *P->tid))) {
        while (P->nworkers < n - 1) {
            worker_arg *wa = malloc(sizeof *wa);
            if (!wa)
                break;
            *wa = (worker_arg){P, P->nworkers + 1};
            if (pthread_create(&P->tid[P->nworkers], NULL, worker, wa) != 0) {
                free(wa);
                break;
            }
            P->nworkers++;
        }
    }
    return P;
}

void amtl_pool_free(amtl_pool *P)
{
    if (!P)
        return;
    if (P->nworkers) {
        pthread_mutex_lock(&P->mu);
        P->stop = 1;
        atomic_store_explicit(&P->job, next_job(P, 0), memory_order_release);
        pthread_cond_broadcast(&P->wake);
        pthread_mutex_unlock(&P->mu);
        for (int i = 0; i < P->nworkers; i++)
            pthread_join(P->tid[i], NULL);
    }
    free(P->tid);
    pthread_mutex_destroy(&P->mu);
    pthread_mutex_destroy(&P->run_mu);
    pthread_cond_destroy(&P->wake);
    pthread_cond_destroy(&P->done);
    free(P);
}

int amtl_pool_size(const amtl_pool *P)
{
    return P ? P->nworkers + 1 : 1;
}

int amtl_pool_in_task(void)
{
    return in_task;
}

void amtl_pool_run(amtl_pool *P, int n, amtl_pool_task fn, void *arg)
{
    if (n < 1)
        n = 1;
    if (in_task) {
        for (int t = 0; t < n; t++)
            fn(arg, t, n);
        return;
    }
    int size = amtl_pool_size(P);
    if (n > size)
        n = size;
    if (n == 1) {
        in_task = 1;
        fn(arg, 0, 1);
        in_task = 0;
        return;
    }
    pthread_mutex_lock(&P->run_mu);
    P->fn = fn;
    P->arg = arg;
    atomic_store_explicit(&P->pending, n - 1, memory_order_relaxed);
    pthread_mutex_lock(&P->mu);
    atomic_store_explicit(&P->job, next_job(P, n), memory_order_release);
    pthread_cond_broadcast(&P->wake);
    pthread_mutex_unlock(&P->mu);
    in_task = 1;
    fn(arg, 0, n);
    in_task = 0;
    int left = 1;
    for (int i = 0; i < POOL_SPIN; i++)
        if (!(left = atomic_load_explicit(&P->pending, memory_order_acquire)))
            break;
    if (left) {
        pthread_mutex_lock(&P->mu);
        while (atomic_load_explicit(&P->pending, memory_order_acquire))
            pthread_cond_wait(&P->done, &P->mu);
        pthread_mutex_unlock(&P->mu);
    }
    pthread_mutex_unlock(&P->run_mu);
}
