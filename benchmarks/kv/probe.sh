#!/usr/bin/env bash
# rcstat-probe (issue 26: the default recipe with a probe pass, its merge chosen on the dev seed,
# benchmarks/kv/dev rounds 12-14) on Gemma-3-270M's committed samples (seed 0, 102 per setting), beside
# the full cache; the other presses' cells on the same samples are in the committed runs beside it
# (compare sample by sample with benchmarks/kv/paired.py). Resumable: rerun to continue.
source "$(dirname "$0")/extra.sh"
for setting in query-aware query-agnostic; do
  extra rcstat-probe gemma-3-270m "$six" 17 none,rcstat-probe "$setting" &
done
wait
