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

from wav2vec_u.metrics import error_rate, normalize_tokens, write_alignments
from wav2vec_u.config import add_tracking_arguments
from wav2vec_u.io import write_json


def read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"missing file: {path}")
    text = path.read_text(encoding="utf-8")
    return text[:-1].split("\n") if text.endswith("\n") else (text.split("\n") if text else [])


def score_files(hyp: str | Path, ref: str | Path, *, words: bool = False, align: str | Path | None = None,
                json_out: str | Path | None = None) -> dict:
    hyp, ref = Path(hyp), Path(ref)
    h_lines, r_lines = read_lines(hyp), read_lines(ref)
    if len(h_lines) != len(r_lines):
        raise ValueError(f"{hyp} has {len(h_lines)} lines but {ref} has {len(r_lines)}: "
                         "they must list the same utterances in the same order")
    hyps = [normalize_tokens(x.split(), lower=words) for x in h_lines]
    refs = [normalize_tokens(x.split(), lower=words) for x in r_lines]
    stats = error_rate(refs, hyps)
    name = "WER" if words else "PER"
    if align:
        write_alignments(align, stats, name=name)
    out = {"metric": name, "hyp": str(hyp), "ref": str(ref), **stats.to_dict()}
    if json_out:
        write_json(json_out, out)
    out["summary"] = stats.summary(name)
    return out


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
