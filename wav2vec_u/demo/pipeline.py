"""The demo's chain: each stage calls the function its ``w2vu`` command calls, cached by fingerprint.

    results = run_demo(load_demo_config(path, overrides), Path("runs/demo-en"))
    results = report_run_dir(cfg, Path("runs/recipe-en"))   # the table for a folder the commands wrote

A stage's fingerprint covers its options and its upstream stages' fingerprints, so a changed
option recomputes that stage and what depends on it, nothing upstream. :func:`report` computes
the baselines and scores every system against the held-back references only after every
label-free choice is made. ``w2vu demo`` (:mod:`wav2vec_u.demo.demo_command`) and ``w2vu
report`` parse their arguments and call these.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from wav2vec_u.audio.extract import ExtractConfig
from wav2vec_u.audio.features_io import load_features
from wav2vec_u.config import save_config, to_dict
from wav2vec_u.decode.decode import DecodeConfig
from wav2vec_u.self_train.run import SelfTrainRunConfig
from wav2vec_u.io import read_json, resource_path, write_json
from wav2vec_u.demo.report import StageClock, finish_results, new_results, write_results
from wav2vec_u.audio.segments import SegmentsConfig
from wav2vec_u.lock import LOCK_FILE
from wav2vec_u.stage import fingerprint, run_stage
from wav2vec_u.tokens import SIL, read_token_lines, write_token_lines
from wav2vec_u.synth.corpus import SynthConfig
from wav2vec_u.text.config import TextConfig
from wav2vec_u.train.config import GanConfig
from wav2vec_u.demo.config import LANGS, BaselineSection, DemoConfig, gan2_configs
from wav2vec_u.audio.prepare import prepare_audio
from wav2vec_u.demo.scoring import (NO_WORDS, ROW_DECIPHER, ROW_DECIPHER_LM, ROW_KMEANS, ROW_MOST_FREQUENT, gan_rows,
                                    ROW_SUPERVISED, ROW_TABLE, ROW_WARM, ROW_WARM_CTC, Row, score_rows,
                                    self_train_rows)
from wav2vec_u.audio.extract import extract_split
from wav2vec_u.audio.segments import make_segments
from wav2vec_u.decode.decode import decode_split
from wav2vec_u.demo.baselines import SupervisedConfig, decode_supervised, split_baselines, train_supervised
from wav2vec_u.io import sha256_file
from wav2vec_u.decipher.config import DecipherRunConfig
from wav2vec_u.decipher.run import run_decipher
from wav2vec_u.self_train.run import run_self_train
from wav2vec_u.synth.corpus import synthesize_corpus
from wav2vec_u.text.prepare import prepare_text
from wav2vec_u.tracking import provenance
from wav2vec_u.train.data import read_dictionary
from wav2vec_u.train.run import train_gan
from wav2vec_u.train.selection import select_checkpoints, selection_record
from wav2vec_u.train.warm_start import BLANK, write_generator_init

log = logging.getLogger("wav2vec_u.demo")

# Bump when a stage's code changes what it writes, so old caches are not trusted.
STAGE_VERSION = 2
# The demo's own record per stage folder (the stages' functions may keep their own .stage.json).
RECORD = ".demo-stage.json"


# ---------------------------------------------------------------------------------------------
# Config: one section per stage; each stage receives only its own section
# ---------------------------------------------------------------------------------------------


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
            def work() -> float:
                log.info("stage %-10s running -> %s", name, outdir)
                t0 = time.perf_counter()
                if fresh and outdir.exists():
                    empty_folder(outdir)
                outdir.mkdir(parents=True, exist_ok=True)
                fn(outdir)
                return round(time.perf_counter() - t0, 2)

            ran, seconds = run_stage(outdir, fp, outputs, work, force=self.force, name=RECORD,
                                     extra=lambda s: {"seconds": s})
            if ran:
                rec["computed_seconds"] = seconds
            else:
                st.cached = rec["cached"] = True
                # what the stage cost when it was computed, recorded by run_stage
                rec["computed_seconds"] = read_json(outdir / RECORD).get("seconds")
                log.info("stage %-10s cached (%s)", name, outdir)
        self.stages[name] = st
        return st

    def adopt(self, name: str, outputs: list[str]) -> Stage:
        """A stage that a ``w2vu`` command wrote: trusted as it is, fingerprinted by its outputs."""
        outdir = self.run_dir / name
        missing = [o for o in outputs if not (outdir / o).is_file()]
        if missing:
            raise FileNotFoundError(f"{outdir} has no {missing[0]}: run the stage that writes it first")
        st = Stage(name, outdir, fingerprint({"adopted": name}, [outdir / o for o in outputs]), cached=True)
        self.stages[name] = st
        return st


def empty_folder(folder: Path) -> None:
    """Delete everything in ``folder`` but its run lock, which run_stage holds while the stage runs."""
    for child in folder.iterdir():
        if child.name == LOCK_FILE:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


# ---------------------------------------------------------------------------------------------
# Stages (plain functions over folders; each gets its own config section)
# ---------------------------------------------------------------------------------------------

def sentences_path(cfg: DemoConfig) -> Path:
    p = Path(cfg.sentences) if cfg.sentences else resource_path("data", "sentences", f"{cfg.lang}.txt")
    if not p.is_file():
        raise FileNotFoundError(f"sentence file not found: {p} (set sentences=PATH or use a shipped --lang)")
    return p


def stage_corpus(section: SynthConfig, sentences: Path, outdir: Path) -> None:

    synthesize_corpus(sentences, outdir, section, progress=False)


def stage_text(section: TextConfig, unpaired: Path, outdir: Path) -> None:

    prepare_text(unpaired, outdir, section, progress=False)


def stage_features(section: ExtractConfig, corpus: Path, outdir: Path) -> None:

    for split in ("train", "valid"):
        extract_split(corpus / f"{split}.tsv", outdir, split, section, progress=False)


def stage_segments(section: SegmentsConfig, features: Path, outdir: Path) -> None:

    make_segments(features, outdir, section)


def stage_train_gan(gan_cfg: GanConfig, seed: int, segments: Path, text: Path, outdir: Path) -> None:
    """One GAN run through ``w2vu train-gan``'s function; ``best.pt`` is chosen by the phone-LM metric.

    Labels stay out of training and selection: the trainer only *logs* valid PER for the plot.
    """

    cfg = dataclasses.replace(gan_cfg, data=dataclasses.replace(gan_cfg.data, features=str(segments), text=str(text)),
                              trainer=dataclasses.replace(gan_cfg.trainer, seed=seed, resume=False, progress=False))
    summary = train_gan(cfg, outdir, wandb=False)
    if summary["status"] != "done":  # SIGTERM/SIGUSR1: the trainer saved last.pt and stopped early
        raise RuntimeError(f"training stopped early ({summary['status']}) at update {summary['step']}; "
                           f"the stage is not marked done, a rerun starts it again")
    if not (outdir / "best.pt").is_file():  # no LM or never validated: the last is all we have
        shutil.copyfile(outdir / "last.pt", outdir / "best.pt")
    write_json(outdir / "result.json", {"status": summary["status"], "step": summary["step"],
                                        "best_weighted_lm_ppl": summary["best_weighted_lm_ppl"]})


def stage_select(runs: list[Path], segments: Path, text: Path, outdir: Path) -> None:
    """Pick one run without labels, as ``w2vu select`` does: paper Eqs. 5-6 over the best checkpoints."""

    write_json(outdir / "selected.json",
               selection_record(select_checkpoints([r / "best.pt" for r in runs], segments, text, "valid")))


def stage_decode(section: DecodeConfig, selected: Path, segments: Path, text: Path, corpus: Path,
                 outdir: Path) -> None:
    """Viterbi phones, and words with the lexicon + word LM (weights tuned without labels)."""

    sel = read_json(selected / "selected.json")
    decode_split(sel["checkpoint"], segments, outdir, dataclasses.replace(section, split="valid"),
                 text_dir=text, ref_dir=corpus)


def stage_self_train(section: SelfTrainRunConfig, selected: Path, features: Path, segments: Path, text: Path,
                     corpus: Path, outdir: Path) -> None:
    """CTC on the frame features, trained on the selected GAN's Viterbi labels of the train audio."""

    sel = read_json(selected / "selected.json")
    run_self_train(features, outdir, section, checkpoint=sel["checkpoint"], label_features=segments,
                   text_dir=text, ref_dir=corpus)


