/* recipes.c — the raw data sets the reference uses (DESIGN.md section 9),
 * each a description that one reader (read_recipe) follows: an interaction
 * log whose lines give some fields and the labels, side tables joined to it
 * by a key field, grouping, a frequency filter and dropping of incomplete
 * rows.  A new data set is a new description in `recipes` (and its name in
 * the config's list of formats, format/config.c).
 *
 * Raw ids are interned straight into the table's per-field maps; grouping
 * keys are the tuples of those provisional values, so a group costs its key
 * bytes plus a few words however long the ids' text is.  Dropped users and
 * items stay in the maps but never reach the output vocabulary, which the
 * table builds from the rows that are kept.
 */
#include "data/recipes.h"

#include <stdlib.h>
#include <string.h>

#include "base/progress.h"
#include "data/csv.h"

/* ---- descriptions --------------------------------------------------------- */

/* A side table: per key, an id of a field the log gives, the values of
 * fields first .. first + n - 1, read from columns named as the fields (the
 * key's too).  The first line of a key wins; a key without a line has 0
 * (missing) for all of them. */
#define MAX_SIDE 2

typedef struct {
    int input;  /* which input file */
    int key;    /* the key's field, one the log gives */
    int first, n;
} side_table;

typedef struct {
    const char *format;       /* amtl-prep's name for it, meta "source" */
    const char *files;        /* the inputs in order, for messages */
    int n_inputs;
    int N, T;                 /* fields: the log's, then the side tables' */
    const char *const *sparse;  /* [N] */
    const char *const *labels;  /* [T]; at most 8 (bits of a byte) */

    /* the log, input 0; its lines give fields 0 .. log_fields - 1 */
    const char *no_header;    /* a log without a header: its columns, "a,b,c" */
    int log_fields;
    const char *const *log_columns; /* [log_fields] NULL: named as the fields */
    int required;             /* fields 0 .. required - 1 must not be empty */

    /* labels: an event column whose value sets a label, or (event NULL) a
     * 0/1 column per label, named as the label */
    const char *event;
    const char *const *events;  /* [n_events] its values; NULL: 0 .. n_events - 1 */
    int n_events;
    const signed char *sets;    /* [n_events] the label each sets, -1 none */
    const char *bad_event[2];   /* the message around an unknown value */

    int group;         /* rows are the groups of equal log fields, labels or'ed */
    int drop_missing;  /* rows with an empty value are dropped (else an empty
                          label is an error) */
    side_table side[MAX_SIDE];
    int n_side;
    int count;              /* the label whose lines the frequency filter of
                               fields 0 and 1 counts; -1 none */
    const char *counted;    /* what it counts, plural */
} recipe;

#define COUNT(a) ((int)(sizeof(a) / sizeof *(a)))
/* the labels a row has seen are the bits of a byte */
#define LABELS_FIT(a) _Static_assert(COUNT(a) <= 8, "more than 8 labels")

static const char *const ub_sparse[] = {"user_id", "item_id", "category"};
static const char *const ub_labels[] = {"click", "buy", "cart", "favourite"};
static const char *const ub_columns[] = {"user", "item", "category"};
static const char *const ub_events[] = {"pv", "buy", "cart", "fav"};
static const signed char ub_sets[] = {0, 1, 2, 3};
LABELS_FIT(ub_labels);

/* UserBehavior (Taobao, 2017): labels are the behaviors a (user, item,
 * category) group holds */
static const recipe userbehavior = {
    .format = "userbehavior", .files = "UserBehavior.csv", .n_inputs = 1,
    .N = COUNT(ub_sparse), .sparse = ub_sparse,
    .T = COUNT(ub_labels), .labels = ub_labels,
    .no_header = "user,item,category,behavior,timestamp",
    .log_fields = 3, .log_columns = ub_columns, .required = 3,
    .event = "behavior", .events = ub_events, .n_events = COUNT(ub_events),
    .sets = ub_sets, .bad_event = {"unknown behavior", "(pv, buy, cart or fav)"},
    .group = 1, .count = 1, .counted = "buys",
};

static const char *const ij_sparse[] = {"user_id", "item_id", "cat_id", "seller_id",
                                        "brand_id", "age_range", "gender"};
static const char *const ij_labels[] = {"purchase", "favourite"};
static const signed char ij_sets[] = {-1, -1, 0, 1}; /* click, cart, purchase, fav */
LABELS_FIT(ij_labels);

/* IJCAI-15 (Tmall repeat buyers): user_log grouped by (user, item, cat,
 * seller, brand), joined with user_info */
