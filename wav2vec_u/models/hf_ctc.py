"""A Hugging Face speech encoder with a fresh CTC output layer: build, logits, save, load.

    model = build_hf_ctc(HfCtcConfig(model="facebook/wav2vec2-base"), [BLANK, *phones])
    logits = hf_ctc_logits(model, wav)        # wav: 16 kHz float32; (T, V), blank at 0
    save_hf_ctc("st/ctc.pt", model); model = load_hf_ctc("st/ctc.pt")

Encoders of the Wav2Vec2 family that transformers has a ``*ForCTC`` class for (Wav2Vec2,
XLS-R, MMS, HuBERT, WavLM, data2vec-audio), from a save_pretrained folder or the local Hugging
Face cache; nothing is downloaded. Training lives in :mod:`wav2vec_u.self_train.hf`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from wav2vec_u.audio.hf import weights_sha256
from wav2vec_u.audio.io import SAMPLE_RATE
from wav2vec_u.config import at_least, from_dict, in_range, non_negative, positive, to_dict
from wav2vec_u.io import load_tagged_state, save_state
from wav2vec_u.models.ctc import BLANK, greedy_ctc, offset_blank
from wav2vec_u.tracking import package_versions

log = logging.getLogger(__name__)


FORMAT = "wav2vec-u-hf-ctc/1"





@dataclass
class HfCtcConfig:
    # a save_pretrained folder, or a hub id already in the local Hugging Face cache; "" = off
    # (``w2vu self-train`` then trains the small CTC head over frozen features instead)
    model: str = ""
    freeze_feature_encoder: bool = True  # the conv stack (fairseq base_100h.yaml: feature_grad_mult 0.0)
    freeze_layers: int = non_negative(default=0)  # also freeze transformer blocks 0..N-1 and what feeds them
    # train only the output layer first (fairseq freeze_finetune_updates)
    head_only_updates: int = non_negative(default=0)
    iterations: int = at_least(1, default=1)  # >1: re-label the training audio with the last model and train again
    epochs: int = at_least(1, default=20)
    min_updates: int = non_negative(default=0)  # more epochs until this many updates (small corpora)
    max_updates: int = non_negative(default=0)  # >0: stop after this many updates, whatever ``epochs`` says
    # padded audio per batch (fairseq base_100h: max_tokens 3.2M samples)
    batch_seconds: float = positive(default=200.0)
    lr: float = positive(default=3e-5)   # Adam (0.9, 0.98), tri-stage schedule (fairseq base_100h.yaml)
    # warm-up, hold, decay (fairseq phase_ratio)
    phases: tuple[float, float, float] = in_range(0.0, 1.0, default=(0.1, 0.4, 0.5))
    final_lr_scale: float = non_negative(default=0.05)  # lr at the end of the decay, relative to ``lr`` (fairseq)
    weight_decay: float = non_negative(default=0.0)
    grad_clip: float = non_negative(default=0.0)  # 0 = off (fairseq's default clip_norm)
    # SpecAugment and LayerDrop of the encoder; null keeps the pretrained config's values
    # (fairseq base_100h.yaml fine-tunes with mask_prob 0.65, mask_channel_prob 0.5, layerdrop 0.1)
    mask_time_prob: float | None = in_range(0.0, 1.0, default=None)
    mask_feature_prob: float | None = in_range(0.0, 1.0, default=None)
    layerdrop: float | None = in_range(0.0, 1.0, default=None)
    normalize: bool | None = None        # per-utterance zero mean, unit variance; null: preprocessor_config.json
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"  # fp16/bf16: autocast, CUDA only
    device: str = "cpu"
    seed: int = 1
    threads: int = at_least(1, default=1)  # torch CPU threads
    blank_offset: float | None = None    # as in SelfTrainConfig: null = chosen by length matching, no labels


def _transformers():
    try:
        import transformers
    except ImportError:
        raise ValueError("fine-tuning a Hugging Face encoder needs transformers: "
                         "pip install 'wav2vec-u[transformers]'") from None
    transformers.utils.logging.disable_progress_bar()
    return transformers


def _resolve(name: str) -> tuple[str, Path | None]:
    """(reference for from_pretrained, local folder or None); a path-like name must exist."""
    if not name:
        raise ValueError("no Hugging Face model given: set hf.model to a save_pretrained folder or a cached hub id")
    local = Path(name).expanduser()
    if local.is_dir():
        return str(local), local
    if name.startswith((".", "/", "~")) or local.suffix:
        raise FileNotFoundError(f"Hugging Face model folder not found: {local} (hf.model): give a folder "
                                "written by save_pretrained, or a hub id that is in the local cache")
    return name, None


def _missing_model_error(name: str, exc: Exception) -> FileNotFoundError:
    import os

    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache/huggingface"
    return FileNotFoundError(
        f"Hugging Face model '{name}' is not a folder and not in the local Hugging Face cache ({cache}); "
        f"nothing is downloaded at run time. Fix: download it once on a machine with network access "
        f"(`hf download {name}` or `huggingface-cli download {name}`, then copy the cache), or set "
        f"hf.model to a save_pretrained folder. ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")


def check_model(name: str) -> None:
    """Fail now, with the fix in the message, if ``name`` cannot be loaded offline (reads only its config)."""
    transformers = _transformers()
    ref, folder = _resolve(name)
    try:
        transformers.AutoConfig.from_pretrained(ref, local_files_only=True)
    except OSError as exc:
        if folder is not None:
            raise ValueError(f"cannot load Hugging Face model folder {folder}: {exc}") from None
        raise _missing_model_error(name, exc) from None


def _cache_folder(name: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure: no folder to hash, the hub id is recorded instead
        return None


class HfCtcModel(nn.Module):
    """Raw 16 kHz audio (B, N) -> CTC logits (B, T, V) through a transformers ``*ForCTC`` model.

    ``vocab[0]`` is the blank (``"<SIL>"``). ``normalize``: each utterance is scaled to zero
    mean and unit variance over its own samples (the Hugging Face feature extractor's
    ``do_normalize``), padding stays zero. LayerNorm-conv models (``feat_extract_norm="layer"``:
    Large, XLS-R, MMS, WavLM Large) get an attention mask; GroupNorm models (Base) are run without
    one, as they were pretrained, and batches are sorted by length to keep padding small.
    """

    def __init__(self, ctc_model: nn.Module, vocab: Sequence[str], normalize: bool, source: dict | None = None):
        super().__init__()
        if vocab[0] != BLANK:
            raise ValueError(f"vocab[0] must be the blank {BLANK!r}")
        if ctc_model.config.vocab_size != len(vocab):
            raise ValueError(f"the CTC model has {ctc_model.config.vocab_size} outputs for {len(vocab)} symbols")
        self.ctc = ctc_model
        self.vocab = list(vocab)
        self.normalize = bool(normalize)
        self.source = dict(source or {})
        self.blank_offset = 0.0  # set by self-training (length matching), saved with the model
        self.use_attention_mask = getattr(ctc_model.config, "feat_extract_norm", "group") == "layer"
        strides = getattr(ctc_model.config, "conv_stride", None) or [5, 2, 2, 2, 2, 2, 2]
        self.frame_rate = SAMPLE_RATE / float(np.prod(strides))

    def output_lengths(self, num_samples: torch.Tensor) -> torch.Tensor:
        return self.ctc._get_feat_extract_output_lengths(num_samples).long()

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor, encoder_grad: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``wavs`` (B, N) zero-padded, ``lengths`` (B,) samples -> logits (B, T, V), frames (B,).

        ``encoder_grad=False`` runs the encoder without gradients (only the output layer learns).
        """
        assert wavs.ndim == 2 and lengths.shape == (wavs.shape[0],), f"expected (B, N), got {tuple(wavs.shape)}"
        valid = torch.arange(wavs.shape[1], device=wavs.device)[None] < lengths[:, None]  # True at samples
        if self.normalize:
            n = lengths[:, None].clamp_min(1).to(wavs.dtype)
            mean = (wavs * valid).sum(1, keepdim=True) / n
            var = (((wavs - mean) * valid) ** 2).sum(1, keepdim=True) / n
            wavs = ((wavs - mean) / torch.sqrt(var + 1e-7)).masked_fill(~valid, 0.0)
        mask = valid.long() if self.use_attention_mask else None
        base = self.ctc.base_model
        with torch.no_grad() if not encoder_grad else contextlib.nullcontext():
            hidden = base(wavs, attention_mask=mask).last_hidden_state
        # the *ForCTC head: dropout (config.final_dropout), then the output layer
        logits = self.ctc.lm_head(self.ctc.dropout(hidden))
        out_len = self.output_lengths(lengths).clamp(max=logits.shape[1])
        return logits, out_len

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.ctc.lm_head.parameters())


