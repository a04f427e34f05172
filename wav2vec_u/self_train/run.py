"""The self-training stage over folders: pseudo-label, train a CTC model, decode, iterate, record.

    summary = run_self_train("out/frames", "out/st", SelfTrainRunConfig(), checkpoint="run/gan/best.pt",
                             label_features="out/segments", text_dir="out/text")

``w2vu self-train`` parses its arguments and calls this; the demo calls it too.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from wav2vec_u.config import renamed, save_config
import numpy as np

from wav2vec_u.audio.features_io import load_features
from wav2vec_u.decode.decode import DecodeConfig, decode_split
from wav2vec_u.tokens import read_token_lines, split_by_lengths
from wav2vec_u.metrics import normalize_tokens
from wav2vec_u.tokens import SPECIAL_TOKENS
from wav2vec_u.models.hf_ctc import HfCtcConfig
from wav2vec_u.self_train.ctc import SelfTrainConfig, self_train
from wav2vec_u.models.ctc import save_ctc_model
from wav2vec_u.io import atomic_write_text, sha256_file, write_json
from wav2vec_u.audio.manifest import split_audio, split_manifest
from wav2vec_u.models.hf_ctc import check_model, save_hf_ctc
from wav2vec_u.self_train.hf import self_train_hf
from wav2vec_u.tracking import Tracker, provenance
from wav2vec_u.train.data import read_dictionary
from wav2vec_u.train.selection import find_phone_lm, load_lm
from wav2vec_u.lock import run_lock

log = logging.getLogger(__name__)


@renamed(self_train="ctc")  # was self_train.self_train.* in the demo
@dataclass
class SelfTrainRunConfig:
    train_split: str = "train"
    valid_split: str = "valid"      # "" for none; decoded and scored each iteration when present
    labels: Literal["viterbi", "words"] = "viterbi"  # which GAN output becomes the pseudo-labels
    decode_words: bool = True       # decode valid_split into words with the self-trained model
    labelling: DecodeConfig = field(default_factory=DecodeConfig)  # how the GAN labels (split is set here)
    final_decode: DecodeConfig = field(default_factory=DecodeConfig)  # word decoding of the CTC model
    ctc: SelfTrainConfig = field(default_factory=SelfTrainConfig)  # the CTC head over frozen features
    # hf.model set: fine-tune that Hugging Face encoder on the audio instead (ctc.* unused)
    hf: HfCtcConfig = field(default_factory=HfCtcConfig)


def _phone_inventory(text_dir: Path | None, labels: list[list[str]]) -> list[str]:
    if text_dir is not None and (text_dir / "dict.phn.txt").is_file():

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
    References ``{split}.phn`` are read from ``ref_dir`` (default ``features``). The output folder
    is locked for the run (:mod:`wav2vec_u.lock`): a second run on it is refused.
    """
    with run_lock(outdir, "self-train"):
        return _run_self_train(features, outdir, cfg, checkpoint=checkpoint, label_features=label_features,
                               labels_file=labels_file, text_dir=text_dir, ref_dir=ref_dir, wandb=wandb)


def _run_self_train(features: str | Path, outdir: str | Path, cfg: SelfTrainRunConfig | None, *,
                    checkpoint: str | Path | None, label_features: str | Path | None,
                    labels_file: str | Path | None, text_dir: str | Path | None,
                    ref_dir: str | Path | None, wandb: bool) -> dict:

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
    seed = cfg.hf.seed if audio else cfg.ctc.seed
    with Tracker(outdir, "self-train", cfg, seed=seed, wandb=wandb) as tracker:
        if audio:

            check_model(cfg.hf.model)  # before any labelling: a missing model fails in seconds
            train_utts = split_audio(features, cfg.train_split)
            inputs[str(train_utts.manifest)] = sha256_file(train_utts.manifest)
        else:
            feats, lengths = load_features(features, cfg.train_split)
            train_utts = split_by_lengths(feats, lengths, np.float32)
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
        train_refs = read_token_lines(ref_dir / f"{cfg.train_split}.phn", len(train_utts), missing_ok=True)
        valid_utts = valid_refs = None
        if audio and cfg.valid_split:

            if split_manifest(features, cfg.valid_split) is not None:
                valid_utts = split_audio(features, cfg.valid_split)
                valid_refs = read_token_lines(ref_dir / f"{cfg.valid_split}.phn", len(valid_utts), missing_ok=True)
        elif cfg.valid_split and (features / f"{cfg.valid_split}.npy").is_file():
            vf, vl = load_features(features, cfg.valid_split)
            valid_utts = split_by_lengths(vf, vl, np.float32)
            valid_refs = read_token_lines(ref_dir / f"{cfg.valid_split}.phn", len(valid_utts), missing_ok=True)
        phone_lm = None
        if text_dir is not None:

            lm_path = find_phone_lm(text_dir)
            phone_lm = load_lm(lm_path) if lm_path else None
        phones = _phone_inventory(text_dir, labels)

        def on_row(row):
            tracker.log({k: v for k, v in row.items() if isinstance(v, (int, float))}, step=row["iteration"])

        if audio:

            def on_model(i, model, row):  # big models are saved as they finish, not kept
                if cfg.hf.iterations > 1:
                    save_hf_ctc(outdir / f"ctc_iter{i}.pt", model, cfg.hf, {"history": row})

            result = self_train_hf(train_utts, labels, phones, cfg.hf, train_refs=train_refs,
                                   valid_wavs=valid_utts, valid_refs=valid_refs, phone_lm=phone_lm, on_row=on_row,
                                   on_model=on_model)
            save_hf_ctc(outdir / "ctc.pt", result.model, cfg.hf, {"history": result.history})
        else:
            result = self_train(train_utts, labels, phones, cfg.ctc, train_refs=train_refs,
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

        write_json(outdir / "meta.json", {"stage": "self-train", **provenance(cfg, seed, inputs)})
    return summary
