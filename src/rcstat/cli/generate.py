"""``rcstat generate``: generate while compressing the KV cache, and report the cache over the steps."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rcstat.cli.common import check_output, command, emit, read_context
from rcstat.cli.options import POSITIVE, RATIO, add_format, add_model, model_source, non_blank, number
from rcstat.cli.progress import load, phases, progress
from rcstat.io import dumps
from rcstat.options import DEFAULT_INTERVAL
from rcstat.presses.registry import FULL_CACHE, decoding_names


def register(sub) -> None:
    generate = command(
        sub,
        "generate",
        "generate while compressing the KV cache to a budget; report memory held over the steps",
        "Prefill the context and query, then generate greedily; every --interval steps (and right after "
        "the prefill) the press scores the cache against the latest generated tokens and evicts down to "
        "the budget, in a ragged cache that frees what it evicts. Prints the text, the KV bytes held "
        "against an uncompressed cache at every step, and the time per token.",
        'rcstat generate --context report.txt --query "Summarise the report." --budget 128',
        'rcstat generate --context notes.txt --query "List every date." --press knorm '
        "--compression-ratio 0.75",
        'rcstat generate --context notes.txt --query "…" --budget 64 --format html --output generation.html',
    )
    generate.add_argument("--context", required=True, help="context text file (- for stdin)")
    generate.add_argument(
        "--query", required=True, type=non_blank, help="the prompt after the context (a question, a task)"
    )
    generate.add_argument(
        "--press",
        default="rcstat",
        help="one of: " + ", ".join(decoding_names()) + f" ({FULL_CACHE}: the full cache, no budget)",
    )
    budget = generate.add_mutually_exclusive_group()
    budget.add_argument("--budget", type=POSITIVE, help="KV entries per head (on average) to hold at most")
    budget.add_argument("--compression-ratio", type=RATIO, help="share of the cache to evict, in [0, 1)")
    budget.add_argument("--threshold", type=number(float), help="evict every entry scoring ≤ τ")
    generate.add_argument(
        "--interval", type=POSITIVE, default=DEFAULT_INTERVAL, help="generated tokens between compressions"
    )
    generate.add_argument("--max-new-tokens", type=POSITIVE, default=256, help="cap on generated tokens")
    add_model(generate)
    add_format(generate, html="one self-contained page with held memory against the step")
    generate.add_argument("--output", help="write to this file (whole or not at all) instead of stdout")
    generate.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rcstat.presses.registry import make_decoding, parse_presses

    check_output(args.output)
    context = read_context(args)
    parse_presses([args.press])  # a bad name fails at once, before the model stack is imported
    from rcstat.kv.generate import generate_text
    from rcstat.kv.generation import Budget

    given = (args.budget, args.compression_ratio, args.threshold)
    full = args.press == FULL_CACHE and given == (None, None, None)
    compression = None if full else make_decoding(args.press, Budget(*given), args.interval)
    with phases(2) as phase:
        name, model, tokenizer = load(model_source(args), phase)
        phase("generating")
        report = generate_text(
            model,
            tokenizer,
            context,
            args.query,
            compression,
            args.press,
            args.max_new_tokens,
            _tokens_so_far(),
        )
    record = {"model": name, **report.to_dict()}
    if args.format == "html":
        from rcstat.render.generation_html import render

        emit(render(record, args.query), args.output)
    elif args.format == "json":
        emit(dumps(record, indent=2), args.output)
    else:
        from rcstat.render.text import generation_text

        emit(generation_text(record), args.output)
    return 0


def _tokens_so_far() -> Callable[[int, int], None]:
    """Progress per generated token, its clock started at the first (the prefill is not a token)."""
    tick: Callable[[int, int], None] | None = None

    def on_token(done: int, total: int) -> None:
        nonlocal tick
        tick = tick or progress(total, "tokens")
        tick(done, total)

    return on_token
