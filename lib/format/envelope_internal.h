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

/* A short printable rendering of untrusted bytes for messages. */
const char *amtl_envelope_show(char *out, size_t cap, const char *p, size_t n);
/* 1 when the bytes end, at a value's boundary, inside a container nested in
 * the top-level map (a file cut short between tensors), 0 otherwise. */
int amtl_envelope_mp_ends_early(const unsigned char *p, size_t len);
/* Checks that p holds one msgpack value whose every length and count fits
 * the bytes that remain (see envelope_decode.c). */
int amtl_envelope_mp_validate(const unsigned char *p, size_t len, const char *what,
                              amtl_status *st);

/* ---- checksums (checksum.c) ---- */

/* The key "crc32" and the header of a 4-byte bin: a sealed file ends with
 * these and the 4 bytes of its CRC. */
#define AMTL_SUM_TRAILER "\xa5" "crc32" "\xc4\x04"
#define AMTL_SUM_TRAILER_LEN 8

/* "damaged file: it does not end with its checksum (...)" */
extern const char *const amtl_envelope_unsealed;

uint32_t amtl_envelope_crc32(uint32_t crc, const void *p, size_t n);
/* The CRC of a followed by b, from theirs and b's length. */
uint32_t amtl_envelope_crc32_combine(uint32_t crc_a, uint32_t crc_b, size_t len_b);
void amtl_envelope_put_be32(unsigned char *p, uint32_t v);
/* Verifies the checksum at the end of p before anything reads the rest:
 * *sealed is 1 when it matched, 0 when the file has none (a version 1 file,
 * or not an amtl file at all); a mismatch, or a current-version start
 * without a checksum at the end, is an error naming the damaged part. */
/* The same for the file open at fd, len bytes long, read a piece at a time
 * (memory does not grow with the file): *sealed 1 when it ends with a
 * checksum that matches, 0 when it has none; -1 when it does not match (the
 * damage is not located here). */
int amtl_envelope_verify_fd(int fd, size_t len, const char *what, int *sealed,
                            amtl_status *st);
int amtl_envelope_verify(const unsigned char *p, size_t len, const char *what,
                         int *sealed, amtl_status *st);

/* amtl_file_decode of a file whose checksum was verified already (sealed),
 * buf valid for as long as f: aligned tensor data becomes views of buf. */
int amtl_envelope_decode_borrowed(amtl_file *f, const void *buf, size_t len,
                                  const char *what, const char *expected_kind,
                                  amtl_status *st);

#endif
