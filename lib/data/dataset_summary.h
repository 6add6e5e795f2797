/* dataset_summary.h — what amtl-prep --info shows of a dataset file: its
 * splits' rows, its fields and vocabularies, each label's positives and each
 * sparse field's rows with id 0, per split.
 *
 * amtl-prep writes them into the file's meta ("summary.vocab", and per
 * split "summary.positives.<split>" (one count per label) and
 * "summary.id0.<split>" (one count per sparse field), space-separated), so
 * that a reader gets them from the file's header alone: memory that does not
 * grow with the rows, and no checksum verified.  A file written before
 * (without them) is read whole and counted as before. */
#ifndef AMTL_DATASET_SUMMARY_H
#define AMTL_DATASET_SUMMARY_H

#include <stdint.h>

#include "base/error.h"
#include "format/io.h"

typedef struct {
    amtl_file file;           /* the meta (no tensor): source, modes, checksum */
    int from_header;          /* 1: read from the header alone */
    int N, D, T;
    char **sparse, **dense, **labels;
    int64_t *vocab;           /* [N] */
    int64_t rows[3];          /* train, val, test */
    int64_t *positives;       /* [T][3] */
    int64_t *id0;             /* [N][3] */
} amtl_dataset_summary;

/* Adds s's counts (N, T, vocab, positives, id0) to f's meta: what amtl-prep
 * counted as it wrote the columns. */
int amtl_dataset_summary_set(amtl_file *f, const amtl_dataset_summary *s, amtl_status *st);
/* The summary of the dataset file at path: from its header when it has one,
 * else from the whole file (read and verified). */
int amtl_dataset_summary_read(amtl_dataset_summary *s, const char *path, amtl_status *st);
void amtl_dataset_summary_free(amtl_dataset_summary *s);

#endif
