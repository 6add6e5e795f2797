/* test_arch.c — the architecture file: made from an exported supernet,
 * round-tripped through the envelope, applied to a fresh supernet; the
 * baselines; the text, JSON and DOT views. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/arch.h"
#include "format/config.h"
#include "format/io.h"
#include "model/supernet.h"
#include "test.h"

/* ---- fixtures ---------------------------------------------------------------------- */

static char *fields3[] = {"user", "item", "cat"};
static char *fields3_swapped[] = {"user", "cat", "item"};
static char *dense1[] = {"price"};
static char *labels2[] = {"click", "buy"};
static char *labels3[] = {"click", "buy", "like"};
static int32_t vocab3[] = {5, 7, 4};

/* A dataset without rows: enough for the supernet's shapes. */
static amtl_dataset small_ds(char **fields, char **labels, int T)
{
    amtl_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.N = 3;
    ds.D = 1;
    ds.T = T;
    ds.sparse_names = fields;
    ds.dense_names = dense1;
    ds.label_names = labels;
    ds.vocab = vocab3;
    return ds;
}

static int small_cfg(amtl_config *c, amtl_status *st)
{
    if (amtl_config_defaults(c, st))
        return -1;
    static const char *const kv[] = {
        "embedding_dim=4", "n_experts=3", "n_expert_layers=2", "expert_n_layers=2",
        "expert_width=8", "tower_layers=[4]", "ops=[Identity, MLP-4, MLP-8]",
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (amtl_config_set_kv(c, kv[i], st)) {
            amtl_config_free(c);
            return -1;
        }
    return 0;
}

/* Arch values chosen by hand: MixedOp i prefers candidate (i+1) % P; the
 * single and inter betas differ so a copy of one into the other shows. */
static void set_arch_values(amtl_supernet *net)
{
    for (int i = 0; i < net->n_mops; i++) {
        float *a = net->arch + net->mops[i].alpha;
        for (int k = 0; k < net->P; k++)
            a[k] = 0.1f * (float)k - 0.05f * (float)i;
        a[(i + 1) % net->P] = 1.5f + 0.1f * (float)i;
    }
    for (int j = 0; j < net->K; j++)
        for (int f = 0; f < net->N; f++) {
            net->arch[net->single_beta[j] + f] = (j + f) % 2 ? 0.8f + 0.1f * (float)f : -0.6f;
            net->arch[net->inter_beta[j] + f] = (j + f) % 3 == 0 ? 0.3f : -0.9f - 0.1f * (float)j;
        }
    for (int c = 0; c < net->n_consumers; c++)
        for (int i = 0; i < net->K; i++)
            net->arch[net->me_beta[c] + i] = (c + i) % 2 ? -0.7f : 0.4f + 0.01f * (float)c;
}

/* An exported supernet and its architecture file, round-tripped through
 * encode/decode. */
static int make_arch(amtl_file *arch, amtl_supernet *net, amtl_config *cfg,
                     amtl_status *st)
{
    amtl_dataset ds = small_ds(fields3, labels2, 2);
    amtl_rng rng;
    amtl_rng_seed(&rng, 7);
    if (small_cfg(cfg, st))
        return -1;
    if (amtl_supernet_init(net, cfg, &ds, &rng, st))
        return -1;
    set_arch_values(net);
    amtl_supernet_export(net, 0.5f);
    amtl_file tmp;
    if (amtl_arch_from_supernet(&tmp, net, cfg, st))
        return -1;
    void *buf = NULL;
    size_t len = 0;
    int rc = amtl_file_encode(&tmp, &buf, &len, st);
    amtl_file_free(&tmp);
    if (!rc)
        rc = amtl_file_decode(arch, buf, len, "arch.amtl", AMTL_ARCH_KIND, st);
    free(buf);
    return rc;
}

/* A fresh supernet for the architecture's config and a dataset. */
static int fresh_net(amtl_supernet *net, const amtl_file *arch, const amtl_dataset *ds,
                     amtl_config *cfg, amtl_status *st)
{
    amtl_rng rng;
    amtl_rng_seed(&rng, 99);
    if (amtl_config_defaults(cfg, st))
        return -1;
    if (amtl_arch_config(arch, cfg, "arch.amtl", st))
        return -1;
    return amtl_supernet_init(net, cfg, ds, &rng, st);
}

/* ---- a structural JSON check ----------------------------------------------------- */

typedef struct {
    const char *p;
} jp;

static void j_ws(jp *j)
{
    while (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r')
        j->p++;
}

static int j_value(jp *j, int depth);

static int j_string(jp *j)
{
    if (*j->p != '"')
        return 0;
    j->p++;
    while (*j->p != '"') {
        unsigned char ch = (unsigned char)*j->p;
        if (!ch || ch < 0x20)
            return 0;
        if (ch == '\\') {
            j->p++;
            if (*j->p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", j->p[i]) || !j->p[i])
                        return 0;
                j->p += 5;
                continue;
            }
            if (!*j->p || !strchr("\"\\/bfnrt", *j->p))
                return 0;
        }
        j->p++;
    }
    j->p++;
    return 1;
}

static int j_number(jp *j)
{
    const char *s = j->p;
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9')
            s++;
    else
        return 0;
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9'))
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    j->p = s;
    return 1;
}

static int j_value(jp *j, int depth)
{
    if (depth > 64)
        return 0;
    j_ws(j);
    if (*j->p == '{' || *j->p == '[') {
        char close = *j->p == '{' ? '}' : ']';
        int obj = close == '}';
        j->p++;
        j_ws(j);
        if (*j->p == close) {
            j->p++;
            return 1;
        }
        for (;;) {
            j_ws(j);
            if (obj) {
                if (!j_string(j))
                    return 0;
                j_ws(j);
                if (*j->p++ != ':')
                    return 0;
            }
            if (!j_value(j, depth + 1))
                return 0;
            j_ws(j);
            if (*j->p == ',') {
                j->p++;
                continue;
            }
            if (*j->p++ != close)
                return 0;
            return 1;
        }
    }
    if (*j->p == '"')
        return j_string(j);
    static const char *const words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++)
        if (!strncmp(j->p, words[i], strlen(words[i]))) {
            j->p += strlen(words[i]);
            return 1;
        }
    return j_number(j);
}

static int json_valid(const char *s)
{
    jp j = {s};
    if (!j_value(&j, 0))
        return 0;
    j_ws(&j);
    return *j.p == '\0';
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_json_checker(void)
{
    CHECK(json_valid("{\"a\": [1, -2.5e3, true, null, \"x\\\"y\\u00e9\"], \"b\": {}}"));
    CHECK(!json_valid("{\"a\": [1, 2}"));
    CHECK(!json_valid("{\"a\": \"x\ny\"}"));
    CHECK(!json_valid("{\"a\": 01}"));
    CHECK(!json_valid("{\"a\": 1} x"));
}

static void test_roundtrip(void)
{
    amtl_status st = {0};
    amtl_file arch = {0};
    amtl_supernet net = {0}, net2 = {0};
    amtl_config cfg = {0}, cfg2 = {0};
    CHECK_OK(make_arch(&arch, &net, &cfg, &st), &st);
    CHECK_OK(amtl_arch_check(&arch, "arch.amtl", &st), &st);
    CHECK(!strcmp(arch.kind, "architecture"));
    CHECK(!strcmp(amtl_file_meta(&arch, "sparse_fields"), "user\nitem\ncat"));
    CHECK(!strcmp(amtl_file_meta(&arch, "labels"), "click\nbuy"));
    CHECK(amtl_file_meta(&arch, "creator") != NULL);
    int64_t ops_shape[3] = {2, 3, 2}, kn[2] = {3, 3}, ck[2] = {5, 3};
    CHECK(amtl_file_get(&arch, "a", "arch.ops", AMTL_I32, 3, ops_shape, &st));
    CHECK(amtl_file_get(&arch, "a", "arch.single", AMTL_F32, 2, kn, &st));
    CHECK(amtl_file_get(&arch, "a", "arch.inter", AMTL_F32, 2, kn, &st));
    CHECK(amtl_file_get(&arch, "a", "arch.experts", AMTL_F32, 2, ck, &st));
    CHECK(amtl_file_find(&arch, "experts.1.2.blocks.1.alpha"));
    CHECK(amtl_file_find(&arch, "feature_modules.2.inter_beta"));
    CHECK(amtl_file_find(&arch, "mixed_experts.1.1.beta"));

    amtl_dataset ds = small_ds(fields3, labels2, 2);
    CHECK_OK(fresh_net(&net2, &arch, &ds, &cfg2, &st), &st);
    CHECK(net2.mops[0].chosen == -1 && !net2.selections_fixed);
    net2.warmup = 1;
    CHECK_OK(amtl_arch_apply(&net2, &arch, "arch.amtl", &st), &st);
    CHECK(net2.selections_fixed == 1 && net2.warmup == 0);
    CHECK(net2.n_mops == net.n_mops && net2.n_arch == net.n_arch);
    for (int i = 0; i < net.n_mops; i++) {
        CHECKF(net2.mops[i].chosen == net.mops[i].chosen, "MixedOp %d", i);
        CHECK(net.mops[i].chosen == (i + 1) % net.P);
    }
    for (int i = 0; i < net.K * net.N; i++) {
        CHECK(net2.fix_single[i] == net.fix_single[i]);
        CHECK(net2.fix_inter[i] == net.fix_inter[i]);
    }
    for (int i = 0; i < net.n_consumers * net.K; i++)
        CHECK(net2.fix_expert[i] == net.fix_expert[i]);
    for (size_t i = 0; i < net.n_arch; i++)
        CHECKF(net2.arch[i] == net.arch[i], "arch value %zu", i);
    /* each beta keeps its own values */
    int differ = 0;
    for (int j = 0; j < net.K; j++)
        for (int f = 0; f < net.N; f++)
            differ += net2.arch[net2.single_beta[j] + f] != net2.arch[net2.inter_beta[j] + f];
    CHECK(differ > 0);
    CHECK_CLOSE(net2.arch[net2.single_beta[0] + 1], 0.9f, 1e-6);
    CHECK_CLOSE(net2.arch[net2.inter_beta[0] + 1], -0.9f, 1e-6);
    /* the mask patterns are not trivial */
    int ns = 0, ni = 0, ne = 0;
    for (int i = 0; i < net.K * net.N; i++) {
        ns += net.fix_single[i] != 0;
        ni += net.fix_inter[i] != 0;
    }
    for (int i = 0; i < net.n_consumers * net.K; i++)
        ne += net.fix_expert[i] != 0;
    CHECK(ns > 0 && ns < 9 && ni > 0 && ni < 9 && ns != ni && ne > 0 && ne < 15);
    /* liveness followed: no alpha is live any more */
    for (int i = 0; i < net2.n_params; i++)
        if (net2.params[i].buf == AMTL_BUF_ARCH)
            CHECK(!net2.params[i].live);

    amtl_supernet_free(&net);
    amtl_supernet_free(&net2);
    amtl_config_free(&cfg);
    amtl_config_free(&cfg2);
    amtl_file_free(&arch);
}

static void test_config(void)
{
    amtl_status st = {0};
    amtl_file arch = {0};
    amtl_supernet net = {0};
    amtl_config cfg = {0}, c = {0};
    CHECK_OK(make_arch(&arch, &net, &cfg, &st), &st);
    CHECK_OK(amtl_config_defaults(&c, &st), &st);
    CHECK_OK(amtl_config_set_kv(&c, "batch_size=17", &st), &st);
    CHECK_OK(amtl_arch_config(&arch, &c, "arch.amtl", &st), &st);
    CHECK(c.embedding_dim == 4 && c.n_experts == 3 && c.n_expert_layers == 2);
    CHECK(c.expert_n_layers == 2 && c.expert_width == 8);
    CHECK(c.tower_layers.n == 1 && c.tower_layers.items[0] == 4);
    CHECK(c.ops.n == 3 && !strcmp(c.ops.items[2], "MLP-8"));
    CHECK_CLOSE(c.dropout, 0.2, 1e-7);
    CHECK(c.batch_size == 17);  /* not a model key: left alone */
    CHECK(c.task_weights.n == 0);
    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    amtl_config_free(&c);
    amtl_file_free(&arch);
}

static void test_not_exported(void)
{
    amtl_status st = {0};
    amtl_supernet net = {0};
    amtl_config cfg = {0};
    amtl_file f = {0};
    amtl_dataset ds = small_ds(fields3, labels2, 2);
    amtl_rng rng;
    amtl_rng_seed(&rng, 1);
    CHECK_OK(small_cfg(&cfg, &st), &st);
    CHECK_OK(amtl_supernet_init(&net, &cfg, &ds, &rng, &st), &st);
    CHECK(amtl_arch_from_supernet(&f, &net, &cfg, &st) < 0);
    CHECKF(strstr(st.msg, "not discrete") != NULL, "%s", st.msg);
    amtl_supernet_export(&net, 0.5f);
    amtl_config_set_kv(&cfg, "expert_width=9", &st);
    CHECK(amtl_arch_from_supernet(&f, &net, &cfg, &st) < 0);
    CHECKF(strstr(st.msg, "expert_width") != NULL, "%s", st.msg);
    amtl_file_free(&f);
    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
}

static void test_mismatch(void)
{
    amtl_status st = {0};
    amtl_file arch = {0};
    amtl_supernet net = {0}, other = {0};
    amtl_config cfg = {0}, c2 = {0};
    CHECK_OK(make_arch(&arch, &net, &cfg, &st), &st);

    amtl_dataset swapped = small_ds(fields3_swapped, labels2, 2);
    CHECK_OK(fresh_net(&other, &arch, &swapped, &c2, &st), &st);
    CHECK(amtl_arch_apply(&other, &arch, "arch.amtl", &st) < 0);
    CHECK(st.code == AMTL_EDATA);
    CHECKF(!strcmp(st.msg, "arch.amtl: sparse field 2 is 'item' in the architecture but "
                           "'cat' in the data"), "%s", st.msg);
    /* on error the net is left as it was */
    CHECK(other.mops[0].chosen == -1 && !other.selections_fixed);
    amtl_supernet_free(&other);
    amtl_config_free(&c2);

    amtl_dataset three = small_ds(fields3, labels3, 3);
    CHECK_OK(fresh_net(&other, &arch, &three, &c2, &st), &st);
    CHECK(amtl_arch_apply(&other, &arch, "arch.amtl", &st) < 0);
    CHECKF(!strcmp(st.msg, "arch.amtl: the architecture has 2 labels but the data 3 "
                           "(label 'like' is not in the architecture)"), "%s", st.msg);
    amtl_supernet_free(&other);
    amtl_config_free(&c2);

    /* a net with other ops */
    amtl_dataset ds = small_ds(fields3, labels2, 2);
    CHECK_OK(fresh_net(&other, &arch, &ds, &c2, &st), &st);
    amtl_supernet_free(&other);
    CHECK_OK(amtl_config_set_kv(&c2, "ops=[Identity, MLP-4, MLP-16]", &st), &st);
    amtl_rng rng;
    amtl_rng_seed(&rng, 3);
    CHECK_OK(amtl_supernet_init(&other, &c2, &ds, &rng, &st), &st);
    CHECK(amtl_arch_apply(&other, &arch, "arch.amtl", &st) < 0);
    CHECKF(strstr(st.msg, "op 2 is 'MLP-8' in the architecture but 'MLP-16'") != NULL, "%s",
           st.msg);
    amtl_supernet_free(&other);
    amtl_config_free(&c2);

    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    amtl_file_free(&arch);
}

static void test_bad_file(void)
{
    amtl_status st = {0};
    amtl_file arch = {0};
    amtl_supernet net = {0};
    amtl_config cfg = {0};
    CHECK_OK(make_arch(&arch, &net, &cfg, &st), &st);
    amtl_tensor *ops = (amtl_tensor *)amtl_file_find(&arch, "arch.ops");
    ((int32_t *)ops->data)[5] = 3;
    CHECK(amtl_arch_check(&arch, "x.amtl", &st) < 0);
    CHECKF(!strcmp(st.msg, "x.amtl: tensor 'arch.ops' [0, 2, 1] is 3, not an index into "
                           "the 3 ops"), "%s", st.msg);
    ((int32_t *)ops->data)[5] = 0;
    amtl_tensor *ex = (amtl_tensor *)amtl_file_find(&arch, "arch.experts");
    ((float *)ex->data)[4] = 0.5f;
    CHECK(amtl_arch_check(&arch, "x.amtl", &st) < 0);
    CHECKF(!strcmp(st.msg, "x.amtl: tensor 'arch.experts' [1, 1] is 0.5, expected 0 or 1"),
           "%s", st.msg);
    ((float *)ex->data)[4] = 0.0f;

    /* written, read back; a file of the wrong kind; a missing tensor */
    char path[512];
    snprintf(path, sizeof path, "%s/a.amtl", test_tmpdir());
    CHECK_OK(amtl_file_write(&arch, path, &st), &st);
    amtl_file back = {0};
    CHECK_OK(amtl_arch_read(&back, path, &st), &st);
    CHECK(back.n_tensors == arch.n_tensors);
    amtl_file_free(&back);

    amtl_file other;
    amtl_file_init(&other, "dataset");
    CHECK_OK(amtl_file_write(&other, path, &st), &st);
    CHECK(amtl_arch_read(&back, path, &st) < 0);
    CHECKF(strstr(st.msg, "architecture") != NULL, "%s", st.msg);
    amtl_file_free(&other);

    amtl_file_init(&other, "architecture");
    for (int i = 0; i < arch.n_meta; i++)
        amtl_file_set_meta(&other, arch.meta[i].key, arch.meta[i].value, &st);
    for (int i = 0; i < arch.n_tensors; i++)
        if (strcmp(arch.tensors[i].name, "arch.experts") != 0) {
            const amtl_tensor *t = &arch.tensors[i].t;
            CHECK(amtl_file_add(&other, arch.tensors[i].name, t->dtype, t->ndim, t->shape,
                                t->data, &st));
        }
    CHECK_OK(amtl_file_write(&other, path, &st), &st);
    amtl_file_free(&other);
    CHECK(amtl_arch_read(&back, path, &st) < 0);
    CHECKF(strstr(st.msg, path) && strstr(st.msg, "'arch.experts'"), "%s", st.msg);

    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    amtl_file_free(&arch);
}

/* A baseline applied to a fresh supernet of its own config. */
static int baseline_net(const char *kind, const char *op, amtl_supernet *net,
                        amtl_config *cfg, amtl_file *arch, amtl_status *st)
{
    amtl_dataset ds = small_ds(fields3, labels2, 2);
    amtl_config base;
    if (small_cfg(&base, st))
        return -1;
    int rc = amtl_arch_baseline(arch, kind, op, &ds, &base, st);
    amtl_config_free(&base);
    if (rc)
        return -1;
    void *buf = NULL;
    size_t len = 0;
    if (amtl_file_encode(arch, &buf, &len, st))
        return -1;
    amtl_file_free(arch);
    rc = amtl_file_decode(arch, buf, len, kind, AMTL_ARCH_KIND, st);
    free(buf);
    if (rc || fresh_net(net, arch, &ds, cfg, st))
        return -1;
    return amtl_arch_apply(net, arch, kind, st);
}

static int all_equal(const float *x, int n, float v)
{
    for (int i = 0; i < n; i++)
        if (x[i] != v)
            return 0;
    return 1;
}

static void test_shared_bottom(void)
{
    amtl_status st = {0};
    amtl_supernet net = {0};
    amtl_config cfg = {0};
    amtl_file arch = {0};
    CHECK_OK(baseline_net("shared-bottom", NULL, &net, &cfg, &arch, &st), &st);
    CHECK(net.K == 1 && net.L == 1 && net.NL == 2 && net.P == 1);
    CHECK(!strcmp(net.ops[0].name, AMTL_ARCH_DEFAULT_OP));
    CHECK(net.n_consumers == 2 && all_equal(net.fix_expert, 2, 1.0f));
    CHECK(all_equal(net.fix_single, 3, 1.0f) && all_equal(net.fix_inter, 3, 0.0f));
    for (int i = 0; i < net.n_mops; i++)
        CHECK(net.mops[i].chosen == 0);
    CHECK(!strcmp(amtl_file_meta(&arch, "baseline"), "shared-bottom"));
    CHECK(cfg.embedding_dim == 4 && cfg.expert_width == 8);  /* the rest from the base */
    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    amtl_file_free(&arch);
}

static void test_mmoe(void)
{
    amtl_status st = {0};
    amtl_supernet net = {0};
    amtl_config cfg = {0};
    amtl_file arch = {0};
    CHECK_OK(baseline_net("mmoe", "MLP-16", &net, &cfg, &arch, &st), &st);
    CHECK(net.K == 3 && net.L == 1 && net.P == 1 && !strcmp(net.ops[0].name, "MLP-16"));
    CHECK(all_equal(net.fix_expert, net.n_consumers * net.K, 1.0f));
    CHECK(all_equal(net.fix_single, 9, 1.0f) && all_equal(net.fix_inter, 9, 0.0f));
    for (int i = 0; i < net.n_params; i++)
        if (net.params[i].buf == AMTL_BUF_W)
            CHECK(net.params[i].live);  /* every expert is used */
    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    amtl_file_free(&arch);
}

static void test_ple(void)
{
    amtl_status st = {0};
    amtl_supernet net = {0};
    amtl_config cfg = {0};
    amtl_file arch = {0};
    CHECK_OK(baseline_net("ple", "MLP-4", &net, &cfg, &arch, &st), &st);
    CHECK(net.K == 3 && net.L == 1 && net.n_consumers == 2);
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < 3; i++)
            CHECKF(net.fix_expert[t * 3 + i] == (float)(i == t || i == 2), "task %d expert %d",
                   t, i);
    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    amtl_file_free(&arch);
}

static void test_single_task(void)
{
    amtl_status st = {0};
    amtl_supernet net = {0};
    amtl_config cfg = {0};
    amtl_file arch = {0};
    CHECK_OK(baseline_net("single-task:buy", NULL, &net, &cfg, &arch, &st), &st);
    CHECK(net.K == 1 && net.L == 1);
    CHECK(cfg.task_weights.n == 2 && cfg.task_weights.items[0] == 0.0f &&
          cfg.task_weights.items[1] == 1.0f);
    CHECK(!strcmp(amtl_file_meta(&arch, "baseline"), "single-task:buy"));
    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    amtl_file_free(&arch);

    CHECK_OK(baseline_net("single-task:0", NULL, &net, &cfg, &arch, &st), &st);
    CHECK(cfg.task_weights.n == 2 && cfg.task_weights.items[0] == 1.0f &&
          cfg.task_weights.items[1] == 0.0f);
    CHECK(!strcmp(amtl_file_meta(&arch, "baseline"), "single-task:click"));
    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    amtl_file_free(&arch);

    CHECK(baseline_net("single-task:like", NULL, &net, &cfg, &arch, &st) < 0);
    CHECK(st.code == AMTL_EUSAGE);
    CHECKF(!strcmp(st.msg, "single-task:like: no such task (labels: click, buy; or an "
                           "index 0 to 1)"), "%s", st.msg);
    amtl_file_free(&arch);
}

static void test_linear(void)
{
    amtl_status st = {0};
    amtl_supernet net = {0};
    amtl_config cfg = {0};
    amtl_file arch = {0};
    CHECK_OK(baseline_net("linear", NULL, &net, &cfg, &arch, &st), &st);
    /* T = 2 weights per id, and an expert that is the exact identity */
    CHECK(net.E == 2 && net.K == 1 && net.L == 1 && net.NL == 1);
    CHECK(net.P == 1 && net.ops[0].kind == AMTL_OP_IDENTITY);
    CHECK(net.n_tower == 0 && net.dropout == 0.0f);
    CHECK(net.input_dim == 2 * (3 + 1) + 1 && net.H == net.input_dim);
    CHECK(!amtl_supernet_find(&net, "experts.0.0.blocks.0.candidate_ops.0.projection.weight"));
    /* the embeddings start at zero, as a regression's weights do */
    const amtl_param *e = amtl_supernet_find(&net, "embedding.embed_dict.user.weight");
    CHECK(e && all_equal(amtl_param_ptr(&net, e), (int)e->n, 0.0f));
    /* each task's tower is one Linear(H, 1) */
    const amtl_param *tw = amtl_supernet_find(&net, "towers.1.mlp_layers.0.weight");
    CHECK(tw && tw->shape[0] == 1 && tw->shape[1] == net.input_dim);
    CHECK(!amtl_supernet_find(&net, "towers.0.mlp_layers.1.weight"));  /* no hidden layer */
    CHECK(all_equal(net.fix_single, 3, 1.0f) && all_equal(net.fix_inter, 3, 0.0f));
    CHECK(all_equal(net.fix_expert, 2, 1.0f));
    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    amtl_file_free(&arch);

    CHECK(baseline_net("linear", "MLP-8", &net, &cfg, &arch, &st) < 0);
    CHECK(st.code == AMTL_EUSAGE);
    amtl_file_free(&arch);
}

static void test_baseline_errors(void)
{
    amtl_status st = {0};
    amtl_supernet net = {0};
    amtl_config cfg = {0};
    amtl_file arch = {0};
    CHECK(baseline_net("cgc", NULL, &net, &cfg, &arch, &st) < 0);
    CHECK(st.code == AMTL_EUSAGE);
    CHECKF(strstr(st.msg, "unknown baseline 'cgc'") != NULL, "%s", st.msg);
    CHECK(baseline_net("mmoe", "MLP-x", &net, &cfg, &arch, &st) < 0);
    CHECK(st.code == AMTL_EUSAGE);
    CHECK(baseline_net("mmoe", "Zero", &net, &cfg, &arch, &st) < 0);
    CHECK(st.code == AMTL_EUSAGE);
    amtl_file_free(&arch);
}

static int view(const amtl_file *arch, const char *format, char **out, amtl_status *st)
{
    amtl_strbuf b = {0};
    if (amtl_arch_view(arch, format, &b, st)) {
        amtl_strbuf_free(&b);
        return -1;
    }
    *out = b.data;
    return 0;
}

static void test_views(void)
{
    amtl_status st = {0};
    amtl_file arch = {0};
    amtl_supernet net = {0};
    amtl_config cfg = {0};
    char *s = NULL;
    CHECK_OK(make_arch(&arch, &net, &cfg, &st), &st);

    CHECK_OK(view(&arch, "text", &s, &st), &st);
    /* MixedOp (0,0,b) is index b and chose candidate (b+1) % 3 */
    CHECKF(strstr(s, "layer 0 expert 0: MLP-4 (") && strstr(s, ") -> MLP-8 ("), "%s", s);
    CHECKF(strstr(s, "user") && strstr(s, "item") && strstr(s, "cat"), "%s", s);
    CHECKF(strstr(s, "task click <- layer 1 experts") && strstr(s, "task buy"), "%s", s);
    /* expert 0 single: fields 1 and... (j+f) odd: item (sigmoid 0.9 = 0.711) */
    CHECKF(strstr(s, "expert 0: single item (0.711)"), "%s", s);
    free(s);

    CHECK_OK(view(&arch, "json", &s, &st), &st);
    CHECKF(json_valid(s), "%s", s);
    CHECKF(strstr(s, "\"field\": \"item\", \"weight\": 0.711"), "%s", s);
    free(s);

    CHECK_OK(view(&arch, "dot", &s, &st), &st);
    CHECK(!strncmp(s, "digraph", 7));
    char path[512], cmd[2048];
    snprintf(path, sizeof path, "%s/arch.dot", test_tmpdir());
    FILE *f = fopen(path, "w");
    CHECK(f);
    fputs(s, f);
    fclose(f);
    free(s);
    if (system("command -v dot >/dev/null 2>&1") == 0) {
        snprintf(cmd, sizeof cmd, "dot -Tsvg '%s' -o '%s.svg' 2>'%s.err'", path, path, path);
        CHECKF(system(cmd) == 0, "dot -Tsvg failed on %s", path);
    } else {
        printf("# dot not installed: DOT output not rendered\n");
    }

    /* tasks that read layer-1 expert 0 only: experts 1 and 2 of layer 1 are unused,
     * and so is layer-0 expert 1, which only layer-1 expert 1 reads */
    float *ex = ((amtl_tensor *)amtl_file_find(&arch, "arch.experts"))->data;
    for (int c = 3; c < 5; c++)
        for (int i = 0; i < 3; i++)
            ex[c * 3 + i] = i == 0;
    CHECK_OK(view(&arch, "text", &s, &st), &st);
    CHECKF(strstr(s, "layer 1 expert 1: Identity (0.865) -> MLP-4 (0.886)  [unused]") &&
               strstr(s, "layer 0 expert 1: Identity (0.722) -> MLP-4 (0.760)  [unused]") &&
               strstr(s, "layer 0 expert 0: MLP-4 (0.669) -> MLP-8 (0.712)\n"), "%s", s);
    free(s);
    CHECK_OK(view(&arch, "json", &s, &st), &st);
    CHECKF(json_valid(s), "%s", s);
    CHECKF(strstr(s, "{\"layer\": 1, \"expert\": 2, \"used\": false"), "%s", s);
    free(s);
    CHECK_OK(view(&arch, "dot", &s, &st), &st);
    CHECKF(strstr(s, "e1_2 [label=\"expert 2\\nMLP-8 (0.905)\\nIdentity (0.909)\", style=dashed"),
           "%s", s);
    CHECK(!strstr(s, "-> t0 [label=\"0.606\"]"));
    CHECK(strstr(s, "e1_0 -> t0"));
    free(s);

    CHECK(amtl_arch_view(&arch, "yaml", &(amtl_strbuf){0}, &st) < 0);
    CHECK(st.code == AMTL_EUSAGE);
    CHECKF(!strcmp(st.msg, "unknown view 'yaml' (expected text, json or dot)"), "%s", st.msg);

    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    amtl_file_free(&arch);
}

/* Names that need escaping, and baselines without arch values. */
static void test_views_odd_names(void)
{
    static char *odd_fields[] = {"us\"er", "it\\em", "c\tat\xff"};
    static char *odd_labels[] = {"cl{ick}", "b,uy"};
    amtl_status st = {0};
    amtl_dataset ds = small_ds(odd_fields, odd_labels, 2);
    amtl_config base = {0};
    amtl_file arch = {0};
    char *s = NULL;
    CHECK_OK(small_cfg(&base, &st), &st);
    static const char *const kinds[] = {"shared-bottom", "mmoe", "ple", "single-task:1",
                                        "linear"};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        CHECK_OK(amtl_arch_baseline(&arch, kinds[k], NULL, &ds, &base, &st), &st);
        CHECK_OK(view(&arch, "json", &s, &st), &st);
        CHECKF(json_valid(s), "%s: %s", kinds[k], s);
        CHECKF(strstr(s, "\"us\\\"er\"") && strstr(s, "\"it\\\\em\"") &&
                   strstr(s, "\"c\\u0009at\\ufffd\""), "%s", s);
        CHECKF(strstr(s, "\"weight\": null"), "%s", s);
        free(s);
        CHECK_OK(view(&arch, "text", &s, &st), &st);
        CHECKF(strstr(s, "baseline: ") && !strstr(s, "(0."), "%s", s);
        free(s);
        CHECK_OK(view(&arch, "dot", &s, &st), &st);
        CHECK(!strncmp(s, "digraph", 7) && strstr(s, "us\\\"er"));
        if (!strcmp(kinds[k], "ple") && system("command -v dot >/dev/null 2>&1") == 0) {
            char path[512], cmd[2048];
            snprintf(path, sizeof path, "%s/ple.dot", test_tmpdir());
            FILE *f = fopen(path, "w");
            CHECK(f);
            fputs(s, f);
            fclose(f);
            snprintf(cmd, sizeof cmd, "dot -Tsvg '%s' -o '%s.svg' 2>'%s.err'", path, path, path);
            CHECKF(system(cmd) == 0, "dot -Tsvg failed on %s", path);
            /* no complaint either (invalid UTF-8 makes Graphviz warn) */
            snprintf(cmd, sizeof cmd, "test ! -s '%s.err'", path);
            CHECKF(system(cmd) == 0, "dot -Tsvg warned on %s", path);
        }
        free(s);
        amtl_file_free(&arch);
    }
    amtl_config_free(&base);
}

int main(void)
{
    RUN(test_json_checker);
    RUN(test_roundtrip);
    RUN(test_config);
    RUN(test_not_exported);
    RUN(test_mismatch);
    RUN(test_bad_file);
    RUN(test_shared_bottom);
    RUN(test_mmoe);
    RUN(test_ple);
    RUN(test_single_task);
    RUN(test_linear);
    RUN(test_baseline_errors);
    RUN(test_views);
    RUN(test_views_odd_names);
    TEST_MAIN_END();
}
