/* envelope.h — the one MessagePack file format shared by every tool.
 *
 * A file (format version 2) is a MessagePack map:
 *   { "format": "amtl", "version": 2, "kind": "<kind>",
 *     "meta": { "<key>": "<string value>", ... },
 *     "tensors": { "<name>": { "dtype": "f32", "shape": [..], "data": <bin>,
 *                              "crc32": <bin 4> }, ... },
 *     "crc32": <bin 4> }
 * Kinds: "dataset", "checkpoint", "architecture", "model".  Tensor data is the
 * raw little-endian bytes, row-major.  Order of meta keys and tensors is kept.
 *
 * Checksums are zlib's CRC-32, stored as 4 big-endian bytes.  The top-level
 * "crc32" is the last entry, so a file always ends with the 12 bytes
 * a5 "crc32" c4 04 <crc>, <crc> covering every byte before it; a reader
 * verifies it before anything else.  A tensor's "crc32" covers its data and
 * only serves to name the damaged tensor once the file's checksum failed.
 * Version 1 files (no checksums) are still read; their `checksum` is
 * AMTL_CHECKSUM_NONE and amtl_file_read notes it on stderr.
 *
 * Readers validate everything before they trust it: the envelope, every type,
 * shape × element size = byte length, and no container or byte string may
 * claim more than the bytes that remain, so a corrupt header never makes the
 * reader allocate what it merely claims.
 *
 * amtl_file_write replaces its file atomically (see safe_write.h).
 */
#ifndef AMTL_ENVELOPE_H
#define AMTL_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/tensor.h"

#define AMTL_FORMAT_NAME "amtl"
#define AMTL_FORMAT_VERSION 2        /* what writers write */
#define AMTL_FORMAT_VERSION_OLDEST 1 /* the oldest readers read */
/* Writers start every tensor's data at a multiple of this many bytes from
 * the start of the file, so that a mapped file's data can be used in place. */
#define AMTL_DATA_ALIGN 8

typedef struct {
    char *key;
    char *value;
} amtl_meta_kv;

/* Where bytes go: put(ctx, p, n, st) returns 0, or -1 with st set. */
typedef int (*amtl_put_fn)(void *ctx, const void *p, size_t n, amtl_status *st);
/* The maker of a streamed tensor's bytes: puts exactly the tensor's byte
 * length, in pieces, the same bytes every time it is called; 0, or -1 with
 * st set. */
typedef int (*amtl_tensor_fill)(void *fill_ctx, amtl_put_fn put, void *put_ctx,
                                amtl_status *st);

typedef struct {
    char *name;
    amtl_tensor t;  /* owned by the file: allocated, or a view of its mapping */
    amtl_tensor_fill fill; /* a streamed tensor (t.data NULL): what makes its bytes */
    void *fill_ctx;
} amtl_named_tensor;

/* Whether a file was verified against its checksum when it was read. */
typedef enum {
    AMTL_CHECKSUM_NONE = 0,  /* built in memory, or a version 1 file */
    AMTL_CHECKSUM_VERIFIED,
    AMTL_CHECKSUM_UNREAD     /* amtl_file_read_head: the checksum was not read */
} amtl_checksum;

typedef struct {
    char kind[32];
    int version;             /* of the file read; AMTL_FORMAT_VERSION when built */
    amtl_checksum checksum;
    amtl_meta_kv *meta;
    int n_meta, cap_meta;
    amtl_named_tensor *tensors;
    int n_tensors, cap_tensors;
    void *map;               /* amtl_file_map: the file's mapping, or NULL */
    size_t map_len;
} amtl_file;

void amtl_file_init(amtl_file *f, const char *kind);
void amtl_file_free(amtl_file *f);  /* safe on a zeroed struct */

/* Sets (or replaces) a metadata string. */
int amtl_file_set_meta(amtl_file *f, const char *key, const char *value,
                       amtl_status *st);
