"""Unsupervised model selection: the phone-LM metric per checkpoint and the cross-run choice.

Per checkpoint (the reference's ``weighted_lm_ppl``): Viterbi-decode the validation audio,
score the outputs with the phone LM, and divide the LM perplexity by the square of the
fraction of the phone vocabulary the outputs use (a model that outputs a few frequent phones
gets a low perplexity but a small vocabulary usage). Lower is better::

    score = lm_score(hyps, lm, vocab=[p for p in phones if p != "<SIL>"])
    score.weighted_ppl

Across runs (paper Eqs. 5-6): :func:`select_runs`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

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


def load_lm(path: str | Path):
    """A KenLM model (binary or ARPA); without the ``kenlm`` module, the ARPA file read in Python.

    ``w2vu prepare-text`` writes ``lm.phones.4.arpa`` next to ``lm.phones.4.bin``, so a machine
    that cannot install kenlm (a fixed GPU image, say) still gets the label-free metric.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing phone LM {path} (run `w2vu prepare-text` first)")
    try:
        import kenlm  # noqa: PLC0415 - heavy import only when scoring
    except ImportError:
        from wav2vec_u.text.arpa import ArpaModel  # noqa: PLC0415

        arpa = path if path.suffix != ".bin" else path.with_suffix(".arpa")
        if not arpa.is_file():
            raise FileNotFoundError(f"the kenlm module is not installed and there is no ARPA file {arpa} to read "
                                    f"instead of {path}: `pip install kenlm`, or rerun `w2vu prepare-text`") from None
        log.warning("kenlm is not installed: scoring with the pure-Python ARPA reader (%s), slower", arpa)
        return ArpaModel(arpa)
    return kenlm.Model(str(path))


def find_phone_lm(text_dir: str | Path) -> Path | None:
    for name in ("lm.phones.4.bin", "lm.phones.4.arpa"):
        p = Path(text_dir) / name
        if p.is_file():
            return p
    return None


def lm_score(hyps: Sequence[Sequence[str]], lm, vocab: Sequence[str]) -> LmScore:
    """Score decoded phone sequences (silence already dropped) with ``lm`` (``.score(str, bos, eos)``).

    ``vocab``: the phones the outputs could use (the dictionary minus ``<SIL>``), for U.
    """
    vocab_set = set(vocab)
    seen = set()
    total, n_tok = 0.0, 0
    for h in hyps:
        seen.update(p for p in h if p in vocab_set)
        n_tok += len(h)
        total += lm.score(" ".join(h), bos=True, eos=True)
    n = n_tok + len(hyps)
    usage = len(seen) / max(len(vocab_set), 1)
    ppl = 10 ** (-total / n) if n else math.inf
    weighted = ppl / usage**2 if usage > 0 and n_tok > 0 else math.inf
    nll = -total * math.log(10) / n if n else math.inf
    return LmScore(total, n_tok, len(hyps), usage, ppl, weighted, nll)


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
