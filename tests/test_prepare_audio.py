"""``w2vu prepare-audio`` with MFCC on 50 synthesised utterances: segment counts, meta, caching.

Speech comes from the espeak-ng command line (installed by scripts/setup.sh); without it the
test falls back to numpy "formant" sequences so it still runs everywhere.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from wav2vec_u.audio.features_io import load_features, read_clusters, resolve_feature_dir
from wav2vec_u.audio.io import load_16k, write_wav
from wav2vec_u.audio.manifest import write_manifest
from wav2vec_u.cli import main
from wav2vec_u.io import read_json
from wav2vec_u.audio.segments import apply_pca, assign_clusters, mean_pool, merge_segments

WORDS = "the cat sat on a mat while seven green birds sang quietly over distant hills and rivers".split()

# small k-means / PCA so the test stays fast; the defaults (K=128, 50 iterations, 3 restarts) are the paper's
FAST = ["segments.kmeans.k=16", "segments.kmeans.niter=10", "segments.kmeans.nredo=1", "segments.pca.dim=32"]


def _synthesise(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    entries = {"train": [], "valid": []}
    for i in range(n):
        split = "train" if i < n - 10 else "valid"
        path = root / f"utt{i:03d}.wav"
        if shutil.which("espeak-ng"):
            text = " ".join(rng.choice(WORDS, size=rng.integers(3, 7)))
            raw = root / f"raw{i:03d}.wav"
            subprocess.run(["espeak-ng", "-w", str(raw), "-s", str(int(rng.integers(140, 190))), text], check=True)
            wav = load_16k(raw)
            raw.unlink()
        else:  # piecewise-stationary two-formant signal, 80-200 ms per "phone"
            parts = []
            for _ in range(rng.integers(6, 14)):
                f1, f2 = rng.uniform(250, 900), rng.uniform(900, 2800)
                t = np.arange(int(rng.uniform(0.08, 0.2) * 16000)) / 16000
                parts.append(0.4 * np.sin(2 * np.pi * f1 * t) + 0.2 * np.sin(2 * np.pi * f2 * t))
            wav = np.concatenate(parts) + 0.01 * rng.standard_normal(sum(map(len, parts)))
        write_wav(path, wav)
        entries[split].append((path.name, len(wav)))
        (root / f"{split}.wrd").open("a").write(f"utterance {i}\n")
    for split, ents in entries.items():
        write_manifest(root / f"{split}.tsv", root, ents)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    _synthesise(root, 50)
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
