/* test_train.c — the discrete network against the supernet it came from
 * (bit for bit, pruned experts skipped and never stepped), model files,
 * early stopping on hand-made AUC sequences, amtl-eval's metrics against
 * the trainer's, and --predict's id mapping and output against the logits. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/arch.h"
#include "format/config.h"
#include "data/dataset.h"
#include "cmd/eval_cmd.h"
#include "cmd/train_cmd.h"
#include "train/metrics.h"
#include "cmd/predict.h"
#include "model/supernet.h"
#include "base/tensor.h"
#include "test.h"
#include "train/train.h"

enum { TN = 3, TD = 2, TT = 2, TK = 3 };

static char *fnames[TN] = {"user", "item", "cat"};
static char *dnames[TD] = {"d0", "d1"};
static char *lnames[TT] = {"click", "buy"};
static int32_t vocab[TN] = {7, 5, 4};
static const int64_t split_rows[AMTL_N_SPLITS] = {48, 24, 37};

/* A dataset filled by hand: click follows the user id and d0, buy only ever
 * comes with a click; every split holds both classes of both labels.  The
 * file carries vocab.<field> blobs with the token "<field><id>" on line id. */
static int make_dataset(amtl_dataset *ds, uint64_t seed)
{
    amtl_status st;
    memset(ds, 0, sizeof *ds);
    ds->N = TN;
    ds->D = TD;
    ds->T = TT;
    ds->sparse_names = fnames;
    ds->dense_names = dnames;
    ds->label_names = lnames;
    ds->vocab = vocab;
    amtl_rng r;
    amtl_rng_seed(&r, seed);
    for (int s = 0; s < AMTL_N_SPLITS; s++) {
        amtl_split *sp = &ds->split[s];
        int64_t n = split_rows[s];
        if (amtl_split_init(sp, TN, TD, TT, n, 1, &st))
            return -1;
        for (int64_t i = 0; i < n; i++) {
            for (int f = 0; f < TN; f++)
                sp->sparse[f][i] = (int32_t)amtl_rng_below(&r, (uint64_t)vocab[f]);
            for (int d = 0; d < TD; d++)
                sp->dense[d][i] = amtl_rng_uniform_range(&r, -1, 1);
            double z = (sp->sparse[0][i] - 3) * 0.6 + sp->dense[0][i];
            int click = amtl_rng_uniform_range(&r, 0, 1) < 1 / (1 + exp(-z));
            int buy = click && amtl_rng_bernoulli(&r, 0.5);
            if (i < 3) {  /* both classes, whatever the draws */
                click = i != 1;
                buy = i == 0;
            }
            sp->labels[0][i] = (float)click;
            sp->labels[1][i] = (float)buy;
        }
    }
    amtl_file_init(&ds->file, "dataset");
    for (int f = 0; f < TN; f++) {
        char blob[256], name[64];
        size_t p = 0;
        blob[p++] = '\n';
        for (int id = 1; id < vocab[f]; id++)
            p += (size_t)snprintf(blob + p, sizeof blob - p, "%s%d\n", fnames[f], id);
        snprintf(name, sizeof name, "vocab.%s", fnames[f]);
        int64_t shape[1] = {(int64_t)p};
        if (!amtl_file_add(&ds->file, name, AMTL_U8, 1, shape, blob, &st))
            return -1;
    }
    return 0;
}

static void free_dataset(amtl_dataset *ds)
{
    for (int s = 0; s < AMTL_N_SPLITS; s++)
        amtl_split_free(&ds->split[s]);
    amtl_file_free(&ds->file);
}

static int tiny_config(amtl_config *c, const char *extra_key, const char *extra_value)
{
    amtl_status st;
    const char *kv[][2] = {
        {"embedding_dim", "3"}, {"n_experts", "3"},      {"n_expert_layers", "2"},
        {"expert_n_layers", "2"}, {"expert_width", "4"}, {"tower_layers", "[3]"},
        {"ops", "[Identity, MLP-3, MLP-5]"},            {"dropout", "0.1"},
        {"batch_size", "16"},    {"seed", "5"},          {"lr", "0.01"},
    };
    if (amtl_config_defaults(c, &st))
        return -1;
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (amtl_config_set(c, kv[i][0], kv[i][1], &st)) {
            printf("# %s\n", st.msg);
            return -1;
        }
    if (extra_key && amtl_config_set(c, extra_key, extra_value, &st)) {
        printf("# %s\n", st.msg);
        return -1;
    }
    return 0;
}

