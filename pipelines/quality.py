#!/usr/bin/env python3
"""quality.py — the tables of make quality (pipelines/quality.mk).

Usage: quality.py --out DIR --datasets "A B" --seeds "1 2 3" [--baselines "..."]
                  [--config NAME=FILE]... [--not-measured "X Y"] [--quick TEXT]
                  [--set TEXT]

Reads the runs DIR/NAME/sSEED (pipelines/search.mk run directories: each
model's NAME.eval.json and the wall files, through table.py) and writes
DIR/quality.tsv, one row per data set, model and seed, and DIR/quality.md,
one Markdown table per data set: each task's test AUC and the mean test AUC,
averaged over the seeds, the mean's sample standard deviation and range over
the seeds, and the mean wall seconds of each model; under each table a
finding line when a deep model is below the linear floor, and the searched
model against each baseline on the same test rows (searched.vs-NAME.json,
amtl-eval --against: the paired difference and its standard error).  A run whose
searched.eval.json is missing is left out, and the report says so.
"""
import argparse
import glob
import json
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import table  # noqa: E402  (pipelines/table.py)

ORDER = ["searched", "mmoe", "ple", "shared-bottom", "single-task", "linear"]
SHOWN = {"searched": "searched", "mmoe": "MMoE", "ple": "PLE",
         "shared-bottom": "Shared-Bottom", "single-task": "single-task",
         "linear": "linear floor"}


def run_models(run, baselines):
    models = ["searched"]
    for b in baselines:
        if b == "single-task":
            found = glob.glob(os.path.join(run, "single-task-*.eval.json"))
            idx = sorted(int(re.search(r"single-task-(\d+)\.eval\.json$", f).group(1))
                         for f in found)
            models += ["single-task-%d" % i for i in idx]
        else:
            models.append(b)
    return models


def fmt(v, digits=4):
    return "-" if v is None else "%.*f" % (digits, v)


def mean(vals):
    vals = [v for v in vals if v is not None]
    return sum(vals) / len(vals) if vals else None


def sd(vals):
    vals = [v for v in vals if v is not None]
    if len(vals) < 2:
        return None
    m = sum(vals) / len(vals)
    return math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))


def collect(out, datasets, seeds, baselines):
    """{dataset: {"tasks": [...], "runs": {seed: {"rows": [...], "prep": s,
    "test_rows": n}}, "missing": [seed...]}}"""
    data = {}
    for d in datasets:
        entry = {"tasks": [], "runs": {}, "missing": []}
        for s in seeds:
            run = os.path.join(out, d, "s%s" % s)
            if not os.path.exists(os.path.join(run, "searched.eval.json")):
                entry["missing"].append(s)
                continue
            rows = table.collect(run, run_models(run, baselines))
            with open(os.path.join(run, "searched.eval.json")) as f:
                test_rows = json.load(f).get("rows")
            paired = {}
            for b in baselines:
                path = os.path.join(run, "searched.vs-%s.json" % b)
                if os.path.exists(path):
                    with open(path) as f:
                        a = json.load(f).get("against", {})
                    if a.get("mean_auc_diff") is not None and a.get("diff_se") is not None:
                        paired[b] = (a["mean_auc_diff"], a["diff_se"])
            entry["runs"][s] = {"rows": rows, "prep": table.wall(run, "data.amtl"),
                                "test_rows": test_rows, "paired": paired}
            for t, _ in rows[0]["tasks"]:
                if t not in entry["tasks"]:
                    entry["tasks"].append(t)
        data[d] = entry
    return data


