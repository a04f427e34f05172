"""Research: simulated annealing over unit->phone keys scored by a phone trigram, then EM from the key.

    units = make_units(frames, lengths, k=128, smooth=1)[1]           # research.decipher
    result = anneal_key(units, sentences, num_units=128, iters=200_000, seed=2)
    model = em_from_key(units, sentences_with_sil, 128, result, HmmConfig(order=3))

A key maps every unit to one phone. Its score is label-free: the trigram log-probability (from
the unpaired phone text, ``<SIL>`` dropped) of the training unit sequences read through the key,
where a repeat of the same phone costs ``log(self_loop)`` instead (units per phone > 1). The
search starts from a key whose phone frequencies match the text's (units assigned greedily by
mass) and only swaps the phones of two units, so those frequencies stay fixed: without that
constraint the score prefers keys that overuse frequent phones (measured: a score above the
true key's at 86% PER, docs/demo-findings.md). The best key seeds the decipherment HMM's
emissions (each unit's key phone weight 1, every other phone ``eps``).

Nothing here reads references; callers may pass ``on_progress`` to print a PER they hold.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from wav2vec_u.decipher.hmm import HmmConfig, DecipherHMM, phone_ngram, train_units_to_phones
from wav2vec_u.tokens import SIL


def trigram_tables(sents: Sequence[Sequence[str]]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Phones, log p(z | x, y) (V+1)^3 and log p(z | y) (V+1)^2, index V the sentence boundary.

    Interpolated (0.6 trigram, 0.3 bigram, 0.1 unigram; bigram add-0.1, unigram add-1): every
    transition gets a finite score.
    """
    phones = sorted({p for s in sents for p in s})
    V = B = len(phones)
    pid = {p: i for i, p in enumerate(phones)}
    c3, c2, c1 = np.zeros((V + 1,) * 3), np.zeros((V + 1,) * 2), np.zeros(V + 1)
    for s in sents:
        ids = [B, B] + [pid[p] for p in s] + [B]
        for i in range(2, len(ids)):
            c3[ids[i - 2], ids[i - 1], ids[i]] += 1
            c2[ids[i - 1], ids[i]] += 1
            c1[ids[i]] += 1
    p1 = (c1 + 1) / (c1 + 1).sum()
    p2 = (c2 + 0.1) / (c2 + 0.1).sum(1, keepdims=True)
    tot = c3.sum(2, keepdims=True)
    p3 = np.where(tot > 0, c3 / np.maximum(tot, 1), 0)
    return phones, np.log(0.6 * p3 + 0.3 * p2[None] + 0.1 * p1[None, None]), np.log(0.8 * p2 + 0.2 * p1[None])


