/* progress.c — see progress.h. */
#define _POSIX_C_SOURCE 200809L
#include "base/progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double amtl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void amtl_progress_start(amtl_progress *p, const char *label, int64_t total)
{
    memset(p, 0, sizeof *p);
    p->enabled = isatty(STDERR_FILENO);
    p->t0 = amtl_now();
    p->total = total;
    snprintf(p->label, sizeof p->label, "%s", label);
}

void amtl_progress_update(amtl_progress *p, int64_t done, const char *note)
{
    if (!p->enabled)
        return;
    double now = amtl_now();
    if (now - p->last < 0.1 && done < p->total)
        return;
    p->last = now;
    double el = now - p->t0;
    double rate = el > 0 ? (double)done / el : 0;
    double eta = rate > 0 && p->total > done ? (double)(p->total - done) / rate : 0;
    fprintf(stderr, "\r\033[K%s %lld/%lld  %.0f/s  ETA %.0fs  %s", p->label,
            (long long)done, (long long)p->total, rate, eta, note ? note : "");
    fflush(stderr);
}

void amtl_progress_finish(amtl_progress *p)
{
    if (p->enabled) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
}