static void set_beta(amtl_supernet *net, size_t off, int i, float v)
{
    net->arch[off + (size_t)i] = v;
}

/* A supernet trained a little (warm-up, then search with two ops fixed),
 * then exported with chosen selections: layer-0 expert 2 and layer-1
 * expert 2 are selected by no consumer, expert 0 drops field 1, expert 1
 * has an FM interaction of fields 0 and 2. */
static int exported_supernet(amtl_trainer *a, const amtl_dataset *ds, amtl_status *st)
{
    amtl_config cfg = {0};
    if (tiny_config(&cfg, NULL, NULL))
        return -1;
    int rc = amtl_trainer_init(a, &cfg, ds, st);
    amtl_config_free(&cfg);
    if (rc)
        return -1;
    double loss;
    if (amtl_trainer_epoch(a, ds, AMTL_PHASE_WARMUP, 0, &loss, st) ||
        amtl_trainer_epoch(a, ds, AMTL_PHASE_SEARCH, 2, &loss, st))
        return -1;
    amtl_supernet *net = &a->net;
    int K = net->K, N = net->N;
    for (int c = 0; c < net->n_consumers; c++)
        for (int i = 0; i < K; i++)
            set_beta(net, net->me_beta[c], i, -3.0f);
    for (int c = 0; c < K; c++) {      /* layer-1 experts take layer-0 experts 0, 1 */
        set_beta(net, net->me_beta[c], 0, 3.0f);
        set_beta(net, net->me_beta[c], 1, 3.0f);
    }
    set_beta(net, net->me_beta[K], 0, 3.0f);       /* task 0: layer-1 expert 0 */
    set_beta(net, net->me_beta[K + 1], 0, 3.0f);   /* task 1: layer-1 experts 0, 1 */
    set_beta(net, net->me_beta[K + 1], 1, 3.0f);
    for (int j = 0; j < K; j++)
        for (int f = 0; f < N; f++) {
            set_beta(net, net->single_beta[j], f, j == 0 && f == 1 ? -3.0f : 3.0f);
            set_beta(net, net->inter_beta[j], f, j == 1 && f != 1 ? 3.0f : -3.0f);
        }
    amtl_supernet_export(net, 0.5f);
    amtl_trainer_sync_liveness(a);
    return 0;
}

static int all_finite(const float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i]))
            return 0;
    return 1;
}

