/* checksum.c — the checksums of the envelope (see envelope.h): verifying the
 * one at the end of a file before anything else reads it, naming the damaged
 * part when it fails, and sealing edited bytes.  The CRC is zlib's; over a
 * large file it runs on the process's thread pool (base/pool.h), in pieces
 * joined with crc32_combine.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>
#include <zlib.h>

#include "base/pool.h"
#include "format/envelope.h"
#include "format/envelope_internal.h"

/* Below this a file's CRC is one call: the pool's start costs more than
 * the pieces save. */
#define PARALLEL_MIN ((size_t)8 << 20)
#define PIECES 16

/* What a current-version file starts with after its map header: "format":
 * "amtl", "version": 2.  A file that starts so but does not end with its
 * checksum lost its end. */
static const unsigned char preamble[] = "\xa6" "format" "\xa4" "amtl" "\xa7" "version"
                                        "\x02";
#define PREAMBLE_LEN (sizeof preamble - 1)

const char *const amtl_envelope_unsealed =
    "damaged file: it does not end with its checksum (truncated, damaged at the end, "
    "or written without one)";

uint32_t amtl_envelope_crc32(uint32_t crc, const void *p, size_t n)
{
    return (uint32_t)crc32_z(crc, p, n);
}

uint32_t amtl_envelope_crc32_combine(uint32_t crc_a, uint32_t crc_b, size_t len_b)
{
    return (uint32_t)crc32_combine(crc_a, crc_b, (z_off_t)len_b);
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void amtl_envelope_put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static int has_trailer(const unsigned char *p, size_t len)
{
    return len > AMTL_SUM_TRAILER_LEN + 4 &&
           memcmp(p + len - 4 - AMTL_SUM_TRAILER_LEN, AMTL_SUM_TRAILER,
                  AMTL_SUM_TRAILER_LEN) == 0;
}

typedef struct {
    const unsigned char *p;
    size_t len;
    uint32_t crc[PIECES];
} crc_job;

static void piece_range(const crc_job *j, int piece, size_t *a, size_t *b)
{
    *a = j->len / PIECES * (size_t)piece;
    *b = piece == PIECES - 1 ? j->len : *a + j->len / PIECES;
}

static void crc_task(void *arg, int t, int n)
{
    crc_job *j = arg;
    int p0, p1;
    amtl_pool_range(PIECES, t, n, &p0, &p1);
    for (int k = p0; k < p1; k++) {
        size_t a, b;
        piece_range(j, k, &a, &b);
        j->crc[k] = amtl_envelope_crc32(0, j->p + a, b - a);
    }
}

/* The CRC of every byte but the last four (the stored CRC).  A large
 * buffer is summed in pieces on a pool of its own, of one thread a core the
 * process may use (the pieces' CRCs combined: the same value on any count),
 * made for the call: a file is read or written once, and threads start in
 * microseconds against the milliseconds of PARALLEL_MIN bytes. */
static uint32_t file_crc(const unsigned char *p, size_t len)
{
    amtl_pool *pool = NULL;
    if (len - 4 < PARALLEL_MIN || amtl_pool_in_task() || amtl_pool_cores() < 2 ||
        !(pool = amtl_pool_new(0)))
        return amtl_envelope_crc32(0, p, len - 4);
    crc_job j = {.p = p, .len = len - 4};
    amtl_pool_run(pool, PIECES, crc_task, &j);
    amtl_pool_free(pool);
    uint32_t crc = j.crc[0];
    for (int k = 1; k < PIECES; k++) {
        size_t a, b;
        piece_range(&j, k, &a, &b);
        crc = amtl_envelope_crc32_combine(crc, j.crc[k], b - a);
    }
    return crc;
}

int amtl_envelope_seal(void *buf, size_t len)
{
    unsigned char *p = buf;
    if (!has_trailer(p, len))
        return -1;
    amtl_envelope_put_be32(p + len - 4, file_crc(p, len));
    return 0;
}

const char *amtl_file_checksum_text(const amtl_file *f)
{
    return f->checksum == AMTL_CHECKSUM_VERIFIED ? "verified"
           : f->checksum == AMTL_CHECKSUM_UNREAD ? "not read (header only)"
                                                 : "none (format version 1)";
}

/* ---- naming the damaged part ----------------------------------------- */

const char *amtl_envelope_show(char *out, size_t cap, const char *p, size_t n)
{
    size_t limit = cap - 4, j = 0;
    for (size_t i = 0; i < n && j < limit; i++) {
        unsigned char c = (unsigned char)p[i];
        out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (n > limit) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
    return out;
}

static const msgpack_object *map_get(const msgpack_object *o, const char *key)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t n = strlen(key);
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
            memcmp(k->via.str.ptr, key, n) == 0)
            return &o->via.map.ptr[i].val;
    }
    return NULL;
}

