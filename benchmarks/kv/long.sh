#!/usr/bin/env bash
# Longer contexts on the default model: needle and multikey at 2k tokens (PER_2K samples per task,
# 8 in the committed run) and 4k tokens (PER_4K, 4 in the committed run), both settings, one torch
# thread each; the strongest presses and the oracle; KVzip and rcstat-zip live. Resumable: rerun
# the same command to continue (other per-task counts number the samples differently: give them
# another output).
set -euo pipefail
cd "$(dirname "$0")/../.."
export MALLOC_MMAP_THRESHOLD_=65536 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
out=benchmarks/kv/smollm2-135m-instruct/long
presses=none,oracle,rcstat,rcstat-layer,snapkv,adakv,critical_adakv,streaming_llm,tova,expected_attention,keydiff
presses=$presses,kvzip,rcstat-zip
rcstat data fetch > /dev/null
run() {  # setting
  local setting=$1 aware=(); [ "$1" = query-aware ] && aware=(--query-aware)
  for spec in "2048:${PER_2K:-8}" "4096:${PER_4K:-4}"; do
    mkdir -p "$out/${spec%%:*}/$setting"
    rcstat bench kv --task needle,multikey --lengths "${spec%%:*}" --per-task "${spec##*:}" --seed 0 \
      --press "$presses" --compression-ratio 0.25,0.5,0.75,0.9 "${aware[@]}" --output "$out/${spec%%:*}/$setting"
  done
}
run query-aware > "$out.query-aware.log" 2>&1 &
run query-agnostic > "$out.query-agnostic.log" 2>&1 &
wait
