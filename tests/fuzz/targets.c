/* targets.c — see targets.h.
 *
 * Network sizes come from the config a file carries (embedding_dim,
 * expert_width, ...) and are the user's to choose, not claims about bytes in
 * the file; a target skips a config asking for a network larger than
 * `within_caps` allows, so that a fuzzed "expert_width: 100000000" is not
 * reported as a reader allocating what a header claims.  Vocabulary sizes
 * and every tensor are claims about the file and are not capped here.
 *
 * A fuzzer does not get past a CRC: almost every mutation of a file would
 * stop at "damaged file".  So the targets that read amtl files decode a
 * copy whose checksum is recomputed (amtl_envelope_seal) and reach the
 * decoder and the readers behind it; the file target decodes the bytes as
 * they are too, which runs the code that names the damaged part. */
#include "targets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "format/arch.h"
#include "format/config.h"
#include "data/csv.h"
#include "data/dataset.h"
#include "format/io.h"
#include "cmd/predict.h"
#include "data/prep_csv.h"
#include "data/prep_table.h"
#include "data/recipes.h"
#include "model/supernet.h"
#include "model/supernet_dev.h"
#include "train/train.h"

/* ---- helpers ----------------------------------------------------------------- */

static int within_caps(const amtl_config *c)
{
    if (c->embedding_dim > 16 || c->n_experts > 8 || c->n_expert_layers > 3 ||
        c->expert_n_layers > 3 || c->expert_width > 64 || c->tower_layers.n > 3)
        return 0;
    for (int i = 0; i < c->tower_layers.n; i++)
        if (c->tower_layers.items[i] > 64)
            return 0;
    for (int i = 0; i < c->ops.n; i++) {
        const char *op = c->ops.items[i];
        if (!strncmp(op, "MLP-", 4) && (strlen(op) > 6 || atoi(op + 4) > 64))
            return 0;
    }
    return 1;
}

static int within_shape_caps(const amtl_dataset *shape)
{
    return shape->N <= 16 && shape->D <= 16 && shape->T <= 8;
}

/* A file in memory with a path the readers can open. */
static int mem_path(const uint8_t *data, size_t size, char *path, size_t cap)
{
    int fd = memfd_create("amtl-fuzz", 0);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

/* Decodes a copy of the bytes with their checksum made to match, when they
 * end with one. */
static int decode_sealed(amtl_file *f, const uint8_t *data, size_t size, const char *kind,
                         amtl_status *st)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return -1;
    if (size)
        memcpy(copy, data, size);
    amtl_envelope_seal(copy, size);
    int rc = amtl_file_decode(f, copy, size, "fuzz", kind, st);
    free(copy);
    return rc;
}

/* Two rows with id 0 everywhere and zero dense values, scored in eval mode
 * (the device step on the fused CPU backend, as --device cpu). */
static void forward_two_rows(amtl_supernet *net)
{
    amtl_status st;
    int32_t ids[2 * 16] = {0};
    float dense[2 * 16] = {0}, labels[2 * 8] = {0}, logits[2 * 8];
    amtl_batch b = {.B = 2, .ids = ids, .dense = dense, .labels = labels};
    if (net->N > 16 || net->D > 16 || net->T > 8)
        return;
    amtl_backend *be = amtl_backend_cpu_new(1, NULL);
    amtl_dev *dev = NULL;
    if (be && amtl_dev_init(&dev, be, net, 2, 0, &st) == 0 &&
        amtl_dev_put_params(dev, net, &st) == 0 && amtl_dev_batch_host(dev, &b, &st) == 0) {
        amtl_rng rng;
        amtl_rng_seed(&rng, 1);
        amtl_dev_forward(dev, net, 0, &rng, logits, &st);
    }
    amtl_dev_free(dev);
    amtl_backend_free(be);
}

/* ---- CSV ----------------------------------------------------------------------- */

