#!/usr/bin/env python3
"""linear-vs-sklearn.py — the linear floor against scikit-learn's logistic
regression on the same features (not run by CI).

Usage: bench/linear-vs-sklearn.py [--bin DIR] [--config FILE] [--set KEY=VALUE]...
                                  [--condition TASK=COND]... [--keep DIR] DATA

DATA is a dataset file written by amtl-prep.  The script
  1. makes the linear baseline (amtl-discretize --baseline linear), fits it
     (amtl-train) and scores it on the test split (amtl-eval --json);
  2. fits, for every task on its own, sklearn.linear_model.LogisticRegression
     (lbfgs, tol 1e-6, max_iter 10000) on the same features: the one-hot ids of
     every sparse field (the out-of-vocabulary id 0 included) and the raw dense
     values, with an intercept; C is chosen per task by validation AUC from
     the grid C = 1 / (lambda * n_train), lambda in 1e-1 .. 1e-7 by factors of
     sqrt(10) (amtl's built-in linear_l2 grid), every value fitted;
  3. prints per task both test AUCs, their difference (amtl - sklearn), the
     strengths each chose and the seconds each took, then the mean difference.

A task conditioned on another label (--condition buy=click, passed on to amtl
as task_conditions) is fitted and scored on the rows where the condition is 1,
as amtl-train and amtl-eval do.  --config and --set go to amtl-discretize and
amtl-train.  The acceptance target of the floor: mean difference >= -0.003.

Needs python3 with numpy, scipy and scikit-learn (Debian: python3-sklearn).
The dataset is read with a small MessagePack reader below (the format of
amtl-dataset(5)); no msgpack module is needed.
"""
import argparse
import gzip
import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
except ImportError as e:
    sys.stderr.write("linear-vs-sklearn: %s (install python3-sklearn; under pyenv run "
                     "/usr/bin/python3 %s)\n" % (e, sys.argv[0]))
    sys.exit(1)


# ---- the amtl file (MessagePack, amtl-dataset(5)) ---------------------------

def unpack(b, i):
    c = b[i]
    i += 1

    def n(k, fmt):
        return struct.unpack('>' + fmt, b[i:i + k])[0], i + k
    if c <= 0x7f:
        return c, i
    if c >= 0xe0:
        return c - 256, i
    if 0x80 <= c <= 0x8f:
        return mapping(b, i, c & 15)
    if 0x90 <= c <= 0x9f:
        return array(b, i, c & 15)
    if 0xa0 <= c <= 0xbf:
        k = c & 31
        return b[i:i + k].decode(), i + k
    if c == 0xc0:
        return None, i
    if c in (0xc2, 0xc3):
        return c == 0xc3, i
    if c in (0xc4, 0xc5, 0xc6, 0xd9, 0xda, 0xdb):
        k, i = n(*{0xc4: (1, 'B'), 0xc5: (2, 'H'), 0xc6: (4, 'I'),
                   0xd9: (1, 'B'), 0xda: (2, 'H'), 0xdb: (4, 'I')}[c])
        return (b[i:i + k].decode() if c >= 0xd9 else memoryview(b)[i:i + k]), i + k
    if c == 0xca:
        return n(4, 'f')
    if c == 0xcb:
        return n(8, 'd')
    fixed = {0xcc: (1, 'B'), 0xcd: (2, 'H'), 0xce: (4, 'I'), 0xcf: (8, 'Q'),
             0xd0: (1, 'b'), 0xd1: (2, 'h'), 0xd2: (4, 'i'), 0xd3: (8, 'q')}
    if c in fixed:
        return n(*fixed[c])
    if c in (0xdc, 0xdd):
        k, i = n(*((2, 'H') if c == 0xdc else (4, 'I')))
        return array(b, i, k)
    if c in (0xde, 0xdf):
        k, i = n(*((2, 'H') if c == 0xde else (4, 'I')))
        return mapping(b, i, k)
    raise ValueError('msgpack byte 0x%02x' % c)


def array(b, i, k):
    out = []
    for _ in range(k):
        v, i = unpack(b, i)
        out.append(v)
    return out, i


def mapping(b, i, k):
    out = []
    for _ in range(k):
        key, i = unpack(b, i)
        v, i = unpack(b, i)
        out.append((key, v))
    return out, i


DTYPES = {'f32': '<f4', 'f64': '<f8', 'i32': '<i4', 'i64': '<i8', 'u8': 'u1'}


def read_dataset(path):
    with open(path, 'rb') as f:
        b = f.read()
    if b[:2] == b'\x1f\x8b':
        b = gzip.decompress(b)
    root = dict(unpack(b, 0)[0])
    if root.get('kind') != 'dataset':
        raise SystemExit("linear-vs-sklearn: %s: not a dataset (kind %r)" % (path, root.get('kind')))
    meta = dict(root['meta'])
    tensors = {}
    for name, t in root['tensors']:
        t = dict(t)
        tensors[name] = np.frombuffer(t['data'], dtype=DTYPES[t['dtype']]).reshape(t['shape'])
    names = lambda k: [s for s in meta.get(k, '').split('\n') if s]
    return meta, names('sparse_fields'), names('dense_fields'), names('labels'), tensors


