#!/usr/bin/env python
"""Diagnostic: real phone sequences with perfect toy features (one Gaussian segment per phone).

    .venv/bin/python scripts/research/language_toy.py SEGDIR TEXTDIR OUT [--noise 0.5] [--dim 32]

SEGDIR holds {train,valid}.phn (e.g. the output of oracle_segments.py); each phone gets a random
N(0, 1) mean in ``dim`` dimensions and each occurrence that mean plus ``noise`` Gaussian noise,
so the segments are as clean as the toy cipher's (tests/toys.py) while the language is
real English or Spanish phonotactics over the inventory in TEXTDIR/dict.phn.txt. It answers "can
the search decipher this language at all?" (docs/demo-findings.md, "Search, not features").
"""

import argparse
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("segdir", type=Path), ap.add_argument("textdir", type=Path), ap.add_argument("out", type=Path)
    ap.add_argument("--noise", type=float, default=0.5)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    phones = [x.split()[0] for x in (a.textdir / "dict.phn.txt").read_text(encoding="utf-8").splitlines()]
    means = {p: rng.normal(size=a.dim).astype(np.float32) for p in phones}
    for split in ("train", "valid"):
        lines = (a.segdir / f"{split}.phn").read_text(encoding="utf-8").splitlines()
        feats = [np.stack([means[p] + a.noise * rng.normal(size=a.dim).astype(np.float32) for p in x.split()])
                 for x in lines]
        np.save(a.out / f"{split}.npy", np.concatenate(feats))
        (a.out / f"{split}.lengths").write_text("".join(f"{len(x)}\n" for x in feats))
        (a.out / f"{split}.phn").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
