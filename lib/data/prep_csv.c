/* prep_csv.c — processed and plain CSV files into an amtl_prep_table (see
 * prep_csv.h): the header decides the fields (a processed CSV's typed names,
 * or the config's lists for a plain one), later files must have the same
 * columns, and every record becomes a row.
 */
#include "data/prep_csv.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/progress.h"
#include "data/cross.h"
#include "data/csv.h"
#include "data/dataset.h"
#include "data/label.h"

enum { COL_IGNORE = 0, COL_SPARSE, COL_DENSE, COL_LABEL };

typedef struct {
    char **names;
    int *kinds;
    int n, cap;
} field_list;

static void field_list_free(field_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    free(l->kinds);
    memset(l, 0, sizeof *l);
}

static int field_list_add(field_list *l, const char *name, size_t len, int kind,
                          amtl_status *st)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        char **n = realloc(l->names, sizeof *n * (size_t)cap);
        if (n)
            l->names = n;
        int *k = n ? realloc(l->kinds, sizeof *k * (size_t)cap) : NULL;
        if (!k)
            return amtl_error(st, AMTL_ENOMEM, "out of memory");
        l->kinds = k;
        l->cap = cap;
    }
    if (!(l->names[l->n] = strndup(name, len)))
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    l->kinds[l->n++] = kind;
    return 0;
}

static const char *kind_word(int kind)
{
    return kind == COL_SPARSE ? "token" : kind == COL_DENSE ? "float" : "label";
}

/* Reads the header of a processed CSV into (name, kind) per column; columns
 * without a known ":type" suffix are an error. */
static int processed_header(amtl_csv *r, field_list *cols, amtl_status *st)
{
    for (int c = 0; c < r->n_fields; c++) {
        const char *h = amtl_csv_field(r, c);
        const char *colon = strrchr(h, ':');
        if (!colon)
            return amtl_csv_error(r, st, c + 1,
                                  "column '%s' has no type (name:token, name:float or "
                                  "name:label; a plain CSV needs --format csv and the "
                                  "column lists)", h);
        const char *type = colon + 1;
        int kind = !strcmp(type, "token")   ? COL_SPARSE
                   : !strcmp(type, "float") ? COL_DENSE
                   : !strcmp(type, "label") ? COL_LABEL
                                            : COL_IGNORE;
        if (kind == COL_IGNORE)
            return amtl_csv_error(r, st, c + 1,
                                  "column '%s': unknown type '%s' (token, float or label)",
                                  h, type);
        if (colon == h)
            return amtl_csv_error(r, st, c + 1, "column '%s' has an empty name", h);
        if (field_list_add(cols, h, (size_t)(colon - h), kind, st))
            return -1;
    }
    return 0;
}

/* A plain CSV: every header name as is; the config says which are what. */
static int plain_header(amtl_csv *r, field_list *cols, amtl_status *st)
{
    for (int c = 0; c < r->n_fields; c++)
        if (field_list_add(cols, amtl_csv_field(r, c), amtl_csv_field_len(r, c),
                           COL_IGNORE, st))
            return -1;
    return 0;
}

static int find_name(const field_list *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->names[i], name))
            return i;
    return -1;
}

typedef struct {
    const amtl_config *cfg;
    int plain;
    char delim;
    const char *first;  /* the first input, which defines the columns */
    field_list fields;  /* the table's fields, in order: sparse, dense, labels */
    field_list sources; /* [fields.n] the column each field is read from */
    amtl_prep_label *labels; /* [cfg->labels.n] a plain CSV's labels, parsed */
    int64_t *hits;      /* [cfg->labels.n] rows where a derived label is 1 */
    amtl_crosses crosses; /* made after the fields read (the table's last sparse fields) */
    const char **tok;   /* [fields.n] a row's raw sparse values, for the crosses */
    size_t *tok_len;
} csv_job;

static void csv_job_free(csv_job *job)
{
    field_list_free(&job->fields);
    field_list_free(&job->sources);
    for (int k = 0; job->labels && k < job->cfg->labels.n; k++)
        amtl_prep_label_free(&job->labels[k]);
    free(job->labels);
    free(job->hits);
    amtl_crosses_free(&job->crosses);
    free(job->tok);
    free(job->tok_len);
}

static int strlist_has(const amtl_strlist *l, const char *s)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->items[i], s))
            return 1;
    return 0;
}

/* A plain CSV's labels from the config; a label derived from a column must
 * not have that column as a feature too (it would give the answer away). */
