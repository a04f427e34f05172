"""The ``w2vu`` command: one console script, subcommands that only parse and call.

Each subcommand lives in its own module, which defines ``add_arguments(parser)`` and
``run(args) -> int``. Modules are imported only when their subcommand runs, so ``w2vu --help``
is instant and a missing optional dependency breaks only the command that needs it::

    w2vu --help
    w2vu synth data/sentences/en.txt out/synth --lang en-us --num-train 200
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys

from wav2vec_u.config import ConfigError
from wav2vec_u.tracking import setup_logging
from wav2vec_u.lock import RunLocked

# name -> (module, one-line help). Order is the order of a recipe.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("wav2vec_u.synth.synth_command", "synthesise a speech corpus with espeak-ng (audio, manifest, phones, words, unpaired text)"),
    "import-corpus": ("wav2vec_u.audio.corpus_command", "read TIMIT, LibriSpeech, MLS or one's own labelled audio in its layout into scorable splits"),
    "manifest": ("wav2vec_u.audio.manifest_command", "write a fairseq manifest for a folder of audio, resampling to 16 kHz mono"),
    "vad": ("wav2vec_u.audio.vad_command", "remove non-speech from the audio of a manifest (rVAD), writing new audio and manifest"),
    "cut": ("wav2vec_u.transcribe.cut_command", "cut long recordings into voice-activity chunks: 16 kHz utterances, manifests, chunk times"),
    "extract": ("wav2vec_u.audio.extract_command", "extract frame features (mfcc, logmel, hf:<model>, fairseq:<ckpt.pt>) for a manifest"),
    "segments": ("wav2vec_u.audio.segments_command", "PCA, k-means, merge and mean-pool frame features into segment features"),
    "prepare-audio": ("wav2vec_u.audio.prepare_command", "extract + segments in one step (wav2vec-U audio preparation)"),
    "prepare-text": ("wav2vec_u.text.prepare_command", "normalise and phonemise unpaired text; phone dictionary, lexicon, KenLM phone and word LMs"),
    "train-gan": ("wav2vec_u.train.train_command", "train the wav2vec-U GAN on segment features and phonemised text"),
    "decipher": ("wav2vec_u.decipher.decipher_command", "learn phones from frame features and unpaired text by statistics matching and a decipherment HMM (no GAN)"),
    "sweep": ("wav2vec_u.train.sweep_command", "train many GAN runs (seeds x settings) as stacked models in one process, then pick one without labels"),
    "select": ("wav2vec_u.train.select_command", "pick the best of several GAN runs without labels (paper Eqs. 5-6)"),
    "decode": ("wav2vec_u.decode.decode_command", "decode features with a trained generator: Viterbi phones, or words with lexicon + word LM"),
    "score": ("wav2vec_u.decode.score_command", "PER/WER of hypotheses against references, with alignments"),
    "self-train": ("wav2vec_u.self_train.self_train_command", "train a CTC model on the GAN's pseudo-labels and decode with it"),
    "transcribe": ("wav2vec_u.transcribe.transcribe_command", "transcribe long recordings (files or folders): TextGrid, EAF, CTM, SRT, CSV with times and confidence"),
    "phonemize-refs": ("wav2vec_u.text.refs_command", "reference phones {split}.phn from {split}.wrd (espeak-ng or a lexicon), for scoring PER"),
    "baselines": ("wav2vec_u.demo.baselines_command", "the demo's chance baselines (and supervised bound) for any split of a corpus"),
    "results": ("wav2vec_u.demo.results_command", "a recipe's results table in the demo's format: baselines and each decoded system"),
    "demo": ("wav2vec_u.demo.demo_command", "the whole chain on a synthetic corpus, offline, with baselines and plots"),
    "report": ("wav2vec_u.demo.report_command", "the demo's results table for a run folder the commands wrote (recipes)"),
}


def build_parser(commands: dict[str, tuple[str, str]] | None = None) -> tuple[argparse.ArgumentParser, dict]:
    commands = COMMANDS if commands is None else commands
    parser = argparse.ArgumentParser(prog="w2vu", description="wav2vec-U: unsupervised speech recognition.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    wanted = sys.argv[1] if len(sys.argv) > 1 else None
    for name, (module, help_text) in commands.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        modules[name] = (module, p)
        if name == wanted:  # only the chosen command's module is imported
            importlib.import_module(module).add_arguments(p)
    return parser, modules


def main(argv: list[str] | None = None) -> int:

    if argv is not None:
        sys.argv = ["w2vu", *argv]
    parser, modules = build_parser()
    args, extra = parser.parse_known_args(sys.argv[1:])
    # argparse gives a trailing ``nargs="*"`` positional nothing once an option came between
    # it and the other positionals: ``key=value`` overrides after the options land here
    if extra and isinstance(getattr(args, "overrides", None), list) and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not args.command:
        parser.print_help()
        return 0
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    module = importlib.import_module(modules[args.command][0])
    try:
        return int(module.run(args) or 0)
    except (ConfigError, FileNotFoundError, ValueError, RunLocked) as exc:
        # Bad input is reported in one line naming the file or key; tracebacks are for bugs.
        if args.verbose:
            raise
        print(f"w2vu {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # an output folder that cannot be written (permissions, a read-only mount) is the user's to
        # fix, like a bad input: one line naming the path, not a traceback
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS) or args.verbose:
            raise
        where = exc.filename or "a file"
        print(f"w2vu {args.command}: error: {exc.strerror}: {where}. Check the permissions of that file and its "
              "folder, or choose another output folder", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"w2vu {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
