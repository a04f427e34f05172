"""Self-training from audio: fine-tune a Hugging Face speech encoder with a CTC head on pseudo-labels.

The reference's last self-training step fine-tunes wav2vec 2.0 with CTC on the labels of its
HMM (METHOD.md, "Decoding and self-training"). This module does that with any encoder of the
Wav2Vec2 family that transformers has a ``*ForCTC`` class for (Wav2Vec2, XLS-R, MMS, HuBERT,
WavLM, data2vec-audio), from a save_pretrained folder or the local Hugging Face cache; nothing
is downloaded::

    from wav2vec_u.decode.hf_ctc import HfCtcConfig, build_hf_ctc, train_hf_ctc, hf_ctc_decode
    cfg = HfCtcConfig(model="facebook/wav2vec2-base", device="cuda", precision="bf16")
    model = train_hf_ctc(wavs, pseudo_labels, phones, cfg)     # wavs: 16 kHz float32 arrays
    hyps = hf_ctc_decode(model, valid_wavs, model.blank_offset)
    save_hf_ctc("st/ctc.pt", model)                             # w2vu decode st/ctc.pt CORPUS ...

The output layer is new, one row per symbol of ``["<SIL>", *phones]``: index 0 is the CTC
blank stored under the silence symbol, the convention of :mod:`wav2vec_u.decode.self_train`,
so the Viterbi and lexicon decoders read these logits unchanged. By default the convolutional
feature encoder is frozen (fairseq fine-tuning: ``feature_grad_mult: 0.0``) and every
transformer block trains; ``freeze_layers=N`` also freezes the blocks below N.

Real encoders (95M-1B parameters) need a GPU (``device=cuda``, ``precision=bf16``/``fp16``:
autocast, CUDA only). On a CPU only tiny models train in reasonable time (the tests use a
random 2-block, 32-wide Wav2Vec2).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wav2vec_u.audio.hf import weights_sha256
from wav2vec_u.config import from_dict, to_dict
from wav2vec_u.decode.metrics import SPECIAL_TOKENS
from wav2vec_u.decode.self_train import (BLANK, SelfTrainResult, _greedy, run_iterations,
                                         ctc_feasible)
from wav2vec_u.io import atomic_path, load_tagged_state

log = logging.getLogger(__name__)

FORMAT = "wav2vec-u-hf-ctc/1"
SAMPLE_RATE = 16_000


@dataclass
class HfCtcConfig:
    # a save_pretrained folder, or a hub id already in the local Hugging Face cache; "" = off
    # (``w2vu self-train`` then trains the small CTC head over frozen features instead)
    model: str = ""
    freeze_feature_encoder: bool = True  # the conv stack (fairseq base_100h.yaml: feature_grad_mult 0.0)
    freeze_layers: int = 0               # also freeze transformer blocks 0..N-1 and what feeds them
    head_only_updates: int = 0           # train only the output layer first (fairseq freeze_finetune_updates)
    iterations: int = 1                  # >1: re-label the training audio with the last model and train again
    epochs: int = 20
    min_updates: int = 0                 # more epochs until this many updates (small corpora)
    max_updates: int = 0                 # >0: stop after this many updates, whatever ``epochs`` says
    batch_seconds: float = 200.0         # padded audio per batch (fairseq base_100h: max_tokens 3.2M samples)
    lr: float = 3e-5                     # Adam (0.9, 0.98), tri-stage schedule (fairseq base_100h.yaml)
    phases: tuple[float, float, float] = (0.1, 0.4, 0.5)  # warm-up, hold, decay (fairseq phase_ratio)
    final_lr_scale: float = 0.05         # lr at the end of the decay, relative to ``lr`` (fairseq)
    weight_decay: float = 0.0
    grad_clip: float = 0.0               # 0 = off (fairseq's default clip_norm)
    # SpecAugment and LayerDrop of the encoder; null keeps the pretrained config's values
    # (fairseq base_100h.yaml fine-tunes with mask_prob 0.65, mask_channel_prob 0.5, layerdrop 0.1)
    mask_time_prob: float | None = None
    mask_feature_prob: float | None = None
    layerdrop: float | None = None
    normalize: bool | None = None        # per-utterance zero mean, unit variance; null: preprocessor_config.json
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"  # fp16/bf16: autocast, CUDA only
    device: str = "cpu"
    seed: int = 1
    threads: int = 1                     # torch CPU threads
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


def _freeze(model: HfCtcModel, cfg: HfCtcConfig) -> None:
    if cfg.freeze_feature_encoder:
        model.ctc.freeze_feature_encoder()
    if cfg.freeze_layers > 0:
        from wav2vec_u.audio.hf import _encoder_layers

        base = model.ctc.base_model
        layers = _encoder_layers(base)
        if cfg.freeze_layers > len(layers):
            raise ValueError(f"hf.freeze_layers={cfg.freeze_layers} but {cfg.model} has {len(layers)} blocks")
        below = [getattr(base, "feature_projection", None), getattr(base.encoder, "pos_conv_embed", None),
                 *list(layers)[: cfg.freeze_layers]]
        for module in below:
            if module is not None:
                for p in module.parameters():
                    p.requires_grad_(False)


def make_batches(num_samples: Sequence[int], batch_seconds: float) -> list[list[int]]:
    """Utterance indices grouped by length: each batch's padded size (count x longest) is at most
    ``batch_seconds`` of audio (a longer utterance gets a batch of its own)."""
    budget = batch_seconds * SAMPLE_RATE
    batches, cur, longest = [], [], 0
    for i in sorted(range(len(num_samples)), key=lambda i: (num_samples[i], i)):
        n = num_samples[i]
        if cur and (len(cur) + 1) * max(longest, n) > budget:
            batches.append(cur)
            cur, longest = [], 0
        cur.append(i)
        longest = max(longest, n)
    if cur:
        batches.append(cur)
    return batches


def tri_stage_lr(step: int, total: int, phases: Sequence[float], final_scale: float) -> float:
    """Learning-rate factor at ``step`` of ``total``: linear warm-up from 0, hold at 1, then
    exponential decay to ``final_scale`` (fairseq's tri-stage schedule, its ``init_lr_scale`` = 0)."""
    warm, hold = int(phases[0] * total), int(phases[1] * total)
    decay = max(total - warm - hold, 1)
    if step < warm:
        return (step + 1) / warm
    if step < warm + hold:
        return 1.0
    return final_scale ** (min(step - warm - hold, decay) / decay)


def _autocast(cfg: HfCtcConfig, device: torch.device):
    if cfg.precision == "fp32" or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if cfg.precision == "bf16" else torch.float16)


