"""Regenerate the shipped sentence files ``data/sentences/{en,es}.txt`` from SWORD Bible modules.

Maintenance-time only: the project ships the extracted files, and nothing at run time needs
diatheke. On Debian::

    apt-get install diatheke sword-text-web sword-text-sparv
    python scripts/make_sentences.py            # writes data/sentences/en.txt and es.txt

Sources (both public domain, see data/README.md): the World English Bible (SWORD module
``engWEB2015eb``) and the Spanish Reina-Valera 1909 (``spaRV1909eb``). The script

1. dumps every verse with ``diatheke -b MODULE -k Gen-Rev`` (OSIS markup),
2. drops headings (psalm titles), the glossary and all markup, keeping the words,
3. joins the verses of a chapter and splits the text into sentences at ``. ! ? ;``,
4. keeps sentences of 4-25 words without digits (numbers are read differently by different
   tools), deduplicated after ``normalize_line`` so no two lines normalise to the same text,
5. keeps a seeded random subset of at most ``--max-lines`` lines, in Bible order.
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
from pathlib import Path

from wav2vec_u.text.normalize import normalize_line

MODULES = {"en": "engWEB2015eb", "es": "spaRV1909eb"}
_REF = re.compile(r"((?:I{1,3} )?[A-Z][A-Za-z]*(?: [A-Za-z]+)*) (\d+):(\d+): ")
_DROP = re.compile(r"<title\b.*?</title>|<note\b.*?</note>", re.S)  # headings and notes, with their text
_TAG = re.compile(r"<[^>]*>")
_SPLIT = re.compile(r"(?<=[.!?;])[\"'”’»)]*\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?”’»)])")


def dump_verses(module: str) -> list[tuple[str, int, str]]:
    """(book, chapter, text with markup) for every verse of ``module``, via diatheke."""
    out = subprocess.run(["diatheke", "-b", module, "-k", "Gen-Rev"], capture_output=True, text=True, check=True).stdout
    verses: list[list] = []
    for line in out.splitlines():
        if line.strip() == f"({module})":
            break
        m = _REF.search(line)
        if m:  # diatheke repeats stray heading markup before some references: drop what precedes
            verses.append([m.group(1), int(m.group(2)), line[m.end():]])
        elif verses:  # poetry: a verse continues on the next lines
            verses[-1][2] += " " + line
    return [(b, c, t) for b, c, t in verses]


def clean(text: str) -> str:
    text = re.split(r'<div[^>]*type="(?:glossary|introduction)"', text)[0]
    text = _DROP.sub(" ", text)
    text = _TAG.sub(" ", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def sentences(verses: list[tuple[str, int, str]], min_words: int, max_words: int) -> list[str]:
    chapters: dict[tuple[str, int], list[str]] = {}
    for book, chapter, text in verses:
        chapters.setdefault((book, chapter), []).append(clean(text))
    out, seen = [], set()
    for parts in chapters.values():
        for sent in _SPLIT.split(" ".join(parts)):
            sent = sent.strip()
            norm = normalize_line(sent)
            n = len(norm.split())
            if not (min_words <= n <= max_words) or re.search(r"\d", sent) or norm in seen:
                continue
            seen.add(norm)
            out.append(sent)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "sentences")
    parser.add_argument("--max-lines", type=int, default=12000, help="per language (keeps data/ at a few MB)")
    parser.add_argument("--min-words", type=int, default=4)
    parser.add_argument("--max-words", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for lang, module in MODULES.items():
        sents = sentences(dump_verses(module), args.min_words, args.max_words)
        total = len(sents)
        if total > args.max_lines:
            keep = sorted(random.Random(args.seed).sample(range(total), args.max_lines))
            sents = [sents[i] for i in keep]
        (args.out / f"{lang}.txt").write_text("\n".join(sents) + "\n", encoding="utf-8")
        print(f"{lang}: {module}: {total} candidate sentences, kept {len(sents)} -> {args.out / f'{lang}.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