static void test_discrete_equals_supernet(void)
{
    amtl_status st = {0};
    amtl_dataset ds;
    amtl_trainer a, b;
    amtl_file arch, ck;
    amtl_config cfg2 = {0};
    memset(&arch, 0, sizeof arch);
    memset(&ck, 0, sizeof ck);
    CHECK(make_dataset(&ds, 1) == 0);
    CHECK_OK(exported_supernet(&a, &ds, &st), &st);
    int K = a.net.K, L = a.net.L;
    CHECK(K == TK && L == 2);
    int used[2 * TK], cused[16];
    amtl_supernet_used(&a.net, used, cused);
    for (int e = 0; e < L * K; e++)
        CHECKF(used[e] == (e % K != 2), "expert %d used %d", e, used[e]);

    float *la = NULL, *lb = NULL;
    CHECK_OK(amtl_trainer_predict(&a, &ds, AMTL_SPLIT_TEST, &la, &st), &st);
    CHECK(all_finite(la, (size_t)TT * split_rows[AMTL_SPLIT_TEST]));

    /* the architecture and the weights by name, into a net initialised
     * from another seed */
    char path[512];
    snprintf(path, sizeof path, "%s/sup.ckpt", test_tmpdir());
    CHECK_OK(amtl_arch_from_supernet(&arch, &a.net, &a.cfg, &st), &st);
    CHECK_OK(amtl_trainer_save(&a, &ds, path, "checkpoint", &st), &st);
    CHECK(tiny_config(&cfg2, "seed", "99") == 0);
    CHECK_OK(amtl_arch_config(&arch, &cfg2, "arch", &st), &st);
    CHECK_OK(amtl_trainer_init(&b, &cfg2, &ds, &st), &st);
    CHECK_OK(amtl_arch_apply(&b.net, &arch, "arch", &st), &st);
    CHECK_OK(amtl_file_read(&ck, path, "checkpoint", &st), &st);
    CHECK_OK(amtl_trainer_inherit(&b, &ck, path, &st), &st);
    amtl_trainer_sync_liveness(&b);

    /* whatever the discrete net does not use is poisoned: a NaN that reached
     * a logit would show */
    size_t dead = 0;
    int dead_expert_params = 0;
    for (int i = 0; i < b.net.n_params; i++) {
        const amtl_param *p = &b.net.params[i];
        if (p->expert >= 0 && p->op >= 0 && p->expert % K == 2) {
            CHECKF(!p->live, "%s of an unselected expert is live", p->name);
            dead_expert_params++;
        }
        if (p->live || (p->buf != AMTL_BUF_W && p->buf != AMTL_BUF_STATE))
            continue;
        test_poison(amtl_param_ptr(&b.net, p), p->n);
        if (p->buf == AMTL_BUF_W)
            dead += p->n;
    }
    CHECK(dead_expert_params > 0);
    size_t live = amtl_supernet_live_weights(&b.net);
    CHECK(live == amtl_supernet_live_weights(&a.net));
    CHECK(live + dead == b.net.n_w);
    CHECK(dead > 0);

    CHECK_OK(amtl_trainer_predict(&b, &ds, AMTL_SPLIT_TEST, &lb, &st), &st);
    size_t nl = (size_t)TT * split_rows[AMTL_SPLIT_TEST];
    CHECK(all_finite(lb, nl));
    CHECKF(memcmp(la, lb, nl * sizeof(float)) == 0, "logits differ: %.9g vs %.9g", la[0], lb[0]);

    /* training steps nothing that is not live: sentinels stay put (finite,
     * as the trainer refuses non-finite parameters after an epoch) */
    for (int i = 0; i < b.net.n_params; i++) {
        const amtl_param *p = &b.net.params[i];
        if (!p->live && (p->buf == AMTL_BUF_W || p->buf == AMTL_BUF_STATE)) {
            float *x = amtl_param_ptr(&b.net, p);
            for (size_t e = 0; e < p->n; e++)
                x[e] = 7.0f;
        }
    }
    float *before = malloc(b.net.n_w * sizeof(float));
    CHECK(before);
    memcpy(before, b.net.w, b.net.n_w * sizeof(float));
    double loss;
    CHECK_OK(amtl_trainer_epoch(&b, &ds, AMTL_PHASE_FINETUNE, 0, &loss, &st), &st);
    CHECK(isfinite(loss));
    size_t moved = 0;
    for (int i = 0; i < b.net.n_params; i++) {
        const amtl_param *p = &b.net.params[i];
        if (!p->live && p->buf == AMTL_BUF_STATE) {
            const float *x = amtl_param_ptr(&b.net, p);
            for (size_t e = 0; e < p->n; e++)
                CHECKF(x[e] == 7.0f, "dead %s[%zu] was updated", p->name, e);
        }
        if (p->buf != AMTL_BUF_W)
            continue;
        for (size_t e = 0; e < p->n; e++) {
            if (!p->live)
                CHECKF(b.net.w[p->off + e] == 7.0f, "dead %s[%zu] was stepped", p->name, e);
            moved += b.net.w[p->off + e] != before[p->off + e];
        }
    }
    CHECK(moved > 0);
    free(before);

    /* the same net with every expert selected has more live weights */
    for (int i = 0; i < b.net.n_consumers * K; i++)
        b.net.fix_expert[i] = 1.0f;
    amtl_supernet_update_liveness(&b.net);
    CHECK(amtl_supernet_live_weights(&b.net) > live);

    amtl_free(la);
    amtl_free(lb);
    amtl_trainer_free(&a);
    amtl_trainer_free(&b);
    amtl_file_free(&arch);
    amtl_file_free(&ck);
    amtl_config_free(&cfg2);
    free_dataset(&ds);
}

