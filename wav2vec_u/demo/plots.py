"""The demo's figures (PNG, matplotlib's Agg backend, no display needed).

    from wav2vec_u.demo.plots import plot_curves, plot_confusion, plot_utterance
    plot_curves("curves.png", steps, {"PER": pers}, {"weighted LM ppl": ppls},
                baselines={"k-means by rank": 0.81})
    plot_confusion("confusion.png", stats.alignments, phones)
    plot_utterance("utt.png", wav, 16000, ref=[("h", 0.10, 0.18), ...], hyp=[("h", 0.12, 0.20), ...])

- ``plot_curves``: PER (left axis, %) and the unsupervised selection metric (right axis, log)
  against updates, with the chance baselines as horizontal lines;
- ``plot_confusion``: reference phone (rows) against hypothesis phone (columns) from the
  scorer's alignments, rows normalised, with a deletion column and an insertion row;
- ``plot_utterance``: one waveform with the reference phones at espeak-ng's timings above and
  the predicted phones at their segment times below.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display on a CI machine
import matplotlib.pyplot as plt  # noqa: E402

from wav2vec_u.io import atomic_path  # noqa: E402
from wav2vec_u.audio.manifest import manifest_paths

if TYPE_CHECKING:
    from wav2vec_u.demo.config import DemoConfig

log = logging.getLogger(__name__)

DEL, INS = "(del)", "(ins)"


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def plot_curves(path: str | Path, steps: Sequence[int], left: Mapping[str, Sequence[float]],
                right: Mapping[str, Sequence[float]] | None = None,
                baselines: Mapping[str, float] | None = None, title: str = "") -> Path:
    """Rates (fractions, shown in %) on the left axis, a selection metric on a log right axis."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    styles = iter(["-o", "-s", "-^", "-d"])
    for name, ys in left.items():
        ax.plot(steps[:len(ys)], [100 * y if y is not None else np.nan for y in ys], next(styles, "-"),
                ms=3, label=name)
    for i, (name, y) in enumerate((baselines or {}).items()):
        ax.axhline(100 * y, ls="--", lw=1, color=f"C{i + 3}", label=f"{name} ({100 * y:.1f}%)")
    ax.set_xlabel("updates")
    ax.set_ylabel("error rate (%)")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if right:
        ax2 = ax.twinx()
        for i, (name, ys) in enumerate(right.items()):
            vals = [y if y is not None and np.isfinite(y) and y > 0 else np.nan for y in ys]
            ax2.plot(steps[:len(vals)], vals, ":", marker=".", color=f"C{i + 7}", label=f"{name} (right)")
        if any(np.isfinite(v) for ys in right.values() for v in ys if v is not None):
            ax2.set_yscale("log")
        ax2.set_ylabel(", ".join(right))
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, fontsize=8, loc="upper right")
    ax.set_title(title or "PER and unsupervised metric against updates")
    return _save(fig, path)


def confusion_counts(alignments: Sequence, phones: Sequence[str] | None = None):
    """(labels_rows, labels_cols, counts) from alignments with ``.pairs`` of (ref, hyp, op)."""
    counts: Counter = Counter()
    seen: Counter = Counter()
    for a in alignments:
        for ref, hyp, _ in a.pairs:
            counts[(ref if ref is not None else INS, hyp if hyp is not None else DEL)] += 1
            if ref is not None:
                seen[ref] += 1
    if phones is None:
        phones = [p for p, _ in seen.most_common()]
    extra = sorted({r for r, _ in counts if r not in phones and r != INS} |
                   {h for _, h in counts if h not in phones and h != DEL})
    labels = list(phones) + extra
    rows, cols = labels + [INS], labels + [DEL]
    ri, ci = {r: i for i, r in enumerate(rows)}, {c: i for i, c in enumerate(cols)}
    m = np.zeros((len(rows), len(cols)), dtype=np.int64)
    for (r, h), n in counts.items():
        m[ri[r], ci[h]] += n
    return rows, cols, m


