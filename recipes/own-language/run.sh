#!/usr/bin/env bash
# One's own language: a folder of field recordings plus a text file in the language, through to
# transcripts of those recordings (TextGrid, EAF, CTM, SRT, CSV, review pages). No labels anywhere.
# Usage: recipes/own-language/run.sh --audio DIR --text FILE --lang ESPEAK_CODE [--out DIR]
#            [--method decipher|gan] [--stage N] [--stop-stage N] [--extractor SPEC] [--layer L]
#            [--decipher-args "K=V ..."] [--st-args "K=V ..."] [--seeds "0 1 2"] [--gan-args "K=V ..."]
#   --method: decipher (default: the method that learns from speech here, docs/decipher.md) or gan
#   --extractor: mfcc (default, CPU), or a speech encoder such as hf:facebook/wav2vec2-xls-r-300m
#   (the paper's choice for new languages: XLS-R/XLSR-53, layer 14 of 24; GPU advised)
#   --decipher-args: overrides for w2vu decipher, e.g. "seeds=[1,2,3] refine=2 units.k=64"
#   --st-args: overrides for w2vu self-train, e.g. "ctc.epochs=3 ctc.min_updates=300"
#   --seeds, --gan-args: the GAN's seeds (one run each) and train-gan overrides, e.g. "trainer.device=cuda"
#
# Stages (one number = one role in both methods; a stage the method does not need only says so):
#   0 cut          w2vu cut: voice-activity chunks, 16 kHz, train/valid manifests
#   1 text         w2vu prepare-text: phones, dictionary, lexicon, phone and word LMs
#   2 features     w2vu extract: frame features of the chunks
#   3 units        gan: w2vu segments (PCA, k-means, pooled segments); decipher: nothing (it cuts its own)
#   4 train        decipher: w2vu decipher (units, matching, HMM EM, labels); gan: w2vu train-gan per seed
#   5 select       gan: w2vu select; decipher: nothing (its choice of seeds is made in stage 4: selection.json)
#   6 self-train   w2vu self-train: a CTC model on the stage 4-5 model's labels
#   7 transcribe   w2vu transcribe: the recordings with the self-trained CTC model
set -euo pipefail
stage=0; stop_stage=100; audio=""; text=""; lang=""; out=runs/own-language; method=decipher; seeds="0 1 2"
extractor=mfcc; layer=14; gan_args=""; decipher_args=""; st_args=""
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2;; --stop-stage) stop_stage=$2; shift 2;;
    --audio) audio=$2; shift 2;; --text) text=$2; shift 2;; --lang) lang=$2; shift 2;;
    --out) out=$2; shift 2;; --method) method=$2; shift 2;; --seeds) seeds=$2; shift 2;;
    --extractor) extractor=$2; shift 2;; --layer) layer=$2; shift 2;; --gan-args) gan_args=$2; shift 2;;
    --decipher-args) decipher_args=$2; shift 2;; --st-args) st_args=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
[ -n "$audio" ] && [ -n "$text" ] && [ -n "$lang" ] || { echo "need --audio DIR --text FILE --lang CODE" >&2; exit 2; }
case "$method" in decipher|gan) ;; *) echo "unknown --method $method (decipher, gan)" >&2; exit 2;; esac
W2VU=${W2VU:-w2vu}
log() { echo "[$(date '+%F %T')] stage $1: $2"; }
run() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
# shellcheck disable=SC2206  # the *_args options are lists of key=value words
gan_args=($gan_args); decipher_args=($decipher_args); st_args=($st_args)

if run 0; then log 0 "cut the recordings into voice-activity chunks (16 kHz utterances, manifests)"
  $W2VU cut "$audio" --out "$out/chunks"
fi
if run 1; then log 1 "phonemise the text; phone dictionary, lexicon, phone and word LMs"
  $W2VU prepare-text "$text" "$out/text" --lang "$lang"
fi
if run 2; then log 2 "frame features of the chunks"
  $W2VU extract "$out/chunks" "$out/features" --extractor "$extractor" --layer "$layer"
fi
if run 3; then
  if [ "$method" = gan ]; then log 3 "PCA, k-means, merged and pooled segments"
    $W2VU segments "$out/features" "$out/segments"
  else log 3 "nothing to do: the decipherment cuts the frames into its own change-point segments"; fi
fi
if run 4 && [ "$method" = decipher ]; then
  log 4 "decipherment: units, statistics matching, HMM EM, labels (seeds chosen without labels)"
  $W2VU decipher "$out/features" "$out/decipher" --text-dir "$out/text" "${decipher_args[@]}"
fi
if run 4 && [ "$method" = gan ]; then log 4 "train one GAN per seed"
  for s in $seeds; do
    $W2VU train-gan "$out/gan-s$s" --features "$out/segments" --text "$out/text" trainer.seed="$s" "${gan_args[@]}"
  done
fi
if [ "$method" = gan ] && { run 5 || run 6; }; then
  runs=(); for s in $seeds; do runs+=("$out/gan-s$s"); done
  chosen=$($W2VU select "${runs[@]}" --features "$out/segments" --text "$out/text" --out "$out/select.json" \
           | sed -n 's/^chosen: //p')
  [ -f "$chosen" ] || { echo "select chose no checkpoint (see $out/select.json)" >&2; exit 1; }
  log 5 "label-free choice among the GAN runs: $chosen"
elif run 5; then log 5 "nothing to do: w2vu decipher chose its members without labels ($out/decipher/selection.json)"
fi
if run 6 && [ "$method" = decipher ]; then log 6 "self-training: a CTC model on the decipherment's labels"
  $W2VU self-train "$out/features" "$out/self_train" --labels "$out/decipher/train.hyp" --text-dir "$out/text" \
    "${st_args[@]}"
fi
if run 6 && [ "$method" = gan ]; then log 6 "self-training: a CTC model on the chosen GAN's pseudo-labels"
  $W2VU self-train "$out/features" "$out/self_train" --checkpoint "$chosen" --label-features "$out/segments" \
    --text-dir "$out/text" "${st_args[@]}"
fi
if run 7; then log 7 "transcribe the recordings with the self-trained model"
  $W2VU transcribe "$out/self_train/ctc.pt" "$audio" --out "$out/transcripts" --features-dir "$out/features" \
    --text-dir "$out/text"
fi
