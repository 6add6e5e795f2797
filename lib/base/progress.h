/* progress.h — a one-line progress display on stderr when it is a terminal. */
#ifndef AMTL_PROGRESS_H
#define AMTL_PROGRESS_H

#include <stdint.h>

typedef struct {
    int enabled;          /* 1 only when stderr is a terminal */
    double t0, last;
    int64_t total;
    char label[64];
} amtl_progress;

/* Monotonic wall clock in seconds. */
double amtl_now(void);

void amtl_progress_start(amtl_progress *p, const char *label, int64_t total);
/* Redraws at most ten times a second: done/total, rate, ETA and a note. */
void amtl_progress_update(amtl_progress *p, int64_t done, const char *note);
void amtl_progress_finish(amtl_progress *p);

#endif