def stage_chance(section: BaselineSection, corpus: Path, segments: Path, text: Path, outdir: Path) -> None:

    hyps = split_baselines(corpus, segments, text, "valid", kmeans_seed=section.kmeans_seed)
    write_token_lines(outdir / "most_frequent.hyp", hyps["most_frequent"])
    write_token_lines(outdir / "kmeans_rank.hyp", hyps["kmeans_rank"])
    write_meta(outdir, section, section.kmeans_seed, [corpus / "valid.phn", text / "phones.txt",
                                                      segments / "train.lengths"])


def ctc_generator(section: BaselineSection, generator_cfg: Any, labels: Path, segments: Path, text: Path,
                  outdir: Path, hyp_name: str):
    """The GAN's generator trained with CTC on ``labels`` (one phone line per training utterance) over
    the segments; its greedy decode of valid goes to ``outdir/hyp_name``. Returns (model, phones)."""
    tx, tl = load_features(segments, "train", mmap=True)
    vx, vl = load_features(segments, "valid", mmap=True)
    phones = [p for p in read_dictionary(text) if p != SIL]
    scfg = SupervisedConfig(lr=section.supervised_lr, batch_size=section.supervised_batch_size,
                            epochs=section.supervised_epochs, max_seconds=section.supervised_max_seconds)
    t0 = time.time()
    model, phones, history = train_supervised(np.asarray(tx), tl, read_token_lines(labels), scfg, generator_cfg,
                                              phones=phones)
    write_token_lines(outdir / hyp_name, decode_supervised(model, phones, np.asarray(vx), vl))
    write_json(outdir / f"{Path(hyp_name).stem}.json", {"history": history, "seconds": round(time.time() - t0, 1)})
    write_meta(outdir, {"baselines": to_dict(section), "generator": to_dict(generator_cfg)}, scfg.seed,
               [labels, segments / "train.lengths", text / "dict.phn.txt"])
    return model, phones


