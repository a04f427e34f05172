#!/usr/bin/env bash
# The held-aside check: the demo's method, unchanged, on a corpus it was never tuned on.
#   other text  (fortune cookies, scripts/research/heldout_sentences.py; the demo reads the Bible),
#   other voices (espeak-ng variants m2, m4, f4; the demo uses m1, m3, f2),
#   another phone inventory (British English RP, en-gb-x-rp; the demo is American English).
# Every stage reads the English demo's config section, so nothing is tuned here.
# Usage: scripts/research/heldout_check.sh OUT    (needs Debian's fortunes package; about 10 min on 2 cores)
#   LANG_ID=en-us VARIANTS=m1,m3,f2 scripts/research/heldout_check.sh OUT   to change one factor at a time
set -euo pipefail
out=${1:?usage: heldout_check.sh OUT}
cd "$(dirname "$0")/../.."
W2VU=${W2VU:-.venv/bin/w2vu}; PY=${PY:-.venv/bin/python}
cfg=configs/demo/en.yaml; lang=${LANG_ID:-en-gb-x-rp}; variants=${VARIANTS:-m2,m4,f4}
log() { echo "[$(date '+%F %T')] $*"; }
mkdir -p "$out"
log "sentences";   [ -s "$out/sentences.txt" ] || $PY scripts/research/heldout_sentences.py "$out/sentences.txt"
log "synth";       $W2VU synth "$out/sentences.txt" "$out/corpus" --config "$cfg#corpus" lang=$lang "voice.variants=[$variants]"
log "text";        $W2VU prepare-text "$out/corpus/unpaired.txt" "$out/text" --config "$cfg#text" lang=$lang
log "features";    $W2VU extract "$out/corpus" "$out/features" --config "$cfg#extract"
log "segments";    $W2VU segments "$out/features" "$out/segments" --config "$cfg#segments"
log "baselines";   $W2VU baselines "$out/corpus" "$out/segments" "$out/text" "$out/baselines"
log "decipher";    $W2VU decipher "$out/features" "$out/decipher" --text-dir "$out/text" --ref-dir "$out/corpus" \
                     --config "$cfg#train.decipher" --self-train-config "$cfg#self_train"
log "self-train";  $W2VU self-train "$out/features" "$out/self_train" --labels "$out/decipher/train.hyp" \
                     --text-dir "$out/text" --ref-dir "$out/corpus" --config "$cfg#self_train"
log "score"
for h in baselines/valid.most_frequent.hyp decipher/valid.table.hyp decipher/valid.hyp self_train/valid.st.phn; do
  echo "== $h"; $W2VU score "$out/$h" "$out/corpus/valid.phn" | tail -n 1
done
