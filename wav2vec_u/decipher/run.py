"""The decipher stage over folders: units, statistics matching, HMM EM, labels from an ensemble of seeds.

    summary = run_decipher("out/features", "out/decipher", DecipherRunConfig(), text_dir="out/text")

Phase 1, for every seed (cheap): k-means units over change-point segments of the frame features
(:mod:`wav2vec_u.audio.segmenters`) and a unit->phone table from matching the unpaired text's
gap-k co-occurrence statistics (:mod:`wav2vec_u.decipher.stats_match`, batched restarts, the
lowest loss kept). Phase 2, for the ``cfg.refine`` seeds with the lowest matching loss: the
trigram decipherment HMM started from the table and trained by EM (:mod:`wav2vec_u.decipher.hmm`).
The refined seeds whose own labels score within ``cfg.ensemble_tolerance`` (1.2, as the paper's
Eqs. 5-6) of the best one's by the phone-LM metric are the members of the model
(:mod:`wav2vec_u.decipher.model`): every segment's phone posterior is the normalised geometric
mean of theirs, and the labels are the most likely phone per segment, runs merged. Seeds differ
mostly by their k-means codebooks; measured on the demo (docs/demo-findings.md), the matching
loss is a good filter but not a reliable arg-min, the LM metric ranked refined seeds better, and
members that score alike beat each of them together. References (``ref_dir``) are read only to
print and record PER after the model is made. ``w2vu decipher`` parses its arguments and calls
this; the demo calls it too.

Outputs: ``decipher.pt``, ``{train,valid}.hyp`` (labels, for ``w2vu self-train --labels``),
``{train,valid}.table.hyp`` (the lowest-loss table alone, before EM), ``selection.json`` (every
seed's scores, the members), ``seeds/seed-S.{split}.table.hyp`` for every seed and
``seeds/seed-S.{split}.hyp`` for every refined seed alone, ``decipher.yaml``, ``meta.json``,
``decipher.log``, ``metrics.jsonl``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import multiprocessing
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from wav2vec_u.audio.features_io import load_features
from wav2vec_u.audio.segmenters import change_columns, spectral_segments
from wav2vec_u.audio.segments import assign_clusters, fit_kmeans
from wav2vec_u.config import save_config, to_dict
from wav2vec_u.decipher.config import DecipherRunConfig
from wav2vec_u.decipher.hmm import DecipherHMM, phone_inventory, train_units_to_phones
from wav2vec_u.decipher.model import DecipherModel, Member, combine_posteriors, posterior_phones, save_decipher_model
from wav2vec_u.decipher.stats_match import match_statistics, table_emissions
from wav2vec_u.io import read_json, sha256_file, write_json
from wav2vec_u.metrics import error_rate, normalize_tokens
from wav2vec_u.stage import fingerprint, run_stage
from wav2vec_u.text.lm import find_phone_lm, load_lm
from wav2vec_u.tokens import SIL, read_token_lines, split_by_lengths, write_token_lines
from wav2vec_u.tracking import Tracker
from wav2vec_u.train.selection import label_free_metrics

log = logging.getLogger("wav2vec_u.decipher")

STAGE_VERSION = 1


@dataclass
class Segmented:
    """One split's change-point segments: pooled features (S, D), segments per utterance, boundaries."""

    feats: np.ndarray
    lengths: list[int]
    bounds: list[list[int]]


@dataclass
class Candidate:
    """One seed's k-means units and statistics-matching table (phase 1, cheap)."""

    seed: int
    centroids: np.ndarray
    units: dict[str, list[np.ndarray]]      # unit ids per utterance, per split
    table: np.ndarray                       # (K, V) P(phone | unit) of the lowest-loss restart
    match_losses: list[float]               # every restart's loss, best first
    table_hyps: dict[str, list[list[str]]]  # the table's argmax read-out per split (no EM)
    seconds: float

    @property
    def match_loss(self) -> float:
        return self.match_losses[0]


