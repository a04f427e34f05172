"""Text normalisation shared by the synthetic corpus and the text side, so words match.

    normalize_line("Hello, World!  It's 1990.")  ->  "hello world it's 1990"
"""

from __future__ import annotations

import re
import unicodedata

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
