"""Text normalisation shared by the synthetic corpus and the text side, so words match.

    normalize_line("Hello, World!  It's 1990.")  ->  "hello world it's 1990"
    scripts_of("hello мир")                     ->  {"LATIN", "CYRILLIC"}
    foreign_scripts("hello мир", "en-us")       ->  {"CYRILLIC"}

espeak-ng reads a letter of another script by its name ("chinese letter", "cyrillic ..."), so
a line in another script would go into the phone LM as English words about letters. The
script of each letter comes from its Unicode name; the expected scripts of a language from
:data:`LANGUAGE_SCRIPTS` (by the language part of the espeak-ng code).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Iterable

_PUNCT = re.compile(r"[^\w\s'’-]|_", re.UNICODE)
_SPACE = re.compile(r"\s+")
_DIGIT_TOKEN = re.compile(r"\S*\d\S*")


def normalize_line(line: str, lowercase: bool = True, digits: str = "keep") -> str:
    """NFKC, lower case, punctuation removed (apostrophes and inner hyphens kept), spaces squeezed.

    ``digits="keep"`` leaves numbers for espeak-ng to read; ``"remove"`` deletes every token
    that contains a digit.
    """
    if digits not in ("keep", "remove"):
        raise ValueError(f"digits: expected 'keep' or 'remove', got {digits!r}")
    text = unicodedata.normalize("NFKC", line)
    if lowercase:
        text = text.lower()
    text = text.replace("’", "'")
    text = _PUNCT.sub(" ", text)
    text = re.sub(r"(?<!\w)['-]|['-](?!\w)", " ", text)  # quotes and dashes not inside a word
    if digits == "remove":
        text = _DIGIT_TOKEN.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


# Scripts whose letters a language's text may hold, by ISO 639 code (the part of an espeak-ng
# voice code before "-"). Languages not listed are not checked (a warning says so).
_LATIN = ("en", "es", "fr", "de", "it", "pt", "nl", "sv", "da", "no", "nb", "fi", "et", "pl", "cs", "sk", "sl",
          "hr", "bs", "hu", "ro", "ca", "eu", "gl", "tr", "az", "id", "ms", "vi", "sw", "yo", "ha", "ig", "zu",
          "xh", "af", "lt", "lv", "is", "ga", "cy", "mt", "sq", "eo", "la", "tl", "qu", "gn", "ht", "uz", "tk")
LANGUAGE_SCRIPTS: dict[str, frozenset[str]] = {
    **{code: frozenset({"LATIN"}) for code in _LATIN},
    **{code: frozenset({"CYRILLIC"}) for code in ("ru", "uk", "be", "bg", "mk", "kk", "ky", "mn", "tt", "ba")},
    "sr": frozenset({"CYRILLIC", "LATIN"}),
    "el": frozenset({"GREEK"}), "hy": frozenset({"ARMENIAN"}), "ka": frozenset({"GEORGIAN"}),
    **{code: frozenset({"ARABIC"}) for code in ("ar", "fa", "ur", "ps", "sd", "ug")},
    "he": frozenset({"HEBREW"}),
    **{code: frozenset({"DEVANAGARI"}) for code in ("hi", "mr", "ne", "sa")},
    "bn": frozenset({"BENGALI"}), "as": frozenset({"BENGALI"}), "pa": frozenset({"GURMUKHI"}),
    "gu": frozenset({"GUJARATI"}), "ta": frozenset({"TAMIL"}), "te": frozenset({"TELUGU"}),
    "kn": frozenset({"KANNADA"}), "ml": frozenset({"MALAYALAM"}), "si": frozenset({"SINHALA"}),
    "th": frozenset({"THAI"}), "lo": frozenset({"LAO"}), "my": frozenset({"MYANMAR"}), "km": frozenset({"KHMER"}),
    "am": frozenset({"ETHIOPIC"}), "ko": frozenset({"HANGUL"}),
    "ja": frozenset({"HIRAGANA", "KATAKANA", "CJK"}), "cmn": frozenset({"CJK"}), "yue": frozenset({"CJK"}),
    "zh": frozenset({"CJK"}),
}


@lru_cache(maxsize=65536)
def letter_script(ch: str) -> str | None:
    """The script of a letter from its Unicode name (LATIN, CYRILLIC, CJK, ...); None for non-letters."""
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    if not name:
        return "UNKNOWN"
    first = name.split()[0]
    return "CJK" if first in ("CJK", "KANGXI") else first


def scripts_of(text: str) -> set[str]:
    return {s for s in map(letter_script, text) if s is not None}


def expected_scripts(lang: str) -> frozenset[str] | None:
    """The scripts a language's text is written in, or None when this table does not know it."""
    code = lang.lower().replace("_", "-")
    return LANGUAGE_SCRIPTS.get(code) or LANGUAGE_SCRIPTS.get(code.split("-")[0])


def foreign_scripts(text: str, lang: str | Iterable[str]) -> set[str]:
    """Scripts in ``text`` that the language (an espeak-ng code, or a set of script names) does not use."""
    allowed = expected_scripts(lang) if isinstance(lang, str) else frozenset(lang)
    if allowed is None:
        return set()
    return scripts_of(text) - allowed
