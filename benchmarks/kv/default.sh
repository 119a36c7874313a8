#!/usr/bin/env bash
# The default press `rcstat` after issue 26 (AutoRCPress: RC ranked across the model where the
# compressed layers hold >= 16 KV heads, FillPress where fewer; chosen on the dev seed, round 6 of
# benchmarks/kv/dev/candidates) on the committed samples (seed 0): Gemma-3-270M's 102 samples per
# setting beside KeyDiff (the best press there), SnapKV (the cost reference: times are ratios to it
# inside this run) and the full cache. On SmolLM2 the rule picks the recipe the committed runs already
# hold (CrossLayerPress over RCStatPress): the check reruns it on the needle/multikey subset (n = 68 per
# setting) beside the full cache, to be compared with the committed all-presses run's rcstat cells.
#   benchmarks/kv/default.sh                               # both models
#   MODELS=smollm2-135m-instruct benchmarks/kv/default.sh  # one
# Resumable: rerun to continue.
source "$(dirname "$0")/extra.sh"
for model in ${MODELS:-gemma-3-270m smollm2-135m-instruct}; do
  for setting in query-aware query-agnostic; do
    if [ "$model" = gemma-3-270m ]; then
      extra rcstat-auto "$model" "$six" 17 none,rcstat,keydiff,snapkv "$setting" &
    else
      extra rcstat-auto "$model" needle,multikey 34 none,rcstat "$setting" &
    fi
  done
  wait
done
