#!/usr/bin/env python
"""Sentences for the held-aside check corpus: English text that is not the demo's (not the Bible).

    apt-get install fortunes                                     # Debian: the fortune-cookie files
    python scripts/research/heldout_sentences.py OUT.txt [--max-lines 12000]

The demo is tuned on espeak-ng en-us voices reading the World English Bible. A method fitted
to that would fail on other text, voices and phone inventories; scripts/research/heldout_check.sh
builds such a corpus (these sentences, British English RP voices, other espeak-ng variants) to
check. Source: Debian's ``fortunes`` package (/usr/share/games/fortunes, the inoffensive set
only). Sentences of 4-25 words without digits, split at ``. ! ?``, deduplicated after
``normalize_line``, a seeded shuffle. Maintenance/research only: nothing at run time needs it.
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

from wav2vec_u.text.normalize import normalize_line

FORTUNES = Path("/usr/share/games/fortunes")
_SPLIT = re.compile(r"(?<=[.!?])[\"')]*\s+")


def fortune_texts(folder: Path) -> list[str]:
    """Every fortune (the text between ``%`` lines) of every file in ``folder`` (not ``off/``)."""
    if not folder.is_dir():
        raise SystemExit(f"{folder} not found: install Debian's fortunes package (apt-get install fortunes)")
    out = []
    for f in sorted(folder.iterdir()):
        if f.is_file() and not f.suffix and (folder / f"{f.name}.dat").is_file():
            out += f.read_text(encoding="utf-8", errors="replace").split("\n%\n")
    return out


def sentences(texts: list[str]) -> list[str]:
    keep, seen = [], set()
    for t in texts:
        t = re.sub(r"\s+", " ", t).strip()
        if "--" in t or ":" in t or "|" in t or "\t" in t:  # attributions, dialogue, tables, ascii art
            t = t.split("--")[0]
        for s in _SPLIT.split(t):
            s = s.strip(" \"'")
            words = s.split()
            if not 4 <= len(words) <= 25 or re.search(r"[0-9_/\\<>@#=*{}\[\]~^]", s) or not s[0].isupper():
                continue
            if not re.fullmatch(r"[A-Za-z ,.;!?'\"()-]+", s):
                continue
            norm = normalize_line(s)
            if norm and norm not in seen:
                seen.add(norm)
                keep.append(s)
    return keep


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--max-lines", type=int, default=12000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    lines = sentences(fortune_texts(FORTUNES))
    random.Random(a.seed).shuffle(lines)
    lines = lines[:a.max_lines]
    a.out.write_text("".join(f"{s}\n" for s in lines), encoding="utf-8")
    print(f"{len(lines)} sentences -> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
