"""The rest of a held-out slice, on the contexts a run of the whole slice gives it.

``python benchmarks/attribution/long/tail.py FROM OPTIONS...``: OPTIONS are those of
``rcstat bench attribution`` for the whole slice (``--skip 40 --limit 30 --context-tokens 7680 ...``).
Each example's distractors (the seed's draw) and depth (0, 1/4, 1/2, 3/4, 1 in turn) depend on its
position in the run (:func:`rcstat.evaluation.attribution.longcontext.with_distractors`), so
``--skip 60 --limit 10`` would give examples 61-70 the draws of positions 0-9, not 20-29. Here the
whole slice gets its contexts and only the examples from position FROM on are run: a slice run short
is completed without rerunning its first examples, each example in the context a whole run gives it.
The JSON is the command's, with ``first`` (FROM), ``skip`` counting FROM, and the records' ``example``
counted over the whole slice. Only the random method's draws are per position in this run.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import replace
from pathlib import Path


def main(argv: list[str]) -> int:
    from rcstat.cli import build_parser
    from rcstat.cli.common import check_output, from_args
    from rcstat.cli.options import model_source, scoring, workers
    from rcstat.cli.progress import load, progress
    from rcstat.evaluation.attribution.run import AttributionBench
    from rcstat.evaluation.attribution.run import run as run_bench
    from rcstat.io import dumps, write_atomic

    first, options = int(argv[0]), argv[1:]
    args = build_parser().parse_args(["bench", "attribution", *options])
    check_output(args.output)
    bench = from_args(
        AttributionBench,
        args,
        methods=args.method,
        scoring=scoring(args),
        plain_forward=not args.no_forward_cost,
        command=["bench", "attribution", *options],
        workers=workers(args),
    )
    source = model_source(args)
    loaded = bench.read(source)  # the whole slice, each example at its position's depth and draw
    loaded = replace(loaded, examples=loaded.examples[first:])
    name, model, tokenizer = load(source)
    result = run_bench(model, tokenizer, name, bench, loaded, progress)
    for record in result["records"]:
        record["example"] += first
    result |= {
        "first": first,
        "skip": bench.skip + first,
        "command": "python benchmarks/attribution/long/tail.py " + shlex.join(argv),
    }
    write_atomic(Path(args.output), (dumps(result) + "\n").encode())
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
