"""Research diagnostics for segmentations: they read the synthesiser's phone times (labels).

The label-free segmenter itself is :mod:`wav2vec_u.audio.segmenters`.

:func:`oracle_segments` pools at the synthesiser's own phone times: it reads labels,
so it is a diagnostic ("is the segmentation the problem?"), never a method.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from wav2vec_u.tokens import SIL, split_by_lengths


def frame_labels(phones: Sequence[str], timings: Sequence[Sequence[float] | None], num_frames: int,
                 frame_rate: float = 100.0) -> np.ndarray:
    """One phone per frame from (start, end) seconds; frames no phone covers are ``<SIL>``."""
    lab = np.full(num_frames, SIL, dtype=object)
    for p, t in zip(phones, timings):
        if t is not None:
            lab[int(round(t[0] * frame_rate)):int(round(t[1] * frame_rate))] = p
    return lab


def segment_majority_labels(labels: np.ndarray, bounds: Sequence[int]) -> list[str]:
    """The most frequent frame label of every segment (to measure purity; reads labels)."""
    return [Counter(labels[s:e]).most_common(1)[0][0] for s, e in zip(bounds, bounds[1:])]


def oracle_segments(feats: np.ndarray, lengths: Sequence[int], timings: Sequence[Sequence[Sequence[float]]],
                    frame_rate: float = 100.0) -> tuple[np.ndarray, list[int]]:
    """Diagnostic (reads the synthesiser's phone times): one mean-pooled row per timed phone."""
    utts = split_by_lengths(feats, lengths, np.float32)
    if len(timings) != len(utts):
        raise ValueError(f"{len(timings)} timed utterances for {len(utts)} feature utterances")
    segs, seg_lengths = [], []
    for f, times in zip(utts, timings):
        rows = []
        for start, end in times:
            a = min(int(round(start * frame_rate)), len(f) - 1)
            b = max(a + 1, min(int(round(end * frame_rate)), len(f)))
            rows.append(f[a:b].mean(0))
        segs.append(np.stack(rows) if rows else np.zeros((0, feats.shape[1]), np.float32))
        seg_lengths.append(len(rows))
    return np.concatenate(segs).astype(np.float32), seg_lengths
