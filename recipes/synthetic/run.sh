#!/usr/bin/env bash
# The demo chain, one w2vu command per stage, on an espeak-ng corpus made from shipped text.
# Usage: recipes/synthetic/run.sh [--stage N] [--stop-stage N] [--lang en-us] [--out runs/recipe-synth]
set -euo pipefail
stage=0; stop_stage=100; lang=en-us; out=runs/recipe-synth; sentences=""
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2;; --stop-stage) stop_stage=$2; shift 2;;
    --lang) lang=$2; shift 2;; --out) out=$2; shift 2;; --sentences) sentences=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
[ -n "$sentences" ] || sentences=data/sentences/${lang%%-*}.txt
W2VU=${W2VU:-w2vu}
# sizes (environment): the defaults are the demo's; NUM_TRAIN=60 NUM_VALID=20 UPDATES=50 is a smoke test
NUM_TRAIN=${NUM_TRAIN:-1000}; NUM_VALID=${NUM_VALID:-200}; NUM_UNPAIRED=${NUM_UNPAIRED:-10000}; UPDATES=${UPDATES:-1000}
log() { echo "[$(date '+%F %T')] stage $1: $2"; }
run() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

if run 0; then log 0 "synthesise audio, references and disjoint unpaired text"
  $W2VU synth "$sentences" "$out/corpus" --lang "$lang" --num-train "$NUM_TRAIN" --num-valid "$NUM_VALID" --num-unpaired "$NUM_UNPAIRED"
fi
if run 1; then log 1 "phonemise the unpaired text; phone dictionary, lexicon, phone and word LMs"
  $W2VU prepare-text "$out/corpus/unpaired.txt" "$out/text" --lang "$lang"
fi
if run 2; then log 2 "MFCC frames, k-means, merged and pooled segments"
  $W2VU prepare-audio "$out/corpus" "$out/audio" --config configs/features/prepare_mfcc.yaml
fi
if run 3; then log 3 "train the GAN (best.pt chosen by the phone-LM metric, no labels)"
  $W2VU train-gan "$out/gan" --features "$out/audio/segments" --text "$out/text" trainer.max_updates="$UPDATES"
fi
if run 4; then log 4 "Viterbi and lexicon + word-LM decoding, scored against the held-back references"
  $W2VU decode "$out/gan/best.pt" "$out/audio/segments" "$out/decode" --text-dir "$out/text"
fi
if run 5; then log 5 "self-training: CTC on the GAN's pseudo-labels"
  $W2VU self-train "$out/audio/frames" "$out/self_train" --checkpoint "$out/gan/best.pt" \
    --label-features "$out/audio/segments" --text-dir "$out/text"
fi