def plot_confusion(path: str | Path, alignments: Sequence, phones: Sequence[str] | None = None,
                   title: str = "") -> Path:
    """Row-normalised confusion of reference (rows) against hypothesis (columns) phones."""
    rows, cols, m = confusion_counts(alignments, phones)
    keep = m.sum(1) > 0  # phones never in a reference add only empty rows
    keep[-1] = True
    rows = [r for r, k in zip(rows, keep) if k]
    m = m[keep]
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    size = max(6.0, 0.22 * len(cols) + 2)
    fig, ax = plt.subplots(figsize=(size, max(5.0, 0.22 * len(rows) + 2)))
    im = ax.imshow(norm, cmap="viridis", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_xlabel("hypothesis phone")
    ax.set_ylabel("reference phone")
    fig.colorbar(im, ax=ax, fraction=0.03, label="fraction of the reference phone's occurrences")
    ax.set_title(title or "phone confusion (rows normalised)")
    return _save(fig, path)


def plot_utterance(path: str | Path, wav: np.ndarray, sample_rate: int,
                   ref: Sequence[tuple[str, float, float]], hyp: Sequence[tuple[str, float, float]],
                   title: str = "", ref_label: str = "reference (espeak-ng timings)",
                   hyp_label: str = "predicted (segment times)") -> Path:
    """Waveform with two phone tiers: ``(phone, start_s, end_s)`` per phone."""
    dur = len(wav) / sample_rate
    fig, (ax_w, ax_t) = plt.subplots(2, 1, figsize=(max(8.0, 3.0 * dur + 3), 4.2), sharex=True,
                                     gridspec_kw={"height_ratios": [2.2, 1.3]})
    t = np.arange(len(wav)) / sample_rate
    ax_w.plot(t, wav, lw=0.4, color="0.3")
    ax_w.set_ylabel("amplitude")
    ax_w.set_xlim(0, dur)
    for _, s, _e in ref:
        ax_w.axvline(s, color="C0", lw=0.5, alpha=0.5)
    ax_t.set_ylim(0, 2)
    ax_t.set_yticks([0.5, 1.5], [hyp_label, ref_label], fontsize=8)
    for tier_y, items, color in ((1.5, ref, "C0"), (0.5, hyp, "C3")):
        for i, (ph, s, e) in enumerate(items):
            ax_t.add_patch(plt.Rectangle((s, tier_y - 0.4), max(e - s, 1e-3), 0.8, fill=True,
                                         alpha=0.15 + 0.1 * (i % 2), color=color, lw=0))
            narrow = (e - s) < 0.045  # short runs: small vertical labels so neighbours do not overlap
            ax_t.text((s + e) / 2, tier_y, ph, ha="center", va="center", fontsize=6 if narrow else 8,
                      rotation=90 if narrow else 0)
    ax_t.set_xlabel("time (s)")
    ax_w.set_title(title or "predicted and reference phones")
    return _save(fig, path)


def make_plots(cfg: DemoConfig, corpus: Path, train_dir: Path | None, decode_dir: Path, stats,
               baselines: dict[str, float], outdir: Path, system: str = "selected checkpoint") -> list[Path]:
    """curves.png (the GAN's validation log, when a GAN ran), confusion.png (``system``'s alignments),
    utterance.png (one valid utterance with ``decode_dir``'s timed phones)."""
    out = []
    # 1. PER and the unsupervised metric against updates (the trainer's validation log)
    steps, per, ppl = [], [], []
    metrics = train_dir / "metrics.jsonl" if train_dir is not None else None
    if metrics is not None and metrics.is_file():
        import json  # noqa: PLC0415

        for line in metrics.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if "valid_per" in rec or "valid_weighted_lm_ppl" in rec:
                steps.append(rec.get("step", len(steps)))
                per.append(rec.get("valid_per"))
                ppl.append(rec.get("valid_weighted_lm_ppl"))
    if steps:
        out.append(plot_curves(outdir / "curves.png", steps, {"PER (valid, for the plot only)": per},
                                     {"weighted LM ppl (selection)": ppl}, baselines=baselines,
                                     title=f"{cfg.lang}: training curve (run {train_dir.name})"))
    # 2. confusion matrix of the selected checkpoint
    out.append(plot_confusion(outdir / "confusion.png", stats.alignments,
                                    title=f"{cfg.lang}: phone confusion, {system}"))
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

    from wav2vec_u.audio.io import SAMPLE_RATE, load_16k  # noqa: PLC0415

    wav_path = manifest_paths(corpus / "valid.tsv")[i]
    wav = load_16k(wav_path)
    rec = json.loads((corpus / "valid.timings.jsonl").read_text(encoding="utf-8").splitlines()[i])
    ref = [(p, t[0], t[1]) for p, t in zip(rec["phones"], rec["timings"]) if t is not None]
    pred = json.loads((decode_dir / "valid.timestamps.jsonl").read_text(encoding="utf-8").splitlines()[i])
    if pred["unit"] != "seconds":
        raise ValueError("the decoder wrote no times in seconds (no cluster file or frame rate)")
    hyp = [(tok, s, e) for tok, s, e in pred["phones"]]
    return plot_utterance(path, wav, SAMPLE_RATE, ref, hyp,
                                ref_label=f"reference (espeak-ng, {rec.get('timing_status', '')})",
                                title=f"{lang}: valid utterance {i}: {rec.get('text', wav_path.name)}")