def _overrides(cfg: HfCtcConfig) -> dict:
    return {k: v for k, v in (("mask_time_prob", cfg.mask_time_prob), ("mask_feature_prob", cfg.mask_feature_prob),
                              ("layerdrop", cfg.layerdrop)) if v is not None}


def _read_normalize(folder: Path | None, name: str) -> bool:
    """``do_normalize`` of the model's preprocessor_config.json (True when absent, the HF default)."""
    import json

    if folder is None:
        folder = _cache_folder(name)
    f = folder / "preprocessor_config.json" if folder is not None else None
    if f is not None and f.is_file():
        return bool(json.loads(f.read_text()).get("do_normalize", True))
    return True


def build_hf_ctc(cfg: HfCtcConfig, vocab: Sequence[str]) -> HfCtcModel:
    """A pretrained encoder with a fresh CTC output layer of ``len(vocab)`` rows (blank first)."""
    transformers = _transformers()
    ref, folder = _resolve(cfg.model)
    try:
        ctc = transformers.AutoModelForCTC.from_pretrained(
            ref, local_files_only=True, vocab_size=len(vocab), pad_token_id=0, ignore_mismatched_sizes=True,
            **_overrides(cfg))
    except OSError as exc:
        if folder is not None:
            raise ValueError(f"cannot load Hugging Face model folder {folder}: {exc}") from None
        raise _missing_model_error(cfg.model, exc) from None
    except ValueError as exc:  # a config transformers has no CTC class for
        raise ValueError(f"'{cfg.model}' cannot take a CTC head in transformers ({str(exc).splitlines()[0][:200]}): "
                         "use a Wav2Vec2, XLS-R, MMS, HuBERT, WavLM or data2vec-audio model") from None
    if not hasattr(ctc, "lm_head") or not hasattr(ctc, "dropout"):
        raise ValueError(f"{type(ctc).__name__} ({cfg.model}) has no lm_head/dropout: "
                         "not a wav2vec 2.0-style CTC model")
    folder = folder or _cache_folder(cfg.model)
    normalize = _read_normalize(folder, cfg.model) if cfg.normalize is None else cfg.normalize
    source = {"model": cfg.model, "path": str(folder.resolve()) if folder else None,
              "weights_sha256": weights_sha256(folder), "model_type": ctc.config.model_type,
              "commit": getattr(ctc.config, "_commit_hash", None)}
    return HfCtcModel(ctc, vocab, normalize, source)