/* A model file holds what scoring needs: loaded, it gives the same logits. */
static void test_model_file_roundtrip(void)
{
    amtl_status st = {0};
    amtl_dataset ds;
    amtl_trainer a, c;
    CHECK(make_dataset(&ds, 2) == 0);
    CHECK_OK(exported_supernet(&a, &ds, &st), &st);
    char path[512];
    snprintf(path, sizeof path, "%s/a.model", test_tmpdir());
    CHECK_OK(amtl_trainer_save(&a, &ds, path, "model", &st), &st);
    CHECK_OK(amtl_trainer_load(&c, path, &ds, &a.cfg, &st), &st);
    float *la, *lc;
    CHECK_OK(amtl_trainer_predict(&a, &ds, AMTL_SPLIT_TEST, &la, &st), &st);
    CHECK_OK(amtl_trainer_predict(&c, &ds, AMTL_SPLIT_TEST, &lc, &st), &st);
    CHECK(memcmp(la, lc, sizeof(float) * TT * split_rows[AMTL_SPLIT_TEST]) == 0);
    CHECK(amtl_supernet_live_weights(&c.net) == amtl_supernet_live_weights(&a.net));

    /* the model matches its own dataset, not one with other fields */
    amtl_file f;
    CHECK_OK(amtl_file_read(&f, path, "model", &st), &st);
    CHECK_OK(amtl_eval_check_match(&f, path, &ds, "d", &st), &st);
    char *saved = fnames[2];
    fnames[2] = "colour";
    int r = amtl_eval_check_match(&f, path, &ds, "d", &st);
    fnames[2] = saved;
    CHECK(r < 0 && strstr(st.msg, "sparse fields [user,item,cat] in the model, "
                                  "[user,item,colour] in the dataset"));
    vocab[1]++;
    r = amtl_eval_check_match(&f, path, &ds, "d", &st);
    vocab[1]--;
    CHECK(r < 0 && strstr(st.msg, "field 'item' has 5 ids in the model, 6 in the dataset"));
    amtl_file_free(&f);
    amtl_free(la);
    amtl_free(lc);
    amtl_trainer_free(&a);
    amtl_trainer_free(&c);
    free_dataset(&ds);
}

/* ---- early stopping ------------------------------------------------------ */

static void test_early_stop_one_task(void)
{
    int best;
    /* better at 1, then three epochs without: patience 3 stops after epoch 4 */
    const double a[] = {0.60, 0.62, 0.61, 0.615, 0.619, 0.70};
    CHECK(amtl_early_stop_scan(a, NULL, 6, 1, "auc", 3, 0, &best) == 4 && best == 1);
    /* patience 1: the first bad epoch ends it */
    CHECK(amtl_early_stop_scan(a, NULL, 6, 1, "auc", 1, 0, &best) == 2 && best == 1);
    /* more patience than epochs: runs to the end, best is the last gain */
    CHECK(amtl_early_stop_scan(a, NULL, 6, 1, "auc", 10, 0, &best) == 5 && best == 5);
    /* an equal value is no improvement */
    const double eq[] = {0.6, 0.6, 0.6};
    CHECK(amtl_early_stop_scan(eq, NULL, 3, 1, "auc", 2, 0, &best) == 2 && best == 0);
    CHECK(amtl_early_stop_scan(a, NULL, 0, 1, "auc", 2, 0, &best) == -1 && best == -1);
}

