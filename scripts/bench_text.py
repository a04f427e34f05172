"""Benchmark of the text side: phonemisation throughput on N sentences, then a cached rerun.

    .venv/bin/python scripts/bench_text.py                  # 100k English sentences, njobs 1 and 2
    .venv/bin/python scripts/bench_text.py --num 20000 --njobs 2 --lang es

The N sentences are the shipped ``data/sentences/<lang>.txt`` repeated and shuffled (seeded),
so every chunk is different and none comes from the cache; espeak-ng keeps no memory between
sentences, so a repeated sentence costs what a new one does. Prints a table.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from wav2vec_u.text.normalize import normalize_line
from wav2vec_u.text.phonemize import phonemize_corpus

REPO = Path(__file__).resolve().parent.parent

LANGS = {"en": "en-us", "es": "es"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num", type=int, default=100_000)
    ap.add_argument("--lang", default="en", choices=sorted(LANGS))
    ap.add_argument("--njobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--chunk-size", type=int, default=1000)
    args = ap.parse_args()

    base = [normalize_line(s) for s in (REPO / "data" / "sentences" / f"{args.lang}.txt").read_text(encoding="utf-8").splitlines()]
    rng = random.Random(0)
    sentences = (base * (args.num // len(base) + 1))[: args.num]
    rng.shuffle(sentences)
    n_words = sum(len(s.split()) for s in sentences)
    rows = []
    for njobs in args.njobs:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.time()
            phonemize_corpus(sentences, LANGS[args.lang], Path(tmp), njobs=njobs, chunk_size=args.chunk_size, progress=False)
            fresh = time.time() - t
            t = time.time()
            _, stats = phonemize_corpus(sentences, LANGS[args.lang], Path(tmp), njobs=njobs, chunk_size=args.chunk_size,
                                        progress=False)
            cached = time.time() - t
            assert stats["cached_chunks"] == stats["chunks"]
        rows.append((njobs, fresh, len(sentences) / fresh, cached))
    print(f"{len(sentences)} sentences ({n_words} words), lang {LANGS[args.lang]}, chunk {args.chunk_size}")
    print(f"{'njobs':>5} {'seconds':>8} {'sent/s':>8} {'cached rerun s':>15}")
    for njobs, fresh, rate, cached in rows:
        print(f"{njobs:>5} {fresh:>8.1f} {rate:>8.0f} {cached:>15.1f}")


if __name__ == "__main__":
    main()
