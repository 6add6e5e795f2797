/* test_checksum.c — the checksums of the envelope: where the writer puts
 * them (checked against zlib directly), damage at every byte refused with
 * the part it hit named, sealing edited bytes, and version 1 files without
 * checksums still read; the writer's alignment, which lets a mapped file be
 * used in place. */
#include <stdint.h>

#include <msgpack.h>
#include <zlib.h>

#include "base/pool.h"
#include "format/envelope.h"
#include "iotest.h"

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The sample with a third, larger tensor, so the CRCs combine over more
 * than a few bytes. */
static int make_file(amtl_file *f, amtl_rng *r, size_t big, amtl_status *st)
{
    if (make_sample(f, r, st))
        return -1;
    int64_t shape[1] = {(int64_t)big};
    void *d = random_data(r, AMTL_U8, big);
    int ok = amtl_file_add(f, "big", AMTL_U8, 1, shape, d, st) != NULL;
    free(d);
    return ok ? 0 : -1;
}

static int encode(const amtl_file *f, unsigned char **buf, size_t *len)
{
    amtl_status st;
    void *b;
    if (amtl_file_encode(f, &b, len, &st))
        return -1;
    *buf = b;
    return 0;
}

/* make_file from a seed. */
static int sample(uint64_t seed, size_t big, amtl_file *f)
{
    amtl_rng r;
    amtl_status st;
    amtl_rng_seed(&r, seed);
    return make_file(f, &r, big, &st);
}

/* The same, and its bytes. */
static int sample_bytes(uint64_t seed, size_t big, amtl_file *f, unsigned char **buf,
                        size_t *len)
{
    if (sample(seed, big, f))
        return -1;
    if (encode(f, buf, len)) {
        amtl_file_free(f);
        return -1;
    }
    return 0;
}

/* Where tensor i's data lies in the encoded bytes (its values are random,
 * so they occur once). */
static size_t data_offset(const unsigned char *buf, size_t len, const amtl_tensor *t)
{
    size_t n = amtl_tensor_nbytes(t);
    const unsigned char *at = memmem(buf, len, t->data, n);
    return at ? (size_t)(at - buf) : SIZE_MAX;
}

/* ---- the writer ------------------------------------------------------ */

static void test_file_ends_with_its_checksum(void)
{
    amtl_status st = {0};
    amtl_file f, g;
    unsigned char *buf;
    size_t len;
    CHECK(sample_bytes(21, (size_t)3 << 20, &f, &buf, &len) == 0);
    CHECK(len > 12 && memcmp(buf + len - 12, "\xa5" "crc32" "\xc4\x04", 8) == 0);
    CHECK(be32(buf + len - 4) == (uint32_t)crc32_z(0, buf, len - 4));
    /* every tensor's data is followed by its own checksum */
    for (int i = 0; i < f.n_tensors; i++) {
        const amtl_tensor *t = &f.tensors[i].t;
        size_t at = data_offset(buf, len, t), n = amtl_tensor_nbytes(t);
        CHECKF(at != SIZE_MAX, "tensor %s not found", f.tensors[i].name);
        const unsigned char *sum = buf + at + n;
        CHECK(memcmp(sum, "\xa5" "crc32" "\xc4\x04", 8) == 0);
        CHECK(be32(sum + 8) == (uint32_t)crc32_z(0, t->data, n));
    }
    CHECK_OK(amtl_file_decode(&g, buf, len, "mem", NULL, &st), &st);
    CHECK(g.checksum == AMTL_CHECKSUM_VERIFIED && g.version == AMTL_FORMAT_VERSION);
    CHECK(!strcmp(amtl_file_checksum_text(&g), "verified"));
    char why[200];
    CHECKF(files_equal(&f, &g, why, sizeof why), "%s", why);
    amtl_file_free(&g);
    /* a file built in memory was never verified */
    CHECK(f.checksum == AMTL_CHECKSUM_NONE);
    amtl_file_free(&f);
    free(buf);
}

/* ---- damage ---------------------------------------------------------- */

