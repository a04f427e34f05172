"""A pure-Python ARPA n-gram scorer: the fallback when the ``kenlm`` module is not installed.

Only scoring is needed at training time (the label-free checkpoint metric), and machines
without a compiler or network (a GPU node with a fixed image, say) may lack the ``kenlm``
extension. :class:`ArpaModel` reads the ARPA file written next to every binary LM by
``w2vu prepare-text`` and answers ``score(sentence, bos, eos)`` in log10, with the backoff
rule KenLM uses: p(w | h) is the stored n-gram probability when (h, w) is listed, else
backoff(h) + p(w | h minus its oldest word); a word that is not in the LM scores as
``<unk>``. It is slower than KenLM and holds the whole model in dictionaries, which is fine
for phone LMs (a few MB) and small word LMs.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from wav2vec_u.text.lm import NgramLM

UNK = "<unk>"


class ArpaModel(NgramLM):
    """:class:`NgramLM` read from an ARPA file in pure Python (states are context tuples)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._cache: dict = {}
        if not self.path.is_file():
            raise FileNotFoundError(f"language model not found: {self.path} (run `w2vu prepare-text`)")
        self.prob: dict[tuple[str, ...], float] = {}
        self.backoff: dict[tuple[str, ...], float] = {}
        self.order = 0
        opener = gzip.open if self.path.suffix == ".gz" else open
        section = 0
        with opener(self.path, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line or line == "\\data\\" or line.startswith("ngram "):
                    continue
                if line == "\\end\\":
                    break
                if line.startswith("\\") and line.endswith("-grams:"):
                    section = int(line[1:line.index("-")])
                    self.order = max(self.order, section)
                    continue
                if section == 0:
                    continue
                parts = line.split()
                if len(parts) not in (section + 1, section + 2):
                    raise ValueError(f"{self.path}:{lineno}: expected {section}-gram with a log10 probability "
                                     f"and an optional backoff, got {line!r}; is this an ARPA file?")
                words = tuple(parts[1:section + 1])
                self.prob[words] = float(parts[0])
                if len(parts) == section + 2:
                    self.backoff[words] = float(parts[-1])
        if not self.prob:
            raise ValueError(f"{self.path}: no n-grams found; is this an ARPA file?")
        self._unk = self.prob.get((UNK,), -100.0)

    def _word_log10(self, context: tuple[str, ...], word: str) -> float:
        total = 0.0
        while True:
            p = self.prob.get(context + (word,))
            if p is not None:
                return total + p
            if not context:
                return total + self._unk
            total += self.backoff.get(context, 0.0)
            context = context[1:]

    def __contains__(self, token: str) -> bool:
        return (token,) in self.prob

    def begin_state(self) -> tuple[str, ...]:
        return ("<s>",) if self.order > 1 else ()

    def null_state(self) -> tuple[str, ...]:
        return ()

    def _advance(self, state: tuple[str, ...], word: str) -> tuple[float, tuple[str, ...]]:
        if (word,) not in self.prob:
            word = UNK
        keep = self.order - 1
        return self._word_log10(state, word), ((state + (word,))[-keep:] if keep > 0 else ())

    def _score_sentence(self, sentence: str, bos: bool = True, eos: bool = True) -> float:
        """log10 p(sentence), KenLM's ``Model.score`` semantics."""
        words = sentence.split()
        keep = self.order - 1
        context: tuple[str, ...] = ("<s>",) if bos and keep > 0 else ()
        total = 0.0
        for w in words + (["</s>"] if eos else []):
            if (w,) not in self.prob:
                w = UNK
            total += self._word_log10(context, w)
            context = (context + (w,))[-keep:] if keep > 0 else ()
        return total
