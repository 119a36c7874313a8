#!/usr/bin/env bash
# Citation precision and recall (rcstat bench citations) over a sweep of margins: the development
# split (QuoteSum dev 1–40, VeriGran dev 31–70; where the default margin was chosen) and the held-out
# slices of the attribution benchmark (QuoteSum dev 41–130, VeriGran dev 1–30 and 71–125).
set -euo pipefail
cd "$(dirname "$0")/../../.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
out=benchmarks/attribution/citations
q=../shared/data/quotesum_dev.jsonl
v=../shared/data/verigran_dev.jsonl
run() { rcstat bench citations "$@" > /dev/null; }
run --dataset quotesum --data "$q" --limit 40 --output "$out/dev-quotesum-1-40.json"
run --dataset verigran --data "$v" --skip 30 --limit 40 --output "$out/dev-verigran-31-70.json"
run --dataset quotesum --data "$q" --skip 40 --limit 90 --output "$out/quotesum-41-130.json"
run --dataset verigran --data "$v" --limit 30 --output "$out/verigran-1-30.json"
run --dataset verigran --data "$v" --skip 70 --limit 55 --output "$out/verigran-71-125.json"
python benchmarks/attribution/citations/summary.py
