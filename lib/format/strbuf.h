/* strbuf.h — a growable text buffer for the JSON, DOT and TSV outputs, and
 * JSON strings and numbers written into it or straight to a stream.
 */
#ifndef AMTL_STRBUF_H
#define AMTL_STRBUF_H

#include <stddef.h>
#include <stdio.h>

/* A growable text buffer for JSON/DOT/TSV outputs written atomically. */
typedef struct {
    char *data;
    size_t len, cap;
    int failed;  /* set when an allocation failed; later appends are ignored */
} amtl_strbuf;
void amtl_strbuf_printf(amtl_strbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void amtl_strbuf_free(amtl_strbuf *b);

/* Bytes of the UTF-8 sequence at p (1-4), or 0 when it is not valid UTF-8
 * (overlong forms and surrogates included). */
int amtl_utf8_len(const unsigned char *p);
/* JSON: a string with quotes, backslashes and control characters escaped
 * and bytes that are not UTF-8 replaced by U+FFFD (the output stays valid
 * JSON whatever a header or file name holds), and a number with `decimals`
 * decimals, or null when it is not finite. */
void amtl_strbuf_json_str(amtl_strbuf *b, const char *s);
void amtl_strbuf_json_num(amtl_strbuf *b, double v, int decimals);
/* The same straight to a stream. */
void amtl_json_str(FILE *f, const char *s);
void amtl_json_num(FILE *f, double v, int decimals);

#endif
