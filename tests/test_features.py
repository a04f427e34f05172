"""MFCC / log-mel: against an independent slow reference, hand-worked deltas, shapes and errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.fft import dct

from wav2vec_u.audio.features import FeatureConfig, build_extractor
from wav2vec_u.audio.spectral import (SpectralConfig, cmvn, deltas, hz_to_mel, kaldi_mfcc, log_mel, mel_filterbank,
                                      stack_context)

SR = 16000


def _tone(freq: float, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    noise = 0.001 * np.random.default_rng(seed).standard_normal(len(t))
    return (0.5 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


def _reference_log_mel(wav: np.ndarray, cfg: SpectralConfig) -> np.ndarray:
    """Frame by frame, float64, written from the textbook definition."""
    win, hop, n_fft = 400, 160, 512
    fb = mel_filterbank(cfg.n_mels, n_fft, SR, cfg.fmin, SR / 2).astype(np.float64)
    out = []
    for start in range(0, len(wav) - win + 1, hop):
        fr = wav[start:start + win].astype(np.float64)
        fr = fr - fr.mean()
        fr = np.append(fr[0] * (1 - cfg.preemphasis), fr[1:] - cfg.preemphasis * fr[:-1])
        fr = fr * np.hamming(win)
        power = np.abs(np.fft.rfft(fr, n_fft)) ** 2
        out.append(np.log(np.maximum(power @ fb, cfg.log_floor)))
    return np.array(out)


def test_log_mel_and_mfcc_match_slow_reference():
    wav = _tone(440.0, 0.5) + _tone(1800.0, 0.5, seed=1) * 0.3
    cfg = SpectralConfig(deltas=0, context=0, cmvn=False)
    ref = _reference_log_mel(wav, cfg)
    lm = log_mel(wav, cfg)
    assert lm.shape == ref.shape == (1 + (len(wav) - 400) // 160, 40)
    np.testing.assert_allclose(lm, ref, atol=2e-3, rtol=0)
    mfcc = build_extractor(FeatureConfig(extractor="mfcc", spectral=cfg))(wav)
    np.testing.assert_allclose(mfcc, dct(ref, type=2, norm="ortho", axis=1)[:, :13], atol=5e-3, rtol=0)


def test_filterbank_peaks_at_mel_spaced_centres():
    fb = mel_filterbank(10, 512, SR, 0.0, 8000.0)
    assert fb.shape == (257, 10) and fb.max() <= 1.0 and (fb >= 0).all()
    centres = np.argmax(fb, axis=0) * SR / 512
    mels = hz_to_mel(centres)
    assert np.all(np.diff(centres) > 0)
    assert np.std(np.diff(mels)) < 0.2 * np.mean(np.diff(mels))  # equally spaced on the mel scale


def test_tone_energy_lands_in_the_right_band():
    cfg = SpectralConfig(n_mels=40)
    fb = mel_filterbank(40, 512, SR, cfg.fmin, SR / 2)
    for f in (300.0, 1000.0, 4000.0):
        band = int(np.argmax(log_mel(_tone(f), cfg).mean(axis=0)))
        assert fb[int(round(f * 512 / SR)), band] > 0.3, f


def test_deltas_of_a_ramp_are_its_slope():
    x = (np.arange(20, dtype=np.float32)[:, None] * np.array([[1.0, -2.0]], dtype=np.float32))
    d = deltas(x, n=2)
    np.testing.assert_allclose(d[2:-2], np.tile([[1.0, -2.0]], (16, 1)), atol=1e-6)
    # at the edges the repeated frames flatten the slope: first row = (1*(1-0) + 2*(2-0)) / 10 = 0.5
    np.testing.assert_allclose(d[0], [0.5, -1.0], atol=1e-6)


def test_context_stacking_and_cmvn():
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    s = stack_context(x, 1)
    assert s.shape == (4, 6)
    np.testing.assert_array_equal(s[0], [0, 1, 0, 1, 2, 3])     # edge repeated on the left
    np.testing.assert_array_equal(s[3], [4, 5, 6, 7, 6, 7])
    c = cmvn(np.random.default_rng(0).standard_normal((500, 3)).astype(np.float32) * 4 + 9)
    np.testing.assert_allclose(c.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(c.std(axis=0), 1, atol=1e-3)


def test_dimensions_and_frame_rates():
    wav = _tone(500.0, 1.0)
    ex = build_extractor(FeatureConfig(extractor="mfcc"))
    out = ex(wav)
    assert ex.dim == 13 * 3 * 5 == out.shape[1] == 195 and out.dtype == np.float32
    assert out.shape[0] == 98 and ex.frame_rate == 100.0
    # a 20 ms hop gives wav2vec 2.0's 50 Hz (49 frames for 1 s, as its conv stack)
    ex = build_extractor(FeatureConfig(extractor="logmel", spectral=SpectralConfig(hop_ms=20.0, n_mels=80, deltas=0, context=0)))
    out = ex(wav)
    assert out.shape == (49, 80) and ex.dim == 80 and ex.frame_rate == 50.0
    assert ex(np.zeros(100, np.float32)).shape == (0, 80)


def test_features_separate_different_sounds():
    """Frames of two vowel-like tone mixtures are linearly separable after CMVN over both."""
    a = _tone(300.0) + 0.5 * _tone(2300.0, seed=2)   # /i/-like formants
    b = _tone(700.0) + 0.5 * _tone(1100.0, seed=3)   # /a/-like formants
    ex = build_extractor(FeatureConfig(extractor="mfcc", spectral=SpectralConfig(cmvn=False)))
    fa, fb = ex(a), ex(b)
    ca, cb = fa.mean(0), fb.mean(0)
    pred_a = np.linalg.norm(fa - ca, axis=1) < np.linalg.norm(fa - cb, axis=1)
    pred_b = np.linalg.norm(fb - cb, axis=1) < np.linalg.norm(fb - ca, axis=1)
    assert pred_a.mean() > 0.95 and pred_b.mean() > 0.95


def test_bad_configs_are_clear_errors():
    with pytest.raises(ValueError, match="unknown extractor 'plp'"):
        build_extractor(FeatureConfig(extractor="plp"))
    with pytest.raises(ValueError, match="n_mfcc=50 exceeds"):
        build_extractor(FeatureConfig(spectral=SpectralConfig(n_mfcc=50)))(_tone(100.0))
    with pytest.raises(ValueError, match="fmax"):
        log_mel(_tone(100.0), SpectralConfig(fmax=9000.0))


def test_shipped_feature_configs_load():
    from pathlib import Path

    from wav2vec_u.audio.extract import ExtractConfig
    from wav2vec_u.audio.prepare import PrepareAudioConfig
    from wav2vec_u.config import load_config
    from wav2vec_u.audio.segments import SegmentsConfig

    root = Path(__file__).resolve().parents[1] / "configs" / "features"
    kinds = {"segments": SegmentsConfig}
    files = sorted(root.glob("*.yaml"))
    assert len(files) >= 5
    for f in files:
        cls = kinds.get(f.stem, PrepareAudioConfig if f.stem.startswith("prepare_") else ExtractConfig)
        load_config(cls, f)
    assert load_config(SegmentsConfig, root / "segments.yaml") == SegmentsConfig()  # restates the defaults


def _kaldi_native_mfcc(wav: np.ndarray) -> np.ndarray:
    """MFCC by kaldi-native-fbank (k2-fsa's re-implementation of Kaldi's feature code) at Kaldi's
    defaults, as HuBERT's ``dump_mfcc_feature.py`` calls it for wav2vec-U 2.0: no dither, no energy."""
    import kaldi_native_fbank as knf

    opts = knf.MfccOptions()
    opts.frame_opts.dither = 0.0
    opts.use_energy = False
    mfcc = knf.OnlineMfcc(opts)
    mfcc.accept_waveform(SR, wav.tolist())
    mfcc.input_finished()
    return np.array([mfcc.get_frame(i) for i in range(mfcc.num_frames_ready)])


