/* recipes.h — the raw forms of the data sets the reference uses (DESIGN.md
 * section 9, amtl-prep(1) RECIPES), each read into an amtl_prep_table:
 * interaction logs grouped, joined with side tables and filtered.  Inputs
 * come in the order amtl-prep(1) gives.  Each data set is a description
 * that one reader follows (recipes.c).
 */
#ifndef AMTL_RECIPES_H
#define AMTL_RECIPES_H

#include "base/error.h"
#include "data/prep_table.h"
#include "format/config.h"

/* Reads the inputs by the recipe of cfg->format: userbehavior, ijcai15,
 * kuairand or qb-video (amtl-prep(1), RECIPES). */
int amtl_prep_read_recipe(amtl_prep_table *t, const amtl_config *cfg,
                          const char *const *inputs, int n_inputs, amtl_status *st);

#endif
