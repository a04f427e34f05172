"""``w2vu prepare-audio`` with MFCC on 50 synthesised utterances (``toys.write_audio_corpus``):
segment counts, meta, caching; the 2.0 mode's frames and MFCC-cluster targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wav2vec_u.audio.features_io import load_features, read_clusters, resolve_feature_dir
from wav2vec_u.audio.io import load_16k
from wav2vec_u.cli import main
from wav2vec_u.io import read_json
from wav2vec_u.audio.segments import apply_pca, assign_clusters, mean_pool, merge_segments
from toys import write_audio_corpus

# small k-means / PCA so the test stays fast; the defaults (K=128, 50 iterations, 3 restarts) are the paper's
FAST = ["segments.kmeans.k=16", "segments.kmeans.niter=10", "segments.kmeans.nredo=1", "segments.pca.dim=32"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    write_audio_corpus(root, 50)
    return root


def _mtimes(d: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in d.iterdir() if p.suffix in (".npy", ".lengths", ".cluster")}


def test_prepare_audio_mfcc_end_to_end(corpus, tmp_path, capsys):
    out = tmp_path / "prep"
    assert main(["prepare-audio", str(corpus), str(out), *FAST, "--no-wandb", "--no-progress"]) == 0
    frames, lengths = load_features(out / "frames", "train")
    segs, seg_lengths = load_features(out / "segments", "train")
    assert len(lengths) == 40 and frames.shape[1] == 195
    # segment counts follow from the merge of the cluster ids (recomputed here from the saved model)
    a, b = np.load(out / "segments" / "pca_A.npy"), np.load(out / "segments" / "pca_b.npy")
    ids = assign_clusters(frames, np.load(out / "segments" / "centroids.npy"))  # k-means on raw frames
    clusters = read_clusters(out / "segments" / "train.cluster")
    assert np.array_equal(np.concatenate(clusters), ids)
    runs = [1 + int(np.count_nonzero(c[1:] != c[:-1])) for c in clusters]
    merged, merged_len = merge_segments(apply_pca(frames, a, b), ids, lengths)
    assert merged_len == runs
    pooled, pooled_len = mean_pool(merged, merged_len, 0.5)          # the reference's second pooling
    assert seg_lengths == pooled_len == [int(np.ceil(r / 2)) for r in runs]
    np.testing.assert_allclose(segs, pooled, atol=1e-5)
    assert segs.shape[1] == 32 and sum(runs) < 0.7 * sum(lengths)   # merging does merge
    _, valid_len = load_features(out / "segments", "valid")
    assert len(valid_len) == 10
    # labels travel with the features; both folders describe themselves
    assert (out / "segments" / "train.wrd").read_text() == (corpus / "train.wrd").read_text()
    fmeta, smeta = read_json(out / "frames" / "meta.json"), read_json(out / "segments" / "meta.json")
    assert fmeta["extractor"] == "mfcc" and fmeta["dim"] == 195
    assert len(fmeta["splits"]["train"]["manifest_sha256"]) == 64
    assert smeta["segments"]["kmeans"]["k"] == 16 and smeta["segments"]["seed"] == 1
    assert smeta["frame_meta"]["extractor"] == "mfcc" and smeta["provenance"]["versions"]["numpy"]
    assert resolve_feature_dir(out, "train") == out / "segments"

    # a rerun with the same options does nothing
    before_f, before_s = _mtimes(out / "frames"), _mtimes(out / "segments")
    capsys.readouterr()
    assert main(["prepare-audio", str(corpus), str(out), *FAST, "--no-wandb", "--no-progress"]) == 0
    assert "segments up-to-date" in capsys.readouterr().out
    assert _mtimes(out / "frames") == before_f and _mtimes(out / "segments") == before_s

    # a changed segment option recomputes the segments only
    assert main(["prepare-audio", str(corpus), str(out), *FAST, "segments.kmeans.k=8",
                 "--no-wandb", "--no-progress"]) == 0
    assert _mtimes(out / "frames") == before_f
    after = _mtimes(out / "segments")
    assert all(after[n] != before_s[n] for n in ("train.npy", "train.lengths", "train.cluster"))
    assert np.load(out / "segments" / "centroids.npy").shape == (8, 195)
    assert read_json(out / "segments" / "meta.json")["segments"]["kmeans"]["k"] == 8

    # a changed extraction option recomputes both
    assert main(["prepare-audio", str(corpus), str(out), *FAST, "segments.kmeans.k=8",
                 "extract.features.spectral.hop_ms=20", "--no-wandb", "--no-progress"]) == 0
    frames20, lengths20 = load_features(out / "frames", "train")
    assert sum(lengths20) < 0.55 * sum(lengths)
    assert _mtimes(out / "segments")["train.npy"] != after["train.npy"]


def test_segments_command_reads_a_fairseq_prepared_dir(corpus, tmp_path):
    """A folder laid out like fairseq's prepare_audio.sh output (raw {split}.npy at the top)."""
    src = tmp_path / "fairseq_prep"
    assert main(["extract", str(corpus), str(src), "--no-wandb", "--no-progress"]) == 0
    for f in src.glob("*.json"):  # fairseq writes no meta/extract records
        f.unlink()
    assert main(["segments", str(src), str(tmp_path / "seg"), *[o.split(".", 1)[1] for o in FAST]]) == 0
    feats, lengths = load_features(tmp_path / "seg", "valid")
    assert len(lengths) == 10 and feats.shape[1] == 32
    # --pretrained applies train's PCA and centroids to another folder without refitting
    assert main(["segments", str(src), str(tmp_path / "seg2"), *[o.split(".", 1)[1] for o in FAST],
                 "--pretrained", str(tmp_path / "seg")]) == 0
    f2, l2 = load_features(tmp_path / "seg2", "valid")
    assert l2 == lengths and np.allclose(f2, feats)


