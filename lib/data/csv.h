/* csv.h — a streaming CSV record reader for amtl-prep.
 *
 * Reads one record at a time through a fixed read buffer, so memory is
 * bounded by the longest record, never by the file.  Handles RFC 4180 quoted
 * fields (delimiters, doubled quotes and newlines inside quotes), LF and CRLF
 * line ends, a missing final newline and a UTF-8 byte-order mark.  Blank
 * lines are skipped.  Control bytes other than tab, CR and LF outside quoted
 * fields mean the input is not text and are an error.
 *
 * With trim set, spaces and tabs around a value are not part of it (a
 * quoted value keeps the ones inside its quotes), so "a, b" reads as "a" and
 * "b", and a line of spaces is a blank line.
 *
 * Input that starts with the gzip magic bytes is decompressed as it is read
 * (whatever its name, a pipe too; several gzip members one after another are
 * one input); size and bytes then count compressed bytes, so progress still
 * reaches the size at the end.
 *
 * Positions in messages are "FILE:LINE:COL" where LINE is the physical line
 * on which the record starts (1-based) and COL is the 1-based field number.
 */
#ifndef AMTL_CSV_H
#define AMTL_CSV_H

#include <stdint.h>
#include <stdio.h>

#include "base/error.h"

/* Longest record accepted; anything longer is not a sensible CSV row. */
#define AMTL_CSV_MAX_RECORD (16u << 20)

typedef struct {
    FILE *fp;
    int owns_fp;
    void *gz;              /* inflate state when the input is gzip, else NULL */
    char *name;            /* used in messages */
    char delim;
    int trim;              /* strip spaces and tabs around values; set after open */

    unsigned char *buf;    /* read buffer */
    size_t buf_len, buf_pos;
    int eof;

    char *rec;             /* the current record's fields, each NUL-terminated */
    size_t rec_len, rec_cap;
    size_t *off;           /* [n_fields] start of each field in rec */
    size_t *len;           /* [n_fields] length of each field */
    int n_fields, cap_fields;

    long line;             /* line on which the current record starts */
    long next_line;        /* line on which the next record starts */
    int64_t bytes;         /* bytes consumed so far */
    int64_t size;          /* file size, or -1 when unknown */
    int started;           /* the byte-order mark check is done */
} amtl_csv;

/* Opens path for reading (not "-"). */
int amtl_csv_open(amtl_csv *r, const char *path, char delim, amtl_status *st);
/* Reads from an already open stream, which stays the caller's; name is used
 * in messages. */
int amtl_csv_open_stream(amtl_csv *r, FILE *fp, const char *name, char delim,
                         amtl_status *st);
void amtl_csv_close(amtl_csv *r);  /* safe on a zeroed struct */

/* Reads the next record: returns 1 when one was read, 0 at the end of the
 * input, -1 on error with st set ("FILE:LINE:COL: ..."). */
int amtl_csv_next(amtl_csv *r, amtl_status *st);

/* Field i (0-based) of the current record, NUL-terminated. */
static inline const char *amtl_csv_field(const amtl_csv *r, int i)
{
    return r->rec + r->off[i];
}
static inline size_t amtl_csv_field_len(const amtl_csv *r, int i)
{
    return r->len[i];
}

/* Sets st to "FILE:LINE:COL: <message>" for the current record, with col the
 * 1-based field number; returns -1. */
int amtl_csv_error(const amtl_csv *r, amtl_status *st, int col, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

/* Parses a whole field as a finite number (surrounding spaces allowed).
 * Returns 0, or -1 when it is not one. */
int amtl_csv_parse_double(const char *s, double *out);
/* Parses a whole field as a decimal integer.  Returns 0 or -1. */
int amtl_csv_parse_long(const char *s, long long *out);

#endif