static int parse_labels(csv_job *job, amtl_status *st)
{
    const amtl_config *cfg = job->cfg;
    int T = cfg->labels.n;
    job->labels = calloc((size_t)T, sizeof *job->labels);
    job->hits = calloc((size_t)T, sizeof *job->hits);
    if (!job->labels || !job->hits)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    for (int k = 0; k < T; k++) {
        amtl_prep_label *l = &job->labels[k];
        if (amtl_prep_label_parse(l, cfg->labels.items[k], st))
            return -1;
        const char *in = strlist_has(&cfg->sparse, l->column) ? "sparse"
                         : strlist_has(&cfg->dense, l->column) ? "dense"
                                                                : NULL;
        if (l->n_values && in)
            return amtl_error(st, AMTL_EUSAGE,
                              "key 'labels': label '%s' comes from column '%s', which is "
                              "a feature too (in '%s')", l->task, l->column, in);
    }
    return 0;
}

/* Builds the table's field list from the first file's header. */
static int define_fields(csv_job *job, amtl_csv *r, const field_list *cols,
                         amtl_prep_table *t, amtl_status *st)
{
    field_list *fl = &job->fields, *src = &job->sources;
    if (job->plain) {
        const amtl_strlist *lists[3] = {&job->cfg->sparse, &job->cfg->dense,
                                        &job->cfg->labels};
        const char *what[3] = {"sparse", "dense", "labels"};
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < lists[k]->n; i++) {
                const char *name = k < 2 ? lists[k]->items[i] : job->labels[i].task;
                const char *col = k < 2 ? name : job->labels[i].column;
                if (find_name(cols, col) < 0)
                    return amtl_csv_error(r, st, 1, "no column '%s' (%s) in the header",
                                          col, what[k]);
                if (find_name(fl, name) >= 0) {
                    if (k < 2 || !job->labels[i].n_values)
                        return amtl_error(st, AMTL_EUSAGE,
                                          "column '%s' is listed twice in the config", name);
                    return amtl_error(st, AMTL_EUSAGE,
                                      "key 'labels': label '%s' has the name of another "
                                      "field", name);
                }
                if (field_list_add(fl, name, strlen(name), COL_SPARSE + k, st) ||
                    field_list_add(src, col, strlen(col), COL_SPARSE + k, st))
                    return -1;
            }
    } else {
        for (int kind = COL_SPARSE; kind <= COL_LABEL; kind++)
            for (int c = 0; c < cols->n; c++)
                if (cols->kinds[c] == kind &&
                    (field_list_add(fl, cols->names[c], strlen(cols->names[c]), kind, st) ||
                     field_list_add(src, cols->names[c], strlen(cols->names[c]), kind, st)))
                    return -1;
        int n_label = 0, n_feat = 0;
        for (int i = 0; i < fl->n; i++) {
            if (fl->kinds[i] == COL_LABEL)
                n_label++;
            else
                n_feat++;
        }
        if (n_label == 0)
            return amtl_csv_error(r, st, 1, "no label column (name:label) in the header");
        if (n_feat == 0)
            return amtl_csv_error(r, st, 1,
                                  "no feature column (name:token or name:float) in the "
                                  "header");
    }
    /* fl is ordered sparse, dense, labels */
    int N = 0, D = 0, T = 0;
    for (int i = 0; i < fl->n; i++) {
        N += fl->kinds[i] == COL_SPARSE;
        D += fl->kinds[i] == COL_DENSE;
        T += fl->kinds[i] == COL_LABEL;
    }
    const char *const *names = (const char *const *)fl->names;
    const amtl_strlist *cx = &job->cfg->crosses;
    if (amtl_crosses_init(&job->crosses, (const char *const *)cx->items, cx->n, names, N, 0,
                          "key 'crosses'", st))
        return amtl_error_context(st, "%s", r->name);
    /* the sparse fields: those read, then the crosses */
    const char **sparse = malloc(sizeof *sparse * (size_t)(N + cx->n + 1));
    job->tok = calloc((size_t)N + 1, sizeof *job->tok);
    job->tok_len = calloc((size_t)N + 1, sizeof *job->tok_len);
    if (!sparse || !job->tok || !job->tok_len) {
        free(sparse);
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    }
    memcpy(sparse, names, sizeof *sparse * (size_t)N);
    for (int i = 0; i < cx->n; i++)
        sparse[N + i] = cx->items[i];
    int rc = amtl_prep_table_init(t, N + cx->n, sparse, D, names + N, T, names + N + D, st);
    free(sparse);
    if (rc)
        return amtl_error_context(st, "%s", r->name);
    if (cx->n) {
        char *list = amtl_dataset_join_names(cx->items, cx->n);
        if (!list)
            return amtl_error(st, AMTL_ENOMEM, "out of memory");
        rc = amtl_prep_table_set_meta(t, "crosses", list, st);
        free(list);
    }
    return rc;
}