/* Every byte of the file changed in turn (two ways) is refused as damaged;
 * in a tensor's data the message names that tensor. */
static void test_damage_at_every_offset(void)
{
    amtl_file f;
    unsigned char *buf;
    size_t len;
    CHECK(sample_bytes(22, 40, &f, &buf, &len) == 0);
    size_t at[8], end[8];
    for (int i = 0; i < f.n_tensors; i++) {
        at[i] = data_offset(buf, len, &f.tensors[i].t);
        end[i] = at[i] + amtl_tensor_nbytes(&f.tensors[i].t);
        CHECK(at[i] != SIZE_MAX);
    }
    unsigned char *p = malloc(len);
    static const unsigned char flips[] = {0xff, 0x01};
    size_t refused = 0;
    for (size_t off = 0; off < len; off++)
        for (int k = 0; k < 2; k++) {
            memcpy(p, buf, len);
            p[off] ^= flips[k];
            amtl_file g;
            amtl_status s2 = {0};
            int rc = amtl_file_decode(&g, p, len, "bad.amtl", NULL, &s2);
            CHECKF(rc == -1 && s2.code == AMTL_EDATA && file_is_empty(&g),
                   "byte %zu ^ 0x%02x: rc %d \"%s\"", off, flips[k], rc, s2.msg);
            CHECKF(!strncmp(s2.msg, "bad.amtl: damaged file: ", 24),
                   "byte %zu ^ 0x%02x: \"%s\"", off, flips[k], s2.msg);
            char want[200] = "";
            for (int i = 0; i < f.n_tensors; i++)
                if (off >= at[i] && off < end[i])
                    snprintf(want, sizeof want,
                             "bad.amtl: damaged file: tensor '%s' does not match its "
                             "checksum",
                             f.tensors[i].name);
            if (off >= len - 12 && off < len - 4)
                snprintf(want, sizeof want, "bad.amtl: damaged file: it does not end with "
                                            "its checksum (truncated, damaged at the end, "
                                            "or written without one)");
            CHECKF(!want[0] || !strcmp(s2.msg, want), "byte %zu: \"%s\", expected \"%s\"",
                   off, s2.msg, want);
            refused++;
        }
    CHECK(refused == 2 * len);
    free(p);
    free(buf);
    amtl_file_free(&f);
}

/* Cut short right after a tensor's own checksum, a file ends as a sealed
 * one does: it is refused as one that lost its end, as at every other cut.
 * (After the last tensor's, the reader cannot tell the cut from a damaged
 * count of the top-level map, and says the structure is broken.) */
static void test_cut_after_a_tensor_checksum(void)
{
    amtl_file f;
    unsigned char *buf;
    size_t len;
    CHECK(sample_bytes(23, 40, &f, &buf, &len) == 0);
    int cuts = 0;
    for (int i = 0; i + 1 < f.n_tensors; i++) {
        const amtl_tensor *t = &f.tensors[i].t;
        size_t cut = data_offset(buf, len, t) + amtl_tensor_nbytes(t) + 12;
        amtl_file g;
        amtl_status s2 = {0};
        int rc = amtl_file_decode(&g, buf, cut, "cut.amtl", NULL, &s2);
        CHECKF(rc == -1 && !strcmp(s2.msg, "cut.amtl: damaged file: it does not end with its "
                                           "checksum (truncated, damaged at the end, or "
                                           "written without one)"),
               "cut after tensor %d: \"%s\"", i, s2.msg);
        cuts++;
    }
    CHECK(cuts == f.n_tensors - 1 && cuts >= 2);
    free(buf);
    amtl_file_free(&f);
}

/* Two tensors hit: the first is named, the other counted. */
static void test_damage_in_two_tensors(void)
{
    amtl_status st = {0};
    amtl_file f, g;
    unsigned char *buf;
    size_t len;
    CHECK(sample_bytes(23, 40, &f, &buf, &len) == 0);
    buf[data_offset(buf, len, &f.tensors[1].t)] ^= 1;
    buf[data_offset(buf, len, &f.tensors[2].t) + 39] ^= 1;
    CHECK(amtl_file_decode(&g, buf, len, "x", NULL, &st) == -1);
    CHECKF(!strcmp(st.msg, "x: damaged file: tensor 'ids' does not match its checksum "
                           "(and 1 more tensor)"),
           "%s", st.msg);
    free(buf);
    amtl_file_free(&f);
}

