#!/usr/bin/env python
"""Research: the label-free chain that gets under 50% PER on the English demo (2026-12-02).

    .venv/bin/python scripts/research/stats_match.py RUN OUT [--refs RUN/corpus]
    .venv/bin/w2vu self-train RUN/features ST --labels OUT/train.hyp --text-dir RUN/text \
        --ref-dir RUN/corpus --config configs/demo/en.yaml#self_train --no-wandb

RUN is a demo run folder (features/, text/). Steps: spectral-change segments of RUN/features
(research.segmenters), K-means units (K=128), statistics matching (research.stats_match) with
batched restarts, the lowest-loss table seeds the trigram decipherment HMM (research.decipher),
EM passes, Viterbi labels for train and valid written to OUT/{train,valid}.hyp. ``--refs`` only
prints PER; nothing reads labels.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from wav2vec_u.audio.features_io import load_features
from wav2vec_u.audio.segments import assign_clusters, fit_kmeans
from wav2vec_u.metrics import error_rate
from wav2vec_u.decipher.hmm import HmmConfig, decode, phone_ngram, train_units_to_phones
from wav2vec_u.research.segmenters import spectral_segments
from wav2vec_u.decipher.stats_match import MatchConfig, match_statistics, table_emissions
from wav2vec_u.tokens import read_token_lines, split_by_lengths, write_token_lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("run", type=Path), ap.add_argument("out", type=Path)
    ap.add_argument("--refs", type=Path, default=None, help="folder with valid.phn: PER is printed, never used")
    ap.add_argument("--k", type=int, default=128)
    ap.add_argument("--restarts", type=int, default=16)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--em-iters", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.time()
    seqs = {}
    for split in ("train", "valid"):
        f, lens = load_features(a.run / "features", split)
        x, seg_lens, _ = spectral_segments(np.asarray(f), lens)
        seqs[split] = (x, seg_lens)
    cent = fit_kmeans(seqs["train"][0], k=a.k, niter=20, nredo=1, seed=a.seed)
    units = {s: split_by_lengths(assign_clusters(x, cent), lens) for s, (x, lens) in seqs.items()}
    sents = [s for s in read_token_lines(a.run / "text" / "phones.txt") if s]
    phones, _ = phone_ngram(sents, 3)
    pid = {p: i for i, p in enumerate(phones)}
    P, loss = match_statistics(units["train"], [[pid[p] for p in s] for s in sents], a.k, len(phones),
                               MatchConfig(restarts=a.restarts, steps=a.steps, seed=a.seed))
    print(f"statistics matching: losses {loss.min():.4f}..{loss.max():.4f} ({time.time() - t0:.0f} s)", flush=True)
    refs = read_token_lines(a.refs / "valid.phn") if a.refs else None

    def on_iter(_r, it, ll, model):
        msg = f"EM {it}: loglik/unit {ll:.4f}"
        if refs is not None and it % 4 == 0:
            msg += f" valid PER {error_rate(refs, decode(model, units['valid'])).rate:.3f}"
        print(msg + f" ({time.time() - t0:.0f} s)", flush=True)

    model = train_units_to_phones(units["train"], sents, a.k, HmmConfig(order=3, iters=a.em_iters, self_loop=0.2),
                                  on_iter=on_iter, init_emissions=table_emissions(P[0], units["train"]))
    a.out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid"):
        write_token_lines(a.out / f"{split}.hyp", decode(model, units[split]))
    print(f"valid log-likelihood {model.log_likelihood(units['valid']):.1f}; labels in {a.out} "
          f"({time.time() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
