"""Ablation of the RC press's options on the built-in synthetic tasks only.

One factor at a time around a base configuration: estimator, observation window, GQA reducer,
score pooling, and head-adaptive vs. uniform budgets, at compression ratios 0.5, 0.75 and 0.9,
query-aware.
The data (needle, multikey, multivalue, cwe over Paul Graham essays) uses a seed different from
the main benchmark's, so the defaults are not tuned on the samples they are judged on; the QuoteSum
QA task is not used here.

    python benchmarks/kv/ablation.py [--per-task 5] [--output benchmarks/kv/ablation]

Writes ``log.jsonl`` (resumable), ``results.json``, ``results.md``, ``results.png`` to the output.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from rcstat.evaluation.kv.bench import Config, run_kv_bench
from rcstat.evaluation.kv.summary import summarise
from rcstat.evaluation.kv.tasks import builtin_samples
from rcstat.evaluation.provenance import git_commit
from rcstat.models import DEFAULT_MODEL, load_model
from rcstat.presses import FULL_CACHE, rc_press
from rcstat.render.kv_report import write_report

BASE = {
    "estimator": "independent",
    "window_size": 16,
    "gqa_reduce": "max",
    "pooling": 1,
    "head_adaptive": True,
}
VARIANTS = {
    "base": {},
    "est=jensen": {"estimator": "jensen"},
    "est=lower": {"estimator": "lower"},
    "est=upper": {"estimator": "upper"},
    "est=min_y": {"estimator": "min_y"},
    "window=8": {"window_size": 8},
    "window=32": {"window_size": 32},
    "window=64": {"window_size": 64},
    "reduce=mean": {"gqa_reduce": "mean"},
    "pool=3": {"pooling": 3},
    "pool=5": {"pooling": 5},
    "uniform": {"head_adaptive": False},
}
TASKS = ("needle", "multikey", "multivalue", "cwe")


def factory(options: dict):
    return lambda ratio: rc_press(ratio, layer_adaptive=False, **{**BASE, **options})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-task", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--output", default=str(Path(__file__).parent / "ablation"))
    args = parser.parse_args()
    model, tokenizer = load_model()
    samples = builtin_samples(tokenizer, TASKS, args.per_task, [1024], seed=args.seed)
    presses = {FULL_CACHE: None, **{name: factory(options) for name, options in VARIANTS.items()}}
    config = Config.create(presses, [0.5, 0.75, 0.9], True, 64)
    out = Path(args.output)
    records = run_kv_bench(
        model,
        tokenizer,
        samples,
        config,
        log=out / "log.jsonl",
        progress=lambda done, total: print(f"{done}/{total}", file=sys.stderr, flush=True),
    )
    meta = {
        "model": DEFAULT_MODEL,
        "data": f"{','.join(TASKS)} (per task {args.per_task}, length 1024, seed {args.seed})",
        "commit": git_commit(),
        "query_aware": True,
        "command": "python benchmarks/kv/ablation.py " + shlex.join(sys.argv[1:]),
        "base": BASE,
    }
    for path in write_report(out, meta, summarise(config, records)):
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
