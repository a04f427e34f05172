"""Text normalisation shared by the synthetic corpus and the text side, so words match.

    normalize_line("Hello, World!  It's 1990.")  ->  "hello world it's 1990"
"""

from __future__ import annotations

import re
import unicodedata

_PUNCT = re.compile(r"[^\w\s'’-]|_", re.UNICODE)
_SPACE = re.compile(r"\s+")


def normalize_line(line: str, lowercase: bool = True) -> str:
    """NFKC, lower case, punctuation removed (apostrophes and inner hyphens kept), spaces squeezed."""
    text = unicodedata.normalize("NFKC", line)
    if lowercase:
        text = text.lower()
    text = text.replace("’", "'")
    text = _PUNCT.sub(" ", text)
    text = re.sub(r"(?<!\w)['-]|['-](?!\w)", " ", text)  # quotes and dashes not inside a word
    return _SPACE.sub(" ", text).strip()
