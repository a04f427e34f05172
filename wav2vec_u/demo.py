"""``w2vu demo``: the whole chain on a synthetic corpus, offline, with baselines and plots.

From the shipped sentences of one language, the demo synthesises speech with espeak-ng,
phonemises a disjoint set of sentences as the unpaired text, extracts frame features, builds
segments, trains the generator *without transcripts*, picks the checkpoint *without labels*
(the phone-LM metric), decodes the held-out audio and only then scores it against the
reference phones it had held back. The results table puts that PER next to two chance
baselines and a supervised upper bound on the same features::

    w2vu demo                          # English, runs/demo-en, ~15 min on 2 CPU cores
    w2vu demo --lang es                # the second shipped language
    w2vu demo --quick                  # tiny sizes, < 2 min (CI)
    w2vu demo train.optim.lr_g=1e-3    # any config key; only what depends on it reruns

Every stage writes into its own folder of the run directory and records a fingerprint of its
options and of its upstream stages' fingerprints (``wav2vec_u.stage``): a rerun with nothing
changed only reprints the table, and a changed option recomputes that stage and everything
downstream of it, nothing upstream.

Outputs in ``--out`` (default ``runs/demo-<lang>``, ``runs/demo-<lang>-quick`` with --quick):
``results.json``, ``results.md``, ``plots/*.png``, ``config.yaml`` and one folder per stage.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from wav2vec_u.audio.extract import ExtractConfig
from wav2vec_u.config import ConfigError, load_config, save_config, to_dict
from wav2vec_u.decode.command import DecodeConfig
from wav2vec_u.decode.self_train_command import SelfTrainRunConfig
from wav2vec_u.io import read_json, write_json, atomic_write_text
from wav2vec_u.report import StageClock, add_row, finish_results, format_console, new_results, write_results
from wav2vec_u.segments import SegmentsConfig
from wav2vec_u.stage import fingerprint, invalidate, is_current, mark_done
from wav2vec_u.synth.corpus import SynthConfig
from wav2vec_u.text.config import TextConfig
from wav2vec_u.train.config import GanConfig
from wav2vec_u.train.decipher import DecipherConfig

log = logging.getLogger("wav2vec_u.demo")

REPO = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO / "configs" / "demo"
# Shipped languages: demo name -> espeak-ng voice language.
LANGS = {"en": "en-us", "es": "es"}
# Bump when a stage's code changes what it writes, so old caches are not trusted.
STAGE_VERSION = 2
# The demo's own record per stage folder (the stages' functions may keep their own .stage.json).
RECORD = ".demo-stage.json"


# ---------------------------------------------------------------------------------------------
# Config: one section per stage; each stage receives only its own section
# ---------------------------------------------------------------------------------------------

@dataclass
class BaselineSection:
    kmeans_seed: int = 1
    supervised_epochs: int = 30
    supervised_lr: float = 2e-3
    supervised_batch_size: int = 32
    supervised_max_seconds: float = 180.0


@dataclass
class DecipherSection:
    """The research alternative to the GAN (wav2vec_u.train.decipher): an EM decipherment HMM."""

    enabled: bool = False          # off by default: it does not beat chance yet (docs/demo-findings.md)
    units: int = 40                # k-means units on smoothed frames (findings: K=40, c=4, avg 5)
    smooth: int = 5                # frames box-averaged before clustering
    max_train_utts: int = 400      # EM on this many training utterances (cost: ~9 s per pass per 400)
    hmm: DecipherConfig = field(default_factory=DecipherConfig)


@dataclass
class PlotSection:
    utterance: int = 0             # which valid utterance to draw over its waveform


@dataclass
class TrainSection:
    """Which unsupervised method trains the phone recogniser, and its config."""

    method: str = "gan"            # "gan": the wav2vec-U GAN (wav2vec_u.train.trainer)
    seeds: list[int] = field(default_factory=lambda: [1])  # one run per seed; label-free choice across runs
    gan: GanConfig = field(default_factory=GanConfig)  # data paths and seed are set by the demo


@dataclass
class DemoConfig:
    lang: str = "en"
    sentences: str = ""            # "" = the shipped data/sentences/<lang>.txt
    run_self_train: bool = True    # the self-training stage (CTC on the GAN's labels) and its rows
    threads: int = 1               # torch threads; 1 is fastest for these small models on a busy 2-core CPU
    corpus: SynthConfig = field(default_factory=SynthConfig)        # corpus.lang is set from lang
    text: TextConfig = field(default_factory=TextConfig)            # text.lang is set from lang
    features: ExtractConfig = field(default_factory=ExtractConfig)
    segments: SegmentsConfig = field(default_factory=SegmentsConfig)
    train: TrainSection = field(default_factory=TrainSection)
    decode: DecodeConfig = field(default_factory=DecodeConfig)          # decode.split is always valid
    self_train: SelfTrainRunConfig = field(default_factory=SelfTrainRunConfig)
    baselines: BaselineSection = field(default_factory=BaselineSection)
    decipher: DecipherSection = field(default_factory=DecipherSection)
    plots: PlotSection = field(default_factory=PlotSection)


def load_demo_config(path: str | Path | None, overrides: list[str]) -> DemoConfig:
    """DemoConfig from YAML (+ dotted overrides); the nested component configs are typed too."""
    cfg = load_config(DemoConfig, path, overrides)
    if cfg.lang not in LANGS:
        raise ConfigError(f"lang: unknown demo language {cfg.lang!r} (shipped: {', '.join(LANGS)})")
    # One language setting: the demo's. The synthesiser's voice follows it.
    cfg.corpus.lang = LANGS[cfg.lang]
    cfg.text.lang = LANGS[cfg.lang]
    if not cfg.train.seeds:
        raise ConfigError("train.seeds: give at least one seed")
    return cfg


# ---------------------------------------------------------------------------------------------
# Stage runner
# ---------------------------------------------------------------------------------------------

@dataclass
class Stage:
    """What one stage of this run is: its folder, fingerprint, whether it was cached."""

    name: str
    dir: Path
    fp: str
    cached: bool = False


class Runner:
    def __init__(self, run_dir: Path, clock: StageClock, force: bool = False):
        self.run_dir = run_dir
        self.clock = clock
        self.force = force
        self.stages: dict[str, Stage] = {}

    def run(self, name: str, options: Any, upstream: list[str], outputs: list[str],
            fn: Callable[[Path], Any], inputs: list[Path] = (), fresh: bool = True) -> Stage:
        """Run ``fn(stage_dir)`` unless the stage's fingerprint and outputs are current.

        ``fresh``: empty the stage folder first (a trainer must not resume from an old config).
        """
        outdir = self.run_dir / name
        fp = fingerprint({"stage": name, "version": STAGE_VERSION, "options": options,
                          "upstream": [self.stages[u].fp for u in upstream]}, inputs)
        st = Stage(name, outdir, fp)
        with self.clock.stage(name) as rec:
            if not self.force and is_current(outdir, fp, outputs, name=RECORD):
                st.cached = rec["cached"] = True
                # what the stage cost when it was computed, recorded by mark_done below
                rec["computed_seconds"] = read_json(outdir / RECORD).get("seconds")
                log.info("stage %-10s cached (%s)", name, outdir)
            else:
                log.info("stage %-10s running -> %s", name, outdir)
                t0 = time.perf_counter()
                if fresh and outdir.exists():
                    shutil.rmtree(outdir)
                outdir.mkdir(parents=True, exist_ok=True)
                invalidate(outdir, name=RECORD)
                fn(outdir)
                rec["computed_seconds"] = round(time.perf_counter() - t0, 2)
                mark_done(outdir, fp, outputs, name=RECORD, seconds=rec["computed_seconds"])
        self.stages[name] = st
        return st


# ---------------------------------------------------------------------------------------------
# Stages (plain functions over folders; each gets its own config section)
# ---------------------------------------------------------------------------------------------

def sentences_path(cfg: DemoConfig) -> Path:
    p = Path(cfg.sentences) if cfg.sentences else REPO / "data" / "sentences" / f"{cfg.lang}.txt"
    if not p.is_file():
        raise FileNotFoundError(f"sentence file not found: {p} (set sentences=PATH or use a shipped --lang)")
    return p


def stage_corpus(section: SynthConfig, sentences: Path, outdir: Path) -> None:
    from wav2vec_u.synth.corpus import synthesize_corpus  # noqa: PLC0415

    synthesize_corpus(sentences, outdir, section, progress=False)


def stage_text(section: TextConfig, unpaired: Path, outdir: Path) -> None:
    from wav2vec_u.text.prepare import prepare_text  # noqa: PLC0415

    prepare_text(unpaired, outdir, section, progress=False)


def stage_features(section: ExtractConfig, corpus: Path, outdir: Path) -> None:
    from wav2vec_u.audio.extract import extract_split  # noqa: PLC0415

    for split in ("train", "valid"):
        extract_split(corpus / f"{split}.tsv", outdir, split, section, progress=False)


def stage_segments(section: SegmentsConfig, features: Path, outdir: Path) -> None:
    from wav2vec_u.segments import make_segments  # noqa: PLC0415

    make_segments(features, outdir, section)


def stage_train_gan(gan_cfg: Any, seed: int, segments: Path, text: Path, outdir: Path) -> None:
    """One GAN run; ``best.pt`` is chosen by the trainer on the phone-LM metric (no labels)."""
    from wav2vec_u.tracking import Tracker  # noqa: PLC0415
    from wav2vec_u.train.data import FeatureSet, TextSet, read_dictionary  # noqa: PLC0415
    from wav2vec_u.train.selection import find_phone_lm, load_lm  # noqa: PLC0415
    from wav2vec_u.train.trainer import GanTrainer  # noqa: PLC0415

    cfg = dataclasses.replace(gan_cfg, data=dataclasses.replace(gan_cfg.data, features=str(segments), text=str(text)),
                              trainer=dataclasses.replace(gan_cfg.trainer, seed=seed, resume=False, progress=False))
    phones = read_dictionary(text)
    train = FeatureSet.from_dir(segments, cfg.data.train_split)
    valid = FeatureSet.from_dir(segments, cfg.data.valid_split)
    # Labels stay out of training and selection: the trainer only *logs* valid PER for the plot.
    text_set = TextSet.from_file(Path(text) / cfg.data.text_file, phones)
    lm_path = find_phone_lm(text)
    lm = load_lm(lm_path) if lm_path else None
    save_config(cfg, outdir / "config.yaml")
    with Tracker(outdir, "train-gan", config=cfg, seed=seed, wandb=False) as tracker:
        trainer = GanTrainer(cfg, outdir, train, text_set, phones, valid=valid, lm=lm, tracker=tracker)
        result = trainer.train()
    if result.status != "done":  # SIGTERM/SIGUSR1: the trainer saved last.pt and stopped early
        raise RuntimeError(f"training stopped early ({result.status}) at update {result.step}; "
                           f"the stage is not marked done, a rerun starts it again")
    if not (outdir / "best.pt").is_file():  # no LM or never validated: the last is all we have
        shutil.copyfile(outdir / "last.pt", outdir / "best.pt")
    write_json(outdir / "result.json", {"status": result.status, "step": result.step,
                                        "best_weighted_lm_ppl": result.best_metric})


def viterbi_phones(checkpoint: Path, segments: Path, split: str) -> tuple[list[list[str]], list[str]]:
    """Viterbi phones of every utterance of a split, and the generator's phone set (for selection)."""
    from wav2vec_u.decode.viterbi import viterbi_decode  # noqa: PLC0415
    from wav2vec_u.train.checkpoint import generator_logits, load_generator  # noqa: PLC0415
    from wav2vec_u.train.data import load_feature_split  # noqa: PLC0415

    gen, phones, _ = load_generator(checkpoint)
    feats, lengths = load_feature_split(segments, split)
    offsets = np.cumsum([0, *lengths])
    decoded = []
    for i in range(len(lengths)):
        logits = generator_logits(gen, np.array(feats[offsets[i]:offsets[i + 1]], dtype=np.float32))
        decoded.append(viterbi_decode(logits, phones).tokens)
    return decoded, phones