@torch.no_grad()
def hf_ctc_logits(model: HfCtcModel, wav: np.ndarray, with_blank_offset: bool = False,
                  precision: str = "fp32") -> np.ndarray:
    """Eval-mode logits (T, V) of one utterance (16 kHz samples); ``model.vocab`` indexes V."""
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"audio must be mono (N,), got shape {wav.shape}")
    device = next(model.parameters()).device
    if int(model.output_lengths(torch.tensor(len(wav)))) < 1:
        return np.zeros((0, len(model.vocab)), np.float32)
    was = model.training
    model.eval()
    with _autocast(HfCtcConfig(precision=precision), device):  # type: ignore[arg-type]
        logits, _ = model(torch.from_numpy(wav).to(device)[None], torch.tensor([len(wav)], device=device))
    model.train(was)
    out = logits[0].float().cpu().numpy()
    return offset_blank(out, model.blank_offset) if with_blank_offset else out


def hf_ctc_decode(model: HfCtcModel, wavs: Sequence[np.ndarray], blank_offset: float = 0.0) -> list[list[str]]:
    """Greedy CTC decoding (argmax, join repeats, drop blank) of each utterance."""
    return [greedy_ctc(hf_ctc_logits(model, w), model.vocab, blank_offset) for w in wavs]


def save_hf_ctc(path: str | Path, model: HfCtcModel, cfg: HfCtcConfig | None = None, extra: dict | None = None) -> Path:
    """A self-describing checkpoint: encoder config and weights, vocabulary, source, config, versions."""

    state = {"format": FORMAT, "vocab": model.vocab, "model_type": model.ctc.config.model_type,
             "hf_config": model.ctc.config.to_dict(), "state_dict": model.ctc.state_dict(),
             "normalize": model.normalize, "blank_offset": float(model.blank_offset), "source": model.source,
             "config": to_dict(cfg) if cfg is not None else None, "seed": cfg.seed if cfg is not None else None,
             "versions": package_versions(), **(extra or {})}
    return save_state(path, state)


def load_hf_ctc(path: str | Path, device: str = "cpu") -> HfCtcModel:
    """The model of :func:`save_hf_ctc`, rebuilt from the checkpoint alone (no hub, no model folder)."""
    return hf_ctc_from_state(load_tagged_state(path, FORMAT, "Hugging Face CTC model", device), device)


def hf_ctc_from_state(state: dict, device: str = "cpu") -> HfCtcModel:
    """:func:`load_hf_ctc` from an already loaded checkpoint."""
    transformers = _transformers()
    hf_config = dict(state["hf_config"])
    hf_config.pop("model_type", None)
    config = transformers.AutoConfig.for_model(state["model_type"], **hf_config)
    ctc = transformers.AutoModelForCTC.from_config(config)
    ctc.load_state_dict(state["state_dict"])
    model = HfCtcModel(ctc, state["vocab"], state["normalize"], state.get("source"))
    model.blank_offset = float(state.get("blank_offset", 0.0))
    return model.to(device).eval()


def hf_ctc_config_of(path: str | Path) -> HfCtcConfig | None:
    state = load_tagged_state(path, FORMAT, "Hugging Face CTC model")
    return from_dict(HfCtcConfig, state["config"]) if state.get("config") else None


def is_hf_ctc_checkpoint(path: str | Path) -> bool:
    """True for a :func:`save_hf_ctc` file (read safely, memory-mapped: the weights are not loaded)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - not a (zip) torch file, or one we would refuse: not ours
        return False
    return isinstance(state, dict) and state.get("format") == FORMAT


def _autocast(cfg: HfCtcConfig, device: torch.device):
    if cfg.precision == "fp32" or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if cfg.precision == "bf16" else torch.float16)
