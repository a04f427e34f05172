"""Toy material for the tests (the one toy module): a GAN cipher, decoder and self-training data.

The GAN cipher: phones emit Gaussian segment features, sentences follow a bigram.
Each phone of a random inventory has its own random mean in ``dim`` dimensions (unit
variance); a segment is that mean plus Gaussian noise (``noise`` standard deviation); a phone
emits one segment, or two with probability ``repeat_prob`` (as real segmenters over-split).
Sentences come from a sparse bigram model (each phone has ``successors`` likely followers and a
Zipf-like start distribution), never repeating a phone. Features come from one set of
sentences and the unpaired text from a disjoint set, so the GAN must decipher, not memorise::

    toy = make_toy(seed=0)
    write_toy(toy, "feats/", "text/")      # fairseq feature layout + prepare-text layout

The frame-level variant (wav2vec-U 2.0 reads frames, not segments): ``frames_per_phone > 0``
gives each phone a duration drawn from a log-normal around that many frames (at least 2; real
phones last 50-150 ms, 2.5-7.5 frames at 50 Hz), neighbouring phones blend over the boundary
frame, and ``targets`` holds 2.0's auxiliary targets: 64-cluster k-means ids of a second,
13-dim "MFCC" view of the same phones at twice the frame rate (written as ``{split}.km``)::

    toy = make_toy(frames_per_phone=4.0, seed=0)   # .train.targets: one id array per utterance

Decoders and self-training, without audio or lmplz::

    write_bigram_arpa(tmp / "lm.words.4.arpa", ["the cat sat", "a dog ran"])
    lexicon = toy_lexicon(words, phones, rng)                 # word -> [(p, p, ...)]
    utts = toy_utterances(phone_seqs, means, rng)             # Gaussian frames per phone

Audio for the commands that read it: ``write_audio_corpus(root, 50)`` (espeak-ng, or formant tones).

Those frames are "a Gaussian per phone, 2-4 frames each, plus a fraction of the previous
phone's mean" (a little coarticulation), which a small CTC model learns in seconds.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from wav2vec_u.audio.io import load_16k, write_wav
from wav2vec_u.audio.manifest import write_manifest
from wav2vec_u.io import atomic_path, atomic_write_text


@dataclass
class ToySplit:
    feats: np.ndarray  # (N, dim) float32, utterances concatenated
    lengths: list[int]  # segments per utterance
    refs: list[list[str]]  # phones per utterance
    labels: np.ndarray  # (N,) phone id of every segment (the toy's own alignment; never given to the GAN)
    targets: list[np.ndarray] | None = None  # frame toy: k-means ids at twice the frame rate, per utterance


@dataclass
class Toy:
    phones: list[str]
    train: ToySplit
    valid: ToySplit
    text: list[list[str]]  # unpaired phone sentences (disjoint from train/valid)


def _sample_sentences(rng: np.random.Generator, n: int, start: np.ndarray, trans: np.ndarray,
                      min_len: int, max_len: int) -> list[list[int]]:
    out = []
    for _ in range(n):
        length = int(rng.integers(min_len, max_len + 1))
        s = [int(rng.choice(len(start), p=start))]
        while len(s) < length:
            s.append(int(rng.choice(len(start), p=trans[s[-1]])))
        out.append(s)
    return out


def make_toy(num_phones: int = 20, dim: int = 32, noise: float = 0.5, num_train: int = 1000,
             num_valid: int = 200, num_text: int = 4000, min_len: int = 8, max_len: int = 20,
             repeat_prob: float = 0.3, successors: int = 3, seed: int = 0, frames_per_phone: float = 0.0,
             target_classes: int = 64) -> Toy:
    rng = np.random.default_rng(seed)
    phones = [f"p{i:02d}" for i in range(num_phones)]
    means = rng.normal(size=(num_phones, dim)).astype(np.float32)
    start = 1.0 / np.arange(1, num_phones + 1) ** 1.0
    start = start[rng.permutation(num_phones)]
    start /= start.sum()
    trans = np.zeros((num_phones, num_phones))
    for i in range(num_phones):
        others = [j for j in range(num_phones) if j != i]
        follow = rng.choice(others, size=successors, replace=False)
        trans[i, follow] = rng.dirichlet(np.ones(successors)) * 0.9
        trans[i, others] += 0.1 / len(others)  # a little mass everywhere: structure, not a cycle
    trans /= trans.sum(1, keepdims=True)
    sents = _sample_sentences(rng, num_train + num_valid + num_text * 2, start, trans, min_len, max_len)
    audio = sents[: num_train + num_valid]
    seen = {tuple(s) for s in audio}
    text = [s for s in sents[num_train + num_valid:] if tuple(s) not in seen][:num_text]

    def emit(sentences: list[list[int]]) -> ToySplit:
        rows, lengths, labels = [], [], []
        for s in sentences:
            ids = [p for p in s for _ in range(2 if rng.random() < repeat_prob else 1)]
            rows.append(means[ids] + noise * rng.normal(size=(len(ids), dim)).astype(np.float32))
            lengths.append(len(ids))
            labels.extend(ids)
        return ToySplit(np.concatenate(rows).astype(np.float32), lengths, [[phones[p] for p in s] for s in sentences],
                        np.asarray(labels, dtype=np.int64))

    if frames_per_phone <= 0:
        return Toy(phones, emit(audio[:num_train]), emit(audio[num_train:]), [[phones[p] for p in s] for s in text])
    # frame toy: its own generator, so the segment toy's random stream stays as it was
    frng = np.random.default_rng(seed + 1)
    view = frng.normal(size=(num_phones, 13)).astype(np.float32)  # the "MFCC" view the targets come from

    def emit_frames(sentences: list[list[int]]) -> tuple[ToySplit, list[np.ndarray]]:
        rows, lengths, labels, fine = [], [], [], []
        for s in sentences:
            dur = np.maximum(2, np.round(frng.lognormal(np.log(frames_per_phone), 0.35, size=len(s)))).astype(int)
            ids = np.repeat(s, dur)
            x = means[ids].copy()
            ends = np.cumsum(dur)[:-1]  # first frame of each later phone blends with the phone before
            x[ends] = 0.6 * x[ends] + 0.4 * means[ids[ends - 1]]
            rows.append(x + noise * frng.normal(size=x.shape).astype(np.float32))
            lengths.append(len(ids))
            labels.extend(ids.tolist())
            fine_ids = np.repeat(ids, 2)  # twice the frame rate
            fine.append(view[fine_ids] + 0.7 * frng.normal(size=(len(fine_ids), 13)).astype(np.float32))
        split = ToySplit(np.concatenate(rows).astype(np.float32), lengths, [[phones[p] for p in s] for s in sentences],
                         np.asarray(labels, dtype=np.int64))
        return split, fine

    train, fine_train = emit_frames(audio[:num_train])
    valid, fine_valid = emit_frames(audio[num_train:])
    from wav2vec_u.audio.segments import assign_clusters, fit_kmeans  # the package's own k-means (faiss)

    centroids = fit_kmeans(np.concatenate(fine_train), k=target_classes, niter=20, nredo=1, seed=seed)
    for split, fine in ((train, fine_train), (valid, fine_valid)):
        split.targets = [assign_clusters(f, centroids) for f in fine]
    return Toy(phones, train, valid, [[phones[p] for p in s] for s in text])


def write_bigram_arpa(path: str | Path, sentences: Sequence[Sequence[str] | str], discount: float = 0.5) -> Path:
    """A bigram ARPA LM (absolute discounting, backoff to unigrams); sentences are token lists or strings.

    Small and exact enough for tests and the toy; real runs use KenLM's lmplz 4-gram.
    """
    uni: Counter = Counter()
    bi: Counter = Counter()
    for s in sentences:
        toks = ["<s>", *(s.split() if isinstance(s, str) else s), "</s>"]
        uni.update(toks[1:])
        bi.update(zip(toks[:-1], toks[1:]))
    vocab = sorted(uni)
    total = sum(uni.values())
    p_uni = {w: uni[w] / total for w in vocab}
    ctx: Counter = Counter()
    followers: dict[str, list[str]] = {}
    for (v, w), c in bi.items():
        ctx[v] += c
        followers.setdefault(v, []).append(w)
    lines_bi = []
    bow = {}
    for v in ["<s>", *vocab]:
        if v not in ctx:
            continue
        alpha = discount * len(followers[v]) / ctx[v]
        probs = {w: (bi[(v, w)] - discount) / ctx[v] + alpha * p_uni[w] for w in followers[v]}
        seen_mass = sum(probs.values())
        seen_uni = sum(p_uni[w] for w in followers[v])
        bow[v] = (1 - seen_mass) / max(1 - seen_uni, 1e-12)
        for w, p in probs.items():
            lines_bi.append(f"{math.log10(p):.6f}\t{v} {w}")
    lines_uni = ["-99.000000\t<s>\t" + f"{math.log10(max(bow.get('<s>', 1.0), 1e-12)):.6f}"]
    for w in vocab:
        entry = f"{math.log10(p_uni[w]):.6f}\t{w}"
        if w in bow:
            entry += f"\t{math.log10(max(bow[w], 1e-12)):.6f}"
        lines_uni.append(entry)
    text = ("\n\\data\\\n" + f"ngram 1={len(lines_uni)}\n" + f"ngram 2={len(lines_bi)}\n\n\\1-grams:\n"
            + "\n".join(lines_uni) + "\n\n\\2-grams:\n" + "\n".join(lines_bi) + "\n\n\\end\\\n")
    return atomic_write_text(path, text)


def write_toy(toy: Toy, feat_dir: str | Path, text_dir: str | Path) -> None:
    """Feature dir (train/valid .npy, .lengths, .phn) and text dir (phones.txt, dict.phn.txt, LM)."""
    feat_dir, text_dir = Path(feat_dir), Path(text_dir)
    feat_dir.mkdir(parents=True, exist_ok=True)
    text_dir.mkdir(parents=True, exist_ok=True)
    for name, split in (("train", toy.train), ("valid", toy.valid)):
        with atomic_path(feat_dir / f"{name}.npy", suffix=".npy") as tmp:
            np.save(tmp, split.feats)
        atomic_write_text(feat_dir / f"{name}.lengths", "".join(f"{n}\n" for n in split.lengths))
        atomic_write_text(feat_dir / f"{name}.phn", "".join(" ".join(r) + "\n" for r in split.refs))
        if split.targets is not None:  # fairseq's 2.0 layout: {split}.km beside the features
            atomic_write_text(feat_dir / f"{name}.km", "".join(" ".join(map(str, t.tolist())) + "\n"
                                                               for t in split.targets))
    atomic_write_text(text_dir / "phones.txt", "".join(" ".join(s) + "\n" for s in toy.text))
    counts = Counter(p for s in toy.text for p in s)
    atomic_write_text(text_dir / "dict.phn.txt", "".join(f"{p} {counts[p]}\n" for p in toy.phones))
    write_bigram_arpa(text_dir / "lm.phones.4.arpa", toy.text)


def toy_lexicon(words: Sequence[str], phones: Sequence[str], rng: np.random.Generator,
                min_len: int = 2, max_len: int = 3) -> dict[str, list[tuple[str, ...]]]:
    """Distinct random pronunciations (no phone repeated back to back) for ``words``."""
    lexicon: dict[str, list[tuple[str, ...]]] = {}
    used = set()
    for w in words:
        while True:
            n = int(rng.integers(min_len, max_len + 1))
            pron = [str(rng.choice(phones))]
            while len(pron) < n:
                p = str(rng.choice(phones))
                if p != pron[-1]:
                    pron.append(p)
            if tuple(pron) not in used:
                break
        used.add(tuple(pron))
        lexicon[w] = [tuple(pron)]
    return lexicon


def toy_utterances(phone_seqs: Sequence[Sequence[str]], means: dict[str, np.ndarray], rng: np.random.Generator,
                   noise: float = 0.8, context: float = 0.3) -> list[np.ndarray]:
    """Frames for each phone sequence: 2-4 frames per phone of its mean + context + noise."""
    dim = len(next(iter(means.values())))
    utts = []
    for seq in phone_seqs:
        frames = []
        for i, p in enumerate(seq):
            ctx = context * means[seq[i - 1]] if i else 0.0
            frames += [means[p] + ctx + noise * rng.standard_normal(dim) for _ in range(int(rng.integers(2, 5)))]
        utts.append(np.asarray(frames, dtype=np.float32).reshape(-1, dim))
    return utts


def corrupt(labels: Sequence[str], inventory: Sequence[str], rng: np.random.Generator,
            sub: float = 0.25, dele: float = 0.1, ins: float = 0.05) -> list[str]:
    """Random substitutions, deletions and insertions (noisy pseudo-labels, better than chance)."""
    out = []
    for t in labels:
        r = rng.random()
        if r < dele:
            continue
        out.append(str(rng.choice(inventory)) if r < dele + sub else t)
        if rng.random() < ins:
            out.append(str(rng.choice(inventory)))
    return out


def signal_after_step(monkeypatch, step: int, sig) -> None:
    """Make the GAN trainer send itself ``sig`` right after update ``step`` (pre-emption, Ctrl-C)."""
    import os

    from wav2vec_u.train.trainer import GanTrainer

    original = GanTrainer.train_step

    def step_then_signal(self):
        out = original(self)
        if self.step == step:
            os.kill(os.getpid(), sig)
        return out

    monkeypatch.setattr(GanTrainer, "train_step", step_then_signal)


AUDIO_WORDS = "the cat sat on a mat while seven green birds sang quietly over distant hills and rivers".split()


def write_audio_corpus(root: Path, n: int, num_valid: int = 10) -> None:
    """``n`` short utterances in ``root`` with ``train.tsv``/``valid.tsv`` (the last ``num_valid``)
    and ``.wrd`` files. Speech comes from the espeak-ng command line (installed by scripts/setup.sh);
    without it, numpy "formant" sequences (80-200 ms per "phone"), so tests still run everywhere."""
    rng = np.random.default_rng(0)
    entries = {"train": [], "valid": []}
    for i in range(n):
        split = "train" if i < n - num_valid else "valid"
        path = root / f"utt{i:03d}.wav"
        if shutil.which("espeak-ng"):
            text = " ".join(rng.choice(AUDIO_WORDS, size=rng.integers(3, 7)))
            raw = root / f"raw{i:03d}.wav"
            subprocess.run(["espeak-ng", "-w", str(raw), "-s", str(int(rng.integers(140, 190))), text], check=True)
            wav = load_16k(raw)
            raw.unlink()
        else:  # piecewise-stationary two-formant signal, 80-200 ms per "phone"
            parts = []
            for _ in range(rng.integers(6, 14)):
                f1, f2 = rng.uniform(250, 900), rng.uniform(900, 2800)
                t = np.arange(int(rng.uniform(0.08, 0.2) * 16000)) / 16000
                parts.append(0.4 * np.sin(2 * np.pi * f1 * t) + 0.2 * np.sin(2 * np.pi * f2 * t))
            wav = np.concatenate(parts) + 0.01 * rng.standard_normal(sum(map(len, parts)))
        write_wav(path, wav)
        entries[split].append((path.name, len(wav)))
        (root / f"{split}.wrd").open("a").write(f"utterance {i}\n")
    for split, ents in entries.items():
        write_manifest(root / f"{split}.tsv", root, ents)
