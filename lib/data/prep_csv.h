/* prep_csv.h — amtl-prep's CSV input: a processed CSV (typed header,
 * name:token, name:float, name:label) or, with format "csv", a plain CSV
 * whose columns the config lists (labels as label.h describes).
 */
#ifndef AMTL_PREP_CSV_H
#define AMTL_PREP_CSV_H

#include "base/error.h"
#include "data/prep_table.h"
#include "format/config.h"

/* One file (split by the seeded draw), two (train, split into train
 * and val; test) or three (train, val, test).  Initialises t. */
int amtl_prep_read_csv(amtl_prep_table *t, const amtl_config *cfg,
                       const char *const *inputs, int n_inputs, amtl_status *st);

#endif
