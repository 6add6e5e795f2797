#!/usr/bin/env python3
"""candidate-choice.py — how well does a rule for choosing the searched model
among its export candidates choose, judged on validation rows that did not
choose?  Reads the runs of `make quality` (OUT/NAME/sSEED), never the test
split.

Usage: bench/quality/candidate-choice.py [--bin BIN] [--splits N] [--margins Z,...] OUT|RUN...

OUT: every run OUT/NAME/sSEED under it; RUN: a run directory itself (one
with candidates.tsv), as make quality VALIDATION=1 names its runs.

For each run, each candidate (searched-T.model, searched-linear.model) and
each baseline (mmoe, ple, shared-bottom) is scored on the validation split
by amtl-eval --scores.  The validation rows are then cut in two halves at
random, N times: a rule chooses on half A as pipelines/pick-candidate does
(the linear fit kept unless a deep candidate's mean AUC beats it by Z paired
standard errors or more, DeLong as amtl-eval --against computes it; Z = inf:
the linear fit always; "deep": the best deep candidate, the linear fit not
a candidate), and the chosen model is scored on half B.  Printed per data
set: each rule's mean AUC on B minus the linear fit's and minus each
baseline's, averaged over the splits and the seeds, ± the error of that
mean over the seeds (their sample standard deviation over sqrt(seeds)),
and the min..max over the seeds.  The candidates were fine-tuned with
early stopping on the whole validation split, so half B is not untouched
by them; it is by the choice, which is what is compared.  Needs python3-numpy.
"""
import argparse
import glob
import os
import subprocess
import sys

import numpy as np

BASELINES = ["mmoe", "ple", "shared-bottom"]


def scores(bin_dir, model, data):
    out = subprocess.run([os.path.join(bin_dir, "amtl-eval"), "--model", model, "--data", data,
                          "--split", "val", "--scores"], check=True, capture_output=True,
                         text=True).stdout.splitlines()
    head = out[0].split("\t")
    rows = [l.split("\t") for l in out[1:]]
    y = np.array([[np.nan if r[k] == "-" else float(r[k]) for k in range(1, len(head), 2)]
                  for r in rows])
    p = np.array([[float(r[k]) for k in range(2, len(head), 2)] for r in rows])
    return y, p


def midranks(x):
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x))
    n = len(x)
    # ties: the mean of their positions (1-based)
    starts = np.r_[0, np.nonzero(np.diff(xs))[0] + 1]
    ends = np.r_[starts[1:], n]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    return ranks


def placements(p, y):
    """Each row's placement (DeLong): a positive's share of negatives it
    outscores, a negative's share of positives that outscore it, and the AUC."""
    pos = y == 1
    m, n = pos.sum(), (~pos).sum()
    r_all = midranks(p)
    r_pos = midranks(p[pos])
    r_neg = midranks(p[~pos])
    v = np.empty(len(p))
    v[pos] = (r_all[pos] - r_pos) / n
    v[~pos] = 1.0 - (r_all[~pos] - r_neg) / m
    auc = v[pos].mean()
    return v, pos, auc


def mean_auc(y, p, rows):
    a = []
    for k in range(y.shape[1]):
        yy, pp = y[rows, k], p[rows, k]
        ok = ~np.isnan(yy)
        yy, pp = yy[ok], pp[ok]
        if 0 < yy.sum() < len(yy):
            a.append(placements(pp, yy)[2])
    return float(np.mean(a))