static void test_early_stop_mean_rule(void)
{
    int best;
    /* improvement is the mean over tasks of (new - best) / new:
     * e1 vs e0: (0.02/0.62 - 0.01/0.69) / 2 > 0      -> best 1
     * e2 vs e1: (-0.02/0.60 + 0.06/0.75) / 2 > 0     -> best 2 (one task worse)
     * e3 vs e2: (0.03/0.63 - 0.05/0.70) / 2 < 0      -> bad (one task better)
     * e4 vs e2: (0.01/0.61 - 0.01/0.74) / 2 > 0      -> best 4 */
    const double a[] = {0.60, 0.70, 0.62, 0.69, 0.60, 0.75, 0.63, 0.70, 0.61, 0.74,
                        0.50, 0.50};
    CHECK(amtl_early_stop_scan(a, NULL, 6, 2, "auc", 2, 0, &best) == 5 && best == 4);
    CHECK(amtl_early_stop_scan(a, NULL, 6, 2, "auc", 1, 0, &best) == 3 && best == 2);
    /* a task without an AUC (one class) is left out of the mean */
    const double n[] = {0.60, NAN, 0.58, NAN, 0.61, NAN, 0.61, 0.9};
    CHECK(amtl_early_stop_scan(n, NULL, 4, 2, "auc", 3, 0, &best) == 3 && best == 2);
    /* no AUC at all: the first epoch stays best, patience runs out */
    const double none[] = {NAN, NAN, NAN, NAN, NAN, NAN};
    CHECK(amtl_early_stop_scan(none, NULL, 6, 1, "auc", 2, 0, &best) == 2 && best == 0);
}

static void test_early_stop_reset(void)
{
    amtl_stopper s;
    const double hi[2] = {0.9, 0.9}, lo[2] = {0.5, 0.5};
    amtl_stopper_reset(&s, 2, "auc", 3, 0);
    CHECK(amtl_stopper_update(&s, 0, hi, NULL) == 1);
    CHECK(amtl_stopper_update(&s, 1, lo, NULL) == 0 && s.bad_epochs == 1);
    /* export resets the best: the next epoch is the best, however low */
    amtl_stopper_reset(&s, 2, "auc", 3, 0);
    CHECK(s.best_epoch == -1 && s.bad_epochs == 0);
    CHECK(amtl_stopper_update(&s, 6, lo, NULL) == 1 && s.best_epoch == 6);
    CHECK(amtl_improved(s.best, hi, 2) && !amtl_improved(s.best, lo, 2));
}

/* The logloss rule: the mean validation logloss over the tasks must fall;
 * AUC plays no part, and a task without a logloss is left out. */
static void test_early_stop_logloss_rule(void)
{
    int best;
    /* mean logloss per epoch: 0.50 0.45 0.46 0.44 0.44 0.47 — best 3 (equal is
     * no improvement); AUCs move the other way and are ignored */
    const double ll[] = {0.40, 0.60, 0.35, 0.55, 0.36, 0.56, 0.34, 0.54, 0.33, 0.55,
                         0.37, 0.57};
    const double auc[] = {0.9, 0.9, 0.5, 0.5, 0.9, 0.9, 0.5, 0.5, 0.95, 0.95, 0.99, 0.99};
    CHECK(amtl_early_stop_scan(auc, ll, 6, 2, "logloss", 2, 0, &best) == 5 && best == 3);
    CHECK(amtl_early_stop_scan(auc, ll, 6, 2, "logloss", 1, 0, &best) == 2 && best == 1);
    /* the auc rule on the same epochs picks other ones */
    CHECK(amtl_early_stop_scan(auc, ll, 6, 2, "auc", 1, 0, &best) == 1 && best == 0);
    /* a task without a logloss (NaN) is left out of the mean */
    const double lln[] = {0.5, NAN, 0.4, NAN, 0.45, NAN};
    CHECK(amtl_early_stop_scan(auc, lln, 3, 2, "logloss", 1, 0, &best) == 2 && best == 1);
    /* no logloss at all: the first epoch stays best */
    const double none[] = {NAN, NAN, NAN, NAN};
    CHECK(amtl_early_stop_scan(auc, none, 2, 2, "logloss", 1, 0, &best) == 1 && best == 0);
}

/* min_epochs: a run is never stopped before it has trained that many epochs,
 * however long it goes without improvement; the best epoch is still the
 * best, and patience applies again once min_epochs is reached. */
