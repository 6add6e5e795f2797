/* eval_cmd.c — see eval_cmd.h. */
#include "cmd/eval_cmd.h"
#include "cmd/cli.h"
#include "cmd/predict.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void join(char **names, int n, char *buf, size_t cap)
{
    size_t p = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && p + 1 < cap; i++)
        p += (size_t)snprintf(buf + p, cap - p, "%s%s", i ? "," : "", names[i]);
}

static int same_names(char **a, int na, char **b, int nb)
{
    if (na != nb)
        return 0;
    for (int i = 0; i < na; i++)
        if (strcmp(a[i], b[i]))
            return 0;
    return 1;
}

int amtl_eval_check_match(const amtl_file *model, const char *model_path,
                          const amtl_dataset *ds, const char *data_path, amtl_status *st)
{
    amtl_dataset m;
    if (amtl_dataset_shape(&m, model, model_path, st))
        return -1;
    char **mn[3] = {m.sparse_names, m.dense_names, m.label_names};
    char **dn[3] = {ds->sparse_names, ds->dense_names, ds->label_names};
    int mc[3] = {m.N, m.D, m.T}, dc[3] = {ds->N, ds->D, ds->T};
    const char *kind[3] = {"sparse fields", "dense fields", "labels"};
    int rc = 0;
    for (int k = 0; k < 3 && !rc; k++) {
        if (same_names(mn[k], mc[k], dn[k], dc[k]))
            continue;
        char a[400], b[400];
        join(mn[k], mc[k], a, sizeof a);
        join(dn[k], dc[k], b, sizeof b);
        rc = amtl_error(st, AMTL_EDATA,
                        "%s: does not match dataset '%s': %s [%s] in the model, [%s] in the "
                        "dataset", model_path, data_path, kind[k], a, b);
    }
    for (int f = 0; f < m.N && !rc; f++) {
        if (m.vocab[f] != ds->vocab[f]) {
            rc = amtl_error(st, AMTL_EDATA,
                            "%s: does not match dataset '%s': field '%s' has %d ids in the "
                            "model, %d in the dataset", model_path, data_path,
                            m.sparse_names[f], m.vocab[f], ds->vocab[f]);
            break;
        }
        char nm[300];
        snprintf(nm, sizeof nm, "vocab.%s", m.sparse_names[f]);
        const amtl_tensor *a = amtl_file_find(model, nm), *b = amtl_file_find(&ds->file, nm);
        if (a && b && (amtl_tensor_nbytes(a) != amtl_tensor_nbytes(b) ||
                       memcmp(a->data, b->data, amtl_tensor_nbytes(a))))
            rc = amtl_error(st, AMTL_EDATA,
                            "%s: does not match dataset '%s': field '%s' numbers other "
                            "values (the data was prepared apart; score raw rows with "
                            "--predict instead)", model_path, data_path, m.sparse_names[f]);
    }
    amtl_dataset_shape_free(&m);
    return rc;
}

/* verified: the model file's checksum was verified as it was read.  The
 * object is left open (the comparison may follow). */
static void print_json(const amtl_metrics *r, const amtl_supernet *net, const char *model,
                       int verified, const char *split, FILE *f)
{
    fputs("{\"model\":", f);
    amtl_json_str(f, model);
    fprintf(f, ",\"checksum\":\"%s\"", verified ? "verified" : "none");
    fprintf(f, ",\"split\":\"%s\",\"rows\":%lld,\"mean_auc\":", split, (long long)r->rows);
    amtl_json_num(f, r->mean_auc, 6);
    fputs(",\"mean_auc_se\":", f);
    amtl_json_num(f, r->mean_auc_se, 6);
    fputs(",\"tasks\":{", f);
    int first = 1;
    for (int t = 0; t < r->T; t++) {
        if (!r->trained[t])
            continue;
        fputs(first ? "" : ",", f);
        first = 0;
        amtl_json_str(f, net->label_names[t]);
        fputs(":{\"auc\":", f);
        amtl_json_num(f, r->auc[t], 6);
        fputs(",\"logloss\":", f);
        amtl_json_num(f, r->logloss[t], 6);
        fputs(",\"auc_se\":", f);
        amtl_json_num(f, r->auc_se[t], 6);
        fprintf(f, ",\"rows\":%lld,\"positives\":%lld", (long long)r->counted[t],
                (long long)r->positives[t]);
        if (r->cond[t] >= 0) {
            fputs(",\"condition\":", f);
            amtl_json_str(f, net->label_names[r->cond[t]]);
            fputs(",\"auc_all\":", f);
            amtl_json_num(f, r->auc_all[t], 6);
        }
        fputc('}', f);
    }
    fputs("},\"not_trained\":[", f);
    first = 1;
    for (int t = 0; t < r->T; t++) {
        if (r->trained[t])
            continue;
        fputs(first ? "" : ",", f);
        first = 0;
        amtl_json_str(f, net->label_names[t]);
    }
    fprintf(f, "],\"live_weights\":%zu", amtl_supernet_live_weights(net));
}

