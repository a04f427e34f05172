"""Label-free phone-like segments from frame features by spectral change, mean-pooled.

    cfg = ChangeSegmenterConfig()                                        # half 2, min_gap 2, rel 0.8
    cols = change_columns(load_json("feats/meta.json"))                  # which feature columns to watch
    bounds = change_boundaries(frames[:, cols[0]:cols[1]], cfg)          # [0, b1, ..., T]
    segs, seg_lengths, bounds = spectral_segments(feats, lengths, cols, cfg)  # (S, D), per utterance

For each frame t the change score is the distance between the mean of the ``half`` frames
after t and the mean of the ``half`` frames before it, over the chosen feature columns (for
stacked MFCC/log-mel: the centre frame's coefficients and deltas). Boundaries are local maxima
within ``min_gap`` frames that exceed ``rel`` x the utterance's median score; each segment is the
mean of its frames. Measured on the English demo (docs/demo-findings.md): 1.16 segments per
phone, K=128 k-means purity 0.64 (with ``min_gap=2``: 0.95 and 0.66; espeak-ng's oracle
boundaries: 0.74; the wav2vec-U pipeline's merged frame clusters: 0.58); Spanish 1.05 and 0.76. The decipherment method (:mod:`wav2vec_u.decipher`) reads its units
from these segments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from wav2vec_u.config import at_least, non_negative
from wav2vec_u.tokens import split_by_lengths


@dataclass
class ChangeSegmenterConfig:
    half: int = at_least(1, default=2)        # frames averaged on each side of a candidate boundary (20 ms at 100 Hz)
    # boundaries at least this many frames apart (local-maximum window). 1: 1.05 segments per phone on the
    # Spanish demo (2: 0.85, too few: a segment then spans two phones, which no decoder can split)
    min_gap: int = at_least(1, default=1)
    rel: float = non_negative(default=0.8)    # a boundary's score must exceed rel x the utterance's median score
    # feature columns [start, end) the change is measured on; [] = from the features' meta.json
    # (the centre frame of stacked MFCC/log-mel), or every column for other features
    columns: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.columns and (len(self.columns) != 2 or not 0 <= self.columns[0] < self.columns[1]):
            raise ValueError(f"segmenter.columns must be [start, end) with 0 <= start < end, got {self.columns}")


def change_columns(meta: dict | None, dim: int, configured: Sequence[int] = ()) -> tuple[int, int]:
    """Columns [start, end) to measure change on: configured ones, else the centre frame of stacked
    spectral features (``extractor_details.spectral.context`` frames each side), else all ``dim``."""
    if configured:
        start, end = int(configured[0]), int(configured[1])
        if end > dim:
            raise ValueError(f"segmenter.columns {list(configured)} exceed the features' {dim} dimensions")
        return start, end
    spectral = ((meta or {}).get("extractor_details") or {}).get("spectral") or {}
    context = int(spectral.get("context") or 0)
    if context > 0 and dim % (2 * context + 1) == 0:
        per_frame = dim // (2 * context + 1)
        return context * per_frame, (context + 1) * per_frame
    return 0, dim


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


def change_boundaries(x: np.ndarray, cfg: ChangeSegmenterConfig | None = None) -> list[int]:
    """Segment boundaries ``[0, ..., T]`` of one utterance's frames ``x`` (T, D)."""
    cfg = cfg or ChangeSegmenterConfig()
    half, min_gap = cfg.half, cfg.min_gap
    if half < 1 or min_gap < 1 or cfg.rel < 0:
        raise ValueError(f"half and min_gap must be >= 1 and rel >= 0, got {half}, {min_gap}, {cfg.rel}")
    T = len(x)
    if T <= 2 * half:
        return [0, T]
    score = change_scores(x, half)
    t = np.arange(half, T - half + 1)
    thr = cfg.rel * np.median(score[t])
    out = [0]
    for i in t:
        lo, hi = max(0, i - min_gap), min(T, i + min_gap + 1)
        if score[i] >= thr and score[i] == score[lo:hi].max() and i - out[-1] >= min_gap:
            out.append(int(i))
    return out + [T] if out[-1] != T else out


def pool(frames: np.ndarray, bounds: Sequence[int]) -> np.ndarray:
    """Mean of the frames of every segment ``[bounds[i], bounds[i + 1])``: (S, D) float32."""
    b = np.asarray(bounds)
    sums = np.add.reduceat(np.asarray(frames, dtype=np.float64), b[:-1], axis=0)
    return (sums / np.diff(b)[:, None]).astype(np.float32)


def spectral_segments(feats: np.ndarray, lengths: Sequence[int], columns: tuple[int, int],
                      cfg: ChangeSegmenterConfig | None = None) -> tuple[np.ndarray, list[int], list[list[int]]]:
    """Segment features of every utterance: (S, D) pooled rows, segments per utterance, boundaries."""
    d0, d1 = columns
    segs, seg_lengths, all_bounds = [], [], []
    for f in split_by_lengths(feats, lengths, np.float32):
        if len(f) == 0:
            raise ValueError("an utterance has no frames; remove it before segmenting")
        b = change_boundaries(f[:, d0:d1], cfg)
        segs.append(pool(f, b))
        seg_lengths.append(len(b) - 1)
        all_bounds.append(b)
    return np.concatenate(segs), seg_lengths, all_bounds