int amtl_fuzz_csv(const uint8_t *data, size_t size)
{
    static const char delims[] = {',', '\t', ';', '|'};
    if (size < 2)
        return 0;  /* fmemopen wants at least one byte */
    char delim = delims[data[0] % 4];
    FILE *fp = fmemopen((void *)(data + 1), size - 1, "rb");
    if (!fp)
        return 0;
    amtl_csv r;
    amtl_status st;
    if (amtl_csv_open_stream(&r, fp, "fuzz.csv", delim, &st) == 0) {
        int rc, n_records = 0;
        while ((rc = amtl_csv_next(&r, &st)) == 1 && n_records++ < 100000) {
            for (int i = 0; i < r.n_fields; i++) {
                const char *f = amtl_csv_field(&r, i);
                if (strlen(f) > amtl_csv_field_len(&r, i))
                    return 1;  /* a field's length counts its bytes */
                double d;
                long long l;
                amtl_csv_parse_double(f, &d);
                amtl_csv_parse_long(f, &l);
            }
        }
        amtl_csv_close(&r);
    }
    fclose(fp);
    return 0;
}

/* The first byte picks the format; the rest is one to three input files
 * separated by the two bytes "\0\0". */
int amtl_fuzz_prep(const uint8_t *data, size_t size)
{
    static const char *const formats[] = {"processed", "csv",      "userbehavior",
                                          "ijcai15",   "kuairand", "qb-video"};
    if (size < 1)
        return 0;
    const char *fmt = formats[data[0] % 6];
    const uint8_t *p = data + 1, *end = data + size;
    char paths[3][64];
    const char *inputs[3];
    int fds[3], n = 0;
    while (n < 3) {
        const uint8_t *q = p;
        while (q + 1 < end && !(q[0] == 0 && q[1] == 0))
            q++;
        if (q + 1 >= end)
            q = end;
        fds[n] = mem_path(p, (size_t)(q - p), paths[n], sizeof paths[n]);
        if (fds[n] < 0)
            break;
        inputs[n] = paths[n];
        n++;
        if (q == end)
            break;
        p = q + 2;
    }
    amtl_config cfg;
    amtl_status st;
    memset(&cfg, 0, sizeof cfg);
    int bad = 0;
    if (n < 1 || amtl_config_defaults(&cfg, &st) || amtl_config_set(&cfg, "format", fmt, &st) ||
        amtl_config_set(&cfg, "min_count", "1", &st))
        goto out;
    if (!strcmp(fmt, "csv") &&
        (amtl_config_set(&cfg, "delimiter", ";", &st) ||
         amtl_config_set(&cfg, "sparse", "[user, city]", &st) ||
         amtl_config_set(&cfg, "dense", "[age]", &st) ||
         amtl_config_set(&cfg, "labels", "[click]", &st)))
        goto out;
    amtl_prep_table t;
    int rc;
    if (!strcmp(fmt, "processed") || !strcmp(fmt, "csv"))
        rc = amtl_prep_read_csv(&t, &cfg, inputs, n, &st);
    else
        rc = amtl_prep_read_recipe(&t, &cfg, inputs, n, &st);
    if (rc)
        goto out;
    amtl_file f;
    if (amtl_prep_table_to_file(&t, &cfg, &f, &st) == 0) {
        /* whatever prep writes, every tool must be able to read */
        void *buf = NULL;
        size_t len;
        amtl_file g;
        amtl_dataset ds;
        if (amtl_file_encode(&f, &buf, &len, &st) ||
            amtl_file_decode(&g, buf, len, "prep output", "dataset", &st)) {
            bad = 1;
        } else if (amtl_dataset_from_file(&ds, &g, "prep output", &st)) {
            fprintf(stderr, "prep output does not read back: %s\n", st.msg);
            amtl_file_free(&g);
            bad = 1;
        } else {
            amtl_dataset_free(&ds);
        }
        free(buf);
        amtl_file_free(&f);
    }
    amtl_prep_table_free(&t);
out:
    amtl_config_free(&cfg);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    return bad;
}

/* ---- the file envelope ------------------------------------------------------ */

