/* csv.c — the streaming CSV record reader (see csv.h). */
#include "data/csv.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define READ_CHUNK (1u << 16)

typedef struct {
    z_stream zs;
    unsigned char *in;  /* [READ_CHUNK] compressed bytes */
    int in_eof;         /* no more compressed input */
    int ended;          /* inflate finished a gzip member */
} gz_state;

enum { S_START, S_UNQUOTED, S_QUOTED, S_AFTER_QUOTE };
enum { CH_EOF = -1, CH_ERR = -2 };

static int csv_init(amtl_csv *r, FILE *fp, const char *name, char delim,
                    amtl_status *st)
{
    memset(r, 0, sizeof *r);
    r->fp = fp;
    r->delim = delim;
    r->line = r->next_line = 1;
    r->size = -1;
    r->name = strdup(name);
    r->buf = malloc(READ_CHUNK);
    r->rec_cap = 256;
    r->rec = malloc(r->rec_cap);
    r->cap_fields = 16;
    r->off = malloc(sizeof *r->off * (size_t)r->cap_fields);
    r->len = malloc(sizeof *r->len * (size_t)r->cap_fields);
    if (!r->name || !r->buf || !r->rec || !r->off || !r->len) {
        amtl_csv_close(r);
        return amtl_error(st, AMTL_ENOMEM, "out of memory reading '%s'", name);
    }
    struct stat sb;
    if (fstat(fileno(fp), &sb) == 0 && S_ISREG(sb.st_mode))
        r->size = (int64_t)sb.st_size;
    return 0;
}

int amtl_csv_open(amtl_csv *r, const char *path, char delim, amtl_status *st)
{
    memset(r, 0, sizeof *r);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return amtl_error(st, AMTL_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fclose(fp);
        return amtl_error(st, AMTL_EIO, "cannot read '%s': %s", path, strerror(EISDIR));
    }
    if (csv_init(r, fp, path, delim, st)) {
        fclose(fp);
        return -1;
    }
    r->owns_fp = 1;
    return 0;
}

int amtl_csv_open_stream(amtl_csv *r, FILE *fp, const char *name, char delim,
                         amtl_status *st)
{
    return csv_init(r, fp, name, delim, st);
}

static void gz_free(gz_state *g)
{
    if (!g)
        return;
    inflateEnd(&g->zs);
    free(g->in);
    free(g);
}

void amtl_csv_close(amtl_csv *r)
{
    gz_free(r->gz);
    if (r->owns_fp && r->fp)
        fclose(r->fp);
    free(r->name);
    free(r->buf);
    free(r->rec);
    free(r->off);
    free(r->len);
    memset(r, 0, sizeof *r);
}

int amtl_csv_error(const amtl_csv *r, amtl_status *st, int col, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return amtl_error(st, AMTL_EDATA, "%s:%ld:%d: %s", r->name, r->line, col, msg);
}

/* Reads up to cap raw bytes of the file; *got = 0 at its end. */
static int read_raw(amtl_csv *r, unsigned char *dst, size_t cap, size_t *got,
                    amtl_status *st)
{
    errno = 0;
    size_t n = fread(dst, 1, cap, r->fp);
    if (n == 0 && ferror(r->fp))
        return amtl_error(st, AMTL_EIO, "cannot read '%s': %s", r->name,
                          strerror(errno ? errno : EIO));
    r->bytes += (int64_t)n;
    *got = n;
    return 0;
}

/* Starts decompressing: the n bytes already in r->buf are the first input. */
static int gz_start(amtl_csv *r, size_t n, amtl_status *st)
{
    gz_state *g = calloc(1, sizeof *g);
    if (!g || !(g->in = malloc(READ_CHUNK))) {
        free(g);
        return amtl_error(st, AMTL_ENOMEM, "out of memory reading '%s'", r->name);
    }
    if (inflateInit2(&g->zs, 16 + MAX_WBITS) != Z_OK) { /* 16: gzip wrapper only */
        free(g->in);
        free(g);
        return amtl_error(st, AMTL_ENOMEM, "out of memory reading '%s'", r->name);
    }
    memcpy(g->in, r->buf, n);
    g->zs.next_in = g->in;
    g->zs.avail_in = (uInt)n;
    r->gz = g;
    return 0;
}

