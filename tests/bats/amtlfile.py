#!/usr/bin/env python3
# amtlfile.py — amtl files for the Bats tests, read with the standard library
# only (MessagePack, amtl-dataset(5)):
#   amtlfile.py tensors FILE       name, dtype, shape and a digest of every
#                                  tensor, in file order
#   amtlfile.py zero-seconds FILE  the file with the wall-clock seconds column
#                                  of "history" zeroed and its checksums
#                                  recomputed, on stdout (for cmp)
#   amtlfile.py v1 FILE            the file as format version 1 wrote it (no
#                                  checksums), on stdout
#   amtlfile.py close FILE OTHER TOL
#                                  the same tensors, names, dtypes and shapes;
#                                  float tensors within TOL (|a - b| <=
#                                  TOL·max(1, |a|) elementwise), the others
#                                  equal (history's seconds left out); prints
#                                  each tensor's worst difference when they
#                                  differ, and exits 1
#   amtlfile.py damage FILE DIR    copies of the file with one byte changed
#                                  each, DIR/1, DIR/2, ...: in the header, the
#                                  metadata, every tensor's data (first, middle
#                                  or last byte in turn) and the end; prints
#                                  one line per copy: its name, then the words
#                                  the reader's message must hold
# Both tensors and zero-seconds zero those seconds first: they are the only
# part of a checkpoint that differs between two runs that compute the same
# thing.
import hashlib, os, struct, sys, zlib

def unpack(b, i):
    c = b[i]; i += 1
    def n(k, fmt):
        return struct.unpack('>' + fmt, b[i:i + k])[0], i + k
    if c <= 0x7f: return c, i
    if c >= 0xe0: return c - 256, i
    if 0x80 <= c <= 0x8f: return mapping(b, i, c & 15)
    if 0x90 <= c <= 0x9f: return array(b, i, c & 15)
    if 0xa0 <= c <= 0xbf: k = c & 31; return b[i:i + k].decode(), i + k
    if c == 0xc0: return None, i
    if c in (0xc2, 0xc3): return c == 0xc3, i
    if c in (0xc4, 0xc5, 0xc6, 0xd9, 0xda, 0xdb):
        k, i = n(*{0xc4: (1, 'B'), 0xc5: (2, 'H'), 0xc6: (4, 'I'),
                   0xd9: (1, 'B'), 0xda: (2, 'H'), 0xdb: (4, 'I')}[c])
        # binary data as the slice of the file holding it
        return (b[i:i + k].decode() if c >= 0xd9 else slice(i, i + k)), i + k
    if c == 0xca: return n(4, 'f')
    if c == 0xcb: return n(8, 'd')
    fixed = {0xcc: (1, 'B'), 0xcd: (2, 'H'), 0xce: (4, 'I'), 0xcf: (8, 'Q'),
             0xd0: (1, 'b'), 0xd1: (2, 'h'), 0xd2: (4, 'i'), 0xd3: (8, 'q')}
    if c in fixed: return n(*fixed[c])
    if c in (0xdc, 0xdd): k, i = n(*((2, 'H') if c == 0xdc else (4, 'I'))); return array(b, i, k)
    if c in (0xde, 0xdf): k, i = n(*((2, 'H') if c == 0xde else (4, 'I'))); return mapping(b, i, k)
    raise ValueError('msgpack byte 0x%02x' % c)

def array(b, i, k):
    out = []
    for _ in range(k):
        v, i = unpack(b, i); out.append(v)
    return out, i

class Map(list):
    """A map as the list of its (key, value) pairs, in file order."""

def mapping(b, i, k):
    out = Map()
    for _ in range(k):
        key, i = unpack(b, i); v, i = unpack(b, i); out.append((key, v))
    return out, i

def pack(v, b):
    """MessagePack of what unpack returns (bin data as a slice of b)."""
    def head(n, small, codes):
        if small is not None and n < small[0]: return bytes([small[1] | n])
        for limit, code, fmt in codes:
            if n < limit: return bytes([code]) + struct.pack('>' + fmt, n)
        raise ValueError('too long')
    if isinstance(v, int):
        if v >= 0: return head(v, (128, 0), [(1 << 8, 0xcc, 'B'), (1 << 16, 0xcd, 'H'),
                                            (1 << 32, 0xce, 'I'), (1 << 64, 0xcf, 'Q')])
        return b'\xd3' + struct.pack('>q', v)
    if isinstance(v, str):
        s = v.encode()
        return head(len(s), (32, 0xa0), [(1 << 8, 0xd9, 'B'), (1 << 16, 0xda, 'H'),
                                         (1 << 32, 0xdb, 'I')]) + s
    if isinstance(v, slice):
        d = bytes(b[v])
        return head(len(d), None, [(1 << 8, 0xc4, 'B'), (1 << 16, 0xc5, 'H'),
                                   (1 << 32, 0xc6, 'I')]) + d
    if isinstance(v, Map):
        return head(len(v), (16, 0x80), [(1 << 16, 0xde, 'H'), (1 << 32, 0xdf, 'I')]) + \
            b''.join(pack(k, b) + pack(x, b) for k, x in v)
    if isinstance(v, list):
        return head(len(v), (16, 0x90), [(1 << 16, 0xdc, 'H'), (1 << 32, 0xdd, 'I')]) + \
            b''.join(pack(x, b) for x in v)
    raise ValueError('cannot pack %r' % (v,))

