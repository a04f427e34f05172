#!/usr/bin/env bash
# wav2vec-U on TIMIT (paper Sec. 5, Table 1): the corpus in its own layout (TRAIN/DR*/SPEAKER/*.WAV,
# NIST SPHERE, .PHN/.WRD), 39-class phones, the matched or unmatched text setting, no silence removal
# (as the reference's prepare_timit.sh), wav2vec 2.0 Large LV-60 layer 14, GAN seeds, label-free choice,
# Viterbi decoding of the core dev, core test and complete test sets, and the results table.
# Usage: recipes/timit/run.sh --timit /data/TIMIT --w2v /models/wav2vec_vox_new.pt [--setting matched|unmatched]
#          [--out runs/timit] [--seeds "0 1 2 3 4"] [--device cuda] [--stage N] [--stop-stage N]
#   --extractor SPEC replaces the wav2vec 2.0 features (e.g. mfcc for a CPU smoke run; --w2v is then unused)
#   --gan-config FILE and --gan-args "key=value ..." set train-gan (a smoke run: "trainer.max_updates=50")
set -euo pipefail
stage=0; stop_stage=100; timit=""; w2v=""; setting=matched; out=runs/timit; seeds="0 1 2 3 4"; device=cuda
extractor=""; layer=14; gan_config=configs/gan/w2vu.yaml; gan_args=""; seg_args=""; baseline_args=""
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2;; --stop-stage) stop_stage=$2; shift 2;; --out) out=$2; shift 2;;
    --timit) timit=$2; shift 2;; --w2v) w2v=$2; shift 2;; --setting) setting=$2; shift 2;;
    --seeds) seeds=$2; shift 2;; --device) device=$2; shift 2;; --extractor) extractor=$2; shift 2;;
    --layer) layer=$2; shift 2;; --gan-config) gan_config=$2; shift 2;; --gan-args) gan_args=$2; shift 2;;
    --segments-args) seg_args=$2; shift 2;; --baselines-args) baseline_args=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
[ -n "$timit" ] || { echo "missing --timit (the folder with TRAIN/ and TEST/)" >&2; exit 2; }
[ -n "$extractor" ] || { [ -n "$w2v" ] || { echo "missing --w2v (wav2vec_vox_new.pt) or --extractor" >&2; exit 2; }
                         extractor="fairseq:$w2v"; }
cd "$(dirname "$0")/../.."
W2VU=${W2VU:-w2vu}
log() { echo "[$(date '+%F %T')] stage $1: $2"; }
run() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
splits="valid test test_full"

if run 0; then log 0 "TIMIT in its layout: 39-class references, speaker lists, $setting phone text"
  $W2VU import-corpus timit "$timit" "$out/corpus" setting="$setting"
fi
if run 1; then log 1 "phone text -> phone dictionary and phone 4-gram (no <SIL> inserted: TIMIT marks its own)"
  $W2VU prepare-text "$out/corpus/text.txt" "$out/text" --lexicon "$out/corpus/phone_lexicon.txt" \
    --config configs/text/timit.yaml
fi
if run 2; then log 2 "frame features ($extractor, layer $layer) of every split"
  $W2VU extract "$out/corpus" "$out/features" --config configs/features/wav2vec2_large_lv60.yaml \
    --extractor "$extractor" --layer "$layer" --device "$device"
fi
if run 3; then log 3 "PCA 512, k-means 128, merge, mean-pool (fitted on train)"
  # shellcheck disable=SC2086  # seg_args is a list of key=value words
  $W2VU segments "$out/features" "$out/segments" --config configs/features/segments.yaml $seg_args
fi
if run 4; then log 4 "one GAN per seed ($gan_config)"
  for s in $seeds; do
    # shellcheck disable=SC2086
    $W2VU train-gan "$out/gan-s$s" --features "$out/segments" --text "$out/text" --config "$gan_config" \
      trainer.seed="$s" trainer.device="$device" $gan_args
  done
fi
if run 5 || run 6; then
  runs=(); for s in $seeds; do runs+=("$out/gan-s$s"); done
  chosen=$($W2VU select "${runs[@]}" --features "$out/segments" --text "$out/text" --out "$out/select.json" \
           | sed -n 's/^chosen: //p')
  [ -f "$chosen" ] || { echo "select chose no checkpoint (see $out/select.json)" >&2; exit 1; }
  log 5 "label-free choice among the GAN runs (paper Eqs. 5-6): $chosen"
fi
if run 6; then log 6 "Viterbi phones of core dev, core test and the complete test set"
  for split in $splits; do
    $W2VU decode "$chosen" "$out/segments" "$out/decode" --text-dir "$out/text" split="$split" words=false
  done
fi
if run 7; then log 7 "chance baselines and the supervised bound on the same segments"
  for split in $splits; do
    # shellcheck disable=SC2086
    $W2VU baselines "$out/segments" "$out/segments" "$out/text" "$out/baselines" --split "$split" --supervised $baseline_args
  done
fi
if run 8; then log 8 "results tables (references read only here)"
  for split in $splits; do
    $W2VU results "$out/results/$split" --corpus "$out/segments" --split "$split" --baselines "$out/baselines" \
      --system "GAN=$out/decode" --select "$out/select.json"
  done
fi
