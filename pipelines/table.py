#!/usr/bin/env python3
"""table.py — the results table of a pipeline run, as TSV on stdout.

Usage: table.py RUN MODEL...     one row per model of the run directory RUN
       table.py --stages RUN     the wall time of every stage of RUN, one line
       table.py --floor TSV      notes on the models below the linear floor

A MODEL is a name with RUN/NAME.eval.json (amtl-eval --json).  "searched" is
the searched model, whose architecture is RUN/arch.amtl; the models
single-task-0, single-task-1, ... make one row "single-task" in which task i's
AUC is that of model i, and the parameters and seconds are summed.

Columns: model, test AUC of each task, mean AUC, live weights (params), and
wall-clock seconds (pipelines/timed writes RUN/wall/FILE.seconds for the
stage that made RUN/FILE): search s (the supernet's epochs and the export;
searched model only), train s (amtl-train), eval s (amtl-eval), wall s
(every stage of the model: those and amtl-discretize --baseline; not
amtl-prep, which the models share); then the architecture and model files.  A stage without a wall file
(a run made before the pipelines timed their stages) makes its seconds n/a.
"""
import glob
import json
import os
import re
import sys


def wall(run, name):
    """The wall seconds of the stage that made RUN/NAME, or None."""
    try:
        with open(os.path.join(run, "wall", name + ".seconds")) as f:
            return float(f.read().strip())
    except (OSError, ValueError):
        return None


def total(values):
    return None if any(v is None for v in values) else sum(values)


def supernet_stages(run):
    """The checkpoints of the supernet's epochs with a wall file, in order."""
    def key(name):
        m = re.match(r"(warmup|search)-(\d+)\.ckpt$", name)
        if m:
            return (0 if m.group(1) == "warmup" else 1, int(m.group(2)))
        return (2, 0)
    names = [os.path.basename(p)[:-len(".seconds")]
             for p in glob.glob(os.path.join(run, "wall", "*.ckpt.seconds"))]
    return sorted(names, key=key)


def fmt_auc(v):
    return "n/a" if v is None else "%.4f" % v


def fmt_s(v):
    return "n/a" if v is None else "%.1f" % v


def mean(values):
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def collect(run, models):
    """One dict per row of the table: model, tasks [(name, auc)], mean,
    params, search_s (None for baselines), train_s, eval_s, wall_s (None
    when a stage's wall file is missing), arch, model_file."""
    evals = {}
    for m in models:
        with open(os.path.join(run, m + ".eval.json")) as f:
            evals[m] = json.load(f)
    tasks = list(evals[models[0]]["tasks"])
    single = [m for m in models if m.startswith("single-task-")]
    rows = []
    for m in models:
        if m in single and m != single[0]:
            continue
        if m in single:
            aucs = []
            for i, t in enumerate(tasks):
                name = "single-task-%d" % i
                aucs.append(evals[name]["tasks"][t]["auc"] if name in evals else None)
            train = total([wall(run, s + ".model") for s in single])
            ev = total([wall(run, s + ".eval.json") for s in single])
            arch = total([wall(run, s + ".arch") for s in single])
            rows.append({"model": "single-task", "tasks": list(zip(tasks, aucs)),
                         "mean": mean(aucs),
                         "params": sum(evals[s]["live_weights"] for s in single),
                         "search_s": None, "train_s": train, "eval_s": ev,
                         "wall_s": total([arch, train, ev]),
                         "arch": os.path.join(run, "single-task-*.arch"),
                         "model_file": os.path.join(run, "single-task-*.model")})
            continue
        e = evals[m]
        train = wall(run, m + ".model")
        ev = wall(run, m + ".eval.json")
        if m == "searched":
            stages = supernet_stages(run)
            search = total([wall(run, s) for s in stages] + [wall(run, "arch.amtl")]) \
                if stages else None
            arch_file = os.path.join(run, "arch.amtl")
            everything = total([search, train, ev])
        else:
            search = None
            arch_file = os.path.join(run, m + ".arch")
            everything = total([wall(run, m + ".arch"), train, ev])
        rows.append({"model": m, "tasks": [(t, e["tasks"][t]["auc"]) for t in tasks],
                     "mean": e["mean_auc"], "params": e["live_weights"],
                     "search_s": search, "train_s": train, "eval_s": ev,
                     "wall_s": everything, "arch": arch_file,
                     "model_file": os.path.join(run, m + ".model")})
    return rows


def table(run, models):
    rows = collect(run, models)
    tasks = [t for t, _ in rows[0]["tasks"]]
    out = [["model"] + [t + " AUC" for t in tasks] +
           ["mean AUC", "params", "search s", "train s", "eval s", "wall s", "arch", "model"]]
    for r in rows:
        out.append([r["model"]] + [fmt_auc(a) for _, a in r["tasks"]] +
                   [fmt_auc(r["mean"]), str(r["params"]),
                    "-" if r["model"] != "searched" else fmt_s(r["search_s"]),
                    fmt_s(r["train_s"]), fmt_s(r["eval_s"]), fmt_s(r["wall_s"]),
                    r["arch"], r["model_file"]])
    return out


def stages_line(run):
    """One line: the wall seconds of amtl-prep, each supernet epoch and the
    export (the per-model stages are the table's columns)."""
    parts = []
    prep = wall(run, "data.amtl")
    if prep is not None:
        parts.append("prep %.1f" % prep)
    sup = supernet_stages(run)
    if sup:
        parts.append("supernet " + ", ".join("%s %.1f" % (s[:-5], wall(run, s)) for s in sup))
    export = wall(run, "arch.amtl")
    if export is not None:
        parts.append("export %.1f" % export)
    return "wall s per stage: " + "; ".join(parts) if parts else ""


def floor_notes(path):
    """The models whose test AUC is below the linear model's on some task."""
    with open(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    head, body = rows[0], rows[1:]
    cols = [i for i, h in enumerate(head) if h.endswith(" AUC") and h != "mean AUC"]
    floor = [r for r in body if r[0] == "linear"]
    if not floor:
        return []
    notes = []
    for r in body:
        if r[0] == "linear":
            continue
        below = [head[i][:-4] for i in cols
                 if r[i] != "n/a" and floor[0][i] != "n/a" and float(r[i]) < float(floor[0][i])]
        if below:
            notes.append("note: %s is below the linear floor on %s: a finding to investigate"
                         % (r[0], ", ".join(below)))
    return notes


def main(argv):
    if len(argv) == 3 and argv[1] == "--floor":
        for n in floor_notes(argv[2]):
            print(n)
        return 0
    if len(argv) == 3 and argv[1] == "--stages":
        line = stages_line(argv[2])
        if line:
            print(line)
        return 0
    if len(argv) < 3 or argv[1].startswith("-"):
        sys.stderr.write("usage: table.py RUN MODEL... | table.py --stages RUN | "
                         "table.py --floor TSV\n")
        return 2
    for row in table(argv[1], argv[2:]):
        print("\t".join(row))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
