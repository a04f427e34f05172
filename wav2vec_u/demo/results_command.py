"""``w2vu results OUTDIR --corpus CORPUS --split S``: a recipe's results table, in the demo's format.

    w2vu results out/results --corpus out/corpus --split test --baselines out/baselines \\
        --system GAN=out/decode_test --system self-trained=out/decode_st_test

Scores every system against ``CORPUS/{split}.phn`` and ``.wrd`` (read here and only here, after
every label-free choice): the baselines of ``w2vu baselines``, then for each ``NAME=DECODE_DIR``
(a ``w2vu decode`` output) its Viterbi phones and, when words were decoded, its lexicon + word-LM
phones and words. Writes ``results.json`` and ``results.md`` and prints the table, as the demo does.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wav2vec_u.config import add_tracking_arguments
from wav2vec_u.demo.report import format_console, new_results, write_results
from wav2vec_u.demo.scoring import recipe_rows
from wav2vec_u.io import read_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("outdir", type=Path, help="folder for results.json and results.md")
    parser.add_argument("--corpus", type=Path, required=True, help="folder with {split}.phn / {split}.wrd references")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--baselines", type=Path, help="w2vu baselines output folder")
    parser.add_argument("--system", action="append", default=[], metavar="NAME=DECODE_DIR",
                        help="a system's w2vu decode folder (repeat for several)")
    parser.add_argument("--select", type=Path, help="w2vu select's JSON: the chosen run, shown under the table")
    add_tracking_arguments(parser, tracked=False)


def run(args: argparse.Namespace) -> int:
    systems = []
    for spec in args.system:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            raise ValueError(f"--system {spec!r}: expected NAME=DECODE_DIR")
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"--system {name}: decode folder not found: {folder}")
        systems.append((name, Path(folder)))
    results = new_results(split=args.split, corpus=str(args.corpus), systems=", ".join(n for n, _ in systems))
    recipe_rows(results, args.corpus, args.split, args.baselines, systems)
    if args.select and args.select.is_file():
        sel = read_json(args.select)
        results["selection"] = {k: v for k, v in sel.items() if isinstance(v, (str, int, float))}
    write_results(args.outdir, results)
    print(format_console(results))
    print(f"written: {args.outdir / 'results.json'}, {args.outdir / 'results.md'}")
    return 0
