#!/usr/bin/env python3
"""Speed of ``w2vu transcribe`` and its VADs in audio-hours per hour, and rVAD/silero agreement.

    .venv/bin/python scripts/bench_transcribe.py                 # 10 minutes of demo-like audio
    .venv/bin/python scripts/bench_transcribe.py --minutes 30 --sr 48000

The audio is demo-like: espeak-ng sentences (the demo's synthetic speech) joined by 1.5-4 s
pauses with white noise at -60 dBFS, written as stereo PCM-16 at ``--sr``. Rows:

- VAD only (rvad, silero, energy): :func:`wav2vec_u.transcribe.chunks.find_chunks` on the file,
  streamed in blocks (reading and resampling included);
- the whole command (VAD, MFCC, an untrained CTC model, Viterbi, all five files) per VAD method,
  on CPU with one torch thread, and with ``device=cuda`` when a GPU is there;
- agreement of rVAD and silero per 10 ms frame (raw speech regions, before chunking), and of each
  with the known speech: frame accuracy and chunk-edge error against the espeak boundaries.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SENTENCES = ["the river runs past the old mill every morning", "my grandmother told this story when we were young",
             "she carried water from the well to the house", "the children played near the fire until night",
             "we planted seeds when the rains came back", "he walked for three days to reach the market"]


def build_audio(d: Path, minutes: float, sr: int, seed: int = 0) -> tuple[Path, list[tuple[float, float]]]:
    import soundfile as sf

    from wav2vec_u.audio.io import SAMPLE_RATE, load_16k, resample
    from wav2vec_u.audio.vad import trim_edges

    utts = []
    for i, s in enumerate(SENTENCES):
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(d / f"u{i}.wav"), s], check=True)
        w = load_16k(d / f"u{i}.wav")
        a, b = trim_edges(w, SAMPLE_RATE, threshold_db=40)
        utts.append(0.5 * w[a:b])
    rng = np.random.default_rng(seed)
    path, spans, t, i = d / "bench.wav", [], 0, 0
    with sf.SoundFile(str(path), "w", sr, 2, subtype="PCM_16") as f:
        def put(x):
            x = x + 0.001 * rng.standard_normal(len(x)).astype(np.float32)
            y = resample(x, SAMPLE_RATE, sr)
            f.write(np.stack([y, 0.8 * y], axis=1))
        while t < minutes * 60 * SAMPLE_RATE:
            gap = int(rng.uniform(1.5, 4.0) * SAMPLE_RATE) // 160 * 160  # whole 10 ms: exact resampling joins
            put(np.zeros(gap, np.float32))
            t += gap
            u = utts[i % len(utts)]
            u = u[: len(u) // 160 * 160]
            i += 1
            spans.append((t / SAMPLE_RATE, (t + len(u)) / SAMPLE_RATE))
            put(u)
            t += len(u)
    return path, spans


def build_model(d: Path) -> tuple[Path, Path]:
    import torch

    from wav2vec_u.audio.extract import ExtractConfig
    from wav2vec_u.audio.features import FeatureConfig, build_extractor
    from wav2vec_u.config import to_dict
    from wav2vec_u.io import write_json
    from wav2vec_u.models.ctc import BLANK, CtcModel, CtcModelConfig, save_ctc_model

    torch.manual_seed(0)
    model = CtcModel(build_extractor(FeatureConfig()).dim, [BLANK] + [f"p{i}" for i in range(40)],
                     CtcModelConfig(hidden=128, layers=2, subsample=2))  # the self-train default size
    model.blank_offset = 5.0
    save_ctc_model(d / "ctc.pt", model)
    (d / "frames").mkdir(exist_ok=True)
    write_json(d / "frames" / "meta.json", {"kind": "frames", "extractor": "mfcc", "frame_rate": 100.0,
                                           "provenance": {"config": to_dict(ExtractConfig())}})
    return d / "ctc.pt", d / "frames"


def mask(regions, n_frames: int, hop: int = 160) -> np.ndarray:
    m = np.zeros(n_frames, bool)
    for a, b in regions:
        m[a // hop: -(-b // hop)] = True
    return m


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--sr", type=int, default=44_100)
    ap.add_argument("--skip-command", action="store_true")
    args = ap.parse_args()

    import torch

    from wav2vec_u.audio.io import SAMPLE_RATE
    from wav2vec_u.audio.vad import VadConfig
    from wav2vec_u.transcribe.chunks import ChunkConfig, find_chunks, speech_regions
    from wav2vec_u.transcribe.stream import Recording
    from wav2vec_u.transcribe.transcribe import TranscribeConfig, transcribe_archive

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        path, spans = build_audio(d, args.minutes, args.sr)
        rec = Recording(path)
        hours = rec.duration / 3600
        print(f"audio: {rec.duration / 60:.1f} min, stereo {rec.sr} Hz, {len(spans)} utterances; CPU, 1 torch thread")
        truth = mask([(int(a * SAMPLE_RATE), int(b * SAMPLE_RATE)) for a, b in spans], rec.num_samples // 160)
        print(f"\n{'stage':<34}{'wall s':>8}{'audio h/h':>11}")
        masks = {}
        for method in ("rvad", "silero", "energy"):
            cfg = ChunkConfig(vad=VadConfig(method=method, rvad_block_s=0.0))
            if method == "silero":
                from wav2vec_u.audio.silero import silero_probabilities

                silero_probabilities(np.zeros(2 * SAMPLE_RATE, np.float32))  # TorchScript's first calls optimise
            t = time.time()
            regions = speech_regions(rec, cfg)
            dt = time.time() - t
            masks[method] = mask(regions, len(truth))
            chunks = find_chunks(rec, cfg)
            edge = [max(abs(c[0] / SAMPLE_RATE - s[0]), abs(c[1] / SAMPLE_RATE - s[1]))
                    for c, s in zip(chunks, spans)] if len(chunks) == len(spans) else None
            print(f"{'VAD ' + method:<34}{dt:>8.1f}{hours * 3600 / dt:>11.0f}"
                  f"   frames vs truth {100 * (masks[method] == truth).mean():.1f}%, "
                  + (f"chunk edges max {max(edge):.3f} s" if edge else f"{len(chunks)} chunks for {len(spans)} utterances"))
        a, b = masks["rvad"], masks["silero"]
        print(f"\nrVAD vs silero: {100 * (a == b).mean():.1f}% of 10 ms frames agree; speech IoU "
              f"{(a & b).sum() / max(1, (a | b).sum()):.3f}; rVAD speech {a.mean():.3f}, silero {b.mean():.3f}, "
              f"truth {truth.mean():.3f} of the frames")
        if args.skip_command:
            return 0
        model, frames = build_model(d)
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        for device in devices:
            for method in ("rvad", "silero"):
                cfg = TranscribeConfig(device=device)
                cfg.chunks.vad.method = method
                t = time.time()
                transcribe_archive(model, [path], d / f"out-{device}-{method}", cfg, features_dir=frames,
                                   progress=False)
                dt = time.time() - t
                print(f"{f'w2vu transcribe ({method}, {device})':<34}{dt:>8.1f}{hours * 3600 / dt:>11.0f}")
        if not torch.cuda.is_available():
            print("(no GPU here: GPU rows need a machine with CUDA)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