static void test_early_stop_min_epochs(void)
{
    int best;
    /* a rare-positive task's AUC: noisy and falling after epoch 0 */
    const double a[] = {0.70, 0.60, 0.62, 0.65, 0.71, 0.69, 0.68, 0.67};
    /* without min_epochs patience 2 stops after epoch 2 with best 0 */
    CHECK(amtl_early_stop_scan(a, NULL, 8, 1, "auc", 2, 0, &best) == 2 && best == 0);
    /* min_epochs 5: trains epochs 0..4, finds the better epoch 4, then patience */
    CHECK(amtl_early_stop_scan(a, NULL, 8, 1, "auc", 2, 5, &best) == 6 && best == 4);
    /* min_epochs beyond the run: every epoch is trained */
    CHECK(amtl_early_stop_scan(a, NULL, 8, 1, "auc", 1, 20, &best) == 7 && best == 4);
    /* min_epochs exactly reached with patience used up: stops there */
    CHECK(amtl_early_stop_scan(a, NULL, 8, 1, "auc", 1, 3, &best) == 2 && best == 0);
    amtl_stopper s;
    amtl_stopper_reset(&s, 1, "auc", 1, 2);
    amtl_stopper_update(&s, 0, a, NULL);
    amtl_stopper_update(&s, 1, a + 1, NULL);
    CHECK(s.bad_epochs == 1 && amtl_stopper_done(&s));
}

/* ---- sparse_embedding (lazy Adam) ---------------------------------------- */

/* With sparse_embedding an embedding row no training batch uses keeps its
 * initial weights and zero moments over an epoch, while used rows move; with
 * the dense update (the default) weight decay moves the unused row too. */
static void test_sparse_embedding(void)
{
    amtl_status st = {0};
    amtl_dataset ds;
    CHECK(make_dataset(&ds, 8) == 0);
    amtl_split *tsp = &ds.split[AMTL_SPLIT_TRAIN];
    for (int64_t i = 0; i < tsp->rows; i++)  /* user 6 never trains */
        if (tsp->sparse[0][i] == 6)
            tsp->sparse[0][i] = 5;
    for (int lazy = 0; lazy < 2; lazy++) {
        amtl_config cfg = {0};
        amtl_trainer tr;
        CHECK(tiny_config(&cfg, "sparse_embedding", lazy ? "true" : "false") == 0);
        int rc = amtl_trainer_init(&tr, &cfg, &ds, &st);
        amtl_config_free(&cfg);
        CHECK_OK(rc, &st);
        int E = tr.net.E;
        float *tab = tr.net.w + tr.net.emb[0];
        float row6[64], row5[64];
        memcpy(row6, tab + 6 * E, (size_t)E * sizeof(float));
        memcpy(row5, tab + 5 * E, (size_t)E * sizeof(float));
        double loss;
        rc = amtl_trainer_epoch(&tr, &ds, AMTL_PHASE_WARMUP, 0, &loss, &st);
        int same6 = memcmp(row6, tab + 6 * E, (size_t)E * sizeof(float)) == 0;
        int same5 = memcmp(row5, tab + 5 * E, (size_t)E * sizeof(float)) == 0;
        size_t moff = 0;
        for (int k = 0; k < tr.opt_w.n_segs; k++)
            if (tr.opt_w.segs[k].param == tab)
                moff = tr.opt_w.segs[k].offset;
        float m6 = tr.opt_w.m[moff + 6 * (size_t)E];
        amtl_trainer_free(&tr);
        CHECK_OK(rc, &st);
        CHECKF(!same5, "lazy %d: a used row did not move", lazy);
        if (lazy)
            CHECKF(same6 && m6 == 0.0f, "an unused row moved under sparse_embedding");
        else
            CHECKF(!same6, "the dense update left an unused row alone (weight decay)");
    }
    free_dataset(&ds);
}

/* ---- amtl-eval's metrics -------------------------------------------------- */