def design(tensors, split, sparse, dense, vocab):
    """One-hot ids of every field (column off_f + id) and the dense values."""
    rows = len(tensors['%s.sparse.%s' % (split, sparse[0])])
    off = np.concatenate([[0], np.cumsum(vocab)])
    cols = np.stack([tensors['%s.sparse.%s' % (split, f)].astype(np.int64) + off[k]
                     for k, f in enumerate(sparse)], axis=1)
    X = sp.csr_matrix((np.ones(cols.size), cols.ravel(),
                       np.arange(0, cols.size + 1, len(sparse))), shape=(rows, off[-1]))
    if dense:
        D = np.stack([tensors['%s.dense.%s' % (split, f)].astype(np.float64) for f in dense],
                     axis=1)
        X = sp.hstack([X, sp.csr_matrix(D)], format='csr')
    return X


LAMBDAS = [10 ** (-0.5 * k) for k in range(2, 15)]


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode:
        raise SystemExit("linear-vs-sklearn: %s failed (%d):\n%s" % (cmd[0], r.returncode, r.stderr))
    return r.stdout, r.stderr


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('data')
    ap.add_argument('--bin', default=os.path.join(os.path.dirname(here), 'bin'))
    ap.add_argument('--config')
    ap.add_argument('--set', action='append', default=[])
    ap.add_argument('--condition', action='append', default=[], metavar='TASK=COND')
    ap.add_argument('--keep', metavar='DIR', help='keep the arch, model and logs here')
    a = ap.parse_args()

    meta, sparse, dense, labels, tensors = read_dataset(a.data)
    vocab = [int(v) for v in tensors['vocab_sizes']]
    cond = {}
    for c in a.condition:
        t, _, s = c.partition('=')
        if t not in labels or s not in labels:
            raise SystemExit("linear-vs-sklearn: --condition %s: no such label" % c)
        cond[t] = s

    # ---- amtl
    work = a.keep or tempfile.mkdtemp(prefix='linear-vs-sklearn.')
    os.makedirs(work, exist_ok=True)
    opts = (['--config', a.config] if a.config else []) + \
        [x for s in a.set for x in ('--set', s)]
    if cond:
        opts += ['--set', 'task_conditions=[%s]' % ','.join('%s=%s' % kv for kv in cond.items())]
    arch, model = os.path.join(work, 'linear.arch'), os.path.join(work, 'linear.model')
    run([os.path.join(a.bin, 'amtl-discretize'), '--baseline', 'linear', '--data', a.data]
        + opts + ['-o', arch])
    t0 = time.time()
    _, err = run([os.path.join(a.bin, 'amtl-train'), '--data', a.data, '--arch', arch] + opts
                 + ['--metrics', os.path.join(work, 'linear.jsonl'), '-o', model])
    amtl_s = time.time() - t0
    with open(os.path.join(work, 'train.log'), 'w') as f:
        f.write(err)
    out, _ = run([os.path.join(a.bin, 'amtl-eval'), '--model', model, '--data', a.data,
                  '--json'])
    ev = json.loads(out)
    amtl_l2 = dict(re.findall(r'^linear: (.*?): l2 (\S+)', err, re.M))
    if not a.keep:
        for f in os.listdir(work):
            os.unlink(os.path.join(work, f))
        os.rmdir(work)

    # ---- sklearn
    X = {s: design(tensors, s, sparse, dense, vocab) for s in ('train', 'val', 'test')}
    y = {s: {t: tensors['%s.label.%s' % (s, t)].astype(np.float64) for t in labels}
         for s in X}
    print("# %s: %s train rows, %d sparse fields (%d ids), %d dense; amtl-train %.1f s"
          % (a.data, X['train'].shape[0], len(sparse), sum(vocab), len(dense), amtl_s))
    print("%-12s %9s %9s %9s %10s %10s %8s" % ("task", "amtl", "sklearn", "diff",
                                            "amtl l2", "skl l2", "skl s"))
    diffs, skls = [], []
    for t in labels:
        if t not in ev['tasks']:
            continue
        rows = {s: (y[s][cond[t]] != 0 if t in cond else np.ones(X[s].shape[0], bool))
                for s in X}
        Xt, yt = X['train'][rows['train']], y['train'][t][rows['train']]
        Xv, yv = X['val'][rows['val']], y['val'][t][rows['val']]
        Xs, ys = X['test'][rows['test']], y['test'][t][rows['test']]
        n = Xt.shape[0]
        t0 = time.time()
        best = None
        for lam in LAMBDAS:
            m = LogisticRegression(C=1.0 / (lam * n), solver='lbfgs', tol=1e-6,
                                   max_iter=10000)
            m.fit(Xt, yt)
            auc = roc_auc_score(yv, m.decision_function(Xv))
            if best is None or auc > best[0]:
                best = (auc, lam, m)
        skl = roc_auc_score(ys, best[2].decision_function(Xs))
        secs = time.time() - t0
        ours = ev['tasks'][t]['auc']
        diffs.append(ours - skl)
        skls.append(skl)
        print("%-12s %9.5f %9.5f %+9.5f %10s %10.3g %8.1f"
              % (t, ours, skl, ours - skl, amtl_l2.get(t, '-'), best[1], secs))
    mean = lambda v: sum(v) / len(v) if v else math.nan
    print("%-12s %9.5f %9.5f %+9.5f" % ("mean", ev['mean_auc'], mean(skls), mean(diffs)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
