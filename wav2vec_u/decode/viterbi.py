"""Viterbi (greedy) phone decoding of generator outputs, with segment-level timestamps.

The generator emits one distribution per input segment; the best path is the per-position
argmax (the outputs are independent given the input), consecutive repeats are one phone, and
``<SIL>`` and other special tokens are dropped (paper Sec. 4; the reference's ``viterbi``
decoder does the same without needing flashlight here)::

    from wav2vec_u.decode.viterbi import viterbi_decode
    out = viterbi_decode(logits, phones, spans=spans, frame_rate=50.0)
    out.tokens       # ["h", "ə", "l", "oʊ"]
    out.segments     # [Segment("h", start=0.12, end=0.20), ...]

Timestamps: position ``t`` of the generator output covers the input segment ``t``. When the
caller passes ``spans`` (``(start_frame, end_frame)`` of each input segment in the original
frame features, end exclusive), times are frames, or seconds with ``frame_rate``; otherwise
they are the output positions themselves (``start`` inclusive, ``end`` exclusive). ``unit``
says which.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from wav2vec_u.tokens import SPECIAL_TOKENS


@dataclass(frozen=True)
class Segment:
    token: str
    start: float
    end: float
    score: float = 0.0  # mean log-probability of the run's argmax (a confidence, not a probability)


@dataclass
class Decoded:
    tokens: list[str]
    segments: list[Segment] = field(default_factory=list)
    unit: str = "position"  # "frames" when spans were given, "seconds" with spans + frame_rate
    score: float = 0.0      # total log-probability of the argmax path

    def text(self) -> str:
        return " ".join(self.tokens)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def join_runs(ids: Sequence[int]) -> list[tuple[int, int, int]]:
    """Consecutive equal ids as ``(id, start, end)`` runs, end exclusive."""
    runs = []
    start = 0
    for t in range(1, len(ids) + 1):
        if t == len(ids) or ids[t] != ids[start]:
            runs.append((int(ids[start]), start, t))
            start = t
    return runs


def viterbi_decode(logits: np.ndarray, phones: Sequence[str], *,
                   spans: Sequence[tuple[int, int]] | np.ndarray | None = None,
                   frame_rate: float | None = None,
                   drop: frozenset[str] | set[str] = SPECIAL_TOKENS) -> Decoded:
    """Greedy decode of one utterance's ``(T, V)`` logits (or log-probs); ``V == len(phones)``."""
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[1] != len(phones):
        raise ValueError(f"logits must be (T, V={len(phones)}), got {logits.shape}")
    lp = log_softmax(logits)
    ids = lp.argmax(axis=1) if len(lp) else np.zeros(0, dtype=int)
    best = lp[np.arange(len(lp)), ids] if len(lp) else np.zeros(0)
    if spans is not None:
        spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
        if len(spans) == 0 and len(lp):
            raise ValueError("spans is empty but the utterance has outputs")
    unit = "position" if spans is None else ("seconds" if frame_rate else "frames")

    def time(pos: int, end: bool) -> float:
        if spans is None:
            return float(pos + 1 if end else pos)
        # the generator may emit one output more than it got segments (conv padding): clamp
        row = spans[min(pos, len(spans) - 1)]
        frame = int(row[1] if end else row[0])
        return frame / frame_rate if frame_rate else float(frame)

    tokens, segments = [], []
    for pid, s, e in join_runs(ids.tolist()):
        tok = phones[pid]
        if tok in drop:
            continue
        tokens.append(tok)
        segments.append(Segment(tok, time(s, False), time(e - 1, True), float(best[s:e].mean())))
    return Decoded(tokens=tokens, segments=segments, unit=unit, score=float(best.sum()))


def spans_from_lengths(lengths: Sequence[int]) -> np.ndarray:
    """Contiguous ``(start, end)`` spans of segments given how many frames each one pooled."""
    ends = np.cumsum(np.asarray(lengths, dtype=np.int64))
    return np.stack([ends - np.asarray(lengths, dtype=np.int64), ends], axis=1)
