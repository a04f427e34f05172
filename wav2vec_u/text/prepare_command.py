"""``w2vu prepare-text INPUT.txt OUTDIR --lang LANG``: the text side in one command.

    w2vu prepare-text data/sentences/en.txt out/text --lang en-us
    w2vu prepare-text data/sentences/es.txt out/text_es --lang es silence.prob=0.5
    w2vu prepare-text corpus.txt out/text --lexicon my_lexicon.tsv phones.min_count=1000

Writes phones.txt (with <SIL>), phones.nosil.txt, words.txt, dict.phn.txt, phones.summary.tsv,
lexicon.lst, oov.txt, lm.phones.4.{arpa,bin}, lm.words.4.{arpa,bin} and meta.json into OUTDIR
(see :mod:`wav2vec_u.text.prepare`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wav2vec_u.io import resource_path
from wav2vec_u.config import add_config_arguments, add_tracking_arguments, config_from_args
from wav2vec_u.text.config import TextConfig
from wav2vec_u.text.prepare import prepare_text

__all__ = ["add_arguments", "run", "prepare_text"]

DEFAULT_CONFIG = resource_path("configs", "text", "w2vu.yaml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="UTF-8 text, one sentence per line")
    parser.add_argument("outdir", type=Path, help="output directory")
    parser.add_argument("--lang", help="espeak-ng language code, e.g. en-us, es (default: the config's lang)")
    parser.add_argument("--lexicon", type=Path, help="pronunciation lexicon 'word<TAB>p1 p2 ...' instead of espeak-ng")
    parser.add_argument("--njobs", type=int, help="phonemisation processes (default: the config's phonemize.njobs)")
    parser.add_argument("--force", action="store_true", help="redo the work even if OUTDIR is up to date")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    add_config_arguments(parser, DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    add_tracking_arguments(parser, tracked=False)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    cfg = config_from_args(TextConfig, args)
    if args.njobs is not None:
        cfg = dataclasses.replace(cfg, phonemize=dataclasses.replace(cfg.phonemize, njobs=args.njobs))
    meta = prepare_text(args.input, args.outdir, cfg, lang=args.lang, lexicon=args.lexicon,
                        force=args.force, progress=args.progress)
    c = meta["counts"]
    print(f"prepare-text: {c['sentences']} sentences, {c['words']} words, {c['phone_inventory']} phones "
          f"+ <SIL>, {c['lexicon_entries']} lexicon entries, {c['oov_words']} OOV words -> {args.outdir}")
    return 0
