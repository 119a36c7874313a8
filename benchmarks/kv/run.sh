#!/usr/bin/env bash
# The committed KV benchmark (issue 3): every press × ratio on the default model, query-aware,
# five task families × 40 samples. Resumable: rerun the same command to continue a stopped run.
# MALLOC_MMAP_THRESHOLD_ makes freed tensors return to the OS, so the peak-memory column measures
# each compression step rather than the allocator's reuse.
set -euo pipefail
cd "$(dirname "$0")/../.."
export MALLOC_MMAP_THRESHOLD_=65536
exec rcstat bench kv \
  --task needle,multikey,multivalue,cwe,qa --qa-data ../shared/data/quotesum_dev.jsonl \
  --per-task 40 --lengths 1024 --seed 0 --query-aware \
  --press none,rcstat,snapkv,adakv,pyramidkv,streaming_llm,observed_attention,tova,knorm,expected_attention,random \
  --compression-ratio 0.5,0.75,0.9 \
  --output benchmarks/kv/results "$@"
