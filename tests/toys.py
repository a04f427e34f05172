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


def write_frame_toy(toy: Toy, feat_dir: str | Path, text_dir: str | Path, seed: int = 0, noise: float = 0.5,
                    silence_frames: int = 6) -> None:
    """The toy's language as *frame* features (4-8 noisy frames of a per-phone mean, like 40-80 ms
    phones at 100 Hz), each utterance between two stretches of silence (frames near zero), in the
    ``w2vu extract`` layout; the text with ``<SIL>`` at both ends of every sentence, as ``w2vu
    prepare-text`` writes it."""
    from wav2vec_u.tokens import SIL  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    dim = toy.train.feats.shape[1]
    means = {p: 2.0 * rng.standard_normal(dim).astype(np.float32) for p in toy.phones}
    feat_dir, text_dir = Path(feat_dir), Path(text_dir)
    feat_dir.mkdir(parents=True, exist_ok=True)
    text_dir.mkdir(parents=True, exist_ok=True)
    for name, split in (("train", toy.train), ("valid", toy.valid)):
        utts = []
        for ref in split.refs:
            frames = [means[p] + noise * rng.standard_normal((int(rng.integers(4, 9)), dim)) for p in ref]
            sil = [0.3 * rng.standard_normal((silence_frames, dim))]
            utts.append(np.concatenate(sil + frames + sil).astype(np.float32))
        with atomic_path(feat_dir / f"{name}.npy", suffix=".npy") as tmp:
            np.save(tmp, np.concatenate(utts))
        atomic_write_text(feat_dir / f"{name}.lengths", "".join(f"{len(u)}\n" for u in utts))
        atomic_write_text(feat_dir / f"{name}.phn", "".join(" ".join(r) + "\n" for r in split.refs))
    text = [[SIL, *s, SIL] for s in toy.text]
    atomic_write_text(text_dir / "phones.txt", "".join(" ".join(s) + "\n" for s in text))
    counts = Counter(p for s in text for p in s)
    atomic_write_text(text_dir / "dict.phn.txt", "".join(f"{p} {counts[p]}\n" for p in [*toy.phones, SIL]))
    write_bigram_arpa(text_dir / "lm.phones.4.arpa", toy.text)


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


# ---------------------------------------------------------------------------------------------
# Fabricated corpus trees in the public corpora's exact layouts (TIMIT, LibriSpeech, MLS):
# espeak-ng speech converted by sox (NIST SPHERE for TIMIT, FLAC for the others), or, with
# ``spoken=False``, a few ms of noise written by soundfile (fast: the 6,300-file TIMIT tree).

# toy words in TIMIT's 61 labels (closures before stops, as TIMIT transcribes them)
TIMIT_WORDS = {
    "she": "sh iy", "had": "hh ae dcl d", "your": "y axr", "dark": "dcl d aa r kcl k", "suit": "s uw tcl t",
    "in": "ix n", "greasy": "gcl g r iy s iy", "wash": "w ao sh", "water": "w ao dx axr", "all": "ao l",
    "year": "y ih axr", "don't": "dcl d ow n q", "ask": "ae s kcl k", "me": "m iy", "to": "tcl t ux",
    "carry": "kcl k eh r iy", "an": "ax n", "oily": "oy l iy", "rag": "r ae gcl g", "like": "l ay kcl k",
    "that": "dh ae tcl t",
}


def _speech(text: str, rng: np.random.Generator, spoken: bool, voice: str = "en-us") -> tuple[np.ndarray, int]:
    import subprocess
    import tempfile

    import soundfile as sf

    if not spoken:
        return (0.05 * rng.standard_normal(800)).astype(np.float32), 16000
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(int(rng.integers(140, 190))), "-w", str(raw), text],
                       check=True)
        out = Path(tmp) / "s16.wav"
        subprocess.run(["sox", "-V1", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out)], check=True)
        wav, sr = sf.read(out, dtype="float32")
    return wav, sr


def write_audio(path: Path, wav: np.ndarray, sr: int, kind: str) -> Path:
    """``kind``: "sph" (NIST SPHERE through sox, as TIMIT ships), "flac", "wav"."""
    import subprocess
    import tempfile

    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "sph":
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "x.wav"
            sf.write(src, wav, sr, subtype="PCM_16")
            subprocess.run(["sox", "-V1", str(src), "-t", "sph", str(path)], check=True)
    else:
        sf.write(path, wav, sr, format=kind.upper(), subtype="PCM_16")
    return path


