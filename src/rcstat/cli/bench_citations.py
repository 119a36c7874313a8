"""``rcstat bench citations``: citation precision and recall over margins, on VeriGran or QuoteSum."""

from __future__ import annotations

import argparse

from rcstat.cli.common import check_output, command, say
from rcstat.cli.options import add_format, add_model, add_scoring, add_slice, model_source, numbers, scoring
from rcstat.cli.progress import load, progress
from rcstat.evaluation.attribution.data import Dataset
from rcstat.io import dumps
from rcstat.options import choices

MARGINS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5)


def register(sub) -> None:
    bench = command(
        sub,
        "citations",
        "citations: precision and recall of rcstat cite over a sweep of margins",
        "Cite every annotated sentence of each response at each margin and compare with the chunks its "
        "annotations name: precision, recall (95% Wilson intervals over pooled counts) and F1.",
        "rcstat bench citations --dataset quotesum --data dev.jsonl --limit 40 --margin 0,1,2,3",
    )
    bench.add_argument("--dataset", choices=choices(Dataset), required=True, help="the format of --data")
    bench.add_argument("--data", required=True, help="JSONL in the dataset's format (- for stdin)")
    bench.add_argument(
        "--margin", type=numbers(float, low=0), default=MARGINS, help="margins to sweep, comma-separated"
    )
    add_slice(bench)
    add_scoring(bench)
    add_model(bench)
    bench.add_argument("--output", help="write results and per-example counts to this JSON file")
    add_format(bench)
    bench.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import shlex
    from pathlib import Path

    from rcstat.evaluation.attribution.citations import run as run_bench
    from rcstat.evaluation.attribution.data import load_examples
    from rcstat.io import write_atomic
    from rcstat.render.text import citations_table

    check_output(args.output)
    loaded = load_examples(args.dataset, args.data, args.limit, args.skip, args.strict)
    name, model, tokenizer = load(model_source(args))
    result = run_bench(
        model,
        tokenizer,
        loaded,
        args.margin,
        scoring(args),
        args.strict,
        progress,
        {
            "model": name,
            "dataset": args.dataset,
            "data": str(args.data),
            "skip": args.skip,
            "command": "rcstat " + shlex.join(args.argv),
        },
    )
    if args.output:
        write_atomic(Path(args.output), (dumps(result) + "\n").encode())
        say(f"wrote {args.output}")
    summary = {k: v for k, v in result.items() if k != "records"}
    print(dumps(summary, indent=2) if args.format == "json" else citations_table(result))
    return 0
