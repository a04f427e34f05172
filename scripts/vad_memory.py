"""Peak memory of VAD on one long file: how much `w2vu vad` needs per worker.

    python scripts/vad_memory.py --minutes 20              # makes the file, runs remove_silence
    /usr/bin/time -v python scripts/vad_memory.py --minutes 20 --wav /tmp/long.wav

The file is espeak-ng speech (sentences of the shipped English list with 0.2-2 s pauses and
-50 dBFS hiss), written once to ``--wav`` and reused. The script prints the tracemalloc peak
(numpy reports its buffers to tracemalloc) and the process's peak RSS; rVAD's own frame
matrices dominate both (see the docstring of wav2vec_u/audio/vad.py).
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000


def make_long_wav(path: Path, minutes: float, seed: int = 0) -> None:
    from wav2vec_u.audio.io import resample
    from wav2vec_u.io import resource_path
    from wav2vec_u.synth.espeak import Espeak

    rng = np.random.default_rng(seed)
    sentences = [s for s in resource_path("data", "sentences", "en.txt").read_text().splitlines() if s.strip()][:40]
    engine = Espeak()
    clips = []
    for s in sentences:
        utt = engine.synthesize(s, "en-us+m3", rate=160)
        clips.append(resample(utt.audio.astype(np.float32) / 32768.0, utt.sample_rate, SR))
    total, parts = int(minutes * 60 * SR), []
    n = 0
    while n < total:
        clip = clips[int(rng.integers(len(clips)))]
        pause = np.zeros(int(rng.uniform(0.2, 2.0) * SR), np.float32)
        parts += [pause, clip]
        n += len(pause) + len(clip)
    wav = np.concatenate(parts)[:total]
    wav += 0.003 * rng.standard_normal(len(wav)).astype(np.float32)
    sf.write(path, wav, SR, subtype="PCM_16")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--wav", type=Path, default=Path("/tmp/w2vu_vad_long.wav"))
    parser.add_argument("--method", default="rvad", choices=["rvad", "energy"])
    parser.add_argument("--no-tracemalloc", action="store_true", help="only the RSS (tracemalloc slows numpy down)")
    args = parser.parse_args()
    if not args.wav.is_file() or abs(sf.info(str(args.wav)).duration - args.minutes * 60) > 1:
        make_long_wav(args.wav, args.minutes)

    from wav2vec_u.audio.io import load_16k
    from wav2vec_u.audio.vad import VadConfig, remove_silence

    wav = load_16k(args.wav)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if not args.no_tracemalloc:
        tracemalloc.start()
    t0 = time.perf_counter()
    out, kept = remove_silence(wav, SR, VadConfig(method=args.method))
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if not args.no_tracemalloc else float("nan")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    audio_mb = wav.nbytes / 2**20
    print(f"{len(wav) / SR / 60:.1f} min of audio ({audio_mb:.0f} MB float32): kept {len(out) / SR:.1f} s in "
          f"{len(kept)} regions, {seconds:.1f} s")
    print(f"tracemalloc peak during remove_silence: {peak:.0f} MiB ({peak / audio_mb:.1f}x the audio)")
    print(f"peak RSS: {rss:.0f} MiB (before remove_silence: {base:.0f} MiB)")


if __name__ == "__main__":
    main()
