"""``w2vu select``: pick the best of several finished GAN runs without labels (paper Eqs. 5-6).

    w2vu select runs/seed0 runs/seed1 runs/seed2 --out runs/selection.json

Each run's checkpoint (``best.pt`` by default) Viterbi-decodes the validation features and the
phone LM scores the outputs; the anchor is the run with the lowest NLL − log U, runs within
``log(U / U_anchor) + log 1.2`` of its NLL are kept, and the kept run with the highest total LM
log-probability is chosen. Features, text dir and LM default to those recorded in the
checkpoint. Writes a JSON report (all scores, anchor, kept, chosen) and prints the chosen path.
PER is reported when references exist but never used to choose.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from wav2vec_u.io import write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, help="run dirs (or checkpoint files)")
    parser.add_argument("--checkpoint", default="best.pt", help="checkpoint name inside each run dir")
    parser.add_argument("--features", type=Path, help="feature dir (default: the one the run trained on)")
    parser.add_argument("--text", type=Path, help="prepare-text dir with the phone LM (default: from the run)")
    parser.add_argument("--split", default="valid", help="feature split to decode")
    parser.add_argument("--tolerance", type=float, default=1.2, help="the 1.2 of paper Eq. 6")
    parser.add_argument("--out", type=Path, help="JSON report (default: print only)")


def score_run(ckpt: Path, features: Path | None, text: Path | None, split: str) -> dict:
    from wav2vec_u.decode.metrics import SPECIAL_TOKENS, error_rate  # noqa: PLC0415
    from wav2vec_u.train.checkpoint import load_checkpoint, load_generator  # noqa: PLC0415
    from wav2vec_u.train.data import FeatureSet  # noqa: PLC0415
    from wav2vec_u.train.selection import find_phone_lm, lm_score, load_lm  # noqa: PLC0415
    from wav2vec_u.train.trainer import decode_ids  # noqa: PLC0415

    lineage = load_checkpoint(ckpt).get("lineage", {})
    features = features or (Path(lineage["features"]) if lineage.get("features") else None)
    text = text or (Path(lineage["text"]) if lineage.get("text") else None)
    if features is None or text is None:
        raise ValueError(f"{ckpt}: no features/text recorded in the checkpoint; pass --features and --text")
    lm_path = find_phone_lm(text)
    if lm_path is None:
        raise FileNotFoundError(f"no phone LM (lm.phones.4.bin/.arpa) in {text}")
    gen, phones, _ = load_generator(ckpt)
    feats = FeatureSet.from_dir(features, split)
    ids = decode_ids(gen, feats)
    hyps = [[phones[i] for i in row if phones[i] not in SPECIAL_TOKENS] for row in ids]
    s = lm_score(hyps, load_lm(lm_path), [p for p in phones if p not in SPECIAL_TOKENS])
    out = {"checkpoint": str(ckpt), **s.to_dict(), "log_prob": s.log10_prob * math.log(10)}
    if feats.refs is not None:
        refs = [[p for p in r if p not in SPECIAL_TOKENS] for r in feats.refs]
        out["per_not_used_for_selection"] = error_rate(refs, hyps).rate
    return out


def run(args: argparse.Namespace) -> int:
    from wav2vec_u.train.selection import RunScore, select_runs  # noqa: PLC0415

    scores = []
    for r in args.runs:
        ckpt = r / args.checkpoint if r.is_dir() else r
        scores.append(score_run(ckpt, args.features, args.text, args.split))
    runs = [RunScore(s["checkpoint"], s["nll"], s["vocab_usage"], s["log_prob"]) for s in scores]
    chosen, anchor, kept = select_runs(runs, args.tolerance)
    report = {"runs": scores, "anchor": anchor.name, "kept": [k.name for k in kept], "chosen": chosen.name,
              "rule": "paper Eqs. 5-6: anchor = argmin NLL - log U; keep NLL < NLL_a + log(U/U_a) + log tol; "
                      "choose argmax LM log-prob", "tolerance": args.tolerance}
    if args.out:
        write_json(args.out, report)
    for s in scores:
        print(f"{s['checkpoint']}\tnll={s['nll']:.4f}\tU={s['vocab_usage']:.3f}\tlogprob={s['log_prob']:.1f}"
              f"\tweighted_lm_ppl={s['weighted_ppl']:.3f}")
    print(f"chosen: {chosen.name}")
    return 0
