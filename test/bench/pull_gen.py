#!/usr/bin/python3
"""pull_gen.py DIR LAYER - writes the files of one data layer of the pull benchmark's
image into DIR (which must not exist), deterministically: the same LAYER always gives
the same bytes, on any machine, without the network.

A layer holds ~28 MiB that compress to ~21 MiB with gzip, a mix like real images:
  blob.bin           12 MiB of random bytes (incompressible: a binary, an archive)
  files/fNN          100 files of 128 KiB, each a sequence of 4 KiB blocks that are
                     random or text by a coin flip (a library, mixed data)
  text/tNNN.txt      500 text files of 2-12 KiB (configuration, scripts, docs)
"""
import os
import random
import sys

BLOCK = 4096
ZIPF = [1 / (i + 1) for i in range(400)]  # word frequencies, as in prose


def vocabulary(rng, n=400):
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    weights = [26 - i for i in range(len(letters))]
    return ["".join(rng.choices(letters, weights, k=rng.randint(2, 9))) for _ in range(n)]


def text(rng, vocab, size):
    out = []
    have = 0
    while have < size:
        line = " ".join(rng.choices(vocab, ZIPF, k=rng.randint(4, 14))) + "\n"
        out.append(line)
        have += len(line)
    return "".join(out).encode()[:size]


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: pull_gen.py DIR LAYER")
    top, layer = sys.argv[1], int(sys.argv[2])
    rng = random.Random(0xC815 * 1000 + layer)
    vocab = vocabulary(rng)
    os.makedirs(os.path.join(top, "files"))
    os.makedirs(os.path.join(top, "text"))
    with open(os.path.join(top, "blob.bin"), "wb") as f:
        f.write(rng.randbytes(12 << 20))
    for i in range(100):
        blocks = [rng.randbytes(BLOCK) if rng.random() < 0.5 else text(rng, vocab, BLOCK)
                  for _ in range(128 * 1024 // BLOCK)]
        with open(os.path.join(top, "files", "f%02d" % i), "wb") as f:
            f.write(b"".join(blocks))
    for i in range(500):
        with open(os.path.join(top, "text", "t%03d.txt" % i), "wb") as f:
            f.write(text(rng, vocab, rng.randint(2048, 12288)))


if __name__ == "__main__":
    main()
