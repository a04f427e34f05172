"""Phonemisation with phonemizer's espeak-ng backend: sentences -> words -> phones.

    phonemize(["hello world"], "en-us")  ->  [[["h", "ə", "l", "oʊ"], ["w", "ɜː", "l", "d"]]]
    phonemize_corpus(sentences, "en-us", "out/.cache/phonemize", njobs=2)   # large corpora, cached chunks

Stress marks are removed; phones are espeak-ng's IPA symbols (multi-character phones such as
``oʊ`` stay one phone). espeak-ng may join short words ("in the" -> one word): the number of
phone words can differ from the number of text words.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from wav2vec_u.io import atomic_write_text, sha256_json

PHONE_SEP = " "
WORD_SEP = "|"


class PhonemizerError(ValueError):
    pass


@lru_cache(maxsize=8)
def _backend(lang: str, with_stress: bool = False):
    from phonemizer.backend import EspeakBackend

    if not EspeakBackend.is_available():
        raise PhonemizerError("espeak-ng is not installed: run scripts/setup.sh (apt-get install espeak-ng)")
    if lang not in EspeakBackend.supported_languages():
        raise PhonemizerError(f"unknown language code '{lang}' for espeak-ng (e.g. en-us, es, fr-fr, de; "
                              "see `espeak-ng --voices`)")
    return EspeakBackend(lang, with_stress=with_stress, preserve_punctuation=False,
                         language_switch="remove-flags", words_mismatch="ignore")


def check_language(lang: str) -> None:
    """Raise PhonemizerError (naming the code) when espeak-ng does not know ``lang``."""
    _backend(lang)


@lru_cache(maxsize=1)
def phonemizer_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("phonemizer")


@lru_cache(maxsize=1)
def espeak_version() -> str:
    from phonemizer.backend import EspeakBackend

    return ".".join(str(v) for v in EspeakBackend.version())


def phonemize(sentences: list[str], lang: str, njobs: int = 1, with_stress: bool = False) -> list[list[list[str]]]:
    """Phones of each word of each (already normalised) sentence."""
    from phonemizer.separator import Separator

    if not sentences:
        return []
    out = _backend(lang, with_stress).phonemize(list(sentences), strip=True, njobs=njobs,
                                                separator=Separator(phone=PHONE_SEP, word=WORD_SEP, syllable=""))
    return [[w.split() for w in line.split(WORD_SEP) if w.strip()] for line in out]


# ---------------------------------------------------------------------------------------------
# Large corpora: chunks phonemised in worker processes, each chunk cached on disk so that an
# interrupted run resumes where it stopped.
# ---------------------------------------------------------------------------------------------

def _encode(words: list[list[str]]) -> str:
    return f" {WORD_SEP} ".join(" ".join(w) for w in words)


def decode_words(line: str) -> list[list[str]]:
    """``"p p | p p p"`` (as phonemize_corpus(decode=False) returns) -> [["p", "p"], ["p", "p", "p"]]."""
    return _decode(line)


def _decode(line: str) -> list[list[str]]:
    # interned: millions of sentences share a few dozen phone strings instead of copies
    return [[sys.intern(p) for p in w.split()] for w in line.split(WORD_SEP) if w.strip()]


def _chunk_key(chunk: list[str], lang: str, with_stress: bool) -> str:

    return sha256_json({"sentences": chunk, "lang": lang, "with_stress": with_stress,
                        "phonemizer": phonemizer_version(), "espeak": espeak_version()})


def _phonemize_chunk(job: tuple[list[str], str, bool, str]) -> str:
    """Worker: phonemise one chunk and write its cache file atomically; returns the file name."""
    from pathlib import Path


    chunk, lang, with_stress, path = job
    words = phonemize(chunk, lang, njobs=1, with_stress=with_stress)
    atomic_write_text(path, "".join(_encode(w) + "\n" for w in words))
    return Path(path).name


def phonemize_corpus(sentences: list[str], lang: str, cache_dir, njobs: int = 2, chunk_size: int = 1000,
                     with_stress: bool = False, progress: bool = True, decode: bool = True) -> tuple[list, dict]:
    """Phonemise many sentences: chunks of ``chunk_size`` in ``njobs`` processes, cached in ``cache_dir``.

    Returns (phones of each word of each sentence, stats with ``chunks``, ``cached_chunks``).
    A chunk's cache file is named by the hash of its sentences and the options and versions, so
    a rerun (or a resumed interrupted run) phonemises only the chunks it has not finished.
    ``decode=False`` returns each sentence as one string ``"p p | p p p"`` (far less memory for
    millions of sentences; :func:`decode_words` turns one into word lists).
    """
    import concurrent.futures as cf
    import multiprocessing as mp
    from pathlib import Path

    from tqdm import tqdm

    check_language(lang)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    chunks = [sentences[i:i + chunk_size] for i in range(0, len(sentences), chunk_size)]
    paths = [cache_dir / f"{_chunk_key(c, lang, with_stress)}.txt" for c in chunks]
    todo = [(c, lang, with_stress, str(p)) for c, p in zip(chunks, paths) if not p.is_file()]
    bar = tqdm(total=len(sentences), initial=len(sentences) - sum(len(j[0]) for j in todo), unit="sent",
               desc=f"phonemise ({lang})", disable=not progress, smoothing=0.1)
    try:
        if njobs <= 1 or len(todo) <= 1:
            for job in todo:
                _phonemize_chunk(job)
                bar.update(len(job[0]))
        else:
            # spawn, not fork: phonemizer's espeak wrapper owns a temporary copy of the library
            # that a forked child would delete on exit.
            with cf.ProcessPoolExecutor(max_workers=njobs, mp_context=mp.get_context("spawn")) as pool:
                futures = {pool.submit(_phonemize_chunk, job): len(job[0]) for job in todo}
                for fut in cf.as_completed(futures):
                    fut.result()
                    bar.update(futures[fut])
    finally:
        bar.close()
    out: list = []
    for chunk, path in zip(chunks, paths):
        lines = path.read_text(encoding="utf-8").split("\n")[:-1]
        if len(lines) != len(chunk):
            raise PhonemizerError(f"corrupt phonemisation cache {path}: delete it and rerun")
        out.extend((_decode(line) for line in lines) if decode else lines)
    return out, {"chunks": len(chunks), "cached_chunks": len(chunks) - len(todo)}
