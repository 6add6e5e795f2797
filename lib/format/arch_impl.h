/* arch_impl.h — what the architecture file's reader (arch.c) shares with
 * its views (arch_view.c): the checked contents of a file. */
#ifndef AMTL_ARCH_IMPL_H
#define AMTL_ARCH_IMPL_H

#include <stdint.h>

#include "format/arch.h"

/* A '\n'-joined list of names, split. */
typedef struct {
    char *buf;
    char **v;
    int n;
} namelist;

/* The checked contents of an architecture file (amtl_arch_load). */
typedef struct {
    const char *what;
    int L, K, NL, N, T, C, D;
    const int32_t *ops;      /* [L*K*NL] */
    const float *single;     /* [K*N] */
    const float *inter;      /* [K*N] */
    const float *experts;    /* [C*K] */
    namelist fields, labels;
    amtl_config cfg;         /* defaults + meta "config" */
    int P;
    amtl_op_spec op[AMTL_MAX_OPS];
    const char *baseline;    /* NULL for a searched architecture */
} arch_info;

void amtl_arch_names_free(namelist *l);
/* Checks f and fills a (its arrays point into f); what names the file in
 * the errors. */
int amtl_arch_load(arch_info *a, const amtl_file *f, const char *what, amtl_status *st);
void amtl_arch_info_free(arch_info *a);
/* Consumer c's expert layer (the experts it reads) with L layers of K. */
int amtl_arch_consumer_layer(int c, int L, int K);
/* used[l*K + j]: expert (l, j) reaches a task through selected experts. */
void amtl_arch_experts_used(const arch_info *a, int *used);

#endif
