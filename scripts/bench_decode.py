"""Word decoding side by side: our pure-Python lexicon search and flashlight-text's, same posteriors, same LM.

    .venv/bin/python scripts/bench_decode.py RUN                   # RUN: a demo or recipe run folder
    .venv/bin/python scripts/bench_decode.py runs/demo-en --utts 100 --workers 1 2

RUN must hold ``text/`` (lexicon.lst, lm.words.4.bin), ``corpus/valid.phn`` and ``valid.wrd``
(references), and for the "gan" posteriors ``train/best.pt`` with ``segments/``. Two kinds of
posteriors are decoded:

- ``gan``: the run's generator on the valid segments (whatever it learned);
- ``noisy-ref``: the reference phones, one position per phone (as joined GAN segments), a
  <SIL> between words with probability 0.3, plus Gaussian noise of ``--noise`` on logits of
  peak 3: a model at a known error rate, so the WER column means something even when the run's
  GAN is at chance.

Both searches get the same weights (``--lm-weight``, ``--word-score``), beam 50 and the same
LM object; prints utterances per second, WER and PER of each, and the speed ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from wav2vec_u.decode.decode import load_acoustic_model
from wav2vec_u.decode.flashlight_decoder import flashlight_available, lexicon_decoder
from wav2vec_u.decode.lexicon_decoder import DecoderConfig, decode_all, load_word_lm
from wav2vec_u.decode.viterbi import viterbi_decode
from wav2vec_u.audio.features_io import load_features
from wav2vec_u.metrics import error_rate, normalize_tokens, normalize_words
from wav2vec_u.text.lexicon import read_pronunciations
from wav2vec_u.tokens import SIL, read_token_lines, split_by_lengths


def noisy_reference(ref_words: list[list[str]], lexicon: dict, phones: list[str], noise: float,
                    rng: np.random.Generator) -> list[np.ndarray]:
    index = {p: i for i, p in enumerate(phones)}
    out = []
    for words in ref_words:
        seq = [SIL]
        for w in words:
            pron = [p for p in (lexicon.get(w) or [()])[0] if p in index]
            if not pron:
                continue
            if len(seq) > 1 and (rng.random() < 0.3 or seq[-1] == pron[0]):
                seq.append(SIL)
            seq += pron
        seq.append(SIL)
        x = np.zeros((len(seq), len(phones)), np.float32)
        x[np.arange(len(seq)), [index[p] for p in seq]] = 3.0
        out.append(x + noise * rng.standard_normal(x.shape).astype(np.float32))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--utts", type=int, default=100, help="valid utterances to decode")
    ap.add_argument("--noise", type=float, default=1.0)
    ap.add_argument("--lm-weight", type=float, default=1.0)
    ap.add_argument("--word-score", type=float, default=0.0)
    ap.add_argument("--beam", type=int, default=50)
    ap.add_argument("--workers", type=int, nargs="+", default=[1])
    args = ap.parse_args()

    run = args.run
    lexicon = read_pronunciations(run / "text" / "lexicon.lst")
    lm = load_word_lm(run / "text" / "lm.words.4.bin")
    ref_words = [normalize_words(r) for r in read_token_lines(run / "corpus" / "valid.wrd")][: args.utts]
    ref_phones = [normalize_tokens(r) for r in read_token_lines(run / "corpus" / "valid.phn")][: args.utts]
    inputs = {}
    if (run / "train" / "best.pt").is_file():
        model = load_acoustic_model(run / "train" / "best.pt")
        feats, lengths = load_features(run / "segments", "valid")
        utts = split_by_lengths(feats, lengths, np.float32)[: args.utts]
        inputs["gan"] = (model.phones, [model.logits(u) for u in utts])
        phones = model.phones
    else:
        from wav2vec_u.train.data import read_dictionary

        phones = read_dictionary(run / "text")
    inputs["noisy-ref"] = (phones, noisy_reference(ref_words, lexicon, phones, args.noise, np.random.default_rng(0)))

    backends = ["python"] + (["flashlight"] if flashlight_available() else [])
    if len(backends) == 1:
        print("flashlight-text is not installed here (pip install flashlight-text): ours only")
    cfg = DecoderConfig(beam=args.beam, lm_weight=args.lm_weight, word_score=args.word_score)
    print(f"{run}: {len(ref_words)} valid utterances, {len(lexicon)} lexicon words, LM {lm.path.name}, "
          f"beam {args.beam}, lm_weight {args.lm_weight}, word_score {args.word_score}")
    print(f"| posteriors | search | workers | seconds | utterances/s | WER % | PER % | Viterbi PER % |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, (phs, logits) in inputs.items():
        vit = error_rate(ref_phones, [normalize_tokens(viterbi_decode(x, phs).tokens) for x in logits]).rate
        speeds = {}
        for backend in backends:
            dec = lexicon_decoder(phs, lexicon, lm, dataclasses.replace(cfg, backend=backend))
            for workers in args.workers:
                t = time.perf_counter()
                out = decode_all(dec, logits, workers=workers)
                sec = time.perf_counter() - t
                speeds[(backend, workers)] = len(out) / sec
                wer = error_rate(ref_words, [o.words for o in out]).rate
                per = error_rate(ref_phones, [normalize_tokens(o.phones) for o in out]).rate
                print(f"| {kind} | {backend} | {workers} | {sec:.2f} | {len(out) / sec:.1f} | {100 * wer:.1f} | "
                      f"{100 * per:.1f} | {100 * vit:.1f} |")
        for workers in args.workers:
            if ("flashlight", workers) in speeds:
                print(f"{kind}, {workers} worker(s): flashlight / python speed = "
                      f"{speeds[('flashlight', workers)] / speeds[('python', workers)]:.1f}x")


if __name__ == "__main__":
    main()
