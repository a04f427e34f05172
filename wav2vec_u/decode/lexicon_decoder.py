"""Phones to words: lexicon-constrained beam search over phone posteriors, scored by a word KenLM.

The generator emits one phone distribution per segment. A word hypothesis is a path through
those positions that, after joining repeats and dropping ``<SIL>`` (exactly the Viterbi
rules), spells a sequence of lexicon words. The search keeps the best ``beam`` partial paths
per position; a path's score is

    sum of phone log-posteriors along the path
    + lm_weight * ln P_word-LM(words)          (KenLM log10 converted to natural log)
    + word_score * number of words              (word insertion bonus; negative = penalty)
    + sil_score * number of silence runs

Usage::

    from wav2vec_u.decode.lexicon_decoder import DecoderConfig, LexiconDecoder
    from wav2vec_u.text.lexicon import read_pronunciations
    lexicon = read_pronunciations("text/lexicon.lst")
    dec = LexiconDecoder(phones, lexicon, "text/lm.words.4.bin", DecoderConfig(lm_weight=2.0))
    out = dec.decode(logits)              # (T, V) logits or log-probs of one utterance
    out.words, out.phones, out.word_segments

This is our own pure-Python search over a prefix tree of pronunciations (the reference
decodes with a Kaldi WFST built by PyKaldi, which users could not build; fairseq #3702,
#4390). Only ``kenlm`` (already a dependency) is needed. Rules of the search:

- a phone is a new token when it differs from the previous position's token, or follows
  ``<SIL>``; a repeat continues the same token (so, as in Viterbi decoding, two identical
  phones in a row need a ``<SIL>`` between them);
- ``<SIL>`` may appear anywhere (between words or as a pause inside one) and never emits;
- a word ends when the tree node reached holds a pronunciation; the word LM is applied then,
  and pruning uses the best unigram score of the words still reachable below a node
  ("smearing") so that half-spelled words compete fairly with finished ones;
- at the end only paths that finished their last word count, and ``</s>`` is scored.

Weights are tuned by :func:`tune` with a labelled dev set when one exists, or without labels
by :func:`unsupervised_score` (see its docstring: the reference's decoding-selection metric).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from wav2vec_u.config import at_least, non_negative
from wav2vec_u.metrics import error_rate
from wav2vec_u.tokens import SIL, SPECIAL_TOKENS
from wav2vec_u.decode.viterbi import Segment, log_softmax
from wav2vec_u.text.lm import NgramLM, load_lm

log = logging.getLogger(__name__)

LN10 = math.log(10.0)


@dataclass
class DecoderConfig:
    beam: int = at_least(1, default=50)  # partial paths kept per position
    token_beam: int = at_least(1, default=8)  # new phones tried per position: the k most likely there...
    # ...and only those within this many nats of the position's best
    token_threshold: float = non_negative(default=10.0)
    beam_threshold: float = non_negative(default=25.0)  # drop paths this far (nats) below the best one
    lm_weight: float = 2.0         # multiplies ln P_LM(words); tuned by `tune`
    word_score: float = -1.0       # added per word (negative = insertion penalty); tuned by `tune`
    sil_score: float = 0.0         # added per <SIL> run
    silence: str = SIL             # the silence token of the phone inventory
    # the search: flashlight-text's C++ beam search when installed (auto), else ours in Python;
    # both score words with the same LM (decode/flashlight_decoder.py, scripts/bench_decode.py)
    backend: Literal["auto", "python", "flashlight"] = "auto"


@dataclass
class WordDecoded:
    words: list[str]
    phones: list[str]                      # the path's phones (pronunciations of `words`)
    word_segments: list[Segment] = field(default_factory=list)
    phone_segments: list[Segment] = field(default_factory=list)
    score: float = 0.0                     # total path score (see module doc)
    am_score: float = 0.0                  # its acoustic part (sum of log-posteriors)
    complete: bool = True                  # False: no path finished a word; best partial returned


def load_word_lm(path: str | Path) -> NgramLM:
    """The word LM (``lm.words.4.bin``/``.arpa``) the decoder scores words with."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"word LM not found: {path} (prepare-text writes lm.words.4.bin/.arpa)")
    return load_lm(path)


class _Trie:
    """Prefix tree over phone ids. Node 0 is the root."""

    def __init__(self):
        self.children: list[dict[int, int]] = [{}]
        self.words: list[list[int]] = [[]]

    def insert(self, ids: Sequence[int], word: int) -> None:
        node = 0
        for i in ids:
            nxt = self.children[node].get(i)
            if nxt is None:
                nxt = len(self.children)
                self.children[node][i] = nxt
                self.children.append({})
                self.words.append([])
            node = nxt
        if word not in self.words[node]:
            self.words[node].append(word)


