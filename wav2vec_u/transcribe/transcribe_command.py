"""``w2vu transcribe``: an archive of long recordings -> Praat, ELAN, CTM, SRT and CSV transcripts.

    w2vu transcribe run/st/ctc.pt field/ --out out/tr --features-dir out/frames
    w2vu transcribe run/gan/best.pt a.wav b.flac --out out/tr --text-dir out/text       # words too
    w2vu transcribe run/st/ctc.pt field/ --out out/tr --features-dir out/frames --workers 2 \\
        chunks.vad.method=silero chunks.max_chunk_s=15

INPUT: files or folders (searched recursively). ``key=value`` arguments among them are config
overrides (:class:`wav2vec_u.transcribe.transcribe.TranscribeConfig`). How the model's features
are found, the outputs and the resumption: docs/transcribe.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wav2vec_u.config import add_tracking_arguments, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="a checkpoint this package trained (GAN, CTC, Hugging Face CTC)")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="audio files or folders (recursive); KEY=VALUE items are config overrides")
    parser.add_argument("--out", type=Path, required=True, help="output folder (one set of files per recording)")
    parser.add_argument("--features-dir", type=Path, help="the feature folder the model was trained on "
                        "(frames for CTC, segments for a GAN; default for a GAN: its lineage's)")
    parser.add_argument("--text-dir", type=Path, help="prepare-text output with lexicon.lst and lm.words.4.bin: words")
    parser.add_argument("--workers", type=int, default=1, help="processes, one torch thread each")
    parser.add_argument("--config", type=Path, help="YAML config file (default: built-in defaults)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    # KEY=VALUE after the options: w2vu's main hands them over in args.overrides
    parser.set_defaults(overrides=[])
    add_tracking_arguments(parser, tracked=False)  # accepted like every command's; nothing is tracked


def run(args: argparse.Namespace) -> int:
    from wav2vec_u.transcribe.transcribe import TranscribeConfig, transcribe_archive

    given = [x for x in args.inputs if "=" in x and not Path(x).exists()]
    inputs = [x for x in args.inputs if x not in given]
    overrides = given + list(args.overrides)
    if not inputs:
        raise FileNotFoundError("no INPUT given: name audio files or folders")
    cfg = load_config(TranscribeConfig, args.config, overrides)
    res = transcribe_archive(args.model, inputs, args.out, cfg, features_dir=args.features_dir,
                             text_dir=args.text_dir, workers=args.workers, progress=args.progress)
    speed = f", {res['speed']:.0f} h of audio per hour" if res["speed"] else ""
    print(f"transcribe: {res['transcribed']} transcribed, {res['done_before']} already done, "
          f"{len(res['skipped'])} skipped (see {args.out}/skipped.tsv){speed}")
    return 0
