"""Our plain-torch wav2vec 2.0 against fairseq's own outputs (shared/fixtures/fairseq_w2v2).

The fixtures hold two tiny fairseq checkpoints (Base-like post-LN with GroupNorm, Large-like pre-LN
with LayerNorm and waveform normalisation), inputs, and what fairseq returned for every layer,
``layer=None`` and a padded batch. Tolerance 3e-5 max abs (the fixture README: ~10x float32 noise,
far below every plausible mistake, the smallest of which moves outputs by 6.8e-5).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from wav2vec_u.audio.fairseq_w2v2 import FairseqExtractor, load_fairseq_checkpoint, normalize_waveform

FIXTURES = Path(os.environ.get("W2VU_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "fixtures" / "fairseq_w2v2"
TOL = 3e-5

pytestmark = pytest.mark.skipif(not (FIXTURES / "base" / "checkpoint.pt").is_file(),
                                reason=f"fairseq parity fixtures not found at {FIXTURES} (../shared is absent)")

VARIANTS = ["base", "large"]


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(1)
    return {v: load_fairseq_checkpoint(FIXTURES / v / "checkpoint.pt") for v in VARIANTS}


def _source(name: str, normalize: bool) -> torch.Tensor:
    x = torch.from_numpy(np.load(FIXTURES / f"{name}.npy"))
    return normalize_waveform(x) if normalize else x


def _maxdiff(a, b) -> float:
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else a
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max())


def test_structure_read_from_checkpoint_config(models):
    base, large = models["base"][1], models["large"][1]
    assert (base.extractor_mode, base.layer_norm_first, base.conv_bias, base.normalize) == ("default", False, False, False)
    assert (large.extractor_mode, large.layer_norm_first, large.conv_bias, large.normalize) == ("layer_norm", True, True, True)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("inp,sub", [("input", "single"), ("input_short", "short")])
def test_every_layer_matches_fairseq(models, variant, inp, sub):
    model, arch = models[variant]
    src = _source(inp, arch.normalize)[None]
    with torch.inference_mode():
        for layer in [0, 1, 2, 3, None]:
            ref = np.load(FIXTURES / variant / sub / (f"layer{layer}.npy" if layer is not None else "final.npy"))
            out, _ = model(src, layer=layer)
            assert _maxdiff(out[0], ref) <= TOL, f"{variant} {sub} layer={layer}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_conv_features_match(models, variant):
    model, arch = models[variant]
    src = _source("input", arch.normalize)[None]
    with torch.inference_mode():
        conv = model.feature_extractor(src).transpose(1, 2)[0]
        assert _maxdiff(conv, np.load(FIXTURES / variant / "single" / "conv_features.npy")) <= TOL
        feats = torch.nn.functional.layer_norm(conv, conv.shape[-1:], model.layer_norm.weight, model.layer_norm.bias)
        assert _maxdiff(feats, np.load(FIXTURES / variant / "single" / "features.npy")) <= TOL


@pytest.mark.parametrize("variant", VARIANTS)
def test_padded_batch_matches_fairseq_all_frames(models, variant):
    model, arch = models[variant]
    mask = torch.from_numpy(np.load(FIXTURES / "batch_padding_mask.npy"))
    long, short = _source("input", arch.normalize), _source("input_short", arch.normalize)
    src = torch.zeros(2, mask.shape[1])
    src[0], src[1, : len(short)] = long, short
    with torch.inference_mode():
        for layer, ref_name in [(1, "layer1"), (3, "layer3"), (None, "final")]:
            out, frame_mask = model(src, mask, layer=layer)
            ref = np.load(FIXTURES / variant / "batch" / f"{ref_name}.npy")
            # padded frames included: we replicate fairseq's padded path exactly
            assert _maxdiff(out, ref) <= TOL, f"{variant} batch layer={layer}"
        assert np.array_equal(frame_mask.numpy(), np.load(FIXTURES / variant / "batch" / "frame_padding_mask.npy"))


@pytest.mark.parametrize("variant", VARIANTS)
def test_extractor_reads_wav_and_matches(variant):
    """The user-facing path: fairseq:<ckpt> spec, a WAV file, normalisation from the task config."""
    from wav2vec_u.audio.io import load_16k

    wav = load_16k(FIXTURES / "input.wav")
    assert np.array_equal(wav, np.load(FIXTURES / "input.npy"))
    for layer in (0, 2):
        ex = FairseqExtractor(FIXTURES / variant / "checkpoint.pt", layer=layer)
        out = ex(wav)
        assert _maxdiff(out, np.load(FIXTURES / variant / "single" / f"layer{layer}.npy")) <= TOL
        assert ex.describe()["arch"]["encoder_layers"] == 4


def test_extractor_batches_without_leaking_padding():
    """Large (LayerNorm everywhere) is batched; each item equals fairseq's unbatched output."""
    ex = FairseqExtractor(FIXTURES / "large" / "checkpoint.pt", layer=3)
    assert ex.batch_invariant
    outs = ex.extract_batch([np.load(FIXTURES / "input.npy"), np.load(FIXTURES / "input_short.npy")])
    assert _maxdiff(outs[0], np.load(FIXTURES / "large" / "single" / "layer3.npy")) <= TOL
    assert _maxdiff(outs[1], np.load(FIXTURES / "large" / "short" / "layer3.npy")) <= TOL
    # Base's GroupNorm is not padding-invariant: the extractor runs it one utterance at a time
    ex = FairseqExtractor(FIXTURES / "base" / "checkpoint.pt", layer=3)
    assert not ex.batch_invariant
    outs = ex.extract_batch([np.load(FIXTURES / "input.npy"), np.load(FIXTURES / "input_short.npy")])
    assert _maxdiff(outs[1], np.load(FIXTURES / "base" / "short" / "layer3.npy")) <= TOL


