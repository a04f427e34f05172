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
from collections import Counter
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
from wav2vec_u.demo.config import LANGS, BaselineSection, DecipherSection, DemoConfig, gan2_configs
from wav2vec_u.audio.prepare import prepare_audio
from wav2vec_u.demo.scoring import ROW_KMEANS, ROW_MOST_FREQUENT, ROW_SUPERVISED, score_rows
from wav2vec_u.audio.extract import extract_split
from wav2vec_u.audio.segments import make_segments
from wav2vec_u.decode.decode import decode_split
from wav2vec_u.demo.baselines import SupervisedConfig, decode_supervised, kmeans_rank_hyps, most_frequent_phone_hyps, phone_counts_from_text, train_supervised
from wav2vec_u.io import sha256_file
from wav2vec_u.research.decipher import decode, make_units, train_units_to_phones
from wav2vec_u.self_train.run import run_self_train
from wav2vec_u.synth.corpus import synthesize_corpus
from wav2vec_u.text.prepare import prepare_text
from wav2vec_u.tracking import provenance
from wav2vec_u.train.data import read_dictionary
from wav2vec_u.train.run import train_gan
from wav2vec_u.train.selection import select_checkpoints, selection_record

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


def phone_counts(text: Path) -> Counter:

    return phone_counts_from_text((text / "phones.txt").read_text(encoding="utf-8").splitlines())


def stage_chance(section: BaselineSection, corpus: Path, segments: Path, text: Path, outdir: Path) -> None:

    refs = read_token_lines(corpus / "valid.phn")
    counts = phone_counts(text)
    write_token_lines(outdir / "most_frequent.hyp", most_frequent_phone_hyps(refs, counts))
    tx, tl = load_features(segments, "train", mmap=True)
    vx, vl = load_features(segments, "valid", mmap=True)
    write_token_lines(outdir / "kmeans_rank.hyp", kmeans_rank_hyps(np.asarray(tx), tl, np.asarray(vx), vl, counts,
                                                             seed=section.kmeans_seed))
    write_meta(outdir, section, section.kmeans_seed, [corpus / "valid.phn", text / "phones.txt",
                                                      segments / "train.lengths"])


def stage_supervised(section: BaselineSection, generator_cfg: Any, corpus: Path, segments: Path,
                     text: Path, outdir: Path) -> None:

    tx, tl = load_features(segments, "train", mmap=True)
    vx, vl = load_features(segments, "valid", mmap=True)
    phones = [p for p in read_dictionary(text) if p != SIL]
    refs = read_token_lines(corpus / "train.phn")
    scfg = SupervisedConfig(lr=section.supervised_lr, batch_size=section.supervised_batch_size,
                            epochs=section.supervised_epochs, max_seconds=section.supervised_max_seconds)
    t0 = time.time()
    model, phones, history = train_supervised(np.asarray(tx), tl, refs, scfg, generator_cfg, phones=phones)
    write_token_lines(outdir / "supervised.hyp", decode_supervised(model, phones, np.asarray(vx), vl))
    write_json(outdir / "supervised.json", {"history": history, "seconds": round(time.time() - t0, 1)})
    write_meta(outdir, {"baselines": to_dict(section), "generator": to_dict(generator_cfg)}, scfg.seed,
               [corpus / "train.phn", segments / "train.lengths", text / "dict.phn.txt"])


def stage_decipher(section: DecipherSection, features: Path, text: Path, outdir: Path) -> None:
    """Units from frame features, EM on train units + the unpaired phone text, Viterbi on valid."""

    tx, tl = load_features(features, "train", mmap=True)
    vx, vl = load_features(features, "valid", mmap=True)
    cent, units = make_units(np.asarray(tx), tl, k=section.units, smooth=section.smooth, seed=section.hmm.seed)
    _, vunits = make_units(np.asarray(vx), vl, smooth=section.smooth, centroids=cent)
    sents = read_token_lines(text / "phones.txt")
    history = []
    model = train_units_to_phones(units[:section.max_train_utts], sents, section.units, section.hmm,
                                  on_iter=lambda r, it, ll, m: history.append({"restart": r, "iter": it,
                                                                               "loglik_per_unit": ll}))
    write_token_lines(outdir / "valid.hyp", decode(model, vunits))
    write_json(outdir / "decipher.json", {"history": history,
                                          "valid_loglik": model.log_likelihood(vunits)})
    write_meta(outdir, section, section.hmm.seed, [features / "train.lengths", text / "phones.txt"])


def write_meta(outdir: Path, config: Any, seed: int | None, inputs: list[Path]) -> None:
    """meta.json: config, input hashes, versions, seed (wav2vec_u.tracking.provenance)."""

    write_json(outdir / "meta.json", provenance(config, seed, {str(p): sha256_file(p) for p in inputs}))


