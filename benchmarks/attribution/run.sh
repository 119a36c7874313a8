#!/usr/bin/env bash
# The attribution benchmark (issue 4) on the default model, as committed here (README.md says
# what each file holds). Selection split: QuoteSum dev examples 1-40 and VeriGran dev examples
# 31-70; everything else is held out. Needs the contextcite extra for step 4
# (pip install 'rcstat[contextcite]') and the plot extra for the figures. Each step can be run
# alone; on one CPU thread steps 1-3 take about an hour, step 4 several.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${RCSTAT_SHARED_DATA:-../shared/data}
OUT=benchmarks/attribution
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
METHODS=rcstat,rcstat-calibrated,attention,attention-query-max,attention-all,least-rc,hidden-state,random

# 1. the scoring ablation on the selection split (chooses the Scoring defaults)
python benchmarks/attribution/ablation.py --dataset quotesum --data "$DATA/quotesum_dev.jsonl" \
  --split first --limit 40 --threads 1 --output "$OUT/ablation/quotesum-first40.json"
python benchmarks/attribution/ablation.py --dataset verigran --data "$DATA/verigran_dev.jsonl" \
  --skip 30 --limit 40 --threads 1 --output "$OUT/ablation/verigran-31-70.json"
python benchmarks/attribution/ablation.py --report "$OUT/ablation/quotesum-first40.json" \
  "$OUT/ablation/verigran-31-70.json" --top 40 > "$OUT/ablation/selection.md"

# 2. a head profile from the QuoteSum part of the split, its heatmap, and Figure 1 for one example
rcstat heads calibrate --dataset quotesum --data "$DATA/quotesum_dev.jsonl" --limit 40 \
  --output "$OUT/heads-quotesum.json" --plot "$OUT/heads-quotesum.png"
rcstat heads histogram --dataset quotesum --data "$DATA/quotesum_dev.jsonl" --example 0 \
  --output "$OUT/xy-quotesum-0.png"

# 3. held out, with the defaults: QuoteSum 41-70 and 71-130, VeriGran 1-30 and 71-125;
#    faithfulness on every QuoteSum span and on the first 20 spans of VeriGran 1-30 (a VeriGran
#    span costs up to 16 passes over ~1,500 tokens)
held_out() {  # dataset, name, slice options, faithfulness spans
  rcstat bench attribution --dataset "$1" --data "$DATA/$1_dev.jsonl" $3 --method "$METHODS" \
    --profile "$OUT/heads-quotesum.json" --faithfulness "$4" --output "$OUT/$2.json" > "$OUT/$2.md"
}
held_out quotesum quotesum-41-70 "--skip 40 --limit 30" 1000
held_out verigran verigran-1-30 "--limit 30" 20
held_out quotesum quotesum-71-130 "--skip 70 --limit 60" 1000
held_out verigran verigran-71-125 "--skip 70" 0

# 4. ContextCite in the same run as RC: QuoteSum 41-70 at its default 64 ablations (that run
#    used the previous Scoring default for RC: independent, 20 heads, Y from the response, max over
#    a chunk's tokens, z-scored; RC's time does not depend on it)
rcstat bench attribution --dataset quotesum --data "$DATA/quotesum_dev.jsonl" --skip 40 --limit 30 \
  --method rcstat,attention,attention-all,least-rc,hidden-state,contextcite,random --ablations 64 \
  --faithfulness 1000 --estimator independent --top-k 20 --y response --pool max --normalise zscore \
  --output "$OUT/contextcite-quotesum-41-70.json" > "$OUT/contextcite-quotesum-41-70.md"
# (ContextCite on VeriGran 1-30 at 16 ablations was started and stopped: ~3 min per example)

# 5. the summary table and figure of the held-out runs, with the ContextCite run paired
python benchmarks/attribution/summary.py "$OUT"/quotesum-41-70.json "$OUT"/quotesum-71-130.json \
  "$OUT"/verigran-1-30.json "$OUT"/verigran-71-125.json --side "$OUT"/contextcite-quotesum-41-70.json \
  --output "$OUT/summary.md" --plot "$OUT/summary.png"
