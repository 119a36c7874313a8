#!/usr/bin/env bash
# rcstat-probe (issue 26: the default recipe with a probe pass, its merge chosen on the dev seed,
# benchmarks/kv/dev rounds 12-14) on the committed samples (seed 0): Gemma-3-270M's 102 per setting and
# SmolLM2's 204 (the main run's; its first 68, needle and multikey, ran first and the log resumes from
# them), beside the full cache; the other
# presses' cells on the same samples are in the committed runs beside it (compare sample by sample with
# benchmarks/kv/paired.py). Resumable: rerun to continue.
source "$(dirname "$0")/extra.sh"
for setting in query-aware query-agnostic; do
  extra rcstat-probe gemma-3-270m "$six" 17 none,rcstat-probe "$setting" &
done
wait
for setting in query-aware query-agnostic; do
  extra rcstat-probe smollm2-135m-instruct "$six" 34 none,rcstat-probe "$setting" &
done
wait
