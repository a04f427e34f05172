"""``w2vu phonemize-refs CORPUS --lang LANG``: reference phones ``{split}.phn`` from ``{split}.wrd``.

    w2vu phonemize-refs out/corpus --lang en-us --splits valid test
    w2vu phonemize-refs out/dev --lang sw --lexicon out/text/lexicon.lst

For one's own transcripts or LibriSpeech/MLS, whose corpora have words but no phones: the PER of
every system is then scored against these (see :mod:`wav2vec_u.text.refs`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wav2vec_u.config import add_tracking_arguments
from wav2vec_u.text.refs import phonemize_refs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus", type=Path, help="folder with {split}.wrd (a corpus folder of w2vu import-corpus)")
    parser.add_argument("--lang", required=True, help="espeak-ng language code (the one prepare-text used)")
    parser.add_argument("--splits", nargs="+", default=["valid"], help="splits to phonemise (default: valid)")
    parser.add_argument("--lexicon", type=Path, help="pronunciations to use first (prepare-text's lexicon.lst)")
    parser.add_argument("--njobs", type=int, default=1, help="espeak-ng processes")
    parser.add_argument("--force", action="store_true", help="replace existing {split}.phn")
    add_tracking_arguments(parser, tracked=False)


def run(args: argparse.Namespace) -> int:
    summary = phonemize_refs(args.corpus, args.splits, args.lang, args.lexicon, args.force, args.njobs)
    for split, s in summary.items():
        print(f"{split}.phn: {s}")
    return 0