def _pad(wavs: Sequence[np.ndarray], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(w) for w in wavs], dtype=torch.long)
    x = torch.zeros(len(wavs), int(lengths.max()))
    for i, w in enumerate(wavs):
        x[i, : len(w)] = torch.from_numpy(np.asarray(w, dtype=np.float32))
    return x.to(device), lengths.to(device)


def num_samples_of(wavs: Sequence[np.ndarray]) -> list[int]:
    """Lengths in samples: ``wavs.num_samples`` when the sequence knows them (no audio read)."""
    known = getattr(wavs, "num_samples", None)
    return list(known) if known is not None else [len(w) for w in wavs]


def train_hf_ctc(wavs: Sequence[np.ndarray], labels: Sequence[Sequence[str]], phones: Sequence[str],
                 cfg: HfCtcConfig, *, model: HfCtcModel | None = None,
                 on_update: Callable[[int, float], None] | None = None) -> HfCtcModel:
    """Fine-tune ``cfg.model`` (or ``model``) with CTC on ``labels`` (phones, no ``<SIL>``) of ``wavs``.

    ``wavs``: 16 kHz mono float32 arrays (any sequence; a :class:`ManifestAudio` reads them
    from disk on demand). The loss of a batch is the CTC loss summed over its utterances and
    divided by their number (fairseq ``sentence_avg``). ``on_update(update, loss)`` is called
    after every update.
    """
    if len(wavs) != len(labels):
        raise ValueError(f"{len(wavs)} utterances but {len(labels)} label lines")
    if not len(wavs):
        raise ValueError("no training utterances")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = torch.device(cfg.device)
    vocab = [BLANK, *[p for p in phones if p not in SPECIAL_TOKENS]]
    index = {p: i for i, p in enumerate(vocab)}
    if model is None:
        model = build_hf_ctc(cfg, vocab)
    elif model.vocab != vocab:
        raise ValueError("the given model's vocabulary differs from the phone inventory")
    model.to(device)
    _freeze(model, cfg)
    unknown = sorted({p for lab in labels for p in lab if p not in index})
    if unknown:
        log.warning("hf self-train: %d label phones are not in the phone inventory and are ignored: %s",
                    len(unknown), " ".join(unknown[:20]))
    sizes = num_samples_of(wavs)
    frames = model.output_lengths(torch.tensor(sizes)).tolist()
    keep, targets, dropped = [], {}, 0
    for i, lab in enumerate(labels):
        ids = [index[p] for p in lab if p in index]
        if not ids or not ctc_feasible(int(frames[i]), ids):
            dropped += 1
            continue
        keep.append(i)
        targets[i] = ids
    if dropped:
        log.warning("hf self-train: %d of %d utterances skipped (empty label, or more labels than frames)",
                    dropped, len(labels))
    if not keep:
        raise ValueError("no utterance has a usable label (all empty or longer than the audio allows)")
    batches = [[keep[j] for j in b] for b in make_batches([sizes[i] for i in keep], cfg.batch_seconds)]
    epochs = max(cfg.epochs, math.ceil(cfg.min_updates / len(batches)))
    total = epochs * len(batches)
    if cfg.max_updates > 0:
        total = min(total, cfg.max_updates)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(trainable, lr=cfg.lr, betas=(0.9, 0.98), eps=1e-8, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: tri_stage_lr(s, total, cfg.phases, cfg.final_lr_scale))
    scaler = torch.amp.GradScaler("cuda") if cfg.precision == "fp16" and device.type == "cuda" else None
    if cfg.precision != "fp32" and device.type != "cuda":
        log.warning("hf.precision=%s needs CUDA; training in fp32 on %s", cfg.precision, device)
    log.info("hf self-train: %s, %d utterances, %d batches per epoch, %d updates, %d/%d parameters trained",
             cfg.model, len(keep), len(batches), total, sum(p.numel() for p in trainable),
             sum(p.numel() for p in model.parameters()))
    model.train()
    # transformers draws SpecAugment masks from numpy's global generator: seed it for this run
    # (and give the caller's state back afterwards) so that a seed means one result
    np_state = np.random.get_state()
    np.random.seed(cfg.seed)
    try:
        _train_loop(model, wavs, batches, targets, cfg, device, opt, sched, scaler, trainable, rng, total, on_update)
    finally:
        np.random.set_state(np_state)
    model.eval()
    return model