int amtl_fuzz_file(const uint8_t *data, size_t size)
{
    amtl_file f, g;
    amtl_status st;
    if (amtl_file_decode(&f, data, size, "fuzz", NULL, &st) == 0)
        amtl_file_free(&f);
    /* the head alone (amtl-prep --info): any prefix of any bytes */
    size_t need;
    if (amtl_file_decode_head(&f, data, size, &need, "fuzz", NULL, &st) == 0)
        amtl_file_free(&f);
    if (decode_sealed(&f, data, size, NULL, &st))
        return 0;
    /* a file that decodes has a head, and the head is the file's meta */
    amtl_file h;
    if (amtl_file_decode_head(&h, data, size, &need, "fuzz", NULL, &st) == 0) {
        int differ = h.n_meta != f.n_meta || strcmp(h.kind, f.kind) || h.n_tensors != 0;
        for (int i = 0; !differ && i < f.n_meta; i++)
            differ = strcmp(f.meta[i].key, h.meta[i].key) || strcmp(f.meta[i].value, h.meta[i].value);
        amtl_file_free(&h);
        if (differ) {
            fprintf(stderr, "the head is not the file's\n");
            abort();
        }
    }
    /* what decodes encodes, and decodes to the same */
    void *buf = NULL;
    size_t len = 0;
    int bad = 0;
    if (amtl_file_encode(&f, &buf, &len, &st) ||
        amtl_file_decode(&g, buf, len, "re-encoded", f.kind, &st)) {
        fprintf(stderr, "round trip failed: %s\n", st.msg);
        bad = 1;
    } else {
        bad = g.n_meta != f.n_meta || g.n_tensors != f.n_tensors;
        for (int i = 0; !bad && i < f.n_tensors; i++) {
            const amtl_tensor *a = &f.tensors[i].t, *b = &g.tensors[i].t;
            bad = strcmp(f.tensors[i].name, g.tensors[i].name) || a->dtype != b->dtype ||
                  a->ndim != b->ndim || amtl_tensor_nbytes(a) != amtl_tensor_nbytes(b) ||
                  memcmp(a->data, b->data, amtl_tensor_nbytes(a));
        }
        for (int i = 0; !bad && i < f.n_meta; i++)
            bad = strcmp(f.meta[i].key, g.meta[i].key) || strcmp(f.meta[i].value, g.meta[i].value);
        amtl_file_free(&g);
    }
    free(buf);
    /* lookups with every dtype and any shape */
    for (int i = 0; i < f.n_tensors && i < 8; i++) {
        int64_t shape[2] = {-1, -1};
        amtl_file_get(&f, "fuzz", f.tensors[i].name, f.tensors[i].t.dtype,
                      f.tensors[i].t.ndim > 2 ? 2 : f.tensors[i].t.ndim, shape, &st);
    }
    amtl_file_free(&f);
    return bad;
}

/* ---- dataset ------------------------------------------------------------------ */

static void gather_ends(const amtl_dataset *ds);

int amtl_fuzz_dataset(const uint8_t *data, size_t size)
{
    amtl_file f;
    amtl_dataset ds;
    amtl_status st;
    /* the bytes sealed, through the tools' reader: verified from the file,
     * mapped, the aligned columns used in place and given back once checked */
    uint8_t *copy = malloc(size ? size : 1);
    if (copy) {
        char path[64];
        if (size)
            memcpy(copy, data, size);
        amtl_envelope_seal(copy, size);
        int fd = mem_path(copy, size, path, sizeof path);
        if (fd >= 0) {
            if (amtl_dataset_read(&ds, path, &st) == 0) {
                gather_ends(&ds);
                amtl_dataset_free(&ds);
            }
            close(fd);
        }
        free(copy);
    }
    if (decode_sealed(&f, data, size, "dataset", &st))
        return 0;
    if (amtl_dataset_from_file(&ds, &f, "fuzz", &st)) {
        amtl_file_free(&f);
        return 0;
    }
    gather_ends(&ds);
    amtl_dataset_free(&ds);
    return 0;
}

/* The first and last rows of every split gathered, as training does. */
static void gather_ends(const amtl_dataset *ds)
{
    for (int s = 0; s < AMTL_N_SPLITS; s++) {
        int64_t n = ds->split[s].rows;
        if (n < 1 || ds->N > 64 || ds->D > 64 || ds->T > 64)
            continue;
        int32_t rows[2] = {0, (int32_t)(n - 1)}, ids[2 * 64];
        float dense[2 * 64], labels[2 * 64];
        amtl_batch b = {.B = 2, .ids = ids, .dense = dense, .labels = labels};
        amtl_dataset_gather(ds, s, rows, 2, &b);
    }
}

/* ---- checkpoint and model ------------------------------------------------- */

/* As amtl-discretize and amtl-eval load one: the data's shape and the config
 * from the file, then the trainer. */
