#!/usr/bin/env bash
# The attribution benchmark (issue 4) on the default model: every method on VeriGran dev and
# QuoteSum dev (../shared/data), with faithfulness on the first spans. Pass --limit N to cut a run
# short (the committed results say which limit they used).
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${RCSTAT_SHARED_DATA:-../shared/data}
METHODS=rcstat,attention,attention-all,least-rc,hidden-state,random
for dataset in quotesum verigran; do
  rcstat bench attribution --dataset "$dataset" --data "$DATA/${dataset}_dev.jsonl" --method "$METHODS" \
    --top-k 20 --faithfulness 40 --output "benchmarks/attribution/$dataset.json" "$@" \
    | tee "benchmarks/attribution/$dataset.md"
done
