"""Self-training: a CTC model trained on the GAN's pseudo-labels, decoded, optionally iterated.

The paper's biggest gains after the GAN come from training an ordinary supervised model on
the GAN's own transcriptions (TIMIT PER 17.8 -> 12.0): the GAN's errors are partly random,
and a model trained on many noisy labels of the same sounds learns their majority. The
reference trains Kaldi HMMs and then fine-tunes wav2vec 2.0; here a small convolutional (or
BiLSTM) CTC head over frozen features does the same job on CPU::

    from wav2vec_u.decode.self_train import SelfTrainConfig, self_train
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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wav2vec_u.config import from_dict, to_dict
from wav2vec_u.decode.metrics import SPECIAL_TOKENS, error_rate
from wav2vec_u.decode.viterbi import viterbi_decode
from wav2vec_u.io import atomic_path, load_tagged_state

log = logging.getLogger(__name__)

BLANK = "<SIL>"
FORMAT = "wav2vec-u-ctc/1"


@dataclass
class CtcModelConfig:
    kind: Literal["conv", "bilstm"] = "conv"
    hidden: int = 128        # channels of every layer
    layers: int = 2          # conv blocks (or BiLSTM layers) after the input projection
    kernel: int = 5          # conv kernel (odd; "same" padding)
    subsample: int = 1       # stride of the input projection (2 halves a 100 Hz frame rate)
    dropout: float = 0.3        # high: against memorising the noisy labels (docs/decode.md: 30.1 -> 22.1% PER)
    input_dropout: float = 0.2


@dataclass
class SelfTrainConfig:
    model: CtcModelConfig = field(default_factory=CtcModelConfig)
    iterations: int = 1      # >1: re-label the training set with the last model and train again
    epochs: int = 20
    min_updates: int = 1200  # small corpora: more epochs until this many updates (CTC needs them)
    batch_size: int = 4
    lr: float = 3e-3         # Adam, one-cycle schedule
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    seed: int = 1
    threads: int = 1         # torch CPU threads (more threads on a shared 2-core box is slower)
    device: str = "cpu"
    log_every: int = 1       # epochs
    # Subtracted from the blank logit before greedy decoding. CTC trained on noisy labels is
    # unsure, and unsure CTC emits blank (deletions). None: choose it without labels so that
    # the decoded training set has as many phones as its pseudo-labels (length matching).
    blank_offset: float | None = None


class CtcModel(nn.Module):
    """Frozen features (B, T, D) -> CTC logits (B, T', V); ``V = len(vocab)``, blank at 0."""

    def __init__(self, input_dim: int, vocab: Sequence[str], cfg: CtcModelConfig):
        super().__init__()
        if cfg.kernel % 2 != 1:
            raise ValueError(f"model.kernel must be odd, got {cfg.kernel}")
        if vocab[0] != BLANK:
            raise ValueError(f"vocab[0] must be the blank {BLANK!r}")
        self.input_dim, self.vocab, self.cfg = input_dim, list(vocab), cfg
        self.blank_offset = 0.0  # set by self_train (see SelfTrainConfig.blank_offset); saved
        # feature normalisation fitted on the training set (set_normalization)
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("std", torch.ones(input_dim))
        h, k = cfg.hidden, cfg.kernel
        self.input_dropout = nn.Dropout(cfg.input_dropout)
        self.proj = nn.Conv1d(input_dim, h, k, stride=cfg.subsample, padding=k // 2)
        if cfg.kind == "conv":
            self.blocks = nn.ModuleList(
                nn.Sequential(nn.Conv1d(h, h, k, padding=k // 2), nn.GELU(), nn.Dropout(cfg.dropout))
                for _ in range(cfg.layers))
            self.lstm = None
        else:
            self.blocks = nn.ModuleList()
            self.lstm = nn.LSTM(h, h // 2, num_layers=cfg.layers, bidirectional=True, batch_first=True,
                                dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.norm = nn.LayerNorm(h)
        self.out = nn.Linear(h, len(self.vocab))

    def set_normalization(self, utts: Sequence[np.ndarray]) -> None:
        """Per-dimension mean and standard deviation over all frames (streamed, no big copy)."""
        n, total, sq = 0, np.zeros(self.input_dim), np.zeros(self.input_dim)
        for u in utts:
            u = np.asarray(u, dtype=np.float64)
            n += len(u)
            total += u.sum(0)
            sq += (u * u).sum(0)
        mean = total / max(n, 1)
        std = np.sqrt(np.maximum(sq / max(n, 1) - mean * mean, 0.0))
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-5))

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return (lengths - 1) // self.cfg.subsample + 1

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert x.ndim == 3 and x.shape[2] == self.input_dim, f"expected (B, T, {self.input_dim}), got {tuple(x.shape)}"
        pad = torch.arange(x.shape[1], device=x.device)[None] >= lengths[:, None]  # True at padding
        x = ((x - self.mean) / self.std).masked_fill(pad[..., None], 0.0)
        x = self.proj(self.input_dropout(x).transpose(1, 2))  # (B, H, T')
        out_len = self.output_lengths(lengths)
        pad = torch.arange(x.shape[2], device=x.device)[None] >= out_len[:, None]
        x = F.gelu(x)
        for block in self.blocks:
            x = x + block(x.masked_fill(pad[:, None], 0.0))
        x = x.transpose(1, 2)  # (B, T', H)
        if self.lstm is not None:
            packed = nn.utils.rnn.pack_padded_sequence(x, out_len.cpu(), batch_first=True, enforce_sorted=False)
            y, _ = self.lstm(packed)
            x, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        return self.out(self.norm(x)), out_len


def _pad(utts: Sequence[np.ndarray], device) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(u) for u in utts], dtype=torch.long)
    x = torch.zeros(len(utts), int(lengths.max()), utts[0].shape[1])
    for i, u in enumerate(utts):
        x[i, : len(u)] = torch.as_tensor(np.asarray(u, dtype=np.float32))
    return x.to(device), lengths.to(device)


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
            x, lengths = _pad([u for u, _ in batch], cfg.device)
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


@torch.no_grad()
def ctc_logits(model: CtcModel, feats: np.ndarray, with_blank_offset: bool = False) -> np.ndarray:
    """Eval-mode logits (T', V) of one utterance (T, D); ``model.vocab`` indexes V.

    ``with_blank_offset``: subtract the model's tuned ``blank_offset`` from the blank column,
    ready for :func:`viterbi_decode` or the lexicon decoder.
    """
    feats = np.asarray(feats, dtype=np.float32)
    if feats.ndim != 2 or feats.shape[1] != model.input_dim:
        raise ValueError(f"features must be (T, {model.input_dim}), got {feats.shape}")
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    logits, _ = model(torch.from_numpy(feats).to(device)[None], torch.tensor([len(feats)], device=device))
    model.train(was)
    out = logits[0].float().cpu().numpy()
    if with_blank_offset and model.blank_offset:
        out[:, 0] -= model.blank_offset
    return out


def ctc_decode(model: CtcModel, utts: Sequence[np.ndarray], blank_offset: float = 0.0) -> list[list[str]]:
    """Greedy CTC decoding (argmax, join repeats, drop blank) of each utterance."""
    return [_greedy(ctc_logits(model, u), model.vocab, blank_offset) if len(u) else [] for u in utts]


def _greedy(logits: np.ndarray, vocab: Sequence[str], blank_offset: float) -> list[str]:
    if blank_offset:
        logits = logits.copy()
        logits[:, 0] -= blank_offset
    return viterbi_decode(logits, vocab).tokens


BLANK_OFFSETS = tuple(np.round(np.arange(0.0, 8.01, 0.25), 2))


def match_length_blank_offset(model: CtcModel, utts: Sequence[np.ndarray], target_tokens: int,
                              offsets: Sequence[float] = BLANK_OFFSETS) -> tuple[float, list[dict]]:
    """The blank offset whose greedy decode of ``utts`` has closest to ``target_tokens`` phones.

    Label-free: the target is the number of phones in the pseudo-labels the model was trained
    on. Ties go to the smaller offset. Returns the offset and the (offset, tokens) table.
    """
    return blank_offset_for_length([ctc_logits(model, u) for u in utts if len(u)], model.vocab, target_tokens,
                                   offsets)


def blank_offset_for_length(logits: Sequence[np.ndarray], vocab: Sequence[str], target_tokens: int,
                            offsets: Sequence[float] = BLANK_OFFSETS) -> tuple[float, list[dict]]:
    """:func:`match_length_blank_offset` on precomputed logits ((T, V) arrays, blank at 0)."""
    table = []
    for off in offsets:
        n = sum(len(_greedy(x, vocab, float(off))) for x in logits)
        table.append({"blank_offset": float(off), "tokens": n})
        if n >= target_tokens:  # decoded length only grows with the offset
            break
    best = min(table, key=lambda r: (abs(r["tokens"] - target_tokens), r["blank_offset"]))
    return best["blank_offset"], table


def save_ctc_model(path: str | Path, model: CtcModel, extra: dict | None = None) -> Path:
    state = {"format": FORMAT, "input_dim": model.input_dim, "vocab": model.vocab,
             "model_config": to_dict(model.cfg), "state_dict": model.state_dict(),
             "blank_offset": float(model.blank_offset), **(extra or {})}
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_ctc_model(path: str | Path, device: str = "cpu") -> CtcModel:
    state = load_tagged_state(path, FORMAT, "CTC model", device)
    model = CtcModel(int(state["input_dim"]), state["vocab"], from_dict(CtcModelConfig, state["model_config"]))
    model.load_state_dict(state["state_dict"])
    model.blank_offset = float(state.get("blank_offset", 0.0))
    return model.to(device).eval()


def is_ctc_checkpoint(path: str | Path) -> bool:
    try:
        load_tagged_state(path, FORMAT, "CTC model")
    except (FileNotFoundError, ValueError):
        return False
    return True


@dataclass
class SelfTrainResult:
    model: CtcModel
    history: list[dict]                       # one row per iteration (see self_train)
    train_hyps: list[list[str]]               # last model's decode of the training set
    valid_hyps: list[list[str]] | None = None
    models: list[CtcModel] = field(default_factory=list, repr=False)


def _lm_metric(hyps: Sequence[Sequence[str]], phone_lm: Any, vocab: Sequence[str]) -> dict:
    from wav2vec_u.train.selection import lm_score  # the GAN's selection metric, same definition

    s = lm_score(hyps, phone_lm, vocab)
    return {"weighted_lm_ppl": s.weighted_ppl, "lm_ppl": s.ppl, "vocab_usage": s.vocab_usage}


def run_iterations(pseudo_labels: Sequence[Sequence[str]], phones: Sequence[str], iterations: int,
                   fit: Callable[[list[list[str]], int], tuple[Any, dict]], logits_of: Callable[[Any, Any], np.ndarray],
                   train_inputs: Sequence[Any], *, blank_offset: float | None = None,
                   valid_inputs: Sequence[Any] | None = None, train_refs: Sequence[Sequence[str]] | None = None,
                   valid_refs: Sequence[Sequence[str]] | None = None, phone_lm: Any = None, on_row=None,
                   on_model=None, what: str = "self-train") -> SelfTrainResult:
    """The self-training loop shared by every CTC model kind.

    Per iteration: ``fit(labels, iteration) -> (model, extra row fields)`` trains a model on the
    current labels; the blank offset is ``blank_offset`` or, when None, the one whose greedy
    decode of the training inputs is as long as the labels (label-free); the training and
    validation inputs are decoded with ``logits_of(model, input)`` ((T, V) logits, blank at 0),
    the row is filled (see :func:`self_train`), and the training decode becomes the next labels.
    ``on_model(iteration, model, row)`` and ``on_row(row)`` are called after each iteration.
    """
    labels = [list(x) for x in pseudo_labels]
    vocab = [p for p in phones if p not in SPECIAL_TOKENS]
    history: list[dict] = []
    model, train_hyps, valid_hyps = None, labels, None

    def decode_all(inputs, offset):
        return [_greedy(logits_of(model, x), model.vocab, offset) if len(x) else [] for x in inputs]

    for it in range(1, iterations + 1):
        t0 = time.time()
        row: dict[str, Any] = {"iteration": it}
        if train_refs is not None:
            row["pseudo_label_per"] = error_rate(train_refs, labels).rate
        model = None  # free the last model before training the next (big encoders)
        model, extra = fit(labels, it)
        row.update(extra)
        offset = blank_offset
        if offset is None:
            logits = [logits_of(model, x) for x in train_inputs if len(x)]
            offset, _ = blank_offset_for_length(logits, model.vocab, sum(len(x) for x in labels))
        row["blank_offset"] = offset
        model.blank_offset = offset  # kept with the model: decoding other audio uses it too
        train_hyps = decode_all(train_inputs, offset)
        if train_refs is not None:
            row["train_per"] = error_rate(train_refs, train_hyps).rate
        if valid_inputs is not None:
            valid_hyps = decode_all(valid_inputs, offset)
            if valid_refs is not None:
                row["valid_per"] = error_rate(valid_refs, valid_hyps).rate
        if phone_lm is not None:
            row.update(_lm_metric(valid_hyps if valid_hyps is not None else train_hyps, phone_lm, vocab))
        row["seconds"] = round(time.time() - t0, 1)
        history.append(row)
        log.info("%s %s", what, row)
        if on_model is not None:
            on_model(it, model, row)
        if on_row is not None:
            on_row(row)
        labels = train_hyps
    return SelfTrainResult(model=model, history=history, train_hyps=train_hyps, valid_hyps=valid_hyps)


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
                            valid_refs=valid_refs, phone_lm=phone_lm, on_row=on_row)
    result.models = models
    return result