def _train_loop(model, wavs, batches, targets, cfg, device, opt, sched, scaler, trainable, rng, total, on_update):
    update = 0
    while update < total:
        for b in rng.permutation(len(batches)):
            if update >= total:
                break
            batch = batches[b]
            x, lengths = _pad([wavs[i] for i in batch], device)
            tgt = torch.tensor([t for i in batch for t in targets[i]], dtype=torch.long, device=device)
            tlen = torch.tensor([len(targets[i]) for i in batch], dtype=torch.long, device=device)
            with _autocast(cfg, device):
                logits, out_len = model(x, lengths, encoder_grad=update >= cfg.head_only_updates)
            lp = logits.float().log_softmax(-1).transpose(0, 1)  # (T, B, V) as F.ctc_loss wants
            loss = F.ctc_loss(lp, tgt, out_len, tlen, blank=0, reduction="sum", zero_infinity=True) / len(batch)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
            else:
                loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            sched.step()
            update += 1
            if on_update is not None:
                on_update(update, float(loss.detach()))


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
    if with_blank_offset and model.blank_offset:
        out[:, 0] -= model.blank_offset
    return out


def hf_ctc_decode(model: HfCtcModel, wavs: Sequence[np.ndarray], blank_offset: float = 0.0) -> list[list[str]]:
    """Greedy CTC decoding (argmax, join repeats, drop blank) of each utterance."""
    return [_greedy(hf_ctc_logits(model, w), model.vocab, blank_offset) for w in wavs]


