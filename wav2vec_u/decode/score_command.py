"""``w2vu score``: PER/WER of a hypothesis file against a reference file, with alignments.

    w2vu score out/decode/valid.viterbi.phn corpus/valid.phn                  # PER
    w2vu score out/decode/valid.words.wrd corpus/valid.wrd --words --align wer.txt

One utterance per line in both files, tokens separated by spaces. Normalisation: special
tokens (``<SIL>``, ``<s>``, ``<unk>``, ...) are dropped; ``--words`` also lower-cases. Empty
lines are empty utterances (see :mod:`wav2vec_u.metrics` for how they count). The
summary is printed and, with ``--json``, written as JSON.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wav2vec_u.config import add_tracking_arguments
from wav2vec_u.metrics import score_files



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("hyp", type=Path, help="hypotheses, one utterance per line")
    parser.add_argument("ref", type=Path, help="references, one utterance per line")
    parser.add_argument("--words", action="store_true", help="word error rate (lower-cases); default: phones")
    parser.add_argument("--align", type=Path, help="write per-utterance alignments here")
    parser.add_argument("--json", type=Path, help="write the counts as JSON here")
    add_tracking_arguments(parser, tracked=False)


def run(args: argparse.Namespace) -> int:
    out = score_files(args.hyp, args.ref, words=args.words, align=args.align, json_out=args.json)
    print(out["summary"])
    return 0
