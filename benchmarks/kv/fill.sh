#!/usr/bin/env bash
# rcstat-fill (issue 26) on the committed samples (seed 0; chosen on the dev seed, benchmarks/kv/dev):
# Gemma-3-270M's 102 samples per setting beside KeyDiff (the best press there) and the full cache, and
# SmolLM2's needle/multikey subset (n = 68 per setting) beside the full cache; the other presses'
# cells on the same samples are in the committed runs beside these. One torch thread per process.
# Resumable: rerun to continue.
set -euo pipefail
cd "$(dirname "$0")/../.."
export MALLOC_MMAP_THRESHOLD_=65536 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
data=(--qa-data ../shared/data/quotesum_dev.jsonl --lengths 1024 --seed 0 --compression-ratio 0.25,0.5,0.75,0.9)
rcstat data fetch > /dev/null
run() {  # model, tasks, per task, presses, setting
  local out=benchmarks/kv/$1/$5/rcstat-fill aware=()
  [ "$5" = query-aware ] && aware=(--query-aware)
  mkdir -p "$out"
  rcstat bench kv --model "$1" --task "$2" "${data[@]}" --per-task "$3" --press "$4" "${aware[@]}" \
    --output "$out" --format table > "$out.log" 2>&1
}
six=needle,multikey,multivalue,vartrack,cwe,qa
for setting in query-aware query-agnostic; do
  run gemma-3-270m "$six" 17 none,rcstat-fill,keydiff "$setting" &
  run smollm2-135m-instruct needle,multikey 34 none,rcstat-fill "$setting" &
done
wait
