/* cross.c — crossed sparse fields (cross.h). */
#include "data/cross.h"

#include <stdlib.h>
#include <string.h>

static int find(const char *const *names, int n, const char *s, size_t len)
{
    for (int i = 0; i < n; i++)
        if (strlen(names[i]) == len && !memcmp(names[i], s, len))
            return i;
    return -1;
}

static int in_specs(const char *const *specs, int n, const char *s, size_t len)
{
    return find(specs, n, s, len) >= 0;
}

/* 1 when cross x reads field f */
static int reads(const amtl_cross *x, int f)
{
    for (int k = 0; k < x->n; k++)
        if (x->src[k] == f)
            return 1;
    return 0;
}

int amtl_crosses_init(amtl_crosses *c, const char *const *specs, int n_specs,
                      const char *const *sparse, int N, int made, const char *what,
                      amtl_status *st)
{
    memset(c, 0, sizeof *c);
    if (n_specs == 0)
        return 0;
    /* a bad list is the configuration's fault, or (made) the file's */
    int bad = made ? AMTL_EDATA : AMTL_EUSAGE;
    c->x = calloc((size_t)n_specs, sizeof *c->x);
    if (!c->x)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    for (int i = 0; i < n_specs; i++) {
        const char *spec = specs[i];
        amtl_cross *x = &c->x[c->n];
        if (in_specs(specs, i, spec, strlen(spec))) {
            amtl_error(st, bad, "%s: '%s' is listed twice", what, spec);
            goto fail;
        }
        if (!strchr(spec, '*')) {
            amtl_error(st, bad,
                       "%s: '%s' names one field; a cross is two or more joined by '*'",
                       what, spec);
            goto fail;
        }
        int is_field = find(sparse, N, spec, strlen(spec)) >= 0;
        if (made != is_field) {
            amtl_error(st, bad,
                       made ? "%s: cross '%s' is not a sparse field"
                            : "%s: cross '%s' has the name of a sparse field",
                       what, spec);
            goto fail;
        }
        x->name = strdup(spec);
        if (!x->name) {
            amtl_error(st, AMTL_ENOMEM, "out of memory");
            goto fail;
        }
        c->n++;
        for (const char *p = spec;;) {
            const char *e = strchr(p, '*');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            int f = in_specs(specs, n_specs, p, len) ? -1 : find(sparse, N, p, len);
            if (f < 0) {
                amtl_error(st, bad, "%s: '%s': '%.*s' is not a sparse field%s", what,
                           spec, (int)len, p, len ? "" : " (an empty name)");
                goto fail;
            }
            if (reads(x, f)) {
                amtl_error(st, bad, "%s: '%s' names '%s' twice", what, spec, sparse[f]);
                goto fail;
            }
            if (x->n == AMTL_CROSS_MAX) {
                amtl_error(st, bad, "%s: '%s' crosses more than %d fields", what,
                           spec, AMTL_CROSS_MAX);
                goto fail;
            }
            x->src[x->n++] = f;
            if (!e)
                break;
            p = e + 1;
        }
        /* the same fields in another order would be the same field twice */
        for (int j = 0; j < c->n - 1; j++) {
            const amtl_cross *y = &c->x[j];
            int same = y->n == x->n;
            for (int k = 0; same && k < x->n; k++)
                same = reads(y, x->src[k]);
            if (same) {
                amtl_error(st, bad, "%s: '%s' crosses the fields of '%s'", what, spec, y->name);
                goto fail;
            }
        }
    }
    return 0;
fail:
    amtl_crosses_free(c);
    return -1;
}

int amtl_crosses_init_meta(amtl_crosses *c, const char *meta, const char *const *sparse,
                           int N, const char *what, amtl_status *st)
{
    memset(c, 0, sizeof *c);
    if (!meta || !*meta)
        return 0;
    char *copy = strdup(meta);
    int n = 1;
    for (const char *p = meta; *p; p++)
        n += *p == '\n';
    const char **specs = malloc(sizeof *specs * (size_t)n);
    if (!copy || !specs) {
        free(copy);
        free(specs);
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    }
    n = 0;
    for (char *p = copy;;) {
        specs[n++] = p;
        char *e = strchr(p, '\n');
        if (!e)
            break;
        *e = '\0';
        p = e + 1;
    }
    int rc = amtl_crosses_init(c, specs, n, sparse, N, 1, what, st);
    free(specs);
    free(copy);
    return rc;
}

void amtl_crosses_free(amtl_crosses *c)
{
    for (int i = 0; c->x && i < c->n; i++)
        free(c->x[i].name);
    free(c->x);
    free(c->buf);
    memset(c, 0, sizeof *c);
}

int amtl_crosses_has(const amtl_crosses *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->x[i].name, name))
            return 1;
    return 0;
}

int amtl_cross_value(amtl_crosses *c, int i, const char *const *tok, const size_t *len,
                     const char **out, size_t *out_len)
{
    const amtl_cross *x = &c->x[i];
    size_t need = 0;
    *out = "";
    *out_len = 0;
    for (int k = 0; k < x->n; k++) {
        if (len[x->src[k]] == 0)
            return 0;
        need += len[x->src[k]] + 1;
    }
    if (need > c->cap) {
        char *b = realloc(c->buf, need);
        if (!b)
            return -1;
        c->buf = b;
        c->cap = need;
    }
    size_t at = 0;
    for (int k = 0; k < x->n; k++) {
        if (k)
            c->buf[at++] = AMTL_CROSS_SEP;
        memcpy(c->buf + at, tok[x->src[k]], len[x->src[k]]);
        at += len[x->src[k]];
    }
    *out = c->buf;
    *out_len = at;
    return 0;
}
