"""``rcstat bench attribution``: methods × the annotated spans of VeriGran or QuoteSum."""

from __future__ import annotations

import argparse

from rcstat.cli.common import check_output, command, from_args
from rcstat.cli.options import (
    NON_NEGATIVE,
    POSITIVE,
    add_format,
    add_model,
    add_scoring,
    add_slice,
    add_workers,
    model_source,
    names,
    number,
    workers,
)
from rcstat.cli.progress import load
from rcstat.evaluation.attribution.data import Dataset
from rcstat.evaluation.attribution.methods import METHODS
from rcstat.evaluation.attribution.run import AttributionBench
from rcstat.io import dumps
from rcstat.options import choices

DEFAULT = AttributionBench("quotesum", "-")  # the defaults of every option below


def register(sub) -> None:
    at = command(
        sub,
        "attribution",
        "attribution: methods × annotated spans of VeriGran or QuoteSum",
        "Attribute every annotated span of each response to its chunks; report chunk top-1 accuracy (95% "
        "Wilson intervals), faithfulness (log-prob drop of the span when the top-k chunks are removed) and "
        "time per example.",
        "rcstat bench attribution --dataset verigran --data dev.jsonl --method rcstat,attention,random",
        "rcstat bench attribution --dataset quotesum --data dev.jsonl --limit 20 --faithfulness 20",
        "rcstat bench attribution --dataset verigran --data dev.jsonl --method rcstat-calibrated "
        "--profile heads.json",
        "rcstat bench attribution --dataset quotesum --data dev.jsonl --context-tokens 4096 --limit 30",
    )
    at.add_argument("--dataset", choices=choices(Dataset), required=True, help="the format of --data")
    at.add_argument("--data", required=True, help="JSONL in the dataset's format (- for stdin)")
    at.add_argument(
        "--method", type=names, default=DEFAULT.methods, help="comma-separated, of: " + ", ".join(METHODS)
    )
    add_scoring(at)
    at.add_argument("--profile", help="head profile JSON (rcstat heads calibrate) for rcstat-calibrated")
    at.add_argument("--head-weights", help="AT2 head weights JSON (rcstat heads at2) for at2")
    at.add_argument(
        "--faithfulness",
        type=NON_NEGATIVE,
        default=DEFAULT.faithfulness,
        help="log-prob drops on the first N spans",
    )
    at.add_argument("--seed", type=int, default=DEFAULT.seed, help="seed of the random method")
    at.add_argument(
        "--ablations",
        type=number(int, low=2),
        default=DEFAULT.ablations,
        help="forward passes per example of contextcite (2 or more: its surrogate is fit on them)",
    )
    at.add_argument(
        "--context-tokens",
        type=POSITIVE,
        help="long context: add passages of other examples until each context holds about N tokens",
    )
    at.add_argument(
        "--no-forward-cost",
        action="store_true",
        help="do not time a plain forward pass per example (the unit of the capture's cost; one more pass)",
    )
    add_slice(at, DEFAULT.skip)
    add_model(at)
    add_workers(at)
    at.add_argument("--output", help="write results and per-span records to this JSON file")
    add_format(at)
    at.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rcstat.cli.common import say
    from rcstat.cli.options import scoring
    from rcstat.cli.progress import progress
    from rcstat.evaluation.attribution.run import run as run_bench
    from rcstat.io import write_atomic
    from rcstat.render.text import attribution_bench_table

    check_output(args.output)
    bench = from_args(
        AttributionBench,
        args,
        methods=args.method,
        scoring=scoring(args),
        plain_forward=not args.no_forward_cost,
        command=args.argv,
        workers=workers(args),
    )
    source = model_source(args)
    loaded = bench.read(source)  # a bad data file, or a length it cannot fill, fails before the model loads
    name, model, tokenizer = load(source)
    result = run_bench(model, tokenizer, name, bench, loaded, progress)
    if args.output:
        write_atomic(Path(args.output), (dumps(result) + "\n").encode())
        say(f"wrote {args.output}")
    summary = {k: v for k, v in result.items() if k != "records"}
    print(dumps(summary, indent=2) if args.format == "json" else attribution_bench_table(result))
    return 0
