"""Tiny synthetic material for testing decoders and self-training without audio or lmplz.

    from wav2vec_u.decode.toy import write_bigram_arpa, toy_lexicon, toy_utterances
    write_bigram_arpa(tmp / "lm.words.4.arpa", ["the cat sat", "a dog ran"])
    lexicon = toy_lexicon(words, phones, rng)                 # word -> [(p, p, ...)]
    utts, phone_refs = toy_utterances(phone_seqs, means, rng)  # Gaussian frames per phone

The features are "a Gaussian per phone, 2-4 frames each, plus a fraction of the previous
phone's mean" (a little coarticulation), which a small CTC model learns in seconds.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np


def write_bigram_arpa(path: str | Path, sentences: Sequence[str], discount: float = 0.5) -> Path:
    """An absolute-discounting bigram LM (log10, ARPA) of ``sentences``; KenLM loads it as is."""
    uni: Counter = Counter()
    bi: Counter = Counter()
    for s in sentences:
        w = ["<s>", *s.split(), "</s>"]
        uni.update(w)
        bi.update(zip(w[:-1], w[1:]))
    vocab = sorted(set(uni) | {"<unk>"})
    total = sum(c for w, c in uni.items() if w != "<s>")
    followers = Counter(a for a, _ in bi)
    ctx: Counter = Counter()
    for (a, _), c in bi.items():
        ctx[a] += c
    lines = ["\\data\\", f"ngram 1={len(vocab)}", f"ngram 2={len(bi)}", "", "\\1-grams:"]
    for w in vocab:
        p = -99.0 if w == "<s>" else math.log10((uni[w] + 0.5) / (total + 0.5 * len(vocab)))
        if w in ctx:
            lines.append(f"{p:.4f}\t{w}\t{math.log10(discount * followers[w] / ctx[w]):.4f}")
        else:
            lines.append(f"{p:.4f}\t{w}")
    lines += ["", "\\2-grams:"]
    for (a, b), c in sorted(bi.items()):
        lines.append(f"{math.log10((c - discount) / ctx[a] + 1e-9):.4f}\t{a} {b}")
    lines += ["", "\\end\\", ""]
    path = Path(path)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def toy_lexicon(words: Sequence[str], phones: Sequence[str], rng: np.random.Generator,
                min_len: int = 2, max_len: int = 3) -> dict[str, list[tuple[str, ...]]]:
    """Distinct random pronunciations (no phone repeated back to back) for ``words``."""
    lexicon: dict[str, list[tuple[str, ...]]] = {}
    used = set()
    for w in words:
        while True:
            n = int(rng.integers(min_len, max_len + 1))
            pron = [str(rng.choice(phones))]
            while len(pron) < n:
                p = str(rng.choice(phones))
                if p != pron[-1]:
                    pron.append(p)
            if tuple(pron) not in used:
                break
        used.add(tuple(pron))
        lexicon[w] = [tuple(pron)]
    return lexicon


def toy_utterances(phone_seqs: Sequence[Sequence[str]], means: dict[str, np.ndarray], rng: np.random.Generator,
                   noise: float = 0.8, context: float = 0.3) -> list[np.ndarray]:
    """Frames for each phone sequence: 2-4 frames per phone of its mean + context + noise."""
    dim = len(next(iter(means.values())))
    utts = []
    for seq in phone_seqs:
        frames = []
        for i, p in enumerate(seq):
            ctx = context * means[seq[i - 1]] if i else 0.0
            frames += [means[p] + ctx + noise * rng.standard_normal(dim) for _ in range(int(rng.integers(2, 5)))]
        utts.append(np.asarray(frames, dtype=np.float32).reshape(-1, dim))
    return utts


def corrupt(labels: Sequence[str], inventory: Sequence[str], rng: np.random.Generator,
            sub: float = 0.25, dele: float = 0.1, ins: float = 0.05) -> list[str]:
    """Random substitutions, deletions and insertions (noisy pseudo-labels, better than chance)."""
    out = []
    for t in labels:
        r = rng.random()
        if r < dele:
            continue
        out.append(str(rng.choice(inventory)) if r < dele + sub else t)
        if rng.random() < ins:
            out.append(str(rng.choice(inventory)))
    return out
