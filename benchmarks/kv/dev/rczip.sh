#!/usr/bin/env bash
# Issue 27's ablation (dev seed 1000, never the main run's seed 0): benchmarks/kv/dev/rczip.py, both
# settings at once, one torch thread each, SmolLM2, needle and multikey at 1k tokens, in turn.
#   benchmarks/kv/dev/rczip.sh [PER_TASK] [OUT]    (defaults: 4 per task, benchmarks/kv/dev/rczip-r2)
# rczip-r2 drops zip+score (the prefix scored by RC: no better than zip at n = 2) and reruns from the
# first sample with the options as they now are (the n = 2 tables in rczip/ predate the prefix fix).
# Resumable: rerun to continue.
set -euo pipefail
cd "$(dirname "$0")/../../.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=65536
per_task=${1:-4}
out=${2:-benchmarks/kv/dev/rczip-r2}
only=none,kvzip,kvzip+,zip,zip+w16,zip+keep,zip+w16+keep,zip+w16+keep+row
rcstat data fetch > /dev/null
mkdir -p "$out"
python benchmarks/kv/dev/rczip.py --per-task "$per_task" --only "$only" --query-aware \
  --output "$out/query-aware" > "$out/query-aware.log" 2>&1 &
python benchmarks/kv/dev/rczip.py --per-task "$per_task" --only "$only" \
  --output "$out/query-agnostic" > "$out/query-agnostic.log" 2>&1 &
wait