def timit_tree(root: Path, speakers: dict[str, list[tuple[str, str]]], utts: int = 3, seed: int = 0,
               spoken: bool = True, sa: bool = True, sph: bool = True) -> dict[str, list[str]]:
    """TIMIT's layout: ``root/{TRAIN,TEST}/DRn/SPEAKER/{SA,SI,SX}n.{WAV,PHN,WRD,TXT}``.

    ``speakers``: part ("TRAIN"/"TEST") -> [(region, speaker)]; each speaker reads ``utts``
    SI/SX sentences (numbered by speaker so prompts differ) and, with ``sa``, SA1/SA2. Returns
    utterance ids ("SPEAKER_SX12") per part, SA left out. Without ``sph`` the audio is written by
    soundfile, still NIST SPHERE; without ``spoken`` every file is the same 50 ms of noise and
    there is no ``.TXT`` (which no reader needs)."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    vocab = sorted(TIMIT_WORDS)
    out: dict[str, list[str]] = {}
    quiet = None
    if not spoken:  # one SPHERE file's bytes, written as is for every utterance (thousands, fast)
        import io

        buf = io.BytesIO()
        sf.write(buf, (0.05 * rng.standard_normal(800)).astype(np.float32), 16000, format="NIST", subtype="PCM_16")
        quiet = buf.getvalue()
    for part, spks in speakers.items():
        out[part] = []
        for k, (region, spk) in enumerate(spks):
            folder = root / part / region / spk
            names = [f"SX{10 * k + i + 1}" if i % 2 else f"SI{100 * k + i + 1}" for i in range(utts)]
            for name in (["SA1", "SA2"] if sa else []) + names:
                words = list(rng.choice(vocab, size=int(rng.integers(2, 5))))
                folder.mkdir(parents=True, exist_ok=True)
                if quiet is not None:
                    (folder / f"{name}.WAV").write_bytes(quiet)
                    n = 800
                else:
                    wav, sr = _speech(" ".join(words), rng, spoken)
                    n = len(wav)
                    if sph:
                        write_audio(folder / f"{name}.WAV", wav, sr, "sph")
                    else:
                        sf.write(folder / f"{name}.WAV", wav, sr, format="NIST", subtype="PCM_16")
                labels = ["h#"] + [p for w in words for p in TIMIT_WORDS[w].split()] + ["h#"]
                step = n // len(labels)
                (folder / f"{name}.PHN").write_text("".join(
                    f"{i * step} {(i + 1) * step} {p}\n" for i, p in enumerate(labels)))
                step_w = n // (len(words) + 2)
                (folder / f"{name}.WRD").write_text("".join(
                    f"{(i + 1) * step_w} {(i + 2) * step_w} {w}\n" for i, w in enumerate(words)))
                if spoken:
                    (folder / f"{name}.TXT").write_text(f"0 {n} {' '.join(words).capitalize()}.\n")
                if not name.startswith("SA"):
                    out[part].append(f"{spk}_{name}")
    return out


def librispeech_tree(root: Path, subsets: dict[str, int], seed: int = 0, spoken: bool = True) -> dict[str, int]:
    """LibriSpeech's layout: ``root/SUBSET/SPEAKER/CHAPTER/SPEAKER-CHAPTER-NNNN.flac`` with
    ``SPEAKER-CHAPTER.trans.txt`` (upper-case words, as LibriSpeech writes them); ``subsets``:
    name -> utterances (two speakers, one chapter each)."""
    rng = np.random.default_rng(seed)
    vocab = sorted(TIMIT_WORDS)
    for s_i, (subset, n) in enumerate(subsets.items()):
        for spk_i in range(2):
            spk, chap = str(100 + 10 * s_i + spk_i), str(2000 + 10 * s_i + spk_i)
            folder = root / subset / spk / chap
            lines = []
            for u in range(n // 2 + (spk_i < n % 2)):
                words = list(rng.choice(vocab, size=int(rng.integers(2, 5))))
                uid = f"{spk}-{chap}-{u:04d}"
                wav, sr = _speech(" ".join(words), rng, spoken)
                write_audio(folder / f"{uid}.flac", wav, sr, "flac")
                lines.append(f"{uid} {' '.join(words).upper()}\n")
            (folder / f"{spk}-{chap}.trans.txt").write_text("".join(lines))
    return subsets


def mls_tree(root: Path, counts: dict[str, int], seed: int = 0, spoken: bool = True,
             vocab: Sequence[str] | None = None, voice: str = "en-us") -> Path:
    """MLS's layout for one language: ``root/{train,dev,test}/transcripts.txt`` (``ID<TAB>text``)
    and ``root/SPLIT/audio/SPEAKER/BOOK/SPEAKER_BOOK_NNNNNN.flac``; sentences of 2-4 words of
    ``vocab`` spoken by the espeak-ng ``voice``."""
    rng = np.random.default_rng(seed)
    vocab = sorted(vocab or TIMIT_WORDS)
    for s_i, (split, n) in enumerate(counts.items()):
        lines = []
        for u in range(n):
            spk, book = str(10 + s_i * 5 + u % 2), str(300 + s_i)
            uid = f"{spk}_{book}_{u:06d}"
            words = list(rng.choice(vocab, size=int(rng.integers(2, 5))))
            wav, sr = _speech(" ".join(words), rng, spoken, voice)
            write_audio(root / split / "audio" / spk / book / f"{uid}.flac", wav, sr, "flac")
            lines.append(f"{uid}\t{' '.join(words)}\n")
        (root / split / "transcripts.txt").write_text("".join(lines))
        (root / split / "segments.txt").write_text("")  # MLS ships it; not part of what we read
    return root


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
