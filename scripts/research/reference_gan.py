#!/usr/bin/env python
"""Oracle only: drive fairseq's own wav2vec-U GAN (the "reference") on our data and summarise its log.

    python scripts/research/reference_gan.py FEATS TEXT OUT [--venv ../fsf] [--seed 1] [--max-update 2000]
        [--batch-size 64] [--discriminator-dim 128] [--validate-every 500] [--log-every 1] [KEY=VALUE ...]

FEATS is a segment-feature dir ({train,valid}.npy/.lengths/.phn, as `w2vu train-gan --features` reads);
TEXT a prepare-text dir (dict.phn.txt, phones.txt). The script binarises TEXT/phones.txt with
fairseq-preprocess into OUT/text_bin (once), runs fairseq-hydra-train with the reference's `w2vu` config
and the overrides above (one thread: OMP_NUM_THREADS=1), and writes OUT/summary.json and OUT/train.csv:
per validation the reference's valid UER (its own metric with task.kenlm_path=null), per logged update
its gnorm (fairseq: the norm of all gradients, G's and D's together, after dividing them by the sample
size and before clipping at clip_norm) and whether it was a D or a G turn. `--summarise-only` re-reads
an existing OUT. Extra KEY=VALUE arguments are passed to fairseq-hydra-train as they are.

It is a side-by-side check, never a dependency: nothing in wav2vec_u/ or tests/ imports or calls it, and
it needs only the standard library here. The reference lives in its own virtual environment, built as
/work/shared/reference/README.md (the project's shared/reference/README.md) describes: a Python 3.11
venv with `torch==2.13.0` pinned, `pip install --no-build-isolation fairseq-fixed==0.12.3.1`, two
dataclass defaults patched to `field(default_factory=...)`, and a folder holding a symlink `examples` ->
fairseq's site-packages `examples` (pass it with --examples-root, default VENV/examples_root).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages/fairseq"))
    if not found:
        raise SystemExit(f"no fairseq in {venv}: build it as shared/reference/README.md says")
    return found[0].parent


def binarise_text(venv: Path, text: Path, dest: Path) -> Path:
    """fairseq-preprocess --only-source over TEXT/phones.txt with TEXT/dict.phn.txt as the dictionary."""
    if (dest / "train.bin").is_file():
        return dest
    cmd = [str(venv / "bin" / "fairseq-preprocess"), "--only-source", "--trainpref", str(text / "phones.txt"),
           "--destdir", str(dest), "--srcdict", str(text / "dict.phn.txt"), "--workers", "1"]
    subprocess.run(cmd, check=True, env=_env(venv))
    return dest


def _env(venv: Path, examples_root: Path | None = None) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    if examples_root is not None:
        env["PYTHONPATH"] = f"{examples_root}:{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(examples_root)
    return env


def input_dim(feats: Path) -> int:
    """Feature dimension from the .npy header (no numpy needed)."""
    with open(feats / "train.npy", "rb") as f:
        head = f.read(256).decode("latin1")
    shape = re.search(r"'shape': \((\d+), (\d+)\)", head)
    if shape is None:
        raise SystemExit(f"cannot read the shape of {feats / 'train.npy'}")
    return int(shape.group(2))


def train(a: argparse.Namespace, text_bin: Path) -> float:
    fs = site_packages(a.venv) / "fairseq"
    unsup = fs / "examples" / "wav2vec" / "unsupervised"
    overrides = [
        f"hydra.run.dir={a.out}", f"checkpoint.save_dir={a.out}", f"task.data={a.feats}", f"task.text_data={text_bin}",
        "task.kenlm_path=null", f"common.user_dir={unsup}", "common.cpu=true", f"common.seed={a.seed}",
        "common.log_format=json", f"common.log_interval={a.log_every}", "dataset.num_workers=0",
        f"dataset.batch_size={a.batch_size}", f"dataset.validate_interval_updates={a.validate_every}",
        f"checkpoint.save_interval_updates={a.validate_every}", "checkpoint.keep_interval_updates=100",
        "checkpoint.best_checkpoint_metric=uer", f"optimization.max_update={a.max_update}",
        f"model.input_dim={input_dim(a.feats)}", f"model.discriminator_dim={a.discriminator_dim}",
        # the reference's w2vu.yaml sets the group lrs as lists and amsgrad, which its Adam config does not take
        "+optimizer.groups.generator.optimizer.lr=[0.0004]", "+optimizer.groups.discriminator.optimizer.lr=[0.0005]",
        "~optimizer.groups.generator.optimizer.amsgrad", "~optimizer.groups.discriminator.optimizer.amsgrad",
        *a.overrides,
    ]
    cmd = [str(a.venv / "bin" / "fairseq-hydra-train"), "--config-dir", str(unsup / "config" / "gan"),
           "--config-name", "w2vu", *overrides]
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "command.txt").write_text(" ".join(cmd) + "\n")
    t0 = time.time()
    with open(a.out / "stdout.log", "w") as log:
        subprocess.run(cmd, check=True, env=_env(a.venv, a.examples_root), stdout=log, stderr=subprocess.STDOUT)
    return time.time() - t0


_JSON_LINE = re.compile(r"\[(train_inner|valid|train)\]\[INFO\] - (\{.*\})\s*$")


def parse_log(path: Path) -> tuple[list[dict], list[dict]]:
    """(train_inner rows, valid rows) from fairseq's json-format log; values converted to float."""
    inner, valid = [], []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _JSON_LINE.search(line)
        if m is None:
            continue
        rec = {k: _num(v) for k, v in json.loads(m.group(2)).items()}
        if m.group(1) == "train_inner":
            inner.append(rec)
        elif m.group(1) == "valid":
            valid.append(rec)
    return inner, valid