def label_free_score(hyps: list[list[str]], phones: list[str], text: Path) -> dict[str, float]:
    """The unsupervised selection metric of decoded outputs (phone LM, METHOD.md)."""
    from wav2vec_u.train.selection import find_phone_lm, lm_score, load_lm  # noqa: PLC0415

    lm_path = find_phone_lm(text)
    if lm_path is None:
        return {}
    s = lm_score(hyps, load_lm(lm_path), [p for p in phones if p != "<SIL>"])
    return {"weighted_lm_ppl": s.weighted_ppl, "lm_ppl": s.ppl, "vocab_usage": s.vocab_usage, "lm_nll": s.nll,
            "lm_log_prob": s.log10_prob * math.log(10)}


def stage_select(runs: list[Path], segments: Path, text: Path, outdir: Path) -> None:
    """Pick one run without labels: paper Eqs. 5-6 over the runs' best checkpoints."""
    from wav2vec_u.train.selection import RunScore, select_runs  # noqa: PLC0415

    scores = []
    for run in runs:
        ckpt = run / "best.pt"
        hyps, phones = viterbi_phones(ckpt, segments, "valid")
        m = label_free_score(hyps, phones, text)
        scores.append((run, ckpt, m))
    if len(scores) == 1 or not scores[0][2]:
        chosen = scores[0]
    else:
        rs = [RunScore(str(r), m["lm_nll"], m["vocab_usage"], m["lm_log_prob"]) for r, _, m in scores]
        pick, _, _ = select_runs(rs)
        chosen = next(s for s in scores if str(s[0]) == pick.name)
    write_json(outdir / "selected.json", {
        "checkpoint": str(chosen[1]), "run": str(chosen[0]),
        "runs": [{"run": str(r), **m} for r, _, m in scores], **chosen[2]})


