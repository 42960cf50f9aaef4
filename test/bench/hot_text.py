#!/usr/bin/python3
"""hot_text.py BINARY MAP CALLGRIND_OUT... [--also SYMBOL]... [--pages FILE] > cmd/crispd-hot.ld

Writes the linker script that gathers what crispd touches while serving (`make` links
crispd with it; README "Memory"): the kernel maps a file-backed fault's whole aligned
64 KiB neighbourhood (fault-around), so hot code and data scattered among cold keep most
of the executable resident. Input: the link map of a crispd build and, for that binary,
callgrind profiles taken with --dump-instr=yes while it served (test/bench/hot_text.sh),
the functions named with --also (what runs natively but not under valgrind, or in threads
that start while the trim runs), and the read-only data pages it read (--pages). The
input sections holding an executed instruction go, in link order, into `.text.hot`, those
on a read page into `.rodata.hot` and `.data.rel.ro.hot`: 64 KiB-aligned output sections
before `.text`, `.rodata` and `.data.rel.ro`.

An input section is named by archive member and section (`*libgrpc_unsecure.a:x.cc.o(.text)`):
Debian's grpc and abseil archives are not built with -ffunction-sections, so their unit of
placement is the object's whole .text. glibc's string functions are chosen at run time by
CPU (ifunc) and the profile saw only valgrind's choice, so every variant of a hot one goes in.
A data page read takes every section on it, the cold ones next to the hot too.
"""
import argparse
import bisect
import collections
import re
import subprocess


def input_sections(path):
    """(address, size, section, file, output section) of every input section with a size"""
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
        if int(size, 16) > 0 and int(addr, 16) > 0:
            res.append((int(addr, 16), int(size, 16), name, f.strip(), out))
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


def hot_sections(secs, outs, addrs, span):
    """indexes of the input sections of output sections OUTS holding one of ADDRS..+SPAN"""
    secs = [(s, i) for i, s in enumerate(secs) if s[4] in outs]
    starts = [s[0][0] for s in secs]
    hot = set()
    for a in addrs:
        i = max(bisect.bisect_right(starts, a) - 1, 0)
        while i < len(secs) and secs[i][0][0] < a + span:
            if secs[i][0][0] + secs[i][0][1] > a:
                hot.add(secs[i][1])
            i += 1
    return hot


def ifunc_variants(secs, hot):
    """memmove-avx-unaligned-erms.o hot: every memmove-*.o of libc.a is"""
    variants = {m.group(1) for m in (re.search(IFUNC, secs[i][3]) for i in hot) if m}
    return {i for i, s in enumerate(secs)
            if (m := re.search(IFUNC, s[3])) and m.group(1) in variants}


def output_section(secs, hot, name, before):
    lines, seen, size = [], set(), 0
    for i in sorted(hot, key=lambda i: secs[i][0]):
        p = pattern(secs[i][2], secs[i][3])
        size += secs[i][1]
        if p not in seen:
            seen.add(p)
            lines.append(p)
    by = collections.Counter()
    for i in hot:
        by[re.sub(r'\(.*', '', secs[i][3]).split('/')[-1]] += secs[i][1]
    print(f'/* {len(lines)} input sections, {size // 1024} KiB; largest shares: ' +
          ', '.join(f'{k} {v // 1024}' for k, v in by.most_common(4)) + ' KiB */')
    print('SECTIONS')
    print('{')
    print(f'  {name} : ALIGN(0x10000)')
    print('  {')
    for p in lines:
        print(f'    {p}')
    print('    . = ALIGN(0x10000);')
    print('  }')
    print('}')
    print(f'INSERT BEFORE {before};')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('binary')
    ap.add_argument('map')
    ap.add_argument('profiles', nargs='+')
    ap.add_argument('--also', action='append', default=[])
    ap.add_argument('--pages', help='file of the data pages read, one hex address a line')
    args = ap.parse_args()
    secs = input_sections(args.map)
    addrs = executed(args.profiles) | symbols(args.binary, args.also)
    hot = hot_sections(secs, ('.text', '.text.hot'), addrs, 1)
    hot |= ifunc_variants(secs, hot)
    print('/* crispd-hot.ld - generated by test/bench/hot_text.py from profiles of crispd')
    print(' * serving (test/bench/hot_text.sh); regenerate, do not edit. README "Memory". */')
    output_section(secs, hot, '.text.hot', '.text')
    if args.pages:
        pages = [int(x, 16) for x in open(args.pages).read().split()]
        for out in ('.rodata', '.data.rel.ro'):
            output_section(secs, hot_sections(secs, (out, out + '.hot'), pages, 4096),
                           out + '.hot', out)


if __name__ == '__main__':
    main()