static const recipe ijcai15 = {
    .format = "ijcai15", .files = "user_log, user_info", .n_inputs = 2,
    .N = COUNT(ij_sparse), .sparse = ij_sparse,
    .T = COUNT(ij_labels), .labels = ij_labels,
    .log_fields = 5, .required = 2,
    .event = "action_type", .n_events = COUNT(ij_sets), .sets = ij_sets,
    .bad_event = {"action_type", "is not 0, 1, 2 or 3 (click, cart, purchase, favourite)"},
    .group = 1, .side = {{.input = 1, .key = 0, .first = 5, .n = 2}}, .n_side = 1,
    .count = 0, .counted = "purchases",
};

static const char *const kr_sparse[] = {
    "user_id", "video_id", "is_rand", "tab",
    "user_active_degree", "is_lowactive_period", "is_live_streamer",
    "is_video_author", "follow_user_num_range", "fans_user_num_range",
    "friend_user_num_range", "register_days_range",
    "onehot_feat0", "onehot_feat1", "onehot_feat2", "onehot_feat3",
    "onehot_feat4", "onehot_feat5", "onehot_feat6", "onehot_feat7",
    "onehot_feat8", "onehot_feat9", "onehot_feat10", "onehot_feat11",
    "onehot_feat12", "onehot_feat13", "onehot_feat14", "onehot_feat15",
    "onehot_feat16", "onehot_feat17",
    "author_id", "video_type", "music_id", "music_type"};
static const char *const kr_labels[] = {"is_click", "is_like", "is_follow", "is_comment",
                                        "is_forward", "is_hate", "long_view"};
LABELS_FIT(kr_labels);

/* KuaiRand-Pure: log_random joined with user_features (fields 4 .. 29: 8
 * categorical and onehot_feat0..17) and video_features_basic (30 .. 33) */
static const recipe kuairand = {
    .format = "kuairand", .files = "log_random, user_features, video_features_basic",
    .n_inputs = 3, .N = COUNT(kr_sparse), .sparse = kr_sparse,
    .T = COUNT(kr_labels), .labels = kr_labels,
    .log_fields = 4, .drop_missing = 1,
    .side = {{.input = 1, .key = 0, .first = 4, .n = 26},
             {.input = 2, .key = 1, .first = 30, .n = 4}},
    .n_side = 2, .count = -1,
};

static const char *const qb_sparse[] = {"user_id", "item_id", "video_category",
                                        "watching_times", "gender", "age"};
static const char *const qb_labels[] = {"click", "follow", "like", "share"};
LABELS_FIT(qb_labels);

/* QB-Video (Tenrec): one row a line */
static const recipe qbvideo = {
    .format = "qb-video", .files = "QB-video.csv", .n_inputs = 1,
    .N = COUNT(qb_sparse), .sparse = qb_sparse,
    .T = COUNT(qb_labels), .labels = qb_labels,
    .log_fields = 6, .count = 0, .counted = "clicks",
};

static const recipe *const recipes[] = {&userbehavior, &ijcai15, &kuairand, &qbvideo};

/* ---- small growable arrays ---------------------------------------------- */

typedef struct {
    int32_t *v;
    size_t n, cap;
} i32vec;

/* Makes a[i] addressable (zero-filled) for i <= idx. */
static int i32vec_reach(i32vec *a, size_t idx, amtl_status *st)
{
    if (idx < a->n)
        return 0;
    if (idx >= a->cap) {
        size_t cap = a->cap ? a->cap : 1024;
        while (cap <= idx)
            cap *= 2;
        int32_t *p = realloc(a->v, sizeof *p * cap);
        if (!p)
            return amtl_error(st, AMTL_ENOMEM, "out of memory");
        a->v = p;
        a->cap = cap;
    }
    memset(a->v + a->n, 0, sizeof *a->v * (idx + 1 - a->n));
    a->n = idx + 1;
    return 0;
}

/* a[i], 0 where a does not reach */
static int32_t i32vec_at(const i32vec *a, size_t i)
{
    return i < a->n ? a->v[i] : 0;
}

/* ---- the rows a log gives -------------------------------------------------- */

/* Per row the log fields' provisional ids and the labels seen; in a grouped
 * recipe a row is a group of lines with equal ids. */
typedef struct {
    amtl_strmap keys;   /* tuple bytes -> row (grouped only) */
    i32vec ids;         /* [rows * width] */
    uint8_t *bits;      /* [rows] bit l: label l */
    size_t n, cap;
    int width, group;
} log_rows;

static void log_rows_free(log_rows *g)
{
    amtl_strmap_free(&g->keys);
    free(g->ids.v);
    free(g->bits);
    memset(g, 0, sizeof *g);
}

