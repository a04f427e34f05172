"""Benchmark ``w2vu synth``: wall time for N English utterances with 1 and 2 workers.

    .venv/bin/python scripts/bench_synth.py --num 200 --workers 1 2

Prints one row per run: utterances, workers, wall seconds (the whole command, including the
phonemizer and process start-up), utterances per second, minutes of audio, and the 1-minute
load average before the run (the development machine is shared, so note it with any number).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, nargs="+", default=[200])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sentences", type=Path, default=REPO / "data" / "sentences" / "en.txt")
    parser.add_argument("--lang", default="en-us")
    args = parser.parse_args()
    w2vu = Path(sys.executable).parent / "w2vu"
    print(f"{'utts':>5} {'workers':>7} {'wall_s':>7} {'utt/s':>6} {'audio_min':>9} {'load1':>6}")
    for n in args.num:
        for workers in args.workers:
            with tempfile.TemporaryDirectory() as tmp:
                load = os.getloadavg()[0]
                t0 = time.perf_counter()
                subprocess.run([str(w2vu), "synth", str(args.sentences), tmp, "--lang", args.lang, "--num-train", str(n),
                                "--num-valid", "0", "--num-unpaired", "100", "--workers", str(workers),
                                "--no-progress", "--no-wandb"], check=True, capture_output=True)
                wall = time.perf_counter() - t0
                lines = (Path(tmp) / "train.tsv").read_text().splitlines()[1:]
                minutes = sum(int(x.split("\t")[1]) for x in lines) / 16000 / 60
            print(f"{n:>5} {workers:>7} {wall:>7.1f} {n / wall:>6.1f} {minutes:>9.1f} {load:>6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
