"""fairseq manifest round trip and audio I/O basics."""

import numpy as np
import pytest

from wav2vec_u.audio.io import AudioError, load_16k, read_audio, write_wav
from wav2vec_u.audio.manifest import read_manifest, write_manifest


def test_manifest_round_trip(tmp_path):
    write_manifest(tmp_path / "train.tsv", tmp_path, [("a/b.wav", 16000), ("c.wav", 3)])
    root, entries = read_manifest(tmp_path / "train.tsv")
    assert root == tmp_path.resolve() and entries == [("a/b.wav", 16000), ("c.wav", 3)]
    assert (tmp_path / "train.tsv").read_text().splitlines()[1] == "a/b.wav\t16000"


def test_manifest_bad_line_named(tmp_path):
    (tmp_path / "x.tsv").write_text("/root\nfoo.wav\n")
    with pytest.raises(ValueError, match=r"x\.tsv, line 2"):
        read_manifest(tmp_path / "x.tsv")


def test_audio_resample_and_errors(tmp_path):
    t = np.arange(44100) / 44100
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], 1) * 0.5
    import soundfile as sf
    sf.write(tmp_path / "s.wav", stereo, 44100)
    wav = load_16k(tmp_path / "s.wav")
    assert wav.shape == (16000,) and abs(np.abs(wav).max() - 0.5) < 0.02
    write_wav(tmp_path / "o.wav", wav)
    back, sr = read_audio(tmp_path / "o.wav")
    assert sr == 16000 and np.abs(back - wav).max() < 1e-4
    (tmp_path / "bad.wav").write_bytes(b"RIFF garbage")
    with pytest.raises(AudioError, match="bad.wav"):
        read_audio(tmp_path / "bad.wav")
