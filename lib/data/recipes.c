/* recipes.c — the raw data sets the reference uses (DESIGN.md section 9),
 * each turned into an amtl_prep_table: grouping of interaction logs, label
 * derivation, joins with side tables and frequency filters.
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

#include "data/csv.h"
#include "data/dataset.h"
#include "base/progress.h"

/* ---- small growable arrays ---------------------------------------------- */

typedef struct {
    int32_t *v;
    size_t n, cap;
} i32vec;

static int i32vec_push(i32vec *a, int32_t x, amtl_status *st)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 1024;
        int32_t *p = realloc(a->v, sizeof *p * cap);
        if (!p)
            return amtl_error(st, AMTL_ENOMEM, "out of memory");
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

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

/* ---- reading helpers ------------------------------------------------------ */

/* Opens a CSV with a header and finds the named columns. */
static int open_with_header(amtl_csv *r, const char *path, char delim,
                            const char *const *names, int n, int *cols,
                            amtl_status *st)
{
    if (amtl_csv_open(r, path, delim, st))
        return -1;
    int k = amtl_csv_next(r, st);
    if (k <= 0) {
        if (k == 0)
            amtl_csv_error(r, st, 1, "empty file");
        amtl_csv_close(r);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        cols[i] = -1;
        for (int c = 0; c < r->n_fields; c++)
            if (!strcmp(amtl_csv_field(r, c), names[i])) {
                cols[i] = c;
                break;
            }
        if (cols[i] < 0) {
            amtl_csv_error(r, st, 1, "no column '%s' in the header", names[i]);
            amtl_csv_close(r);
            return -1;
        }
    }
    return 0;
}

/* Reads the next data record and checks its width; 1, 0 at the end, -1. */
static int next_row(amtl_csv *r, int width, amtl_status *st)
{
    int k = amtl_csv_next(r, st);
    if (k <= 0)
        return k;
    if (r->n_fields != width) {
        int col = (r->n_fields < width ? r->n_fields : width) + 1;
        return amtl_csv_error(r, st, col, "expected %d fields (as the header), found %d",
                              width, r->n_fields);
    }
    return 1;
}

/* A 0/1 label in column c: 0 or 1 into *out, 2 when empty (missing), -1
 * when anything else. */
static int parse_label(amtl_csv *r, int c, const char *name, int *out,
                       amtl_status *st)
{
    const char *v = amtl_csv_field(r, c);
    double x;
    if (!v[0]) {
        *out = 2;
        return 0;
    }
    if (amtl_csv_parse_double(v, &x) || (x != 0.0 && x != 1.0))
        return amtl_csv_error(r, st, c + 1, "label '%s' is '%s', expected 0 or 1", name, v);
    *out = (int)x;
    return 0;
}

static int intern_col(amtl_prep_table *t, int f, amtl_csv *r, int c, int32_t *out,
                      amtl_status *st)
{
    int32_t v = amtl_prep_table_intern(t, f, amtl_csv_field(r, c),
                                       amtl_csv_field_len(r, c), st);
    if (v < 0)
        return -1;
    *out = v;
    return 0;
}

static int need_inputs(const char *format, int n, int want, const char *what,
                       amtl_status *st)
{
    if (n != want)
        return amtl_error(st, AMTL_EUSAGE, "format %s takes %d input file%s (%s), not %d",
                          format, want, want == 1 ? "" : "s", what, n);
    return 0;
}

/* Groups of an interaction log keyed by a tuple of provisional ids. */
typedef struct {
    amtl_strmap keys;   /* tuple bytes -> group index */
    i32vec ids;         /* [groups * width] */
    uint8_t *flags;     /* [groups] label bits seen */
    size_t cap;
    int width;
} groups;

static int groups_init(groups *g, int width, amtl_status *st)
{
    memset(g, 0, sizeof *g);
    g->width = width;
    return amtl_strmap_init(&g->keys, st);
}

static void groups_free(groups *g)
{
    amtl_strmap_free(&g->keys);
    free(g->ids.v);
    free(g->flags);
    memset(g, 0, sizeof *g);
}

