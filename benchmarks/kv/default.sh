#!/usr/bin/env bash
# The default press `rcstat` after issue 26 (AutoRCPress: RC ranked across the model where the
# compressed layers hold >= 16 KV heads, FillPress where fewer; chosen on the dev seed, round 6 of
# benchmarks/kv/dev/candidates) on the committed samples (seed 0): Gemma-3-270M's 102 samples per
# setting beside KeyDiff (the best press there), SnapKV (the cost reference: times are ratios to it
# inside this run) and the full cache. On SmolLM2 the rule picks the recipe the committed runs already
# hold (CrossLayerPress over RCStatPress): a check of the first SMOL samples per setting reproduces them.
# One torch thread per process. Resumable: rerun to continue.
set -euo pipefail
cd "$(dirname "$0")/../.."
export MALLOC_MMAP_THRESHOLD_=65536 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
data=(--qa-data ../shared/data/quotesum_dev.jsonl --lengths 1024 --seed 0 --compression-ratio 0.25,0.5,0.75,0.9)
rcstat data fetch > /dev/null
run() {  # model, tasks, per task, presses, setting
  local out=benchmarks/kv/$1/$5/rcstat-auto aware=()
  [ "$5" = query-aware ] && aware=(--query-aware)
  mkdir -p "$out"
  rcstat bench kv --model "$1" --task "$2" "${data[@]}" --per-task "$3" --press "$4" "${aware[@]}" \
    --output "$out" --format table > "$out.log" 2>&1
}
six=needle,multikey,multivalue,vartrack,cwe,qa
for setting in query-aware query-agnostic; do
  run gemma-3-270m "$six" 17 none,rcstat,keydiff,snapkv "$setting" &
done
wait
