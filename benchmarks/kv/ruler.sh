#!/usr/bin/env bash
# The cheap presses kvpress 0.5.5 added (issue 26's ruler: cur, leverage, non_causal_attention,
# entropy_gated_chunkkv, merging; each about one prefill of work, replayed on the recorded prefill;
# CAPKV is left out for time: its compression took 2.7 s per ratio on a 1k-token Gemma sample, against
# 0.01-0.3 s for the others; 1.76 prefills on SmolLM2's smoke run) on the committed samples (seed 0) beside the full cache
# (which must reproduce the committed runs): 17 samples per family on Gemma-3-270M (102 per setting),
# 34 on SmolLM2 (204 per setting, the main run's samples; its first 68, needle and multikey, were run
# first and the log resumes from them). The other presses' cells on the same samples are in the
# committed runs beside these. Resumable: rerun to continue.
#   benchmarks/kv/ruler.sh                                   # Gemma-3-270M, both settings
#   MODELS=smollm2-135m-instruct benchmarks/kv/ruler.sh      # SmolLM2
source "$(dirname "$0")/extra.sh"
presses=none,cur,leverage,non_causal_attention,entropy_gated_chunkkv,merging
for model in ${MODELS:-gemma-3-270m}; do
  for setting in query-aware query-agnostic; do
    per=34
    [ "$model" = gemma-3-270m ] && per=17
    extra kvpress-0.5.5 "$model" "$six" "$per" "$presses" "$setting" &
  done
  wait
done
