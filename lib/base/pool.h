/* pool.h — a fork-join thread pool: the single threading model of the CPU
 * backend.
 *
 * A pool is an object: whoever runs work on threads makes one (the tools,
 * from the config key `threads`), hands it to the contexts that use it (the
 * CPU backend, kernels/backend.h, and through it the fused MixedOp; the
 * linear fit) and frees it at the end.  There is no process-wide pool.
 *
 * OpenBLAS runs single-threaded and its calls are made from inside the
 * pool's tasks (kernels/cpu/gemm.c), so no two sets of threads ever compete
 * for the cores: a MixedOp splits its batch rows over the pool, and every
 * GEMM of a task is single-threaded.  Workers sleep on a condition variable
 * between runs after a very short bounded spin (a phase of a MixedOp often
 * follows the previous one within microseconds; a sleep and wake-up costs
 * about ten).
 *
 * A run is fork-join: amtl_pool_run(p, n, fn, arg) calls fn(arg, t, n) for
 * t = 0..n-1, t = 0 on the caller, and returns when all have returned.
 * Tasks must not wait for each other.  A run started from inside a task (of
 * any pool) runs its tasks one after the other on that thread; so does a run
 * on a NULL pool, which stands for one thread.
 */
#ifndef AMTL_POOL_H
#define AMTL_POOL_H

/* The most threads a pool has. */
#define AMTL_POOL_MAX 256

typedef void (*amtl_pool_task)(void *arg, int t, int n);

typedef struct amtl_pool amtl_pool;

/* A pool of n threads, the caller's included (n <= 0: one a core this
 * process may run on); fewer when threads cannot be created.  NULL when out
 * of memory. */
amtl_pool *amtl_pool_new(int n);
/* Stops and joins the workers (NULL is a no-op; not from inside a task of
 * the pool). */
void amtl_pool_free(amtl_pool *p);
/* Threads of the pool; 1 for NULL. */
int amtl_pool_size(const amtl_pool *p);
/* Runs fn(arg, t, n) for t < n; n is clamped to [1, amtl_pool_size(p)]
 * unless called from inside a task, where the n tasks run in order on the
 * caller. */
void amtl_pool_run(amtl_pool *p, int n, amtl_pool_task fn, void *arg);
/* 1 on a thread that is running a task (worker or caller). */
int amtl_pool_in_task(void);
/* The cores this process may run on (its CPU affinity), at least 1. */
int amtl_pool_cores(void);

/* Rows [*r0, *r1) of B rows for task t of n: contiguous, in order, sizes
 * differing by at most one. */
static inline void amtl_pool_range(int B, int t, int n, int *r0, int *r1)
{
    *r0 = (int)((long long)B * t / n);
    *r1 = (int)((long long)B * (t + 1) / n);
}

/* Number of fixed pieces to cut len items into, at least min_piece items
 * each (unless len is smaller) and at most 16.  Work cut into pieces that
 * do not depend on the thread count gives the same floating-point results
 * for any count: a task processes the pieces [p0, p1) of amtl_pool_range
 * (npieces, t, n), each one on its own, piece p holding the items
 * amtl_pool_range(len, p, npieces). */
static inline int amtl_pool_pieces(int len, int min_piece)
{
    int np = min_piece > 0 ? len / min_piece : len;
    if (np > 16)
        np = 16;
    return np < 1 ? 1 : np;
}

#endif
