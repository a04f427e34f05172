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

from wav2vec_u.audio.features_io import load_features, save_features
from wav2vec_u.audio.segmenters import ChangeSegmenterConfig, spectral_segments
from wav2vec_u.research.segmenters import frame_labels, segment_majority_labels


def purity(x: np.ndarray, labels: list[str], k: int = 128) -> float:
    """Share of segments whose k-means cluster's majority phone is their own (reads labels)."""
    from wav2vec_u.audio.segments import assign_clusters, fit_kmeans

    ids = assign_clusters(x, fit_kmeans(x, k=k, niter=20, nredo=1, seed=1))
    per_unit: dict[int, Counter] = {}
    for u, p in zip(ids, labels):
        per_unit.setdefault(int(u), Counter())[p] += 1
    return sum(c.most_common(1)[0][1] for c in per_unit.values()) / len(labels)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("feats", type=Path), ap.add_argument("out", type=Path)
    ap.add_argument("--half", type=int, default=2)
    ap.add_argument("--min-gap", type=int, default=2)
    ap.add_argument("--rel", type=float, default=0.8)
    ap.add_argument("--dims", default="78:117", help="feature columns for the change score (start:end)")
    ap.add_argument("--timings", type=Path, default=None, help="corpus dir with {split}.timings.jsonl: measure only")
    a = ap.parse_args()
    dims = tuple(map(int, a.dims.split(":")))
    for split in ("train", "valid"):
        if not (a.feats / f"{split}.npy").is_file():
            continue
        feats, lens = load_features(a.feats, split, mmap=True)
        x, seg_lens, bounds = spectral_segments(np.asarray(feats), lens, dims,
                                                ChangeSegmenterConfig(half=a.half, min_gap=a.min_gap, rel=a.rel))
        save_features(a.out, split, x, seg_lens)
        if (a.feats / f"{split}.phn").is_file():
            shutil.copy(a.feats / f"{split}.phn", a.out / f"{split}.phn")
        msg = f"{split}: {len(x)} segments, {len(x) / max(len(lens), 1):.1f} per utterance"
        if a.timings is not None:
            recs = [json.loads(r) for r in (a.timings / f"{split}.timings.jsonl").read_text().splitlines()]
            labels = [lab for rec, n, b in zip(recs, lens, bounds)
                      for lab in segment_majority_labels(frame_labels(rec["phones"], rec["timings"], n), b)]
            msg += f", {len(x) / sum(len(r['phones']) for r in recs):.2f} per phone"
            if split == "train":
                msg += f", K=128 purity {purity(x, labels):.3f}"
        print(msg, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