static void test_eval_metrics(void)
{
    amtl_status st = {0};
    amtl_dataset ds;
    amtl_config cfg = {0};
    amtl_trainer tr;
    CHECK(make_dataset(&ds, 3) == 0);
    CHECK(tiny_config(&cfg, "task_conditions", "[buy=click]") == 0);
    CHECK_OK(amtl_trainer_init(&tr, &cfg, &ds, &st), &st);
    double loss;
    CHECK_OK(amtl_trainer_epoch(&tr, &ds, AMTL_PHASE_WARMUP, 0, &loss, &st), &st);
    amtl_metrics r;
    amtl_metrics m;
    CHECK_OK(amtl_trainer_evaluate(&tr, &ds, AMTL_SPLIT_TEST, &r, &st), &st);
    CHECK_OK(amtl_trainer_evaluate(&tr, &ds, AMTL_SPLIT_TEST, &m, &st), &st);
    const amtl_split *sp = &ds.split[AMTL_SPLIT_TEST];
    int64_t n = sp->rows, clicks = 0;
    for (int64_t i = 0; i < n; i++)
        clicks += sp->labels[0][i] != 0;
    CHECK(r.rows == n && r.T == TT);
    for (int t = 0; t < TT; t++) {
        CHECKF(r.auc[t] == m.auc[t], "task %d: %.9g vs %.9g", t, r.auc[t], m.auc[t]);
        CHECK(r.logloss[t] == m.logloss[t]);
        CHECK(r.trained[t]);
    }
    CHECK(r.mean_auc == m.mean_auc);
    CHECK(r.cond[0] == -1 && r.cond[1] == 0);
    CHECK(r.counted[0] == n && r.counted[1] == clicks && clicks < n);
    /* the conditioned task over every row, from the logits themselves */
    float *lg;
    double all;
    CHECK_OK(amtl_trainer_predict(&tr, &ds, AMTL_SPLIT_TEST, &lg, &st), &st);
    CHECK(amtl_auc(lg + n, sp->labels[1], NULL, n, &all, &st) == 0);
    CHECK(r.auc_all[1] == all);
    CHECK(isnan(r.auc_all[0]));
    amtl_free(lg);
    amtl_trainer_free(&tr);
    amtl_config_free(&cfg);

    /* a task with loss weight 0 is not trained: out of the mean */
    CHECK(tiny_config(&cfg, "task_weights", "[0, 1]") == 0);
    CHECK_OK(amtl_trainer_init(&tr, &cfg, &ds, &st), &st);
    CHECK_OK(amtl_trainer_evaluate(&tr, &ds, AMTL_SPLIT_TEST, &r, &st), &st);
    CHECK(!r.trained[0] && r.trained[1]);
    CHECK(r.mean_auc == r.auc[1]);
    CHECK_OK(amtl_trainer_evaluate(&tr, &ds, AMTL_SPLIT_VAL, &m, &st), &st);
    double keep = m.auc[1];
    amtl_metrics_drop_untrained(&tr, &m);
    CHECK(isnan(m.auc[0]) && m.auc[1] == keep && m.mean_auc == keep);
    amtl_trainer_free(&tr);
    amtl_config_free(&cfg);
    free_dataset(&ds);
}

/* ---- --predict ------------------------------------------------------------ */

static void test_vocab_map(void)
{
    amtl_status st = {0};
    amtl_vocab_map v;
    const char blob[] = "\nu1\nu2\nred car\n";
    CHECK_OK(amtl_vocab_map_init(&v, (const uint8_t *)blob, sizeof blob - 1, 4, "b", &st), &st);
    CHECK(amtl_vocab_map_id(&v, "u1", 2) == 1);
    CHECK(amtl_vocab_map_id(&v, "u2", 2) == 2);
    CHECK(amtl_vocab_map_id(&v, "red car", 7) == 3);
    CHECK(amtl_vocab_map_id(&v, "red\ncar", 7) == 3);  /* stored with a space */
    CHECK(amtl_vocab_map_id(&v, "u3", 2) == 0);        /* unseen: OOV */
    CHECK(amtl_vocab_map_id(&v, "", 0) == 0);          /* empty: OOV */
    CHECK(amtl_vocab_map_id(&v, "u", 1) == 0);
    amtl_vocab_map_free(&v);
    CHECK(amtl_vocab_map_init(&v, (const uint8_t *)blob, sizeof blob - 1, 5, "b", &st) < 0);
    CHECKF(strstr(st.msg, "b: 4 tokens for a vocabulary of 5 ids"), "%s", st.msg);
    CHECK(amtl_vocab_map_init(&v, (const uint8_t *)blob, sizeof blob - 2, 4, "b", &st) < 0);
    CHECK(strstr(st.msg, "does not end with a line break"));
    CHECK(amtl_vocab_map_init(&v, (const uint8_t *)"a\nb\n", 4, 2, "b", &st) < 0);
    CHECK(strstr(st.msg, "line 0"));
    amtl_vocab_map_free(&v);
}

