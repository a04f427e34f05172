#!/usr/bin/env python
"""Research: simulated annealing over unit->phone keys, then trigram-HMM EM started from the key.

    .venv/bin/python scripts/research/anneal_key.py FEATS TEXT REFS --k 128 --smooth 1 --self-loop 0.2
    .venv/bin/python scripts/research/anneal_key.py RUN/features RUN/text RUN/corpus --k 128 --smooth 5

Units: k-means ids of FEATS/{train,valid}.npy after a ``smooth``-frame box average, equal
neighbours merged (``decipher.make_units``; ``--smooth 1`` for segment features). A key maps
every unit to one phone. Its score is label-free: the phone trigram log-probability (from
TEXT/phones.txt, <SIL> dropped) of the training unit sequences read through the key, where a
repeat of the same phone costs log(self_loop) instead (units per phone > 1). The search starts
from a key whose phone frequencies match the text's (units assigned greedily by mass) and only
swaps the phones of two units, so those frequencies stay fixed: without that constraint the
score prefers keys that overuse frequent phones (measured: score above the true key's, PER 86%).
The best key then seeds ``train_units_to_phones`` through ``init_emissions`` (each unit's key
phone gets weight 1, every other phone ``--eps``). REFS/valid.phn is read only to print PER.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from wav2vec_u.audio.features_io import load_features  # noqa: E402
from wav2vec_u.metrics import error_rate  # noqa: E402
from wav2vec_u.research.decipher import DecipherConfig, decode, make_units, phone_ngram, train_units_to_phones  # noqa: E402


def trigram_tables(sents: list[list[str]]) -> tuple[list[str], np.ndarray, np.ndarray]:
    phones = sorted({p for s in sents for p in s})
    V, B = len(phones), len(phones)  # index V = sentence boundary
    pid = {p: i for i, p in enumerate(phones)}
    c3, c2, c1 = np.zeros((V + 1,) * 3), np.zeros((V + 1,) * 2), np.zeros(V + 1)
    for s in sents:
        ids = [B, B] + [pid[p] for p in s] + [B]
        for i in range(2, len(ids)):
            c3[ids[i - 2], ids[i - 1], ids[i]] += 1
            c2[ids[i - 1], ids[i]] += 1
            c1[ids[i]] += 1
    p1 = (c1 + 1) / (c1 + 1).sum()
    p2 = (c2 + 0.1) / (c2 + 0.1).sum(1, keepdims=True)
    tot = c3.sum(2, keepdims=True)
    p3 = np.where(tot > 0, c3 / np.maximum(tot, 1), 0)
    return phones, np.log(0.6 * p3 + 0.3 * p2[None] + 0.1 * p1[None, None]), np.log(0.8 * p2 + 0.2 * p1[None])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("feats"), ap.add_argument("text"), ap.add_argument("refs")
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
    rng = np.random.default_rng(a.seed)
    sil_sents = [x.split() for x in Path(a.text, "phones.txt").read_text(encoding="utf-8").splitlines() if x.strip()]
    phones, log3, log2 = trigram_tables([[p for p in s if p != "<SIL>"] for s in sil_sents])
    V, K = len(phones), a.k
    ftr, ltr = load_features(a.feats, "train")
    fva, lva = load_features(a.feats, "valid")
    cent, units = make_units(ftr, ltr, k=K, smooth=a.smooth, seed=1)
    _, vunits = make_units(fva, lva, smooth=a.smooth, centroids=cent)
    refs = [x.split() for x in Path(a.refs, "valid.phn").read_text(encoding="utf-8").splitlines()][:a.nvalid]

    tri = Counter()
    for u in units:
        ids = [K, K] + list(u) + [K]
        tri.update(zip(ids, ids[1:], ids[2:]))
    T = np.array(list(tri.keys()))
    C = np.array(list(tri.values()), dtype=np.float64)
    N = C.sum()
    l_rep, l_new = np.log(a.self_loop), np.log(1 - a.self_loop)

    def contributions(key: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        g = np.append(key, V)
        t = T[rows]
        x, y, z = g[t[:, 0]], g[t[:, 1]], g[t[:, 2]]
        return C[rows] * np.where(y == z, l_rep, l_new + np.where(x != y, log3[x, y, z], log2[y, z]))

    def score(key: np.ndarray) -> float:
        return float(contributions(key).sum())

    # the trigram types each unit takes part in: a swap rescores only those (incremental score)
    touching = [np.flatnonzero((T == u).any(1)) for u in range(K)]

    def per(key: np.ndarray) -> float:
        hyps = []
        for u in vunits[:a.nvalid]:
            h = [phones[key[i]] for i in u]
            hyps.append([p for i, p in enumerate(h) if i == 0 or p != h[i - 1]])
        return error_rate(refs, hyps).rate

    counts = np.bincount(np.concatenate(units), minlength=K).astype(float)
    _, uni = np.unique([p for s in sil_sents for p in s if p != "<SIL>"], return_counts=True)
    deficit = uni / uni.sum() * counts.sum()
    key = np.zeros(K, dtype=np.int64)
    for u in np.argsort(-counts):  # frequent units first, each to the phone with the most mass left
        key[u] = int(np.argmax(deficit))
        deficit[key[u]] -= counts[u]
    contrib = contributions(key)
    s = float(contrib.sum())
    best = (s, key.copy())
    t0 = time.time()
    print(f"units/utterance {counts.sum() / len(units):.1f}; start: score/N {s / N:.4f} PER {per(key):.3f}", flush=True)
    for it in range(a.iters):
        temp = a.t0 * (0.01 / a.t0) ** (it / a.iters)
        i, j = rng.integers(K, size=2)
        if key[i] == key[j]:
            continue
        rows = np.union1d(touching[i], touching[j])
        key[i], key[j] = key[j], key[i]
        new = contributions(key, rows)
        delta = float(new.sum() - contrib[rows].sum())
        if delta >= 0 or rng.random() < np.exp(delta / (temp * N / 1000)):
            contrib[rows] = new
            s += delta
            if s > best[0]:
                best = (s, key.copy())
        else:
            key[i], key[j] = key[j], key[i]
        if it % max(a.iters // 5, 1) == 0:
            print(f"anneal {it}: score/N {s / N:.4f} PER {per(key):.3f} ({time.time() - t0:.0f} s)", flush=True)
    print(f"annealed key: score/N {best[0] / N:.4f} PER {per(best[1]):.3f} ({time.time() - t0:.0f} s)", flush=True)

    cfg = DecipherConfig(order=3, iters=a.em_iters, self_loop=a.self_loop)
    hmm_phones, _ = phone_ngram(sil_sents, cfg.order, cfg.lm_interpolation, cfg.lm_add)
    E0 = np.full((len(hmm_phones), K), a.eps)
    for u in range(K):
        E0[hmm_phones.index(phones[best[1][u]]), u] = 1.0
    E0 /= E0.sum(1, keepdims=True)

    def on_iter(_restart, it, ll, model):
        if it % 2 == 0 or it == a.em_iters:
            rate = error_rate(refs, decode(model, vunits[:a.nvalid])).rate
            print(f"EM {it}: loglik/unit {ll:.4f} PER {rate:.3f} ({time.time() - t0:.0f} s)", flush=True)

    model = train_units_to_phones(units[:a.em_utts], sil_sents, K, cfg, on_iter=on_iter, init_emissions=E0)
    if a.save_hyps is not None:
        a.save_hyps.mkdir(parents=True, exist_ok=True)
        for split, seqs in (("train", units), ("valid", vunits)):
            hyps = decode(model, seqs)
            (a.save_hyps / f"{split}.hyp").write_text("".join(" ".join(h) + "\n" for h in hyps), encoding="utf-8")
        full = [x.split() for x in Path(a.refs, "valid.phn").read_text(encoding="utf-8").splitlines()]
        print(f"saved hypotheses to {a.save_hyps}; valid PER over all {len(full)} utterances "
              f"{error_rate(full, decode(model, vunits)).rate:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