@dataclass
class SeedRun:
    """A candidate refined by EM (phase 2): its HMM, phone posteriors per segment and scores."""

    candidate: Candidate
    hmm: DecipherHMM
    history: list[dict[str, Any]]           # EM passes: log-likelihood per unit on the training units
    posteriors: dict[str, list[np.ndarray]]  # (S_i, V) phone posteriors per utterance, per split
    scores: dict[str, Any]                  # label-free scores

    @property
    def seed(self) -> int:
        return self.candidate.seed

    def hyps(self, split: str) -> list[list[str]]:
        return [self.hmm.path_phones(p.argmax(1)) for p in self.posteriors[split]]


def segment_split(feature_dir: Path, split: str, cfg: DecipherRunConfig) -> Segmented:
    feats, lengths = load_features(feature_dir, split, mmap=True)
    meta = read_json(feature_dir / "meta.json") if (feature_dir / "meta.json").is_file() else None
    cols = change_columns(meta, feats.shape[1], cfg.units.segmenter.columns)
    x, seg_lengths, bounds = spectral_segments(np.asarray(feats), lengths, cols, cfg.units.segmenter)
    return Segmented(x, seg_lengths, bounds)


def read_phone_text(text_dir: Path) -> list[list[str]]:
    """The unpaired phone sentences (with ``<SIL>``) that prepare-text wrote."""
    path = text_dir / "phones.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --text-dir must be a `w2vu prepare-text` output folder")
    sents = [s for s in read_token_lines(path) if s]
    if not sents:
        raise ValueError(f"{path} has no phone sentences")
    return sents


def match_seed(seed: int, segs: dict[str, Segmented], sents: list[list[str]], cfg: DecipherRunConfig) -> Candidate:
    """Phase 1 for ``seed``: k-means units of the segments, then statistics matching (batched restarts)."""
    t0 = time.time()
    cent = fit_kmeans(segs[cfg.train_split].feats, k=cfg.units.k, niter=cfg.units.niter, nredo=1, seed=seed)
    units = {s: split_by_lengths(assign_clusters(g.feats, cent), g.lengths) for s, g in segs.items()}
    phones = phone_inventory(sents)
    pid = {p: i for i, p in enumerate(phones)}
    tables, losses = match_statistics(units[cfg.train_split], [[pid[p] for p in s] for s in sents], cfg.units.k,
                                      len(phones), cfg.match, seed=seed)
    # the table alone: each unit read as its most likely phone, runs merged, <SIL> dropped
    key = np.asarray(phones)[tables[0].argmax(1)]
    table_hyps = {s: [merge_runs(key[np.asarray(x)]) for x in u] for s, u in units.items()}
    log.info("seed %d: statistics matching, %d restarts, losses %.4f..%.4f (%.0f s)", seed, len(losses),
             losses.min(), losses.max(), time.time() - t0)
    return Candidate(seed, cent, units, tables[0], [float(v) for v in losses], table_hyps,
                     round(time.time() - t0, 1))


def merge_runs(phones: Sequence[str]) -> list[str]:
    """Consecutive repeats merged, ``<SIL>`` dropped."""
    return [p for i, p in enumerate(phones) if (i == 0 or p != phones[i - 1]) and p != SIL]


