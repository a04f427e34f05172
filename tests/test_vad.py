"""VAD: synthesised speech padded with known silence comes back at the known speech duration."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from wav2vec_u.audio.io import resample
from wav2vec_u.audio.manifest import read_manifest, write_manifest
from wav2vec_u.audio.vad import VadConfig, remove_silence, speech_segments, trim_edges

SR = 16000
# rVAD labels 10 ms frames and smooths its decision; the weak edges of speech (a final /t/
# burst, an initial /h/ or /f/, 30-40 dB below the vowels) may fall on either side. 0.15 s
# is about one such phone: less than that lost or kept is a correct trim, while a VAD that
# keeps the padding (2.5 s here) or drops a word (~0.3 s) fails.
TOLERANCE_S = 0.15


def speech(text: str, voice: str) -> np.ndarray:
    """espeak-ng speech at 16 kHz, cut to its first and last non-silent 10 ms frame (no margin)."""
    from wav2vec_u.synth.espeak import Espeak

    utt = Espeak().synthesize(text, voice, rate=160)
    wav = resample(utt.audio.astype(np.float32) / 32768.0, utt.sample_rate, SR)
    start, end = trim_edges(wav, SR, threshold_db=40.0, margin_s=0.0)
    return wav[start:end]


def pad(wav: np.ndarray, before: float, after: float, noise: float, seed: int = 0) -> np.ndarray:
    x = np.concatenate([np.zeros(int(before * SR)), wav, np.zeros(int(after * SR))])
    return (x + noise * np.random.default_rng(seed).standard_normal(len(x))).astype(np.float32)


@pytest.mark.parametrize("voice", ["en-us+m3", "en-us+f2", "en-us+klatt"])
@pytest.mark.parametrize("noise", [0.0, 0.003])  # 0.003 RMS: -50 dBFS background hiss
def test_rvad_trims_padding_to_the_speech(voice, noise):
    sp = speech("the lord is my shepherd and i shall not want", voice)
    x = pad(sp, 1.0, 1.5, noise)
    cfg = VadConfig(method="rvad", trim_only=True, margin_s=0.05)
    out, kept = remove_silence(x, SR, cfg)
    expected = len(sp) / SR + 2 * cfg.margin_s
    assert abs(len(out) / SR - expected) < TOLERANCE_S, (len(out) / SR, expected)
    # and it is the speech that was kept, not some other stretch of the same length
    assert abs(kept[0][0] / SR - (1.0 - cfg.margin_s)) < TOLERANCE_S
    assert abs(kept[-1][1] / SR - (1.0 + len(sp) / SR + cfg.margin_s)) < TOLERANCE_S


def test_long_inner_pause_is_shortened_short_ones_kept():
    a = speech("in the beginning god created the heavens", "en-us+m3")
    b = speech("and the earth was formless and empty", "en-us+m3")
    x = np.concatenate([pad(a, 0.8, 0.0, 0.0), np.zeros(int(1.2 * SR), np.float32), pad(b, 0.0, 0.8, 0.0)])
    cfg = VadConfig(method="rvad", margin_s=0.05, max_pause_s=0.3, keep_pause_s=0.1)
    out, kept = remove_silence(x, SR, cfg)
    # each sentence with its margins, plus keep_pause between them
    expected = (len(a) + len(b)) / SR + 4 * cfg.margin_s + cfg.keep_pause_s
    assert abs(len(out) / SR - expected) < 2 * TOLERANCE_S, (len(out) / SR, expected)
    assert len(kept) >= 2
    whole, _ = remove_silence(x, SR, VadConfig(method="rvad", margin_s=0.05, trim_only=True))
    assert abs(len(whole) / SR - (len(out) / SR + 1.2 - cfg.keep_pause_s - 2 * cfg.margin_s)) < 2 * TOLERANCE_S


def test_energy_method_on_clean_speech_and_silence():
    sp = speech("the lord is my shepherd", "en-us+f2")
    out, _ = remove_silence(pad(sp, 0.7, 0.9, 0.0), SR, VadConfig(method="energy", trim_only=True, margin_s=0.05))
    assert abs(len(out) / SR - (len(sp) / SR + 0.1)) < TOLERANCE_S
    assert speech_segments(np.zeros(SR, np.float32), SR, VadConfig(method="energy")) == []
    assert remove_silence(np.zeros(SR, np.float32), SR, VadConfig(method="energy"))[0].size == 0


def test_map_time_through_cuts():
    from wav2vec_u.audio.vad_corpus import map_time

    kept = [(SR, 2 * SR), (3 * SR, 4 * SR)]  # 1-2 s and 3-4 s kept
    assert map_time(1.5, kept) == 0.5 and map_time(3.25, kept) == 1.25
    assert map_time(0.5, kept) is None and map_time(2.5, kept) is None and map_time(4.5, kept) is None


def test_trim_edges():
    x = np.zeros(SR * 2, np.float32)
    x[8000:24000] = 0.5 * np.sin(np.arange(16000) * 0.2)
    assert trim_edges(x, SR, 40.0, margin_s=0.0) == (8000, 24000)
    assert trim_edges(x, SR, 40.0, margin_s=0.01) == (7840, 24160)
    assert trim_edges(np.zeros(100, np.float32), SR) == (0, 100)


def test_vad_command(tmp_path, capsys):
    from wav2vec_u.cli import main

    src = tmp_path / "corpus"
    (src / "audio").mkdir(parents=True)
    texts = ["the lord is my shepherd", "god saw the light", "and there was light"]
    entries, lengths = [], []
    for i, t in enumerate(texts):
        sp = speech(t, "en-us+m3")
        lengths.append(len(sp) / SR)
        x = pad(sp, 0.6, 1.0, 0.002, seed=i)
        sf.write(src / "audio" / f"u{i}.flac", x, SR)
        entries.append((f"audio/u{i}.flac", len(x)))
    sf.write(src / "audio" / "quiet.flac", np.zeros(SR, np.float32), SR)
    entries.append(("audio/quiet.flac", SR))
    write_manifest(src / "train.tsv", src, entries)
    (src / "train.wrd").write_text("\n".join(texts + ["nothing"]) + "\n")
    # a phone 0.1-0.2 s into the speech (which starts at 0.6 s) and one inside the leading silence
    timing = {"phones": ["a", "b"], "timings": [[0.1, 0.2], [0.7, 0.8]], "timing_status": "exact"}
    (src / "train.timings.jsonl").write_text("".join(json.dumps(timing) + "\n" for _ in range(4)))
    out = tmp_path / "vad"
    args = ["vad", str(src), str(out), "--no-progress", "--no-wandb", "vad.margin_s=0.05", "workers=2"]
    assert main(args) == 0
    root, got = read_manifest(out / "train.tsv")
    assert [r for r, _ in got] == ["u0.wav", "u1.wav", "u2.wav"] and root == (out / "audio" / "train").resolve()
    for (rel, n), length in zip(got, lengths):
        assert sf.info(str(root / rel)).frames == n
        assert abs(n / SR - (length + 0.1)) < TOLERANCE_S
    assert (out / "train.wrd").read_text().splitlines() == texts  # labels follow the kept files
    assert "audio/quiet.flac\tno_speech" in (out / "skipped.tsv").read_text()
    for line, (rel, n) in zip((out / "train.timings.jsonl").read_text().splitlines(), got):
        rec = json.loads(line)
        assert rec["path"] == rel and rec["num_samples"] == n and rec["timing_status"] == "partial"
        assert rec["timings"][0] is None  # it was in the cut silence
        assert abs(rec["timings"][1][0] - (0.05 + 0.1)) < TOLERANCE_S  # margin + 0.1 s into the speech
        assert abs(rec["timings"][1][1] - rec["timings"][1][0] - 0.1) < 1e-3
    rec = json.loads((out / "train.vad.jsonl").read_text().splitlines()[0])
    assert rec["source"] == "audio/u0.flac" and rec["kept"]
    from wav2vec_u.audio.vad_corpus import output_names

    assert output_names(["a/x/1.flac", "a/y/2.wav"]) == ["x/1.wav", "y/2.wav"]
    assert output_names(["1.flac", "a/2.wav"]) == ["1.wav", "a/2.wav"]
    stamp = (out / "train.tsv").stat().st_mtime_ns
    assert main(args) == 0 and (out / "train.tsv").stat().st_mtime_ns == stamp
    assert main(["vad", str(tmp_path / "none.tsv"), str(out)]) == 2
    (src / "train.wrd").write_text("one line only\n")
    assert main(args) == 2
    assert "one line per utterance" in capsys.readouterr().err
