"""``w2vu baselines CORPUS SEGMENTS TEXT OUTDIR``: the demo's chance baselines (and bound) for any split.

    w2vu baselines out/corpus out/segments out/text out/baselines --split test
    w2vu baselines out/corpus out/segments out/text out/baselines --split valid --supervised

Writes ``{split}.most_frequent.hyp`` (the text's most frequent phone at the reference's length;
needs ``CORPUS/{split}.phn``), ``{split}.kmeans_rank.hyp`` (k-means clusters read as phones by
frequency rank: no labels), with ``--supervised`` ``{split}.supervised.hyp`` (the generator
trained with CTC on ``CORPUS/train.phn``: uses labels, an upper bound) and
``{split}.baselines.json`` with their PER when ``{split}.phn`` exists. ``w2vu results`` puts them
in the table. Options: the demo's ``baselines`` section (``kmeans_seed``, ``supervised_*``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wav2vec_u.config import add_config_arguments, add_tracking_arguments, config_from_args, to_dict
from wav2vec_u.demo.baselines import SupervisedConfig, split_baselines
from wav2vec_u.demo.config import BaselineSection
from wav2vec_u.demo.scoring import score
from wav2vec_u.io import write_json
from wav2vec_u.tokens import read_token_lines, write_token_lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus", type=Path, help="corpus folder: {split}.phn references, train.phn for --supervised")
    parser.add_argument("segments", type=Path, help="segment features (w2vu segments): train and the split")
    parser.add_argument("text", type=Path, help="prepare-text output: phones.txt (phone counts), dict.phn.txt")
    parser.add_argument("outdir", type=Path, help="folder for {split}.*.hyp and {split}.baselines.json")
    parser.add_argument("--split", default="valid", help="the split to decode (default: valid)")
    parser.add_argument("--supervised", action="store_true", help="also the supervised bound (labels of train)")
    add_config_arguments(parser)
    add_tracking_arguments(parser, tracked=False)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(BaselineSection, args)
    sup = SupervisedConfig(lr=cfg.supervised_lr, batch_size=cfg.supervised_batch_size, epochs=cfg.supervised_epochs,
                           max_seconds=cfg.supervised_max_seconds) if args.supervised else None
    hyps = split_baselines(args.corpus, args.segments, args.text, args.split, kmeans_seed=cfg.kmeans_seed,
                           supervised=sup)
    refs = read_token_lines(args.corpus / f"{args.split}.phn", missing_ok=True)
    report = {"split": args.split, "config": to_dict(cfg), "per": {}}
    for name, h in hyps.items():
        write_token_lines(args.outdir / f"{args.split}.{name}.hyp", h)
        if refs is not None:
            report["per"][name] = score(refs, h).to_dict()
            print(f"{args.split} {name}: PER {100 * report['per'][name]['rate']:.1f}%")
    write_json(args.outdir / f"{args.split}.baselines.json", report)
    print(f"baselines: {args.outdir}")
    return 0