def crc(d):
    return struct.pack('>I', zlib.crc32(d))

def close(pa, pb, tol):
    def load(p):
        b = open(p, 'rb').read()
        root, _ = unpack(b, 0)
        out = []
        for name, t in dict(root)['tensors']:
            t = dict(t)
            out.append((name, t['dtype'], list(t['shape']), b[t['data']]))
        return out
    a, c = load(pa), load(pb)
    bad = []
    if [x[:3] for x in a] != [x[:3] for x in c]:
        print('the tensors differ: %s' % sorted(set(x[0] for x in a) ^ set(x[0] for x in c)))
        return 1
    for (name, dt, shape, da), (_, _, _, dc) in zip(a, c):
        if dt in ('f32', 'f64'):
            f = 'f' if dt == 'f32' else 'd'
            k = len(da) // struct.calcsize(f)
            xa = struct.unpack('<%d%s' % (k, f), da)
            xc = struct.unpack('<%d%s' % (k, f), dc)
            if name == 'history':
                cols = shape[1]
                xa = [v for i, v in enumerate(xa) if i % cols != 4]
                xc = [v for i, v in enumerate(xc) if i % cols != 4]
            worst = max((abs(x - y) / max(1.0, abs(x)) for x, y in zip(xa, xc)), default=0.0)
            if not worst <= tol:
                bad.append('%s: %.3g' % (name, worst))
        elif da != dc:
            bad.append('%s: not equal' % name)
    for line in bad:
        print(line)
    return 1 if bad else 0

cmd, path = sys.argv[1], sys.argv[2]
if cmd == 'close':
    sys.exit(close(path, sys.argv[3], float(sys.argv[4])))
b = bytearray(open(path, 'rb').read())
root, _ = unpack(bytes(b), 0)
tensors = dict(root)['tensors']
for name, t in tensors:
    t = dict(t)
    if name == 'history' and cmd in ('tensors', 'zero-seconds'):
        cols = t['shape'][1]
        for r in range(t['shape'][0]):
            o = t['data'].start + (r * cols + 4) * 8
            b[o:o + 8] = bytes(8)
        if 'crc32' in t:
            b[t['crc32']] = crc(b[t['data']])
    if cmd == 'tensors':
        print(name, t['dtype'], t['shape'], hashlib.sha256(b[t['data']]).hexdigest()[:16])
if cmd == 'zero-seconds':
    if dict(root).get('crc32'):
        b[-4:] = crc(b[:-4])
    sys.stdout.buffer.write(b)
elif cmd == 'v1':
    old = Map((k, 1 if k == 'version' else v) for k, v in root if k != 'crc32')
    old = Map((k, Map((n, Map((f, x) for f, x in t if f != 'crc32')) for n, t in v)
               if k == 'tensors' else v) for k, v in old)
    sys.stdout.buffer.write(pack(old, b))
elif cmd == 'damage':
    out = sys.argv[3]
    # (offset, the words of the message)
    whole = 'damaged file: the checksum does not match'
    sites = [(0, whole), (5, whole), (15, whole), (21, whole)]
    for key, val in dict(root)['meta'][:1]:
        if val:
            at = b.find(pack(key, b) + pack(val, b)) + len(pack(key, b)) + 1
            sites.append((at, whole))
    for i, (name, t) in enumerate(tensors):
        d = dict(t)['data']
        if d.stop > d.start:
            at = [d.start, (d.start + d.stop) // 2, d.stop - 1][i % 3]
            sites.append((at, "damaged file: tensor '%s' does not match its checksum" % name))
    first = tensors[0][1]
    sites.append((dict(first)['data'].start - 2, whole))  # a tensor's layout
    n = len(b)
    sites += [(n - 12, 'damaged file: it does not end with its checksum'),
              (n - 7, 'damaged file: it does not end with its checksum'),
              (n - 4, whole), (n - 1, whole)]
    for k, (at, words) in enumerate(sites, 1):
        c = bytearray(b)
        c[at] ^= 0x5a
        with open(os.path.join(out, str(k)), 'wb') as f:
            f.write(c)
        print(k, words)
