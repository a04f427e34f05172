#!/usr/bin/env bash
# wav2vec-U on LibriSpeech (paper Sec. 5): wav2vec 2.0 Large LV-60 layer 14 features, text from
# the LibriSpeech LM corpus. Needs a GPU for feature extraction and training in reasonable time.
# Usage: recipes/librispeech/run.sh --audio /data/LibriSpeech/train-clean-100 --valid-audio /data/LibriSpeech/dev-other \
#          --text /data/librispeech-lm-norm.txt --w2v /models/wav2vec_vox_new.pt [--out runs/librispeech] [--stage N] [--stop-stage N]
set -euo pipefail
stage=0; stop_stage=100; out=runs/librispeech; audio=""; valid_audio=""; text=""; w2v=""; device=cuda
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2;; --stop-stage) stop_stage=$2; shift 2;; --out) out=$2; shift 2;;
    --audio) audio=$2; shift 2;; --valid-audio) valid_audio=$2; shift 2;; --text) text=$2; shift 2;;
    --w2v) w2v=$2; shift 2;; --device) device=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
for v in audio valid_audio text w2v; do [ -n "${!v}" ] || { echo "missing --${v//_/-}" >&2; exit 2; }; done
W2VU=${W2VU:-w2vu}
log() { echo "[$(date '+%F %T')] stage $1: $2"; }
run() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

if run 0; then log 0 "manifests (16 kHz mono) for training and validation audio"
  $W2VU manifest "$audio" "$out/manifest_train" valid_percent=0
  $W2VU manifest "$valid_audio" "$out/manifest_valid" valid_percent=0
  mkdir -p "$out/manifest"
  cp "$out/manifest_train/train.tsv" "$out/manifest/train.tsv"
  cp "$out/manifest_valid/train.tsv" "$out/manifest/valid.tsv"
fi
if run 1; then log 1 "silence removal (rVAD), as wav2vec-U does before feature extraction"
  $W2VU vad "$out/manifest" "$out/vad"
fi
if run 2; then log 2 "wav2vec 2.0 Large layer 14 -> PCA 512, k-means 128, merge, mean-pool"
  $W2VU prepare-audio "$out/vad" "$out/audio" --config configs/features/prepare_wav2vec2_large.yaml \
    --extractor "fairseq:$w2v" --layer 14 --device "$device"
fi
if run 3; then log 3 "text: phonemise (espeak-ng), <SIL> p=0.25, phone threshold 1000, phone and word LMs"
  $W2VU prepare-text "$text" "$out/text" --lang en-us --config configs/text/librispeech.yaml
fi
if run 4; then log 4 "GAN, config w2vu (150k updates)"
  $W2VU train-gan "$out/gan" --features "$out/audio/segments" --text "$out/text" \
    --config configs/gan/w2vu.yaml trainer.device="$device"
fi
if run 5; then log 5 "decode valid: Viterbi phones; words with lexicon + word 4-gram"
  $W2VU decode "$out/gan/best.pt" "$out/audio/segments" "$out/decode" --text-dir "$out/text"
fi
if run 6; then log 6 "self-training on the GAN's pseudo-labels"
  $W2VU self-train "$out/audio/frames" "$out/self_train" --checkpoint "$out/gan/best.pt" \
    --label-features "$out/audio/segments" --text-dir "$out/text"
fi
