/* pool.h — the process's one thread pool: the single threading model of the
 * CPU backend.
 *
 * Once the thread count is set, OpenBLAS runs on one thread and its calls
 * are made from inside the pool's tasks (kernels/cpu/gemm.c), so no two sets
 * of threads ever compete for the cores: a MixedOp splits its batch rows
 * over the pool, and every GEMM of a task is single-threaded.  Workers sleep
 * on a condition variable between runs after a very short bounded spin (a
 * phase of a MixedOp often follows the previous one within microseconds; a
 * sleep and wake-up costs about ten).
 *
 * A run is fork-join: amtl_pool_run(n, fn, arg) calls fn(arg, t, n) for
 * t = 0..n-1, t = 0 on the caller, and returns when all have returned.
 * Tasks must not wait for each other.  A run started from inside a task runs
 * its tasks one after the other on that thread.
 *
 * The thread count is set by amtl_blas_set_threads (the config key
 * `threads`), which calls amtl_pool_set_threads; a program that never sets
 * it gets AMTL_THREADS from the environment on first use, else 1 (and
 * OpenBLAS keeps its own default).
 */
#ifndef AMTL_POOL_H
#define AMTL_POOL_H

/* The most threads a pool has. */
#define AMTL_POOL_MAX 256

typedef void (*amtl_pool_task)(void *arg, int t, int n);

/* Threads of the pool, the caller included; n <= 0 means every online core.
 * Returns the count in force (fewer than asked when threads cannot be
 * created; unchanged when called from inside a task). */
int amtl_pool_set_threads(int n);
/* The count in force (configures from AMTL_THREADS on first use). */
int amtl_pool_size(void);
/* Runs fn(arg, t, n) for t < n; n is clamped to [1, amtl_pool_size()] unless
 * called from inside a task, where the n tasks run in order on the caller. */
void amtl_pool_run(int n, amtl_pool_task fn, void *arg);
/* 1 on a thread that is running a task (worker or caller). */
int amtl_pool_in_task(void);
/* 1 when the thread count was set (amtl_pool_set_threads, or AMTL_THREADS
 * read at the first amtl_pool_size): the BLAS then runs single-threaded
 * under the pool (kernels/cpu/gemm.c). */
int amtl_pool_explicit(void);
/* Stops and joins the workers; the pool is then of size 1 until set again
 * (no effect from inside a task). */
void amtl_pool_shutdown(void);

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