def stage_supervised(section: BaselineSection, generator_cfg: Any, corpus: Path, segments: Path,
                     text: Path, outdir: Path) -> None:
    """The upper bound: the generator trained with CTC on the reference phones (uses labels)."""
    ctc_generator(section, generator_cfg, corpus / "train.phn", segments, text, outdir, "supervised.hyp")


def stage_warm_init(section: BaselineSection, generator_cfg: Any, labels: Path, segments: Path, text: Path,
                    outdir: Path) -> None:
    """The warm start's first half: the generator learns the method's labels with CTC (no references)."""
    model, phones = ctc_generator(section, generator_cfg, labels, segments, text, outdir, "valid.ctc.hyp")
    write_generator_init(outdir / "init.pt", model, [BLANK, *phones])


def stage_train_warm(gan_cfg: GanConfig, seed: int, init: Path, segments: Path, text: Path, outdir: Path) -> None:
    """The warm start's second half: the GAN, its generator starting from ``init``."""
    cfg = dataclasses.replace(gan_cfg, trainer=dataclasses.replace(gan_cfg.trainer, init_generator=str(init)))
    stage_train_gan(cfg, seed, segments, text, outdir)


def decipher_config(cfg: DemoConfig) -> DecipherRunConfig:
    """train.decipher, scoring segmentations (if it has several) with the demo's own self-training: the chosen
    one's self-trained model is then the demo's self_train stage (``chosen_self_train``)."""
    d = cfg.train.decipher
    if d.units.segmentation_by != "self_train" or len(d.units.min_gap_candidates) < 2:
        return d
    return dataclasses.replace(d, self_train=cfg.self_train)


def stage_decipher(section: DecipherRunConfig, features: Path, text: Path, corpus: Path, outdir: Path) -> None:
    """``w2vu decipher``'s function: units, statistics matching, HMM EM, labels; seed chosen without labels
    (``corpus``'s references are read only to print scores, after every choice)."""

    run_decipher(features, outdir, section, text_dir=text, ref_dir=corpus)


def chosen_self_train(dec: Path, dec_cfg: DecipherRunConfig, section: SelfTrainRunConfig) -> Path | None:
    """The self-training the decipher stage already ran on the labels it kept (segmentation_by=self_train with
    several segmentations), when it used exactly ``section``: the same run the self_train stage would do."""
    folder = read_json(dec / "selection.json").get("self_train_dir")  # relative to the decipher folder
    if folder and to_dict(dec_cfg.self_train) == to_dict(section) and (dec / folder / "history.json").is_file():
        return dec / folder
    return None