/* Fills r->buf with decompressed bytes: 1, 0 at the end, -1 on error. */
static int gz_fill(amtl_csv *r, amtl_status *st)
{
    gz_state *g = r->gz;
    for (;;) {
        if (g->zs.avail_in == 0 && !g->in_eof) {
            size_t n;
            if (read_raw(r, g->in, READ_CHUNK, &n, st))
                return -1;
            g->in_eof = n == 0;
            g->zs.next_in = g->in;
            g->zs.avail_in = (uInt)n;
        }
        if (g->ended) {
            if (g->zs.avail_in == 0)
                return 0; /* in_eof: the last member ended */
            if (inflateReset(&g->zs) != Z_OK) /* another member follows */
                return amtl_error(st, AMTL_EDATA, "cannot read '%s': bad gzip data",
                                  r->name);
            g->ended = 0;
        }
        if (g->zs.avail_in == 0)
            return amtl_error(st, AMTL_EDATA, "cannot read '%s': truncated gzip data",
                              r->name);
        g->zs.next_out = r->buf;
        g->zs.avail_out = READ_CHUNK;
        int z = inflate(&g->zs, Z_NO_FLUSH);
        if (z == Z_STREAM_END)
            g->ended = 1;
        else if (z == Z_MEM_ERROR)
            return amtl_error(st, AMTL_ENOMEM, "out of memory reading '%s'", r->name);
        else if (z != Z_OK && z != Z_BUF_ERROR) /* Z_BUF_ERROR: wants more input */
            return amtl_error(st, AMTL_EDATA, "cannot read '%s': bad gzip data (%s)",
                              r->name, g->zs.msg ? g->zs.msg : "inflate failed");
        size_t out = READ_CHUNK - g->zs.avail_out;
        if (out) {
            r->buf_len = out;
            r->buf_pos = 0;
            return 1;
        }
    }
}

static int fill(amtl_csv *r, amtl_status *st)
{
    if (r->eof)
        return 0;
    int k;
    if (r->gz) {
        k = gz_fill(r, st);
    } else {
        size_t n;
        if (read_raw(r, r->buf, READ_CHUNK, &n, st))
            return -1;
        if (!r->started && n >= 2 && r->buf[0] == 0x1f && r->buf[1] == 0x8b) {
            if (gz_start(r, n, st))
                return -1;
            k = gz_fill(r, st);
        } else {
            r->buf_len = n;
            r->buf_pos = 0;
            k = n > 0;
        }
    }
    if (k < 0)
        return -1;
    if (k == 0) {
        r->eof = 1;
        return 0;
    }
    if (!r->started) {
        r->started = 1;
        if (r->buf_len >= 3 && r->buf[0] == 0xef && r->buf[1] == 0xbb && r->buf[2] == 0xbf)
            r->buf_pos = 3;
    }
    return 1;
}

static inline int getch(amtl_csv *r, amtl_status *st)
{
    while (r->buf_pos == r->buf_len) {
        int k = fill(r, st);
        if (k < 0)
            return CH_ERR;
        if (k == 0)
            return CH_EOF;
    }
    return r->buf[r->buf_pos++];
}

static inline int peekch(amtl_csv *r, amtl_status *st)
{
    int c = getch(r, st);
    if (c >= 0)
        r->buf_pos--;
    return c;
}

static int grow_rec(amtl_csv *r, size_t need, amtl_status *st)
{
    if (need <= r->rec_cap)
        return 0;
    if (need > AMTL_CSV_MAX_RECORD)
        return amtl_csv_error(r, st, r->n_fields + 1,
                              "record longer than %u MiB (not a CSV file?)",
                              AMTL_CSV_MAX_RECORD >> 20);
    size_t cap = r->rec_cap * 2;
    while (cap < need)
        cap *= 2;
    char *p = realloc(r->rec, cap);
    if (!p)
        return amtl_error(st, AMTL_ENOMEM, "out of memory reading '%s'", r->name);
    r->rec = p;
    r->rec_cap = cap;
    return 0;
}

static inline int put(amtl_csv *r, int c, amtl_status *st)
{
    if (r->rec_len + 1 >= r->rec_cap && grow_rec(r, r->rec_len + 2, st))
        return -1;
    r->rec[r->rec_len++] = (char)c;
    return 0;
}

static int is_blank(const amtl_csv *r, int c)
{
    return r->trim && (c == ' ' || c == '\t') && c != r->delim;
}

/* Ends the current field; an unquoted one loses its trailing blanks when
 * trimming (a quoted one never had any put: see S_AFTER_QUOTE). */
static int end_field(amtl_csv *r, size_t *fstart, int unquoted, amtl_status *st)
{
    if (unquoted)
        while (r->rec_len > *fstart && is_blank(r, r->rec[r->rec_len - 1]))
            r->rec_len--;
    if (r->n_fields == r->cap_fields) {
        int cap = r->cap_fields * 2;
        size_t *o = realloc(r->off, sizeof *o * (size_t)cap);
        if (o)
            r->off = o;
        size_t *l = o ? realloc(r->len, sizeof *l * (size_t)cap) : NULL;
        if (!o || !l)
            return amtl_error(st, AMTL_ENOMEM, "out of memory reading '%s'", r->name);
        r->len = l;
        r->cap_fields = cap;
    }
    r->off[r->n_fields] = *fstart;
    r->len[r->n_fields] = r->rec_len - *fstart;
    r->n_fields++;
    if (put(r, '\0', st))
        return -1;
    *fstart = r->rec_len;
    return 0;
}

