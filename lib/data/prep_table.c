/* prep_table.c — the table every amtl-prep input is gathered into: its rows
 * a chunk at a time, full chunks in an unlinked temp file (see
 * prep_table.h); and the helpers every reader uses.  Writing it out as a
 * dataset is prep_encode.c's.
 */
#include "data/prep_table.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"

/* rows a chunk holds: AMTL_PREP_CHUNK_ROWS (a testing knob, 1 to 2^24) or
 * 65536, about 8 MB for the Ali-CCP field shape */
#define CHUNK_ROWS_DEFAULT 65536
#define CHUNK_ROWS_MAX (1 << 24)

static char **copy_names(int n, const char *const *names)
{
    char **out = calloc((size_t)(n > 0 ? n : 1), sizeof *out);
    if (!out)
        return NULL;
    for (int i = 0; i < n; i++)
        if (!(out[i] = strdup(names[i]))) {
            for (int j = 0; j < i; j++)
                free(out[j]);
            free(out);
            return NULL;
        }
    return out;
}

static void free_names(char **names, int n)
{
    if (!names)
        return;
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int check_names(int N, const char *const *sparse, int D,
                       const char *const *dense, int T, const char *const *labels,
                       amtl_status *st)
{
    const char *const *lists[3] = {sparse, dense, labels};
    int counts[3] = {N, D, T};
    for (int a = 0; a < 3; a++)
        for (int i = 0; i < counts[a]; i++) {
            const char *s = lists[a][i];
            if (!s[0])
                return amtl_error(st, AMTL_EDATA, "empty field name");
            if (strlen(s) > AMTL_PREP_MAX_NAME)
                return amtl_error(st, AMTL_EDATA, "field name '%.40s...' is longer than %d "
                                  "bytes", s, AMTL_PREP_MAX_NAME);
            if (strchr(s, '\n') || strchr(s, '\r'))
                return amtl_error(st, AMTL_EDATA, "field name '%s' contains a line break", s);
            for (int b = a; b < 3; b++)
                for (int j = (b == a ? i + 1 : 0); j < counts[b]; j++)
                    if (!strcmp(s, lists[b][j]))
                        return amtl_error(st, AMTL_EDATA, "duplicate field name '%s'", s);
        }
    return 0;
}

static int64_t chunk_rows_setting(void)
{
    const char *e = getenv("AMTL_PREP_CHUNK_ROWS");
    if (e && *e) {
        char *end;
        long long n = strtoll(e, &end, 10);
        if (!*end && n >= 1 && n <= CHUNK_ROWS_MAX)
            return n;
    }
    return CHUNK_ROWS_DEFAULT;
}

int amtl_prep_table_init(amtl_prep_table *t, int N, const char *const *sparse,
                         int D, const char *const *dense, int T,
                         const char *const *labels, amtl_status *st)
{
    memset(t, 0, sizeof *t);
    t->spill_fd = -1;
    if (N < 0 || D < 0 || T < 0)
        return amtl_error(st, AMTL_EDATA, "negative field count");
    if (check_names(N, sparse, D, dense, T, labels, st))
        return -1;
    t->chunk = chunk_rows_setting();
    size_t R = (size_t)t->chunk;
    t->sparse_names = copy_names(N, sparse);
    t->dense_names = copy_names(D, dense);
    t->label_names = copy_names(T, labels);
    t->maps = calloc((size_t)(N > 0 ? N : 1), sizeof *t->maps);
    t->raw = calloc((size_t)(N > 0 ? N : 1), sizeof *t->raw);
    t->dense = calloc((size_t)(D > 0 ? D : 1), sizeof *t->dense);
    t->labels = calloc((size_t)(T > 0 ? T : 1), sizeof *t->labels);
    t->split = malloc(R);
    int ok = t->sparse_names && t->dense_names && t->label_names && t->maps &&
             t->raw && t->dense && t->labels && t->split;
    /* the counts are set as the parts exist, so free releases just those */
    if (ok) {
        t->N = N;
        t->D = D;
        t->T = T;
    }
    for (int f = 0; ok && f < N; f++)
        ok = (t->raw[f] = malloc(sizeof(int32_t) * R)) != NULL;
    for (int d = 0; ok && d < D; d++)
        ok = (t->dense[d] = malloc(sizeof(float) * R)) != NULL;
    for (int k = 0; ok && k < T; k++)
        ok = (t->labels[k] = malloc(R)) != NULL;
    if (!ok) {
        if (!t->N) {
            free_names(t->sparse_names, N);
            free_names(t->dense_names, D);
            free_names(t->label_names, T);
            t->sparse_names = t->dense_names = t->label_names = NULL;
        }
        amtl_prep_table_free(t);
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    }
    for (int f = 0; f < N; f++)
        if (amtl_strmap_init(&t->maps[f], st)) {
            amtl_prep_table_free(t);
            return -1;
        }
    return 0;
}

void amtl_prep_table_free(amtl_prep_table *t)
{
    for (int f = 0; f < t->N; f++) {
        if (t->maps)
            amtl_strmap_free(&t->maps[f]);
        if (t->raw)
            free(t->raw[f]);
    }
    for (int d = 0; d < t->D; d++)
        if (t->dense)
            free(t->dense[d]);
    for (int k = 0; k < t->T; k++)
        if (t->labels)
            free(t->labels[k]);
    free_names(t->sparse_names, t->N);
    free_names(t->dense_names, t->D);
    free_names(t->label_names, t->T);
    free(t->maps);
    free(t->raw);
    free(t->dense);
    free(t->labels);
    free(t->split);
    free(t->source);
    for (int i = 0; i < t->n_extra; i++) {
        free(t->extra[i].key);
        free(t->extra[i].value);
    }
    free(t->extra);
    if (t->has_spill)
        close(t->spill_fd);
    memset(t, 0, sizeof *t);
    t->spill_fd = -1;
}

/* ---- the chunks ----------------------------------------------------------- */

static const char *spill_dir(void)
{
    const char *d = getenv("TMPDIR");
    return d && *d ? d : "/tmp";
}

/* Column c's bytes per row, and where it starts in a spilled chunk. */
static size_t column_size(const amtl_prep_table *t, int c)
{
    return c < t->N + t->D ? 4 : 1;
}

static size_t column_offset(const amtl_prep_table *t, int c)
{
    size_t R = (size_t)t->chunk, wide = (size_t)(t->N + t->D);
    return (size_t)c <= wide ? (size_t)c * 4 * R : wide * 4 * R + ((size_t)c - wide) * R;
}

static size_t chunk_bytes(const amtl_prep_table *t)
{
    return column_offset(t, t->N + t->D + t->T + 1);
}

/* Column c of the current chunk. */
static void *chunk_array(const amtl_prep_table *t, int c)
{
    if (c < t->N)
        return t->raw[c];
    if (c < t->N + t->D)
        return t->dense[c - t->N];
    if (c < t->N + t->D + t->T)
        return t->labels[c - t->N - t->D];
    return t->split;
}

static int spill_error(amtl_status *st, const char *doing)
{
    return amtl_error(st, AMTL_EIO,
                      "cannot %s the temp file of the rows read in '%s': %s (TMPDIR names "
                      "the directory; it needs about the output's size)",
                      doing, spill_dir(), strerror(errno));
}

/* All n bytes of p written to (or read from) fd at offset at, through short
 * transfers and EINTR: 0, or -1 with errno. */
static int pio_all(int fd, void *p, size_t n, off_t at, int out)
{
    char *b = p;
    while (n) {
        ssize_t r = out ? pwrite(fd, b, n, at) : pread(fd, b, n, at);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO;
            return -1;
        }
        b += r;
        n -= (size_t)r;
        at += r;
    }
    return 0;
}