def stage_decode_model(section: DecodeConfig, checkpoint: Path, features: Path, text: Path, corpus: Path,
                       outdir: Path) -> None:
    """``w2vu decode`` of a model file on the valid split: phones, and words with the lexicon + word LM."""

    decode_split(checkpoint, features, outdir, dataclasses.replace(section, split="valid"), text_dir=text,
                 ref_dir=corpus)


def stage_self_train_labels(section: SelfTrainRunConfig, labels: Path, features: Path, text: Path, corpus: Path,
                            outdir: Path, done: Path | None = None) -> None:
    """CTC on the frame features, trained on a label file (the decipherment's Viterbi labels of train);
    ``done``: a folder where exactly this run was made already (copied instead of training again)."""

    if done is not None:
        log.info("self-train: the decipher stage self-trained on these labels with these settings: %s", done)
        shutil.copytree(done, outdir, dirs_exist_ok=True)
        return
    run_self_train(features, outdir, section, labels_file=labels, text_dir=text, ref_dir=corpus)


def write_meta(outdir: Path, config: Any, seed: int | None, inputs: list[Path]) -> None:
    """meta.json: config, input hashes, versions, seed (wav2vec_u.tracking.provenance)."""

    write_json(outdir / "meta.json", provenance(config, seed, {str(p): sha256_file(p) for p in inputs}))


# ---------------------------------------------------------------------------------------------
# Scoring, report and plots
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# The whole chain
# ---------------------------------------------------------------------------------------------

@dataclass
class Layout:
    """Which stage folders a demo run has, from its config (the demo and ``w2vu report`` agree on it)."""

    decipher: bool               # the decipherment method ran (train.method=decipher)
    gan: bool                    # a GAN ran (train.method=gan or gan2, or gan_rows for its comparison rows)
    gan2: bool                   # that GAN is wav2vec-U 2.0 (train.method=gan2)
    train_names: list[str]       # GAN run folders, one per seed
    self_train: bool
    warm_start: bool

    @classmethod
    def of(cls, cfg: DemoConfig) -> "Layout":
        decipher = cfg.train.method == "decipher"
        gan = cfg.train.method in ("gan", "gan2") or cfg.train.gan_rows
        names = [f"train-{s}" if len(cfg.train.seeds) > 1 else "train" for s in cfg.train.seeds] if gan else []
        return cls(decipher, gan, cfg.train.method == "gan2", names, cfg.run_self_train,
                   decipher and cfg.train.warm_start_gan)


def gan_config(cfg: DemoConfig) -> GanConfig:
    """The GAN config the demo trains: train.gan, or 2.0's from train.gan2 (train.method=gan2)."""
    return gan2_configs(cfg.train.gan2)[1] if cfg.train.method == "gan2" else cfg.train.gan


