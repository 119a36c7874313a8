#!/usr/bin/env bash
# Attribution where RAG lives (issue 17), on the default model with the default scoring, one torch
# thread. 1. AT2's head weights, trained on the selection split only (QuoteSum dev 1-40, 16 random
# ablations per example). 2. Held-out slices (QuoteSum dev 41-70, VeriGran dev 71-100) at their own
# length and with distractor passages of the file's other examples up to about 1k, 2k, 4k and 8k
# context tokens (fixed seed, the gold chunks at depths 0, 1/4, 1/2, 3/4, 1 in turn), every
# single-pass method. ContextCite is left out here: at 64 ablations it took 122 s per example at a few
# hundred tokens (benchmarks/attribution/contextcite-quotesum-41-70.json), i.e. days at 8k on 2 cores.
# 3. The summary (accuracy against length and depth, seconds and peak memory against one pass).
# Each step resumes where its output exists: rerun to continue.
set -euo pipefail
cd "$(dirname "$0")/../../.."
DATA=${RCSTAT_SHARED_DATA:-../shared/data}
OUT=benchmarks/attribution/long
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# freed tensors go back to the OS, so each peak (capture, plain forward) measures that step alone
export MALLOC_MMAP_THRESHOLD_=65536
METHODS=rcstat,rcstat-calibrated,attention,attention-query-max,hidden-state,at2,random
WEIGHTS=$OUT/at2-weights.json

[ -f "$WEIGHTS" ] || rcstat heads at2 --dataset quotesum --data "$DATA/quotesum_dev.jsonl" --limit 40 \
  --ablations 16 --seed 0 --output "$WEIGHTS"

slice() {  # dataset, name, slice options, then extra options
  local dataset=$1 name=$2 range=$3; shift 3
  [ -f "$OUT/$name.json" ] && return 0
  rcstat bench attribution --dataset "$dataset" --data "$DATA/${dataset}_dev.jsonl" $range --method "$METHODS" \
    --profile benchmarks/attribution/heads-quotesum.json --head-weights "$WEIGHTS" --threads 1 \
    --output "$OUT/$name.json" "$@" > /dev/null
}
# own length: 30 examples each; with distractors, fewer as the context grows (2 cores, one thread).
# VeriGran's contexts already hold about 2k tokens (270-4,226), so it starts at 4k.
slice quotesum quotesum-41-70-own "--skip 40 --limit 30"
slice verigran verigran-71-100-own "--skip 70 --limit 30"
slice quotesum quotesum-41-70-1024 "--skip 40 --limit 30" --context-tokens 1024
slice quotesum quotesum-41-60-2048 "--skip 40 --limit 20" --context-tokens 2048
slice quotesum quotesum-41-60-4096 "--skip 40 --limit 20" --context-tokens 4096
slice verigran verigran-71-90-4096 "--skip 70 --limit 20" --context-tokens 4096
if [ -z "${SKIP_8K:-}" ]; then  # SKIP_8K=1: the shorter ones only
  slice quotesum quotesum-41-50-7680 "--skip 40 --limit 10" --context-tokens 7680
  # VeriGran's responses are longer: 7,680 context tokens and its query and response pass the model's 8,192
  slice verigran verigran-71-80-7168 "--skip 70 --limit 10" --context-tokens 7168
fi
# Added for issue 28 (every length to 30 examples, the same slices). Each example's distractors and
# depth follow its position in the run, so the missing examples run on the whole slice's contexts from
# position FROM on (tail.py; a lower --limit ends the whole slice early, to run it in parts);
# --skip 60 --limit 10 would give examples 61-70 the draws of positions 0-9. --threads is left out:
# since 24c2785 rcstat refuses it without --workers (it only ever set the threads of Ray actors);
# OMP_NUM_THREADS=1 above makes the one torch thread. summary.py pools each length's files.
tail_slice() {  # dataset, name, first position, slice options (the whole slice), then extra options
  local dataset=$1 name=$2 first=$3 range=$4; shift 4
  [ -f "$OUT/$name.json" ] && return 0
  python benchmarks/attribution/long/tail.py "$first" --dataset "$dataset" --data "$DATA/${dataset}_dev.jsonl" \
    $range --method "$METHODS" --profile benchmarks/attribution/heads-quotesum.json --head-weights "$WEIGHTS" \
    --output "$OUT/$name.json" "$@" > /dev/null
}
[ -z "${SKIP_8K:-}" ] && tail_slice quotesum quotesum-51-70-7680 10 "--skip 40 --limit 30" --context-tokens 7680
tail_slice quotesum quotesum-61-70-4096 20 "--skip 40 --limit 30" --context-tokens 4096
tail_slice quotesum quotesum-61-70-2048 20 "--skip 40 --limit 30" --context-tokens 2048
tail_slice verigran verigran-91-100-4096 20 "--skip 70 --limit 30" --context-tokens 4096
if [ -z "${SKIP_8K:-}" ]; then  # in two parts (--limit ends the whole slice early: the same contexts)
  tail_slice verigran verigran-81-90-7168 10 "--skip 70 --limit 20" --context-tokens 7168
  tail_slice verigran verigran-91-100-7168 20 "--skip 70 --limit 30" --context-tokens 7168
fi
python benchmarks/attribution/long/summary.py
