/* prep_cmd.c — amtl-prep's body: the choice of reader by format (or the
 * synthetic generator), writing the dataset, and --info (see prep_cmd.h).
 */
#include "cmd/prep_cmd.h"

#include "data/dataset_summary.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/prep_csv.h"
#include "data/prep_table.h"
#include "data/recipes.h"
#include "data/synthetic.h"

/* ---- the tool ------------------------------------------------------------- */

int amtl_prep_run(const amtl_prep_args *a, const amtl_config *cfg,
                  amtl_status *st)
{
    if (!a->output)
        return amtl_error(st, AMTL_EUSAGE, "no output file (-o OUT)");
    if (!strcmp(a->output, "-") && isatty(STDOUT_FILENO))
        return amtl_error(st, AMTL_EUSAGE,
                          "refusing to write a binary dataset to a terminal");
    amtl_prep_table t;
    memset(&t, 0, sizeof t);
    int rc;
    const char *fmt = cfg->format && cfg->format[0] ? cfg->format : "processed";
    int reads_csv = !a->synthetic && (!strcmp(fmt, "processed") || !strcmp(fmt, "csv"));
    if (cfg->crosses.n && !reads_csv)
        return amtl_error(st, AMTL_EUSAGE, "key 'crosses' applies to the csv and processed "
                          "formats, not to %s", a->synthetic ? "--synthetic" : fmt);
    if (a->synthetic) {
        if (a->n_inputs)
            return amtl_error(st, AMTL_EUSAGE, "--synthetic takes no input files");
        int64_t rows = a->rows > 0 ? a->rows : 100000;
        if (a->synthetic_kind == AMTL_SYNTH_ALICCP)
            rc = amtl_prep_synthetic_aliccp(&t, rows, a->tasks > 0 ? a->tasks : 2,
                                            (uint64_t)cfg->seed, st);
        else if (a->synthetic_kind == AMTL_SYNTH_ZIPF)
            rc = amtl_prep_synthetic_zipf(&t, rows, a->tasks > 0 ? a->tasks : 3,
                                          (uint64_t)cfg->seed, st);
        else
            rc = amtl_prep_synthetic(&t, rows, a->tasks > 0 ? a->tasks : 4,
                                     (uint64_t)cfg->seed, st);
    } else if (a->n_inputs == 0) {
        return amtl_error(st, AMTL_EUSAGE, "no input files");
    } else if (reads_csv) {
        rc = amtl_prep_read_csv(&t, cfg, a->inputs, a->n_inputs, st);
    } else {
        rc = amtl_prep_read_recipe(&t, cfg, a->inputs, a->n_inputs, st);
    }
    if (rc)
        return -1;
    rc = amtl_prep_table_write(&t, cfg, a->output, st);
    amtl_prep_table_free(&t);
    return rc;
}

/* ---- --info --------------------------------------------------------------- */

static int max_int(int a, int b) { return a > b ? a : b; }