def run_demo(cfg: DemoConfig, run_dir: Path, force: bool = False) -> dict[str, Any]:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    clock = StageClock()
    r = Runner(run_dir, clock, force)
    sentences = sentences_path(cfg)
    lay = Layout.of(cfg)

    corpus = r.run("corpus", to_dict(cfg.corpus), [],
                   ["train.tsv", "valid.tsv", "train.phn", "valid.phn", "unpaired.txt"],
                   lambda d: stage_corpus(cfg.corpus, sentences, d), inputs=[sentences]).dir
    text = r.run("text", to_dict(cfg.text), ["corpus"], ["phones.txt", "dict.phn.txt"],
                 lambda d: stage_text(cfg.text, corpus / "unpaired.txt", d)).dir
    features = r.run("features", to_dict(cfg.extract), ["corpus"], ["train.npy", "valid.npy"],
                     lambda d: stage_features(cfg.extract, corpus, d)).dir
    segments = r.run("segments", to_dict(cfg.segments), ["features"], ["train.npy", "valid.npy"],
                     lambda d: stage_segments(cfg.segments, features, d)).dir

    if lay.decipher:
        dec_cfg = decipher_config(cfg)
        dec = r.run("decipher", to_dict(dec_cfg), ["features", "text"],
                    ["decipher.pt", "train.hyp", "valid.hyp"],
                    lambda d: stage_decipher(dec_cfg, features, text, corpus, d)).dir
        r.run("decode_decipher", to_dict(cfg.decode), ["decipher", "features", "text"], ["valid.viterbi.phn"],
              lambda d: stage_decode_model(cfg.decode, dec / "decipher.pt", features, text, corpus, d))
        if lay.self_train:
            r.run("self_train", to_dict(cfg.self_train), ["decipher", "features", "text"], ["ctc.pt", "valid.st.phn"],
                  lambda d: stage_self_train_labels(cfg.self_train, dec / "train.hyp", features, text, corpus, d,
                                                    done=chosen_self_train(dec, dec_cfg, cfg.self_train)))
    if lay.gan:
        gan = cfg.train.gan
        # what the GAN reads: 1.0 segments and text; 2.0 (train.method=gan2) frames with targets, text2
        inputs, gan_text, up = segments, text, ["segments", "text"]
        if lay.gan2:
            inputs, gan_text, gan = run_gan2_inputs(cfg, r, corpus)
            up = ["frames2", "text2"]
        run_dirs = []
        for seed, name in zip(cfg.train.seeds, lay.train_names):
            st = r.run(name, {"method": "gan2" if lay.gan2 else "gan", "seed": seed, "gan": to_dict(gan)}, up,
                       ["best.pt", "result.json"], lambda d, s=seed: stage_train_gan(gan, s, inputs, gan_text, d))
            run_dirs.append(st.dir)
        selected = r.run("select", {}, [*lay.train_names, up[1]], ["selected.json"],
                         lambda d: stage_select(run_dirs, inputs, gan_text, d)).dir
        r.run("decode", to_dict(cfg.decode), ["select", *up], ["valid.viterbi.phn"],
              lambda d: stage_decode(cfg.decode, selected, inputs, gan_text, corpus, d))
        if lay.self_train and not lay.decipher:
            r.run("self_train", to_dict(cfg.self_train), ["select", "features", *up], ["ctc.pt", "valid.st.phn"],
                  lambda d: stage_self_train(cfg.self_train, selected, features, inputs, gan_text, corpus, d))
    if lay.warm_start:
        warm = r.run("warm_init", {"b": to_dict(cfg.baselines), "g": to_dict(cfg.train.gan.generator)},
                     ["decipher", "segments", "text"], ["init.pt", "valid.ctc.hyp"],
                     lambda d: stage_warm_init(cfg.baselines, cfg.train.gan.generator, dec / "train.hyp", segments,
                                               text, d)).dir
        seed = cfg.train.seeds[0]
        trained = r.run("train_warm", {"seed": seed, "gan": to_dict(cfg.train.gan)}, ["warm_init", "segments", "text"],
                        ["best.pt", "result.json"],
                        lambda d: stage_train_warm(cfg.train.gan, seed, warm / "init.pt", segments, text, d)).dir
        r.run("decode_warm", to_dict(cfg.decode), ["train_warm", "segments", "text"], ["valid.viterbi.phn"],
              lambda d: stage_decode_model(cfg.decode, trained / "best.pt", segments, text, corpus, d))
    return report(cfg, r, sentences)


def run_gan2_inputs(cfg: DemoConfig, r: Runner, corpus: Path) -> tuple[Path, Path, GanConfig]:
    """wav2vec-U 2.0's inputs as their own stages: frames + MFCC-cluster targets (``prepare-audio``
    in 2.0 mode) and the text with 2.0's ``<SIL>`` probability; returns (frames, text, GAN config)."""
    prep, gan, silence = gan2_configs(cfg.train.gan2)
    frames = r.run("frames2", to_dict(prep), ["corpus"], ["frames/train.npy", "frames/valid.npy", "frames/train.km"],
                   lambda d: prepare_audio(corpus, d, prep, ["train", "valid"], progress=False)).dir / "frames"
    text_cfg = dataclasses.replace(cfg.text, silence=dataclasses.replace(cfg.text.silence, prob=silence))
    text2 = r.run("text2", to_dict(text_cfg), ["corpus"], ["phones.txt", "dict.phn.txt"],
                  lambda d: stage_text(text_cfg, corpus / "unpaired.txt", d)).dir
    return frames, text2, gan


