"""w2vu manifest: good files listed (converted to 16 kHz mono), each bad file reported with its reason."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from wav2vec_u.audio.manifest import read_manifest
from wav2vec_u.audio.collect import ManifestConfig, make_manifest


def tone(seconds: float, sr: int, channels: int = 1, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = amp * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return np.stack([x, 0.5 * x][:channels], axis=1) if channels > 1 else x


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def messy(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    sf.write(src / "good16k.wav", tone(1.0, 16000), 16000, subtype="PCM_16")
    sf.write(src / "sub" / "good22k.flac", tone(1.2, 22050), 22050)
    sf.write(src / "stereo44k.wav", tone(1.0, 44100, channels=2), 44100, subtype="PCM_16")
    sf.write(src / "short.wav", tone(0.1, 16000), 16000)
    sf.write(src / "silent.wav", np.zeros(16000), 16000)
    (src / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage that is not a wav file" * 3)
    (src / "empty.wav").write_bytes(b"")
    sf.write(src / "noframes.wav", np.zeros(0), 16000)
    (src / "notes.txt").write_text("not audio, not an audio extension: ignored")
    return src


def test_messy_folder(messy, tmp_path, caplog):
    before = snapshot(messy)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="wav2vec_u"):
        summary = make_manifest(messy, out, ManifestConfig(min_seconds=0.5), progress=False)
    assert snapshot(messy) == before, "the source folder must not change"

    root, entries = read_manifest(out / "train.tsv")
    assert root == (out / "audio").resolve()  # a file needed conversion: copies, one root
    names = dict(entries)
    assert set(names) == {"good16k.wav", "sub/good22k.wav", "stereo44k.wav"}
    assert names["sub/good22k.wav"] == round(1.2 * 16000)
    assert names["stereo44k.wav"] == 16000
    for rel, n in entries:
        wav, sr = sf.read(root / rel, always_2d=True)
        assert sr == 16000 and wav.shape == (n, 1)
    # stereo mixed down: the mean of the channels (1 and 0.5 times the tone), resampled
    mixed, _ = sf.read(root / "stereo44k.wav")
    ref, _ = sf.read(root / "good16k.wav")
    assert np.allclose(mixed[100:-100], 0.75 * ref[100:-100], atol=3e-3)

    lines = (out / "skipped.tsv").read_text().splitlines()
    assert lines[0] == "path\treason\tdetail"
    reasons = {line.split("\t")[0]: line.split("\t")[1] for line in lines[1:]}
    assert reasons == {"corrupt.wav": "unreadable", "empty.wav": "empty", "noframes.wav": "empty",
                       "short.wav": "too_short", "silent.wav": "silent"}
    assert summary["skipped"] == {"unreadable": 1, "empty": 2, "too_short": 1, "silent": 1}
    assert summary["stereo_mixed_down"] == 1
    log = caplog.text
    assert "stereo44k.wav: 2 channels mixed down" in log
    for bad in reasons:
        assert f"skipped {bad}" in log


def test_in_place_when_nothing_needs_conversion(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        sf.write(src / f"u{i}.wav", tone(0.6 + i / 10, 16000), 16000, subtype="PCM_16")
    out = tmp_path / "out"
    summary = make_manifest(src, out, ManifestConfig(), progress=False)
    root, entries = read_manifest(out / "train.tsv")
    assert summary["in_place"] and root == src.resolve() and not (out / "audio").exists()
    assert entries == [(f"u{i}.wav", int((0.6 + i / 10) * 16000)) for i in range(3)]
    make_manifest(src, tmp_path / "out2", ManifestConfig(copy_audio="always"), progress=False)
    root2, entries2 = read_manifest(tmp_path / "out2" / "train.tsv")
    assert root2 == (tmp_path / "out2" / "audio").resolve() and entries2 == entries


def test_valid_split_and_name_clash(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(20):
        sf.write(src / f"u{i:02d}.wav", tone(0.6, 16000), 16000)
    sf.write(src / "u00.flac", tone(0.7, 16000), 16000)  # same stem as u00.wav
    out = tmp_path / "out"
    make_manifest(src, out, ManifestConfig(valid_percent=0.3, seed=2), progress=False)
    _, train = read_manifest(out / "train.tsv")
    _, valid = read_manifest(out / "valid.tsv")
    names = [r for r, _ in train] + [r for r, _ in valid]
    assert len(names) == len(set(names)) == 21 and valid and train
    assert {"u00.wav", "u00.flac.wav"} <= set(names)
    make_manifest(src, tmp_path / "again", ManifestConfig(valid_percent=0.3, seed=2), progress=False)
    assert read_manifest(tmp_path / "again" / "valid.tsv")[1] == valid


def test_other_formats(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    sf.write(src / "a.ogg", tone(0.8, 24000), 24000, format="OGG", subtype="VORBIS")
    try:
        sf.write(src / "b.mp3", tone(0.8, 16000), 16000, format="MP3", subtype="MPEG_LAYER_III")
    except Exception:  # libsndfile without an MP3 encoder: keep testing ogg
        pass
    summary = make_manifest(src, tmp_path / "out", ManifestConfig(), progress=False)
    assert summary["kept"] == len(list(src.iterdir())) and summary["skipped"] == {}


def test_cli(messy, tmp_path, capsys):
    from wav2vec_u.cli import main

    out = tmp_path / "out"
    args = ["manifest", str(messy), str(out), "--no-wandb", "--no-progress", "min_seconds=0.5"]
    assert main(args) == 0
    for name in ("train.tsv", "skipped.tsv", "meta.json", "config.yaml", "manifest.log"):
        assert (out / name).is_file(), name
    stamp = (out / "train.tsv").stat().st_mtime_ns
    assert main(args) == 0 and (out / "train.tsv").stat().st_mtime_ns == stamp  # up to date
    sf.write(messy / "new.wav", tone(0.9, 16000), 16000)
    assert main(args) == 0 and "new.wav" in (out / "train.tsv").read_text()  # input changed: recomputed
    assert main(["manifest", str(tmp_path / "nope"), str(out)]) == 2
    bad = tmp_path / "allbad"
    bad.mkdir()
    (bad / "x.wav").write_bytes(b"")
    assert main(["manifest", str(bad), str(tmp_path / "o2"), "--no-progress"]) == 2
    assert "no usable audio" in capsys.readouterr().err
    assert main(["manifest", str(messy), str(tmp_path / "o3"), "min_second=1"]) == 2
