"""Feature folders: round trips, bad files, and finding features in a fairseq-prepared folder."""

from __future__ import annotations

import numpy as np
import pytest

from wav2vec_u.audio.features_io import (load_features, read_clusters, read_fairseq_pca, resolve_feature_dir,
                                         save_features, splits_in)
from wav2vec_u.audio.segments import apply_pca


def test_round_trip_with_manifest_labels_and_clusters(tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "train.tsv").write_text("/root\na.wav\t16000\nb.wav\t8000\n")
    (tmp_path / "corpus" / "train.phn").write_text("a b\nc\n")
    feats = np.random.default_rng(0).standard_normal((7, 3)).astype(np.float16)
    save_features(tmp_path / "f", "train", feats, [4, 3], manifest=tmp_path / "corpus" / "train.tsv",
                  meta={"extractor": "mfcc"}, clusters=[np.array([1, 1, 2, 0]), np.array([5, 5, 5])])
    got, lengths = load_features(tmp_path / "f", "train")
    assert lengths == [4, 3] and got.dtype == np.float16 and np.array_equal(got, feats)
    assert (tmp_path / "f" / "train.phn").read_text() == "a b\nc\n"
    assert (tmp_path / "f" / "train.tsv").read_text().startswith("/root\n")
    assert [c.tolist() for c in read_clusters(tmp_path / "f" / "train.cluster")] == [[1, 1, 2, 0], [5, 5, 5]]
    mm, _ = load_features(tmp_path / "f", "train", mmap=True)
    assert isinstance(mm, np.memmap) and np.array_equal(mm, feats)
    assert splits_in(tmp_path / "f") == ["train"]
    assert not list((tmp_path / "f").glob(".*tmp*"))


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.npy"):
        load_features(tmp_path, "train")
    np.save(tmp_path / "train.npy", np.zeros((3, 2), np.float32))
    with pytest.raises(FileNotFoundError, match="train.lengths"):
        load_features(tmp_path, "train")
    (tmp_path / "train.lengths").write_text("1\nx\n")
    with pytest.raises(ValueError, match="train.lengths, line 2"):
        load_features(tmp_path, "train")
    (tmp_path / "train.lengths").write_text("1\n1\n")
    with pytest.raises(ValueError, match="sums to 2 rows"):
        load_features(tmp_path, "train")
    (tmp_path / "valid.npy").write_bytes(b"garbage")
    (tmp_path / "valid.lengths").write_text("1\n")
    with pytest.raises(ValueError, match="valid.npy"):
        load_features(tmp_path, "valid")
    with pytest.raises(ValueError, match="lengths sum to 5"):
        save_features(tmp_path / "o", "train", np.zeros((3, 2)), [5])


def test_resolve_fairseq_prepared_layout(tmp_path):
    """fairseq prepare_audio.sh: raw {split}.npy on top, precompute_pca512[_cls128_mean[_pooled]] below."""
    rng = np.random.default_rng(0)
    raw = rng.standard_normal((10, 8)).astype(np.float32)
    save_features(tmp_path, "train", raw, [6, 4])
    assert resolve_feature_dir(tmp_path, "train") == tmp_path            # only raw features present
    for name in ("precompute_pca512", "precompute_pca512_cls128_mean", "precompute_pca512_cls128_mean_pooled"):
        save_features(tmp_path / name, "train", raw[:4], [2, 2])
    assert resolve_feature_dir(tmp_path, "train").name == "precompute_pca512_cls128_mean_pooled"
    assert resolve_feature_dir(tmp_path, "train", kind="frames") == tmp_path
    with pytest.raises(FileNotFoundError, match="valid.npy"):
        resolve_feature_dir(tmp_path, "valid")
    # fairseq's pca.py stores A transposed to (D_in, dim) and b; we apply x @ A + b
    (tmp_path / "pca").mkdir()
    a, b = rng.standard_normal((8, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    np.save(tmp_path / "pca" / "4_pca_A.npy", a)
    np.save(tmp_path / "pca" / "4_pca_b.npy", b)
    a2, b2 = read_fairseq_pca(tmp_path, 4)
    np.testing.assert_allclose(apply_pca(raw, a2, b2), raw @ a + b, rtol=1e-5, atol=1e-5)
    assert read_fairseq_pca(tmp_path, 512) is None