def refine(c: Candidate, sents: list[list[str]], cfg: DecipherRunConfig) -> SeedRun:
    """Phase 2: the trigram HMM started from the candidate's table, EM, phone posteriors, scores."""
    t0 = time.time()
    em_units = c.units[cfg.train_split][:cfg.max_em_utts or None]
    history: list[dict[str, Any]] = []

    def on_iter(_restart: int, it: int, ll: float, _model: DecipherHMM) -> None:
        history.append({"seed": c.seed, "iteration": it, "loglik_per_unit": ll})

    hmm = train_units_to_phones(em_units, sents, cfg.units.k, dataclasses.replace(cfg.hmm, seed=c.seed),
                                on_iter=on_iter, init_emissions=table_emissions(c.table, c.units[cfg.train_split]))
    posteriors = {s: hmm.posteriors(u) for s, u in c.units.items()}
    sel_split = cfg.valid_split or cfg.train_split
    n_units = sum(len(u) for u in c.units[sel_split])
    scores: dict[str, Any] = {"train_loglik_per_unit": history[-1]["loglik_per_unit"] if history else None,
                              "loglik_per_unit": hmm.log_likelihood(c.units[sel_split]) / max(n_units, 1),
                              "em_seconds": round(time.time() - t0, 1)}
    log.info("seed %d: EM done, loglik/unit %.4f on %s (%.0f s)", c.seed, scores["loglik_per_unit"], sel_split,
             time.time() - t0)
    return SeedRun(c, hmm, history, posteriors, scores)


# Worker processes read their inputs from the parent (fork) instead of pickling them per task.
_SHARED: dict[str, Any] = {}


def _match_task(seed: int) -> Candidate:
    s = _SHARED
    return match_seed(seed, s["segs"], s["sents"], s["cfg"])


def _refine_task(i: int) -> SeedRun:
    s = _SHARED
    return refine(s["candidates"][i], s["sents"], s["cfg"])


def _one_thread() -> None:
    import faiss  # noqa: PLC0415 - k-means

    torch.set_num_threads(1)   # workers x 1 thread: no oversubscription of the cores
    faiss.omp_set_num_threads(1)


def _map(task, items: list, workers: int) -> list:
    """``task`` over ``items`` in ``workers`` forked processes (in this one when 1)."""
    if workers <= 1 or len(items) <= 1:
        return [task(x) for x in items]
    with ProcessPoolExecutor(min(workers, len(items)), mp_context=multiprocessing.get_context("fork"),
                             initializer=_one_thread) as pool:
        return list(pool.map(task, items))


def run_seeds(segs: dict[str, Segmented], sents: list[list[str]],
              cfg: DecipherRunConfig) -> tuple[list[Candidate], list[SeedRun]]:
    """Phase 1 for every seed, then phase 2 for the ``cfg.refine`` lowest matching losses."""
    _SHARED.update(segs=segs, sents=sents, cfg=cfg)
    try:
        candidates = sorted(_map(_match_task, list(cfg.seeds), cfg.workers), key=lambda c: c.match_loss)
        _SHARED["candidates"] = candidates
        runs = _map(_refine_task, list(range(min(cfg.refine, len(candidates)))), cfg.workers)
    finally:
        _SHARED.clear()
    return candidates, runs


def choose_members(runs: Sequence[SeedRun], split: str, lm: Any, tolerance: float) -> list[SeedRun]:
    """The refined seeds whose labels of ``split`` have a phone-LM metric (``weighted_lm_ppl``) within
    ``tolerance`` x the best seed's (the paper's Eqs. 5-6 keep runs within a factor 1.2 likewise);
    all of them without a phone LM. Each run's metric is added to its scores."""
    if lm is None:
        return list(runs)
    for r in runs:
        r.scores.update(label_free_metrics(r.hyps(split), lm, r.hmm.phones))
    best = min(r.scores["weighted_lm_ppl"] for r in runs)
    return [r for r in runs if r.scores["weighted_lm_ppl"] <= tolerance * best]


def _per(ref_dir: Path | None, split: str, hyps: list[list[str]]) -> dict | None:
    refs = read_token_lines(ref_dir / f"{split}.phn", len(hyps), missing_ok=True) if ref_dir else None
    if refs is None:
        return None
    return error_rate([normalize_tokens(r) for r in refs], hyps).to_dict()


