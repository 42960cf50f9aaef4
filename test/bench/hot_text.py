#!/usr/bin/python3
"""hot_text.py BINARY MAP CALLGRIND_OUT... [--also SYMBOL]... > cmd/crispd-hot.ld

Writes the linker script that gathers the code crispd runs while serving (`make` links
crispd with it; README "Memory"). Input: the link map of a crispd build (`$(B)/crispd.map`)
and callgrind profiles of that same binary, taken with --dump-instr=yes while it served
(test/bench/hot_text.sh), plus the sections of the functions named with --also (what runs
natively but not under valgrind, or in threads racing the profile's start). Every input section holding an executed instruction goes, in
its link order, into `.text.hot`, a 64 KiB-aligned output section placed before `.text`:
the kernel maps a file-backed fault's whole 64 KiB neighbourhood (fault-around), so hot
code scattered over 6 MiB of text keeps ~3.5 MiB resident, gathered it keeps ~1.2 MiB.

An input section is named by archive member and section (`*libgrpc_unsecure.a:x.cc.o(.text)`):
Debian's grpc and abseil archives are not built with -ffunction-sections, so their unit of
placement is the object's whole .text. glibc's string functions are chosen at run time by
CPU (ifunc) and the profile saw only valgrind's choice, so every variant of a hot one goes in.
"""
import argparse
import bisect
import collections
import re
import subprocess


def input_sections(path):
    """(address, size, section, file) of every input section in the output section .text"""
    out, pending, in_mem, res = None, None, False, []
    for line in open(path):
        if line.startswith('Linker script and memory map'):
            in_mem = True
            continue
        if not in_mem:
            continue
        if re.match(r'^\S', line):
            out = line.split()[0]
            pending = None
            continue
        m = re.match(r'^ (\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$', line)
        if m:
            name, addr, size, f = m.group(1), m.group(2), m.group(3), m.group(4)
        else:
            m = re.match(r'^ (\S+)\s*$', line)
            if m:
                pending = m.group(1)
                continue
            m = re.match(r'^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$', line)
            if not (m and pending):
                pending = None
                continue
            name, addr, size, f = pending, m.group(1), m.group(2), m.group(3)
        pending = None
        if out in ('.text', '.text.hot') and int(size, 16) > 0:
            res.append((int(addr, 16), int(size, 16), name, f.strip()))
    res.sort()
    return res


def executed(paths):
    """instruction addresses with a cost in callgrind files (--dump-instr=yes, compressed)"""
    addrs = set()
    for p in paths:
        pos = 0
        for line in open(p):
            c = line[0]
            if c == '0' and line.startswith('0x'):
                pos = int(line.split()[0], 16)
            elif c in '+-':
                tok = line.split()[0][1:]
                d = int(tok, 16) if tok.startswith('0x') else int(tok)
                pos += d if c == '+' else -d
            elif c != '*':
                continue
            addrs.add(pos)
    return addrs


IFUNC = r'/libc\.a\(([a-z0-9_]+)-(?:avx|evex|sse|ssse3|erms|generic)[a-z0-9-]*\.o\)$'


def pattern(sec, f):
    m = re.match(r'^(.*/)?([^/(]+)\((.+)\)$', f)
    if m:   # archive member
        return f'*{m.group(2)}:{m.group(3)}({sec})'
    return f'*{f.split("/")[-1]}({sec})'


def symbols(binary, names):
    """addresses of the named functions (any binding) in BINARY"""
    want, res = set(names), set()
    out = subprocess.run(['nm', binary], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        p = line.split()
        if len(p) == 3 and p[1] in 'tTwWi' and p[2] in want:
            res.add(int(p[0], 16))
            want.discard(p[2])
    if want:
        raise SystemExit(f'hot_text.py: not in {binary}: {" ".join(sorted(want))}')
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('binary')
    ap.add_argument('map')
    ap.add_argument('profiles', nargs='+')
    ap.add_argument('--also', action='append', default=[])
    args = ap.parse_args()
    secs = input_sections(args.map)
    starts = [s[0] for s in secs]
    addrs = executed(args.profiles) | symbols(args.binary, args.also)
    hot = set()
    for a in addrs:
        i = bisect.bisect_right(starts, a) - 1
        if i >= 0 and a < secs[i][0] + secs[i][1]:
            hot.add(i)
    # ifunc variants: memmove-avx-unaligned-erms.o hot -> memmove-*.o of libc.a
    variants = set()
    for i in hot:
        m = re.search(IFUNC, secs[i][3])
        if m:
            variants.add(m.group(1))
    for i, s in enumerate(secs):
        m = re.search(IFUNC, s[3])
        if m and m.group(1) in variants:
            hot.add(i)
    lines, seen, size = [], set(), 0
    for i in sorted(hot):
        p = pattern(secs[i][2], secs[i][3])
        size += secs[i][1]
        if p not in seen:
            seen.add(p)
            lines.append(p)
    by = collections.Counter()
    for i in hot:
        by[re.sub(r'\(.*', '', secs[i][3]).split('/')[-1]] += secs[i][1]
    print('/* crispd-hot.ld - generated by test/bench/hot_text.py from a callgrind profile of')
    print(' * crispd serving (test/bench/hot_text.sh); regenerate, do not edit. README "Memory".')
    print(f' * {len(lines)} input sections, {size // 1024} KiB; largest shares: ' +
          ', '.join(f'{k} {v // 1024}' for k, v in by.most_common(4)) + ' KiB */')
    print('SECTIONS')
    print('{')
    print('  .text.hot : ALIGN(0x10000)')
    print('  {')
    for p in lines:
        print(f'    {p}')
    print('    . = ALIGN(0x10000);')
    print('  }')
    print('}')
    print('INSERT BEFORE .text;')


if __name__ == '__main__':
    main()
