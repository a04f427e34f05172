"""Decipherment HMM: learn P(unit | phone) from unit sequences and unpaired phone text, without labels.

A non-adversarial alternative to the GAN for discrete inputs (Knight et al. 2006 style
decipherment). Hidden states are phones; the transition model is a phone n-gram estimated from
the unpaired phone text (``<SIL>`` included); each phone repeats with a fixed self-loop
probability (a phone spans several units) and emits k-means unit ids through an emission table
``E[phone, unit]`` that EM (forward-backward) learns. Decoding is Viterbi, runs collapsed,
``<SIL>`` dropped.

    units = dedup_units(cluster_ids, lengths)                  # list of (T_i,) int arrays
    model = train_units_to_phones(units, phone_sents, num_units=40, cfg=HmmConfig())
    hyps = decode(model, valid_units)                          # list[list[str]], no <SIL>
    ll = model.log_likelihood(valid_units)                     # label-free selection score

``order=3`` (default) uses a trigram: the state is the pair (previous phone, phone), so one step
costs O(V^3) per utterance. ``order=2`` is the bigram HMM (states = phones).

``fit_supervised`` estimates ``E`` from transcripts by forced alignment: not an unsupervised
method, it measures the ceiling the unsupervised search could reach with the same units.

Measured on the espeak-ng demo (docs/demo-findings.md): with ``fit_supervised`` emissions the
trigram HMM decodes at 8-11% PER (K=128) and 32% (K=40), and those emissions have a clearly
higher likelihood than anything EM found from random starts; EM from random starts stays at
86-95% PER. The model is right; the search is the open problem. Use it as such.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from wav2vec_u.config import at_least, in_range, non_negative, positive
from wav2vec_u.text.silence import SIL
from wav2vec_u.audio.segments import assign_clusters, fit_kmeans

log = logging.getLogger(__name__)


@dataclass
class HmmConfig:
    order: int = in_range(2, 3, default=3)  # phone n-gram order of the transition model: 2 or 3
    # P(phone repeats for the next unit); 1 - 1/(units per phone) ~ 0.75-0.8 on the demo
    self_loop: float = in_range(0.0, 1.0, hi_open=True, default=0.8)
    # trigram weight; the rest goes to the bigram (order 3 only)
    lm_interpolation: float = in_range(0.0, 1.0, default=0.9)
    lm_add: float = non_negative(default=0.01)  # add-k count for every bigram, so unseen phone pairs stay possible
    lm_power: float = positive(default=1.0)  # raise the n-gram to this power during EM (Knight et al. 2006 "cubing": 3)
    # passes over the unit sequences (toy cipher: learned by 15; docs/demo-findings.md)
    iters: int = at_least(1, default=15)
    batch_size: int = at_least(1, default=25)  # utterances per forward-backward batch
    stepwise: float = non_negative(default=0.0)  # 0 = batch EM (better on toy and demo); x: stepwise EM, step (k+2)^-x
                                   # (Liang & Klein 2009)
    restarts: int = at_least(1, default=1)  # random starts; the one with the highest likelihood is kept (label-free)
    sil_init: bool = True          # start E[<SIL>] at the units of utterance edges (audio starts/ends silent)
    emission_floor: float = non_negative(default=1e-4)  # added to emission counts before normalising
    seed: int = 1

    def check(self) -> None:
        if self.order not in (2, 3):
            raise ValueError(f"decipher.order must be 2 or 3, got {self.order}")
        if not 0.0 < self.self_loop < 1.0:
            raise ValueError(f"decipher.self_loop must be in (0, 1), got {self.self_loop}")
        if not 0.0 <= self.lm_interpolation <= 1.0:
            raise ValueError(f"decipher.lm_interpolation must be in [0, 1], got {self.lm_interpolation}")
        if self.iters < 0 or self.batch_size < 1 or self.restarts < 1:
            raise ValueError("decipher.iters must be >= 0, batch_size and restarts >= 1")
        if self.stepwise and not 0.5 < self.stepwise <= 1.0:
            raise ValueError(f"decipher.stepwise must be 0 (batch EM) or in (0.5, 1], got {self.stepwise}")


def dedup_units(ids: np.ndarray, lengths: Sequence[int]) -> list[np.ndarray]:
    """Per-utterance unit sequences from frame cluster ids (all utterances concatenated): runs collapsed."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim != 1 or int(np.sum(lengths)) != len(ids):
        raise ValueError(f"cluster ids ({ids.shape}) do not match the lengths (sum {int(np.sum(lengths))})")
    out, o = [], 0
    for n in lengths:
        u = ids[o:o + n]
        o += n
        if n == 0:
            raise ValueError("an utterance has no frames; remove it before deciphering")
        out.append(u[np.r_[True, u[1:] != u[:-1]]])
    return out


