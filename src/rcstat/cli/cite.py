"""``rcstat cite``: the response (generated when not given) with a citation ``[n]`` after each sentence."""

from __future__ import annotations

import argparse

from rcstat.cli.common import check_output, command, emit, read_context
from rcstat.cli.options import add_format, add_model, add_scoring, model_source, non_blank, number, scoring
from rcstat.cli.progress import load, phases
from rcstat.io import dumps
from rcstat.options import (
    DEFAULT_CITE_MARGIN,
    DEFAULT_CITE_OVERLAP,
    DEFAULT_CITE_SUPPORT,
    MEASURED_CITE_LOGPROB,
)


def register(sub) -> None:
    cite = command(
        sub,
        "cite",
        "cite the sources of each sentence of a response",
        "Attribute every sentence of the response (generated greedily when not given) in one forward pass "
        "and put [n] after it for each source scoring within the margin of its best source (none when the "
        "best does not lead the median source by the margin), if those sources back it: cutting them from "
        "the context lowers the sentence's log-probability by at least --min-support nats per token (one "
        "more forward pass per sentence, and one for the whole response), and if the context holds at least "
        "--min-overlap of its content words. Sources are numbered from 1.",
        'rcstat cite --sources chunks.jsonl --query "Who won?"',
        'rcstat cite --context notes.txt --query "What changed?" --response "…" --format json',
        'rcstat cite --sources chunks.jsonl --query "…" --format html --output cited.html',
    )
    given = cite.add_mutually_exclusive_group(required=True)
    given.add_argument("--context", help="context text file (- for stdin); sources are its sentences")
    given.add_argument("--sources", help='JSONL of chunks, one {"text": …} per line (- for stdin)')
    cite.add_argument("--query", required=True, type=non_blank, help="the question the response answers")
    cite.add_argument("--response", help="the response to cite (generated greedily when absent)")
    cite.add_argument(
        "--margin",
        type=number(float, low=0),
        default=DEFAULT_CITE_MARGIN,
        help="cite sources within this of the best, when the best leads the median by as much (dev-chosen)",
    )
    cite.add_argument(
        "--min-support",
        type=number(float),
        default=DEFAULT_CITE_SUPPORT,
        help="cite a sentence only if cutting its sources lowers its log-probability by this, nats/token",
    )
    cite.add_argument(
        "--min-logprob",
        type=number(float),
        default=None,
        help="also cite a sentence only if its 3 least likely tokens average at least this log-probability "
        f"with the context (off by default; {MEASURED_CITE_LOGPROB:g} measured for the default model)",
    )
    cite.add_argument(
        "--min-overlap",
        type=number(float, low=0, high=1),
        default=DEFAULT_CITE_OVERLAP,
        help="cite a sentence only if the context holds at least this share of its content words "
        "(words of 4+ characters or with a digit; 0: off; dev-chosen)",
    )
    cite.add_argument(
        "--scores",
        action="store_true",
        help="text output: each citation's score, each sentence's support, low log-probability and overlap",
    )
    add_scoring(cite)
    cite.add_argument("--profile", help="head profile JSON (rcstat heads calibrate): use its top heads")
    add_model(cite)
    add_format(cite, html="one self-contained page")
    cite.add_argument("--output", help="write to this file (whole or not at all) instead of stdout")
    cite.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rcstat.attribution.attributor import Attributor
    from rcstat.attribution.citations import cite

    check_output(args.output)
    context = read_context(args)
    with phases(3) as phase:
        name, model, tokenizer = load(model_source(args), phase)
        phase("one forward pass" if args.response else "generating, then one forward pass")
        attributor = Attributor(model, tokenizer, scoring=scoring(args), profile=args.profile)
        result = attributor.attribute(context, args.query, args.response)
        phase("support: one forward pass per sentence")
        cited = cite(
            result,
            args.margin,
            attributor=attributor,
            min_support=args.min_support,
            min_logprob=args.min_logprob,
            min_overlap=args.min_overlap,
        )
    record = {"model": name, **cited.to_dict()}
    if args.format == "html":
        from rcstat.render.citations_html import render

        emit(render(record, args.query), args.output)
    elif args.format == "json":
        emit(dumps(record, indent=2), args.output)
    else:
        sources = "\n".join(f"[{s.index + 1}] {s.text}" for s in cited.sources)
        emit(f"{cited.text(scores=args.scores)}\n\n{sources}", args.output)
    return 0
