/* label.c — parses the label items of a plain CSV (see label.h). */
#include "data/label.h"

#include <stdlib.h>
#include <string.h>

void amtl_prep_label_free(amtl_prep_label *l)
{
    free(l->task);
    free(l->column);
    for (int i = 0; i < l->n_values; i++)
        free(l->values[i]);
    free(l->values);
    memset(l, 0, sizeof *l);
}

static int bad_label(amtl_status *st, const char *item, const char *what)
{
    return amtl_error(st, AMTL_EUSAGE,
                      "key 'labels': '%s' has %s (want column, or "
                      "task=column==value|value...)", item, what);
}

int amtl_prep_label_parse(amtl_prep_label *l, const char *item, amtl_status *st)
{
    memset(l, 0, sizeof *l);
    const char *eqeq = strstr(item, "==");
    if (!eqeq) {
        l->task = strdup(item);
        l->column = strdup(item);
        if (!l->task || !l->column)
            goto nomem;
        return 0;
    }
    const char *eq = memchr(item, '=', (size_t)(eqeq - item));
    const char *col = eq ? eq + 1 : item;
    if (eq == item)
        return bad_label(st, item, "an empty task name");
    if (col == eqeq)
        return bad_label(st, item, "no column before '=='");
    const char *v = eqeq + 2;
    int n = 0;  /* the values between '|', none of them empty */
    for (const char *p = v;; p++, n++) {
        size_t len = strcspn(p, "|");
        if (len == 0)
            return bad_label(st, item, "an empty value");
        p += len;
        if (!*p) {
            n++;
            break;
        }
    }
    l->task = strndup(item, (size_t)((eq ? eq : eqeq) - item));
    l->column = strndup(col, (size_t)(eqeq - col));
    l->values = calloc((size_t)n, sizeof *l->values);
    if (!l->task || !l->column || !l->values)
        goto nomem;
    for (const char *p = v; l->n_values < n; l->n_values++) {
        size_t len = strcspn(p, "|");
        if (!(l->values[l->n_values] = strndup(p, len)))
            goto nomem;
        p += len + 1;
    }
    return 0;
nomem:
    amtl_prep_label_free(l);
    return amtl_error(st, AMTL_ENOMEM, "out of memory");
}