def make_units(frames: np.ndarray, lengths: Sequence[int], k: int = 40, smooth: int = 5, niter: int = 30,
               seed: int = 1, centroids: np.ndarray | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Discrete units from frame features: box-average ``smooth`` frames per utterance, k-means, dedup runs.

    Returns (centroids (k, D), unit sequences). Pass ``centroids`` to assign another split with the
    same codebook. The averaging removes most frame-to-frame cluster flicker (docs/demo-findings.md).
    """
    from scipy.ndimage import uniform_filter1d


    frames = np.asarray(frames, dtype=np.float32)
    if smooth > 1:
        parts, o = [], 0
        for n in lengths:
            parts.append(uniform_filter1d(frames[o:o + n], smooth, axis=0, mode="nearest"))
            o += n
        frames = np.concatenate(parts)
    if centroids is None:
        centroids = fit_kmeans(frames, k=k, niter=niter, nredo=1, seed=seed)
    return centroids, dedup_units(assign_clusters(frames, centroids), lengths)


def phone_inventory(sentences: Sequence[Sequence[str]]) -> list[str]:
    """The HMM's states: every phone of the text and ``<SIL>``, sorted."""
    return sorted({p for s in sentences for p in s} | {SIL})


def phone_ngram(sentences: Sequence[Sequence[str]], order: int = 3, interpolation: float = 0.9,
                add: float = 0.01) -> tuple[list[str], np.ndarray]:
    """Transition tensor P[a, b, c] = P(c | a, b) from phone sentences (with <SIL> where the text has it).

    Sentences are padded on the left with <SIL> (the audio starts silent). A phone never follows
    itself (a repeat is indistinguishable from the self-loop). For ``order=2`` P[a, b, c] = P(c | b).
    Returns (phones, P) with phones sorted and <SIL> among them.
    """
    phones = phone_inventory(sentences)
    index = {p: i for i, p in enumerate(phones)}
    V = len(phones)
    sil = index[SIL]
    c2 = np.full((V, V), add)
    c3 = np.zeros((V, V, V)) if order == 3 else None
    for s in sentences:
        ids = [sil] + [index[p] for p in s]
        if len(ids) < 2:
            continue
        a = np.array(ids)
        np.add.at(c2, (a[:-1], a[1:]), 1.0)
        if c3 is not None and len(ids) >= 3:
            np.add.at(c3, (a[:-2], a[1:-1], a[2:]), 1.0)
    np.fill_diagonal(c2, 0.0)
    p2 = c2 / c2.sum(1, keepdims=True)
    if c3 is None:
        p3 = np.broadcast_to(p2[None], (V, V, V)).copy()
    else:
        n3 = c3.sum(2, keepdims=True)
        p3 = np.where(n3 > 0, interpolation * c3 / np.maximum(n3, 1.0) + (1 - interpolation) * p2[None], p2[None])
    idx = np.arange(V)
    p3[:, idx, idx] = 0.0
    p3 /= p3.sum(2, keepdims=True)
    return phones, p3


class DecipherHMM:
    """Second-order HMM over phone pairs emitting units. ``emissions`` (V, K) rows sum to 1."""

    def __init__(self, phones: list[str], transitions: np.ndarray, emissions: np.ndarray | torch.Tensor,
                 self_loop: float):
        V = len(phones)
        if transitions.shape != (V, V, V):
            raise ValueError(f"transitions must be ({V}, {V}, {V}), got {transitions.shape}")
        if emissions.shape[0] != V:
            raise ValueError(f"emissions must have {V} rows (phones), got {tuple(emissions.shape)}")
        self.phones = list(phones)
        self.sil = self.phones.index(SIL)
        self.trans = torch.as_tensor(transitions, dtype=torch.float32)      # a, b, c
        self._fwd = self.trans.permute(1, 0, 2).contiguous()                # b, a, c
        self._bwd = self.trans.permute(1, 2, 0).contiguous()                # b, c, a
        self.emissions = torch.as_tensor(emissions, dtype=torch.float32)
        self.self_loop = float(self_loop)

    @property
    def num_units(self) -> int:
        return int(self.emissions.shape[1])

    def _check_units(self, seqs: Sequence[np.ndarray]) -> None:
        for i, s in enumerate(seqs):
            if len(s) == 0:
                raise ValueError(f"unit sequence {i} is empty")
            if int(np.max(s)) >= self.num_units or int(np.min(s)) < 0:
                raise ValueError(f"unit sequence {i} has ids outside [0, {self.num_units})")

    def forward_backward(self, seqs: Sequence[np.ndarray], emit_power: float = 1.0,
                         trans: torch.Tensor | None = None,
                         posteriors: list | None = None) -> tuple[float, torch.Tensor]:
        """Scaled forward-backward over a batch. Returns (log-likelihood sum, expected counts (V, K)).

        ``posteriors``: a list that receives each sequence's (T_i, V) phone posteriors P(phone_t | units).
        """
        fwd, bwd = self._fwd, self._bwd
        if trans is not None:
            fwd, bwd = trans.permute(1, 0, 2).contiguous(), trans.permute(1, 2, 0).contiguous()
        V, s = len(self.phones), self.self_loop
        N, T = len(seqs), max(len(q) for q in seqs)
        x = torch.zeros(N, T, dtype=torch.long)
        m = torch.zeros(N, T, dtype=torch.bool)
        for i, q in enumerate(seqs):
            x[i, :len(q)] = torch.as_tensor(np.asarray(q, dtype=np.int64))
            m[i, :len(q)] = True
        em = self.emissions.T[x]                                       # (N, T, V): P(unit_t | phone)
        if emit_power != 1.0:
            em = em ** emit_power
        alpha = torch.zeros(T, N, V, V)                                # state (prev phone, phone)
        scale = torch.ones(T, N)
        a0 = torch.zeros(N, V, V)
        a0[:, self.sil, self.sil] = em[:, 0, self.sil]                 # every utterance starts in silence
        a0[:, self.sil, :] += 1e-6 * em[:, 0, :]                        # ... or very rarely not
        scale[0] = a0.sum((1, 2)).clamp_min(1e-30)
        alpha[0] = a0 / scale[0][:, None, None]
        for t in range(1, T):
            prev = alpha[t - 1]
            move = torch.bmm(prev.permute(2, 0, 1), fwd).permute(1, 0, 2)   # (N, b, c)
            at = (s * prev + (1 - s) * move) * em[:, t][:, None, :]
            ct = at.sum((1, 2))
            keep = m[:, t]
            alpha[t] = torch.where(keep[:, None, None], at / ct.clamp_min(1e-30)[:, None, None], prev)
            scale[t] = torch.where(keep, ct.clamp_min(1e-30), torch.ones_like(ct))
        ll = float(torch.log(scale).sum())
        counts = torch.zeros(V, self.num_units)
        gamma = torch.zeros(T, N, V) if posteriors is not None else None
        beta = torch.ones(N, V, V)
        g = alpha[T - 1].sum(1) * m[:, T - 1, None]
        counts.index_add_(1, x[:, T - 1], g.T)
        if gamma is not None:
            gamma[T - 1] = g
        for t in range(T - 2, -1, -1):
            keep = m[:, t + 1]
            nb = em[:, t + 1][:, None, :] * beta                            # e(b) beta(a, b)
            move = torch.bmm(nb.permute(1, 0, 2), bwd).permute(1, 2, 0)     # (N, a, b)
            bt = (s * nb + (1 - s) * move) / scale[t + 1][:, None, None]
            beta = torch.where(keep[:, None, None], bt, beta)
            g = (alpha[t] * beta).sum(1) * m[:, t, None]
            counts.index_add_(1, x[:, t], g.T)
            if gamma is not None:
                gamma[t] = g
        if gamma is not None:
            for i, q in enumerate(seqs):
                gi = gamma[:len(q), i]
                posteriors.append((gi / gi.sum(1, keepdim=True).clamp_min(1e-30)).numpy())
        return ll, counts

    def log_likelihood(self, seqs: Sequence[np.ndarray], batch_size: int = 25) -> float:
        """Total log P(units) under the model (natural log); the label-free selection score."""
        self._check_units(seqs)
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        return sum(self.forward_backward([seqs[j] for j in order[i:i + batch_size]])[0]
                   for i in range(0, len(order), batch_size))

    def posteriors(self, seqs: Sequence[np.ndarray], batch_size: int = 25) -> list[np.ndarray]:
        """(T_i, V) phone posteriors of every unit sequence (forward-backward), in the given order."""
        self._check_units(seqs)
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        out: list = [None] * len(seqs)
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            post: list[np.ndarray] = []
            self.forward_backward([seqs[j] for j in idx], posteriors=post)
            for j, p in zip(idx, post):
                out[j] = p
        return out

    def viterbi_paths(self, seqs: Sequence[np.ndarray], batch_size: int = 25) -> list[np.ndarray]:
        """Best phone-state path (one phone id per unit) of every unit sequence, batched."""
        self._check_units(seqs)
        V = len(self.phones)
        le = torch.log(self.emissions + 1e-30)                     # (V, K)
        lp = torch.log(self.trans + 1e-30)                         # (a, b, c)
        ls, lm = math.log(self.self_loop), math.log(1 - self.self_loop)
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        out: list = [None] * len(seqs)
        for i0 in range(0, len(order), batch_size):
            idx = order[i0:i0 + batch_size]
            N, T = len(idx), max(len(seqs[j]) for j in idx)
            x = torch.zeros(N, T, dtype=torch.long)
            for n, j in enumerate(idx):
                x[n, :len(seqs[j])] = torch.as_tensor(np.asarray(seqs[j], dtype=np.int64))
            lengths = torch.tensor([len(seqs[j]) for j in idx])
            d = torch.full((N, V, V), -1e30)
            d[:, self.sil, self.sil] = le[self.sil, x[:, 0]]     # every utterance starts in silence
            back = torch.empty(T, N, V, V, dtype=torch.long)
            for t in range(1, T):
                move, frm = (d[:, :, :, None] + lm + lp[None]).max(1)   # (N, b, c): best previous a
                stay = d + ls
                take_stay = stay >= move
                back[t] = torch.where(take_stay, torch.full_like(frm, -1), frm)
                step = torch.where(take_stay, stay, move) + le[:, x[:, t]].T[:, None, :]
                d = torch.where((t < lengths)[:, None, None], step, d)  # finished sequences keep their scores
            for n, j in enumerate(idx):
                a, b = divmod(int(d[n].argmax()), V)
                path = [b]
                for t in range(int(lengths[n]) - 1, 0, -1):
                    f = int(back[t, n, a, b])
                    if f >= 0:
                        a, b = f, a
                    path.append(b)
                out[j] = np.array(path[::-1], dtype=np.int64)
        return out

    def viterbi(self, seq: np.ndarray) -> list[str]:
        """Best phone sequence for one unit sequence: runs collapsed, <SIL> dropped."""
        return self.path_phones(self.viterbi_paths([seq])[0])

    def path_phones(self, path: Sequence[int]) -> list[str]:
        """A state path as phones: runs collapsed, <SIL> dropped."""
        out = [self.phones[q] for i, q in enumerate(path) if i == 0 or q != path[i - 1]]
        return [p for p in out if p != SIL]

    def state_dict(self) -> dict:
        return {"phones": self.phones, "transitions": self.trans.numpy(), "emissions": self.emissions.numpy(),
                "self_loop": self.self_loop}

    @classmethod
    def from_state_dict(cls, d: dict) -> "DecipherHMM":
        return cls(d["phones"], np.asarray(d["transitions"]), np.asarray(d["emissions"]), d["self_loop"])


def decode(model: DecipherHMM, unit_seqs: Sequence[np.ndarray]) -> list[list[str]]:
    """Viterbi phones (no <SIL>) of each unit sequence."""
    return [model.path_phones(p) for p in model.viterbi_paths([np.asarray(s) for s in unit_seqs])]


def _normalise(counts: torch.Tensor, floor: float) -> torch.Tensor:
    c = counts + floor
    return c / c.sum(1, keepdim=True)


def _init_emissions(V: int, K: int, sil: int, seqs: Sequence[np.ndarray], cfg: HmmConfig,
                    gen: torch.Generator) -> torch.Tensor:
    e = torch.rand(V, K, generator=gen) + 0.5
    if cfg.sil_init:
        edges = np.concatenate([np.r_[s[:2], s[-2:]] for s in seqs])
        e[sil] = torch.as_tensor(np.bincount(edges, minlength=K) + 0.1, dtype=torch.float32)
    return e / e.sum(1, keepdim=True)


def train_units_to_phones(unit_seqs: Sequence[np.ndarray], phone_sents: Sequence[Sequence[str]], num_units: int,
                          cfg: HmmConfig | None = None,
                          on_iter: Callable[[int, int, float, DecipherHMM], None] | None = None,
                          init_emissions: np.ndarray | None = None) -> DecipherHMM:
    """Learn the emission table by EM from unit sequences and unpaired phone sentences (with <SIL>).

    ``on_iter(restart, iteration, loglik_per_unit, model)`` is called after every pass (for curves).
    Among ``cfg.restarts`` random starts, the model with the highest training likelihood is returned.
    ``init_emissions`` (V, K), rows in the order of ``phone_ngram(phone_sents)[0]``, replaces the
    random start (one restart): the hook for a label-free prior. Measured: a start built from
    broad-class emissions (12 classes) lets EM reach 38.9% PER where random starts stay at 86-90%
    (docs/demo-findings.md).
    """
    cfg = cfg or HmmConfig()
    cfg.check()
    if not unit_seqs:
        raise ValueError("no unit sequences to decipher")
    if not phone_sents:
        raise ValueError("no phone sentences for the phone n-gram")
    phones, trans = phone_ngram(phone_sents, cfg.order, cfg.lm_interpolation, cfg.lm_add)
    em_trans = None
    if cfg.lm_power != 1.0:
        t = trans ** cfg.lm_power
        em_trans = torch.as_tensor(t / t.sum(2, keepdims=True), dtype=torch.float32)
    seqs = sorted((np.asarray(s, dtype=np.int64) for s in unit_seqs), key=len)
    V, K = len(phones), num_units
    n_units = sum(len(s) for s in seqs)
    best, best_ll = None, -math.inf
    for r in range(1 if init_emissions is not None else cfg.restarts):
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + r)
        if init_emissions is not None:
            e0 = torch.as_tensor(np.asarray(init_emissions), dtype=torch.float32)
            if tuple(e0.shape) != (V, K):
                raise ValueError(f"init_emissions must be ({V}, {K}) (phones x units), got {tuple(e0.shape)}")
            e0 = e0.clamp_min(0) + cfg.emission_floor
            e0 = e0 / e0.sum(1, keepdim=True)
        else:
            e0 = _init_emissions(V, K, phones.index(SIL), seqs, cfg, gen)
        model = DecipherHMM(phones, trans, e0, cfg.self_loop)
        model._check_units(seqs)
        stats = model.emissions.clone()
        step = 0
        rng = random.Random(cfg.seed * 1000 + r)
        ll = -math.inf
        for it in range(cfg.iters):
            t0 = time.time()
            starts = list(range(0, len(seqs), cfg.batch_size))
            rng.shuffle(starts)
            total, ll = torch.zeros(V, K), 0.0
            for i in starts:
                bll, counts = model.forward_backward(seqs[i:i + cfg.batch_size], trans=em_trans)
                ll += bll
                total += counts
                if cfg.stepwise:
                    eta = (step + 2) ** -cfg.stepwise
                    step += 1
                    stats = (1 - eta) * stats + eta * _normalise(counts, cfg.emission_floor)
                    model.emissions = stats / stats.sum(1, keepdim=True)
            if not cfg.stepwise:
                model.emissions = _normalise(total, cfg.emission_floor)
            log.info("decipher restart %d iter %d: loglik/unit %.4f (%.1fs)", r, it + 1, ll / n_units, time.time() - t0)
            if on_iter is not None:
                on_iter(r, it + 1, ll / n_units, model)
        if cfg.lm_power != 1.0 or cfg.stepwise or cfg.iters == 0:
            ll = model.log_likelihood(seqs, cfg.batch_size)       # score the final table with the true n-gram
        if ll > best_ll:
            best, best_ll = model, ll
    assert best is not None
    return best