def system_rows(cfg: DemoConfig, run_dir: Path) -> tuple[list[Row], str, Path]:
    """The rows of the demo's tables for the stages this config runs, the main PER row (the last
    label-free system of the main method) and the decode folder the utterance plot reads."""
    lay = Layout.of(cfg)
    st_dir = run_dir / "self_train"
    rows = [Row("per", ROW_MOST_FREQUENT, run_dir / "chance" / "most_frequent.hyp", "oracle length"),
            Row("per", ROW_KMEANS, run_dir / "chance" / "kmeans_rank.hyp", "no labels")]
    wer: list[Row] = []
    not_run = "not run (run_self_train=false)"
    source = "decipher" if lay.decipher else "GAN"
    st_row, st_lm_row = self_train_rows(source)
    st_rows = [Row("per", st_row, st_dir / "valid.st.phn", "no labels", not_run),
               Row("per", st_lm_row, st_dir / "decode" / "valid.words.phn", "LM weights tuned without labels",
                   NO_WORDS if lay.self_train else not_run)]
    st_wer = Row("wer", st_lm_row, st_dir / "decode" / "valid.words.wrd", "", NO_WORDS if lay.self_train else not_run)
    if lay.decipher:
        dec, dd = run_dir / "decipher", run_dir / "decode_decipher"
        rows += [Row("per", ROW_TABLE, dec / "valid.table.hyp", "argmax of P(phone | unit), before EM"),
                 Row("per", ROW_DECIPHER, dec / "valid.hyp", "seed chosen without labels"),
                 Row("per", ROW_DECIPHER_LM, dd / "valid.words.phn", "LM weights tuned without labels", NO_WORDS),
                 *st_rows]
        wer += [Row("wer", ROW_DECIPHER_LM, dd / "valid.words.wrd", "", NO_WORDS), st_wer]
        main, plot_dir = (st_row if lay.self_train else ROW_DECIPHER), dd
    if lay.gan:
        d = run_dir / "decode"
        gan_row, gan_lm_row = gan_rows("GAN 2.0" if lay.gan2 else "GAN")
        rows += [Row("per", gan_row, d / "valid.viterbi.phn", "checkpoint chosen without labels"),
                 Row("per", gan_lm_row, d / "valid.words.phn", "LM weights tuned without labels", NO_WORDS)]
        wer += [Row("wer", gan_lm_row, d / "valid.words.wrd", "", NO_WORDS)]
        if not lay.decipher:
            rows += st_rows
            wer += [st_wer]
            main, plot_dir = gan_row, d
    if lay.warm_start:
        rows += [Row("per", ROW_WARM_CTC, run_dir / "warm_init" / "valid.ctc.hyp", "no labels; the GAN's starting point"),
                 Row("per", ROW_WARM, run_dir / "decode_warm" / "valid.viterbi.phn", "checkpoint chosen without labels")]
    rows.append(Row("per", ROW_SUPERVISED, run_dir / "supervised" / "supervised.hyp",
                    "uses labels: an upper bound, not a result"))
    return rows + wer, main, plot_dir


