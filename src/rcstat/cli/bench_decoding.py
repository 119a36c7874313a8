"""``rcstat bench decoding``: presses × budgets compressing while the model generates."""

from __future__ import annotations

import argparse

from rcstat.cli.common import check_output, command, from_args, say
from rcstat.cli.options import (
    NON_NEGATIVE,
    POSITIVE,
    RATIOS,
    add_format,
    add_model,
    add_workers,
    model_source,
    names,
    numbers,
    workers,
)
from rcstat.cli.progress import load, progress
from rcstat.evaluation.decoding.config import DECODING_TASKS
from rcstat.evaluation.decoding.run import DecodingBench
from rcstat.io import dumps
from rcstat.presses.registry import decoding_names

DEFAULT = DecodingBench(tasks=("copy",))  # the defaults of every option below


def register(sub) -> None:
    bench = command(
        sub,
        "decoding",
        "compression while generating: presses × budgets against the full cache's own generation",
        "Generate from each sample with the full cache and with every press at every budget (one batch per "
        "sample), compressing every --interval tokens; report agreement with the full cache until the "
        "first divergence, ROUGE-L against it, the full-cache model's NLL of each generation, the task "
        "score, the KV bytes held, and (--timing-tokens) the time per token of each configuration alone.",
        "rcstat data fetch   # once: the haystack of the summary task",
        "rcstat bench decoding --task copy,summary --per-task 50 --budget 64,128,256 --output runs/decoding",
        "rcstat bench decoding --data rows.jsonl --press rcstat,knorm --compression-ratio 0.5,0.75",
        "rcstat bench decoding --task copy --per-task 2 --timing-tokens 1024 --budget 128",
    )
    source = bench.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="JSONL with context, question and optionally answers (- for stdin)")
    source.add_argument(
        "--task", type=names, help=f"built-in tasks, comma-separated: {', '.join(DECODING_TASKS)}"
    )
    bench.add_argument(
        "--per-task", type=POSITIVE, default=DEFAULT.per_task, help="built-in: samples per task"
    )
    bench.add_argument("--length", type=POSITIVE, default=DEFAULT.length, help="built-in: context tokens")
    bench.add_argument("--seed", type=int, default=DEFAULT.seed, help="built-in: random seed")
    bench.add_argument(
        "--press",
        type=names,
        default=DEFAULT.presses,
        help="comma-separated, of: " + ", ".join(decoding_names()),
    )
    budget = bench.add_mutually_exclusive_group()
    budget.add_argument(
        "--budget",
        type=numbers(int, low=1),
        default=DEFAULT.budgets,
        help="KV entries per head, comma-separated",
    )
    budget.add_argument(
        "--compression-ratio", type=RATIOS, help="shares of the cache to evict, comma-separated"
    )
    bench.add_argument(
        "--interval", type=POSITIVE, default=DEFAULT.interval, help="tokens between compressions"
    )
    bench.add_argument(
        "--max-new-tokens", type=POSITIVE, default=DEFAULT.max_new_tokens, help="cap on generated tokens"
    )
    bench.add_argument(
        "--timing-tokens",
        type=NON_NEGATIVE,
        default=DEFAULT.timing_tokens,
        help="also time N generated tokens of each configuration alone on the first sample",
    )
    bench.add_argument("--limit", type=POSITIVE, help="use the first N samples only")
    bench.add_argument("--strict", action="store_true", help="fail on the first record that does not fit")
    bench.add_argument(
        "--output",
        help="directory for log.jsonl (a rerun resumes), results.json/.md, quality.png, memory.png",
    )
    add_model(bench)
    add_workers(bench)
    add_format(bench)
    bench.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rcstat.evaluation.decoding.run import run as run_bench
    from rcstat.render.decoding_report import markdown, write_decoding_report

    check_output(args.output, directory=True)
    bench = from_args(
        DecodingBench,
        args,
        presses=args.press,
        budgets=() if args.compression_ratio else args.budget,
        ratios=args.compression_ratio or (),
        tasks=args.task or (),
        command=args.argv,
        workers=workers(args),
    )
    read = bench.read()  # a bad data file fails before the model loads
    name, model, tokenizer = load(model_source(args))
    result = run_bench(model, tokenizer, name, bench, read, progress)
    if args.output:
        for path in write_decoding_report(Path(args.output), result):
            say(f"wrote {path}")
    print(dumps(result, indent=2) if args.format == "json" else markdown(result, result["results"]))
    return 0
