#!/usr/bin/env bash
# The committed KV benchmark, both settings at once, one torch thread each, on task families of about
# 1k tokens (seed 0; the options and τ grids were chosen on seed 1000, benchmarks/kv/dev), every
# press at ratios 0.25 / 0.5 / 0.75 / 0.9, the oracle bound beside them. Three runs per setting,
# each resumable (rerun the same command to continue):
#   1. <setting>/              the leading presses and RC thresholded over its τ grid, on all six
#                              families (PER_TASK samples each);
#   2. <setting>/all-presses/  every press, and RC, SnapKV and TOVA thresholded over τ grids, on the
#                              FULL families (a declared subset);
#   3. <setting>/kvzip-subset/ KVzip, KVzip+ and RC over KVzip's reconstruction pass (rcstat-zip), run
#                              live (they replay the context), on the first SUBSET samples of the FULL
#                              families, beside RC and the full cache on the same samples.
# FULL=all (or the six families named) runs every press and the τ grids on all six families in
# step 1 and skips step 2.
#   benchmarks/kv/run.sh                                                # SmolLM2-135M-Instruct, 204 samples
#   MODEL=gemma-3-270m PER_TASK=17 SUBSET=0 FULL=all benchmarks/kv/run.sh   # Gemma 3 270M (KVzip refuses it)
# MALLOC_MMAP_THRESHOLD_ makes freed tensors return to the OS, so the peak-memory column measures
# each compression step rather than the allocator's reuse.
set -euo pipefail
cd "$(dirname "$0")/../.."
export MALLOC_MMAP_THRESHOLD_=65536 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
model=${MODEL:-smollm2-135m-instruct}
per_task=${PER_TASK:-34}
subset=${SUBSET:-10}
out=benchmarks/kv/$model
data=(--qa-data ../shared/data/quotesum_dev.jsonl --lengths 1024 --seed 0)
six=needle,multikey,multivalue,vartrack,cwe,qa
full=${FULL:-needle,multikey}
[ "$full" = all ] && full=$six
leading=none,oracle,rcstat,rcstat-layer,snapkv,chunkkv,streaming_llm,keydiff,lagkv,compactor
every=none,oracle,rcstat,rcstat-layer,rcstat-uniform,snapkv,adakv,critical_adakv,chunkkv,pyramidkv,streaming_llm
every=$every,observed_attention,tova,knorm,keydiff,lagkv,compactor,expected_attention,random
ratios=(--compression-ratio 0.25,0.5,0.75,0.9)
rc_steps=(--threshold rcstat=0,0.02,0.05,0.1,0.2,0.4,0.8,1.5)
steps=("${rc_steps[@]}" --threshold snapkv=2e-5,5e-5,1e-4,2e-4,5e-4,1e-3 --threshold tova=2e-5,5e-5,1e-4,2e-4,5e-4,1e-3)
rcstat data fetch > /dev/null
run() {  # setting, then extra options
  local setting=$1; shift
  mkdir -p "$out/$setting"
  local aware=(); [ "$setting" = query-aware ] && aware=(--query-aware)
  if [ "$full" = "$six" ]; then
    rcstat bench kv --model "$model" --task "$six" "${data[@]}" --per-task "$per_task" --press "$every" \
      "${ratios[@]}" "${steps[@]}" "${aware[@]}" --output "$out/$setting" "$@"
  else
    rcstat bench kv --model "$model" --task "$six" "${data[@]}" --per-task "$per_task" --press "$leading" \
      "${ratios[@]}" "${rc_steps[@]}" "${aware[@]}" --output "$out/$setting" "$@"
    rcstat bench kv --model "$model" --task "$full" "${data[@]}" --per-task "$per_task" --press "$every" \
      "${ratios[@]}" "${steps[@]}" "${aware[@]}" --output "$out/$setting/all-presses" "$@"
  fi
  if [ "$subset" -gt 0 ]; then
    rcstat bench kv --model "$model" --task "$full" "${data[@]}" --per-task "$subset" \
      --press none,oracle,rcstat,rcstat-layer,kvzip,kvzip+,rcstat-zip "${ratios[@]}" "${aware[@]}" \
      --output "$out/$setting/kvzip-subset" "$@"
  fi
}
run query-aware "$@" > "$out.query-aware.log" 2>&1 &
run query-agnostic "$@" > "$out.query-agnostic.log" 2>&1 &
wait
