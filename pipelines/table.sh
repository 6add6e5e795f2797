#!/bin/sh
# table.sh — one TSV row per model from amtl-eval --json files:
# model, test AUC per task, mean, live weights.
set -eu
first=1
for f in "$@"; do
    name=$(basename "$f" .eval.json)
    python3 - "$f" "$name" "$first" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
tasks = list(d["tasks"])
if sys.argv[3] == "1":
    print("\t".join(["model"] + [t + " AUC" for t in tasks] + ["mean AUC", "weights"]))
fmt = lambda v: "n/a" if v is None else "%.4f" % v
print("\t".join([sys.argv[2]] + [fmt(d["tasks"][t]["auc"]) for t in tasks]
                + [fmt(d["mean_auc"]), str(d["live_weights"])]))
PY
    first=0
done
