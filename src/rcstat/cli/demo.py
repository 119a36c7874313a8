"""``rcstat demo``: the attributor and an RC press on a real answer of the default model."""

from __future__ import annotations

import argparse
from pathlib import Path

from rcstat.cli.common import check_output, command, say
from rcstat.cli.options import add_format, add_model, add_scoring, model_source, scoring
from rcstat.cli.progress import load
from rcstat.io import dumps


def register(sub) -> None:
    demo = command(
        sub,
        "demo",
        "RC statistics of a real answer on the default model",
        "Generate an answer about five passages, score the passages and heads by expected RC, compare the "
        "five estimators, then compress the passages by half with the RC press and answer again.",
        "rcstat demo",
        "rcstat demo --format json --estimator upper",
        "rcstat demo --report rcstat-demo   # and write rcstat-demo/attribution.html, compression.html",
    )
    add_model(demo)
    add_scoring(demo, only=("estimator", "top_k"))
    add_format(demo)
    demo.add_argument(
        "--report",
        metavar="DIR",
        help="also write DIR/attribution.html (the answer attributed to the passages) and "
        "DIR/compression.html (the passages compressed by half, then the question answered)",
    )
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rcstat.demo import run_demo
    from rcstat.render.text import demo_text

    how = scoring(args)
    check_output(args.report, "report", directory=True)
    name, model, tokenizer = load(model_source(args))
    say("generating an answer, attributing it, then compressing the passages and answering again…")
    result = run_demo(model, tokenizer, name, how)
    record = result.to_dict()
    print(dumps(record, indent=2) if args.format == "json" else demo_text(record))
    if args.report:
        from rcstat.demo import QUESTION
        from rcstat.io import write_atomic
        from rcstat.presses.registry import DEFAULT_RATIO
        from rcstat.render.attribution_html import render as attribution_page
        from rcstat.render.compression_html import render as compression_page

        directory = Path(args.report)
        write_atomic(
            directory / "attribution.html", attribution_page(result.attribution, name, "chunk").encode()
        )
        page = compression_page(record["compression"], QUESTION, DEFAULT_RATIO)
        write_atomic(directory / "compression.html", page.encode())
        say(f"report: {directory / 'attribution.html'} and {directory / 'compression.html'}")
    return 0