def write_tsv(path, data, datasets):
    tasks = []
    for d in datasets:
        for t in data[d]["tasks"]:
            if t not in tasks:
                tasks.append(t)
    lines = ["\t".join(["dataset", "model", "seed"] + [t + " AUC" for t in tasks] +
                       ["mean AUC", "params", "search s", "train s", "eval s", "wall s",
                        "prep s", "test rows"])]
    for d in datasets:
        for s, run in data[d]["runs"].items():
            for r in run["rows"]:
                auc = dict(r["tasks"])
                lines.append("\t".join(
                    [d, r["model"], str(s)] +
                    [fmt(auc[t]) if t in auc else "-" for t in tasks] +
                    # seconds as pipelines/timed measures them (a tiny
                    # model's stages can sum to under 0.05 s)
                    [fmt(r["mean"]), str(r["params"]), fmt(r["search_s"], 3),
                     fmt(r["train_s"], 3), fmt(r["eval_s"], 3), fmt(r["wall_s"], 3),
                     fmt(run["prep"], 3), str(run["test_rows"])]))
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def summarise(entry):
    """Per model: mean AUC per task, the mean AUCs per seed, mean wall s."""
    per = {}
    for s, run in entry["runs"].items():
        for r in run["rows"]:
            p = per.setdefault(r["model"], {"task": {}, "mean": [], "wall": []})
            for t, a in r["tasks"]:
                p["task"].setdefault(t, []).append(a)
            p["mean"].append(r["mean"])
            p["wall"].append(r["wall_s"])
    models = [m for m in ORDER if m in per] + sorted(m for m in per if m not in ORDER)
    return per, models


def findings(per, models, tasks):
    if "linear" not in per:
        return ["No linear floor in these runs (BASELINES): nothing to compare with."]
    floor = mean(per["linear"]["mean"])
    if floor is None:
        return []
    losers, notes = [], []
    for m in models:
        if m == "linear":
            continue
        mm = mean(per[m]["mean"])
        if mm is not None and mm < floor:
            below = sum(1 for a, b in zip(per[m]["mean"], per["linear"]["mean"])
                        if a is not None and b is not None and a < b)
            losers.append("%s %.4f (below in %d of %d seeds)"
                          % (SHOWN.get(m, m), mm, below, len(per[m]["mean"])))
        else:
            tl = [t for t in tasks
                  if mean(per[m]["task"].get(t, [])) is not None and
                  mean(per["linear"]["task"].get(t, [])) is not None and
                  mean(per[m]["task"][t]) < mean(per["linear"]["task"][t])]
            if tl:
                notes.append("%s on %s" % (SHOWN.get(m, m), ", ".join(tl)))
    out = []
    if losers:
        out.append("**Finding:** below the linear floor (mean test AUC %.4f): %s. "
                   "A deep model that loses to a logistic regression is a finding to "
                   "investigate, not a result to report (DESIGN.md section 7)."
                   % (floor, "; ".join(losers)))
    else:
        out.append("Every deep model clears the linear floor on the mean test AUC (%.4f)."
                   % floor)
    if notes:
        out.append("Below the floor on single tasks (means over the seeds): %s."
                   % "; ".join(notes))
    return out


def paired_lines(entry):
    """The searched model against each baseline on the same test rows: the
    difference of mean test AUC per seed with its paired standard error, and
    over the seeds the mean difference with the error of that mean (the
    seeds' errors combined as independent)."""
    runs = entry["runs"]
    names = []
    for r in runs.values():
        names += [b for b in r["paired"] if b not in names]
    names = [m for m in ORDER if m in names] + [m for m in names if m not in ORDER]
    if not names:
        return []
    seeds = list(runs)
    md = ["Searched minus each baseline on the same test rows (amtl-eval --against: "
          "difference of mean test AUC, ± its paired standard error, DeLong); the "
          "mean over the seeds ± the error of that mean:", "",
          "| against | " + " | ".join("seed %s" % s for s in seeds) + " | mean | in errors |",
          "|---|" + "---|" * len(seeds) + "---|---|"]
    for b in names:
        cells, ds, ses = [], [], []
        for s in seeds:
            p = runs[s]["paired"].get(b)
            cells.append("-" if p is None else "%+.4f ± %.4f" % p)
            if p is not None:
                ds.append(p[0])
                ses.append(p[1])
        if ds:
            m = sum(ds) / len(ds)
            se = math.sqrt(sum(x * x for x in ses)) / len(ses)
            tail = "%+.4f ± %.4f | %s" % (m, se, "%+.1f" % (m / se) if se > 0 else "-")
        else:
            tail = "- | -"
        md.append("| %s | %s | %s |" % (SHOWN.get(b, b), " | ".join(cells), tail))
    return md + [""]