def paired(y, pa, pb, rows):
    """Mean AUC difference a - b over the tasks and its DeLong standard error."""
    diffs = []
    contrib = np.zeros(len(rows))
    K = 0
    for k in range(y.shape[1]):
        yy = y[rows, k]
        ok = ~np.isnan(yy)
        yy = yy[ok]
        if not 0 < yy.sum() < len(yy):
            continue
        va, pos, aa = placements(pa[rows, k][ok], yy)
        vb, _, ab = placements(pb[rows, k][ok], yy)
        d = va - vb
        c = np.empty(len(d))
        c[pos] = (d[pos] - d[pos].mean()) / pos.sum()
        c[~pos] = (d[~pos] - d[~pos].mean()) / (~pos).sum()
        full = np.zeros(len(rows))
        full[np.nonzero(ok)[0]] = c
        contrib += full
        diffs.append(aa - ab)
        K += 1
    return float(np.mean(diffs)), float(np.sqrt((contrib ** 2).sum()) / K)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="bin")
    ap.add_argument("--splits", type=int, default=200)
    ap.add_argument("--margins", default="0,0.5,1,2,inf")
    ap.add_argument("out", nargs="+")
    a = ap.parse_args()
    margins = [float(z) for z in a.margins.split(",")]
    rules = [("Z=%g" % z) for z in margins] + ["deep"]
    runs = []
    for path in a.out:
        if os.path.exists(os.path.join(path, "candidates.tsv")):
            runs.append(os.path.join(path, "candidates.tsv"))
        else:
            runs += sorted(glob.glob(os.path.join(path, "*", "s*", "candidates.tsv")))
    if not runs:
        sys.exit("candidate-choice: no runs with candidates.tsv in %s" % " ".join(a.out))
    per_set = {}
    for c in runs:
        run = os.path.dirname(c)
        name = os.path.basename(os.path.dirname(run))
        cands = [l.split("\t")[0] for l in open(c).read().splitlines()[1:]]
        deep = [t for t in cands if t != "linear"]
        if "linear" not in cands:
            print("%s: no linear candidate, skipped" % run)
            continue
        data = os.path.join(run, "data.amtl")
        models = {t: os.path.join(run, "searched-%s.model" % t) for t in cands}
        models.update({b: os.path.join(run, b + ".model") for b in BASELINES})
        y = None
        P = {}
        for key, path in models.items():
            yy, pp = scores(a.bin, path, data)
            y = yy if y is None else y
            P[key] = pp
        rng = np.random.default_rng(12345)
        n = y.shape[0]
        gains = {r: {b: [] for b in ["linear"] + BASELINES} for r in rules}
        for _ in range(a.splits):
            perm = rng.permutation(n)
            A, B = np.sort(perm[: n // 2]), np.sort(perm[n // 2:])
            aucA = {t: mean_auc(y, P[t], A) for t in cands}
            pr = {t: paired(y, P[t], P["linear"], A) for t in deep}
            aucB = {k: mean_auc(y, P[k], B) for k in P}
            for z, r in zip(margins, rules):
                comp = ["linear"] + [t for t in deep
                                     if pr[t][0] > 0 and pr[t][0] >= z * pr[t][1]]
                pick = max(comp, key=lambda t: aucA[t])
                for b in gains[r]:
                    gains[r][b].append(aucB[pick] - aucB[b])
            pick = max(deep, key=lambda t: aucA[t])
            for b in gains["deep"]:
                gains["deep"][b].append(aucB[pick] - aucB[b])
        per_set.setdefault(name, []).append((run, {r: {b: float(np.mean(v)) for b, v in g.items()}
                                                  for r, g in gains.items()}))
    for name, seeds in per_set.items():
        print("\n%s: %d seeds, %d random halves each; chosen model's mean AUC on half B minus"
              % (name, len(seeds), a.splits))
        print("%-7s %s" % ("rule", "  ".join("%-31s" % b for b in ["linear"] + BASELINES)))
        for r in rules:
            cells = []
            for b in ["linear"] + BASELINES:
                v = np.array([g[r][b] for _, g in seeds])
                se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
                cells.append("%+.5f ± %.4f (%+.4f..%+.4f)" % (v.mean(), se, v.min(), v.max()))
            print("%-7s %s" % (r, "  ".join(cells)))


if __name__ == "__main__":
    main()
