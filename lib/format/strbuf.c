/* strbuf.c — a growable text buffer and the JSON string and number writers
 * the text outputs share (see strbuf.h).
 */
#include "format/strbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void amtl_strbuf_printf(amtl_strbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    size_t room = b->cap - b->len;
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n >= room) {
        size_t need = b->len + (size_t)n + 1, cap = b->cap ? b->cap : 256;
        while (cap < need && cap <= SIZE_MAX / 2)
            cap *= 2;
        char *p = cap >= need ? realloc(b->data, cap) : NULL;
        if (p) {
            b->data = p;
            b->cap = cap;
            vsnprintf(b->data + b->len, cap - b->len, fmt, again);
        } else {
            n = -1;
        }
    }
    va_end(again);
    if (n < 0) {
        b->failed = 1;
        if (b->data)
            b->data[b->len] = '\0'; /* undo a partial write past the old end */
        return;
    }
    b->len += (size_t)n;
}

void amtl_strbuf_free(amtl_strbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

int amtl_utf8_len(const unsigned char *p)
{
    unsigned char ch = p[0];
    int len = ch < 0x80 ? 1 : ch >= 0xf0 ? (ch <= 0xf4 ? 4 : 0) : ch >= 0xe0 ? 3 : ch >= 0xc2 ? 2 : 0;
    for (int i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (len == 3 && ((ch == 0xe0 && p[1] < 0xa0) || (ch == 0xed && p[1] >= 0xa0)))
        return 0;
    if (len == 4 && ((ch == 0xf0 && p[1] < 0x90) || (ch == 0xf4 && p[1] >= 0x90)))
        return 0;
    return len;
}

void amtl_strbuf_json_str(amtl_strbuf *o, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    amtl_strbuf_printf(o, "\"");
    while (*p) {
        int len = amtl_utf8_len(p);
        if (*p == '"' || *p == '\\')
            amtl_strbuf_printf(o, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            amtl_strbuf_printf(o, "\\u%04x", *p);
        else if (len)
            amtl_strbuf_printf(o, "%.*s", len, (const char *)p);
        else
            amtl_strbuf_printf(o, "\\ufffd");
        p += len ? len : 1;
    }
    amtl_strbuf_printf(o, "\"");
}

void amtl_strbuf_json_num(amtl_strbuf *o, double v, int decimals)
{
    if (isfinite(v))
        amtl_strbuf_printf(o, "%.*f", decimals, v);
    else
        amtl_strbuf_printf(o, "null");
}

void amtl_json_str(FILE *f, const char *s)
{
    amtl_strbuf b = {0};
    amtl_strbuf_json_str(&b, s);
    if (!b.failed && b.data)
        fputs(b.data, f);
    amtl_strbuf_free(&b);
}

void amtl_json_num(FILE *f, double v, int decimals)
{
    if (isfinite(v))
        fprintf(f, "%.*f", decimals, v);
    else
        fputs("null", f);
}