class LexiconDecoder:
    """Beam search of lexicon words over ``(T, V)`` phone scores; ``V == len(phones)``."""

    backend = "python"

    def __init__(self, phones: Sequence[str], lexicon: dict[str, list[tuple[str, ...]]],
                 lm: NgramLM | str | Path | None, cfg: DecoderConfig | None = None):
        self.cfg = cfg or DecoderConfig()
        self.phones = list(phones)
        if self.cfg.silence not in self.phones:
            raise ValueError(f"the phone inventory has no silence token {self.cfg.silence!r}")
        self.sil = self.phones.index(self.cfg.silence)
        # other special symbols (e.g. <pad>) can never be emitted by a word path
        self.special = [i for i, p in enumerate(self.phones) if p in SPECIAL_TOKENS and i != self.sil]
        self.lm = load_word_lm(lm) if isinstance(lm, (str, Path)) else lm
        index = {p: i for i, p in enumerate(self.phones)}
        self.words: list[str] = []
        self.prons: list[tuple[str, ...]] = []
        self.trie = _Trie()
        skipped = []
        for word, prons in lexicon.items():
            for pron in prons:
                if any(p not in index for p in pron):
                    skipped.append(word)
                    continue
                self.trie.insert([index[p] for p in pron], len(self.words))
                self.words.append(word)
                self.prons.append(pron)
        if skipped:
            log.warning("%d lexicon entries use phones outside the model's inventory and are skipped "
                        "(first: %s)", len(skipped), skipped[0])
        if not self.words:
            raise ValueError("no lexicon entry can be spelled with the model's phones")
        self._smear = self._build_smear()

    def _word_bonus(self, w: int) -> float:
        lm = self.cfg.lm_weight * LN10 * self.lm.advance(self.lm.null_state(), self.words[w])[0] if self.lm is not None else 0.0
        return lm + self.cfg.word_score

    def _build_smear(self) -> list[float]:
        """Best word bonus reachable below each node (0 at the root), for pruning only."""
        smear = [-math.inf] * len(self.trie.children)
        bonus = {}
        order = [0]
        for node in order:  # breadth first: parents before children
            order.extend(self.trie.children[node].values())
        for node in reversed(order):
            best = max((bonus.setdefault(w, self._word_bonus(w)) for w in self.trie.words[node]), default=-math.inf)
            for child in self.trie.children[node].values():
                best = max(best, smear[child])
            smear[node] = best
        smear[0] = 0.0
        return smear

    def set_weights(self, lm_weight: float, word_score: float) -> None:
        self.cfg.lm_weight, self.cfg.word_score = lm_weight, word_score
        self._smear = self._build_smear()

    def log_probs(self, logits: np.ndarray, never: float = -math.inf) -> np.ndarray:
        """``(T, V)`` log-posteriors of ``logits``, checked; the special symbols other than silence
        (which no word path emits) set to ``never``."""
        logits = np.asarray(logits)
        if logits.ndim != 2 or logits.shape[1] != len(self.phones):
            raise ValueError(f"logits must be (T, V={len(self.phones)}), got {logits.shape}")
        lp = log_softmax(logits)
        if self.special:
            lp[:, self.special] = never
        return lp

    def decode(self, logits: np.ndarray, *, spans: Sequence[tuple[int, int]] | np.ndarray | None = None,
               frame_rate: float | None = None) -> WordDecoded:
        lp = self.log_probs(logits)
        T = len(lp)
        cfg, sil, trie, smear = self.cfg, self.sil, self.trie, self._smear
        lm = self.lm
        start_state = lm.begin_state() if lm is not None else None
        k = min(cfg.token_beam, lp.shape[1])
        top = np.argpartition(-lp, k - 1, axis=1)[:, :k] if T else np.zeros((0, k), dtype=int)
        # hypothesis: key (node, prev token, lm state) -> [score, am, word_start, history]
        # history: linked tuples (parent, kind, value, t); kind "p" phone run, "s" silence run,
        # "w" word finished (value = word id, t = its first position)
        hyps = {(0, sil, start_state): [0.0, 0.0, 0, None]}
        for t in range(T):
            row = lp[t]
            new: dict = {}

            def push(key, score, am, wstart, hist):
                old = new.get(key)
                if old is None or score > old[0]:
                    new[key] = [score, am, wstart, hist]

            floor = max(row.max() - cfg.token_threshold, -math.inf)
            cand = [q for q in top[t].tolist() if q != sil and row[q] > floor]
            for (node, prev, state), (score, am, wstart, hist) in hyps.items():
                # silence: a pause, never part of a word's spelling
                s = row[sil]
                if prev == sil:
                    push((node, sil, state), score + s, am + s, wstart, hist)
                else:
                    push((node, sil, state), score + s + cfg.sil_score, am + s, wstart, (hist, "s", sil, t))
                    # repeat: the same token continues
                    s = row[prev]
                    push((node, prev, state), score + s, am + s, wstart, hist)
                children = trie.children[node]
                for q in cand:
                    if q == prev:
                        continue
                    child = children.get(q)
                    if child is None:
                        continue
                    s = row[q]
                    ws = t if node == 0 else wstart
                    h = (hist, "p", q, t)
                    if trie.children[child]:
                        push((child, q, state), score + s, am + s, ws, h)
                    for w in trie.words[child]:
                        if lm is not None:
                            lms, nstate = lm.advance(state, self.words[w])
                            lms *= LN10
                        else:
                            lms, nstate = 0.0, None
                        push((0, q, nstate), score + s + cfg.lm_weight * lms + cfg.word_score, am + s, t,
                             (h, "w", w, ws))
            if not new:
                break
            # prune by score + smeared look-ahead of the partial word
            ranked = sorted(new.items(), key=lambda kv: kv[1][0] + smear[kv[0][0]], reverse=True)
            best = ranked[0][1][0] + smear[ranked[0][0][0]]
            hyps = {key: v for key, v in ranked[:cfg.beam] if v[0] + smear[key[0]] >= best - cfg.beam_threshold}

        finals = []
        for (node, prev, state), (score, am, _, hist) in hyps.items():
            if node == 0:
                end = cfg.lm_weight * LN10 * lm.advance(state, "</s>")[0] if lm is not None else 0.0
                finals.append((score + end, am, hist))
        complete = bool(finals)
        if not finals:  # nothing finished a word: keep the best path, drop its partial word
            finals = [(v[0], v[1], v[3]) for v in hyps.values()]
        score, am, hist = max(finals, key=lambda x: x[0]) if finals else (0.0, 0.0, None)
        return self._backtrace(hist, T, score, am, complete, spans, frame_rate)

    def _backtrace(self, hist, T, score, am, complete, spans, frame_rate) -> WordDecoded:
        events = []
        while hist is not None:
            hist, kind, value, t = hist
            events.append((kind, value, t))
        events.reverse()
        run_starts = [t for kind, _, t in events if kind in "ps"] + [T]

        if spans is not None:
            spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)

        def time(pos: int, end: bool) -> float:
            if spans is None:
                return float(pos)
            row = spans[min(pos if not end else pos - 1, len(spans) - 1)]
            frame = int(row[1] if end else row[0])
            return frame / frame_rate if frame_rate else float(frame)

        phones, phone_segments, words, word_segments = [], [], [], []
        run = 0  # index into run_starts of the current p/s event
        last_end = 0
        n_done = 0  # phones belonging to finished words
        for kind, value, t in events:
            if kind in "ps":
                end = run_starts[run + 1]
                run += 1
                last_end = end
                if kind == "p":
                    phones.append(self.phones[value])
                    phone_segments.append(Segment(self.phones[value], time(t, False), time(end, True)))
            else:  # word finished at the run just closed; it started at position t
                words.append(self.words[value])
                word_segments.append(Segment(self.words[value], time(t, False), time(last_end, True)))
                n_done = len(phones)
        if not complete:  # phones of an unfinished word are not output
            phones, phone_segments = phones[:n_done], phone_segments[:n_done]
        return WordDecoded(words=words, phones=phones, word_segments=word_segments,
                           phone_segments=phone_segments, score=float(score), am_score=float(am),
                           complete=complete)


