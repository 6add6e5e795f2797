/* envelope_stream.c — streamed tensors: their bytes made by a fill as they
 * are written or hashed, or made once into memory (see envelope.h). */
#include "format/envelope.h"

#include <string.h>

/* What a fill puts goes through this: counted, and no more than the tensor
 * holds. */
typedef struct {
    amtl_put_fn put;
    void *ctx;
    const char *name;
    size_t done, bytes;
} counted_put;

static int put_counted(void *ctx, const void *p, size_t n, amtl_status *st)
{
    counted_put *c = ctx;
    if (n > c->bytes - c->done)
        return amtl_error(st, AMTL_EDATA, "tensor '%s': its fill made more than %zu bytes",
                          c->name, c->bytes);
    c->done += n;
    return n ? c->put(c->ctx, p, n, st) : 0;
}

int amtl_file_tensor_bytes(const amtl_file *f, int i, amtl_put_fn put, void *ctx,
                           amtl_status *st)
{
    const amtl_named_tensor *nt = &f->tensors[i];
    size_t bytes = amtl_tensor_nbytes(&nt->t);
    if (!nt->fill)
        return bytes ? put(ctx, nt->t.data, bytes, st) : 0;
    counted_put c = {put, ctx, nt->name, 0, bytes};
    if (nt->fill(nt->fill_ctx, put_counted, &c, st))
        return -1;
    if (c.done != bytes)
        return amtl_error(st, AMTL_EDATA, "tensor '%s': its fill made %zu of %zu bytes",
                          nt->name, c.done, bytes);
    return 0;
}

static int put_copy(void *ctx, const void *p, size_t n, amtl_status *st)
{
    (void)st;
    unsigned char **at = ctx;
    memcpy(*at, p, n);
    *at += n;
    return 0;
}

int amtl_file_materialize(amtl_file *f, amtl_status *st)
{
    for (int i = 0; i < f->n_tensors; i++) {
        amtl_named_tensor *nt = &f->tensors[i];
        if (!nt->fill)
            continue;
        amtl_tensor t;
        if (amtl_tensor_alloc(&t, nt->t.dtype, nt->t.ndim, nt->t.shape, st))
            return amtl_error_context(st, "tensor '%s'", nt->name);
        unsigned char *at = t.data;
        if (amtl_file_tensor_bytes(f, i, put_copy, &at, st)) {
            amtl_tensor_free(&t);
            return -1;
        }
        nt->t = t;
        nt->fill = NULL;
        nt->fill_ctx = NULL;
    }
    return 0;
}
