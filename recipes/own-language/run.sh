#!/usr/bin/env bash
# One's own language: a folder of field recordings plus a text file in the language, through to
# transcripts of those recordings (TextGrid, EAF, CTM, SRT, CSV, review pages). No labels anywhere.
# Usage: recipes/own-language/run.sh --audio DIR --text FILE --lang ESPEAK_CODE [--out DIR]
#            [--stage N] [--stop-stage N] [--seeds "0 1 2"] [--extractor SPEC] [--layer L]
#   --extractor: mfcc (default, CPU), or a speech encoder such as hf:facebook/wav2vec2-xls-r-300m
#   (the paper's choice for new languages: XLS-R/XLSR-53, layer 14 of 24; GPU advised)
#   --gan-args: overrides for train-gan, e.g. "trainer.device=cuda" or, for a smoke run, "trainer.max_updates=200"
set -euo pipefail
stage=0; stop_stage=100; audio=""; text=""; lang=""; out=runs/own-language; seeds="0 1 2"
extractor=mfcc; layer=14; gan_args=""
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2;; --stop-stage) stop_stage=$2; shift 2;;
    --audio) audio=$2; shift 2;; --text) text=$2; shift 2;; --lang) lang=$2; shift 2;;
    --out) out=$2; shift 2;; --seeds) seeds=$2; shift 2;;
    --extractor) extractor=$2; shift 2;; --layer) layer=$2; shift 2;; --gan-args) gan_args=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
[ -n "$audio" ] && [ -n "$text" ] && [ -n "$lang" ] || { echo "need --audio DIR --text FILE --lang CODE" >&2; exit 2; }
W2VU=${W2VU:-w2vu}
log() { echo "[$(date '+%F %T')] stage $1: $2"; }
run() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

if run 0; then log 0 "cut the recordings into voice-activity chunks (16 kHz utterances, manifests)"
  $W2VU cut "$audio" --out "$out/chunks"
fi
if run 1; then log 1 "phonemise the text; phone dictionary, lexicon, phone and word LMs"
  $W2VU prepare-text "$text" "$out/text" --lang "$lang"
fi
if run 2; then log 2 "frame features of the chunks"
  $W2VU extract "$out/chunks" "$out/features" --extractor "$extractor" --layer "$layer"
fi
if run 3; then log 3 "PCA, k-means, merged and pooled segments"
  $W2VU segments "$out/features" "$out/segments"
fi
if run 4; then log 4 "train one GAN per seed"
  for s in $seeds; do
    # shellcheck disable=SC2086  # gan_args is a list of key=value words
    $W2VU train-gan "$out/gan-s$s" --features "$out/segments" --text "$out/text" trainer.seed="$s" $gan_args
  done
fi
if run 5 || run 6 || run 7; then
  runs=(); for s in $seeds; do runs+=("$out/gan-s$s"); done
  chosen=$($W2VU select "${runs[@]}" --features "$out/segments" --text "$out/text" --out "$out/select.json" \
           | sed -n 's/^chosen: //p')
  [ -f "$chosen" ] || { echo "select chose no checkpoint (see $out/select.json)" >&2; exit 1; }
  log 5 "label-free choice among the GAN runs: $chosen"
fi
if run 6; then log 6 "self-training: a CTC model on the chosen GAN's pseudo-labels"
  $W2VU self-train "$out/features" "$out/self_train" --checkpoint "$chosen" --label-features "$out/segments" \
    --text-dir "$out/text"
fi
if run 7; then log 7 "transcribe the recordings with the self-trained model"
  $W2VU transcribe "$out/self_train/ctc.pt" "$audio" --out "$out/transcripts" --features-dir "$out/features" \
    --text-dir "$out/text"
fi
