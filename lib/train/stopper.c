/* stopper.c — see stopper.h. */
#include "train/stopper.h"

#include <math.h>
#include <string.h>

int amtl_improved(const double *best, const double *cur, int T)
{
    double s = 0;
    int k = 0;
    for (int t = 0; t < T; t++) {
        if (isnan(cur[t]) || isnan(best[t]) || cur[t] == 0)
            continue;
        s += (cur[t] - best[t]) / cur[t];
        k++;
    }
    return k > 0 && s / k > 0;
}

void amtl_stopper_reset(amtl_stopper *s, int T, const char *rule, int patience,
                        int min_epochs)
{
    memset(s, 0, sizeof *s);
    s->T = T < 64 ? T : 64;
    s->use_logloss = rule && !strcmp(rule, "logloss");
    s->patience = patience;
    s->min_epochs = min_epochs;
    s->best_epoch = -1;
}

double amtl_finite_mean(const double *x, int T)
{
    double sum = 0;
    int k = 0;
    for (int t = 0; t < T; t++)
        if (isfinite(x[t])) {
            sum += x[t];
            k++;
        }
    return k ? sum / k : NAN;
}

int amtl_stopper_update(amtl_stopper *s, int epoch, const double *auc,
                        const double *logloss)
{
    s->epochs_seen++;
    double loss = s->use_logloss && logloss ? amtl_finite_mean(logloss, s->T) : NAN;
    int better;
    if (!s->have_best)
        better = 1;
    else if (s->use_logloss)
        better = loss < s->best_loss;  /* false for NaN */
    else
        better = amtl_improved(s->best, auc, s->T);
    if (!better) {
        s->bad_epochs++;
        return 0;
    }
    memcpy(s->best, auc, (size_t)s->T * sizeof(double));
    s->best_loss = isnan(loss) ? INFINITY : loss;
    s->have_best = 1;
    s->best_epoch = epoch;
    s->bad_epochs = 0;
    return 1;
}

int amtl_stopper_done(const amtl_stopper *s)
{
    return s->bad_epochs >= s->patience && s->epochs_seen >= s->min_epochs;
}

int amtl_early_stop_scan(const double *auc, const double *logloss, int n, int T,
                         const char *rule, int patience, int min_epochs, int *best_epoch)
{
    amtl_stopper s;
    amtl_stopper_reset(&s, T, rule, patience, min_epochs);
    *best_epoch = -1;
    int e;
    for (e = 0; e < n; e++) {
        amtl_stopper_update(&s, e, auc + (size_t)e * T,
                            logloss ? logloss + (size_t)e * T : NULL);
        if (amtl_stopper_done(&s))
            break;
    }
    *best_epoch = s.best_epoch;
    return n < 1 ? -1 : (e < n ? e : n - 1);
}