# ---------------------------------------------------------------------------------------------
# Scoring, report and plots
# ---------------------------------------------------------------------------------------------


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
    features = r.run("features", to_dict(cfg.extract), ["corpus"], ["train.npy", "valid.npy"],
                     lambda d: stage_features(cfg.extract, corpus, d)).dir
    segments = r.run("segments", to_dict(cfg.segments), ["features"], ["train.npy", "valid.npy"],
                     lambda d: stage_segments(cfg.segments, features, d)).dir

    gan = cfg.train.gan
    # what the GAN reads: 1.0 segments and text; 2.0 (train.method=gan2) frames with targets, text2
    inputs, gan_text, up = segments, text, ["segments", "text"]
    if cfg.train.method == "gan2":
        inputs, gan_text, gan = run_gan2_inputs(cfg, r, corpus)
        up = ["frames2", "text2"]
    run_dirs = []
    for seed in cfg.train.seeds:
        name = f"train-{seed}" if len(cfg.train.seeds) > 1 else "train"
        st = r.run(name, {"method": cfg.train.method, "seed": seed, "gan": to_dict(gan)}, up,
                   ["best.pt", "result.json"], lambda d, s=seed: stage_train_gan(gan, s, inputs, gan_text, d))
        run_dirs.append(st.dir)
    train_names = [d.name for d in run_dirs]
    selected = r.run("select", {}, [*train_names, up[1]], ["selected.json"],
                     lambda d: stage_select(run_dirs, inputs, gan_text, d)).dir
    r.run("decode", to_dict(cfg.decode), ["select", *up], ["valid.viterbi.phn"],
                    lambda d: stage_decode(cfg.decode, selected, inputs, gan_text, corpus, d)).dir
    if cfg.run_self_train:
        r.run("self_train", to_dict(cfg.self_train), ["select", "features", *up],
              ["ctc.pt", "valid.st.phn"],
              lambda d: stage_self_train(cfg.self_train, selected, features, inputs, gan_text, corpus, d))
    return report(cfg, r, train_names, sentences)


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


def report(cfg: DemoConfig, r: Runner, train_names: list[str], sentences: Path) -> dict[str, Any]:
    """Baselines, the PER/WER tables, plots and results.json for a run folder in the demo's layout."""
    run_dir, clock, force = r.run_dir, r.clock, r.force
    corpus, text, features, segments = (run_dir / n for n in ("corpus", "text", "features", "segments"))
    selected, decoded = run_dir / "select", run_dir / "decode"
    run_dirs = [run_dir / n for n in train_names]
    gan = cfg.train.gan
    st_dir = run_dir / "self_train" if cfg.run_self_train else None
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

    gan2 = cfg.train.method == "gan2"
    results = new_results(lang=cfg.lang, espeak=LANGS[cfg.lang], run_dir=str(run_dir),
                          train_utts=cfg.corpus.num_train, valid_utts=cfg.corpus.num_valid,
                          method=cfg.train.method, seeds=cfg.train.seeds,
                          updates=(gan2_configs(cfg.train.gan2)[1] if gan2 else gan).trainer.max_updates)
    # Score: the demo reads the held-back valid references only here (the decode stage also
    # scores its own outputs, but tunes its word-LM weights without them).
    with clock.stage("score"):
        stats = score_rows(results, corpus, decoded, st_dir, chance, upper, dec_dir,
                           gan_name="GAN 2.0" if gan2 else "GAN")
    sel = read_json(selected / "selected.json")
    results["selection"] = {k: v for k, v in sel.items() if k not in ("runs", "anchor", "kept", "chosen", "tolerance")}

    plot_dir = run_dir / "plots"
    rates = {r_["system"]: r_["rate"] for r_ in results["per"]}
    baselines = {"k-means by rank": rates[ROW_KMEANS], "most frequent phone": rates[ROW_MOST_FREQUENT],
                 "supervised bound": rates[ROW_SUPERVISED]}
    with clock.stage("plots") as rec:
        fp = fingerprint({"v": STAGE_VERSION, "plots": to_dict(cfg.plots),
                          "up": [r.stages[n].fp for n in ("decode", "chance", "supervised", *train_names)]})

        def draw() -> list[Path]:
            from wav2vec_u.demo.plots import make_plots  # noqa: PLC0415 - matplotlib

            return make_plots(cfg, corpus, run_dirs[0], decoded, stats, baselines, plot_dir)

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
    train_names = [f"train-{s}" if len(cfg.train.seeds) > 1 else "train" for s in cfg.train.seeds]
    adopted = {"corpus": ["train.phn", "valid.phn", "train.tsv", "valid.tsv"], "text": ["phones.txt", "dict.phn.txt"],
               "features": ["train.lengths", "valid.lengths"], "segments": ["train.lengths", "valid.lengths"],
               "decode": ["valid.viterbi.phn"], **{n: ["best.pt"] for n in train_names}}
    if cfg.run_self_train:
        adopted["self_train"] = ["valid.st.phn"]
    clock = StageClock()
    r = Runner(run_dir, clock, force)
    for name, files in adopted.items():
        r.adopt(name, files)
    if not (run_dir / "select" / "selected.json").is_file():
        raise FileNotFoundError(f"missing {run_dir / 'select' / 'selected.json'} (the recipe's `w2vu select --out` "
                                "stage writes it)")
    save_config(cfg, run_dir / "config.yaml")
    return report(cfg, r, train_names, sentences_path(cfg))


