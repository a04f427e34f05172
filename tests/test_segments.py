"""PCA, k-means, merge and mean-pool on hand-made arrays with answers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from wav2vec_u.audio.features_io import load_features, read_clusters, save_features
from wav2vec_u.audio.segments import (SegmentsConfig, apply_pca, assign_clusters, fit_kmeans, fit_pca, make_segments,
                                mean_pool, merge_segments, segment_starts)


def test_merge_by_hand():
    # two utterances: ids [1 1 2 2 2 1] and [1 1 3]; the run of 1s at the utterance border is split
    feats = np.arange(9, dtype=np.float32)[:, None] * np.array([[1.0, 10.0]], dtype=np.float32)
    ids = np.array([1, 1, 2, 2, 2, 1, 1, 1, 3])
    seg, lengths = merge_segments(feats, ids, [6, 3])
    assert lengths == [3, 2]
    np.testing.assert_allclose(seg[:, 0], [0.5, 3.0, 5.0, 6.5, 8.0])
    np.testing.assert_allclose(seg[:, 1], [5.0, 30.0, 50.0, 65.0, 80.0])
    assert segment_starts(ids, [6, 3]).tolist() == [1, 0, 1, 0, 0, 1, 1, 0, 1]


def test_merge_count_equals_runs_and_handles_empty_utterances():
    rng = np.random.default_rng(0)
    lengths = [5, 0, 7, 1]
    ids = rng.integers(0, 3, size=sum(lengths))
    seg, seg_len = merge_segments(rng.standard_normal((13, 4)).astype(np.float32), ids, lengths)
    expect = []
    for u, (a, b) in enumerate(zip(np.cumsum([0] + lengths[:-1]), np.cumsum(lengths))):
        run = ids[a:b]
        expect.append(int(len(run) and 1 + np.count_nonzero(run[1:] != run[:-1])))
    assert seg_len == expect and seg.shape[0] == sum(expect)


def test_mean_pool_matches_fairseq_rule():
    # n=5, rate .5 -> m=3 groups of 2, last group [4, 4] (last row repeated); n=1 -> 1; n=2 -> 1
    x = np.arange(8, dtype=np.float32)[:, None]
    pooled, lengths = mean_pool(x, [5, 1, 2], rate=0.5)
    assert lengths == [3, 1, 1]
    np.testing.assert_allclose(pooled[:, 0], [0.5, 2.5, 4.0, 5.0, 6.5])
    # n=10, rate .3 -> m=3, g=ceil(10/3)=4, padded to 12 with the last row: [0..3], [4..7], [8, 9, 9, 9]
    pooled, lengths = mean_pool(np.arange(10, dtype=np.float32)[:, None], [10], rate=0.3)
    assert lengths == [3]
    np.testing.assert_allclose(pooled[:, 0], [1.5, 5.5, 9 * 0.75 + 8 * 0.25])
    pooled, lengths = mean_pool(np.zeros((0, 2), np.float32), [0], 0.5)
    assert lengths == [0] and pooled.shape == (0, 2)


def test_pca_recovers_known_subspace():
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    z = rng.standard_normal((5000, 6)) * np.array([5.0, 3.0, 1.0, 0.01, 0.01, 0.01])
    x = (z @ basis.T + 7.0).astype(np.float32)
    a, b = fit_pca(x, 3)
    y = apply_pca(x, a, b)
    assert a.shape == (6, 3) and y.shape == (5000, 3)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(y.std(axis=0), [5.0, 3.0, 1.0], rtol=0.05)
    # the projection keeps almost all variance: reconstruction error ~ the discarded 0.01 stds
    recon = y @ a.T + x.mean(axis=0)
    assert np.abs(recon - x).std() < 0.05
    w = apply_pca(x, *fit_pca(x, 3, eigen_power=-0.5))
    np.testing.assert_allclose(w.std(axis=0), 1.0, rtol=0.05)
    with pytest.raises(ValueError, match="PCA dim"):
        fit_pca(x, 7)


def test_kmeans_finds_separated_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10]], dtype=np.float32)
    labels = rng.integers(0, 3, 600)
    x = centres[labels] + 0.3 * rng.standard_normal((600, 2)).astype(np.float32)
    c = fit_kmeans(x, k=3, niter=20, nredo=2, seed=1)
    ids = assign_clusters(x, c)
    # each true cluster maps to exactly one k-means id
    mapping = {int(t): set(ids[labels == t].tolist()) for t in range(3)}
    assert all(len(v) == 1 for v in mapping.values()) and len(set.union(*mapping.values())) == 3
    with pytest.raises(ValueError, match="k=3"):
        fit_kmeans(x[:2], k=3)


def test_make_segments_on_a_directory(tmp_path):
    rng = np.random.default_rng(0)
    # frames drawn from 4 well-separated "phones", held for 3-6 frames each
    means = rng.standard_normal((4, 16)).astype(np.float32) * 5
    utts, lengths = [], []
    for _ in range(20):
        seq = np.concatenate([np.full(rng.integers(3, 7), rng.integers(0, 4)) for _ in range(6)])
        utts.append(means[seq] + 0.1 * rng.standard_normal((len(seq), 16)).astype(np.float32))
        lengths.append(len(seq))
    (tmp_path / "frames").mkdir()
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "train.tsv").write_text("/x\n" + "".join(f"u{i}.wav\t100\n" for i in range(20)))
    (tmp_path / "corpus" / "train.phn").write_text("a b\n" * 20)
    save_features(tmp_path / "frames", "train", np.concatenate(utts), lengths, manifest=tmp_path / "corpus" / "train.tsv")
    cfg = SegmentsConfig()
    cfg.pca.dim, cfg.kmeans.k, cfg.kmeans.niter, cfg.kmeans.nredo = 8, 4, 20, 5
    cfg.pool.mean_pool = False
    meta = make_segments(tmp_path / "frames", tmp_path / "seg", cfg)
    seg, seg_len = load_features(tmp_path / "seg", "train")
    clusters = read_clusters(tmp_path / "seg" / "train.cluster")
    assert [len(c) for c in clusters] == lengths
    runs = [1 + int(np.count_nonzero(c[1:] != c[:-1])) for c in clusters]
    assert seg_len == runs and seg.shape == (sum(runs), 8)
    assert (tmp_path / "seg" / "train.phn").is_file() and (tmp_path / "seg" / "train.tsv").is_file()
    assert meta["stats"]["train"]["segments"] == sum(runs)
    # clean data: segments are exactly the held "phones" unless two equal ones were adjacent
    assert sum(runs) <= 6 * 20
    cfg.pool.mean_pool = True
    make_segments(tmp_path / "frames", tmp_path / "pooled", cfg)
    _, pooled_len = load_features(tmp_path / "pooled", "train")
    assert pooled_len == [int(np.ceil(r * 0.5)) for r in runs]
    cfg.pca.dim = 0  # no PCA: segments are means of the raw frames
    make_segments(tmp_path / "frames", tmp_path / "nopca", cfg)
    raw, _ = load_features(tmp_path / "nopca", "train")
    assert raw.shape[1] == 16 and not (tmp_path / "nopca" / "pca_A.npy").exists()