static void table_num(FILE *f, double v, int width)
{
    if (isnan(v))
        fprintf(f, " %*s", width, "n/a");
    else
        fprintf(f, " %*.5f", width, v);
}

static void print_table(const amtl_metrics *r, const amtl_supernet *net, int verified,
                        const char *split, FILE *f)
{
    int w = 4, any_cond = 0;
    for (int t = 0; t < r->T; t++) {
        int len = (int)strlen(net->label_names[t]);
        w = len > w ? len : w;
        any_cond |= r->trained[t] && r->cond[t] >= 0;
    }
    fprintf(f, "%-*s %10s %10s %8s", w, "task", "AUC", "logloss", "rows");
    if (any_cond)
        fprintf(f, " %10s  %s", "AUC(all)", "counted where");
    fputc('\n', f);
    for (int t = 0; t < r->T; t++) {
        if (!r->trained[t])
            continue;
        fprintf(f, "%-*s", w, net->label_names[t]);
        table_num(f, r->auc[t], 10);
        table_num(f, r->logloss[t], 10);
        fprintf(f, " %8lld", (long long)r->counted[t]);
        if (r->cond[t] >= 0) {
            table_num(f, r->auc_all[t], 10);
            fprintf(f, "  %s = 1", net->label_names[r->cond[t]]);
        } else if (any_cond) {
            fprintf(f, " %10s  %s", "-", "-");
        }
        fputc('\n', f);
    }
    fprintf(f, "%-*s", w, "mean");
    table_num(f, r->mean_auc, 10);
    fputc('\n', f);
    int first = 1;
    for (int t = 0; t < r->T; t++) {
        if (r->trained[t])
            continue;
        fprintf(f, "%s%s", first ? "not trained: " : ", ", net->label_names[t]);
        first = 0;
    }
    if (!first)
        fputc('\n', f);
    fprintf(f, "(%s split, %lld rows, %zu live weights; model checksum %s)\n", split,
            (long long)r->rows, amtl_supernet_live_weights(net),
            verified ? "verified" : "none (format version 1)");
}

/* A model file read, and its configuration (scored on `device`). */
typedef struct {
    const char *name;   /* for messages: the path, or <stdin> */
    amtl_file f;
    amtl_config cfg;
    int have_cfg, verified;
} model_file;

static void model_file_free(model_file *m)
{
    amtl_file_free(&m->f);
    if (m->have_cfg)
        amtl_config_free(&m->cfg);
}

static int model_file_read(model_file *m, const char *path, const char *device,
                           amtl_status *st)
{
    char *yaml = NULL;
    memset(m, 0, sizeof *m);
    m->name = strcmp(path, "-") ? path : "<stdin>";
    if (amtl_file_read(&m->f, path, "model", st) || amtl_file_config_yaml(&m->f, &yaml, st) ||
        amtl_config_defaults(&m->cfg, st)) {
        free(yaml);
        return -1;
    }
    m->have_cfg = 1;
    m->verified = m->f.checksum == AMTL_CHECKSUM_VERIFIED;
    int rc = (yaml && amtl_config_load_string(&m->cfg, yaml, strlen(yaml), m->name, st)) ||
             /* where the model was trained does not decide where it is scored */
             amtl_config_set(&m->cfg, "device", device ? device : "cpu", st) ||
             amtl_cli_env_threads(&m->cfg, st) ||
             amtl_config_validate(&m->cfg, st);
    free(yaml);
    return rc ? -1 : 0;
}

/* The model as a trainer on ds (its file is released). */
static int model_load(model_file *m, const amtl_dataset *ds, const char *data,
                      amtl_trainer *tr, amtl_status *st)
{
    int rc = amtl_eval_check_match(&m->f, m->name, ds, data, st) ||
             amtl_trainer_load_file(tr, &m->f, m->name, ds, &m->cfg, st);
    amtl_file_free(&m->f);
    return rc ? -1 : 0;
}