/* A damaged file on disk: the message names the path. */
static void test_damaged_file_read(void)
{
    amtl_status st = {0};
    amtl_file f, g;
    CHECK(sample(24, 100, &f) == 0);
    const char *path = path_in_tmp("damaged.amtl");
    CHECK_OK(amtl_file_write(&f, path, &st), &st);
    size_t len;
    unsigned char *buf = slurp(path, &len);
    CHECK(buf);
    buf[data_offset(buf, len, &f.tensors[2].t) + 50] ^= 0x10;
    CHECK(write_bytes(path, buf, len) == 0);
    CHECK(amtl_file_read(&g, path, "model", &st) == -1);
    char want[700];
    snprintf(want, sizeof want, "%s: damaged file: tensor 'big' does not match its checksum",
             path);
    CHECKF(st.code == AMTL_EDATA && !strcmp(st.msg, want), "%s", st.msg);
    CHECK(file_is_empty(&g));
    free(buf);
    amtl_file_free(&f);
}

/* A file past 8 MB is verified in pieces on a pool of its own (one thread a
 * core; one on a one-core machine): the same CRC, and damage in any piece
 * found. */
static void test_large_file_on_the_pool(void)
{
    amtl_status st = {0};
    amtl_file f, g;
    unsigned char *buf;
    size_t len;
    CHECK(sample_bytes(28, (size_t)9 << 20, &f, &buf, &len) == 0);
    uint32_t want = (uint32_t)crc32_z(0, buf, len - 4);
    CHECK(be32(buf + len - 4) == want);
    CHECK(amtl_envelope_seal(buf, len) == 0 && be32(buf + len - 4) == want);
    CHECK_OK(amtl_file_decode(&g, buf, len, "big", NULL, &st), &st);
    CHECK(g.checksum == AMTL_CHECKSUM_VERIFIED);
    amtl_file_free(&g);
    size_t at = data_offset(buf, len, &f.tensors[2].t);
    static const size_t where[] = {0, 1, 5 << 20, (9 << 20) - 1};
    for (int k = 0; k < 4; k++) {
        buf[at + where[k]] ^= 0x40;
        CHECK(amtl_file_decode(&g, buf, len, "big", NULL, &st) == -1);
        CHECKF(!strcmp(st.msg, "big: damaged file: tensor 'big' does not match its checksum"),
               "%s", st.msg);
        buf[at + where[k]] ^= 0x40;
    }
    buf[3] ^= 1;
    CHECK(amtl_file_decode(&g, buf, len, "big", NULL, &st) == -1);
    CHECKF(strstr(st.msg, "big: damaged file: the checksum does not match") == st.msg, "%s",
           st.msg);
    free(buf);
    amtl_file_free(&f);
}

/* ---- sealing ----------------------------------------------------------- */

static void test_seal_after_an_edit(void)
{
    amtl_status st = {0};
    amtl_file f, g;
    unsigned char *buf;
    size_t len;
    CHECK(sample_bytes(25, 10, &f, &buf, &len) == 0);
    unsigned char *seven = memmem(buf, len, "\xa4" "seed" "\xa1" "7", 7);
    CHECK(seven);
    seven[6] = '8';
    CHECK(amtl_file_decode(&g, buf, len, "x", NULL, &st) == -1);
    CHECK(amtl_envelope_seal(buf, len) == 0);
    CHECK_OK(amtl_file_decode(&g, buf, len, "x", NULL, &st), &st);
    CHECK(!strcmp(amtl_file_meta(&g, "seed"), "8"));
    amtl_file_free(&g);
    CHECK(amtl_envelope_seal("not amtl", 8) == -1);
    CHECK(amtl_envelope_seal(buf, len - 1) == -1);
    free(buf);
    amtl_file_free(&f);
}