def markdown(data, datasets, seeds, configs, not_measured, quick, sets):
    md = ["# Model quality on real data", "",
          "Made by `make quality` (pipelines/quality.mk); every row of every table is in "
          "quality.tsv.  Each seed is amtl-prep's split seed (for synthetic sets the data "
          "too) and every model's training seed; the test split is read once per number, "
          "by amtl-eval at the end.  AUC columns: test AUC averaged over the seeds; "
          "**mean test AUC**: mean over the tasks, averaged over the seeds, "
          "± its sample standard deviation over the seeds (n − 1), and its min–max over "
          "the seeds; **wall s**: mean wall-clock seconds of the model's own stages "
          "(searched: supernet epochs, export, fine-tuning, evaluation; baselines: "
          "architecture, training, evaluation; single-task: all its models), "
          "amtl-prep not included.", ""]
    if quick:
        md += ["**QUICK run** (%s): a test of the pipeline, not a measurement." % quick, ""]
    if sets:
        md += ["Overrides for every run: `%s`." % sets, ""]
    for d in datasets:
        e = data[d]
        md.append("## %s" % d)
        md.append("")
        info = ["config %s" % configs.get(d, "?"),
                "seeds %s" % " ".join(str(s) for s in seeds if s in e["runs"])]
        if e["runs"]:
            first = next(iter(e["runs"].values()))
            info.append("%s test rows" % first["test_rows"])
            prep = mean([r["prep"] for r in e["runs"].values()])
            if prep is not None:
                info.append("amtl-prep %.1f s" % prep)
        md.append("; ".join(info) + ".")
        if e["missing"]:
            md.append("")
            md.append("Runs missing (no searched.eval.json): seeds %s."
                      % " ".join(str(s) for s in e["missing"]))
        md.append("")
        if not e["runs"]:
            continue
        per, models = summarise(e)
        tasks = e["tasks"]
        md.append("| model | " + " | ".join(tasks) +
                  " | mean test AUC | min–max | wall s |")
        md.append("|---|" + "---|" * len(tasks) + "---|---|---|")
        for m in models:
            p = per[m]
            spread = sd(p["mean"])
            vals = [v for v in p["mean"] if v is not None]
            md.append("| %s | %s | %s%s | %s | %s |" % (
                SHOWN.get(m, m),
                " | ".join(fmt(mean(p["task"].get(t, []))) for t in tasks),
                fmt(mean(p["mean"])),
                "" if spread is None else " ± %.4f" % spread,
                "%.4f–%.4f" % (min(vals), max(vals)) if vals else "-",
                fmt(mean(p["wall"]), 1)))
        md.append("")
        md += findings(per, models, tasks)
        md.append("")
        md += paired_lines(e)
    if not_measured:
        md.append("Not measured: %s — samples of at most 100 rows in ../shared/data, "
                  "format tests only (tests/bats), too small to measure quality."
                  % ", ".join(not_measured))
        md.append("")
    return "\n".join(md)


def main(argv):
    ap = argparse.ArgumentParser(prog="quality.py", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--datasets", required=True)
    ap.add_argument("--seeds", required=True)
    ap.add_argument("--baselines", default="shared-bottom mmoe ple single-task linear")
    ap.add_argument("--config", action="append", default=[])
    ap.add_argument("--not-measured", default="")
    ap.add_argument("--quick", default="")
    ap.add_argument("--set", default="")
    a = ap.parse_args(argv[1:])
    datasets = a.datasets.split()
    seeds = a.seeds.split()
    configs = dict(c.split("=", 1) for c in a.config)
    data = collect(a.out, datasets, seeds, a.baselines.split())
    write_tsv(os.path.join(a.out, "quality.tsv"), data, datasets)
    md = markdown(data, datasets, seeds, configs, a.not_measured.split(), a.quick, a.set)
    tmp = os.path.join(a.out, "quality.md.tmp")
    with open(tmp, "w") as f:
        f.write(md)
    os.replace(tmp, os.path.join(a.out, "quality.md"))
    missing = sum(len(data[d]["missing"]) for d in datasets)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
