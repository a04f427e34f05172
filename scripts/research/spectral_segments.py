#!/usr/bin/env python
"""Label-free phone-like segments from frame features by spectral change, mean-pooled.

    .venv/bin/python scripts/research/spectral_segments.py RUN/features OUT [--half 2] [--min-gap 2] [--rel 0.8]
        [--timings RUN/corpus]

For each frame t the change score is the distance between the mean of the ``half`` frames
after t and the mean of the ``half`` frames before it, over the centre frame's 39 MFCC dims
(13 + deltas of the demo's 195-dim stacked MFCC; ``--dims a:b`` for other layouts). Boundaries
are local maxima within ``min_gap`` frames that exceed ``rel`` x the utterance's median score.
Each segment is the mean of all its frames' features. Writes OUT/{train,valid}.{npy,lengths}
(and copies {split}.phn when FEATS has it) in the layout `w2vu train-gan` and
``anneal_key.py`` read.

``--timings RUN/corpus`` (the synthesiser's phone timings, i.e. labels) only *measures*:
segments per phone and the purity of a K=128 k-means over the segments. Measured on the English
demo: 0.95 segments per phone, purity 0.66 (oracle boundaries: 0.74; the pipeline's merged
frame clusters: 0.58).
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np


def boundaries(x: np.ndarray, half: int, min_gap: int, rel: float) -> list[int]:
    T = len(x)
    if T <= 2 * half:
        return [0, T]
    c = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, 0)])
    t = np.arange(half, T - half + 1)
    score = np.zeros(T)
    score[t] = np.linalg.norm((c[t + half] - c[t]) - (c[t] - c[t - half]), axis=1) / half
    thr = rel * np.median(score[t])
    out = [0]
    for i in t:
        lo, hi = max(0, i - min_gap), min(T, i + min_gap + 1)
        if score[i] >= thr and score[i] == score[lo:hi].max() and i - out[-1] >= min_gap:
            out.append(int(i))
    return out + [T] if out[-1] != T else out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("feats", type=Path), ap.add_argument("out", type=Path)
    ap.add_argument("--half", type=int, default=2)
    ap.add_argument("--min-gap", type=int, default=2)
    ap.add_argument("--rel", type=float, default=0.8)
    ap.add_argument("--dims", default="78:117", help="feature columns for the change score (start:end)")
    ap.add_argument("--timings", type=Path, default=None, help="corpus dir with {split}.timings.jsonl: measure only")
    a = ap.parse_args()
    d0, d1 = map(int, a.dims.split(":"))
    a.out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid"):
        npy = a.feats / f"{split}.npy"
        if not npy.is_file():
            continue
        feats = np.load(npy, mmap_mode="r")
        lens = [int(x) for x in (a.feats / f"{split}.lengths").read_text().split()]
        offs = np.cumsum([0] + lens)
        recs = None
        if a.timings is not None:
            recs = [json.loads(x) for x in (a.timings / f"{split}.timings.jsonl").read_text().splitlines()]
        segs, seg_lens, labels, n_phones = [], [], [], 0
        for i in range(len(lens)):
            f = np.asarray(feats[offs[i]:offs[i + 1]], dtype=np.float32)
            b = boundaries(f[:, d0:d1], a.half, a.min_gap, a.rel)
            segs.append(np.stack([f[s:e].mean(0) for s, e in zip(b, b[1:])]))
            seg_lens.append(len(b) - 1)
            if recs is not None:
                lab = np.full(len(f), "<SIL>", dtype=object)
                for p, (s, e) in zip(recs[i]["phones"], recs[i]["timings"]):
                    lab[int(round(s * 100)):int(round(e * 100))] = p
                labels += [Counter(lab[s:e]).most_common(1)[0][0] for s, e in zip(b, b[1:])]
                n_phones += len(recs[i]["phones"])
        x = np.concatenate(segs).astype(np.float32)
        np.save(a.out / f"{split}.npy", x)
        (a.out / f"{split}.lengths").write_text("".join(f"{n}\n" for n in seg_lens))
        if (a.feats / f"{split}.phn").is_file():
            shutil.copy(a.feats / f"{split}.phn", a.out / f"{split}.phn")
        msg = f"{split}: {len(x)} segments, {len(x) / max(len(lens), 1):.1f} per utterance"
        if recs is not None:
            msg += f", {len(x) / n_phones:.2f} per phone"
            if split == "train":
                import faiss  # noqa: PLC0415

                km = faiss.Kmeans(x.shape[1], 128, niter=20, seed=1)
                km.train(x)
                ids = km.index.search(x, 1)[1][:, 0]
                per_unit: dict[int, Counter] = {}
                for u, p in zip(ids, labels):
                    per_unit.setdefault(int(u), Counter())[p] += 1
                purity = sum(c.most_common(1)[0][1] for c in per_unit.values()) / len(labels)
                msg += f", K=128 purity {purity:.3f}"
        print(msg, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