# ---------------------------------------------------------------------------------------------
# Many utterances, across processes

_JOB: tuple | None = None  # (decoder, logits, spans, frame_rate) inherited by forked workers


def _decode_range(bounds: tuple[int, int]) -> list[WordDecoded]:
    decoder, logits, spans, frame_rate = _JOB
    return [decoder.decode(logits[i], spans=None if spans is None else spans[i], frame_rate=frame_rate)
            for i in range(*bounds)]


def decode_all(decoder: LexiconDecoder, logits: Sequence[np.ndarray], spans: Sequence | None = None,
               frame_rate: float | None = None, workers: int = 1) -> list[WordDecoded]:
    """Every utterance's words, in order, decoded by ``workers`` processes (0 = one per CPU core).

    Workers are forked, so they share the decoder, the LM and the posteriors without copying or
    pickling them (flashlight's objects cannot be pickled); where fork does not exist the
    utterances are decoded here, one after another. Each utterance is decoded alone, so the
    result is the same for any number of workers."""
    global _JOB
    import multiprocessing as mp
    import os

    n = len(logits)
    workers = (os.cpu_count() or 1) if workers == 0 else workers
    workers = min(workers, n)
    if workers <= 1 or "fork" not in mp.get_all_start_methods():
        _JOB = (decoder, logits, spans, frame_rate)
        try:
            return _decode_range((0, n))
        finally:
            _JOB = None
    step = max(1, math.ceil(n / (workers * 4)))  # a few chunks per worker evens out long utterances
    chunks = [(i, min(i + step, n)) for i in range(0, n, step)]
    _JOB = (decoder, logits, spans, frame_rate)
    try:
        with mp.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_decode_range, chunks)
    finally:
        _JOB = None
    return [d for part in parts for d in part]


