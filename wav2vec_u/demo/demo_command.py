"""``w2vu demo``: the whole chain on a synthetic corpus, offline, with baselines and plots.

From the shipped sentences of one language, the demo synthesises speech with espeak-ng,
phonemises a disjoint set of sentences as the unpaired text, extracts frame features, builds
segments, trains the generator *without transcripts*, picks the checkpoint *without labels*
(the phone-LM metric), decodes the held-out audio and only then scores it against the
reference phones it had held back. The results table puts that PER next to two chance
baselines and a supervised upper bound on the same features::

    w2vu demo                          # English, runs/demo-en, ~15 min on 2 CPU cores
    w2vu demo --lang es                # the second shipped language
    w2vu demo --quick                  # tiny sizes, < 2 min (CI)
    w2vu demo train.optim.lr_g=1e-3    # any config key; only what depends on it reruns

Every stage writes into its own folder of the run directory and records a fingerprint of its
options and of its upstream stages' fingerprints (``wav2vec_u.stage``): a rerun with nothing
changed only reprints the table, and a changed option recomputes that stage and everything
downstream of it, nothing upstream.

Outputs in ``--out`` (default ``runs/demo-<lang>``, ``runs/demo-<lang>-quick`` with --quick):
``results.json``, ``results.md``, ``plots/*.png``, ``config.yaml`` and one folder per stage.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wav2vec_u.config import add_tracking_arguments
from wav2vec_u.demo.config import CONFIG_DIR, LANGS, DemoConfig, load_demo_config
from wav2vec_u.demo.pipeline import run_demo
from wav2vec_u.demo.report import format_console


def add_arguments(parser: argparse.ArgumentParser, with_out: bool = True) -> None:
    parser.add_argument("--lang", choices=sorted(LANGS), default=None,
                        help="shipped language (default: the config's, en)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes that run in under 2 minutes (CI)")
    if with_out:
        parser.add_argument("--out", type=Path, default=None,
                            help="run directory (default runs/demo-<lang>, runs/demo-<lang>-quick with --quick)")
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML config (default configs/demo/<lang>.yaml, configs/demo/quick.yaml with --quick)")
    parser.add_argument("--force", action="store_true", help="recompute every stage even when cached")
    parser.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="dotted config overrides, e.g. train.gan.trainer.max_updates=500")
    add_tracking_arguments(parser, tracked=False)


def resolve_config(args: argparse.Namespace) -> tuple[DemoConfig, Path]:
    lang = args.lang or "en"
    if args.config is not None:
        path = args.config
    elif args.quick:
        path = CONFIG_DIR / "quick.yaml"
    else:
        path = CONFIG_DIR / f"{lang}.yaml"
    overrides = list(args.overrides)
    if args.lang:
        overrides.append(f"lang={args.lang}")
    cfg = load_demo_config(path if path.is_file() or args.config is not None else None, overrides)
    out = args.out or Path("runs") / f"demo-{cfg.lang}{'-quick' if args.quick else ''}"
    return cfg, out


def run(args: argparse.Namespace) -> int:
    import torch  # noqa: PLC0415


    cfg, out = resolve_config(args)
    torch.set_num_threads(cfg.threads)
    results = run_demo(cfg, out, force=args.force)
    print(format_console(results))
    print(f"written: {out / 'results.json'}, {out / 'results.md'}, {out / 'plots'}/")
    return 0
