"""The self-training loop every CTC model kind shares: fit on labels, decode, relabel, repeat.

    result = run_iterations(labels, phones, iterations, fit, logits_of, train_inputs, phone_lm=lm)
    result.history      # one row per iteration: pseudo-label PER, decoded PER, label-free metric

The blank offset of each model is chosen without labels: the one whose greedy decode of the
training inputs is as long as the labels it was trained on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from wav2vec_u.metrics import error_rate
from wav2vec_u.models.ctc import CtcModel, greedy_ctc, ctc_logits
from wav2vec_u.train.selection import label_free_metrics

log = logging.getLogger(__name__)

# blank offsets tried when matching the decoded length to the labels' (label-free)
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
        n = sum(len(greedy_ctc(x, vocab, float(off))) for x in logits)
        table.append({"blank_offset": float(off), "tokens": n})
        if n >= target_tokens:  # decoded length only grows with the offset
            break
    best = min(table, key=lambda r: (abs(r["tokens"] - target_tokens), r["blank_offset"]))
    return best["blank_offset"], table


@dataclass
class SelfTrainResult:
    model: CtcModel
    history: list[dict]                       # one row per iteration (see self_train)
    train_hyps: list[list[str]]               # last model's decode of the training set
    valid_hyps: list[list[str]] | None = None
    models: list[CtcModel] = field(default_factory=list, repr=False)


def run_iterations(pseudo_labels: Sequence[Sequence[str]], phones: Sequence[str], iterations: int,
                   fit: Callable[[list[list[str]], int], tuple[Any, dict]], logits_of: Callable[[Any, Any], np.ndarray],
                   train_inputs: Sequence[Any], *, blank_offset: float | None = None,
                   valid_inputs: Sequence[Any] | None = None, train_refs: Sequence[Sequence[str]] | None = None,
                   valid_refs: Sequence[Sequence[str]] | None = None, phone_lm: Any = None, on_row=None,
                   on_model=None, what: str = "self-train", stop_when_worse: bool = False) -> SelfTrainResult:
    """The self-training loop shared by every CTC model kind.

    Per iteration: ``fit(labels, iteration) -> (model, extra row fields)`` trains a model on the
    current labels; the blank offset is ``blank_offset`` or, when None, the one whose greedy
    decode of the training inputs is as long as the labels (label-free); the training and
    validation inputs are decoded with ``logits_of(model, input)`` ((T, V) logits, blank at 0),
    the row is filled (see :func:`self_train`), and the training decode becomes the next labels.
    ``on_model(iteration, model, row)`` and ``on_row(row)`` are called after each iteration.
    ``stop_when_worse`` (needs ``phone_lm``): stop at the first iteration whose label-free metric
    (``weighted_lm_ppl``) is worse than the best so far, and return the best iteration's model and
    decodes (the history keeps every row, the rejected one included, marked ``kept: false``).
    """
    labels = [list(x) for x in pseudo_labels]
    history: list[dict] = []
    model, train_hyps, valid_hyps = None, labels, None
    best: tuple[float, Any, Any, Any] | None = None   # (metric, model, train decode, valid decode)

    def decode_all(inputs, offset):
        return [greedy_ctc(logits_of(model, x), model.vocab, offset) if len(x) else [] for x in inputs]

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
            row.update(label_free_metrics(valid_hyps if valid_hyps is not None else train_hyps, phone_lm, phones))
        row["seconds"] = round(time.time() - t0, 1)
        worse = stop_when_worse and best is not None and not row.get("weighted_lm_ppl", float("inf")) < best[0]
        row["kept"] = not worse
        history.append(row)
        log.info("%s %s", what, row)
        if on_model is not None:
            on_model(it, model, row)
        if on_row is not None:
            on_row(row)
        if worse:
            log.info("%s: iteration %d does not improve the label-free metric (weighted_lm_ppl %.4g >= %.4g): "
                     "stopping, keeping iteration %d", what, it, row.get("weighted_lm_ppl"), best[0], it - 1)
            _, model, train_hyps, valid_hyps = best
            break
        if stop_when_worse:
            best = (row.get("weighted_lm_ppl", float("inf")), model, train_hyps, valid_hyps)
        labels = train_hyps
    return SelfTrainResult(model=model, history=history, train_hyps=train_hyps, valid_hyps=valid_hyps)