# ---------------------------------------------------------------------------------------------
# Tuning LM weight and word score


def lm_perplexity(lm: NgramLM, sentences: Sequence[Sequence[str]]) -> float:
    """Word-LM perplexity of decoded sentences, one ``</s>`` counted per sentence."""
    total = sum(lm.score(s) for s in sentences)
    count = sum(len(s) + 1 for s in sentences)
    return 10 ** (-total / count) if count else math.inf


def unsupervised_score(decoded: Sequence[WordDecoded], viterbi_phones: Sequence[Sequence[str]],
                       lm: NgramLM, min_viterbi_per: float = 0.0) -> dict:
    """Label-free score of a decoding run; lower is better.

    ``ln(word-LM perplexity of the word output) * max(PER of the output's phones against the
    GAN's own Viterbi phones, min_viterbi_per)``. This is the criterion the reference uses to
    pick LM weight and word score after WFST decoding (its kaldi_self_train ``unsup_select``
    step): the LM term rewards fluent output, the Viterbi term keeps it near what the acoustic
    model heard, and their product has no scale to tune. A zero Viterbi PER makes the score 0;
    ``min_viterbi_per`` floors it so perplexity still separates such runs.
    """
    words = [d.words for d in decoded]
    ppl = lm_perplexity(lm, words)
    vt = error_rate([list(v) for v in viterbi_phones], [d.phones for d in decoded]).rate
    return {"score": math.log(ppl) * max(vt, min_viterbi_per), "lm_ppl": ppl, "viterbi_per": vt}


@dataclass
class TuneResult:
    lm_weight: float
    word_score: float
    criterion: str
    table: list[dict]   # one row per grid point: weights, unsupervised score, WER/PER if refs


def tune(decoder: LexiconDecoder, logits: Sequence[np.ndarray], viterbi_phones: Sequence[Sequence[str]],
         lm_weights: Sequence[float], word_scores: Sequence[float], *,
         ref_words: Sequence[Sequence[str]] | None = None, ref_phones: Sequence[Sequence[str]] | None = None,
         criterion: str = "unsupervised", min_viterbi_per: float = 0.0, workers: int = 1) -> TuneResult:
    """Grid search of (lm_weight, word_score); sets the best pair on ``decoder`` and returns it.

    ``criterion``: ``"unsupervised"`` (no labels; :func:`unsupervised_score`) or ``"wer"``
    (needs ``ref_words``: a labelled dev set). WER/PER are reported in the table whenever
    references are given, so a user can see how well the label-free choice did.
    """
    if criterion not in ("unsupervised", "wer"):
        raise ValueError(f"criterion must be 'unsupervised' or 'wer', got {criterion!r}")
    if criterion == "wer" and ref_words is None:
        raise ValueError("criterion 'wer' needs reference words (a labelled dev set)")
    if decoder.lm is None:
        raise ValueError("tuning needs a word LM")
    table = []
    for lw in lm_weights:
        for ws in word_scores:
            decoder.set_weights(lw, ws)
            out = decode_all(decoder, logits, workers=workers)
            row = {"lm_weight": lw, "word_score": ws}
            row.update({f"unsup_{k}" if k != "score" else "unsup_score": v
                        for k, v in unsupervised_score(out, viterbi_phones, decoder.lm, min_viterbi_per).items()})
            if ref_words is not None:
                row["wer"] = error_rate([list(r) for r in ref_words], [d.words for d in out]).rate
            if ref_phones is not None:
                row["per"] = error_rate([list(r) for r in ref_phones], [d.phones for d in out]).rate
            table.append(row)
            log.info("tune %s", row)
    key = "unsup_score" if criterion == "unsupervised" else "wer"
    best = min(table, key=lambda r: (r[key], -r["lm_weight"]))
    decoder.set_weights(best["lm_weight"], best["word_score"])
    return TuneResult(best["lm_weight"], best["word_score"], criterion, table)