int amtl_file_set_metaf(amtl_file *f, amtl_status *st, const char *key,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* NULL when absent. */
const char *amtl_file_meta(const amtl_file *f, const char *key);

/* Adds a tensor with a copy of data (data may be NULL: zero-filled).
 * Returns the stored tensor, or NULL with st set (duplicate name, bad shape,
 * no memory). */
amtl_tensor *amtl_file_add(amtl_file *f, const char *name, amtl_dtype dt,
                           int ndim, const int64_t *shape, const void *data,
                           amtl_status *st);
/* The same without a copy: the tensor points at data, which must stay valid
 * and unchanged until the file is written and freed (a writer's view of
 * arrays it holds anyway: a checkpoint of the weights).  data may be NULL
 * only for an empty tensor. */
amtl_tensor *amtl_file_add_view(amtl_file *f, const char *name, amtl_dtype dt, int ndim,
                                const int64_t *shape, const void *data, amtl_status *st);
/* A streamed tensor: no data held, its bytes made by fill(ctx, ...) when
 * they are needed (written, hashed), so that a file larger than memory can
 * be written a piece at a time.  ctx must stay valid until the file is
 * freed.  Readers of t.data (amtl_dataset, amtl_file_get) need
 * amtl_file_materialize first. */
amtl_tensor *amtl_file_add_stream(amtl_file *f, const char *name, amtl_dtype dt, int ndim,
                                  const int64_t *shape, amtl_tensor_fill fill, void *ctx,
                                  amtl_status *st);
/* Tensor i's bytes to put: its data, or what its fill makes (checked to be
 * its byte length). */
int amtl_file_tensor_bytes(const amtl_file *f, int i, amtl_put_fn put, void *ctx,
                           amtl_status *st);
/* Every streamed tensor made an ordinary one: its fill run into memory. */
int amtl_file_materialize(amtl_file *f, amtl_status *st);
const amtl_tensor *amtl_file_find(const amtl_file *f, const char *name);

/* Looks a tensor up and checks it: dtype, ndim and every shape[i] >= 0 must
 * match (-1 matches any size).  On failure the message names `what` (usually
 * the file path) and the tensor. */
const amtl_tensor *amtl_file_get(const amtl_file *f, const char *what,
                                 const char *name, amtl_dtype dt, int ndim,
                                 const int64_t *shape, amtl_status *st);

/* Serialises to a malloc'd buffer (free with free()). */
int amtl_file_encode(const amtl_file *f, void **buf, size_t *len, amtl_status *st);
/* Parses buf; expected_kind may be NULL (any kind).  `what` names the source
 * in messages.  On failure f is left empty. */
int amtl_file_decode(amtl_file *f, const void *buf, size_t len, const char *what,
                     const char *expected_kind, amtl_status *st);

/* The file's head only: format, version, kind and meta from the bytes before
 * its tensors, buf[0..len) a prefix of the file, checksum unread.  0 with f
 * holding them (no tensor; f->checksum AMTL_CHECKSUM_UNREAD), 1 when the prefix ends before
 * the tensors begin (*need: a longer prefix to try), -1 with st when the
 * head is not an amtl file's. */
int amtl_file_decode_head(amtl_file *f, const void *buf, size_t len, size_t *need,
                          const char *what, const char *expected_kind, amtl_status *st);
/* A file's head alone (f with no tensor): its checksum verified by reading
 * the file through a piece at a time, then amtl_file_decode_head of its
 * first bytes (at most AMTL_HEAD_MAX: a larger head is an error, as is a
 * path of "-"); memory does not grow with the file.  A damaged file, or one
 * without a checksum (version 1), goes through amtl_file_read instead, for
 * its message naming the damage or its notice. */
#define AMTL_HEAD_MAX ((size_t)32 << 20)
int amtl_file_read_head(amtl_file *f, const char *path, const char *expected_kind,
                        amtl_status *st);

/* "verified", "none (format version 1)" for a file read without one, or "not
 * read (header only)" after amtl_file_read_head. */
const char *amtl_file_checksum_text(const amtl_file *f);

/* Recomputes the checksum at the end of an encoded file in place, for
 * programs that edit encoded bytes (tests, fuzz targets).  Returns -1 when
 * buf does not end with a checksum entry. */
int amtl_envelope_seal(void *buf, size_t len);

/* path "-" means stdout / stdin; a stdout that is a terminal is refused
 * (AMTL_EUSAGE): MessagePack is binary. */
int amtl_file_write(const amtl_file *f, const char *path, amtl_status *st);
int amtl_file_read(amtl_file *f, const char *path, const char *expected_kind,
                   amtl_status *st);
/* amtl_file_read without a copy of the data: the file is verified by reading
 * it through a piece at a time, then mapped (private, copy on write), and
 * every tensor whose data is aligned to its element size (all, in a file
 * this build wrote) is a view of the mapping (t.owns 0), valid until
 * amtl_file_free; the rest are copied.  Resident memory is the pages the
 * caller touches.  "-", a file that is not a regular file, a damaged or
 * version 1 file, or a failed mmap go through amtl_file_read.  The file must
 * not be truncated while it is mapped (the tools replace files by rename,
 * which leaves a mapped one as it was). */
int amtl_file_map(amtl_file *f, const char *path, const char *expected_kind,
                  amtl_status *st);
/* Gives the whole pages of p[0..n) back to the kernel when they lie in f's
 * mapping (madvise MADV_DONTNEED): they leave the process's resident memory,
 * and a later read finds them again in the page cache or the file.  For data
 * read once (a validation pass) that the caller may never read again.  A
 * no-op for memory that is not f's mapping; the pages must not have been
 * written. */
void amtl_file_release(const amtl_file *f, const void *p, size_t n);

#endif