/* ---- version 1 and hand-made files --------------------------------------- */

/* f as a version 1 file (no checksums), or with version 2 and `sums` set as
 * a writer would that leaves out the tensors' checksums (sums 1) or gives
 * them the wrong length (sums 2); sealed when it ends with "crc32". */
static void pack_file(msgpack_sbuffer *sb, const amtl_file *f, int version, int sums,
                      int top_crc)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
#define S(s) msgpack_pack_str_with_body(&pk, s, strlen(s))
    msgpack_pack_map(&pk, 5 + (top_crc != 0));
    S("format");
    S("amtl");
    S("version");
    msgpack_pack_int(&pk, version);
    S("kind");
    S(f->kind);
    S("meta");
    msgpack_pack_map(&pk, (size_t)f->n_meta);
    for (int i = 0; i < f->n_meta; i++) {
        S(f->meta[i].key);
        S(f->meta[i].value);
    }
    S("tensors");
    msgpack_pack_map(&pk, (size_t)f->n_tensors);
    for (int i = 0; i < f->n_tensors; i++) {
        const amtl_tensor *t = &f->tensors[i].t;
        S(f->tensors[i].name);
        msgpack_pack_map(&pk, 3 + (sums >= 2));
        S("dtype");
        S(amtl_dtype_name(t->dtype));
        S("shape");
        msgpack_pack_array(&pk, (size_t)t->ndim);
        for (int d = 0; d < t->ndim; d++)
            msgpack_pack_int64(&pk, t->shape[d]);
        S("data");
        msgpack_pack_bin(&pk, amtl_tensor_nbytes(t));
        msgpack_pack_bin_body(&pk, t->data, amtl_tensor_nbytes(t));
        if (sums == 2) {
            S("crc32");
            msgpack_pack_bin(&pk, 2);
            msgpack_pack_bin_body(&pk, "ab", 2);
        }
        if (sums == 3) { /* right: another writer's valid file */
            uint32_t c = (uint32_t)crc32(0, t->data, (uInt)amtl_tensor_nbytes(t));
            unsigned char b[4] = {c >> 24, c >> 16 & 255, c >> 8 & 255, c & 255};
            S("crc32");
            msgpack_pack_bin(&pk, 4);
            msgpack_pack_bin_body(&pk, b, 4);
        }
    }
    if (top_crc) {
        S("crc32");
        msgpack_pack_bin(&pk, 4);
        msgpack_pack_bin_body(&pk, "\0\0\0\0", 4);
        amtl_envelope_seal(sb->data, sb->size);
    }
#undef S
}

/* pack_file's bytes do not decode, with the message want. */
static int packed_fails(const amtl_file *f, int version, int sums, int top_crc,
                        const char *want, char *why, size_t n)
{
    msgpack_sbuffer sb;
    amtl_file g;
    amtl_status st = {0};
    pack_file(&sb, f, version, sums, top_crc);
    int rc = amtl_file_decode(&g, sb.data, sb.size, "x", NULL, &st);
    msgpack_sbuffer_destroy(&sb);
    if (rc == 0) {
        amtl_file_free(&g);
        return why_not(why, n, "decoded, expected \"%s\"", want);
    }
    if (strcmp(st.msg, want))
        return why_not(why, n, "\"%s\", expected \"%s\"", st.msg, want);
    return 1;
}

