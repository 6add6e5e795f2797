#!/usr/bin/env python3
"""curves.py — the metrics of a pipeline run as tables gnuplot reads.

Usage: curves.py RUN OUTDIR

Reads RUN/metrics.jsonl (the supernet's epochs: warm-up, search, frozen) and
RUN/searched.jsonl (the fine-tuning of the searched model), and every other
RUN/NAME.jsonl that has a NAME.model (the baselines).  Writes, in OUTDIR:

  search.tsv   one row per epoch of the search and the fine-tuning, numbered
               from 0 across both: epoch, train loss, arch entropy, mixed ops,
               validation mean AUC, then the validation AUC of each task
               ("NaN" where a value is missing: no entropy after export, no
               AUC for a one-class split)
  models.tsv   epoch, then the validation AUC of each model per epoch of its
               own training (the searched model's fine-tuning included): the
               mean over tasks, or for a single-task model its own task's
  phases.gp    gnuplot variables: ntasks, nsupernet, nmodels, and the macros
               phases and phases_supernet, which mark the phase changes with
               dashed lines and names

The files are written whole to a temporary name and renamed.
"""
import glob
import json
import math
import os
import sys


def read_jsonl(path):
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def num(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "NaN"
    return "%.6g" % v


def tasks_of(rows):
    for r in rows:
        ts = [k[len("val_auc."):] for k in r if k.startswith("val_auc.")]
        if ts:
            return ts
    return []


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: curves.py RUN OUTDIR\n")
        return 2
    run, out = argv[1], argv[2]
    supernet = read_jsonl(os.path.join(run, "metrics.jsonl"))
    ft_path = os.path.join(run, "searched.jsonl")
    finetune = read_jsonl(ft_path) if os.path.exists(ft_path) else []
    rows = [dict(r) for r in supernet] + [dict(r, phase="fine-tune") for r in finetune]
    tasks = tasks_of(rows)

    lines = ["\t".join(["epoch", "train loss", "arch entropy", "mixed ops", "mean"] + tasks)]
    for i, r in enumerate(rows):
        after_export = r["phase"] == "fine-tune"
        lines.append("\t".join(
            [str(i), num(r.get("train_loss")),
             "NaN" if after_export else num(r.get("arch_entropy")),
             "NaN" if after_export else num(r.get("mixed_ops")),
             num(r.get("val_mean_auc"))] +
            [num(r.get("val_auc." + t)) for t in tasks]))
    write(os.path.join(out, "search.tsv"), "\n".join(lines) + "\n")

    # phase changes: a dashed line before the first epoch of each new phase,
    # the phase's name beside it (two heights, so that short phases fit)
    names = {"warmup": "warm-up", "search": "search", "finetune": "frozen",
             "fine-tune": "fine-tune"}
    gp = ["ntasks = %d" % len(tasks), "nsupernet = %d" % len(supernet)]
    marks = []
    prev = None
    for i, r in enumerate(rows):
        if r["phase"] != prev:
            marks.append((i, names.get(r["phase"], r["phase"]), r["phase"] == "fine-tune"))
            prev = r["phase"]
    for what, keep in (("phases", lambda ft: True), ("phases_supernet", lambda ft: not ft)):
        gp.append("%s = \"\\" % what)
        for n, (i, name, ft) in enumerate(marks):
            if not keep(ft):
                continue
            if i > 0:
                gp.append("set arrow from %g, graph 0 to %g, graph 1 nohead dt 2 lc rgb 'gray50';\\"
                          % (i - 0.5, i - 0.5))
            gp.append("set label '%s' at %g, graph %g left font ',9' tc rgb 'gray30';\\"
                      % (name, i - 0.4 if i > 0 else -0.15, 0.97 if n % 2 == 0 else 0.93))
        gp.append("\"")

    # (title, rows, key): a single-task model is scored on its own task
    models = [("searched", finetune, "val_mean_auc")] if finetune else []
    order = ["shared-bottom", "mmoe", "ple", "linear"]
    found = []
    for path in glob.glob(os.path.join(run, "*.jsonl")):
        name = os.path.basename(path)[:-len(".jsonl")]
        if name != "searched" and os.path.exists(os.path.join(run, name + ".model")):
            found.append(name)
    found.sort(key=lambda n: (order.index(n) if n in order else len(order), n))
    for name in found:
        rows_m = read_jsonl(os.path.join(run, name + ".jsonl"))
        key, title = "val_mean_auc", name
        if name.startswith("single-task-") and name[12:].isdigit() and int(name[12:]) < len(tasks):
            t = tasks[int(name[12:])]
            key, title = "val_auc." + t, "single-task " + t
        models.append((title, rows_m, key))
    n = max([len(m[1]) for m in models] + [0])
    lines = ["\t".join(["epoch"] + [m[0] for m in models])]
    for i in range(n):
        lines.append("\t".join([str(i)] + [num(m[1][i].get(m[2])) if i < len(m[1])
                                           else "NaN" for m in models]))
    write(os.path.join(out, "models.tsv"), "\n".join(lines) + "\n")
    gp.append("nmodels = %d" % len(models))
    write(os.path.join(out, "phases.gp"), "\n".join(gp) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
