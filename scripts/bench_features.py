#!/usr/bin/env python3
"""Benchmark of the audio feature stages; prints a table (no downloads, random models).

    .venv/bin/python scripts/bench_features.py                      # defaults below
    .venv/bin/python scripts/bench_features.py --frames 200000 --niter 5 --skip-hf

Rows:
- extractors in audio-seconds per second: MFCC (195-dim), log-mel (80-dim), a randomly
  initialised Base-size Hugging Face Wav2Vec2 (12 blocks, 768 dims, layer 8) saved with
  save_pretrained and loaded offline, and our plain-torch fairseq encoder with the same Base
  structure (random weights, no checkpoint file);
- segment features on ``--frames`` x ``--dim`` frames (a Gaussian mixture, utterances of 300-700
  frames): PCA fit and apply, k-means (K=128; ``--niter``/``--nredo`` printed, the paper's 50 x 3
  extrapolated linearly), cluster assignment, merge, mean-pool.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np



def _audio(seconds: float, utt_seconds: float, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    n = max(1, int(seconds / utt_seconds))
    t = np.arange(int(utt_seconds * 16000)) / 16000
    return [(0.3 * np.sin(2 * np.pi * rng.uniform(100, 3000) * t * (1 + t)) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
            for _ in range(n)]


def _rate(fn, wavs: list[np.ndarray]) -> tuple[float, float]:
    fn(wavs[:1])  # warm-up (lazy imports, allocator)
    t0 = time.perf_counter()
    fn(wavs)
    elapsed = time.perf_counter() - t0
    return sum(len(w) for w in wavs) / 16000 / elapsed, elapsed


def bench_extractors(args, rows: list) -> None:
    from wav2vec_u.audio.features import FeatureConfig, build_extractor
    from wav2vec_u.audio.spectral import SpectralConfig

    wavs = _audio(args.audio_seconds, 4.0)
    for name, cfg in [("mfcc (195-dim, 100 Hz)", FeatureConfig(extractor="mfcc")),
                      ("logmel (80-dim, 100 Hz)", FeatureConfig(extractor="logmel",
                                                               spectral=SpectralConfig(n_mels=80, deltas=0, context=0)))]:
        ex = build_extractor(cfg)
        rate, el = _rate(ex.extract_batch, wavs)
        rows.append([name, f"{len(wavs)} x 4 s", f"{rate:,.0f} audio-s/s", f"{el:.2f} s"])
    if args.skip_hf:
        return
    import torch

    wavs = _audio(args.ssl_seconds, 4.0, seed=1)
    os.environ["HF_HUB_OFFLINE"] = "1"
    import transformers

    with tempfile.TemporaryDirectory() as d:
        torch.manual_seed(0)
        model = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config())  # Base: 12 x 768, GroupNorm conv
        model.save_pretrained(d)
        del model
        ex = build_extractor(FeatureConfig(extractor=f"hf:{d}", layer=8))
        rate, el = _rate(ex.extract_batch, wavs)
        rows.append([f"hf: random Wav2Vec2 Base, layer 8 (CPU fp32, {torch.get_num_threads()} threads)",
                     f"{len(wavs)} x 4 s", f"{rate:,.1f} audio-s/s", f"{el:.2f} s"])
    from wav2vec_u.audio.fairseq_w2v2 import W2V2Arch, Wav2Vec2Encoder

    arch = W2V2Arch(conv_layers=[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2)
    torch.manual_seed(0)
    enc = Wav2Vec2Encoder(arch).eval()
    enc.encoder.layers = enc.encoder.layers[:9]

    @torch.inference_mode()
    def run(ws):
        for w in ws:
            enc(torch.from_numpy(w)[None], layer=8)

    rate, el = _rate(run, wavs)
    rows.append(["fairseq: plain-torch Base structure, layer 8 (CPU fp32)", f"{len(wavs)} x 4 s",
                 f"{rate:,.1f} audio-s/s", f"{el:.2f} s"])


def bench_segments(args, rows: list) -> None:
    from wav2vec_u.audio.segments import apply_pca, assign_clusters, fit_kmeans, fit_pca, mean_pool, merge_segments

    rng = np.random.default_rng(0)
    n, d = args.frames, args.dim
    centres = rng.standard_normal((256, d)).astype(np.float32) * 2
    lengths = []
    while sum(lengths) < n:
        lengths.append(int(rng.integers(300, 700)))
    lengths[-1] -= sum(lengths) - n
    # piecewise-constant "phones" of 2-8 frames plus noise, so merging has something to merge
    runs = rng.integers(2, 9, size=n // 2)
    labels = np.repeat(rng.integers(0, 256, size=len(runs)), runs)[:n]
    x = centres[labels]
    x += rng.standard_normal((n, d), dtype=np.float32)
    timings = {}
    t0 = time.perf_counter()
    a, b = fit_pca(x, min(args.pca_dim, d))
    timings["PCA fit"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    y = apply_pca(x, a, b)
    timings["PCA apply"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    c = fit_kmeans(x, k=args.k, niter=args.niter, nredo=args.nredo, seed=1)
    timings[f"k-means K={args.k}, {args.niter} iter x {args.nredo} restart(s)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ids = assign_clusters(x, c)
    timings["assign clusters"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    seg, seg_len = merge_segments(y, ids, lengths)
    timings["merge runs"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pooled, pooled_len = mean_pool(seg, seg_len, 0.5)
    timings["mean_pool 0.5"] = time.perf_counter() - t0
    size = f"{n:,} x {d}"
    for name, sec in timings.items():
        rows.append([f"segments: {name}", size, f"{n / sec:,.0f} frames/s", f"{sec:.2f} s"])
    km = next(v for k, v in timings.items() if k.startswith("k-means"))
    paper = km * (50 * 3) / (args.niter * args.nredo)
    rows.append(["segments: total (as run)", size, f"{len(lengths):,} utts -> {sum(seg_len):,} seg -> {sum(pooled_len):,}",
                 f"{sum(timings.values()):.2f} s"])
    rows.append(["segments: k-means at the paper's 50 iter x 3 restarts (extrapolated)", size, "", f"~{paper:.0f} s"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--audio-seconds", type=float, default=120.0, help="audio for MFCC/log-mel")
    p.add_argument("--ssl-seconds", type=float, default=20.0, help="audio for the Base-size SSL models")
    p.add_argument("--frames", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--pca-dim", type=int, default=512)
    p.add_argument("--k", type=int, default=128)
    p.add_argument("--niter", type=int, default=10)
    p.add_argument("--nredo", type=int, default=1)
    p.add_argument("--threads", type=int, default=2, help="torch threads for the SSL models")
    p.add_argument("--skip-hf", action="store_true", help="skip the SSL model rows")
    p.add_argument("--skip-segments", action="store_true")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rows: list[list[str]] = []
    bench_extractors(args, rows)
    if not args.skip_segments:
        bench_segments(args, rows)
    head = ["stage", "data", "throughput", "time"]
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(4)]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    print(f"\n{os.cpu_count()} CPUs visible, torch {torch.__version__}, {torch.get_num_threads()} torch threads; "
          "timings on a shared machine are noisy.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
