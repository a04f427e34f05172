"""``w2vu cut``: long recordings -> voice-activity chunks as 16 kHz utterances with manifests.

    w2vu cut field/ --out out/chunks                        # train.tsv, valid.tsv, audio/, chunks.csv
    w2vu cut field/ --out out/chunks chunks.vad.method=silero valid_percent=0.1

The chunks are the ones ``w2vu transcribe`` decodes (same chunker and config section), so a model
trained on them later transcribes the same kind of input. See :mod:`wav2vec_u.transcribe.cut`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wav2vec_u.config import add_tracking_arguments, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="audio files or folders (recursive); KEY=VALUE items are config overrides")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--config", type=Path, help="YAML config file (default: built-in defaults)")
    parser.set_defaults(overrides=[])  # KEY=VALUE after the options: w2vu's main hands them over
    add_tracking_arguments(parser, tracked=False)  # accepted like every command's; nothing is tracked


def run(args: argparse.Namespace) -> int:
    from wav2vec_u.transcribe.cut import CutConfig, cut_recordings

    given = [x for x in args.inputs if "=" in x and not Path(x).exists()]
    inputs = [x for x in args.inputs if x not in given]
    if not inputs:
        raise FileNotFoundError("no INPUT given: name audio files or folders")
    res = cut_recordings(inputs, args.out, load_config(CutConfig, args.config, given + list(args.overrides)))
    print(f"cut: {res['chunks']} chunks ({res['speech_hours']:.2f} h of speech; {res['train']} train, "
          f"{res['valid']} valid), {res['skipped']} files skipped (see {args.out}/skipped.tsv)")
    return 0
