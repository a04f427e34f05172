"""Silence tokens in the phone text, as wav2vec-U puts them: the audio has pauses, so the text must too.

    rng = np.random.default_rng(1)
    insert_silence([["h", "ə"], ["w", "ɜː"]], prob=0.25, rng=rng)
    ->  ["<SIL>", "h", "ə", "w", "ɜː", "<SIL>"]      (or with "<SIL>" between the words)

Paper Sec. 4 and the reference's ``phonemize_with_sil.py --surround``: ``<SIL>`` at both ends
of every sentence, and after each word but the last with probability ``prob`` (0.25 for
wav2vec-U, 0.5 for wav2vec-U 2.0). Here the draws come from a seeded numpy generator, so the
phone text is reproducible.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from wav2vec_u.tokens import SIL


def insert_silence(words: Sequence[Sequence[str]], prob: float, rng: np.random.Generator,
                   surround: bool = True, sil: str = SIL) -> list[str]:
    """Flatten one sentence's words into phones with ``sil`` at the ends and between words."""
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"silence probability must be in [0, 1], got {prob}")
    draws = rng.random(max(len(words) - 1, 0)) if prob > 0 else None
    out: list[str] = [sil] if surround else []
    for i, w in enumerate(words):
        out.extend(w)
        if draws is not None and i < len(draws) and draws[i] < prob:
            out.append(sil)
    if surround:
        out.append(sil)
    return out


def gap_silences(phones: Sequence[str], surround: bool = True, sil: str = SIL) -> int:
    """Number of ``sil`` tokens between words of one line (the surrounding ones not counted)."""
    n = sum(1 for p in phones if p == sil)
    return n - (2 if surround and len(phones) >= 2 and phones[0] == sil and phones[-1] == sil else 0)
