"""Self-training from audio: fine-tune a Hugging Face speech encoder with a CTC head on pseudo-labels.

The reference's last self-training step fine-tunes wav2vec 2.0 with CTC on the labels of its
HMM (docs/method.md, "Decoding and self-training"). This module does that with any encoder of the
Wav2Vec2 family that transformers has a ``*ForCTC`` class for (Wav2Vec2, XLS-R, MMS, HuBERT,
WavLM, data2vec-audio), from a save_pretrained folder or the local Hugging Face cache; nothing
is downloaded::

    from wav2vec_u.self_train.hf import train_hf_ctc
    from wav2vec_u.models.hf_ctc import HfCtcConfig, build_hf_ctc, hf_ctc_decode
    cfg = HfCtcConfig(model="facebook/wav2vec2-base", device="cuda", precision="bf16")
    model = train_hf_ctc(wavs, pseudo_labels, phones, cfg)     # wavs: 16 kHz float32 arrays
    hyps = hf_ctc_decode(model, valid_wavs, model.blank_offset)
    save_hf_ctc("st/ctc.pt", model)                             # w2vu decode st/ctc.pt CORPUS ...

The output layer is new, one row per symbol of ``["<SIL>", *phones]``: index 0 is the CTC
blank stored under the silence symbol, the convention of :mod:`wav2vec_u.self_train.ctc`,
so the Viterbi and lexicon decoders read these logits unchanged. By default the convolutional
feature encoder is frozen (fairseq fine-tuning: ``feature_grad_mult: 0.0``) and every
transformer block trains; ``freeze_layers=N`` also freezes the blocks below N.

Real encoders (95M-1B parameters) need a GPU (``device=cuda``, ``precision=bf16``/``fp16``:
autocast, CUDA only). On a CPU only tiny models train in reasonable time (the tests use a
random 2-block, 32-wide Wav2Vec2).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wav2vec_u.batching import pad_batch
from wav2vec_u.tokens import SPECIAL_TOKENS
from wav2vec_u.audio.io import SAMPLE_RATE
from wav2vec_u.models.ctc import BLANK
from wav2vec_u.models.hf_ctc import HfCtcConfig, HfCtcModel, _autocast, build_hf_ctc, hf_ctc_logits
from wav2vec_u.self_train.ctc import ctc_feasible
from wav2vec_u.self_train.loop import SelfTrainResult, run_iterations
from wav2vec_u.audio.hf import _encoder_layers

log = logging.getLogger(__name__)


def _freeze(model: HfCtcModel, cfg: HfCtcConfig) -> None:
    if cfg.freeze_feature_encoder:
        model.ctc.freeze_feature_encoder()
    if cfg.freeze_layers > 0:

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
            x, lengths = pad_batch([wavs[i] for i in batch], device)
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


# ---------------------------------------------------------------------------------------------
# Audio of a split, read on demand


# ---------------------------------------------------------------------------------------------
# Self-training loop (the audio counterpart of self_train.self_train)


def self_train_hf(train_wavs: Sequence[np.ndarray], pseudo_labels: Sequence[Sequence[str]], phones: Sequence[str],
                  cfg: HfCtcConfig, *, train_refs: Sequence[Sequence[str]] | None = None,
                  valid_wavs: Sequence[np.ndarray] | None = None, valid_refs: Sequence[Sequence[str]] | None = None,
                  phone_lm: Any = None, on_row=None, on_model=None) -> SelfTrainResult:
    """Fine-tune on ``pseudo_labels``, decode, and repeat ``cfg.iterations`` times on the new labels.

    History rows as in :func:`wav2vec_u.self_train.ctc.self_train`, plus ``loss_first`` and
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