def run_decipher(features: str | Path, outdir: str | Path, cfg: DecipherRunConfig | None = None, *,
                 text_dir: str | Path, ref_dir: str | Path | None = None, force: bool = False,
                 wandb: bool = False) -> dict[str, Any]:
    """Train (or reuse, when inputs and options are unchanged) the decipherment model; return the summary."""
    cfg = cfg or DecipherRunConfig()
    features, outdir, text_dir = Path(features), Path(outdir), Path(text_dir)
    ref_dir = Path(ref_dir) if ref_dir else None
    if not cfg.seeds:
        raise ValueError("decipher: give at least one seed (seeds=[1])")
    u = cfg.units
    if u.self_loop_candidates and len(u.self_loop_candidates) != len(u.min_gap_candidates or [0]):
        raise ValueError(f"decipher: units.self_loop_candidates {u.self_loop_candidates} needs one value per "
                         f"units.min_gap_candidates {u.min_gap_candidates} (or [] for hmm.self_loop with each)")
    splits = [s for s in (cfg.train_split, cfg.valid_split) if s]
    inputs = [features / f"{s}.{ext}" for s in splits for ext in ("npy", "lengths")] + [text_dir / "phones.txt"]
    for p in inputs:
        if not p.is_file():
            hint = ("w2vu extract (or prepare-audio) writes the frame features" if p.parent == features
                    else "w2vu prepare-text writes it")
            raise FileNotFoundError(f"decipher: missing {p} ({hint})")
    lm_path = find_phone_lm(text_dir)
    fp = fingerprint({"stage": "decipher", "version": STAGE_VERSION, "config": to_dict(cfg),
                      "lm": sha256_file(lm_path) if lm_path else None}, inputs)
    outputs = ["decipher.pt", "selection.json", *(f"{s}.hyp" for s in splits)]

    def work() -> dict[str, Any]:
        input_hashes = {str(p): sha256_file(p) for p in inputs}
        with Tracker(outdir, "decipher", cfg, cfg.seeds[0], input_hashes, wandb=wandb) as tracker:
            return _decipher(features, outdir, cfg, text_dir, ref_dir, lm_path, splits, input_hashes, tracker)

    ran, summary = run_stage(outdir, fp, outputs, work, force=force, what="w2vu decipher")
    if not ran:
        log.info("decipher: %s is current (same inputs and options); nothing to do", outdir)
        summary = read_json(outdir / "selection.json")
    return summary


def model_labels(segs: dict, runs: list, members: list, splits: list[str]) -> dict[str, list[list[str]]]:
    """The model's labels per split: the members' posteriors combined, then the best phone per segment."""
    hmm0 = runs[0].hmm
    return {s: [posterior_phones(combine_posteriors([r.posteriors[s][i] for r in members]), hmm0)
                for i in range(len(segs[s].lengths))] for s in splits}


def self_train_score(features: Path, folder: Path, cfg: DecipherRunConfig, labels: list[list[str]], text_dir: Path,
                     ref_dir: Path | None) -> dict[str, Any]:
    """Self-train a CTC model (``cfg.self_train``) on one segmentation's training labels and return its
    label-free score: the phone-LM metric of the kept iteration. The CTC model reads the frame features,
    not the segments, so the scores of different segmentations compare. References, if any, are only
    printed by the self-training."""
    from wav2vec_u.self_train.run import run_self_train  # self-training decodes with decipher models too

    folder.mkdir(parents=True, exist_ok=True)
    write_token_lines(folder / f"{cfg.train_split}.hyp", labels)
    result = run_self_train(features, folder / "self_train", cfg.self_train,
                            labels_file=folder / f"{cfg.train_split}.hyp", text_dir=text_dir, ref_dir=ref_dir)
    kept = [h for h in result["history"] if h.get("kept", True)]
    return {"self_train_weighted_lm_ppl": kept[-1].get("weighted_lm_ppl") if kept else None}