/* The full current chunk to the end of the temp file (made, and unlinked,
 * at the first). */
static int spill_chunk(amtl_prep_table *t, amtl_status *st)
{
    if (!t->has_spill) {
        /* mkstemp(3) replaces the six X of the name with a unique suffix */
        char path[4096];
        if (snprintf(path, sizeof path, "%s/amtl-prep.XXXXXX", spill_dir()) >= (int)sizeof path)
            return amtl_error(st, AMTL_EUSAGE, "TMPDIR is too long");
        int fd = mkstemp(path);
        if (fd < 0)
            return spill_error(st, "make");
        unlink(path);
        t->spill_fd = fd;
        t->has_spill = 1;
    }
    off_t at = (off_t)(t->spilled * (int64_t)chunk_bytes(t));
    for (int c = 0; c <= t->N + t->D + t->T; c++)
        if (pio_all(t->spill_fd, chunk_array(t, c), column_size(t, c) * (size_t)t->chunk,
                    at + (off_t)column_offset(t, c), 1))
            return spill_error(st, "write");
    t->spilled++;
    t->fill = 0;
    return 0;
}

int64_t amtl_prep_table_add_row(amtl_prep_table *t, int split, amtl_status *st)
{
    if (t->rows >= INT32_MAX)
        return amtl_error(st, AMTL_EDATA, "more than %d rows", INT32_MAX);
    if (t->fill == t->chunk && spill_chunk(t, st))
        return -1;
    int64_t r = t->fill++;
    t->rows++;
    for (int f = 0; f < t->N; f++)
        t->raw[f][r] = 0;
    for (int d = 0; d < t->D; d++)
        t->dense[d][r] = 0.0f;
    for (int k = 0; k < t->T; k++)
        t->labels[k][r] = 0;
    t->split[r] = (uint8_t)split;
    t->marks[split]++;
    return r;
}