def test_finetuned_layout_is_read(tmp_path):
    """A CTC fine-tuned checkpoint nests the encoder under w2v_encoder.w2v_model and its config
    under model.w2v_args; we build one from the Large fixture and expect the same features."""
    state = torch.load(FIXTURES / "large" / "checkpoint.pt", map_location="cpu", weights_only=True)
    ft = {"args": None, "cfg": {"model": {"_name": "wav2vec_ctc", "w2v_args": state["cfg"]},
                                "task": {"_name": "audio_finetuning", "normalize": True}},
          "model": {**{f"w2v_encoder.w2v_model.{k}": v for k, v in state["model"].items()},
                    "w2v_encoder.proj.weight": torch.zeros(5, 64), "w2v_encoder.proj.bias": torch.zeros(5)}}
    torch.save(ft, tmp_path / "ft.pt")
    out = FairseqExtractor(tmp_path / "ft.pt", layer=1)(np.load(FIXTURES / "input.npy"))
    assert _maxdiff(out, np.load(FIXTURES / "large" / "single" / "layer1.npy")) <= TOL


def test_bad_layer_and_bad_file_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="out of range"):
        FairseqExtractor(FIXTURES / "base" / "checkpoint.pt", layer=4)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        FairseqExtractor(tmp_path / "junk.pt", layer=0)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        FairseqExtractor(tmp_path / "missing.pt", layer=0)


@pytest.mark.parametrize("dtype,tol", [("float16", 0.05), ("bfloat16", 0.3)])
def test_half_precision_path(dtype, tol):
    """fp16/bf16 compute (meant for GPUs; runs on CPU here): float32 out, close to fairseq's fp32
    (an off-by-one layer would differ by >= 2.5; these tolerances are ~3x the observed error)."""
    ex = FairseqExtractor(FIXTURES / "large" / "checkpoint.pt", layer=3, dtype=dtype)
    outs = ex.extract_batch([np.load(FIXTURES / "input.npy"), np.load(FIXTURES / "input_short.npy")])
    assert outs[0].dtype == np.float32
    assert _maxdiff(outs[0], np.load(FIXTURES / "large" / "single" / "layer3.npy")) <= tol
    assert _maxdiff(outs[1], np.load(FIXTURES / "large" / "short" / "layer3.npy")) <= tol


def test_w2vu_extract_with_a_fairseq_checkpoint(tmp_path):
    """End to end through the CLI: manifest -> fairseq:<ckpt> layer 2 -> {split}.npy == fairseq's outputs."""
    from wav2vec_u.audio.features_io import load_features
    from wav2vec_u.audio.manifest import write_manifest
    from wav2vec_u.cli import main
    from wav2vec_u.io import read_json, sha256_file

    write_manifest(tmp_path / "test.tsv", FIXTURES, [("input.wav", 12000), ("input_short.wav", 8000)])
    ckpt = FIXTURES / "large" / "checkpoint.pt"
    assert main(["extract", str(tmp_path / "test.tsv"), str(tmp_path / "feats"), "--extractor", f"fairseq:{ckpt}",
                 "--layer", "2", "--no-wandb", "--no-progress"]) == 0
    feats, lengths = load_features(tmp_path / "feats", "test")
    assert lengths == [37, 24]
    assert _maxdiff(feats[:37], np.load(FIXTURES / "large" / "single" / "layer2.npy")) <= TOL
    assert _maxdiff(feats[37:], np.load(FIXTURES / "large" / "short" / "layer2.npy")) <= TOL
    meta = read_json(tmp_path / "feats" / "meta.json")
    assert meta["model_sha256"] == sha256_file(ckpt) and meta["layer"] == 2 and meta["frame_rate"] == 50.0


def test_legacy_args_namespace_checkpoint(tmp_path):
    """Older fairseq checkpoints keep an argparse.Namespace under 'args' (model and task fields mixed)."""
    import argparse

    state = torch.load(FIXTURES / "large" / "checkpoint.pt", map_location="cpu", weights_only=True)
    fields = {k: v for k, v in state["cfg"]["model"].items() if k != "_name"}
    args = argparse.Namespace(arch="wav2vec2", task="audio_pretraining", normalize=True, **fields)
    torch.save({"args": args, "cfg": None, "model": state["model"]}, tmp_path / "legacy.pt")
    out = FairseqExtractor(tmp_path / "legacy.pt", layer=2)(np.load(FIXTURES / "input.npy"))
    assert _maxdiff(out, np.load(FIXTURES / "large" / "single" / "layer2.npy")) <= TOL
