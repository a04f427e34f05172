"""The demo's results table: error rates next to their baselines, time per stage, peak memory.

A run collects rows and stage timings into a plain dict and writes it three ways: ``results.json``
(for machines), ``results.md`` (for a README or an issue) and a plain-text table on the console::

    clock = StageClock()
    with clock.stage("features") as st:
        st["cached"] = do_features()         # True when the stage was skipped as current
    results = new_results(lang="en", run_dir="runs/demo-en")
    add_row(results, "per", "GAN (Viterbi)", stats.to_dict(), note="selected without labels")
    finish_results(results, clock)
    write_results("runs/demo-en", results)   # results.json + results.md
    print(format_console(results))

Peak memory is ``resource.getrusage(...).ru_maxrss`` (KiB on Linux) of this process and, separately,
of its finished child processes (espeak-ng, lmplz); the figure is the high-water mark *so far*,
read after each stage.
"""

from __future__ import annotations

import contextlib
import math
import resource
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from wav2vec_u.io import atomic_write_text, write_json


def peak_rss_mib() -> tuple[float, float]:
    """(this process, its largest finished child) peak resident memory in MiB."""
    scale = 1024.0 if sys.platform != "darwin" else 1024.0 * 1024.0  # Linux KiB, macOS bytes
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / scale
    return own, kids


class StageClock:
    """Wall time and memory high-water mark per stage, in the order the stages ran."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.start = time.perf_counter()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[dict[str, Any]]:
        rec: dict[str, Any] = {"stage": name, "cached": False}
        t0 = time.perf_counter()
        try:
            yield rec
        finally:
            own, kids = peak_rss_mib()
            rec["seconds"] = round(time.perf_counter() - t0, 2)
            rec["peak_rss_mib"] = round(own, 1)
            rec["peak_rss_children_mib"] = round(kids, 1)
            self.records.append(rec)

    @property
    def total_seconds(self) -> float:
        return round(time.perf_counter() - self.start, 2)


def new_results(**info: Any) -> dict[str, Any]:
    return {"info": dict(info), "per": [], "wer": [], "selection": {}, "stages": []}


def add_row(results: dict[str, Any], table: str, system: str, stats: dict[str, Any] | None,
            note: str = "") -> None:
    """One row of the PER or WER table. ``stats`` is ``ErrorStats.to_dict()`` or None (not run)."""
    if table not in ("per", "wer"):
        raise ValueError(f"unknown results table {table!r} (per or wer)")
    results[table].append({"system": system, **(stats or {"rate": None}), "note": note})


def finish_results(results: dict[str, Any], clock: StageClock) -> dict[str, Any]:
    own, kids = peak_rss_mib()
    results["stages"] = list(clock.records)
    results["total_seconds"] = clock.total_seconds
    results["peak_rss_mib"] = round(own, 1)
    results["peak_rss_children_mib"] = round(kids, 1)
    return results


def _pct(rate: Any) -> str:
    if rate is None or (isinstance(rate, float) and not math.isfinite(rate)):
        return "—"
    return f"{100 * rate:.1f}"


def _rows(results: dict[str, Any], table: str) -> list[list[str]]:
    rows = []
    for r in results.get(table, []):
        detail = ""
        if r.get("rate") is not None and "ref_len" in r:
            detail = f"{r['errors']}/{r['ref_len']} (S {r['sub']} I {r['ins']} D {r['del']})"
        rows.append([r["system"], _pct(r.get("rate")), detail, r.get("note", "")])
    return rows


def _stage_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for s in results.get("stages", []):
        computed = s.get("computed_seconds")
        rows.append([s["stage"], f"{s['seconds']:.1f}", "cached" if s.get("cached") else "ran",
                     "" if computed is None else f"{computed:.1f}",
                     f"{s['peak_rss_mib']:.0f}", f"{s.get('peak_rss_children_mib', 0):.0f}"])
    return rows


def _selection_rows(results: dict[str, Any]) -> list[list[str]]:
    return [[k, f"{v:.4g}" if isinstance(v, float) else str(v)] for k, v in results.get("selection", {}).items()]


def _plain_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in r] for r in rows]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in esc]
    return "\n".join(out)


_ER_HEADER = {"per": ["system", "PER %", "errors", "note"], "wer": ["system", "WER %", "errors", "note"]}
# seconds: this invocation; computed s: when the stage's cached outputs were made
_STAGE_HEADER = ["stage", "seconds", "status", "computed s", "peak MiB", "children MiB"]


def _sections(results: dict[str, Any], table) -> list[tuple[str, str]]:
    sections = []
    split = results.get("info", {}).get("split", "valid")
    sections.append((f"Phone error rate ({split})", table(_ER_HEADER["per"], _rows(results, "per"))))
    if results.get("wer"):
        sections.append((f"Word error rate ({split})", table(_ER_HEADER["wer"], _rows(results, "wer"))))
    if results.get("selection"):
        sections.append(("Selected checkpoint (chosen without labels)", table(["item", "value"], _selection_rows(results))))
    if not results.get("stages"):  # a recipe's table (w2vu results): its stages ran as separate commands
        return sections
    stage_text = table(_STAGE_HEADER, _stage_rows(results))
    total = results.get("total_seconds")
    if total is not None:
        computed = sum(s.get("computed_seconds") or 0.0 for s in results.get("stages", []))
        stage_text += (f"\n\ntotal {total:.1f} s this run ({computed:.1f} s to compute every stage); peak memory {results.get('peak_rss_mib', 0):.0f} MiB "
                       f"(children {results.get('peak_rss_children_mib', 0):.0f} MiB)")
    sections.append(("Time and memory per stage", stage_text))
    return sections


def format_console(results: dict[str, Any]) -> str:
    info = results.get("info", {})
    head = " ".join(f"{k}={v}" for k, v in info.items())
    parts = [f"== w2vu demo results: {head}"]
    for title, body in _sections(results, _plain_table):
        parts += ["", f"-- {title}", body]
    return "\n".join(parts) + "\n"


def format_markdown(results: dict[str, Any]) -> str:
    info = results.get("info", {})
    parts = ["# w2vu demo results", ""]
    parts += [f"- {k}: `{v}`" for k, v in info.items()]
    for title, body in _sections(results, _md_table):
        parts += ["", f"## {title}", "", body]
    return "\n".join(parts) + "\n"


def write_results(outdir: str | Path, results: dict[str, Any]) -> tuple[Path, Path]:
    outdir = Path(outdir)
    js = write_json(outdir / "results.json", results)
    md = atomic_write_text(outdir / "results.md", format_markdown(results))
    return js, md