/* The file's checksum failed: when the damage left the structure whole,
 * the tensors' own checksums tell which data it hit. */
static int damaged(const unsigned char *p, size_t len, const char *what, amtl_status *st)
{
    /* cut short right after a tensor's own checksum, a file ends as a
     * sealed one does; its structure ends early */
    if (amtl_envelope_mp_ends_early(p, len))
        return amtl_error(st, AMTL_EDATA, "%s: %s", what, amtl_envelope_unsealed);
    amtl_status ignored;
    if (amtl_envelope_mp_validate(p, len, what, &ignored))
        return amtl_error(st, AMTL_EDATA,
                          "%s: damaged file: the checksum does not match, and the file's "
                          "structure is broken",
                          what);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int parsed = msgpack_unpack_next(&u, (const char *)p, len, &off) ==
                 MSGPACK_UNPACK_SUCCESS;
    const msgpack_object *tensors = parsed ? map_get(&u.data, "tensors") : NULL;
    const msgpack_object_str *first = NULL;
    int bad = 0;
    for (uint32_t i = 0; tensors && tensors->type == MSGPACK_OBJECT_MAP &&
                         i < tensors->via.map.size;
         i++) {
        const msgpack_object_kv *kv = &tensors->via.map.ptr[i];
        const msgpack_object *data = map_get(&kv->val, "data");
        const msgpack_object *sum = map_get(&kv->val, "crc32");
        if (!data || data->type != MSGPACK_OBJECT_BIN || !sum ||
            sum->type != MSGPACK_OBJECT_BIN || sum->via.bin.size != 4)
            continue;
        uint32_t want = get_be32((const unsigned char *)sum->via.bin.ptr);
        if (amtl_envelope_crc32(0, data->via.bin.ptr, data->via.bin.size) == want)
            continue;
        if (!bad++ && kv->key.type == MSGPACK_OBJECT_STR)
            first = &kv->key.via.str;
    }
    int rc;
    if (bad) {
        char name[200], more[48] = "";
        if (bad > 1)
            snprintf(more, sizeof more, " (and %d more tensor%s)", bad - 1,
                     bad > 2 ? "s" : "");
        rc = amtl_error(st, AMTL_EDATA,
                        "%s: damaged file: tensor '%s' does not match its checksum%s", what,
                        first ? amtl_envelope_show(name, sizeof name, first->ptr, first->size)
                              : "?",
                        more);
    } else {
        rc = amtl_error(st, AMTL_EDATA,
                        "%s: damaged file: the checksum does not match; every tensor's "
                        "data does, so the damage is in the header, the metadata, the "
                        "tensor layout or the checksum itself",
                        what);
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

int amtl_envelope_verify(const unsigned char *p, size_t len, const char *what, int *sealed,
                         amtl_status *st)
{
    *sealed = 0;
    if (has_trailer(p, len)) {
        if (file_crc(p, len) != get_be32(p + len - 4))
            return damaged(p, len, what, st);
        *sealed = 1;
        return 0;
    }
    if (len > PREAMBLE_LEN && memcmp(p + 1, preamble, PREAMBLE_LEN) == 0)
        return amtl_error(st, AMTL_EDATA, "%s: %s", what, amtl_envelope_unsealed);
    return 0; /* a version 1 file, or no amtl file: the decoder says which */
}

int amtl_envelope_verify_fd(int fd, size_t len, const char *what, int *sealed,
                            amtl_status *st)
{
    unsigned char tail[AMTL_SUM_TRAILER_LEN + 4];
    size_t nt = sizeof tail;
    *sealed = 0;
    if (len < nt + 1 || pread(fd, tail, nt, (off_t)(len - nt)) != (ssize_t)nt ||
        memcmp(tail, AMTL_SUM_TRAILER, AMTL_SUM_TRAILER_LEN))
        return 0;
    /* every byte but the stored CRC, a piece at a time */
    enum { PIECE = 1 << 20 };
    unsigned char *buf = malloc(PIECE);
    if (!buf)
        return amtl_error(st, AMTL_ENOMEM, "%s: out of memory", what);
    uint32_t crc = 0;
    size_t done = 0, end = len - 4;
    int rc = 0;
    while (done < end) {
        size_t k = end - done < PIECE ? end - done : PIECE;
        ssize_t r = pread(fd, buf, k, (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = amtl_error(st, AMTL_EIO, "cannot read '%s': %s", what,
                            r < 0 ? strerror(errno) : "it shrank while being read");
            break;
        }
        crc = amtl_envelope_crc32(crc, buf, (size_t)r);
        done += (size_t)r;
    }
    free(buf);
    if (rc == 0 && crc != get_be32(tail + AMTL_SUM_TRAILER_LEN))
        rc = amtl_error(st, AMTL_EDATA, "%s: damaged file: the checksum does not match", what);
    *sealed = rc == 0;
    return rc;
}