/* Finds or adds the group of tuple and ors bits into its flags. */
static int groups_add(groups *g, const int32_t *tuple, uint8_t bits, amtl_status *st)
{
    int32_t k = amtl_strmap_put(&g->keys, tuple, sizeof *tuple * (size_t)g->width, st);
    if (k < 0)
        return -1;
    if ((size_t)k == g->ids.n / (size_t)g->width) {
        for (int i = 0; i < g->width; i++)
            if (i32vec_push(&g->ids, tuple[i], st))
                return -1;
        if ((size_t)k >= g->cap) {
            size_t cap = g->cap ? g->cap * 2 : 1024;
            uint8_t *p = realloc(g->flags, cap);
            if (!p)
                return amtl_error(st, AMTL_ENOMEM, "out of memory");
            g->flags = p;
            g->cap = cap;
        }
        g->flags[k] = 0;
    }
    g->flags[k] |= bits;
    return 0;
}

/* ---- UserBehavior (Taobao, 2017) ----------------------------------------- */

int amtl_prep_userbehavior(amtl_prep_table *t, const amtl_config *cfg,
                           const char *const *inputs, int n_inputs, amtl_status *st)
{
    static const char *const sparse[] = {"user_id", "item_id", "category"};
    static const char *const labels[] = {"click", "buy", "cart", "favourite"};
    static const char *const behaviors[] = {"pv", "buy", "cart", "fav"};
    memset(t, 0, sizeof *t);
    char delim;
    if (need_inputs("userbehavior", n_inputs, 1, "UserBehavior.csv", st) ||
        amtl_prep_delimiter(cfg, &delim, st))
        return -1;
    if (amtl_prep_table_init(t, 3, sparse, 0, NULL, 4, labels, st))
        return -1;
    amtl_csv r;
    amtl_progress prog = {0};
    groups g;
    i32vec ubuy = {0}, ibuy = {0};
    int rc = -1;
    memset(&r, 0, sizeof r);
    if (groups_init(&g, 3, st) || amtl_csv_open(&r, inputs[0], delim, st))
        goto out;
    amtl_progress_start(&prog, amtl_prep_basename(inputs[0]), r.size);
    int64_t lines = 0;
    for (;;) {
        if (cfg->limit > 0 && lines >= cfg->limit)
            break;
        int k = amtl_csv_next(&r, st);
        if (k < 0)
            goto out;
        if (k == 0)
            break;
        if (r.n_fields != 5) {
            amtl_csv_error(&r, st, (r.n_fields < 5 ? r.n_fields : 5) + 1,
                           "expected 5 fields (user,item,category,behavior,timestamp), "
                           "found %d", r.n_fields);
            goto out;
        }
        int32_t tuple[3];
        for (int f = 0; f < 3; f++) {
            if (!amtl_csv_field_len(&r, f)) {
                amtl_csv_error(&r, st, f + 1, "empty %s", sparse[f]);
                goto out;
            }
            if (intern_col(t, f, &r, f, &tuple[f], st))
                goto out;
        }
        const char *b = amtl_csv_field(&r, 3);
        int bit = -1;
        for (int i = 0; i < 4; i++)
            if (!strcmp(b, behaviors[i]))
                bit = i;
        if (bit < 0) {
            amtl_csv_error(&r, st, 4, "unknown behavior '%s' (pv, buy, cart or fav)", b);
            goto out;
        }
        if (groups_add(&g, tuple, (uint8_t)(1u << bit), st))
            goto out;
        if (bit == 1) {
            if (i32vec_reach(&ubuy, (size_t)tuple[0], st) ||
                i32vec_reach(&ibuy, (size_t)tuple[1], st))
                goto out;
            ubuy.v[tuple[0]]++;
            ibuy.v[tuple[1]]++;
        }
        if ((++lines & 0xffff) == 0)
            amtl_progress_update(&prog, r.bytes, NULL);
    }
    size_t n_groups = g.ids.n / 3;
    for (size_t k = 0; k < n_groups; k++) {
        const int32_t *tu = g.ids.v + 3 * k;
        int32_t nu = (size_t)tu[0] < ubuy.n ? ubuy.v[tu[0]] : 0;
        int32_t ni = (size_t)tu[1] < ibuy.n ? ibuy.v[tu[1]] : 0;
        if (nu < cfg->min_count || ni < cfg->min_count)
            continue;
        int64_t row = amtl_prep_table_add_row(t, AMTL_PREP_AUTO, st);
        if (row < 0)
            goto out;
        for (int f = 0; f < 3; f++)
            t->raw[f][row] = tu[f];
        for (int l = 0; l < 4; l++)
            t->labels[l][row] = (g.flags[k] >> l) & 1;
    }
    if (t->rows == 0) {
        amtl_error(st, AMTL_EDATA,
                   "%s: no rows left after dropping users and items with fewer than %d "
                   "buys (min_count)", inputs[0], cfg->min_count);
        goto out;
    }
    rc = amtl_prep_set_source(t, "userbehavior", inputs, n_inputs, st);
out:
    amtl_progress_finish(&prog);
    amtl_csv_close(&r);
    groups_free(&g);
    free(ubuy.v);
    free(ibuy.v);
    if (rc)
        amtl_prep_table_free(t);
    return rc;
}

