"""Research: label-free phone-like segments from frame features by spectral change, mean-pooled.

    bounds = change_boundaries(frames[:, 78:117], half=2, min_gap=2, rel=0.8)   # [0, b1, ..., T]
    segs, seg_lengths = spectral_segments(feats, lengths, dims=(78, 117))        # (S, D), per utterance

For each frame t the change score is the distance between the mean of the ``half`` frames
after t and the mean of the ``half`` frames before it, over the chosen feature columns (the
centre frame's 39 MFCC dims of the demo's 195-dim stacked MFCC by default). Boundaries are
local maxima within ``min_gap`` frames that exceed ``rel`` x the utterance's median score.
Each segment is the mean of its frames. Measured on the English demo (docs/demo-findings.md):
0.95 segments per phone, K=128 k-means purity 0.66 (espeak-ng's oracle boundaries: 0.74; the
pipeline's merged frame clusters: 0.58).

:func:`oracle_segments` pools at the synthesiser's own phone times instead: it reads labels,
so it is a diagnostic ("is the segmentation the problem?"), never a method.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from wav2vec_u.tokens import SIL, split_by_lengths

# the centre frame's 13 MFCC + deltas + delta-deltas in the demo's 5-frame stacked MFCC (195 dims)
DEMO_MFCC_CENTRE = (78, 117)


def change_scores(x: np.ndarray, half: int) -> np.ndarray:
    """(T,) spectral change per frame: |mean(next half) - mean(previous half)|; 0 near the edges."""
    T = len(x)
    score = np.zeros(T)
    if T <= 2 * half:
        return score
    c = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, 0)])
    t = np.arange(half, T - half + 1)
    score[t] = np.linalg.norm((c[t + half] - c[t]) - (c[t] - c[t - half]), axis=1) / half
    return score


def change_boundaries(x: np.ndarray, half: int = 2, min_gap: int = 2, rel: float = 0.8) -> list[int]:
    """Segment boundaries ``[0, ..., T]`` of one utterance's frames ``x`` (T, D)."""
    if half < 1 or min_gap < 1 or rel < 0:
        raise ValueError(f"half and min_gap must be >= 1 and rel >= 0, got {half}, {min_gap}, {rel}")
    T = len(x)
    if T <= 2 * half:
        return [0, T]
    score = change_scores(x, half)
    t = np.arange(half, T - half + 1)
    thr = rel * np.median(score[t])
    out = [0]
    for i in t:
        lo, hi = max(0, i - min_gap), min(T, i + min_gap + 1)
        if score[i] >= thr and score[i] == score[lo:hi].max() and i - out[-1] >= min_gap:
            out.append(int(i))
    return out + [T] if out[-1] != T else out


def pool(frames: np.ndarray, bounds: Sequence[int]) -> np.ndarray:
    """Mean of the frames of every segment ``[bounds[i], bounds[i + 1])``: (S, D) float32."""
    return np.stack([frames[s:e].mean(0) for s, e in zip(bounds, bounds[1:])]).astype(np.float32)


def spectral_segments(feats: np.ndarray, lengths: Sequence[int], dims: tuple[int, int] = DEMO_MFCC_CENTRE,
                      half: int = 2, min_gap: int = 2, rel: float = 0.8) -> tuple[np.ndarray, list[int], list[list[int]]]:
    """Segment features of every utterance: (S, D) pooled rows, segments per utterance, boundaries."""
    d0, d1 = dims
    segs, seg_lengths, all_bounds = [], [], []
    for f in split_by_lengths(feats, lengths, np.float32):
        b = change_boundaries(f[:, d0:d1], half, min_gap, rel) if len(f) else [0]
        segs.append(pool(f, b) if len(b) > 1 else np.zeros((0, feats.shape[1]), np.float32))
        seg_lengths.append(len(b) - 1)
        all_bounds.append(b)
    return np.concatenate(segs), seg_lengths, all_bounds


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
