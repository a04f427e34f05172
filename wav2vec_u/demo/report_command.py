"""``w2vu report``: the demo's results table for a run folder that the ``w2vu`` commands wrote.

    recipes/synthetic/run.sh --quick --out runs/recipe-quick     # its last stage is:
    w2vu report runs/recipe-quick --quick

The folder has the demo's layout (corpus/, text/, features/, segments/, train/, select/,
decode/, self_train/). The chance baselines and the supervised bound are computed (and cached)
as the demo computes them, then every system is scored against the held-back references and
the table, plots and results.json are written. With the same config and seed it prints the
table ``w2vu demo`` prints, because every stage ran the same function.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wav2vec_u.demo.demo_command import add_arguments as add_demo_arguments
from wav2vec_u.demo.demo_command import resolve_config
from wav2vec_u.demo.pipeline import report_run_dir
from wav2vec_u.demo.report import format_console


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="run folder in the demo's layout")
    add_demo_arguments(parser, with_out=False)


def run(args: argparse.Namespace) -> int:
    import torch  # noqa: PLC0415


    args.out = args.run_dir
    cfg, _ = resolve_config(args)
    torch.set_num_threads(cfg.threads)
    results = report_run_dir(cfg, args.run_dir, force=args.force)
    print(format_console(results))
    print(f"written: {args.run_dir / 'results.json'}, {args.run_dir / 'results.md'}, {args.run_dir / 'plots'}/")
    return 0