def write_lines(path: Path, rows: list[list[str]]) -> None:
    atomic_write_text(path, "".join(" ".join(r) + "\n" for r in rows))


def read_lines(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise FileNotFoundError(f"missing file: {path}")
    return [line.split() for line in path.read_text(encoding="utf-8").splitlines()]


def stage_decode(section: DecodeConfig, selected: Path, segments: Path, text: Path, corpus: Path,
                 outdir: Path) -> None:
    """Viterbi phones, and words with the lexicon + word LM (weights tuned without labels)."""
    from wav2vec_u.decode.command import decode_split  # noqa: PLC0415

    sel = read_json(selected / "selected.json")
    decode_split(sel["checkpoint"], segments, outdir, dataclasses.replace(section, split="valid"),
                 text_dir=text, ref_dir=corpus)


def stage_self_train(section: SelfTrainRunConfig, selected: Path, features: Path, segments: Path, text: Path,
                     corpus: Path, outdir: Path) -> None:
    """CTC on the frame features, trained on the selected GAN's Viterbi labels of the train audio."""
    from wav2vec_u.decode.self_train_command import run_self_train  # noqa: PLC0415

    sel = read_json(selected / "selected.json")
    run_self_train(features, outdir, section, checkpoint=sel["checkpoint"], label_features=segments,
                   text_dir=text, ref_dir=corpus)


def phone_counts(text: Path) -> Counter:
    from wav2vec_u.baselines import phone_counts_from_text  # noqa: PLC0415

    return phone_counts_from_text((text / "phones.txt").read_text(encoding="utf-8").splitlines())


def stage_chance(section: BaselineSection, corpus: Path, segments: Path, text: Path, outdir: Path) -> None:
    from wav2vec_u.baselines import kmeans_rank_hyps, most_frequent_phone_hyps  # noqa: PLC0415
    from wav2vec_u.train.data import load_feature_split  # noqa: PLC0415

    refs = read_lines(corpus / "valid.phn")
    counts = phone_counts(text)
    write_lines(outdir / "most_frequent.hyp", most_frequent_phone_hyps(refs, counts))
    tx, tl = load_feature_split(segments, "train")
    vx, vl = load_feature_split(segments, "valid")
    write_lines(outdir / "kmeans_rank.hyp", kmeans_rank_hyps(np.asarray(tx), tl, np.asarray(vx), vl, counts,
                                                             seed=section.kmeans_seed))
    write_meta(outdir, section, section.kmeans_seed, [corpus / "valid.phn", text / "phones.txt",
                                                      segments / "train.lengths"])


def stage_supervised(section: BaselineSection, generator_cfg: Any, corpus: Path, segments: Path,
                     text: Path, outdir: Path) -> None:
    from wav2vec_u.baselines import SupervisedConfig, decode_supervised, train_supervised  # noqa: PLC0415
    from wav2vec_u.train.data import load_feature_split, read_dictionary  # noqa: PLC0415

    tx, tl = load_feature_split(segments, "train")
    vx, vl = load_feature_split(segments, "valid")
    phones = [p for p in read_dictionary(text) if p != "<SIL>"]
    refs = read_lines(corpus / "train.phn")
    scfg = SupervisedConfig(lr=section.supervised_lr, batch_size=section.supervised_batch_size,
                            epochs=section.supervised_epochs, max_seconds=section.supervised_max_seconds)
    t0 = time.time()
    model, phones, history = train_supervised(np.asarray(tx), tl, refs, scfg, generator_cfg, phones=phones)
    write_lines(outdir / "supervised.hyp", decode_supervised(model, phones, np.asarray(vx), vl))
    write_json(outdir / "supervised.json", {"history": history, "seconds": round(time.time() - t0, 1)})
    write_meta(outdir, {"baselines": to_dict(section), "generator": to_dict(generator_cfg)}, scfg.seed,
               [corpus / "train.phn", segments / "train.lengths", text / "dict.phn.txt"])


def stage_decipher(section: DecipherSection, features: Path, text: Path, outdir: Path) -> None:
    """Units from frame features, EM on train units + the unpaired phone text, Viterbi on valid."""
    from wav2vec_u.train.data import load_feature_split  # noqa: PLC0415
    from wav2vec_u.train.decipher import decode, make_units, train_units_to_phones  # noqa: PLC0415

    tx, tl = load_feature_split(features, "train")
    vx, vl = load_feature_split(features, "valid")
    cent, units = make_units(np.asarray(tx), tl, k=section.units, smooth=section.smooth, seed=section.hmm.seed)
    _, vunits = make_units(np.asarray(vx), vl, smooth=section.smooth, centroids=cent)
    sents = read_lines(text / "phones.txt")
    history = []
    model = train_units_to_phones(units[:section.max_train_utts], sents, section.units, section.hmm,
                                  on_iter=lambda r, it, ll, m: history.append({"restart": r, "iter": it,
                                                                               "loglik_per_unit": ll}))
    write_lines(outdir / "valid.hyp", decode(model, vunits))
    write_json(outdir / "decipher.json", {"history": history,
                                          "valid_loglik": model.log_likelihood(vunits)})
    write_meta(outdir, section, section.hmm.seed, [features / "train.lengths", text / "phones.txt"])


def write_meta(outdir: Path, config: Any, seed: int | None, inputs: list[Path]) -> None:
    """meta.json: config, input hashes, versions, seed (wav2vec_u.tracking.provenance)."""
    from wav2vec_u.io import sha256_file  # noqa: PLC0415
    from wav2vec_u.tracking import provenance  # noqa: PLC0415

    write_json(outdir / "meta.json", provenance(config, seed, {str(p): sha256_file(p) for p in inputs}))


# ---------------------------------------------------------------------------------------------
# Scoring, report and plots
# ---------------------------------------------------------------------------------------------

def score(refs: list[list[str]], hyps: list[list[str]], lower: bool = False):
    from wav2vec_u.decode.metrics import error_rate, normalize_tokens  # noqa: PLC0415

    if len(refs) != len(hyps):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    return error_rate([normalize_tokens(r, lower=lower) for r in refs], [normalize_tokens(h, lower=lower) for h in hyps])


def make_plots(cfg: DemoConfig, corpus: Path, train_dir: Path, decode_dir: Path, stats,
               baselines: dict[str, float], outdir: Path) -> list[Path]:
    from wav2vec_u import plots  # noqa: PLC0415

    out = []
    # 1. PER and the unsupervised metric against updates (the trainer's validation log)
    steps, per, ppl = [], [], []
    metrics = train_dir / "metrics.jsonl"
    if metrics.is_file():
        import json  # noqa: PLC0415

        for line in metrics.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if "valid_per" in rec or "valid_weighted_lm_ppl" in rec:
                steps.append(rec.get("step", len(steps)))
                per.append(rec.get("valid_per"))
                ppl.append(rec.get("valid_weighted_lm_ppl"))
    if steps:
        out.append(plots.plot_curves(outdir / "curves.png", steps, {"PER (valid, for the plot only)": per},
                                     {"weighted LM ppl (selection)": ppl}, baselines=baselines,
                                     title=f"{cfg.lang}: training curve (run {train_dir.name})"))
    # 2. confusion matrix of the selected checkpoint
    out.append(plots.plot_confusion(outdir / "confusion.png", stats.alignments,
                                    title=f"{cfg.lang}: phone confusion, selected checkpoint"))
    # 3. one utterance: waveform, reference phones at espeak-ng's timings, predicted phones
    i = cfg.plots.utterance
    try:
        out.append(plot_one_utterance(corpus, decode_dir, i, outdir / "utterance.png", cfg.lang))
    except (FileNotFoundError, ValueError, KeyError, IndexError) as exc:
        log.warning("utterance plot skipped: %s", exc)
    return out


def plot_one_utterance(corpus: Path, decode_dir: Path, i: int, path: Path, lang: str) -> Path:
    """Valid utterance ``i``: waveform, reference phones at espeak-ng's times, predicted phones."""
    import json  # noqa: PLC0415

    from wav2vec_u import plots  # noqa: PLC0415
    from wav2vec_u.audio.io import SAMPLE_RATE, load_16k  # noqa: PLC0415
    from wav2vec_u.audio.manifest import manifest_paths  # noqa: PLC0415

    wav_path = manifest_paths(corpus / "valid.tsv")[i]
    wav = load_16k(wav_path)
    rec = json.loads((corpus / "valid.timings.jsonl").read_text(encoding="utf-8").splitlines()[i])
    ref = [(p, t[0], t[1]) for p, t in zip(rec["phones"], rec["timings"]) if t is not None]
    pred = json.loads((decode_dir / "valid.timestamps.jsonl").read_text(encoding="utf-8").splitlines()[i])
    if pred["unit"] != "seconds":
        raise ValueError("the decoder wrote no times in seconds (no cluster file or frame rate)")
    hyp = [(tok, s, e) for tok, s, e in pred["phones"]]
    return plots.plot_utterance(path, wav, SAMPLE_RATE, ref, hyp,
                                ref_label=f"reference (espeak-ng, {rec.get('timing_status', '')})",
                                title=f"{lang}: valid utterance {i}: {rec.get('text', wav_path.name)}")


ROW_MOST_FREQUENT = "chance: most frequent phone"
ROW_KMEANS = "chance: k-means clusters -> phones by frequency rank"
ROW_SUPERVISED = "supervised upper bound (same generator, CTC on reference phones)"


def score_rows(results: dict[str, Any], corpus: Path, decoded: Path, st_dir: Path | None, chance: Path,
               upper: Path, decipher: Path | None = None):
    """Fill the PER and WER tables; returns the stats of the main system (for the confusion plot)."""
    from wav2vec_u.decode.metrics import write_alignments  # noqa: PLC0415

    refs = read_lines(corpus / "valid.phn")
    words = read_lines(corpus / "valid.wrd")

    def row(table: str, system: str, hyp_file: Path | None, note: str, missing: str):
        if hyp_file is None or not hyp_file.is_file():
            add_row(results, table, system, None, missing)
            return None
        stats = score(refs if table == "per" else words, read_lines(hyp_file), lower=table == "wer")
        add_row(results, table, system, stats.to_dict(), note)
        return stats

    no_words = "not run: no lexicon/word LM from prepare-text"
    row("per", ROW_MOST_FREQUENT, chance / "most_frequent.hyp", "oracle length", "")
    row("per", ROW_KMEANS, chance / "kmeans_rank.hyp", "no labels", "")
    main = row("per", "GAN (Viterbi)", decoded / "valid.viterbi.phn", "checkpoint chosen without labels", "")
    row("per", "GAN + LM (lexicon + word 4-gram)", decoded / "valid.words.phn", "LM weights tuned without labels",
        no_words)
    st = st_dir / "valid.st.phn" if st_dir else None
    row("per", "self-trained (CTC on GAN labels)", st, "no labels", "not run (run_self_train=false)")
    st_words = st_dir / "decode" / "valid.words.phn" if st_dir else None
    row("per", "self-trained + LM", st_words, "LM weights tuned without labels", no_words)
    if decipher is not None:
        row("per", "decipher HMM (EM on k-means units, research option)", decipher / "valid.hyp", "no labels", "")
    row("per", ROW_SUPERVISED, upper / "supervised.hyp", "uses labels: an upper bound, not a result", "")
    row("wer", "GAN + LM (lexicon + word 4-gram)", decoded / "valid.words.wrd", "", no_words)
    row("wer", "self-trained + LM", st_dir / "decode" / "valid.words.wrd" if st_dir else None, "", no_words)
    write_alignments(decoded / "valid.per.align.txt", main, name="PER")
    return main


# ---------------------------------------------------------------------------------------------
# The whole chain
# ---------------------------------------------------------------------------------------------

def run_demo(cfg: DemoConfig, run_dir: Path, force: bool = False) -> dict[str, Any]:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    clock = StageClock()
    r = Runner(run_dir, clock, force)
    sentences = sentences_path(cfg)

    corpus = r.run("corpus", to_dict(cfg.corpus), [],
                   ["train.tsv", "valid.tsv", "train.phn", "valid.phn", "unpaired.txt"],
                   lambda d: stage_corpus(cfg.corpus, sentences, d), inputs=[sentences]).dir
    text = r.run("text", to_dict(cfg.text), ["corpus"], ["phones.txt", "dict.phn.txt"],
                 lambda d: stage_text(cfg.text, corpus / "unpaired.txt", d)).dir
    features = r.run("features", to_dict(cfg.features), ["corpus"], ["train.npy", "valid.npy"],
                     lambda d: stage_features(cfg.features, corpus, d)).dir
    segments = r.run("segments", to_dict(cfg.segments), ["features"], ["train.npy", "valid.npy"],
                     lambda d: stage_segments(cfg.segments, features, d)).dir

    gan = cfg.train.gan
    run_dirs = []
    for seed in cfg.train.seeds:
        name = f"train-{seed}" if len(cfg.train.seeds) > 1 else "train"
        st = r.run(name, {"method": cfg.train.method, "seed": seed, "gan": to_dict(gan)}, ["segments", "text"],
                   ["best.pt", "result.json"], lambda d, s=seed: stage_train_gan(gan, s, segments, text, d))
        run_dirs.append(st.dir)
    train_names = [d.name for d in run_dirs]
    selected = r.run("select", {}, [*train_names, "text"], ["selected.json"],
                     lambda d: stage_select(run_dirs, segments, text, d)).dir
    decoded = r.run("decode", to_dict(cfg.decode), ["select", "segments", "text"], ["valid.viterbi.phn"],
                    lambda d: stage_decode(cfg.decode, selected, segments, text, corpus, d)).dir
    st_dir = None
    if cfg.run_self_train:
        st_dir = r.run("self_train", to_dict(cfg.self_train), ["select", "features", "segments", "text"],
                       ["ctc.pt", "valid.st.phn"],
                       lambda d: stage_self_train(cfg.self_train, selected, features, segments, text, corpus, d)).dir
    chance = r.run("chance", to_dict(cfg.baselines), ["corpus", "segments", "text"],
                   ["most_frequent.hyp", "kmeans_rank.hyp"],
                   lambda d: stage_chance(cfg.baselines, corpus, segments, text, d)).dir
    upper = r.run("supervised", {"b": to_dict(cfg.baselines), "g": to_dict(gan.generator)},
                  ["corpus", "segments", "text"], ["supervised.hyp"],
                  lambda d: stage_supervised(cfg.baselines, gan.generator, corpus, segments, text, d)).dir

    dec_dir = None
    if cfg.decipher.enabled:
        dec_dir = r.run("decipher", to_dict(cfg.decipher), ["features", "text"], ["valid.hyp"],
                        lambda d: stage_decipher(cfg.decipher, features, text, d)).dir

    results = new_results(lang=cfg.lang, espeak=LANGS[cfg.lang], run_dir=str(run_dir),
                          train_utts=cfg.corpus.num_train, valid_utts=cfg.corpus.num_valid,
                          method=cfg.train.method, seeds=cfg.train.seeds,
                          updates=gan.trainer.max_updates)
    # Score: the demo reads the held-back valid references only here (the decode stage also
    # scores its own outputs, but tunes its word-LM weights without them).
    with clock.stage("score"):
        stats = score_rows(results, corpus, decoded, st_dir, chance, upper, dec_dir)
    sel = read_json(selected / "selected.json")
    results["selection"] = {k: v for k, v in sel.items() if k != "runs"}

    plot_dir = run_dir / "plots"
    rates = {r_["system"]: r_["rate"] for r_ in results["per"]}
    baselines = {"k-means by rank": rates[ROW_KMEANS], "most frequent phone": rates[ROW_MOST_FREQUENT],
                 "supervised bound": rates[ROW_SUPERVISED]}
    with clock.stage("plots") as rec:
        fp = fingerprint({"v": STAGE_VERSION, "plots": to_dict(cfg.plots),
                          "up": [r.stages[n].fp for n in ("decode", "chance", "supervised", *train_names)]})
        if not force and is_current(plot_dir, fp, name=RECORD):
            rec["cached"] = True
        else:
            plot_dir.mkdir(parents=True, exist_ok=True)
            made = make_plots(cfg, corpus, run_dirs[0], decoded, stats, baselines, plot_dir)
            mark_done(plot_dir, fp, [p.name for p in made], name=RECORD)
    results["plots"] = sorted(str(p.relative_to(run_dir)) for p in plot_dir.glob("*.png"))
    from wav2vec_u.io import sha256_file  # noqa: PLC0415
    from wav2vec_u.tracking import provenance  # noqa: PLC0415

    results["provenance"] = provenance(cfg, None, {str(sentences): sha256_file(sentences)})
    finish_results(results, clock)
    write_results(run_dir, results)
    return results


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lang", choices=sorted(LANGS), default=None,
                        help="shipped language (default: the config's, en)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes that run in under 2 minutes (CI)")
    parser.add_argument("--out", type=Path, default=None,
                        help="run directory (default runs/demo-<lang>, runs/demo-<lang>-quick with --quick)")
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML config (default configs/demo/<lang>.yaml, configs/demo/quick.yaml with --quick)")
    parser.add_argument("--force", action="store_true", help="recompute every stage even when cached")
    parser.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="dotted config overrides, e.g. train.gan.trainer.max_updates=500")


def resolve_config(args: argparse.Namespace) -> tuple[DemoConfig, Path]:
    lang = args.lang or "en"
    if args.config is not None:
        path = args.config
    elif args.quick:
        path = CONFIG_DIR / "quick.yaml"
    else:
        path = CONFIG_DIR / f"{lang}.yaml"
    overrides = list(args.overrides)
    if args.lang:
        overrides.append(f"lang={args.lang}")
    cfg = load_demo_config(path if path.is_file() or args.config is not None else None, overrides)
    out = args.out or Path("runs") / f"demo-{cfg.lang}{'-quick' if args.quick else ''}"
    return cfg, out


def run(args: argparse.Namespace) -> int:
    import torch  # noqa: PLC0415

    cfg, out = resolve_config(args)
    torch.set_num_threads(cfg.threads)
    results = run_demo(cfg, out, force=args.force)
    print(format_console(results))
    print(f"written: {out / 'results.json'}, {out / 'results.md'}, {out / 'plots'}/")
    return 0
