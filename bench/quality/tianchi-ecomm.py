#!/usr/bin/env python3
"""tianchi-ecomm.py — the Tianchi EComm sample (../shared/data/tianchi-ecomm/,
described in its README) as a processed CSV for amtl-prep: one row per
(user_id, item_id) pair, as the UserBehavior recipe groups, with

  sparse  user_id, item_id, cate_id, brand_id and the user's gender, age_level,
          education, career, stage (the whole list, e.g. "1,6,4", is one value;
          -1, unknown, is a value of its own)
  dense   price (the item's), income (the user's; -1, unknown for 7 users,
          becomes the median of the known incomes)
  labels  collect, cart, buy: 1 when the pair shows that behaviour on any day

click is left out by default: the sample holds interacted pairs only, so it
is 1 on 97 % of the rows and tells little; --with-click adds it.  Rows are in
the order in which their pair first appears in the edge file.  Standard
library only.  Then, for example:

  bench/quality/tianchi-ecomm.py ../shared/data/tianchi-ecomm tianchi.csv
  amtl-prep -c configs/tianchi-ecomm.yaml -o tianchi.amtl tianchi.csv
"""
import argparse, csv, gzip, os, statistics, sys

BEHAVIOURS = {'1': 'click', '2': 'collect', '3': 'cart', '4': 'buy'}


def lines(path):
    """Tab-separated lines of path, or of path.gz when only that exists."""
    if not os.path.exists(path) and os.path.exists(path + '.gz'):
        path += '.gz'
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rt', encoding='utf-8', newline='') as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip('\r\n')
            if line:
                yield path, n, line.split('\t')


def fail(path, n, msg):
    sys.exit('tianchi-ecomm.py: %s:%d: %s' % (path, n, msg))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('data_dir', help='the folder with ecomm_edge_train.txt(.gz) and '
                    'the feature files')
    ap.add_argument('output', help='the processed CSV to write ("-" = stdout)')
    ap.add_argument('--with-click', action='store_true', help='add the click label')
    a = ap.parse_args()
    d = a.data_dir

    items = {}
    for path, n, f in lines(os.path.join(d, 'ecomm_item_feature.txt')):
        if len(f) != 5:
            fail(path, n, 'expected 5 fields, found %d' % len(f))
        items[f[0]] = (f[2], f[3], float(f[4]))
    users = {}
    for path, n, f in lines(os.path.join(d, 'ecomm_user_feature.txt')):
        if len(f) != 7:
            fail(path, n, 'expected 7 fields, found %d' % len(f))
        users[f[0]] = f[1:]
    known = [float(u[4]) for u in users.values() if float(u[4]) >= 0]
    median_income = statistics.median(known)

    tasks = (['click'] if a.with_click else []) + ['collect', 'cart', 'buy']
    pairs = {}  # (user, item) -> set of behaviours, in first-appearance order
    for path, n, f in lines(os.path.join(d, 'ecomm_edge_train.txt')):
        if len(f) != 4:
            fail(path, n, 'expected 4 fields, found %d' % len(f))
        if f[2] not in BEHAVIOURS:
            fail(path, n, "unknown behaviour '%s' (1 to 4)" % f[2])
        if f[0] not in users or f[1] not in items:
            fail(path, n, 'user %s or item %s has no feature line' % (f[0], f[1]))
        pairs.setdefault((f[0], f[1]), set()).add(BEHAVIOURS[f[2]])

    header = (['user_id:token', 'item_id:token', 'cate_id:token', 'brand_id:token',
               'gender:token', 'age_level:token', 'education:token', 'career:token',
               'stage:token', 'price:float', 'income:float'] +
              [t + ':label' for t in tasks])
    out = sys.stdout if a.output == '-' else open(a.output + '.tmp', 'w', newline='')
    w = csv.writer(out, lineterminator='\n')
    w.writerow(header)
    for (u, i), seen in pairs.items():
        cate, brand, price = items[i]
        gender, age, edu, career, income, stage = users[u]
        income = float(income)
        if income < 0:
            income = median_income
        w.writerow([u, i, cate, brand, gender, age, edu, career, stage,
                    '%.10g' % price, '%.10g' % income] +
                   [int(t in seen) for t in tasks])
    if out is not sys.stdout:
        out.close()
        os.replace(a.output + '.tmp', a.output)
    rates = ' '.join('%s %.4f' % (t, sum(t in s for s in pairs.values()) / len(pairs))
                     for t in tasks)
    print('tianchi-ecomm.py: %d rows; positive rates %s' % (len(pairs), rates),
          file=sys.stderr)


if __name__ == '__main__':
    try:
        main()
    except OSError as e:
        sys.exit('tianchi-ecomm.py: %s' % e)
