/* arch.h — the architecture file: a discrete point of the DESAN search space.
 *
 * An architecture is what PD-DARTS exports (DESIGN.md section 4, step 4) and
 * what amtl-train trains: the op chosen by every MixedOp, the 0/1 feature
 * selections of the layer-0 experts and the 0/1 expert selections of every
 * consumer.  It is an amtl_file of kind "architecture" (amtl-architecture(5)):
 *
 *   arch.ops      i32 [L, K, NL]   chosen candidate of MixedOp (l, j, b),
 *                                  an index into the config's `ops`
 *   arch.single   f32 [K, N]       1 = layer-0 expert j uses field f's embedding
 *   arch.inter    f32 [K, N]       1 = field f enters expert j's FM interaction
 *   arch.experts  f32 [C, K]       1 = consumer c uses expert i of its input layer;
 *                                  C = (L-1)*K + T: the K experts of layer 1,
 *                                  ..., of layer L-1, then the T tasks
 *   <arch param>  f32              optional: the alpha / beta values the choice
 *                                  came from, under the supernet's names
 *                                  ("experts.0.1.blocks.2.alpha",
 *                                  "feature_modules.0.single_beta", ...)
 * meta: "config" (the whole configuration as YAML: the model keys travel with
 * the architecture), "sparse_fields" and "labels" (names joined by '\n'),
 * "n_dense" (the dense field count, for the views), "creator", and for
 * baselines "baseline" and "baseline_op".
 *
 * Baselines (DESIGN.md section 7) are architectures too, made without a
 * supernet by amtl_arch_baseline.
 */
#ifndef AMTL_ARCH_H
#define AMTL_ARCH_H

#include "format/config.h"
#include "data/dataset.h"
#include "base/error.h"
#include "format/io.h"
#include "model/supernet.h"

#define AMTL_ARCH_KIND "architecture"
/* Expert op of the non-linear baselines when none is given: as wide as the
 * default expert width H = 64. */
#define AMTL_ARCH_DEFAULT_OP "MLP-64"

/* Writes the architecture of an exported supernet (every MixedOp chosen,
 * selections fixed: amtl_supernet_export) into out, which is initialised
 * here (free it with amtl_file_free).  cfg is the configuration the net was
 * built from; it is stored as meta "config". */
int amtl_arch_from_supernet(amtl_file *out, const amtl_supernet *net,
                            const amtl_config *cfg, amtl_status *st);

/* Checks a decoded file: kind, meta, every required tensor and its shape, op
 * indices and 0/1 selections.  Messages name `what` (usually the path). */
int amtl_arch_check(const amtl_file *arch, const char *what, amtl_status *st);

/* amtl_file_read of kind "architecture" followed by amtl_arch_check. */
int amtl_arch_read(amtl_file *f, const char *path, amtl_status *st);

/* Applies the model keys stored with the architecture (every key of the
 * configuration's model section, and task_weights when the file sets them)
 * on top of cfg, all or nothing, so that a supernet built from cfg has the
 * architecture's shape.  Apply command-line overrides after this. */
int amtl_arch_config(const amtl_file *arch, amtl_config *cfg, const char *what,
                     amtl_status *st);

/* Makes net discrete as the file says: every MixedOp's `chosen`, the fixed
 * feature and expert selections, warm-up off, and the stored alpha / beta
 * values (each tensor by its own name; absent ones are left alone).  The net
 * must have the file's L, K, NL, ops, and the same sparse fields and labels
 * in the same order.  Liveness is recomputed.  On error net is unchanged. */
int amtl_arch_apply(amtl_supernet *net, const amtl_file *arch, const char *what,
                    amtl_status *st);

/* A view of the architecture for people or tools: format "text" (a readable
 * summary), "json" (one JSON object) or "dot" (a Graphviz digraph).  Appends
 * to out. */
int amtl_arch_view(const amtl_file *arch, const char *format, amtl_strbuf *out,
                   amtl_status *st);

/* A hand-designed model as an architecture, for the dataset's fields and
 * labels, with base_cfg's other keys:
 *   "shared-bottom"   K=1, L=1: the one expert feeds every task
 *   "mmoe"            L=1, K=n_experts, every task uses every expert
 *   "ple"             L=1, K=T+1: task t uses expert t and the shared expert T
 *   "single-task:<t>" shared-bottom with task_weights one-hot on task t (a
 *                     label name, or an index counted from 0)
 *   "linear"          logistic regression: E=1, K=1, L=1, one Identity block,
 *                     no tower hidden layer, dropout 0
 * Every layer-0 expert uses every field's embedding and no FM interaction.
 * op (NULL or "" = AMTL_ARCH_DEFAULT_OP) is every expert block's op; the
 * linear floor takes none (or "Identity"). */
int amtl_arch_baseline(amtl_file *out, const char *kind, const char *op,
                       const amtl_dataset *ds, const amtl_config *base_cfg,
                       amtl_status *st);

#endif
