"""The lexicon beam search of flashlight-text, scored by our word LM, behind our decoder's interface.

    from wav2vec_u.decode.flashlight_decoder import FlashlightLexiconDecoder, flashlight_available
    dec = FlashlightLexiconDecoder(phones, lexicon, lm, DecoderConfig(lm_weight=2.0))
    out = dec.decode(logits)        # a WordDecoded, exactly as LexiconDecoder.decode returns

flashlight-text (``pip install flashlight-text``) is the maintained C++ lexicon-constrained beam
search that fairseq and torchaudio decode with. Its PyPI wheels are built without KenLM, so the
word LM is handed to it as a Python ``LM`` (the :class:`wav2vec_u.text.lm.NgramLM` every other
part of the package uses: the same KenLM model, or the ARPA reader): both decoders score words
by the same model, in natural log, with the same ``lm_weight``, ``word_score`` and ``sil_score``.

The search space is the one of :class:`wav2vec_u.decode.lexicon_decoder.LexiconDecoder`: a
CTC search whose blank and silence are both ``<SIL>`` (a phone is new when it differs from the
previous position's or follows ``<SIL>``; ``<SIL>`` never emits and may fall inside a word).
Two differences are flashlight's own: a word closes on the first position of its last phone
and that phone cannot run on past it (the next position must be ``<SIL>`` or a new word's
phone; ours lets it repeat), and pruning adds the smeared unigram score to a partial word's
score. On one position per phone (joined GAN segments) both find the same words almost always
(``tests/test_flashlight_decoder.py``); speed and WER side by side: ``scripts/bench_decode.py``
(2.7x faster, 1 point more WER on the English demo's noisy-reference posteriors).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from wav2vec_u.decode.lexicon_decoder import LN10, DecoderConfig, LexiconDecoder, WordDecoded, load_word_lm
from wav2vec_u.text.lm import NgramLM

log = logging.getLogger(__name__)

# flashlight compares scores with additions: a finite floor instead of -inf keeps them numbers
NEVER = -1e10


def flashlight_available() -> bool:
    """True when ``flashlight-text``'s decoder imports here."""
    try:
        from flashlight.lib.text import decoder  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def _lm_bridge(fl, lm: NgramLM, words: list[str]):
    """Our word LM as a flashlight ``LM`` (natural-log scores).

    flashlight merges two hypotheses only when their LM states are the same object. Every LM
    context gets one object here (the first one reached), so hypotheses whose histories end
    in the same n-gram context merge, as they do in our search; without it the beam fills
    with copies of one hypothesis (49.6% instead of 48.0% WER on the English demo's noisy-reference
    posteriors, ``scripts/bench_decode.py``)."""

    class Bridge(fl.LM):
        def __init__(self):
            fl.LM.__init__(self)
            self.context: dict = {}   # flashlight LMState -> our LM state
            self.canonical: dict = {}  # our LM state -> its one flashlight LMState
            self.step: dict = {}      # (LMState, word) -> (next LMState, ln P(word | state))

        def start(self, start_with_nothing: bool):
            # one utterance at a time: the states of the previous one are dropped
            self.context, self.canonical, self.step = {}, {}, {}
            state = fl.LMState()
            ours = lm.null_state() if start_with_nothing else lm.begin_state()
            self.context[state], self.canonical[ours] = ours, state
            return state

        def score(self, state, word: int):
            hit = self.step.get((state, word))
            if hit is None:
                lp, ours = lm.advance(self.context[state], words[word])
                nxt = self.canonical.get(ours)
                if nxt is None:
                    nxt = self.canonical[ours] = state.child(word)
                    self.context[nxt] = ours
                hit = self.step[(state, word)] = (nxt, lp * LN10)
            return hit

        def finish(self, state):
            return self.score(state, eos)

    eos = len(words)  # the index past the last word stands for "</s>"
    words = [*words, "</s>"]
    return Bridge()


