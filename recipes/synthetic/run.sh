#!/usr/bin/env bash
# The demo chain, one w2vu command per stage, on an espeak-ng corpus made from shipped text.
# Every stage reads its section of the demo's config (configs/demo/<lang>.yaml, or quick.yaml
# with --quick), so with the same seed the last stage prints the table `w2vu demo` prints.
# Usage: recipes/synthetic/run.sh [--stage N] [--stop-stage N] [--lang en|es] [--quick] [--seed S]
#                                 [--config FILE] [--out DIR]
set -euo pipefail
stage=0; stop_stage=100; lang=en; quick=""; seed=1; config=""; out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2;; --stop-stage) stop_stage=$2; shift 2;;
    --lang) lang=$2; shift 2;; --quick) quick=1; shift;; --seed) seed=$2; shift 2;;
    --config) config=$2; shift 2;; --out) out=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
cd "$(dirname "$0")/../.."
case "$lang" in en) voice=en-us;; es) voice=es;; *) echo "unknown --lang $lang (en, es)" >&2; exit 2;; esac
[ -n "$config" ] || config=configs/demo/$([ -n "$quick" ] && echo quick || echo "$lang").yaml
[ -n "$out" ] || out=runs/recipe-$lang${quick:+-quick}
W2VU=${W2VU:-w2vu}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}   # the demo's `threads: 1`: the same arithmetic, the same numbers
log() { echo "[$(date '+%F %T')] stage $1: $2"; }
run() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
report_flags=(--lang "$lang" --config "$config")

if run 0; then log 0 "synthesise audio, references and disjoint unpaired text"
  $W2VU synth "data/sentences/$lang.txt" "$out/corpus" --config "$config#corpus" lang="$voice"
fi
if run 1; then log 1 "phonemise the unpaired text; phone dictionary, lexicon, phone and word LMs"
  $W2VU prepare-text "$out/corpus/unpaired.txt" "$out/text" --config "$config#text" lang="$voice"
fi
if run 2; then log 2 "frame features of the train and valid audio"
  $W2VU extract "$out/corpus" "$out/features" --config "$config#extract"
fi
if run 3; then log 3 "PCA, k-means, merged and pooled segments"
  $W2VU segments "$out/features" "$out/segments" --config "$config#segments"
fi
if run 4; then log 4 "decipherment: units, statistics matching, HMM EM, labels (seed chosen without labels)"
  $W2VU decipher "$out/features" "$out/decipher" --text-dir "$out/text" --config "$config#train.decipher"
fi
if run 5; then log 5 "phones and lexicon + word-LM words of the valid audio with the decipherment model"
  $W2VU decode "$out/decipher/decipher.pt" "$out/features" "$out/decode_decipher" --text-dir "$out/text" \
    --ref-dir "$out/corpus" --config "$config#decode" split=valid
fi
if run 6; then log 6 "self-training: CTC on the decipherment's labels of the train audio"
  $W2VU self-train "$out/features" "$out/self_train" --labels "$out/decipher/train.hyp" \
    --text-dir "$out/text" --ref-dir "$out/corpus" --config "$config#self_train"
fi
if run 7; then log 7 "train the GAN for its comparison rows (best.pt chosen by the phone-LM metric, no labels)"
  $W2VU train-gan "$out/train" --features "$out/segments" --text "$out/text" --config "$config#train.gan" \
    trainer.seed="$seed" trainer.resume=false trainer.progress=false
fi
if run 8; then log 8 "label-free choice of the GAN checkpoint (paper Eqs. 5-6)"
  $W2VU select "$out/train" --features "$out/segments" --text "$out/text" --out "$out/select/selected.json"
fi
if run 9; then log 9 "Viterbi and lexicon + word-LM decoding of the valid audio with the GAN"
  $W2VU decode "$out/train/best.pt" "$out/segments" "$out/decode" --text-dir "$out/text" --ref-dir "$out/corpus" \
    --config "$config#decode" split=valid
fi
if run 10; then log 10 "baselines and the results table, scored against the held-back references"
  $W2VU report "$out" "${report_flags[@]}"
fi