def save_hf_ctc(path: str | Path, model: HfCtcModel, cfg: HfCtcConfig | None = None, extra: dict | None = None) -> Path:
    """A self-describing checkpoint: encoder config and weights, vocabulary, source, config, versions."""
    from wav2vec_u.tracking import package_versions

    state = {"format": FORMAT, "vocab": model.vocab, "model_type": model.ctc.config.model_type,
             "hf_config": model.ctc.config.to_dict(), "state_dict": model.ctc.state_dict(),
             "normalize": model.normalize, "blank_offset": float(model.blank_offset), "source": model.source,
             "config": to_dict(cfg) if cfg is not None else None, "seed": cfg.seed if cfg is not None else None,
             "versions": package_versions(), **(extra or {})}
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_hf_ctc(path: str | Path, device: str = "cpu") -> HfCtcModel:
    """The model of :func:`save_hf_ctc`, rebuilt from the checkpoint alone (no hub, no model folder)."""
    transformers = _transformers()
    state = load_tagged_state(path, FORMAT, "Hugging Face CTC model", device)
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
    """True for a :func:`save_hf_ctc` file (read memory-mapped: the weights are not loaded)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception:  # noqa: BLE001 - not a (zip) torch file: not ours
        return False
    return isinstance(state, dict) and state.get("format") == FORMAT


# ---------------------------------------------------------------------------------------------
# Audio of a split, read on demand


class ManifestAudio(Sequence):
    """The utterances of a fairseq manifest as 16 kHz float32 arrays, read when indexed.

    ``num_samples`` comes from the manifest (batching needs no audio read). Every file is
    checked up front: a missing one is an error naming it and the manifest.
    """

    def __init__(self, manifest: str | Path):
        from wav2vec_u.audio.manifest import read_manifest

        self.manifest = Path(manifest)
        root, entries = read_manifest(self.manifest)
        self.paths = [root / rel for rel, _ in entries]
        self.num_samples = [n for _, n in entries]
        missing = [p for p in self.paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} of {len(self.paths)} audio files listed in {self.manifest} are missing "
                f"(first: {missing[0]}); the Hugging Face CTC model trains on the audio itself: restore the "
                f"files or correct the root folder on the manifest's first line ({root})")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        from wav2vec_u.audio.io import load_16k

        return load_16k(self.paths[i])


def split_manifest(folder: str | Path, split: str) -> Path | None:
    """The manifest of ``split`` for a feature or corpus folder: ``{split}.tsv`` in it, else the
    manifest its ``meta.json`` records for the split (``w2vu extract``), else None."""
    from wav2vec_u.io import read_json

    folder = Path(folder)
    if (folder / f"{split}.tsv").is_file():
        return folder / f"{split}.tsv"
    meta = folder / "meta.json"
    if meta.is_file():
        try:
            rec = (read_json(meta).get("splits") or {}).get(split) or {}
        except (ValueError, AttributeError):
            rec = {}
        if rec.get("manifest") and Path(rec["manifest"]).is_file():
            return Path(rec["manifest"])
    return None


def split_audio(folder: str | Path, split: str) -> ManifestAudio:
    manifest = split_manifest(folder, split)
    if manifest is None:
        raise FileNotFoundError(f"no audio manifest for split '{split}' in {folder}: the Hugging Face CTC model "
                                f"reads the audio; give a feature folder made by `w2vu extract` (it keeps "
                                f"{split}.tsv) or a corpus folder with {split}.tsv")
    return ManifestAudio(manifest)


# ---------------------------------------------------------------------------------------------
# Self-training loop (the audio counterpart of self_train.self_train)


def self_train_hf(train_wavs: Sequence[np.ndarray], pseudo_labels: Sequence[Sequence[str]], phones: Sequence[str],
                  cfg: HfCtcConfig, *, train_refs: Sequence[Sequence[str]] | None = None,
                  valid_wavs: Sequence[np.ndarray] | None = None, valid_refs: Sequence[Sequence[str]] | None = None,
                  phone_lm: Any = None, on_row=None, on_model=None) -> SelfTrainResult:
    """Fine-tune on ``pseudo_labels``, decode, and repeat ``cfg.iterations`` times on the new labels.

    History rows as in :func:`wav2vec_u.decode.self_train.self_train`, plus ``loss_first`` and
    ``loss_last`` (mean CTC loss of the first and last 10% of updates). Every iteration starts
    again from the pretrained encoder. ``on_model(iteration, model, row)`` is called with each
    trained model (save it there: ``result.models`` stays empty, big models are not kept).
    """
    torch.set_num_threads(cfg.threads)

    def fit(labels: list[list[str]], it: int) -> tuple[HfCtcModel, dict]:
        losses: list[float] = []

        def on_update(update, loss):
            losses.append(loss)
            if update == 1 or update % 50 == 0:
                log.info("hf self-train iteration %d update %d: ctc loss %.3f", it, update, loss)

        model = train_hf_ctc(train_wavs, labels, phones, cfg, on_update=on_update)
        k = max(1, len(losses) // 10)
        return model, {"updates": len(losses), "loss_first": float(np.mean(losses[:k])),
                       "loss_last": float(np.mean(losses[-k:]))}

    return run_iterations(pseudo_labels, phones, cfg.iterations, fit, hf_ctc_logits, train_wavs,
                          blank_offset=cfg.blank_offset, valid_inputs=valid_wavs, train_refs=train_refs,
                          valid_refs=valid_refs, phone_lm=phone_lm, on_row=on_row, on_model=on_model,
                          what="hf self-train")
