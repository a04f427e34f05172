#!/usr/bin/env python
"""Research: simulated annealing over unit->phone keys, then trigram-HMM EM started from the key.

    .venv/bin/python scripts/research/anneal_key.py FEATS TEXT --refs REFS --k 128 --smooth 1 --self-loop 0.2
    .venv/bin/python scripts/research/anneal_key.py RUN/features RUN/text --refs RUN/corpus --k 128 --smooth 5

The method is wav2vec_u.research.key_search (units from wav2vec_u.decipher.hmm.make_units:
k-means ids of FEATS/{train,valid}.npy after a ``smooth``-frame box average, equal neighbours
merged). Nothing in it reads references: ``--refs DIR`` (DIR/valid.phn) only prints PER along
the way; without it the script runs the same and prints the label-free scores alone.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from wav2vec_u.audio.features_io import load_features
from wav2vec_u.metrics import error_rate
from wav2vec_u.decipher.hmm import HmmConfig, decode, make_units
from wav2vec_u.research.key_search import KeyResult, anneal_key, em_from_key, key_hyps, trigram_tables
from wav2vec_u.tokens import SIL, read_token_lines, write_token_lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("feats", type=Path), ap.add_argument("text", type=Path)
    ap.add_argument("--refs", type=Path, default=None, help="folder with valid.phn: PER is printed, never used")
    ap.add_argument("--k", type=int, default=128)
    ap.add_argument("--smooth", type=int, default=1)
    ap.add_argument("--self-loop", type=float, default=0.2, help="0.2 for segments, 0.75 for frame units")
    ap.add_argument("--iters", type=int, default=2_000_000, help="annealing moves")
    ap.add_argument("--t0", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--em-iters", type=int, default=20)
    ap.add_argument("--em-utts", type=int, default=1000)
    ap.add_argument("--eps", type=float, default=0.05)
    ap.add_argument("--nvalid", type=int, default=100)
    ap.add_argument("--save-hyps", type=Path, default=None,
                    help="write the final model's phones for every train/valid utterance to DIR/{split}.hyp")
    a = ap.parse_args()
    torch.set_num_threads(1)
    sil_sents = [s for s in read_token_lines(a.text / "phones.txt") if s]
    ftr, ltr = load_features(a.feats, "train")
    fva, lva = load_features(a.feats, "valid")
    cent, units = make_units(ftr, ltr, k=a.k, smooth=a.smooth, seed=1)
    _, vunits = make_units(fva, lva, smooth=a.smooth, centroids=cent)
    refs = read_token_lines(a.refs / "valid.phn")[:a.nvalid] if a.refs else None
    phones = trigram_tables([[p for p in s if p != SIL] for s in sil_sents])[0]  # what a key indexes
    t0 = time.time()

    def per_of(hyps) -> str:
        return f" PER {error_rate(refs, hyps).rate:.3f}" if refs is not None else ""

    def progress(it, score, key):
        k = KeyResult(key, phones, score, 0, 0, 0)
        print(f"anneal {it}: score {score:.1f}{per_of(key_hyps(k, vunits[:a.nvalid]))} ({time.time() - t0:.0f} s)",
              flush=True)

    res = anneal_key(units, sil_sents, a.k, iters=a.iters, t0=a.t0, seed=a.seed, self_loop=a.self_loop,
                     on_progress=progress)
    print(f"annealed key: score/N {res.per_unit:.4f}{per_of(key_hyps(res, vunits[:a.nvalid]))} ({res.seconds:.0f} s)",
          flush=True)

    def on_iter(_restart, it, ll, model):
        if it % 2 == 0 or it == a.em_iters:
            print(f"EM {it}: loglik/unit {ll:.4f}{per_of(decode(model, vunits[:a.nvalid]))} "
                  f"({time.time() - t0:.0f} s)", flush=True)

    cfg = HmmConfig(order=3, iters=a.em_iters, self_loop=a.self_loop)
    model = em_from_key(units[:a.em_utts], sil_sents, a.k, res, cfg, eps=a.eps, on_iter=on_iter)
    print(f"valid log-likelihood (the label-free choice among seeds) {model.log_likelihood(vunits):.1f}", flush=True)
    if a.save_hyps is not None:
        for split, seqs in (("train", units), ("valid", vunits)):
            write_token_lines(a.save_hyps / f"{split}.hyp", decode(model, seqs))
        print(f"saved hypotheses to {a.save_hyps}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
