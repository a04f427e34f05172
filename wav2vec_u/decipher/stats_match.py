"""Label-free unit->phone tables by matching gap-k co-occurrence statistics (no discriminator).

    table, loss = match_statistics(unit_seqs, phone_ids, num_units=128, num_phones=60, cfg=MatchConfig(), seed=1)
    # table: (R, K, V) P(phone | unit) for every restart, best (lowest loss) first; loss: (R,)

The unit co-occurrence matrices ``U_g[a, b]`` (unit a, then unit b ``g`` positions later, same
utterance) are counted once for g = 1..``gaps``; the text's ``T_g`` likewise over phones. A
table ``P`` (softmax of free logits, one row per unit) predicts the phone statistics
``P^T U_g P`` and the phone unigram; the loss is the L1 distance to the text's, summed over
gaps (statistics matching after Liu, Chen & Deng 2017 and Wang, Hasegawa-Johnson & Yoo 2023;
facts only, no code taken). Restarts are batched: one step is a few (R, K, V) products.

Measured on the English demo (docs/demo-findings.md, 2026-12-02): spectral-change segments,
K = 128 k-means, gaps 1..6, 1,000 Adam steps at lr 0.1 from *near-uniform* logits (scale 0.01)
give keys at 51-55% PER in all 16 restarts (random logits of scale 1: median 85%); trigram-HMM EM
from the best table 48.4%; CTC self-training on those labels 33.5%. Nothing here reads labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from wav2vec_u.config import at_least, non_negative, positive


@dataclass
class MatchConfig:
    gaps: int = at_least(1, default=6)        # co-occurrence at distances 1..gaps (ESPUM: 1..6)
    steps: int = at_least(1, default=1000)    # Adam steps
    lr: float = positive(default=0.1)
    init_scale: float = non_negative(default=0.01)  # near-uniform start: every restart lands in the good basin
    restarts: int = at_least(1, default=16)   # batched; the lowest loss comes first


def cooccurrence(seqs: Sequence[Sequence[int]], n: int, gaps: int) -> np.ndarray:
    """(gaps, n, n) joint distributions of symbol pairs ``g`` apart (g = 1..gaps) within each sequence."""
    out = np.zeros((gaps, n, n))
    for s in seqs:
        s = np.asarray(s, dtype=np.int64)
        for g in range(1, gaps + 1):
            if len(s) > g:
                np.add.at(out[g - 1], (s[:-g], s[g:]), 1.0)
    tot = out.sum((1, 2), keepdims=True)
    return out / np.maximum(tot, 1.0)


def symbol_counts(seqs: Sequence[Sequence[int]], n: int) -> np.ndarray:
    """(n,) how often each symbol occurs over all sequences."""
    return np.bincount(np.concatenate([np.asarray(s, dtype=np.int64) for s in seqs]), minlength=n).astype(float)


def unigram(seqs: Sequence[Sequence[int]], n: int) -> np.ndarray:
    c = symbol_counts(seqs, n)
    return c / max(c.sum(), 1.0)


def match_loss(P: torch.Tensor, U: torch.Tensor, u1: torch.Tensor, T: torch.Tensor, t1: torch.Tensor) -> torch.Tensor:
    """(R,) L1 distance of the mapped unit statistics to the text's; P is (R, K, V)."""
    Q = torch.einsum("rav,gab,rbw->rgvw", P, U, P)
    q1 = torch.einsum("a,rav->rv", u1, P)
    return (Q - T).abs().sum((2, 3)).sum(1) + (q1 - t1).abs().sum(1)


def match_statistics(unit_seqs: Sequence[Sequence[int]], phone_ids: Sequence[Sequence[int]], num_units: int,
                     num_phones: int, cfg: MatchConfig | None = None, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Tables P(phone | unit) for ``cfg.restarts`` restarts, sorted by loss (best first), and the losses."""
    cfg = cfg or MatchConfig()
    if not unit_seqs or not phone_ids:
        raise ValueError("statistics matching needs unit sequences and phone sentences")
    U = torch.tensor(cooccurrence(unit_seqs, num_units, cfg.gaps), dtype=torch.float32)
    u1 = torch.tensor(unigram(unit_seqs, num_units), dtype=torch.float32)
    T = torch.tensor(cooccurrence(phone_ids, num_phones, cfg.gaps), dtype=torch.float32)
    t1 = torch.tensor(unigram(phone_ids, num_phones), dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    W = (cfg.init_scale * torch.randn(cfg.restarts, num_units, num_phones, generator=gen)).requires_grad_(True)
    opt = torch.optim.Adam([W], lr=cfg.lr)
    for _ in range(cfg.steps):
        loss = match_loss(torch.softmax(W, -1), U, u1, T, t1)
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
    with torch.no_grad():
        P = torch.softmax(W, -1)
        loss = match_loss(P, U, u1, T, t1)
    order = torch.argsort(loss)
    return P[order].numpy(), loss[order].numpy()


def table_emissions(P: np.ndarray, unit_seqs: Sequence[Sequence[int]], floor: float = 1e-3) -> np.ndarray:
    """(V, K) emission start for the decipherment HMM: E[v, u] proportional to P(v | u) count(u)."""
    E = (P * symbol_counts(unit_seqs, P.shape[0])[:, None]).T + floor
    return E / E.sum(1, keepdims=True)
