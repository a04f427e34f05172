"""KenLM n-gram language models: build with ``lmplz``/``build_binary``, query with the ``kenlm`` module.

    meta = build_lm("text/phones.txt", "text/lm.phones.4", order=4)   # .arpa, .bin, .meta.json
    lm = load_lm("text/lm.phones.4.bin")            # NgramLM (KenLM), or the ARPA fallback
    lm.score(["<SIL>", "h", "ə", "<SIL>"])          # log10 P(tokens, </s> | <s>)
    lm.perplexity([["h", "ə"], ["ə"]]), lm.oov_count(["h", "zz"])

``lmplz`` and ``build_binary`` are not in any wheel: ``scripts/setup.sh`` builds them once from
the kenlm source distribution (``scripts/build_kenlm.sh``) into the checkout's ``.cache/kenlm/bin``.
They are found through ``$KENLM_BIN`` (a directory), that cache, ``~/.cache/wav2vec-u/kenlm/bin``
(``KENLM_PREFIX=~/.cache/wav2vec-u/kenlm bash scripts/build_kenlm.sh``), or ``PATH``.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterable, Sequence

from wav2vec_u.io import atomic_path, sha256_file, write_json

log = logging.getLogger(__name__)

# Where scripts/build_kenlm.sh puts the tools: the source checkout's .cache (when the package
# runs from one), or the user's cache (KENLM_PREFIX=~/.cache/wav2vec-u/kenlm for an installed one).
CACHE_BIN = Path(__file__).resolve().parents[2] / ".cache" / "kenlm" / "bin"
USER_BIN = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wav2vec-u" / "kenlm" / "bin"


class KenLMError(RuntimeError):
    pass


class KenLMNotFound(FileNotFoundError):
    pass


def kenlm_tools_available() -> bool:
    """True when both ``lmplz`` and ``build_binary`` can be found (see :func:`find_kenlm_binary`)."""
    try:
        find_kenlm_binary("lmplz")
        find_kenlm_binary("build_binary")
    except KenLMNotFound:
        return False
    return True


def find_kenlm_binary(name: str) -> Path:
    """``lmplz`` or ``build_binary`` from $KENLM_BIN, the checkout's or the user's cache, or PATH."""
    candidates = []
    if os.environ.get("KENLM_BIN"):
        candidates.append(Path(os.environ["KENLM_BIN"]) / name)
    candidates += [CACHE_BIN / name, USER_BIN / name]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    found = shutil.which(name)
    if found:
        return Path(found)
    raise KenLMNotFound(
        f"KenLM's {name} not found (looked in $KENLM_BIN, {CACHE_BIN}, {USER_BIN}, PATH). KenLM's wheel has no "
        "lmplz/build_binary: in a source checkout run scripts/setup.sh (or `bash scripts/build_kenlm.sh`); for an "
        "installed package, build them once from a checkout with `KENLM_PREFIX=~/.cache/wav2vec-u/kenlm bash "
        "scripts/build_kenlm.sh` (found there automatically), or set KENLM_BIN to a folder that has them, or put them "
        "on PATH")


def kenlm_version() -> str:
    """Version of the KenLM source the binaries were built from (recorded by build_kenlm.sh)."""
    try:
        lmplz = find_kenlm_binary("lmplz")
    except KenLMNotFound:
        return "unknown"
    version_file = lmplz.parent.parent / "VERSION"
    return version_file.read_text().strip() if version_file.is_file() else "unknown"


def check_prune(prune: Sequence[int], order: int) -> list[int]:
    prune = [int(p) for p in prune]
    if not prune:
        return prune
    if len(prune) > order:
        raise ValueError(f"lm prune {prune}: at most {order} thresholds for an order-{order} model")
    if prune[0] != 0:
        raise ValueError(f"lm prune {prune}: KenLM cannot prune unigrams, the first threshold must be 0")
    if any(b < a for a, b in zip(prune, prune[1:])):
        raise ValueError(f"lm prune {prune}: thresholds must not decrease with the order")
    return prune


def build_lm(text: str | Path, prefix: str | Path, order: int, prune: Sequence[int] = (),
             discount_fallback: bool = True, memory: str = "1G", binary: bool = True) -> dict:
    """Train an ``order``-gram modified Kneser-Ney LM on ``text`` (one sentence per line).

    Writes ``<prefix>.arpa``, ``<prefix>.bin`` (if ``binary``) and ``<prefix>.meta.json`` with
    the exact command lines and the KenLM version; returns that meta. Files appear only when
    complete.
    """
    text, prefix = Path(text), Path(prefix)
    if not text.is_file() or text.stat().st_size == 0:
        raise ValueError(f"cannot build a language model from {text}: missing or empty")
    if order < 1:
        raise ValueError(f"lm order must be >= 1, got {order}")
    prune = check_prune(prune, order)
    lmplz = find_kenlm_binary("lmplz")
    arpa, bin_path = Path(f"{prefix}.arpa"), Path(f"{prefix}.bin")
    commands = []
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="lmplz-", dir=prefix.parent) as tmp, atomic_path(arpa) as tmp_arpa:
        cmd = [str(lmplz), "-o", str(order), "-S", memory, "-T", tmp + "/", "--text", str(text), "--arpa", str(tmp_arpa)]
        if discount_fallback:
            cmd.append("--discount_fallback")
        if prune:
            cmd += ["--prune", *map(str, prune)]
        _run(cmd, f"lmplz on {text}")
        commands.append(cmd)
        if binary:
            build = find_kenlm_binary("build_binary")
            with atomic_path(bin_path) as tmp_bin:
                bcmd = [str(build), "-S", memory, str(tmp_arpa), str(tmp_bin)]
                _run(bcmd, f"build_binary on {arpa}")
                commands.append(bcmd)
    meta = {
        "text": str(text), "text_sha256": sha256_file(text), "order": order, "prune": prune,
        "discount_fallback": discount_fallback, "kenlm_version": kenlm_version(),
        # temporary paths replaced by the final names, so the commands can be rerun by hand
        "commands": [" ".join(_final_name(a, arpa, bin_path) for a in c) for c in commands],
        "outputs": [arpa.name] + ([bin_path.name] if binary else []),
        "ngram_counts": arpa_counts(arpa), "seconds": round(time.time() - t0, 2),
    }
    write_json(Path(f"{prefix}.meta.json"), meta)
    return meta


def _final_name(arg: str, arpa: Path, bin_path: Path) -> str:
    name = Path(arg).name
    if name.startswith(f".{arpa.name}."):
        return str(arpa)
    if name.startswith(f".{bin_path.name}."):
        return str(bin_path)
    if name.startswith("lmplz-"):
        return "/tmp/"
    return arg


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise KenLMError(f"{what} failed (exit {proc.returncode}): {tail}")


def arpa_counts(path: str | Path) -> dict[int, int]:
    """``ngram N=count`` lines of an ARPA header."""
    counts = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("ngram "):
                n, c = line[6:].strip().split("=")
                counts[int(n)] = int(c)
            elif line.startswith("\\1-grams:"):
                break
    return counts


class NgramLM:
    """The one n-gram LM class: KenLM (ARPA or binary) when the ``kenlm`` module is installed.

    :func:`load_lm` returns this, or :class:`ArpaModel` (the same interface,
    in pure Python) when kenlm is missing. Scores are log10, as KenLM gives them::

        lm.score(["h", "ə"]) == lm.score("h ə")        # log10 P(h ə </s> | <s>)
        state = lm.begin_state(); lp, state = lm.advance(state, "h")   # word by word (decoders)
    """

    def __init__(self, path: str | Path):
        import kenlm  # noqa: PLC0415 - a compiled extension, loaded only when a model is

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"language model not found: {self.path} (run `w2vu prepare-text`)")
        try:
            self.model = kenlm.Model(str(self.path))
        except (OSError, RuntimeError) as exc:
            raise ValueError(f"cannot load KenLM model {self.path}: {exc}") from None
        self._kenlm = kenlm
        self.order = self.model.order
        self._cache: dict = {}

    # -- whole sentences -------------------------------------------------------------------
    def score(self, tokens: Sequence[str] | str, bos: bool = True, eos: bool = True) -> float:
        """log10 probability of the tokens (a list, or one space-separated string), with ``</s>``
        when ``eos``, given ``<s>`` when ``bos``."""
        return self._score_sentence(tokens if isinstance(tokens, str) else " ".join(tokens), bos, eos)

    def _score_sentence(self, sentence: str, bos: bool, eos: bool) -> float:
        return self.model.score(sentence, bos=bos, eos=eos)

    def __contains__(self, token: str) -> bool:
        return token in self.model

    def oov_count(self, tokens: Iterable[str]) -> int:
        """Tokens the model has never seen (each scored as ``<unk>``)."""
        return sum(1 for t in tokens if t not in self)

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        """Corpus perplexity, ``10 ** (-sum log10 p / (tokens + sentences))`` (``</s>`` counted)."""
        total, n = 0.0, 0
        for s in sentences:
            total += self.score(s)
            n += len(s) + 1
        return 10 ** (-total / n) if n else math.inf

    # -- word by word (the lexicon decoder) ------------------------------------------------
    def begin_state(self):
        """The state after ``<s>``."""
        s = self._kenlm.State()
        self.model.BeginSentenceWrite(s)
        return s

    def null_state(self):
        """No context: scores from it are unigram scores."""
        s = self._kenlm.State()
        self.model.NullContextWrite(s)
        return s

    def advance(self, state, word: str):
        """(log10 P(word | state), the next state); cached, decoders ask the same pairs often."""
        key = (state, word)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._advance(state, word)
            self._cache[key] = hit
        return hit

    def _advance(self, state, word: str):
        out = self._kenlm.State()
        return self.model.BaseScore(state, word, out), out


# ---------------------------------------------------------------------------------------------
# The pure-Python fallback: A pure-Python ARPA n-gram scorer: the fallback when the ``kenlm`` module is not installed.
#
#
# Only scoring is needed at training time (the label-free checkpoint metric), and machines
# without a compiler or network (a GPU node with a fixed image, say) may lack the ``kenlm``
# extension. :class:`ArpaModel` reads the ARPA file written next to every binary LM by
# ``w2vu prepare-text`` and answers ``score(sentence, bos, eos)`` in log10, with the backoff
# rule KenLM uses: p(w | h) is the stored n-gram probability when (h, w) is listed, else
# backoff(h) + p(w | h minus its oldest word); a word that is not in the LM scores as
# ``<unk>``. It is slower than KenLM and holds the whole model in dictionaries, which is fine
# for phone LMs (a few MB) and small word LMs.

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


def load_lm(path: str | Path) -> NgramLM:
    """The LM at ``path`` (binary or ARPA); without the ``kenlm`` module, its ARPA file read in Python.

    ``w2vu prepare-text`` writes ``lm.*.4.arpa`` next to ``lm.*.4.bin``, so a machine that cannot
    install kenlm (a fixed GPU image, say) still gets the label-free metric and word decoding.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing language model {path} (run `w2vu prepare-text` first)")
    try:
        import kenlm  # noqa: F401, PLC0415 - only probing whether the extension is there
    except ImportError:
        arpa = path if path.suffix != ".bin" else path.with_suffix(".arpa")
        if not arpa.is_file():
            raise FileNotFoundError(f"the kenlm module is not installed and there is no ARPA file {arpa} to read "
                                    f"instead of {path}: `pip install kenlm`, or rerun `w2vu prepare-text`") from None
        log.warning("kenlm is not installed: scoring with the pure-Python ARPA reader (%s), slower", arpa)
        return ArpaModel(arpa)
    return NgramLM(path)


def find_lm(text_dir: str | Path, kind: str) -> Path | None:
    """``lm.<kind>.4.bin`` (or ``.arpa``) of a prepare-text folder; ``kind`` is "phones" or "words"."""
    for suffix in (".bin", ".arpa"):
        p = Path(text_dir) / f"lm.{kind}.4{suffix}"
        if p.is_file():
            return p
    return None


def find_phone_lm(text_dir: str | Path) -> Path | None:
    return find_lm(text_dir, "phones")


def find_word_lm(text_dir: str | Path) -> Path | None:
    return find_lm(text_dir, "words")


def load_phone_lm(text_dir: str | Path) -> NgramLM | None:
    """The phone LM of a prepare-text folder (the label-free metric's), or None when it has none."""
    path = find_phone_lm(text_dir)
    return load_lm(path) if path is not None else None


def oov_count(lm: NgramLM, sentences: Iterable[Sequence[str]]) -> int:
    return sum(lm.oov_count(s) for s in sentences)
