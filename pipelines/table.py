#!/usr/bin/env python3
"""table.py — the results table of a pipeline run, as TSV on stdout.

Usage: table.py RUN MODEL...     one row per model of the run directory RUN
       table.py --floor TSV      notes on the models below the linear floor

A MODEL is a name with RUN/NAME.eval.json (amtl-eval --json) and
RUN/NAME.jsonl (amtl-train's metrics).  "searched" also counts the supernet's
seconds (RUN/metrics.jsonl) and its architecture is RUN/arch.amtl; the models
single-task-0, single-task-1, ... make one row "single-task" in which task i's
AUC is that of model i, and the parameters and seconds are summed.

Columns: model, test AUC of each task, mean AUC, live weights (params), the
seconds of the search (supernet epochs) and of training (amtl-train epochs),
both summed from the metrics files, and the architecture and model files.
"""
import json
import os
import sys


def seconds(path):
    total = 0.0
    with open(path) as f:
        for line in f:
            if line.strip():
                total += float(json.loads(line).get("seconds", 0.0))
    return total


def fmt_auc(v):
    return "n/a" if v is None else "%.4f" % v


def mean(values):
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def table(run, models):
    evals = {}
    for m in models:
        with open(os.path.join(run, m + ".eval.json")) as f:
            evals[m] = json.load(f)
    tasks = list(evals[models[0]]["tasks"])
    rows = [["model"] + [t + " AUC" for t in tasks] +
            ["mean AUC", "params", "search s", "train s", "arch", "model"]]
    single = [m for m in models if m.startswith("single-task-")]
    for m in models:
        if m in single and m != single[0]:
            continue
        if m in single:
            aucs = []
            for i, t in enumerate(tasks):
                name = "single-task-%d" % i
                aucs.append(evals[name]["tasks"][t]["auc"] if name in evals else None)
            params = sum(evals[s]["live_weights"] for s in single)
            train_s = sum(seconds(os.path.join(run, s + ".jsonl")) for s in single)
            rows.append(["single-task"] + [fmt_auc(a) for a in aucs] +
                        [fmt_auc(mean(aucs)), str(params), "-", "%.1f" % train_s,
                         os.path.join(run, "single-task-*.arch"),
                         os.path.join(run, "single-task-*.model")])
            continue
        e = evals[m]
        aucs = [e["tasks"][t]["auc"] for t in tasks]
        search_s = "-"
        arch = os.path.join(run, m + ".arch")
        if m == "searched":
            search_s = "%.1f" % seconds(os.path.join(run, "metrics.jsonl"))
            arch = os.path.join(run, "arch.amtl")
        rows.append([m] + [fmt_auc(a) for a in aucs] +
                    [fmt_auc(e["mean_auc"]), str(e["live_weights"]), search_s,
                     "%.1f" % seconds(os.path.join(run, m + ".jsonl")), arch,
                     os.path.join(run, m + ".model")])
    return rows


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
    if len(argv) < 3 or argv[1].startswith("-"):
        sys.stderr.write("usage: table.py RUN MODEL... | table.py --floor TSV\n")
        return 2
    for row in table(argv[1], argv[2:]):
        print("\t".join(row))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
