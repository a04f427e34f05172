#!/bin/bash
# The GAN's GPU check (issue 14): rung (a) of the learning ladder at the paper's sizes, then the
# throughput table. Prepared on the CPU machine, run on a borrowed GPU machine (the `device` tool);
# never needed by tests. Not yet run on a GPU: no session so far was lent one.
#
#   scripts/gpu_check_gan.sh prepare LADDER_OUT         # here: copies a rung-(a) corpus to .cache/gpu-check
#   scripts/gpu_check_gan.sh run [SECONDS]              # there: trains, then bench_gan.py --no-cpu (default 420 s)
#
# prepare takes the phone sequences and the text folder (dictionary, phones.txt, 4-gram ARPA) of a corpus
# built by `scripts/bench_gan_learning.py LADDER_OUT --sentences S --sizes 40000 --prepare-only` (English,
# 40,000 training utterances, where the toy settings leave chance on the CPU; a few MB) into
# .cache/gpu-check, which .gitignore keeps out of the tree:
# name it in the device tool's `carry`. run rebuilds the perfect features there (the same seeded
# Gaussians), trains `configs/gan/w2vu.yaml` (batch 160, D 384, the reference's settings) on CUDA
# with static shapes and bf16 for SECONDS minus 90, validating every 1,000 updates, prints the
# ladder table, and ends with `scripts/bench_gan.py --no-cpu --sizes paper demo`. Everything it
# writes goes to $OUT (the device tool's result folder) or ./gpu-check-out.
#
# Device call (one short call; 8 minutes): run(command="scripts/gpu_check_gan.sh run 420",
#   carry=[".cache/gpu-check"], timeout_s=540)
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=.cache/gpu-check
case "${1:-}" in
prepare)
    src=$(ls -d "$2"/data/en-us-*/full-n40000 | head -1)
    text=$(dirname "$src")/unpaired/text
    rm -rf "$CACHE" && mkdir -p "$CACHE/text"
    cp "$src"/train.phn "$src"/valid.phn "$CACHE"/
    cp "$text"/dict.phn.txt "$text"/phones.txt "$text"/lm.phones.4.arpa "$CACHE/text/"
    du -sh "$CACHE"
    ;;
run)
    budget=${2:-420}
    out=${OUT:-gpu-check-out}
    mkdir -p "$out"
    PY=${PYTHON:-python3}
    export PYTHONPATH=$PWD
    (nvidia-smi --query-gpu=name,memory.total --format=csv || echo "no nvidia-smi") | tee "$out/gpu.txt"
    $PY - "$CACHE" <<'EOF'
import sys
from pathlib import Path
sys.path.insert(0, "scripts")
from bench_gan_learning import SIL, write_perfect_features
cache = Path(sys.argv[1])
read = lambda p: [x.split() for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]
phones = [x.split()[0] for x in (cache / "text" / "dict.phn.txt").read_text(encoding="utf-8").splitlines()]
write_perfect_features(cache / "feats", {"train": read(cache / "train.phn"), "valid": read(cache / "valid.phn")},
                       [p for p in phones if p != SIL], 32, 0.5, 0)
EOF
    timeout $((budget - 90)) $PY -m wav2vec_u.cli train-gan "$out/a_en_n40000_w2vu_s1" --features "$CACHE/feats" \
        --text "$CACHE/text" --config configs/gan/w2vu.yaml --no-wandb trainer.device=cuda trainer.static_shapes=true \
        trainer.amp=true trainer.max_updates=50000 trainer.validate_every=1000 trainer.save_every=1000 \
        trainer.seed=1 trainer.progress=false > "$out/train.log" 2>&1 || echo "train-gan stopped (rc $?): time budget"
    grep -hv valid_samples "$out"/a_en_n40000_w2vu_s1/metrics.jsonl | grep valid_per | \
        $PY -c "import json,sys; [print(d['step'], round(100*d['valid_per'],1), round(d['valid_weighted_lm_ppl'],1)) for d in map(json.loads, sys.stdin)]" \
        | tee "$out/per.txt" || true
    timeout 80 $PY scripts/bench_gan.py --no-cpu --sizes paper demo --updates 20 | tee "$out/bench.txt" || true
    rm -f "$out"/a_en_n40000_w2vu_s1/*.pt    # checkpoints stay there: only tables come back
    ;;
*)
    sed -n 2,18p "$0"; exit 2;;
esac
