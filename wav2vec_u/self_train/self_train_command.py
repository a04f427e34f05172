"""``w2vu self-train``: pseudo-label the training audio, train a CTC model on it, decode, iterate.

    # labels from a GAN checkpoint (Viterbi phones of its segment features), CTC on frame features
    w2vu self-train out/frames out/st --checkpoint run/gan/best.pt --label-features out/segments \\
        --text-dir out/text
    # labels from an existing file (e.g. `w2vu decode` output), two iterations
    w2vu self-train out/frames out/st ctc.iterations=2 --labels out/decode_train/train.words.phn
    # fine-tune a Hugging Face encoder with a CTC head on the audio of out/frames/{train,valid}.tsv
    w2vu self-train out/frames out/st_hf hf.model=facebook/wav2vec2-base hf.device=cuda hf.precision=bf16 \\
        --checkpoint run/gan/best.pt --label-features out/segments --text-dir out/text

(``key=value`` overrides go right after the two paths, before any ``--option``.)

Outputs in OUTDIR: ``pseudo/`` (the labelling decode, when a checkpoint is given),
``ctc_iter{i}.pt`` and ``ctc.pt`` (the last model; decode more audio with ``w2vu decode
OUTDIR/ctc.pt FEATURES ...``), ``train.st.phn``/``valid.st.phn`` (its greedy decode),
``history.json`` (per iteration: pseudo-label PER if references exist, decoded PER, phone-LM
metric), ``decode/`` (words from the self-trained model, when the text folder has a lexicon
and word LM), ``self-train.log``, ``metrics.jsonl``, ``meta.json``.

With ``hf.model`` set (:mod:`wav2vec_u.self_train.hf`) the CTC model is a Hugging Face encoder
fine-tuned on the raw audio: FEATURES then only has to name the audio (``{split}.tsv``, which
``w2vu extract`` keeps, or the manifest its ``meta.json`` records; a corpus folder works with
``--labels``); ``ctc_iter{i}.pt`` is written only when ``hf.iterations`` > 1.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wav2vec_u.config import add_config_arguments, add_tracking_arguments, config_from_args
from wav2vec_u.decode.decode import summary_lines
from wav2vec_u.self_train.run import SelfTrainRunConfig, run_self_train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("features", type=Path, help="features the CTC model reads ({split}.npy + .lengths); "
                        "with hf.model=...: the folder whose {split}.tsv lists the audio")
    parser.add_argument("outdir", type=Path, help="output folder")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="GAN checkpoint whose decode becomes the pseudo-labels")
    src.add_argument("--labels", type=Path, help="pseudo-label file: one phone line per training utterance")
    parser.add_argument("--label-features", type=Path, help="features the GAN reads (default: FEATURES)")
    parser.add_argument("--text-dir", type=Path, help="prepare-text output (phone LM, lexicon, word LM, dict.phn.txt)")
    parser.add_argument("--ref-dir", type=Path, help="folder with {split}.phn references (default: FEATURES)")
    add_config_arguments(parser)
    add_tracking_arguments(parser)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(SelfTrainRunConfig, args)
    summary = run_self_train(args.features, args.outdir, cfg, checkpoint=args.checkpoint,
                             label_features=args.label_features, labels_file=args.labels, text_dir=args.text_dir,
                             ref_dir=args.ref_dir, wandb=args.wandb)
    for row in summary["history"]:
        parts = [f"iteration {row['iteration']}"]
        for key in ("pseudo_label_per", "train_per", "valid_per"):
            if key in row:
                parts.append(f"{key} {100 * row[key]:.2f}%")
        if "weighted_lm_ppl" in row:
            parts.append(f"weighted_lm_ppl {row['weighted_lm_ppl']:.2f}")
        print("  ".join(parts))
    if summary["words"] is not None:
        print(summary_lines(summary["words"]))
    print(f"self-train: model and outputs in {args.outdir}")
    return 0
