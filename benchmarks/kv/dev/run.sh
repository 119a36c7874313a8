#!/usr/bin/env bash
# Development runs (seed 1000, never the main run's seed 0): which RC variant becomes the default.
# Both settings at once, one torch thread each. Resumable: rerun to continue.
set -euo pipefail
cd "$(dirname "$0")/../../.."
common=(--task needle,multikey,multivalue,vartrack,cwe --per-task 5 --lengths 1024 --seed 1000
  --press none,rcstat-layer,rcstat-cross-layer,streaming_llm,snapkv,tova --compression-ratio 0.5,0.75,0.9)
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
rcstat data fetch > /dev/null
mkdir -p benchmarks/kv/dev/cross-layer
rcstat bench kv "${common[@]}" --query-aware --output benchmarks/kv/dev/cross-layer/query-aware "$@" &
rcstat bench kv "${common[@]}" --output benchmarks/kv/dev/cross-layer/query-agnostic "$@" &
wait