/* 1 when the value is one of a derived label's values. */
static int label_hit(const amtl_prep_label *l, const char *v, size_t len)
{
    for (int j = 0; j < l->n_values; j++)
        if (strlen(l->values[j]) == len && !memcmp(l->values[j], v, len))
            return 1;
    return 0;
}

static int read_one_csv(csv_job *job, amtl_prep_table *t, const char *path,
                        int split, int first, amtl_status *st)
{
    amtl_csv r;
    amtl_progress prog = {0};
    field_list cols = {0};
    int *src = NULL, *idx = NULL;
    uint8_t *used = NULL;
    int rc = -1;
    if (amtl_csv_open(&r, path, job->delim, st))
        return -1;
    r.trim = job->cfg->trim;
    int k = amtl_csv_next(&r, st);
    if (k < 0)
        goto out;
    if (k == 0) {
        amtl_csv_error(&r, st, 1, "empty file");
        goto out;
    }
    if ((job->plain ? plain_header : processed_header)(&r, &cols, st))
        goto out;
    if (first && define_fields(job, &r, &cols, t, st))
        goto out;
    /* a plain CSV may repeat the name of a column it does not use */
    for (int c = 0; c < cols.n; c++) {
        int j = find_name(&cols, cols.names[c]);
        if (j != c && (!job->plain || find_name(&job->sources, cols.names[c]) >= 0)) {
            amtl_csv_error(&r, st, c + 1, "duplicate column '%s' (also column %d)",
                           cols.names[c], j + 1);
            goto out;
        }
    }
    /* each field's column, found by name; idx: its index within its kind */
    const field_list *fl = &job->fields;
    src = calloc((size_t)fl->n + 1, sizeof *src);
    idx = calloc((size_t)fl->n + 1, sizeof *idx);
    used = calloc((size_t)cols.n + 1, 1);
    if (!src || !idx || !used) {
        amtl_error(st, AMTL_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0, a = 0, b = 0, c = 0; i < fl->n; i++) {
        idx[i] = fl->kinds[i] == COL_SPARSE  ? a++
                 : fl->kinds[i] == COL_DENSE ? b++
                                             : c++;
        int col = find_name(&cols, job->sources.names[i]);
        if (col < 0) {
            if (job->plain)
                amtl_csv_error(&r, st, 1, "no column '%s' in the header",
                               job->sources.names[i]);
            else
                amtl_csv_error(&r, st, 1, "no column '%s:%s' in the header", fl->names[i],
                               kind_word(fl->kinds[i]));
            goto out;
        }
        if (!job->plain && cols.kinds[col] != fl->kinds[i]) {
            amtl_csv_error(&r, st, col + 1, "column '%s' is :%s here but :%s in '%s'",
                           fl->names[i], kind_word(cols.kinds[col]),
                           kind_word(fl->kinds[i]), job->first);
            goto out;
        }
        src[i] = col;
        used[col] = 1;
    }
    for (int c = 0; !job->plain && c < cols.n; c++)
        if (!used[c]) {
            amtl_csv_error(&r, st, c + 1, "column '%s' is not in '%s'", cols.names[c],
                           job->first);
            goto out;
        }

    amtl_progress_start(&prog, amtl_prep_basename(path), r.size);
    long limit = job->cfg->limit;
    int64_t n_rows = 0;
    for (;;) {
        if (limit > 0 && n_rows >= limit)
            break;
        k = amtl_csv_next(&r, st);
        if (k < 0)
            goto out;
        if (k == 0)
            break;
        if (r.n_fields != cols.n) {
            int col = (r.n_fields < cols.n ? r.n_fields : cols.n) + 1;
            amtl_csv_error(&r, st, col, "expected %d fields (as the header), found %d",
                           cols.n, r.n_fields);
            goto out;
        }
        int64_t row = amtl_prep_table_add_row(t, split, st);
        if (row < 0)
            goto out;
        for (int i = 0; i < fl->n; i++) {
            int c = src[i], j = idx[i];
            const char *v = amtl_csv_field(&r, c);
            size_t vlen = amtl_csv_field_len(&r, c);
            double x;
            switch (fl->kinds[i]) {
            case COL_SPARSE: {
                int32_t id = amtl_prep_table_intern(t, j, v, vlen, st);
                if (id < 0)
                    goto out;
                t->raw[j][row] = id;
                job->tok[j] = v;
                job->tok_len[j] = vlen;
                break;
            }
            case COL_DENSE:
                if (amtl_csv_parse_double(v, &x)) {
                    amtl_csv_error(&r, st, c + 1, "'%s' is not a number (column '%s')", v,
                                   cols.names[c]);
                    goto out;
                }
                /* stored as f32: a larger value would become infinite */
                if (fabs(x) > FLT_MAX) {
                    amtl_csv_error(&r, st, c + 1, "'%s' is too large for a float (column '%s')",
                                   v, cols.names[c]);
                    goto out;
                }
                t->dense[j][row] = (float)x;
                break;
            case COL_LABEL:
                if (job->plain && job->labels[j].n_values) {
                    int hit = label_hit(&job->labels[j], v, vlen);
                    t->labels[j][row] = (uint8_t)hit;
                    job->hits[j] += hit;
                    break;
                }
                if (amtl_csv_parse_double(v, &x) || (x != 0.0 && x != 1.0)) {
                    amtl_csv_error(&r, st, c + 1, "label '%s' is '%s', expected 0 or 1",
                                   cols.names[c], v);
                    goto out;
                }
                t->labels[j][row] = (uint8_t)x;
                break;
            default:
                break;
            }
        }
        for (int x = 0, N0 = t->N - job->crosses.n; x < job->crosses.n; x++) {
            const char *v;
            size_t vlen;
            int32_t id = -1;
            if (amtl_cross_value(&job->crosses, x, job->tok, job->tok_len, &v, &vlen) == 0)
                id = amtl_prep_table_intern(t, N0 + x, v, vlen, st);
            else
                amtl_error(st, AMTL_ENOMEM, "out of memory");
            if (id < 0)
                goto out;
            t->raw[N0 + x][row] = id;
        }
        if ((++n_rows & 0xffff) == 0)
            amtl_progress_update(&prog, r.bytes, NULL);
    }
    rc = 0;
out:
    amtl_progress_finish(&prog);
    free(src);
    free(idx);
    free(used);
    field_list_free(&cols);
    amtl_csv_close(&r);
    return rc;
}

/* A derived label that no row has is almost surely a misspelt value. */
static int check_hits(const csv_job *job, amtl_status *st)
{
    for (int k = 0; job->plain && k < job->cfg->labels.n; k++) {
        const amtl_prep_label *l = &job->labels[k];
        if (l->n_values && job->hits[k] == 0)
            return amtl_error(st, AMTL_EDATA,
                              "label '%s': no row has '%s' equal to '%s' (values compare "
                              "exactly; several are written a|b)",
                              l->task, l->column,
                              strstr(job->cfg->labels.items[k], "==") + 2);
    }
    return 0;
}

int amtl_prep_read_csv(amtl_prep_table *t, const amtl_config *cfg,
                       const char *const *inputs, int n_inputs, amtl_status *st)
{
    memset(t, 0, sizeof *t);
    csv_job job = {.cfg = cfg, .first = inputs[0]};
    job.plain = cfg->format && !strcmp(cfg->format, "csv");
    const char *fmt = job.plain ? "csv" : "processed";
    if (n_inputs < 1 || n_inputs > 3)
        return amtl_error(st, AMTL_EUSAGE,
                          "a %s CSV takes one, two (train, test) or three (train, val, "
                          "test) input files, not %d", fmt, n_inputs);
    if (job.plain && cfg->labels.n == 0)
        return amtl_error(st, AMTL_EUSAGE,
                          "format csv needs the column lists: at least 'labels' (and "
                          "'sparse', 'dense') in the config");
    if (amtl_prep_delimiter(cfg, &job.delim, st) || (job.plain && parse_labels(&job, st)))
        goto fail;
    static const int splits[3][3] = {
        {AMTL_PREP_AUTO},
        {AMTL_PREP_AUTO_TRAINVAL, AMTL_SPLIT_TEST},
        {AMTL_SPLIT_TRAIN, AMTL_SPLIT_VAL, AMTL_SPLIT_TEST}};
    for (int i = 0; i < n_inputs; i++) {
        if (read_one_csv(&job, t, inputs[i], splits[n_inputs - 1][i], i == 0, st))
            goto fail;
        if (i == 0 && amtl_prep_set_source(t, fmt, inputs, n_inputs, st))
            goto fail;
    }
    if (check_hits(&job, st))
        goto fail;
    csv_job_free(&job);
    return 0;
fail:
    csv_job_free(&job);
    amtl_prep_table_free(t);
    return -1;
}