int64_t amtl_prep_table_chunks(const amtl_prep_table *t)
{
    return t->spilled + (t->fill > 0);
}

int64_t amtl_prep_table_chunk_rows(const amtl_prep_table *t, int64_t i)
{
    return i < t->spilled ? t->chunk : t->fill;
}

const void *amtl_prep_table_column(const amtl_prep_table *t, int64_t i, int c, void *buf,
                                   amtl_status *st)
{
    if (i >= t->spilled)
        return chunk_array(t, c);
    if (pio_all(t->spill_fd, buf, column_size(t, c) * (size_t)t->chunk,
                (off_t)(i * (int64_t)chunk_bytes(t) + (int64_t)column_offset(t, c)), 0)) {
        spill_error(st, "read");
        return NULL;
    }
    return buf;
}

static int put_column(amtl_prep_table *t, int64_t i, int c, const void *p, amtl_status *st)
{
    size_t n = column_size(t, c) * (size_t)amtl_prep_table_chunk_rows(t, i);
    if (i >= t->spilled) {
        memcpy(chunk_array(t, c), p, n);
        return 0;
    }
    if (pio_all(t->spill_fd, (void *)p, n,
                (off_t)(i * (int64_t)chunk_bytes(t) + (int64_t)column_offset(t, c)), 1))
        return spill_error(st, "write");
    return 0;
}

int amtl_prep_table_put_split(amtl_prep_table *t, int64_t i, const uint8_t *split,
                              amtl_status *st)
{
    return put_column(t, i, t->N + t->D + t->T, split, st);
}

int amtl_prep_table_put_labels(amtl_prep_table *t, int k, const uint8_t *y,
                               amtl_status *st)
{
    for (int64_t i = 0, n = amtl_prep_table_chunks(t); i < n; i++)
        if (put_column(t, i, t->N + t->D + k, y + i * t->chunk, st))
            return -1;
    return 0;
}

int32_t amtl_prep_table_intern(amtl_prep_table *t, int f, const char *tok,
                               size_t len, amtl_status *st)
{
    if (len == 0)
        return 0;
    int32_t k = amtl_strmap_put(&t->maps[f], tok, len, st);
    return k < 0 ? -1 : k + 1;
}

int amtl_prep_table_set_meta(amtl_prep_table *t, const char *key,
                             const char *value, amtl_status *st)
{
    amtl_meta_kv *e = realloc(t->extra, sizeof *e * (size_t)(t->n_extra + 1));
    if (!e)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    t->extra = e;
    e[t->n_extra].key = strdup(key);
    e[t->n_extra].value = strdup(value);
    if (!e[t->n_extra].key || !e[t->n_extra].value) {
        free(e[t->n_extra].key);
        free(e[t->n_extra].value);
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    }
    t->n_extra++;
    return 0;
}

/* ---- helpers the readers share ------------------------------------------ */

const char *amtl_prep_basename(const char *path)
{
    const char *s = strrchr(path, '/');
    return s && s[1] ? s + 1 : path;
}

int amtl_prep_delimiter(const amtl_config *cfg, char *out, amtl_status *st)
{
    const char *d = cfg->delimiter;
    if (!d || !d[0] || !strcmp(d, ","))
        *out = ',';
    else if (!strcmp(d, "\\t") || !strcmp(d, "tab") || !strcmp(d, "\t"))
        *out = '\t';
    else if (strlen(d) == 1 && d[0] != '"' && d[0] != '\n' && d[0] != '\r')
        *out = d[0];
    else
        return amtl_error(st, AMTL_EUSAGE,
                          "delimiter must be one character (or \"tab\"), not '%s'", d);
    return 0;
}

/* meta "source": the format and the inputs' base names, so the dataset does
 * not depend on where the inputs happened to lie. */
int amtl_prep_set_source(amtl_prep_table *t, const char *format,
                         const char *const *inputs, int n, amtl_status *st)
{
    size_t len = strlen(format) + 1;
    for (int i = 0; i < n; i++)
        len += strlen(amtl_prep_basename(inputs[i])) + 1;
    free(t->source);
    t->source = malloc(len);
    if (!t->source)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    char *p = t->source;
    p += sprintf(p, "%s", format);
    for (int i = 0; i < n; i++)
        p += sprintf(p, " %s", amtl_prep_basename(inputs[i]));
    return 0;
}
