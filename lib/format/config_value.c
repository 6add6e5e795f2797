/* config_value.c — one value of a key: parsed from text (the whole text or
 * nothing), checked against the key's type and stored; the messages name
 * where the value came from (file and line, or the --set option).
 */
#include "format/config_table.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- where a value came from, for messages ---- */

int amtl_cfg_fail(amtl_status *st, int code, const origin *o, int line, const char *fmt, ...)
{
    char body[800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (o->file)
        return amtl_error(st, code, "%s:%d: %s", o->file, line, body);
    return amtl_error(st, code, "--set %s=%s: %s", o->key, o->value, body);
}

int amtl_cfg_oom(amtl_status *st)
{
    return amtl_error(st, AMTL_ENOMEM, "out of memory reading the configuration");
}

/* Optimal string alignment distance (edits plus adjacent swaps), for the
 * "did you mean" hint; long names are simply not compared. */
static int edit_distance(const char *a, const char *b)
{
    enum { MAXLEN = 64 };
    size_t n = strlen(a), m = strlen(b);
    if (n >= MAXLEN || m >= MAXLEN)
        return INT_MAX;
    int d[MAXLEN + 1][MAXLEN + 1];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[n][m];
}

int amtl_cfg_unknown_key(amtl_status *st, const origin *o, int line, const char *name,
                         int with_sections)
{
    const char *best = NULL;
    int best_d = 3; /* hint only within distance 2 */
    for (int i = 0; i < amtl_cfg_n_keys; i++) {
        int d = edit_distance(name, amtl_cfg_keys[i].name);
        if (d < best_d) {
            best_d = d;
            best = amtl_cfg_keys[i].name;
        }
    }
    for (int i = 0; with_sections && i < amtl_cfg_n_sections; i++) {
        int d = edit_distance(name, amtl_cfg_sections[i]);
        if (d < best_d) {
            best_d = d;
            best = amtl_cfg_sections[i];
        }
    }
    if (best)
        return amtl_cfg_fail(st, AMTL_EUSAGE, o, line, "unknown key '%s'; did you mean '%s'?",
                             name, best);
    return amtl_cfg_fail(st, AMTL_EUSAGE, o, line, "unknown key '%s'", name);
}

/* ---- scalar parsing: the whole text or nothing ---- */

static int parse_long(const char *s, long lo, long hi, long *out)
{
    if (!*s || isspace((unsigned char)*s))
        return PARSE_BAD;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end)
        return PARSE_BAD;
    if (errno == ERANGE || v < lo || v > hi)
        return PARSE_RANGE;
    *out = v;
    return PARSE_OK;
}

/* Through double and then float: dump relies on this exact path when it
 * picks the shortest text that reads back to the same float. */
int amtl_cfg_parse_float(const char *s, float *out)
{
    if (!*s || isspace((unsigned char)*s))
        return PARSE_BAD;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end)
        return PARSE_BAD;
    if (errno == ERANGE)
        return PARSE_RANGE;
    if (isnan(v) || isinf(v))
        return PARSE_BAD; /* "nan", "inf": not numbers a setting can use */
    /* from half an ulp above FLT_MAX on, rounding to float gives infinity */
    if (fabs(v) >= ldexp(2.0 - ldexp(1.0, -24), 127) || (v != 0 && (float)v == 0))
        return PARSE_RANGE;
    *out = (float)v;
    return PARSE_OK;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return PARSE_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return PARSE_OK;
        }
    }
    return PARSE_BAD;
}

/* Decodes one UTF-8 sequence; returns its length, 0 when invalid. */
int amtl_cfg_utf8_decode(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    int n;
    uint32_t v, min;
    if ((s[0] & 0xe0) == 0xc0) {
        n = 2, v = s[0] & 0x1f, min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3, v = s[0] & 0x0f, min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4, v = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

static int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp;
        int n = amtl_cfg_utf8_decode(p, &cp);
        if (!n)
            return 0;
        p += n;
    }
    return 1;
}

/* ---- storing values ---- */

