#!/usr/bin/env bash
# Development runs (seed 1000, never the main run's seed 0): which RC variant becomes the default.
#   benchmarks/kv/dev/run.sh cross-layer   one threshold across layers vs equal budgets per layer, both
#                                          settings (run at 01124b1, when `rcstat` was `rcstat-cross-layer`)
#   benchmarks/kv/dev/run.sh gauss         RC against Gaussian future queries, query-agnostic
# One torch thread per process. Resumable: rerun to continue.
set -euo pipefail
cd "$(dirname "$0")/../../.."
experiment="${1:?give cross-layer or gauss}"
shift
common=(--task needle,multikey,multivalue,vartrack,cwe --per-task 5 --lengths 1024 --seed 1000
  --compression-ratio 0.5,0.75,0.9)
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
rcstat data fetch > /dev/null
out="benchmarks/kv/dev/$experiment"
mkdir -p "$out"
case "$experiment" in
  cross-layer)
    presses=none,rcstat-layer,rcstat,streaming_llm,snapkv,tova
    rcstat bench kv "${common[@]}" --press "$presses" --query-aware --output "$out/query-aware" "$@" &
    rcstat bench kv "${common[@]}" --press "$presses" --output "$out/query-agnostic" "$@" &
    wait ;;
  gauss)
    presses=none,rcstat,rcstat-gauss,expected_attention,streaming_llm
    rcstat bench kv "${common[@]}" --press "$presses" --output "$out/query-agnostic" "$@" ;;
  *) echo "unknown experiment $experiment: give cross-layer or gauss" >&2; exit 2 ;;
esac
