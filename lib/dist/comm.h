/* comm.h — the processes of one data-parallel training job (MPI).
 *
 * A tool started by mpirun (Open MPI's launcher sets OMPI_COMM_WORLD_SIZE,
 * other launchers PMI_SIZE or PMIX_RANK) joins the job as one of its ranks;
 * started any other way it stands alone as rank 0 of 1 and MPI is never
 * initialised, so the same binaries behave exactly as before without mpirun.
 * A build without MPI (AMTL_HAVE_MPI unset: no Open MPI found, or MPI=0)
 * refuses to run as one rank of several instead of training N copies.
 *
 * What the ranks share (DESIGN.md section 4, amtl-supernet(1) DISTRIBUTED
 * TRAINING): each reads its share of the training rows; every step's
 * gradients are summed over the ranks with one all-reduce of one contiguous
 * buffer; rank 0 evaluates and writes files.  All collectives are on
 * MPI_COMM_WORLD in the same order on every rank.  A rank that dies ends the
 * job (mpirun kills the rest); a rank that fails calls amtl_comm_abort.
 */
#ifndef AMTL_COMM_H
#define AMTL_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct amtl_comm {
    int rank, size;  /* this process's rank and the job's rank count */
    int node_size;   /* ranks on this machine (this one included) */
    int mpi;         /* 1 when MPI was initialised by amtl_comm_init */
} amtl_comm;

/* Joins the job this process was launched in, or stands alone (rank 0 of
 * 1).  AMTL_EUSAGE when launched as one of several ranks by a build without
 * MPI; AMTL_EIO when MPI cannot start. */
int amtl_comm_init(amtl_comm *c, amtl_status *st);
/* Leaves the job after a successful run (MPI_Finalize); safe on a
 * standalone or zeroed comm. */
void amtl_comm_finish(amtl_comm *c);
/* Ends every rank of the job with exit status code (MPI_Abort): for a tool
 * whose rank failed while the others may wait in a collective.  Returns
 * only on a standalone comm. */
void amtl_comm_abort(amtl_comm *c, int code);

/* The compute threads of a rank for config key threads: n when n > 0;
 * for 0 ("all cores") the cores the launcher bound the rank to, or when it
 * did not bind it, the machine's cores shared out among the ranks on it (at
 * least 1); 0 again for a process that is not a rank. */
int amtl_comm_threads(const amtl_comm *c, int n);

/* 1 when c is a job of more than one rank. */
int amtl_comm_parallel(const amtl_comm *c);
/* 1 on the rank that evaluates, prints and writes files: rank 0, or any
 * process without a job (c NULL). */
int amtl_comm_leads(const amtl_comm *c);

/* buf[0..n) summed element-wise over the ranks, in place on every rank.
 * The sum's order is MPI's, the same on every rank, so every rank gets the
 * same bits. */
int amtl_comm_sum_f32(const amtl_comm *c, float *buf, size_t n, amtl_status *st);
int amtl_comm_sum_f64(const amtl_comm *c, double *buf, size_t n, amtl_status *st);
/* bytes of buf from rank 0 to every rank. */
int amtl_comm_bcast(const amtl_comm *c, void *buf, size_t bytes, amtl_status *st);
/* AMTL_EDATA naming `what` unless v is the same on every rank (the weights'
 * hash at an epoch end, for example). */
int amtl_comm_check_same(const amtl_comm *c, uint64_t v, const char *what, amtl_status *st);

#endif