static void test_version_1_reads_without_a_checksum(void)
{
    amtl_status st = {0};
    amtl_file f, g, h;
    CHECK(sample(26, 30, &f) == 0);
    msgpack_sbuffer sb;
    pack_file(&sb, &f, 1, 0, 0);
    CHECK_OK(amtl_file_decode(&g, sb.data, sb.size, "old", "model", &st), &st);
    CHECK(g.version == 1 && g.checksum == AMTL_CHECKSUM_NONE);
    CHECK(!strcmp(amtl_file_checksum_text(&g), "none (format version 1)"));
    char why[1200];
    CHECKF(files_equal(&f, &g, why, sizeof why), "%s", why);
    /* written again it is a current, sealed file */
    unsigned char *buf;
    size_t len;
    CHECK(encode(&g, &buf, &len) == 0);
    CHECK_OK(amtl_file_decode(&h, buf, len, "new", "model", &st), &st);
    CHECK(h.version == AMTL_FORMAT_VERSION && h.checksum == AMTL_CHECKSUM_VERIFIED);
    amtl_file_free(&h);
    amtl_file_free(&g);
    free(buf);
    /* and nothing tells when a version 1 file's data is damaged */
    sb.data[data_offset((unsigned char *)sb.data, sb.size, &f.tensors[2].t)] ^= 1;
    CHECK_OK(amtl_file_decode(&g, sb.data, sb.size, "old", "model", &st), &st);
    amtl_file_free(&g);
    msgpack_sbuffer_destroy(&sb);

    /* a version 1 file has no checksums to carry */
    CHECKF(packed_fails(&f, 1, 0, 1,
                        "x: unknown top-level field \"crc32\" (a version 1 file has no "
                        "checksum)",
                        why, sizeof why),
           "%s", why);
    amtl_file_free(&f);
}

/* Every writer of this build starts each tensor's data at a multiple of
 * AMTL_DATA_ALIGN (whatever the lengths before it); amtl_file_map then
 * uses every tensor in place, a view of the mapping.  Another writer's file,
 * whose data falls anywhere, is read all the same: the tensors aligned to
 * their element size in place, the rest copied. */
static void test_mapped_in_place(void)
{
    amtl_rng r;
    amtl_rng_seed(&r, 44);
    amtl_status st = {0};
    amtl_file f;
    amtl_file_init(&f, "dataset");
    static const amtl_dtype dts[] = {AMTL_U8, AMTL_I32, AMTL_F32, AMTL_F64, AMTL_I64};
    for (int i = 0; i < 60; i++) {
        char name[48];
        /* names and u8 lengths of every residue, so every padding occurs */
        snprintf(name, sizeof name, "t%.*s%d", i % 9, "xxxxxxxxx", i);
        amtl_dtype dt = dts[i % 5];
        int64_t n = 1 + (int64_t)amtl_rng_below(&r, 40);
        void *data = random_data(&r, dt, (size_t)n);
        CHECK(amtl_file_add(&f, name, dt, 1, &n, data, &st) != NULL);
        free(data);
    }
    const char *path = path_in_tmp("mapped.amtl");
    CHECK_OK(amtl_file_write(&f, path, &st), &st);
    amtl_file g;
    CHECK_OK(amtl_file_map(&g, path, "dataset", &st), &st);
    CHECK(g.map && g.checksum == AMTL_CHECKSUM_VERIFIED);
    char why[1200];
    CHECKF(files_equal_as(&f, &g, why, sizeof why, 1), "%s", why);
    int views = 0;
    for (int i = 0; i < g.n_tensors; i++) {
        const char *d = g.tensors[i].t.data, *m = g.map;
        views += !g.tensors[i].t.owns && d > m && d < m + g.map_len &&
                 (size_t)(d - m) % AMTL_DATA_ALIGN == 0;
    }
    CHECKF(views == g.n_tensors, "%d of %d tensors in place", views, g.n_tensors);
    amtl_file_free(&g);
    amtl_file_free(&g); /* safe twice */

    /* the same tensors in the shortest encodings, as another writer would */
    msgpack_sbuffer sb;
    pack_file(&sb, &f, 2, 3, 1);
    FILE *out = fopen(path, "wb");
    CHECK(out && fwrite(sb.data, 1, sb.size, out) == sb.size && fclose(out) == 0);
    msgpack_sbuffer_destroy(&sb);
    CHECK_OK(amtl_file_map(&g, path, "dataset", &st), &st);
    CHECKF(files_equal_as(&f, &g, why, sizeof why, 1), "%s", why);
    int copied = 0;
    views = 0;
    for (int i = 0; i < g.n_tensors; i++) {
        const amtl_tensor *t = &g.tensors[i].t;
        uintptr_t a = (uintptr_t)t->data;
        if (t->owns)
            copied++;
        else
            views += a % amtl_dtype_size(t->dtype) == 0;
    }
    CHECKF(copied > 0 && views + copied == g.n_tensors, "%d copied, %d in place of %d", copied,
           views, g.n_tensors);
    amtl_file_free(&g);
    /* a path that is not a regular file, and "-", read whole */
    CHECK(amtl_file_map(&g, "/nonexistent/x.amtl", NULL, &st) == -1);
    CHECK(strstr(st.msg, "/nonexistent/x.amtl") != NULL);
    amtl_file_free(&f);
}

