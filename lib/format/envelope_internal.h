/* envelope_internal.h — helpers shared by envelope.c and envelope_decode.c;
 * not part of the library's interface.
 */
#ifndef AMTL_ENVELOPE_INTERNAL_H
#define AMTL_ENVELOPE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/tensor.h"

/* A msgpack str, bin, array or map holds at most 2^32 - 1 bytes or elements. */
#define AMTL_MP_MAX_LEN 0xffffffffu

/* Refuses a big-endian host: tensor bytes are stored and loaded with memcpy. */
int amtl_envelope_check_host(amtl_status *st);
/* n bytes of p and a NUL, malloc'd; NULL when out of memory. */
char *amtl_envelope_dup(const char *p, size_t n);
/* "[64,64]"; with any_star, a negative entry (a wildcard) prints as "*". */
void amtl_envelope_format_shape(char *out, size_t cap, int ndim, const int64_t *shape,
                                int any_star);
/* Byte size of a tensor of this shape; -1 for a negative dimension or a
 * product that overflows. */
int amtl_envelope_shape_bytes(amtl_dtype dt, int ndim, const int64_t *shape,
                              size_t *bytes);

#endif
