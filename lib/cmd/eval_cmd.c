/* eval_cmd.c — see eval_cmd.h. */
#include "cmd/eval_cmd.h"

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

/* Reads a model and makes it a trainer on ds, scored on `device`. */
static int load_model(const char *path, const char *device, const amtl_dataset *ds,
                      const char *data, amtl_trainer *tr, int *verified, amtl_status *st)
{
    amtl_config cfg = {0};
    amtl_file f;
    char *yaml = NULL;
    memset(&f, 0, sizeof f);
    const char *name = strcmp(path, "-") ? path : "<stdin>";
    int rc = -1;
    if (amtl_file_read(&f, path, "model", st) || amtl_file_config_yaml(&f, &yaml, st) ||
        amtl_config_defaults(&cfg, st))
        goto out;
    if (yaml && amtl_config_load_string(&cfg, yaml, strlen(yaml), name, st))
        goto out;
    /* where the model was trained does not decide where it is scored */
    if (amtl_config_set(&cfg, "device", device ? device : "cpu", st) ||
        amtl_config_validate(&cfg, st) || amtl_eval_check_match(&f, name, ds, data, st) ||
        amtl_trainer_load_file(tr, &f, name, ds, &cfg, st))
        goto out;
    *verified = f.checksum == AMTL_CHECKSUM_VERIFIED;
    rc = 0;
out:
    amtl_file_free(&f);
    amtl_config_free(&cfg);
    free(yaml);
    return rc;
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

int amtl_eval_run(const char *model, const char *data, const char *split, int json,
                  const char *device, const char *against, amtl_status *st)
{
    amtl_dataset ds;
    amtl_trainer tr, other;
    int rc = -1, have_tr = 0, have_other = 0, verified = 0, other_verified = 0;
    memset(&ds, 0, sizeof ds);
    const char *name = strcmp(model, "-") ? model : "<stdin>";
    int sp = amtl_split_parse(split);
    if (sp < 0)
        return amtl_error(st, AMTL_EUSAGE, "unknown split '%s' (train, val or test)", split);
    if (amtl_dataset_read(&ds, data, st) ||
        load_model(model, device, &ds, data, &tr, &verified, st))
        goto out;
    have_tr = 1;
    if (against) {
        if (load_model(against, device, &ds, data, &other, &other_verified, st))
            goto out;
        have_other = 1;
    }
    amtl_metrics r;
    amtl_auc_pair pair;
    if (amtl_trainer_evaluate(&tr, &ds, sp, &r, st) ||
        (against && amtl_trainer_compare(&tr, &other, &ds, sp, &pair, st)))
        goto out;
    if (json) {
        print_json(&r, &tr.net, name, verified, split, stdout);
        if (against)
            print_pair_json(&pair, against, stdout);
        fputs("}\n", stdout);
    } else {
        print_table(&r, &tr.net, verified, split, stdout);
        if (against)
            print_pair_table(&pair, against, stdout);
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
    amtl_dataset_free(&ds);
    return rc;
}