def _decipher(features: Path, outdir: Path, cfg: DecipherRunConfig, text_dir: Path, ref_dir: Path | None,
              lm_path: Path | None, splits: list[str], input_hashes: dict[str, str], tracker: Tracker) -> dict:
    t0 = time.time()
    meta = read_json(features / "meta.json") if (features / "meta.json").is_file() else None
    sents = read_phone_text(text_dir)
    sel_split = cfg.valid_split or cfg.train_split
    lm = load_lm(lm_path) if lm_path is not None else None
    gaps = list(cfg.units.min_gap_candidates) or [cfg.units.segmenter.min_gap]
    loops = list(cfg.units.self_loop_candidates) or [cfg.hmm.self_loop] * len(gaps)  # same length: run_decipher
    if len(gaps) > 1 and lm is None:
        log.warning("decipher: no phone LM in %s to choose among min_gap %s: using %d", text_dir, gaps, gaps[0])
        gaps, loops = gaps[:1], loops[:1]
    tried, states = [], []  # per segmentation: its summary row, and what the model is made of if it is chosen
    for gap, loop in zip(gaps, loops):
        # every seed on this segmentation; the members are its refined seeds whose own labels score within
        # ``ensemble_tolerance`` of the best one's by the label-free metric (the model combines them)
        seg_cfg = dataclasses.replace(cfg.units.segmenter, min_gap=gap)
        gcfg = dataclasses.replace(cfg, units=dataclasses.replace(cfg.units, segmenter=seg_cfg),
                                   hmm=dataclasses.replace(cfg.hmm, self_loop=loop))
        segs = {s: segment_split(features, s, gcfg) for s in splits}
        for s, g in segs.items():
            log.info("%s: %d utterances -> %d change-point segments (min_gap %d; %.0f s)", s, len(g.lengths),
                     len(g.feats), gap, time.time() - t0)
        candidates, runs = run_seeds(segs, sents, gcfg)
        for r in runs:
            for row in r.history:
                tracker.log({"min_gap": gap, **row})
        members = choose_members(runs, sel_split, lm, cfg.ensemble_tolerance)
        best = min((r.scores.get("weighted_lm_ppl", math.inf) for r in runs), default=math.inf)
        tried.append({"min_gap": gap, "self_loop": loop, "segments": len(segs[cfg.train_split].feats),
                      "best_weighted_lm_ppl": best if math.isfinite(best) else None,
                      "best_match_loss": candidates[0].match_loss})
        states.append((seg_cfg, segs, candidates, runs, members))
        if len(gaps) > 1:
            log.info("min_gap %d (self-loop %.2f): %d train segments, best refined seed's weighted_lm_ppl %.2f, "
                     "lowest matching loss %.4f", gap, loop, tried[-1]["segments"], best, candidates[0].match_loss)
    by = {"match_loss": "best_match_loss", "weighted_lm_ppl": "best_weighted_lm_ppl",
          "self_train": "self_train_weighted_lm_ppl"}[cfg.units.segmentation_by]
    if by == "self_train_weighted_lm_ppl":
        if len(tried) > 1:
            shutil.rmtree(outdir / "segmentations", ignore_errors=True)  # a previous run's candidates
            for t, (_, segs, _, runs, members) in zip(tried, states):
                folder = Path("segmentations") / f"min_gap-{t['min_gap']}"  # recorded relative to outdir
                t.update(self_train_score(features, outdir / folder, cfg,
                                          model_labels(segs, runs, members, [cfg.train_split])[cfg.train_split],
                                          text_dir, ref_dir), self_train_dir=str(folder / "self_train"))
                log.info("min_gap %d: self-trained model's weighted_lm_ppl %.2f", t["min_gap"],
                         t[by] if t[by] is not None else math.inf)
        else:
            by = "best_weighted_lm_ppl"  # one candidate: nothing to compare
    # one candidate without a phone LM; with several, every refined seed has its metric
    pick = min(range(len(tried)), key=lambda i: tried[i].get(by) if tried[i].get(by) is not None else math.inf)
    for i, t in enumerate(tried):
        t["chosen"] = i == pick
    seg_cfg, segs, candidates, runs, members = states[pick]
    columns = change_columns(meta, segs[cfg.train_split].feats.shape[1], cfg.units.segmenter.columns)
    model = DecipherModel(columns, seg_cfg, [Member(r.candidate.centroids, r.hmm) for r in members])
    hmm0 = runs[0].hmm
    hyps = model_labels(segs, runs, members, splits)
    refined = {r.seed: r for r in runs}
    scores: dict[str, Any] = {"members": [r.seed for r in members], "selection_split": sel_split}
    if lm is not None:
        scores.update(label_free_metrics(hyps[sel_split], lm, hmm0.phones))
    lineage = {"features": str(features.resolve()), "text": str(text_dir.resolve()), "inputs": input_hashes}
    (outdir / "seeds").mkdir(exist_ok=True)
    rows = []
    for c in candidates:
        r = refined.get(c.seed)
        row: dict[str, Any] = {"seed": c.seed, "match_loss": c.match_loss, "match_losses": c.match_losses,
                               "match_seconds": c.seconds, "refined": r is not None,
                               "member": any(r is m for m in members)}
        for s in splits:
            write_token_lines(outdir / "seeds" / f"seed-{c.seed}.{s}.table.hyp", c.table_hyps[s])
        if r is not None:
            row.update(r.scores)
            for s in splits:
                write_token_lines(outdir / "seeds" / f"seed-{c.seed}.{s}.hyp", r.hyps(s))
        rows.append(row)
    for s in splits:
        write_token_lines(outdir / f"{s}.hyp", hyps[s])
        write_token_lines(outdir / f"{s}.table.hyp", candidates[0].table_hyps[s])
    save_decipher_model(outdir / "decipher.pt", model, config=to_dict(cfg), lineage=lineage, scores=scores)
    # references are read only now, after every choice: printed and recorded, never used
    for s in splits:
        per = _per(ref_dir, s, hyps[s])
        if per is not None:
            scores[f"{s}_per"] = per["rate"]
        for row in rows:
            for key, name in (("table_per", f"seed-{row['seed']}.{s}.table.hyp"), ("per", f"seed-{row['seed']}.{s}.hyp")):
                if (outdir / "seeds" / name).is_file():
                    per = _per(ref_dir, s, read_token_lines(outdir / "seeds" / name))
                    if per is not None:
                        row[f"{s}_{key}"] = per["rate"]
    for row in rows:
        tracker.log({k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    summary = {"refined_by": "match_loss", "members_by": "weighted_lm_ppl" if lm is not None else "all refined",
               "min_gap": seg_cfg.min_gap, "segmentations": tried, "segmentation_by": cfg.units.segmentation_by,
               "self_train_dir": tried[pick].get("self_train_dir"),
               "ensemble_tolerance": cfg.ensemble_tolerance, "members": [r.seed for r in members], "model": scores,
               "seeds": rows,
               "history": [h for r in runs for h in r.history], "seconds": round(time.time() - t0, 1)}
    write_json(outdir / "selection.json", summary)
    save_config(cfg, outdir / "decipher.yaml")
    write_json(outdir / "meta.json", {"stage": "decipher", **tracker.info})
    for row in rows:
        log.info("seed %d%s: %s", row["seed"], " (member)" if row["member"] else " (refined)" if row["refined"] else "",
                 ", ".join(f"{k} {v:.4g}" for k, v in row.items()
                           if isinstance(v, float) and k.endswith(("per", "loglik_per_unit", "match_loss",
                                                                   "weighted_lm_ppl"))))
    log.info("model (members %s): %s", summary["members"],
             ", ".join(f"{k} {v:.4g}" for k, v in scores.items() if isinstance(v, float)))
    return summary