def test_bad_inputs(tmp_path, corpus):
    assert main(["prepare-audio", str(tmp_path / "nope"), str(tmp_path / "o"), "--no-wandb"]) == 2
    assert main(["prepare-audio", str(corpus), str(tmp_path / "o"), "segments.kmeans.kk=3", "--no-wandb"]) == 2
    (tmp_path / "bad").mkdir()
    np.save(tmp_path / "bad" / "train.npy", np.zeros((5, 3), np.float32))
    (tmp_path / "bad" / "train.lengths").write_text("2\n2\n")
    with pytest.raises(ValueError, match="sums to 4 rows but .* has 5"):
        load_features(tmp_path / "bad", "train")


def test_prepare_audio_2_0_mode_writes_frames_and_mfcc_cluster_targets(corpus, tmp_path, capsys):
    """``mode: w2vu2``: 50 Hz frames, 39-dim Kaldi MFCC at 100 Hz, their k-means ids as ``{split}.km``
    beside the frames (every 2nd id per frame), no segments; cached like the other stages."""
    from wav2vec_u.audio.features_io import align_targets
    from wav2vec_u.audio.spectral import kaldi_mfcc, spectral_features
    from wav2vec_u.io import resource_path

    out = tmp_path / "prep2"
    args = ["prepare-audio", str(corpus), str(out), "--config",
            str(resource_path("configs", "features", "prepare_w2vu2_mfcc.yaml")),
            "targets.k=8", "targets.niter=5", "targets.nredo=1", "--no-wandb", "--no-progress"]
    assert main(args) == 0
    assert not (out / "segments").exists()
    frames, lengths = load_features(out / "frames", "train")
    mfcc, mfcc_lengths = load_features(out / "mfcc", "train")
    assert frames.shape[1] == 195 and mfcc.shape[1] == 39 and len(lengths) == len(mfcc_lengths) == 40
    targets = read_clusters(out / "frames" / "train.km")
    assert [len(t) for t in targets] == mfcc_lengths and len(read_clusters(out / "frames" / "valid.km")) == 10
    # the ids are the nearest of the saved centroids to Kaldi's MFCC (+ deltas) of each utterance
    centroids = np.load(out / "frames" / "km.centroids.npy")
    assert centroids.shape == (8, 39)
    wav = load_16k(corpus / "utt000.wav")
    np.testing.assert_allclose(mfcc[:mfcc_lengths[0]], spectral_features(wav, "mfcc", kaldi_mfcc()), atol=1e-4)
    assert np.array_equal(np.concatenate(targets), assign_clusters(mfcc, centroids))
    rec = read_json(out / "frames" / "km.json")
    assert (rec["classes"], rec["target_frame_rate"], rec["feature_frame_rate"], rec["downsample"]) == (8, 100.0, 50.0, 2)
    assert (align_targets(targets, lengths, 2) >= 0).mean() > 0.99  # every frame has its target
    # a rerun does nothing
    before = (out / "frames" / "train.km").stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0
    assert "targets up-to-date" in capsys.readouterr().out
    assert (out / "frames" / "train.km").stat().st_mtime_ns == before
