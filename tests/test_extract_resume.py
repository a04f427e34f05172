"""Extraction survives kills and splits into shards without changing a byte of the output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from wav2vec_u.audio.extract import ExtractConfig, extract_split, make_batches, merge_split, parse_shard, shard_range
from wav2vec_u.audio.features import build_extractor
from wav2vec_u.audio.features_io import load_features
from wav2vec_u.audio.io import write_wav
from wav2vec_u.audio.manifest import read_manifest, write_manifest

N_UTTS = 12


class Counting:
    """Wraps a real extractor; counts utterances and can fail after some batches (a simulated crash)."""

    def __init__(self, inner, fail_after_batches: int | None = None, sleep: float = 0.0):
        self.inner, self.fail_after, self.sleep = inner, fail_after_batches, sleep
        self.utterances = self.batches = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def extract_batch(self, wavs):
        if self.fail_after is not None and self.batches >= self.fail_after:
            raise RuntimeError("simulated crash")
        time.sleep(self.sleep)
        self.batches += 1
        self.utterances += len(wavs)
        return self.inner.extract_batch(wavs)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    entries = []
    for i in range(N_UTTS):
        n = int(rng.integers(4000, 12000))
        t = np.arange(n) / 16000
        wav = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t) + 0.05 * rng.standard_normal(n)
        write_wav(root / f"u{i:02d}.wav", wav)
        entries.append((f"u{i:02d}.wav", n))
    write_manifest(root / "train.tsv", root, entries)
    return root


def _cfg() -> ExtractConfig:
    cfg = ExtractConfig(chunk_utterances=3, num_workers=1)
    cfg.batch_seconds = 1.0  # several batches per chunk
    return cfg


def _files(d: Path) -> dict[str, bytes]:
    return {n: (d / n).read_bytes() for n in ("train.npy", "train.lengths", "train.tsv")}


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("ref")
    res = extract_split(corpus / "train.tsv", out, "train", _cfg(), progress=False)
    assert res["status"] == "done" and res["chunks_computed"] == 4
    feats, lengths = load_features(out, "train")
    assert len(lengths) == N_UTTS and feats.shape == (sum(lengths), 195)
    assert not (out / ".parts").exists()
    return _files(out)


def test_crash_then_resume_is_identical_and_skips_finished_chunks(corpus, reference, tmp_path):
    cfg = _cfg()
    mfcc = build_extractor(cfg.features)
    crashing = Counting(mfcc, fail_after_batches=5)
    with pytest.raises(RuntimeError, match="simulated crash"):
        extract_split(corpus / "train.tsv", tmp_path, "train", cfg, extractor=crashing, progress=False)
    parts = sorted((tmp_path / ".parts" / "train").glob("part*.npz"))
    assert 1 <= len(parts) < 4 and not (tmp_path / "train.npy").exists()
    counter = Counting(mfcc)
    res = extract_split(corpus / "train.tsv", tmp_path, "train", cfg, extractor=counter, progress=False)
    assert res["chunks_computed"] == 4 - len(parts)
    assert counter.utterances == N_UTTS - 3 * len(parts)       # finished chunks were not recomputed
    assert not (tmp_path / ".parts").exists()                   # parts removed once assembled
    assert _files(tmp_path) == reference
    # a rerun with the same options does nothing
    again = Counting(mfcc)
    assert extract_split(corpus / "train.tsv", tmp_path, "train", cfg, extractor=again, progress=False)["status"] == "up-to-date"
    assert again.utterances == 0


def test_sigkill_mid_run_then_resume(corpus, reference, tmp_path):
    """A real process killed with SIGKILL while writing; the rerun finishes the rest."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_extract_resume import Counting, _cfg
        from wav2vec_u.audio.extract import extract_split
        from wav2vec_u.audio.features import build_extractor
        cfg = _cfg()
        extract_split({str(corpus / 'train.tsv')!r}, {str(tmp_path)!r}, "train", cfg,
                      extractor=Counting(build_extractor(cfg.features), sleep=0.4), progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    parts_dir = tmp_path / ".parts" / "train"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(parts_dir.glob("part*.npz"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(parts_dir.glob("part*.npz")))
    assert 2 <= done < 4, f"process finished {done} chunks before the kill"
    counter = Counting(build_extractor(_cfg().features))
    extract_split(corpus / "train.tsv", tmp_path, "train", _cfg(), extractor=counter, progress=False)
    assert counter.utterances == N_UTTS - 3 * done
    assert _files(tmp_path) == reference
    assert not list(tmp_path.glob(".*.tmp*")), "temporary files left behind"


def test_shards_in_any_order_merge_to_the_same_bytes(corpus, reference, tmp_path):
    cfg = _cfg()
    results = [extract_split(corpus / "train.tsv", tmp_path, "train", cfg, shard=(i, 3), progress=False) for i in (2, 0)]
    assert [r["merged"] for r in results] == [False, False]
    assert (tmp_path / "train.shard2of3.npy").is_file() and not (tmp_path / "train.npy").exists()
    assert merge_split(corpus / "train.tsv", tmp_path, "train", cfg, 3) is False   # shard 1 still missing
    last = extract_split(corpus / "train.tsv", tmp_path, "train", cfg, shard=(1, 3), progress=False)
    assert last["merged"] is True
    assert _files(tmp_path) == reference
    assert not list(tmp_path.glob("train.shard*"))


def test_changed_option_discards_stale_parts(corpus, tmp_path):
    cfg = _cfg()
    with pytest.raises(RuntimeError):
        extract_split(corpus / "train.tsv", tmp_path, "train", cfg,
                      extractor=Counting(build_extractor(cfg.features), fail_after_batches=5), progress=False)
    cfg.features.spectral.hop_ms = 20.0
    counter = Counting(build_extractor(cfg.features))
    extract_split(corpus / "train.tsv", tmp_path, "train", cfg, extractor=counter, progress=False)
    assert counter.utterances == N_UTTS
    _, lengths = load_features(tmp_path, "train")
    _, entries = read_manifest(corpus / "train.tsv")
    assert lengths == [1 + (n - 400) // 320 for _, n in entries]   # 20 ms hop everywhere


def test_float16_output(corpus, tmp_path):
    cfg = _cfg()
    cfg.save_dtype = "float16"
    extract_split(corpus / "train.tsv", tmp_path, "train", cfg, progress=False)
    feats, _ = load_features(tmp_path, "train")
    assert feats.dtype == np.float16


def test_bad_inputs_name_the_file(corpus, tmp_path):
    write_manifest(tmp_path / "m.tsv", corpus, [("u00.wav", 100), ("missing.wav", 100)])
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        extract_split(tmp_path / "m.tsv", tmp_path / "out", "m", _cfg(), progress=False)
    write_wav(tmp_path / "short.wav", np.zeros(100))
    write_manifest(tmp_path / "s.tsv", tmp_path, [("short.wav", 100)])
    with pytest.raises(ValueError, match="short.wav"):
        extract_split(tmp_path / "s.tsv", tmp_path / "out", "s", _cfg(), progress=False)
    with pytest.raises(ValueError, match="i/n"):
        parse_shard("3")
    with pytest.raises(ValueError, match="0 <= i < n"):
        parse_shard("4/4")


def test_shard_ranges_and_batches():
    assert [shard_range(10, i, 3) for i in range(3)] == [(0, 3), (3, 6), (6, 10)]
    assert shard_range(2, 0, 4) == (0, 0)
    batches = make_batches([100, 400, 300, 200], batch_samples=800, max_batch=3)
    assert batches == [[1, 2], [3, 0]]
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3]


def test_local_launcher_runs_the_shards_as_jobs_and_merges(corpus, tmp_path, capsys):
    """``--shards 2 --launcher local``: two submitit jobs (subprocesses), then the merge: the same bytes as one run."""
    pytest.importorskip("submitit")
    from wav2vec_u.cli import main

    assert main(["extract", str(corpus / "train.tsv"), str(tmp_path / "direct"), "--no-progress", "--no-wandb"]) == 0
    out = tmp_path / "jobs"
    assert main(["extract", str(corpus / "train.tsv"), str(out), "--shards", "2", "--launcher", "local",
                 "--no-wandb"]) == 0
    for name in ("train.npy", "train.lengths"):
        assert (out / name).read_bytes() == (tmp_path / "direct" / name).read_bytes(), name
    assert not list(out.glob("train.shard*"))
    assert len(list((out / "submitit").glob("*_result.pkl"))) == 2          # two jobs ran
    assert main(["extract", str(corpus / "train.tsv"), str(out), "--launcher", "local", "--no-wandb"]) == 2
    assert "--launcher needs --shards N" in capsys.readouterr().err