void amtl_cfg_free_strlist(amtl_strlist *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

int amtl_cfg_set_scalar(amtl_config *c, const key_def *k, const char *text, const origin *o,
                        int line, amtl_status *st)
{
    long lv;
    float fv;
    int bv, r;
    switch (k->type) {
    case K_INT:
        r = parse_long(text, INT_MIN, INT_MAX, &lv);
        if (r == PARSE_OK)
            *FIELD(c, k, int) = (int)lv;
        break;
    case K_LONG:
        r = parse_long(text, LONG_MIN, LONG_MAX, &lv);
        if (r == PARSE_OK)
            *FIELD(c, k, long) = lv;
        break;
    case K_FLOAT:
        r = amtl_cfg_parse_float(text, &fv);
        if (r == PARSE_OK)
            *FIELD(c, k, float) = fv;
        break;
    case K_BOOL:
        r = parse_bool(text, &bv);
        if (r == PARSE_OK)
            *FIELD(c, k, int) = bv;
        break;
    case K_STRING: {
        if (!utf8_valid(text))
            return amtl_cfg_fail(st, AMTL_EUSAGE, o, line, "key '%s' wants UTF-8 text", k->name);
        char *dup = strdup(text);
        if (!dup)
            return amtl_cfg_oom(st);
        free(*FIELD(c, k, char *));
        *FIELD(c, k, char *) = dup;
        amtl_cfg_mark_given(c, (int)(k - amtl_cfg_keys));
        return 0;
    }
    default:
        return amtl_cfg_fail(st, AMTL_EUSAGE, o, line, "key '%s' wants a list", k->name);
    }
    if (r == PARSE_RANGE)
        return amtl_cfg_fail(st, AMTL_EUSAGE, o, line, "key '%s' wants %s, got '%s' (out of range)",
                             k->name, amtl_cfg_type_want(k->type), text);
    if (r != PARSE_OK)
        return amtl_cfg_fail(st, AMTL_EUSAGE, o, line, "key '%s' wants %s, got '%s'", k->name,
                             amtl_cfg_type_want(k->type), text);
    amtl_cfg_mark_given(c, (int)(k - amtl_cfg_keys));
    return 0;
}

int amtl_cfg_set_list(amtl_config *c, const key_def *k, char *const *items, const int *lines,
                      int n, const origin *o, int line, amtl_status *st)
{
    size_t cap = n > 0 ? (size_t)n : 1;
    for (int i = 0; i < n; i++) {
        int ln = lines ? lines[i] : line;
        int r = PARSE_OK;
        long lv;
        float fv;
        if (k->type == K_INTLIST)
            r = parse_long(items[i], INT_MIN, INT_MAX, &lv);
        else if (k->type == K_FLOATLIST)
            r = amtl_cfg_parse_float(items[i], &fv);
        else if (!items[i][0])
            r = PARSE_BAD;
        else if (!utf8_valid(items[i]))
            return amtl_cfg_fail(st, AMTL_EUSAGE, o, ln, "key '%s' wants UTF-8 text", k->name);
        if (r == PARSE_RANGE)
            return amtl_cfg_fail(st, AMTL_EUSAGE, o, ln,
                                 "key '%s' wants %s, got '%s' (out of range)", k->name,
                                 amtl_cfg_type_want(k->type), items[i]);
        if (r != PARSE_OK)
            return amtl_cfg_fail(st, AMTL_EUSAGE, o, ln, "key '%s' wants %s, got '%s'", k->name,
                                 amtl_cfg_type_want(k->type), items[i]);
    }
    /* every item parses: only allocation can fail from here */
    if (k->type == K_STRLIST) {
        char **v = n ? calloc(cap, sizeof *v) : NULL;
        if (n && !v)
            return amtl_cfg_oom(st);
        for (int i = 0; i < n; i++) {
            if (!(v[i] = strdup(items[i]))) {
                amtl_strlist tmp = {v, i};
                amtl_cfg_free_strlist(&tmp);
                return amtl_cfg_oom(st);
            }
        }
        amtl_strlist *l = FIELD(c, k, amtl_strlist);
        amtl_cfg_free_strlist(l);
        l->items = v;
        l->n = n;
    } else if (k->type == K_FLOATLIST) {
        float *v = n ? malloc(cap * sizeof *v) : NULL;
        if (n && !v)
            return amtl_cfg_oom(st);
        for (int i = 0; i < n; i++)
            amtl_cfg_parse_float(items[i], &v[i]);
        amtl_floatlist *l = FIELD(c, k, amtl_floatlist);
        free(l->items);
        l->items = v;
        l->n = n;
    } else {
        int *v = n ? malloc(cap * sizeof *v) : NULL;
        if (n && !v)
            return amtl_cfg_oom(st);
        for (int i = 0; i < n; i++) {
            long lv = 0;
            parse_long(items[i], INT_MIN, INT_MAX, &lv);
            v[i] = (int)lv;
        }
        amtl_intlist *l = FIELD(c, k, amtl_intlist);
        free(l->items);
        l->items = v;
        l->n = n;
    }
    amtl_cfg_mark_given(c, (int)(k - amtl_cfg_keys));
    return 0;
}