class FlashlightLexiconDecoder(LexiconDecoder):
    """:class:`LexiconDecoder`'s interface (``decode``, ``set_weights``, ``lm``, ``cfg``) on
    flashlight-text's search. The lexicon is read and checked by the parent class."""

    backend = "flashlight"

    def __init__(self, phones: Sequence[str], lexicon: dict[str, list[tuple[str, ...]]],
                 lm: NgramLM | str | Path | None, cfg: DecoderConfig | None = None):
        from flashlight.lib.text import decoder as fl  # noqa: PLC0415

        super().__init__(phones, lexicon, lm, cfg)
        if self.lm is None:
            raise ValueError("the flashlight decoder needs a word LM")
        self._fl = fl
        self.word_list = sorted(set(self.words))
        index = {w: i for i, w in enumerate(self.word_list)}
        self._entries: dict[int, list[int]] = {}  # flashlight word id -> our lexicon entries (pronunciations)
        for i, w in enumerate(self.words):
            self._entries.setdefault(index[w], []).append(i)
        phone_index = {p: i for i, p in enumerate(self.phones)}
        null = self.lm.null_state()
        self.fl_trie = fl.Trie(len(self.phones), self.sil)
        for w, pron in zip(self.words, self.prons):
            unigram = self.lm.advance(null, w)[0] * LN10
            self.fl_trie.insert([phone_index[p] for p in pron], index[w], unigram)
        self.fl_trie.smear(fl.SmearingMode.MAX)
        self._bridge = _lm_bridge(fl, self.lm, self.word_list)
        self._build()

    def _build(self) -> None:
        fl, cfg = self._fl, self.cfg
        opts = fl.LexiconDecoderOptions(beam_size=cfg.beam, beam_size_token=cfg.token_beam,
                                        beam_threshold=cfg.beam_threshold, lm_weight=cfg.lm_weight,
                                        word_score=cfg.word_score, unk_score=-math.inf, sil_score=cfg.sil_score,
                                        log_add=False, criterion_type=fl.CriterionType.CTC)
        self._decoder = fl.LexiconDecoder(opts, self.fl_trie, self._bridge, self.sil, self.sil, -1, [], False)

    def _build_smear(self) -> list[float]:  # the parent's pruning table is not used here
        return []

    def set_weights(self, lm_weight: float, word_score: float) -> None:
        self.cfg.lm_weight, self.cfg.word_score = lm_weight, word_score
        self._build()

    def decode(self, logits: np.ndarray, *, spans: Sequence[tuple[int, int]] | np.ndarray | None = None,
               frame_rate: float | None = None) -> WordDecoded:
        lp = np.ascontiguousarray(self.log_probs(logits, NEVER), dtype=np.float32)
        T = len(lp)
        if T == 0:
            return self._backtrace(None, 0, 0.0, 0.0, False, spans, frame_rate)
        results = self._decoder.decode(lp.ctypes.data, T, lp.shape[1])
        if not results:
            return self._backtrace(None, T, 0.0, 0.0, False, spans, frame_rate)
        best = max(results, key=lambda r: r.score)  # the final list is not sorted by score
        return self._path(best, lp, T, spans, frame_rate)

    def _path(self, best, lp: np.ndarray, T: int, spans, frame_rate) -> WordDecoded:
        """Our history events (phone runs, silence runs, finished words) from flashlight's
        per-position tokens and words, then the parent's backtrace (timestamps, phones)."""
        tokens, words = list(best.tokens), list(best.words)
        # flashlight's paths carry one leading state (before position 0) and one trailing
        # (the end-of-sentence step): keep the T positions
        off = len(tokens) - T - 1 if len(tokens) > T else 0
        tokens, words = tokens[off:off + T], words[off:off + T]
        events, prev, wstart, pending = [], self.sil, 0, False
        am = 0.0
        for t, (q, w) in enumerate(zip(tokens, words)):
            am += float(lp[t, q])
            if q != prev:
                if q == self.sil:
                    events.append(("s", q, t))
                else:
                    if not pending:
                        wstart = t
                    pending = True
                    events.append(("p", q, t))
            prev = q
            if w >= 0:
                events.append(("w", self._entry_for(w, events), wstart))
                pending = False
        hist = None
        for kind, value, t in events:
            hist = (hist, kind, value, t)
        return self._backtrace(hist, T, float(best.score), am, not pending, None if spans is None else spans,
                               frame_rate)

    def _entry_for(self, word_id: int, events: list) -> int:
        """Our lexicon entry of flashlight word ``word_id`` (the pronunciation the path spelled)."""
        candidates = self._entries[word_id]
        if len(candidates) == 1:
            return candidates[0]
        spelled = []
        for kind, value, _ in reversed(events):
            if kind == "w":
                break
            if kind == "p":
                spelled.append(self.phones[value])
        spelled.reverse()
        for i in candidates:
            if tuple(spelled[-len(self.prons[i]):]) == self.prons[i]:
                return i
        return candidates[0]


def lexicon_decoder(phones: Sequence[str], lexicon: dict[str, list[tuple[str, ...]]], lm: NgramLM | str | Path | None,
                    cfg: DecoderConfig | None = None) -> LexiconDecoder:
    """The word decoder ``cfg.backend`` names: ``flashlight`` (an error when it is not installed),
    ``python`` (ours), or ``auto``: flashlight-text when it imports and there is a word LM, else ours."""
    cfg = cfg or DecoderConfig()
    backend = cfg.backend
    if backend == "auto":
        backend = "flashlight" if lm is not None and flashlight_available() else "python"
    if backend == "flashlight":
        if not flashlight_available():
            raise ValueError("decoder.backend=flashlight needs flashlight-text (`pip install flashlight-text`); "
                             "decoder.backend=python uses our own search")
        if isinstance(lm, (str, Path)):
            lm = load_word_lm(lm)
        return FlashlightLexiconDecoder(phones, lexicon, lm, cfg)
    return LexiconDecoder(phones, lexicon, lm, cfg)
