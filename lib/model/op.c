/* op.c — see op.h. */
#include "model/op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int amtl_op_parse(const char *s, amtl_op_spec *op, amtl_status *st)
{
    amtl_op_spec o;
    memset(&o, 0, sizeof o);
    if (!strcmp(s, "Identity")) {
        o.kind = AMTL_OP_IDENTITY;
    } else if (!strcmp(s, "Zero")) {
        o.kind = AMTL_OP_ZERO;
    } else if (!strncmp(s, "MLP-", 4)) {
        const char *h = s + 4;
        size_t n = strlen(h);
        if (n == 0 || n > 5 || h[0] == '0' || strspn(h, "0123456789") != n ||
            atol(h) > AMTL_OP_MAX_H)
            return amtl_error(st, AMTL_EUSAGE,
                              "unknown op '%s' (MLP-<h> wants a width 1..%d without "
                              "leading zeros)", s, AMTL_OP_MAX_H);
        o.kind = AMTL_OP_MLP;
        o.h = atoi(h);
    } else {
        return amtl_error(st, AMTL_EUSAGE,
                          "unknown op '%s' (expected Identity, Zero or MLP-<h>)", s);
    }
    snprintf(o.name, sizeof o.name, "%s", s);
    if (op)
        *op = o;
    return 0;
}