int amtl_prep_info(const char *path, FILE *out, amtl_status *st)
{
    /* from the header alone when amtl-prep wrote the summary there */
    amtl_dataset_summary ds;
    if (amtl_dataset_summary_read(&ds, path, st))
        return -1;
    amtl_strbuf b = {0};
    const char *src = amtl_file_meta(&ds.file, "source");
    const char *vm = amtl_file_meta(&ds.file, "vocab_mode");
    const char *mic = amtl_file_meta(&ds.file, "min_id_count");
    const char *dt = amtl_file_meta(&ds.file, "dense_transform");
    amtl_strbuf_printf(&b,
                       "source           %s\nvocab            %s\nmin_id_count     %s\n"
                       "dense_transform  %s\nchecksum         %s\n\n",
                       src ? src : "-", vm ? vm : "-", mic ? mic : "-", dt ? dt : "-",
                       amtl_file_checksum_text(&ds.file));

    int wrows = 4;
    for (int s = 0; s < AMTL_N_SPLITS; s++) {
        char tmp[32];
        wrows = max_int(wrows, snprintf(tmp, sizeof tmp, "%lld", (long long)ds.rows[s]));
    }
    amtl_strbuf_printf(&b, "%-5s  %*s\n", "split", wrows, "rows");
    for (int s = 0; s < AMTL_N_SPLITS; s++)
        amtl_strbuf_printf(&b, "%-5s  %*lld\n", amtl_split_name(s), wrows,
                           (long long)ds.rows[s]);

    int wname = 5, wvocab = 5;
    for (int k = 0; k < ds.N; k++) {
        char tmp[32];
        wname = max_int(wname, (int)strlen(ds.sparse[k]));
        wvocab = max_int(wvocab, snprintf(tmp, sizeof tmp, "%lld", (long long)ds.vocab[k]));
    }
    for (int d = 0; d < ds.D; d++)
        wname = max_int(wname, (int)strlen(ds.dense[d]));
    for (int k = 0; k < ds.T; k++)
        wname = max_int(wname, (int)strlen(ds.labels[k]));
    amtl_strbuf_printf(&b, "\n%-*s  %-6s  %*s\n", wname, "field", "kind", wvocab, "vocab");
    for (int k = 0; k < ds.N; k++)
        amtl_strbuf_printf(&b, "%-*s  %-6s  %*lld\n", wname, ds.sparse[k], "sparse", wvocab,
                           (long long)ds.vocab[k]);
    for (int d = 0; d < ds.D; d++)
        amtl_strbuf_printf(&b, "%-*s  %-6s  %*s\n", wname, ds.dense[d], "dense", wvocab, "-");
    for (int k = 0; k < ds.T; k++)
        amtl_strbuf_printf(&b, "%-*s  %-6s  %*s\n", wname, ds.labels[k], "label", wvocab, "-");

    int wlabel = 5;
    for (int k = 0; k < ds.T; k++)
        wlabel = max_int(wlabel, (int)strlen(ds.labels[k]));
    amtl_strbuf_printf(&b, "\n%-*s  %6s  %6s  %6s\n", wlabel, "label", "train", "val",
                       "test");
    for (int k = 0; k < ds.T; k++) {
        amtl_strbuf_printf(&b, "%-*s", wlabel, ds.labels[k]);
        for (int s = 0; s < AMTL_N_SPLITS; s++) {
            if (ds.rows[s] == 0) {
                amtl_strbuf_printf(&b, "  %6s", "-");
                continue;
            }
            amtl_strbuf_printf(&b, "  %6.4f",
                               (double)ds.positives[k * 3 + s] / (double)ds.rows[s]);
        }
        amtl_strbuf_printf(&b, "\n");
    }

    /* rows whose id is 0: unseen with vocab train, or an empty token */
    if (ds.N > 0) {
        int wc = 5;
        for (int s = 0; s < AMTL_N_SPLITS; s++) {
            char tmp[32];
            wc = max_int(wc, snprintf(tmp, sizeof tmp, "%lld", (long long)ds.rows[s]));
        }
        amtl_strbuf_printf(&b, "\n%-*s  %*s  %*s  %*s\n", wname, "id 0", wc, "train", wc,
                           "val", wc, "test");
        for (int k = 0; k < ds.N; k++) {
            amtl_strbuf_printf(&b, "%-*s", wname, ds.sparse[k]);
            for (int s = 0; s < AMTL_N_SPLITS; s++)
                amtl_strbuf_printf(&b, "  %*lld", wc, (long long)ds.id0[k * 3 + s]);
            amtl_strbuf_printf(&b, "\n");
        }
    }
    amtl_dataset_summary_free(&ds);
    if (b.failed) {
        amtl_strbuf_free(&b);
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    }
    int rc = 0;
    if (b.len && fwrite(b.data, 1, b.len, out) != b.len)
        rc = amtl_error(st, AMTL_EIO, "cannot write to standard output");
    amtl_strbuf_free(&b);
    return rc;
}
