"""Decipherment HMM (wav2vec_u/decipher/hmm.py): exact likelihood, EM learning on a seeded toy cipher."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from wav2vec_u.metrics import error_rate
from wav2vec_u.text.silence import SIL
from wav2vec_u.decipher.hmm import (HmmConfig, DecipherHMM, decode, dedup_units, fit_supervised, phone_ngram,
                                      train_units_to_phones)


def toy_cipher(seed: int = 0, n_utt: int = 150, n_text: int = 2000, K: int = 14, noise: float = 0.1,
               self_loop: float = 0.6):
    """A tiny 'language' of 12 words over 6 phones; each phone (and <SIL>) emits 2 own units + noise."""
    rng = np.random.default_rng(seed)
    inv = ["a", "b", "c", "d", "e", "f"]
    words = [[inv[i] for i in rng.choice(len(inv), rng.integers(2, 5))] for _ in range(12)]
    freq = np.r_[[0.3, 0.2, 0.1], np.full(9, 0.4 / 9)]

    def collapse(s):
        return [p for j, p in enumerate(s) if j == 0 or p != s[j - 1]]

    def sentence():
        return collapse([p for i in rng.choice(len(words), rng.integers(2, 6), p=freq) for p in words[i]])

    text = [[SIL] + sentence() + [SIL] for _ in range(n_text)]
    phones = [SIL] + inv
    E = np.full((len(phones), K), noise / K)
    for i in range(len(phones)):
        E[i, [2 * i, 2 * i + 1]] += (1 - noise) / 2
    refs, units = [], []
    for _ in range(n_utt):
        s = sentence()
        refs.append(s)
        u = []
        for p in [SIL] + s + [SIL]:
            while True:
                u.append(rng.choice(K, p=E[phones.index(p)]))
                if rng.random() > self_loop:
                    break
        u = np.array(u)
        units.append(u[np.r_[True, u[1:] != u[:-1]]])
    return text, units, refs


def test_dedup_units():
    ids = np.array([3, 3, 1, 1, 1, 3, 2, 2, 0])
    out = dedup_units(ids, [6, 3])
    assert [u.tolist() for u in out] == [[3, 1, 3], [2, 0]]
    with pytest.raises(ValueError, match="do not match"):
        dedup_units(ids, [4, 4])


def test_phone_ngram_rows_sum_to_one_and_no_repeats():
    phones, P = phone_ngram([[SIL, "a", "b", SIL], [SIL, "b", "a", "a", SIL]], order=3)
    assert phones == sorted(["a", "b", SIL])
    assert np.allclose(P.sum(2), 1.0)
    idx = np.arange(len(phones))
    assert np.all(P[:, idx, idx] == 0)
    _, P2 = phone_ngram([[SIL, "a", "b", SIL]], order=2)
    assert np.allclose(P2[0], P2[1])          # bigram: the previous-previous phone does not matter


def test_forward_equals_brute_force_sum_over_paths():
    text, units, refs = toy_cipher(n_utt=5, n_text=200)
    phones, P = phone_ngram(text, 3)
    rng = np.random.default_rng(1)
    E = rng.random((len(phones), 14)) + 0.1
    E /= E.sum(1, keepdims=True)
    s = 0.6
    model = DecipherHMM(phones, P, E, s)
    seq = units[0][:5]
    sil = phones.index(SIL)
    total = 0.0
    marginals = np.zeros((len(seq), len(phones)))
    best, best_path = -1.0, None
    for path in itertools.product(range(len(phones)), repeat=len(seq)):
        p0 = E[path[0], seq[0]] * (1.0 if path[0] == sil else 1e-6)
        prob, prev = p0, sil
        for t in range(1, len(seq)):
            if path[t] == path[t - 1]:
                prob *= s
            else:
                prob *= (1 - s) * P[prev, path[t - 1], path[t]]
                prev = path[t - 1]
            prob *= E[path[t], seq[t]]
        total += prob
        marginals[np.arange(len(seq)), list(path)] += prob
        if prob > best:
            best, best_path = prob, list(path)
    ll, counts = model.forward_backward([seq])
    assert ll == pytest.approx(np.log(total), abs=1e-4)
    assert counts.sum().item() == pytest.approx(len(seq), rel=1e-4)     # one unit's posterior mass per position
    # phone posteriors per position, batched with other sequences, and the batched Viterbi path
    others = [units[1][:3], units[2][:7]]
    post = model.posteriors([others[0], seq, others[1]], batch_size=2)
    np.testing.assert_allclose(post[1], marginals / total, atol=1e-4)
    assert list(model.viterbi_paths([others[0], seq, others[1]], batch_size=3)[1]) == best_path


def test_viterbi_recovers_the_path_with_the_true_table():
    text, units, refs = toy_cipher()
    phones, P = phone_ngram(text, 3)
    E = fit_supervised(units[:100], refs[:100], phones, 14, self_loop=0.6)
    model = DecipherHMM(phones, P, E, 0.6)
    assert error_rate(refs[100:], decode(model, units[100:])).rate < 0.2


def test_em_learns_the_toy_cipher_without_labels():
    """Seeded learning test: PER far below the most-frequent-phone baseline, no transcripts used."""
    torch.manual_seed(0)
    text, units, refs = toy_cipher()
    train, valid, vrefs = units[:100], units[100:], refs[100:]
    counts: dict[str, int] = {}
    for r in refs[:100]:
        for p in r:
            counts[p] = counts.get(p, 0) + 1
    most = max(counts, key=counts.get)
    baseline = error_rate(vrefs, [[most]] * len(vrefs)).rate
    assert baseline > 0.8
    lls = []
    cfg = HmmConfig(iters=15, stepwise=0.0, self_loop=0.6, seed=1)
    model = train_units_to_phones(train, text, 14, cfg, on_iter=lambda r, i, ll, m: lls.append(ll))
    per = error_rate(vrefs, decode(model, valid)).rate
    assert per < 0.35, f"PER {per:.3f} vs baseline {baseline:.3f}"
    assert all(b >= a - 1e-4 for a, b in zip(lls, lls[1:])), "batch EM must not lower the likelihood"


def test_config_errors():
    with pytest.raises(ValueError, match="order"):
        HmmConfig(order=4).check()
    with pytest.raises(ValueError, match="self_loop"):
        HmmConfig(self_loop=1.0).check()
    with pytest.raises(ValueError, match="no unit sequences"):
        train_units_to_phones([], [[SIL, "a", SIL]], 4)
    phones, P = phone_ngram([[SIL, "a", SIL]], 3)
    m = DecipherHMM(phones, P, np.full((len(phones), 3), 1 / 3), 0.5)
    with pytest.raises(ValueError, match="outside"):
        m.log_likelihood([np.array([0, 5])])
    m2 = DecipherHMM.from_state_dict(m.state_dict())
    assert m2.phones == m.phones and m2.num_units == 3


def test_shipped_config_loads():
    from pathlib import Path

    from wav2vec_u.config import load_config

    from wav2vec_u.decipher.config import DecipherRunConfig

    path = Path(__file__).resolve().parents[1] / "configs" / "decipher" / "default.yaml"
    cfg = load_config(DecipherRunConfig, path, ["hmm.iters=2"])
    cfg.hmm.check()
    assert cfg.hmm.order == 3 and cfg.hmm.iters == 2
    assert cfg == load_config(DecipherRunConfig, None, ["hmm.iters=2"])  # the file restates the defaults


def test_init_emissions_hook():
    text, units, refs = toy_cipher()
    phones, _ = phone_ngram(text, 3)
    E = fit_supervised(units[:100], refs[:100], phones, 14, self_loop=0.6)
    cfg = HmmConfig(iters=2, stepwise=0.0, self_loop=0.6)
    model = train_units_to_phones(units[:100], text, 14, cfg, init_emissions=E)
    assert error_rate(refs[100:], decode(model, units[100:])).rate < 0.2
    with pytest.raises(ValueError, match="init_emissions"):
        train_units_to_phones(units[:10], text, 14, cfg, init_emissions=E[:, :3])
