"""``w2vu synth``: synthesise a speech corpus from a sentence file with espeak-ng.

    w2vu synth data/sentences/en.txt out/synth --lang en-us --num-train 200 --num-valid 50 \\
        --num-unpaired 2000 --seed 1 voice.num_variants=4 voice.rate=[120,160]

The flags are shortcuts for config keys (``--lang X`` is ``lang=X``); every other key of
:class:`wav2vec_u.synth.corpus.SynthConfig` is set with ``key=value``. A rerun with the same
sentences and config does nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from wav2vec_u.config import add_config_arguments, add_stage_arguments, add_tracking_arguments, load_config, save_config, to_dict
from wav2vec_u.io import sha256_file
from wav2vec_u.stage import fingerprint, run_stage
from wav2vec_u.text.phonemize import espeak_version
from wav2vec_u.tracking import Tracker

log = logging.getLogger(__name__)

_FLAGS = {"lang": "lang", "num_train": "num_train", "num_valid": "num_valid", "num_unpaired": "num_unpaired",
          "seed": "seed", "workers": "workers"}


def add_arguments(parser) -> None:
    parser.add_argument("sentences", type=Path, help="text file, one sentence per line (e.g. data/sentences/en.txt)")
    parser.add_argument("outdir", type=Path, help="output folder")
    # defaults live in SynthConfig: None here means "not given"
    parser.add_argument("--lang", help="espeak-ng / phonemizer language (en-us, es, ...)")
    parser.add_argument("--num-train", type=int, help="utterances in train.tsv")
    parser.add_argument("--num-valid", type=int, help="utterances in valid.tsv")
    parser.add_argument("--num-unpaired", type=int, help="sentences in unpaired.txt (-1: all not spoken)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--workers", type=int, help="synthesis processes")
    add_stage_arguments(parser)
    add_config_arguments(parser)
    add_tracking_arguments(parser)


def run(args) -> int:
    from wav2vec_u.synth.corpus import SynthConfig, output_files, synthesize_corpus
    from wav2vec_u.synth.espeak import EspeakError

    flags = [f"{key}={getattr(args, attr)}" for attr, key in _FLAGS.items() if getattr(args, attr, None) is not None]
    cfg = load_config(SynthConfig, args.config, flags + list(args.overrides))
    if not args.sentences.is_file():
        raise FileNotFoundError(f"sentence file not found: {args.sentences}")
    outdir: Path = args.outdir
    fp = fingerprint({"config": to_dict(cfg), "espeak": espeak_version(), "version": 1}, inputs=[args.sentences])

    def work() -> None:
        save_config(cfg, outdir / "config.yaml")
        with Tracker(outdir, "synth", config=cfg, seed=cfg.seed, inputs={str(args.sentences): sha256_file(args.sentences)},
                     wandb=args.wandb) as tracker:
            try:
                summary = synthesize_corpus(args.sentences, outdir, cfg, progress=args.progress)
            except EspeakError as exc:  # missing espeak-ng or an unknown voice: one line, not a traceback
                raise ValueError(str(exc)) from None
            tracker.log({"train_hours": summary["hours"]["train"], "valid_hours": summary["hours"]["valid"],
                         "num_unpaired": summary["num_unpaired"], "seconds": summary["seconds"]})
            log.info("synth: %d train + %d valid utterances (%.2f + %.2f min), %d unpaired sentences, timings %s, "
                     "%.1f s", cfg.num_train, cfg.num_valid, summary["hours"]["train"] * 60, summary["hours"]["valid"] * 60,
                     summary["num_unpaired"], summary["timing_status"], summary["seconds"])

    if not run_stage(outdir, fp, output_files(), work, force=args.force)[0]:
        log.info("synth: %s is up to date (same sentences and config); --force recomputes", outdir)
    return 0