def report(cfg: DemoConfig, r: Runner, sentences: Path) -> dict[str, Any]:
    """Baselines, the PER/WER tables, plots and results.json for a run folder in the demo's layout."""
    run_dir, clock, force = r.run_dir, r.clock, r.force
    corpus, text, segments = (run_dir / n for n in ("corpus", "text", "segments"))
    lay = Layout.of(cfg)
    gan = cfg.train.gan
    r.run("chance", to_dict(cfg.baselines), ["corpus", "segments", "text"], ["most_frequent.hyp", "kmeans_rank.hyp"],
          lambda d: stage_chance(cfg.baselines, corpus, segments, text, d))
    r.run("supervised", {"b": to_dict(cfg.baselines), "g": to_dict(gan.generator)}, ["corpus", "segments", "text"],
          ["supervised.hyp"], lambda d: stage_supervised(cfg.baselines, gan.generator, corpus, segments, text, d))

    results = new_results(lang=cfg.lang, espeak=LANGS[cfg.lang], run_dir=str(run_dir),
                          train_utts=cfg.corpus.num_train, valid_utts=cfg.corpus.num_valid,
                          method=cfg.train.method, seeds=cfg.train.decipher.seeds if lay.decipher else cfg.train.seeds,
                          **({"gan_updates": gan_config(cfg).trainer.max_updates} if lay.gan else {}))
    rows, main, plot_decode = system_rows(cfg, run_dir)
    # Score: the demo reads the held-back valid references only here (the decode stages also
    # score their own outputs, but tune their word-LM weights without them).
    with clock.stage("score"):
        stats = score_rows(results, corpus, rows, main, align_to=run_dir / "valid.per.align.txt")
    if lay.decipher:
        sel = read_json(run_dir / "decipher" / "selection.json")
        results["selection"] = {"decipher refined by": sel["refined_by"], "decipher members by": sel["members_by"],
                                "decipher members": sel["members"]}
        if len(sel.get("segmentations", [])) > 1:
            results["selection"]["decipher segmentation"] = (
                f"min_gap {sel['min_gap']} of {[t['min_gap'] for t in sel['segmentations']]} "
                f"(by {sel.get('segmentation_by', 'match_loss')})")
    if lay.gan:
        sel = read_json(run_dir / "select" / "selected.json")
        results["selection"].update({f"GAN {k}": v for k, v in sel.items()
                                     if k not in ("runs", "anchor", "kept", "chosen", "tolerance")})

    plot_dir = run_dir / "plots"
    rates = {r_["system"]: r_["rate"] for r_ in results["per"]}
    baselines = {"k-means by rank": rates[ROW_KMEANS], "most frequent phone": rates[ROW_MOST_FREQUENT],
                 "supervised bound": rates[ROW_SUPERVISED]}
    with clock.stage("plots") as rec:
        upstream = [n for n in ("decode", "decode_decipher", "self_train", "decode_warm", "chance", "supervised",
                                *lay.train_names)
                    if n in r.stages]
        fp = fingerprint({"v": STAGE_VERSION, "plots": to_dict(cfg.plots), "up": [r.stages[n].fp for n in upstream]})
        curves = run_dir / lay.train_names[0] if lay.train_names else None

        def draw() -> list[Path]:
            from wav2vec_u.demo.plots import make_plots  # noqa: PLC0415 - matplotlib

            return make_plots(cfg, corpus, curves, plot_decode, stats, baselines, plot_dir, main)

        ran, _ = run_stage(plot_dir, fp, lambda made: [p.name for p in made], draw, force=force, name=RECORD)
        rec["cached"] = not ran
    results["plots"] = sorted(str(p.relative_to(run_dir)) for p in plot_dir.glob("*.png"))

    results["provenance"] = provenance(cfg, None, {str(sentences): sha256_file(sentences)})
    finish_results(results, clock)
    write_results(run_dir, results)
    return results


def report_run_dir(cfg: DemoConfig, run_dir: str | Path, force: bool = False) -> dict[str, Any]:
    """The demo's table for a run folder whose stages the ``w2vu`` commands wrote (recipes/synthetic).

    The commands' outputs stand in for the demo's stages, fingerprinted by their content; the
    baselines, scores and plots are the demo's own (:func:`report`).
    """
    run_dir = Path(run_dir)
    lay = Layout.of(cfg)
    adopted = {"corpus": ["train.phn", "valid.phn", "train.tsv", "valid.tsv"], "text": ["phones.txt", "dict.phn.txt"],
               "features": ["train.lengths", "valid.lengths"], "segments": ["train.lengths", "valid.lengths"]}
    if lay.decipher:
        adopted.update(decipher=["decipher.pt", "valid.hyp", "selection.json"], decode_decipher=["valid.viterbi.phn"])
    if lay.gan:
        adopted.update(decode=["valid.viterbi.phn"], **{n: ["best.pt"] for n in lay.train_names})
        if not (run_dir / "select" / "selected.json").is_file():
            raise FileNotFoundError(f"missing {run_dir / 'select' / 'selected.json'} (the recipe's `w2vu select --out` "
                                    "stage writes it)")
    if cfg.run_self_train:
        adopted["self_train"] = ["valid.st.phn"]
    clock = StageClock()
    r = Runner(run_dir, clock, force)
    for name, files in adopted.items():
        r.adopt(name, files)
    save_config(cfg, run_dir / "config.yaml")
    return report(cfg, r, sentences_path(cfg))