static int is_binary_byte(int c)
{
    return c < 0x20 && c != '\t' && c != '\n' && c != '\r';
}

static int binary_error(amtl_csv *r, amtl_status *st, int c)
{
    return amtl_csv_error(r, st, r->n_fields + 1,
                          "control byte 0x%02x: not a text file", (unsigned)c);
}

/* After a CR outside quotes: a line end when LF or the end follows. */
static int cr_ends_line(amtl_csv *r, amtl_status *st)
{
    int d = peekch(r, st);
    if (d == CH_ERR)
        return -1;
    if (d == '\n')
        r->buf_pos++;
    else if (d != CH_EOF)
        return binary_error(r, st, '\r');
    r->next_line++;
    return 1;
}

/* Outside quotes: 1 when c ends the line (LF; CR before LF or the end), 0
 * when it is no line break, -1 on error. */
static int ends_line(amtl_csv *r, int c, amtl_status *st)
{
    if (c == '\n') {
        r->next_line++;
        return 1;
    }
    return c == '\r' ? cr_ends_line(r, st) : 0;
}

int amtl_csv_next(amtl_csv *r, amtl_status *st)
{
    for (;;) {
        r->line = r->next_line;
        r->rec_len = 0;
        r->n_fields = 0;
        size_t fstart = 0;
        int state = S_START, any = 0;
        long quote_line = 0;
        int brk;
        for (;;) {
            int c = getch(r, st);
            if (c == CH_ERR)
                return -1;
            if (c == CH_EOF) {
                if (state == S_QUOTED)
                    return amtl_error(st, AMTL_EDATA,
                                      "%s:%ld:%d: unterminated quoted field",
                                      r->name, quote_line, r->n_fields + 1);
                if (!any)
                    return 0;
                goto end_record;
            }
            switch (state) {
            case S_START:
                if (is_blank(r, c))
                    continue;
                if (c == '"') {
                    state = S_QUOTED;
                    quote_line = r->next_line;
                    any = 1;
                    continue;
                }
                state = S_UNQUOTED;
                /* fall through */
            case S_UNQUOTED:
                if (c == r->delim) {
                    if (end_field(r, &fstart, 1, st))
                        return -1;
                    state = S_START;
                    any = 1;
                } else if ((brk = ends_line(r, c, st)) != 0) {
                    if (brk < 0)
                        return -1;
                    goto end_record;
                } else if (is_binary_byte(c)) {
                    return binary_error(r, st, c);
                } else {
                    if (put(r, c, st))
                        return -1;
                    any = 1;
                }
                continue;
            case S_QUOTED:
                if (c == '"') {
                    int d = peekch(r, st);
                    if (d == CH_ERR)
                        return -1;
                    if (d == '"') {
                        r->buf_pos++;
                        if (put(r, '"', st))
                            return -1;
                    } else {
                        state = S_AFTER_QUOTE;
                    }
                    continue;
                }
                if (c == '\0')
                    return binary_error(r, st, c);
                if (c == '\n')
                    r->next_line++;
                if (put(r, c, st))
                    return -1;
                continue;
            case S_AFTER_QUOTE:
                if (is_blank(r, c))
                    continue;
                if (c == r->delim) {
                    if (end_field(r, &fstart, 0, st))
                        return -1;
                    state = S_START;
                } else if ((brk = ends_line(r, c, st)) != 0) {
                    if (brk < 0)
                        return -1;
                    goto end_record;
                } else {
                    return amtl_csv_error(r, st, r->n_fields + 1,
                                          "unexpected '%c' after a closing quote",
                                          is_binary_byte(c) || c >= 0x7f ? '?' : c);
                }
                continue;
            }
        }
    end_record:
        if (!any)
            continue; /* a blank line */
        if (end_field(r, &fstart, state == S_UNQUOTED, st))
            return -1;
        return 1;
    }
}

static const char *skip_spaces(const char *s)
{
    while (*s == ' ')
        s++;
    return s;
}

int amtl_csv_parse_double(const char *s, double *out)
{
    s = skip_spaces(s);
    /* Plain decimal notation only: strtod would also take hex, "inf", "nan". */
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!(*p >= '0' && *p <= '9') && !(*p == '.' && p[1] >= '0' && p[1] <= '9'))
        return -1;
    if (strpbrk(p, "xXpP"))
        return -1;
    char *end;
    double v = strtod(s, &end);
    if (end == s)
        return -1;
    end = (char *)skip_spaces(end);
    if (*end != '\0' || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int amtl_csv_parse_long(const char *s, long long *out)
{
    s = skip_spaces(s);
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!(*p >= '0' && *p <= '9'))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno)
        return -1;
    end = (char *)skip_spaces(end);
    if (*end != '\0')
        return -1;
    *out = v;
    return 0;
}
