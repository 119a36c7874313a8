"""``rcstat bench kv``: presses × compression ratios over samples, with 95% intervals."""

from __future__ import annotations

import argparse

from rcstat.cli.common import check_output, command, from_args, say
from rcstat.cli.options import (
    POSITIVE,
    RATIOS,
    add_format,
    add_model,
    add_workers,
    model_source,
    names,
    numbers,
    thresholds,
    workers,
)
from rcstat.cli.progress import load, progress
from rcstat.evaluation.kv.run import KVBench
from rcstat.evaluation.kv.tasks import TASKS
from rcstat.io import dumps
from rcstat.presses.registry import press_names

DEFAULT = KVBench(tasks=("needle",))  # the defaults of every option below


def register(sub) -> None:
    kv = command(
        sub,
        "kv",
        "KV-cache compression: presses × ratios on a JSONL dataset or built-in tasks",
        "Prefill each sample once, replay every press × ratio on it, answer greedily, and report accuracy "
        "(answer contains an accepted string) with 95% Wilson intervals.",
        "rcstat bench kv --data data.jsonl --press rcstat,snapkv,none --compression-ratio 0.5,0.75",
        "rcstat data fetch   # once: the haystack of the built-in tasks",
        "rcstat bench kv --task needle,multikey --per-task 20 --press rcstat,snapkv --output runs/kv",
        "rcstat bench kv --task qa --qa-data quotesum_dev.jsonl --per-task 5",
        "cat data.jsonl | rcstat bench kv --data - --press rcstat --format json",
    )
    source = kv.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="JSONL with context, question, answers (- for stdin)")
    source.add_argument(
        "--task", type=names, help=f"built-in tasks, comma-separated or 'all': {', '.join(TASKS)}"
    )
    kv.add_argument("--per-task", type=POSITIVE, default=DEFAULT.per_task, help="built-in: samples per task")
    kv.add_argument(
        "--lengths",
        type=numbers(int, low=1),
        default=DEFAULT.lengths,
        help="built-in: context lengths, cycled",
    )
    kv.add_argument(
        "--depths", type=numbers(float, 0, 1), default=DEFAULT.depths, help="needle: depths in [0, 1], cycled"
    )
    kv.add_argument("--seed", type=int, default=DEFAULT.seed, help="built-in: random seed")
    kv.add_argument("--qa-data", help="task qa: a QuoteSum JSONL file (- for stdin)")
    kv.add_argument(
        "--output",
        help="directory for log.jsonl (a rerun resumes from it), results.json, results.md and results.png",
    )
    kv.add_argument(
        "--press",
        type=names,
        default=DEFAULT.presses,
        help="comma-separated, of: " + ", ".join(press_names()),
    )
    kv.add_argument(
        "--compression-ratio", type=RATIOS, default=DEFAULT.ratios, help="comma-separated, e.g. 0.5,0.75"
    )
    kv.add_argument(
        "--threshold",
        type=thresholds,
        action="append",
        default=[],
        metavar="NAME=τ,…",
        help="also run press NAME's scorer thresholded at each τ (evict entries scoring ≤ τ); repeatable",
    )
    add_model(kv)
    add_workers(kv)
    kv.add_argument(
        "--query-aware", action="store_true", help="put the question inside the compressed context"
    )
    kv.add_argument(
        "--max-new-tokens",
        type=POSITIVE,
        default=DEFAULT.max_new_tokens,
        help="cap on answer tokens (tasks set theirs)",
    )
    kv.add_argument("--limit", type=POSITIVE, help="use the first N samples only")
    kv.add_argument("--strict", action="store_true", help="fail on the first record that does not fit")
    add_format(kv)
    kv.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rcstat.evaluation.kv.run import run as run_bench
    from rcstat.render.kv_report import write_report
    from rcstat.render.text import kv_table

    check_output(args.output, directory=True)
    bench = from_args(
        KVBench,
        args,
        presses=args.press,
        ratios=args.compression_ratio,
        thresholds=tuple(args.threshold),
        tasks=args.task or (),
        command=args.argv,
        workers=workers(args),
    )
    read = bench.read()  # a bad data file fails before the model loads
    name, model, tokenizer = load(model_source(args))
    result = run_bench(model, tokenizer, name, bench, read, progress)
    if args.output:
        for path in write_report(Path(args.output), result, result["results"]):
            say(f"wrote {path}")
    print(dumps(result, indent=2) if args.format == "json" else kv_table(result))
    return 0
