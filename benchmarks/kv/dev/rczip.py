"""Development run for issue 27: RCZipPress's options against KVzip (seed 1000, never seed 0).

Each variant switches the options of ``RCZipPress`` (``rcstat-zip``) where its first build differed
from SPEC §3's prototype, beside KVzip, KVzip+ and the full cache, on needle and multikey at 1k tokens:

- ``zip``: the first build (``window=0, prefix="zero"``: the template's prefix left at KVzip's 0);
- ``zip+w16``: the last 16 context tokens always kept (query-aware: the question);
- ``zip+keep`` / ``zip+score``: the template's prefix kept as sinks / scored by RC like every key;
- ``zip+w16+keep``: both; ``zip+w16+keep+row``: with the floor over every key the row sees;
- ``one_pass`` is not run: at 1k tokens KVzip's chunks (2048) already hold the whole context in
  one pass, whose floor (the repeat, "Repeat…" prompt included) is the prototype's.

    python benchmarks/kv/dev/rczip.py [--query-aware] --output benchmarks/kv/dev/rczip/SETTING
    benchmarks/kv/dev/rczip.sh             # both settings at once (rczip-r2: 4 per task)
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from devrun import in_turn, live_rczip, logged, only, report, run

from rcstat.evaluation.kv.bench import Config
from rcstat.evaluation.kv.tasks import builtin_samples
from rcstat.models import DEFAULT_MODEL, load_model
from rcstat.presses.registry import FULL_CACHE, PRESSES

TASKS = ("needle", "multikey")
VARIANTS = {
    "zip": {"window": 0, "prefix": "zero"},
    "zip+w16": {"window": 16, "prefix": "zero"},
    "zip+keep": {"window": 0, "prefix": "keep"},
    "zip+score": {"window": 0, "prefix": "score"},
    "zip+w16+keep": {"window": 16, "prefix": "keep"},
    "zip+w16+keep+row": {"window": 16, "prefix": "keep", "floor": "row"},
}


def presses() -> dict:
    return {
        FULL_CACHE: None,
        "kvzip": PRESSES["kvzip"].make,
        "kvzip+": PRESSES["kvzip+"].make,
        **{name: live_rczip(**options) for name, options in VARIANTS.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-task", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--query-aware", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated variant names (default: all)")
    parser.add_argument("--limit", type=int, default=None, help="the first N samples only (a stopped run)")
    parser.add_argument(
        "--summarise-only",
        action="store_true",
        help="write the report from the records already in the log (a stopped run); run nothing",
    )
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    model, tokenizer = load_model()
    by_task = builtin_samples(tokenizer, TASKS, args.per_task, [1024], seed=args.seed)
    samples = in_turn(by_task, args.per_task)[: args.limit]
    config = Config.create(only(presses(), args.only), [0.5, 0.75, 0.9], args.query_aware, 64)
    out = Path(args.output)
    records = logged(out, samples) if args.summarise_only else run(model, tokenizer, samples, config, out)
    meta = {
        "model": DEFAULT_MODEL,
        "data": f"{','.join(TASKS)} (per task {args.per_task}, length 1024, seed {args.seed}, in turn"
        + (f", first {args.limit}" if args.limit else "")
        + ")",
        "query_aware": args.query_aware,
        "command": "python benchmarks/kv/dev/rczip.py " + shlex.join(sys.argv[1:]),
        "variants": VARIANTS,
    }
    report(out, meta, config, records)


if __name__ == "__main__":
    main()
