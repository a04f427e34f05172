"""``w2vu self-train``: pseudo-label the training audio, train a CTC model on it, decode, iterate.

    # labels from a GAN checkpoint (Viterbi phones of its segment features), CTC on frame features
    w2vu self-train out/frames out/st --checkpoint run/gan/best.pt --label-features out/segments \\
        --text-dir out/text
    # labels from an existing file (e.g. `w2vu decode` output), two iterations
    w2vu self-train out/frames out/st self_train.iterations=2 --labels out/decode_train/train.words.phn
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

With ``hf.model`` set (:mod:`wav2vec_u.decode.hf_ctc`) the CTC model is a Hugging Face encoder
fine-tuned on the raw audio: FEATURES then only has to name the audio (``{split}.tsv``, which
``w2vu extract`` keeps, or the manifest its ``meta.json`` records; a corpus folder works with
``--labels``); ``ctc_iter{i}.pt`` is written only when ``hf.iterations`` > 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from wav2vec_u.config import add_config_arguments, add_tracking_arguments, config_from_args, save_config
from wav2vec_u.decode.command import (DecodeConfig, decode_split, load_split, read_token_lines, split_utterances,
                                      summary_lines)
from wav2vec_u.decode.metrics import SPECIAL_TOKENS, normalize_tokens
from wav2vec_u.decode.hf_ctc import HfCtcConfig
from wav2vec_u.decode.self_train import SelfTrainConfig, save_ctc_model, self_train
from wav2vec_u.io import atomic_write_text, sha256_file, write_json

log = logging.getLogger(__name__)


@dataclass
class SelfTrainRunConfig:
    train_split: str = "train"
    valid_split: str = "valid"      # "" for none; decoded and scored each iteration when present
    labels: Literal["viterbi", "words"] = "viterbi"  # which GAN output becomes the pseudo-labels
    decode_words: bool = True       # decode valid_split into words with the self-trained model
    labelling: DecodeConfig = field(default_factory=DecodeConfig)  # how the GAN labels (split is set here)
    final_decode: DecodeConfig = field(default_factory=DecodeConfig)  # word decoding of the CTC model
    self_train: SelfTrainConfig = field(default_factory=SelfTrainConfig)
    # hf.model set: fine-tune that Hugging Face encoder on the audio instead (self_train.* unused)
    hf: HfCtcConfig = field(default_factory=HfCtcConfig)


def _phone_inventory(text_dir: Path | None, labels: list[list[str]]) -> list[str]:
    if text_dir is not None and (text_dir / "dict.phn.txt").is_file():
        from wav2vec_u.train.data import read_dictionary

        phones = read_dictionary(text_dir)
    else:
        phones = sorted({p for lab in labels for p in lab})
    return [p for p in phones if p not in SPECIAL_TOKENS]


def run_self_train(features: str | Path, outdir: str | Path, cfg: SelfTrainRunConfig | None = None, *,
                   checkpoint: str | Path | None = None, label_features: str | Path | None = None,
                   labels_file: str | Path | None = None, text_dir: str | Path | None = None,
                   ref_dir: str | Path | None = None, wandb: bool = False) -> dict:
    """Pseudo-label, self-train, decode. Returns ``{"history": [...], "valid": {...}, "words": ...}``.

    Give either ``checkpoint`` (a GAN: its ``cfg.labels`` output on ``label_features``, default
    ``features``, becomes the labels) or ``labels_file`` (one phone line per training utterance).
    ``features`` is what the CTC model reads (frame features work best: CTC needs at least one
    input per label), or with ``cfg.hf.model`` the folder whose ``{split}.tsv`` lists the audio.
    References ``{split}.phn`` are read from ``ref_dir`` (default ``features``).
    """
    from wav2vec_u.tracking import Tracker

    cfg = cfg or SelfTrainRunConfig()
    features, outdir = Path(features), Path(outdir)
    text_dir = Path(text_dir) if text_dir else None
    ref_dir = Path(ref_dir) if ref_dir else features
    if (checkpoint is None) == (labels_file is None):
        raise ValueError("give exactly one of a GAN checkpoint (--checkpoint) or a label file (--labels)")
    outdir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, outdir / "self-train.yaml")
    inputs = {}
    audio = bool(cfg.hf.model)  # fine-tune a Hugging Face encoder on the audio
    seed = cfg.hf.seed if audio else cfg.self_train.seed
    with Tracker(outdir, "self-train", cfg, seed=seed, wandb=wandb) as tracker:
        if audio:
            from wav2vec_u.decode.hf_ctc import check_model, split_audio

            check_model(cfg.hf.model)  # before any labelling: a missing model fails in seconds
            train_utts = split_audio(features, cfg.train_split)
            inputs[str(train_utts.manifest)] = sha256_file(train_utts.manifest)
        else:
            feats, lengths = load_split(features, cfg.train_split)
            train_utts = split_utterances(feats, lengths)
        labelling = None
        if checkpoint is not None:
            lab_cfg = dataclasses.replace(cfg.labelling, split=cfg.train_split, words=cfg.labels == "words")
            labelling = decode_split(checkpoint, label_features or features, outdir / "pseudo", lab_cfg,
                                     text_dir=text_dir, ref_dir=ref_dir)
            suffix = "words.phn" if cfg.labels == "words" else "viterbi.phn"
            labels_file = outdir / "pseudo" / f"{cfg.train_split}.{suffix}"
            if not labels_file.is_file():
                raise FileNotFoundError(f"{labels_file} was not written: word labels need --text-dir with a "
                                        "lexicon and word LM")
            inputs[str(checkpoint)] = sha256_file(checkpoint)
        labels_file = Path(labels_file)
        if not labels_file.is_file():
            raise FileNotFoundError(f"missing label file {labels_file}")
        labels = read_token_lines(labels_file, len(train_utts))
        labels = [normalize_tokens(lab) for lab in labels]
        inputs[str(labels_file)] = sha256_file(labels_file)
        train_refs = read_token_lines(ref_dir / f"{cfg.train_split}.phn", len(train_utts))
        valid_utts = valid_refs = None
        if audio and cfg.valid_split:
            from wav2vec_u.decode.hf_ctc import split_audio, split_manifest

            if split_manifest(features, cfg.valid_split) is not None:
                valid_utts = split_audio(features, cfg.valid_split)
                valid_refs = read_token_lines(ref_dir / f"{cfg.valid_split}.phn", len(valid_utts))
        elif cfg.valid_split and (features / f"{cfg.valid_split}.npy").is_file():
            vf, vl = load_split(features, cfg.valid_split)
            valid_utts = split_utterances(vf, vl)
            valid_refs = read_token_lines(ref_dir / f"{cfg.valid_split}.phn", len(valid_utts))
        phone_lm = None
        if text_dir is not None:
            from wav2vec_u.train.selection import find_phone_lm, load_lm

            lm_path = find_phone_lm(text_dir)
            phone_lm = load_lm(lm_path) if lm_path else None
        phones = _phone_inventory(text_dir, labels)

        def on_row(row):
            tracker.log({k: v for k, v in row.items() if isinstance(v, (int, float))}, step=row["iteration"])

        if audio:
            from wav2vec_u.decode.hf_ctc import save_hf_ctc, self_train_hf

            def on_model(i, model, row):  # big models are saved as they finish, not kept
                if cfg.hf.iterations > 1:
                    save_hf_ctc(outdir / f"ctc_iter{i}.pt", model, cfg.hf, {"history": row})

            result = self_train_hf(train_utts, labels, phones, cfg.hf, train_refs=train_refs,
                                   valid_wavs=valid_utts, valid_refs=valid_refs, phone_lm=phone_lm, on_row=on_row,
                                   on_model=on_model)
            save_hf_ctc(outdir / "ctc.pt", result.model, cfg.hf, {"history": result.history})
        else:
            result = self_train(train_utts, labels, phones, cfg.self_train, train_refs=train_refs,
                                valid_utts=valid_utts, valid_refs=valid_refs, phone_lm=phone_lm, on_row=on_row)
            for i, m in enumerate(result.models, 1):
                save_ctc_model(outdir / f"ctc_iter{i}.pt", m, {"history": result.history[i - 1]})
            save_ctc_model(outdir / "ctc.pt", result.model, {"history": result.history})
        atomic_write_text(outdir / f"{cfg.train_split}.st.phn", "".join(" ".join(h) + "\n" for h in result.train_hyps))
        if result.valid_hyps is not None:
            atomic_write_text(outdir / f"{cfg.valid_split}.st.phn",
                              "".join(" ".join(h) + "\n" for h in result.valid_hyps))
        summary = {"history": result.history, "labels_file": str(labels_file),
                   "labelling": labelling, "words": None}
        if cfg.decode_words and valid_utts is not None and text_dir is not None:
            dec_cfg = dataclasses.replace(cfg.final_decode, split=cfg.valid_split)
            summary["words"] = decode_split(outdir / "ctc.pt", features, outdir / "decode", dec_cfg,
                                            text_dir=text_dir, ref_dir=ref_dir)
        write_json(outdir / "history.json", summary)
        from wav2vec_u.tracking import provenance

        write_json(outdir / "meta.json", {"stage": "self-train", **provenance(cfg, seed, inputs)})
    return summary


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
