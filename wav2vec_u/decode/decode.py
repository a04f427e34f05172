"""Decoding as a library: one model load per checkpoint, Viterbi phones, lexicon + word-LM words.

    result = decode_split("run/gan/best.pt", "out/segments", "out/decode", DecodeConfig(), text_dir="out/text")

``w2vu decode`` (:mod:`wav2vec_u.decode.decode_command`) parses its arguments and calls
:func:`decode_split`; self-training and the demo call it too.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from wav2vec_u.config import non_negative, positive, save_config
from wav2vec_u.decode.flashlight_decoder import lexicon_decoder
from wav2vec_u.decode.lexicon_decoder import DecoderConfig, decode_all, load_word_lm, tune
from wav2vec_u.text.lexicon import read_pronunciations
from wav2vec_u.metrics import error_rate, normalize_tokens, normalize_words, write_alignments
from wav2vec_u.decode.viterbi import viterbi_decode
from wav2vec_u.audio.features_io import load_features
from wav2vec_u.io import atomic_write_text, read_json, sha256_file, write_json
from wav2vec_u.text.lm import find_phone_lm, find_word_lm, load_lm
from wav2vec_u.tokens import read_token_lines, split_by_lengths, write_token_lines
from wav2vec_u.train.selection import label_free_metrics
from wav2vec_u.audio.features_io import read_clusters
from wav2vec_u.audio.manifest import split_audio
from wav2vec_u.io import load_state
from wav2vec_u.decipher import model as decipher_model
from wav2vec_u.models import ctc, hf_ctc
from wav2vec_u.tracking import provenance
from wav2vec_u.train import checkpoint as gan_checkpoint

log = logging.getLogger(__name__)


@dataclass
class TuneConfig:
    criterion: Literal["unsupervised", "wer", "none"] = "unsupervised"  # none: use decoder.* as given
    lm_weights: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0, 2.0, 3.0, 5.0])
    word_scores: list[float] = field(default_factory=lambda: [-1.0, 0.0, 1.0, 2.0, 3.0])
    # tune on N utterances spread evenly over the split (every k-th: all speakers and lengths), 0 = all
    max_utts: int = non_negative(default=100)
    split: str = ""             # tune on this split (e.g. a labelled dev set); "" = the decoded split
    min_viterbi_per: float = non_negative(default=0.0)  # floor of the Viterbi-PER factor (reference default 0)


@dataclass
class DecodeConfig:
    split: str = "valid"
    words: bool = True            # also decode words when the text folder has a lexicon and word LM
    # frames per second for timestamps; None: from the features' meta.json
    frame_rate: float | None = positive(default=None)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    device: str = "cpu"
    # processes for word decoding and tuning (0 = one per CPU core); the result does not depend on it
    workers: int = non_negative(default=1)


@dataclass
class AcousticModel:
    """What decoding needs from a model: logits of one utterance, and the phones indexing them."""

    logits: Callable[[np.ndarray], np.ndarray]
    phones: list[str]
    kind: str                  # "gan", "ctc" or "hf-ctc"
    subsample: int = 1         # input positions per output position (CTC or generator stride)
    # models that read audio, not {split}.npy: (folder, split) -> (utterances, file naming them)
    inputs: Callable[[Path, str], tuple[list, Path]] | None = None
    frame_rate: float | None = None  # the model's own output rate, when it knows it
    # models that segment their input themselves (decipher): logits and the (S, 2) frame span
    # [start, end) of every output position, in one call; ``logits`` then returns only the first
    segmented: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None


def load_acoustic_model(path: str | Path, device: str = "cpu") -> AcousticModel:
    """Any model this package trains, from one read of its checkpoint: a GAN generator, a
    decipherment model, a self-trained CTC model or a fine-tuned Hugging Face CTC encoder (blank
    offsets applied)."""

    path = Path(path)
    state = load_state(path, "model checkpoint", device)
    fmt = state.get("format")

    if fmt == hf_ctc.FORMAT:  # a fine-tuned Hugging Face encoder: reads the audio

        hf_model = hf_ctc.hf_ctc_from_state(state, device)

        def audio_of(folder: Path, split: str) -> tuple[list, Path]:
            wavs = split_audio(folder, split)
            return wavs, wavs.manifest

        return AcousticModel(lambda w: hf_ctc.hf_ctc_logits(hf_model, w, with_blank_offset=True),
                             list(hf_model.vocab), "hf-ctc", 1, audio_of, hf_model.frame_rate)
    if fmt == ctc.FORMAT:
        model = ctc.ctc_model_from_state(state, device)
        return AcousticModel(lambda x: ctc.ctc_logits(model, x, with_blank_offset=True), list(model.vocab), "ctc",
                             model.cfg.subsample)
    if fmt == decipher_model.FORMAT:  # segments its frame input itself; log posteriors per segment
        dm = decipher_model.decipher_model_from_state(state)
        return AcousticModel(lambda x: dm.log_posteriors(x)[0], list(dm.phones), "decipher", 1,
                             segmented=dm.log_posteriors)
    if fmt == gan_checkpoint.FORMAT:
        gen, phones, gan_cfg = gan_checkpoint.generator_from_state(state, device)
        return AcousticModel(lambda x: gan_checkpoint.generator_logits(gen, x), list(phones), "gan",
                             int(gan_cfg.generator.stride))
    raise ValueError(f"{path} is not a model checkpoint of wav2vec-u (format {fmt!r}; expected a GAN, decipher, "
                     "CTC or Hugging Face CTC checkpoint)")


def model_inputs(model: AcousticModel, feature_dir: Path, split: str) -> tuple[list, list[int] | None, Path]:
    """Per-utterance inputs of ``split`` for ``model``, their lengths (None for audio) and the
    file that identifies them (hashed into meta.json)."""
    if model.inputs is not None:
        utts, source = model.inputs(feature_dir, split)
        return utts, None, source
    feats, lengths = load_features(feature_dir, split)
    return split_by_lengths(feats, lengths, np.float32), lengths, feature_dir / f"{split}.lengths"


def frame_rate_of(feature_dir: Path) -> float | None:
    meta = feature_dir / "meta.json"
    if not meta.is_file():
        return None
    try:
        m = read_json(meta)
    except ValueError:
        return None
    rate = m.get("frame_rate") or (m.get("frame_meta") or {}).get("frame_rate")
    return float(rate) if rate else None


def segment_spans(feature_dir: Path, split: str, lengths: list[int]) -> list[np.ndarray] | None:
    """Frame span of every segment, from ``S.cluster`` (merge runs of equal ids, then pooled groups)."""
    path = feature_dir / f"{split}.cluster"
    if not path.is_file():
        return None

    clusters = read_clusters(path)
    if len(clusters) != len(lengths):
        log.warning("%s has %d utterances, the features %d: no timestamps in seconds", path, len(clusters), len(lengths))
        return None
    out = []
    for ids, n in zip(clusters, lengths):
        spans = cluster_spans(ids, n)
        if spans is None:
            log.warning("%s: segment counts do not match the cluster runs; timestamps are positions", path)
            return None
        out.append(spans)
    return out


def cluster_spans(ids: np.ndarray, num_segments: int) -> np.ndarray | None:
    """``(num_segments, 2)`` frame spans of one utterance's segments, from its per-frame cluster
    ids: runs of equal ids are merged, then mean pooling groups k adjacent runs (ceil(runs / k)
    segments). None when no k up to 8 gives ``num_segments``."""
    ids = np.asarray(ids)
    if len(ids) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))
    runs = np.stack([starts, np.append(starts[1:], len(ids))], axis=1)
    k = next((k for k in range(1, 9) if math.ceil(len(runs) / k) == num_segments), None)
    if k is None:
        return None
    return np.stack([runs[::k, 0], np.append(runs[k::k, 0], len(ids))], axis=1)


def _phone_lm_metric(hyps, text_dir: Path | None, phones: list[str]) -> dict | None:
    """The label-free metric of the Viterbi output, when the text folder has a phone LM."""
    path = find_phone_lm(text_dir) if text_dir is not None else None
    if path is None:
        return None
    return {**label_free_metrics(hyps, load_lm(path), phones), "phone_lm": str(path)}


def decode_split(checkpoint: str | Path, feature_dir: str | Path, outdir: str | Path, cfg: DecodeConfig | None = None,
                 *, text_dir: str | Path | None = None, ref_dir: str | Path | None = None) -> dict:
    """Decode ``cfg.split`` of ``feature_dir`` with ``checkpoint``; write outputs; return the scores.

    Returned dict: ``viterbi`` ({per, sub, ins, del, ... or None without references; and the
    phone-LM metric}), ``words`` (None when not decoded; else wer/per dicts, the chosen
    ``lm_weight``/``word_score`` and the tuning table), ``num_utts``, ``outputs``.
    """
    cfg = cfg or DecodeConfig()
    feature_dir, outdir = Path(feature_dir), Path(outdir)
    text_dir = Path(text_dir) if text_dir else None
    ref_dir = Path(ref_dir) if ref_dir else feature_dir
    split = cfg.split
    outdir.mkdir(parents=True, exist_ok=True)

    model = load_acoustic_model(checkpoint, cfg.device)
    utts, lengths, source = model_inputs(model, feature_dir, split)
    spans = None
    if model.segmented is not None:  # the model cuts its input into segments: their spans come with it
        logits, spans = map(list, zip(*(model.segmented(u) for u in utts))) if utts else ([], [])
    else:
        logits = [model.logits(u) if len(u) else np.zeros((0, len(model.phones)), np.float32) for u in utts]
    if lengths is None:  # audio in: output positions are the model's own frames
        lengths = [len(x) for x in logits]
    frame_rate = cfg.frame_rate or model.frame_rate or frame_rate_of(feature_dir)
    # output position -> input frames: segments through {split}.cluster, else the model's stride
    if spans is None and model.kind == "gan" and model.subsample == 1:
        spans = segment_spans(feature_dir, split, lengths)
    if spans is None:
        k = model.subsample
        spans = [np.stack([np.minimum(np.arange(len(x)) * k, max(n - 1, 0)),
                           np.minimum((np.arange(len(x)) + 1) * k, n)], axis=1) for x, n in zip(logits, lengths)]
    ref_phn = read_token_lines(ref_dir / f"{split}.phn", len(utts), missing_ok=True)
    ref_wrd = read_token_lines(ref_dir / f"{split}.wrd", len(utts), missing_ok=True)
    ref_phn = [normalize_tokens(r) for r in ref_phn] if ref_phn is not None else None
    ref_wrd = [normalize_words(r) for r in ref_wrd] if ref_wrd is not None else None

    vit = [viterbi_decode(x, model.phones, spans=s, frame_rate=frame_rate) for x, s in zip(logits, spans)]
    vit_phones = [v.tokens for v in vit]
    write_token_lines(outdir / f"{split}.viterbi.phn", vit_phones)
    result: dict = {"split": split, "num_utts": len(utts), "model": model.kind, "viterbi": {}, "words": None,
                    "timestamps_unit": vit[0].unit if vit else None}
    if ref_phn is not None:
        st = error_rate(ref_phn, vit_phones)
        result["viterbi"].update(per=st.to_dict())
        write_alignments(outdir / f"{split}.viterbi.per.align", st, name="PER")
        log.info("Viterbi %s", st.summary("PER"))
    lm_metric = _phone_lm_metric(vit_phones, text_dir, model.phones)
    if lm_metric:
        result["viterbi"].update(lm_metric)

    words = None
    lexicon_path = text_dir / "lexicon.lst" if text_dir else None
    word_lm_path = find_word_lm(text_dir) if text_dir else None
    if cfg.words and (lexicon_path is None or not lexicon_path.is_file() or word_lm_path is None):
        log.warning("no word decoding: needs --text-dir with lexicon.lst and lm.words.4.bin/.arpa")
    elif cfg.words:
        lm = load_word_lm(word_lm_path)
        lexicon = read_pronunciations(lexicon_path)
        decoder = lexicon_decoder(model.phones, lexicon, lm, dataclasses.replace(cfg.decoder))
        tune_info = None
        if cfg.tune.criterion != "none":
            t_split = cfg.tune.split or split
            if t_split == split:
                t_logits, t_vit, t_wrd, t_phn = logits, vit_phones, ref_wrd, ref_phn
            else:  # a separate (dev) split: its own logits, Viterbi phones and references
                t_utts, _, _ = model_inputs(model, feature_dir, t_split)
                t_logits = [model.logits(u) if len(u) else np.zeros((0, len(model.phones)), np.float32)
                            for u in t_utts]
                t_vit = [viterbi_decode(x, model.phones).tokens for x in t_logits]
                t_phn = read_token_lines(ref_dir / f"{t_split}.phn", len(t_logits), missing_ok=True)
                t_wrd = read_token_lines(ref_dir / f"{t_split}.wrd", len(t_logits), missing_ok=True)
                t_phn = [normalize_tokens(r) for r in t_phn] if t_phn is not None else None
                t_wrd = [normalize_words(r) for r in t_wrd] if t_wrd is not None else None
            if cfg.tune.criterion == "wer" and t_split == split:
                log.warning("tuning by WER on the split being scored (%s) is optimistic: set tune.split to a dev split",
                            split)
            pick = tuning_sample(len(t_logits), cfg.tune.max_utts)
            tr = tune(decoder, [t_logits[i] for i in pick], [t_vit[i] for i in pick], cfg.tune.lm_weights,
                      cfg.tune.word_scores,
                      ref_words=[t_wrd[i] for i in pick] if t_wrd is not None else None,
                      ref_phones=[t_phn[i] for i in pick] if t_phn is not None else None,
                      criterion=cfg.tune.criterion, min_viterbi_per=cfg.tune.min_viterbi_per, workers=cfg.workers)
            tune_info = {"criterion": tr.criterion, "split": t_split, "utterances": len(pick), "table": tr.table}
            log.info("tuned (%s on %s): lm_weight %.2f word_score %.2f", tr.criterion, t_split, tr.lm_weight,
                     tr.word_score)
        words = decode_all(decoder, logits, spans, frame_rate, workers=cfg.workers)
        write_token_lines(outdir / f"{split}.words.wrd", [w.words for w in words])
        write_token_lines(outdir / f"{split}.words.phn", [w.phones for w in words])
        wres: dict = {"lm_weight": decoder.cfg.lm_weight, "word_score": decoder.cfg.word_score, "tune": tune_info,
                      "incomplete": sum(not w.complete for w in words), "lexicon": str(lexicon_path),
                      "word_lm": str(word_lm_path), "backend": decoder.backend}
        if ref_wrd is not None:
            wres["ref_oov"] = oov_rate(ref_wrd, lexicon)
            log.info("%.1f%% of the reference words (%d of %d) are not in the lexicon: the decoder cannot output "
                     "them, so the WER is at least about that", 100 * wres["ref_oov"]["rate"], wres["ref_oov"]["oov"],
                     wres["ref_oov"]["tokens"])
            st = error_rate(ref_wrd, [w.words for w in words])
            wres["wer"] = st.to_dict()
            write_alignments(outdir / f"{split}.words.wer.align", st, name="WER")
            log.info("words %s", st.summary("WER"))
        if ref_phn is not None:
            st = error_rate(ref_phn, [w.phones for w in words])
            wres["per"] = st.to_dict()
            write_alignments(outdir / f"{split}.words.per.align", st, name="PER")
            log.info("words (as phones) %s", st.summary("PER"))
        result["words"] = wres

    rows = []
    for i, v in enumerate(vit):
        row = {"utt": i, "unit": v.unit,
               "phones": [[s.token, round(s.start, 4), round(s.end, 4)] for s in v.segments]}
        if words is not None:
            w = words[i]
            row["words"] = [[s.token, round(s.start, 4), round(s.end, 4)] for s in w.word_segments]
            row["word_phones"] = [[s.token, round(s.start, 4), round(s.end, 4)] for s in w.phone_segments]
        rows.append(json.dumps(row, ensure_ascii=False))
    atomic_write_text(outdir / f"{split}.timestamps.jsonl", "\n".join(rows) + ("\n" if rows else ""))
    write_json(outdir / f"{split}.scores.json", result)
    save_config(cfg, outdir / "decode.yaml")


    inputs = {str(checkpoint): sha256_file(checkpoint), source.name: sha256_file(source)}
    for p in (lexicon_path, word_lm_path):
        if p is not None and p.is_file():
            inputs[str(p)] = sha256_file(p)
    write_json(outdir / "meta.json", {"stage": "decode", **provenance(cfg, None, inputs)})
    return result


def tuning_sample(n: int, max_utts: int) -> list[int]:
    """``max_utts`` indices spread evenly over ``n`` utterances (all of them when 0 or n <= max_utts):
    a corpus listed by speaker or chapter is sampled across all of them, not its first few."""
    if not max_utts or n <= max_utts:
        return list(range(n))
    return sorted({int(i) for i in np.linspace(0, n - 1, max_utts).round()})


def oov_rate(ref_words: list[list[str]], lexicon: dict) -> dict:
    """The reference words the lexicon lacks: no lexicon decoder can output them, a floor on the WER."""
    tokens = sum(len(r) for r in ref_words)
    oov = sum(w not in lexicon for r in ref_words for w in r)
    return {"tokens": tokens, "oov": oov, "rate": oov / tokens if tokens else 0.0}


def _pct(d: dict | None, key: str) -> str:
    if not d or key not in d or d[key] is None or d[key].get("rate") is None:
        return "n/a"
    return f"{100 * d[key]['rate']:.2f}%"


def summary_lines(res: dict) -> str:
    lines = [f"{res['split']}: {res['num_utts']} utterances ({res['model']} model)",
             f"  Viterbi phones: PER {_pct(res['viterbi'], 'per')}"
             + (f", weighted LM ppl {res['viterbi']['weighted_lm_ppl']:.2f}" if "weighted_lm_ppl" in res["viterbi"] else "")]
    if res["words"] is not None:
        w = res["words"]
        lines.append(f"  lexicon + word LM (lm_weight {w['lm_weight']}, word_score {w['word_score']}, "
                     f"{w.get('backend', 'python')} search): WER {_pct(w, 'wer')}, PER {_pct(w, 'per')}")
        if w.get("ref_oov"):
            o = w["ref_oov"]
            lines.append(f"  references outside the lexicon: {100 * o['rate']:.1f}% of words ({o['oov']}/{o['tokens']}), "
                         "which the WER cannot go below")
    return "\n".join(lines)
