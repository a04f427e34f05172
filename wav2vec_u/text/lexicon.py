"""Pronunciation lexicons (``word<TAB>p1 p2 ...``): read a user's, or make one with espeak-ng.

    lex = pronounce_words(["the", "cat"], "en-us", cache_dir="out/.cache")   # {"the": ["ð", "ə"], ...}
    write_lexicon("out/lexicon.lst", lex)
    lex = read_lexicon("my_lexicon.tsv")          # first pronunciation of each word
    prons = read_pronunciations("lexicon.lst")    # every pronunciation: {"the": [("ð", "ə"), ("ð", "i")]}

espeak-ng reads a word alone differently from the same word in running text (English "a"
alone is the letter name ``eɪ``, in text ``ɐ``). Like the reference's ``prepare_text.sh``, each
word is phonemised followed by a carrier word ("1") whose phones are then removed, so the
lexicon holds the running-text pronunciation. When espeak-ng joins the word and the carrier
into one phone word, the word phonemised alone is used instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Sequence

from wav2vec_u.io import atomic_write_text
from wav2vec_u.text.phonemize import phonemize, phonemize_corpus

CARRIER = "1"


def read_pronunciations(path: str | Path) -> dict[str, list[tuple[str, ...]]]:
    """The one lexicon reader: ``word<TAB>phones`` (or ``word phones``) per line, ``#`` comments.

    Several lines of one word are several pronunciations, kept in file order (duplicates once).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"lexicon not found: {path} (prepare-text writes lexicon.lst)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"lexicon {path} is not UTF-8 (byte offset {exc.start})") from None
    lexicon: dict[str, list[tuple[str, ...]]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t", 1) if "\t" in line else line.split(None, 1)
        if len(parts) != 2 or not parts[1].split():
            raise ValueError(f"{path}:{n}: expected 'word<TAB>phone phone ...', got {line!r}")
        pron = tuple(parts[1].split())
        prons = lexicon.setdefault(parts[0].strip(), [])
        if pron not in prons:
            prons.append(pron)
    if not lexicon:
        raise ValueError(f"lexicon {path} has no entries")
    return lexicon


def read_lexicon(path: str | Path) -> dict[str, list[str]]:
    """A user lexicon with the first pronunciation of each word (:func:`read_pronunciations`)."""
    return {w: list(prons[0]) for w, prons in read_pronunciations(path).items()}


def write_lexicon(path: str | Path, lexicon: Mapping[str, Sequence[str]]) -> Path:
    return atomic_write_text(path, "".join(f"{w}\t{' '.join(p)}\n" for w, p in sorted(lexicon.items())))


def pronounce_words(words: Iterable[str], lang: str, cache_dir: str | Path, njobs: int = 1,
                    chunk_size: int = 2000, with_stress: bool = False, progress: bool = False) -> dict[str, list[str]]:
    """espeak-ng pronunciation of each word as it sounds in running text (see module doc).

    Words espeak-ng gives no phones for are left out of the result.
    """

    words = sorted(set(words))
    carrier = [p for w in phonemize([CARRIER], lang, with_stress=with_stress)[0] for p in w]
    with_carrier, _ = phonemize_corpus([f"{w} {CARRIER}" for w in words], lang, Path(cache_dir), njobs=njobs,
                                       chunk_size=chunk_size, with_stress=with_stress, progress=progress)
    lexicon, retry = {}, []
    for w, pw in zip(words, with_carrier):
        if len(pw) >= 2 and pw[-1] == carrier:
            lexicon[w] = [p for x in pw[:-1] for p in x]
        else:
            retry.append(w)
    if retry:
        alone, _ = phonemize_corpus(retry, lang, Path(cache_dir), njobs=njobs, chunk_size=chunk_size,
                                    with_stress=with_stress, progress=False)
        for w, pw in zip(retry, alone):
            lexicon[w] = [p for x in pw for p in x]
    return {w: p for w, p in lexicon.items() if p}
