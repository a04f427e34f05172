#!/usr/bin/env python
"""The GAN's learning ladder: valid PER and the label-free metric against updates, from perfect
features over real phone sequences (rung a) to the demo's MFCC segments (rungs b, c).

    # rung (a), English, ours at toy settings, three corpus sizes, one seed, 5,000 updates
    .venv/bin/python scripts/bench_gan_learning.py OUT --sizes 1000 4000 10000 --updates 5000
    # the reduced English inventory (39 symbols with <SIL>), Spanish, the reference settings
    .venv/bin/python scripts/bench_gan_learning.py OUT --inventory fold39 --sizes 1000
    .venv/bin/python scripts/bench_gan_learning.py OUT --lang es --settings toy w2vu --seeds 1 2
    # rungs (b) and (c) on a finished demo run (w2vu demo --out RUN)
    .venv/bin/python scripts/bench_gan_learning.py OUT --rungs b c --demo-run RUN
    # a diagnostic with labels: G starts from CTC on the true phones; does the GAN keep that start?
    .venv/bin/python scripts/bench_gan_learning.py OUT --init oracle --updates 2000
    # only print the table (and PNG) of the runs already in OUT
    .venv/bin/python scripts/bench_gan_learning.py OUT --report

Rung (a) needs no audio. The sentences (``--sentences``; default the shipped
``wav2vec_u/resources/data/sentences/LANG.txt``, 12,000 lines; ``scripts/make_sentences.py --out
DIR --max-lines 1000000`` writes all 46,267 English / 32,618 Spanish Bible sentences, enough for
40k utterances) are shuffled with a fixed seed and split into three disjoint parts: the unpaired
text (``--text-lines``, phonemised with silences by ``prepare_text`` as ``w2vu prepare-text`` does,
with its phone LM for the metric), 200 validation utterances, and the training pool. A corpus of
size N takes the first N utterances of the pool (so the sizes are nested). Every phone gets a random
N(0, 1) mean in 32 dimensions, each occurrence that mean plus N(0, 0.5^2) noise: a linear
classifier separates the phones perfectly, so whatever PER remains is the search's. Utterances carry
no <SIL> (as audio after silence removal); the text does, as in the reference recipe.

``--inventory fold39`` folds espeak's 59 English phones to 38 + <SIL>, the way TIMIT's 61 fold to
39 (FOLD_EN below: schwas to ʌ, ᵻ to ɪ, rhotic vowels split into vowel + ɹ, ʒ to ʃ, ...), on both
sides, and rebuilds the dictionary and phone LM.

Rung (b): the demo run's MFCC frames mean-pooled at espeak's own phone boundaries (labels, as
``scripts/research/oracle_segments.py``); rung (c): the run's own segments (``RUN/segments``).

Each run is ``w2vu train-gan`` in its own folder (``OUT/runs/NAME``; resumes, so an interrupted
ladder picks up where it stopped) with ``--config`` the named settings (``toy``:
configs/gan/toy.yaml, batch 64, D 128; ``w2vu``: the reference's, batch 160, D 384). ``--set
KEY=VALUE`` adds overrides to every run (and to its name). ``--jobs`` runs that many at once,
one thread each. The table has one row per run and the valid PER at each validation; the PNG
(``OUT/ladder.png``) plots PER against updates. Everything is also in ``OUT/ladder.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from wav2vec_u.io import resource_path, write_json
from wav2vec_u.text.dictionary import PhoneDictionary
from wav2vec_u.text.lm import build_lm
from wav2vec_u.text.prepare import prepare_text

SIL = "<SIL>"
VALID_UTTS = 200
SETTINGS = {"toy": resource_path("configs", "gan", "toy.yaml"), "w2vu": resource_path("configs", "gan", "w2vu.yaml")}

# espeak-ng en-us (59 phones) -> 38 phones, after TIMIT's 61 -> 39 folding (Lee & Hon 1989): the
# reduced vowels merge with ʌ / ɪ, ɔ(ː) with ɑː, ʒ with ʃ, syllabic consonants with plain ones,
# the glottal stop is dropped and r-coloured vowels split into vowel + ɹ (TIMIT writes them so).
FOLD_EN: dict[str, tuple[str, ...]] = {
    "ə": ("ʌ",), "ɐ": ("ʌ",), "ᵻ": ("ɪ",), "i": ("iː",), "ɔ": ("ɑː",), "ɔː": ("ɑː",), "oː": ("oʊ",),
    "ɜː": ("ɚ",), "ʒ": ("ʃ",), "n̩": ("n",), "əl": ("l",), "ʔ": (),
    "ɔːɹ": ("ɑː", "ɹ"), "ɑːɹ": ("ɑː", "ɹ"), "oːɹ": ("ɑː", "ɹ"), "ɛɹ": ("ɛ", "ɹ"), "ʊɹ": ("ʊ", "ɹ"),
    "ɪɹ": ("ɪ", "ɹ"), "iə": ("iː", "ʌ"), "aɪə": ("aɪ", "ʌ"), "aɪɚ": ("aɪ", "ɚ"),
}


def fold(line: list[str], table: dict[str, tuple[str, ...]]) -> list[str]:
    return [q for p in line for q in table.get(p, (p,))]


# ---------------------------------------------------------------- rung (a): data


def split_sentences(path: Path, text_lines: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    """(unpaired text, valid utterances, training pool): disjoint, from one seeded shuffle."""
    lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    random.Random(seed).shuffle(lines)
    if len(lines) < text_lines + VALID_UTTS + 100:
        raise SystemExit(f"{path}: {len(lines)} sentences, need more than --text-lines {text_lines} + "
                         f"{VALID_UTTS} valid + 100 training (scripts/make_sentences.py writes more)")
    return lines[:text_lines], lines[text_lines:text_lines + VALID_UTTS], lines[text_lines + VALID_UTTS:]


def phonemised(sentences: list[str], work: Path, lang: str) -> Path:
    """prepare_text over ``sentences`` into ``work`` (cached by its own stage record)."""
    work.mkdir(parents=True, exist_ok=True)
    src = work / "sentences.txt"
    body = "\n".join(sentences) + "\n"
    if not src.is_file() or src.read_text(encoding="utf-8") != body:
        src.write_text(body, encoding="utf-8")
    prepare_text(src, work / "text", lang=lang, progress=False)
    return work / "text"


def folded_text_dir(src: Path, dst: Path, table: dict[str, tuple[str, ...]]) -> Path:
    """A prepare-text folder with every phone line folded, its dictionary and 4-gram phone LM rebuilt."""
    if (dst / "lm.phones.4.bin").is_file():
        return dst
    dst.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for name in ("phones.txt", "phones.nosil.txt"):
        lines = [fold(x.split(), table) for x in (src / name).read_text(encoding="utf-8").splitlines()]
        (dst / name).write_text("".join(" ".join(x) + "\n" for x in lines if x), encoding="utf-8")
        if name == "phones.txt":
            for x in lines:
                for p in x:
                    counts[p] = counts.get(p, 0) + 1
    sil = {SIL: counts.pop(SIL)} if SIL in counts else None
    PhoneDictionary.from_counts(counts, sil).save(dst / "dict.phn.txt")
    build_lm(dst / "phones.txt", dst / "lm.phones.4", 4)
    return dst


def utterance_phones(utt_text_dir: Path, phones: set[str], table: dict | None) -> list[list[str]]:
    """The utterances' phone sequences (no <SIL>), folded; ones with a phone outside the text's
    inventory (a rare phone the text side mapped away) are left out."""
    out = []
    for line in (utt_text_dir / "phones.nosil.txt").read_text(encoding="utf-8").splitlines():
        x = fold(line.split(), table) if table else line.split()
        if x and set(x) <= phones:
            out.append(x)
    return out


def write_perfect_features(out: Path, splits: dict[str, list[list[str]]], phones: list[str], dim: int,
                           noise: float, seed: int) -> Path:
    """{split}.npy / .lengths / .phn: one N(mean_phone, noise^2) vector per phone occurrence."""
    if (out / "meta.json").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    means = {p: rng.normal(size=dim).astype(np.float32) for p in phones}
    for split, lines in splits.items():
        n = sum(len(x) for x in lines)
        feats = np.stack([means[p] for x in lines for p in x]) + noise * rng.normal(size=(n, dim)).astype(np.float32)
        np.save(out / f"{split}.npy", feats.astype(np.float32))
        (out / f"{split}.lengths").write_text("".join(f"{len(x)}\n" for x in lines))
        (out / f"{split}.phn").write_text("".join(" ".join(x) + "\n" for x in lines), encoding="utf-8")
    write_json(out / "meta.json", {"kind": "segments", "rung": "a", "dim": dim, "noise": noise, "seed": seed,
                                   "utterances": {s: len(v) for s, v in splits.items()}})
    return out


def build_rung_a(out: Path, lang: str, inventory: str, sentences: Path, text_lines: int, sizes: list[int],
                 seed: int) -> dict[int, tuple[Path, Path]]:
    """{size: (feature dir, text dir)} for rung (a)."""
    if inventory == "fold39" and not lang.startswith("en"):
        raise SystemExit("--inventory fold39 is defined for English only")
    text, valid, pool = split_sentences(sentences, text_lines, seed)
    base = out / "data" / f"{lang}-{sentences.stem}-t{text_lines}"
    text_dir = phonemised(text, base / "unpaired", lang)
    utt_dir = phonemised(valid + pool, base / "utterances", lang)
    table = FOLD_EN if inventory == "fold39" else None
    if table:
        text_dir = folded_text_dir(text_dir, base / "unpaired" / "fold39", table)
    phones = [x.split()[0] for x in (text_dir / "dict.phn.txt").read_text(encoding="utf-8").splitlines()]
    utts = utterance_phones(utt_dir, set(phones) - {SIL}, table)
    v, train = utts[:VALID_UTTS], utts[VALID_UTTS:]
    result = {}
    for n in sizes:
        if n > len(train):
            print(f"size {n}: only {len(train)} training utterances in {sentences} after the text and valid "
                  f"parts; skipped (scripts/make_sentences.py writes more sentences)", file=sys.stderr)
            continue
        feats = write_perfect_features(base / f"{inventory}-n{n}", {"train": train[:n], "valid": v},
                                       [p for p in phones if p != SIL], 32, 0.5, seed)
        result[n] = (feats, text_dir)
    return result


# ---------------------------------------------------------------- rungs (b), (c)


def build_rung_b(out: Path, run: Path) -> Path:
    from wav2vec_u.audio.features_io import load_features, save_features
    from wav2vec_u.research.segmenters import oracle_segments

    dst = out / "data" / f"b-{run.name}"
    if (dst / "meta.json").is_file():
        return dst
    dst.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid"):
        feats, lens = load_features(run / "features", split, mmap=True)
        recs = [json.loads(x) for x in (run / "corpus" / f"{split}.timings.jsonl").read_text().splitlines()]
        segs, seg_lens = oracle_segments(feats, lens, [r["timings"] for r in recs])
        save_features(dst, split, segs, seg_lens)
        (dst / f"{split}.phn").write_text("".join(" ".join(r["phones"]) + "\n" for r in recs), encoding="utf-8")
    write_json(dst / "meta.json", {"kind": "segments", "rung": "b", "run": str(run)})
    return dst


# ---------------------------------------------------------------- the oracle start (a diagnostic)


def oracle_init(feats: Path, text: Path, setting: str, epochs: int = 10) -> Path:
    """A generator trained with CTC on the TRUE training phones (labels: a diagnostic, never a result),
    saved as a ``trainer.init_generator`` file: does the GAN keep a correct start, or is its optimum
    elsewhere? (The demo's warm start does the same from the decipher labels.)"""
    from wav2vec_u.config import load_config
    from wav2vec_u.demo.config import BaselineSection
    from wav2vec_u.demo.pipeline import ctc_generator
    from wav2vec_u.train.config import GanConfig
    from wav2vec_u.train.warm_start import BLANK, write_generator_init

    out = feats / f"oracle-init-{setting}"
    if not (out / "init.pt").is_file():
        out.mkdir(parents=True, exist_ok=True)
        gen = load_config(GanConfig, SETTINGS[setting]).generator
        model, phones = ctc_generator(BaselineSection(supervised_epochs=epochs), gen, feats / "train.phn", feats,
                                      text, out, "valid.ctc.hyp")
        write_generator_init(out / "init.pt", model, [BLANK, *phones])
    return out / "init.pt"


# ---------------------------------------------------------------- training and the table


def run_name(rung: str, lang: str, inventory: str, size: int | str, setting: str, seed: int, extra: list[str]) -> str:
    tail = "".join(f"_{x.replace('=', '-')}" for x in extra)
    return f"{rung}_{lang}_{inventory}_n{size}_{setting}_s{seed}{tail}"


def train(outdir: Path, feats: Path, text: Path, setting: str, seed: int, updates: int, every: int,
          extra: list[str]) -> int:
    cmd = [sys.executable, "-m", "wav2vec_u.cli", "train-gan", str(outdir), "--features", str(feats), "--text",
           str(text), "--config", str(SETTINGS[setting]), "--threads", "1", "--no-wandb",
           f"trainer.max_updates={updates}", f"trainer.validate_every={every}", f"trainer.save_every={every}",
           f"trainer.seed={seed}", "trainer.progress=false", *extra]
    outdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with open(outdir / "ladder.log", "a") as log:
        return subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def curve(outdir: Path) -> list[dict]:
    path = outdir / "metrics.jsonl"
    if not path.is_file():
        return []
    points = {}
    for line in path.read_text().splitlines():
        d = json.loads(line)
        if "valid_per" in d:
            points[d["step"]] = {"step": d["step"], "per": d["valid_per"], "metric": d.get("valid_weighted_lm_ppl")}
    return [points[k] for k in sorted(points)]


def report(out: Path) -> None:
    runs = json.loads((out / "ladder.json").read_text()) if (out / "ladder.json").is_file() else {}
    for name, r in runs.items():
        r["curve"] = curve(out / "runs" / name)
    write_json(out / "ladder.json", runs)
    steps = sorted({p["step"] for r in runs.values() for p in r["curve"]})
    print("| run | " + " | ".join(f"{s}" for s in steps) + " | metric at last |")
    print("|---|" + "---|" * (len(steps) + 1))
    for name, r in runs.items():
        by = {p["step"]: p for p in r["curve"]}
        cells = [f"{100 * by[s]['per']:.1f}" if s in by else "" for s in steps]
        last = r["curve"][-1]["metric"] if r["curve"] else None
        print(f"| {name} | " + " | ".join(cells) + f" | {'' if last is None else f'{last:.1f}'} |")
    chance = {k: v for k, v in ((n, r.get("chance")) for n, r in runs.items()) if v}
    if chance:
        print("\nmost frequent phone (valid PER if every segment got it): "
              + ", ".join(sorted({f"{v * 100:.1f}% ({'_'.join(n.split('_')[:4])})" for n, v in chance.items()})))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, r in runs.items():
        if r["curve"]:
            ax.plot([p["step"] for p in r["curve"]], [100 * p["per"] for p in r["curve"]], label=name, marker=".")
    ax.set_xlabel("updates"), ax.set_ylabel("valid PER (%)"), ax.set_title("GAN learning ladder")
    ax.legend(fontsize=6), ax.grid(alpha=0.3)
    fig.tight_layout(), fig.savefig(out / "ladder.png", dpi=120)


def chance_per(feats: Path) -> float:
    """Valid PER of labelling every segment with the training side's most frequent phone."""
    train = [x.split() for x in (feats / "train.phn").read_text(encoding="utf-8").splitlines()]
    valid = [x.split() for x in (feats / "valid.phn").read_text(encoding="utf-8").splitlines()]
    counts: dict[str, int] = {}
    for x in train:
        for p in x:
            counts[p] = counts.get(p, 0) + 1
    top = max(counts, key=counts.get)
    return sum(sum(p != top for p in x) for x in valid) / sum(len(x) for x in valid)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--rungs", nargs="+", default=["a"], choices=["a", "b", "c"])
    ap.add_argument("--lang", default="en", help="en or es (rung a)")
    ap.add_argument("--inventory", default="full", choices=["full", "fold39"])
    ap.add_argument("--sentences", type=Path, help="one sentence per line (default: the shipped LANG.txt)")
    ap.add_argument("--text-lines", type=int, default=6000, help="sentences kept for the unpaired text")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000], help="training utterances (rung a)")
    ap.add_argument("--demo-run", type=Path, help="a finished `w2vu demo --out RUN` (rungs b, c)")
    ap.add_argument("--settings", nargs="+", default=["toy"], choices=sorted(SETTINGS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--updates", type=int, default=5000)
    ap.add_argument("--validate-every", type=int, default=500)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for every run")
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--init", choices=["random", "oracle"], default="random",
                    help="oracle: start G from CTC on the true phones (a diagnostic: does the GAN keep it?)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--report", action="store_true", help="only print the table of the runs in OUT")
    ap.add_argument("--prepare-only", action="store_true", help="build the data and stop (scripts/gpu_check_gan.sh)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    if a.report:
        report(a.out)
        return 0
    lang_code = {"en": "en-us", "es": "es"}.get(a.lang, a.lang)
    data: list[tuple[str, str, str, int | str, Path, Path]] = []  # rung, lang, inventory, size, feats, text
    if "a" in a.rungs:
        sentences = a.sentences or resource_path("data", "sentences", f"{a.lang}.txt")
        for n, (f, t) in build_rung_a(a.out, lang_code, a.inventory, Path(sentences), a.text_lines, a.sizes,
                                      a.data_seed).items():
            data.append(("a", a.lang, a.inventory, n, f, t))
    if {"b", "c"} & set(a.rungs):
        if not a.demo_run:
            raise SystemExit("rungs b and c need --demo-run RUN (a finished `w2vu demo --out RUN`)")
        if "b" in a.rungs:
            data.append(("b", "demo", "full", "demo", build_rung_b(a.out, a.demo_run), a.demo_run / "text"))
        if "c" in a.rungs:
            data.append(("c", "demo", "full", "demo", a.demo_run / "segments", a.demo_run / "text"))
    if a.prepare_only:
        for rung, lang, inv, n, feats, text in data:
            print(f"rung {rung} {lang} {inv} n={n}: features {feats}, text {text}")
        return 0
    entries, jobs = {}, []
    for rung, lang, inv, n, feats, text in data:
        for setting in a.settings:
            extra = list(a.set)
            if a.init == "oracle":
                extra.append(f"trainer.init_generator={oracle_init(feats, text, setting)}")
            for seed in a.seeds:
                name = run_name(rung, lang, inv, n, setting, seed, a.set) + ("_oracle" if a.init == "oracle" else "")
                entries[name] = {"rung": rung, "lang": lang, "inventory": inv, "size": n, "setting": setting,
                                "seed": seed, "set": a.set, "init": a.init, "features": str(feats), "text": str(text),
                                "updates": a.updates, "chance": chance_per(feats)}
                jobs.append((name, feats, text, setting, seed, extra))
    ledger_path = a.out / "ladder.json"  # read just before writing: several ladders may share OUT
    write_json(ledger_path, {**(json.loads(ledger_path.read_text()) if ledger_path.is_file() else {}), **entries})
    with ThreadPoolExecutor(max(1, a.jobs)) as pool:
        codes = list(pool.map(lambda j: train(a.out / "runs" / j[0], j[1], j[2], j[3], j[4], a.updates,
                                              a.validate_every, j[5]), jobs))
    for (name, *_), rc in zip(jobs, codes):
        if rc:
            print(f"{name}: train-gan exited {rc} (log: {a.out / 'runs' / name / 'ladder.log'})", file=sys.stderr)
    report(a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
