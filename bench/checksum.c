/* bench/checksum.c — what verifying a file's checksum costs next to reading
 * the file: a synthetic dataset of ROWS rows written to a temp directory,
 * then the best of five of: reading its bytes from the disk (its pages
 * dropped from the cache first) and from the page cache (the fastest a
 * read gets), the CRC-32 over them (on the thread pool: AMTL_THREADS), the whole decode (checksum
 * included), the whole dataset read (decode and validation), and the FNV
 * content hash a version 1 dataset is still checked with.
 *   build/bench/checksum [ROWS]   (default 2000000)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/pool.h"
#include "base/progress.h"
#include "data/dataset.h"
#include "data/prep_table.h"
#include "data/synthetic.h"
#include "format/config.h"
#include "format/read_all.h"

#define REPS 5

static double best(double a, double b) { return a < b ? a : b; }

/* Drops the file's pages from the page cache (this file only). */
static int drop_cached(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    int rc = fdatasync(fd) || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    return rc;
}

static void row(const char *what, double secs, size_t bytes, double read_secs)
{
    printf("%-28s %8.1f ms %7.2f GB/s %7.1f%% of the read\n", what, secs * 1e3,
           (double)bytes / secs / 1e9, 100.0 * secs / read_secs);
}

int main(int argc, char **argv)
{
    long rows = argc > 1 ? atol(argv[1]) : 2000000;
    amtl_status st;
    char dir[] = "/tmp/amtl-bench-checksum-XXXXXX", path[64];
    if (rows < 1 || !mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/data.amtl", dir);
    amtl_config cfg;
    amtl_prep_table t;
    amtl_file f;
    memset(&cfg, 0, sizeof cfg);
    int rc = amtl_config_defaults(&cfg, &st) || amtl_prep_synthetic(&t, rows, 4, 1, &st);
    if (!rc) {
        rc = amtl_prep_table_to_file(&t, &cfg, &f, &st);
        amtl_prep_table_free(&t);
        if (!rc)
            rc = amtl_file_write(&f, path, &st);
        amtl_file_free(&f);
    }
    amtl_config_free(&cfg);
    if (rc) {
        fprintf(stderr, "checksum: %s\n", st.msg);
        rmdir(dir);
        return 1;
    }

    double t_disk = 1e30, t_read = 1e30, t_crc = 1e30, t_decode = 1e30, t_dataset = 1e30, t_fnv = 1e30;
    size_t len = 0;
    unsigned long sink = 0;
    for (int r = 0; r < REPS && !rc; r++) {
        void *buf;
        if (drop_cached(path)) {
            fprintf(stderr, "checksum: cannot drop the cached pages of %s\n", path);
            break;
        }
        double td = amtl_now();
        rc = amtl_io_read_all(path, (size_t)1 << 36, &buf, &len, &st);
        t_disk = best(t_disk, amtl_now() - td);
        if (rc)
            break;
        free(buf);
        double t0 = amtl_now();
        rc = amtl_io_read_all(path, (size_t)1 << 36, &buf, &len, &st);
        double t1 = amtl_now();
        if (rc)
            break;
        /* sealing a sealed file recomputes the CRC the reader verifies, on
         * the pool as the reader does */
        amtl_envelope_seal(buf, len);
        sink ^= ((unsigned char *)buf)[len - 1];
        double t2 = amtl_now();
        rc = amtl_file_decode(&f, buf, len, path, "dataset", &st);
        double t3 = amtl_now();
        free(buf);
        if (rc)
            break;
        uint64_t h = 0;
        rc = amtl_dataset_content_hash(&f, &h, &st);
        sink ^= (unsigned long)h;
        double t4 = amtl_now();
        amtl_file_free(&f);
        amtl_dataset ds;
        double t5 = amtl_now();
        rc = amtl_dataset_read(&ds, path, &st);
        double t6 = amtl_now();
        if (!rc)
            amtl_dataset_free(&ds);
        t_read = best(t_read, t1 - t0);
        t_crc = best(t_crc, t2 - t1);
        t_decode = best(t_decode, t3 - t2);
        t_fnv = best(t_fnv, t4 - t3);
        t_dataset = best(t_dataset, t6 - t5);
    }
    unlink(path);
    rmdir(dir);
    if (rc) {
        fprintf(stderr, "checksum: %s\n", st.msg);
        return 1;
    }
    printf("synthetic dataset, %ld rows: %.1f MB, %d core%s (best of %d, %lx)\n", rows,
           len / 1e6, amtl_pool_cores(), amtl_pool_cores() > 1 ? "s" : "", REPS, sink & 1);
    row("read (disk)", t_disk, len, t_read);
    row("read (page cache)", t_read, len, t_read);
    row("CRC-32 (verification)", t_crc, len, t_read);
    row("decode, checksum included", t_decode, len, t_read);
    row("amtl_dataset_read, all", t_dataset, len, t_read);
    row("FNV content hash (version 1)", t_fnv, len, t_read);
    return 0;
}
