"""``rcstat compress``: answer a query from a compressed KV cache and report what was kept."""

from __future__ import annotations

import argparse

from rcstat.cli.common import check_output, command, emit, read_context
from rcstat.cli.options import POSITIVE, RATIO, add_format, add_model, model_source, non_blank, number
from rcstat.cli.progress import load, phases
from rcstat.errors import RCStatError
from rcstat.io import dumps
from rcstat.options import CacheKind, choices
from rcstat.presses.registry import DEFAULT_RATIO, press_names


def register(sub) -> None:
    compress = command(
        sub,
        "compress",
        "answer a query from a compressed KV cache and report what was kept",
        "Prefill the context, compress its cache with a press, answer greedily; report the "
        "realised ratio (overall and per layer), KV bytes before and after, and the time of each phase.",
        'rcstat compress --context examples/curie.txt --query "When did Marie Curie win her Nobel Prizes?"',
        'rcstat compress --context report.txt --query "What changed?" --press snapkv '
        "--compression-ratio 0.75",
        'rcstat compress --context report.txt --query "What changed?" --threshold 1.5 --format json',
        'rcstat compress --context report.txt --query "…" --format html --output compression.html',
    )
    compress.add_argument("--context", required=True, help="context text file (- for stdin)")
    compress.add_argument(
        "--query", required=True, type=non_blank, help="the question answered from the compressed cache"
    )
    budget = compress.add_mutually_exclusive_group()
    budget.add_argument(
        "--compression-ratio",
        type=RATIO,
        help=f"share of the cache to evict, in [0, 1) (default: {DEFAULT_RATIO:g})",
    )
    budget.add_argument(
        "--threshold",
        type=number(float),
        help="evict every entry scoring ≤ τ, per head and layer (scorer presses)",
    )
    compress.add_argument("--press", default="rcstat", help="one of: " + ", ".join(press_names()))
    compress.add_argument(
        "--query-aware",
        action="store_true",
        help="compress with the query inside the window. The default is query-agnostic: the cache is "
        "compressed before the query is seen, as for a cache that serves many queries, the harder setting "
        "(it scores lower in the README's KV benchmark; the output says which mode ran)",
    )
    compress.add_argument(
        "--cache",
        choices=choices(CacheKind),
        default="ragged",
        help="ragged: hold only the kept entries per head; masked: kvpress's masked cache",
    )
    compress.add_argument(
        "--full-answer",
        action=argparse.BooleanOptionalAction,
        help="also answer from the uncompressed cache, beside the compressed one (one more prefill and "
        "decode; default: on with --format html, off otherwise)",
    )
    compress.add_argument("--max-new-tokens", type=POSITIVE, default=64, help="cap on answer tokens")
    add_model(compress)
    add_format(compress, html="one self-contained page with a per-layer chart")
    compress.add_argument("--output", help="write to this file (whole or not at all) instead of stdout")
    compress.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rcstat.presses.registry import make_press

    check_output(args.output)
    context = read_context(args)
    budget = args.compression_ratio is not None or args.threshold is not None
    if args.press == "none" and budget:
        option = "--compression-ratio" if args.compression_ratio is not None else "--threshold"
        raise RCStatError(f"--press none keeps the full cache: {option} has nothing to do; drop it")
    ratio = DEFAULT_RATIO if args.compression_ratio is None else args.compression_ratio
    press = make_press(args.press, ratio, args.threshold)  # a bad name fails here, at once
    from rcstat.kv.compress import compress_and_answer

    full = args.format == "html" if args.full_answer is None else args.full_answer
    with phases((4 if args.cache == "masked" else 3) + full) as phase:
        name, model, tokenizer = load(model_source(args), phase)
        report = compress_and_answer(
            model,
            tokenizer,
            context,
            args.query,
            press,
            args.max_new_tokens,
            args.query_aware,
            args.cache,
            phase,
            full,
        )
    record = {"model": name, **report.to_dict()}
    if args.format == "html":
        from rcstat.render.compression_html import render

        target = None if press is None or args.threshold is not None else ratio
        emit(render(record, args.query, target), args.output)
    elif args.format == "json":
        emit(dumps(record, indent=2), args.output)
    else:
        from rcstat.render.text import compression_text

        emit(compression_text(record), args.output)
    return 0
