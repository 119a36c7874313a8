#!/usr/bin/env bash
# Same numbers before and after a refactor: the KV ablation (20 samples) and one attribution slice,
# run on two commits of this repository (worktrees under $WORK, default /tmp/rcstat-equivalence).
# Usage: benchmarks/equivalence/run.sh BEFORE AFTER   (one torch thread each; about 25 min each)
set -euo pipefail
before=${1:?commit before}; after=${2:?commit after}
root=$(git rev-parse --show-toplevel); work=${WORK:-/tmp/rcstat-equivalence}; py=$root/.venv/bin/python
mkdir -p "$work"
for commit in "$before" "$after"; do
  tree=$work/$commit
  [ -d "$tree" ] || git -C "$root" worktree add -f "$tree" "$commit" >/dev/null
  cd "$tree"
  run() { PYTHONPATH=$tree/src OMP_NUM_THREADS=1 "$py" -c 'import runpy, sys, torch
torch.set_num_threads(1); sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name="__main__")' "$@"; }
  run benchmarks/kv/ablation.py --output "$work/$commit-ablation"
  printf 'import sys\nfrom rcstat.cli import main\nsys.exit(main(sys.argv[1:]))\n' > "$work/cli.py"
  run "$work/cli.py" bench attribution --dataset quotesum --data "$root/../shared/data/quotesum_dev.jsonl" \
    --skip 40 --limit 10 --method rcstat,attention,attention-query-max,hidden-state,random \
    --faithfulness 5 --format json --output "$work/$commit-attribution.json" > /dev/null
done
"$py" "$root/benchmarks/equivalence/compare.py" "$work/$before" "$work/$after"
