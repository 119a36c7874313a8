#!/usr/bin/env bash
# The attribution benchmark (issue 4) on the default model, as committed here (README.md says
# what each file holds). Selection split: QuoteSum dev, first 40 examples; everything else is
# held out. Needs the contextcite extra for step 4 (pip install 'rcstat[contextcite]') and the
# plot extra for the figures. On 2 busy CPU threads the whole script takes hours; each step can
# be run alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${RCSTAT_SHARED_DATA:-../shared/data}
OUT=benchmarks/attribution
METHODS=rcstat,attention,attention-all,least-rc,hidden-state,random

# 1. the scoring ablation on the selection split (chooses the Scoring defaults)
python benchmarks/attribution/ablation.py --dataset quotesum --data "$DATA/quotesum_dev.jsonl" \
  --split first --limit 40 --output "$OUT/ablation/quotesum-first40.json"
python benchmarks/attribution/ablation.py --report "$OUT/ablation/quotesum-first40.json" --top 25 \
  > "$OUT/ablation/quotesum-first40.md"

# 2. a head profile from the same split, its heatmap, and Figure 1 for one example
rcstat heads calibrate --dataset quotesum --data "$DATA/quotesum_dev.jsonl" --limit 40 \
  --output "$OUT/heads-quotesum.json" --plot "$OUT/heads-quotesum.png"
rcstat heads histogram --dataset quotesum --data "$DATA/quotesum_dev.jsonl" --example 0 \
  --output "$OUT/xy-quotesum-0.png"

# 3. held out: VeriGran dev, first 30 examples (no VeriGran example was used to choose anything)
rcstat bench attribution --dataset verigran --data "$DATA/verigran_dev.jsonl" --limit 30 \
  --method "$METHODS" --output "$OUT/verigran-heldout.json" | tee "$OUT/verigran-heldout.md"

# 4. held out: QuoteSum examples 41-70 with ContextCite (16 ablations) in the same run; that run
#    used the first pick of step 1 for RC (jensen, 40 heads, Y from the span, no normalisation),
#    then the same slice with the defaults, without ContextCite
JENSEN40=(--estimator jensen --top-k 40 --y span --pool max --normalise none)
rcstat bench attribution --dataset quotesum --data "$DATA/quotesum_dev.jsonl" --skip 40 --limit 30 \
  --method "${METHODS/,random/},contextcite,random" --ablations 16 "${JENSEN40[@]}" \
  --output "$OUT/quotesum-contextcite.json" | tee "$OUT/quotesum-contextcite.md"
rcstat bench attribution --dataset quotesum --data "$DATA/quotesum_dev.jsonl" --skip 40 --limit 30 \
  --method "$METHODS" --output "$OUT/quotesum-41-70.json" | tee "$OUT/quotesum-41-70.md"

# the first pick's held-out runs (*-jensen40): steps 3 and 5 with "${JENSEN40[@]}"

# 5. held out: QuoteSum examples 71-130, with the calibrated profile; then every variant of
#    step 1 (independent and jensen) on examples 71-100, a paired comparison that chooses nothing
rcstat bench attribution --dataset quotesum --data "$DATA/quotesum_dev.jsonl" --skip 70 --limit 60 \
  --method "rcstat,rcstat-calibrated,${METHODS#rcstat,}" --profile "$OUT/heads-quotesum.json" \
  --output "$OUT/quotesum-heldout.json" | tee "$OUT/quotesum-heldout.md"
python benchmarks/attribution/ablation.py --dataset quotesum --data "$DATA/quotesum_dev.jsonl" \
  --skip 70 --limit 30 --estimators independent,jensen --output "$OUT/ablation/quotesum-heldout-71-100.json"
python benchmarks/attribution/ablation.py --report "$OUT/ablation/quotesum-heldout-71-100.json" --top 25 \
  > "$OUT/ablation/quotesum-heldout-71-100.md"

# The earlier *-all files (full dev, SPEC's literal scoring) came from this script's previous
# version with: --estimator independent --top-k 20 --pool sample
