#!/usr/bin/env bash
# Compression while generating, on the default model: 50 `copy` and 50 `summary` prompts of about
# 400 tokens (seed 0; the prompts were chosen on seed 1000), the full cache and five presses at budgets
# of 64, 128 and 256 entries per head, compressing every 8 tokens, up to 160 new tokens (what two cores
# allowed beside the other runs; --workers 2 shards the samples over two Ray workers where the cores are
# free). One log, resumable: rerun to continue.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
rcstat data fetch > /dev/null
rcstat bench decoding --task copy,summary --per-task 50 --length 400 --seed 0 \
  --press rcstat,knorm,streaming_llm,tova,keydiff --budget 64,128,256 \
  --interval 8 --max-new-tokens 160 --threads 1 \
  --output benchmarks/decoding/smollm2-135m-instruct "$@"
# time per token: the full cache (transformers' and rcstat's) and RC at 128 entries, each alone, 1024
# tokens from the first prompt, one after another in one process; prompts of about 400, 2000 and 4000
# tokens
for spec in 400:timing 2000:timing-2k 4000:timing-4k; do
  rcstat bench decoding --task copy,summary --per-task 50 --length "${spec%%:*}" --seed 0 --limit 1 \
    --press rcstat --budget 128 --interval 8 --max-new-tokens 160 --timing-tokens 1024 --threads 1 \
    --output "benchmarks/decoding/smollm2-135m-instruct/${spec##*:}" "$@"
done