/* Finds or adds the row of tuple and ors bits into its labels. */
static int log_rows_add(log_rows *g, const int32_t *tuple, uint8_t bits, amtl_status *st)
{
    size_t k = g->n;
    if (g->group) {
        int32_t i = amtl_strmap_put(&g->keys, tuple, sizeof *tuple * (size_t)g->width, st);
        if (i < 0)
            return -1;
        k = (size_t)i;
    }
    if (k == g->n) {
        size_t w = (size_t)g->width;
        if (i32vec_reach(&g->ids, (k + 1) * w - 1, st))
            return -1;
        memcpy(g->ids.v + k * w, tuple, sizeof *tuple * w);
        if (k == g->cap) {
            size_t cap = g->cap ? g->cap * 2 : 1024;
            uint8_t *p = realloc(g->bits, cap);
            if (!p)
                return amtl_error(st, AMTL_ENOMEM, "out of memory");
            g->bits = p;
            g->cap = cap;
        }
        g->bits[k] = 0;
        g->n++;
    }
    g->bits[k] |= bits;
    return 0;
}

/* ---- reading ---------------------------------------------------------------- */

typedef struct {
    const recipe *d;
    const amtl_config *cfg;
    amtl_prep_table *t;
    char delim;
    amtl_csv r;
    int *cols;          /* [N + T + 1] the columns of the file being read */
    const char **names; /* [N + T + 1] their names */
    int32_t *tuple;     /* [N] one row's provisional ids */
    log_rows rows;
    i32vec side[MAX_SIDE]; /* [key * (n + 1)]: seen, then the side table's n values */
    i32vec count[2];    /* [id] counted lines of field 0's and field 1's ids */
} job;

/* Position of name in a comma-separated list, or -1; with name NULL the
 * number of items. */
static int list_find(const char *list, const char *name)
{
    int c = 0;
    for (const char *p = list;; c++) {
        size_t l = strcspn(p, ",");
        if (name && l == strlen(name) && !memcmp(p, name, l))
            return c;
        if (!p[l])
            return name ? -1 : c + 1;
        p += l + 1;
    }
}

/* The first column of the current record (a header) named name, or -1. */
static int header_find(const amtl_csv *r, const char *name)
{
    for (int c = 0; c < r->n_fields; c++)
        if (!strcmp(amtl_csv_field(r, c), name))
            return c;
    return -1;
}

/* Opens an input and finds the columns names[0 .. n - 1]: in its header, or
 * in the recipe's list for a file without one. */
static int open_input(job *j, const char *path, const char *no_header, int n,
                      amtl_status *st)
{
    amtl_csv *r = &j->r;
    if (amtl_csv_open(r, path, j->delim, st))
        return -1;
    if (!no_header) {
        int k = amtl_csv_next(r, st);
        if (k <= 0)
            return k == 0 ? amtl_csv_error(r, st, 1, "empty file") : -1;
    }
    for (int i = 0; i < n; i++) {
        j->cols[i] = no_header ? list_find(no_header, j->names[i])
                               : header_find(r, j->names[i]);
        if (j->cols[i] < 0)
            return amtl_csv_error(r, st, 1, "no column '%s' in the header", j->names[i]);
    }
    return 0;
}

/* Reads the next record and checks its width; 1, 0 at the end, -1. */
static int next_row(amtl_csv *r, int width, const char *what, amtl_status *st)
{
    int k = amtl_csv_next(r, st);
    if (k <= 0)
        return k;
    if (r->n_fields != width) {
        int col = (r->n_fields < width ? r->n_fields : width) + 1;
        return amtl_csv_error(r, st, col, "expected %d fields (%s), found %d", width, what,
                              r->n_fields);
    }
    return 1;
}

static int intern_col(job *j, int f, int c, int32_t *out, amtl_status *st)
{
    int32_t v = amtl_prep_table_intern(j->t, f, amtl_csv_field(&j->r, c),
                                       amtl_csv_field_len(&j->r, c), st);
    if (v < 0)
        return -1;
    *out = v;
    return 0;
}