static int load_trained(const uint8_t *data, size_t size, const char *kind, int model)
{
    amtl_file f;
    amtl_dataset shape;
    amtl_config cfg;
    amtl_trainer tr;
    amtl_status st;
    char *yaml = NULL;
    memset(&cfg, 0, sizeof cfg);
    memset(&shape, 0, sizeof shape);
    if (decode_sealed(&f, data, size, kind, &st))
        return 0;
    if (amtl_dataset_shape(&shape, &f, "fuzz", &st))
        goto out;
    if (amtl_file_config_yaml(&f, &yaml, &st) || amtl_config_defaults(&cfg, &st) ||
        (yaml && amtl_config_load_string(&cfg, yaml, strlen(yaml), "fuzz", &st)))
        goto out;
    if (!within_caps(&cfg) || !within_shape_caps(&shape))
        goto out;
    cfg.batch_size = 2;
    if (model) {
        /* the vocabularies amtl-eval --predict maps raw tokens with */
        for (int i = 0; i < shape.N; i++) {
            char nm[300];
            snprintf(nm, sizeof nm, "vocab.%s", shape.sparse_names[i]);
            const amtl_tensor *v = amtl_file_find(&f, nm);
            if (!v || v->dtype != AMTL_U8 || v->ndim != 1)
                continue;
            amtl_vocab_map m;
            if (amtl_vocab_map_init(&m, v->data, amtl_tensor_nbytes(v), shape.vocab[i], nm,
                                    &st) == 0) {
                amtl_vocab_map_id(&m, "a", 1);
                amtl_vocab_map_free(&m);
            }
        }
    }
    if (amtl_trainer_load_file(&tr, &f, "fuzz", &shape, &cfg, &st) == 0) {
        forward_two_rows(&tr.net);
        amtl_trainer_free(&tr);
    }
out:
    free(yaml);
    amtl_config_free(&cfg);
    amtl_dataset_shape_free(&shape);
    amtl_file_free(&f);
    return 0;
}

int amtl_fuzz_checkpoint(const uint8_t *data, size_t size)
{
    return load_trained(data, size, "checkpoint", 0);
}

int amtl_fuzz_model(const uint8_t *data, size_t size)
{
    return load_trained(data, size, "model", 1);
}

/* ---- architecture ------------------------------------------------------------- */

/* A row-less dataset with the architecture's fields and labels, vocab 3. */
static int arch_shape(const amtl_file *f, amtl_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    const char *lists[2] = {amtl_file_meta(f, "sparse_fields"), amtl_file_meta(f, "labels")};
    char ***out[2] = {&ds->sparse_names, &ds->label_names};
    int *n[2] = {&ds->N, &ds->T};
    for (int k = 0; k < 2; k++) {
        const char *s = lists[k];
        if (!s || !*s)
            return -1;
        int cnt = 1;
        for (const char *p = s; *p; p++)
            cnt += *p == '\n';
        if (cnt > 16 || !(*out[k] = calloc((size_t)cnt, sizeof(char *))))
            return -1;
        *n[k] = cnt;
        for (int i = 0; i < cnt; i++) {
            const char *e = strchr(s, '\n');
            size_t len = e ? (size_t)(e - s) : strlen(s);
            (*out[k])[i] = strndup(s, len);
            s = e ? e + 1 : s + len;
        }
    }
    const char *nd = amtl_file_meta(f, "n_dense");
    ds->D = nd ? atoi(nd) : 0;
    if (ds->D < 0 || ds->D > 16)
        ds->D = 0;
    ds->dense_names = calloc((size_t)(ds->D ? ds->D : 1), sizeof(char *));
    for (int i = 0; ds->dense_names && i < ds->D; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "dense%d", i);
        ds->dense_names[i] = strdup(nm);
    }
    ds->vocab = malloc((size_t)ds->N * sizeof(int32_t));
    for (int i = 0; ds->vocab && i < ds->N; i++)
        ds->vocab[i] = 3;
    return 0;
}

