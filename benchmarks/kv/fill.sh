#!/usr/bin/env bash
# rcstat-fill (issue 26) on the committed samples (seed 0; chosen on the dev seed, benchmarks/kv/dev):
# Gemma-3-270M's 102 samples per setting beside KeyDiff (the best press there) and the full cache, and
# SmolLM2's needle/multikey subset (n = 68 per setting) beside the full cache; the other presses'
# cells on the same samples are in the committed runs beside these. Resumable: rerun to continue.
source "$(dirname "$0")/extra.sh"
for setting in query-aware query-agnostic; do
  extra rcstat-fill gemma-3-270m "$six" 17 none,rcstat-fill,keydiff "$setting" &
  extra rcstat-fill smollm2-135m-instruct needle,multikey 34 none,rcstat-fill "$setting" &
done
wait
