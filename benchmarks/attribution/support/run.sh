#!/bin/sh
# The support benchmark, one process, one thread: development slices (QuoteSum dev 1–20, VeriGran dev
# 31–50; the threshold is chosen there) then held-out slices (QuoteSum dev 41–70, VeriGran dev 71–100).
# Each slice appends to its own log (logs/*.jsonl); rerunning resumes where a stopped run left off.
set -e
cd "$(dirname "$0")/../../.."
R=benchmarks/attribution/support
D=../shared/data
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
python $R/run.py quotesum $D/quotesum_dev.jsonl 0 20 $R/logs/dev-quotesum-1-20.jsonl
python $R/run.py verigran $D/verigran_dev.jsonl 30 20 $R/logs/dev-verigran-31-50.jsonl
python $R/run.py quotesum $D/quotesum_dev.jsonl 40 30 $R/logs/quotesum-41-70.jsonl
python $R/run.py verigran $D/verigran_dev.jsonl 70 30 $R/logs/verigran-71-100.jsonl
python $R/summary.py