/* Side table s: per key the first line's values. */
static int read_side(job *j, int s, const char *path, amtl_status *st)
{
    const side_table *sd = &j->d->side[s];
    size_t stride = (size_t)sd->n + 1;
    j->names[0] = j->d->sparse[sd->key];
    for (int i = 0; i < sd->n; i++)
        j->names[1 + i] = j->d->sparse[sd->first + i];
    if (open_input(j, path, NULL, 1 + sd->n, st))
        return -1;
    int width = j->r.n_fields, k;
    while ((k = next_row(&j->r, width, "as the header", st)) > 0) {
        int32_t key;
        if (intern_col(j, sd->key, j->cols[0], &key, st))
            return -1;
        size_t base = (size_t)key * stride;
        if (!key || i32vec_at(&j->side[s], base))
            continue;
        if (i32vec_reach(&j->side[s], base + stride - 1, st))
            return -1;
        int32_t *v = j->side[s].v + base;
        v[0] = 1;
        for (int i = 0; i < sd->n; i++)
            if (intern_col(j, sd->first + i, j->cols[1 + i], &v[1 + i], st))
                return -1;
    }
    amtl_csv_close(&j->r);
    return k;
}

/* The labels of the current line as bits (the label columns or the event
 * column at cols); *missing when one is empty and the recipe drops such
 * rows. */
static int line_labels(job *j, const int *cols, uint8_t *bits, int *missing,
                       amtl_status *st)
{
    const recipe *d = j->d;
    amtl_csv *r = &j->r;
    *bits = 0;
    *missing = 0;
    if (d->event) {
        const char *v = amtl_csv_field(r, cols[0]);
        long long e = -1;
        for (int i = 0; d->events && i < d->n_events; i++)
            if (!strcmp(v, d->events[i]))
                e = i;
        if ((!d->events && amtl_csv_parse_long(v, &e)) || e < 0 || e >= d->n_events)
            return amtl_csv_error(r, st, cols[0] + 1, "%s '%s' %s", d->bad_event[0], v,
                                  d->bad_event[1]);
        if (d->sets[e] >= 0)
            *bits = (uint8_t)(1u << d->sets[e]);
        return 0;
    }
    for (int l = 0; l < d->T; l++) {
        const char *v = amtl_csv_field(r, cols[l]);
        double x;
        if (!v[0] && d->drop_missing) {
            *missing = 1;
            continue;
        }
        if (amtl_csv_parse_double(v, &x) || (x != 0.0 && x != 1.0))
            return amtl_csv_error(r, st, cols[l] + 1, "label '%s' is '%s', expected 0 or 1",
                                  d->labels[l], v);
        *bits |= (uint8_t)((x == 1.0) << l);
    }
    return 0;
}

/* One line of the log into j->rows, and into the frequency filter's counts. */
static int log_line(job *j, amtl_status *st)
{
    const recipe *d = j->d;
    int W = d->log_fields, missing;
    uint8_t bits;
    for (int f = 0; f < W; f++)
        if (intern_col(j, f, j->cols[f], &j->tuple[f], st))
            return -1;
    for (int f = 0; f < d->required; f++)
        if (!j->tuple[f])
            return amtl_csv_error(&j->r, st, j->cols[f] + 1, "empty %s", d->sparse[f]);
    if (line_labels(j, j->cols + W, &bits, &missing, st))
        return -1;
    for (int f = 0; f < W && d->drop_missing; f++)
        missing |= !j->tuple[f];
    if (missing)
        return 0;
    if (d->count >= 0 && ((bits >> d->count) & 1))
        for (int i = 0; i < 2; i++) {
            if (i32vec_reach(&j->count[i], (size_t)j->tuple[i], st))
                return -1;
            j->count[i].v[j->tuple[i]]++;
        }
    return log_rows_add(&j->rows, j->tuple, bits, st);
}

/* The log: its columns, then every line (up to the config's limit). */
static int read_log(job *j, const char *path, amtl_status *st)
{
    const recipe *d = j->d;
    int W = d->log_fields, n_cols = W + (d->event ? 1 : d->T);
    for (int f = 0; f < W; f++)
        j->names[f] = d->log_columns ? d->log_columns[f] : d->sparse[f];
    for (int i = W; i < n_cols; i++)
        j->names[i] = d->event ? d->event : d->labels[i - W];
    if (open_input(j, path, d->no_header, n_cols, st))
        return -1;
    int width = d->no_header ? list_find(d->no_header, NULL) : j->r.n_fields;
    const char *what = d->no_header ? d->no_header : "as the header";
    amtl_progress prog = {0};
    amtl_progress_start(&prog, amtl_prep_basename(path), j->r.size);
    int64_t lines = 0;
    int k = 0;
    while (!(j->cfg->limit > 0 && lines >= j->cfg->limit) &&
           (k = next_row(&j->r, width, what, st)) > 0) {
        if (log_line(j, st)) {
            k = -1;
            break;
        }
        if ((++lines & 0xffff) == 0)
            amtl_progress_update(&prog, j->r.bytes, NULL);
    }
    amtl_progress_finish(&prog);
    amtl_csv_close(&j->r);
    return k < 0 ? -1 : 0;
}

