#!/usr/bin/env bash
# Issue 27 on Gemma-3-270M: the RC reconstruction press (`rcstat-zip`: our own KVzip passes, each
# layer's rotary and sliding window handled; kvpress's KVzip refuses the model) on the committed
# samples (seed 0, six families × 17 per setting, the same as every Gemma run) beside the full cache
# (which must reproduce the committed runs). The cheap presses' cells on the same samples are in the
# committed runs beside this one. Resumable: rerun to continue.
#   benchmarks/kv/zip.sh
source "$(dirname "$0")/extra.sh"
for setting in query-aware query-agnostic; do
  extra rcstat-zip gemma-3-270m "$six" 17 none,rcstat-zip "$setting" &
done
wait
