#!/usr/bin/env python
"""Research script: decipherment HMM on a synthetic corpus, PER against EM iterations.

Inputs are the project's own artifacts: a frame-feature dir (``w2vu extract``; e.g. MFCC with
``features.spectral.context=4``), a text dir (``w2vu prepare-text``: phones.txt with <SIL>) and
the corpus dir (``valid.phn`` for scoring only). Prints one JSON line per logged iteration:

    .venv/bin/python scripts/research_decipher.py FEATS TEXT CORPUS --k 40 --iters 30 --ntrain 400
    .venv/bin/python scripts/research_decipher.py FEATS TEXT CORPUS --k 40 --supervised   # ceiling

``--supervised`` fits the emission table from the training transcripts (forced alignment) and
decodes with the same HMM: what the unsupervised search could reach with these units. Transcripts
are used for nothing else; the selection score printed is the label-free log-likelihood.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


from wav2vec_u.audio.features_io import load_features
from wav2vec_u.metrics import error_rate
from wav2vec_u.decipher.hmm import (HmmConfig, DecipherHMM, decode, fit_supervised, make_units,
                                      phone_ngram, train_units_to_phones)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("feats"), ap.add_argument("text"), ap.add_argument("corpus")
    ap.add_argument("--k", type=int, default=40)
    ap.add_argument("--smooth", type=int, default=5)
    ap.add_argument("--ntrain", type=int, default=400)
    ap.add_argument("--nvalid", type=int, default=60)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--order", type=int, default=3)
    ap.add_argument("--self-loop", type=float, default=0.8)
    ap.add_argument("--stepwise", type=float, default=0.0)
    ap.add_argument("--lm-power", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--supervised", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    ftr, ltr = load_features(a.feats, "train")
    fva, lva = load_features(a.feats, "valid")
    cent, units = make_units(ftr, ltr, k=a.k, smooth=a.smooth, seed=a.seed)
    _, vunits = make_units(fva, lva, smooth=a.smooth, centroids=cent)
    sents = [line.split() for line in Path(a.text, "phones.txt").read_text().splitlines() if line.strip()]
    refs = [line.split() for line in Path(a.corpus, "valid.phn").read_text().splitlines()][:a.nvalid]
    vunits = vunits[:a.nvalid]
    n_phones = sum(len(line.split()) for line in Path(a.corpus, "train.phn").read_text().splitlines())
    print(json.dumps({"units_per_phone": round(sum(map(len, units)) / n_phones, 2), "k": a.k,
                      "prep_s": round(time.time() - t0, 1)}), flush=True)
    cfg = HmmConfig(order=a.order, iters=a.iters, stepwise=a.stepwise, self_loop=a.self_loop,
                         lm_power=a.lm_power, seed=a.seed)
    t0 = time.time()
    if a.supervised:
        trefs = [line.split() for line in Path(a.corpus, "train.phn").read_text().splitlines()][:a.ntrain]
        phones, P = phone_ngram(sents, a.order)
        E = fit_supervised(units[:a.ntrain], trefs, phones, a.k, self_loop=a.self_loop)
        model = DecipherHMM(phones, P, E, a.self_loop)
        per = error_rate(refs, decode(model, vunits)).rate
        ll = model.log_likelihood(units[:a.ntrain]) / sum(map(len, units[:a.ntrain]))
        print(json.dumps({"supervised_ceiling_per": round(100 * per, 1), "train_ll": round(ll, 4),
                          "t": round(time.time() - t0)}), flush=True)
        return 0

    def on_iter(restart: int, it: int, ll: float, model: DecipherHMM) -> None:
        row = {"restart": restart, "iter": it, "train_ll": round(ll, 4), "t": round(time.time() - t0)}
        if it % a.every == 0 or it == a.iters:
            row["valid_per"] = round(100 * error_rate(refs, decode(model, vunits)).rate, 1)
        print(json.dumps(row), flush=True)

    train_units_to_phones(units[:a.ntrain], sents, a.k, cfg, on_iter=on_iter)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
