"""Research methods are library code with tests: spectral-change segments and the key search."""

from __future__ import annotations

import numpy as np
import pytest

from toys import make_toy
from wav2vec_u.metrics import error_rate
from wav2vec_u.research.key_search import KeyResult, anneal_key, frequency_matched_key, key_hyps
from wav2vec_u.audio.segmenters import ChangeSegmenterConfig, change_boundaries, change_columns, spectral_segments
from wav2vec_u.research.segmenters import oracle_segments


def test_change_boundaries_find_the_steps_of_a_piecewise_constant_signal():
    rng = np.random.default_rng(0)
    steps = [0, 7, 15, 22, 30]
    x = np.concatenate([np.full((b - a, 4), float(i % 2) * 3.0 + i) for i, (a, b) in enumerate(zip(steps, steps[1:]))])
    x += 0.05 * rng.standard_normal(x.shape)
    found = change_boundaries(x, ChangeSegmenterConfig(half=2, min_gap=2, rel=0.8))
    assert found[0] == 0 and found[-1] == 30
    for b in steps[1:-1]:
        assert min(abs(b - f) for f in found) <= 1, (b, found)
    with pytest.raises(ValueError, match="half"):
        change_boundaries(x, ChangeSegmenterConfig(half=0))


def test_segments_pool_every_frame_once():
    rng = np.random.default_rng(1)
    feats = rng.standard_normal((50, 6)).astype(np.float32)
    segs, seg_lengths, bounds = spectral_segments(feats, [20, 30], (0, 6))
    assert len(segs) == sum(seg_lengths) and [b[-1] for b in bounds] == [20, 30]
    np.testing.assert_allclose(segs[0], feats[bounds[0][0]:bounds[0][1]].mean(0), rtol=1e-5)
    o, ol = oracle_segments(feats, [20, 30], [[(0.0, 0.05), (0.05, 0.2)], [(0.0, 0.3)]])
    assert ol == [2, 1] and o.shape == (3, 6)
    np.testing.assert_allclose(o[0], feats[0:5].mean(0), rtol=1e-5)


def test_change_columns_watch_the_centre_frame_of_stacked_spectral_features():
    mfcc = {"extractor_details": {"spectral": {"context": 2}}}       # 39 coefficients x 5 stacked frames
    assert change_columns(mfcc, 195) == (78, 117)
    assert change_columns({"extractor": "hf"}, 1024) == (0, 1024)  # other features: every column
    assert change_columns(None, 64, [8, 16]) == (8, 16)
    with pytest.raises(ValueError, match="exceed"):
        change_columns(None, 10, [0, 20])


def test_key_search_deciphers_a_homophonic_toy_without_labels():
    """10 phones, 2 units each chosen at random per occurrence: the frequency-matched start key
    is far from the truth (PER > 60%); annealing by the text's trigram score alone must bring
    the valid PER below 10% (seed 1; measured 1.1%)."""
    rng = np.random.default_rng(0)
    toy = make_toy(num_phones=10, num_text=3000, num_train=600, num_valid=100, seed=4)
    unit_of = {p: [2 * i, 2 * i + 1] for i, p in enumerate(toy.phones)}
    to_units = lambda refs: [np.array([rng.choice(unit_of[p]) for p in r]) for r in refs]  # noqa: E731
    train_units, valid_units = to_units(toy.train.refs), to_units(toy.valid.refs)
    K = 2 * len(toy.phones)
    result = anneal_key(train_units, toy.text, K, iters=15_000, seed=1)
    start = KeyResult(frequency_matched_key(train_units, K, result.phones, toy.text), result.phones, 0, 0, 0, 0)
    start_per = error_rate(toy.valid.refs, key_hyps(start, valid_units)).rate
    per = error_rate(toy.valid.refs, key_hyps(result, valid_units)).rate
    assert result.score > result.start_score
    assert start_per > 0.6 and per < 0.10, (start_per, per)
