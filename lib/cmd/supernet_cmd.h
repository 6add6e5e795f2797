/* supernet_cmd.h — what amtl-supernet runs: epochs of one phase of the PD-DARTS
 * schedule over a dataset, from scratch or from a checkpoint, writing the
 * checkpoint atomically after every epoch and one metrics line per epoch.
 *
 * Epoch counting: a run trains `epochs` epochs from the epoch its starting
 * point had (0 fresh, or the --init checkpoint's).  Every checkpoint records
 * that start epoch, and with `resume` an existing output checkpoint is
 * continued up to the same target, start + epochs: rerunning an interrupted
 * command unchanged completes it, rerunning a completed one does nothing.
 *
 * A stop (*stop raised) takes effect at the next batch boundary: the
 * part-done epoch is written into the output checkpoint and the run returns
 * -1 with AMTL_EINTR; resuming from that checkpoint continues mid-epoch and
 * ends with what an uninterrupted run gives. */
#ifndef AMTL_SUPERNET_CMD_H
#define AMTL_SUPERNET_CMD_H

#include <signal.h>

#include "cmd/cli.h"
#include "train/train.h"

typedef struct {
    const char *data;      /* dataset file */
    const char *init;      /* checkpoint to start from, or NULL */
    const char *out;       /* checkpoint written after every epoch */
    const char *metrics;   /* metrics file (JSON lines), NULL = stdout */
    amtl_phase phase;
    int epochs;            /* epochs from the run's start epoch (see above) */
    int resume;            /* continue from `out` when it exists */
    int quiet;
    volatile sig_atomic_t *stop;
    /* the data-parallel job this process is a rank of (amtl_comm_init); NULL
     * or one rank: a run of its own.  Every rank reads its share of the
     * train rows; rank 0 alone prints the metrics and writes the output */
    const struct amtl_comm *comm;    /* raised by SIGINT/SIGTERM */
} amtl_search_opts;

/* cli supplies --config and --set; the checkpoint's own config comes first. */
int amtl_search_run(const amtl_search_opts *o, amtl_cli *cli, amtl_status *st);

#endif
