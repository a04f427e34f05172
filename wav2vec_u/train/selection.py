"""Unsupervised model selection: the one label-free metric, per checkpoint and across runs.

Per checkpoint (the reference's ``weighted_lm_ppl``): Viterbi-decode the validation audio,
score the outputs with the phone LM, and divide the LM perplexity by the square of the
fraction of the phone vocabulary the outputs use (a model that outputs a few frequent phones
gets a low perplexity but a small vocabulary usage). Lower is better::

    metrics = label_free_metrics(hyps, load_phone_lm("text/"), phones)
    metrics["weighted_lm_ppl"], metrics["vocab_usage"], metrics["lm_nll"]

Every caller (the trainer's validation, ``w2vu select``, decoding, self-training, the demo)
uses :func:`label_free_metrics`, so the metric has one definition and one set of names.
Across runs (paper Eqs. 5-6): :func:`select_runs`, and :func:`select_checkpoints` for files.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from wav2vec_u.text.lm import NgramLM, find_phone_lm, load_lm, load_phone_lm  # noqa: F401 - re-exported
from wav2vec_u.tokens import drop_special, scored_vocab
from wav2vec_u.metrics import error_rate

log = logging.getLogger(__name__)


@dataclass
class LmScore:
    log10_prob: float  # sum over sentences of the LM's log10 p(sentence) (with <s>, </s>)
    num_tokens: int  # predicted phones
    num_sentences: int
    vocab_usage: float  # U: fraction of the vocabulary seen in the outputs
    ppl: float  # 10 ** (-log10_prob / (num_tokens + num_sentences))
    weighted_ppl: float  # ppl / U**2 (lower is better); inf when nothing was predicted
    nll: float  # natural-log NLL per token: -ln p / (num_tokens + num_sentences), for Eqs. 5-6

    def to_dict(self) -> dict:
        return asdict(self)


def lm_score(hyps: Sequence[Sequence[str]], lm, vocab: Sequence[str]) -> LmScore:
    """Score decoded phone sequences (silence already dropped) with ``lm`` (:class:`NgramLM`).

    ``vocab``: the phones the outputs could use (the dictionary minus ``<SIL>``), for U.
    """
    vocab_set = set(vocab)
    seen = set()
    total, n_tok = 0.0, 0
    for h in hyps:
        seen.update(p for p in h if p in vocab_set)
        n_tok += len(h)
        total += lm.score(h, bos=True, eos=True)
    n = n_tok + len(hyps)
    usage = len(seen) / max(len(vocab_set), 1)
    ppl = 10 ** (-total / n) if n else math.inf
    weighted = ppl / usage**2 if usage > 0 and n_tok > 0 else math.inf
    nll = -total * math.log(10) / n if n else math.inf
    return LmScore(total, n_tok, len(hyps), usage, ppl, weighted, nll)


def label_free_metrics(hyps: Sequence[Sequence[str]], lm: NgramLM, phones: Sequence[str]) -> dict[str, float]:
    """The label-free metric of decoded outputs, by name: what checkpoints and runs are chosen by.

    ``hyps``: decoded phone sequences (special tokens are dropped here); ``phones``: the model's
    output symbols (the vocabulary for U is those minus the special tokens).
    """
    s = lm_score([drop_special(h) for h in hyps], lm, scored_vocab(phones))
    return {"weighted_lm_ppl": s.weighted_ppl, "lm_ppl": s.ppl, "lm_nll": s.nll, "lm_log10_prob": s.log10_prob,
            "lm_log_prob": s.log10_prob * math.log(10), "vocab_usage": s.vocab_usage, "num_pred": s.num_tokens}


def vocab_usage(hyps: Sequence[Sequence[str]], phones: Sequence[str]) -> float:
    """U without an LM: the fraction of the scored vocabulary the outputs use."""
    vocab = set(scored_vocab(phones))
    return len({p for h in hyps for p in h if p in vocab}) / max(len(vocab), 1)


@dataclass
class RunScore:
    name: str
    nll: float  # per-token NLL of the run's outputs under the phone LM (natural log)
    vocab_usage: float  # U
    log_prob: float  # total LM log-probability (natural log) of the outputs


def select_runs(runs: Sequence[RunScore], tolerance: float = 1.2) -> tuple[RunScore, RunScore, list[RunScore]]:
    """Paper Eqs. 5-6: returns (chosen, anchor, kept).

    Anchor = the run with the lowest NLL − log U. Keep the runs with
    NLL < NLL_anchor + log(U / U_anchor) + log(tolerance) (a run may trade a higher NLL for
    a larger vocabulary usage, by at most the ratio of usages times 1.2); among those pick the
    one with the highest total LM log-probability.
    """
    usable = [r for r in runs if r.vocab_usage > 0 and math.isfinite(r.nll)]
    if not usable:
        raise ValueError("no run produced any output to score")
    anchor = min(usable, key=lambda r: r.nll - math.log(r.vocab_usage))
    bound = lambda r: anchor.nll + math.log(r.vocab_usage / anchor.vocab_usage) + math.log(tolerance)  # noqa: E731
    kept = [r for r in usable if r is anchor or r.nll < bound(r)]
    chosen = max(kept, key=lambda r: r.log_prob)
    return chosen, anchor, kept


def score_checkpoint(ckpt: str | Path, features: str | Path | None = None, text: str | Path | None = None,
                     split: str = "valid") -> dict[str, Any]:
    """Viterbi-decode ``split`` with a GAN checkpoint and score it without labels.

    Features and text folder default to those recorded in the checkpoint. PER is added when the
    split has references, under a name that says it is not used to choose.
    """
    from wav2vec_u.train.checkpoint import load_checkpoint, generator_from_state  # noqa: PLC0415
    from wav2vec_u.train.data import FeatureSet  # noqa: PLC0415

    ckpt = Path(ckpt)
    state = load_checkpoint(ckpt)
    lineage = state.get("lineage", {})
    features = Path(features) if features else (Path(lineage["features"]) if lineage.get("features") else None)
    text = Path(text) if text else (Path(lineage["text"]) if lineage.get("text") else None)
    if features is None or text is None:
        raise ValueError(f"{ckpt}: no features/text recorded in the checkpoint; pass --features and --text")
    lm = load_phone_lm(text)
    if lm is None:
        raise FileNotFoundError(f"no phone LM (lm.phones.4.bin/.arpa) in {text}")
    gen, phones, _ = generator_from_state(state)
    feats = FeatureSet.from_dir(features, split)
    hyps = [drop_special(phones[i] for i in row) for row in decode_ids(gen, feats)]
    out: dict[str, Any] = {"checkpoint": str(ckpt), **label_free_metrics(hyps, lm, phones)}
    if feats.refs is not None:
        out["per_not_used_for_selection"] = error_rate([drop_special(r) for r in feats.refs], hyps).rate
    return out


def select_checkpoints(checkpoints: Sequence[str | Path], features: str | Path | None = None,
                       text: str | Path | None = None, split: str = "valid", tolerance: float = 1.2) -> dict[str, Any]:
    """Score every checkpoint and choose one by paper Eqs. 5-6; the report ``w2vu select`` writes."""
    scores = [score_checkpoint(c, features, text, split) for c in checkpoints]
    if len(scores) == 1:  # nothing to compare: the rule needs no finite score to pick the only run
        only = scores[0]["checkpoint"]
        return {"runs": scores, "anchor": only, "kept": [only], "chosen": only, "rule": "single run",
                "tolerance": tolerance}
    runs = [RunScore(s["checkpoint"], s["lm_nll"], s["vocab_usage"], s["lm_log_prob"]) for s in scores]
    chosen, anchor, kept = select_runs(runs, tolerance)
    return {"runs": scores, "anchor": anchor.name, "kept": [k.name for k in kept], "chosen": chosen.name,
            "rule": "paper Eqs. 5-6: anchor = argmin NLL - log U; keep NLL < NLL_a + log(U/U_a) + log tol; "
                    "choose argmax LM log-prob", "tolerance": tolerance}


def selection_record(report: dict[str, Any]) -> dict[str, Any]:
    """What ``w2vu select --out`` writes and the demo reads: the report, plus the chosen checkpoint,
    its run folder and its label-free metrics at the top level."""
    chosen = next(s for s in report["runs"] if s["checkpoint"] == report["chosen"])
    metrics = {k: v for k, v in chosen.items() if k not in ("checkpoint", "per_not_used_for_selection")}
    return {"checkpoint": report["chosen"], "run": str(Path(report["chosen"]).parent), **report, **metrics}


def decode_ids(gan_generator, feats, batch_size: int = 256) -> list[list[int]]:
    """(``gan_generator``: a :class:`Generator`; ``feats``: a :class:`FeatureSet`.) Viterbi decoding of every utterance: eval-mode generator, join (mean), argmax per run."""
    import torch  # noqa: PLC0415 - the metric itself needs no torch

    from wav2vec_u.models.gan import generate  # noqa: PLC0415

    was = gan_generator.training
    gan_generator.eval()
    out: list[list[int]] = []
    with torch.no_grad():
        for s in range(0, len(feats), batch_size):
            idx = torch.arange(s, min(s + batch_size, len(feats)))
            x, mask = feats.batch(idx)
            g = generate(gan_generator, x, mask)
            ids = g.joined.argmax(-1).masked_fill(g.joined_mask, -1).cpu().tolist()
            out.extend([[i for i in row if i >= 0] for row in ids])
    gan_generator.train(was)
    return out
