#!/bin/sh
# The support benchmark: dev slices (threshold chosen there) and held-out slices, one core each.
set -e
R=benchmarks/attribution/support
D=../shared/data
export OMP_NUM_THREADS=1
(python $R/run.py quotesum $D/quotesum_dev.jsonl 0 30 $R/dev-quotesum-1-30.json
 python $R/run.py quotesum $D/quotesum_dev.jsonl 40 40 $R/quotesum-41-80.json) > /tmp/support-q.log 2>&1 &
(python $R/run.py verigran $D/verigran_dev.jsonl 30 30 $R/dev-verigran-31-60.json
 python $R/run.py verigran $D/verigran_dev.jsonl 70 40 $R/verigran-71-110.json) > /tmp/support-v.log 2>&1 &
wait
