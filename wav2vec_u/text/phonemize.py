"""Phonemisation with phonemizer's espeak-ng backend: sentences -> words -> phones.

    phonemize(["hello world"], "en-us")  ->  [[["h", "ə", "l", "oʊ"], ["w", "ɜː", "l", "d"]]]

Stress marks are removed; phones are espeak-ng's IPA symbols (multi-character phones such as
``oʊ`` stay one phone). espeak-ng may join short words ("in the" -> one word): the number of
phone words can differ from the number of text words.
"""

from __future__ import annotations

from functools import lru_cache

PHONE_SEP = " "
WORD_SEP = "|"


class PhonemizerError(ValueError):
    pass


@lru_cache(maxsize=8)
def _backend(lang: str):
    from phonemizer.backend import EspeakBackend

    if not EspeakBackend.is_available():
        raise PhonemizerError("espeak-ng is not installed: run scripts/setup.sh (apt-get install espeak-ng)")
    if lang not in EspeakBackend.supported_languages():
        raise PhonemizerError(f"unknown language code '{lang}' for espeak-ng (e.g. en-us, es, fr-fr, de; "
                              "see `espeak-ng --voices`)")
    return EspeakBackend(lang, with_stress=False, preserve_punctuation=False,
                         language_switch="remove-flags", words_mismatch="ignore")


def espeak_version() -> str:
    from phonemizer.backend import EspeakBackend

    return ".".join(str(v) for v in EspeakBackend.version())


def phonemize(sentences: list[str], lang: str, njobs: int = 1) -> list[list[list[str]]]:
    """Phones of each word of each (already normalised) sentence."""
    from phonemizer.separator import Separator

    if not sentences:
        return []
    out = _backend(lang).phonemize(list(sentences), separator=Separator(phone=PHONE_SEP, word=WORD_SEP, syllable=""),
                                   strip=True, njobs=njobs)
    return [[w.split() for w in line.split(WORD_SEP) if w.strip()] for line in out]
