/* comm.c — see comm.h.  The one file that speaks MPI. */
#include "dist/comm.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef AMTL_HAVE_MPI
#include <mpi.h>
#endif

/* The rank count a launcher announced in the environment: 0 when this
 * process was not started by one. */
static int launched_size(void)
{
    const char *v = getenv("OMPI_COMM_WORLD_SIZE");
    if (!v)
        v = getenv("PMI_SIZE");
    if (v)
        return atoi(v) > 0 ? atoi(v) : 0;
    return getenv("PMIX_RANK") ? 1 : 0;
}

int amtl_comm_parallel(const amtl_comm *c)
{
    return c && c->size > 1;
}

int amtl_comm_threads(const amtl_comm *c, int n)
{
    if (n > 0 || !c || !c->mpi)
        return n;
    /* a launcher that binds the rank (Open MPI does, to one core, for two
     * ranks or fewer) leaves it the cores of its mask; otherwise the
     * machine's cores are shared out among its ranks */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t mask;
    if (sched_getaffinity(0, sizeof mask, &mask) == 0 && CPU_COUNT(&mask) < cores)
        return CPU_COUNT(&mask) > 0 ? CPU_COUNT(&mask) : 1;
    long t = cores > 0 ? cores / (c->node_size > 0 ? c->node_size : 1) : 1;
    return t >= 1 ? (int)t : 1;
}

int amtl_comm_leads(const amtl_comm *c)
{
    return !c || c->rank == 0;
}

#ifdef AMTL_HAVE_MPI

/* MPI's message for an error code, as st. */
static int mpi_error(amtl_status *st, int rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "MPI error %d", rc);
    return amtl_error(st, AMTL_EIO, "%s: %s", what, msg);
}

int amtl_comm_init(amtl_comm *c, amtl_status *st)
{
    memset(c, 0, sizeof *c);
    c->size = c->node_size = 1;
    if (launched_size() == 0)
        return 0;
    int provided, rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS)
        return mpi_error(st, rc, "cannot start MPI");
    c->mpi = 1;
    /* failures come back as codes, reported like any other error; a rank
     * that dies still ends the job through mpirun */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    MPI_Comm node;
    c->node_size = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) ==
        MPI_SUCCESS) {
        MPI_Comm_size(node, &c->node_size);
        MPI_Comm_free(&node);
    }
    return 0;
}

void amtl_comm_finish(amtl_comm *c)
{
    if (c && c->mpi) {
        MPI_Finalize();
        c->mpi = 0;
    }
}

void amtl_comm_abort(amtl_comm *c, int code)
{
    if (c && c->mpi && c->size > 1) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code);
    }
}

/* buf[0..n) of type t (size bytes each) summed over the ranks, in slices:
 * MPI counts in int */
static int sum_slices(const amtl_comm *c, void *buf, size_t n, MPI_Datatype t, size_t size,
                      amtl_status *st)
{
    if (!amtl_comm_parallel(c))
        return 0;
    for (size_t o = 0; o < n; o += (size_t)1 << 30) {
        size_t k = n - o < (size_t)1 << 30 ? n - o : (size_t)1 << 30;
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + o * size, (int)k, t, MPI_SUM,
                               MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS)
            return mpi_error(st, rc, "all-reduce over the ranks");
    }
    return 0;
}

int amtl_comm_sum_f32(const amtl_comm *c, float *buf, size_t n, amtl_status *st)
{
    return sum_slices(c, buf, n, MPI_FLOAT, sizeof *buf, st);
}

int amtl_comm_sum_f64(const amtl_comm *c, double *buf, size_t n, amtl_status *st)
{
    return sum_slices(c, buf, n, MPI_DOUBLE, sizeof *buf, st);
}

int amtl_comm_bcast(const amtl_comm *c, void *buf, size_t bytes, amtl_status *st)
{
    if (!amtl_comm_parallel(c))
        return 0;
    for (size_t o = 0; o < bytes; o += (size_t)1 << 30) {
        size_t k = bytes - o < (size_t)1 << 30 ? bytes - o : (size_t)1 << 30;
        int rc = MPI_Bcast((char *)buf + o, (int)k, MPI_BYTE, 0, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS)
            return mpi_error(st, rc, "broadcast from rank 0");
    }
    return 0;
}

int amtl_comm_check_same(const amtl_comm *c, uint64_t v, const char *what, amtl_status *st)
{
    if (!amtl_comm_parallel(c))
        return 0;
    uint64_t lo = v, hi = v;
    int rc = MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    if (rc == MPI_SUCCESS)
        rc = MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS)
        return mpi_error(st, rc, "comparing the ranks");
    if (lo != hi)
        return amtl_error(st, AMTL_EDATA,
                          "%s differ between the ranks (rank %d has %016llx, the ranks "
                          "range from %016llx to %016llx)",
                          what, c->rank, (unsigned long long)v, (unsigned long long)lo,
                          (unsigned long long)hi);
    return 0;
}

#else /* no MPI: every job is one process */

int amtl_comm_init(amtl_comm *c, amtl_status *st)
{
    memset(c, 0, sizeof *c);
    c->size = c->node_size = 1;
    if (launched_size() > 1)
        return amtl_error(st, AMTL_EUSAGE,
                          "started as one of %d ranks, but this build has no MPI (install "
                          "libopenmpi-dev and rebuild, see make deps)",
                          launched_size());
    return 0;
}

void amtl_comm_finish(amtl_comm *c)
{
    (void)c;
}

void amtl_comm_abort(amtl_comm *c, int code)
{
    (void)c, (void)code;
}

int amtl_comm_sum_f32(const amtl_comm *c, float *buf, size_t n, amtl_status *st)
{
    (void)c, (void)buf, (void)n, (void)st;
    return 0;
}

int amtl_comm_sum_f64(const amtl_comm *c, double *buf, size_t n, amtl_status *st)
{
    (void)c, (void)buf, (void)n, (void)st;
    return 0;
}

int amtl_comm_bcast(const amtl_comm *c, void *buf, size_t bytes, amtl_status *st)
{
    (void)c, (void)buf, (void)bytes, (void)st;
    return 0;
}

int amtl_comm_check_same(const amtl_comm *c, uint64_t v, const char *what, amtl_status *st)
{
    (void)c, (void)v, (void)what, (void)st;
    return 0;
}

#endif