int amtl_fuzz_arch(const uint8_t *data, size_t size)
{
    amtl_file f;
    amtl_status st;
    amtl_config cfg;
    amtl_dataset ds;
    memset(&cfg, 0, sizeof cfg);
    memset(&ds, 0, sizeof ds);
    if (decode_sealed(&f, data, size, AMTL_ARCH_KIND, &st))
        return 0;
    if (amtl_arch_check(&f, "fuzz", &st))
        goto out;
    static const char *const views[] = {"text", "json", "dot"};
    for (int v = 0; v < 3; v++) {
        amtl_strbuf b = {0};
        amtl_arch_view(&f, views[v], &b, &st);
        amtl_strbuf_free(&b);
    }
    if (amtl_config_defaults(&cfg, &st) || amtl_arch_config(&f, &cfg, "fuzz", &st) ||
        amtl_config_validate(&cfg, &st) || !within_caps(&cfg))
        goto out;
    if (arch_shape(&f, &ds))
        goto out;
    amtl_supernet net;
    amtl_rng rng;
    amtl_rng_seed(&rng, 1);
    if (amtl_supernet_init(&net, &cfg, &ds, &rng, &st))
        goto out;
    if (amtl_arch_apply(&net, &f, "fuzz", &st) == 0)
        forward_two_rows(&net);
    amtl_supernet_free(&net);
out:
    amtl_dataset_shape_free(&ds);
    amtl_config_free(&cfg);
    amtl_file_free(&f);
    return 0;
}

/* ---- YAML config ------------------------------------------------------------------ */

/* The overrides of a, applied over the defaults, give a's dump y (what
 * --dump-overrides promises); 1 when they do not. */
static int overrides_give_back(const amtl_config *a, const char *y)
{
    amtl_config c;
    amtl_status st;
    char *lines = NULL, *y3 = NULL;
    int bad = 0;
    memset(&c, 0, sizeof c);
    if (amtl_config_defaults(&c, &st) || amtl_config_dump_overrides(a, &lines, &st))
        goto out; /* a string with a line break has no KEY=VALUE form */
    for (char *line = lines, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        *nl = '\0';
        if (amtl_config_set_kv(&c, line, &st)) {
            fprintf(stderr, "override '%s' does not read back: %s\n", line, st.msg);
            bad = 1;
            goto out;
        }
    }
    if (amtl_config_dump(&c, &y3, &st) || strcmp(y, y3)) {
        fprintf(stderr, "the overrides do not give the same config:\n%s\n----\n%s\n", y,
                y3 ? y3 : st.msg);
        bad = 1;
    }
out:
    free(lines);
    free(y3);
    amtl_config_free(&c);
    return bad;
}

/* YAML text, or "set:key=value" for one --set override; either way the
 * dump of the result must read back to the same dump, and so must its
 * overrides applied over the defaults. */
int amtl_fuzz_config(const uint8_t *data, size_t size)
{
    amtl_config a, b;
    amtl_status st;
    char *y1 = NULL, *y2 = NULL;
    int bad = 0;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    if (amtl_config_defaults(&a, &st) || amtl_config_defaults(&b, &st))
        goto out;
    if (size > 4 && !memcmp(data, "set:", 4)) {
        /* "set:key=value" as --set gives it */
        char *kv = strndup((const char *)data + 4, size - 4);
        int rc = kv ? amtl_config_set_kv(&a, kv, &st) : -1;
        free(kv);
        if (rc)
            goto out;
    } else if (amtl_config_load_string(&a, (const char *)data, size, "fuzz.yaml", &st)) {
        goto out;
    }
    amtl_config_validate(&a, &st);
    /* what is dumped reads back to the same dump */
    if (amtl_config_dump(&a, &y1, &st))
        goto out;
    if (amtl_config_load_string(&b, y1, strlen(y1), "dump", &st) ||
        amtl_config_dump(&b, &y2, &st)) {
        fprintf(stderr, "the dump does not read back: %s\n", st.msg);
        bad = 1;
    } else if (strcmp(y1, y2)) {
        fprintf(stderr, "dump, load, dump changed:\n%s\n----\n%s\n", y1, y2);
        bad = 1;
    } else {
        bad = overrides_give_back(&a, y1);
    }
out:
    free(y1);
    free(y2);
    amtl_config_free(&a);
    amtl_config_free(&b);
    return bad;
}

amtl_fuzz_fn amtl_fuzz_target(const char *name)
{
    static const struct {
        const char *name;
        amtl_fuzz_fn fn;
    } t[] = {{"csv", amtl_fuzz_csv},     {"prep", amtl_fuzz_prep},
             {"file", amtl_fuzz_file},   {"dataset", amtl_fuzz_dataset},
             {"checkpoint", amtl_fuzz_checkpoint}, {"model", amtl_fuzz_model},
             {"arch", amtl_fuzz_arch},   {"config", amtl_fuzz_config}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(t[i].name, name))
            return t[i].fn;
    return NULL;
}
