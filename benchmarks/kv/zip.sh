#!/usr/bin/env bash
# Issue 27: the RC reconstruction press (`rcstat-zip`) as it now is (window=16, prefix="keep") on
# committed samples (seed 0) beside the full cache (which must reproduce the committed runs); the
# other presses' cells on the same samples are in the committed runs beside these. Resumable.
#   benchmarks/kv/zip.sh                                  # Gemma-3-270M: six families × 17 per setting
#                                                         # (our own KVzip passes, each layer's rotary
#                                                         # and sliding window handled; kvpress's KVzip
#                                                         # refuses the model)
#   MODELS=smollm2-135m-instruct benchmarks/kv/zip.sh     # SmolLM2: the kvzip-subset's samples (10
#                                                         # needle, 10 multikey), where KVzip ran
#   MODELS=smollm2-135m-instruct PER_TASK=34 benchmarks/kv/zip.sh
#                                                         # SmolLM2, the whole class in one run: 34
#                                                         # needle and 34 multikey per setting,
#                                                         # rcstat-zip beside KVzip and KVzip+ live
#                                                         # (<setting>/kvzip-class/)
#   MODELS=smollm2-135m-instruct PER_TASK=34 KVGRAD=1 benchmarks/kv/zip.sh
#                                                         # KVgrad live on the same 34 needle and 34
#                                                         # multikey (<setting>/kvgrad/)
source "$(dirname "$0")/extra.sh"
for model in ${MODELS:-gemma-3-270m}; do
  for setting in query-aware query-agnostic; do
    if [ "$model" = gemma-3-270m ]; then
      extra rcstat-zip "$model" "$six" 17 none,rcstat-zip "$setting" &
    elif [ -n "${KVGRAD:-}" ]; then
      extra kvgrad "$model" needle,multikey "$PER_TASK" none,kvgrad "$setting" &
    elif [ "${PER_TASK:-10}" = 10 ]; then
      extra rcstat-zip "$model" needle,multikey 10 none,rcstat-zip "$setting" &
    else
      extra kvzip-class "$model" needle,multikey "$PER_TASK" none,kvzip,kvzip+,rcstat-zip "$setting" &
    fi
  done
  wait
done