/* ---- IJCAI-15 (Tmall repeat buyers) -------------------------------------- */

int amtl_prep_ijcai15(amtl_prep_table *t, const amtl_config *cfg,
                      const char *const *inputs, int n_inputs, amtl_status *st)
{
    static const char *const sparse[] = {"user_id", "item_id", "cat_id", "seller_id",
                                         "brand_id", "age_range", "gender"};
    static const char *const labels[] = {"purchase", "favourite"};
    static const char *const info_cols[] = {"user_id", "age_range", "gender"};
    static const char *const log_cols[] = {"user_id", "item_id", "cat_id", "seller_id",
                                           "brand_id", "action_type"};
    memset(t, 0, sizeof *t);
    char delim;
    if (need_inputs("ijcai15", n_inputs, 2, "user_log, user_info", st) ||
        amtl_prep_delimiter(cfg, &delim, st))
        return -1;
    if (amtl_prep_table_init(t, 7, sparse, 0, NULL, 2, labels, st))
        return -1;
    amtl_csv r;
    amtl_progress prog = {0};
    groups g;
    i32vec age = {0}, gender = {0}, seen = {0}, ubuy = {0}, ibuy = {0};
    int rc = -1, cols[6], width;
    memset(&r, 0, sizeof r);
    if (groups_init(&g, 5, st))
        goto out;

    /* user_info: user -> (age_range, gender); the first line of a user wins */
    if (open_with_header(&r, inputs[1], delim, info_cols, 3, cols, st))
        goto out;
    width = r.n_fields;
    for (;;) {
        int k = next_row(&r, width, st);
        if (k < 0)
            goto out;
        if (k == 0)
            break;
        int32_t u, a, s;
        if (intern_col(t, 0, &r, cols[0], &u, st) || intern_col(t, 5, &r, cols[1], &a, st) ||
            intern_col(t, 6, &r, cols[2], &s, st))
            goto out;
        if ((size_t)u < seen.n && seen.v[u])
            continue;
        if (i32vec_reach(&age, (size_t)u, st) || i32vec_reach(&gender, (size_t)u, st) ||
            i32vec_reach(&seen, (size_t)u, st))
            goto out;
        seen.v[u] = 1;
        age.v[u] = a;
        gender.v[u] = s;
    }
    amtl_csv_close(&r);

    /* user_log: group by (user, item, cat, seller, brand) */
    if (open_with_header(&r, inputs[0], delim, log_cols, 6, cols, st))
        goto out;
    width = r.n_fields;
    amtl_progress_start(&prog, amtl_prep_basename(inputs[0]), r.size);
    int64_t lines = 0;
    for (;;) {
        if (cfg->limit > 0 && lines >= cfg->limit)
            break;
        int k = next_row(&r, width, st);
        if (k < 0)
            goto out;
        if (k == 0)
            break;
        int32_t tuple[5];
        for (int f = 0; f < 5; f++)
            if (intern_col(t, f, &r, cols[f], &tuple[f], st))
                goto out;
        for (int f = 0; f < 2; f++)
            if (!tuple[f]) {
                amtl_csv_error(&r, st, cols[f] + 1, "empty %s", sparse[f]);
                goto out;
            }
        long long action;
        if (amtl_csv_parse_long(amtl_csv_field(&r, cols[5]), &action) || action < 0 ||
            action > 3) {
            amtl_csv_error(&r, st, cols[5] + 1,
                           "action_type '%s' is not 0, 1, 2 or 3 (click, cart, purchase, "
                           "favourite)", amtl_csv_field(&r, cols[5]));
            goto out;
        }
        uint8_t bits = action == 2 ? 1 : action == 3 ? 2 : 0;
        if (groups_add(&g, tuple, bits, st))
            goto out;
        if (action == 2) {
            if (i32vec_reach(&ubuy, (size_t)tuple[0], st) ||
                i32vec_reach(&ibuy, (size_t)tuple[1], st))
                goto out;
            ubuy.v[tuple[0]]++;
            ibuy.v[tuple[1]]++;
        }
        if ((++lines & 0xffff) == 0)
            amtl_progress_update(&prog, r.bytes, NULL);
    }
    size_t n_groups = g.ids.n / 5;
    for (size_t k = 0; k < n_groups; k++) {
        const int32_t *tu = g.ids.v + 5 * k;
        int32_t nu = (size_t)tu[0] < ubuy.n ? ubuy.v[tu[0]] : 0;
        int32_t ni = (size_t)tu[1] < ibuy.n ? ibuy.v[tu[1]] : 0;
        if (nu < cfg->min_count || ni < cfg->min_count)
            continue;
        int64_t row = amtl_prep_table_add_row(t, AMTL_PREP_AUTO, st);
        if (row < 0)
            goto out;
        for (int f = 0; f < 5; f++)
            t->raw[f][row] = tu[f];
        t->raw[5][row] = (size_t)tu[0] < age.n ? age.v[tu[0]] : 0;
        t->raw[6][row] = (size_t)tu[0] < gender.n ? gender.v[tu[0]] : 0;
        t->labels[0][row] = g.flags[k] & 1;
        t->labels[1][row] = (g.flags[k] >> 1) & 1;
    }
    if (t->rows == 0) {
        amtl_error(st, AMTL_EDATA,
                   "%s: no rows left after dropping users and items with fewer than %d "
                   "purchases (min_count)", inputs[0], cfg->min_count);
        goto out;
    }
    rc = amtl_prep_set_source(t, "ijcai15", inputs, n_inputs, st);
out:
    amtl_progress_finish(&prog);
    amtl_csv_close(&r);
    groups_free(&g);
    free(age.v);
    free(gender.v);
    free(seen.v);
    free(ubuy.v);
    free(ibuy.v);
    if (rc)
        amtl_prep_table_free(t);
    return rc;
}

