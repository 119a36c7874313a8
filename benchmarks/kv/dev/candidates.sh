#!/usr/bin/env bash
# Issue 26's development runs (seed 1000, never the main run's seed 0): benchmarks/kv/dev/candidates.py on
# both models and settings, two processes at a time, one torch thread each. Resumable: rerun to continue.
#   benchmarks/kv/dev/candidates.sh round2    rc, rc|keydiff, rc-span8 beside keydiff, compactor, snapkv
#   benchmarks/kv/dev/candidates.sh round3    rc, rc>null|keydiff beside keydiff, snapkv (stopped: see round4)
#   benchmarks/kv/dev/candidates.sh round4    rc>null|keydiff with the rest shared by per-head percentiles
#   benchmarks/kv/dev/candidates.sh round5    the same with RC's signal capped at half the kept budget
#   benchmarks/kv/dev/candidates.sh round6    both orders within each head, the same share per head
#   MODELS=gemma-3-270m benchmarks/kv/dev/candidates.sh round7    FillPress's cap: a quarter, 16 or 64 entries
#   MODELS=gemma-3-270m benchmarks/kv/dev/candidates.sh round8    FillPress over leverage scores
#   MODELS=gemma-3-270m PER_TASK=12 benchmarks/kv/dev/candidates.sh round9    RC's room by its breadth;
#       KeyDiff and leverage by rank (60 samples per cell: rounds 7-8 were too small to rank these)
#   MODELS=gemma-3-270m benchmarks/kv/dev/candidates.sh round11    rcstat-zip ranked across the global layers
#       or layerwise (issue 27: across them it starved layer 17 on the committed samples)
#   PER_TASK=6 benchmarks/kv/dev/candidates.sh round12    rcstat-probe (a probe pass after the prefill) beside
#       the default recipe, leverage and KeyDiff, both settings (issue 26: the lead of round 10)
#   PER_TASK=6 benchmarks/kv/dev/candidates.sh round13    the probe merged as one window with the window's
#       rows, or alone (round 12's max merge changed a few entries per head); compare with round 12's log
#   PER_TASK=6 benchmarks/kv/dev/candidates.sh round14    the probe's ranking on the window's scale (round 13:
#       the probe alone helped without the question and hurt with it; the union hurt with it)
#   MODELS=gemma-3-270m PER_TASK=3 benchmarks/kv/dev/candidates.sh round15    rcstat-zip, floor "lse" (issue 27;
#       compare with round 11's zip on the same samples)
#   MODELS=gemma-3-270m PER_TASK=3 benchmarks/kv/dev/candidates.sh round16    rcstat-zip, floor "lse", the same
#       share per layer (round 15 starved the global layers from 0.75; same samples)
#   MODELS=smollm2-135m-instruct PER_TASK=4 benchmarks/kv/dev/candidates.sh round18    rcstat-zip with the
#       mean or the log-sum-exp floor beside kvpress's KVzip (issue 27: the floor's lead on SmolLM2)
#   MODELS=smollm2-135m-instruct PER_TASK=2 benchmarks/kv/dev/candidates.sh round19    rcstat-zip with
#       KVzip's layer budget (budget="attention") beside rcstat-zip and KVzip (issue 27: the 0.9 gap)
#   PER_TASK=6 benchmarks/kv/dev/candidates.sh round17    the window's RC merged with leverage's or KeyDiff's
#       ranking on RC's scale (the probe's merge, no pass; compare with round 12's log, same samples)
#   MODELS=gemma-3-270m PER_TASK=6 benchmarks/kv/dev/candidates.sh round10   a fixed probe question in the
#       window, query-agnostic only (its samples are round 9's first 30: compare with round 9's log)
# (round1, the Gaussian and span variants, was stopped after 9-10 samples on Gemma: its table is
# re-summarised from its log with --limit.)
set -euo pipefail
cd "$(dirname "$0")/../../.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=65536
round=${1:?give round2 … round5}
per_task=${PER_TASK:-4}
case "$round" in
  round2) only=none,oracle,rc,rc\|keydiff,rc-span8,keydiff,compactor,snapkv ;;
  round3) only=none,oracle,rc,rc\>null\|keydiff,keydiff,snapkv ;;  # at 785f3ba: the rest by global KeyDiff rank
  round4) only=none,rc,rc\>null\|keydiff,keydiff ;;  # the rest by KeyDiff's percentile within each head
  round5) only=none,rc\>null\|keydiff,rc\>null\|keydiff-cap,keydiff ;;  # RC's signal capped at half the budget
  round6) only=none,rc,rc\>null\|keydiff,head:rc\>null\|keydiff,head:rc\>null\|keydiff-cap,keydiff ;;  # per-head budgets
  round7) only=none,head:rc\>null\|keydiff-cap,fill-cap0.25,fill-room16,fill-room64,keydiff ;;  # the cap
  round8) only=none,head:rc\>null\|keydiff-cap,fill\|leverage,leverage,keydiff ;;  # leverage for the rest
  round9) only=none,fill,fill\|kd+lev,fill-selective,fill-selective\|kd+lev,leverage,keydiff ;;  # breadth, ranks
  round11) only=none,fill,zip,zip-layerwise ;;  # issue 27: rcstat-zip across layers or the same share each
  round10) only=none,fill,leverage,keydiff ;;  # the same contexts with and without a fixed probe question
  round12) only=none,rcstat,probe,leverage,keydiff ;;  # the probe pass (ProbePress) beside the default
  round13) only=probe-union,probe-only ;;  # the probe's rows with the window's as one window, or alone
  round14) only=probe-rank ;;  # the probe's ranking on the window's scale, the larger of the two
  round15) only=zip-lse ;;  # issue 27: rcstat-zip with each row's log-sum-exp as its floor
  round16) only=zip-lse-layerwise ;;  # issue 27: that floor, the same share per layer
  round17) only=rank-leverage,rank-keydiff ;;  # issue 26: a query-independent ranking on RC's scale
  round18) only=zip,zip-lse,kvzip ;;  # issue 27: the log-sum-exp floor on SmolLM2 beside KVzip
  round19) only=zip-att,zip,kvzip ;;  # issue 27: KVzip's layer budget, RC within each layer
  *) echo "unknown round $round" >&2; exit 2 ;;
esac
rcstat data fetch > /dev/null
one() {  # model, setting
  local out=benchmarks/kv/dev/candidates/$round/$1/$2 aware=()
  [ "$2" = query-aware ] && aware=(--query-aware)
  mkdir -p "$out"
  python benchmarks/kv/dev/candidates.py --model "$1" --per-task "$per_task" --interleave --only "$only" \
    "${aware[@]}" --output "$out" > "$out.log" 2>&1
}
probe="What are the names, numbers and facts stated in the text above?"
if [ "$round" = round10 ]; then
  for model in ${MODELS:-gemma-3-270m smollm2-135m-instruct}; do
    out=benchmarks/kv/dev/candidates/$round/$model/query-agnostic  # without the probe: round 9's log
    mkdir -p "$out"
    python benchmarks/kv/dev/candidates.py --model "$model" --per-task "$per_task" --interleave --only "$only" \
      --probe "$probe" --output "$out" > "$out.log" 2>&1
  done
  exit
fi
for model in ${MODELS:-gemma-3-270m smollm2-135m-instruct}; do
  one "$model" query-agnostic &
  one "$model" query-aware &
  wait
done
