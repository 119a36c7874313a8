#!/bin/sh
# The support benchmark's third round (issue 28): the whole context's own log-probabilities of a
# sentence's tokens (logged by every run: no new pass) join the candidate statistics, the rule is
# chosen on the same development logs (summary.py --dev-only), and it is tested on slices no one has
# read: the rest of run.sh's held-out slices, QuoteSum dev 146–160 and VeriGran dev 7–30, as slices
# of their own (their other topics paired within each). Resumable; then: python summary.py.
set -e
cd "$(dirname "$0")/../../.."
R=benchmarks/attribution/support
D=../shared/data
L=$R/logs
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
python $R/run.py quotesum $D/quotesum_dev.jsonl 145 15 $L/v2-fresh-quotesum-146-160.jsonl
python $R/run.py verigran $D/verigran_dev.jsonl 6 24 $L/v2-fresh-verigran-7-30.jsonl
python $R/summary.py
