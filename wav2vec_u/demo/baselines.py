"""Reference points for an unsupervised phone error rate: two chance baselines and an upper bound.

A PER means little alone. The demo prints the GAN's next to:

- **most frequent phone**: every utterance decoded as the text's most frequent phone,
  repeated as many times as the reference has phones (an oracle length, so the baseline is a
  little *stronger* than a truly label-free one);
- **k-means by frequency rank**: the segment features clustered into as many clusters as the
  phone inventory has symbols (``<SIL>`` included); clusters ranked by how often they occur in
  the training audio, phones ranked by how often they occur in the unpaired text, cluster of
  rank i read as phone of rank i; consecutive repeats merged, ``<SIL>`` dropped. It uses no
  labels, exactly like the GAN, and is what a "learning" method must beat;
- **supervised upper bound**: the GAN's generator (same class and ``GeneratorConfig``: dropout,
  then one Conv1d over segments, docs/method.md), one extra output for the blank, trained with CTC on the *reference* phones of the training utterances,
  decoded greedily. It shows what the features and segments allow (docs/method.md: 20.3% PER).

Usage::

    from wav2vec_u.demo.baselines import most_frequent_phone_hyps, kmeans_rank_hyps, train_supervised
    hyps = most_frequent_phone_hyps(valid_refs, phone_counts)
    hyps = kmeans_rank_hyps(train_x, train_len, valid_x, valid_len, phone_counts, seed=1)
    model, phones, history = train_supervised(train_x, train_len, train_refs, SupervisedConfig(),
                                              gan_cfg.generator)
    hyps = decode_supervised(model, phones, valid_x, valid_len)

All functions take arrays (features ``(N, D)`` concatenated over utterances, with per-utterance
lengths, the fairseq layout) and token lists; the demo does the file I/O.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch

from wav2vec_u.batching import pad_batch, padding_mask
from wav2vec_u.config import at_least, positive
from wav2vec_u.models.generator import Generator
from wav2vec_u.models.config import GeneratorConfig
from wav2vec_u.tokens import SIL, split_by_lengths
from wav2vec_u.audio.segments import assign_clusters, fit_kmeans

log = logging.getLogger(__name__)



def merge_repeats(tokens: Iterable[str], drop: Iterable[str] = (SIL,)) -> list[str]:
    """Collapse consecutive repeats (the GAN's join), then drop silence."""
    drop = set(drop)
    out: list[str] = []
    prev = None
    for t in tokens:
        if t != prev and t not in drop:
            out.append(t)
        prev = t
    return out


def phone_counts_from_text(lines: Iterable[str]) -> Counter:
    """Phone frequencies of phonemised text (one sentence per line, phones space-separated)."""
    counts: Counter = Counter()
    for line in lines:
        counts.update(line.split())
    return counts


# ---------------------------------------------------------------------------------------------
# Chance baselines
# ---------------------------------------------------------------------------------------------

def most_frequent_phone_hyps(refs: Sequence[Sequence[str]], phone_counts: Counter) -> list[list[str]]:
    """The text's most frequent (non-silence) phone, repeated to each reference's length."""
    ranked = [p for p, _ in phone_counts.most_common() if p != SIL]
    if not ranked:
        raise ValueError("no phones in the text counts: is the phonemised text empty?")
    top = ranked[0]
    return [[top] * len(r) for r in refs]


def rank_mapping(cluster_ids: np.ndarray, num_clusters: int, phone_counts: Counter) -> dict[int, str]:
    """Cluster of frequency rank i -> phone of frequency rank i (ties broken by id / symbol)."""
    freq = np.bincount(cluster_ids, minlength=num_clusters)
    clusters = sorted(range(num_clusters), key=lambda c: (-freq[c], c))
    phones = [p for p, _ in sorted(phone_counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    if not phones:
        raise ValueError("no phones in the text counts")
    # More clusters than phones cannot happen with k = len(phones); guard anyway by cycling.
    return {c: phones[min(i, len(phones) - 1)] for i, c in enumerate(clusters)}


def kmeans_rank_hyps(train_x: np.ndarray, train_lengths: Sequence[int], valid_x: np.ndarray,
                     valid_lengths: Sequence[int], phone_counts: Counter, seed: int = 1,
                     k: int | None = None) -> list[list[str]]:
    """Label-free chance baseline: k-means clusters read as phones by frequency rank."""
    k = k or len(phone_counts)

    centroids = fit_kmeans(train_x, k, niter=25, nredo=2, seed=seed)
    mapping = rank_mapping(assign_clusters(train_x, centroids), k, phone_counts)
    valid_ids = assign_clusters(valid_x, centroids)
    return [merge_repeats(mapping[int(c)] for c in ids) for ids in split_by_lengths(valid_ids, valid_lengths)]


# ---------------------------------------------------------------------------------------------
# Supervised upper bound: the generator architecture trained with CTC on reference phones
# ---------------------------------------------------------------------------------------------

@dataclass
class SupervisedConfig:
    """Training of the upper bound; the architecture is the GAN's ``GeneratorConfig``."""

    lr: float = positive(default=2e-3)  # measured here: converges in ~1 min on 2 cores (docs/method.md: 20.3%)
    batch_size: int = at_least(1, default=32)
    epochs: int = at_least(1, default=30)
    seed: int = 1
    max_seconds: float = positive(default=180.0)  # wall-clock cap so the demo's budget holds on a slow machine


def _out_lens(model, lengths: Sequence[int]) -> torch.Tensor:
    return model.output_lengths(torch.tensor([int(n) for n in lengths]))


def train_supervised(train_x: np.ndarray, train_lengths: Sequence[int], train_refs: Sequence[Sequence[str]],
                     cfg: SupervisedConfig, generator_cfg: GeneratorConfig | None = None,
                     phones: Sequence[str] | None = None):
    """Train the GAN's generator (``wav2vec_u.models.generator.Generator``) with CTC on reference phones.

    The generator gets one extra output, index 0, for the CTC blank; phones are 1..V.

    Returns ``(model, phones, history)``; ``history`` is a list of ``{"epoch", "loss"}``.
    Utterances with fewer output steps than CTC needs are skipped (counted in the log).
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    utts = split_by_lengths(train_x, train_lengths)
    if len(utts) != len(train_refs):
        raise ValueError(f"{len(utts)} training utterances but {len(train_refs)} reference lines")
    if phones is None:
        phones = sorted({p for r in train_refs for p in r})
    index = {p: i + 1 for i, p in enumerate(phones)}
    model = Generator(train_x.shape[1], len(phones) + 1, generator_cfg or GeneratorConfig())
    data = []
    skipped = 0
    for x, ref in zip(utts, train_refs):
        y = [index[p] for p in ref if p in index]
        repeats = sum(1 for a, b in zip(y, y[1:]) if a == b)
        if not y or int(_out_lens(model, [len(x)])[0]) < len(y) + repeats:
            skipped += 1
            continue
        data.append((x.astype(np.float32), np.asarray(y, dtype=np.int64)))
    if not data:
        raise ValueError("no training utterance has enough segments for CTC on its reference phones")
    if skipped:
        log.info("supervised bound: skipped %d/%d utterances with fewer segments than CTC needs",
                 skipped, len(utts))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    history = []
    start = time.time()
    for epoch in range(cfg.epochs):
        model.train()
        order = rng.permutation(len(data))
        total, n = 0.0, 0
        for s in range(0, len(order), cfg.batch_size):
            batch = [data[i] for i in order[s:s + cfg.batch_size]]
            x, lengths = pad_batch([b[0] for b in batch])
            mask = padding_mask(lengths, x.shape[1])
            logits, _ = model(x, mask)
            logp = logits.log_softmax(-1).transpose(0, 1)  # (T', B, V+1)
            in_len = _out_lens(model, [len(b[0]) for b in batch])
            tgt = torch.from_numpy(np.concatenate([b[1] for b in batch]))
            tgt_len = torch.tensor([len(b[1]) for b in batch])
            loss = ctc(logp, tgt, in_len, tgt_len)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(batch)
            n += len(batch)
        history.append({"epoch": epoch + 1, "loss": total / n})
        if time.time() - start > cfg.max_seconds:
            log.info("supervised bound: stopped after %d epochs (max_seconds=%s)", epoch + 1, cfg.max_seconds)
            break
    model.eval()
    return model, list(phones), history


def decode_supervised(model, phones: Sequence[str], x: np.ndarray, lengths: Sequence[int]) -> list[list[str]]:
    """Greedy CTC decoding: argmax, merge repeats, drop blanks and ``<SIL>``."""
    out = []
    with torch.no_grad():
        for u in split_by_lengths(x, lengths):
            x = torch.from_numpy(u.astype(np.float32))[None]
            logits, _ = model(x, torch.zeros(1, len(u), dtype=torch.bool))
            ids = logits[0].argmax(-1).tolist()
            toks, prev = [], 0
            for i in ids:
                if i != prev and i != 0:
                    toks.append(phones[i - 1])
                prev = i
            out.append([t for t in toks if t != SIL])
    return out


# ---------------------------------------------------------------------------------------------
# A corpus folder's split (the file I/O of `w2vu baselines` and the demo's chance stage)
# ---------------------------------------------------------------------------------------------

def split_baselines(corpus, segments, text, split: str = "valid", *, kmeans_seed: int = 1,
                    supervised: SupervisedConfig | None = None,
                    generator_cfg: GeneratorConfig | None = None) -> dict[str, list[list[str]]]:
    """Hypotheses of the baselines for ``split`` of a corpus folder: ``most_frequent`` (needs
    ``corpus/{split}.phn`` for the oracle lengths), ``kmeans_rank`` (the segments of ``train``
    and ``split``, the phone counts of ``text/phones.txt``) and, with ``supervised``, the
    ``supervised`` bound trained on ``corpus/train.phn``."""
    from pathlib import Path

    from wav2vec_u.audio.features_io import load_features
    from wav2vec_u.tokens import read_token_lines
    from wav2vec_u.train.data import read_dictionary

    corpus, segments, text = Path(corpus), Path(segments), Path(text)
    counts = phone_counts_from_text((text / "phones.txt").read_text(encoding="utf-8").splitlines())
    tx, tl = load_features(segments, "train", mmap=True)
    vx, vl = load_features(segments, split, mmap=True)
    out: dict[str, list[list[str]]] = {}
    refs = read_token_lines(corpus / f"{split}.phn", len(vl), missing_ok=True)
    if refs is not None:
        out["most_frequent"] = most_frequent_phone_hyps(refs, counts)
    out["kmeans_rank"] = kmeans_rank_hyps(np.asarray(tx), tl, np.asarray(vx), vl, counts, seed=kmeans_seed)
    if supervised is not None:
        train_refs = read_token_lines(corpus / "train.phn", len(tl))
        phones = [p for p in read_dictionary(text) if p != SIL]
        model, phones, _ = train_supervised(np.asarray(tx), tl, train_refs, supervised, generator_cfg, phones=phones)
        out["supervised"] = decode_supervised(model, phones, np.asarray(vx), vl)
    return out
