"""``w2vu import-corpus LAYOUT SRC OUTDIR``: a public corpus, or one's own labelled audio, as scorable splits.

    w2vu import-corpus timit /data/TIMIT out/corpus setting=matched
    w2vu import-corpus librispeech /data/LibriSpeech out/corpus \\
        'splits={train: [train-clean-100], valid: [dev-other], test: [test-other]}'
    w2vu import-corpus mls /data/mls_german out/corpus
    w2vu import-corpus plain /data/my_dev_audio out/dev --transcripts my_dev.tsv split=valid

Writes ``{split}.tsv`` (manifests whose root is SRC: the audio is read in place), ``.wrd``,
``.ids``, for TIMIT ``.phn`` (folded to 39) and the phone text ``text.txt``, ``skipped.tsv`` and
``meta.json`` (see :mod:`wav2vec_u.audio.corpora` for each layout and its checks). The whole
tree is checked first: a missing label file, a transcript line without audio, audio that is not
16 kHz mono is an error naming the files, and nothing is written. Cached: a rerun on an unchanged
tree with the same options does nothing.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from wav2vec_u.audio.corpora import LAYOUTS, ImportConfig, corpus_outputs, read_layout, write_corpus
from wav2vec_u.config import add_config_arguments, add_stage_arguments, add_tracking_arguments, config_from_args, to_dict
from wav2vec_u.stage import fingerprint, run_stage

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("layout", choices=LAYOUTS, help="the corpus's layout")
    parser.add_argument("src", type=Path, help="the corpus folder (TIMIT: the one with TRAIN/ and TEST/; LibriSpeech: "
                        "the one with the subsets; MLS: one language's folder; plain: a folder of audio)")
    parser.add_argument("outdir", type=Path, help="corpus folder to write: {split}.tsv/.wrd/.phn/.ids, meta.json")
    parser.add_argument("--transcripts", type=Path, help="plain: 'name<TAB>text' lines, one per audio file")
    add_stage_arguments(parser)
    add_config_arguments(parser)
    add_tracking_arguments(parser, tracked=False)


def _listing(src: Path, transcripts: Path | None) -> list:
    files = [p for p in sorted(src.rglob("*")) if p.is_file()] + ([transcripts] if transcripts else [])
    return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(ImportConfig, args)
    src = args.src.resolve()
    if not src.is_dir():
        raise FileNotFoundError(f"corpus folder not found: {src}")
    transcripts = args.transcripts.resolve() if args.transcripts else None
    fp = fingerprint({"layout": args.layout, "config": to_dict(cfg), "src": str(src),
                      "files": _listing(src, transcripts)})
    # a new OUTDIR is made only after the whole tree passed its checks: a layout error leaves nothing
    checked = read_layout(args.layout, src, cfg, transcripts) if not args.outdir.exists() else None

    def work():
        splits, more, skipped = checked or read_layout(args.layout, src, cfg, transcripts)
        return write_corpus(args.outdir, src, splits, more, skipped, args.layout), corpus_outputs(splits, more)

    ran, result = run_stage(args.outdir, fp, lambda r: r[1], work, force=args.force, what="import-corpus")
    if not ran:
        print(f"import-corpus: {args.outdir} is up to date (same tree and options); --force rereads it")
        return 0
    summary = result[0]
    for split, s in summary["splits"].items():
        print(f"{split}: {s['utterances']} utterances, {s['speakers']} speakers, {s['hours']:.2f} h")
    if summary["skipped"]:
        print(f"left out {sum(summary['skipped'].values())} files that are not part of the layout: "
              f"{args.outdir / 'skipped.tsv'}")
    print(f"import-corpus: {args.layout} -> {args.outdir}")
    return 0