/* The test split written as CSV (columns shuffled, an extra one, an unseen
 * token where the id is 0) scores as the trainer's logits do. */
static void test_predict_csv(void)
{
    amtl_status st = {0};
    amtl_dataset ds;
    amtl_trainer a;
    CHECK(make_dataset(&ds, 4) == 0);
    CHECK_OK(exported_supernet(&a, &ds, &st), &st);
    amtl_split *sp = &ds.split[AMTL_SPLIT_TEST];
    int64_t n = sp->rows;
    sp->sparse[0][5] = 0;  /* row 5: a user never seen */
    sp->sparse[2][6] = 0;  /* row 6: an empty cat */
    char model[512], csv[512];
    snprintf(model, sizeof model, "%s/p.model", test_tmpdir());
    snprintf(csv, sizeof csv, "%s/rows.csv", test_tmpdir());
    CHECK_OK(amtl_trainer_save(&a, &ds, model, "model", &st), &st);
    FILE *f = fopen(csv, "w");
    CHECK(f);
    fprintf(f, "cat:token,note,d1,user,item,d0:float,click\n");
    for (int64_t i = 0; i < n; i++) {
        int32_t u = sp->sparse[0][i], it = sp->sparse[1][i], c = sp->sparse[2][i];
        char cs[16] = "";
        if (c)
            snprintf(cs, sizeof cs, "cat%d", c);
        fprintf(f, "%s,\"x, y\",%.9g,", cs, (double)sp->dense[1][i]);
        if (u)
            fprintf(f, "user%d,", u);
        else
            fprintf(f, "nobody,");
        fprintf(f, "item%d,%.9g,%g\n", it, (double)sp->dense[0][i], (double)sp->labels[0][i]);
    }
    fclose(f);

    float *lg;
    CHECK_OK(amtl_trainer_predict(&a, &ds, AMTL_SPLIT_TEST, &lg, &st), &st);
    FILE *out = tmpfile();
    CHECK(out);
    amtl_predict_opts o = {.model = model, .input = csv, .delim = ',', .header = 1};
    CHECK_OK(amtl_predict_run(&o, out, &st), &st);
    rewind(out);
    char h1[32], h2[32];
    CHECK(fscanf(out, "%31s %31s", h1, h2) == 2);
    CHECK(!strcmp(h1, "click") && !strcmp(h2, "buy"));
    for (int64_t i = 0; i < n; i++) {
        double p[2];
        CHECKF(fscanf(out, "%lf\t%lf", &p[0], &p[1]) == 2, "row %lld", (long long)i);
        for (int t = 0; t < TT; t++) {
            double want = 1 / (1 + exp(-(double)lg[t * n + i]));
            CHECKF(fabs(p[t] - want) <= 6e-7, "row %lld task %d: %.6f vs %.9f", (long long)i,
                   t, p[t], want);
        }
    }
    double extra;
    CHECK(fscanf(out, "%lf", &extra) == EOF);
    fclose(out);

    /* a bad dense value names the line and the column */
    f = fopen(csv, "w");
    CHECK(f);
    fprintf(f, "user,item,cat,d0,d1\nuser1,item1,cat1,0.5,1\nuser1,item1,cat1,abc,1\n");
    fclose(f);
    out = tmpfile();
    CHECK(amtl_predict_run(&o, out, &st) < 0);
    fclose(out);
    CHECKF(strstr(st.msg, "rows.csv:3:4: 'abc' is not a number (column 'd0')"), "%s", st.msg);

    amtl_free(lg);
    amtl_trainer_free(&a);
    free_dataset(&ds);
}

int main(void)
{
    RUN(test_discrete_equals_supernet);
    RUN(test_model_file_roundtrip);
    RUN(test_early_stop_one_task);
    RUN(test_early_stop_mean_rule);
    RUN(test_early_stop_reset);
    RUN(test_early_stop_logloss_rule);
    RUN(test_early_stop_min_epochs);
    RUN(test_sparse_embedding);
    RUN(test_eval_metrics);
    RUN(test_vocab_map);
    RUN(test_predict_csv);
    TEST_MAIN_END();
}