def _num(v: object) -> object:
    try:
        return float(v)  # fairseq's json logger writes most values as formatted strings
    except (TypeError, ValueError):
        return v


def turn(rec: dict) -> str:
    """D or G (log_interval 1): a D turn logs loss_dense_d/loss_token_d, a G turn loss_dense_g ("" if unclear)."""
    d = rec.get("loss_dense_d") is not None or rec.get("loss_token_d") is not None
    g = rec.get("loss_dense_g") is not None  # the keys of the other turn are logged as null
    return "D" if d and not g else "G" if g and not d else ""


def summarise(out: Path, log_every: int, wall_s: float | None = None) -> dict:
    log = out / "hydra_train.log"
    if not log.is_file():
        log = out / "stdout.log"
    inner, valid = parse_log(log)
    rows = [{"update": int(r["num_updates"]), "turn": turn(r) if log_every == 1 else "",
             "gnorm": r.get("gnorm"), "clip": r.get("clip"), "loss": r.get("loss")} for r in inner]
    with open(out / "train.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["update", "turn", "gnorm", "clip", "loss"])
        w.writeheader()
        w.writerows(rows)

    def med(sel: list[dict]) -> float | None:
        vals = [r["gnorm"] for r in sel if isinstance(r["gnorm"], float)]
        return statistics.median(vals) if vals else None

    summary = {
        "log": str(log), "wall_s": wall_s,
        "valid": [{"update": int(v["valid_num_updates"]), "uer": v.get("valid_uer"),
                   "vocab_seen_pct": v.get("valid_vocab_seen_pct")} for v in valid if "valid_num_updates" in v],
        "gnorm_median": {"all": med(rows), "D": med([r for r in rows if r["turn"] == "D"]),
                         "G": med([r for r in rows if r["turn"] == "G"])},
        "clip_pct_mean": (statistics.fmean(r["clip"] for r in rows if isinstance(r["clip"], float))
                          if any(isinstance(r["clip"], float) for r in rows) else None),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("feats", type=Path), ap.add_argument("text", type=Path), ap.add_argument("out", type=Path)
    ap.add_argument("--venv", type=Path, default=Path("../fsf"), help="the reference's virtual environment")
    ap.add_argument("--examples-root", type=Path, default=None,
                    help="folder holding the `examples` symlink (default VENV/examples_root)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-update", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=160, help="the reference's w2vu: 160")
    ap.add_argument("--discriminator-dim", type=int, default=384, help="the reference's w2vu: 384")
    ap.add_argument("--validate-every", type=int, default=500, help="also its checkpoint interval")
    ap.add_argument("--log-every", type=int, default=1, help="1 logs each update's gnorm and its D/G turn")
    ap.add_argument("--summarise-only", action="store_true")
    ap.add_argument("overrides", nargs="*", help="more fairseq-hydra-train overrides, KEY=VALUE")
    a = ap.parse_args()
    a.venv, a.feats, a.text, a.out = a.venv.resolve(), a.feats.resolve(), a.text.resolve(), a.out.resolve()
    a.examples_root = (a.examples_root or a.venv / "examples_root").resolve()
    wall = None
    if not a.summarise_only:
        text_bin = binarise_text(a.venv, a.text, a.out / "text_bin")
        wall = train(a, text_bin)
    print(json.dumps(summarise(a.out, a.log_every, wall), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
