"""Statistics matching (wav2vec_u.decipher.stats_match) learns a noisy homophonic cipher without labels."""

from __future__ import annotations

import numpy as np
import torch

from toys import make_toy
from wav2vec_u.metrics import error_rate
from wav2vec_u.decipher.stats_match import MatchConfig, cooccurrence, match_statistics, table_emissions


def test_cooccurrence_counts_pairs_at_each_gap():
    C = cooccurrence([[0, 1, 0], [1, 1]], 2, 2)
    # gap 1: (0,1), (1,0), (1,1); gap 2: (0,0)
    assert np.allclose(C[0], np.array([[0, 1], [1, 1]]) / 3)
    assert np.allclose(C[1], np.array([[1, 0], [0, 0]]))


def _units(split, rng, homophones, noise, k):
    """Each phone -> one of its ``homophones`` units, ``noise`` of tokens replaced by a random unit."""
    choice = rng.integers(homophones, size=len(split.labels))
    u = split.labels * homophones + choice
    flip = rng.random(len(u)) < noise
    u[flip] = rng.integers(k, size=int(flip.sum()))
    return np.split(u, np.cumsum(split.lengths)[:-1])


def _read(P, units, phones):
    out = []
    for s in units:
        h = [phones[i] for i in P.argmax(1)[s]]
        out.append([p for i, p in enumerate(h) if i == 0 or p != h[i - 1]])
    return out


def test_statistics_matching_learns_noisy_homophonic_cipher():
    torch.manual_seed(0)
    toy = make_toy(num_phones=12, num_train=600, num_valid=100, num_text=3000, repeat_prob=0.15, seed=3)
    rng = np.random.default_rng(0)
    V, H = len(toy.phones), 2
    K = V * H
    train, valid = _units(toy.train, rng, H, 0.1, K), _units(toy.valid, rng, H, 0.1, K)
    pid = {p: i for i, p in enumerate(toy.phones)}
    text = [[pid[p] for p in s] for s in toy.text]
    P, loss = match_statistics(train, text, K, V, MatchConfig(restarts=4, steps=300), seed=1)
    assert P.shape == (4, K, V) and np.all(np.diff(loss) >= 0)
    learned = error_rate(toy.valid.refs, _read(P[0], valid, toy.phones)).rate
    # baseline: every unit read as the most frequent text phone (measured: learned 10.6%, baseline 85.0%)
    top = np.bincount(np.concatenate(text), minlength=V).argmax()
    base = error_rate(toy.valid.refs, [[toy.phones[top]] * len(r) for r in toy.valid.refs]).rate
    assert base > 0.8
    print(f"learned {learned:.3f} baseline {base:.3f}")
    assert learned < base - 0.4, (learned, base)
    E = table_emissions(P[0], train)
    assert E.shape == (V, K) and np.allclose(E.sum(1), 1)