def fit_supervised(unit_seqs: Sequence[np.ndarray], phone_refs: Sequence[Sequence[str]], phones: list[str],
                   num_units: int, self_loop: float = 0.8, iters: int = 4, floor: float = 1e-3) -> np.ndarray:
    """Emission table from transcripts by forced-alignment EM (a ceiling, NOT unsupervised).

    Each utterance is the left-to-right chain <SIL> p1 ... pn <SIL> (both silences skippable).
    Returns E (V, K), rows summing to 1. Phones missing from ``phones`` map to <SIL>.
    """
    index = {p: i for i, p in enumerate(phones)}
    sil = index[SIL]
    V, K = len(phones), num_units
    E = np.full((V, K), 1.0 / K)
    for _ in range(iters):
        counts = np.full((V, K), floor)
        for seq, ref in zip(unit_seqs, phone_refs):
            seq = np.asarray(seq, dtype=np.int64)
            sid = [sil] + [index.get(p, sil) for p in ref] + [sil]
            n, T = len(sid), len(seq)
            em = E[sid][:, seq].T                                      # (T, n)
            alpha = np.zeros((T, n))
            c = np.zeros(T)
            alpha[0, 0], alpha[0, 1] = em[0, 0], em[0, 1]             # may skip the leading <SIL>
            c[0] = alpha[0].sum() + 1e-300
            alpha[0] /= c[0]
            for t in range(1, T):
                a = self_loop * alpha[t - 1]
                a[1:] += (1 - self_loop) * alpha[t - 1, :-1]
                a *= em[t]
                c[t] = a.sum() + 1e-300
                alpha[t] = a / c[t]
            beta = np.zeros((T, n))
            beta[-1, n - 1] = beta[-1, n - 2] = 1.0                   # may skip the trailing <SIL>
            for t in range(T - 2, -1, -1):
                nb = em[t + 1] * beta[t + 1]
                b = self_loop * nb
                b[:-1] += (1 - self_loop) * nb[1:]
                beta[t] = b / c[t + 1]
            post = alpha * beta
            post /= post.sum(1, keepdims=True) + 1e-300
            for j, p in enumerate(sid):
                np.add.at(counts[p], seq, post[:, j])
        E = counts / counts.sum(1, keepdims=True)
    return E


def config_dict(cfg: HmmConfig) -> dict:
    return asdict(cfg)
