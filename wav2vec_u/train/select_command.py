"""``w2vu select``: pick the best of several finished GAN runs without labels (paper Eqs. 5-6).

    w2vu select runs/seed0 runs/seed1 runs/seed2 --out runs/selection.json

Each run's checkpoint (``best.pt`` by default) Viterbi-decodes the validation features and the
phone LM scores the outputs; the anchor is the run with the lowest NLL − log U, runs within
``log(U / U_anchor) + log 1.2`` of its NLL are kept, and the kept run with the highest total LM
log-probability is chosen. Features, text dir and LM default to those recorded in the
checkpoint. Writes a JSON report (all scores, anchor, kept, chosen) and prints the chosen path.
PER is reported when references exist but never used to choose.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wav2vec_u.config import add_tracking_arguments
from wav2vec_u.io import write_json
from wav2vec_u.train.selection import select_checkpoints, selection_record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, help="run dirs (or checkpoint files)")
    parser.add_argument("--checkpoint", default="best.pt", help="checkpoint name inside each run dir")
    parser.add_argument("--features", type=Path, help="feature dir (default: the one the run trained on)")
    parser.add_argument("--text", type=Path, help="prepare-text dir with the phone LM (default: from the run)")
    parser.add_argument("--split", default="valid", help="feature split to decode")
    parser.add_argument("--tolerance", type=float, default=1.2, help="the 1.2 of paper Eq. 6")
    parser.add_argument("--out", type=Path, help="JSON report (default: print only)")
    add_tracking_arguments(parser, tracked=False)


def run(args: argparse.Namespace) -> int:

    ckpts = [r / args.checkpoint if r.is_dir() else r for r in args.runs]
    report = selection_record(select_checkpoints(ckpts, args.features, args.text, args.split, args.tolerance))
    if args.out:
        write_json(args.out, report)
    for s in report["runs"]:
        print(f"{s['checkpoint']}\tnll={s['lm_nll']:.4f}\tU={s['vocab_usage']:.3f}\tlogprob={s['lm_log_prob']:.1f}"
              f"\tweighted_lm_ppl={s['weighted_lm_ppl']:.3f}")
    print(f"chosen: {report['chosen']}")
    return 0
