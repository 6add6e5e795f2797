/* error.h — status values and messages returned by every library call.
 *
 * The library never exits or aborts: a function that can fail takes an
 * amtl_status * as its last argument, fills it on failure and returns a
 * negative value.  Tools print "amtl-X: error: <msg>" and map the code to an
 * exit status (amtl_exit_code).
 */
#ifndef AMTL_ERROR_H
#define AMTL_ERROR_H

enum {
    AMTL_OK = 0,
    AMTL_EIO = 1,      /* a file could not be read or written */
    AMTL_EDATA = 2,    /* malformed or inconsistent input */
    AMTL_EUSAGE = 3,   /* bad option or config value given by the user */
    AMTL_ENOMEM = 4,   /* an allocation failed */
    AMTL_ENUM = 5,     /* a non-finite loss or gradient */
    AMTL_EINTR = 6,    /* stopped by a signal (after saving) */
    AMTL_EDEVICE = 7   /* the requested compute device is not available */
};

typedef struct {
    int code;
    char msg[1024];
} amtl_status;

/* Sets code and a printf-style message; returns -1 so callers can
 * `return amtl_error(st, AMTL_EDATA, "...")`.  st may be NULL. */
int amtl_error(amtl_status *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "<context>: " to the message already in st; returns -1. */
int amtl_error_context(amtl_status *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void amtl_status_clear(amtl_status *st);

/* Process exit status for a code: 0 ok, 2 usage, 1 anything else. */
int amtl_exit_code(int code);

#endif