static void print_pair_json(const amtl_auc_pair *p, const char *against, FILE *f)
{
    fputs(",\"against\":{\"model\":", f);
    amtl_json_str(f, against);
    fprintf(f, ",\"tasks\":%d,\"against_mean_auc\":", p->tasks);
    amtl_json_num(f, p->auc_b, 6);
    fputs(",\"mean_auc_diff\":", f);
    amtl_json_num(f, p->diff, 6);
    fputs(",\"diff_se\":", f);
    amtl_json_num(f, p->se, 6);
    fputc('}', f);
}

static void print_pair_table(const amtl_auc_pair *p, const char *against, FILE *f)
{
    if (isnan(p->diff)) {
        fprintf(f, "against %s: no task with both classes to compare\n", against);
        return;
    }
    fprintf(f, "against %s: mean AUC %.5f, difference %+.5f, paired standard error %.5f",
            against, p->auc_b, p->diff, p->se);
    if (p->se > 0)
        fprintf(f, " (%+.1f standard errors)", p->diff / p->se);
    fputc('\n', f);
}

/* --scores: the split's rows, each trained task's label and probability. */
static int print_scores(amtl_trainer *tr, const amtl_dataset *ds, int split, FILE *f,
                        amtl_status *st)
{
    float *lg = NULL;
    if (amtl_trainer_predict(tr, ds, split, &lg, st))
        return -1;
    const amtl_split *sp = &ds->split[split];
    int64_t n = sp->rows;
    int T = tr->net.T;
    fputs("row", f);
    for (int t = 0; t < T; t++)
        if (tr->task_w[t] != 0.0f)
            fprintf(f, "\t%s.label\t%s.p", tr->net.label_names[t], tr->net.label_names[t]);
    fputc('\n', f);
    for (int64_t i = 0; i < n && !ferror(f); i++) {
        fprintf(f, "%lld", (long long)i);
        for (int t = 0; t < T; t++) {
            if (tr->task_w[t] == 0.0f)
                continue;
            int c = tr->task_cond[t];
            if (c >= 0 && sp->labels[c][i] == 0.0f)
                fputs("\t-", f);
            else
                fprintf(f, "\t%d", sp->labels[t][i] != 0.0f);
            fprintf(f, "\t%.6f", amtl_probability(lg[(size_t)t * n + i]));
        }
        fputc('\n', f);
    }
    amtl_free(lg);
    return 0;
}

int amtl_eval_run(const amtl_eval_opts *o, amtl_status *st)
{
    const char *model = o->model, *data = o->data, *split = o->split, *device = o->device,
               *against = o->against;
    int json = o->json;
    amtl_dataset ds;
    amtl_trainer tr, other;
    model_file mf, mo;
    int rc = -1, have_tr = 0, have_other = 0;
    memset(&ds, 0, sizeof ds);
    memset(&mf, 0, sizeof mf);
    memset(&mo, 0, sizeof mo);
    int sp = amtl_split_parse(split);
    if (sp < 0)
        return amtl_error(st, AMTL_EUSAGE, "unknown split '%s' (train, val or test)", split);
    /* the models first: a bad model file is named before the data is read */
    if (model_file_read(&mf, model, device, st) ||
        (against && model_file_read(&mo, against, device, st)) ||
        amtl_dataset_read(&ds, data, st) || model_load(&mf, &ds, data, &tr, st))
        goto out;
    have_tr = 1;
    if (against) {
        if (model_load(&mo, &ds, data, &other, st))
            goto out;
        have_other = 1;
    }
    amtl_metrics r;
    amtl_auc_pair pair;
    if (o->scores) {
        if (print_scores(&tr, &ds, sp, stdout, st))
            goto out;
    } else {
        if (against ? amtl_trainer_compare(&tr, &other, &ds, sp, &r, &pair, st)
                    : amtl_trainer_evaluate(&tr, &ds, sp, &r, st))
            goto out;
        if (json) {
            print_json(&r, &tr.net, mf.name, mf.verified, split, stdout);
            if (against)
                print_pair_json(&pair, against, stdout);
            fputs("}\n", stdout);
        } else {
            print_table(&r, &tr.net, mf.verified, split, stdout);
            if (against)
                print_pair_table(&pair, against, stdout);
        }
    }
    if (fflush(stdout) || ferror(stdout)) {
        amtl_error(st, AMTL_EIO, "cannot write to stdout: %s", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (have_tr)
        amtl_trainer_free(&tr);
    if (have_other)
        amtl_trainer_free(&other);
    model_file_free(&mf);
    model_file_free(&mo);
    amtl_dataset_free(&ds);
    return rc;
}
