"""``rcstat attribute``: attribute a response (generated when not given) to the sources of its context."""

from __future__ import annotations

import argparse

from rcstat.cli.common import check_output, command, emit, read_context
from rcstat.cli.options import (
    POSITIVE,
    add_format,
    add_model,
    add_scoring,
    add_workers,
    int_pair,
    model_source,
    non_blank,
    scoring,
)
from rcstat.cli.progress import load, phases
from rcstat.io import dumps
from rcstat.options import DEFAULT_GRANULARITY, Granularity, choices


def register(sub) -> None:
    attribute = command(
        sub,
        "attribute",
        "attribute a response (generated when not given) to its context",
        "One forward pass: score every source of the context for a span of the response by the "
        "expected RC of the heads that contextualize the response most.",
        'rcstat attribute --context examples/curie.txt --query "When did Marie Curie win her Nobel Prizes?"',
        'rcstat attribute --sources chunks.jsonl --query "Who won?" --response "Curie won twice." '
        "--span-text Curie --granularity chunk --format json",
        'rcstat attribute --context examples/curie.txt --query "…" --format html --output report.html',
        'cat notes.txt | rcstat attribute --context - --query "…" --response "…"',
        "rcstat attribute --data corpus.jsonl --output attributed.jsonl --workers 2   # on Ray, resumable",
    )
    given = attribute.add_mutually_exclusive_group(required=True)
    given.add_argument(
        "--context", help="context text file (- for stdin); sources are its sentences or tokens"
    )
    given.add_argument("--sources", help='JSONL of chunks, one {"text": …} per line (- for stdin)')
    given.add_argument(
        "--data",
        help="a corpus: JSONL rows {id, context or sources, query, [response], [spans], [granularity]}, "
        "attributed to --output (JSONL, resumable; bad rows to OUTPUT.errors.jsonl beside it)",
    )
    attribute.add_argument("--query", type=non_blank, help="the query (each row of --data has its own)")
    attribute.add_argument("--response", help="the response to attribute (generated greedily when absent)")
    target = attribute.add_mutually_exclusive_group()
    target.add_argument("--span-text", help="attribute the first occurrence of this text in the response")
    target.add_argument(
        "--span", type=int_pair("START:END character offsets"), help="response characters START:END"
    )
    attribute.add_argument(
        "--granularity",
        choices=choices(Granularity),
        default=DEFAULT_GRANULARITY,
        help="what a source is (with --data: for rows that name none)",
    )
    attribute.add_argument("--top-sources", type=POSITIVE, help="show only the N best sources")
    add_scoring(attribute)
    attribute.add_argument("--profile", help="head profile JSON (rcstat heads calibrate): use its top heads")
    add_model(attribute)
    add_format(attribute, html="one self-contained page")
    attribute.add_argument("--output", help="write to this file (whole or not at all) instead of stdout")
    add_workers(attribute)
    attribute.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rcstat.attribution.attributor import Attributor
    from rcstat.attribution.profile import HeadProfile
    from rcstat.errors import RCStatError

    if args.data:
        from rcstat.cli.corpus import run_corpus_command

        return run_corpus_command(args)
    if args.workers or args.ray_address:
        raise RCStatError("workers attribute a corpus: give it with --data", option="workers")
    if args.query is None:
        raise RCStatError("a query is needed", option="query")
    check_output(args.output)
    context = read_context(args)
    profile = HeadProfile.load(args.profile) if args.profile else None
    how = scoring(args)
    with phases(2) as phase:
        name, model, tokenizer = load(model_source(args), phase)
        phase("one forward pass" if args.response else "generating, then one forward pass")
        result = Attributor(model, tokenizer, scoring=how, profile=profile).attribute(
            context, args.query, args.response
        )
    span = result.find(args.span_text) if args.span_text is not None else (args.span or (None, None))
    scores = result.attributions(*span, granularity=args.granularity)
    if args.format == "html":
        from rcstat.render.attribution_html import render

        emit(render(result, name, args.granularity), args.output)
        return 0
    record = {"model": name, "response": result.response, **scores.to_dict()}
    record["sources"] = record["sources"][: args.top_sources] if args.top_sources else record["sources"]
    if args.format == "json":
        emit(dumps(record, indent=2), args.output)
        return 0
    from rcstat.render.text import attribution_text

    emit(attribution_text(record, args.granularity), args.output)
    return 0
