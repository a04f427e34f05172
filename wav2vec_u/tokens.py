"""Tokens and token files: ``<SIL>`` and the other special symbols, one line of tokens per utterance.

Every stage that reads or writes ``.phn``/``.wrd``/``.hyp`` files, or splits concatenated
feature rows back into utterances, uses these::

    from wav2vec_u.tokens import SIL, read_token_lines, split_by_lengths, scored_vocab
    refs = read_token_lines("feats/valid.phn")          # [["<SIL>", "h", "ə", ...], ...]
    utts = split_by_lengths(feats, lengths)               # one (T_i, D) array per utterance
    scored_vocab(["<SIL>", "a", "b"])                     # ["a", "b"]: what PER and the LM metric count
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from wav2vec_u.io import atomic_write_text

# paper Sec. 4: the silence token between words and at both ends of every sentence
SIL = "<SIL>"
# Tokens never scored: silence and the special symbols of a fairseq dictionary.
SPECIAL_TOKENS = frozenset({SIL, "<s>", "</s>", "<pad>", "<unk>", "<blank>", "|"})


# fairseq's Dictionary always starts with these four, in this order (fairseq data/dictionary.py: bos, pad,
# eos, unk added first, nspecial = 4), so the reference's generator has them as outputs 0-3 before the phones
FAIRSEQ_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
PAD_INDEX = 1  # fairseq's pad(): where the reference's padded text is one-hot (discriminator.padding=reference)


def output_symbols(phones: Sequence[str], special_outputs: int = 0) -> list[str]:
    """The GAN generator's outputs: the first ``special_outputs`` of fairseq's specials, then ``phones``
    (dict.phn.txt, in file order). ``output_symbols(["a", "<SIL>"], 4)`` is
    ``["<s>", "<pad>", "</s>", "<unk>", "a", "<SIL>"]``: the reference's order, so the pad index is 1.
    The specials never occur in real text; a prediction of one is dropped like ``<SIL>`` (SPECIAL_TOKENS)."""
    if not 0 <= special_outputs <= len(FAIRSEQ_SPECIALS):
        raise ValueError(f"generator.special_outputs = {special_outputs}: must be in [0, {len(FAIRSEQ_SPECIALS)}] "
                         f"(fairseq's specials {' '.join(FAIRSEQ_SPECIALS)})")
    specials = list(FAIRSEQ_SPECIALS[:special_outputs])
    clash = sorted(set(specials) & set(phones))
    if clash:
        raise ValueError(f"the phone dictionary already has {' '.join(clash)}: generator.special_outputs would add "
                         "it twice; set generator.special_outputs=0")
    return specials + list(phones)


def scored_vocab(symbols: Iterable[str]) -> list[str]:
    """The symbols an output is scored on (PER, vocabulary usage): everything but the specials."""
    return [s for s in symbols if s not in SPECIAL_TOKENS]


def drop_special(tokens: Iterable[str]) -> list[str]:
    return [t for t in tokens if t not in SPECIAL_TOKENS]


def read_token_lines(path: str | Path, n: int | None = None, missing_ok: bool = False) -> list[list[str]] | None:
    """Token lists of a ``.phn``/``.wrd``/``.hyp`` file, one per line; the line count checked against ``n``.

    Only the final newline is a terminator: an empty last line is an empty utterance (a
    hypothesis the decoder left empty). ``missing_ok``: None for an absent file, else an error.
    """
    path = Path(path)
    if not path.is_file():
        if missing_ok:
            return None
        raise FileNotFoundError(f"missing file: {path}")
    text = path.read_text(encoding="utf-8")
    lines = (text[:-1] if text.endswith("\n") else text).split("\n") if text else []
    if n is not None and len(lines) != n:
        raise ValueError(f"{path} has {len(lines)} lines but the features have {n} utterances")
    return [line.split() for line in lines]


def format_token_lines(rows: Iterable[Sequence[str]]) -> str:
    return "".join(" ".join(r) + "\n" for r in rows)


def write_token_lines(path: str | Path, rows: Iterable[Sequence[str]]) -> Path:
    """One line of space-separated tokens per utterance, written atomically."""

    return atomic_write_text(path, format_token_lines(rows))


def offsets_of(lengths: Iterable[int]) -> np.ndarray:
    """Start row of every utterance: [0, l0, l0+l1, ...] (len = U + 1)."""
    return np.concatenate([[0], np.cumsum(np.asarray(list(lengths), dtype=np.int64))]).astype(np.int64)


def split_by_lengths(feats: np.ndarray, lengths: Sequence[int], dtype: np.dtype | None = None) -> list[np.ndarray]:
    """(N, D) concatenated rows -> one (T_i, D) array per utterance (``dtype``: converted copies)."""
    lengths = [int(n) for n in lengths]
    if sum(lengths) != len(feats):
        raise ValueError(f"lengths sum to {sum(lengths)} but the feature array has {len(feats)} rows")
    offsets = offsets_of(lengths)
    rows = [feats[offsets[i]:offsets[i + 1]] for i in range(len(lengths))]
    return rows if dtype is None else [np.asarray(r, dtype=dtype) for r in rows]