KALDI_MFCC = kaldi_mfcc(deltas=0)


@pytest.mark.parametrize("kind", ["chirp+tone+noise", "noise", "near-silence"])
def test_mfcc_matches_kaldi_definition(kind):
    """Our MFCC with ``filterbank: kaldi`` equals Kaldi's (kaldi-native-fbank) to 1e-3 absolute on
    coefficients up to ~70 in size (measured: 1.4e-4 at worst, float32 rounding)."""
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    wav = {"chirp+tone+noise": 0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t) + 0.1 * np.sin(2 * np.pi * 1234 * t)
           + 0.05 * rng.standard_normal(SR),
           "noise": 0.1 * rng.standard_normal(12345),
           "near-silence": 1e-4 * rng.standard_normal(8000)}[kind].astype(np.float32)
    ref = _kaldi_native_mfcc(wav)
    ours = build_extractor(FeatureConfig(extractor="mfcc", spectral=KALDI_MFCC))(wav)
    assert ours.shape == ref.shape == (1 + (len(wav) - 400) // 160, 13)  # snip_edges framing
    np.testing.assert_allclose(ours, ref, atol=1e-3, rtol=0)
    # the filterbank shape is what makes it Kaldi's: straight-in-Hz triangles are off by ~0.5
    linear = build_extractor(FeatureConfig(extractor="mfcc", spectral=SpectralConfig(
        **{**KALDI_MFCC.__dict__, "filterbank": "linear"})))(wav)
    assert np.abs(linear - ref).max() > 1e-2
