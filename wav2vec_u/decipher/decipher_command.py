"""``w2vu decipher``: a phone recogniser from frame features and unpaired phone text, without labels.

    w2vu decipher out/features out/decipher --text-dir out/text
    w2vu decipher out/features out/decipher --text-dir out/text seeds=[1,2,3,4,5,6] workers=2 --ref-dir out/corpus
    w2vu decipher out/features out/decipher --text-dir out/text --self-train-config configs/demo/en.yaml#self_train
    w2vu self-train out/features out/st --labels out/decipher/train.hyp --text-dir out/text

Writes ``decipher.pt`` (a model ``w2vu decode``, ``self-train --checkpoint`` and ``transcribe``
read), ``{train,valid}.hyp`` (labels: the most likely phone per segment), ``selection.json`` (every seed's label-free scores
and the members) and per seed its matching table's read-out (and, for the members, their labels
alone) in ``seeds/``. ``--ref-dir`` only prints and records PER
after the label-free choice; nothing reads labels. A rerun with the same inputs and options
reuses the outputs.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from wav2vec_u.config import add_config_arguments, add_tracking_arguments, config_from_args
from wav2vec_u.io import resource_path

log = logging.getLogger("wav2vec_u.decipher")

DEFAULT_CONFIG = resource_path("configs", "decipher", "default.yaml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("features", type=Path, help="frame features ({split}.npy + .lengths, meta.json): w2vu extract")
    parser.add_argument("outdir", type=Path, help="output folder")
    parser.add_argument("--text-dir", type=Path, required=True, help="prepare-text output (phones.txt, phone LM)")
    parser.add_argument("--ref-dir", type=Path, help="folder with {split}.phn: PER is printed, never used")
    parser.add_argument("--force", action="store_true", help="recompute even when the outputs are current")
    parser.add_argument("--self-train-config", metavar="FILE[#SECTION]",
                        help="the self-training that scores each segmentation (units.segmentation_by=self_train), "
                             "e.g. configs/demo/en.yaml#self_train; default: the config's self_train section")
    add_config_arguments(parser, DEFAULT_CONFIG)
    add_tracking_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from wav2vec_u.decipher.config import DecipherRunConfig  # noqa: PLC0415
    from wav2vec_u.decipher.run import run_decipher  # noqa: PLC0415 - torch

    cfg = config_from_args(DecipherRunConfig, args)
    if args.self_train_config:
        from wav2vec_u.config import load_config  # noqa: PLC0415
        from wav2vec_u.self_train.run import SelfTrainRunConfig  # noqa: PLC0415

        cfg = dataclasses.replace(cfg, self_train=load_config(SelfTrainRunConfig, args.self_train_config))
    summary = run_decipher(args.features, args.outdir, cfg, text_dir=args.text_dir, ref_dir=args.ref_dir,
                           force=args.force, wandb=args.wandb)
    for row in summary["seeds"]:
        per = ", ".join(f"{k} {100 * v:.2f}%" for k, v in row.items() if k.endswith("_per"))
        lm = f", LM metric {row['weighted_lm_ppl']:.2f}" if "weighted_lm_ppl" in row else ""
        role = " (member)" if row["member"] else " (refined)" if row["refined"] else ""
        print(f"seed {row['seed']}{role}: matching loss {row['match_loss']:.4f}{lm}" + (f", {per}" if per else ""))
    per = ", ".join(f"{k} {100 * v:.2f}%" for k, v in summary["model"].items() if k.endswith("_per"))
    print(f"model: members {summary['members']}" + (f", {per}" if per else ""))
    print(f"labels: {args.outdir}/{{train,valid}}.hyp; model: {args.outdir}/decipher.pt")
    return 0
