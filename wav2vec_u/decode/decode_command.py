"""``w2vu decode``: phones (Viterbi) and words (lexicon + word LM) from a trained model.

    w2vu decode run/gan/best.pt out/segments out/decode --text-dir out/text
    w2vu decode run/gan/best.pt out/segments out/decode split=test tune.criterion=wer tune.split=valid \
        --text-dir out/text
    w2vu decode run/st/ctc.pt out/frames out/decode_st --text-dir out/text      # a self-trained model
    w2vu decode run/gan/best.pt out/segments out/decode words=false              # phones only

(``key=value`` overrides go right after the three paths, before any ``--option``.)

The model is a GAN checkpoint (``w2vu train-gan``) or a CTC model (``w2vu self-train``); the
feature folder must be the kind it was trained on. A fine-tuned Hugging Face CTC model
(``w2vu self-train hf.model=...``) reads the audio listed in the folder's ``S.tsv`` instead.
Outputs in OUTDIR, for split S:

- ``S.viterbi.phn``: greedy phones, one utterance per line;
- ``S.words.wrd`` / ``S.words.phn``: lexicon + word-LM decoding (when the text folder has
  ``lexicon.lst`` and ``lm.words.4.bin``/``.arpa``), and the phones of those words;
- ``S.timestamps.jsonl``: per utterance, phones and words with start/end (seconds when the
  frame rate is known, else frames);
- ``S.scores.json``: PER/WER with S/I/D counts when references (``S.phn``/``S.wrd`` in the
  feature folder or ``--ref-dir``) exist, the phone-LM metric, the tuning table;
  ``S.*.align``: per-utterance alignments; ``meta.json``: config, input hashes, versions.

LM weight and word score are tuned on the decoded split, or on ``tune.split`` (first
``tune.max_utts`` utterances), by the label-free criterion of
:func:`lexicon_decoder.unsupervised_score`, or by WER with ``tune.criterion=wer`` (needs
references: tune on a dev split with ``tune.split=valid``, report on another).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wav2vec_u.config import add_config_arguments, add_tracking_arguments, config_from_args
from wav2vec_u.decode.decode import DecodeConfig, decode_split, summary_lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="GAN checkpoint (train-gan) or CTC model (self-train)")
    parser.add_argument("features", type=Path, help="feature folder the model reads ({split}.npy + .lengths); "
                        "for a fine-tuned Hugging Face model, the folder whose {split}.tsv lists the audio")
    parser.add_argument("outdir", type=Path, help="folder for the decoded outputs")
    parser.add_argument("--text-dir", type=Path, help="prepare-text output: lexicon.lst, lm.words.4.bin, lm.phones.4.bin")
    parser.add_argument("--ref-dir", type=Path, help="folder with {split}.phn / {split}.wrd references "
                        "(default: the feature folder)")
    add_config_arguments(parser)
    add_tracking_arguments(parser, tracked=False)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(DecodeConfig, args)
    res = decode_split(args.checkpoint, args.features, args.outdir, cfg, text_dir=args.text_dir, ref_dir=args.ref_dir)
    print(summary_lines(res))
    print(f"decode: outputs in {args.outdir}")
    return 0
