/* label.h — a label of a plain CSV (an item of the config key labels):
 * "column", a column of 0/1 values, or "[task=]column==value[|value...]", 1
 * where the column's value is one of the values (compared exactly) and 0
 * elsewhere; the task is named column when "task=" is left out.
 */
#ifndef AMTL_LABEL_H
#define AMTL_LABEL_H

#include "base/error.h"

typedef struct {
    char *task;      /* the label's name */
    char *column;    /* the column it is read from */
    char **values;   /* [n_values]; n_values == 0: a 0/1 column */
    int n_values;
} amtl_prep_label;

int amtl_prep_label_parse(amtl_prep_label *l, const char *item, amtl_status *st);
void amtl_prep_label_free(amtl_prep_label *l);  /* safe on a zeroed struct */

#endif