/* The rows the frequency filter keeps, joined with the side tables. */
static int emit_rows(job *j, amtl_status *st)
{
    const recipe *d = j->d;
    amtl_prep_table *t = j->t;
    int W = d->log_fields, min = j->cfg->min_count;
    int32_t *v = j->tuple;
    for (size_t k = 0; k < j->rows.n; k++) {
        memcpy(v, j->rows.ids.v + k * (size_t)W, sizeof *v * (size_t)W);
        if (d->count >= 0 && (i32vec_at(&j->count[0], (size_t)v[0]) < min ||
                               i32vec_at(&j->count[1], (size_t)v[1]) < min))
            continue;
        int missing = 0;
        for (int s = 0; s < d->n_side; s++) {
            const side_table *sd = &d->side[s];
            size_t base = (size_t)v[sd->key] * ((size_t)sd->n + 1);
            for (int i = 0; i < sd->n; i++) {
                v[sd->first + i] = i32vec_at(&j->side[s], base + 1 + (size_t)i);
                missing |= !v[sd->first + i];
            }
        }
        if (missing && d->drop_missing)
            continue;
        int64_t row = amtl_prep_table_add_row(t, AMTL_PREP_AUTO, st);
        if (row < 0)
            return -1;
        for (int f = 0; f < d->N; f++)
            t->raw[f][row] = v[f];
        for (int l = 0; l < d->T; l++)
            t->labels[l][row] = (j->rows.bits[k] >> l) & 1;
    }
    return 0;
}

static int read_recipe(const recipe *d, amtl_prep_table *t, const amtl_config *cfg,
                       const char *const *inputs, int n_inputs, amtl_status *st)
{
    memset(t, 0, sizeof *t);
    if (n_inputs != d->n_inputs)
        return amtl_error(st, AMTL_EUSAGE, "format %s takes %d input file%s (%s), not %d",
                          d->format, d->n_inputs, d->n_inputs == 1 ? "" : "s", d->files,
                          n_inputs);
    job j = {.d = d, .cfg = cfg, .t = t};
    if (amtl_prep_delimiter(cfg, &j.delim, st) ||
        amtl_prep_table_init(t, d->N, d->sparse, 0, NULL, d->T, d->labels, st))
        return -1;
    int rc = -1;
    size_t n_cols = (size_t)(d->N + d->T + 1);
    j.rows.width = d->log_fields;
    j.rows.group = d->group;
    j.cols = malloc(sizeof *j.cols * n_cols);
    j.names = malloc(sizeof *j.names * n_cols);
    j.tuple = malloc(sizeof *j.tuple * (size_t)d->N);
    if (!j.cols || !j.names || !j.tuple) {
        amtl_error(st, AMTL_ENOMEM, "out of memory");
        goto out;
    }
    if (amtl_strmap_init(&j.rows.keys, st))
        goto out;
    for (int s = 0; s < d->n_side; s++)
        if (read_side(&j, s, inputs[d->side[s].input], st))
            goto out;
    if (read_log(&j, inputs[0], st) || emit_rows(&j, st))
        goto out;
    if (t->rows == 0) {
        if (d->count >= 0)
            amtl_error(st, AMTL_EDATA,
                       "%s: no rows left after dropping users and items with fewer than %d "
                       "%s (min_count)", inputs[0], cfg->min_count, d->counted);
        else
            amtl_error(st, AMTL_EDATA, "%s: no rows without missing values", inputs[0]);
        goto out;
    }
    rc = amtl_prep_set_source(t, d->format, inputs, n_inputs, st);
out:
    amtl_csv_close(&j.r);
    log_rows_free(&j.rows);
    for (int i = 0; i < MAX_SIDE; i++)
        free(j.side[i].v);
    free(j.count[0].v);
    free(j.count[1].v);
    free(j.cols);
    free(j.names);
    free(j.tuple);
    if (rc)
        amtl_prep_table_free(t);
    return rc;
}

int amtl_prep_read_recipe(amtl_prep_table *t, const amtl_config *cfg,
                          const char *const *inputs, int n_inputs, amtl_status *st)
{
    const char *fmt = cfg->format ? cfg->format : "";
    for (int i = 0; i < COUNT(recipes); i++)
        if (!strcmp(fmt, recipes[i]->format))
            return read_recipe(recipes[i], t, cfg, inputs, n_inputs, st);
    memset(t, 0, sizeof *t);
    return amtl_error(st, AMTL_EUSAGE,
                      "format '%s' has no recipe (userbehavior, ijcai15, kuairand or "
                      "qb-video)", fmt);
}
