#!/usr/bin/env python3
# amtlfile.py — amtl files for the Bats tests, read with the standard library
# only (MessagePack, amtl-checkpoint(5)):
#   amtlfile.py tensors FILE       name, dtype, shape and a digest of every
#                                  tensor, in file order
#   amtlfile.py zero-seconds FILE  the file with the wall-clock seconds column
#                                  of "history" zeroed, on stdout (for cmp)
# Both zero those seconds first: they are the only part of a checkpoint that
# differs between two runs that compute the same thing.
import hashlib, struct, sys

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

def mapping(b, i, k):
    out = []
    for _ in range(k):
        key, i = unpack(b, i); v, i = unpack(b, i); out.append((key, v))
    return out, i

b = bytearray(open(sys.argv[2], 'rb').read())
root, _ = unpack(bytes(b), 0)
for name, t in dict(root)['tensors']:
    t = dict(t)
    if name == 'history':
        cols = t['shape'][1]
        for r in range(t['shape'][0]):
            o = t['data'].start + (r * cols + 4) * 8
            b[o:o + 8] = bytes(8)
    if sys.argv[1] == 'tensors':
        print(name, t['dtype'], t['shape'], hashlib.sha256(b[t['data']]).hexdigest()[:16])
if sys.argv[1] == 'zero-seconds':
    sys.stdout.buffer.write(b)
