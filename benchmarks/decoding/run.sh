#!/usr/bin/env bash
# Compression while generating, on the default model: 50 `copy` and 50 `summary` prompts of about
# 400 tokens (seed 0; the prompts were chosen on seed 1000), the full cache and six presses at budgets
# of 64, 128 and 256 entries per head, compressing every 8 tokens, up to 256 new tokens; the samples
# are sharded over two Ray workers of one torch thread each (one log, resumable: rerun to continue).
# Then each configuration alone generates 1024 tokens from the first prompt, for the time per token.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
rcstat data fetch > /dev/null
rcstat bench decoding --task copy,summary --per-task 50 --length 400 --seed 0 \
  --press rcstat,rcstat-uniform,knorm,streaming_llm,expected_attention,tova,keydiff --budget 64,128,256 \
  --interval 8 --max-new-tokens 256 --timing-tokens 1024 --workers 2 --threads 1 \
  --output benchmarks/decoding/smollm2-135m-instruct "$@"
