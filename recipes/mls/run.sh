#!/usr/bin/env bash
# wav2vec-U on one language of Multilingual LibriSpeech (paper Sec. 5, Table 4): the corpus in its own
# layout ({train,dev,test}/transcripts.txt, audio/SPEAKER/BOOK/*.flac), reference phones and the text
# phonemised by espeak-ng in that language, rVAD on every split, XLSR-53 layer 14 features, GAN seeds,
# label-free choice, Viterbi and lexicon + word 4-gram decoding (weights tuned without labels on a sample,
# then the whole split across all cores), self-training, tables.
# Usage: recipes/mls/run.sh --mls /data/mls_german --lang de --lm-text /data/mls_lm_german/data.txt
#          [--extractor fairseq:/models/xlsr_53_56k.pt] [--out runs/mls-de] [--seeds "0 1 2 3 4"]
#          [--device cuda] [--stage N] [--stop-stage N]
#   --lang is the espeak-ng voice (de, nl, fr, es, it, pt, pl; en-us for English); the default extractor is
#   XLSR-53 from the Hugging Face hub (hf:facebook/wav2vec2-large-xlsr-53); mfcc for a CPU smoke run;
#   --text-config, --gan-config,
#   --gan-args, --segments-args, --st-args, --decode-args pass settings to the commands (smoke runs: tiny sizes)
set -euo pipefail
stage=0; stop_stage=100; mls=""; lm_text=""; out=""; seeds="0 1 2 3 4"; device=cuda; lang=""
extractor=hf:facebook/wav2vec2-large-xlsr-53; layer=14; text_config=configs/text/librispeech.yaml; gan_config=configs/gan/w2vu.yaml
gan_args=""; seg_args=""; st_args=""; decode_args=""; vad_args=""
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2;; --stop-stage) stop_stage=$2; shift 2;; --out) out=$2; shift 2;;
    --mls) mls=$2; shift 2;; --lm-text) lm_text=$2; shift 2;; --lang) lang=$2; shift 2;;
    --seeds) seeds=$2; shift 2;; --device) device=$2; shift 2;; --extractor) extractor=$2; shift 2;;
    --layer) layer=$2; shift 2;; --text-config) text_config=$2; shift 2;; --gan-config) gan_config=$2; shift 2;;
    --gan-args) gan_args=$2; shift 2;; --segments-args) seg_args=$2; shift 2;; --st-args) st_args=$2; shift 2;;
    --decode-args) decode_args=$2; shift 2;; --vad-args) vad_args=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
[ -n "$mls" ] && [ -n "$lm_text" ] && [ -n "$lang" ] || { echo "need --mls DIR --lang CODE --lm-text FILE" >&2; exit 2; }
[ -n "$out" ] || out=runs/mls-$lang
cd "$(dirname "$0")/../.."
W2VU=${W2VU:-w2vu}
log() { echo "[$(date '+%F %T')] stage $1: $2"; }
run() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

if run 0; then log 0 "MLS ($lang) in its layout: train, dev (as valid), test"
  $W2VU import-corpus mls "$mls" "$out/corpus"
fi
if run 1; then log 1 "reference phones of valid and test (espeak-ng, as the text side)"
  $W2VU phonemize-refs "$out/corpus" --lang "$lang" --splits valid test --force
fi
if run 2; then log 2 "silence removal (rVAD) on every split, as wav2vec-U does; labels carried along"
  # shellcheck disable=SC2086  # *_args are lists of key=value words
  $W2VU vad "$out/corpus" "$out/vad" $vad_args
fi
if run 3; then log 3 "LM text: phonemise (espeak-ng, $lang), <SIL> p=0.25, phone threshold 1000, phone and word 4-grams"
  $W2VU prepare-text "$lm_text" "$out/text" --lang "$lang" --config "$text_config"
fi
if run 4; then log 4 "frame features ($extractor, layer $layer)"
  $W2VU extract "$out/vad" "$out/features" --config configs/features/xlsr53.yaml \
    --extractor "$extractor" --layer "$layer" --device "$device"
fi
if run 5; then log 5 "PCA 512, k-means 128, merge, mean-pool (fitted on train)"
  # shellcheck disable=SC2086
  $W2VU segments "$out/features" "$out/segments" --config configs/features/segments.yaml $seg_args
fi
if run 6; then log 6 "one GAN per seed ($gan_config)"
  for s in $seeds; do
    # shellcheck disable=SC2086
    $W2VU train-gan "$out/gan-s$s" --features "$out/segments" --text "$out/text" --config "$gan_config" \
      trainer.seed="$s" trainer.device="$device" $gan_args
  done
fi
if run 7 || run 8 || run 9; then
  runs=(); for s in $seeds; do runs+=("$out/gan-s$s"); done
  chosen=$($W2VU select "${runs[@]}" --features "$out/segments" --text "$out/text" --out "$out/select.json" \
           | sed -n 's/^chosen: //p')
  [ -f "$chosen" ] || { echo "select chose no checkpoint (see $out/select.json)" >&2; exit 1; }
  log 7 "label-free choice among the GAN runs (paper Eqs. 5-6): $chosen"
fi
if run 8; then log 8 "decode valid and test: Viterbi phones; words with lexicon + word 4-gram, weights tuned on valid without labels"
  for split in valid test; do
    # shellcheck disable=SC2086
    $W2VU decode "$chosen" "$out/segments" "$out/decode" --text-dir "$out/text" split="$split" tune.split=valid \
      tune.criterion=unsupervised workers=0 $decode_args
  done
fi
if run 9; then log 9 "self-training: CTC on the chosen GAN's pseudo-labels, then its own decode of test"
  # shellcheck disable=SC2086
  $W2VU self-train "$out/features" "$out/self_train" --checkpoint "$chosen" --label-features "$out/segments" \
    --text-dir "$out/text" $st_args
  # shellcheck disable=SC2086
  $W2VU decode "$out/self_train/ctc.pt" "$out/features" "$out/decode_st" --text-dir "$out/text" split=test \
    tune.split=valid workers=0 $decode_args
fi
if run 10; then log 10 "chance baselines, then the results table of test (references read only here)"
  $W2VU baselines "$out/segments" "$out/segments" "$out/text" "$out/baselines" --split test
  st=(); [ -d "$out/decode_st" ] && st=(--system "self-trained=$out/decode_st")
  $W2VU results "$out/results" --corpus "$out/segments" --split test --baselines "$out/baselines" \
    --system "GAN=$out/decode" "${st[@]}" --select "$out/select.json"
fi
