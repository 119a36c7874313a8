"""``rcstat attribute --data corpus.jsonl --output out.jsonl``: attribution over a whole corpus,
in this process or on Ray workers; resumable, bad rows to ``out.errors.jsonl``."""

from __future__ import annotations

import argparse

from rcstat.cli.common import check_output, say
from rcstat.cli.options import model_source, scoring, workers
from rcstat.cli.progress import progress
from rcstat.io import dumps


def run_corpus_command(args: argparse.Namespace) -> int:
    from rcstat.attribution.corpus import attribute_corpus
    from rcstat.errors import RCStatError

    if args.output is None:
        raise RCStatError("a corpus is attributed to an output file", option="output")
    for flag in ("query", "response", "span_text", "span", "top_sources"):
        if getattr(args, flag) is not None:
            raise RCStatError("each row of a corpus holds its own; leave it out with --data", option=flag)
    if args.format == "html":
        raise RCStatError("a corpus is attributed to JSONL, one row per line", option="format")
    check_output(args.output)
    summary = attribute_corpus(
        args.data,
        args.output,
        model_source(args),
        scoring(args),
        args.profile,
        args.granularity,
        workers(args),
        progress,
        say,
    )
    print(dumps(summary))
    return 0
