/* error.c — status messages (see error.h). */
#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int amtl_error(amtl_status *st, int code, const char *fmt, ...)
{
    if (!st)
        return -1;
    st->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->msg, sizeof st->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int amtl_error_context(amtl_status *st, const char *fmt, ...)
{
    if (!st)
        return -1;
    char prefix[512], old[sizeof st->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, st->msg, sizeof old);
    /* prefix, ": ", then as much of the old message as fits */
    size_t cap = sizeof st->msg, n = strlen(prefix);
    if (n > cap - 3)
        n = cap - 3;
    memcpy(st->msg, prefix, n);
    memcpy(st->msg + n, ": ", 2);
    n += 2;
    size_t m = strnlen(old, cap - 1 - n);
    memcpy(st->msg + n, old, m);
    st->msg[n + m] = '\0';
    if (st->code == AMTL_OK)
        st->code = AMTL_EDATA;
    return -1;
}

void amtl_status_clear(amtl_status *st)
{
    if (st) {
        st->code = AMTL_OK;
        st->msg[0] = '\0';
    }
}

int amtl_exit_code(int code)
{
    if (code == AMTL_OK)
        return 0;
    return code == AMTL_EUSAGE ? 2 : 1;
}