/* ---- KuaiRand-Pure -------------------------------------------------------- */

#define KR_USER_FIELDS 26  /* 8 categorical + onehot_feat0..17 */
#define KR_VIDEO_FIELDS 4

int amtl_prep_kuairand(amtl_prep_table *t, const amtl_config *cfg,
                       const char *const *inputs, int n_inputs, amtl_status *st)
{
    static const char *const sparse[34] = {
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
    static const char *const labels[7] = {"is_click", "is_like", "is_follow",
                                          "is_comment", "is_forward", "is_hate",
                                          "long_view"};
    const int U0 = 4, V0 = 4 + KR_USER_FIELDS; /* first user / video feature field */
    memset(t, 0, sizeof *t);
    char delim;
    if (need_inputs("kuairand", n_inputs, 3,
                    "log_random, user_features, video_features_basic", st) ||
        amtl_prep_delimiter(cfg, &delim, st))
        return -1;
    if (amtl_prep_table_init(t, 34, sparse, 0, NULL, 7, labels, st))
        return -1;
    amtl_csv r;
    amtl_progress prog = {0};
    i32vec ufeat = {0}, vfeat = {0}; /* [provisional id * fields + j] */
    int rc = -1, width, cols[1 + KR_USER_FIELDS + 2 + 7];
    const char *names[1 + KR_USER_FIELDS + 2 + 7];
    memset(&r, 0, sizeof r);

    /* user_features */
    names[0] = "user_id";
    for (int j = 0; j < KR_USER_FIELDS; j++)
        names[1 + j] = sparse[U0 + j];
    if (open_with_header(&r, inputs[1], delim, names, 1 + KR_USER_FIELDS, cols, st))
        goto out;
    width = r.n_fields;
    for (;;) {
        int k = next_row(&r, width, st);
        if (k < 0)
            goto out;
        if (k == 0)
            break;
        int32_t u;
        if (intern_col(t, 0, &r, cols[0], &u, st))
            goto out;
        if (!u)
            continue;
        size_t base = (size_t)u * KR_USER_FIELDS;
        if (base < ufeat.n)
            continue; /* a repeated user: the first line wins */
        if (i32vec_reach(&ufeat, base + KR_USER_FIELDS - 1, st))
            goto out;
        for (int j = 0; j < KR_USER_FIELDS; j++)
            if (intern_col(t, U0 + j, &r, cols[1 + j], &ufeat.v[base + j], st))
                goto out;
    }
    amtl_csv_close(&r);

    /* video_features_basic */
    names[0] = "video_id";
    for (int j = 0; j < KR_VIDEO_FIELDS; j++)
        names[1 + j] = sparse[V0 + j];
    if (open_with_header(&r, inputs[2], delim, names, 1 + KR_VIDEO_FIELDS, cols, st))
        goto out;
    width = r.n_fields;
    for (;;) {
        int k = next_row(&r, width, st);
        if (k < 0)
            goto out;
        if (k == 0)
            break;
        int32_t v;
        if (intern_col(t, 1, &r, cols[0], &v, st))
            goto out;
        if (!v)
            continue;
        size_t base = (size_t)v * KR_VIDEO_FIELDS;
        if (base < vfeat.n)
            continue;
        if (i32vec_reach(&vfeat, base + KR_VIDEO_FIELDS - 1, st))
            goto out;
        for (int j = 0; j < KR_VIDEO_FIELDS; j++)
            if (intern_col(t, V0 + j, &r, cols[1 + j], &vfeat.v[base + j], st))
                goto out;
    }
    amtl_csv_close(&r);

    /* log_random, joined; rows with any missing value are dropped */
    const char *log_names[4 + 7] = {"user_id", "video_id", "is_rand", "tab"};
    for (int j = 0; j < 7; j++)
        log_names[4 + j] = labels[j];
    if (open_with_header(&r, inputs[0], delim, log_names, 11, cols, st))
        goto out;
    width = r.n_fields;
    amtl_progress_start(&prog, amtl_prep_basename(inputs[0]), r.size);
    int64_t lines = 0;
    for (;;) {
        if (cfg->limit > 0 && lines >= cfg->limit)
            break;
        int k = next_row(&r, width, st);
        if (k < 0)
            goto out;
        if (k == 0)
            break;
        if ((++lines & 0xffff) == 0)
            amtl_progress_update(&prog, r.bytes, NULL);
        int lab[7], missing = 0;
        for (int j = 0; j < 7; j++) {
            if (parse_label(&r, cols[4 + j], labels[j], &lab[j], st))
                goto out;
            missing |= lab[j] == 2;
        }
        /* only ids with a features line are in the maps at this point */
        int32_t ui = amtl_strmap_find(&t->maps[0], amtl_csv_field(&r, cols[0]),
                                      amtl_csv_field_len(&r, cols[0]));
        int32_t vi = amtl_strmap_find(&t->maps[1], amtl_csv_field(&r, cols[1]),
                                      amtl_csv_field_len(&r, cols[1]));
        int32_t u = ui >= 0 ? ui + 1 : 0, v = vi >= 0 ? vi + 1 : 0;
        int32_t rand_tab[2];
        if (intern_col(t, 2, &r, cols[2], &rand_tab[0], st) ||
            intern_col(t, 3, &r, cols[3], &rand_tab[1], st))
            goto out;
        if (missing || !u || !v || !rand_tab[0] || !rand_tab[1])
            continue;
        const int32_t *uf = ufeat.v + (size_t)u * KR_USER_FIELDS;
        const int32_t *vf = vfeat.v + (size_t)v * KR_VIDEO_FIELDS;
        for (int j = 0; j < KR_USER_FIELDS; j++)
            missing |= uf[j] == 0;
        for (int j = 0; j < KR_VIDEO_FIELDS; j++)
            missing |= vf[j] == 0;
        if (missing)
            continue;
        int64_t row = amtl_prep_table_add_row(t, AMTL_PREP_AUTO, st);
        if (row < 0)
            goto out;
        t->raw[0][row] = u;
        t->raw[1][row] = v;
        t->raw[2][row] = rand_tab[0];
        t->raw[3][row] = rand_tab[1];
        for (int j = 0; j < KR_USER_FIELDS; j++)
            t->raw[U0 + j][row] = uf[j];
        for (int j = 0; j < KR_VIDEO_FIELDS; j++)
            t->raw[V0 + j][row] = vf[j];
        for (int j = 0; j < 7; j++)
            t->labels[j][row] = (uint8_t)lab[j];
    }
    if (t->rows == 0) {
        amtl_error(st, AMTL_EDATA, "%s: no rows without missing values", inputs[0]);
        goto out;
    }
    rc = amtl_prep_set_source(t, "kuairand", inputs, n_inputs, st);
out:
    amtl_progress_finish(&prog);
    amtl_csv_close(&r);
    free(ufeat.v);
    free(vfeat.v);
    if (rc)
        amtl_prep_table_free(t);
    return rc;
}

/* ---- QB-Video (Tenrec) ------------------------------------------------------ */

int amtl_prep_qbvideo(amtl_prep_table *t, const amtl_config *cfg,
                      const char *const *inputs, int n_inputs, amtl_status *st)
{
    static const char *const sparse[6] = {"user_id", "item_id", "video_category",
                                          "watching_times", "gender", "age"};
    static const char *const labels[4] = {"click", "follow", "like", "share"};
    memset(t, 0, sizeof *t);
    char delim;
    if (need_inputs("qb-video", n_inputs, 1, "QB-video.csv", st) ||
        amtl_prep_delimiter(cfg, &delim, st))
        return -1;
    if (amtl_prep_table_init(t, 6, sparse, 0, NULL, 4, labels, st))
        return -1;
    amtl_csv r;
    amtl_progress prog = {0};
    i32vec uclick = {0}, iclick = {0};
    uint8_t *keep = NULL;
    int rc = -1, cols[10], width;
    const char *names[10];
    memset(&r, 0, sizeof r);
    for (int j = 0; j < 6; j++)
        names[j] = sparse[j];
    for (int j = 0; j < 4; j++)
        names[6 + j] = labels[j];
    if (open_with_header(&r, inputs[0], delim, names, 10, cols, st))
        goto out;
    width = r.n_fields;
    amtl_progress_start(&prog, amtl_prep_basename(inputs[0]), r.size);
    int64_t lines = 0;
    for (;;) {
        if (cfg->limit > 0 && lines >= cfg->limit)
            break;
        int k = next_row(&r, width, st);
        if (k < 0)
            goto out;
        if (k == 0)
            break;
        int lab[4];
        for (int j = 0; j < 4; j++) {
            if (parse_label(&r, cols[6 + j], labels[j], &lab[j], st))
                goto out;
            if (lab[j] == 2) {
                amtl_csv_error(&r, st, cols[6 + j] + 1, "label '%s' is '', expected 0 or 1",
                               labels[j]);
                goto out;
            }
        }
        int64_t row = amtl_prep_table_add_row(t, AMTL_PREP_AUTO, st);
        if (row < 0)
            goto out;
        for (int f = 0; f < 6; f++)
            if (intern_col(t, f, &r, cols[f], &t->raw[f][row], st))
                goto out;
        for (int j = 0; j < 4; j++)
            t->labels[j][row] = (uint8_t)lab[j];
        if (lab[0]) {
            if (i32vec_reach(&uclick, (size_t)t->raw[0][row], st) ||
                i32vec_reach(&iclick, (size_t)t->raw[1][row], st))
                goto out;
            uclick.v[t->raw[0][row]]++;
            iclick.v[t->raw[1][row]]++;
        }
        if ((++lines & 0xffff) == 0)
            amtl_progress_update(&prog, r.bytes, NULL);
    }
    keep = malloc((size_t)(t->rows > 0 ? t->rows : 1));
    if (!keep) {
        amtl_error(st, AMTL_ENOMEM, "out of memory");
        goto out;
    }
    for (int64_t row = 0; row < t->rows; row++) {
        int32_t u = t->raw[0][row], i = t->raw[1][row];
        int32_t nu = (size_t)u < uclick.n ? uclick.v[u] : 0;
        int32_t ni = (size_t)i < iclick.n ? iclick.v[i] : 0;
        keep[row] = nu >= cfg->min_count && ni >= cfg->min_count;
    }
    amtl_prep_table_compact(t, keep);
    if (t->rows == 0) {
        amtl_error(st, AMTL_EDATA,
                   "%s: no rows left after dropping users and items with fewer than %d "
                   "clicks (min_count)", inputs[0], cfg->min_count);
        goto out;
    }
    rc = amtl_prep_set_source(t, "qb-video", inputs, n_inputs, st);
out:
    amtl_progress_finish(&prog);
    amtl_csv_close(&r);
    free(uclick.v);
    free(iclick.v);
    free(keep);
    if (rc)
        amtl_prep_table_free(t);
    return rc;
}