class KeyScorer:
    """The label-free score of a key over unit trigram counts, with incremental rescoring of swaps."""

    def __init__(self, units: Sequence[np.ndarray], num_units: int, log3: np.ndarray, log2: np.ndarray,
                 self_loop: float = 0.2):
        if not 0 < self_loop < 1:
            raise ValueError(f"self_loop must be in (0, 1), got {self_loop}")
        K = num_units
        tri: Counter = Counter()
        for u in units:
            ids = [K, K] + [int(x) for x in u] + [K]
            tri.update(zip(ids, ids[1:], ids[2:]))
        self.T = np.array(list(tri.keys()), dtype=np.int64).reshape(-1, 3)
        self.C = np.array(list(tri.values()), dtype=np.float64)
        self.N = float(self.C.sum())
        self.V = log3.shape[0] - 1
        self.log3, self.log2 = log3, log2
        self.l_rep, self.l_new = np.log(self_loop), np.log(1 - self_loop)
        # the trigram types each unit takes part in: a swap rescores only those
        self.touching = [np.flatnonzero((self.T == u).any(1)) for u in range(K)]

    def contributions(self, key: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        g = np.append(key, self.V)
        t = self.T[rows]
        x, y, z = g[t[:, 0]], g[t[:, 1]], g[t[:, 2]]
        return self.C[rows] * np.where(y == z, self.l_rep, self.l_new + np.where(x != y, self.log3[x, y, z],
                                                                                 self.log2[y, z]))

    def score(self, key: np.ndarray) -> float:
        return float(self.contributions(key).sum())


def frequency_matched_key(units: Sequence[np.ndarray], num_units: int, phones: Sequence[str],
                          sents: Sequence[Sequence[str]]) -> np.ndarray:
    """Frequent units first, each to the phone with the most text mass left: unit and phone frequencies match."""
    counts = np.bincount(np.concatenate([np.asarray(u, dtype=np.int64) for u in units]),
                         minlength=num_units).astype(float)
    text = Counter(p for s in sents for p in s)
    uni = np.array([text[p] for p in phones], dtype=float)
    deficit = uni / uni.sum() * counts.sum()
    key = np.zeros(num_units, dtype=np.int64)
    for u in np.argsort(-counts, kind="stable"):
        key[u] = int(np.argmax(deficit))
        deficit[key[u]] -= counts[u]
    return key


@dataclass
class KeyResult:
    key: np.ndarray          # (K,) phone index per unit
    phones: list[str]        # the phones the key indexes (no <SIL>)
    score: float             # label-free trigram score of the key (higher is better)
    start_score: float
    per_unit: float          # score / number of unit trigrams
    seconds: float


def anneal_key(units: Sequence[np.ndarray], sents: Sequence[Sequence[str]], num_units: int, iters: int = 200_000,
               t0: float = 5.0, seed: int = 2, self_loop: float = 0.2,
               on_progress: Callable[[int, float, np.ndarray], None] | None = None) -> KeyResult:
    """Simulated annealing over swaps of two units' phones, from the frequency-matched key.

    ``sents``: the unpaired phone text (``<SIL>`` is dropped here). ``on_progress(it, score, key)``
    is called five times along the way.
    """
    clean = [[p for p in s if p != SIL] for s in sents]
    phones, log3, log2 = trigram_tables(clean)
    scorer = KeyScorer(units, num_units, log3, log2, self_loop)
    rng = np.random.default_rng(seed)
    key = frequency_matched_key(units, num_units, phones, clean)
    contrib = scorer.contributions(key)
    s = start = float(contrib.sum())
    best = (s, key.copy())
    t_start = time.time()
    for it in range(iters):
        temp = t0 * (0.01 / t0) ** (it / iters)
        i, j = rng.integers(num_units, size=2)
        if key[i] == key[j]:
            continue
        rows = np.union1d(scorer.touching[i], scorer.touching[j])
        key[i], key[j] = key[j], key[i]
        new = scorer.contributions(key, rows)
        delta = float(new.sum() - contrib[rows].sum())
        if delta >= 0 or rng.random() < np.exp(delta / (temp * scorer.N / 1000)):
            contrib[rows] = new
            s += delta
            if s > best[0]:
                best = (s, key.copy())
        else:
            key[i], key[j] = key[j], key[i]
        if on_progress is not None and it % max(iters // 5, 1) == 0:
            on_progress(it, s, key)
    return KeyResult(best[1], phones, best[0], start, best[0] / max(scorer.N, 1.0), round(time.time() - t_start, 2))


def key_emissions(result: KeyResult, hmm_phones: Sequence[str], num_units: int, eps: float = 0.05) -> np.ndarray:
    """(V_hmm, K) emission table seeded by the key: weight 1 on each unit's key phone, ``eps`` elsewhere."""
    E = np.full((len(hmm_phones), num_units), eps)
    index = {p: i for i, p in enumerate(hmm_phones)}
    for u in range(num_units):
        E[index[result.phones[result.key[u]]], u] = 1.0
    return E / E.sum(1, keepdims=True)


def em_from_key(units: Sequence[np.ndarray], sil_sents: Sequence[Sequence[str]], num_units: int, result: KeyResult,
                cfg: HmmConfig, eps: float = 0.05, on_iter=None) -> DecipherHMM:
    """The decipherment HMM (research.decipher) trained by EM from the key's emissions."""
    hmm_phones, _ = phone_ngram(sil_sents, cfg.order, cfg.lm_interpolation, cfg.lm_add)
    E0 = key_emissions(result, hmm_phones, num_units, eps)
    return train_units_to_phones(units, sil_sents, num_units, cfg, on_iter=on_iter, init_emissions=E0)


def key_hyps(result: KeyResult, unit_seqs: Sequence[np.ndarray]) -> list[list[str]]:
    """Phones of unit sequences read through the key, repeats merged."""
    out = []
    for u in unit_seqs:
        h = [result.phones[result.key[int(i)]] for i in u]
        out.append([p for i, p in enumerate(h) if i == 0 or p != h[i - 1]])
    return out