/* Resident pages of this process, from /proc/self/statm. */
static long resident_pages(void)
{
    long size = 0, res = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = -1;
        fclose(f);
    }
    return res;
}

/* amtl_file_release gives a mapped tensor's pages back: resident memory
 * drops, and the data reads the same afterwards (from the file). */
static void test_release_pages(void)
{
    amtl_status st = {0};
    amtl_file f, g;
    amtl_file_init(&f, "dataset");
    int64_t n = 4 << 20; /* 16 MiB */
    amtl_tensor *t = amtl_file_add(&f, "big", AMTL_I32, 1, &n, NULL, &st);
    CHECK(t != NULL);
    for (int64_t i = 0; i < n; i++)
        ((int32_t *)t->data)[i] = (int32_t)(i * 2654435761u);
    const char *path = path_in_tmp("release.amtl");
    CHECK_OK(amtl_file_write(&f, path, &st), &st);
    CHECK_OK(amtl_file_map(&g, path, "dataset", &st), &st);
    const amtl_tensor *m = amtl_file_find(&g, "big");
    CHECK(m && !m->owns);
    long before = resident_pages();
    CHECK(memcmp(m->data, t->data, (size_t)n * 4) == 0); /* every page touched */
    long touched = resident_pages();
    amtl_file_release(&g, m->data, (size_t)n * 4);
    long after = resident_pages();
    long page = sysconf(_SC_PAGESIZE), mib = (1 << 20) / page;
    CHECKF(touched - before > 12 * mib && touched - after > 12 * mib,
           "resident pages: %ld before, %ld touched, %ld released", before, touched, after);
    CHECK(memcmp(m->data, t->data, (size_t)n * 4) == 0); /* read again from the file */
    /* memory that is not the mapping's: nothing happens */
    amtl_file_release(&g, t->data, (size_t)n * 4);
    amtl_file_release(&f, t->data, (size_t)n * 4);
    CHECK(((int32_t *)t->data)[7] == (int32_t)(7 * 2654435761u));
    amtl_file_free(&g);
    amtl_file_free(&f);
}

static void test_version_2_needs_every_checksum(void)
{
    static const struct {
        int sums, top_crc;
        const char *msg;
    } bad[] = {
        {0, 1, "x: tensor 'w': missing field \"crc32\""},
        {2, 1, "x: tensor 'w': crc32 must be 4 bytes (bin), got another length"},
        /* no checksum at the end, though the start is a current file's */
        {0, 0, "x: damaged file: it does not end with its checksum (truncated, damaged at "
               "the end, or written without one)"},
    };
    amtl_file f;
    char why[1200];
    CHECK(sample(27, 30, &f) == 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECKF(packed_fails(&f, 2, bad[i].sums, bad[i].top_crc, bad[i].msg, why, sizeof why),
               "%s", why);
    amtl_file_free(&f);
}

int main(void)
{
    if (iotest_begin())
        return 1;
    RUN(test_file_ends_with_its_checksum);
    RUN(test_damage_at_every_offset);
    RUN(test_cut_after_a_tensor_checksum);
    RUN(test_damage_in_two_tensors);
    RUN(test_damaged_file_read);
    RUN(test_large_file_on_the_pool);
    RUN(test_seal_after_an_edit);
    RUN(test_version_1_reads_without_a_checksum);
    RUN(test_version_2_needs_every_checksum);
    RUN(test_mapped_in_place);
    RUN(test_release_pages);
    iotest_end();
    TEST_MAIN_END();
}
