"""Self-training: a CTC model trained on the GAN's pseudo-labels, decoded, optionally iterated.

The paper's biggest gains after the GAN come from training an ordinary supervised model on
the GAN's own transcriptions (TIMIT PER 17.8 -> 12.0): the GAN's errors are partly random,
and a model trained on many noisy labels of the same sounds learns their majority. The
reference trains Kaldi HMMs and then fine-tunes wav2vec 2.0; here a small convolutional (or
BiLSTM) CTC head over frozen features does the same job on CPU::

    from wav2vec_u.self_train.ctc import SelfTrainConfig, self_train
    result = self_train(train_utts, pseudo_labels, phones, SelfTrainConfig(),
                        train_refs=refs, valid_utts=valid, valid_refs=valid_refs, phone_lm=lm)
    result.history        # one row per iteration: pseudo-label PER, decoded PER, LM metric
    model = result.model  # decode more audio with ctc_logits(model, feats) + viterbi_decode

``train_utts`` is a list of ``(T, D)`` feature arrays (frame or segment features), the labels
are phone lists without ``<SIL>``. The model's output vocabulary is ``["<SIL>", *phones]``:
index 0 is the CTC blank, stored under the silence symbol so that the Viterbi and lexicon
decoders of this package read CTC outputs unchanged (both drop it and let it separate two
equal phones, which is exactly the CTC blank rule).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wav2vec_u.batching import pad_batch
from wav2vec_u.config import at_least, non_negative, positive
from wav2vec_u.tokens import SPECIAL_TOKENS
from wav2vec_u.models.ctc import BLANK, CtcModel, CtcModelConfig, ctc_logits
from wav2vec_u.self_train.loop import SelfTrainResult, run_iterations

log = logging.getLogger(__name__)


@dataclass
class SelfTrainConfig:
    model: CtcModelConfig = field(default_factory=CtcModelConfig)
    iterations: int = at_least(1, default=1)  # >1: re-label the training set with the last model and train again
    # stop iterating when the label-free metric (weighted_lm_ppl of the decode) gets worse, keep the best
    # iteration's model (needs the text folder's phone LM)
    stop_when_worse: bool = True
    epochs: int = at_least(1, default=20)
    min_updates: int = non_negative(default=1200)  # small corpora: more epochs until this many updates (CTC needs them)
    batch_size: int = at_least(1, default=4)
    lr: float = positive(default=3e-3)  # Adam, one-cycle schedule
    weight_decay: float = non_negative(default=0.0)
    grad_clip: float = positive(default=5.0)
    seed: int = 1
    threads: int = at_least(1, default=1)  # torch CPU threads (more threads on a shared 2-core box is slower)
    device: str = "cpu"
    log_every: int = at_least(1, default=1)  # epochs
    # Subtracted from the blank logit before greedy decoding. CTC trained on noisy labels is
    # unsure, and unsure CTC emits blank (deletions). None: choose it without labels so that
    # the decoded training set has as many phones as its pseudo-labels (length matching).
    blank_offset: float | None = None


def ctc_feasible(num_outputs: int, labels: Sequence[int]) -> bool:
    """CTC needs one output per label plus one blank between each pair of equal labels."""
    repeats = sum(1 for a, b in zip(labels, labels[1:]) if a == b)
    return num_outputs >= len(labels) + repeats


def train_ctc(utts: Sequence[np.ndarray], labels: Sequence[Sequence[str]], phones: Sequence[str],
              cfg: SelfTrainConfig, *, on_epoch=None) -> CtcModel:
    """Train a fresh CTC model on ``labels`` (phones, no ``<SIL>``) for ``utts`` ((T, D) arrays)."""
    if len(utts) != len(labels):
        raise ValueError(f"{len(utts)} utterances but {len(labels)} label lines")
    if not utts:
        raise ValueError("no training utterances")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    vocab = [BLANK, *[p for p in phones if p not in SPECIAL_TOKENS]]
    index = {p: i for i, p in enumerate(vocab)}
    model = CtcModel(utts[0].shape[1], vocab, cfg.model).to(cfg.device)
    model.set_normalization(utts)
    unknown = sorted({p for lab in labels for p in lab if p not in index})
    if unknown:
        log.warning("self-train: %d label phones are not in the phone inventory and are ignored: %s",
                    len(unknown), " ".join(unknown[:20]))
    data, dropped = [], 0
    for u, lab in zip(utts, labels):
        ids = [index[p] for p in lab if p in index]
        if not ids or not ctc_feasible(int(model.output_lengths(torch.tensor(len(u)))), ids):
            dropped += 1
            continue
        data.append((u, ids))
    if dropped:
        log.warning("self-train: %d of %d utterances skipped (empty label, or more labels than CTC "
                    "outputs: lower model.subsample)", dropped, len(utts))
    if not data:
        raise ValueError("no utterance has a usable label (all empty or longer than the features allow)")
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = math.ceil(len(data) / cfg.batch_size)
    epochs = max(cfg.epochs, math.ceil(cfg.min_updates / per_epoch))
    steps = epochs * per_epoch
    log.info("self-train: %d utterances, %d epochs of %d updates", len(data), epochs, per_epoch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(steps, 1), pct_start=0.1)
    model.train()
    for epoch in range(epochs):
        order = rng.permutation(len(data))
        total, n = 0.0, 0
        for b in range(0, len(order), cfg.batch_size):
            batch = [data[i] for i in order[b: b + cfg.batch_size]]
            x, lengths = pad_batch([u for u, _ in batch], cfg.device)
            targets = torch.tensor([t for _, ids in batch for t in ids], dtype=torch.long, device=cfg.device)
            tlen = torch.tensor([len(ids) for _, ids in batch], dtype=torch.long, device=cfg.device)
            logits, out_len = model(x, lengths)
            lp = logits.log_softmax(-1).transpose(0, 1)  # (T', B, V) as F.ctc_loss wants
            loss = F.ctc_loss(lp, targets, out_len, tlen, blank=0, reduction="mean", zero_infinity=True)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(batch)
            n += len(batch)
        if on_epoch is not None and (epoch + 1) % cfg.log_every == 0:
            on_epoch(epoch + 1, total / max(n, 1))
    model.eval()
    return model


def self_train(train_utts: Sequence[np.ndarray], pseudo_labels: Sequence[Sequence[str]], phones: Sequence[str],
               cfg: SelfTrainConfig, *, train_refs: Sequence[Sequence[str]] | None = None,
               valid_utts: Sequence[np.ndarray] | None = None, valid_refs: Sequence[Sequence[str]] | None = None,
               phone_lm: Any = None, on_row=None) -> SelfTrainResult:
    """Train on ``pseudo_labels``, decode, and repeat ``cfg.iterations`` times on the new labels.

    Each history row has ``iteration``, ``pseudo_label_per`` (labels used, against
    ``train_refs`` when given), ``train_per`` (the model's decode of the training set),
    ``valid_per`` (when ``valid_refs``), ``weighted_lm_ppl`` etc. of the decoded output
    (validation set if given, else training set; needs ``phone_lm``), ``seconds``. A user
    without references watches ``weighted_lm_ppl``: it should fall if self-training helps.
    """
    torch.set_num_threads(cfg.threads)
    models: list[CtcModel] = []

    def fit(labels: list[list[str]], it: int) -> tuple[CtcModel, dict]:
        def on_epoch(epoch, loss):
            log.info("self-train iteration %d epoch %d: ctc loss %.3f", it, epoch, loss)

        models.append(train_ctc(train_utts, labels, phones, cfg, on_epoch=on_epoch))
        return models[-1], {}

    result = run_iterations(pseudo_labels, phones, cfg.iterations, fit, ctc_logits, train_utts,
                            blank_offset=cfg.blank_offset, valid_inputs=valid_utts, train_refs=train_refs,
                            valid_refs=valid_refs, phone_lm=phone_lm, on_row=on_row,
                            stop_when_worse=cfg.stop_when_worse and phone_lm is not None)
    result.models = models
    return result
